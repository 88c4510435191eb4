// Rules K1-K4 of docs/behaviour.md: a child process as a source, on every
// backend; `Conformance/ProcessSource/without_pidfd` runs them once more on
// the SIGCHLD fallback (IOWAIT_NO_PIDFD=1). On Windows the child is
// iowait_test_child.exe (child_windows.cpp), built beside this program.
#ifdef _WIN32
#include <winsock2.h>
// after winsock2.h, which it would otherwise contradict
#include <windows.h>
#else
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#endif
#ifdef __linux__
#include <sys/syscall.h>
#endif

#include <atomic>
#include <memory>
#include <thread>

#include "helpers.hpp"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif

namespace iowait::test {
namespace {

using ProcessSource = ConformanceTest;
IOWAIT_CONFORMANCE(ProcessSource);

// A child that exits with `status` once let_exit() is called (or at once,
// with go_now): the test decides when it exits. reap() waits for it and
// returns its exit status, as the caller of iowait would read it.
#ifdef _WIN32
struct child {
    HANDLE gate = nullptr;
    PROCESS_INFORMATION pi{};
    std::int64_t pid = -1;
    explicit child(int status, bool go_now = false) {
        static std::atomic<int> made{0};
        const std::string event =
            "iowait-test-" + std::to_string(::GetCurrentProcessId()) + "-" + std::to_string(made++);
        if (!go_now && !(gate = ::CreateEventA(nullptr, TRUE, FALSE, event.c_str()))) return;
        char self[MAX_PATH];
        const DWORD n = ::GetModuleFileNameA(nullptr, self, MAX_PATH);
        std::string exe(self, n);
        exe = exe.substr(0, exe.find_last_of("\\/") + 1) + "iowait_test_child.exe";
        std::string cmd = "\"" + exe + "\" " + std::to_string(status) + (go_now ? "" : " " + event);
        STARTUPINFOA si{};
        si.cb = sizeof si;
        // No handle inherited: the child keeps none of the tests' sockets open.
        if (!::CreateProcessA(exe.c_str(), cmd.data(), nullptr, nullptr, FALSE, 0, nullptr, nullptr, &si, &pi)) {
            ADD_FAILURE() << "CreateProcess(" << exe << "): error " << ::GetLastError();
            return;
        }
        ::CloseHandle(pi.hThread);
        pid = std::int64_t(pi.dwProcessId);
    }
    void let_exit() const { ::SetEvent(gate); }
    bool wait_exited() const { return ::WaitForSingleObject(pi.hProcess, 5000) == WAIT_OBJECT_0; }
    int reap() const {
        DWORD code = 0;
        return wait_exited() && ::GetExitCodeProcess(pi.hProcess, &code) ? int(code) : -1;
    }
    ~child() {
        if (gate) {
            ::SetEvent(gate);
            ::CloseHandle(gate);
        }
        if (pi.hProcess) {
            ::WaitForSingleObject(pi.hProcess, 5000);
            ::CloseHandle(pi.hProcess);
        }
    }
};
#else
struct child {
    int gate[2] = {-1, -1};
    pid_t pid = -1;
    explicit child(int status, bool go_now = false) {
        if (::pipe(gate) != 0) return;
        pid = ::fork();
        if (pid == 0) {
            ::close(gate[1]);  // so that the parent's close() alone ends the read: a failed test leaves no child
            char c;
            if (!go_now) [[maybe_unused]]
                auto n = ::read(gate[0], &c, 1);
            ::_exit(status);
        }
        ::close(gate[0]);
    }
    void let_exit() const { [[maybe_unused]] auto n = ::write(gate[1], "x", 1); }
    // Until it is a zombie, without reaping it.
    bool wait_exited() const {
        for (int i = 0; i < 2500; ++i) {
            siginfo_t info{};
            if (::waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid != 0) return true;
            std::this_thread::sleep_for(2ms);
        }
        return false;
    }
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
    child c(7);
    ASSERT_GT(c.pid, 0);
    const fd_t id = w.watch_process(c.pid, 11);
    EXPECT_LT(std::intptr_t(id), -1) << "a source's id is no fd";
    EXPECT_TRUE(wait_events(w, 20ms).empty()) << "still running";
    c.let_exit();
    const Event e = expect_event(w, id);
    EXPECT_TRUE(e.read);
    EXPECT_EQ(e.data, 11u);
    EXPECT_TRUE(wait_events(w, 20ms).empty()) << "reported once";
    EXPECT_EQ(c.reap(), 7) << "not reaped by iowait: the caller reads its status";
    EXPECT_TRUE(wait_events(w).empty()) << "and reaping it reports nothing more";
    w.unwatch(id);
}

TEST_P(ProcessSource, ExitEndsAWaitWithoutTimeoutAndAnExitBeforeTheWatchIsReported) {
    child c(0);
    const fd_t id = w.watch_process(c.pid, 1);
    std::thread t([&] {
        EXPECT_TRUE(await_wait_in_progress(w)) << "the wait was never seen in progress";
        c.let_exit();
    });
    const auto start = std::chrono::steady_clock::now();
    const auto span = wait_retrying(w);  // no timeout: only the exit ends it
    t.join();
    ASSERT_EQ(span.size(), 1u);
    EXPECT_EQ(span[0].fd, id);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    w.unwatch(id);
    EXPECT_EQ(c.reap(), 0);

    child gone(3, true);
    ASSERT_TRUE(gone.wait_exited());  // a zombie; on Windows, its handle still open
    const fd_t late = w.watch_process(gone.pid, 2);
    EXPECT_EQ(expect_event(w, late).data, 2u) << "exited before the watch";
    w.unwatch(late);
    EXPECT_EQ(gone.reap(), 3);
}

TEST_P(ProcessSource, ModifyRearmsAndUnwatchStops) {
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
}

// N5/N6: once unwatch() has returned, nothing of the watch is reported, even
// when the exit and the unwatch() meet (on Windows: the thread pool's callback
// and UnregisterWaitEx).
TEST_P(ProcessSource, UnwatchAsTheChildExitsReportsNothingAfterIt) {
    for (int i = 0; i < 5; ++i) {
        child c(0, true);
        const fd_t id = w.watch_process(c.pid, 1);
        w.unwatch(id);
        ASSERT_TRUE(c.wait_exited());
        EXPECT_TRUE(wait_events(w, 5ms).empty()) << "round " << i;
        EXPECT_EQ(c.reap(), 0);
    }
}

#ifndef _WIN32
bool running_on_valgrind() {
#ifdef RUNNING_ON_VALGRIND
    return RUNNING_ON_VALGRIND != 0;
#else
    return false;
#endif
}
#endif

// A child that had exited is reported by the next wait; unwatched before
// that wait, it leaves the wait nothing to do: it sleeps its whole timeout.
TEST_P(ProcessSource, ExitedChildUnwatchedBeforeAnyWaitLeavesTheWaitAsleep) {
#ifdef _WIN32
    GTEST_SKIP() << "the thread's CPU time is measured with CLOCK_THREAD_CPUTIME_ID (POSIX)";
#else
    const auto cpu_used = [] {
        ::timespec ts{};
        ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
    };
    child c(0, true);
    ASSERT_TRUE(c.wait_exited());
    w.unwatch(w.watch_process(c.pid, 1));
    const auto cpu_before = cpu_used();
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(wait_events(w, 300ms).empty());
    EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
    // One sleeping kernel wait costs microseconds; waits of zero again and
    // again cost milliseconds even on a loaded machine that preempts them
    // (valgrind's own scheduling costs milliseconds too).
    const auto bound = running_on_valgrind() ? 100ms : 5ms;
    EXPECT_LT(cpu_used() - cpu_before, bound) << "the wait spun instead of sleeping";
    EXPECT_EQ(c.reap(), 0);
#endif
}

// Exits close together: each watch is reported once, with its own data, even
// when they wake the IOWait through one waker (Windows, the SIGCHLD fallback).
TEST_P(ProcessSource, ManyChildrenExitingTogetherAreEachReportedOnce) {
    constexpr int n = 6;
    std::vector<std::unique_ptr<child>> children;
    std::vector<fd_t> ids;
    for (int i = 0; i < n; ++i) {
        children.push_back(std::make_unique<child>(i));
        ASSERT_GT(children.back()->pid, 0);
        ids.push_back(w.watch_process(children.back()->pid, std::uint64_t(100 + i)));
    }
    for (auto& c : children) c->let_exit();
    std::vector<int> seen(n, 0);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::count(seen.begin(), seen.end(), 1) < n && std::chrono::steady_clock::now() < deadline)
        for (const Event& e : wait_events(w, 50ms)) {
            const auto i = std::find(ids.begin(), ids.end(), e.fd) - ids.begin();
            ASSERT_LT(i, n) << "an event for no watch";
            EXPECT_EQ(e.data, std::uint64_t(100 + i));
            ++seen[std::size_t(i)];
        }
    EXPECT_TRUE(wait_events(w, 20ms).empty()) << "each once";
    for (int i = 0; i < n; ++i) {
        EXPECT_EQ(seen[std::size_t(i)], 1) << "child " << i;
        w.unwatch(ids[std::size_t(i)]);
        EXPECT_EQ(children[std::size_t(i)]->reap(), i);
    }
}

// K1 whatever the backend does with its kernel set: epoll and io_uring
// rebuild theirs to drop a closed fd's stale entry (C4), and the pidfd
// (or, without pidfd, the SIGCHLD waker) must be in the new set too.
TEST_P(ProcessSource, StillReportedAfterTheBackendRebuiltItsKernelSet) {
    IOWAIT_SKIP_ON_WINDOWS("the rebuild is made by a dup() of a socket to a chosen number, which Windows has not (W3)");
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
    IOWAIT_SKIP_ON_WINDOWS("no SIGCHLD on Windows: the thread pool waits for the process (K4)");
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

// select cannot watch a pidfd at or above FD_SETSIZE: the child is watched
// without one (SIGCHLD and waitid), and behaves the same.
TEST_P(ProcessSource, ExitReportedWhateverFdNumbersTheProgramHasOpen) {
#ifdef _WIN32
    GTEST_SKIP() << "Windows: process handles, no fd numbers below FD_SETSIZE to take";
#else
    child c(3);
    ASSERT_GT(c.pid, 0);
    const fds_taken_below taken(1100);
    if (!taken.ok()) GTEST_SKIP() << "RLIMIT_NOFILE lets this process open fewer than 1100 fds";
    const fd_t id = w.watch_process(c.pid, 4);
    EXPECT_TRUE(wait_events(w, 20ms).empty()) << "still running";
    c.let_exit();
    const Event e = expect_event(w, id);
    EXPECT_EQ(e.data, 4u);
    EXPECT_TRUE(wait_events(w, 20ms).empty()) << "reported once";
    EXPECT_EQ(c.reap(), 3) << "not reaped by iowait";
    w.unwatch(id);
#endif
}

TEST_P(ProcessSource, ErrorsNameTheProcessAndChangeNothing) {
    const std::string b(to_string(GetParam()));
    // POSIX: init is never our child (ECHILD). Windows: ids are multiples of
    // 4, so 1 names no process (ESRCH); any process the caller may open can
    // be watched there, a child or not.
    const auto refused = on_windows ? std::errc::no_such_process : std::errc::no_child_process;
    try {
        w.watch_process(1, 0);
        ADD_FAILURE() << "no error";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), refused);
        EXPECT_EQ(std::string(e.what()),
                  "iowait: watch_process(pid=1) on " + b + ": " + std::generic_category().message(int(refused)));
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
#ifndef _WIN32
    // Windows has no reaping; an id whose last handle is closed may name the
    // next process at once (Wine reuses ids), so there is no portable twin.
    child reaped(0, true);
    EXPECT_EQ(reaped.reap(), 0);
    w.watch_process(reaped.pid, 0, ec);
    EXPECT_EQ(ec, std::errc::no_child_process) << "already reaped";
#endif
}

}  // namespace
}  // namespace iowait::test
