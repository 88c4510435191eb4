// Rules G1-G6 of docs/behaviour.md: a signal as a source, on every backend.
// POSIX: every test uses SIGUSR1 or SIGUSR2, whose default action ends the
// process: a handler that did not replace it would fail the whole program,
// loudly. Windows: SIGINT, i.e. CTRL_C_EVENT sent to a console of the test's
// own, whose default action ends the process just as loudly.
#ifdef _WIN32
#include <winsock2.h>
// after winsock2.h, which it would otherwise contradict
#include <windows.h>
#else
#include <pthread.h>
#endif
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>

#include "helpers.hpp"

namespace iowait::test {
namespace {

using SignalSource = ConformanceTest;
IOWAIT_CONFORMANCE(SignalSource);

std::size_t reports(const std::vector<Event>& events, fd_t id) {
    return std::size_t(std::count_if(events.begin(), events.end(), [id](const Event& e) { return e.fd == id; }));
}

#ifdef _WIN32
// Windows has two signals to give (signal_hub_windows.cpp), and Wine 8
// delivers only CTRL_C_EVENT (GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT)
// fails there with error 6): both names are SIGINT.
constexpr int sig1 = SIGINT, sig2 = SIGINT;

// A console of this process's own, made once: the events then reach no
// other process (not ctest, not a shell), and under ctest, where the program
// has no console, there is one to send them on.
bool own_console() {
    static const bool made = [] {
        ::FreeConsole();
        return ::AllocConsole() != 0;
    }();
    return made;
}

bool generate(int signo) {
    return own_console() && ::GenerateConsoleCtrlEvent(signo == SIGBREAK ? CTRL_BREAK_EVENT : CTRL_C_EVENT, 0);
}

// The system runs console handlers in a thread of its own, later: to know
// that iowait's handler has run to its end, an observer IOWait watches the
// signal too; once the observer has its event, its unwatch() takes the hub's
// lock, which the handler holds until it has written to every IOWait.
void deliver(Backend b, int signo) {
    IOWait observer{b};
    const fd_t id = observer.watch_signal(signo);
    ASSERT_TRUE(generate(signo)) << "GenerateConsoleCtrlEvent: error " << ::GetLastError();
    expect_event(observer, id);
    observer.unwatch(id);
}
#else
constexpr int sig1 = SIGUSR1, sig2 = SIGUSR2;

// raise() runs the handler before it returns.
void deliver(Backend, int signo) { ASSERT_EQ(::raise(signo), 0); }
#endif

// Sends signo to this process from another thread (which the kernel may or
// may not pick to run the handler) and returns once the handler ran.
void deliver_from_another_thread(Backend b, int signo) {
#ifdef _WIN32
    std::thread([b, signo] { deliver(b, signo); }).join();
#else
    (void)b;
    std::thread([signo] { ::kill(::getpid(), signo); }).join();
#endif
}

TEST_P(SignalSource, DeliveredSignalIsReportedWithItsDataAndItsDefaultActionDoesNotRun) {
    const fd_t id = w.watch_signal(sig1, 42);
    EXPECT_LT(std::intptr_t(id), -1) << "a source's id is no fd";
    EXPECT_TRUE(wait_events(w).empty()) << "nothing delivered yet";
#ifdef _WIN32
    // Not deliver(): no other watch may keep the process alive here.
    ASSERT_TRUE(generate(sig1)) << "GenerateConsoleCtrlEvent: error " << ::GetLastError();
#else
    ASSERT_EQ(::raise(sig1), 0);  // would end the process if iowait's handler were not there
#endif
    const Event e = expect_event(w, id);
    EXPECT_TRUE(e.read);
    EXPECT_FALSE(e.write || e.hangup || e.error);
    EXPECT_EQ(e.data, 42u);
    EXPECT_TRUE(wait_events(w, on_windows ? 50ms : 0ms).empty()) << "reported once per delivery";
    w.unwatch(id);
}

TEST_P(SignalSource, DeliveriesBeforeOneWaitAreOneEventAndEachLaterDeliveryIsReported) {
    socket_pair p;
    w.watch(p.a, Interest::read, 1);
    const fd_t id = w.watch_signal(sig2, 2);
    for (int i = 0; i < 3; ++i) deliver(GetParam(), sig2);
    p.send_b();
    auto events = wait_events(w);
    EXPECT_EQ(reports(events, id), 1u) << "three deliveries before a wait are one event";
    EXPECT_NE(find_event(events, p.a), nullptr) << "beside the fd's own event";
    deliver_from_another_thread(GetParam(), sig2);
    EXPECT_EQ(expect_event(w, id).data, 2u) << "level: each later delivery is reported";
    w.unwatch(id);
}

TEST_P(SignalSource, SignalFromAnotherThreadEndsAWaitWithoutTimeout) {
    const fd_t id = w.watch_signal(sig1);
    std::thread sender([&] {
        EXPECT_TRUE(await_wait_in_progress(w)) << "the wait was never seen in progress";
        deliver_from_another_thread(GetParam(), sig1);
    });
    const auto start = std::chrono::steady_clock::now();
    auto events = wait_retrying(w);  // no timeout: only the signal can end it
    sender.join();
    EXPECT_EQ(reports(events, id), 1u);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    w.unwatch(id);
}

TEST_P(SignalSource, OneshotReportsOnceAndModifyRearmsWithWhatCameMeanwhile) {
    const fd_t id = w.watch_signal(sig1, 1, Mode::oneshot);
    deliver(GetParam(), sig1);
    EXPECT_EQ(expect_event(w, id).data, 1u);
    deliver(GetParam(), sig1);
    EXPECT_TRUE(wait_events(w, 20ms).empty()) << "disarmed";
    w.modify(id, Interest::read, 3, Mode::oneshot);
    auto events = wait_events(w);
    ASSERT_EQ(reports(events, id), 1u) << "the delivery while disarmed, once re-armed";
    EXPECT_EQ(find_event(events, id)->data, 3u);
    EXPECT_TRUE(wait_events(w).empty());
    w.unwatch(id);
}

std::atomic<int> own_handler_ran{0};
#ifdef _WIN32
BOOL WINAPI own_handler(DWORD) {
    own_handler_ran.fetch_add(1);
    return TRUE;  // handled: the process goes on
}
#else
void own_handler(int) { own_handler_ran.fetch_add(1); }
#endif

TEST_P(SignalSource, UnwatchRestoresTheEarlierHandlerAndTwoIOWaitsBothReport) {
#ifdef _WIN32
    ASSERT_TRUE(::SetConsoleCtrlHandler(own_handler, TRUE));
#else
    struct sigaction sa {};
    sa.sa_handler = own_handler;
    struct sigaction old {};
    ASSERT_EQ(::sigaction(sig2, &sa, &old), 0);
#endif
    own_handler_ran = 0;
    IOWait other{GetParam()};
    const fd_t a = w.watch_signal(sig2, 1);
    const fd_t b = other.watch_signal(sig2, 2);
    deliver(GetParam(), sig2);
    EXPECT_EQ(own_handler_ran.load(), 0) << "while watched, iowait's handler replaces it";
    EXPECT_EQ(expect_event(w, a).data, 1u);
    EXPECT_EQ(expect_event(other, b).data, 2u);
    w.unwatch(a);
    deliver(GetParam(), sig2);
    EXPECT_TRUE(wait_events(w).empty()) << "unwatched";
    EXPECT_EQ(expect_event(other, b).data, 2u) << "still watched by the other IOWait";
    other.unwatch(b);
#ifdef _WIN32
    ASSERT_TRUE(generate(sig2));
    for (int i = 0; i < 200 && own_handler_ran.load() == 0; ++i) std::this_thread::sleep_for(10ms);
#else
    ::raise(sig2);
#endif
    EXPECT_EQ(own_handler_ran.load(), 1) << "the last unwatch() restores the program's handler";
#ifdef _WIN32
    ::SetConsoleCtrlHandler(own_handler, FALSE);
#else
    ::sigaction(sig2, &old, nullptr);
#endif
}

TEST_P(SignalSource, WatchAndUnwatchFromAnotherThreadReachAWaitInProgress) {
    std::atomic<fd_t> id{no_fd};
    std::atomic<bool> in_progress{false};
    std::thread other([&] {
        in_progress = await_wait_in_progress(w);
        id = w.watch_signal(sig1, 5);
        deliver_from_another_thread(GetParam(), sig1);
    });
    const auto events = wait_retrying(w, 5s);  // the one wait in progress
    other.join();
    EXPECT_TRUE(in_progress) << "the wait was never seen in progress";
    ASSERT_EQ(events.size(), 1u) << "the wait in progress never saw the new watch's signal";
    EXPECT_EQ(events[0].fd, id.load());
    EXPECT_EQ(events[0].data, 5u);
    w.unwatch(id.load());
    // Unwatched from another thread during a wait: its later delivery is not
    // reported (and, the last watch gone, the default action would run: so
    // a keeper watches it before it is sent).
    IOWait keeper{GetParam()};
    const fd_t k = keeper.watch_signal(sig2);
    const fd_t again = w.watch_signal(sig2, 6);
    std::atomic<bool> unwatched{false};
    std::thread unwatcher([&] {
        in_progress = await_wait_in_progress(w);
        w.unwatch(again);
        unwatched = true;
        deliver_from_another_thread(GetParam(), sig2);
    });
    const auto start = std::chrono::steady_clock::now();
    const auto after = wait_retrying(w, 300ms);
    const auto took = std::chrono::steady_clock::now() - start;
    const bool unwatched_during_the_wait = unwatched;
    unwatcher.join();
    EXPECT_TRUE(in_progress) << "the wait was never seen in progress";
    EXPECT_TRUE(unwatched_during_the_wait) << "the wait ended before the unwatch (a loaded machine)";
    EXPECT_TRUE(after.empty()) << "N5/N6: no report once unwatch() returned";
    EXPECT_GE(took, 300ms);
    EXPECT_EQ(expect_event(keeper, k).fd, k) << "the signal was delivered";
    keeper.unwatch(k);
}

// G1 whatever the backend does with its kernel set: epoll and io_uring
// rebuild theirs to drop a closed fd's stale entry (C4), and the signals'
// waker, an fd of the front end's, must be in the new set too.
TEST_P(SignalSource, StillReportedAfterTheBackendRebuiltItsKernelSet) {
    IOWAIT_SKIP_ON_WINDOWS("no POSIX signals (G6)");
#ifndef _WIN32
    const fd_t id = w.watch_signal(SIGUSR1, 8);
    rebuild_kernel_set(w);
    ::raise(SIGUSR1);
    EXPECT_EQ(expect_event(w, id).data, 8u);
    w.unwatch(id);
#endif
}

// A rule of kqueue's alone: run where kqueue is built in, and nowhere else.
std::vector<Backend> kqueue_if_built() {
    const auto all = IOWait::available_backends();
    if (std::find(all.begin(), all.end(), Backend::kqueue) == all.end()) return {};
    return {Backend::kqueue};
}
using KqueueSignalSource = ConformanceTest;
INSTANTIATE_TEST_SUITE_P(Conformance, KqueueSignalSource, testing::ValuesIn(kqueue_if_built()), name_of);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(KqueueSignalSource);

// G7: a kqueue records a signal even where it is blocked in every thread
// (EVFILT_SIGNAL counts the attempts to deliver it), so there the kernel's
// own report can be run alone: no handler runs, only the knote reports.
// Not on macOS, where iowait does not use EVFILT_SIGNAL.
// Under libkqueue this needs IOWAIT_LIBKQUEUE_SIGNALS=1 (its own ctest
// entry): the backend uses libkqueue's EVFILT_SIGNAL only then, since it
// sees nothing else. kill(), not raise(): libkqueue sees no signal sent to
// one thread.
TEST_P(KqueueSignalSource, ReportsASignalBlockedInEveryThread) {
#ifndef _WIN32
#ifdef __APPLE__
    GTEST_SKIP() << "macOS's EVFILT_SIGNAL misses a signal sent to one thread (raise()), so iowait's kqueue does not "
                    "use it there: the handler serves signals, and no handler runs for a blocked one (G7)";
#endif
    if (IOWAIT_LIBKQUEUE && !std::getenv("IOWAIT_LIBKQUEUE_SIGNALS"))
        GTEST_SKIP() << "libkqueue's EVFILT_SIGNAL (a signalfd) is used only with IOWAIT_LIBKQUEUE_SIGNALS=1, which "
                        "Conformance/KqueueSignalSource/libkqueue_signals/kqueue sets";
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    // This test's only thread; libkqueue's own threads block every signal.
    ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &usr1, &old), 0);
    const fd_t id = w.watch_signal(SIGUSR1, 3, Mode::oneshot);
    ::kill(::getpid(), SIGUSR1);
    ::kill(::getpid(), SIGUSR1);
    std::this_thread::sleep_for(50ms);  // libkqueue's thread reads its signalfd after kill() returned
    auto events = wait_events(w, 2s);
    EXPECT_EQ(reports(events, id), 1u) << "two deliveries before one wait: one event";
    ::kill(::getpid(), SIGUSR1);
    EXPECT_TRUE(wait_events(w, 50ms).empty()) << "oneshot: disarmed";
    w.modify(id, Interest::read, 4, Mode::level);
    EXPECT_EQ(expect_event(w, id).data, 4u) << "the delivery while disarmed, once re-armed";
    EXPECT_TRUE(wait_events(w, 20ms).empty()) << "and only once";
    IOWait other{GetParam()};
    const fd_t o = other.watch_signal(SIGUSR1, 5);
    ::kill(::getpid(), SIGUSR1);
    EXPECT_EQ(expect_event(w, id).data, 4u) << "level: each later delivery";
    EXPECT_EQ(expect_event(other, o).data, 5u) << "G2: every IOWait that watches it";
    w.unwatch(id);
    other.unwatch(o);
    ::kill(::getpid(), SIGUSR1);
    EXPECT_TRUE(wait_events(w, 50ms).empty()) << "unwatched";
    // Still pending (blocked, and the program's action is back): taken
    // here, before the mask is, or it would end the process.
    const ::timespec zero{};
    while (::sigtimedwait(&usr1, nullptr, &zero) > 0) {
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
#endif
}

// The signals' wake-up is the library's own fd: select must report the
// signal whatever numbers the program has open (its fds up to 1099 here).
TEST_P(SignalSource, ReportedWhateverFdNumbersTheProgramHasOpen) {
#ifdef _WIN32
    GTEST_SKIP() << "Windows: sockets, no fd numbers below FD_SETSIZE to take";
#else
    const fds_taken_below taken(1100);
    if (!taken.ok()) GTEST_SKIP() << "RLIMIT_NOFILE lets this process open fewer than 1100 fds";
    const fd_t id = w.watch_signal(sig1, 5);
    EXPECT_TRUE(wait_events(w).empty()) << "nothing delivered yet";
    ASSERT_EQ(::raise(sig1), 0);
    const Event e = expect_event(w, id);
    EXPECT_EQ(e.data, 5u);
    EXPECT_TRUE(wait_events(w).empty()) << "reported once";
    w.unwatch(id);
#endif
}

TEST_P(SignalSource, ErrorsNameTheSignalAndChangeNothing) {
    auto message = [&](int signo, Mode mode = Mode::level) -> std::string {
        try {
            w.watch_signal(signo, 0, mode);
        } catch (const std::exception& e) {
            return e.what();
        }
        return "no error";
    };
    const std::string b(to_string(GetParam()));
#ifdef _WIN32
    // Only the signals that console events stand for; the C runtime's other
    // names (raise() within the process) and the rest are no source here.
    EXPECT_EQ(message(SIGTERM), "iowait: watch_signal(signo=" + std::to_string(SIGTERM) + ") on " + b + ": " +
                                    make_error_code(errc::unsupported_source).message());
    for (int unsupported : {1, SIGTERM, SIGABRT, SIGSEGV, SIGFPE, SIGILL, 64}) {
        std::error_code ec;
        EXPECT_EQ(w.watch_signal(unsupported, 0, Mode::level, ec), no_fd);
        EXPECT_EQ(ec, errc::unsupported_source) << "signo " << unsupported;
    }
    for (int bad : {0, -1, 65, 100000}) {
#else
    EXPECT_EQ(message(SIGKILL), "iowait: watch_signal(signo=" + std::to_string(SIGKILL) + ") on " + b + ": " +
                                    std::generic_category().message(EINVAL));
    for (int bad : {0, -1, 100000, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) {
#endif
        std::error_code ec;
        EXPECT_EQ(w.watch_signal(bad, 0, Mode::level, ec), no_fd);
        EXPECT_EQ(ec, std::errc::invalid_argument) << "signo " << bad;
    }
    std::error_code ec;
    w.watch_signal(sig1, 0, Mode::edge, ec);
    EXPECT_EQ(ec, errc::unsupported_mode);
    const fd_t id = w.watch_signal(sig1, 1);
    w.watch_signal(sig1, 0, Mode::level, ec);
    EXPECT_EQ(ec, errc::already_watched);
    w.modify(id, Interest::write, 9, ec);
    EXPECT_EQ(ec, errc::bad_interest);
    deliver(GetParam(), sig1);
    EXPECT_EQ(expect_event(w, id).data, 1u) << "the failed calls changed nothing";
    w.unwatch(id);
    w.unwatch(id, ec);
    EXPECT_EQ(ec, errc::not_watched);
    try {
        w.unwatch(id);
        ADD_FAILURE() << "no error";
    } catch (const usage_error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "iowait: unwatch(source=" + std::to_string(std::intptr_t(id)) + ") on " + b + ": not watched");
    }
    w.unwatch(fd_t(-1000), ec);
    EXPECT_EQ(ec, errc::bad_fd) << "a negative number no source ever had is still a bad fd (E3)";
}

#ifdef _WIN32
// SIGBREAK is CTRL_BREAK_EVENT: watched as SIGINT is; its delivery is tested
// where the system can send it.
TEST_P(SignalSource, ConsoleBreakIsSigbreak) {
    const fd_t id = w.watch_signal(SIGBREAK, 8);
    if (!generate(SIGBREAK)) {
        const auto error = ::GetLastError();
        w.unwatch(id);
        GTEST_SKIP() << "GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT) fails here (error " << error
                     << "; Wine 8 refuses it): SIGBREAK's watch and unwatch ran, its delivery did not";
    }
    EXPECT_EQ(expect_event(w, id).data, 8u);
    w.unwatch(id);
}
#endif

}  // namespace
}  // namespace iowait::test
