// Bugs found by the differential fuzzer (fuzz/), each kept as the smallest
// sequence that showed it, on every backend.
#include "helpers.hpp"

namespace iowait::test {
namespace {

using Regressions = ConformanceTest;
IOWAIT_CONFORMANCE(Regressions);

// select: a watched fd closed without unwatch() made pselect() fail with
// EBADF, and the backend reported only the closed fd, so a wait(0) returned
// empty although another watched fd was writable (R2, C1). Fuzzer input
// AAAAAAAAAA8BD/8o (base64).
TEST_P(Regressions, WaitZeroStillReportsReadyFdsWhenAnotherWatchedFdWasClosed) {
    socket_pair closed, ready;
    w.watch(closed.a, Interest::read);
    w.watch(ready.a, Interest::write, 7);
    closed.close_a();
    auto events = wait_events(w, 0ns);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].fd, ready.a);
    EXPECT_TRUE(events[0].write);
    EXPECT_EQ(events[0].data, 7u);
}

// poll, select: once a wait() had seen that a watched number was closed and
// reused, modify() answered EBADF, where epoll (and these backends before any
// wait) answered ENOENT (C2). Fuzzer input JAAA/QoIrQAAmQEAAGQ= (base64).
TEST_P(Regressions, ModifyOfAReusedNumberIsENOENTAlsoAfterAWaitSawIt) {
    socket_pair old_pair, new_pair;
    const int fd = old_pair.a;
    w.watch(fd, Interest::write, 1, Mode::oneshot);
    old_pair.close_a();
    ASSERT_EQ(::dup3(new_pair.a, fd, O_CLOEXEC), fd);  // writable, like the old file
    EXPECT_TRUE(wait_events(w, 0ns).empty()) << "C3";
    std::error_code ec;
    w.modify(fd, Interest::read, 0, ec);
    EXPECT_EQ(ec, std::errc::no_such_file_or_directory) << ec.message();
    w.unwatch(fd);
    ::close(fd);
}

// io_uring: the kernel adds POLLRDHUP to every poll request, so a write-only
// watch of a socket shut down for reading reported a hangup that epoll and
// poll, asked only for POLLOUT, do not (R6). Found by the seed corpus replay
// when the io_uring backend joined the fuzzer.
TEST_P(Regressions, WriteWatchOfASocketShutDownForReadingIsNoHangup) {
    socket_pair p;
    w.watch(p.a, Interest::write, 3, Mode::oneshot);
    ASSERT_EQ(::shutdown(p.a, SHUT_RD), 0);
    auto events = wait_events(w, 0ns);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_TRUE(events[0].write);
    EXPECT_FALSE(events[0].hangup);
}

}  // namespace
}  // namespace iowait::test
