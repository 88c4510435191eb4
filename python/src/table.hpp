// The table of iowait._iowait (module.cpp): each watched handle's entry.
// POSIX fds are small and dense: a vector indexed by fd, one index per
// event on the wait path. Windows SOCKETs are kernel handles (multiples of
// 4, pointer-sized, not bounded by a small number): an ordered map, so that
// iteration is in handle order there too. IOWAIT_PYTHON_SPARSE_HANDLES forces
// the map (and convert.hpp's own handle conversion) on POSIX, so that the
// Windows code paths can be built and tested on Linux (docs/python.md, "Wheels, types and other systems").
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <iowait/iowait.hpp>
#include <vector>

#if defined(_WIN32) && !defined(IOWAIT_PYTHON_SPARSE_HANDLES)
#define IOWAIT_PYTHON_SPARSE_HANDLES 1
#endif
#ifdef IOWAIT_PYTHON_SPARSE_HANDLES
#include <map>
#endif

namespace iowait_python {

namespace py = pybind11;
using handle = iowait::native_handle;

struct watch_entry {
    py::object obj;            // the watched object (IOWait) or its SelectorKey (Selector)
    std::uint64_t serial = 0;  // 0: not watched; otherwise the core's user data
    unsigned interest = 0;     // iowait::Interest bits, = selectors.EVENT_READ/WRITE
    std::uint64_t seen = 0;    // the wait()/select() call that last reported this fd,
    std::size_t index = 0;     // the place of its entry in that call's list,
    unsigned reported = 0;     // and the readiness (1 read, 2 write) the entry says
};

class watch_table {
public:
    // The entry of a watched handle, or null.
    watch_entry* find(handle fd) noexcept {
#ifdef IOWAIT_PYTHON_SPARSE_HANDLES
        auto it = entries_.find(fd);
        return it == entries_.end() ? nullptr : &it->second;
#else
        if (std::size_t(fd) >= entries_.size()) return nullptr;
        watch_entry& en = entries_[std::size_t(fd)];
        return en.serial ? &en : nullptr;
#endif
    }
    const watch_entry* find(handle fd) const noexcept { return const_cast<watch_table*>(this)->find(fd); }

    // Makes fd's entry (watched once its serial is set).
    watch_entry& make(handle fd) {
#ifdef IOWAIT_PYTHON_SPARSE_HANDLES
        return entries_[fd];
#else
        if (std::size_t(fd) >= entries_.size()) entries_.resize(std::size_t(fd) + 1);
        return entries_[std::size_t(fd)];
#endif
    }

    void erase(handle fd) noexcept {
#ifdef IOWAIT_PYTHON_SPARSE_HANDLES
        entries_.erase(fd);
#else
        entries_[std::size_t(fd)] = {};
#endif
    }

    // f(fd, entry) for each watched handle, in handle order; f must not
    // change the table (collect the handles first to change it).
    template <class F>
    void each(F f) const {
#ifdef IOWAIT_PYTHON_SPARSE_HANDLES
        for (const auto& [fd, en] : entries_) f(fd, en);
#else
        for (std::size_t fd = 0; fd < entries_.size(); ++fd)
            if (entries_[fd].serial) f(handle(fd), entries_[fd]);
#endif
    }

private:
#ifdef IOWAIT_PYTHON_SPARSE_HANDLES
    std::map<handle, watch_entry> entries_;
#else
    std::vector<watch_entry> entries_;
#endif
};

}  // namespace iowait_python
