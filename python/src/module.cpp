// iowait._iowait: the C++ core as one Python class, _Poller, that carries
// both faces of the Python module (python/iowait/): the seed's IOWait
// (watch/wait with the very objects watched) and iowait.Selector
// (register/select with SelectorKeys). Everything on a wait's path is here,
// in C++, so that a wait costs one call from Python.
//
// Python rules kept here:
// - The GIL is released around the kernel wait; a signal ends the core's
//   wait (wait_or_signal), its Python handler runs, and the wait resumes with
//   the time left unless the handler raised (PEP 475). Ctrl-C is such a signal.
// - Bad input raises what the standard library raises in the same case:
//   fds are resolved by PyObject_AsFileDescriptor, as select.select() and
//   select.epoll.register() do; timeouts are checked as select.select() does.
// - The table below (fd -> watched object) is touched only with the GIL
//   held. The core's user data is a serial number, never a pointer, so an
//   event collected before another thread's unwatch() is recognised as stale
//   and dropped instead of reaching a freed object.
#include <pybind11/pybind11.h>

#include <array>
#include <iowait/iowait.hpp>
#include <string>

#include "args.hpp"
#include "convert.hpp"
#include "poller.hpp"

namespace py = pybind11;

namespace {

using namespace iowait_python;

// The poller inside a Python instance; null while __init__ has not (or
// not successfully) constructed it. Asks pybind11 without raising, since the
// garbage collector calls this.
poller* poller_of(PyObject* self) {
    auto vh = reinterpret_cast<py::detail::instance*>(self)->get_value_and_holder();
    return vh.holder_constructed() ? vh.value_ptr<poller>() : nullptr;
}

// _Poller itself, which only iowait.Selector uses: its messages say Selector.
PyTypeObject* poller_type = nullptr;

// The class a message names: the IOWait class of self, or Selector.
const char* owner_of(PyObject* self) { return Py_TYPE(self) == poller_type ? "Selector" : Py_TYPE(self)->tp_name; }

// The methods, each a vectorcall function: the parameters, parsed by
// args.hpp, then Body(poller, arguments) with null for one not given.
template <const auto& P, auto Body>
PyObject* method(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) noexcept {
    return guarded([&]() -> PyObject* {
        const auto a = parse(owner_of(self), P, args, nargs, kwnames);
        poller* p = poller_of(self);
        if (!p) raise(PyExc_ValueError, "I/O operation on uninitialized object");
        return Body(*p, a, self);
    });
}

py::handle or_none(PyObject* arg) { return arg ? arg : Py_None; }
PyObject* none() { Py_RETURN_NONE; }

constexpr parameters<3> watch_p{"watch(fileobj, read=False, write=False)", {"fileobj", "read", "write"}, 1};
constexpr parameters<3> modify_p{"modify(fileobj, read=False, write=False)", {"fileobj", "read", "write"}, 1};
constexpr parameters<1> unwatch_p{"unwatch(fileobj)", {"fileobj"}, 1};
constexpr parameters<1> wait_p{"wait(timeout=None)", {"timeout"}, 0};
constexpr parameters<0> len_p{"__len__()", {}, 0};
constexpr parameters<0> get_watched_p{"get_watched()", {}, 0};
constexpr parameters<0> clear_p{"clear()", {}, 0};
constexpr parameters<0> notify_p{"notify()", {}, 0};
constexpr parameters<0> close_p{"close()", {}, 0};
constexpr parameters<3> register_p{"_register(fd, events, key)", {"fd", "events", "key"}, 3};
constexpr parameters<3> modify_key_p{"_modify(fd, events, key)", {"fd", "events", "key"}, 3};
constexpr parameters<1> unregister_p{"_unregister(fd)", {"fd"}, 1};
constexpr parameters<1> select_p{"select(timeout=None)", {"timeout"}, 0};

template <std::size_t N>
using arguments = std::array<PyObject*, N>;

PyObject* watch_m(poller& p, const arguments<3>& a, PyObject* self) {
    p.watch(owner_of(self), a[0], or_none(a[1]), or_none(a[2]));
    return none();
}
PyObject* modify_m(poller& p, const arguments<3>& a, PyObject* self) {
    p.modify(owner_of(self), a[0], or_none(a[1]), or_none(a[2]));
    return none();
}
PyObject* unwatch_m(poller& p, const arguments<1>& a, PyObject*) {
    p.unwatch(a[0]);
    return none();
}
PyObject* wait_m(poller& p, const arguments<1>& a, PyObject*) { return p.wait(or_none(a[0])).release().ptr(); }
PyObject* len_m(poller& p, const arguments<0>&, PyObject*) { return PyLong_FromSize_t(p.size()); }
PyObject* get_watched_m(poller& p, const arguments<0>&, PyObject*) { return p.get_watched().release().ptr(); }
PyObject* clear_m(poller& p, const arguments<0>&, PyObject*) {
    p.clear();
    return none();
}
PyObject* notify_m(poller& p, const arguments<0>&, PyObject*) {
    p.notify();
    return none();
}
PyObject* close_m(poller& p, const arguments<0>&, PyObject*) {
    p.close();
    return none();
}
PyObject* register_m(poller& p, const arguments<3>& a, PyObject*) {
    p.reg(handle_of(a[0]), events_of(a[1]), py::reinterpret_borrow<py::object>(a[2]));
    return none();
}
PyObject* modify_key_m(poller& p, const arguments<3>& a, PyObject*) {
    p.mod(handle_of(a[0]), events_of(a[1]), py::reinterpret_borrow<py::object>(a[2]));
    return none();
}
PyObject* unregister_m(poller& p, const arguments<1>& a, PyObject*) {
    p.unreg(handle_of(a[0]));
    return none();
}
PyObject* select_m(poller& p, const arguments<1>& a, PyObject*) { return p.select(or_none(a[0])).release().ptr(); }

template <const auto& P, auto Body>
PyMethodDef def(const char* name, const char* doc) {
    return {name, reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&method<P, Body>)),
            METH_FASTCALL | METH_KEYWORDS, doc};
}

// Signatures as help() and inspect.signature() show them ("$self, ...\n--"):
// the defaults of read and write are False to the user (None inside only
// tells an IOEvent given alone apart).
PyMethodDef method_defs[] = {
    def<watch_p, watch_m>("watch",
                          "watch($self, /, fileobj, read=False, write=False)\n--\n\n"
                          "watch(event)\n\n"
                          "Start watching fileobj (an object with fileno(), or a file descriptor)\n"
                          "for reading, writing or both; a file already watched gets the new\n"
                          "interest and object. An IOEvent may be given instead of the three\n"
                          "arguments (with more arguments: TypeError). Neither read nor write:\n"
                          "ValueError. A file that is not open: OSError (EBADF)."),
    def<modify_p, modify_m>("modify",
                            "modify($self, /, fileobj, read=False, write=False)\n--\n\n"
                            "modify(event)\n\n"
                            "Change the interest of a watched file (not in the original module).\n"
                            "Not watched: NotWatchedError (a KeyError and a ValueError)."),
    def<unwatch_p, unwatch_m>("unwatch",
                              "unwatch($self, /, fileobj)\n--\n\n"
                              "Stop watching fileobj, a file or a Source. Not watched: NotWatchedError\n"
                              "(a KeyError and a ValueError). A socket closed while watched is unwatched\n"
                              "by passing the same object."),
    def<wait_p, wait_m>("wait",
                        "wait($self, /, timeout=None)\n--\n\n"
                        "Wait until a watched file or source is ready, and return a list of\n"
                        "IOEvent, one for each ready one, all of them. timeout: seconds (any real\n"
                        "number); None blocks, 0 polls; negative or NaN: ValueError. With nothing\n"
                        "watched (len() == 0): ValueError. notify() from another thread makes\n"
                        "every wait in progress return []. Several threads may wait at once: each\n"
                        "ready file goes to one of them, and to no other until that thread waits\n"
                        "again. A wait() from a signal handler during a wait() in the same thread\n"
                        "is RuntimeError. The GIL is released while waiting; a signal runs its\n"
                        "handler, whose exception ends the wait (PEP 475)."),
    def<get_watched_p, get_watched_m>("get_watched",
                                      "get_watched($self, /)\n--\n\n"
                                      "A list of IOEvent(fileobj, read, write), one for each watched file, in fd\n"
                                      "order, then IOEvent(source, True, False) for each watched Source (a once\n"
                                      "timer that fired and a process reported as exited included: they stay\n"
                                      "watched until unwatch())."),
    def<clear_p, clear_m>("clear", "clear($self, /)\n--\n\nUnwatch every file and source."),
    def<notify_p, notify_m>("notify",
                            "notify($self, /)\n--\n\n"
                            "Wake every wait() running in other threads: each returns [] (not in the\n"
                            "original module). With no wait running, the next one returns [] at once."),
    def<close_p, close_m>("close",
                          "close($self, /)\n--\n\n"
                          "Release the kernel's objects. Idempotent; afterwards every other\n"
                          "method raises ValueError. Waits in other threads return []."),
    def<len_p, len_m>("__len__", "__len__($self, /)\n--\n\nReturn len(self): the number of watched files and sources."),
    def<register_p, register_m>("_register", nullptr),
    def<modify_key_p, modify_key_m>("_modify", nullptr),
    def<unregister_p, unregister_m>("_unregister", nullptr),
    // Selector.select itself, on each Selector: its docstring is the one help() shows.
    def<select_p, select_m>("_select",
                            "select($self, /, timeout=None)\n--\n\n"
                            "Wait until a registered file is ready, and return [(key, events)].\n\n"
                            "timeout in seconds (any real number): None blocks, 0 or less polls. Every ready\n"
                            "file is in one call's result; the GIL is released while waiting, and a signal\n"
                            "runs its Python handler (PEP 475)."),
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

PYBIND11_MODULE(_iowait, m) {
    m.doc() = "The C++ core of iowait; use the iowait package.";
    m.attr("__version__") = IOWAIT_VERSION;
#ifdef NDEBUG
    m.attr("_debug_build") = false;
#else
    m.attr("_debug_build") = true;  // for python/bench/instructions.py, which refuses it
#endif

    m.def(
        "available_backends",
        [] {
            py::list out;
            for (iowait::Backend b : iowait::IOWait::available_backends())
                out.append(std::string(iowait::to_string(b)));
            return out;
        },
        "The kernel mechanisms usable here, best first: names for IOWAIT_BACKEND,\n"
        "Selector(backend) and the IOWait classes, e.g. ['epoll', 'io_uring', 'poll', 'select'].");
    // For the tests: the backends this build compiled in, comma-separated,
    // so that one this machine refuses is shown as skipped, not left out.
    m.attr("_compiled_backends") = IOWAIT_COMPILED_BACKENDS;
    m.def("_setup", [](py::handle event, py::handle not_watched, py::handle source) {
        if (!PyType_Check(source.ptr())) throw py::type_error("Source must be a class");
        source_type = (PyTypeObject*)source.inc_ref().ptr();
        if (!PyType_Check(event.ptr()) || !PyType_IsSubtype((PyTypeObject*)event.ptr(), &PyTuple_Type))
            throw py::type_error("IOEvent must be a tuple subclass");
        if (!PyExceptionClass_Check(not_watched.ptr())) throw py::type_error("NotWatchedError must be an exception");
        event_type = (PyTypeObject*)event.inc_ref().ptr();
        not_watched_error = not_watched.inc_ref().ptr();
    });
    // For the tests: the exception an errno becomes, through the one path
    // every kernel error of this module takes.
    m.def("_raise_os_error", [](int err, const std::string& what) { raise_os_error(err, what); });

    // pybind11's own traverse/clear (for dynamic_attr's __dict__) are
    // replaced, so these visit the __dict__ and the type as pybind11 does.
    auto gc_setup = py::custom_type_setup([](PyHeapTypeObject* heap_type) {
        PyTypeObject* type = &heap_type->ht_type;
        type->tp_flags |= Py_TPFLAGS_HAVE_GC;
        type->tp_traverse = [](PyObject* self, visitproc visit, void* arg) {
            PyObject*& dict = *_PyObject_GetDictPtr(self);
            Py_VISIT(dict);
            Py_VISIT(Py_TYPE(self));
            const poller* p = poller_of(self);
            return p ? p->traverse(visit, arg) : 0;
        };
        type->tp_clear = [](PyObject* self) {
            PyObject*& dict = *_PyObject_GetDictPtr(self);
            Py_CLEAR(dict);
            if (poller* p = poller_of(self)) p->clear_references();
            return 0;
        };
    });

    py::class_<poller> cls(m, "_Poller", py::dynamic_attr(), gc_setup);
    cls.def(py::init<py::handle>(), py::arg("backend") = py::none())
        .def_property_readonly("backend", &poller::backend,
                               "The kernel mechanism in use: 'epoll', 'io_uring', 'poll', 'select' or 'kqueue'.")
        .def_property_readonly("closed", &poller::closed, "True once close() has been called.")
        .def_property_readonly("_core_waits", &poller::core_waits)
        .def("_watch_source", &poller::watch_source);
    poller_type = reinterpret_cast<PyTypeObject*>(cls.ptr());
    for (PyMethodDef& def : method_defs) {
        if (!def.ml_name) break;
        py::object descr = py::reinterpret_steal<py::object>(PyDescr_NewMethod(poller_type, &def));
        if (!descr) throw py::error_already_set();
        cls.attr(def.ml_name) = descr;
    }
}
