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
#define skip_libkqueue_stale_entry()                                                                                   \
    if (GetParam() == iowait::Backend::kqueue && IOWAIT_LIBKQUEUE)                                                     \
        GTEST_SKIP() << "libkqueue emulates kqueue over epoll and keeps epoll's stale entry (docs/platforms.md, what " \
                        "libkqueue "                                                                                   \
                        "gets wrong); a real kqueue drops a fd's knotes at close()";                                   \
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

#ifndef _WIN32
// Waits of up to 300 ms each, for 300 ms after `fd` was closed with its file
// kept open (and ready) by a duplicate: how often they report fd, and the
// CPU time they took.
struct after_close {
    int reports = 0;
    std::chrono::nanoseconds cpu{};
};
after_close wait_after_close(IOWait& w, int fd) {
    after_close r;
    const auto cpu_before = thread_cpu_time();
    const auto end = std::chrono::steady_clock::now() + 300ms;
    for (auto now = std::chrono::steady_clock::now(); now < end; now = std::chrono::steady_clock::now())
        for (const Event& e : wait_events(w, end - now)) r.reports += e.fd == fd;
    r.cpu = thread_cpu_time() - cpu_before;
    return r;
}

// epoll and io_uring cannot see the close: the waits right after it may
// report the number, until a check made every 256th wait finds it, at the
// second such wait at the latest (C4). Everywhere else, no wait reports it.
int allowed_reports_after_close(Backend b) { return b == Backend::epoll || b == Backend::io_uring ? 2 * 256 : 0; }
#endif

// C1 and C4 while still watched: the watched number is a duplicate, closed
// while the original keeps the file open and ready. The kernel's entry lives
// on (epoll keys it by file and number); the waits must not spin on it, and,
// after the first few on epoll and io_uring, must not report it. Its watch
// stays until unwatch() (C2).
TEST_P(ClosedFds, WatchedDuplicateClosedWhileTheOriginalLivesIsNotReportedForLongAndDoesNotSpin) {
    IOWAIT_SKIP_ON_WINDOWS("no dup of sockets to chosen handle values");
#ifndef _WIN32
    skip_libkqueue_stale_entry();
    socket_pair p, other;
    const int fd = ::fcntl(p.a, F_DUPFD_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    w.watch(fd, Interest::read, 1);
    w.watch(other.a, Interest::read, 2);
    ::close(fd);
    p.send_b();
    const after_close r = wait_after_close(w, fd);
    EXPECT_LE(r.reports, allowed_reports_after_close(GetParam()));
    EXPECT_LT(r.cpu, 50ms) << "the waits spun instead of sleeping";
    const auto cpu_before = thread_cpu_time();
    EXPECT_TRUE(wait_events(w, 50ms).empty());
    EXPECT_LT(thread_cpu_time() - cpu_before, 20ms) << "the wait spun instead of sleeping";
    other.send_b();  // the other watch still works
    Event e = expect_event(w, other.a);
    EXPECT_EQ(e.data, 2u);
    EXPECT_NO_THROW(w.unwatch(fd));
#endif
}

// The same with the roles swapped: the watched number is closed while a
// duplicate keeps the file open.
TEST_P(ClosedFds, WatchedFdClosedWhileADuplicateLivesIsNotReportedForLongAndDoesNotSpin) {
    IOWAIT_SKIP_ON_WINDOWS("no dup of sockets to chosen handle values");
#ifndef _WIN32
    skip_libkqueue_stale_entry();
    socket_pair p;
    const int fd = p.a;
    w.watch(fd, Interest::read | Interest::write, 1);
    const int duplicate = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    ASSERT_GE(duplicate, 0);
    p.close_a();
    p.send_b();
    const after_close r = wait_after_close(w, fd);
    EXPECT_LE(r.reports, allowed_reports_after_close(GetParam()));
    EXPECT_LT(r.cpu, 50ms) << "the waits spun instead of sleeping";
    try {
        w.modify(fd, Interest::read);
        ADD_FAILURE() << "modify of a closed fd did not throw";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::bad_file_descriptor) << e.what();
    }
    EXPECT_NO_THROW(w.unwatch(fd));
    ::close(duplicate);
#endif
}

// C3 with a duplicate alive: the closed number is given to another, idle
// file while the watched one stays open and ready. The new file is never
// reported; the old one's entry stops being reported as above.
TEST_P(ClosedFds, ReusedNumberWhileADuplicateKeepsTheOldFileReadyIsNotReportedForLong) {
    IOWAIT_SKIP_ON_WINDOWS("no dup2/dup3: a program cannot give a new socket a chosen handle value");
#ifndef _WIN32
    skip_libkqueue_stale_entry();
    socket_pair p, idle;
    const int fd = p.a;
    w.watch(fd, Interest::read, 1);
    const int duplicate = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    ASSERT_GE(duplicate, 0);
    p.close_a();
    ASSERT_EQ(::dup3(idle.a, fd, O_CLOEXEC), fd);
    p.send_b();  // the old file, open through the duplicate, is readable
    const after_close r = wait_after_close(w, fd);
    EXPECT_LE(r.reports, allowed_reports_after_close(GetParam()));
    EXPECT_LT(r.cpu, 50ms) << "the waits spun instead of sleeping";
    w.unwatch(fd);
    w.watch(fd, Interest::read, 3);  // the new file, idle
    EXPECT_TRUE(wait_events(w, 20ms).empty());
    idle.send_b();
    Event e = expect_event(w, fd);
    EXPECT_EQ(e.data, 3u);
    w.unwatch(fd);
    ::close(fd);
    ::close(duplicate);
#endif
}

}  // namespace
}  // namespace iowait::test
