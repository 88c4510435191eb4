// sources.hpp's wait side: what the front end calls around a kernel wait
// (before_wait, ready, woken, collect), apart from the calls that change
// the sources (sources.cpp).
#include "detail/signal_hub.hpp"
#include "sources.hpp"

#ifdef _WIN32
#include "detail/process_wait.hpp"
#else
#include <signal.h>
#include <unistd.h>
#endif

namespace iowait::detail {

void sources::forget_pending() noexcept {
    for (const std::uint32_t index : queue_) slots_[index].queued = false;
    queue_.clear();
    check_ = false;
}

void sources::kernel_fds(std::vector<rewatch>& out) const {
    if (own_.fd() != native_handle(-1))
        out.push_back({own_.fd(), Interest::read, Mode::level, make_token(own_.fd(), source_generation)});
#ifndef _WIN32
    // A rebuild re-adds every fd of the set; this walk is its share.
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        const source& s = slots_[i];
        if (s.what == kind::process && s.process.pidfd >= 0)
            out.push_back({s.process.pidfd, Interest::read, Mode::level,
                           make_token(id_of(std::uint32_t(i), s), source_generation)});
    }
#endif
}

void sources::ready(std::uint32_t low) noexcept {
    // A source id is negative: its low half sign-extends back to it (a
    // SOCKET-sized native_handle on Windows would not).
    if (const auto id = native_handle(std::intptr_t(std::int32_t(low))); is_source_id(id)) {
        // A native source fired, or a pidfd is readable; an id unwatched
        // meanwhile finds nothing. Reported by collect() if armed, else
        // kept for the modify() that re-arms it.
        source* s = find(id);
        if (!s) return;
        bool ours = s->native;
#ifndef _WIN32
        if (s->what == kind::process && s->process.pidfd >= 0) {
            // Readable from the exit on, for ever: out of the kernel set at
            // once, so that it wakes no later wait.
            be_.remove(s->process.pidfd);
            ::close(s->process.pidfd);
            s->process.pidfd = -2;  // neither a pidfd nor the SIGCHLD fallback now
            ours = true;
        }
#endif
        if (!ours) return;
        s->fired = true;
        if (s->armed) queue(std::uint32_t(s - slots_.data()));
        return;
    }
    if (own_.fd() != native_handle(-1) && native_handle(low) == own_.fd()) {
        own_.drain();
        woken();
    }
}

void sources::check_wake() noexcept {
    check_ = false;
    for (int signo = 1; signo <= 64; ++signo) {
        const std::uint32_t index = signal_source_[signo];
        if (index == none) continue;
        const source& s = slots_[index];
        if (!s.native && s.armed && signal_hub::count(signo) != s.signal.seen) queue(index);
    }
    if (polled_.empty()) return;
#ifndef _WIN32
    // The processes without a pidfd, only when SIGCHLD came: one waitid()
    // each, which is what the fallback costs.
    const std::uint64_t c = signal_hub::count(SIGCHLD);
    if (c == chld_seen_) return;
    chld_seen_ = c;
#endif
    for (std::size_t i = 0; i < polled_.size();) {
        const std::uint32_t index = polled_[i];
        source& s = slots_[index];
#ifdef _WIN32
        const bool exited = process_wait_exited(s.process.wait);
#else
        const bool exited = has_exited(s.process.pid);
#endif
        if (!exited) {
            ++i;
            continue;
        }
        s.fired = true;
        polled_remove(index);  // polled_[i] is another one now
        if (s.armed) queue(index);
    }
}

std::int64_t sources::before_wait(std::int64_t remaining) noexcept {
    if (check_ || !queue_.empty()) return 0;
    if (heap_.empty()) return remaining;
    std::int64_t left = heap_[0].due - now_ns();
    if (left < 0) left = 0;
    return remaining < 0 || left < remaining ? left : remaining;
}

void sources::fire(source& s, std::uint32_t index, Event*& out) noexcept {
    *out++ = Event{id_of(index, s), true, false, false, false, s.data};
    if (s.mode == Mode::oneshot) s.armed = false;
}

void sources::fire_queued(std::uint32_t index, Event*& out) noexcept {
    source& s = slots_[index];
    if (!s.armed) return;
    if (s.what == kind::signal) {
        if (s.native) {
            if (!s.fired) return;
            s.fired = false;
        } else {
            const std::uint64_t c = signal_hub::count(s.signal.signo);
            if (c == s.signal.seen) return;
            s.signal.seen = c;
        }
        fire(s, index, out);
    } else if (s.what == kind::process && s.fired) {
        fire(s, index, out);
    }
}

void sources::fire_timer(std::int64_t now, Event*& out) noexcept {
    const std::uint32_t index = heap_[0].index;
    source& s = slots_[index];
    fire(s, index, out);
    if (s.timer.period == 0) {
        s.fired = true;  // spent
        heap_remove(0);
        return;
    }
    // The next deadline after now, on the timer's own grid: no drift, and
    // the periods a late wait missed make one report.
    const std::int64_t due = s.timer.due, period = s.timer.period;
    const std::int64_t missed = (now - due) / period + 1;
    s.timer.due = missed > (INT64_MAX - due) / period ? INT64_MAX : due + missed * period;
    if (!s.armed) {
        heap_remove(0);  // oneshot: out of the heap until modify()
        return;
    }
    heap_[0].due = s.timer.due;
    heap_down(0);
}

Event* sources::collect(Event* out, Event* end) noexcept {
    if (check_) check_wake();
    if (!queue_.empty()) {
        std::size_t i = 0;
        for (; i < queue_.size() && out != end; ++i) {
            source& s = slots_[queue_[i]];
            s.queued = false;
            if (s.what != kind::free) fire_queued(queue_[i], out);
        }
        // More than one wait's room: the rest for the next wait, which does not block.
        queue_.erase(queue_.begin(), queue_.begin() + std::ptrdiff_t(i));
    }
    if (!heap_.empty() && out != end) {
        const std::int64_t now = now_ns();
        while (!heap_.empty() && heap_[0].due <= now && out != end) fire_timer(now, out);
    }
    return out;
}

}  // namespace iowait::detail
