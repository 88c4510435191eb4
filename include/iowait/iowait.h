/* iowait's C API: the engine and rules of the C++ API (iowait.hpp), for C11
 * and for any language's FFI. The rules are in docs/behaviour.md; this API
 * keeps all of them. Compiles as C11 and as C++.
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
 * No C++ exception crosses this API; nothing is allocated per wait. */
#ifndef IOWAIT_IOWAIT_H
#define IOWAIT_IOWAIT_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The handle a backend waits on: a file descriptor on POSIX; on Windows a
 * SOCKET, or the HANDLE of a pipe, of console input or of a waitable object
 * (iowait::native_handle in iowait.hpp says what each reports). */
#ifdef _WIN32
typedef uintptr_t iowait_fd;
#else
typedef int iowait_fd;
#endif

/* An IOWait: the opaque handle of this API. */
typedef struct iowait_handle iowait_t;

/* Interest (watch, modify) and event bits. READ and WRITE are the interests;
 * an event sets them only for the interests asked for. HANGUP: the peer will
 * send no more; ERROR: a pending error. A fd in hangup or error is also
 * reported readable/writable for its interests (the next call will not block). */
#define IOWAIT_READ 1u
#define IOWAIT_WRITE 2u
#define IOWAIT_HANGUP 4u
#define IOWAIT_ERROR 8u

/* When a watch reports (iowait::Mode). LEVEL: on every wait while the fd is
 * ready. ONESHOT: once, then disarmed until iowait_modify() re-arms it. EDGE:
 * when the fd becomes ready again; only where iowait_supports() says so. */
typedef enum iowait_mode { IOWAIT_LEVEL = 0, IOWAIT_ONESHOT = 1, IOWAIT_EDGE = 2 } iowait_mode;

/* The kernel mechanisms (iowait::Backend, same values). Which exist where is
 * the table in docs/behaviour.md. */
typedef enum iowait_backend {
    IOWAIT_BACKEND_NONE = -1, /* no backend: iowait_get_backend(NULL) */
    IOWAIT_BACKEND_EPOLL = 0,
    IOWAIT_BACKEND_IO_URING = 1,
    IOWAIT_BACKEND_POLL = 2,
    IOWAIT_BACKEND_SELECT = 3,
    IOWAIT_BACKEND_KQUEUE = 4,
    IOWAIT_BACKEND_AFD = 5,
    IOWAIT_BACKEND_WSAPOLL = 6
} iowait_backend;

/* One ready fd, as iowait_wait() reports it: at most one per fd per wait. */
typedef struct iowait_event {
    iowait_fd fd;
    uint32_t events; /* IOWAIT_READ | IOWAIT_WRITE | IOWAIT_HANGUP | IOWAIT_ERROR */
    uint64_t data;   /* the user data given to iowait_watch()/iowait_modify() */
} iowait_event;

/* Misuse: -(10000 + iowait::errc). */
#define IOWAIT_E_ALREADY_WATCHED (-10001)     /* watch() of a watched fd */
#define IOWAIT_E_NOT_WATCHED (-10002)         /* modify()/unwatch() of a fd that is not */
#define IOWAIT_E_BAD_FD (-10003)              /* a negative fd (INVALID_SOCKET) */
#define IOWAIT_E_BAD_INTEREST (-10004)        /* 0, or bits outside READ|WRITE */
#define IOWAIT_E_FD_TOO_LARGE (-10005)        /* select: fd >= FD_SETSIZE */
#define IOWAIT_E_BAD_TIMEOUT (-10006)         /* (C++ only: the C timeout is always valid) */
#define IOWAIT_E_BACKEND_UNAVAILABLE (-10007) /* not built in, or refused by the kernel */
#define IOWAIT_E_UNKNOWN_BACKEND (-10008)     /* IOWAIT_BACKEND, or a name, names no backend */
#define IOWAIT_E_WAIT_IN_PROGRESS (-10009)    /* a second wait while one is running */
#define IOWAIT_E_UNSUPPORTED_MODE (-10010)    /* a mode this backend cannot honour, or no mode */
#define IOWAIT_E_MOVED_FROM (-10011)          /* (C++ only) */
#define IOWAIT_E_FORKED (-10012)              /* used in a child forked after it was made (rule F1) */
#define IOWAIT_E_UNSUPPORTED_SOURCE (-10013)  /* a signal or process source where the platform has none */
/* An error of no other kind (a C++ exception this API did not expect):
 * iowait_last_error() has its message. */
#define IOWAIT_E_UNKNOWN (-10999)

/* Creates an IOWait on the best backend of this platform, or the one named
 * by the environment variable IOWAIT_BACKEND (IOWAIT_E_UNKNOWN_BACKEND if it
 * is not available). On success *out is the handle; on failure NULL, with
 * IOWAIT_E_BACKEND_UNAVAILABLE, -EMFILE or -ENOMEM. */
IOWAIT_API int iowait_create(iowait_t** out);
/* The same on a named backend: IOWAIT_E_BACKEND_UNAVAILABLE if it is not
 * built in or the kernel refuses it (iowait_last_error() says why). */
IOWAIT_API int iowait_create_backend(iowait_t** out, iowait_backend backend);
/* Releases the handle and its kernel objects; the fds it watched stay open.
 * NULL is allowed. */
IOWAIT_API void iowait_destroy(iowait_t* w);

/* Starts watching fd for interest (IOWAIT_READ, IOWAIT_WRITE or both); data
 * comes back in its events. Errors: IOWAIT_E_ALREADY_WATCHED, _BAD_FD,
 * _BAD_INTEREST, _FD_TOO_LARGE, _UNSUPPORTED_MODE, -EBADF for a fd that is
 * not open. */
IOWAIT_API int iowait_watch(iowait_t* w, iowait_fd fd, uint32_t interest, uint64_t data, iowait_mode mode);
/* Changes interest, data and mode of a watched fd; re-arms a oneshot watch.
 * Errors as iowait_watch(), with IOWAIT_E_NOT_WATCHED for ALREADY_WATCHED. */
IOWAIT_API int iowait_modify(iowait_t* w, iowait_fd fd, uint32_t interest, uint64_t data, iowait_mode mode);
/* Stops watching fd (it may already be closed): IOWAIT_E_NOT_WATCHED if it is
 * not watched. Once it returns, no later iowait_wait() reports the fd. */
IOWAIT_API int iowait_unwatch(iowait_t* w, iowait_fd fd);

/* Sources beside the fds (docs/behaviour.md, "Sources"): each call stores in
 * *id a handle no fd has; its events come as any other, with fd == *id, read
 * set and the data given; iowait_modify() and iowait_unwatch() take the id.
 * A signal: reported when delivered; its default action does not run while
 * it is watched (Windows: SIGINT and SIGBREAK, from console control events;
 * other signals IOWAIT_E_UNSUPPORTED_SOURCE). */
IOWAIT_API int iowait_watch_signal(iowait_t* w, int signo, uint64_t data, iowait_mode mode, iowait_fd* id);
/* A child process: reported once when it exits; the caller reaps it
 * (Windows: any process the caller may open, by id). */
IOWAIT_API int iowait_watch_process(iowait_t* w, int64_t pid, uint64_t data, iowait_fd* id);
/* A timer: due first_ns from now, then every period_ns (0: once). */
IOWAIT_API int iowait_watch_timer(iowait_t* w, int64_t first_ns, int64_t period_ns, uint64_t data, iowait_mode mode,
                                  iowait_fd* id);

/* Waits until a watched fd is ready, iowait_notify() is called, or timeout_ns
 * nanoseconds pass (never earlier; negative: no timeout; 0: do not block).
 * Writes up to capacity events into events and returns their number, 0 on
 * timeout or notify, or a negative code. A signal does not end the wait.
 *
 * When more fds are ready than capacity, the rest of the batch stays in the
 * handle, and the next iowait_wait() hands it out first, at once, without
 * asking the kernel; an iowait_unwatch() made after this wait returned takes
 * the fd out of the rest, and an iowait_modify() updates its data and
 * interests there. (As in C++, a change made by another thread while this
 * wait was collecting may not be seen in the batch it returns, rest included.)
 * The handle keeps room for the rest as fds are watched, so no wait allocates. */
IOWAIT_API int iowait_wait(iowait_t* w, iowait_event* events, size_t capacity, int64_t timeout_ns);
/* For runtimes with signal handlers of their own (Python's PEP 475): like
 * iowait_wait(), but a signal that interrupts the kernel wait ends it with
 * -EINTR and no events; call again with the time that is left. */
IOWAIT_API int iowait_wait_or_signal(iowait_t* w, iowait_event* events, size_t capacity, int64_t timeout_ns);
/* Wakes a wait in progress, or makes the next one return at once, with no
 * events; any thread; repeated calls before the wake are merged. */
IOWAIT_API int iowait_notify(iowait_t* w);

/* The backend in use; IOWAIT_BACKEND_NONE for NULL. */
IOWAIT_API iowait_backend iowait_get_backend(const iowait_t* w);
/* Whether this handle's backend honours mode: 1 or 0 (level and oneshot:
 * every backend; edge: epoll, io_uring, kqueue). */
IOWAIT_API int iowait_supports(const iowait_t* w, iowait_mode mode);
/* The backends this build and this kernel can use, best first: writes up to
 * capacity of them and returns how many there are (may exceed capacity), or
 * a negative code. Creates and releases one handle per backend to find out. */
IOWAIT_API int iowait_available_backends(iowait_backend* out, size_t capacity);
/* A backend's name ("epoll", "io_uring", ...); "unknown" for other values. */
IOWAIT_API const char* iowait_backend_name(iowait_backend backend);
/* The backend of that name, into *out: 0, or IOWAIT_E_UNKNOWN_BACKEND for a
 * name that is none of them. (Whether this build has it: iowait_create_backend.) */
IOWAIT_API int iowait_backend_from_name(const char* name, iowait_backend* out);

/* The message for a code, as the C++ API's error_code::message(). Valid until
 * the next iowait_strerror() call in the same thread. */
IOWAIT_API const char* iowait_strerror(int code);
/* The full message of the last failed call in this thread, naming the call,
 * the fd and the backend ("" if none failed yet); successful calls leave it.
 * Valid until the next failing call in the same thread. */
IOWAIT_API const char* iowait_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
