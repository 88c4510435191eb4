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
#include <pybind11/stl.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <iowait/iowait.hpp>
#include <optional>
#include <string>
#include <vector>

namespace py = pybind11;

namespace {

// IOEvent, a collections.namedtuple made in Python and handed over at import.
PyTypeObject* event_type = nullptr;

// The batch size below which the epoll core has certainly reported every
// ready fd (its smallest batch, src/backends/epoll.cpp). Above it, select()
// asks again, since selectors' callers expect every ready fd in one call.
constexpr std::size_t partial_batch_hint = 64;

struct watch_entry {
    py::object obj;            // the watched object (IOWait) or its SelectorKey (Selector)
    std::uint64_t serial = 0;  // 0: not watched; otherwise the core's user data
    unsigned interest = 0;     // iowait::Interest bits, = selectors.EVENT_READ/WRITE
    std::uint64_t seen = 0;    // the select() call that last reported this fd
};

[[noreturn]] void raise(PyObject* type, const std::string& what) {
    PyErr_SetString(type, what.c_str());
    throw py::error_already_set();
}

[[noreturn]] void raise_os_error(int err, const std::string& what) {
    // OSError(errno, msg) picks the subclass (FileNotFoundError, ...) itself.
    py::object e = py::reinterpret_steal<py::object>(
        PyObject_CallFunction(PyExc_OSError, "is", err, (what + ": " + std::strerror(err)).c_str()));
    if (!e) throw py::error_already_set();
    PyErr_SetObject(PyExc_OSError, e.ptr());
    throw py::error_already_set();
}

std::string call_name(const char* op, int fd) {
    std::string s = "iowait: ";
    s += op;
    if (fd >= 0) s += "(fd=" + std::to_string(fd) + ")";
    return s;
}

// Turns the core's error into the exception the standard library raises.
[[noreturn]] void raise_error(std::error_code ec, const char* op, int fd) {
    const std::string what = call_name(op, fd);
    if (ec.category() == iowait::iowait_category()) {
        switch (iowait::errc(ec.value())) {
        case iowait::errc::already_watched:
        case iowait::errc::not_watched: raise(PyExc_KeyError, what + ": " + ec.message());
        case iowait::errc::fd_too_large:  // select.select()'s own words
            raise(PyExc_ValueError, what + ": filedescriptor out of range in select()");
        case iowait::errc::wait_in_progress: raise(PyExc_RuntimeError, what + ": " + ec.message());
        default: raise(PyExc_ValueError, what + ": " + ec.message());
        }
    }
    if (ec.category() == std::generic_category() || ec.category() == std::system_category())
        raise_os_error(ec.value(), what);
    raise(PyExc_RuntimeError, what + ": " + ec.message());
}

int fd_of(py::handle fileobj) {
    const int fd = PyObject_AsFileDescriptor(fileobj.ptr());
    if (fd < 0) throw py::error_already_set();
    return fd;
}

unsigned interest_of(py::handle read, py::handle write) {
    const int r = PyObject_IsTrue(read.ptr());
    const int w = PyObject_IsTrue(write.ptr());
    if (r < 0 || w < 0) throw py::error_already_set();
    if (!r && !w) raise(PyExc_ValueError, "either read or write must be specified");
    return (r ? 1u : 0u) | (w ? 2u : 0u);
}

// A timeout in seconds as whole nanoseconds, rounded up; nullopt blocks.
// strict (IOWait.wait): a negative value is a ValueError, as in
// select.select(); otherwise (Selector.select) it means "poll", as in
// selectors. NaN is a ValueError and a huge value an OverflowError either way.
std::optional<std::int64_t> timeout_ns(py::handle timeout, bool strict) {
    if (timeout.is_none()) return std::nullopt;
    constexpr double limit = 9.2e18;  // below INT64_MAX nanoseconds
    double ns;
    if (PyFloat_Check(timeout.ptr())) {
        const double s = PyFloat_AS_DOUBLE(timeout.ptr());
        if (std::isnan(s)) raise(PyExc_ValueError, "Invalid value NaN (not a number)");
        ns = std::ceil(s * 1e9);
    } else {
        // Anything with __index__, as the standard library accepts; a str is a TypeError.
        py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(timeout.ptr()));
        if (!i) throw py::error_already_set();
        int overflow = 0;
        const long long s = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
        if (s == -1 && PyErr_Occurred()) throw py::error_already_set();
        ns = overflow ? double(overflow) * 2 * limit : double(s) * 1e9;
    }
    if (ns < 0) {
        if (!strict) return 0;
        // select.select()'s order: out of range first, then the sign.
        if (ns < -limit) raise(PyExc_OverflowError, "timeout is too large");
        raise(PyExc_ValueError, "timeout must be non-negative");
    }
    if (ns > limit) raise(PyExc_OverflowError, "timeout is too large");
    return std::int64_t(ns);
}

std::optional<iowait::Backend> backend_named(const std::string& name) {
    using B = iowait::Backend;
    for (B b : {B::epoll, B::io_uring, B::poll, B::select, B::kqueue, B::afd, B::wsapoll})
        if (iowait::to_string(b) == name) return b;
    return std::nullopt;
}

class poller {
public:
    // backend: a name ("epoll", ...), or None for the core's choice (the best
    // here, or the environment's IOWAIT_BACKEND).
    explicit poller(const std::optional<std::string>& backend) {
        try {
            if (!backend) {
                w_.emplace();
            } else {
                auto b = backend_named(*backend);
                if (!b) raise(PyExc_ValueError, "iowait: no backend is called " + *backend);
                w_.emplace(*b);
            }
        } catch (const iowait::usage_error& e) {
            if (e.code() == iowait::errc::backend_unavailable) raise(PyExc_NotImplementedError, e.what());
            raise(PyExc_ValueError, e.what());
        } catch (const std::system_error& e) {
            raise_os_error(e.code().value(), e.what());
        }
    }

    std::string backend() const { return std::string(iowait::to_string(w_ ? w_->backend() : backend_)); }
    bool closed() const { return closed_; }
    std::size_t size() const { return count_; }

    // IOWait.watch: a watched fd gets its interest (and object) replaced.
    void watch(py::handle fileobj, py::handle read, py::handle write) {
        check_open();
        const unsigned interest = interest_of(read, write);
        const int fd = fd_of(fileobj);
        if (watched(fd))
            change(fd, interest, py::reinterpret_borrow<py::object>(fileobj), "watch");
        else
            add(fd, interest, py::reinterpret_borrow<py::object>(fileobj), "watch");
    }

    void modify(py::handle fileobj, py::handle read, py::handle write) {
        check_open();
        const unsigned interest = interest_of(read, write);
        const int fd = fd_of(fileobj);
        if (!watched(fd)) raise_not_watched(fileobj);
        change(fd, interest, py::reinterpret_borrow<py::object>(fileobj), "modify");
    }

    void unwatch(py::handle fileobj) {
        check_open();
        int fd = PyObject_AsFileDescriptor(fileobj.ptr());
        if (fd < 0) {
            // A closed socket or file can no longer say its fd (fileno() is
            // -1 or raises ValueError), yet must be unwatchable: look for the
            // very object, as selectors does.
            if (!PyErr_ExceptionMatches(PyExc_ValueError)) throw py::error_already_set();
            py::error_already_set original;
            fd = find_object(fileobj);
            if (fd < 0) throw original;
        }
        if (!watched(fd)) raise_not_watched(fileobj);
        remove(fd);
    }

    py::list wait(py::handle timeout) {
        auto t = timeout_ns(timeout, true);
        check_open();
        wait_guard guard(*this);
        auto events = core_wait(t);
        py::list out(0);
        for (const iowait::Event& e : events) {
            const watch_entry* en = live_entry(e);
            if (!en) continue;
            PyObject* ev = event_type->tp_alloc(event_type, 3);
            if (!ev) throw py::error_already_set();
            PyTuple_SET_ITEM(ev, 0, en->obj.inc_ref().ptr());
            PyTuple_SET_ITEM(ev, 1, py::bool_(e.read).release().ptr());
            PyTuple_SET_ITEM(ev, 2, py::bool_(e.write).release().ptr());
            if (PyList_Append(out.ptr(), ev) < 0) {
                Py_DECREF(ev);
                throw py::error_already_set();
            }
            Py_DECREF(ev);
        }
        return out;
    }

    // (fileobj, read, write) for each watched file, in fd order.
    py::list get_watched() const {
        check_open();
        py::list out;
        for (const watch_entry& en : table_)
            if (en.serial) out.append(py::make_tuple(en.obj, bool(en.interest & 1), bool(en.interest & 2)));
        return out;
    }

    void clear() {
        check_open();
        for (int fd = 0; fd < int(table_.size()); ++fd)
            if (table_[std::size_t(fd)].serial) remove(fd);
    }

    void notify() {
        check_open();
        w_->notify();
    }

    // Idempotent. A wait() running in another thread is woken, returns no
    // events, and destroys the core on its way out.
    void close() {
        if (closed_) return;
        closed_ = true;
        std::vector<watch_entry> dropped;
        dropped.swap(table_);  // objects released after the state is consistent
        count_ = 0;
        backend_ = w_->backend();
        if (waiting_)
            w_->notify();
        else
            w_.reset();
    }

    // Selector's side: fd already resolved by selectors' rules, key stored.
    void reg(int fd, int events, py::object key) {
        check_open();
        check_events(events);
        if (watched(fd)) raise(PyExc_KeyError, call_name("register", fd) + ": already registered");
        add(fd, unsigned(events), std::move(key), "register");
    }

    void mod(int fd, int events, py::object key) {
        check_open();
        check_events(events);
        if (!watched(fd)) raise(PyExc_KeyError, call_name("modify", fd) + ": not registered");
        if (table_[std::size_t(fd)].interest == unsigned(events))
            table_[std::size_t(fd)].obj = std::move(key);  // data only: no system call
        else
            change(fd, unsigned(events), std::move(key), "modify");
    }

    void unreg(int fd) {
        check_open();
        if (!watched(fd)) raise(PyExc_KeyError, call_name("unregister", fd) + ": not registered");
        remove(fd);
    }

    // [(key, events)], with every ready fd in one call, as selectors promise.
    py::list select(py::handle timeout) {
        auto t = timeout_ns(timeout, false);
        check_open();
        wait_guard guard(*this);
        const std::uint64_t call = ++select_calls_;
        py::list out(0);
        auto events = core_wait(t);
        for (;;) {
            std::size_t fresh = 0;
            for (const iowait::Event& e : events) {
                watch_entry* en = live_entry(e);
                if (!en || en->seen == call) continue;
                en->seen = call;
                ++fresh;
                PyObject* pair = PyTuple_New(2);
                if (!pair) throw py::error_already_set();
                PyTuple_SET_ITEM(pair, 0, en->obj.inc_ref().ptr());
                PyTuple_SET_ITEM(pair, 1, PyLong_FromLong(long((e.read ? 1 : 0) | (e.write ? 2 : 0))));
                if (!PyTuple_GET_ITEM(pair, 1) || PyList_Append(out.ptr(), pair) < 0) {
                    Py_DECREF(pair);
                    throw py::error_already_set();
                }
                Py_DECREF(pair);
            }
            // epoll reports a batch at a time and moves each reported fd to
            // the tail of its ready list: ask again until a batch brings
            // nothing new.
            if (events.size() < partial_batch_hint || fresh == 0 || closed_) break;
            events = core_wait(std::int64_t(0));
        }
        return out;
    }

    // For the garbage collector: the watched objects often refer back to
    // their IOWait or Selector (asyncio's keys hold the loop, which holds
    // the selector); without these, such a cycle would never be collected.
    int traverse(visitproc visit, void* arg) const {
        for (const watch_entry& en : table_) Py_VISIT(en.obj.ptr());
        return 0;
    }
    void clear_references() {
        std::vector<watch_entry> dropped;
        dropped.swap(table_);
        count_ = 0;
        if (w_ && !waiting_)
            for (std::size_t fd = 0; fd < dropped.size(); ++fd)
                if (dropped[fd].serial) {
                    std::error_code ignored;  // the object is being destroyed: nothing to tell
                    w_->unwatch(int(fd), ignored);
                }
    }

private:
    // One wait() per object at a time (the span the core returns is shared);
    // a close() from another thread during the wait takes effect here.
    struct wait_guard {
        poller& p;
        explicit wait_guard(poller& pl) : p(pl) {
            if (p.waiting_) raise(PyExc_RuntimeError, "iowait: wait() is already running in another thread");
            p.waiting_ = true;
        }
        ~wait_guard() {
            p.waiting_ = false;
            if (p.closed_) p.w_.reset();
        }
    };

    std::span<const iowait::Event> core_wait(std::optional<std::int64_t> timeout) {
        using clock = std::chrono::steady_clock;
        const auto deadline = clock::now() + std::chrono::nanoseconds(timeout.value_or(0));
        std::int64_t left = timeout.value_or(0);
        for (;;) {
            std::error_code ec;
            std::span<const iowait::Event> events;
            {
                py::gil_scoped_release nogil;
                events = timeout ? w_->wait_or_signal(std::chrono::nanoseconds(left), ec) : w_->wait_or_signal(ec);
            }
            if (ec != std::errc::interrupted) {
                if (ec) raise_error(ec, "wait", -1);
                return events;
            }
            // PEP 475: run the handlers; an exception ends the wait, else wait on.
            if (PyErr_CheckSignals() < 0) throw py::error_already_set();
            if (closed_) return {};
            if (timeout) {
                left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - clock::now()).count();
                if (left <= 0) left = 0;  // one last look, as the kernel would have had
            }
        }
    }

    void check_open() const {
        if (closed_) raise(PyExc_ValueError, "I/O operation on closed IOWait object");
    }
    static void check_events(int events) {
        if (events <= 0 || (events & ~3)) raise(PyExc_ValueError, "Invalid events: " + std::to_string(events));
    }
    bool watched(int fd) const { return std::size_t(fd) < table_.size() && table_[std::size_t(fd)].serial; }

    watch_entry* live_entry(const iowait::Event& e) {
        if (std::size_t(e.fd) >= table_.size()) return nullptr;
        watch_entry& en = table_[std::size_t(e.fd)];
        return en.serial == e.data ? &en : nullptr;  // else unwatched (or rewatched) meanwhile
    }

    int find_object(py::handle obj) const {
        for (std::size_t fd = 0; fd < table_.size(); ++fd)
            if (table_[fd].serial && table_[fd].obj.is(obj)) return int(fd);
        return -1;
    }

    [[noreturn]] static void raise_not_watched(py::handle fileobj) {
        PyErr_SetObject(PyExc_KeyError, fileobj.ptr());
        throw py::error_already_set();
    }

    void add(int fd, unsigned interest, py::object obj, const char* op) {
        const std::uint64_t serial = next_serial_++;
        std::error_code ec;
        w_->watch(fd, iowait::Interest(interest), serial, iowait::Mode::level, ec);
        if (ec) raise_error(ec, op, fd);
        if (std::size_t(fd) >= table_.size()) table_.resize(std::size_t(fd) + 1);
        table_[std::size_t(fd)] = {std::move(obj), serial, interest, 0};
        ++count_;
    }

    void change(int fd, unsigned interest, py::object obj, const char* op) {
        const std::uint64_t serial = next_serial_++;
        std::error_code ec;
        w_->modify(fd, iowait::Interest(interest), serial, iowait::Mode::level, ec);
        if (ec) raise_error(ec, op, fd);
        watch_entry& en = table_[std::size_t(fd)];
        py::object old = std::exchange(en.obj, std::move(obj));
        en.serial = serial;
        en.interest = interest;
    }

    void remove(int fd) {
        std::error_code ec;
        w_->unwatch(fd, ec);
        if (ec) raise_error(ec, "unwatch", fd);
        py::object old = std::move(table_[std::size_t(fd)].obj);  // released last: its __del__ may call us
        table_[std::size_t(fd)] = {};
        --count_;
    }

    std::optional<iowait::IOWait> w_;
    iowait::Backend backend_{};  // kept for repr after close
    std::vector<watch_entry> table_;
    std::size_t count_ = 0;
    std::uint64_t next_serial_ = 1;
    std::uint64_t select_calls_ = 0;
    bool waiting_ = false;
    bool closed_ = false;
};

// The poller inside a Python instance; null while __init__ has not (or
// not successfully) constructed it. Asks pybind11 without raising, since the
// garbage collector calls this.
poller* poller_of(PyObject* self) {
    auto vh = reinterpret_cast<py::detail::instance*>(self)->get_value_and_holder();
    return vh.holder_constructed() ? vh.value_ptr<poller>() : nullptr;
}

}  // namespace

PYBIND11_MODULE(_iowait, m) {
    m.doc() = "The C++ core of iowait; use the iowait package.";

    m.def("available_backends", [] {
        py::list out;
        for (iowait::Backend b : iowait::IOWait::available_backends()) out.append(std::string(iowait::to_string(b)));
        return out;
    });
    m.def("_set_event_type", [](py::handle type) {
        if (!PyType_Check(type.ptr()) || !PyType_IsSubtype((PyTypeObject*)type.ptr(), &PyTuple_Type))
            throw py::type_error("IOEvent must be a tuple subclass");
        Py_INCREF(type.ptr());
        event_type = (PyTypeObject*)type.ptr();
    });

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

    py::class_<poller>(m, "_Poller", py::dynamic_attr(), gc_setup)
        .def(py::init<const std::optional<std::string>&>(), py::arg("backend") = py::none())
        .def_property_readonly("backend", &poller::backend)
        .def_property_readonly("closed", &poller::closed)
        .def("__len__", &poller::size)
        .def("watch", &poller::watch, py::arg("fileobj"), py::arg("read") = false, py::arg("write") = false)
        .def("modify", &poller::modify, py::arg("fileobj"), py::arg("read") = false, py::arg("write") = false)
        .def("unwatch", &poller::unwatch, py::arg("fileobj"))
        .def("wait", &poller::wait, py::arg("timeout") = py::none())
        .def("get_watched", &poller::get_watched)
        .def("clear", &poller::clear)
        .def("notify", &poller::notify)
        .def("close", &poller::close)
        .def("_register", &poller::reg)
        .def("_modify", &poller::mod)
        .def("_unregister", &poller::unreg)
        .def("_select", &poller::select, py::arg("timeout") = py::none());
}
