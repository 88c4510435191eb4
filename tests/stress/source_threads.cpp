// Sources under threads (docs/behaviour.md, G3, T8, and N1-N8 for sources):
// while one thread waits in a loop, several others watch, modify and unwatch
// signals, child processes and timers of the same IOWait and make them fire:
// signals sent with kill() to the process, raise() in the worker and
// pthread_kill() to the waiter, a child that exits at once, timers due at
// once. Each worker then waits until the waiter has reported its source with
// the data it gave last; a report that does not come within 5 s is a lost
// delivery, named with the worker and the round. Meanwhile one more worker
// churns timers an hour away, which must never be reported. Runs under TSan
// too (the tsan preset): the waiter, the workers and the signal handler share
// the sources' state.
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>

#include "stress.hpp"

namespace iowait::test {
namespace {

class SourceThreads : public testing::TestWithParam<Backend> {};
INSTANTIATE_TEST_SUITE_P(Stress, SourceThreads, testing::ValuesIn(IOWait::available_backends()), name_of);

using clock = std::chrono::steady_clock;

enum worker { level_signal, oneshot_signal, timer, process, churn, workers };
const char* const worker_names[] = {"SIGUSR1 (kill, pthread_kill)", "SIGUSR2 (raise, kill)", "timer", "process",
                                    "churn"};

// A source's data: the worker (from 1) and its round, so the waiter knows whose it is.
std::uint64_t data_of(int k, std::uint32_t round) { return std::uint64_t(k + 1) << 32 | round; }

// Under ThreadSanitizer a delivery is at times not reported within 5 s:
// measured, the signal hub's count did not move, so the handler never ran
// (TSan runs handlers of asynchronous signals at points of its own), for
// signals sent with pthread_kill() to the waiter and at times for all of a
// run's first signals at once. Never in the plain build, under ASan or
// under valgrind, which check every delivery. Under TSan this test is here
// for the races between the waiter, the workers and the handler: a late
// delivery is printed, not failed.
#if defined(__SANITIZE_THREAD__)
constexpr bool under_tsan = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool under_tsan = true;
#else
constexpr bool under_tsan = false;
#endif
#else
constexpr bool under_tsan = false;
#endif

class run {
public:
    explicit run(Backend b) : w(b), keeper(b) {}

    IOWait w;
    // Keeps iowait's handler installed for both signals all along: a delivery
    // that lands after a worker's unwatch() must not end the process (G2).
    IOWait keeper;
    pthread_t waiter = ::pthread_self();
    std::atomic<bool> stop{false};
    std::atomic<std::uint32_t> seen[workers] = {};  // the highest round reported, per worker
    std::atomic<int> rounds[workers] = {};          // completed, per worker
    std::atomic<int> unexpected{0};

    // The waiter has reported worker k's source with round r (or a later one).
    bool reported(int k, std::uint32_t r) {
        const auto deadline = clock::now() + 5s;
        while (seen[k].load() < r) {
            if (clock::now() > deadline) {
                std::lock_guard lock(mu_);
                if (under_tsan) {
                    std::printf(
                        "ThreadSanitizer: %s: %s, round %u: not reported within 5 s; not a failure "
                        "under TSan (see under_tsan)\n",
                        std::string(to_string(w.backend())).c_str(), worker_names[k], unsigned(r));
                    return true;
                }
                ADD_FAILURE() << to_string(w.backend()) << ": " << worker_names[k] << ", round " << r
                              << ": not reported within 5 s (a lost delivery)";
                return false;
            }
            std::this_thread::sleep_for(100us);
        }
        return true;
    }

    // The waiter: until every worker has ended, records what was reported.
    void wait_loop(const std::atomic<int>& running) {
        while (running.load() != 0)
            for (const Event& e : wait_events(w, 20ms)) {
                const auto k = int(e.data >> 32) - 1;
                const auto r = std::uint32_t(e.data);
                if (k < 0 || k >= churn || !e.read || e.write || e.hangup || e.error) {
                    unexpected.fetch_add(1);
                    continue;
                }
                std::uint32_t old = seen[k].load();
                while (old < r && !seen[k].compare_exchange_weak(old, r)) {
                }
            }
    }

    // One round of a worker: true to go on.
    bool round(int k, std::uint32_t r) {
        switch (k) {
        case level_signal: {
            const fd_t id = w.watch_signal(SIGUSR1, data_of(k, r));
            ::kill(::getpid(), SIGUSR1);
            bool ok = reported(k, r);
            w.modify(id, Interest::read, data_of(k, r + 1), Mode::oneshot);
            ::pthread_kill(waiter, SIGUSR1);  // the handler runs in the waiting thread
            ok = ok && reported(k, r + 1);
            w.unwatch(id);
            return ok;
        }
        case oneshot_signal: {
            const fd_t id = w.watch_signal(SIGUSR2, data_of(k, r), Mode::oneshot);
            ::raise(SIGUSR2);  // the handler runs here
            bool ok = reported(k, r);
            w.modify(id, Interest::read, data_of(k, r + 1), Mode::level);
            ::kill(::getpid(), SIGUSR2);
            ok = ok && reported(k, r + 1);
            w.unwatch(id);
            return ok;
        }
        case timer: {
            const fd_t id = w.watch_timer(0ms, 1ms, data_of(k, r), Mode::oneshot);
            bool ok = reported(k, r);
            w.modify(id, Interest::read, data_of(k, r + 1), Mode::oneshot);  // due again within 1 ms
            ok = ok && reported(k, r + 1);
            w.unwatch(id);
            return ok;
        }
        case process: {
            const pid_t pid = ::fork();
            if (pid == 0) ::_exit(0);
            if (pid < 0) {
                ADD_FAILURE() << "fork: " << std::strerror(errno);
                return false;
            }
            const fd_t id = w.watch_process(pid, data_of(k, r));
            bool ok = reported(k, r);
            ::waitpid(pid, nullptr, 0);
            w.modify(id, Interest::read, data_of(k, r + 1), Mode::oneshot);  // K1: reported once more
            ok = ok && reported(k, r + 1);
            w.unwatch(id);
            return ok;
        }
        default: {
            fd_t ids[3];
            for (auto& id : ids) id = w.watch_timer(1h, 1h, data_of(k, r));
            for (auto& id : ids) w.modify(id, Interest::read, data_of(k, r + 1), Mode::oneshot);
            for (auto& id : ids) w.unwatch(id);
            std::this_thread::sleep_for(200us);
            return true;
        }
        }
    }

private:
    std::mutex mu_;
};

TEST_P(SourceThreads, WatchModifyUnwatchFromSeveralThreadsWhileOneWaitsLoseNoDelivery) {
    run t(GetParam());
    const fd_t kept[] = {t.keeper.watch_signal(SIGUSR1), t.keeper.watch_signal(SIGUSR2)};
    const auto length = std::chrono::duration_cast<clock::duration>(300ms * stress_scale());
    std::atomic<int> running{workers};
    std::vector<std::thread> threads;
    const auto end = clock::now() + length;
    for (int k = 0; k < workers; ++k)
        threads.emplace_back([&, k] {
            // Three rounds at least, however short the run (valgrind's scale).
            for (std::uint32_t r = 1; r < 6 || clock::now() < end; r += 2) {
                if (!t.round(k, r)) break;
                t.rounds[k].fetch_add(1);
            }
            running.fetch_sub(1);
        });
    t.wait_loop(running);
    for (auto& th : threads) th.join();
    for (fd_t id : kept) t.keeper.unwatch(id);
    EXPECT_EQ(t.unexpected.load(), 0) << "events of no worker, or a churned timer an hour away";
    std::printf("%s: rounds", std::string(to_string(GetParam())).c_str());
    for (int k = 0; k < workers; ++k) {
        std::printf(" %s %d%s", worker_names[k], t.rounds[k].load(), k + 1 < workers ? "," : "\n");
        EXPECT_GE(t.rounds[k].load(), 3) << worker_names[k] << ": a round failed";
    }
    std::fflush(stdout);  // not in the next test's forked children (valgrind flushes theirs)
}

}  // namespace
}  // namespace iowait::test
