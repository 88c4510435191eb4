// Windows' share of sources.hpp, apart so that the POSIX code stays as it is.
// A process is any process the caller may open, not only a child: Windows
// has no parent-child bond to check, and nothing to reap. Its id cannot name
// another process while a handle to it is open (Windows reuses an id only
// once every handle is closed): the caller who holds the handle from
// CreateProcess may watch the id even after the exit, as a POSIX parent may
// watch its zombie.
#include "detail/process_wait.hpp"
#include "sources.hpp"

namespace iowait::detail {

status sources::watch_process_windows(std::int64_t pid, std::uint64_t data, native_handle& id) noexcept {
    if (auto st = use_waker()) return st;
    if (auto st = reserve_queue()) return st;
    const std::uint32_t index = take_slot();
    if (index == none) return status::from_errno(ENOMEM);
    source& s = slots_[index];
    s.what = kind::process;
    s.mode = Mode::oneshot;
    s.data = data;
    s.process = {pid, -2, nullptr};
    try {
        pids_.emplace(pid, index);
    } catch (...) {
        free_slot(index);
        return status::from_errno(ENOMEM);
    }
    // Checked at each wake until it has exited: polled_ holds every process here.
    status st = polled_add(index);
    bool exited = false;
    if (!st) st = process_wait_start(pid, wake_fd(), s.process.wait, exited);
    if (st) {
        polled_remove(index);
        pids_.erase(pid);
        free_slot(index);
        return st;
    }
    ++queueable_;
    ++live_;
    if (exited) {
        s.fired = true;
        polled_remove(index);
        queue(index);
    }
    id = id_of(index, s);
    return {};
}

}  // namespace iowait::detail
