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
    source s{};
    s.what = kind::process;
    s.mode = Mode::oneshot;
    s.data = data;
    s.pid = pid;
    bool exited = false;
    if (auto st = process_wait_start(pid, signals_.write_fd(), s.wait, exited)) return st;
    s.fired = exited;
    dirty_ = dirty_ || exited;
    if (auto st = insert(s)) {
        process_wait_stop(s.wait);
        return st;
    }
    id = list_.back().id;
    return {};
}

}  // namespace iowait::detail
