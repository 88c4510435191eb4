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
    // A blocking wait must sleep (no busy loop on the closed fd: the thread's
    // CPU time says so, the wall clock would not) and report nothing.
    expect_sleeps_through(w);
    other.send_b();  // the other watch still works
    auto events = wait_events(w, 1s);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].fd, other.a);
}

TEST_P(ClosedFds, UnwatchAfterCloseSucceeds) {
    socket_pair p;
    const fd_t fd = p.a;
    w.watch(fd, Interest::read);
    p.close_a();
    EXPECT_TRUE(wait_events(w, 5ms).empty());
    EXPECT_NO_THROW(w.unwatch(fd));
}

TEST_P(ClosedFds, UnwatchAfterCloseWithoutAnyWaitSucceeds) {
    socket_pair p;
    const fd_t fd = p.a;
    w.watch(fd, Interest::read | Interest::write);
    p.close_a();
    EXPECT_NO_THROW(w.unwatch(fd));
}

TEST_P(ClosedFds, ModifyAfterCloseIsEBADFAndUnwatchStillWorks) {
    socket_pair p;
    const fd_t fd = p.a;
    w.watch(fd, Interest::read);
    p.close_a();
    EXPECT_TRUE(wait_events(w, 5ms).empty());
    try {
        w.modify(fd, Interest::write);
        ADD_FAILURE() << "modify of a closed fd did not throw";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), not_open) << e.what();  // ENOTSOCK on Windows: see helpers.hpp
    }
    EXPECT_NO_THROW(w.unwatch(fd));
}

// The number is reused by a new, ready file before any wait: the new file's
// readiness is never reported under the old watch, the number stays "watched"
// until unwatch(), and after that the new file can be watched as usual.
TEST_P(ClosedFds, ReusedNumberIsNeverReportedForTheNewFile) {
    IOWAIT_SKIP_ON_WINDOWS("no dup2/dup3: a program cannot give a new socket a chosen handle value");
#ifndef _WIN32
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
#endif
}

// The same, but the reuse happens after a wait has already seen the old fd ready.
TEST_P(ClosedFds, ReusedNumberAfterAnEventIsNotReported) {
    IOWAIT_SKIP_ON_WINDOWS("no dup2/dup3: a program cannot give a new socket a chosen handle value");
#ifndef _WIN32
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
#endif
}

// modify() of a number closed and reused by another file must not start
// watching the new file under the old watch: it fails (ENOENT, as epoll says
// for a file it never saw), and the new file's readiness is not reported.
TEST_P(ClosedFds, ModifyAfterTheNumberIsReusedFailsAndReportsNothing) {
    IOWAIT_SKIP_ON_WINDOWS("no dup2/dup3: a program cannot give a new socket a chosen handle value");
#ifndef _WIN32
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
#endif
}

// The two stale-entry tests below: libkqueue keeps one of its own.
#define skip_libkqueue_stale_entry()                                                                                  \
    if (GetParam() == iowait::Backend::kqueue && IOWAIT_LIBKQUEUE)                                                    \
        GTEST_SKIP() << "libkqueue emulates kqueue over epoll and keeps epoll's stale entry (README, what libkqueue " \
                        "gets wrong); a real kqueue drops a fd's knotes at close()";                                  \
    ;

// C1, C3 with a duplicate: the watched number is closed while a dup() keeps
// its file open (epoll's kernel entry lives on, keyed by the file, out of
// reach of EPOLL_CTL_DEL on the closed number). After unwatch() a wait must
// sleep, not spin on that entry, and the number, given to the file again by
// dup2(), can be watched and is reported.
TEST_P(ClosedFds, ClosedWithADuplicateAliveThenUnwatchedDoesNotSpinAndCanBeWatchedAgain) {
    IOWAIT_SKIP_ON_WINDOWS("no dup/dup2 of sockets to chosen handle values");
#ifndef _WIN32
    skip_libkqueue_stale_entry();
    socket_pair p;
    const int fd = p.a;
    w.watch(fd, Interest::write, 1);  // writable at once: a stale entry would fire on every wait
    const int duplicate = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    ASSERT_GE(duplicate, 0);
    p.close_a();
    w.unwatch(fd);
    expect_sleeps_through(w);
    // The number again, for the same file, for read: watched and reported.
    ASSERT_EQ(::dup3(duplicate, fd, O_CLOEXEC), fd);
    w.watch(fd, Interest::read, 2);
    EXPECT_TRUE(wait_events(w, 0ns).empty());
    p.send_b();
    Event e = expect_event(w, fd);
    EXPECT_TRUE(e.read);
    EXPECT_FALSE(e.write);
    EXPECT_EQ(e.data, 2u);
    // And the duplicate's number too, as a watch of its own.
    w.watch(duplicate, Interest::read, 3);
    auto events = wait_events(w, 1s);
    EXPECT_EQ(events.size(), 2u);
    w.unwatch(fd);
    w.unwatch(duplicate);
    ::close(fd);
    ::close(duplicate);
#endif
}

// C4 again, with no wait between: the number is given back to the file and
// watched at once, while epoll's stale entry for it is still in the set.
TEST_P(ClosedFds, ClosedWithADuplicateAliveThenUnwatchedCanBeWatchedAgainAtOnce) {
    IOWAIT_SKIP_ON_WINDOWS("no dup/dup2 of sockets to chosen handle values");
#ifndef _WIN32
    skip_libkqueue_stale_entry();
    socket_pair p;
    const int fd = p.a;
    w.watch(fd, Interest::write, 1);
    const int duplicate = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    ASSERT_GE(duplicate, 0);
    p.close_a();
    w.unwatch(fd);
    ASSERT_EQ(::dup3(duplicate, fd, O_CLOEXEC), fd);
    w.watch(fd, Interest::read, 2);  // EEXIST from epoll before the fix
    EXPECT_TRUE(wait_events(w, 0ns).empty());
    p.send_b();
    Event e = expect_event(w, fd);
    EXPECT_TRUE(e.read);
    EXPECT_FALSE(e.write);
    EXPECT_EQ(e.data, 2u);
    w.unwatch(fd);
    expect_sleeps_through(w);
    ::close(fd);
    ::close(duplicate);
#endif
}

}  // namespace
}  // namespace iowait::test
