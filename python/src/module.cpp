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

#include <cerrno>
#include <chrono>
#include <climits>
#include <iowait/iowait.hpp>
#include <optional>
#include <string>
#include <vector>

#include "convert.hpp"

namespace py = pybind11;

namespace {

using namespace iowait_python;

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
    std::uint64_t core_waits() const { return core_waits_; }

    // IOWait.watch: a watched fd gets its interest (and object) replaced.
    // A watched number whose file was closed without unwatch() and taken by
    // a new file (the core's modify says ENOENT) now watches the new file,
    // as the original's watch() did on each of its classes.
    void watch(py::handle fileobj, py::handle read, py::handle write) {
        check_open();
        const watch_args a("watch", fileobj, read, write);
        const unsigned interest = interest_of(a.read, a.write);
        const handle fd = handle_of(a.fileobj);
        auto obj = py::reinterpret_borrow<py::object>(a.fileobj);
        if (!watched(fd)) {
            add(fd, interest, std::move(obj), "watch");
        } else if (change(fd, interest, obj, "watch", /*or_enoent=*/true) == ENOENT) {
            remove(fd);
            add(fd, interest, std::move(obj), "watch");
        }
    }

    void modify(py::handle fileobj, py::handle read, py::handle write) {
        check_open();
        const watch_args a("modify", fileobj, read, write);
        const unsigned interest = interest_of(a.read, a.write);
        const handle fd = handle_of(a.fileobj);
        if (!watched(fd)) raise_not_watched(a.fileobj);
        change(fd, interest, py::reinterpret_borrow<py::object>(a.fileobj), "modify");
    }

    void unwatch(py::handle fileobj) {
        check_open();
        if (PyObject_TypeCheck(fileobj.ptr(), source_type)) return unwatch_source(fileobj);
        std::optional<handle> fd = handle_or_error(fileobj);
        if (!fd) {
            // A closed socket or file can no longer say its fd (fileno() is
            // -1 or raises ValueError), yet must be unwatchable: look for the
            // very object, as selectors does.
            if (!PyErr_ExceptionMatches(PyExc_ValueError)) throw py::error_already_set();
            py::error_already_set original;
            fd = find_object(fileobj);
            if (!fd) throw original;
        }
        if (!watched(*fd)) raise_not_watched(fileobj);
        remove(*fd);
    }

    // IOWait.wait: [IOEvent], every ready file in one call. Nothing watched
    // is a ValueError, as the original's documentation says: a loop over
    // wait() whose files are all gone would otherwise sleep for ever.
    py::list wait(py::handle timeout) {
        auto t = timeout_ns(timeout, true);
        check_open();
        if (count_ == 0 && sources_.empty()) raise(PyExc_ValueError, "iowait: wait(): no file is watched");
        return gather(t,
                      [](const watch_entry& en, unsigned flags) { return make_event(en.obj, flags & 1, flags & 2); });
    }

    // IOEvent(fileobj, read, write) for each watched file, in fd order.
    py::list get_watched() const {
        check_open();
        py::list out;
        table_.each(
            [&](handle, const watch_entry& en) { out.append(make_event(en.obj, en.interest & 1, en.interest & 2)); });
        return out;
    }

    // IOWait.watch_signal/watch_process/watch_timer (python/iowait): obj is
    // the iowait.Source the caller gets back; its events are IOEvent(obj,
    // True, False). a: the signal, the pid, or the timer's first delay in
    // seconds; b: the timer's period (0: once).
    void watch_source(const std::string& kind, py::handle a, py::handle b, py::object obj) {
        check_open();
        const std::uint64_t serial = next_serial_++;
        std::error_code ec;
        iowait::native_handle id = -1;
        std::string what;
        if (kind == "timer") {
            const auto first = timeout_ns(a, true);
            const auto period = timeout_ns(b, true);
            if (!first || !period) raise(PyExc_TypeError, "watch_timer(): first and period must be numbers");
            id = w_->watch_timer(std::chrono::nanoseconds(*first), std::chrono::nanoseconds(*period), serial,
                                 iowait::Mode::level, ec);
            what = "watch_timer";
        } else {
            py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(a.ptr()));
            if (!i) throw py::error_already_set();
            int overflow = 0;
            const long long v = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
            if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
            const long long n = overflow ? -1 : v;  // out of range: the core's EINVAL
            if (kind == "signal") {
                id = w_->watch_signal(n < INT_MIN || n > INT_MAX ? -1 : int(n), serial, iowait::Mode::level, ec);
                what = "watch_signal(signo=" + std::to_string(n) + ")";
            } else {
                id = w_->watch_process(n, serial, ec);
                what = "watch_process(pid=" + std::to_string(n) + ")";
            }
        }
        if (ec) raise_error(ec, what);
        sources_.push_back({id, {std::move(obj), serial, 1, 0}});
    }

    void clear() {
        check_open();
        while (!sources_.empty()) unwatch_source(sources_.back().entry.obj);
        std::vector<handle> fds;  // first: remove() changes the table
        table_.each([&](handle fd, const watch_entry&) { fds.push_back(fd); });
        for (handle fd : fds)
            if (watched(fd)) remove(fd);  // a watched object's __del__ may have unwatched another
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
        watch_table dropped;
        std::swap(dropped, table_);  // objects released after the state is consistent
        std::vector<source_entry> dropped_sources;
        dropped_sources.swap(sources_);
        count_ = 0;
        backend_ = w_->backend();
        if (waiting_ != 0)
            w_->notify();  // ends every wait in progress; the last one out destroys the core
        else
            w_.reset();
    }

    // Selector's side: fd already resolved by selectors' rules, key stored.
    void reg(handle fd, int events, py::object key) {
        check_open();
        check_events(events);
        if (watched(fd)) raise(PyExc_KeyError, call_name("register", fd) + ": already registered");
        add(fd, unsigned(events), std::move(key), "register");
    }

    void mod(handle fd, int events, py::object key) {
        check_open();
        check_events(events);
        if (!watched(fd)) raise(PyExc_KeyError, call_name("modify", fd) + ": not registered");
        watch_entry& en = *table_.find(fd);
        if (en.interest == unsigned(events))
            en.obj = std::move(key);  // data only: no system call
        else
            change(fd, unsigned(events), std::move(key), "modify");
    }

    void unreg(handle fd) {
        check_open();
        if (!watched(fd)) raise(PyExc_KeyError, call_name("unregister", fd) + ": not registered");
        remove(fd);
    }

    // [(key, events)], with every ready fd in one call, as selectors promise.
    py::list select(py::handle timeout) {
        auto t = timeout_ns(timeout, false);
        check_open();
        return gather(t, [](const watch_entry& en, unsigned flags) {
            py::object pair = py::reinterpret_steal<py::object>(PyTuple_New(2));
            if (!pair) throw py::error_already_set();
            PyTuple_SET_ITEM(pair.ptr(), 0, en.obj.inc_ref().ptr());
            PyTuple_SET_ITEM(pair.ptr(), 1, py::int_(flags).release().ptr());
            return pair;
        });
    }

    // For the garbage collector: the watched objects often refer back to
    // their IOWait or Selector (asyncio's keys hold the loop, which holds
    // the selector); without these, such a cycle would never be collected.
    int traverse(visitproc visit, void* arg) const {
        int result = 0;
        table_.each([&](handle, const watch_entry& en) {
            if (!result && en.obj) result = visit(en.obj.ptr(), arg);
        });
        if (result) return result;
        for (const source_entry& src : sources_) Py_VISIT(src.entry.obj.ptr());
        return 0;
    }
    void clear_references() {
        watch_table dropped;
        std::swap(dropped, table_);
        std::vector<source_entry> dropped_sources;
        dropped_sources.swap(sources_);
        count_ = 0;
        if (w_ && waiting_ == 0)
            for (const source_entry& src : dropped_sources) {
                std::error_code ignored;
                w_->unwatch(src.id, ignored);
            }
        if (w_ && waiting_ == 0)
            dropped.each([&](handle fd, const watch_entry&) {
                std::error_code ignored;  // the object is being destroyed: nothing to tell
                w_->unwatch(fd, ignored);
            });
    }

private:
    // Several threads may wait at once (the core gives each its own
    // Events, and a fd reported to one thread goes to no other until that
    // thread waits again); a close() from another thread during the waits
    // takes effect as the last of them leaves. Counted with the GIL held.
    struct wait_guard {
        poller& p;
        explicit wait_guard(poller& pl) : p(pl) { ++p.waiting_; }
        ~wait_guard() {
            if (--p.waiting_ == 0 && p.closed_)
                p.w_.reset();
            else if (p.closed_)
                p.w_->notify();  // for a thread whose wait began after close()'s notify: it ends too
        }
    };

    // One wait with every ready fd: while the core says its kernel batch came
    // back full (epoll's and kqueue's batches are bounded; the kernel moves
    // each reported fd to the tail of its ready list), ask again with
    // timeout 0; when it was not full, no second system call. A fd reported twice in one call
    // has one entry, with the readiness of both reports. make(entry, flags)
    // builds the entry (flags: 1 read, 2 write): an IOEvent, or selectors'
    // (key, events) pair.
    template <class Make>
    py::list gather(std::optional<std::int64_t> timeout, Make make) {
        wait_guard guard(*this);
        const std::uint64_t call = ++wait_calls_;
        py::list out(0);
        auto events = core_wait(timeout);
        for (;;) {
            std::size_t fresh = 0;
            for (const iowait::Event& e : events) {
                watch_entry* en = live_entry(e);
                if (!en) continue;
                const unsigned flags = (e.read ? 1u : 0u) | (e.write ? 2u : 0u);
                if (en->seen != call) {
                    en->seen = call;
                    en->reported = flags;
                    en->index = std::size_t(PyList_GET_SIZE(out.ptr()));
                    ++fresh;
                    if (PyList_Append(out.ptr(), make(*en, flags).ptr()) < 0) throw py::error_already_set();
                } else if (flags & ~en->reported) {  // asked again, and this report adds to the first
                    en->reported |= flags;
                    py::object merged = make(*en, en->reported);
                    if (PyList_SetItem(out.ptr(), Py_ssize_t(en->index), merged.release().ptr()) < 0)
                        throw py::error_already_set();
                }
            }
            // fresh == 0: the same fds again (a ready set larger than the
            // biggest batch has come round); the next call gets the rest.
            if (closed_ || fresh == 0 || !w_->batch_full()) break;
            events = core_wait(std::int64_t(0));
        }
        return out;
    }

    std::span<const iowait::Event> core_wait(std::optional<std::int64_t> timeout) {
        using clock = std::chrono::steady_clock;
        const auto deadline = clock::now() + std::chrono::nanoseconds(timeout.value_or(0));
        std::int64_t left = timeout.value_or(0);
        for (;;) {
            std::error_code ec;
            std::span<const iowait::Event> events;
            ++core_waits_;  // with the GIL, as every reader
            {
                py::gil_scoped_release nogil;
                events = timeout ? w_->wait_or_signal(std::chrono::nanoseconds(left), ec) : w_->wait_or_signal(ec);
            }
            if (ec != std::errc::interrupted) {
                if (ec) raise_error(ec, call_name("wait"));
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
    bool watched(handle fd) const { return table_.find(fd) != nullptr; }

    watch_entry* live_entry(const iowait::Event& e) {
        if (watch_entry* en = table_.find(e.fd))
            return en->serial == e.data ? en : nullptr;  // else unwatched (or rewatched) meanwhile
        return live_source(e);
    }

    // A source's event: its entry, unless unwatched (or rewatched) meanwhile.
    watch_entry* live_source(const iowait::Event& e) {
        for (source_entry& s : sources_)
            if (s.id == e.fd) return s.entry.serial == e.data ? &s.entry : nullptr;
        return nullptr;
    }

    void unwatch_source(py::handle obj) {
        for (std::size_t i = 0; i < sources_.size(); ++i) {
            if (!sources_[i].entry.obj.is(obj)) continue;
            std::error_code ec;
            w_->unwatch(sources_[i].id, ec);
            if (ec) raise_error(ec, "unwatch");
            py::object old = std::move(sources_[i].entry.obj);  // released last: its __del__ may call us
            sources_.erase(sources_.begin() + std::ptrdiff_t(i));
            return;
        }
        raise_not_watched(obj);
    }

    std::optional<handle> find_object(py::handle obj) const {
        std::optional<handle> found;
        table_.each([&](handle fd, const watch_entry& en) {
            if (!found && en.obj.is(obj)) found = fd;
        });
        return found;
    }

    // iowait.NotWatchedError: a KeyError, as selectors and the original's
    // code raise, and a ValueError, as the original's documentation says.
    [[noreturn]] static void raise_not_watched(py::handle fileobj) {
        PyErr_SetObject(not_watched_error, fileobj.ptr());
        throw py::error_already_set();
    }

    void add(handle fd, unsigned interest, py::object obj, const char* op) {
        const std::uint64_t serial = next_serial_++;
        std::error_code ec;
        w_->watch(fd, iowait::Interest(interest), serial, iowait::Mode::level, ec);
        if (ec) raise_error(ec, call_name(op, fd));
        table_.make(fd) = {std::move(obj), serial, interest, 0};
        ++count_;
    }

    // or_enoent: return ENOENT (the number's watched file is gone and a new
    // file has it) to the caller instead of raising it.
    int change(handle fd, unsigned interest, py::object obj, const char* op, bool or_enoent = false) {
        const std::uint64_t serial = next_serial_++;
        std::error_code ec;
        w_->modify(fd, iowait::Interest(interest), serial, iowait::Mode::level, ec);
        if (or_enoent && ec == std::errc::no_such_file_or_directory) return ENOENT;
        if (ec) raise_error(ec, call_name(op, fd));
        watch_entry& en = *table_.find(fd);
        py::object old = std::exchange(en.obj, std::move(obj));
        en.serial = serial;
        en.interest = interest;
        return 0;
    }

    void remove(handle fd) {
        std::error_code ec;
        w_->unwatch(fd, ec);
        if (ec) raise_error(ec, call_name("unwatch", fd));
        py::object old = std::move(table_.find(fd)->obj);  // released last: its __del__ may call us
        table_.erase(fd);
        --count_;
    }

    std::optional<iowait::IOWait> w_;
    iowait::Backend backend_{};  // kept for repr after close
    watch_table table_;
    struct source_entry {
        iowait::native_handle id;  // the core's source id (negative)
        watch_entry entry;
    };
    std::vector<source_entry> sources_;  // signals, processes, timers: few, searched in order
    std::size_t count_ = 0;
    std::uint64_t next_serial_ = 1;
    std::uint64_t wait_calls_ = 0;
    std::uint64_t core_waits_ = 0;  // for the tests: the core's waits (wait(0): one kernel wait each)
    int waiting_ = 0;               // wait() and select() calls in progress
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
    m.attr("__version__") = IOWAIT_VERSION;

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

    // Signatures written in the docstrings, as help() shows them: the
    // defaults of read and write are False to the user (None only tells an
    // IOEvent given alone apart).
    py::options options;
    options.disable_function_signatures();
    py::class_<poller>(m, "_Poller", py::dynamic_attr(), gc_setup)
        .def(py::init<const std::optional<std::string>&>(), py::arg("backend") = py::none())
        .def_property_readonly("backend", &poller::backend,
                               "The kernel mechanism in use: 'epoll', 'io_uring', 'poll', 'select' or 'kqueue'.")
        .def_property_readonly("closed", &poller::closed, "True once close() has been called.")
        .def("__len__", &poller::size, "__len__()\n\nThe number of watched files.")
        .def("watch", &poller::watch, py::arg("fileobj"), py::arg("read") = py::none(), py::arg("write") = py::none(),
             "watch(fileobj, read=False, write=False)\nwatch(event)\n\n"
             "Start watching fileobj (an object with fileno(), or a file descriptor)\n"
             "for reading, writing or both; a file already watched gets the new\n"
             "interest and object. An IOEvent may be given instead of the three\n"
             "arguments (with more arguments: TypeError). Neither read nor write:\n"
             "ValueError. A file that is not open: OSError (EBADF).")
        .def("modify", &poller::modify, py::arg("fileobj"), py::arg("read") = py::none(), py::arg("write") = py::none(),
             "modify(fileobj, read=False, write=False)\nmodify(event)\n\n"
             "Change the interest of a watched file (not in the original module).\n"
             "Not watched: NotWatchedError (a KeyError and a ValueError).")
        .def("unwatch", &poller::unwatch, py::arg("fileobj"),
             "unwatch(fileobj)\n\n"
             "Stop watching fileobj. Not watched: NotWatchedError (a KeyError and a\n"
             "ValueError). A socket closed while watched is unwatched by passing the\n"
             "same object.")
        .def("wait", &poller::wait, py::arg("timeout") = py::none(),
             "wait(timeout=None)\n\n"
             "Wait until a watched file is ready, and return a list of IOEvent, one\n"
             "for each ready file, all of them. timeout: seconds (int or float);\n"
             "None blocks, 0 polls; negative or NaN: ValueError. With no file\n"
             "watched: ValueError. notify() from another thread makes it return [].\n"
             "The GIL is released while waiting; a signal runs its handler, whose\n"
             "exception ends the wait (PEP 475).")
        .def("get_watched", &poller::get_watched,
             "get_watched()\n\nA list of IOEvent(fileobj, read, write), one for each watched file.")
        .def("clear", &poller::clear, "clear()\n\nUnwatch every file.")
        .def("notify", &poller::notify,
             "notify()\n\n"
             "Wake a wait() running in another thread: it returns [] (not in the\n"
             "original module). With no wait running, the next one returns [] at once.")
        .def("close", &poller::close,
             "close()\n\n"
             "Release the kernel's objects. Idempotent; afterwards every other\n"
             "method raises ValueError. A wait() in another thread returns [].")
        .def_property_readonly("_core_waits", &poller::core_waits)
        .def("_watch_source", &poller::watch_source)
        .def("_register", &poller::reg)
        .def("_modify", &poller::mod)
        .def("_unregister", &poller::unreg)
        // Selector.select itself, on each Selector: its docstring is the one help() shows.
        .def("_select", &poller::select, py::arg("timeout") = py::none(),
             "select(timeout=None)\n\nWait until a registered file is ready, and return [(key, events)].\n\n"
             "timeout in seconds: None blocks, 0 or less polls. Every ready file is in one call's result;\n"
             "the GIL is released while waiting, and a signal runs its Python handler (PEP 475).");
}
