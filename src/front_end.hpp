// The front end's state and its hot paths: IOWait::impl, everything that is
// the same for every backend (see the contract in backend.hpp), so that each
// rule of docs/behaviour.md is written once. The common watch and wait are
// inline here, for the public calls (src/iowait.cpp) to make without a call;
// the rest is in front_end.cpp.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "backend.hpp"
#include "iowait/iowait.hpp"
#ifdef __linux__
#include "backends/epoll_set.hpp"
#ifdef IOWAIT_HAVE_IO_URING
#include "backends/uring_waiter.hpp"
#endif
#endif
#include "detail/fd_table.hpp"
#include "detail/file_identity.hpp"
#include "detail/fork_count.hpp"
#include "detail/small_mutex.hpp"
#include "detail/sys_error.hpp"
#include "detail/thread_key.hpp"
#include "detail/waker.hpp"
#include "sources.hpp"
#include "waiters.hpp"

namespace iowait {

// Hidden: a nested class takes the visibility of IOWait, which is exported,
// and the front end is not the library's interface (tests/install checks
// that the shared library exports nothing of it).
#if (defined(__GNUC__) || defined(__clang__)) && !defined(_WIN32)
#define IOWAIT_FRONT_END [[gnu::visibility("hidden")]]
#else
#define IOWAIT_FRONT_END
#endif

struct IOWAIT_FRONT_END IOWait::impl final : detail::event_sink {
    using file_identity = detail::file_identity;
    using slot = detail::slot;
    using status = detail::status;

    std::unique_ptr<detail::backend> be;
    const Backend kind;     // be->kind(), for the messages of paths that must make no call before theirs
    detail::waker waker;    // unused (no fd) where the backend wakes itself
    bool own_wake = false;  // the backend's own wake-up (kqueue's EVFILT_USER) replaces the waker
    // The backend's answers to these never change: asked once, not per event.
    const bool keys_by_number;
    const bool changes_need_wakeup;
    const bool native_oneshot;
    const bool needs_before_wait;
    const bool keeps_stale_entries;
    const bool supported_modes[3];  // [Mode]: the backend honours it
#ifdef __linux__
    // The set of epoll and io_uring (backend::epoll_set_of): changes and
    // the pass over a batch are made here, inline; epoll's waits too.
    detail::epoll_set* const eset;
    const bool epoll_waits;
    const bool waits_inline;  // epoll_waits, or io_uring's ring: wait_set() makes their waits without a timeout
    const int epoll_fd;       // eset's, whose number a rebuild keeps (dup3)
#ifdef IOWAIT_HAVE_IO_URING
    detail::uring_waiter* const uring;  // io_uring's wait, whose common case is made here too
#endif
#endif
    // detail::fork_count when this was made: a child's differs (rule F1).
    const std::uint32_t forks = detail::watch_forks();
    detail::small_mutex mu;  // guards slots, always_ready and the backend's add/modify/remove
    detail::fd_table<slot> slots;
    std::vector<native_handle> always_ready;
    // Signals, processes, timers: made by the first watch of one (sources.hpp).
    std::unique_ptr<detail::sources> srcs;
    // The Events a wait may add beside the kernel's (always-ready files,
    // sources), at least; 0 when there are none, so that the wait pays one
    // test for both. Raised where either grows (changed(true), on_sources()),
    // brought down again by collect_extras().
    std::size_t extra_room = 0;
    // need_before(), readable without the lock: wait() takes the lock
    // before the kernel wait only when there is something to do under it.
    std::atomic<bool> any_always_ready{false};
    std::uint32_t next_generation = 1;
    // Who waits (waiters.hpp): the thread_key() of the one thread that has
    // waited so far (0 before the first wait), or shared_tag once a second
    // thread has waited; with the flags in_wait (a kernel wait is in
    // progress, or about to be: a change may have to wake it) and slow_exit
    // (the wait in progress ends through handed_over(): a second thread
    // waits for it to share, or it is shared). One compare-and-swap on entry
    // and one subtraction on exit are the one-thread wait's whole cost.
    static constexpr std::uintptr_t in_wait = 1, slow_exit = 2, shared_tag = 4;
    std::atomic<std::uintptr_t> waiters_state{0};
    std::unique_ptr<detail::shared_waits> shared;  // made (under mu) by the second thread's first wait
    detail::waiter* holding = nullptr;             // the leader's own: it holds what its passes report
    std::size_t shared_room = 0;                   // 1 once shared: collect_extras() then runs after each pass
    // Before it is shared: the fds modified or unwatched since the last pass
    // (batch changed_batch), whose watches the thread that waited alone
    // does not hold when another thread comes (share()).
    std::vector<native_handle> changed_alone;
    std::uint32_t changed_batch = 0;
    // Events of a pass that saw another thread ask to share (pass_epoll_rest):
    // the pass says 0, so that wait_fast() takes after_first(), which
    // gives them back (undivert) and ends through handed_over().
    std::size_t diverted = 0;
    [[gnu::noinline, gnu::cold]] void undivert() noexcept;
    // Moves with every pass: batch_ counts the passes of the backends that
    // merge entries, until_sampled those of epoll's set (modulo 256).
    std::uint32_t pass_stamp() const noexcept { return batch_ + until_sampled; }
    void note_change(native_handle fd) noexcept {
        if (waiters_state.load(std::memory_order_relaxed) & shared_tag) return;
        if (changed_batch != pass_stamp()) {
            changed_alone.clear();
            changed_batch = pass_stamp();
        }
        try {
            changed_alone.push_back(fd);
        } catch (const std::bad_alloc&) {
        }
    }
    std::atomic<bool> notified{false};
    // The caller's Events, written by the sink in place; grown only when a
    // wait promises more than ever before, so the steady state allocates nothing.
    std::unique_ptr<Event[]> events;
    std::size_t capacity = 0;
    std::size_t count = 0;  // Events of the last wait
    // Every wait on epoll's set counts this byte down (collect_epoll), in
    // place of batch_, which only the backends that merge entries need; at
    // zero (every 256th wait) the wait is sampled for check_lasting().
    std::uint8_t until_sampled = 0;
    // until_sampled in the last wait that had an entry for no watch (stale());
    // 0x100: none yet.
    std::uint16_t stale_wait = 0x100;
    std::uint32_t samples = 0;  // sampled waits so far (check_lasting)

    impl(std::unique_ptr<detail::backend> b, std::error_code& ec, std::string& why);

    bool supports(Mode mode) const noexcept { return unsigned(mode) < 3 && supported_modes[unsigned(mode)]; }

    // Made before a fork() and used in the child (F1): its kernel objects
    // are the parent's too (epoll's set, io_uring's ring, the waker), so
    // every call fails before it reaches them. One load, no system call.
    bool forked() const noexcept { return forks != detail::fork_count.load(std::memory_order_relaxed); }

    std::span<const Event> result() const noexcept { return {events.get(), count}; }

    // A wait's result in two registers: its Events, or (data null) its
    // failure's status in `size`. The one-thread wait reads its Events
    // before it clears in_wait (after that, another thread may take the
    // front end's over: share()), and hands them back without memory.
    struct answer {
        const Event* data;
        std::size_t size;
        explicit operator bool() const noexcept { return data == nullptr; }  // failed
        status failure() const noexcept { return status::from_raw(int(size)); }
    };
    static answer failed(status st) noexcept { return {nullptr, std::size_t(st.raw())}; }
    // Events that are none: data must not be null.
    static answer none() noexcept {
        static const Event nothing{};
        return {&nothing, 0};
    }

    [[gnu::noinline]] status reserve(std::size_t n) noexcept;

    slot* find(native_handle fd) {
        slot* s = slots.get(fd);
        return s && s->state != slot::free ? s : nullptr;
    }

    // The token the sink's inline path accepts for s, or detail::no_token to send
    // its entries to the slow path: see event_sink.hpp.
    void set_live(native_handle fd, slot& s) const noexcept {
        const bool inline_ok = s.state == slot::active && s.armed && s.mode != Mode::oneshot && !keys_by_number;
        s.live = inline_ok ? detail::make_token(fd, s.generation) : detail::no_token;
    }

    // After every change, under the lock. While a poll or select waiter
    // sleeps, its kernel set is a copy: wake it so that it picks the change up.
    // A file that joins always_ready needs the wake on every backend: the
    // waiter only looks at that list (through any_always_ready) before it
    // blocks, and no kernel will ever wake it for the file. Sequentially
    // consistent here and in wait(), so that either the waiter sees the flag
    // before it blocks or this sees it waiting and wakes it.
    void changed(bool now_always_ready = false);

    void extras_changed() noexcept { extra_room = always_ready.size() + (srcs ? srcs->size() : 0) + shared_room; }

    // Work for before() under the lock: always-ready files, armed timers, a source that fired.
    bool need_before() const noexcept {
        return needs_before_wait || !always_ready.empty() || (srcs && srcs->need_before_wait());
    }

    // A watch, modify or unwatch of a source. The waiter is woken where the
    // change needs it (sources::take_wake()): a timer that is now the
    // earliest deadline, a source that may have fired already, a change to
    // the kernel set of a backend whose waiter sleeps on a copy of it; not
    // for a timer due after the earliest, which the waiter's kernel wait
    // ends before anyway. Sequentially consistent as in changed().
    template <class F>
    status on_sources(F f) noexcept {
        if (forked()) [[unlikely]]
            return errc::forked;
        std::lock_guard lock(mu);
        if (!srcs) [[unlikely]] {
            srcs.reset(new (std::nothrow) detail::sources(*be, own_wake ? nullptr : &waker));
            if (!srcs) return status::from_errno(ENOMEM);
        }
        const status st = f(*srcs);
        extras_changed();
        if (st) return st;
        const bool any = need_before();
        if (any != any_always_ready.load(std::memory_order_relaxed))
            any_always_ready.store(any, std::memory_order_seq_cst);
        if (srcs->take_wake() && (waiters_state.load(std::memory_order_seq_cst) & in_wait)) wake();
        return {};
    }

    // The backend's changes, without a virtual call for epoll and io_uring.
    status be_add(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept {
#ifdef __linux__
        if (eset) return eset->add(fd, interest, mode, token);
#endif
        return be->add(fd, interest, mode, token);
    }
    status be_modify(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept {
#ifdef __linux__
        if (eset) return eset->modify(fd, interest, mode, token);
#endif
        return be->modify(fd, interest, mode, token);
    }
    status be_remove(native_handle fd) noexcept {
#ifdef __linux__
        if (eset) return eset->remove(fd);
#endif
        return be->remove(fd);
    }

    void wake() noexcept;

    // The general watch, for every backend and every case (front_end.cpp).
    status watch(native_handle fd, Interest interest, std::uint64_t data, Mode mode);

#ifdef __linux__
    // The common watch, inline in the public calls: epoll's set (epoll,
    // io_uring), an interest and mode that are valid, a number the table has
    // room for and no watch of, and the kernel says yes. The entry first, so
    // that only the lock and this are live across the system call. Its
    // answer needs no wake-up of a waiter (the set is the kernel's) and
    // leaves the always-ready list as it was, so changed() has nothing to do.
    // Anything else, a refusal included (undone first: EBADF, EPERM for a
    // regular file, EEXIST for a stale entry), is `general`'s, which checks
    // and does it all again, so that one path names every error.
    template <class General>
    [[gnu::always_inline]] auto watch_fast(native_handle fd, Interest interest, std::uint64_t data, Mode mode,
                                           General general) noexcept(noexcept(general(fd, interest, data, mode))) {
        using result = decltype(general(fd, interest, data, mode));
        if (!eset || forked() || (unsigned(interest) | unsigned(mode)) > 3) [[unlikely]]
            return general(fd, interest, data, mode);
        const std::uint32_t mask = detail::epoll_watch_mask_table.mask[unsigned(mode) << 2 | unsigned(interest)];
        if (mask == 0 || std::size_t(fd) >= slots.dense_size()) [[unlikely]]
            return general(fd, interest, data, mode);
        // Contended: the general path waits for the lock, so that no call
        // here keeps the arguments live in saved registers.
        if (!mu.try_lock()) [[unlikely]]
            return general(fd, interest, data, mode);
        slot& s = slots.dense_at(fd);
        if (s.state != slot::free) [[unlikely]]
            return unlock_then(general, fd, interest, data, mode);
        const std::uint32_t generation = next_generation;
        if (++next_generation == detail::waker_generation) next_generation = 1;
        const std::uint64_t token = detail::make_token(fd, generation);
        s.live = mode != Mode::oneshot ? token : detail::no_token;
        s.data = data;
        s.generation = generation;
        s.state = slot::active;
        s.armed = true;
        s.interest_row = std::uint8_t(unsigned(interest) << 6);
        s.interest = interest;
        s.mode = mode;
        epoll_event ev;
        ev.events = mask;
        ev.data.u64 = token;
        // On a refusal the fd is read back from the token, not kept across the call.
        if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) [[unlikely]]
            return refused_fast(native_handle(std::uint32_t(ev.data.u64)), general);
        mu.unlock();
        return result();
    }

    // Out of line, so that the release's rare system call keeps no
    // argument of the fast path live in a saved register.
    template <class General>
    [[gnu::noinline, gnu::cold]] auto unlock_then(General general, native_handle fd, Interest interest,
                                                  std::uint64_t data, Mode mode) {
        mu.unlock();
        return general(fd, interest, data, mode);
    }

    // The fast path's refusal: the entry undone, the lock released, and the
    // watch handed to the general path with the arguments the entry kept
    // (so that the fast path keeps none of them across its system call).
    template <class General>
    [[gnu::noinline, gnu::cold]] auto refused_fast(native_handle fd, General general) {
        slot& s = slots.dense_at(fd);
        const Interest interest = s.interest;
        const std::uint64_t data = s.data;
        const Mode mode = s.mode;
        s = slot{};
        mu.unlock();
        return general(fd, interest, data, mode);
    }
#endif

    // The entry is made first, so that a table that cannot grow fails the
    // watch before the kernel hears of it; a refusal then erases it.
    [[gnu::noinline]] status watch_locked(native_handle fd, Interest interest, std::uint64_t data, Mode mode);

    // The rest of a watch, given the kernel's answer to the add.
    [[gnu::noinline]] status added(native_handle fd, slot& slot_, status st, std::uint64_t token, Interest interest,
                                   std::uint64_t data, Mode mode);

    // The kernel says EEXIST while we have no watch of this number (find()
    // said so): its entry outlived a watch whose number was closed while a
    // duplicate kept the file open (epoll), and the number names that file
    // again. Stale: drop it and add again (C4). Off the watch path.
    [[gnu::cold, gnu::noinline]] status add_again(native_handle fd, Interest interest, Mode mode,
                                                  std::uint64_t token) noexcept;

    // A watch that failed after its entry was made: the entry erased, st returned.
    status forget_new(native_handle fd, status st) noexcept;

    // modify() and unwatch() of a fd, under the lock (E2, C2, C3).
    status modify(native_handle fd, Interest interest, std::uint64_t data, Mode mode);
    status unwatch(native_handle fd);

    // A watch whose fd the backend saw closed: out of the kernel set and the
    // always-ready list, kept as closed until unwatch() (C2).
    void forget_closed(native_handle fd, slot& s);

    // What the inline path leaves: the waker, oneshot, files the kernel keys
    // by number, entries of a watch that changed since the kernel answered.
    void deliver_slow(std::uint64_t token, unsigned flags) noexcept override;

    // An entry for no watch. Once, it may be a watch removed between the
    // kernel's answer and this pass; in two waits running, it is a kernel
    // entry that outlived its watch (see backend::keeps_stale_entries):
    // rebuild the kernel set, or a level-triggered one would never let the
    // wait sleep (C1, C4).
    void stale() noexcept;

    [[gnu::cold, gnu::noinline]] void rebuild() noexcept;

    // The sink's Event for a slot, with the watch's interest and mode
    // applied; merged into the slot's Event of this batch (backends that
    // report read and write apart, deliver_merging); a fd the backend saw closed.
    bool report_slot(native_handle fd, slot& s, unsigned flags) noexcept;
    void merge(native_handle fd, slot& s, Event& e, unsigned flags) noexcept;
    void deliver_merging(std::uint64_t token, unsigned flags) noexcept override;
    void closed(std::uint64_t token) noexcept override;

    // The pass over always-ready files, after the backend's: under the lock.
    [[gnu::noinline]] void collect_always_ready();

    // timeout_ns: >= 0 a timeout, -1 one that could not be represented, -2 none.
    // `out`: the calling thread's Events, when the result is success.
    [[gnu::always_inline]] answer run(std::int64_t timeout_ns, bool return_on_signal) noexcept {
        if (forked()) [[unlikely]]
            return failed(errc::forked);
        if (timeout_ns == -1) return failed(errc::bad_timeout);
        return wait(timeout_ns < 0 ? -1 : timeout_ns, return_on_signal);
    }

    // timeout_ns < 0: none. return_on_signal: EINTR ends the wait instead of
    // being retried, so that the caller can run its own signal handlers.
    // The common case (an event or notify() on the first kernel wait) runs
    // once() and returns; the loop with the clock is out of the way in more().
    // The thread that waited last, waiting again with no other thread
    // waiting: the one-thread wait. Anything else is wait_shared()'s.
    [[gnu::always_inline]] answer wait(std::int64_t timeout_ns, bool return_on_signal) noexcept {
        std::uintptr_t key = detail::thread_key();
        if (!waiters_state.compare_exchange_strong(key, key + in_wait, std::memory_order_seq_cst,
                                                   std::memory_order_relaxed)) [[unlikely]]
            return wait_shared(timeout_ns, return_on_signal);
        return waited(body(timeout_ns, return_on_signal));
    }

    // The wait itself, by the thread whose turn it is.
    [[gnu::always_inline]] status body(std::int64_t timeout_ns, bool return_on_signal) noexcept {
        if (timeout_ns > 0) return more(timeout_ns, return_on_signal);
        return go_on(once(timeout_ns), timeout_ns, return_on_signal);
    }

    // The rest of a wait whose first kernel wait has answered `st`. EINTR is
    // retried for a zero timeout too (T2): poll and select fail with it
    // even then, when a signal lands during the call.
    [[gnu::always_inline]] status go_on(status st, std::int64_t timeout_ns, bool return_on_signal) noexcept {
        if (diverted != 0) [[unlikely]]
            undivert();
        if ((timeout_ns < 0 && !st && count == 0 && !woken_) || (st == std::errc::interrupted && !return_on_signal))
            st = more(timeout_ns, return_on_signal);
        return st;
    }

    [[gnu::always_inline]] answer after_once(status st, std::int64_t timeout_ns, bool return_on_signal) noexcept {
        return waited(go_on(st, timeout_ns, return_on_signal));
    }

    // The end of the one-thread wait: the result read (once in_wait is
    // clear, another thread may take it over: share()), in_wait cleared, and
    // the slow exit when another thread waits for this one to share (or it
    // now is shared).
    answer waited(status st) noexcept {
        const answer a = st ? failed(st) : answer{events.get(), count};
        if (waiters_state.fetch_sub(in_wait, std::memory_order_acq_rel) & slow_exit) [[unlikely]]
            return handed_over(st, a);
        return a;
    }

    // Several waiters (waiters.cpp). wait_shared: every wait but the
    // one-thread one. handed_over: the end of a wait that the one thread
    // waiting began alone. share_in_wait: that thread, in its wait, sees
    // another waiting for it, and leads from now on.
    [[gnu::noinline, gnu::cold]] answer wait_shared(std::int64_t timeout_ns, bool return_on_signal) noexcept;
    [[gnu::noinline, gnu::cold]] answer handed_over(status st, answer a) noexcept;
    [[gnu::noinline, gnu::cold]] void share_in_wait() noexcept;
    answer wait_with_others(std::uintptr_t me, std::int64_t timeout_ns, bool return_on_signal) noexcept;
    answer lead_end(detail::waiter& w, status st) noexcept;
    void share(std::uintptr_t owner) noexcept;
    void hold(native_handle fd, slot& s, detail::waiter& w) noexcept;
    void hold_batch() noexcept;
    void release(detail::waiter& w) noexcept;
    void notify() noexcept;
    [[gnu::noinline, gnu::cold]] void notify_shared() noexcept;
    bool batch_full() noexcept;

#ifdef __linux__
    // The common wait, inline in the public wait(): epoll or io_uring, no timeout,
    // nothing to do under the lock before the kernel wait, something to
    // report. Everything else is out of line, so that only this impl is
    // live across the system call and the function saves one register.
    // It repeats once()'s first steps rather than call it: once() would
    // bring its general path (the backend's virtual wait) inline here too.
    [[gnu::always_inline]] answer wait_fast() noexcept {
        if (!waits_inline || forked()) [[unlikely]]
            return run_general();
        std::uintptr_t key = detail::thread_key();
        if (!waiters_state.compare_exchange_strong(key, key + in_wait, std::memory_order_seq_cst,
                                                   std::memory_order_relaxed)) [[unlikely]]
            return wait_shared(-1, false);
        if (any_always_ready.load(std::memory_order_seq_cst)) [[unlikely]]
            return after_first(once(-1));
        count = 0;
        woken_ = false;
        const status st = wait_set(-1);
        if (st || count == 0) [[unlikely]]
            return after_first(st);
        // Events from the first kernel wait: the result read, then a plain
        // store ends it, which may clear a slow_exit that another thread set
        // after the pass (one set before it diverted the pass:
        // pass_epoll_rest). That thread sees the store as it polls
        // (wait_with_others), and shares.
        const answer a{events.get(), count};
        // Never null while one thread waits alone (reserve() in the
        // constructor; only share() takes it): no test of it here.
        if (!a.data) __builtin_unreachable();
        waiters_state.store(detail::thread_key(), std::memory_order_release);
        return a;
    }

    [[gnu::noinline]] answer run_general() noexcept;
    [[gnu::noinline]] answer after_first(status st) noexcept;

    // The kernel wait on epoll's set and the pass, without the backend's
    // virtual call: epoll_wait (no timeout or a zero one), or io_uring's
    // ring (no timeout), whose -errno becomes errno off the common path.
    [[gnu::always_inline]] status wait_set(int timeout_ms) noexcept {
        int n;
#ifdef IOWAIT_HAVE_IO_URING
        if (uring) {
            n = uring->wait_forever();
            if (n < 0) [[unlikely]] {
                errno = -n;
                n = -1;
            }
        } else
#endif
            n = eset->wait(timeout_ms);
        if (n < 0) [[unlikely]] {
            eset->filled(0);
            return status::from_errno(errno);
        }
        eset->filled(n);
        return collect_epoll(std::size_t(n));
    }
#endif

    // One kernel wait and one pass over its answer; remaining < 0: no timeout.
    [[gnu::always_inline]] status once(std::int64_t remaining) noexcept {
        count = 0;
        woken_ = false;
        // The lock before the kernel wait only where there is work under it:
        // epoll reads its set in the kernel and needs nothing done.
        if (any_always_ready.load(std::memory_order_seq_cst)) remaining = before(remaining);
#ifdef __linux__
        if (remaining < 0 ? waits_inline : epoll_waits && remaining == 0) return wait_set(remaining < 0 ? -1 : 0);
#endif
        ::timespec ts;
        if (remaining >= 0) ts = detail::to_timespec(remaining);
        std::size_t promised = 0;
        if (auto st = be->wait(remaining < 0 ? nullptr : &ts, promised)) return st;
#ifdef __linux__
        if (eset) return collect_epoll(promised);
#endif
        std::lock_guard lock(mu);
        if (promised + extra_room > capacity)
            if (auto st = reserve(promised + extra_room)) return st;
        first_ = out_ = events.get();
        ++batch_;
        dense_ = slots.dense_data();
        dense_size_ = slots.dense_size();
        be->deliver(*this);
        if (extra_room != 0) collect_extras();
        count = std::size_t(out_ - first_);
        return {};
    }

#ifdef __linux__
    // The pass of once() over an epoll set's batch: the sink's members are
    // written only where the slow path or the extras need them.
    [[gnu::always_inline]] status collect_epoll(std::size_t promised) noexcept {
        std::lock_guard lock(mu);
        if (promised + extra_room > capacity)
            if (auto st = reserve(promised + extra_room)) return st;
        // Decided before the pass, so that nothing stays live across it: one
        // decrement of a byte in memory, whose flags give the branch.
        if (--until_sampled == 0) [[unlikely]]
            return collect_sampled();
        return collect_pass<false>();
    }

    template <bool sampled>
    [[gnu::always_inline]] status collect_pass() noexcept {
        Event* const first = events.get();
        Event* out = pass_epoll(first);
        if constexpr (sampled) out = check_lasting(first, out);
        if (extra_room != 0) [[unlikely]] {
            first_ = first;
            out_ = out;
            collect_extras();
            out = out_;
        }
        count = std::size_t(out - first);
        return {};
    }

    // collect_pass<true>(), out of line: one wait in 256.
    [[gnu::noinline, gnu::cold]] status collect_sampled() noexcept;

    // epoll_set::deliver(), here so that the common entry costs no call:
    // the first entry the inline path cannot take ends the loop, and the
    // rest of the batch goes through the sink out of line. Returns the end
    // of the Events written.
    [[gnu::always_inline]] Event* pass_epoll(Event* const first) noexcept {
        const epoll_event* const batch = eset->entries();
        const epoll_event* const end = batch + eset->ready();
        // The table's size is a power of two (fd_table): a token of a fd
        // beyond it lands, masked, on a slot whose live token differs (its
        // fd does), so one compare checks both.
        const slot* dense = slots.lookup();
        const std::size_t mask = slots.lookup_mask();
        Event* out = first;
        for (const epoll_event* e = batch; e != end; ++e) {
            const std::uint64_t token = e->data.u64;
            const slot& s = dense[std::size_t(token) & mask];
            if (s.live != token) [[unlikely]]
                return pass_epoll_rest(e, out);
            const detail::event_bools b = detail::epoll_tables.bools[detail::epoll_index(e->events, s.interest_row)];
            // read and write both false: nothing for this watch. One test of both.
            std::uint16_t rw;
            std::memcpy(&rw, &b, sizeof rw);
            if (rw != 0) [[likely]] {
                *out = Event{native_handle(std::uint32_t(token)), b.read, b.write, b.hangup, b.error, s.data};
                ++out;
            }
        }
        return out;
    }

    // The batch from entry e on, through the sink, with `out` the Event to
    // write next; returns the end of the Events written. What the loop
    // above would otherwise keep in saved registers is found again here.
    [[gnu::noinline]] Event* pass_epoll_rest(const epoll_event* e, Event* out) noexcept;
#endif

    // A level watch of epoll's set whose number was closed while a
    // duplicate keeps its file open: the kernel keeps its entry, which no
    // EPOLL_CTL_DEL by number can reach, and reports the file under the
    // watch's live token on every wait, for ever (C4). Nothing on the common
    // path can see the close; so every 256th wait looks at
    // its level reports, and a watch reported by two such waits running (rare
    // in a program that reads what it is told of) is checked once, by one
    // EPOLL_CTL_MOD as it is: it finds the entry only while the number still
    // names the file (ENOENT for another file, EBADF for none). A watch that
    // fails is closed (C2), its Events leave this batch, and the kernel set
    // is rebuilt without the stale entry. Returns the end of the Events kept.
    [[gnu::noinline, gnu::cold]] Event* check_lasting(Event* first, Event* out) noexcept;

    // Off the common path: always-ready files and sources, after the kernel's batch.
    [[gnu::noinline]] void collect_extras() noexcept;

    [[gnu::noinline]] std::int64_t before(std::int64_t remaining) noexcept;

    // Waits until something is reported or the time is up: nothing to
    // report (a timeout, EINTR, a change picked up, a closed fd dropped)
    // means waiting again for whatever time is left.
    [[gnu::noinline]] status more(std::int64_t timeout_ns, bool return_on_signal) noexcept;
};

}  // namespace iowait
