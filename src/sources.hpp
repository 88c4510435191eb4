// Signals, child processes and timers as sources in an IOWait, beside the
// fds, the same on every backend (docs/behaviour.md, "Sources").
//
// How, once for every backend:
// - timers live here, as deadlines on the monotonic clock in a 4-ary heap
//   (as libev's): the front end shortens the kernel wait to the heap's top
//   (before_wait) and reports the timers due after it (collect). No kernel
//   timer object, so a timer has the precision of the wait's own timeout on
//   every backend. Start, stop and re-arm are O(log n), a wait with k timers
//   due O(k log n), the next deadline O(1). Why a heap and not a timing
//   wheel: a wheel's O(1) start is paid back by a cascade at each turn and a
//   tick that rounds every deadline, while a heap's deadline is exact
//   (never early, T5) and its log n at a million timers is 10 levels of
//   four: measured in bench/run's timer table against libev and libuv.
// - signals: a sigaction handler (detail/signal_hub.hpp says why not
//   signalfd) counts each delivery and writes to a waker this IOWait's
//   backend watches: the front end's notify() waker where it has one (so
//   that select, whose waker is kept below FD_SETSIZE, never needs a second
//   fd at any number), else one of our own.
// - processes: a pidfd (Linux 5.3+) the backend watches; without pidfd, or
//   where the backend refuses it (select, a pidfd at or above FD_SETSIZE),
//   the SIGCHLD of the signal hub and waitid(WNOHANG | WNOWAIT), which
//   neither reaps nor blocks, asked of the processes watched that way only.
// - Windows: console control events stand for SIGINT and SIGBREAK
//   (signal_hub_windows.cpp), and a process's handle is waited on by the
//   thread pool (detail/process_wait.hpp); both write to the same waker, a
//   socket, which afd and wsapoll watch like any other.
// - natively, where the backend takes the source (backend::add_source:
//   kqueue's EVFILT_SIGNAL and EVFILT_PROC): the kernel reports it, and
//   only its bookkeeping stays here (modes, re-arming, what fired while
//   disarmed; for a signal the hub's handler still holds the disposition,
//   so that the default action does not run).
// Every internal fd goes to the backend with a token of source_generation,
// which no watch's token has, so its entries leave the sink's inline path
// for the front end's slow path: the fd path's cost is unchanged. A pidfd's
// and a native source's token carry the source's id (which names its slot
// and generation), so that an entry names its own source in O(1) and a
// stale one (of a source unwatched meanwhile) names none.
//
// Nothing but the destructor walks every source: a source is found by its
// id (a slot), a signal's delivery reaches the one source of that signal, a
// pidfd's or a knote's entry its own process, and SIGCHLD only the
// processes watched without a pidfd.
//
// Everything here runs under the front end's lock.
#pragma once

#include <climits>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "backend.hpp"
#include "detail/status.hpp"
#include "detail/waker.hpp"
#include "iowait/iowait.hpp"

namespace iowait::detail {

class process_wait;

constexpr std::uint32_t source_generation = ~std::uint32_t(0);  // no watch has it

// A source id: native_handle(-2 - n), n = generation << index_bits | slot.
inline bool is_source_id(native_handle h) noexcept { return std::int64_t(std::intptr_t(h)) <= -2; }

class sources {
public:
    // shared: the front end's waker, which the signals' handler then writes
    // to (the front end calls woken() when it reads it); null where the
    // backend wakes itself and has none.
    sources(backend& be, const waker* shared) noexcept;
    ~sources();
    sources(const sources&) = delete;
    sources& operator=(const sources&) = delete;

    // The most sources one IOWait holds at once (ENOMEM beyond): the index
    // bits of an id; its other bits are the slot's generation.
    static constexpr int index_bits = 22;
    static constexpr std::uint32_t max_sources = (std::uint32_t(1) << index_bits) - 1;
    // The most Events one wait reports for sources; more that are due are
    // reported by the next wait, which then does not block (as epoll's
    // maxevents). Keeps the front end's Event array independent of how many
    // timers are armed.
    static constexpr std::size_t max_per_wait = 1024;

    status watch_signal(int signo, std::uint64_t data, Mode mode, native_handle& id) noexcept;
    status watch_process(std::int64_t pid, std::uint64_t data, native_handle& id) noexcept;
    status watch_timer(std::int64_t first_ns, std::int64_t period_ns, std::uint64_t data, Mode mode,
                       native_handle& id) noexcept;
    // not_watched for an id this IOWait gave out and that is gone; bad_fd for
    // one it never gave out (as for any negative fd).
    status modify(native_handle id, Interest interest, std::uint64_t data, Mode mode) noexcept;
    status unwatch(native_handle id) noexcept;

    // Our fds in the backend's kernel set (our own signals' waker, the
    // pidfds), for the front end's rebuild() of that set: they must be in the new one.
    void kernel_fds(std::vector<rewatch>& out) const;
    // An entry of the backend with source_generation, given the token's low
    // half: one of our fds is ready, or (a source id) a native source fired.
    void ready(std::uint32_t low) noexcept;
    // Whether the last call needs a waiter woken (front_end.hpp's on_sources()).
    bool take_wake() noexcept {
        const bool w = wake_;
        wake_ = false;
        return w;
    }
    // The shared waker was read: a signal may have been delivered.
    void woken() noexcept { check_ = check_ || hub_users_ != 0 || !polled_.empty(); }
    // Whether the front end must call before_wait() (the lock before the
    // kernel wait): a timer is armed or something is already pending.
    bool need_before_wait() const noexcept { return check_ || !queue_.empty() || !heap_.empty(); }
    // The longest the kernel may wait (ns; -1: no bound) given `remaining`.
    std::int64_t before_wait(std::int64_t remaining) noexcept;
    // At most how many Events collect() writes: what the front end reserves.
    std::size_t size() const noexcept { return live_ < max_per_wait ? live_ : max_per_wait; }
    // Writes an Event for each source that fired, up to `end`; returns the
    // next free place.
    Event* collect(Event* out, Event* end) noexcept;

private:
    enum class kind : std::uint8_t { free, signal, process, timer };
    static constexpr std::uint32_t none = ~std::uint32_t(0);
    struct timer_part {
        std::int64_t due;     // the next deadline (steady clock, ns)
        std::int64_t period;  // 0 for once
    };
    struct signal_part {
        std::uint64_t seen;  // the hub's count when last reported
        int signo;
    };
    struct process_part {
        std::int64_t pid;
        int pidfd;  // -1 where SIGCHLD and waitid() do it; -2 neither (native, or closed as it fired)
#ifdef _WIN32
        process_wait* wait;  // the thread pool's wait; null if it had exited at the watch
#endif
    };
    // One slot of slots_, 40 bytes on 64-bit POSIX (a timer also has a
    // 16-byte entry in heap_).
    struct source {
        std::uint64_t data = 0;
        union {
            timer_part timer;
            signal_part signal;
            process_part process;
        };
        // timer: its place in heap_ while in it; process: in polled_ while
        // in it; a free slot: the next free one.
        std::uint32_t link = none;
        std::uint16_t generation = 0;
        kind what = kind::free;
        Mode mode = Mode::level;
        bool armed = true;
        bool native = false;  // signal, process: the backend's kernel watches it (add_source)
        bool fired = false;   // process: exited; timer (period 0): spent; native signal: not reported yet
        bool queued = false;  // has an entry in queue_
        source() noexcept : timer{} {}
    };
    static_assert(sizeof(native_handle) >= 4);
    static constexpr int generation_bits = 31 - index_bits;  // n below 2^31 - 1: -2 - n fits an int
    static constexpr std::uint32_t index_mask = max_sources;
    struct heap_entry {
        std::int64_t due;  // the timer's, here so that the heap's compares stay in heap_
        std::uint32_t index;
    };

    static native_handle id_of(std::uint32_t index, const source& s) noexcept {
        return native_handle(-2 - std::intptr_t((std::uint32_t(s.generation) << index_bits) | index));
    }
    static std::int64_t now_ns() noexcept;  // the monotonic clock (steady_clock's)
#ifndef _WIN32
    // Whether the child has exited, without reaping it; true also once
    // someone has reaped it (ECHILD), since it has exited then too.
    static bool has_exited(std::int64_t pid) noexcept;
#endif
    source* find(native_handle id) noexcept {
        const std::int64_t v = std::intptr_t(id);
        if (v > -2 || v < -2 - std::int64_t(INT32_MAX)) return nullptr;
        const auto n = std::uint32_t(-2 - v);
        const std::uint32_t index = n & index_mask;
        if (index >= slots_.size()) return nullptr;
        source& s = slots_[index];
        return s.what != kind::free && s.generation == n >> index_bits ? &s : nullptr;
    }
    status unknown(native_handle id) const noexcept;  // not_watched or bad_fd for an id find() does not know
    // A free slot (or a new one); none without memory or past max_sources.
    // A failed watch gives it back with free_slot(). A slot comes back only
    // once `keep_free` others are free, oldest first: an unwatched id names
    // nothing again until its slot has been reused 2^generation_bits times,
    // so that a stale id is not_watched, not another source, for at least
    // keep_free * 512 watches after it.
    static constexpr std::uint32_t keep_free = 256;
    std::uint32_t take_slot() noexcept {
        if (free_count_ > keep_free) return pop_free();
        if (slots_.size() < slots_.capacity() && slots_.size() < max_sources) [[likely]] {
            slots_.emplace_back();  // within the capacity: no allocation, no throw
            return std::uint32_t(slots_.size() - 1);
        }
        return new_slot();
    }
    std::uint32_t pop_free() noexcept {
        const std::uint32_t index = free_head_;
        free_head_ = slots_[index].link;
        if (free_head_ == none) free_tail_ = none;
        --free_count_;
        slots_[index].link = none;
        return index;
    }
    [[gnu::noinline]] std::uint32_t new_slot() noexcept;  // take_slot()'s growth
    void free_slot(std::uint32_t index) noexcept {
        source& s = slots_[index];
        // What a watch does not set itself goes back to its default; the data
        // and the kind's own part are written by the next watch. queued stays:
        // its entry stays in queue_, which the next source here then owns.
        s.what = kind::free;
        s.generation = std::uint16_t((s.generation + 1) & ((1u << generation_bits) - 1));
        s.armed = true;
        s.native = false;
        s.fired = false;
        s.link = none;
        if (free_tail_ == none)
            free_head_ = index;
        else
            slots_[free_tail_].link = index;
        free_tail_ = index;
        ++free_count_;
    }
    // queue_'s room for every signal and process source, made before one is
    // added, so that queue() (in the wait's pass) never allocates.
    status reserve_queue() noexcept;
    void queue(std::uint32_t index) noexcept;  // to be looked at by the next collect()
    // With no source left, the front end calls no collect(): what it would
    // have looked at must not keep the waits from sleeping (before_wait()).
    void forget_pending() noexcept;

    // The heap of armed timers that are not spent.
    status heap_push(std::uint32_t index) noexcept;
    [[gnu::noinline]] status heap_grow() noexcept;
    // Inline where they are used (sources.cpp): a call's register saves and
    // restores cost as much as a level of the heap.
    [[gnu::always_inline]] inline void heap_remove(std::uint32_t pos) noexcept;
    [[gnu::always_inline]] inline void heap_up(std::uint32_t pos) noexcept;
    [[gnu::always_inline]] inline void heap_down(std::uint32_t pos) noexcept;
    void heap_place(std::uint32_t pos, heap_entry e) noexcept {
        heap_[pos] = e;
        slots_[e.index].link = pos;
    }

    status polled_add(std::uint32_t index) noexcept;
    void polled_remove(std::uint32_t index) noexcept;

    // sources_windows.cpp: after the checks that are the same everywhere.
    status watch_process_windows(std::int64_t pid, std::uint64_t data, native_handle& id) noexcept;
    native_handle wake_fd() const noexcept;  // where the hub and the process waits write
    status use_waker() noexcept;             // own_, made and watched by the first user (no shared one)
    status use_signal(int signo) noexcept;   // this IOWait's share of the hub
    void drop_signal(int signo) noexcept;
    status watch_native(std::uint32_t index, backend::source_kind as, std::int64_t ident) noexcept;
    void drop_native(const source& s) noexcept;
    void release(std::uint32_t index) noexcept;  // what a source holds outside its slot
    void fire(source& s, std::uint32_t index, Event*& out) noexcept;
    void check_wake() noexcept;  // after a wake: which signals came, which polled processes exited
    void fire_queued(std::uint32_t index, Event*& out) noexcept;
    void fire_timer(std::int64_t now, Event*& out) noexcept;  // the heap's top, due

    backend& be_;
    const waker* const shared_;
    std::vector<source> slots_;                          // by index
    std::uint32_t free_head_ = none, free_tail_ = none;  // the free slots, oldest first
    std::uint32_t free_count_ = 0;
    std::size_t live_ = 0;
    std::vector<heap_entry> heap_;
    // Slots whose source may have fired (signals, processes), each at most
    // once (source::queued, kept by a free slot whose entry is still here).
    std::vector<std::uint32_t> queue_;
    std::size_t queueable_ = 0;          // signal and process sources
    std::vector<std::uint32_t> polled_;  // processes checked at a wake (SIGCHLD fallback; Windows: all)
    bool wake_ = false;                  // take_wake()
    bool check_ = false;                 // a wake: the hub's signals and the polled processes to check
    waker own_;                          // where shared_ is null, made by the first signal
    int place_ = -1;                     // in the hub
    int hub_users_ = 0;                  // sum of signal_users_
    std::uint64_t chld_seen_ = 0;        // SIGCHLD's count when the polled processes were last checked
    int signal_users_[65] = {};          // watches of each signal, internal SIGCHLD included
    std::uint32_t signal_source_[65];    // the slot of the source of each signal, or none
    std::unordered_map<std::int64_t, std::uint32_t> pids_;  // the slot of each process's source
};

// The heap's moves, inline where they are used (sources.cpp, sources_wait.cpp).

inline void sources::heap_up(std::uint32_t pos) noexcept {
    heap_entry* const h = heap_.data();
    source* const slots = slots_.data();
    const heap_entry e = h[pos];
    while (pos > 0) {
        const std::uint32_t parent = (pos - 1) / 4;
        if (h[parent].due <= e.due) break;
        h[pos] = h[parent];
        slots[h[pos].index].link = pos;
        pos = parent;
    }
    h[pos] = e;
    slots[e.index].link = pos;
}

inline void sources::heap_down(std::uint32_t pos) noexcept {
    heap_entry* const h = heap_.data();
    source* const slots = slots_.data();
    const heap_entry e = h[pos];
    const auto n = std::uint32_t(heap_.size());
    for (;;) {
        const std::uint32_t first = 4 * pos + 1;
        if (first >= n) break;
        std::uint32_t least = first;
        if (first + 4 <= n) {  // all four children: no bound test per child
            if (h[first + 1].due < h[least].due) least = first + 1;
            if (h[first + 2].due < h[least].due) least = first + 2;
            if (h[first + 3].due < h[least].due) least = first + 3;
        } else {
            for (std::uint32_t c = first + 1; c < n; ++c)
                if (h[c].due < h[least].due) least = c;
        }
        if (h[least].due >= e.due) break;
        h[pos] = h[least];
        slots[h[pos].index].link = pos;
        pos = least;
    }
    h[pos] = e;
    slots[e.index].link = pos;
}

inline void sources::heap_remove(std::uint32_t pos) noexcept {
    slots_[heap_[pos].index].link = none;
    const heap_entry last = heap_.back();
    heap_.pop_back();
    if (pos == heap_.size()) return;
    heap_[pos] = last;
    if (pos > 0 && heap_[(pos - 1) / 4].due > last.due)
        heap_up(pos);
    else
        heap_down(pos);
}

}  // namespace iowait::detail
