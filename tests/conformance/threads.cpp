// Rules N4-N8 of docs/behaviour.md: calls from other threads while one thread
// waits. Each test runs the waiter in its own thread and bounds every wait, so
// a lost wake-up fails the test instead of hanging it.

#include <atomic>
#include <mutex>
#include <thread>

#include "helpers.hpp"

namespace iowait::test {
namespace {

using Threads = ConformanceTest;
IOWAIT_CONFORMANCE(Threads);

// Polls `done` until it holds or `limit` passes; true if it held.
template <class F>
bool eventually(F done, std::chrono::milliseconds limit = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(100us);
    }
    return true;
}

TEST_P(Threads, ModifyFromAnotherThreadReachesAWaitInProgress) {
    socket_pair p;
    p.send_b();  // readable
    fill(p.a);   // and not writable
    w.watch(p.a, Interest::write, 1);
    std::atomic<bool> in_progress{false};
    std::thread modifier([&] {
        in_progress = await_wait_in_progress(w);  // the waiter is blocked on "write"
        w.modify(p.a, Interest::read, 2);
    });
    // One wait: the modify reaches it, or it runs to its timeout.
    const auto events = wait_retrying(w, 5s);
    modifier.join();
    EXPECT_TRUE(in_progress) << "the wait was never seen in progress";
    ASSERT_EQ(events.size(), 1u) << "the wait in progress never saw the new interest";
    EXPECT_TRUE(events[0].read);
    EXPECT_FALSE(events[0].write);
    EXPECT_EQ(events[0].data, 2u);
}

// Regression: epoll keeps regular files aside (R8), and its waiter was not
// woken when one was watched or re-armed, so the wait in progress slept
// through it.
TEST_P(Threads, WatchOrRearmOfARegularFileFromAnotherThreadReachesAWaitInProgress) {
    temp_file file;
    const fd_t fd = file.fd;
    ASSERT_NE(fd, no_fd);
    for (std::uint64_t data : {5u, 6u}) {
        std::atomic<bool> in_progress{false};
        std::thread other([&] {
            in_progress = await_wait_in_progress(w);
            if (data == 5)
                w.watch(fd, Interest::read, data, Mode::oneshot);
            else
                w.modify(fd, Interest::read, data, Mode::oneshot);  // re-arms the fired watch
        });
        const auto start = std::chrono::steady_clock::now();
        auto events = wait_retrying(w, 3s);
        const auto took = std::chrono::steady_clock::now() - start;
        other.join();
        EXPECT_TRUE(in_progress) << "the wait was never seen in progress";
        ASSERT_EQ(events.size(), 1u) << "the wait ran to its timeout without seeing the file";
        EXPECT_EQ(events[0].data, data);
        EXPECT_LT(took, 2s);
    }
    w.unwatch(fd);
}

TEST_P(Threads, UnwatchFromAnotherThreadReachesAWaitInProgress) {
    socket_pair p;
    w.watch(p.a, Interest::read);
    std::atomic<bool> in_progress{false}, unwatched{false};
    std::thread unwatcher([&] {
        in_progress = await_wait_in_progress(w);
        w.unwatch(p.a);
        unwatched = true;
        p.send_b();  // ready now, but no longer watched
    });
    const auto cpu_start = thread_cpu_time();
    const auto start = std::chrono::steady_clock::now();
    // Longer than await_wait_in_progress() takes where the system cannot
    // say that a thread sleeps (200 ms after the waiter announced itself).
    auto events = wait_retrying(w, 1s);
    const auto took = std::chrono::steady_clock::now() - start;
    const auto cpu = thread_cpu_time() - cpu_start;
    const bool unwatched_during_the_wait = unwatched;
    unwatcher.join();
    EXPECT_TRUE(in_progress) << "the wait was never seen in progress";
    EXPECT_TRUE(unwatched_during_the_wait) << "the wait ended before the other thread's unwatch (a loaded machine)";
    EXPECT_TRUE(events.empty()) << "an unwatched fd was reported";
    EXPECT_GE(took, 1s);
    // A waiter still polling the old set would find the fd ready at once,
    // again and again, and burn the whole timeout.
    EXPECT_LT(cpu, spin_limit(1s)) << "the wait spun on the unwatched fd";
}

TEST_P(Threads, NoWaitStartedAfterUnwatchReturnsReportsTheWatch) {
    socket_pair p;
    p.send_b();  // stays readable: every armed wait reports it
    std::atomic<std::uint64_t> waits{0};
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> last_data{0};
    struct seen {
        std::uint64_t wait, data;
    };
    std::mutex mu;
    std::vector<seen> log;
    std::thread waiter([&] {
        while (!stop.load()) {
            const std::uint64_t n = ++waits;  // before wait(): waits > n began later
            for (const Event& e : w.wait(20ms)) {
                std::lock_guard lock(mu);
                log.push_back({n, e.data});
                last_data.store(e.data);
            }
        }
    });
    constexpr int rounds = 50;
    std::vector<std::uint64_t> unwatched_at(rounds + 1);
    for (int round = 1; round <= rounds; ++round) {
        w.watch(p.a, Interest::read, std::uint64_t(round));
        EXPECT_TRUE(eventually([&] { return last_data.load() == std::uint64_t(round); }))
            << "round " << round << ": the watch never reached the waiter";
        w.unwatch(p.a);
        unwatched_at[round] = waits.load();
    }
    stop = true;
    w.notify();
    waiter.join();
    for (const seen& s : log) {
        ASSERT_GE(s.data, 1u);
        ASSERT_LE(s.data, std::uint64_t(rounds));
        EXPECT_LE(s.wait, unwatched_at[s.data])
            << "wait #" << s.wait << " began after unwatch() of round " << s.data << " had returned, yet reported it";
    }
}

// N6, its second half: a wait already in the kernel when unwatch() returns
// (probed in progress, nothing ready yet, so it has collected nothing) does
// not report the watch either, though a kernel set that still holds the fd
// (poll's and select's, until they rebuild it) sees it ready: the fd becomes
// ready first, then another. Rounds, since the order in the kernel varies.
TEST_P(Threads, AWaitInTheKernelWhenUnwatchReturnsDoesNotReportTheWatch) {
    for (int round = 0; round < 20; ++round) {
        socket_pair p, q;
        w.watch(p.a, Interest::read, 1);
        w.watch(q.a, Interest::read, 2);
        std::atomic<bool> in_progress{false};
        std::thread other([&] {
            in_progress = await_wait_in_progress(w);
            w.unwatch(p.a);
            p.send_b();
            q.send_b();
        });
        // The wait in progress, and any after it, until q is reported.
        std::vector<Event> seen;
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (!find_event(seen, q.a) && std::chrono::steady_clock::now() < deadline) {
            const auto events = wait_retrying(w, 2s);
            seen.insert(seen.end(), events.begin(), events.end());
        }
        other.join();
        ASSERT_TRUE(in_progress) << "round " << round << ": the wait was never seen in progress";
        ASSERT_FALSE(find_event(seen, p.a)) << "round " << round << ": reported after unwatch() returned";
        ASSERT_TRUE(find_event(seen, q.a)) << "round " << round << ": the other watch was never reported";
        w.unwatch(q.a);
    }
}

TEST_P(Threads, OneshotRearmedFromAnotherThreadIsReportedOncePerArm) {
    socket_pair p;
    p.send_b();  // stays readable: each arm can fire at once
    std::atomic<int> reported{0};
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::vector<std::uint64_t> data;
    std::thread waiter([&] {
        while (!stop.load()) {
            // Long enough that a re-arm which did not reach this wait fails the test.
            for (const Event& e : w.wait(10s)) {
                std::lock_guard lock(mu);
                data.push_back(e.data);
                ++reported;
            }
        }
    });
    constexpr int arms = 100;
    w.watch(p.a, Interest::read, 0, Mode::oneshot);
    for (int arm = 1; arm <= arms; ++arm) {
        if (!eventually([&] { return reported.load() >= arm; })) {
            ADD_FAILURE() << "arm " << arm - 1 << " was never reported";
            break;
        }
        w.modify(p.a, Interest::read, std::uint64_t(arm), Mode::oneshot);  // the waiter is in the kernel, disarmed
    }
    EXPECT_TRUE(eventually([&] { return reported.load() == arms + 1; }));
    std::this_thread::sleep_for(30ms);  // time for a second report of the last arm, if there were one
    stop = true;
    w.notify();
    waiter.join();
    ASSERT_EQ(data.size(), std::size_t(arms + 1)) << "a oneshot arm was reported more than once";
    for (int i = 0; i <= arms; ++i) EXPECT_EQ(data[std::size_t(i)], std::uint64_t(i));
}

TEST_P(Threads, NotifyFromManyThreadsNeverLosesAWake) {
    std::atomic<std::uint64_t> returns{0};
    std::atomic<bool> stop{false};
    std::atomic<bool> events_seen{false};
    std::thread waiter([&] {
        while (!stop.load()) {
            if (!w.wait(10s).empty()) events_seen = true;
            ++returns;
        }
    });
    constexpr int notifiers = 4, rounds = 100;
    std::atomic<int> lost{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < notifiers; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < rounds; ++i) {
                // A notify wakes the wait in progress or the next one: either
                // way some wait() returns after it.
                const std::uint64_t before = returns.load();
                w.notify();
                if (!eventually([&] { return returns.load() > before; })) ++lost;
            }
        });
    for (auto& t : threads) t.join();
    // A notify lost while another notifier's wake was on its way passes that
    // notifier's check above, but leaves the flag set and the waiter asleep:
    // then this last notify, merged into it, wakes nobody either.
    stop = true;
    const auto stopping = std::chrono::steady_clock::now();
    w.notify();
    waiter.join();
    EXPECT_LT(std::chrono::steady_clock::now() - stopping, 5s) << "the waiter slept through the last notify";
    EXPECT_EQ(lost.load(), 0) << "a notify() left the waiter asleep";
    EXPECT_FALSE(events_seen.load()) << "a notify produced events";
    // The notifies merge: at most one is still pending, and after it the
    // next wait runs to its timeout.
    wait_events(w, 0ns);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(wait_events(w, 30ms).empty());
    EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
}

}  // namespace
}  // namespace iowait::test
