// Rules C1-C3 of docs/behaviour.md: a watched fd that the program closes
// without unwatch(), and a new file that reuses its number.
#include "helpers.hpp"

namespace iowait::test {
namespace {

using ClosedFds = ConformanceTest;
IOWAIT_CONFORMANCE(ClosedFds);

TEST_P(ClosedFds, ClosedWhileReadyIsNotReportedAndDoesNotSpin) {
    socket_pair p, other;
    w.watch(p.a, Interest::read);
    w.watch(other.a, Interest::read);
    p.send_b();
    p.close_a();
    // A blocking wait must block (no busy loop on the closed fd) and report nothing.
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(wait_events(w, 30ms).empty());
    EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
    other.send_b();  // the other watch still works
    auto events = wait_events(w, 1s);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].fd, other.a);
}

TEST_P(ClosedFds, UnwatchAfterCloseSucceeds) {
    socket_pair p;
    const int fd = p.a;
    w.watch(fd, Interest::read);
    p.close_a();
    EXPECT_TRUE(wait_events(w, 5ms).empty());
    EXPECT_NO_THROW(w.unwatch(fd));
}

TEST_P(ClosedFds, UnwatchAfterCloseWithoutAnyWaitSucceeds) {
    socket_pair p;
    const int fd = p.a;
    w.watch(fd, Interest::read | Interest::write);
    p.close_a();
    EXPECT_NO_THROW(w.unwatch(fd));
}

TEST_P(ClosedFds, ModifyAfterCloseIsEBADFAndUnwatchStillWorks) {
    socket_pair p;
    const int fd = p.a;
    w.watch(fd, Interest::read);
    p.close_a();
    EXPECT_TRUE(wait_events(w, 5ms).empty());
    try {
        w.modify(fd, Interest::write);
        ADD_FAILURE() << "modify of a closed fd did not throw";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::bad_file_descriptor) << e.what();
    }
    EXPECT_NO_THROW(w.unwatch(fd));
}

// The number is reused by a new, ready file before any wait: the new file's
// readiness is never reported under the old watch, the number stays "watched"
// until unwatch(), and after that the new file can be watched as usual.
TEST_P(ClosedFds, ReusedNumberIsNeverReportedForTheNewFile) {
    socket_pair old_pair, new_pair;
    const int fd = old_pair.a;
    w.watch(fd, Interest::read, 1);
    old_pair.close_a();
    ASSERT_EQ(::dup3(new_pair.a, fd, O_CLOEXEC), fd);  // the new file takes the old number
    new_pair.send_b();
    EXPECT_TRUE(wait_events(w, 20ms).empty());
    EXPECT_TRUE(wait_events(w, 0ns).empty());
    try {
        w.watch(fd, Interest::read, 2);
        ADD_FAILURE() << "watch of a number still watched did not throw";
    } catch (const usage_error& e) {
        EXPECT_EQ(e.code(), errc::already_watched);
    }
    w.unwatch(fd);
    w.watch(fd, Interest::read, 2);
    Event e = expect_event(w, fd);
    EXPECT_TRUE(e.read);
    EXPECT_EQ(e.data, 2u);
    w.unwatch(fd);
    ::close(fd);
}

// The same, but the reuse happens after a wait has already seen the old fd ready.
TEST_P(ClosedFds, ReusedNumberAfterAnEventIsNotReported) {
    socket_pair old_pair, new_pair;
    const int fd = old_pair.a;
    w.watch(fd, Interest::read);
    old_pair.send_b();
    EXPECT_EQ(wait_events(w, 1s).size(), 1u);
    old_pair.close_a();
    ASSERT_EQ(::dup3(new_pair.a, fd, O_CLOEXEC), fd);
    new_pair.send_b();
    EXPECT_TRUE(wait_events(w, 20ms).empty());
    w.unwatch(fd);
    ::close(fd);
}

// modify() of a number closed and reused by another file must not start
// watching the new file under the old watch: it fails (ENOENT, as epoll says
// for a file it never saw), and the new file's readiness is not reported.
TEST_P(ClosedFds, ModifyAfterTheNumberIsReusedFailsAndReportsNothing) {
    socket_pair old_pair, new_pair;
    const int fd = old_pair.a;
    w.watch(fd, Interest::read);
    old_pair.close_a();
    ASSERT_EQ(::dup3(new_pair.a, fd, O_CLOEXEC), fd);
    new_pair.send_b();  // the new file is readable and writable
    for (Interest interest : {Interest::read, Interest::read | Interest::write}) {
        try {
            w.modify(fd, interest, 5);
            ADD_FAILURE() << "modify of a reused number succeeded, interest " << unsigned(interest);
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory) << e.what();
        }
    }
    EXPECT_TRUE(wait_events(w, 20ms).empty());
    w.unwatch(fd);
    ::close(fd);
}

}  // namespace
}  // namespace iowait::test
