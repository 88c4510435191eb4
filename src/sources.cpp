// See sources.hpp.
#include "sources.hpp"

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
#include <unistd.h>

#include <cstdlib>
#endif
#ifdef __linux__
#include <sys/syscall.h>
#endif

namespace iowait::detail {

namespace {

std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

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

// Whether the child has exited, without reaping it; true also once someone
// has reaped it (ECHILD), since it has exited then too.
bool has_exited(std::int64_t pid) noexcept {
    siginfo_t info{};
    if (::waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return errno == ECHILD;
    return info.si_pid != 0;
}
#endif

}  // namespace

sources::~sources() {
    for (auto& s : list_)
        if (s.native) drop_native(s);
#ifdef _WIN32
    for (auto& s : list_) process_wait_stop(s.wait);  // before signals_ closes: no callback writes to it
#else
    for (auto& s : list_)
        if (s.pidfd >= 0) {
            be_.remove(s.pidfd);
            ::close(s.pidfd);
        }
#endif
    if (place_ >= 0) {
        for (int signo = 1; signo <= 64; ++signo)
            if (signal_users_[signo] != 0) signal_hub::remove(place_, signo);
        signal_hub::detach(place_);
    }
    if (signals_.fd() != native_handle(-1)) be_.remove(signals_.fd());
}

sources::source* sources::find(native_handle id) noexcept {
    for (auto& s : list_)
        if (s.id == id) return &s;
    return nullptr;
}

status sources::insert(source s) noexcept {
    try {
        list_.push_back(s);
    } catch (...) {
        return status::from_errno(ENOMEM);
    }
    list_.back().id = next_id();
    count_timers();
    return {};
}

status sources::use_waker() noexcept {
    if (signals_.fd() != native_handle(-1)) return {};
    std::error_code ec;
    waker w(ec);
    if (ec) return ec;
    if (auto st = be_.add(w.fd(), Interest::read, Mode::level, make_token(w.fd(), source_generation))) return st;
    signals_ = std::move(w);
    return {};
}

status sources::use_signal(int signo) noexcept {
    if (auto st = use_waker()) return st;
    if (place_ < 0) {
        place_ = signal_hub::attach(signals_.write_fd());
        if (place_ < 0) return status::from_errno(EMFILE);
    }
    if (signal_users_[signo] == 0)
        if (auto st = signal_hub::add(place_, signo)) return st;
    ++signal_users_[signo];
    return {};
}

void sources::drop_signal(int signo) noexcept {
    if (--signal_users_[signo] == 0) signal_hub::remove(place_, signo);
}

status sources::watch_native(source& s, backend::source_kind as, std::int64_t ident) noexcept {
    const status st = be_.add_source(as, ident, make_token(peek_id(), source_generation));
    s.native = !st;
    return st;
}

void sources::drop_native(const source& s) noexcept {
    // ENOENT for a process the kernel dropped as it reported the exit: gone either way.
    if (s.what == kind::process) {
        be_.remove_source(backend::source_kind::process, s.pid);
        return;
    }
    be_.remove_source(backend::source_kind::signal, s.signo);
#ifndef _WIN32
    signal_hub::release(s.signo);  // after the knote: the disposition holds until nothing reports it
#endif
}

status sources::watch_signal(int signo, std::uint64_t data, Mode mode, native_handle& id) noexcept {
    if (!valid_mode(mode)) return errc::unsupported_mode;
    if (!signal_hub::watchable(signo)) return status::from_errno(EINVAL);
    for (auto& s : list_)
        if (s.what == kind::signal && s.signo == signo) return errc::already_watched;
    // Counted before the handler is installed: deliveries from here on are
    // reported, earlier ones (another IOWait's) are not.
    const std::uint64_t seen = signal_hub::count(signo);
    source s{};
    s.what = kind::signal;
    s.mode = mode;
    s.data = data;
    s.signo = signo;
    s.seen = seen;
    // The handler before the kernel's report: a knote alone would let the
    // default action run (a kqueue records the signal, it does not catch it).
    if (auto st = signal_hub::hold(signo)) return st;
    if (auto st = watch_native(s, backend::source_kind::signal, signo)) {
        // Not native: the handler and the waker. The hold is dropped after
        // use_signal() took its own, so that the action is not swapped twice.
        const status own = st == errc::unsupported_source ? use_signal(signo) : st;
        signal_hub::release(signo);
        if (own) return own;
    }
    if (auto st = insert(s)) {
        if (s.native)
            drop_native(s);
        else
            drop_signal(signo);
        return st;
    }
    id = list_.back().id;
    return {};
}

status sources::watch_process(std::int64_t pid, std::uint64_t data, native_handle& id) noexcept {
    if (pid <= 0 || pid > INT_MAX) return status::from_errno(EINVAL);
    for (auto& s : list_)
        if (s.what == kind::process && s.pid == pid) return errc::already_watched;
#ifdef _WIN32
    return watch_process_windows(pid, data, id);
#else
    siginfo_t info{};
    // Only a child: waitid() tells its exit without reaping it, on every
    // POSIX system, and the caller is the one that reaps it.
    if (::waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return status::from_errno(errno);
    source s{};
    s.what = kind::process;
    s.mode = Mode::oneshot;
    s.data = data;
    s.pid = pid;
    s.pidfd = -2;  // neither a pidfd nor the SIGCHLD fallback, unless set below
    const status native = watch_native(s, backend::source_kind::process, pid);
    if (!native) {
        // The knote first, then the check, as below: a child that had exited
        // already is reported by the next wait whatever the kernel makes of it.
        s.fired = has_exited(pid);
        dirty_ = dirty_ || s.fired;
    } else if (native == std::errc::no_such_process && has_exited(pid)) {
        // macOS refuses EVFILT_PROC for a zombie (ESRCH): it has exited.
        s.fired = true;
        dirty_ = true;
    } else if (!(native == errc::unsupported_source)) {
        return native;
    } else if (s.pidfd = open_pidfd(pid); s.pidfd >= 0) {
        if (auto st = be_.add(s.pidfd, Interest::read, Mode::level, make_token(s.pidfd, source_generation))) {
            ::close(s.pidfd);
            return st;
        }
    } else if (errno != ENOSYS) {
        return status::from_errno(errno);
    } else {
        // SIGCHLD first, then the check: an exit in between is seen by one of them.
        if (auto st = use_signal(SIGCHLD)) return st;
        s.fired = has_exited(pid);
        dirty_ = dirty_ || s.fired;
    }
    if (auto st = insert(s)) {
        if (s.native) {
            drop_native(s);
        } else if (s.pidfd >= 0) {
            be_.remove(s.pidfd);
            ::close(s.pidfd);
        } else if (s.pidfd == -1) {
            drop_signal(SIGCHLD);
        }
        return st;
    }
    id = list_.back().id;
    return {};
#endif
}

status sources::watch_timer(std::int64_t first_ns, std::int64_t period_ns, std::uint64_t data, Mode mode,
                            native_handle& id) noexcept {
    if (first_ns < 0 || period_ns < 0) return errc::bad_timeout;
    if (!valid_mode(mode)) return errc::unsupported_mode;
    const std::int64_t now = now_ns();
    source s{};
    s.what = kind::timer;
    s.mode = mode;
    s.data = data;
    s.due = first_ns > INT64_MAX - now ? INT64_MAX : now + first_ns;
    s.period = period_ns;
    if (auto st = insert(s)) return st;
    id = list_.back().id;
    return {};
}

status sources::modify(native_handle id, Interest interest, std::uint64_t data, Mode mode) noexcept {
    source* s = find(id);
    if (!s) return std::intptr_t(id) >= -1 - std::intptr_t(issued_) ? status(errc::not_watched) : errc::bad_fd;
    if (interest != Interest::read) return errc::bad_interest;
    if (!valid_mode(mode) || (s->what == kind::process && mode != Mode::oneshot)) return errc::unsupported_mode;
    s->data = data;
    s->mode = mode;
    if (!s->armed) {
        // What fired while it was disarmed is reported once now: a signal
        // delivered, a process that exited, a timer's deadline that passed.
        s->armed = true;
        dirty_ = true;
    }
    count_timers();
    return {};
}

status sources::unwatch(native_handle id) noexcept {
    source* s = find(id);
    if (!s) return std::intptr_t(id) >= -1 - std::intptr_t(issued_) ? status(errc::not_watched) : errc::bad_fd;
    if (s->native)
        drop_native(*s);
    else if (s->what == kind::signal)
        drop_signal(s->signo);
#ifdef _WIN32
    else if (s->what == kind::process)
        process_wait_stop(s->wait);
#else
    else if (s->what == kind::process) {
        if (s->pidfd >= 0) {
            be_.remove(s->pidfd);
            ::close(s->pidfd);
        } else if (s->pidfd == -1) {  // the SIGCHLD fallback (-2: a pidfd, closed as it fired)
            drop_signal(SIGCHLD);
        }
    }
#endif
    list_.erase(list_.begin() + (s - list_.data()));
    count_timers();
    return {};
}

void sources::ready(std::uint32_t low) noexcept {
    // A source id is negative: its low half sign-extends back to it (a
    // SOCKET-sized native_handle on Windows would not).
    if (const auto id = native_handle(std::intptr_t(std::int32_t(low))); is_source_id(id)) {
        // A native source fired; an id already unwatched finds nothing
        // (ids are never reused). Reported by collect() if armed, else
        // kept for the modify() that re-arms it.
        if (source* s = find(id)) {
            s->fired = true;
            dirty_ = true;
        }
        return;
    }
    const auto fd = native_handle(low);
    if (fd == signals_.fd()) {
        signals_.drain();
        dirty_ = true;
        return;
    }
#ifndef _WIN32
    for (auto& s : list_)
        if (s.what == kind::process && s.pidfd == fd) {
            // Readable from the exit on, for ever: out of the kernel set at
            // once, so that it wakes no later wait.
            be_.remove(fd);
            ::close(fd);
            s.pidfd = -2;  // neither a pidfd nor the SIGCHLD fallback now
            s.fired = true;
            dirty_ = true;
            return;
        }
#endif
}

std::int64_t sources::before_wait(std::int64_t remaining) noexcept {
    if (dirty_) return 0;
    if (armed_timers_ == 0) return remaining;
    std::int64_t left = next_due_ - now_ns();
    if (left < 0) left = 0;
    return remaining < 0 || left < remaining ? left : remaining;
}

void sources::fire(source& s, Event*& out) noexcept {
    *out++ = Event{s.id, true, false, false, false, s.data};
    if (s.mode == Mode::oneshot) s.armed = false;
}

Event* sources::collect(Event* out) noexcept {
    const std::int64_t now = armed_timers_ != 0 ? now_ns() : 0;
    if (!dirty_ && (armed_timers_ == 0 || now < next_due_)) return out;
    for (auto& s : list_) {
        switch (s.what) {
        case kind::signal:
            if (s.native) {
                if (s.fired && s.armed) {
                    s.fired = false;
                    fire(s, out);
                }
                break;
            }
            if (s.armed && dirty_) {
                const std::uint64_t c = signal_hub::count(s.signo);
                if (c != s.seen) {
                    s.seen = c;
                    fire(s, out);
                }
            }
            break;
        case kind::process:
#ifdef _WIN32
            if (!s.fired && s.wait && dirty_) s.fired = process_wait_exited(s.wait);
#else
            if (!s.fired && s.pidfd == -1 && dirty_) s.fired = has_exited(s.pid);
#endif
            if (s.fired && s.armed) fire(s, out);
            break;
        case kind::timer:
            if (!s.armed || s.fired || now < s.due) break;
            fire(s, out);
            if (s.period == 0) {
                s.fired = true;
            } else {
                // The next deadline after now, on the timer's own grid: no drift,
                // and the periods a late wait missed make one report.
                const std::int64_t missed = (now - s.due) / s.period + 1;
                s.due = missed > (INT64_MAX - s.due) / s.period ? INT64_MAX : s.due + missed * s.period;
            }
            break;
        }
    }
    dirty_ = false;
    count_timers();
    return out;
}

void sources::count_timers() noexcept {
    armed_timers_ = 0;
    next_due_ = INT64_MAX;
    for (auto& s : list_)
        if (s.what == kind::timer && s.armed && !s.fired) {
            ++armed_timers_;
            if (s.due < next_due_) next_due_ = s.due;
        }
}

}  // namespace iowait::detail
