// iowait: one interface for waiting on I/O readiness, over the best kernel
// mechanism of the platform, with the same behaviour on every mechanism.
// The rules are in docs/behaviour.md; each names the test that checks it.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "export.h"

namespace iowait {

// The handle a backend waits on: a file descriptor on POSIX, a SOCKET on Windows.
#ifdef _WIN32
using native_handle = std::uintptr_t;
#else
using native_handle = int;
#endif

// The kernel mechanism behind an IOWait. Which ones exist on which platform,
// and what each is for, is the table in docs/behaviour.md.
enum class Backend { epoll, io_uring, poll, select, kqueue, afd, wsapoll };

// What a watch waits for: read, write, or read | write.
enum class Interest : unsigned { none = 0, read = 1, write = 2, read_write = 3 };
constexpr Interest operator|(Interest a, Interest b) noexcept { return Interest(unsigned(a) | unsigned(b)); }
constexpr Interest operator&(Interest a, Interest b) noexcept { return Interest(unsigned(a) & unsigned(b)); }
constexpr bool has(Interest set, Interest bit) noexcept { return (set & bit) != Interest::none; }

// When a watch reports. level: on every wait while the fd is ready (the
// default, as the seed). oneshot: once, then the watch is disarmed until
// modify() re-arms it. edge: when the fd becomes ready again (new data, new
// room); only where the kernel can do it faithfully: see supports().
enum class Mode { level, oneshot, edge };

// One ready file, as wait() reports it: at most one Event per fd per wait.
// A source (watch_signal, watch_process, watch_timer) that fired is an Event
// too, with fd == its id, read set and the other flags clear.
// read/write are set only for the interests the watch asked for. hangup: the
// peer will send no more; such a fd is readable (reading returns EOF at
// once), but writable only when there is room or when the connection is gone
// both ways (then writing fails at once). error: readable and writable (the
// next call returns the error).
struct Event {
    native_handle fd;
    bool read;
    bool write;
    bool hangup;
    bool error;
    std::uint64_t data;  // the user data given to watch()/modify()

    template <class T>
    T* ptr() const noexcept {
        return reinterpret_cast<T*>(std::uintptr_t(data));
    }
};

// Misuse of the API (errors in the iowait_category()).
enum class errc {
    already_watched = 1,  // watch() of a fd that is watched
    not_watched,          // modify()/unwatch() of a fd that is not
    bad_fd,               // negative fd
    bad_interest,         // Interest::none or bits outside read|write
    fd_too_large,         // select: fd >= FD_SETSIZE
    bad_timeout,          // negative, NaN, or too large for nanoseconds
    backend_unavailable,  // IOWait{Backend::x} where x is not compiled in or refused
    unknown_backend,      // IOWAIT_BACKEND names no backend
    wait_in_progress,     // wait() from inside the same thread's wait() on the object (a signal handler)
    unsupported_mode,     // a Mode the backend cannot honour (edge on poll, select)
    moved_from,           // use of a moved-from IOWait
    forked,               // use in a forked child of an IOWait made before fork() (rule F1)
    unsupported_source,   // watch_signal()/watch_process() where the platform has no such source (Windows)
};
IOWAIT_API const std::error_category& iowait_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept { return {int(e), iowait_category()}; }

// Thrown for misuse (codes of iowait_category()); kernel refusals are thrown
// as std::system_error with the errno. Both messages name the call and fd.
class IOWAIT_API usage_error : public std::invalid_argument {
public:
    usage_error(std::error_code code, const std::string& what) : std::invalid_argument(what), code_(code) {}
    std::error_code code() const noexcept { return code_; }
    // Defined in the library, so that the class's vtable and type_info live
    // there once, not in every program that includes this header.
    const char* what() const noexcept override;

private:
    std::error_code code_;
};

IOWAIT_API std::string_view to_string(Backend b) noexcept;
IOWAIT_API std::string_view to_string(Mode m) noexcept;

namespace detail {
// A timeout as whole nanoseconds, rounded up; -1 when it cannot be represented.
template <class Rep, class Period>
std::int64_t timeout_ns(std::chrono::duration<Rep, Period> d) noexcept {
    using namespace std::chrono;
    const long double ns = duration<long double, std::nano>(d).count();
    // 2^63 is exact in every long double; nanoseconds::max() is just below it,
    // or rounds to it where long double is a double: "practically forever"
    // (292 years), accepted as INT64_MAX. Beyond that, too large.
    if (!(ns >= 0) || ns > 0x1p63L) return -1;  // negative, NaN, overflow
    if (ns >= 0x1p63L) return INT64_MAX;
    if constexpr (std::is_floating_point_v<Rep>)
        return std::ceil(ns) >= 0x1p63L ? INT64_MAX : std::int64_t(std::ceil(ns));
    else
        return ceil<nanoseconds>(d).count();
}
}  // namespace detail

// Threading: every call may come from any thread, also while other threads
// wait, and takes effect in those waits (rules N1-N7 of the document).
// wait() may run in any number of threads at once (rules W1-W9, "Several
// waiters"): each report goes to one waiting thread, and a fd watch
// reported to a thread is reported to no other until that thread calls
// wait() again or the watch is modified or unwatched, so that the thread
// can use the fd without a lock of its own. The span returned by wait()
// stays valid until the same thread's next wait() on this object.
class IOWAIT_API IOWait {
public:
    // The best backend of this platform, or the one named by the environment
    // variable IOWAIT_BACKEND (e.g. IOWAIT_BACKEND=poll). Throws usage_error
    // (unknown_backend) for a name that is not available, system_error if the
    // kernel refuses the backend's objects (EMFILE, ENOMEM).
    IOWait();
    // A named backend; usage_error(backend_unavailable) if it is not built in
    // or the kernel refuses it.
    explicit IOWait(Backend backend);
    ~IOWait();
    IOWait(IOWait&&) noexcept;
    IOWait& operator=(IOWait&&) noexcept;
    IOWait(const IOWait&) = delete;
    IOWait& operator=(const IOWait&) = delete;

    // Start watching fd; data comes back in its events. Errors: usage_error
    // (already_watched, bad_fd, bad_interest, fd_too_large, unsupported_mode),
    // system_error (EBADF for a fd that is not open; on Windows ENOTSOCK for a
    // handle that is not an open socket). On error nothing changed.
    void watch(native_handle fd, Interest interest, std::uint64_t data = 0, Mode mode = Mode::level);
    void watch(native_handle fd, Interest interest, std::uint64_t data, std::error_code& ec) noexcept;
    void watch(native_handle fd, Interest interest, std::uint64_t data, Mode mode, std::error_code& ec) noexcept;
    template <class T>
    void watch(native_handle fd, Interest interest, T* data, Mode mode = Mode::level) {
        watch(fd, interest, std::uint64_t(reinterpret_cast<std::uintptr_t>(data)), mode);
    }

    // Change the interest, user data and mode of a watched fd; re-arms a
    // oneshot watch. Errors as watch(), with not_watched in place of
    // already_watched. On error nothing changed.
    void modify(native_handle fd, Interest interest, std::uint64_t data = 0, Mode mode = Mode::level);
    void modify(native_handle fd, Interest interest, std::uint64_t data, std::error_code& ec) noexcept;
    void modify(native_handle fd, Interest interest, std::uint64_t data, Mode mode, std::error_code& ec) noexcept;
    template <class T>
    void modify(native_handle fd, Interest interest, T* data, Mode mode = Mode::level) {
        modify(fd, interest, std::uint64_t(reinterpret_cast<std::uintptr_t>(data)), mode);
    }

    // Stop watching fd; it may already be closed. usage_error(not_watched) if
    // it is not watched. Once unwatch() returns, no wait() reports the fd,
    // except one in another thread that had already collected its events
    // and was returning them (as if it had returned just before).
    void unwatch(native_handle fd);
    void unwatch(native_handle fd, std::error_code& ec) noexcept;

    // Sources beside the fds (docs/behaviour.md, "Sources"): a signal, a child
    // process, a timer. Each call returns the source's id, a handle no fd or
    // socket ever has (negative on POSIX); its events are Events with fd == id
    // and read set. modify(id, Interest::read, data, mode) and unwatch(id) act
    // on a source as on a fd. Modes: level (reported each time it fires) or
    // oneshot; edge is errc::unsupported_mode. Errors name the call and source.
    // A signal, reported when delivered: while watched, its handler is
    // iowait's (any thread may receive it; neither its default action nor an
    // earlier handler runs); unwatch() restores the earlier one. Windows:
    // SIGINT and SIGBREAK, from console control events (CTRL_C_EVENT,
    // CTRL_BREAK_EVENT); other signals errc::unsupported_source.
    native_handle watch_signal(int signo, std::uint64_t data = 0, Mode mode = Mode::level);
    native_handle watch_signal(int signo, std::uint64_t data, Mode mode, std::error_code& ec) noexcept;
    // A child process (ECHILD for any other pid), reported once when it has
    // exited (oneshot only); the caller reaps it. Windows: any process the
    // caller may open, by id (ESRCH if none); the caller's handles stay its own.
    native_handle watch_process(std::int64_t pid, std::uint64_t data = 0);
    native_handle watch_process(std::int64_t pid, std::uint64_t data, std::error_code& ec) noexcept;
    // A timer on the monotonic clock: due `first` from now, then every
    // `period` (zero: once); periods that a late wait missed are reported once.
    template <class R1, class P1, class R2 = R1, class P2 = P1>
    native_handle watch_timer(std::chrono::duration<R1, P1> first, std::chrono::duration<R2, P2> period = {},
                              std::uint64_t data = 0, Mode mode = Mode::level) {
        return watch_timer_ns(detail::timeout_ns(first), detail::timeout_ns(period), data, mode);
    }
    template <class R1, class P1, class R2, class P2>
    native_handle watch_timer(std::chrono::duration<R1, P1> first, std::chrono::duration<R2, P2> period,
                              std::uint64_t data, Mode mode, std::error_code& ec) noexcept {
        return watch_timer_ns(detail::timeout_ns(first), detail::timeout_ns(period), data, mode, ec);
    }

    // Wait until at least one watched fd is ready, notify() is called, or the
    // timeout passes (never earlier; rounded up to the kernel's resolution).
    // Returns the ready fds, empty on timeout or notify. A signal does not end
    // the wait (EINTR is retried with the remaining time). usage_error
    // (bad_timeout) for a negative, NaN or unrepresentable timeout;
    // usage_error(wait_in_progress) for a wait() from inside this thread's
    // own wait() on this object (a signal handler's), which goes on.
    // From several threads at once: see "Threading" above.
    std::span<const Event> wait();
    std::span<const Event> wait(std::error_code& ec) noexcept;
    template <class Rep, class Period>
    std::span<const Event> wait(std::chrono::duration<Rep, Period> timeout) {
        return wait_ns(detail::timeout_ns(timeout));
    }
    template <class Rep, class Period>
    std::span<const Event> wait(std::chrono::duration<Rep, Period> timeout, std::error_code& ec) noexcept {
        return wait_ns(detail::timeout_ns(timeout), ec);
    }

    // For runtimes that run signal handlers of their own (Python's PEP 475):
    // like wait(ec), but a signal that interrupts the kernel wait ends it, with
    // ec == std::errc::interrupted and no events. The caller runs its handlers
    // and calls again with the time that is left.
    std::span<const Event> wait_or_signal(std::error_code& ec) noexcept { return wait_ns(-2, true, ec); }
    template <class Rep, class Period>
    std::span<const Event> wait_or_signal(std::chrono::duration<Rep, Period> timeout, std::error_code& ec) noexcept {
        return wait_ns(detail::timeout_ns(timeout), true, ec);
    }

    // Whether the last wait() may have left ready fds out: the kernel filled
    // the whole batch it was given (epoll, kqueue, io_uring, afd; their batch
    // grows, and the kernel rotates its ready list, so nothing starves: R9).
    // A caller that wants every ready fd at once (Python's IOWait.wait())
    // asks again with a zero timeout while this is true, and only then: false
    // after a wait that saw every ready fd, and always on poll, select and
    // wsapoll. For the thread that called wait(), until its next wait().
    bool batch_full() const noexcept;

    // Wake every wait() in progress, or if none is in progress make the next
    // one return at once, with no events. Any thread; repeated calls before
    // the wake are merged into one.
    void notify();

    // The backend in use, and whether it honours a mode (level and oneshot:
    // every backend; edge: epoll, io_uring, kqueue).
    Backend backend() const noexcept { return backend_; }
    bool supports(Mode mode) const noexcept;

    // The backends that this build and this kernel can use, best first.
    static std::vector<Backend> available_backends();

private:
    struct impl;
    native_handle watch_timer_ns(std::int64_t first, std::int64_t period, std::uint64_t data, Mode mode);
    native_handle watch_timer_ns(std::int64_t first, std::int64_t period, std::uint64_t data, Mode mode,
                                 std::error_code& ec) noexcept;
    std::span<const Event> wait_ns(std::int64_t timeout_ns);  // -1: invalid, kept apart from "none"
    std::span<const Event> wait_ns(std::int64_t timeout_ns, std::error_code& ec) noexcept;
    // -2: no timeout; return_on_signal: EINTR ends the wait (wait_or_signal).
    std::span<const Event> wait_ns(std::int64_t timeout_ns, bool return_on_signal, std::error_code& ec) noexcept;
    std::unique_ptr<impl> impl_;
    Backend backend_;
};

}  // namespace iowait

template <>
struct std::is_error_code_enum<iowait::errc> : std::true_type {};
