// The front end: everything that is the same for every backend (see the
// contract in backend.hpp), so that each rule of docs/behaviour.md is
// written once.
#include "iowait/iowait.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>

#include "backend.hpp"
#include "detail/fd_table.hpp"
#include "detail/file_identity.hpp"
#include "detail/small_mutex.hpp"
#include "detail/sys_error.hpp"
#include "detail/waker.hpp"
#include "factory.hpp"

namespace iowait {

namespace {

using detail::file_identity;

// One watched fd. The generation tells this watch from an earlier one of the
// same number, so an event collected before an unwatch() is never reported
// for the watch that follows it.
struct slot {
    enum state_t : std::uint8_t {
        free,
        active,        // in the backend's kernel set
        always_ready,  // a file the kernel cannot poll (epoll: EPERM): ready for every interest
        closed,        // the backend saw the fd closed; waits for unwatch()
    };
    state_t state = free;
    Interest interest = Interest::none;
    Mode mode = Mode::level;
    bool armed = true;  // false once a oneshot (or always-ready edge) watch has reported
    std::uint32_t generation = 0;
    std::uint64_t data = 0;
    file_identity id;  // kept where the backend cannot tell a reused number itself
};

constexpr std::uint32_t waker_generation = 0;  // watches start at 1

// A Windows handle fits in 32 bits: the kernel keeps handle values below 2^32
// so that 32- and 64-bit processes can share them, hence the cast is lossless.
std::uint64_t make_token(native_handle fd, std::uint32_t generation) {
    return std::uint64_t(generation) << 32 | std::uint32_t(fd);
}

bool valid_interest(Interest i) { return i != Interest::none && (unsigned(i) & ~3u) == 0; }

// The message names the call, the fd and the backend: "iowait: watch(fd=7) on epoll".
[[noreturn]] void throw_error(std::error_code ec, std::string_view op, native_handle fd, std::string_view backend) {
    std::string what = "iowait: ";
    what += op;
    if (fd != native_handle(-1)) what += "(fd=" + std::to_string(fd) + ")";
    if (!backend.empty()) {
        what += " on ";
        what += backend;
    }
    if (ec.category() == iowait_category()) throw usage_error(ec, what + ": " + ec.message());
    throw std::system_error(ec, what);
}

}  // namespace

struct IOWait::impl {
    std::unique_ptr<detail::backend> be;
    detail::waker waker;    // unused (no fd) where the backend wakes itself
    bool own_wake = false;  // the backend's own wake-up (kqueue's EVFILT_USER) replaces the waker
    // The backend's answers to these never change: asked once, not per event.
    const bool keys_by_number;
    const bool changes_need_wakeup;
    const bool native_oneshot;
    const bool needs_before_wait;
    detail::small_mutex mu;  // guards slots, always_ready and the backend's add/modify/remove
    detail::fd_table<slot> slots;
    std::vector<native_handle> always_ready;
    // !always_ready.empty(), readable without the lock: wait() takes the lock
    // before the kernel wait only when there is something to do under it.
    std::atomic<bool> any_always_ready{false};
    std::uint32_t next_generation = 1;
    std::atomic<bool> waiting{false};
    std::atomic<bool> notified{false};
    // Reused by every wait(), so the steady state allocates nothing.
    std::vector<detail::ready> ready;
    std::vector<Event> events;

    impl(std::unique_ptr<detail::backend> b, std::error_code& ec)
        : be(std::move(b)),
          keys_by_number(be->keys_by_number()),
          changes_need_wakeup(be->changes_need_wakeup()),
          native_oneshot(be->native_oneshot()),
          needs_before_wait(be->needs_before_wait()) {
        own_wake = be->own_wake(make_token(0, waker_generation));
        if (!own_wake) {
            waker = detail::waker(ec);
            if (!ec) ec = be->add(waker.fd(), Interest::read, Mode::level, make_token(waker.fd(), waker_generation));
        }
        ready.reserve(64);
        events.reserve(64);
    }

    slot* find(native_handle fd) {
        slot* s = slots.get(fd);
        return s && s->state != slot::free ? s : nullptr;
    }

    // After every change, under the lock. While a poll or select waiter
    // sleeps, its kernel set is a copy: wake it so that it picks the change up.
    // A file that joins always_ready needs the wake on every backend: the
    // waiter only looks at that list (through any_always_ready) before it
    // blocks, and no kernel will ever wake it for the file. Sequentially
    // consistent here and in wait(), so that either the waiter sees the flag
    // before it blocks or this sees it waiting and wakes it.
    void changed(bool now_always_ready = false) {
        any_always_ready.store(!always_ready.empty(), std::memory_order_seq_cst);
        if ((now_always_ready || changes_need_wakeup) && waiting.load(std::memory_order_seq_cst)) wake();
    }

    void wake() {
        if (own_wake)
            be->wake();
        else
            waker.signal();
    }

    std::error_code watch(native_handle fd, Interest interest, std::uint64_t data, Mode mode) {
        if (!be->supports(mode)) return errc::unsupported_mode;
        std::lock_guard lock(mu);
        if (find(fd)) return errc::already_watched;
        slot s{slot::active, interest, mode, true, next_generation, data, {}};
        if (keys_by_number)
            if (auto ec = detail::identify(fd, s.id)) return ec;
        if (auto ec = be->add(fd, interest, mode, make_token(fd, s.generation))) {
            if (ec != std::errc::operation_not_permitted) return ec;
            // epoll refuses regular files and directories; poll and select
            // call them always ready, and so do we, on every backend.
            if (auto ec2 = detail::identify(fd, s.id)) return ec2;
            s.state = slot::always_ready;
        }
        try {
            slots.make(fd) = s;
            if (s.state == slot::always_ready) always_ready.push_back(fd);
        } catch (const std::bad_alloc&) {
            slots.erase(fd);
            if (s.state == slot::active) be->remove(fd);
            return std::make_error_code(std::errc::not_enough_memory);
        }
        ++next_generation;
        if (next_generation == waker_generation) ++next_generation;
        changed(s.state == slot::always_ready);
        return {};
    }

    std::error_code modify(native_handle fd, Interest interest, std::uint64_t data, Mode mode) {
        if (!be->supports(mode)) return errc::unsupported_mode;
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
            if (auto ec = be->modify(fd, interest, mode, make_token(fd, s->generation))) return ec;
        const bool rearmed_always_ready = s->state == slot::always_ready && !s->armed;
        if (rearmed_always_ready) always_ready.push_back(fd);
        s->interest = interest;
        s->data = data;
        s->mode = mode;
        s->armed = true;
        changed(rearmed_always_ready);
        return {};
    }

    std::error_code unwatch(native_handle fd) {
        std::lock_guard lock(mu);
        slot* s = find(fd);
        if (!s) return errc::not_watched;
        if (s->state == slot::active) {
            auto ec = be->remove(fd);
            // EBADF: closed, so the kernel dropped it; ENOENT: the number now
            // names a file the kernel never saw. Either way it is gone.
            if (ec && ec != std::errc::bad_file_descriptor && ec != std::errc::no_such_file_or_directory) return ec;
        }
        if (s->state == slot::always_ready && s->armed) std::erase(always_ready, fd);
        slots.erase(fd);
        changed();
        return {};
    }

    void forget_closed(native_handle fd, slot& s) {
        if (s.state == slot::active) be->remove(fd);
        if (s.state == slot::always_ready && s.armed) std::erase(always_ready, fd);
        s.state = slot::closed;
    }

    // Returns true if an event was reported.
    bool report(native_handle fd, slot& s, unsigned flags) {
        using namespace detail;
        const bool done = flags & (hangup | error);  // the next call returns at once
        const bool r = has(s.interest, Interest::read) && (done || (flags & readable));
        const bool w = has(s.interest, Interest::write) && (done || (flags & writable));
        if (!r && !w) return false;
        events.push_back(Event{fd, r, w, bool(flags & hangup), bool(flags & error), s.data});
        if (s.mode == Mode::oneshot) {
            s.armed = false;
            // Emulated oneshot: disarm in the kernel set now, under the lock,
            // or a level-triggered kernel would wake every wait for nothing.
            if (s.state == slot::active && !native_oneshot)
                be->modify(fd, Interest::none, Mode::oneshot, make_token(fd, s.generation));
        }
        return true;
    }

    // Turns the kernel's answer into events; true if notify() was called.
    bool collect() {
        std::lock_guard lock(mu);
        bool woken = false;
        for (const detail::ready& r : ready) {
            const auto fd = native_handle(std::uint32_t(r.token));
            const auto generation = std::uint32_t(r.token >> 32);
            if (generation == waker_generation) {
                if (!own_wake) waker.drain();
                woken |= notified.exchange(false, std::memory_order_acq_rel);
                continue;
            }
            slot* s = find(fd);
            if (!s || s->generation != generation || s->state != slot::active || !s->armed)
                continue;  // unwatched, closed or disarmed meanwhile
            if (r.flags & detail::closed) {
                forget_closed(fd, *s);
                continue;
            }
            if (keys_by_number) {
                file_identity now;
                if (detail::identify(fd, now) || !(now == s->id)) {
                    forget_closed(fd, *s);  // closed, maybe reused: never report the new file
                    continue;
                }
            }
            report(fd, *s, r.flags);
        }
        for (std::size_t i = 0; i < always_ready.size();) {
            const native_handle fd = always_ready[i];
            slot& s = *slots.get(fd);
            file_identity now;
            if (detail::identify(fd, now) || !(now == s.id)) {
                forget_closed(fd, s);  // erases always_ready[i]
                continue;
            }
            report(fd, s, detail::readable | detail::writable);
            // An always-ready file never changes state: an edge watch, like
            // a oneshot one, reports it once (until modify()).
            if (s.mode != Mode::level) {
                s.armed = false;
                always_ready.erase(always_ready.begin() + std::ptrdiff_t(i));
                continue;
            }
            ++i;
        }
        any_always_ready.store(!always_ready.empty(), std::memory_order_release);
        return woken;
    }

    // timeout_ns < 0: none. return_on_signal: EINTR ends the wait instead of
    // being retried, so that the caller can run its own signal handlers.
    std::error_code wait(std::int64_t timeout_ns, bool return_on_signal = false) {
        using clock = std::chrono::steady_clock;
        if (waiting.exchange(true, std::memory_order_seq_cst)) return errc::wait_in_progress;
        struct reset {
            std::atomic<bool>& flag;
            ~reset() { flag.store(false, std::memory_order_release); }
        } reset_waiting{waiting};
        events.clear();
        const auto start = timeout_ns > 0 ? clock::now() : clock::time_point{};
        for (;;) {
            std::int64_t remaining = timeout_ns;
            if (timeout_ns > 0) {
                remaining =
                    timeout_ns - std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - start).count();
                if (remaining < 0) remaining = 0;
            }
            // One lock per wait, in collect(), where the backend needs nothing
            // done before its wait: epoll reads its set in the kernel.
            if (needs_before_wait || any_always_ready.load(std::memory_order_seq_cst)) {
                std::lock_guard lock(mu);
                if (!always_ready.empty()) remaining = 0;
                if (needs_before_wait) be->before_wait();
            }
            const ::timespec ts = detail::to_timespec(remaining < 0 ? 0 : remaining);
            ready.clear();
            if (auto ec = be->wait(remaining < 0 ? nullptr : &ts, ready);
                ec && (ec != std::errc::interrupted || return_on_signal))
                return ec;
            const bool woken = collect();
            if (!events.empty() || woken || timeout_ns == 0) return {};
            // Nothing to report (a timeout, EINTR, a change picked up, a closed
            // fd dropped): wait again for whatever time is left.
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
    impl_ = std::make_unique<impl>(std::move(be), ec);
    if (ec) throw_error(ec, "IOWait()", -1, to_string(backend_));
}

IOWait::IOWait(Backend backend) : backend_(backend) {
    std::error_code ec;
    std::string why;  // what the kernel refused, where the backend can say (io_uring)
    auto be = detail::make_backend(backend, ec, why);
    if (!be && !why.empty() && ec.category() == iowait_category())
        throw usage_error(
            ec, "iowait: IOWait(Backend) on " + std::string(to_string(backend)) + ": " + ec.message() + ": " + why);
    if (!be) throw_error(ec, "IOWait(Backend)", -1, to_string(backend));
    impl_ = std::make_unique<impl>(std::move(be), ec);
    if (ec) throw_error(ec, "IOWait(Backend)", -1, to_string(backend));
}

IOWait::~IOWait() = default;
IOWait::IOWait(IOWait&&) noexcept = default;
IOWait& IOWait::operator=(IOWait&&) noexcept = default;

std::vector<Backend> IOWait::available_backends() { return detail::available(); }

// The checks that need no lock and no kernel, shared by watch and modify.
static std::error_code check_args(bool have_impl, native_handle fd, Interest interest, Mode mode = Mode::level) {
    if (!have_impl) return errc::moved_from;
    if (fd == native_handle(-1) || std::int64_t(fd) < 0) return errc::bad_fd;
    if (!valid_interest(interest)) return errc::bad_interest;
    if (mode != Mode::level && mode != Mode::oneshot && mode != Mode::edge) return errc::unsupported_mode;
    return {};
}

void IOWait::watch(native_handle fd, Interest interest, std::uint64_t data, Mode mode, std::error_code& ec) noexcept {
    ec = check_args(bool(impl_), fd, interest, mode);
    if (!ec) ec = impl_->watch(fd, interest, data, mode);
}

void IOWait::watch(native_handle fd, Interest interest, std::uint64_t data, std::error_code& ec) noexcept {
    watch(fd, interest, data, Mode::level, ec);
}

void IOWait::watch(native_handle fd, Interest interest, std::uint64_t data, Mode mode) {
    std::error_code ec;
    watch(fd, interest, data, mode, ec);
    if (ec) throw_error(ec, "watch", fd, to_string(backend_));
}

void IOWait::modify(native_handle fd, Interest interest, std::uint64_t data, Mode mode, std::error_code& ec) noexcept {
    ec = check_args(bool(impl_), fd, interest, mode);
    if (!ec) ec = impl_->modify(fd, interest, data, mode);
}

void IOWait::modify(native_handle fd, Interest interest, std::uint64_t data, std::error_code& ec) noexcept {
    modify(fd, interest, data, Mode::level, ec);
}

void IOWait::modify(native_handle fd, Interest interest, std::uint64_t data, Mode mode) {
    std::error_code ec;
    modify(fd, interest, data, mode, ec);
    if (ec) throw_error(ec, "modify", fd, to_string(backend_));
}

bool IOWait::supports(Mode mode) const noexcept { return impl_ && impl_->be->supports(mode); }

void IOWait::unwatch(native_handle fd, std::error_code& ec) noexcept {
    ec = check_args(bool(impl_), fd, Interest::read);
    if (!ec) ec = impl_->unwatch(fd);
}

void IOWait::unwatch(native_handle fd) {
    std::error_code ec;
    unwatch(fd, ec);
    if (ec) throw_error(ec, "unwatch", fd, to_string(backend_));
}

std::span<const Event> IOWait::wait_ns(std::int64_t timeout_ns, std::error_code& ec) noexcept {
    if (!impl_)
        ec = errc::moved_from;
    else if (timeout_ns < 0)
        ec = errc::bad_timeout;
    else
        ec = impl_->wait(timeout_ns);
    if (ec) return {};
    return impl_->events;
}

std::span<const Event> IOWait::wait_ns(std::int64_t timeout_ns) {
    std::error_code ec;
    auto events = wait_ns(timeout_ns, ec);
    if (ec) throw_error(ec, "wait", -1, to_string(backend_));
    return events;
}

std::span<const Event> IOWait::wait_ns(std::int64_t timeout_ns, bool return_on_signal, std::error_code& ec) noexcept {
    if (!impl_)
        ec = errc::moved_from;
    else if (timeout_ns == -1)
        ec = errc::bad_timeout;
    else
        ec = impl_->wait(timeout_ns < 0 ? -1 : timeout_ns, return_on_signal);
    if (ec) return {};
    return impl_->events;
}

std::span<const Event> IOWait::wait(std::error_code& ec) noexcept {
    ec = impl_ ? impl_->wait(-1) : make_error_code(errc::moved_from);
    if (ec) return {};
    return impl_->events;
}

std::span<const Event> IOWait::wait() {
    std::error_code ec;
    auto events = wait(ec);
    if (ec) throw_error(ec, "wait", -1, to_string(backend_));
    return events;
}

bool IOWait::batch_full() const noexcept { return impl_ && impl_->be->batch_full(); }

void IOWait::notify() {
    if (!impl_) throw_error(errc::moved_from, "notify", -1, to_string(backend_));
    if (!impl_->notified.exchange(true, std::memory_order_acq_rel)) impl_->wake();
}

}  // namespace iowait
