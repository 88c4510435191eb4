// The poller of iowait._iowait (module.cpp): the C++ core with the table
// of watched Python objects, behind both faces of the Python module (the
// seed's IOWait and iowait.Selector). The rules it keeps are written at the
// top of module.cpp. Included by module.cpp only, its one translation unit.
#pragma once

#include <pybind11/pybind11.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <iowait/iowait.hpp>
#include <optional>
#include <string>
#include <vector>

#include "convert.hpp"

namespace iowait_python {

class poller {
public:
    // backend: a name ("epoll", ...), or None for the core's choice (the best
    // here, or the environment's IOWAIT_BACKEND).
    explicit poller(py::handle backend) {
        std::optional<iowait::Backend> b;
        if (!backend.is_none()) {
            if (!PyUnicode_Check(backend.ptr()))
                raise(PyExc_TypeError, "iowait: backend must be a str or None, not " + type_name(backend));
            const std::string name = backend.cast<std::string>();
            b = backend_named(name);
            if (!b) raise(PyExc_ValueError, "iowait: no backend is called " + name);
        }
        try {
            if (b)
                w_.emplace(*b);
            else
                w_.emplace();
        } catch (const iowait::usage_error& e) {
            if (e.code() == iowait::errc::backend_unavailable) {
                // The core's text ends with the kernel's refusal, where it can say (io_uring).
                const std::string detail = creation_failure(e.what()).second;
                const std::string base = e.code().message();
                raise(PyExc_NotImplementedError,
                      "iowait: " + std::string(iowait::to_string(*b)) +
                          " is not available here: not built into this module, or refused by the kernel" +
                          (detail.size() > base.size() ? detail.substr(base.size()) : ""));
            }
            raise(PyExc_ValueError, e.what());
        } catch (const std::system_error& e) {
            const auto [why, text] = creation_failure(e.what());
            const std::string name(iowait::to_string(b ? *b : iowait::Backend::epoll));
            raise_os_error_text(e.code().value(), "iowait: cannot set up " + (b ? name : std::string("a backend")) +
                                                      (why.empty() ? "" : " (" + why + ")") + ": " + text);
        }
    }

    std::string backend() const { return std::string(iowait::to_string(w_ ? w_->backend() : backend_)); }
    bool closed() const { return closed_; }
    std::size_t size() const { return count_ + sources_.size(); }
    std::uint64_t core_waits() const { return core_waits_; }

    // IOWait.watch: a watched fd gets its interest (and object) replaced.
    // A watched number whose file was closed without unwatch() and taken by
    // a new file (the core's modify says ENOENT) now watches the new file,
    // as the original's watch() did on each of its classes.
    void watch(const char* owner, py::handle fileobj, py::handle read, py::handle write) {
        check_open();
        const watch_args a(owner, "watch", fileobj, read, write);
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

    void modify(const char* owner, py::handle fileobj, py::handle read, py::handle write) {
        check_open();
        const watch_args a(owner, "modify", fileobj, read, write);
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
            // A closed object that is not watched (unwatched before, or its
            // number watched again for another file) is not watched.
            if (!fd && PyLong_Check(fileobj.ptr())) throw original;
            if (!fd) raise_not_watched(fileobj);
        }
        if (!watched(*fd)) raise_not_watched(fileobj);
        remove(*fd);
    }

    // IOWait.wait: [IOEvent], every ready file in one call. Nothing watched
    // (what len() counts: files and sources) is a ValueError, as the
    // original's documentation says: a loop over wait() whose files are all
    // gone would otherwise sleep for ever.
    py::list wait(py::handle timeout) {
        auto t = timeout_ns(timeout, "wait()", "timeout", timeout_rule::strict);
        check_open();
        if (count_ == 0 && sources_.empty())
            raise(PyExc_ValueError, "iowait: wait(): no file is watched and no source: nothing to wait for");
        return gather("wait()", t,
                      [](const watch_entry& en, unsigned flags) { return make_event(en.obj, flags & 1, flags & 2); });
    }

    // IOEvent(fileobj, read, write) for each watched file, in fd order, then
    // IOEvent(source, True, False) for each source, in the order watched:
    // what wait() waits for, which len() counts.
    py::list get_watched() const {
        check_open();
        py::list out;
        table_.each(
            [&](handle, const watch_entry& en) { out.append(make_event(en.obj, en.interest & 1, en.interest & 2)); });
        for (const source_entry& src : sources_) out.append(make_event(src.entry.obj, true, false));
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
        long long n = 0;  // the signal or pid
        std::string what;
        if (kind == "timer") {
            const auto first = timeout_ns(a, "watch_timer()", "first", timeout_rule::duration);
            const auto period = timeout_ns(b, "watch_timer()", "period", timeout_rule::duration);
            id = w_->watch_timer(std::chrono::nanoseconds(*first), std::chrono::nanoseconds(*period), serial,
                                 iowait::Mode::level, ec);
            what = "watch_timer";
        } else {
            const char* param = kind == "signal" ? "signo" : "pid";
            if (!PyIndex_Check(a.ptr()))
                raise(PyExc_TypeError,
                      "iowait: watch_" + kind + "(): " + param + " must be an int, not " + type_name(a));
            py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(a.ptr()));
            if (!i) throw py::error_already_set();
            int overflow = 0;
            const long long v = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
            if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
            n = overflow ? -1 : v;  // out of range: the core's EINVAL
            if (kind == "signal") {
                id = w_->watch_signal(n < INT_MIN || n > INT_MAX ? -1 : int(n), serial, iowait::Mode::level, ec);
                what = "watch_signal(signo=" + std::to_string(n) + ")";
            } else {
                id = w_->watch_process(n, serial, ec);
                what = "watch_process(pid=" + std::to_string(n) + ")";
            }
        }
        if (ec == iowait::errc::already_watched) {
            // Refused, as in C++: the first Source stays the one reported
            // (a second watch replacing it would leave the first silent).
            raise(PyExc_KeyError, "iowait: " + what + ": " + (kind == "signal" ? "signal " : "process ") +
                                      std::to_string(n) +
                                      " is already watched by this object; unwatch its Source to watch it again");
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
        if (!waiters_.empty())
            w_->notify();  // ends every wait in progress; the last one out destroys the core
        else
            w_.reset();
    }

    // Selector's side: fd already resolved by selectors' rules, key stored.
    void reg(handle fd, long events, py::object key) {
        check_open();
        check_events(events);
        if (watched(fd)) raise(PyExc_KeyError, call_name("register", fd) + ": already registered");
        add(fd, unsigned(events), std::move(key), "register");
    }

    void mod(handle fd, long events, py::object key) {
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
        auto t = timeout_ns(timeout, "select()", "timeout", timeout_rule::negative_polls);
        check_open();
        return gather("select()", t, [](const watch_entry& en, unsigned flags) {
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
        if (w_ && waiters_.empty())
            for (const source_entry& src : dropped_sources) {
                std::error_code ignored;
                w_->unwatch(src.id, ignored);
            }
        if (w_ && waiters_.empty())
            dropped.each([&](handle fd, const watch_entry&) {
                std::error_code ignored;  // the object is being destroyed: nothing to tell
                w_->unwatch(fd, ignored);
            });
    }

private:
    // Several threads may wait at once (the core gives each its own
    // Events, and a file reported to one thread goes to no other until that
    // thread waits again). A second wait in the same thread is a signal
    // handler's (or a watched object's __del__'s), run while the first
    // waits: RuntimeError. A close() from another thread during the waits
    // takes effect as the last of them leaves. With the GIL held.
    struct wait_guard {
        poller& p;
        unsigned long me;
        wait_guard(poller& pl, const char* op) : p(pl), me(PyThread_get_thread_ident()) {
            if (std::find(p.waiters_.begin(), p.waiters_.end(), me) != p.waiters_.end())
                raise(PyExc_RuntimeError,
                      std::string("iowait: ") + op +
                          " called again in the thread whose wait is in progress (from a signal handler?)");
            p.waiters_.push_back(me);
        }
        ~wait_guard() {
            std::erase(p.waiters_, me);
            if (p.closed_ && p.waiters_.empty())
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
    py::list gather(const char* op, std::optional<std::int64_t> timeout, Make make) {
        wait_guard guard(*this, op);
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
    static void check_events(long events) {
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
    std::uint64_t core_waits_ = 0;        // for the tests: the core's waits (wait(0): one kernel wait each)
    std::vector<unsigned long> waiters_;  // the threads whose wait() or select() is in progress
    bool closed_ = false;
};

}  // namespace iowait_python
