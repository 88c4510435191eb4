// The front end: everything that is the same for every backend (see the
// contract in backend.hpp), so that each rule of docs/behaviour.md is
// written once.
#include "iowait/iowait.hpp"

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>

#include "backend.hpp"
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
#include "detail/waker.hpp"
#include "factory.hpp"
#include "sources.hpp"

namespace iowait {

namespace {

using detail::file_identity;

using detail::make_token;
using detail::no_token;
using detail::slot;
using detail::status;
using detail::waker_generation;

bool valid_interest(Interest i) { return i != Interest::none && (unsigned(i) & ~3u) == 0; }

// The message names the call, the fd (or source) and the backend: "iowait: watch(fd=7) on epoll".
[[noreturn]] void throw_error(std::error_code ec, std::string_view op, native_handle fd, std::string_view backend) {
    std::string what = "iowait: ";
    what += op;
    if (detail::is_source_id(fd))
        what += "(source=" + std::to_string(std::intptr_t(fd)) + ")";
    else if (fd != native_handle(-1))
        what += "(fd=" + std::to_string(fd) + ")";
    if (!backend.empty()) {
        what += " on ";
        what += backend;
    }
    if (ec.category() == iowait_category()) throw usage_error(ec, what + ": " + ec.message());
    throw std::system_error(ec, what);
}

// Out of line, so that the calls that succeed pay nothing for building the message.
[[noreturn, gnu::noinline, gnu::cold]] void fail(status st, const char* op, native_handle fd, Backend backend) {
    throw_error(st.code(), op, fd, to_string(backend));
}

}  // namespace

struct IOWait::impl final : detail::event_sink {
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
    std::atomic<bool> waiting{false};
    std::atomic<bool> notified{false};
    // The caller's Events, written by the sink in place; grown only when a
    // wait promises more than ever before, so the steady state allocates nothing.
    std::unique_ptr<Event[]> events;
    std::size_t capacity = 0;
    std::size_t count = 0;          // Events of the last wait
    std::uint32_t stale_batch = 0;  // the batch that last had an entry for no watch

    impl(std::unique_ptr<detail::backend> b, std::error_code& ec, std::string& why)
        : be(std::move(b)),
          kind(be->kind()),
          keys_by_number(be->keys_by_number()),
          changes_need_wakeup(be->changes_need_wakeup()),
          native_oneshot(be->native_oneshot()),
          needs_before_wait(be->needs_before_wait()),
          keeps_stale_entries(be->keeps_stale_entries()),
          supported_modes{be->supports(Mode::level), be->supports(Mode::oneshot), be->supports(Mode::edge)}
#ifdef __linux__
          ,
          eset(be->epoll_set_of()),
          epoll_waits(eset && be->kind() == Backend::epoll),
          waits_inline(epoll_waits || be->uring_waiter_of()),
          epoll_fd(eset ? eset->fd() : -1)
#ifdef IOWAIT_HAVE_IO_URING
          ,
          uring(be->uring_waiter_of())
#endif
#endif
    {
        any_always_ready.store(needs_before_wait, std::memory_order_relaxed);
        own_wake = be->own_wake(make_token(0, waker_generation));
        if (!own_wake) {
            waker = detail::waker(ec);
            if (!ec)
                ec = be->add(waker.fd(), Interest::read, Mode::level, make_token(waker.fd(), waker_generation)).code();
            // select: every number below FD_SETSIZE is taken (X2). A kernel
            // limit, not the caller's misuse.
            if (ec == errc::fd_too_large) {
                ec = std::error_code(EMFILE, std::generic_category());
                why = detail::select_waker_refusal;
            }
        }
        if (!ec) ec = reserve(64).code();
    }

    bool supports(Mode mode) const noexcept { return unsigned(mode) < 3 && supported_modes[unsigned(mode)]; }

    // Made before a fork() and used in the child (F1): its kernel objects
    // are the parent's too (epoll's set, io_uring's ring, the waker), so
    // every call fails before it reaches them. One load, no system call.
    bool forked() const noexcept { return forks != detail::fork_count.load(std::memory_order_relaxed); }

    std::span<const Event> result() const noexcept { return {events.get(), count}; }

    [[gnu::noinline]] status reserve(std::size_t n) noexcept {
        if (n <= capacity) return {};
        auto grown = std::unique_ptr<Event[]>(new (std::nothrow) Event[n]);
        if (!grown) return status::from_errno(ENOMEM);
        events = std::move(grown);
        capacity = n;
        return {};
    }

    slot* find(native_handle fd) {
        slot* s = slots.get(fd);
        return s && s->state != slot::free ? s : nullptr;
    }

    // The token the sink's inline path accepts for s, or no_token to send
    // its entries to the slow path: see event_sink.hpp.
    void set_live(native_handle fd, slot& s) const noexcept {
        const bool inline_ok = s.state == slot::active && s.armed && s.mode != Mode::oneshot && !keys_by_number;
        s.live = inline_ok ? make_token(fd, s.generation) : no_token;
    }

    // After every change, under the lock. While a poll or select waiter
    // sleeps, its kernel set is a copy: wake it so that it picks the change up.
    // A file that joins always_ready needs the wake on every backend: the
    // waiter only looks at that list (through any_always_ready) before it
    // blocks, and no kernel will ever wake it for the file. Sequentially
    // consistent here and in wait(), so that either the waiter sees the flag
    // before it blocks or this sees it waiting and wakes it.
    void changed(bool now_always_ready = false) {
        if (now_always_ready) extras_changed();
        const bool any = need_before();
        if (any != any_always_ready.load(std::memory_order_relaxed))
            any_always_ready.store(any, std::memory_order_seq_cst);
        if ((now_always_ready || changes_need_wakeup) && waiting.load(std::memory_order_seq_cst)) wake();
    }

    void extras_changed() noexcept { extra_room = always_ready.size() + (srcs ? srcs->size() : 0); }

    // Work for before() under the lock: always-ready files, armed timers, a source that fired.
    bool need_before() const noexcept {
        return needs_before_wait || !always_ready.empty() || (srcs && srcs->need_before_wait());
    }

    // A watch, modify or unwatch of a source; a change wakes the waiter,
    // whose kernel wait may have to end sooner (a timer) or at once.
    template <class F>
    status on_sources(F f, bool wake_waiter) noexcept {
        if (forked()) [[unlikely]]
            return errc::forked;
        std::lock_guard lock(mu);
        if (!srcs) {
            srcs.reset(new (std::nothrow) detail::sources(*be));
            if (!srcs) return status::from_errno(ENOMEM);
        }
        const status st = f(*srcs);
        extras_changed();
        if (!st) changed(wake_waiter);
        return st;
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

    void wake() {
        if (own_wake)
            be->wake();
        else
            waker.signal();
    }

    status watch(native_handle fd, Interest interest, std::uint64_t data, Mode mode) {
        if (!supports(mode)) return errc::unsupported_mode;
        std::lock_guard lock(mu);
        return watch_locked(fd, interest, data, mode);
    }

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
        if (++next_generation == waker_generation) next_generation = 1;
        const std::uint64_t token = make_token(fd, generation);
        s.live = mode != Mode::oneshot ? token : no_token;
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
    [[gnu::noinline]] status watch_locked(native_handle fd, Interest interest, std::uint64_t data, Mode mode) {
        if (find(fd)) return errc::already_watched;
        slot* s;
        try {
            s = &slots.make(fd);
        } catch (const std::bad_alloc&) {
            return status::from_errno(ENOMEM);
        }
        const std::uint64_t token = make_token(fd, next_generation);
        s->generation = next_generation;
        if (keys_by_number) {
            // E9: an O_PATH fd can be neither read nor written; epoll refuses
            // it (EBADF), and so must the kernels that would accept it and
            // then never report it (poll, io_uring) or always (select).
            if (auto ec = detail::refuse_path_only(fd)) return forget_new(fd, ec);
            if (auto ec = detail::identify(fd, s->id)) return forget_new(fd, ec);
        }
        return added(fd, *s, be_add(fd, interest, mode, token), token, interest, data, mode);
    }

    // The rest of a watch, given the kernel's answer to the add.
    [[gnu::noinline]] status added(native_handle fd, slot& slot_, status st, std::uint64_t token, Interest interest,
                                   std::uint64_t data, Mode mode) {
        slot* s = &slot_;
        if (st) {
            if (st == std::errc::file_exists) st = add_again(fd, interest, mode, token);
            if (!st) {
                s->state = slot::active;
            } else if (!(st == std::errc::operation_not_permitted)) {
                return forget_new(fd, st);
            } else {
                // epoll refuses regular files and directories; poll and select
                // call them always ready, and so do we, on every backend.
                if (auto ec2 = detail::identify(fd, s->id)) return forget_new(fd, ec2);
                try {
                    always_ready.push_back(fd);
                } catch (const std::bad_alloc&) {
                    return forget_new(fd, status::from_errno(ENOMEM));
                }
                s->state = slot::always_ready;
            }
        } else {
            s->state = slot::active;
        }
        s->interest = interest;
        s->interest_row = std::uint8_t(unsigned(interest) << 6);
        s->mode = mode;
        s->armed = true;
        s->data = data;
        s->live = s->state == slot::active && mode != Mode::oneshot && !keys_by_number ? token : no_token;
        if (++next_generation == waker_generation) next_generation = 1;
        changed(s->state == slot::always_ready);
        return {};
    }

    // The kernel says EEXIST while we have no watch of this number (find()
    // said so): its entry outlived a watch whose number was closed while a
    // duplicate kept the file open (epoll), and the number names that file
    // again. Stale: drop it and add again (C4). Off the watch path.
    [[gnu::cold, gnu::noinline]] status add_again(native_handle fd, Interest interest, Mode mode,
                                                  std::uint64_t token) noexcept {
        be_remove(fd);
        return be_add(fd, interest, mode, token);
    }

    status forget_new(native_handle fd, status st) noexcept {
        slots.erase(fd);
        return st;
    }

    status modify(native_handle fd, Interest interest, std::uint64_t data, Mode mode) {
        if (!supports(mode)) return errc::unsupported_mode;
        std::lock_guard lock(mu);
        slot* s = find(fd);
        if (!s) return errc::not_watched;
        if (s->state == slot::closed) {
            // C2: EBADF while the number is closed; ENOENT once a new file has
            // taken it, as epoll_ctl answers for a file it never saw.
            file_identity now;
            if (auto ec = detail::identify(fd, now)) return ec;
            return detail::sys_error(ENOENT);
        }
        if (keys_by_number || s->state == slot::always_ready) {
            file_identity now;
            if (auto ec = detail::identify(fd, now)) return ec;
            // epoll answers ENOENT for a number reused by a file it never saw.
            if (!(now == s->id)) return detail::sys_error(ENOENT);
        }
        if (s->state == slot::active)
            if (auto st = be_modify(fd, interest, mode, make_token(fd, s->generation))) return st;
        const bool rearmed_always_ready = s->state == slot::always_ready && !s->armed;
        if (rearmed_always_ready) {
            try {
                always_ready.push_back(fd);
            } catch (const std::bad_alloc&) {
                return status::from_errno(ENOMEM);
            }
        }
        s->interest = interest;
        s->interest_row = std::uint8_t(unsigned(interest) << 6);
        s->data = data;
        s->mode = mode;
        s->armed = true;
        set_live(fd, *s);
        changed(rearmed_always_ready);
        return {};
    }

    status unwatch(native_handle fd) {
        std::lock_guard lock(mu);
        slot* s = find(fd);
        if (!s) return errc::not_watched;
        if (s->state == slot::active) {
            auto st = be_remove(fd);
            // EBADF: closed, so the kernel dropped it; ENOENT: the number now
            // names a file the kernel never saw. Either way it is gone.
            if (st && !(st == std::errc::bad_file_descriptor) && !(st == std::errc::no_such_file_or_directory))
                return st;
        }
        if (s->state == slot::always_ready && s->armed) std::erase(always_ready, fd);
        slots.erase(fd);
        changed();
        return {};
    }

    void forget_closed(native_handle fd, slot& s) {
        if (s.state == slot::active) be_remove(fd);
        if (s.state == slot::always_ready && s.armed) std::erase(always_ready, fd);
        s.state = slot::closed;
        s.live = no_token;
    }

    // What the inline path leaves: the waker, oneshot, files the kernel keys
    // by number, entries of a watch that changed since the kernel answered.
    void deliver_slow(std::uint64_t token, unsigned flags) noexcept override {
        const auto fd = native_handle(std::uint32_t(token));
        const auto generation = std::uint32_t(token >> 32);
        if (generation == detail::source_generation) {
            if (srcs) srcs->ready(std::uint32_t(token));
            return;
        }
        if (generation == waker_generation) {
            if (!own_wake) waker.drain();
            woken_ |= notified.exchange(false, std::memory_order_acq_rel);
            return;
        }
        slot* s = find(fd);
        if (!s || s->generation != generation || s->state != slot::active) {
            stale();  // unwatched or closed meanwhile, or a kernel entry that outlived its watch
            return;
        }
        if (!s->armed) return;  // disarmed meanwhile
        if (keys_by_number) {
            file_identity now;
            if (detail::identify(fd, now) || !(now == s->id)) {
                forget_closed(fd, *s);  // closed, maybe reused: never report the new file
                return;
            }
        }
        report_slot(fd, *s, flags);
    }

    // An entry for no watch. Once, it may be a watch removed between the
    // kernel's answer and this pass; in two waits running, it is a kernel
    // entry that outlived its watch (see backend::keeps_stale_entries):
    // rebuild the kernel set, or a level-triggered one would never let the
    // wait sleep (C1, C4).
    void stale() noexcept {
        if (!keeps_stale_entries) return;
        if (stale_batch != 0 && stale_batch + 1 == batch_) rebuild();
        stale_batch = batch_;
    }

    [[gnu::cold, gnu::noinline]] void rebuild() noexcept {
        std::vector<detail::rewatch> watches;
        try {
            if (!own_wake)
                watches.push_back({waker.fd(), Interest::read, Mode::level, make_token(waker.fd(), waker_generation)});
            slots.for_each([&](native_handle fd, const slot& s) {
                if (s.state != slot::active) return;
                watches.push_back({fd, s.armed ? s.interest : Interest::none, s.armed ? s.mode : Mode::oneshot,
                                   make_token(fd, s.generation)});
            });
            // The sources' own fds too, or their signals and exits would never be heard again.
            if (srcs) srcs->kernel_fds(watches);
        } catch (const std::bad_alloc&) {
            return;  // tried again at the next stale entry
        }
        if (be->rebuild(watches)) return;
        for (const detail::rewatch& w : watches)
            if (w.gone && w.token >> 32 != waker_generation && w.token >> 32 != detail::source_generation) {
                slot& s = *slots.get(w.fd);
                s.state = slot::closed;  // C2: it stays until unwatch()
                s.live = no_token;
            }
    }

    bool report_slot(native_handle fd, slot& s, unsigned flags) noexcept {
        // The same reading of the flags as the inline path (R6): a peer's
        // shutdown of its writing makes the fd readable, not writable.
        const unsigned rw = detail::effective(flags) & unsigned(s.interest);
        if (rw == 0) return false;
        s.batch = batch_;
        s.event = std::uint32_t(out_ - first_);
        s.flags = flags;  // merge() adds a later entry's to these, not to an earlier batch's
        *out_++ = Event{fd,
                        bool(rw & detail::readable),
                        bool(rw & detail::writable),
                        bool(flags & detail::hangup),
                        bool(flags & detail::error),
                        s.data};
        if (s.mode == Mode::oneshot) {
            s.armed = false;
            s.live = no_token;
            // Emulated oneshot: disarm in the kernel set now, under the lock,
            // or a level-triggered kernel would wake every wait for nothing.
            if (s.state == slot::active && !native_oneshot)
                be_modify(fd, Interest::none, Mode::oneshot, make_token(fd, s.generation));
        }
        return true;
    }

    void merge(native_handle fd, slot& s, Event& e, unsigned flags) noexcept {
        flags |= s.flags;
        s.flags = flags;
        const unsigned rw = detail::effective(flags) & unsigned(s.interest);
        e = Event{fd,
                  bool(rw & detail::readable),
                  bool(rw & detail::writable),
                  bool(flags & detail::hangup),
                  bool(flags & detail::error),
                  s.data};
    }

    void deliver_merging(std::uint64_t token, unsigned flags) noexcept override {
        const auto fd = native_handle(std::uint32_t(token));
        slot* s = slots.get(fd);
        // Reported earlier in this batch (even if that report disarmed a
        // oneshot watch): the same Event gets this entry's flags too.
        if (s && s->state != slot::free && s->batch == batch_ && s->generation == std::uint32_t(token >> 32) &&
            s->event < std::size_t(out_ - first_) && first_[s->event].fd == fd) {
            merge(fd, *s, first_[s->event], flags);
            return;
        }
        if (s && s->live == token) {
            report_slot(fd, *s, flags);
            return;
        }
        deliver_slow(token, flags);
    }

    void closed(std::uint64_t token) noexcept override {
        const auto fd = native_handle(std::uint32_t(token));
        slot* s = find(fd);
        if (s && s->generation == std::uint32_t(token >> 32) && s->state == slot::active) forget_closed(fd, *s);
    }

    // The pass over always-ready files, after the backend's: under the lock.
    [[gnu::noinline]] void collect_always_ready() {
        for (std::size_t i = 0; i < always_ready.size();) {
            const native_handle fd = always_ready[i];
            slot& s = *slots.get(fd);
            file_identity now;
            if (detail::identify(fd, now) || !(now == s.id)) {
                forget_closed(fd, s);  // erases always_ready[i]
                continue;
            }
            report_slot(fd, s, detail::readable | detail::writable);  // never a hangup or an error
            // An always-ready file never changes state: an edge watch, like
            // a oneshot one, reports it once (until modify()).
            if (s.mode != Mode::level) {
                s.armed = false;
                always_ready.erase(always_ready.begin() + std::ptrdiff_t(i));
                continue;
            }
            ++i;
        }
        any_always_ready.store(need_before(), std::memory_order_release);
    }

    // timeout_ns: >= 0 a timeout, -1 one that could not be represented, -2 none.
    [[gnu::always_inline]] status run(std::int64_t timeout_ns, bool return_on_signal) noexcept {
        if (forked()) [[unlikely]]
            return errc::forked;
        if (timeout_ns == -1) return errc::bad_timeout;
        return wait(timeout_ns < 0 ? -1 : timeout_ns, return_on_signal);
    }

    // timeout_ns < 0: none. return_on_signal: EINTR ends the wait instead of
    // being retried, so that the caller can run its own signal handlers.
    // The common case (an event or notify() on the first kernel wait) runs
    // once() and returns; the loop with the clock is out of the way in more().
    [[gnu::always_inline]] status wait(std::int64_t timeout_ns, bool return_on_signal) noexcept {
        if (waiting.exchange(true, std::memory_order_seq_cst)) return errc::wait_in_progress;
        if (timeout_ns > 0) return waited(more(timeout_ns, return_on_signal));
        return after_once(once(timeout_ns), timeout_ns, return_on_signal);
    }

    // The end of a wait whose first kernel wait has answered `st`. EINTR is
    // retried for a zero timeout too (T2): poll and select fail with it
    // even then, when a signal lands during the call.
    [[gnu::always_inline]] status after_once(status st, std::int64_t timeout_ns, bool return_on_signal) noexcept {
        if ((timeout_ns < 0 && !st && count == 0 && !woken_) || (st == std::errc::interrupted && !return_on_signal))
            st = more(timeout_ns, return_on_signal);
        return waited(st);
    }

    status waited(status st) noexcept {
        waiting.store(false, std::memory_order_release);
        return st;
    }

#ifdef __linux__
    // The common wait, inline in the public wait(): epoll or io_uring, no timeout,
    // nothing to do under the lock before the kernel wait, something to
    // report. Everything else is out of line, so that only this impl is
    // live across the system call and the function saves one register.
    [[gnu::always_inline]] status wait_fast() noexcept {
        if (!waits_inline || forked()) [[unlikely]]
            return run_general();
        if (waiting.exchange(true, std::memory_order_seq_cst)) [[unlikely]]
            return errc::wait_in_progress;
        if (any_always_ready.load(std::memory_order_seq_cst)) [[unlikely]]
            return after_first(once(-1));
        count = 0;
        woken_ = false;
        const status st = wait_set(-1);
        if (st || count == 0) [[unlikely]]
            return after_first(st);
        return waited(st);
    }

    [[gnu::noinline]] status run_general() noexcept { return run(-2, false); }
    [[gnu::noinline]] status after_first(status st) noexcept { return after_once(st, -1, false); }

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
        ++batch_;
        Event* const first = events.get();
        Event* out = pass_epoll(first);
        if (extra_room != 0) [[unlikely]] {
            first_ = first;
            out_ = out;
            collect_extras();
            out = out_;
        }
        count = std::size_t(out - first);
        return {};
    }

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
    [[gnu::noinline]] Event* pass_epoll_rest(const epoll_event* e, Event* out) noexcept {
        first_ = events.get();
        out_ = out;
        dense_ = slots.dense_data();
        dense_size_ = slots.dense_size();
        const epoll_event* const end = eset->entries() + eset->ready();
        for (; e != end; ++e) deliver(std::uint64_t(e->data.u64), detail::from_epoll(e->events));
        return out_;
    }
#endif

    // Off the common path: always-ready files and sources, after the kernel's batch.
    [[gnu::noinline]] void collect_extras() noexcept {
        if (!always_ready.empty()) collect_always_ready();
        if (srcs) {
            out_ = srcs->collect(out_);
            any_always_ready.store(need_before(), std::memory_order_release);
        }
        extras_changed();
    }

    [[gnu::noinline]] std::int64_t before(std::int64_t remaining) noexcept {
        std::lock_guard lock(mu);
        if (!always_ready.empty()) remaining = 0;
        if (srcs) remaining = srcs->before_wait(remaining);
        if (needs_before_wait) be->before_wait();
        return remaining;
    }

    // Waits until something is reported or the time is up: nothing to
    // report (a timeout, EINTR, a change picked up, a closed fd dropped)
    // means waiting again for whatever time is left.
    [[gnu::noinline]] status more(std::int64_t timeout_ns, bool return_on_signal) noexcept {
        using clock = std::chrono::steady_clock;
        const auto start = timeout_ns > 0 ? clock::now() : clock::time_point{};
        for (;;) {
            std::int64_t remaining = timeout_ns;
            if (timeout_ns > 0) {
                remaining =
                    timeout_ns - std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - start).count();
                if (remaining < 0) remaining = 0;
            }
            const status st = once(remaining);
            if (st && (!(st == std::errc::interrupted) || return_on_signal)) return st;
            if (!st && (count != 0 || woken_ || timeout_ns == 0)) return {};
            if (timeout_ns > 0 && clock::now() - start >= std::chrono::nanoseconds(timeout_ns)) return {};
        }
    }
};

IOWait::IOWait() {
    std::error_code ec;
    std::string why;
    auto be = detail::make_best_backend(ec, why);
    if (!be) {
        // Named first: given the expression, cppcheck loses sight of [[noreturn]].
        const std::string op = why.empty() ? "IOWait()" : "IOWait() with " + why;
        throw_error(ec, op, -1, {});
    }
    backend_ = be->kind();
    impl_ = std::make_unique<impl>(std::move(be), ec, why);
    if (ec) throw_error(ec, why.empty() ? "IOWait()" : "IOWait() (" + why + ")", -1, to_string(backend_));
}

IOWait::IOWait(Backend backend) : backend_(backend) {
    std::error_code ec;
    std::string why;  // what the kernel refused, where the backend can say (io_uring)
    auto be = detail::make_backend(backend, ec, why);
    if (!be && !why.empty() && ec.category() == iowait_category())
        throw usage_error(
            ec, "iowait: IOWait(Backend) on " + std::string(to_string(backend)) + ": " + ec.message() + ": " + why);
    // A kernel limit the backend could explain (select's own wake-up fd, X2).
    if (!be && !why.empty()) throw_error(ec, "IOWait(Backend) (" + why + ")", -1, to_string(backend));
    if (!be) throw_error(ec, "IOWait(Backend)", -1, to_string(backend));
    impl_ = std::make_unique<impl>(std::move(be), ec, why);
    if (ec) throw_error(ec, why.empty() ? "IOWait(Backend)" : "IOWait(Backend) (" + why + ")", -1, to_string(backend));
}

IOWait::~IOWait() = default;
IOWait::IOWait(IOWait&&) noexcept = default;
IOWait& IOWait::operator=(IOWait&&) noexcept = default;

std::vector<Backend> IOWait::available_backends() { return detail::available(); }

// The checks that need no lock and no kernel, shared by watch and modify.
static status check_args(native_handle fd, Interest interest) noexcept {
    if (fd == native_handle(-1) || std::int64_t(fd) < 0) return errc::bad_fd;
    if (!valid_interest(interest)) return errc::bad_interest;
    return {};
}

// Moved from, forked, or bad arguments: the checks before the lock.
// A template only because impl is private: the type is deduced, not named.
template <class Impl>
static status usable(const Impl* impl, native_handle fd, Interest interest) noexcept {
    if (!impl) return errc::moved_from;
    if (impl->forked()) [[unlikely]]
        return errc::forked;
    return check_args(fd, interest);
}

// The throwing overloads go straight to the status, so that a call that
// succeeds makes no std::error_code at all.
// The general path of watch, out of line: every check, every backend, every error.
template <class Impl>
[[gnu::noinline]] static status watch_general(Impl* impl, native_handle fd, Interest interest, std::uint64_t data,
                                              Mode mode) noexcept {
    status st = usable(impl, fd, interest);
    if (!st) st = impl->watch(fd, interest, data, mode);
    return st;
}

template <class Impl>
[[gnu::noinline]] static void watch_or_throw(Impl* impl, Backend backend, native_handle fd, Interest interest,
                                             std::uint64_t data, Mode mode) {
    if (status st = watch_general(impl, fd, interest, data, mode)) fail(st, "watch", fd, backend);
}

void IOWait::watch(native_handle fd, Interest interest, std::uint64_t data, Mode mode) {
#ifdef __linux__
    // The general path takes the impl, not this, so that the fast path
    // keeps one pointer fewer across its system call.
    if (impl* p = impl_.get())
        return p->watch_fast(fd, interest, data, mode, [p](native_handle f, Interest i, std::uint64_t d, Mode m) {
            watch_or_throw(p, p->kind, f, i, d, m);
        });
#endif
    watch_or_throw(impl_.get(), backend_, fd, interest, data, mode);
}

void IOWait::watch(native_handle fd, Interest interest, std::uint64_t data, Mode mode, std::error_code& ec) noexcept {
#ifdef __linux__
    if (impl* p = impl_.get()) {
        ec =
            p->watch_fast(fd, interest, data, mode, [p](native_handle f, Interest i, std::uint64_t d, Mode m) noexcept {
                 return watch_general(p, f, i, d, m);
             }).code();
        return;
    }
#endif
    ec = watch_general(impl_.get(), fd, interest, data, mode).code();
}

void IOWait::watch(native_handle fd, Interest interest, std::uint64_t data, std::error_code& ec) noexcept {
    watch(fd, interest, data, Mode::level, ec);
}

// A source id (negative) goes to the sources; any other value is a fd.
template <class Impl>  // IOWait::impl, private: named through the deduction
static status modify_any(Impl* impl, native_handle fd, Interest interest, std::uint64_t data, Mode mode) {
    if (!impl) return errc::moved_from;
    if (impl->forked()) [[unlikely]]
        return errc::forked;
    if (detail::is_source_id(fd))
        return impl->on_sources([&](detail::sources& s) { return s.modify(fd, interest, data, mode); }, true);
    if (auto st = check_args(fd, interest)) return st;
    return impl->modify(fd, interest, data, mode);
}

template <class Impl>
static status unwatch_any(Impl* impl, native_handle fd) {
    if (!impl) return errc::moved_from;
    if (impl->forked()) [[unlikely]]
        return errc::forked;
    if (detail::is_source_id(fd)) return impl->on_sources([&](detail::sources& s) { return s.unwatch(fd); }, false);
    if (auto st = check_args(fd, Interest::read)) return st;
    return impl->unwatch(fd);
}

void IOWait::modify(native_handle fd, Interest interest, std::uint64_t data, Mode mode) {
    if (auto st = modify_any(impl_.get(), fd, interest, data, mode)) fail(st, "modify", fd, backend_);
}

void IOWait::modify(native_handle fd, Interest interest, std::uint64_t data, Mode mode, std::error_code& ec) noexcept {
    ec = modify_any(impl_.get(), fd, interest, data, mode).code();
}

void IOWait::modify(native_handle fd, Interest interest, std::uint64_t data, std::error_code& ec) noexcept {
    modify(fd, interest, data, Mode::level, ec);
}

bool IOWait::supports(Mode mode) const noexcept { return impl_ && impl_->supports(mode); }

void IOWait::unwatch(native_handle fd, std::error_code& ec) noexcept { ec = unwatch_any(impl_.get(), fd).code(); }

void IOWait::unwatch(native_handle fd) {
    if (auto st = unwatch_any(impl_.get(), fd)) fail(st, "unwatch", fd, backend_);
}

// Sources: the message names the call and its argument, "watch_signal(signo=10)".
[[noreturn, gnu::noinline, gnu::cold]] static void fail_source(status st, const std::string& op, Backend backend) {
    throw_error(st.code(), op, -1, to_string(backend));
}

native_handle IOWait::watch_signal(int signo, std::uint64_t data, Mode mode, std::error_code& ec) noexcept {
    native_handle id = -1;
    const status st =
        !impl_ ? status(errc::moved_from)
               : impl_->on_sources([&](detail::sources& s) { return s.watch_signal(signo, data, mode, id); }, true);
    ec = st.code();
    return st ? native_handle(-1) : id;
}

native_handle IOWait::watch_signal(int signo, std::uint64_t data, Mode mode) {
    std::error_code ec;
    const native_handle id = watch_signal(signo, data, mode, ec);
    if (ec) fail_source(ec, "watch_signal(signo=" + std::to_string(signo) + ")", backend_);
    return id;
}

native_handle IOWait::watch_process(std::int64_t pid, std::uint64_t data, std::error_code& ec) noexcept {
    native_handle id = -1;
    const status st = !impl_
                          ? status(errc::moved_from)
                          : impl_->on_sources([&](detail::sources& s) { return s.watch_process(pid, data, id); }, true);
    ec = st.code();
    return st ? native_handle(-1) : id;
}

native_handle IOWait::watch_process(std::int64_t pid, std::uint64_t data) {
    std::error_code ec;
    const native_handle id = watch_process(pid, data, ec);
    if (ec) fail_source(ec, "watch_process(pid=" + std::to_string(pid) + ")", backend_);
    return id;
}

native_handle IOWait::watch_timer_ns(std::int64_t first, std::int64_t period, std::uint64_t data, Mode mode,
                                     std::error_code& ec) noexcept {
    native_handle id = -1;
    const status st =
        !impl_
            ? status(errc::moved_from)
            : impl_->on_sources([&](detail::sources& s) { return s.watch_timer(first, period, data, mode, id); }, true);
    ec = st.code();
    return st ? native_handle(-1) : id;
}

native_handle IOWait::watch_timer_ns(std::int64_t first, std::int64_t period, std::uint64_t data, Mode mode) {
    std::error_code ec;
    const native_handle id = watch_timer_ns(first, period, data, mode, ec);
    if (ec) fail_source(ec, "watch_timer", backend_);
    return id;
}

std::span<const Event> IOWait::wait_ns(std::int64_t timeout_ns, std::error_code& ec) noexcept {
    return wait_ns(timeout_ns < 0 ? -1 : timeout_ns, false, ec);
}

std::span<const Event> IOWait::wait_ns(std::int64_t timeout_ns) {
    if (auto st = (!impl_ ? status(errc::moved_from) : impl_->run(timeout_ns < 0 ? -1 : timeout_ns, false)))
        fail(st, "wait", -1, backend_);
    return impl_->result();
}

std::span<const Event> IOWait::wait_ns(std::int64_t timeout_ns, bool return_on_signal, std::error_code& ec) noexcept {
    const status st = !impl_ ? status(errc::moved_from) : impl_->run(timeout_ns, return_on_signal);
    ec = st.code();
    if (st) return {};
    return impl_->result();
}

std::span<const Event> IOWait::wait(std::error_code& ec) noexcept { return wait_ns(-2, false, ec); }

std::span<const Event> IOWait::wait() {
    impl* const p = impl_.get();
    if (!p) fail(errc::moved_from, "wait", -1, backend_);
#ifdef __linux__
    const status st = p->wait_fast();
#else
    const status st = p->run(-2, false);
#endif
    if (st) [[unlikely]]
        fail(st, "wait", -1, p->kind);
    return p->result();
}

bool IOWait::batch_full() const noexcept { return impl_ && impl_->be->batch_full(); }

void IOWait::notify() {
    if (!impl_) throw_error(errc::moved_from, "notify", -1, to_string(backend_));
    if (impl_->forked()) throw_error(errc::forked, "notify", -1, to_string(backend_));
    if (!impl_->notified.exchange(true, std::memory_order_acq_rel)) impl_->wake();
}

}  // namespace iowait
