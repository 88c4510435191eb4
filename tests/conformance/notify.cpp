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
    std::thread waker([&] {
        std::this_thread::sleep_for(20ms);
        w.notify();
    });
    const auto start = std::chrono::steady_clock::now();
    auto events = wait_events(w, 10s);
    const auto took = std::chrono::steady_clock::now() - start;
    waker.join();
    EXPECT_TRUE(events.empty());
    EXPECT_LT(took, 5s) << "the wait ran to its timeout: notify() did not wake it";
}

TEST_P(Notify, WakesAWaitWithoutTimeout) {
    std::thread waker([&] {
        std::this_thread::sleep_for(10ms);
        w.notify();
    });
    auto events = w.wait();
    waker.join();
    EXPECT_TRUE(events.empty());
}

TEST_P(Notify, BeforeWaitMakesTheNextWaitReturnAtOnce) {
    w.notify();
    EXPECT_TRUE(wait_events(w, 10s).empty());  // returns at once, else the test's timeout fails it
}

TEST_P(Notify, RepeatedNotifiesAreMergedIntoOneWake) {
    w.notify();
    w.notify();
    w.notify();
    EXPECT_TRUE(wait_events(w, 10s).empty());
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
    std::thread watcher([&] {
        std::this_thread::sleep_for(20ms);
        w.watch(p.a, Interest::read, 9);
    });
    const auto start = std::chrono::steady_clock::now();
    std::vector<Event> events;
    while (events.empty() && std::chrono::steady_clock::now() - start < 5s) events = wait_events(w, 5s);
    watcher.join();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, 9u);
}

}  // namespace
}  // namespace iowait::test
