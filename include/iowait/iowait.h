/** @file
 * The C API: the engine and rules of the C++ API (iowait.hpp), for C11 and
 * for any language's FFI. The rules are in docs/behaviour.md; this API keeps
 * all of them. Compiles as C11 and as C++.
 *
 *     iowait_t* w;
 *     if (iowait_create(&w) != 0) { puts(iowait_last_error()); ... }
 *     iowait_watch(w, fd, IOWAIT_READ, 42, IOWAIT_LEVEL);
 *     iowait_event ev[64];
 *     int n = iowait_wait(w, ev, 64, 250000000);    (250 ms; -1: no timeout)
 *     for (int i = 0; i < n; i++) ... ev[i].fd, ev[i].events & IOWAIT_READ, ev[i].data
 *     iowait_destroy(w);
 *
 * Errors. Every call that can fail returns an int: 0 (or a count) on
 * success, a negative code on failure, and then nothing changed:
 *   -errno                 the kernel refused (-EBADF: fd not open; -EMFILE,
 *                          -ENOMEM; -EINTR only from iowait_wait_or_signal).
 *                          errno values lie in 1..9999.
 *   IOWAIT_E_*             misuse: -(10000 + the C++ iowait::errc value), the
 *                          same codes as the C++ API's errc.
 *   -(100000 + code)       Windows only: a Windows error code with no errno
 *                          equivalent.
 *   -EINVAL                a NULL handle or out-pointer, or a capacity of 0.
 * iowait_strerror(code) gives the same text as the C++ API's
 * std::error_code::message(); iowait_last_error() gives the full message of
 * the last failed call in the calling thread, as the C++ exception's what():
 * "iowait: watch(fd=7) on epoll: already watched (...)".
 *
 * Threads: as in C++. iowait_wait() from one thread at a time (a second
 * concurrent one returns IOWAIT_E_WAIT_IN_PROGRESS); iowait_watch, _modify,
 * _unwatch and _notify from any thread, also while another thread waits.
 * iowait_destroy() only when no other thread uses the handle.
 *
 * No C++ exception crosses this API; nothing is allocated per wait.
 *
 * Every public declaration here carries a Doxygen comment: the test
 * docs.api_reference builds the reference (docs/Doxyfile) with warnings as
 * errors. */
#ifndef IOWAIT_IOWAIT_H
#define IOWAIT_IOWAIT_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The handle a backend waits on: a file descriptor (int) on POSIX; on
 * Windows (uintptr_t) a SOCKET, or the HANDLE of a pipe, of console input or
 * of a waitable object (iowait::native_handle in iowait.hpp says what each
 * reports). */
#ifdef _WIN32
typedef uintptr_t iowait_fd;
#else
typedef int iowait_fd;
#endif

/** An IOWait: the opaque handle of this API, made by iowait_create() and
 * released by iowait_destroy(). */
typedef struct iowait_handle iowait_t;

/** @name Interest and event bits
 * IOWAIT_READ and IOWAIT_WRITE are the interests of iowait_watch() and
 * iowait_modify(); an event sets them only for the interests asked for. A fd
 * in hangup or error is also reported readable/writable for its interests
 * (the next call will not block).
 * @{ */
#define IOWAIT_READ 1u   /**< Readable: data, a hangup or an error is pending. */
#define IOWAIT_WRITE 2u  /**< Writable: the send buffer has room, or an error is pending. */
#define IOWAIT_HANGUP 4u /**< In events only: the peer will send no more. */
#define IOWAIT_ERROR 8u  /**< In events only: an error is pending. */
/** @} */

/** When a watch reports (iowait::Mode; rules M1-M4 of docs/behaviour.md). */
typedef enum iowait_mode {
    IOWAIT_LEVEL = 0,   /**< On every wait while the fd is ready. */
    IOWAIT_ONESHOT = 1, /**< Once, then disarmed until iowait_modify() re-arms it. */
    IOWAIT_EDGE = 2     /**< When the fd becomes ready again; only where iowait_supports() says so. */
} iowait_mode;

/** The kernel mechanisms (iowait::Backend, same values). Which exist where is
 * the table in docs/behaviour.md. */
typedef enum iowait_backend {
    IOWAIT_BACKEND_NONE = -1,    /**< No backend: iowait_get_backend(NULL). */
    IOWAIT_BACKEND_EPOLL = 0,    /**< Linux: epoll, the first choice there. */
    IOWAIT_BACKEND_IO_URING = 1, /**< Linux 5.11+: an epoll set waited on through an io_uring; by name only. */
    IOWAIT_BACKEND_POLL = 2,     /**< POSIX: poll(), the fallback when epoll is refused. */
    IOWAIT_BACKEND_SELECT = 3,   /**< POSIX: select(), the last resort; fds below FD_SETSIZE only. */
    IOWAIT_BACKEND_KQUEUE = 4,   /**< macOS and the BSDs (first choice there); Linux through libkqueue. */
    IOWAIT_BACKEND_AFD = 5,      /**< Windows: AFD poll requests; first choice. */
    IOWAIT_BACKEND_WSAPOLL = 6   /**< Windows: WSAPoll(), the fallback. */
} iowait_backend;

/** One ready fd, as iowait_wait() reports it: at most one per fd per wait. */
typedef struct iowait_event {
    iowait_fd fd;    /**< The fd given to iowait_watch(), or a source's id. */
    uint32_t events; /**< IOWAIT_READ | IOWAIT_WRITE | IOWAIT_HANGUP | IOWAIT_ERROR */
    uint64_t data;   /**< The user data given to iowait_watch() or iowait_modify(). */
} iowait_event;

/** @name Error codes for misuse
 * -(10000 + the C++ iowait::errc value). The kernel's refusals are -errno.
 * @{ */
#define IOWAIT_E_ALREADY_WATCHED (-10001)     /**< watch() of a watched fd. */
#define IOWAIT_E_NOT_WATCHED (-10002)         /**< modify()/unwatch() of a fd that is not. */
#define IOWAIT_E_BAD_FD (-10003)              /**< A negative fd (INVALID_SOCKET). */
#define IOWAIT_E_BAD_INTEREST (-10004)        /**< 0, or bits outside READ|WRITE. */
#define IOWAIT_E_FD_TOO_LARGE (-10005)        /**< select: fd >= FD_SETSIZE. */
#define IOWAIT_E_BAD_TIMEOUT (-10006)         /**< A negative iowait_watch_timer() duration. */
#define IOWAIT_E_BACKEND_UNAVAILABLE (-10007) /**< Not built in, or refused by the kernel. */
#define IOWAIT_E_UNKNOWN_BACKEND (-10008)     /**< IOWAIT_BACKEND, or a name, names no backend. */
#define IOWAIT_E_WAIT_IN_PROGRESS (-10009)    /**< A second wait while one is running. */
#define IOWAIT_E_UNSUPPORTED_MODE (-10010)    /**< A mode this backend cannot honour, or no mode. */
#define IOWAIT_E_MOVED_FROM (-10011)          /**< (C++ only.) */
#define IOWAIT_E_FORKED (-10012)              /**< Used in a child forked after it was made (rule F1). */
#define IOWAIT_E_UNSUPPORTED_SOURCE (-10013)  /**< A signal or process source where the platform has none. */
/** An error of no other kind (a C++ exception this API did not expect):
 * iowait_last_error() has its message. */
#define IOWAIT_E_UNKNOWN (-10999)
/** @} */

/** Creates an IOWait on the best backend of this platform, or the one named
 * by the environment variable IOWAIT_BACKEND.
 * @param out receives the handle, or NULL on failure.
 * @return 0; IOWAIT_E_UNKNOWN_BACKEND if IOWAIT_BACKEND names no backend
 *         available here; IOWAIT_E_BACKEND_UNAVAILABLE, -EMFILE or -ENOMEM. */
IOWAIT_API int iowait_create(iowait_t** out);
/** Creates an IOWait on a named backend.
 * @param out receives the handle, or NULL on failure.
 * @param backend the kernel mechanism to use.
 * @return 0; IOWAIT_E_BACKEND_UNAVAILABLE if it is not built in or the kernel
 *         refuses it (iowait_last_error() says why); -EMFILE or -ENOMEM. */
IOWAIT_API int iowait_create_backend(iowait_t** out, iowait_backend backend);
/** Releases the handle and its kernel objects; the fds it watched stay open.
 * Only when no other thread uses the handle.
 * @param w the handle, or NULL (then nothing happens). */
IOWAIT_API void iowait_destroy(iowait_t* w);

/** Starts watching a fd; data comes back in its events. On error nothing
 * changed.
 * @param w the handle.
 * @param fd an open fd (Windows: a socket or another handle).
 * @param interest IOWAIT_READ, IOWAIT_WRITE or both.
 * @param data user data, returned in iowait_event::data.
 * @param mode when to report; IOWAIT_EDGE only where iowait_supports() says so.
 * @return 0; IOWAIT_E_ALREADY_WATCHED, IOWAIT_E_BAD_FD,
 *         IOWAIT_E_BAD_INTEREST, IOWAIT_E_FD_TOO_LARGE,
 *         IOWAIT_E_UNSUPPORTED_MODE, IOWAIT_E_FORKED; -EBADF for a fd (or
 *         handle) that is not open, -ENOMEM; -EINVAL for a NULL handle. */
IOWAIT_API int iowait_watch(iowait_t* w, iowait_fd fd, uint32_t interest, uint64_t data, iowait_mode mode);
/** Changes the interest, data and mode of a watched fd or source; re-arms a
 * oneshot watch. On error nothing changed.
 * @param w the handle.
 * @param fd a watched fd, or a source's id.
 * @param interest IOWAIT_READ, IOWAIT_WRITE or both (a source: IOWAIT_READ).
 * @param data the new user data.
 * @param mode the new mode.
 * @return 0; the errors of iowait_watch() with IOWAIT_E_NOT_WATCHED in place
 *         of IOWAIT_E_ALREADY_WATCHED; -EBADF for a fd that was closed,
 *         -ENOENT for a number closed and reused since (rule C3). */
IOWAIT_API int iowait_modify(iowait_t* w, iowait_fd fd, uint32_t interest, uint64_t data, iowait_mode mode);
/** Stops watching a fd or source (the fd may already be closed). Once it
 * returns, no later iowait_wait() reports it.
 * @param w the handle.
 * @param fd a watched fd, or a source's id.
 * @return 0; IOWAIT_E_NOT_WATCHED if it is not watched; -EINVAL for a NULL
 *         handle. */
IOWAIT_API int iowait_unwatch(iowait_t* w, iowait_fd fd);

/** Watches a signal, reported when delivered (docs/behaviour.md, "Sources").
 * A source's id is a handle no fd has; its events come as any other, with fd
 * == the id, IOWAIT_READ set and the data given; iowait_modify() and
 * iowait_unwatch() take the id. The signal's default action does not run
 * while it is watched. Windows: SIGINT and SIGBREAK, from console control
 * events.
 * @param w the handle.
 * @param signo the signal number.
 * @param data user data, returned in iowait_event::data.
 * @param mode IOWAIT_LEVEL or IOWAIT_ONESHOT.
 * @param id receives the source's id.
 * @return 0; IOWAIT_E_ALREADY_WATCHED, IOWAIT_E_UNSUPPORTED_MODE,
 *         IOWAIT_E_UNSUPPORTED_SOURCE (a signal the platform cannot watch);
 *         -EINVAL for a number out of range, SIGKILL, SIGSTOP or a signal of
 *         faults. */
IOWAIT_API int iowait_watch_signal(iowait_t* w, int signo, uint64_t data, iowait_mode mode, iowait_fd* id);
/** Watches a child process, reported once when it exits; the caller reaps
 * it. Windows: any process the caller may open, by id.
 * @param w the handle.
 * @param pid the child's process id.
 * @param data user data, returned in iowait_event::data.
 * @param id receives the source's id (see iowait_watch_signal()).
 * @return 0; IOWAIT_E_ALREADY_WATCHED; -ECHILD for a pid that is not a child
 *         of this process or was reaped (Windows: -ESRCH for no such
 *         process), -EINVAL for a pid <= 0 or beyond int. */
IOWAIT_API int iowait_watch_process(iowait_t* w, int64_t pid, uint64_t data, iowait_fd* id);
/** Watches a timer on the monotonic clock: due first_ns from now, then every
 * period_ns; periods that a late wait missed are reported once.
 * @param w the handle.
 * @param first_ns nanoseconds from now until it is first due.
 * @param period_ns nanoseconds between reports after the first; 0: once.
 * @param data user data, returned in iowait_event::data.
 * @param mode IOWAIT_LEVEL or IOWAIT_ONESHOT.
 * @param id receives the source's id (see iowait_watch_signal()).
 * @return 0; IOWAIT_E_BAD_TIMEOUT for a negative duration,
 *         IOWAIT_E_UNSUPPORTED_MODE. */
IOWAIT_API int iowait_watch_timer(iowait_t* w, int64_t first_ns, int64_t period_ns, uint64_t data, iowait_mode mode,
                                  iowait_fd* id);

/** Waits until a watched fd or source is ready, iowait_notify() is called,
 * or timeout_ns nanoseconds pass (never earlier). A signal does not end the
 * wait.
 *
 * When more fds are ready than capacity, the rest of the batch stays in the
 * handle, and the next iowait_wait() hands it out first, at once, without
 * asking the kernel; an iowait_unwatch() made after this wait returned takes
 * the fd out of the rest, and an iowait_modify() updates its data and
 * interests there; an event of the rest is handed out only while its fd still
 * names the file the kernel reported (one fstat): an fd closed meanwhile, or
 * closed and given to another file, is dropped. (As in C++, a change made by another thread while this
 * wait was collecting may not be seen in the batch it returns, rest included.)
 * The handle keeps room for the rest as fds are watched, so no wait allocates.
 * @param w the handle.
 * @param events the array the events are written into.
 * @param capacity the array's length, at least 1.
 * @param timeout_ns the longest time to wait; negative: no timeout; 0: do
 *        not block.
 * @return the number of events written, 0 on timeout or notify; or
 *         IOWAIT_E_WAIT_IN_PROGRESS (another thread waits), IOWAIT_E_FORKED,
 *         -EINVAL for a NULL handle or array or a capacity of 0. */
IOWAIT_API int iowait_wait(iowait_t* w, iowait_event* events, size_t capacity, int64_t timeout_ns);
/** For runtimes with signal handlers of their own (Python's PEP 475): as
 * iowait_wait(), but a signal that interrupts the kernel wait ends it with
 * -EINTR and no events; the caller calls again with the time that is left.
 * @param w the handle.
 * @param events the array the events are written into.
 * @param capacity the array's length, at least 1.
 * @param timeout_ns the longest time to wait; negative: no timeout; 0: do
 *        not block.
 * @return as iowait_wait(), and -EINTR for a signal. */
IOWAIT_API int iowait_wait_or_signal(iowait_t* w, iowait_event* events, size_t capacity, int64_t timeout_ns);
/** Wakes a wait in progress, or makes the next one return at once, with no
 * events; from any thread; repeated calls before the wake are merged.
 * @param w the handle.
 * @return 0; IOWAIT_E_FORKED; -EINVAL for a NULL handle. */
IOWAIT_API int iowait_notify(iowait_t* w);

/** The backend a handle uses.
 * @param w the handle.
 * @return its backend; IOWAIT_BACKEND_NONE for NULL. */
IOWAIT_API iowait_backend iowait_get_backend(const iowait_t* w);
/** Whether a handle's backend honours a mode.
 * @param w the handle.
 * @param mode the mode to ask about.
 * @return 1 or 0: level and oneshot on every backend, edge on epoll,
 *         io_uring and kqueue; 0 for NULL. */
IOWAIT_API int iowait_supports(const iowait_t* w, iowait_mode mode);
/** The backends this build and this kernel can use, best first. Creates and
 * releases one handle per backend to find out.
 * @param out the array the backends are written into.
 * @param capacity the array's length; 0 to count only (out may then be NULL).
 * @return how many there are (may exceed capacity), or a negative code. */
IOWAIT_API int iowait_available_backends(iowait_backend* out, size_t capacity);
/** A backend's name.
 * @param backend the backend.
 * @return "epoll", "io_uring", ...; "unknown" for other values. */
IOWAIT_API const char* iowait_backend_name(iowait_backend backend);
/** The backend of a name. Whether this build has it: iowait_create_backend().
 * @param name a name as iowait_backend_name() gives it.
 * @param out receives the backend.
 * @return 0; IOWAIT_E_UNKNOWN_BACKEND for a name that is none of them. */
IOWAIT_API int iowait_backend_from_name(const char* name, iowait_backend* out);

/** The message for a code, as the C++ API's error_code::message().
 * @param code a code returned by a call of this API.
 * @return the message; valid until the next iowait_strerror() call in the
 *         same thread. */
IOWAIT_API const char* iowait_strerror(int code);
/** The full message of the last failed call in this thread, naming the call,
 * the fd and the backend; successful calls leave it.
 * @return the message ("" if none failed yet); valid until the next failing
 *         call in the same thread. */
IOWAIT_API const char* iowait_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
