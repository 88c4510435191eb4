// Rules G1-G6 of docs/behaviour.md: a signal as a source, on every backend.
// Every test uses SIGUSR1 or SIGUSR2, whose default action ends the process:
// a handler that did not replace it would fail the whole program, loudly.
#ifndef _WIN32
#include <pthread.h>
#include <signal.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>

#include "helpers.hpp"

namespace iowait::test {
namespace {

using SignalSource = ConformanceTest;
IOWAIT_CONFORMANCE(SignalSource);

#ifndef _WIN32
std::size_t reports(const std::vector<Event>& events, fd_t id) {
    return std::size_t(std::count_if(events.begin(), events.end(), [id](const Event& e) { return e.fd == id; }));
}

// Sends signo to this process from another thread (which the kernel may or
// may not pick to run the handler) and waits until the handler ran.
void send_from_another_thread(int signo) {
    std::thread([signo] { ::kill(::getpid(), signo); }).join();
}
#endif

TEST_P(SignalSource, DeliveredSignalIsReportedWithItsDataAndItsDefaultActionDoesNotRun) {
#ifdef _WIN32
    std::error_code ec;
    w.watch_signal(2, 7, Mode::level, ec);
    EXPECT_EQ(ec, errc::unsupported_source) << "G6: no POSIX signals on Windows";
#else
    const fd_t id = w.watch_signal(SIGUSR1, 42);
    EXPECT_LT(std::intptr_t(id), -1) << "a source's id is no fd";
    EXPECT_TRUE(wait_events(w).empty()) << "nothing delivered yet";
    ASSERT_EQ(::raise(SIGUSR1), 0);  // would end the process if iowait's handler were not there
    const Event e = expect_event(w, id);
    EXPECT_TRUE(e.read);
    EXPECT_FALSE(e.write || e.hangup || e.error);
    EXPECT_EQ(e.data, 42u);
    EXPECT_TRUE(wait_events(w).empty()) << "reported once per delivery";
    w.unwatch(id);
#endif
}

TEST_P(SignalSource, DeliveriesBeforeOneWaitAreOneEventAndEachLaterDeliveryIsReported) {
    IOWAIT_SKIP_ON_WINDOWS("no POSIX signals (G6)");
#ifndef _WIN32
    socket_pair p;
    w.watch(p.a, Interest::read, 1);
    const fd_t id = w.watch_signal(SIGUSR2, 2);
    for (int i = 0; i < 3; ++i) ::raise(SIGUSR2);
    p.send_b();
    auto events = wait_events(w);
    EXPECT_EQ(reports(events, id), 1u) << "three deliveries before a wait are one event";
    EXPECT_NE(find_event(events, p.a), nullptr) << "beside the fd's own event";
    send_from_another_thread(SIGUSR2);
    EXPECT_EQ(expect_event(w, id).data, 2u) << "level: each later delivery is reported";
    w.unwatch(id);
#endif
}

TEST_P(SignalSource, SignalFromAnotherThreadEndsAWaitWithoutTimeout) {
    IOWAIT_SKIP_ON_WINDOWS("no POSIX signals (G6)");
#ifndef _WIN32
    const fd_t id = w.watch_signal(SIGUSR1);
    std::thread sender([] {
        std::this_thread::sleep_for(50ms);
        ::kill(::getpid(), SIGUSR1);
    });
    const auto start = std::chrono::steady_clock::now();
    auto events = [&] {
        auto span = w.wait();  // no timeout: only the signal can end it
        return std::vector<Event>(span.begin(), span.end());
    }();
    sender.join();
    EXPECT_EQ(reports(events, id), 1u);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    w.unwatch(id);
#endif
}

TEST_P(SignalSource, OneshotReportsOnceAndModifyRearmsWithWhatCameMeanwhile) {
    IOWAIT_SKIP_ON_WINDOWS("no POSIX signals (G6)");
#ifndef _WIN32
    const fd_t id = w.watch_signal(SIGUSR1, 1, Mode::oneshot);
    ::raise(SIGUSR1);
    EXPECT_EQ(expect_event(w, id).data, 1u);
    ::raise(SIGUSR1);
    EXPECT_TRUE(wait_events(w, 20ms).empty()) << "disarmed";
    w.modify(id, Interest::read, 3, Mode::oneshot);
    auto events = wait_events(w);
    ASSERT_EQ(reports(events, id), 1u) << "the delivery while disarmed, once re-armed";
    EXPECT_EQ(find_event(events, id)->data, 3u);
    EXPECT_TRUE(wait_events(w).empty());
    w.unwatch(id);
#endif
}

#ifndef _WIN32
std::atomic<int> own_handler_ran{0};
void own_handler(int) { own_handler_ran.fetch_add(1); }
#endif

TEST_P(SignalSource, UnwatchRestoresTheEarlierHandlerAndTwoIOWaitsBothReport) {
    IOWAIT_SKIP_ON_WINDOWS("no POSIX signals (G6)");
#ifndef _WIN32
    struct sigaction sa {};
    sa.sa_handler = own_handler;
    struct sigaction old {};
    ASSERT_EQ(::sigaction(SIGUSR2, &sa, &old), 0);
    own_handler_ran = 0;
    IOWait other{GetParam()};
    const fd_t a = w.watch_signal(SIGUSR2, 1);
    const fd_t b = other.watch_signal(SIGUSR2, 2);
    ::raise(SIGUSR2);
    EXPECT_EQ(own_handler_ran.load(), 0) << "while watched, iowait's handler replaces it";
    EXPECT_EQ(expect_event(w, a).data, 1u);
    EXPECT_EQ(expect_event(other, b).data, 2u);
    w.unwatch(a);
    ::raise(SIGUSR2);
    EXPECT_TRUE(wait_events(w).empty()) << "unwatched";
    EXPECT_EQ(expect_event(other, b).data, 2u) << "still watched by the other IOWait";
    other.unwatch(b);
    ::raise(SIGUSR2);
    EXPECT_EQ(own_handler_ran.load(), 1) << "the last unwatch() restores the program's handler";
    ::sigaction(SIGUSR2, &old, nullptr);
#endif
}

TEST_P(SignalSource, WatchAndUnwatchFromAnotherThreadReachAWaitInProgress) {
    IOWAIT_SKIP_ON_WINDOWS("no POSIX signals (G6)");
#ifndef _WIN32
    std::atomic<fd_t> id{no_fd};
    std::thread other([&] {
        std::this_thread::sleep_for(20ms);
        id = w.watch_signal(SIGUSR1, 5);
        ::kill(::getpid(), SIGUSR1);
    });
    const Event e = [&] {
        for (int i = 0; i < 100; ++i) {
            auto events = wait_events(w, 50ms);
            if (!events.empty()) return events[0];
        }
        return Event{};
    }();
    other.join();
    EXPECT_EQ(e.fd, id.load());
    EXPECT_EQ(e.data, 5u);
    // Unwatched from another thread during a wait: its later delivery is not
    // reported (and, the last watch gone, the default action would run: so
    // the test watches it again from here before it sends).
    const fd_t again = w.watch_signal(SIGUSR2, 6);
    std::thread unwatcher([&] { w.unwatch(again); });
    unwatcher.join();
    IOWait keeper{GetParam()};
    const fd_t k = keeper.watch_signal(SIGUSR2);
    ::raise(SIGUSR2);
    EXPECT_TRUE(wait_events(w, 20ms).empty()) << "N5/N6: no report once unwatch() returned";
    keeper.unwatch(k);
    w.unwatch(id.load());
#endif
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

TEST_P(SignalSource, ErrorsNameTheSignalAndChangeNothing) {
    IOWAIT_SKIP_ON_WINDOWS("no POSIX signals (G6)");
#ifndef _WIN32
    auto message = [&](int signo, Mode mode = Mode::level) -> std::string {
        try {
            w.watch_signal(signo, 0, mode);
        } catch (const std::exception& e) {
            return e.what();
        }
        return "no error";
    };
    const std::string b(to_string(GetParam()));
    EXPECT_EQ(message(SIGKILL), "iowait: watch_signal(signo=" + std::to_string(SIGKILL) + ") on " + b + ": " +
                                    std::generic_category().message(EINVAL));
    for (int bad : {0, -1, 100000, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) {
        std::error_code ec;
        EXPECT_EQ(w.watch_signal(bad, 0, Mode::level, ec), no_fd);
        EXPECT_EQ(ec, std::errc::invalid_argument) << "signo " << bad;
    }
    std::error_code ec;
    w.watch_signal(SIGUSR1, 0, Mode::edge, ec);
    EXPECT_EQ(ec, errc::unsupported_mode);
    const fd_t id = w.watch_signal(SIGUSR1, 1);
    w.watch_signal(SIGUSR1, 0, Mode::level, ec);
    EXPECT_EQ(ec, errc::already_watched);
    w.modify(id, Interest::write, 9, ec);
    EXPECT_EQ(ec, errc::bad_interest);
    ::raise(SIGUSR1);
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
#endif
}

}  // namespace
}  // namespace iowait::test
