// The conversions of iowait._iowait (module.cpp) between Python and the
// core: arguments in (fds, interests, timeouts, an IOEvent), and out the
// exceptions the standard library would raise and IOEvents. Included by
// module.cpp only, its one translation unit.
#pragma once

#include <pybind11/pybind11.h>

#include <cmath>
#include <cstring>
#include <iowait/iowait.hpp>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "table.hpp"

namespace iowait_python {

// Made in Python and handed over at import (_setup): IOEvent, a namedtuple
// subclass, and the exception of unwatch()/modify() for a file that is not
// watched (a KeyError and a ValueError).
inline PyTypeObject* event_type = nullptr;
inline PyObject* not_watched_error = nullptr;
inline PyTypeObject* source_type = nullptr;  // iowait.Source: what unwatch() of a source gets

[[noreturn]] inline void raise(PyObject* type, const std::string& what) {
    PyErr_SetString(type, what.c_str());
    throw py::error_already_set();
}

// What PyErr_SetFromErrno raises: OSError(errno, strerror) picks the
// subclass itself (ENOENT: FileNotFoundError, EAGAIN: BlockingIOError, ...),
// and the exception is set with that subclass as its type. (Set as OSError
// with a subclass instance, pybind11 sees a type that normalisation changes,
// and turns it into a RuntimeError; test_kernel_errors.py.) The strerror text
// is prefixed with the call and fd, as every message of this module.
[[noreturn]] inline void raise_os_error_text(int err, const std::string& what);
[[noreturn]] inline void raise_os_error(int err, const std::string& what) {
    raise_os_error_text(err, what + ": " + std::strerror(err));
}

// what, a message saying which call failed and why, as strerror: a
// std::system_error's what(), which ends with the errno's text already.
[[noreturn]] inline void raise_os_error_text(int err, const std::string& what) {
    py::object e = py::reinterpret_steal<py::object>(PyObject_CallFunction(PyExc_OSError, "is", err, what.c_str()));
    if (!e) throw py::error_already_set();
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(e.ptr())), e.ptr());
    throw py::error_already_set();
}

// The name of obj's type, for "must be ..., not str".
inline std::string type_name(py::handle obj) { return Py_TYPE(obj.ptr())->tp_name; }

inline std::string call_name(const char* op) { return std::string("iowait: ") + op; }
inline std::string call_name(const char* op, handle fd) { return call_name(op) + "(fd=" + std::to_string(fd) + ")"; }

// Turns the core's error into the exception the standard library raises;
// what: call_name(...).
[[noreturn]] inline void raise_error(std::error_code ec, const std::string& what) {
    if (ec.category() == iowait::iowait_category()) {
        switch (iowait::errc(ec.value())) {
        case iowait::errc::already_watched:
        case iowait::errc::not_watched: raise(PyExc_KeyError, what + ": " + ec.message());
        case iowait::errc::fd_too_large:  // select.select()'s own words
            raise(PyExc_ValueError, what + ": filedescriptor out of range in select()");
        case iowait::errc::wait_in_progress: raise(PyExc_RuntimeError, what + ": " + ec.message());
        case iowait::errc::unsupported_source: raise(PyExc_NotImplementedError, what + ": " + ec.message());
        default: raise(PyExc_ValueError, what + ": " + ec.message());
        }
    }
    if (ec.category() == std::generic_category() || ec.category() == std::system_category())
        raise_os_error(ec.value(), what);
    raise(PyExc_RuntimeError, what + ": " + ec.message());
}

#ifdef _WIN32
// Windows: a socket's fileno() is its SOCKET, but any other object's (a
// file, a subprocess's pipe) is a C runtime fd, whose handle is
// msvcrt.get_osfhandle(fd): Python's own C runtime, whose table the fd is
// in. Takes number (fileno()'s result) and returns the handle's, or null
// with the Python error set. An int is taken as a handle as it is.
inline PyObject* windows_handle_of(py::handle fileobj, PyObject* number) noexcept {
    static PyObject* socket_type = nullptr;  // socket.socket and msvcrt.get_osfhandle, kept for the process
    static PyObject* get_osfhandle = nullptr;
    auto attribute = [](const char* module_name, const char* name) -> PyObject* {
        PyObject* module = PyImport_ImportModule(module_name);
        if (!module) return nullptr;
        PyObject* found = PyObject_GetAttrString(module, name);
        Py_DECREF(module);
        return found;
    };
    if (!socket_type && !(socket_type = attribute("socket", "socket"))) {
        Py_DECREF(number);
        return nullptr;
    }
    const int is_socket = PyObject_IsInstance(fileobj.ptr(), socket_type);
    if (is_socket < 0) {
        Py_DECREF(number);
        return nullptr;
    }
    if (is_socket) return number;
    if (!get_osfhandle && !(get_osfhandle = attribute("msvcrt", "get_osfhandle"))) {
        Py_DECREF(number);
        return nullptr;
    }
    // OSError (EBADF) for a fd that is not open.
    PyObject* h = PyObject_CallFunctionObjArgs(get_osfhandle, number, nullptr);
    Py_DECREF(number);
    return h;
}
#endif

// The handle of fileobj, by the rules of select.select() and
// PyObject_AsFileDescriptor: an int, or an object whose fileno() returns
// one; negative is a ValueError. Empty, with the Python error set, if not.
// On Windows a socket's fileno() is its SOCKET, a pointer-sized handle that
// may not fit the int PyObject_AsFileDescriptor returns (an OverflowError
// there): the same rules, with the same messages, for a handle.
inline std::optional<handle> handle_or_error(py::handle fileobj) noexcept {
#ifdef IOWAIT_PYTHON_SPARSE_HANDLES
    PyObject* number = nullptr;
    if (PyLong_Check(fileobj.ptr())) {
        number = fileobj.ptr();
        Py_INCREF(number);
    } else {
        PyObject* method = PyObject_GetAttrString(fileobj.ptr(), "fileno");
        if (!method) {
            if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
                PyErr_Clear();
                PyErr_SetString(PyExc_TypeError, "argument must be an int, or have a fileno() method.");
            }
            return std::nullopt;
        }
        number = PyObject_CallObject(method, nullptr);
        Py_DECREF(method);
        if (!number) return std::nullopt;
        if (!PyLong_Check(number)) {
            Py_DECREF(number);
            PyErr_SetString(PyExc_TypeError, "fileno() returned a non-integer");
            return std::nullopt;
        }
#ifdef _WIN32
        if (!(number = windows_handle_of(fileobj, number))) return std::nullopt;
#endif
    }
    int overflow = 0;
    const long long value = PyLong_AsLongLongAndOverflow(number, &overflow);
    Py_DECREF(number);
    if (value == -1 && PyErr_Occurred()) return std::nullopt;
    // Out of range first, then the sign, as PyObject_AsFileDescriptor.
    if (overflow || (value > 0 && std::uint64_t(value) > std::uint64_t(std::numeric_limits<handle>::max()))) {
        PyErr_SetString(PyExc_OverflowError, "file descriptor is out of range");
        return std::nullopt;
    }
    if (value < 0) {
        PyErr_Format(PyExc_ValueError, "file descriptor cannot be a negative integer (%lld)", value);
        return std::nullopt;
    }
    return handle(value);
#else
    const int fd = PyObject_AsFileDescriptor(fileobj.ptr());
    if (fd < 0) return std::nullopt;
    return fd;
#endif
}

inline handle handle_of(py::handle fileobj) {
    const std::optional<handle> fd = handle_or_error(fileobj);
    if (!fd) throw py::error_already_set();
    return *fd;
}

inline unsigned interest_of(py::handle read, py::handle write) {
    const int r = PyObject_IsTrue(read.ptr());
    const int w = PyObject_IsTrue(write.ptr());
    if (r < 0 || w < 0) throw py::error_already_set();
    if (!r && !w) raise(PyExc_ValueError, "either read or write must be specified");
    return (r ? 1u : 0u) | (w ? 2u : 0u);
}

// The arguments of watch()/modify(): (fileobj, read, write), or one IOEvent
// that carries all three. read and write default to None, which is false,
// so that an IOEvent given with either is told apart (a TypeError, as the
// original's watch(event) did).
struct watch_args {
    py::handle fileobj, read, write;
    watch_args(const char* owner, const char* op, py::handle f, py::handle r, py::handle w)
        : fileobj(f), read(r), write(w) {
        if (!PyObject_TypeCheck(f.ptr(), event_type)) return;
        if (!r.is_none() || !w.is_none())
            raise(PyExc_TypeError,
                  std::string(owner) + "." + op + "(event) takes an IOEvent alone, without read or write");
        fileobj = PyTuple_GET_ITEM(f.ptr(), 0);
        read = PyTuple_GET_ITEM(f.ptr(), 1);
        write = PyTuple_GET_ITEM(f.ptr(), 2);
    }
};

// IOEvent(obj, read, write), built without calling IOEvent.__new__: the
// values are bools already.
inline py::object make_event(const py::object& obj, bool read, bool write) {
    PyObject* ev = event_type->tp_alloc(event_type, 3);
    if (!ev) throw py::error_already_set();
    PyTuple_SET_ITEM(ev, 0, obj.inc_ref().ptr());
    PyTuple_SET_ITEM(ev, 1, py::bool_(read).release().ptr());
    PyTuple_SET_ITEM(ev, 2, py::bool_(write).release().ptr());
    return py::reinterpret_steal<py::object>(ev);
}

// What a negative duration means to timeout_ns().
enum class timeout_rule {
    strict,          // IOWait.wait(): ValueError; None blocks
    negative_polls,  // Selector.select(): 0, as in selectors; None blocks
    duration,        // watch_timer(): ValueError; None is a TypeError
};

// A duration in seconds (any real number: int, float, Fraction, Decimal, as
// selectors accept) as whole nanoseconds, rounded up; nullopt: None, which
// blocks. NaN is a ValueError, a positive value beyond about 292 years an
// OverflowError, anything else (a str, None for a timer) a TypeError. The
// messages name the call and the parameter: "iowait: wait(): timeout ...".
inline std::optional<std::int64_t> timeout_ns(py::handle value, const char* call, const char* param,
                                              timeout_rule rule) {
    const auto fail = [&](PyObject* type, const std::string& why) {
        raise(type, std::string("iowait: ") + call + ": " + param + " " + why);
    };
    if (value.is_none()) {
        if (rule != timeout_rule::duration) return std::nullopt;
        fail(PyExc_TypeError, "must be a real number of seconds, not None");
    }
    constexpr double limit = 9.2e18;  // below INT64_MAX nanoseconds
    double ns;
    if (PyFloat_Check(value.ptr()) || !PyIndex_Check(value.ptr())) {
        PyNumberMethods* num = Py_TYPE(value.ptr())->tp_as_number;
        if (!PyFloat_Check(value.ptr()) && (!num || !num->nb_float))  // float(str) would parse it: not a number
            fail(PyExc_TypeError, std::string("must be a real number of seconds") +
                                      (rule == timeout_rule::duration ? "" : " or None") + ", not " + type_name(value));
        const double s = PyFloat_Check(value.ptr()) ? PyFloat_AS_DOUBLE(value.ptr()) : [&] {
            const double d = PyFloat_AsDouble(value.ptr());
            if (d == -1.0 && PyErr_Occurred()) throw py::error_already_set();
            return d;
        }();
        if (std::isnan(s)) fail(PyExc_ValueError, "is NaN (not a number)");
        ns = std::ceil(s * 1e9);
    } else {
        py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(value.ptr()));
        if (!i) throw py::error_already_set();
        int overflow = 0;
        const long long s = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
        if (s == -1 && PyErr_Occurred()) throw py::error_already_set();
        ns = overflow ? double(overflow) * 2 * limit : double(s) * 1e9;
    }
    if (ns < 0) {  // any negative, -inf and -10**30 included
        if (rule == timeout_rule::negative_polls) return 0;
        fail(PyExc_ValueError, "must be non-negative, not " + std::string(py::repr(value)));
    }
    if (ns > limit)
        fail(PyExc_OverflowError,
             "is too large: " + std::string(py::repr(value)) + " seconds (at most 9.2e9, about 292 years)");
    return std::int64_t(ns);
}

// selectors' events (EVENT_READ | EVENT_WRITE), checked by the caller.
inline long events_of(py::handle events) {
    const long v = PyLong_AsLong(events.ptr());
    if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
    return v;
}

// The core's what() for a failed IOWait() or IOWait(Backend), "iowait:
// IOWait(Backend) (why) on select: text", as {why, text}, without the C++
// call, which means nothing in Python.
inline std::pair<std::string, std::string> creation_failure(const std::string& what) {
    const std::size_t on = what.find(" on ");
    const std::size_t colon = what.find(": ", on == std::string::npos ? 0 : on);
    if (on == std::string::npos || colon == std::string::npos) return {"", what};
    std::string why;
    const std::size_t open = what.find(" (");
    if (open != std::string::npos && open < on && what[on - 1] == ')') why = what.substr(open + 2, on - open - 3);
    return {why, what.substr(colon + 2)};
}

inline std::optional<iowait::Backend> backend_named(const std::string& name) {
    using B = iowait::Backend;
    for (B b : {B::epoll, B::io_uring, B::poll, B::select, B::kqueue, B::afd, B::wsapoll})
        if (iowait::to_string(b) == name) return b;
    return std::nullopt;
}

}  // namespace iowait_python
