// Rules K1-K4 of docs/behaviour.md: a child process as a source, on every
// backend; `Conformance/ProcessSource/without_pidfd` runs them once more on
// the SIGCHLD fallback (IOWAIT_NO_PIDFD=1).
#ifndef _WIN32
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#endif
#ifdef __linux__
#include <sys/syscall.h>
#endif

#include <thread>

#include "helpers.hpp"

namespace iowait::test {
namespace {

using ProcessSource = ConformanceTest;
IOWAIT_CONFORMANCE(ProcessSource);

#ifndef _WIN32
// A child that exits with `status` once it can read a byte from the pipe
// (or at once, with go_now): the test decides when it exits.
struct child {
    int gate[2] = {-1, -1};
    pid_t pid = -1;
    explicit child(int status, bool go_now = false) {
        if (::pipe(gate) != 0) return;
        pid = ::fork();
        if (pid == 0) {
            char c;
            if (!go_now) [[maybe_unused]]
                auto n = ::read(gate[0], &c, 1);
            ::_exit(status);
        }
        ::close(gate[0]);
    }
    void let_exit() const { [[maybe_unused]] auto n = ::write(gate[1], "x", 1); }
    int reap() const {
        int status = -1;
        return ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    ~child() {
        ::close(gate[1]);
        if (pid > 0) ::waitpid(pid, nullptr, WNOHANG);
    }
};
#endif

TEST_P(ProcessSource, ChildExitIsReportedOnceAndTheCallerReapsIt) {
#ifdef _WIN32
    std::error_code ec;
    w.watch_process(4, 0, ec);
    EXPECT_EQ(ec, errc::unsupported_source) << "K4: not on Windows yet";
#else
    child c(7);
    ASSERT_GT(c.pid, 0);
    const fd_t id = w.watch_process(c.pid, 11);
    EXPECT_LT(std::intptr_t(id), -1);
    EXPECT_TRUE(wait_events(w, 20ms).empty()) << "still running";
    c.let_exit();
    const Event e = expect_event(w, id);
    EXPECT_TRUE(e.read);
    EXPECT_EQ(e.data, 11u);
    EXPECT_TRUE(wait_events(w, 20ms).empty()) << "reported once";
    EXPECT_EQ(c.reap(), 7) << "not reaped by iowait: the caller reads its status";
    EXPECT_TRUE(wait_events(w).empty()) << "and reaping it reports nothing more";
    w.unwatch(id);
#endif
}

TEST_P(ProcessSource, ExitEndsAWaitWithoutTimeoutAndAnExitBeforeTheWatchIsReported) {
    IOWAIT_SKIP_ON_WINDOWS("no process sources on Windows yet (K4)");
#ifndef _WIN32
    child c(0);
    const fd_t id = w.watch_process(c.pid, 1);
    std::thread t([&] {
        std::this_thread::sleep_for(30ms);
        c.let_exit();
    });
    const auto start = std::chrono::steady_clock::now();
    auto span = w.wait();  // no timeout: only the exit ends it
    t.join();
    ASSERT_EQ(span.size(), 1u);
    EXPECT_EQ(span[0].fd, id);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    w.unwatch(id);
    EXPECT_EQ(c.reap(), 0);

    child gone(3, true);
    for (int i = 0; i < 500; ++i) {  // until it is a zombie
        siginfo_t info{};
        if (::waitid(P_PID, id_t(gone.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid != 0) break;
        std::this_thread::sleep_for(2ms);
    }
    const fd_t late = w.watch_process(gone.pid, 2);
    EXPECT_EQ(expect_event(w, late).data, 2u) << "exited before the watch";
    w.unwatch(late);
    EXPECT_EQ(gone.reap(), 3);
#endif
}

TEST_P(ProcessSource, ModifyRearmsAndUnwatchStops) {
    IOWAIT_SKIP_ON_WINDOWS("no process sources on Windows yet (K4)");
#ifndef _WIN32
    child c(0, true);
    const fd_t id = w.watch_process(c.pid, 1);
    EXPECT_EQ(expect_event(w, id).data, 1u);
    EXPECT_TRUE(wait_events(w, 10ms).empty());
    w.modify(id, Interest::read, 2, Mode::oneshot);
    EXPECT_EQ(expect_event(w, id).data, 2u) << "re-armed: an exited child is reported once more";
    w.modify(id, Interest::read, 3, Mode::oneshot);
    w.unwatch(id);
    EXPECT_TRUE(wait_events(w, 10ms).empty()) << "unwatched";
    EXPECT_EQ(c.reap(), 0);
#endif
}

// K1 whatever the backend does with its kernel set: epoll and io_uring
// rebuild theirs to drop a closed fd's stale entry (C4), and the pidfd
// (or, without pidfd, the SIGCHLD waker) must be in the new set too.
TEST_P(ProcessSource, StillReportedAfterTheBackendRebuiltItsKernelSet) {
    IOWAIT_SKIP_ON_WINDOWS("no process sources on Windows yet (K4)");
#ifndef _WIN32
    child c(0);
    ASSERT_GT(c.pid, 0);
    const fd_t id = w.watch_process(c.pid, 9);
    rebuild_kernel_set(w);
    c.let_exit();
    EXPECT_EQ(expect_event(w, id).data, 9u);
    EXPECT_EQ(c.reap(), 0);
    w.unwatch(id);
#endif
}

// K3: where the kernel watches the child itself (a pidfd; kqueue's
// EVFILT_PROC, also on libkqueue with IOWAIT_NO_PIDFD set) iowait installs
// no SIGCHLD handler; only the fallback does.
TEST_P(ProcessSource, SIGCHLDStaysTheProgramsWhereTheKernelWatchesTheChild) {
    IOWAIT_SKIP_ON_WINDOWS("no process sources on Windows yet (K4)");
#ifndef _WIN32
    bool kernel_watches = GetParam() == Backend::kqueue;
#if defined(__linux__) && defined(SYS_pidfd_open)
    if (!kernel_watches && !std::getenv("IOWAIT_NO_PIDFD")) {
        const long fd = ::syscall(SYS_pidfd_open, ::getpid(), 0u);
        kernel_watches = fd >= 0;
        if (fd >= 0) ::close(int(fd));
    }
#endif
    struct sigaction before {};
    ASSERT_EQ(::sigaction(SIGCHLD, nullptr, &before), 0);
    child c(0);
    const fd_t id = w.watch_process(c.pid, 1);
    struct sigaction during {};
    ASSERT_EQ(::sigaction(SIGCHLD, nullptr, &during), 0);
    if (kernel_watches)
        EXPECT_EQ(during.sa_handler, before.sa_handler) << "the kernel reports the exit: SIGCHLD is the program's";
    else
        EXPECT_NE(during.sa_handler, before.sa_handler) << "the fallback: SIGCHLD marks the sources for waitid()";
    c.let_exit();
    EXPECT_EQ(expect_event(w, id).data, 1u);
    w.unwatch(id);
    EXPECT_EQ(c.reap(), 0);
#endif
}

TEST_P(ProcessSource, ErrorsNameTheProcessAndChangeNothing) {
    IOWAIT_SKIP_ON_WINDOWS("no process sources on Windows yet (K4)");
#ifndef _WIN32
    const std::string b(to_string(GetParam()));
    try {
        w.watch_process(1, 0);  // init: never our child
        ADD_FAILURE() << "no error";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::no_child_process);
        EXPECT_EQ(std::string(e.what()),
                  "iowait: watch_process(pid=1) on " + b + ": " + std::generic_category().message(ECHILD));
    }
    std::error_code ec;
    for (std::int64_t bad : {0LL, -5LL, 1LL << 40}) {
        EXPECT_EQ(w.watch_process(bad, 0, ec), no_fd);
        EXPECT_EQ(ec, std::errc::invalid_argument) << "pid " << bad;
    }
    child c(0);
    const fd_t id = w.watch_process(c.pid, 1);
    w.watch_process(c.pid, 0, ec);
    EXPECT_EQ(ec, errc::already_watched);
    w.modify(id, Interest::read, 5, Mode::level, ec);
    EXPECT_EQ(ec, errc::unsupported_mode) << "oneshot only: an exit happens once";
    c.let_exit();
    EXPECT_EQ(expect_event(w, id).data, 1u) << "the failed calls changed nothing";
    w.unwatch(id);
    EXPECT_EQ(c.reap(), 0);
    child reaped(0, true);
    EXPECT_EQ(reaped.reap(), 0);
    w.watch_process(reaped.pid, 0, ec);
    EXPECT_EQ(ec, std::errc::no_child_process) << "already reaped";
#endif
}

}  // namespace
}  // namespace iowait::test
