// Stress for the threading rule (N3-N8 of docs/behaviour.md), on every
// backend: several threads watch, modify (changing mode and re-arming
// oneshots) and unwatch socket pairs at random while one thread waits, one
// writes and one notifies. Checks, for every event, that it belongs to a live
// watch of that fd with its current data, and at the end that nothing was
// lost: every byte written was reported readable and read.
//
// Bounded by time, not by iterations (IOWAIT_STRESS_MS, default 1000 per
// backend), so a slow build (ThreadSanitizer) does less work, not more time.
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "helpers.hpp"

namespace iowait::test {
namespace {

constexpr int mutators = 3;
constexpr int slots_per_mutator = 8;
constexpr int slot_count = mutators * slots_per_mutator;
constexpr std::uint64_t live = UINT64_MAX;

std::chrono::milliseconds run_time() {
    const char* ms = std::getenv("IOWAIT_STRESS_MS");
    return std::chrono::milliseconds(ms ? std::strtol(ms, nullptr, 10) : 1000);
}

// Every user data value ever given: which fd it was given for, and the
// number of the last wait() that may still report it (live until the
// modify() or unwatch() that replaced it returned).
class data_registry {
public:
    // fd in the high half, so a mix-up of fds shows in the value itself.
    std::uint64_t make(int fd) {
        const std::uint64_t d = std::uint64_t(fd) << 32 | ++next_;
        std::lock_guard lock(mu_);
        entries_[d] = {fd, live};
        return d;
    }
    void retire(std::uint64_t d, std::uint64_t last_wait) {
        std::lock_guard lock(mu_);
        entries_[d].last_wait = last_wait;
    }
    // Empty if `e`, reported by wait number `wait`, is allowed.
    std::string check(const Event& e, std::uint64_t wait) {
        std::lock_guard lock(mu_);
        auto it = entries_.find(e.data);
        if (it == entries_.end()) return "data never given to watch()/modify()";
        if (it->second.fd != e.fd) return "data of fd " + std::to_string(it->second.fd) + " reported for another fd";
        if (wait > it->second.last_wait)
            return "data replaced or unwatched before wait #" + std::to_string(wait) + " began";
        return {};
    }

private:
    struct entry {
        int fd;
        std::uint64_t last_wait;
    };
    std::atomic<std::uint32_t> next_{0};
    std::mutex mu_;
    std::unordered_map<std::uint64_t, entry> entries_;
};

struct slot {
    socket_pair pair;
    bool watched = false;  // owned by one mutator thread, then by the test body
    std::uint64_t data = 0;
    std::atomic<std::uint64_t> written{0};
    std::atomic<std::uint64_t> read{0};  // by the waiter only
};

class Threads : public testing::TestWithParam<Backend> {};
INSTANTIATE_TEST_SUITE_P(Stress, Threads, testing::ValuesIn(IOWait::available_backends()), name_of);

TEST_P(Threads, WatchModifyUnwatchFromManyThreadsWhileOneWaitsAndOneNotifies) {
    IOWait w{GetParam()};
    std::vector<std::unique_ptr<slot>> slots;
    std::unordered_map<int, slot*> by_fd;
    for (int i = 0; i < slot_count; ++i) {
        slots.push_back(std::make_unique<slot>());
        by_fd[slots.back()->pair.a] = slots.back().get();
    }
    data_registry registry;
    std::atomic<std::uint64_t> waits{0}, events{0}, ops{0};
    std::atomic<bool> stop_waiter{false}, stop_others{false};
    std::mutex failures_mu;
    std::vector<std::string> failures;
    auto fail = [&](std::string what) {
        std::lock_guard lock(failures_mu);
        if (failures.size() < 20) failures.push_back(std::move(what));
    };

    std::thread waiter([&] {
        char buf[4096];
        std::vector<int> seen;
        while (!stop_waiter.load()) {
            // Numbered before it begins, so that a number read after an
            // unwatch() returned bounds the waits that may still report it.
            const std::uint64_t n = ++waits;
            std::error_code ec;
            auto batch = w.wait(50ms, ec);
            if (ec) {
                fail("wait: " + ec.message());
                return;
            }
            seen.clear();
            for (const Event& e : batch) {
                ++events;
                if (std::find(seen.begin(), seen.end(), e.fd) != seen.end())
                    fail("fd " + std::to_string(e.fd) + " twice in one wait");
                seen.push_back(e.fd);
                if (auto why = registry.check(e, n); !why.empty()) fail("fd " + std::to_string(e.fd) + ": " + why);
                auto it = by_fd.find(e.fd);
                if (it == by_fd.end()) {
                    fail("event for fd " + std::to_string(e.fd) + ", never watched");
                    continue;
                }
                // Read everything: an edge watch reports only new data.
                if (e.read)
                    for (ssize_t got; (got = ::recv(e.fd, buf, sizeof buf, 0)) > 0;) it->second->read += got;
            }
        }
    });

    const bool edge = w.supports(Mode::edge);
    auto mutator = [&](int first) {
        std::minstd_rand rng(unsigned(first + 1));
        while (!stop_others.load()) {
            slot& s = *slots[std::size_t(first + int(rng() % slots_per_mutator))];
            const int fd = s.pair.a;
            // Write interest only where the watch does not report it on every
            // wait (a level watch of a writable socket would make the waiter spin).
            Mode mode = Mode::level;
            Interest interest = Interest::read;
            switch (rng() % (edge ? 5 : 3)) {
            case 0: break;
            case 1: mode = Mode::oneshot; break;
            case 2: mode = Mode::oneshot, interest = Interest::read_write; break;
            case 3: mode = Mode::edge; break;
            case 4: mode = Mode::edge, interest = Interest::read_write; break;
            }
            std::error_code ec;
            const std::uint64_t old = s.data;
            if (!s.watched) {
                s.data = registry.make(fd);
                w.watch(fd, interest, s.data, mode, ec);
                s.watched = true;
            } else if (rng() % 3 != 0) {
                s.data = registry.make(fd);  // given before the call: events may carry it before it returns
                w.modify(fd, interest, s.data, mode, ec);
                registry.retire(old, waits.load());
            } else {
                w.unwatch(fd, ec);
                registry.retire(old, waits.load());
                s.watched = false;
            }
            if (ec) fail("fd " + std::to_string(fd) + ": " + ec.message());
            ++ops;
        }
    };

    std::thread writer([&] {
        std::minstd_rand rng(7);
        while (!stop_others.load()) {
            slot& s = *slots[rng() % slot_count];
            if (::send(s.pair.b, "x", 1, MSG_DONTWAIT) == 1) ++s.written;  // a full buffer (EAGAIN) is no loss
            std::this_thread::sleep_for(20us);
        }
    });
    std::thread notifier([&] {
        while (!stop_others.load()) {
            w.notify();
            std::this_thread::sleep_for(500us);
        }
    });
    std::vector<std::thread> threads;
    for (int m = 0; m < mutators; ++m) threads.emplace_back(mutator, m * slots_per_mutator);

    std::this_thread::sleep_for(run_time());
    stop_others = true;
    for (auto& t : threads) t.join();
    writer.join();
    notifier.join();

    // Nothing lost: with every fd watched again, level-triggered (some were
    // unwatched or disarmed oneshots), all the bytes written get read. Done
    // while the waiter runs, so this is one more modify/watch during a wait.
    for (auto& s : slots) {
        const std::uint64_t old = s->data;
        s->data = registry.make(s->pair.a);
        if (s->watched) {
            w.modify(s->pair.a, Interest::read, s->data);
            registry.retire(old, waits.load());
        } else {
            w.watch(s->pair.a, Interest::read, s->data);
        }
    }
    auto unread = [&] {
        std::uint64_t n = 0;
        for (auto& s : slots) n += s->written.load() - s->read.load();
        return n;
    };
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (unread() != 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
    stop_waiter = true;
    w.notify();
    waiter.join();

    for (const auto& f : failures) ADD_FAILURE() << f;
    std::uint64_t written = 0;
    for (auto& s : slots) {
        EXPECT_EQ(s->read.load(), s->written.load()) << "fd " << s->pair.a << ": bytes written but never reported";
        written += s->written.load();
    }
    std::cout << "[ STATS    ] " << to_string(GetParam()) << ": " << ops.load() << " watch/modify/unwatch, "
              << waits.load() << " waits, " << events.load() << " events, " << written << " bytes\n";
    // A run that did nothing would prove nothing.
    EXPECT_GT(ops.load(), 100u);
    EXPECT_GT(events.load(), 10u);
    EXPECT_GT(written, 10u);
}

}  // namespace
}  // namespace iowait::test
