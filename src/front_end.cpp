// The front end's paths off the common case (front_end.hpp has the class
// and the common watch and wait): the general watch, modify and unwatch, the
// sink's slow path, always-ready files, the wait loop with the clock.
#include "front_end.hpp"

#include <chrono>

#include "factory.hpp"

namespace iowait {

namespace {

using detail::make_token;
using detail::no_token;
using detail::status;
using detail::waker_generation;

}  // namespace

IOWait::impl::impl(std::unique_ptr<detail::backend> b, std::error_code& ec, std::string& why)
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
        if (!ec) ec = be->add(waker.fd(), Interest::read, Mode::level, make_token(waker.fd(), waker_generation)).code();
        // select: every number below FD_SETSIZE is taken (X2). A kernel
        // limit, not the caller's misuse.
        if (ec == errc::fd_too_large) {
            ec = std::error_code(EMFILE, std::generic_category());
            why = detail::select_waker_refusal;
        }
    }
    if (!ec) ec = reserve(64).code();
}

status IOWait::impl::reserve(std::size_t n) noexcept {
    if (n <= capacity) return {};
    auto grown = std::unique_ptr<Event[]>(new (std::nothrow) Event[n]);
    if (!grown) return status::from_errno(ENOMEM);
    events = std::move(grown);
    capacity = n;
    return {};
}

void IOWait::impl::changed(bool now_always_ready) {
    if (now_always_ready) extras_changed();
    const bool any = need_before();
    if (any != any_always_ready.load(std::memory_order_relaxed)) any_always_ready.store(any, std::memory_order_seq_cst);
    if ((now_always_ready || changes_need_wakeup) && (waiters_state.load(std::memory_order_seq_cst) & in_wait)) wake();
}

void IOWait::impl::wake() noexcept {
    if (own_wake)
        be->wake();
    else
        waker.signal();
}

status IOWait::impl::watch(native_handle fd, Interest interest, std::uint64_t data, Mode mode) {
    if (!supports(mode)) return errc::unsupported_mode;
    std::lock_guard lock(mu);
    return watch_locked(fd, interest, data, mode);
}

status IOWait::impl::watch_locked(native_handle fd, Interest interest, std::uint64_t data, Mode mode) {
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

status IOWait::impl::added(native_handle fd, slot& slot_, status st, std::uint64_t token, Interest interest,
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

status IOWait::impl::add_again(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept {
    be_remove(fd);
    return be_add(fd, interest, mode, token);
}

status IOWait::impl::forget_new(native_handle fd, status st) noexcept {
    slots.erase(fd);
    return st;
}

status IOWait::impl::modify(native_handle fd, Interest interest, std::uint64_t data, Mode mode) {
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
    s->holder = 0;  // a thread holding it (several waiters) holds it no more
    note_change(fd);
    set_live(fd, *s);
    changed(rearmed_always_ready);
    return {};
}

status IOWait::impl::unwatch(native_handle fd) {
    std::lock_guard lock(mu);
    slot* s = find(fd);
    if (!s) return errc::not_watched;
    if (s->state == slot::active) {
        auto st = be_remove(fd);
        // EBADF: closed, so the kernel dropped it; ENOENT: the number now
        // names a file the kernel never saw. Either way it is gone.
        if (st && !(st == std::errc::bad_file_descriptor) && !(st == std::errc::no_such_file_or_directory)) return st;
    }
    if (s->state == slot::always_ready && s->armed) std::erase(always_ready, fd);
    slots.erase(fd);
    note_change(fd);
    changed();
    return {};
}

void IOWait::impl::forget_closed(native_handle fd, slot& s) {
    if (s.state == slot::active) be_remove(fd);
    if (s.state == slot::always_ready && s.armed) std::erase(always_ready, fd);
    s.state = slot::closed;
    s.live = no_token;
}

void IOWait::impl::deliver_slow(std::uint64_t token, unsigned flags) noexcept {
    const auto fd = native_handle(std::uint32_t(token));
    const auto generation = std::uint32_t(token >> 32);
    if (generation == detail::source_generation) {
        if (srcs) srcs->ready(std::uint32_t(token));
        return;
    }
    if (generation == waker_generation) {
        if (!own_wake) waker.drain();
        woken_ |= notified.exchange(false, std::memory_order_acq_rel);
        if (srcs) srcs->woken();  // the signal sources' handler writes to this waker too
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

void IOWait::impl::stale() noexcept {
    if (!keeps_stale_entries) return;
    // Two waits running: the byte moved by one since (a stale entry met again
    // 256 waits later would rebuild too, which is only wasted work).
    if (stale_wait == std::uint8_t(until_sampled + 1)) rebuild();
    stale_wait = until_sampled;
}

void IOWait::impl::rebuild() noexcept {
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

#ifdef __linux__
status IOWait::impl::collect_sampled() noexcept { return collect_pass<true>(); }

Event* IOWait::impl::check_lasting(Event* first, Event* out) noexcept {
    const std::uint32_t previous = samples++;
    bool closed_any = false;
    for (const Event* e = first; e != out; ++e) {
        slot* s = find(e->fd);
        if (!s || s->state != slot::active || s->mode != Mode::level) continue;
        // s->batch: for epoll's set, the sampled wait that last reported the
        // watch (deliver_merging(), its other user, serves other backends).
        const bool lasting = s->batch == previous && previous != 0;
        s->batch = samples;
        if (!lasting) continue;
        const status st = be_modify(e->fd, s->interest, s->mode, make_token(e->fd, s->generation));
        if (st == std::errc::bad_file_descriptor || st == std::errc::no_such_file_or_directory) {
            forget_closed(e->fd, *s);
            closed_any = true;
        }
    }
    if (!closed_any) return out;
    rebuild();  // the stale entry goes with the old set
    Event* kept = first;
    for (const Event* e = first; e != out; ++e)
        if (const slot* s = find(e->fd); s && s->state != slot::closed) *kept++ = *e;
    return kept;
}
#endif

bool IOWait::impl::report_slot(native_handle fd, slot& s, unsigned flags) noexcept {
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

void IOWait::impl::merge(native_handle fd, slot& s, Event& e, unsigned flags) noexcept {
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

void IOWait::impl::deliver_merging(std::uint64_t token, unsigned flags) noexcept {
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

void IOWait::impl::closed(std::uint64_t token) noexcept {
    const auto fd = native_handle(std::uint32_t(token));
    slot* s = find(fd);
    if (s && s->generation == std::uint32_t(token >> 32) && s->state == slot::active) forget_closed(fd, *s);
}

void IOWait::impl::collect_always_ready() {
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

#ifdef __linux__
IOWait::impl::answer IOWait::impl::run_general() noexcept { return run(-2, false); }
#endif

#ifdef __linux__
IOWait::impl::answer IOWait::impl::after_first(status st) noexcept { return after_once(st, -1, false); }
#endif

#ifdef __linux__
Event* IOWait::impl::pass_epoll_rest(const epoll_event* e, Event* out) noexcept {
    first_ = events.get();
    out_ = out;
    dense_ = slots.dense_data();
    dense_size_ = slots.dense_size();
    const epoll_event* const end = eset->entries() + eset->ready();
    for (; e != end; ++e) deliver(std::uint64_t(e->data.u64), detail::from_epoll(e->events));
    // Another thread asks this one, which waits alone, to share, and woke
    // it (the waker's entry brought the pass here): this wait must end
    // through handed_over(), and wait_fast() ends it through a plain store
    // unless its pass says 0 Events. The pass says so; after_first() gives
    // them back. Its extras are collected here, as collect_epoll() would.
    if ((waiters_state.load(std::memory_order_relaxed) & (slow_exit | shared_tag)) == slow_exit) {
        if (extra_room != 0) collect_extras();
        diverted = std::size_t(out_ - first_);
        extra_room = 0;
        return first_;
    }
    return out_;
}
#endif

void IOWait::impl::undivert() noexcept {
    count = diverted;
    diverted = 0;
    std::lock_guard lock(mu);
    extras_changed();  // as pass_epoll_rest found it
}

void IOWait::impl::collect_extras() noexcept {
    if (!always_ready.empty()) collect_always_ready();
    if (srcs) {
        out_ = srcs->collect(out_, events.get() + capacity);
        any_always_ready.store(need_before(), std::memory_order_release);
    }
    if (holding) hold_batch();
    extras_changed();
}

std::int64_t IOWait::impl::before(std::int64_t remaining) noexcept {
    std::lock_guard lock(mu);
    if (!always_ready.empty()) remaining = 0;
    if (srcs) remaining = srcs->before_wait(remaining);
    if (needs_before_wait) be->before_wait();
    return remaining;
}

status IOWait::impl::more(std::int64_t timeout_ns, bool return_on_signal) noexcept {
    using clock = std::chrono::steady_clock;
    const auto start = timeout_ns > 0 ? clock::now() : clock::time_point{};
    for (;;) {
        // Another thread waits for this one, which waited alone, to share.
        if ((waiters_state.load(std::memory_order_acquire) & (slow_exit | shared_tag)) == slow_exit) [[unlikely]]
            share_in_wait();
        std::int64_t remaining = timeout_ns;
        if (timeout_ns > 0) {
            remaining = timeout_ns - std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - start).count();
            if (remaining < 0) remaining = 0;
        }
        const status st = once(remaining);
        if (diverted != 0) [[unlikely]]
            undivert();
        if (st && (!(st == std::errc::interrupted) || return_on_signal)) return st;
        if (!st && (count != 0 || woken_ || timeout_ns == 0)) return {};
        if (timeout_ns > 0 && clock::now() - start >= std::chrono::nanoseconds(timeout_ns)) return {};
    }
}

}  // namespace iowait
