// See sources.hpp.
#include "sources.hpp"

#include <algorithm>
#include <chrono>
#include <climits>

#include "detail/signal_hub.hpp"
#include "detail/sys_error.hpp"

#ifdef _WIN32
#include "detail/process_wait.hpp"
#else
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#endif
#ifdef __linux__
#include <sys/syscall.h>
#endif

namespace iowait::detail {

// steady_clock's: CLOCK_MONOTONIC on POSIX, called directly (a timer's
// watch pays for it; libstdc++'s now() is one more call around it).
std::int64_t sources::now_ns() noexcept {
#ifdef _WIN32
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
#else
    ::timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
#endif
}

namespace {

bool valid_mode(Mode m) noexcept { return m == Mode::level || m == Mode::oneshot; }

#ifndef _WIN32
// A pidfd for pid, or -1 with errno. ENOSYS (before Linux 5.3, or not Linux)
// and EPERM (a seccomp filter that does not know the call) send the caller to
// the SIGCHLD fallback; IOWAIT_NO_PIDFD=1 does too, so that tests run it.
int open_pidfd(std::int64_t pid) noexcept {
#if defined(__linux__) && defined(SYS_pidfd_open)
    static const bool disabled = std::getenv("IOWAIT_NO_PIDFD") != nullptr;
    if (!disabled) {
        const long fd = ::syscall(SYS_pidfd_open, pid_t(pid), 0u);  // O_CLOEXEC by itself
        if (fd >= 0) return int(fd);
        if (errno != ENOSYS && errno != EPERM) return -1;
    }
#else
    (void)pid;
#endif
    errno = ENOSYS;
    return -1;
}

#endif

}  // namespace

#ifndef _WIN32
bool sources::has_exited(std::int64_t pid) noexcept {
    siginfo_t info{};
    if (::waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return errno == ECHILD;
    return info.si_pid != 0;
}
#endif

sources::sources(backend& be, const waker* shared) noexcept : be_(be), shared_(shared) {
    std::fill(std::begin(signal_source_), std::end(signal_source_), none);
}

sources::~sources() {
    for (auto& s : slots_)
        if (s.what != kind::free && s.native) drop_native(s);
#ifdef _WIN32
    for (auto& s : slots_)  // before the waker closes: no callback writes to it
        if (s.what == kind::process) process_wait_stop(s.process.wait);
#else
    for (auto& s : slots_)
        if (s.what == kind::process && s.process.pidfd >= 0) {
            be_.remove(s.process.pidfd);
            ::close(s.process.pidfd);
        }
#endif
    if (place_ >= 0) {
        for (int signo = 1; signo <= 64; ++signo)
            if (signal_users_[signo] != 0) signal_hub::remove(place_, signo);
        signal_hub::detach(place_);
    }
    if (own_.fd() != native_handle(-1)) be_.remove(own_.fd());
}

// --- slots and ids ---

status sources::unknown(native_handle id) const noexcept {
    // A slot that exists has given out ids: one of them, or one with another
    // generation of it, is gone. Beyond the slots, no id was ever given out.
    const std::int64_t v = std::intptr_t(id);
    if (v <= -2 && v >= -2 - std::int64_t(INT32_MAX) && (std::uint32_t(-2 - v) & index_mask) < slots_.size())
        return errc::not_watched;
    return errc::bad_fd;
}

std::uint32_t sources::new_slot() noexcept {
    if (free_count_ != 0 && slots_.size() >= max_sources) return pop_free();
    if (slots_.size() >= max_sources) return none;
    try {
        slots_.reserve(slots_.size() < 64 ? 64 : 2 * slots_.size());
    } catch (...) {
        return none;
    }
    slots_.emplace_back();
    return std::uint32_t(slots_.size() - 1);
}

status sources::reserve_queue() noexcept {
    // queue() never allocates: its room is made here, for every source
    // that may be queued (signals and processes), before one is added.
    try {
        queue_.reserve(queue_.size() + queueable_ + 1);
    } catch (...) {
        return status::from_errno(ENOMEM);
    }
    return {};
}

void sources::queue(std::uint32_t index) noexcept {
    source& s = slots_[index];
    if (s.queued) return;
    s.queued = true;
    queue_.push_back(index);  // within the capacity reserve_queue() made
}

// --- the heap of timers: 4-ary, each timer's place kept in its slot ---

inline status sources::heap_push(std::uint32_t index) noexcept {
    if (heap_.size() == heap_.capacity()) [[unlikely]] {
        const status st = heap_grow();
        if (st) return st;
    }
    heap_.push_back({slots_[index].timer.due, index});  // within the capacity: no throw
    heap_up(std::uint32_t(heap_.size() - 1));
    return {};
}

status sources::heap_grow() noexcept {
    try {
        heap_.reserve(heap_.size() < 64 ? 64 : 2 * heap_.size());
    } catch (...) {
        return status::from_errno(ENOMEM);
    }
    return {};
}

// --- processes checked at a wake ---

status sources::polled_add(std::uint32_t index) noexcept {
    try {
        polled_.push_back(index);
    } catch (...) {
        return status::from_errno(ENOMEM);
    }
    slots_[index].link = std::uint32_t(polled_.size() - 1);
    return {};
}

void sources::polled_remove(std::uint32_t index) noexcept {
    const std::uint32_t pos = slots_[index].link;
    if (pos == none) return;
    slots_[index].link = none;
    polled_[pos] = polled_.back();
    polled_.pop_back();
    if (pos < polled_.size()) slots_[polled_[pos]].link = pos;
}

// --- signals, wakers, native sources ---

native_handle sources::wake_fd() const noexcept { return shared_ ? shared_->write_fd() : own_.write_fd(); }

status sources::use_waker() noexcept {
    if (shared_ || own_.fd() != native_handle(-1)) return {};
    std::error_code ec;
    waker w(ec);
    if (ec) return ec;
    if (auto st = be_.add(w.fd(), Interest::read, Mode::level, make_token(w.fd(), source_generation))) return st;
    own_ = std::move(w);
    return {};
}

status sources::use_signal(int signo) noexcept {
    if (auto st = use_waker()) return st;
    if (place_ < 0) {
        place_ = signal_hub::attach(wake_fd());
        if (place_ < 0) return status::from_errno(EMFILE);
    }
    if (signal_users_[signo] == 0)
        if (auto st = signal_hub::add(place_, signo)) return st;
    ++signal_users_[signo];
    ++hub_users_;
    return {};
}

void sources::drop_signal(int signo) noexcept {
    --hub_users_;
    if (--signal_users_[signo] == 0) signal_hub::remove(place_, signo);
}

status sources::watch_native(std::uint32_t index, backend::source_kind as, std::int64_t ident) noexcept {
    source& s = slots_[index];
    const status st = be_.add_source(as, ident, make_token(id_of(index, s), source_generation));
    s.native = !st;
    return st;
}

void sources::drop_native(const source& s) noexcept {
    // ENOENT for a process the kernel dropped as it reported the exit: gone either way.
    if (s.what == kind::process) {
        be_.remove_source(backend::source_kind::process, s.process.pid);
        return;
    }
    be_.remove_source(backend::source_kind::signal, s.signal.signo);
#ifndef _WIN32
    signal_hub::release(s.signal.signo);  // after the knote: the disposition holds until nothing reports it
#endif
}

void sources::release(std::uint32_t index) noexcept {
    source& s = slots_[index];
    if (s.what == kind::timer) {
        if (s.link != none) heap_remove(s.link);
        return;
    }
    --queueable_;
    if (s.what == kind::signal) {
        signal_source_[s.signal.signo] = none;
        if (s.native)
            drop_native(s);
        else
            drop_signal(s.signal.signo);
        return;
    }
    pids_.erase(s.process.pid);
    polled_remove(index);
    if (s.native) {
        drop_native(s);
        return;
    }
#ifdef _WIN32
    process_wait_stop(s.process.wait);
#else
    if (s.process.pidfd >= 0) {
        be_.remove(s.process.pidfd);
        ::close(s.process.pidfd);
    } else if (s.process.pidfd == -1) {  // the SIGCHLD fallback (-2: a pidfd, closed as it fired)
        drop_signal(SIGCHLD);
    }
#endif
}

// --- the calls ---

status sources::watch_signal(int signo, std::uint64_t data, Mode mode, native_handle& id) noexcept {
    if (!valid_mode(mode)) return errc::unsupported_mode;
    if (!signal_hub::watchable(signo)) return status::from_errno(EINVAL);
    if (signal_source_[signo] != none) return errc::already_watched;
    if (auto st = reserve_queue()) return st;
    const std::uint32_t index = take_slot();
    if (index == none) return status::from_errno(ENOMEM);
    source& s = slots_[index];
    s.what = kind::signal;
    s.mode = mode;
    s.data = data;
    // Counted before the handler is installed: deliveries from here on are
    // reported, earlier ones (another IOWait's) are not.
    s.signal = {signal_hub::count(signo), signo};
    // The handler before the kernel's report: a knote alone would let the
    // default action run (a kqueue records the signal, it does not catch it).
    status st = signal_hub::hold(signo);
    if (!st) {
        st = watch_native(index, backend::source_kind::signal, signo);
        if (st) {
            // Not native: the handler and the waker. The hold is dropped after
            // use_signal() took its own, so that the action is not swapped twice.
            st = st == errc::unsupported_source ? use_signal(signo) : st;
            signal_hub::release(signo);
        }
    }
    if (st) {
        free_slot(index);
        return st;
    }
    signal_source_[signo] = index;
    ++queueable_;
    ++live_;
    wake_ = true;
    id = id_of(index, s);
    return {};
}

status sources::watch_process(std::int64_t pid, std::uint64_t data, native_handle& id) noexcept {
    if (pid <= 0 || pid > INT_MAX) return status::from_errno(EINVAL);
    if (pids_.count(pid) != 0) return errc::already_watched;
#ifdef _WIN32
    return watch_process_windows(pid, data, id);
#else
    siginfo_t info{};
    // Only a child: waitid() tells its exit without reaping it, on every
    // POSIX system, and the caller is the one that reaps it.
    if (::waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return status::from_errno(errno);
    if (auto st = reserve_queue()) return st;
    const std::uint32_t index = take_slot();
    if (index == none) return status::from_errno(ENOMEM);
    source& s = slots_[index];
    s.what = kind::process;
    s.mode = Mode::oneshot;
    s.data = data;
    s.process = {pid, -2};  // neither a pidfd nor the SIGCHLD fallback, unless set below
    try {
        pids_.emplace(pid, index);
    } catch (...) {
        free_slot(index);
        return status::from_errno(ENOMEM);
    }
    const auto fail = [&](status st) {
        pids_.erase(pid);
        free_slot(index);
        return st;
    };
    const native_handle token_id = id_of(index, s);
    const status native = watch_native(index, backend::source_kind::process, pid);
    if (!native) {
        // The knote first, then the check, as below: a child that had exited
        // already is reported by the next wait whatever the kernel makes of it.
        s.fired = has_exited(pid);
    } else if (native == std::errc::no_such_process && has_exited(pid)) {
        // macOS refuses EVFILT_PROC for a zombie (ESRCH): it has exited.
        s.fired = true;
    } else if (!(native == errc::unsupported_source)) {
        return fail(native);
    } else {
        const int fd = open_pidfd(pid);
        if (fd < 0 && errno != ENOSYS) return fail(status::from_errno(errno));
        if (fd >= 0) {
            const status st = be_.add(fd, Interest::read, Mode::level, make_token(token_id, source_generation));
            if (!st) {
                s.process.pidfd = fd;
            } else {
                ::close(fd);
                // select refuses a pidfd at or above FD_SETSIZE: the child is
                // watched the way that needs no fd, as without pidfd.
                if (!(st == errc::fd_too_large)) return fail(st);
            }
        }
        if (s.process.pidfd < 0) {
            // SIGCHLD first, then the check: an exit in between is seen by one of them.
            if (auto st = use_signal(SIGCHLD)) return fail(st);
            if (auto st = polled_add(index)) {
                drop_signal(SIGCHLD);
                return fail(st);
            }
            s.process.pidfd = -1;
            s.fired = has_exited(pid);
            if (s.fired) polled_remove(index);
        }
    }
    ++queueable_;
    ++live_;
    wake_ = true;
    if (s.fired) queue(index);
    id = token_id;
    return {};
#endif
}

status sources::watch_timer(std::int64_t first_ns, std::int64_t period_ns, std::uint64_t data, Mode mode,
                            native_handle& id) noexcept {
    if (first_ns < 0 || period_ns < 0) return errc::bad_timeout;
    if (!valid_mode(mode)) return errc::unsupported_mode;
    const std::int64_t now = now_ns();
    const std::uint32_t index = take_slot();
    if (index == none) return status::from_errno(ENOMEM);
    source& s = slots_[index];
    s.what = kind::timer;
    s.mode = mode;
    s.data = data;
    s.timer = {first_ns > INT64_MAX - now ? INT64_MAX : now + first_ns, period_ns};
    if (auto st = heap_push(index)) {
        free_slot(index);
        return st;
    }
    wake_ = s.link == 0;  // the earliest deadline now: a waiter's kernel wait must end sooner
    ++live_;
    id = id_of(index, s);
    return {};
}

status sources::modify(native_handle id, Interest interest, std::uint64_t data, Mode mode) noexcept {
    source* s = find(id);
    if (!s) return unknown(id);
    if (interest != Interest::read) return errc::bad_interest;
    if (!valid_mode(mode) || (s->what == kind::process && mode != Mode::oneshot)) return errc::unsupported_mode;
    const auto index = std::uint32_t(s - slots_.data());
    if (!s->armed) {
        // What fired while it was disarmed is reported once now: a signal
        // delivered, a process that exited, a timer's deadline that passed.
        if (s->what == kind::timer) {
            if (!s->fired)
                if (auto st = heap_push(index)) return st;
            wake_ = s->link == 0;
        } else {
            queue(index);
            wake_ = true;
        }
        s->armed = true;
    }
    s->data = data;
    s->mode = mode;
    return {};
}

status sources::unwatch(native_handle id) noexcept {
    source* s = find(id);
    if (!s) return unknown(id);
    const auto index = std::uint32_t(s - slots_.data());
    if (s->what == kind::timer) {  // the common case: a connection's timeout
        if (s->link != none) heap_remove(s->link);
        free_slot(index);
        if (--live_ == 0) forget_pending();
        return {};
    }
    // A kernel set changed (a pidfd, a knote): a poll or select waiter sleeps on a copy of it.
    wake_ = s->what != kind::timer;
    release(index);
    free_slot(index);
    if (--live_ == 0) forget_pending();
    return {};
}

}  // namespace iowait::detail
