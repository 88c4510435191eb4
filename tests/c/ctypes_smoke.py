"""An FFI user of the C API (include/iowait/iowait.h): Python's ctypes loads
the library given as argument and drives watch/wait/notify on a socket pair.

    python3 tests/c/ctypes_smoke.py path/to/libiowait.so
"""
import ctypes
import socket
import sys

IOWAIT_READ = 1
IOWAIT_LEVEL = 0
IOWAIT_E_ALREADY_WATCHED = -10001
IOWAIT_E_NOT_WATCHED = -10002


class Event(ctypes.Structure):
    # POSIX layout: iowait_fd is int.
    _fields_ = [("fd", ctypes.c_int), ("events", ctypes.c_uint32), ("data", ctypes.c_uint64)]


def load(path):
    lib = ctypes.CDLL(path)
    handle = ctypes.c_void_p
    signatures = {
        "iowait_create": (ctypes.c_int, [ctypes.POINTER(handle)]),
        "iowait_destroy": (None, [handle]),
        "iowait_watch": (ctypes.c_int, [handle, ctypes.c_int, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_int]),
        "iowait_unwatch": (ctypes.c_int, [handle, ctypes.c_int]),
        "iowait_wait": (ctypes.c_int, [handle, ctypes.POINTER(Event), ctypes.c_size_t, ctypes.c_int64]),
        "iowait_notify": (ctypes.c_int, [handle]),
        "iowait_get_backend": (ctypes.c_int, [handle]),
        "iowait_backend_name": (ctypes.c_char_p, [ctypes.c_int]),
        "iowait_strerror": (ctypes.c_char_p, [ctypes.c_int]),
        "iowait_last_error": (ctypes.c_char_p, []),
    }
    for name, (restype, argtypes) in signatures.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = restype, argtypes
    return lib


def check(cond, what):
    if not cond:
        print("ctypes FAILED:", what)
        sys.exit(1)


def main():
    lib = load(sys.argv[1])
    w = ctypes.c_void_p()
    check(lib.iowait_create(ctypes.byref(w)) == 0, "iowait_create: %s" % lib.iowait_last_error())
    a, b = socket.socketpair()
    events = (Event * 4)()
    try:
        check(lib.iowait_watch(w, a.fileno(), IOWAIT_READ, 2**64 - 2, IOWAIT_LEVEL) == 0, "watch")
        check(lib.iowait_wait(w, events, 4, 0) == 0, "wait(0) before any data is empty")
        b.send(b"this is a test")
        n = lib.iowait_wait(w, events, 4, 5 * 10**9)
        check(n == 1, "one event, got %d" % n)
        e = events[0]
        check((e.fd, e.events, e.data) == (a.fileno(), IOWAIT_READ, 2**64 - 2), "event %r" % ((e.fd, e.events, e.data),))
        check(a.recv(64) == b"this is a test", "recv")

        rc = lib.iowait_watch(w, a.fileno(), IOWAIT_READ, 0, IOWAIT_LEVEL)
        check(rc == IOWAIT_E_ALREADY_WATCHED, "second watch: %d" % rc)
        check(lib.iowait_strerror(rc).startswith(b"already watched"), "strerror: %r" % lib.iowait_strerror(rc))
        check(b"watch(fd=%d)" % a.fileno() in lib.iowait_last_error(), "last error: %r" % lib.iowait_last_error())

        check(lib.iowait_notify(w) == 0, "notify")
        check(lib.iowait_wait(w, events, 4, -1) == 0, "a notified wait returns no events")
        check(lib.iowait_unwatch(w, a.fileno()) == 0, "unwatch")
        check(lib.iowait_unwatch(w, a.fileno()) == IOWAIT_E_NOT_WATCHED, "unwatch twice")
        backend = lib.iowait_backend_name(lib.iowait_get_backend(w)).decode()
    finally:
        lib.iowait_destroy(w)
        a.close()
        b.close()
    print("ctypes OK on", backend)


if __name__ == "__main__":
    main()
