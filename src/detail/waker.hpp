// The kernel object behind notify(): a handle that a backend watches for read
// like any other, made readable by signal() from any thread. A backend that
// can wake its own wait (backend::wakes_itself(), AFD) needs none.
#pragma once

#include <system_error>

#include "iowait/iowait.hpp"

namespace iowait::detail {

// waker.cpp on POSIX (eventfd or a pipe), waker_windows.cpp on Windows (a
// loopback socket pair).
class waker {
public:
    // Creates the object; ec is set (and fd() is invalid) if the kernel refuses.
    explicit waker(std::error_code& ec) noexcept;
    ~waker();
    waker(const waker&) = delete;
    waker& operator=(const waker&) = delete;
    native_handle fd() const noexcept { return read_; }
    void signal() noexcept;  // POSIX: async-signal-safe, one write()
    void drain() noexcept;   // consume every pending signal

private:
    native_handle read_ = native_handle(-1);
    native_handle write_ = native_handle(-1);  // the other end, where one object is not enough
};

}  // namespace iowait::detail
