// Several threads waiting on one IOWait (docs/behaviour.md, "Several
// waiters"): what the front end keeps for them once a second thread has
// waited. Until then one thread waits and none of this exists.
//
// How, the same for every backend: one thread at a time, the leader, makes
// the kernel wait and the pass over its answer; the others wait, on a
// condition variable, to lead next (leader/follower). The leader's pass
// holds every fd watch it reports for the leader's thread: it disarms the
// watch (modify(fd, Interest::none), as emulated oneshot does) so that no
// other thread's wait reports it and no kernel wait wakes for it, and the
// holding thread's next wait() re-arms it before it waits. A modify() or an
// unwatch() of the watch ends the hold too. Each thread has its own Events,
// valid until its next wait().
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "iowait/iowait.hpp"

namespace iowait::detail {

// One thread's part.
struct waiter {
    std::uintptr_t key = 0;           // thread_key() of its thread
    std::uint16_t index = 0;          // 1 and up: slot::holder of the watches it holds
    bool in_wait = false;             // a wait() of this thread is running (errc::wait_in_progress)
    bool batch_full = false;          // IOWait::batch_full() of its last wait
    std::unique_ptr<Event[]> events;  // its last wait's Events, lent to the front end while it leads
    std::size_t capacity = 0;
    std::size_t count = 0;
    // The watches its last wait reported and holds: fd and generation.
    std::vector<std::pair<native_handle, std::uint32_t>> held;
};

// The waiters of one IOWait, made by the first wait() of a second thread.
struct shared_waits {
    std::mutex mu;  // guards everything here; taken before the front end's lock, never after
    std::condition_variable cv;
    std::vector<std::unique_ptr<waiter>> waiters;
    waiter* leader = nullptr;    // the thread in the kernel wait and its pass, if any
    std::size_t followers = 0;   // threads waiting to lead
    std::uint64_t notifies = 0;  // notify() calls while shared: a follower that sees it move returns

    // The record of a thread, made on its first wait; null if out of memory
    // or out of indices.
    waiter* of(std::uintptr_t key) noexcept {
        for (auto& w : waiters)
            if (w->key == key) return w.get();
        if (waiters.size() >= 0xfffe) return nullptr;
        try {
            auto w = std::make_unique<waiter>();
            w->key = key;
            w->index = std::uint16_t(waiters.size() + 1);
            waiters.push_back(std::move(w));
            return waiters.back().get();
        } catch (const std::bad_alloc&) {
            return nullptr;
        }
    }
};

}  // namespace iowait::detail
