// Rules L1-L9 of docs/behaviour.md ("Several waiters"): wait() from several
// threads at once on one IOWait, on every backend. Names read
// Waiters/<suite>.<test>/<backend>, so that `ctest -R Waiters` runs them alone.
// Every wait is bounded; a thread that must be inside wait() before the test
// goes on is probed for (blocked_in_wait), not slept for.
#include <atomic>
#include <csignal>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "helpers.hpp"

#ifdef __linux__
#include <sys/syscall.h>
#include <unistd.h>
#endif
#ifndef _WIN32
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#endif

namespace iowait::test {
namespace {

using Pool = ConformanceTest;
INSTANTIATE_TEST_SUITE_P(Waiters, Pool, testing::ValuesIn(IOWait::available_backends()), name_of);

#ifdef __linux__
long this_tid() { return long(::syscall(SYS_gettid)); }
// Whether the thread is asleep (in the kernel wait, or waiting to lead).
bool asleep(long tid) {
    std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto paren = line.rfind(')');
    return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'S';
}
#else
long this_tid() { return 0; }
#endif

// Probes until every thread in `tids` has entered its wait and sleeps there
// (twice in a row, 5 ms apart). Where the system does not say (not Linux),
// the threads have announced that they are about to wait, and 200 ms more
// is what they get.
template <class F>
bool all_waiting(F announced, const std::vector<std::atomic<long>>& tids) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!announced()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(1ms);
    }
#ifdef __linux__
    int stable = 0;
    while (stable < 2) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        bool all = true;
        for (const auto& t : tids) all = all && asleep(t.load());
        stable = all ? stable + 1 : 0;
        std::this_thread::sleep_for(5ms);
    }
#else
    (void)tids;
    std::this_thread::sleep_for(200ms);
#endif
    return true;
}

std::chrono::nanoseconds thread_cpu_time() {
#ifdef _WIN32
    FILETIME created, exited, kernel, user;
    ::GetThreadTimes(::GetCurrentThread(), &created, &exited, &kernel, &user);
    auto ns = [](FILETIME f) { return (std::uint64_t(f.dwHighDateTime) << 32 | f.dwLowDateTime) * 100; };
    return std::chrono::nanoseconds(ns(kernel) + ns(user));
#else
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
#endif
}

// Reads what fd has (non-blocking); the number of bytes.
std::size_t read_all(fd_t fd) {
    char buf[4096];
    std::size_t total = 0;
    for (long n; (n = recv_some(fd, buf, sizeof buf)) > 0;) total += std::size_t(n);
    return total;
}

// L1, L2, L3: N threads, M socket pairs, a writer. Each report is handled
// by one thread, never by two at once (a per-fd flag), each reported fd
// has data (no readiness is reported twice), and every byte is read.
void pool_run(IOWait& w, Mode mode, int threads, int pairs, int writes) {
    std::vector<std::unique_ptr<socket_pair>> p;
    for (int i = 0; i < pairs; ++i) {
        p.push_back(std::make_unique<socket_pair>());
        w.watch(p.back()->a, Interest::read, std::uint64_t(i), mode);
    }
    std::vector<std::atomic<bool>> busy(static_cast<std::size_t>(pairs));
    std::atomic<std::size_t> read{0}, overlaps{0}, empty{0}, foreign{0};
    std::atomic<bool> stop{false};
    auto worker = [&] {
        while (!stop.load()) {
            for (const Event& e : w.wait(20ms)) {
                if (e.data >= std::uint64_t(pairs) || e.fd != p[e.data]->a) {
                    ++foreign;
                    continue;
                }
                if (busy[e.data].exchange(true)) ++overlaps;
                std::this_thread::yield();  // widen the window another thread would need
                const std::size_t n = read_all(e.fd);
                if (n == 0) ++empty;
                read += n;
                busy[e.data] = false;
                if (mode == Mode::oneshot) w.modify(e.fd, Interest::read, e.data, Mode::oneshot);
            }
        }
    };
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
    std::mt19937 rng(7);
    for (int i = 0; i < writes; ++i) {
        p[rng() % unsigned(pairs)]->send_b();
        if (i % 16 == 0) std::this_thread::yield();
    }
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (read.load() < std::size_t(writes) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    stop = true;
    for (auto& t : pool) t.join();
    EXPECT_EQ(read.load(), std::size_t(writes)) << "bytes were left unreported";
    EXPECT_EQ(overlaps.load(), 0u) << "two threads handled one fd at once";
    EXPECT_EQ(empty.load(), 0u) << "a readiness was reported to a thread after another had taken it";
    EXPECT_EQ(foreign.load(), 0u);
}

TEST_P(Pool, EachReadinessOfALevelWatchIsHandledByOneThreadAtATime) { pool_run(w, Mode::level, 4, 16, 2000); }

TEST_P(Pool, EachFiringOfAOneshotWatchGoesToOneThread) { pool_run(w, Mode::oneshot, 4, 16, 2000); }

TEST_P(Pool, EachEdgeGoesToOneThread) {
    if (!w.supports(Mode::edge)) GTEST_SKIP() << to_string(GetParam()) << " has no edge mode (M4)";
    pool_run(w, Mode::edge, 4, 16, 2000);
}

// L1, L2 across the moment a second thread first waits, while the first
// waits alone and is reported fds: it shares, and no fd goes to both.
TEST_P(Pool, ASecondThreadJoiningAThreadThatWaitsAloneNeverSharesItsFds) {
    for (int round = 0; round < 20; ++round) {
        IOWait x{GetParam()};
        socket_pair p, q;
        x.watch(p.a, Interest::read, 0);
        x.watch(q.a, Interest::read, 1);
        const fd_t fds[2] = {p.a, q.a};
        std::atomic<bool> busy[2] = {false, false};
        std::atomic<std::size_t> read{0}, overlaps{0};
        std::atomic<bool> stop{false};
        auto worker = [&] {
            while (!stop.load())
                for (const Event& e : x.wait(20ms)) {
                    if (busy[e.data].exchange(true)) ++overlaps;
                    std::this_thread::yield();
                    read += read_all(fds[e.data]);
                    busy[e.data] = false;
                }
        };
        std::thread first(worker);
        std::size_t written = 0;
        std::thread second;
        for (int i = 0; i < 40; ++i) {
            (i % 2 ? q : p).send_b();
            ++written;
            if (i == round + 5) second = std::thread(worker);
            std::this_thread::sleep_for(200us);
        }
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (read.load() < written && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
        stop = true;
        first.join();
        second.join();
        ASSERT_EQ(read.load(), written) << "round " << round;
        ASSERT_EQ(overlaps.load(), 0u) << "round " << round << ": two threads handled one fd at once";
    }
}

// L2: a reported watch is the reporting thread's until that thread waits
// again; meanwhile no other wait reports it, and none spins on it.
TEST_P(Pool, AReportedWatchIsHeldUntilItsThreadWaitsAgain) {
    socket_pair p;
    w.watch(p.a, Interest::read, 1);
    p.send_b();                                // stays readable: nobody reads it
    ASSERT_EQ(wait_events(w, 2s).size(), 1u);  // this thread has it now
    std::vector<Event> other;
    std::chrono::nanoseconds cpu{};
    std::thread([&] {
        const auto start = thread_cpu_time();
        other = wait_events(w, 200ms);
        cpu = thread_cpu_time() - start;
    }).join();
    EXPECT_TRUE(other.empty()) << "another thread was reported a watch this thread holds";
    EXPECT_LT(cpu, 100ms) << "the other thread's wait spun on the held watch";
    // This thread waits again: the watch is everyone's, and still ready.
    auto again = wait_events(w, 2s);
    ASSERT_EQ(again.size(), 1u) << "the watch was lost";
    std::thread([&] { other = wait_events(w, 50ms); }).join();
    EXPECT_TRUE(other.empty()) << "held again by this thread's last wait";
    // Read, and this thread's next wait finds nothing: the other thread gets the next byte.
    drain(p.a);
    EXPECT_TRUE(wait_events(w, 0s).empty());
    p.send_b();
    std::thread([&] { other = wait_events(w, 2s); }).join();
    ASSERT_EQ(other.size(), 1u);
    EXPECT_EQ(other[0].fd, p.a);
}

// L2: modify() or unwatch() of a held watch ends the hold.
TEST_P(Pool, ModifyOrUnwatchEndsTheHold) {
    socket_pair p, q;
    w.watch(p.a, Interest::read, 1);
    w.watch(q.a, Interest::read, 2);
    p.send_b();
    q.send_b();
    ASSERT_EQ(wait_events(w, 2s).size(), 2u);
    w.modify(p.a, Interest::read, 3);  // p is everyone's again, with its new data
    w.unwatch(q.a);
    w.watch(q.a, Interest::read, 4);  // a new watch: no hold
    std::vector<Event> other;
    std::thread([&] {
        const auto deadline = std::chrono::steady_clock::now() + 2s;
        while (other.size() < 2 && std::chrono::steady_clock::now() < deadline)
            for (const Event& e : w.wait(100ms))
                if (!find_event(other, e.fd)) other.push_back(e);
    }).join();
    ASSERT_EQ(other.size(), 2u);
    EXPECT_EQ(find_event(other, p.a)->data, 3u);
    EXPECT_EQ(find_event(other, q.a)->data, 4u);
}

// L9: a thread's Events stay as they were while other threads wait.
TEST_P(Pool, EachThreadKeepsItsOwnEvents) {
    socket_pair p, q;
    w.watch(p.a, Interest::read, 1);
    std::thread([&] { wait_events(w, 0s); }).join();  // a first thread: shared from the next wait on
    p.send_b();
    const std::span<const Event> mine = w.wait(2s);
    ASSERT_EQ(mine.size(), 1u);
    w.watch(q.a, Interest::read, 2);
    q.send_b();
    std::vector<Event> theirs;
    std::thread([&] {
        theirs = wait_events(w, 2s);
        EXPECT_FALSE(w.batch_full());
    }).join();
    ASSERT_EQ(theirs.size(), 1u);
    EXPECT_EQ(theirs[0].data, 2u);
    ASSERT_EQ(mine.size(), 1u);
    EXPECT_EQ(mine[0].fd, p.a) << "another thread's wait wrote over this thread's Events";
    EXPECT_EQ(mine[0].data, 1u);
}

// L5: notify() ends every wait in progress, each with no events.
TEST_P(Pool, NotifyEndsEveryWaitInProgress) {
    constexpr int n = 3;
    std::vector<std::atomic<long>> tids(n);
    std::atomic<int> announced{0}, returned{0}, with_events{0};
    std::vector<std::thread> pool;
    for (int i = 0; i < n; ++i)
        pool.emplace_back([&, i] {
            tids[std::size_t(i)] = this_tid();
            ++announced;
            if (!w.wait(10s).empty()) ++with_events;
            ++returned;
        });
    ASSERT_TRUE(all_waiting([&] { return announced.load() == n; }, tids));
    const auto start = std::chrono::steady_clock::now();
    w.notify();
    for (auto& t : pool) t.join();
    EXPECT_EQ(returned.load(), n);
    EXPECT_EQ(with_events.load(), 0);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "a wait ran to its timeout";
}

// L6: one readiness wakes one waiter; the others sleep on, and none spins.
TEST_P(Pool, OneReadinessWakesOneWaiterAndTheOthersSleep) {
    socket_pair p;
    w.watch(p.a, Interest::read, 1);
    constexpr int n = 4;
    std::vector<std::atomic<long>> tids(n);
    std::atomic<int> announced{0}, returned{0}, with_events{0};
    std::vector<std::chrono::nanoseconds> cpu(n);
    std::vector<std::thread> pool;
    for (int i = 0; i < n; ++i)
        pool.emplace_back([&, i] {
            tids[std::size_t(i)] = this_tid();
            ++announced;
            const auto start = thread_cpu_time();
            if (!w.wait(10s).empty()) ++with_events;
            cpu[std::size_t(i)] = thread_cpu_time() - start;
            ++returned;
        });
    ASSERT_TRUE(all_waiting([&] { return announced.load() == n; }, tids));
    p.send_b();
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (returned.load() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(100ms);  // time for a herd to show itself
    EXPECT_EQ(returned.load(), 1) << "one readiness woke more than one waiter";
    EXPECT_EQ(with_events.load(), 1);
    w.notify();
    for (auto& t : pool) t.join();
    EXPECT_EQ(with_events.load(), 1);
    for (auto c : cpu) EXPECT_LT(c, 100ms) << "a waiter spun";
}

// L4: a oneshot timer fires to exactly one of the threads waiting.
TEST_P(Pool, ATimerFiresToOneWaiter) {
    const fd_t id = w.watch_timer(30ms, 0ms, 5);
    constexpr int n = 4;
    std::atomic<int> reports{0};
    std::vector<std::thread> pool;
    for (int i = 0; i < n; ++i)
        pool.emplace_back([&] {
            const auto deadline = std::chrono::steady_clock::now() + 300ms;
            while (std::chrono::steady_clock::now() < deadline)
                for (const Event& e : w.wait(50ms))
                    if (e.fd == id) ++reports;
        });
    for (auto& t : pool) t.join();
    EXPECT_EQ(reports.load(), 1);
    w.unwatch(id);
}

#ifndef _WIN32
// L4: each delivery of a watched signal goes to exactly one waiter.
TEST_P(Pool, EachSignalDeliveryGoesToOneWaiter) {
    const fd_t id = w.watch_signal(SIGUSR2, 6);
    constexpr int n = 3;
    std::atomic<int> reports{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> pool;
    for (int i = 0; i < n; ++i)
        pool.emplace_back([&] {
            while (!stop.load())
                for (const Event& e : w.wait(20ms))
                    if (e.fd == id) ++reports;
        });
    int sent = 0;
    for (; sent < 5; ++sent) {
        const int before = reports.load();
        ::kill(::getpid(), SIGUSR2);
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (reports.load() == before && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(1ms);
        std::this_thread::sleep_for(30ms);  // a second report would come now
    }
    stop = true;
    for (auto& t : pool) t.join();
    EXPECT_EQ(reports.load(), sent);
    w.unwatch(id);
}

// L4: a child's exit is reported to exactly one waiter.
TEST_P(Pool, AProcessExitIsReportedToOneWaiter) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::usleep(30000);
        ::_exit(0);
    }
    const fd_t id = w.watch_process(child, 8);
    constexpr int n = 3;
    std::atomic<int> reports{0};
    std::vector<std::thread> pool;
    for (int i = 0; i < n; ++i)
        pool.emplace_back([&] {
            const auto deadline = std::chrono::steady_clock::now() + 500ms;
            while (std::chrono::steady_clock::now() < deadline)
                for (const Event& e : w.wait(50ms))
                    if (e.fd == id) ++reports;
        });
    for (auto& t : pool) t.join();
    int status = 0;
    EXPECT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_EQ(reports.load(), 1);
    w.unwatch(id);
}

// L8: a wait() from inside the same thread's wait() (a signal handler) is
// errc::wait_in_progress; the wait it interrupted goes on.
IOWait* reentered = nullptr;
std::atomic<int> reentry_result{-1};
extern "C" void reenter(int) {
    std::error_code ec;
    reentered->wait(std::chrono::seconds(0), ec);
    reentry_result = ec == errc::wait_in_progress ? 1 : 0;
}

TEST_P(Pool, AWaitFromInsideTheSameThreadsWaitIsWaitInProgress) {
    struct sigaction sa {
    }, old{};
    sa.sa_handler = reenter;
    ::sigemptyset(&sa.sa_mask);
    ASSERT_EQ(::sigaction(SIGURG, &sa, &old), 0);
    reentered = &w;
    reentry_result = -1;
    socket_pair p;
    w.watch(p.a, Interest::read, 1);
    std::vector<std::atomic<long>> tids(1);
    std::atomic<bool> announced{false};
    std::vector<Event> got;
    std::thread waiter([&] {
        tids[0] = this_tid();
        announced = true;
        got = wait_events(w, 10s);
    });
    ASSERT_TRUE(all_waiting([&] { return announced.load(); }, tids));
    ::pthread_kill(waiter.native_handle(), SIGURG);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (reentry_result.load() < 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
    p.send_b();
    waiter.join();
    ::sigaction(SIGURG, &old, nullptr);
    EXPECT_EQ(reentry_result.load(), 1);
    ASSERT_EQ(got.size(), 1u) << "the interrupted wait did not go on";
    EXPECT_EQ(got[0].data, 1u);
}
#endif

// L7: unwatch() from any thread: no wait that begins afterwards reports the
// watch; under threads that watch, unwatch and wait at once, every event
// carries data given to that fd's watch, and nothing is lost.
TEST_P(Pool, WatchUnwatchAndWaitFromManyThreadsAtOnce) {
    constexpr int pairs = 12;
    std::vector<std::unique_ptr<socket_pair>> p;
    for (int i = 0; i < pairs; ++i) p.push_back(std::make_unique<socket_pair>());
    // data = generation * pairs + index; what each index's watch has now (0: none).
    std::vector<std::atomic<std::uint64_t>> live(pairs);
    std::vector<std::mutex> mu(pairs);  // one churner at a time per pair
    for (int i = 0; i < pairs; ++i) {
        live[std::size_t(i)] = std::uint64_t(pairs + i);
        w.watch(p[std::size_t(i)]->a, Interest::read, live[std::size_t(i)].load());
    }
    // No per-fd flag here: an unwatch() ends a hold (L2), so two threads
    // may rightly have one fd at once; Pool.EachReadiness* check that.
    std::atomic<std::size_t> read{0}, stale{0};
    std::atomic<bool> stop{false}, stop_churn{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t)
        threads.emplace_back([&] {
            while (!stop.load())
                for (const Event& e : w.wait(20ms)) {
                    const std::size_t i = std::size_t(e.data % pairs);
                    if (e.fd != p[i]->a) {
                        ++stale;
                        continue;
                    }
                    read += read_all(e.fd);
                }
        });
    for (int t = 0; t < 2; ++t)
        threads.emplace_back([&, t] {
            std::mt19937 rng(unsigned(t + 11));
            std::uint64_t generation = 2 + std::uint64_t(t) * 1000000;
            while (!stop_churn.load()) {
                const std::size_t i = rng() % pairs;
                std::lock_guard lock(mu[i]);
                if (live[i].load() != 0) {
                    w.unwatch(p[i]->a);
                    live[i] = 0;
                } else {
                    const std::uint64_t data = ++generation * pairs + i;
                    live[i] = data;
                    w.watch(p[i]->a, Interest::read, data);
                }
                std::this_thread::yield();
            }
        });
    std::mt19937 rng(3);
    int written = 0;
    const auto until = std::chrono::steady_clock::now() + 500ms;
    while (std::chrono::steady_clock::now() < until) {
        p[rng() % pairs]->send_b();
        ++written;
        std::this_thread::sleep_for(100us);
    }
    // Every pair watched again, the churners stopped: all that was written is read.
    stop_churn = true;
    for (std::size_t t = 3; t < threads.size(); ++t) threads[t].join();
    for (int i = 0; i < pairs; ++i)
        if (live[std::size_t(i)].load() == 0) w.watch(p[std::size_t(i)]->a, Interest::read, std::uint64_t(i));
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (read.load() < std::size_t(written) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    stop = true;
    for (int t = 0; t < 3; ++t) threads[std::size_t(t)].join();
    EXPECT_EQ(read.load(), std::size_t(written)) << "bytes were left unreported";
    EXPECT_EQ(stale.load(), 0u) << "an event whose data was never this fd's";
}

}  // namespace
}  // namespace iowait::test
