// Rules T1-T4 of docs/behaviour.md: timeouts are never cut short, are
// retried across signals, and bad values are refused.
#ifndef _WIN32
#include <pthread.h>
#include <signal.h>
#endif

#include <atomic>
#include <cmath>
#include <thread>

#include "helpers.hpp"

namespace iowait::test {
namespace {

using Timeout = ConformanceTest;
IOWAIT_CONFORMANCE(Timeout);

TEST_P(Timeout, NeverReturnsBeforeTheTimeoutHasPassed) {
    socket_pair p;
    w.watch(p.a, Interest::read);
    for (auto t : {1ns, 1000ns, 100'000ns, 1'500'000ns, 20'000'000ns}) {
        const auto start = std::chrono::steady_clock::now();
        EXPECT_TRUE(wait_events(w, t).empty());
        EXPECT_GE(std::chrono::steady_clock::now() - start, t) << "timeout " << t.count() << " ns";
    }
}

TEST_P(Timeout, AcceptsAnyDurationTypeAndRoundsUp) {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(w.wait(std::chrono::duration<double>(0.0025)).empty());  // 2.5 ms as seconds
    EXPECT_GE(std::chrono::steady_clock::now() - start, 2500us);
    // 0.4 us: rounds up, not to 0. It lasts 0.4 us at least (T1), but so may
    // a zero-timeout poll. What tells them apart: a kernel wait with a timeout
    // lasts that timeout on top of the system call's own cost, which a wait(0)
    // measures. The fastest of ten of each, so that a preempted one counts not.
    auto fastest = [&](auto timeout) {
        auto best = std::chrono::steady_clock::duration::max();
        for (int i = 0; i < 10; ++i) {
            const auto t0 = std::chrono::steady_clock::now();
            EXPECT_TRUE(w.wait(timeout).empty());
            best = std::min(best, std::chrono::steady_clock::now() - t0);
        }
        return best;
    };
    const auto tiny = fastest(std::chrono::duration<double, std::micro>(0.4));
    const auto zero = fastest(std::chrono::duration<double, std::micro>(0.0));  // the same conversions
    EXPECT_GE(tiny, zero + 400ns) << "0.4 us took " << std::chrono::nanoseconds(tiny).count() << " ns, a wait(0) "
                                  << std::chrono::nanoseconds(zero).count() << " ns: rounded down to a poll";
}

TEST_P(Timeout, AbsurdTimeoutsAreBadTimeoutAndLeaveTheObjectUsable) {
    auto code = [&](auto timeout) {
        try {
            w.wait(timeout);
        } catch (const usage_error& e) {
            return e.code();
        }
        return std::error_code{};
    };
    EXPECT_EQ(code(-1ms), errc::bad_timeout);
    EXPECT_EQ(code(std::chrono::hours::max()), errc::bad_timeout);  // overflows nanoseconds
    EXPECT_EQ(code(std::chrono::duration<double>(NAN)), errc::bad_timeout);
    EXPECT_EQ(code(std::chrono::duration<double>(-INFINITY)), errc::bad_timeout);
    EXPECT_EQ(code(std::chrono::duration<double>(INFINITY)), errc::bad_timeout);
    socket_pair p;
    w.watch(p.a, Interest::read);
    p.send_b();
    EXPECT_EQ(wait_events(w, 1s).size(), 1u);
}

// T3: the largest duration of a standard type is how one writes "wait
// forever": accepted (292 years), and a notify() from another thread ends it.
TEST_P(Timeout, LargestDurationsWaitPracticallyForever) {
    auto wait_notified = [&](auto timeout) {
        // The notify comes once the wait is in progress; a wait that returned
        // before it (the largest duration taken as 0, or as negative) fails.
        std::atomic<bool> notified{false};
        std::thread notifier([&] {
            await_wait_in_progress(w, 2000ms);
            notified = true;
            w.notify();
        });
        const auto events = wait_retrying(w, timeout);
        const bool blocked_until_notified = notified;
        notifier.join();
        EXPECT_TRUE(events.empty());
        EXPECT_TRUE(blocked_until_notified) << "the wait returned before the notify: it did not block";
    };
    wait_notified(std::chrono::nanoseconds::max());
    wait_notified(std::chrono::steady_clock::duration::max());
    wait_notified(std::chrono::nanoseconds(INT64_MAX - 1));
    // Just above nanoseconds: refused, as T3 says.
    std::error_code ec;
    w.wait(std::chrono::seconds(INT64_MAX / 1000000000 + 1), ec);
    EXPECT_EQ(ec, errc::bad_timeout);
}

#ifndef _WIN32
std::atomic<int> signals_caught{0};
void on_signal(int) { signals_caught.fetch_add(1); }
#endif

TEST_P(Timeout, SignalsDuringAWaitDoNotShortenIt) {
    IOWAIT_SKIP_ON_WINDOWS("no POSIX signals: WSAPoll and GetQueuedCompletionStatusEx are never interrupted");
#ifndef _WIN32
    struct sigaction sa {};
    sa.sa_handler = on_signal;  // no SA_RESTART: the kernel wait fails with EINTR
    struct sigaction old {};
    ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);
    signals_caught = 0;
    const pthread_t waiter = ::pthread_self();
    std::atomic<bool> done{false};
    std::thread storm([&] {
        while (!done) {
            ::pthread_kill(waiter, SIGUSR1);
            std::this_thread::sleep_for(2ms);
        }
    });
    const auto start = std::chrono::steady_clock::now();
    auto events = wait_events(w, 100ms);
    const auto took = std::chrono::steady_clock::now() - start;
    done = true;
    storm.join();
    ::sigaction(SIGUSR1, &old, nullptr);
    EXPECT_TRUE(events.empty());
    EXPECT_GE(took, 100ms);
    EXPECT_GT(signals_caught.load(), 3) << "the storm did not reach the waiting thread";
#endif
}

// T2 for wait(0) too: a signal that lands during the kernel call (poll and
// select fail with EINTR then, even with a zero timeout) is no error. Found
// by the fuzzer, whose libFuzzer runs a SIGALRM timer.
TEST_P(Timeout, ZeroWaitsDuringASignalStormNeverFail) {
    IOWAIT_SKIP_ON_WINDOWS("no POSIX signals: WSAPoll and GetQueuedCompletionStatusEx are never interrupted");
#ifndef _WIN32
    struct sigaction sa {};
    sa.sa_handler = on_signal;  // no SA_RESTART: the kernel wait fails with EINTR
    struct sigaction old {};
    ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);
    signals_caught = 0;
    socket_pair idle;  // something to poll, nothing ready
    w.watch(idle.a, Interest::read);
    const pthread_t waiter = ::pthread_self();
    std::atomic<bool> done{false};
    std::thread storm([&] {
        while (!done) ::pthread_kill(waiter, SIGUSR1);
    });
    int failures = 0;
    std::error_code first;
    const auto start = std::chrono::steady_clock::now();
    // 200 ms at least, and until the storm has reached this thread a few
    // times: on a loaded machine its thread may not run for a while (5 s at most).
    auto elapsed = [&] { return std::chrono::steady_clock::now() - start; };
    while (elapsed() < 200ms || (signals_caught.load() <= 3 && elapsed() < 5s)) {
        std::error_code ec;
        w.wait(0ns, ec);
        if (ec && !failures++) first = ec;
    }
    done = true;
    storm.join();
    ::sigaction(SIGUSR1, &old, nullptr);
    EXPECT_EQ(failures, 0) << "wait(0) failed, first with " << first.message();
    EXPECT_GT(signals_caught.load(), 3) << "the storm did not reach the waiting thread";
#endif
}

TEST_P(Timeout, WaitOrSignalEndsOnASignalAndOtherwiseWaitsAsWait) {
    IOWAIT_SKIP_ON_WINDOWS("no POSIX signals: WSAPoll and GetQueuedCompletionStatusEx are never interrupted");
#ifndef _WIN32
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    struct sigaction old {};
    ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);
    const pthread_t waiter = ::pthread_self();
    // Again and again until the wait has ended: one signal could land before
    // the wait begins (on a loaded machine), and the wait would run its 10 s.
    std::atomic<bool> ended{false};
    std::thread sender([&] {
        while (!ended) {
            ::pthread_kill(waiter, SIGUSR1);
            std::this_thread::sleep_for(20ms);
        }
    });
    std::error_code ec;
    const auto start = std::chrono::steady_clock::now();
    auto events = w.wait_or_signal(10s, ec);
    const auto took = std::chrono::steady_clock::now() - start;
    ended = true;
    sender.join();
    ::sigaction(SIGUSR1, &old, nullptr);
    EXPECT_EQ(ec, std::errc::interrupted);
    EXPECT_TRUE(events.empty());
    EXPECT_LT(took, 5s);
    socket_pair p;
    w.watch(p.a, Interest::read, 7);
    EXPECT_TRUE(w.wait_or_signal(1ms, ec).empty());
    EXPECT_FALSE(ec);
    p.send_b();
    events = w.wait_or_signal(ec);
    EXPECT_FALSE(ec);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, 7u);
    w.wait_or_signal(std::chrono::duration<double>(NAN), ec);
    EXPECT_EQ(ec, errc::bad_timeout);
#endif
}

}  // namespace
}  // namespace iowait::test
