// Several threads waiting on one IOWait: the paths off the one-thread wait
// (waiters.hpp says how; docs/behaviour.md, "Several waiters", the rules).
//
// Until a second thread waits, waiters_state holds the thread that waits,
// and its wait is the inline one of front_end.hpp. The first wait of
// another thread shares the IOWait, once and for good:
// - if the thread that waited alone is not waiting, the newcomer shares at
//   once: that thread's last Events become its own, and their watches its
//   holds, as if it had waited shared all along;
// - if it is waiting, the newcomer sets slow_exit and wakes it (the waker,
//   without notify()'s flag, so that its wait goes on); the waiting thread
//   then shares, in its wait (more(), share_in_wait) or at its end
//   (waited(), handed_over), and the newcomer follows.
// Locks: shared_waits::mu, then the front end's mu; never the other way.
#include <algorithm>
#include <chrono>

#include "front_end.hpp"

namespace iowait {

namespace {

using clock = std::chrono::steady_clock;

// The deadline of a wait of timeout_ns (< 0: none).
clock::time_point deadline_of(std::int64_t timeout_ns) noexcept {
    if (timeout_ns < 0) return clock::time_point::max();
    const auto now = clock::now();
    if (timeout_ns >= (clock::time_point::max() - now).count()) return clock::time_point::max();
    return now + std::chrono::nanoseconds(timeout_ns);
}

// What is left of a wait until `deadline`, as the front end's timeout.
std::int64_t left_until(clock::time_point deadline) noexcept {
    if (deadline == clock::time_point::max()) return -1;
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - clock::now()).count();
    return left > 0 ? left : 0;
}

}  // namespace

IOWait::impl::answer IOWait::impl::wait_shared(std::int64_t timeout_ns, bool return_on_signal) noexcept {
    const std::uintptr_t me = detail::thread_key();
    std::uintptr_t seen = waiters_state.load(std::memory_order_seq_cst);
    while (!(seen & shared_tag)) {
        const std::uintptr_t owner = seen & ~(in_wait | slow_exit);
        // A wait() from inside this thread's own wait(): a signal handler's.
        if (owner == me && (seen & in_wait)) return failed(errc::wait_in_progress);
        if ((owner == 0 || owner == me) && !(seen & slow_exit)) {
            // The first wait of all, or this thread's own state read as it moved.
            if (waiters_state.compare_exchange_strong(seen, me | in_wait, std::memory_order_seq_cst))
                return waited(body(timeout_ns, return_on_signal));
            continue;
        }
        break;
    }
    // slow_exit or shared_tag: made by the thread that set them.
    if (!(seen & (slow_exit | shared_tag))) {
        std::lock_guard lock(mu);
        if (!shared) shared.reset(new (std::nothrow) detail::shared_waits);
        if (!shared) return failed(status::from_errno(ENOMEM));
    }
    return wait_with_others(me, timeout_ns, return_on_signal);
}

IOWait::impl::answer IOWait::impl::wait_with_others(std::uintptr_t me, std::int64_t timeout_ns,
                                                    bool return_on_signal) noexcept {
    detail::shared_waits& sw = *shared;
    const clock::time_point deadline = deadline_of(timeout_ns);
    std::unique_lock lk(sw.mu);
    const std::uint64_t notifies = sw.notifies;
    // Until it is shared: the thread that waited alone shares now, or is
    // asked to when its wait ends.
    for (;;) {
        std::uintptr_t seen = waiters_state.load(std::memory_order_seq_cst);
        if (seen & shared_tag) break;
        if (!(seen & (in_wait | slow_exit))) {
            // Not waiting: taken here (in_wait keeps it from starting a wait alone meanwhile).
            if (!waiters_state.compare_exchange_strong(seen, shared_tag | slow_exit | in_wait,
                                                       std::memory_order_seq_cst))
                continue;
            share(seen);
            waiters_state.store(shared_tag | slow_exit, std::memory_order_seq_cst);
            break;
        }
        if (!(seen & slow_exit)) {
            if (!waiters_state.compare_exchange_strong(seen, seen | slow_exit, std::memory_order_seq_cst)) continue;
            wake();  // its kernel wait ends; the waker alone does not end its wait()
        }
        if (sw.notifies != notifies) return none();
        // Polled: the one-thread wait that ends with events from its first
        // kernel wait clears slow_exit with a plain store, and notifies no
        // one (front_end.hpp, wait_fast). Once per IOWait, for at most the
        // time that thread takes to finish its wait.
        const auto poll = std::min(deadline, clock::now() + std::chrono::milliseconds(1));
        if (sw.cv.wait_until(lk, poll) == std::cv_status::timeout && clock::now() >= deadline &&
            !(waiters_state.load(std::memory_order_seq_cst) & shared_tag))
            return none();
    }

    detail::waiter* w = sw.of(me);
    if (!w) return failed(status::from_errno(ENOMEM));
    if (w->in_wait) return failed(errc::wait_in_progress);  // from inside this thread's own wait()
    w->in_wait = true;
    {
        // This thread called wait() again: what it held is everyone's again.
        std::lock_guard lock(mu);
        release(*w);
    }
    // Follow until it is this thread's turn to lead, the time is up, or notify().
    while (sw.leader) {
        if (sw.notifies != notifies) break;
        ++sw.followers;
        const bool late = sw.cv.wait_until(lk, deadline) == std::cv_status::timeout;
        --sw.followers;
        if (late && sw.leader) break;
    }
    if (sw.leader || sw.notifies != notifies) {
        // Leaving without leading: the turn this thread may have been woken
        // for goes to the next follower.
        if (!sw.leader && sw.followers) sw.cv.notify_one();
        w->count = 0;
        w->in_wait = false;
        return none();
    }
    sw.leader = w;
    waiters_state.store(shared_tag | slow_exit | in_wait, std::memory_order_seq_cst);
    lk.unlock();
    // The leader's Events are the front end's while it leads; holding, read
    // by its passes alone, is the leader's too.
    events = std::move(w->events);
    capacity = w->capacity;
    holding = w;
    return lead_end(*w, body(left_until(deadline), return_on_signal));
}

IOWait::impl::answer IOWait::impl::lead_end(detail::waiter& w, status st) noexcept {
    holding = nullptr;
    w.count = st ? 0 : count;
    w.batch_full = !st && be->batch_full();
    w.events = std::move(events);
    w.capacity = capacity;
    capacity = 0;
    count = 0;
    {
        std::lock_guard lk(shared->mu);
        shared->leader = nullptr;
        w.in_wait = false;
        waiters_state.store(shared_tag | slow_exit, std::memory_order_seq_cst);
        if (shared->followers) shared->cv.notify_one();
    }
    if (st) return failed(st);
    if (!w.events) return none();
    return {w.events.get(), w.count};
}

IOWait::impl::answer IOWait::impl::handed_over(status st, answer a) noexcept {
    detail::shared_waits& sw = *shared;
    std::unique_lock lk(sw.mu);
    if (waiters_state.load(std::memory_order_seq_cst) & shared_tag) {
        // Shared during this wait (share_in_wait): this thread leads.
        detail::waiter* w = sw.leader;
        lk.unlock();
        return lead_end(*w, st);
    }
    // Shared now, with this wait's Events as this thread's first own ones.
    const std::uintptr_t me = detail::thread_key();
    if (st) count = 0;
    share(me);
    waiters_state.store(shared_tag | slow_exit, std::memory_order_seq_cst);
    // a has them (waited()): share() moved the buffer, not the Events.
    return a;
}

void IOWait::impl::share_in_wait() noexcept {
    detail::shared_waits& sw = *shared;
    std::lock_guard lk(sw.mu);
    if (waiters_state.load(std::memory_order_seq_cst) & shared_tag) return;
    detail::waiter* w = sw.of(detail::thread_key());
    if (!w) return;  // out of memory: shared when this wait ends (handed_over)
    w->in_wait = true;
    sw.leader = w;
    holding = w;
    {
        std::lock_guard lock(mu);
        shared_room = 1;
        extras_changed();
    }
    waiters_state.store(shared_tag | slow_exit | in_wait, std::memory_order_seq_cst);
    sw.cv.notify_all();
}

// Under shared->mu, with no wait in progress: owner (the thread that waited
// alone, 0 if none) gets its last wait's Events as its own, and holds their
// watches until its next wait.
void IOWait::impl::share(std::uintptr_t owner) noexcept {
    owner &= ~(in_wait | slow_exit);
    detail::waiter* w = owner ? shared->of(owner) : nullptr;
    std::lock_guard lock(mu);
    if (w) {
        w->events = std::move(events);
        w->capacity = capacity;
        w->count = count;
        w->batch_full = be->batch_full();
        capacity = 0;
        count = 0;
        const bool changes = changed_batch == pass_stamp();
        for (std::size_t i = 0; i < w->count; ++i) {
            const native_handle fd = w->events[i].fd;
            if (detail::is_source_id(fd)) continue;
            // Modified or unwatched since it was reported: no longer its.
            if (changes && std::find(changed_alone.begin(), changed_alone.end(), fd) != changed_alone.end()) continue;
            if (slot* s = find(fd); s && s->armed && s->mode != Mode::oneshot && s->holder == 0) hold(fd, *s, *w);
        }
        any_always_ready.store(need_before(), std::memory_order_release);
    }
    shared_room = 1;
    extras_changed();
    shared->cv.notify_all();
}

// Under mu: the watch of fd disarmed, for w's thread alone until its next wait().
void IOWait::impl::hold(native_handle fd, slot& s, detail::waiter& w) noexcept {
    if (s.state != slot::active && s.state != slot::always_ready) return;
    try {
        w.held.emplace_back(fd, s.generation);
    } catch (const std::bad_alloc&) {
        return;  // not held: another thread may be reported it too
    }
    if (s.state == slot::active)
        be_modify(fd, Interest::none, Mode::oneshot, detail::make_token(fd, s.generation));
    else
        std::erase(always_ready, fd);
    s.armed = false;
    s.live = detail::no_token;
    s.holder = w.index;
}

// Under mu, from collect_extras(): what the leader's pass reported, held for it.
void IOWait::impl::hold_batch() noexcept {
    detail::waiter& w = *holding;
    for (const Event* e = first_; e != out_; ++e) {
        if (detail::is_source_id(e->fd)) continue;
        slot* s = find(e->fd);
        // A oneshot watch is disarmed already, until modify().
        if (s && s->armed && s->mode != Mode::oneshot && s->holder == 0) hold(e->fd, *s, w);
    }
    any_always_ready.store(need_before(), std::memory_order_release);
}

// Under mu: what w's thread held is re-armed, unless modified or unwatched since.
void IOWait::impl::release(detail::waiter& w) noexcept {
    bool any = false;
    bool files = false;
    for (const auto& [fd, generation] : w.held) {
        slot* s = find(fd);
        if (!s || s->generation != generation || s->holder != w.index) continue;
        s->holder = 0;
        if (s->state == slot::active) {
            // Closed meanwhile: it stays disarmed, and no wait reports it (C1).
            if (be_modify(fd, s->interest, s->mode, detail::make_token(fd, generation))) continue;
        } else if (s->state == slot::always_ready) {
            try {
                always_ready.push_back(fd);
            } catch (const std::bad_alloc&) {
                continue;
            }
            files = true;
        } else {
            continue;
        }
        s->armed = true;
        set_live(fd, *s);
        any = true;
    }
    w.held.clear();
    if (files) extras_changed();
    if (any) changed(files);
}

void IOWait::impl::notify() noexcept {
    // Every wait in progress returns: the followers through the count, the
    // leader (or the one thread waiting) through the waker.
    if (waiters_state.load(std::memory_order_seq_cst) & (slow_exit | shared_tag)) notify_shared();
    if (!notified.exchange(true, std::memory_order_acq_rel)) wake();
}

void IOWait::impl::notify_shared() noexcept {
    std::lock_guard lk(shared->mu);
    ++shared->notifies;
    shared->cv.notify_all();
}

bool IOWait::impl::batch_full() noexcept {
    if (!(waiters_state.load(std::memory_order_seq_cst) & shared_tag)) return be->batch_full();
    std::lock_guard lk(shared->mu);
    for (const auto& w : shared->waiters)
        if (w->key == detail::thread_key()) return w->batch_full;
    return false;
}

}  // namespace iowait
