/// @file
/// The C++ API: one interface for waiting on I/O readiness, over the best
/// kernel mechanism of the platform, with the same behaviour on every
/// mechanism. The rules are in docs/behaviour.md; each names the test that
/// checks it. Needs C++20 in the program that includes it.
///
/// Every public declaration here carries a Doxygen comment (`///`): the test
/// docs.api_reference builds the reference (docs/Doxyfile) with warnings as
/// errors, so an undocumented name, parameter or return value fails it.
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

/// Everything of the C++ API: IOWait and the types of its calls.
namespace iowait {

/// The handle a backend waits on: a file descriptor (`int`) on POSIX; on
/// Windows (`std::uintptr_t`) a `SOCKET`, or a `HANDLE` that is no socket,
/// watched by both Windows backends with the same interest, modes and rules
/// (docs/behaviour.md, "Windows"): a pipe, either end, named or anonymous
/// (read: data or EOF; write: always, Windows tells no room in a pipe;
/// error once the other end is gone); console input (read: an input record
/// is there); an event, semaphore, process, thread or waitable timer (read:
/// signalled; each report is a successful wait, which takes an auto-reset
/// event's or a semaphore's signal; write interest is errc::bad_interest; a
/// mutex is EINVAL). A disk file is always ready, as a regular file on
/// POSIX. Unwatch a handle before closing it.
#ifdef _WIN32
using native_handle = std::uintptr_t;
#else
using native_handle = int;
#endif

/// The kernel mechanism behind an IOWait. Which ones exist on which platform,
/// and what each is for, is the table in docs/behaviour.md.
enum class Backend {
    epoll,     ///< Linux: epoll, the first choice there.
    io_uring,  ///< Linux 5.11+: an epoll set waited on through an io_uring; by name only.
    poll,      ///< POSIX: poll(), the fallback when epoll is refused.
    select,    ///< POSIX: select(), the last resort; fds below FD_SETSIZE only.
    kqueue,    ///< macOS and the BSDs (first choice there); Linux through libkqueue, by name only.
    afd,       ///< Windows: AFD poll requests through an I/O completion port; first choice.
    wsapoll    ///< Windows: WSAPoll(), the fallback.
};

/// What a watch waits for: read, write, or read | write.
enum class Interest : unsigned {
    none = 0,       ///< Nothing: refused by watch() and modify() (errc::bad_interest).
    read = 1,       ///< Readable: data, a hangup or an error is pending.
    write = 2,      ///< Writable: the send buffer has room, or an error is pending.
    read_write = 3  ///< Both, the same as `read | write`.
};
/// The union of two interests: `Interest::read | Interest::write`.
/// @param a, b the interests to combine.
/// @return the interest with the bits of both.
constexpr Interest operator|(Interest a, Interest b) noexcept { return Interest(unsigned(a) | unsigned(b)); }
/// The intersection of two interests.
/// @param a, b the interests to intersect.
/// @return the interest with the bits they share.
constexpr Interest operator&(Interest a, Interest b) noexcept { return Interest(unsigned(a) & unsigned(b)); }
/// Whether an interest includes another.
/// @param set the interest to look in.
/// @param bit the interest to look for.
/// @return true if `set` has any bit of `bit`.
constexpr bool has(Interest set, Interest bit) noexcept { return (set & bit) != Interest::none; }

/// When a watch reports (rules M1-M4 of docs/behaviour.md).
enum class Mode {
    level,    ///< On every wait while the fd is ready: the default, as the seed.
    oneshot,  ///< Once, then the watch is disarmed until modify() re-arms it.
    edge      ///< When the fd becomes ready again (new data, new room); only where supports() says so.
};

/// One ready file, as IOWait::wait() reports it: at most one Event per fd per
/// wait. A source (IOWait::watch_signal(), IOWait::watch_process(),
/// IOWait::watch_timer()) that fired is an Event too, with fd == its id,
/// `read` set and the other flags clear.
struct Event {
    /// The fd (or socket, or source id) given to IOWait::watch().
    native_handle fd;
    /// Readable; set only if the watch asked for Interest::read.
    bool read;
    /// Writable; set only if the watch asked for Interest::write.
    bool write;
    /// The peer will send no more. Such a fd is readable (reading returns
    /// EOF at once), but writable only when there is room or when the
    /// connection is gone both ways (then writing fails at once).
    bool hangup;
    /// An error is pending: the fd is reported readable and writable for its
    /// interests, since the next call returns the error at once.
    bool error;
    /// The user data given to IOWait::watch() or IOWait::modify().
    std::uint64_t data;

    /// The user data as the pointer given to the pointer overload of
    /// IOWait::watch() or IOWait::modify().
    /// @tparam T the pointee's type, as given there.
    /// @return `data` converted back to a `T*`.
    template <class T>
    T* ptr() const noexcept {
        return reinterpret_cast<T*>(std::uintptr_t(data));
    }
};

/// Misuse of the API: the codes of iowait_category(), thrown as usage_error or
/// set in a `std::error_code` (which an errc converts to).
enum class errc {
    already_watched = 1,  ///< watch() of a fd that is watched.
    not_watched,          ///< modify() or unwatch() of a fd that is not.
    bad_fd,               ///< A negative fd (INVALID_SOCKET on Windows).
    bad_interest,         ///< Interest::none, or bits outside read | write.
    fd_too_large,         ///< Backend::select: a fd >= FD_SETSIZE.
    bad_timeout,          ///< A timeout or duration that is negative, NaN, or too large for nanoseconds.
    backend_unavailable,  ///< IOWait{Backend::x} where x is not compiled in, or the kernel refuses it.
    unknown_backend,      ///< IOWAIT_BACKEND names no backend available here.
    wait_in_progress,     ///< wait() from inside the same thread's wait() on the object (a signal handler).
    unsupported_mode,     ///< A Mode the backend cannot honour (edge on poll, select, wsapoll).
    moved_from,           ///< A call on a moved-from IOWait.
    forked,               ///< A call in a forked child on an IOWait made before fork() (rule F1).
    unsupported_source,   ///< watch_signal() or watch_process() where the platform has no such source.
};
/// The error category of errc: its name is "iowait", its messages say what
/// the misuse was.
/// @return the one instance of the category.
IOWAIT_API const std::error_category& iowait_category() noexcept;
/// Makes an errc a `std::error_code`, so that `ec == errc::not_watched` works.
/// @param e the code.
/// @return `{int(e), iowait_category()}`.
inline std::error_code make_error_code(errc e) noexcept { return {int(e), iowait_category()}; }

/// Thrown for misuse, with a code of iowait_category(); kernel refusals are
/// thrown as `std::system_error` with the errno. Both messages name the call,
/// the fd and the backend: "iowait: watch(fd=7) on epoll: already watched".
class IOWAIT_API usage_error : public std::invalid_argument {
public:
    /// @param code the errc, as a `std::error_code`.
    /// @param what the full message.
    usage_error(std::error_code code, const std::string& what) : std::invalid_argument(what), code_(code) {}
    /// @return the errc, as a `std::error_code`.
    std::error_code code() const noexcept { return code_; }
    /// @return the full message, naming the call, the fd and the backend.
    // Defined in the library, so that the class's vtable and type_info live
    // there once, not in every program that includes this header.
    const char* what() const noexcept override;

private:
    std::error_code code_;
};

/// A backend's name.
/// @param b the backend.
/// @return "epoll", "io_uring", "poll", "select", "kqueue", "afd" or "wsapoll".
IOWAIT_API std::string_view to_string(Backend b) noexcept;
/// A mode's name.
/// @param m the mode.
/// @return "level", "oneshot" or "edge".
IOWAIT_API std::string_view to_string(Mode m) noexcept;

/// @cond internal
namespace detail {
// A timeout as whole nanoseconds, rounded up; -1 when it cannot be represented.
template <class Rep, class Period>
std::int64_t timeout_ns(std::chrono::duration<Rep, Period> d) noexcept {
    using namespace std::chrono;
    using per_ns = std::ratio_divide<Period, std::nano>;
    if constexpr (std::is_integral_v<Rep> && per_ns::den == 1 && per_ns::num <= INT64_MAX) {
        // Whole nanoseconds per tick (ns, us, ms, s, ...): exact in integers,
        // and cheap (a timer per connection is made with such a duration).
        constexpr auto scale = std::int64_t(per_ns::num);
        const Rep c = d.count();
        if (c < 0) return -1;
        if (std::uintmax_t(c) > std::uintmax_t(INT64_MAX / scale)) return -1;
        return std::int64_t(c) * scale;
    }
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
/// @endcond

/// A set of watched fds (and signals, child processes, timers) and a wait for
/// the first of them to be ready, on one kernel mechanism (Backend).
///
/// Threading: every call may come from any thread, also while other threads
/// wait, and takes effect in those waits (rules N1-N7 of docs/behaviour.md).
/// wait() may run in any number of threads at once (rules L1-L9, "Several
/// waiters"): each report goes to one waiting thread, and a fd watch reported
/// to a thread is reported to no other until that thread calls wait() again
/// or the watch is modified or unwatched, so that the thread can use the fd
/// without a lock of its own. The span returned by wait() stays valid until
/// the same thread's next wait() on this object.
///
/// Errors: every call that can fail throws usage_error for misuse (an errc)
/// and `std::system_error` with the errno for the kernel's refusals; each has
/// an overload taking a `std::error_code&` that throws nothing and sets it
/// instead (cleared on success). A failed call changes nothing.
class IOWAIT_API IOWait {
public:
    /// The best backend of this platform, or the one named by the environment
    /// variable IOWAIT_BACKEND (e.g. `IOWAIT_BACKEND=poll`).
    /// @throws usage_error errc::unknown_backend for a name that is not available.
    /// @throws std::system_error if the kernel refuses the backend's objects (EMFILE, ENOMEM).
    IOWait();
    /// A named backend.
    /// @param backend the kernel mechanism to use.
    /// @throws usage_error errc::backend_unavailable if it is not built in or
    ///         the kernel refuses it (the message says why).
    /// @throws std::system_error EMFILE or ENOMEM.
    explicit IOWait(Backend backend);
    /// The best backend, as IOWait(), without throwing: on failure the object
    /// is empty and every other call fails with errc::moved_from, as on a
    /// moved-from IOWait.
    /// @param ec set to the code IOWait() would throw with, cleared on success.
    explicit IOWait(std::error_code& ec) noexcept;
    /// A named backend, as IOWait(Backend), without throwing; on failure the
    /// object is empty as above.
    /// @param backend the kernel mechanism to use.
    /// @param ec set to the code IOWait(Backend) would throw with, cleared on success.
    IOWait(Backend backend, std::error_code& ec) noexcept;
    /// Releases the kernel objects; the watched fds stay open, and a watched
    /// signal gets back its earlier handler.
    ~IOWait();
    /// Takes over another IOWait's watches and kernel objects; `other` is left
    /// moved-from (every call but destruction and assignment: errc::moved_from).
    /// @param other the IOWait to move from; no wait may be running in it.
    IOWait(IOWait&& other) noexcept;
    /// Releases this IOWait's objects, then takes over another's, as the move
    /// constructor.
    /// @param other the IOWait to move from; no wait may be running in either.
    /// @return `*this`.
    IOWait& operator=(IOWait&& other) noexcept;
    IOWait(const IOWait&) = delete;             ///< Not copyable: it owns kernel objects.
    IOWait& operator=(const IOWait&) = delete;  ///< Not copyable: it owns kernel objects.

    /// Starts watching a fd; `data` comes back in its events. On error nothing
    /// changed.
    /// @param fd an open fd (Windows: a socket or another handle).
    /// @param interest Interest::read, Interest::write or both.
    /// @param data user data, returned as Event::data.
    /// @param mode when to report; Mode::edge only where supports() says so.
    /// @throws usage_error errc::already_watched, errc::bad_fd,
    ///         errc::bad_interest, errc::fd_too_large, errc::unsupported_mode.
    /// @throws std::system_error EBADF for a fd (or handle) that is not
    ///         open, ENOMEM.
    void watch(native_handle fd, Interest interest, std::uint64_t data = 0, Mode mode = Mode::level);
    /// As watch(), in Mode::level, setting `ec` in place of throwing.
    /// @param fd an open fd (Windows: a socket or another handle).
    /// @param interest Interest::read, Interest::write or both.
    /// @param data user data, returned as Event::data.
    /// @param ec set to the error (an errc or an errno), cleared on success.
    void watch(native_handle fd, Interest interest, std::uint64_t data, std::error_code& ec) noexcept;
    /// As watch(), setting `ec` in place of throwing.
    /// @param fd an open fd (Windows: a socket or another handle).
    /// @param interest Interest::read, Interest::write or both.
    /// @param data user data, returned as Event::data.
    /// @param mode when to report.
    /// @param ec set to the error (an errc or an errno), cleared on success.
    void watch(native_handle fd, Interest interest, std::uint64_t data, Mode mode, std::error_code& ec) noexcept;
    /// As watch(), with a pointer as user data: Event::ptr<T>() gives it back.
    /// @tparam T the pointee's type.
    /// @param fd an open fd (Windows: a socket or another handle).
    /// @param interest Interest::read, Interest::write or both.
    /// @param data the pointer, stored as Event::data.
    /// @param mode when to report.
    /// @throws usage_error, std::system_error as watch().
    template <class T>
    void watch(native_handle fd, Interest interest, T* data, Mode mode = Mode::level) {
        watch(fd, interest, std::uint64_t(reinterpret_cast<std::uintptr_t>(data)), mode);
    }
    /// As watch() with a pointer as user data, in Mode::level, setting `ec` in place of throwing.
    /// @tparam T the pointee's type.
    /// @param fd an open fd (Windows: a socket or another handle).
    /// @param interest Interest::read, Interest::write or both.
    /// @param data the pointer, stored as Event::data.
    /// @param ec set to the error (an errc or an errno), cleared on success.
    template <class T>
    void watch(native_handle fd, Interest interest, T* data, std::error_code& ec) noexcept {
        watch(fd, interest, std::uint64_t(reinterpret_cast<std::uintptr_t>(data)), Mode::level, ec);
    }
    /// As watch() with a pointer as user data, setting `ec` in place of throwing.
    /// @tparam T the pointee's type.
    /// @param fd an open fd (Windows: a socket or another handle).
    /// @param interest Interest::read, Interest::write or both.
    /// @param data the pointer, stored as Event::data.
    /// @param mode when to report.
    /// @param ec set to the error (an errc or an errno), cleared on success.
    template <class T>
    void watch(native_handle fd, Interest interest, T* data, Mode mode, std::error_code& ec) noexcept {
        watch(fd, interest, std::uint64_t(reinterpret_cast<std::uintptr_t>(data)), mode, ec);
    }

    /// Changes the interest, user data and mode of a watched fd or source;
    /// re-arms a oneshot watch. On error nothing changed.
    /// @param fd a watched fd, or a source's id.
    /// @param interest Interest::read, Interest::write or both (a source: read).
    /// @param data the new user data.
    /// @param mode the new mode.
    /// @throws usage_error errc::not_watched, errc::bad_fd,
    ///         errc::bad_interest, errc::fd_too_large, errc::unsupported_mode.
    /// @throws std::system_error EBADF for a fd that was closed, ENOENT for a
    ///         number closed and reused since it was watched (rule C3).
    void modify(native_handle fd, Interest interest, std::uint64_t data = 0, Mode mode = Mode::level);
    /// As modify(), in Mode::level, setting `ec` in place of throwing.
    /// @param fd a watched fd, or a source's id.
    /// @param interest Interest::read, Interest::write or both.
    /// @param data the new user data.
    /// @param ec set to the error (an errc or an errno), cleared on success.
    void modify(native_handle fd, Interest interest, std::uint64_t data, std::error_code& ec) noexcept;
    /// As modify(), setting `ec` in place of throwing.
    /// @param fd a watched fd, or a source's id.
    /// @param interest Interest::read, Interest::write or both.
    /// @param data the new user data.
    /// @param mode the new mode.
    /// @param ec set to the error (an errc or an errno), cleared on success.
    void modify(native_handle fd, Interest interest, std::uint64_t data, Mode mode, std::error_code& ec) noexcept;
    /// As modify(), with a pointer as user data: Event::ptr<T>() gives it back.
    /// @tparam T the pointee's type.
    /// @param fd a watched fd, or a source's id.
    /// @param interest Interest::read, Interest::write or both.
    /// @param data the pointer, stored as Event::data.
    /// @param mode the new mode.
    /// @throws usage_error, std::system_error as modify().
    template <class T>
    void modify(native_handle fd, Interest interest, T* data, Mode mode = Mode::level) {
        modify(fd, interest, std::uint64_t(reinterpret_cast<std::uintptr_t>(data)), mode);
    }
    /// As modify() with a pointer as user data, in Mode::level, setting `ec` in place of throwing.
    /// @tparam T the pointee's type.
    /// @param fd a watched fd.
    /// @param interest Interest::read, Interest::write or both.
    /// @param data the pointer, stored as Event::data.
    /// @param ec set to the error (an errc or an errno), cleared on success.
    template <class T>
    void modify(native_handle fd, Interest interest, T* data, std::error_code& ec) noexcept {
        modify(fd, interest, std::uint64_t(reinterpret_cast<std::uintptr_t>(data)), Mode::level, ec);
    }
    /// As modify() with a pointer as user data, setting `ec` in place of throwing.
    /// @tparam T the pointee's type.
    /// @param fd a watched fd.
    /// @param interest Interest::read, Interest::write or both.
    /// @param data the pointer, stored as Event::data.
    /// @param mode when to report.
    /// @param ec set to the error (an errc or an errno), cleared on success.
    template <class T>
    void modify(native_handle fd, Interest interest, T* data, Mode mode, std::error_code& ec) noexcept {
        modify(fd, interest, std::uint64_t(reinterpret_cast<std::uintptr_t>(data)), mode, ec);
    }

    /// Stops watching a fd or source; the fd may already be closed. Once
    /// unwatch() returns, no wait() reports it, except one in another thread
    /// that had already collected its events and was returning them (as if it
    /// had returned just before).
    /// @param fd a watched fd, or a source's id.
    /// @throws usage_error errc::not_watched if it is not watched.
    void unwatch(native_handle fd);
    /// As unwatch(), setting `ec` in place of throwing.
    /// @param fd a watched fd, or a source's id.
    /// @param ec set to the error, cleared on success.
    void unwatch(native_handle fd, std::error_code& ec) noexcept;

    /// Watches a signal, reported when delivered (docs/behaviour.md,
    /// "Sources"). The id returned is a handle no fd or socket ever has
    /// (negative on POSIX); its events are Events with fd == id and `read`
    /// set; modify(id, Interest::read, data, mode) and unwatch(id) act on it
    /// as on a fd. While watched, the signal's handler is iowait's (any thread
    /// may receive it; neither its default action nor an earlier handler
    /// runs); unwatch() restores the earlier one. Windows: SIGINT and
    /// SIGBREAK, from console control events (CTRL_C_EVENT, CTRL_BREAK_EVENT).
    /// @param signo the signal number.
    /// @param data user data, returned as Event::data.
    /// @param mode Mode::level (reported each time it is delivered) or Mode::oneshot.
    /// @return the source's id.
    /// @throws usage_error errc::already_watched (this IOWait watches it),
    ///         errc::unsupported_mode (edge), errc::unsupported_source (a
    ///         signal the platform cannot watch).
    /// @throws std::system_error EINVAL for a number out of range, SIGKILL,
    ///         SIGSTOP and the signals of faults (SIGSEGV, SIGBUS, SIGFPE,
    ///         SIGILL, SIGTRAP).
    native_handle watch_signal(int signo, std::uint64_t data = 0, Mode mode = Mode::level);
    /// As watch_signal(), setting `ec` in place of throwing.
    /// @param signo the signal number.
    /// @param data user data, returned as Event::data.
    /// @param mode Mode::level or Mode::oneshot.
    /// @param ec set to the error, cleared on success.
    /// @return the source's id; unspecified on error.
    native_handle watch_signal(int signo, std::uint64_t data, Mode mode, std::error_code& ec) noexcept;
    /// Watches a child process, reported once when it has exited (oneshot
    /// only); the caller reaps it. Windows: any process the caller may open,
    /// by id; the caller's handles stay its own.
    /// @param pid the child's process id.
    /// @param data user data, returned as Event::data.
    /// @return the source's id (see watch_signal()).
    /// @throws usage_error errc::already_watched, errc::unsupported_source.
    /// @throws std::system_error ECHILD for a pid that is not a child of this
    ///         process or was reaped (Windows: ESRCH for no such process),
    ///         EINVAL for a pid <= 0 or beyond `int`.
    native_handle watch_process(std::int64_t pid, std::uint64_t data = 0);
    /// As watch_process(), setting `ec` in place of throwing.
    /// @param pid the child's process id.
    /// @param data user data, returned as Event::data.
    /// @param ec set to the error, cleared on success.
    /// @return the source's id; unspecified on error.
    native_handle watch_process(std::int64_t pid, std::uint64_t data, std::error_code& ec) noexcept;
    /// Watches a timer on the monotonic clock: due `first` from now, then
    /// every `period` (zero: once); periods that a late wait missed are
    /// reported once (rules T5-T9). Source ids are not fds: a source takes
    /// no fd number, and one IOWait holds a million timers (up to 4,194,303
    /// sources at once; ENOMEM beyond), each started, stopped or fired in
    /// O(log n) (rule S1). An unwatched id stays errc::not_watched until its
    /// slot has served 512 more sources. One wait reports at most 1,024
    /// sources; the next wait reports the rest without blocking.
    /// @tparam R1, P1, R2, P2 the durations' representations and periods.
    /// @param first when it is first due, from now.
    /// @param period the time between reports after the first; zero: once.
    /// @param data user data, returned as Event::data.
    /// @param mode Mode::level or Mode::oneshot.
    /// @return the source's id (see watch_signal()).
    /// @throws usage_error errc::bad_timeout for a negative, NaN or
    ///         unrepresentable duration, errc::unsupported_mode (edge).
    template <class R1, class P1, class R2 = R1, class P2 = P1>
    native_handle watch_timer(std::chrono::duration<R1, P1> first, std::chrono::duration<R2, P2> period = {},
                              std::uint64_t data = 0, Mode mode = Mode::level) {
        return watch_timer_ns(detail::timeout_ns(first), detail::timeout_ns(period), data, mode);
    }
    /// As watch_timer(), setting `ec` in place of throwing.
    /// @tparam R1, P1, R2, P2 the durations' representations and periods.
    /// @param first when it is first due, from now.
    /// @param period the time between reports after the first; zero: once.
    /// @param data user data, returned as Event::data.
    /// @param mode Mode::level or Mode::oneshot.
    /// @param ec set to the error, cleared on success.
    /// @return the source's id; unspecified on error.
    template <class R1, class P1, class R2, class P2>
    native_handle watch_timer(std::chrono::duration<R1, P1> first, std::chrono::duration<R2, P2> period,
                              std::uint64_t data, Mode mode, std::error_code& ec) noexcept {
        return watch_timer_ns(detail::timeout_ns(first), detail::timeout_ns(period), data, mode, ec);
    }

    /// Waits, with no timeout, until at least one watched fd or source is
    /// ready or notify() is called. A signal does not end the wait (EINTR is
    /// retried).
    /// From several threads at once: see "Threading" above.
    /// @return the ready fds and sources, at most one Event each; empty after
    ///         notify(). Valid until the same thread's next wait() on this object.
    /// @throws usage_error errc::wait_in_progress (a wait() from inside this
    ///         thread's own wait() on this object: a signal handler's; that
    ///         wait goes on), errc::forked, errc::moved_from.
    /// @throws std::system_error for a refusal of the kernel's wait (ENOMEM).
    std::span<const Event> wait();
    /// As wait(), setting `ec` in place of throwing.
    /// @param ec set to the error, cleared on success.
    /// @return the ready fds and sources; empty on error.
    std::span<const Event> wait(std::error_code& ec) noexcept;
    /// Waits until at least one watched fd or source is ready, notify() is
    /// called, or the timeout passes (never earlier; rounded up to the
    /// kernel's resolution; zero: do not block). A signal does not end the
    /// wait (EINTR is retried with the remaining time).
    /// @tparam Rep, Period the duration's representation and period.
    /// @param timeout the longest time to wait.
    /// @return the ready fds and sources, empty on timeout or notify(). Valid
    ///         until the same thread's next wait() on this object.
    /// @throws usage_error errc::bad_timeout for a negative, NaN or
    ///         unrepresentable timeout; the errors of wait().
    template <class Rep, class Period>
    std::span<const Event> wait(std::chrono::duration<Rep, Period> timeout) {
        return wait_ns(detail::timeout_ns(timeout));
    }
    /// As wait(timeout), setting `ec` in place of throwing.
    /// @tparam Rep, Period the duration's representation and period.
    /// @param timeout the longest time to wait.
    /// @param ec set to the error, cleared on success.
    /// @return the ready fds and sources; empty on timeout, notify() or error.
    template <class Rep, class Period>
    std::span<const Event> wait(std::chrono::duration<Rep, Period> timeout, std::error_code& ec) noexcept {
        return wait_ns(detail::timeout_ns(timeout), ec);
    }

    /// For runtimes that run signal handlers of their own (Python's PEP 475):
    /// as wait(ec), but a signal that interrupts the kernel wait ends it, with
    /// `ec == std::errc::interrupted` and no events. The caller runs its
    /// handlers and calls again.
    /// @param ec set to the error (`std::errc::interrupted` for a signal),
    ///        cleared on success.
    /// @return the ready fds and sources; empty on notify(), a signal or error.
    std::span<const Event> wait_or_signal(std::error_code& ec) noexcept { return wait_ns(-2, true, ec); }
    /// As wait(timeout, ec), but a signal ends the wait as in
    /// wait_or_signal(ec); the caller calls again with the time that is left.
    /// @tparam Rep, Period the duration's representation and period.
    /// @param timeout the longest time to wait.
    /// @param ec set to the error (`std::errc::interrupted` for a signal),
    ///        cleared on success.
    /// @return the ready fds and sources; empty on timeout, notify(), a signal
    ///         or error.
    template <class Rep, class Period>
    std::span<const Event> wait_or_signal(std::chrono::duration<Rep, Period> timeout, std::error_code& ec) noexcept {
        return wait_ns(detail::timeout_ns(timeout), true, ec);
    }

    /// Whether the calling thread's last wait() may have left ready fds out: the kernel filled
    /// the whole batch it was given (epoll, kqueue, io_uring, afd; their batch
    /// grows, and the kernel rotates its ready list, so nothing starves: R9).
    /// A caller that wants every ready fd at once (Python's IOWait.wait())
    /// asks again with a zero timeout while this is true, and only then.
    /// @return false after a wait that saw every ready fd, and always on poll,
    ///         select and wsapoll. For the thread that called wait(), until
    ///         its next wait().
    bool batch_full() const noexcept;

    /// Wakes every wait() in progress, or if none is in progress makes the
    /// next one return at once, with no events. From any thread; repeated
    /// calls before the wake are merged into one.
    /// @throws usage_error errc::moved_from, errc::forked (in a child forked
    ///         after this IOWait was made: rule F1).
    /// @throws std::system_error if the kernel refuses the wake-up.
    void notify();
    /// As notify(), setting `ec` in place of throwing.
    /// @param ec set to the error (an errc or an errno), cleared on success.
    void notify(std::error_code& ec) noexcept;

    /// @return the backend in use.
    Backend backend() const noexcept { return backend_; }
    /// Whether this IOWait's backend honours a mode.
    /// @param mode the mode to ask about.
    /// @return true for level and oneshot on every backend, and for edge on
    ///         epoll, io_uring and kqueue.
    bool supports(Mode mode) const noexcept;

    /// The backends that this build and this kernel can use, best first: each
    /// is tried by making one.
    /// @return the backends, the one IOWait() chooses first (without IOWAIT_BACKEND).
    /// @throws std::bad_alloc.
    static std::vector<Backend> available_backends();
    /// As available_backends(), without throwing.
    /// @param ec set to ENOMEM (and the list empty) if memory runs out, cleared otherwise.
    /// @return the backends, best first.
    static std::vector<Backend> available_backends(std::error_code& ec) noexcept;

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

/// @cond internal
template <>
struct std::is_error_code_enum<iowait::errc> : std::true_type {};
/// @endcond
