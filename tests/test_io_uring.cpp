// The io_uring backend: its refusal and the fallback (simulated with
// IOWAIT_IO_URING_SETUP_FAIL), which of its two wait paths runs
// (IORING_OP_EPOLL_WAIT, or a poll of the epoll set then epoll_wait), and
// regressions for the ways a ring could differ from epoll (a request owned
// by the thread that submitted it, a request that outlives its wait, a file
// held open by a request, several completions for one fd). Those run on
// every backend, as the conformance suite does: the behaviour they check
// is everyone's.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <csignal>
#include <thread>

#include "helpers.hpp"

namespace iowait::test {
namespace {

bool io_uring_available() {
    auto b = IOWait::available_backends();
    return std::find(b.begin(), b.end(), Backend::io_uring) != b.end();
}

// Why IOWait{Backend::io_uring} is refused here, for a skip message.
std::string io_uring_refusal() {
    try {
        IOWait w{Backend::io_uring};
    } catch (const std::exception& e) {
        return e.what();
    }
    return "(accepted)";
}

struct setenv_guard {
    const char* name;
    setenv_guard(const char* n, const char* value) : name(n) { ::setenv(n, value, 1); }
    ~setenv_guard() { ::unsetenv(name); }
};

TEST(IoUringSetup, AvailableOnThisKernelOrSkippedWithTheReason) {
    if (!io_uring_available()) GTEST_SKIP() << "io_uring unavailable here: " << io_uring_refusal();
    IOWait w{Backend::io_uring};
    EXPECT_EQ(w.backend(), Backend::io_uring);
    EXPECT_TRUE(w.supports(Mode::edge));
}

// The kernel refuses the ring (io_uring_disabled=2, or a seccomp filter):
// automatic choice goes on silently, a request by name says why.
void expect_refused_cleanly(const char* simulated, const char* reason_words) {
    if (!io_uring_available()) GTEST_SKIP() << "io_uring unavailable here: " << io_uring_refusal();
    setenv_guard fail("IOWAIT_IO_URING_SETUP_FAIL", simulated);
    auto available = IOWait::available_backends();
    EXPECT_EQ(std::find(available.begin(), available.end(), Backend::io_uring), available.end());
    ASSERT_FALSE(available.empty());

    IOWait automatic;  // no exception: falls back
    EXPECT_NE(automatic.backend(), Backend::io_uring);
    EXPECT_EQ(automatic.backend(), available.front());
    socket_pair p;
    automatic.watch(p.a, Interest::read);
    p.send_b();
    EXPECT_TRUE(expect_event(automatic, p.a).read) << "the fallback backend works";

    try {
        IOWait named{Backend::io_uring};
        ADD_FAILURE() << "io_uring created although its setup fails";
    } catch (const usage_error& e) {
        EXPECT_EQ(e.code(), errc::backend_unavailable);
        const std::string what = e.what();
        EXPECT_NE(what.find("io_uring_setup"), std::string::npos) << what;  // which step
        EXPECT_NE(what.find(reason_words), std::string::npos) << what;      // why
        EXPECT_NE(what.find("IOWAIT_IO_URING_SETUP_FAIL"), std::string::npos) << what;
    }

    setenv_guard by_env("IOWAIT_BACKEND", "io_uring");
    try {
        IOWait named;
        ADD_FAILURE() << "IOWAIT_BACKEND=io_uring accepted although its setup fails";
    } catch (const usage_error& e) {
        EXPECT_EQ(e.code(), errc::backend_unavailable);
        const std::string what = e.what();
        EXPECT_NE(what.find("IOWAIT_BACKEND=io_uring"), std::string::npos) << what;
        EXPECT_NE(what.find(reason_words), std::string::npos) << what;
    }
}

TEST(IoUringSetup, RefusedWithEPERMFallsBackSilentlyAndANamedRequestSaysWhy) {
    expect_refused_cleanly("EPERM", "Operation not permitted");
}

TEST(IoUringSetup, MissingWithENOSYSFallsBackSilentlyAndANamedRequestSaysWhy) {
    expect_refused_cleanly("ENOSYS", "no io_uring");
}

#if defined(__x86_64__)
constexpr std::uint32_t audit_arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr std::uint32_t audit_arch = AUDIT_ARCH_AARCH64;
#else
constexpr std::uint32_t audit_arch = 0;  // the seccomp filter below knows no other architecture
#endif

// In a child process where epoll_wait and epoll_pwait fail with
// ENOTRECOVERABLE, creates an io_uring IOWait and waits (blocking) for a
// ready socket. Exit status: 0 the event came, 1 the wait failed with
// ENOTRECOVERABLE (it called epoll_wait), 2 anything else.
int blocking_wait_without_epoll_wait_syscalls(bool force_poll_path) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        if (force_poll_path) ::setenv("IOWAIT_IO_URING_NO_EPOLL_WAIT", "1", 1);
        IOWait w{Backend::io_uring};
        socket_pair p;
        w.watch(p.a, Interest::read);
        p.send_b();
        std::vector<sock_filter> filter = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, audit_arch, 1, 0),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        };
        for (long nr : {
#ifdef SYS_epoll_wait
                 long(SYS_epoll_wait),
#endif
                 long(SYS_epoll_pwait), long(SYS_epoll_pwait2)}) {
            filter.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, std::uint32_t(nr), 0, 1));
            filter.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOTRECOVERABLE));
        }
        filter.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
        sock_fprog prog{static_cast<unsigned short>(filter.size()), filter.data()};
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
            ::_exit(3);
        std::error_code ec;
        auto events = w.wait(std::chrono::seconds(5), ec);
        ::_exit(ec == std::errc::state_not_recoverable ? 1 : !ec && events.size() == 1 && events[0].read ? 0 : 2);
    }
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

// Whether this kernel supports IORING_OP_EPOLL_WAIT (Linux 6.15; opcode 59,
// newer than Debian 12's headers), asked of the kernel here, with a ring of
// the test's own and IORING_REGISTER_PROBE, apart from the backend's choice.
// -1: the kernel cannot say (no ring, or no probe: Linux before 5.6).
int kernel_has_epoll_wait_op() {
    constexpr unsigned op_epoll_wait = 59, max_ops = 256;
    io_uring_params params{};
    const int ring = int(::syscall(SYS_io_uring_setup, 1, &params));
    if (ring < 0) return -1;
    std::vector<unsigned char> buf(sizeof(io_uring_probe) + max_ops * sizeof(io_uring_probe_op));
    auto* probe = reinterpret_cast<io_uring_probe*>(buf.data());
    const long probed = ::syscall(SYS_io_uring_register, ring, IORING_REGISTER_PROBE, probe, max_ops);
    ::close(ring);
    if (probed != 0) return -1;
    return op_epoll_wait <= probe->last_op && op_epoll_wait < probe->ops_len &&
           (probe->ops[op_epoll_wait].flags & IO_URING_OP_SUPPORTED);
}

// Linux 6.15+: the blocking wait is one IORING_OP_EPOLL_WAIT, no epoll_wait
// call. Whether the kernel has the opcode is asked of the kernel, not read
// from the path the backend took: a backend that falls back where it need
// not fails here.
TEST(IoUringWaitPath, EpollWaitThroughTheRingWhereTheKernelHasIt) {
    if (!io_uring_available()) GTEST_SKIP() << "io_uring unavailable here: " << io_uring_refusal();
    if (!audit_arch) GTEST_SKIP() << "the seccomp filter of this test knows only x86-64 and aarch64";
    if (std::getenv("IOWAIT_IO_URING_NO_EPOLL_WAIT"))
        GTEST_SKIP() << "IOWAIT_IO_URING_NO_EPOLL_WAIT is set: the poll path is forced";
    const int has_op = kernel_has_epoll_wait_op();
    if (has_op < 0) GTEST_SKIP() << "this kernel cannot say which io_uring opcodes it has (IORING_REGISTER_PROBE)";
    if (has_op == 0)
        GTEST_SKIP() << "this kernel has no IORING_OP_EPOLL_WAIT (Linux 6.15), by IORING_REGISTER_PROBE: the "
                        "backend polls the epoll set (IoUringWaitPath.TheEnvironmentForcesThePollPathOfOlderKernels)";
    EXPECT_EQ(blocking_wait_without_epoll_wait_syscalls(false), 0)
        << "this kernel has IORING_OP_EPOLL_WAIT, yet (1:) the blocking wait called epoll_wait, or (3:) seccomp "
           "refused, (2:) the wait failed otherwise, (-1:) the child died";
}

// IOWAIT_IO_URING_NO_EPOLL_WAIT=1 forces the path of older kernels: a poll
// of the epoll set through the ring, then epoll_wait(0).
TEST(IoUringWaitPath, TheEnvironmentForcesThePollPathOfOlderKernels) {
    if (!io_uring_available()) GTEST_SKIP() << "io_uring unavailable here: " << io_uring_refusal();
    if (!audit_arch) GTEST_SKIP() << "the seccomp filter of this test knows only x86-64 and aarch64";
    EXPECT_EQ(blocking_wait_without_epoll_wait_syscalls(true), 1)
        << "the forced poll path did not call epoll_wait (0: it did not take the poll path, 3: seccomp "
           "refused, 2: the wait failed otherwise, -1: the child died)";
}

using RingQuirks = ConformanceTest;
IOWAIT_CONFORMANCE(RingQuirks);

// io_uring cancels a thread's requests when the thread exits: watches armed
// by a waiter that is gone must still be reported to the next waiter.
TEST_P(RingQuirks, WatchesOutliveTheThreadThatWaitedOnThem) {
    socket_pair p, q;
    w.watch(p.a, Interest::read, 1);
    w.watch(q.a, Interest::read, 2, w.supports(Mode::edge) ? Mode::edge : Mode::level);
    std::thread([&] { EXPECT_TRUE(wait_events(w, 5ms).empty()); }).join();  // arms, then exits
    p.send_b();
    q.send_b();
    std::vector<Event> events;
    for (int i = 0; i < 20 && events.size() < 2; ++i)
        for (const Event& e : wait_events(w, 100ms))
            if (!find_event(events, e.fd)) events.push_back(e);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_TRUE(find_event(events, p.a) && find_event(events, q.a));
}

// A fd closed after a wait has looked at it: nothing is reported for the
// closed number (C1), and waits do not spin. (The first io_uring backend's
// poll requests held such a file open.)
TEST_P(RingQuirks, ClosedWhileArmedIsNotReportedWhenThePeerWrites) {
    socket_pair p;
    const int fd = p.a;
    w.watch(fd, Interest::read);
    EXPECT_TRUE(wait_events(w, 0ns).empty());  // armed now
    p.close_a();
    ::send(p.b, "x", 1, MSG_NOSIGNAL);  // may fail (EPIPE) where the close released the socket
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(wait_events(w, 30ms).empty());
    EXPECT_TRUE(wait_events(w, 30ms).empty());
    EXPECT_GE(std::chrono::steady_clock::now() - start, 60ms);
    EXPECT_NO_THROW(w.unwatch(fd));
}

// "unwatch, then close" must release the file at the close, as with epoll:
// the peer sees the end of the stream at once, without another wait().
TEST_P(RingQuirks, UnwatchThenCloseReleasesTheFileAtOnce) {
    socket_pair p;
    w.watch(p.a, Interest::read);
    EXPECT_TRUE(wait_events(w, 0ns).empty());  // armed now
    w.unwatch(p.a);
    p.close_a();
    char c;
    EXPECT_EQ(::recv(p.b, &c, 1, 0), 0) << "the peer does not see EOF: the file is still open";
}

// The same while another thread sleeps in wait(): unwatch() must not wait
// for that thread, and the file must be released soon after the close
// (poll's and select's sleeping waiter lets go of it when it runs, without
// needing another wait()).
TEST_P(RingQuirks, UnwatchFromAnotherThreadDuringAWaitReleasesTheFile) {
    socket_pair p, other;
    w.watch(p.a, Interest::read);
    w.watch(other.a, Interest::read);
    std::thread waiter([&] {
        auto events = wait_events(w, 5s);  // woken by other's data below
        EXPECT_EQ(events.size(), 1u);
    });
    std::this_thread::sleep_for(30ms);  // let the waiter arm and sleep
    const auto start = std::chrono::steady_clock::now();
    w.unwatch(p.a);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << "unwatch() waited for the waiting thread";
    p.close_a();
    pollfd peer{p.b, POLLIN, 0};
    EXPECT_EQ(::poll(&peer, 1, 2000), 1) << "the peer does not see EOF: the file is still open";
    char c;
    EXPECT_EQ(::recv(p.b, &c, 1, 0), 0);
    other.send_b();
    waiter.join();
}

// A write watch on a socket whose peer shut down its writing side, with a
// full send buffer: not writable, and nothing to report. (io_uring's poll
// requests complete at once on such a socket, asked for EPOLLRDHUP or not.)
// The wait must sleep, not spin, and report the room when it comes.
TEST_P(RingQuirks, WriteWatchOnAHalfClosedSocketDoesNotSpinWhileTheBufferIsFull) {
    socket_pair p;
    ASSERT_EQ(::shutdown(p.b, SHUT_WR), 0);
    fill(p.a);
    w.watch(p.a, Interest::write);
    timespec cpu0{}, cpu1{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
    EXPECT_TRUE(wait_events(w, 100ms).empty());
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
    const double cpu_ms = double(cpu1.tv_sec - cpu0.tv_sec) * 1e3 + double(cpu1.tv_nsec - cpu0.tv_nsec) / 1e6;
    EXPECT_LT(cpu_ms, 10.0) << "a 100 ms wait used " << cpu_ms << " ms of CPU: it spins";
    char buf[1 << 16];
    while (::recv(p.b, buf, sizeof buf, 0) > 0) {
    }
    Event e = expect_event(w, p.a);
    EXPECT_TRUE(e.write);
    EXPECT_FALSE(e.hangup) << "the peer's SHUT_WR is not a hangup for a write watch";
    EXPECT_EQ(wait_events(w, 0ns).size(), 1u) << "level: still writable, reported again";
}

// Many changes before one wait (more than a ring's submission queue of 256
// would hold, were they batched): all applied, each fd reported once.
TEST_P(RingQuirks, ManyChangesBeforeOneWaitAreAllApplied) {
    constexpr int count = 300;
    std::vector<std::unique_ptr<socket_pair>> pairs;
    for (int i = 0; i < count; ++i) {
        pairs.push_back(std::make_unique<socket_pair>());
        if (is(Backend::select) && pairs.back()->b >= FD_SETSIZE) GTEST_SKIP() << "fds beyond FD_SETSIZE";
        w.watch(pairs.back()->a, Interest::read, std::uint64_t(i), Mode::oneshot);
        pairs.back()->send_b();
    }
    for (int round = 0; round < 2; ++round) {
        std::vector<int> seen(count);
        int total = 0;
        for (int waits = 0; total < count && waits < 20; ++waits)
            for (const Event& e : w.wait(1s)) {
                ASSERT_LT(e.data, std::uint64_t(count));
                ASSERT_EQ(e.fd, pairs[e.data]->a) << "event carries another fd's data";
                ++seen[e.data];
                ++total;
            }
        EXPECT_EQ(total, count) << "round " << round;
        EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), count) << "each oneshot fd exactly once";
        EXPECT_TRUE(wait_events(w, 10ms).empty()) << "all disarmed";
        for (int i = 0; i < count; ++i) w.modify(pairs[i]->a, Interest::read, std::uint64_t(i), Mode::oneshot);
    }
}

// Changing a watch back and forth many times must leave exactly one
// watch behind it, with the last interest.
TEST_P(RingQuirks, RepeatedModifyLeavesOneWatchWithTheLastInterest) {
    socket_pair p;
    w.watch(p.a, Interest::read, 0);
    for (int i = 0; i < 100; ++i) {
        w.modify(p.a, i % 2 ? Interest::read : Interest::write, std::uint64_t(i));
        if (i % 10 == 0) wait_events(w, 0ns);  // some changes reach the kernel, some are replaced before
    }
    w.modify(p.a, Interest::read, 1000);
    EXPECT_TRUE(wait_events(w, 10ms).empty()) << "not readable; the write interest is gone";
    p.send_b();
    auto events = wait_events(w, 1s);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_TRUE(events[0].read);
    EXPECT_FALSE(events[0].write);
    EXPECT_EQ(events[0].data, 1000u);
}

// Several wake-ups before one wait are one event (a ring reporting one
// completion per wake-up would have to merge them).
TEST_P(RingQuirks, EdgeWakeupsBeforeAWaitAreOneEvent) {
    if (!w.supports(Mode::edge)) GTEST_SKIP() << to_string(GetParam()) << " refuses edge (M4)";
    socket_pair p;
    w.watch(p.a, Interest::read | Interest::write, 0, Mode::edge);
    EXPECT_EQ(wait_events(w, 1s).size(), 1u);  // writable at once
    for (int i = 0; i < 5; ++i) {
        p.send_b();
        std::this_thread::sleep_for(1ms);  // separate wake-ups
    }
    auto events = wait_events(w, 1s);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_TRUE(events[0].read);
}

// A file with no wait queue (/dev/null) is always ready: an edge watch
// reports it once (M3), and waiting after that does not spin.
TEST_P(RingQuirks, EdgeOnAFileWithoutWaitQueueReportsOnce) {
    if (!w.supports(Mode::edge)) GTEST_SKIP() << to_string(GetParam()) << " refuses edge (M4)";
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    w.watch(fd, Interest::read, 0, Mode::edge);
    EXPECT_EQ(wait_events(w, 1s).size(), 1u);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(wait_events(w, 20ms).empty());
    EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
    w.unwatch(fd);
    ::close(fd);
}

// A wait that times out leaves nothing behind: data that arrives after it
// and is consumed before the next wait begins is not reported by that wait.
// (A ring request left pending by the first wait would complete when the
// data arrives and hand the entry over as it was then.)
TEST_P(RingQuirks, ATimedOutWaitLeavesNoRequestThatReportsConsumedData) {
    socket_pair p;
    w.watch(p.a, Interest::read);
    EXPECT_TRUE(wait_events(w, 5ms).empty());
    p.send_b();
    std::this_thread::sleep_for(5ms);  // time for such a request to complete
    char c;
    ASSERT_EQ(::recv(p.a, &c, 1, 0), 1);
    EXPECT_TRUE(wait_events(w, 0ns).empty()) << "reported data consumed before this wait began";
    EXPECT_TRUE(wait_events(w, 20ms).empty()) << "reported data consumed before this wait began";
    p.send_b();
    EXPECT_TRUE(expect_event(w, p.a).read) << "new data is reported";
}

void on_usr1(int) {}

// The same for a wait that a signal ends (wait_or_signal(): EINTR).
TEST_P(RingQuirks, AWaitEndedByASignalLeavesNoRequestThatReportsConsumedData) {
    socket_pair p;
    w.watch(p.a, Interest::read);
    struct sigaction sa {};
    sa.sa_handler = on_usr1;
    struct sigaction old {};
    ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);
    const pthread_t waiter = ::pthread_self();
    std::thread sender([&] {
        std::this_thread::sleep_for(30ms);
        ::pthread_kill(waiter, SIGUSR1);
    });
    std::error_code ec;
    EXPECT_TRUE(w.wait_or_signal(10s, ec).empty());
    sender.join();
    ::sigaction(SIGUSR1, &old, nullptr);
    EXPECT_EQ(ec, std::errc::interrupted);
    p.send_b();
    std::this_thread::sleep_for(5ms);
    char c;
    ASSERT_EQ(::recv(p.a, &c, 1, 0), 1);
    EXPECT_TRUE(wait_events(w, 0ns).empty()) << "reported data consumed before this wait began";
    EXPECT_TRUE(wait_events(w, 20ms).empty()) << "reported data consumed before this wait began";
}

}  // namespace
}  // namespace iowait::test
