// Rules N1-N3 of docs/behaviour.md: notify() wakes a wait with no events.
#include <atomic>
#include <thread>

#include "helpers.hpp"

namespace iowait::test {
namespace {

using Notify = ConformanceTest;
IOWAIT_CONFORMANCE(Notify);

TEST_P(Notify, WakesABlockingWaitFromAnotherThreadWithNoEvents) {
    socket_pair p;
    w.watch(p.a, Interest::read);
    std::atomic<bool> in_progress{false};
    std::thread waker([&] {
        in_progress = await_wait_in_progress(w);
        w.notify();
    });
    const auto start = std::chrono::steady_clock::now();
    auto events = wait_retrying(w, 10s);
    const auto took = std::chrono::steady_clock::now() - start;
    waker.join();
    EXPECT_TRUE(in_progress) << "the wait was never seen in progress";
    EXPECT_TRUE(events.empty());
    EXPECT_LT(took, 5s) << "the wait ran to its timeout: notify() did not wake it";
}

TEST_P(Notify, WakesAWaitWithoutTimeout) {
    std::atomic<bool> in_progress{false};
    std::thread waker([&] {
        in_progress = await_wait_in_progress(w);
        w.notify();
    });
    // A lost notify hangs here: ctest's limit (tests/CMakeLists.txt) fails it.
    const auto events = wait_retrying(w);
    waker.join();
    EXPECT_TRUE(in_progress) << "the wait was never seen in progress";
    EXPECT_TRUE(events.empty());
}

TEST_P(Notify, BeforeWaitMakesTheNextWaitReturnAtOnce) {
    w.notify();
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(wait_events(w, 10s).empty());
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "the wait ran to its timeout: the notify was lost";
}

TEST_P(Notify, RepeatedNotifiesAreMergedIntoOneWake) {
    w.notify();
    w.notify();
    w.notify();
    const auto woken = std::chrono::steady_clock::now();
    EXPECT_TRUE(wait_events(w, 10s).empty());
    EXPECT_LT(std::chrono::steady_clock::now() - woken, 5s) << "the wait ran to its timeout: the notifies were lost";
    // The merged wake is spent: the next wait runs to its timeout.
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(wait_events(w, 30ms).empty());
    EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
}

TEST_P(Notify, ReadyFdsAreStillReportedAfterANotify) {
    socket_pair p;
    w.watch(p.a, Interest::read);
    p.send_b();
    w.notify();
    // Either this wait or the next reports the fd: the notify never swallows it.
    auto events = wait_events(w, 1s);
    if (events.empty()) events = wait_events(w, 1s);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].fd, p.a);
}

TEST_P(Notify, WatchFromAnotherThreadReachesAWaitInProgress) {
    socket_pair p;
    p.send_b();
    std::atomic<bool> in_progress{false};
    std::thread watcher([&] {
        in_progress = await_wait_in_progress(w);
        w.watch(p.a, Interest::read, 9);
    });
    // One wait: the watch reaches it, or it runs to its timeout.
    const auto start = std::chrono::steady_clock::now();
    const auto events = wait_retrying(w, 5s);
    const auto took = std::chrono::steady_clock::now() - start;
    watcher.join();
    EXPECT_TRUE(in_progress) << "the wait was never seen in progress";
    ASSERT_EQ(events.size(), 1u) << "the wait in progress never saw the new watch";
    EXPECT_EQ(events[0].data, 9u);
    EXPECT_LT(took, 4s);
}

}  // namespace
}  // namespace iowait::test
