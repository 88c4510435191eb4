// The front end's lock. It is held for a few loads and stores per event, and
// is almost never contended (another thread's watch/modify/unwatch during a
// wait). std::mutex costs about 55 user-space instructions per lock and
// unlock pair there (glibc's pthread_mutex_lock handles every mutex type and
// lock elision); this one costs about 5, measured with callgrind in
// bench/run. Contended, it sleeps in the kernel (a futex on Linux) through
// C++20 atomic wait, so a waiter never spins on a preempted holder.
//
// Drepper's "Futexes Are Tricky", mutex 2: 0 free, 1 locked, 2 locked and
// someone may be sleeping, so unlock() makes a system call only then.
#pragma once

#include <atomic>
#include <mutex>

namespace iowait::detail {

#ifdef _WIN32
// mingw-w64's libstdc++ has no futex behind atomic wait/notify, only a
// fallback; under Wine the threading tests then timed out on the afd backend.
// Windows keeps the standard mutex.
using small_mutex = std::mutex;
#else
class small_mutex {
public:
    void lock() noexcept {
        int c = 0;
        if (!state_.compare_exchange_strong(c, 1, std::memory_order_acquire, std::memory_order_relaxed))
            lock_contended(c);
    }
    // For a fast path that has somewhere else to go when another thread holds it.
    bool try_lock() noexcept {
        int c = 0;
        return state_.compare_exchange_strong(c, 1, std::memory_order_acquire, std::memory_order_relaxed);
    }
    void unlock() noexcept {
        if (state_.exchange(0, std::memory_order_release) == 2) state_.notify_one();
    }

private:
    void lock_contended(int c) noexcept {
        if (c != 2) c = state_.exchange(2, std::memory_order_acquire);
        while (c != 0) {
            state_.wait(2, std::memory_order_relaxed);
            c = state_.exchange(2, std::memory_order_acquire);
        }
    }

    std::atomic<int> state_{0};
};

#endif

}  // namespace iowait::detail
