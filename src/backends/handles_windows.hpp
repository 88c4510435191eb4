// Windows: the handles that are not sockets (pipes, console input, waitable
// objects), watched beside the sockets by afd and wsapoll alike. Neither
// kernel mechanism takes them (AFD and WSAPoll know sockets only), so each
// watch has a wait of its own, off the backend's kernel wait, that wakes it
// through the backend's wake function; the readiness itself is asked of the
// handle, without blocking, right before each kernel wait and when the wait
// reports it. handles_windows.cpp says how, for each kind, and what it costs.
//
// Contract with the backend (which holds the front end's lock around every
// call here, so the set needs no lock of its own; only the waits' callbacks
// run beside it, and they touch one atomic and call wake):
// - add() when the handle is not a socket (the backend asks getsockopt
//   first); EPERM (the front end's "not pollable") for a disk file or a
//   character device that is not console input, which are always ready.
// - before_wait() right before the kernel wait: true if something is ready
//   already, and then the kernel wait must not block.
// - deliver() after the wait hands over what is ready, at most `most`.
// - wake(ctx) may be called from any thread at any time between the first
//   add() and the destructor's return; it must make the wait in progress, or
//   the next one, return, and must be merged cheaply (it can come often).
#pragma once

#include <cstdint>
#include <unordered_map>

#include "backend.hpp"

namespace iowait::detail {

struct handle_watch;

class handle_set {
public:
    using wake_fn = void (*)(void* ctx) noexcept;
    handle_set(wake_fn on_wake, void* ctx) noexcept : wake_(on_wake), ctx_(ctx) {}
    ~handle_set();
    handle_set(const handle_set&) = delete;
    handle_set& operator=(const handle_set&) = delete;

    status add(native_handle h, Interest interest, Mode mode, std::uint64_t token) noexcept;
    // ENOENT for a handle this set does not watch (a socket, for the backend).
    status modify(native_handle h, Interest interest, Mode mode, std::uint64_t token) noexcept;
    status remove(native_handle h) noexcept;

    bool empty() const noexcept { return watches_.empty(); }
    bool before_wait() noexcept;
    // At most how many entries deliver() hands over: the backend's wait()
    // reads it and passes it back to deliver() as `most`, since a watch
    // added between the two must not overrun the room the front end made.
    std::size_t size() const noexcept { return watches_.size(); }
    void deliver(event_sink& sink, std::size_t most) noexcept;

    // For the waits' callbacks (handles_windows.cpp).
    void wake() const noexcept { wake_(ctx_); }

private:
    wake_fn wake_;
    void* ctx_;
    // Owned here (destroyed by remove() and the destructor, which end its wait first).
    std::unordered_map<native_handle, handle_watch*> watches_;
};

// True when the handle is a socket (getsockopt SO_TYPE answers): GetFileType
// says FILE_TYPE_PIPE for sockets and pipes alike. False for any other
// handle, closed ones included.
bool is_socket(native_handle h) noexcept;

}  // namespace iowait::detail
