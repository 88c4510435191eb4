// Rules T5-T9 of docs/behaviour.md: timers as sources, on every backend
// (Windows included: they live in the front end).
#include <atomic>
#include <thread>

#include "helpers.hpp"

namespace iowait::test {
namespace {

using TimerSource = ConformanceTest;
IOWAIT_CONFORMANCE(TimerSource);

using clock_type = std::chrono::steady_clock;

TEST_P(TimerSource, OnceTimerIsReportedOnceAndNotBeforeItsDeadline) {
    const auto start = clock_type::now();
    const fd_t id = w.watch_timer(30ms, 0ms, 9);
    EXPECT_LT(std::intptr_t(id), -1);
    EXPECT_TRUE(wait_events(w).empty()) << "not due yet";
    const Event e = expect_event(w, id);
    EXPECT_GE(clock_type::now() - start, 30ms) << "never before its deadline";
    EXPECT_TRUE(e.read);
    EXPECT_FALSE(e.write || e.hangup || e.error);
    EXPECT_EQ(e.data, 9u);
    EXPECT_TRUE(wait_events(w, 50ms).empty()) << "period 0: once";
    w.unwatch(id);
}

TEST_P(TimerSource, PeriodicTimerEndsEachBlockingWaitAtItsDeadline) {
    const auto start = clock_type::now();
    const fd_t id = w.watch_timer(10ms, 20ms, 1);
    for (int i = 0; i < 3; ++i) {
        auto span = w.wait();  // no timeout: only the timer ends it
        ASSERT_EQ(span.size(), 1u);
        EXPECT_EQ(span[0].fd, id);
        EXPECT_GE(clock_type::now() - start, 10ms + i * 20ms) << "tick " << i;
    }
    w.unwatch(id);
}

TEST_P(TimerSource, PeriodsMissedByALateWaitAreReportedOnceOnTheTimersOwnGrid) {
    const auto start = clock_type::now();
    const fd_t id = w.watch_timer(0ms, 100ms, 1);
    std::this_thread::sleep_for(530ms);  // ticks at 0, 100, ... 500 all missed
    auto events = wait_events(w);
    EXPECT_EQ(events.size(), 1u) << "one report for every missed tick";
    // The next tick (600 ms) is not due yet, unless the machine was so slow
    // that it is: then the check would be wrong, not the timer.
    const auto before_second = clock_type::now() - start;
    events = wait_events(w);
    if (before_second < 590ms) {
        EXPECT_TRUE(events.empty()) << "the next tick (600 ms) is not due yet";
    }
    if (events.empty()) expect_event(w, id);
    EXPECT_GE(clock_type::now() - start, 600ms) << "the grid is the timer's, not the late wait's";
    w.unwatch(id);
}

TEST_P(TimerSource, WaitTimeoutShorterThanTheTimerStillHolds) {
    socket_pair p;
    w.watch(p.a, Interest::read, 5);
    const fd_t id = w.watch_timer(10s, 0s, 1);
    const auto start = clock_type::now();
    EXPECT_TRUE(wait_events(w, 20ms).empty());
    const auto took = clock_type::now() - start;
    EXPECT_GE(took, 20ms);
    EXPECT_LT(took, 5s);
    p.send_b();
    auto events = wait_events(w, 1s);
    ASSERT_EQ(events.size(), 1u) << "fds are reported beside an armed timer";
    EXPECT_EQ(events[0].fd, p.a);
    w.unwatch(id);
}

TEST_P(TimerSource, OneshotModeWaitsForModifyThenReportsWhatWasDue) {
    const fd_t id = w.watch_timer(0ms, 5ms, 1, Mode::oneshot);
    EXPECT_EQ(expect_event(w, id).data, 1u);
    EXPECT_TRUE(wait_events(w, 30ms).empty()) << "disarmed: later ticks are not reported";
    w.modify(id, Interest::read, 2, Mode::level);
    auto events = wait_events(w);
    ASSERT_EQ(events.size(), 1u) << "the ticks missed while disarmed, once";
    EXPECT_EQ(events[0].data, 2u);
    EXPECT_EQ(expect_event(w, id).data, 2u) << "level again: the next tick";
    w.unwatch(id);
    EXPECT_TRUE(wait_events(w, 20ms).empty()) << "unwatched";
}

TEST_P(TimerSource, TimerWatchedFromAnotherThreadEndsAWaitInProgress) {
    std::atomic<fd_t> id{no_fd};
    std::atomic<bool> in_progress{false};
    std::thread other([&] {
        in_progress = await_wait_in_progress(w);
        id = w.watch_timer(10ms, 0ms, 4);
    });
    const auto start = clock_type::now();
    auto events = wait_retrying(w, 10s);
    const auto took = clock_type::now() - start;
    other.join();
    EXPECT_TRUE(in_progress) << "the wait was never seen in progress";
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].fd, id.load());
    EXPECT_LT(took, 5s) << "the waiter took up the new deadline";
    // Unwatched from another thread during a wait, before it is due: that
    // wait never reports it (nor sleeps past its own timeout on its account).
    const fd_t later = w.watch_timer(300ms, 0ms, 5);
    std::atomic<bool> unwatched{false};
    std::thread unwatcher([&] {
        in_progress = await_wait_in_progress(w);
        w.unwatch(later);
        unwatched = true;
    });
    const auto second_start = clock_type::now();
    events = wait_retrying(w, 500ms);
    const auto second_took = clock_type::now() - second_start;
    const bool unwatched_during_the_wait = unwatched;
    unwatcher.join();
    EXPECT_TRUE(in_progress) << "the wait was never seen in progress";
    EXPECT_TRUE(unwatched_during_the_wait) << "the wait ended before the unwatch (a loaded machine)";
    EXPECT_TRUE(events.empty()) << "a timer unwatched during the wait was reported";
    EXPECT_GE(second_took, 500ms);
    EXPECT_LT(second_took, 5s);
    w.unwatch(id.load());
}

TEST_P(TimerSource, ErrorsNameTheTimerAndChangeNothing) {
    std::error_code ec;
    EXPECT_EQ(w.watch_timer(-1ms, 0ms, 0, Mode::level, ec), no_fd);
    EXPECT_EQ(ec, errc::bad_timeout);
    w.watch_timer(1ms, -1ms, 0, Mode::level, ec);
    EXPECT_EQ(ec, errc::bad_timeout);
    w.watch_timer(std::chrono::duration<double>(NAN), 0ms, 0, Mode::level, ec);
    EXPECT_EQ(ec, errc::bad_timeout);
    w.watch_timer(1ms, 0ms, 0, Mode::edge, ec);
    EXPECT_EQ(ec, errc::unsupported_mode);
    try {
        w.watch_timer(std::chrono::hours::max());
        ADD_FAILURE() << "no error";
    } catch (const usage_error& e) {
        EXPECT_EQ(e.code(), errc::bad_timeout);
        EXPECT_EQ(std::string(e.what()).rfind("iowait: watch_timer on " + std::string(to_string(GetParam())), 0), 0u)
            << e.what();
    }
    EXPECT_TRUE(wait_events(w, 10ms).empty()) << "no timer was made";
}

}  // namespace
}  // namespace iowait::test
