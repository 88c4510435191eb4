// The kernel object behind notify(): a handle that a backend watches for read
// like any other, made readable by signal() from any thread.
#pragma once

#include <system_error>
#include <utility>

#include "iowait/iowait.hpp"

namespace iowait::detail {

// waker.cpp on POSIX (eventfd or a pipe), waker_windows.cpp on Windows (a
// loopback socket pair).
class waker {
public:
    // Creates the object; ec is set (and fd() is invalid) if the kernel refuses.
    explicit waker(std::error_code& ec) noexcept;
    // No object: for a backend that wakes itself (see backend::own_wake).
    waker() noexcept = default;
    waker(waker&& o) noexcept : read_(std::exchange(o.read_, none)), write_(std::exchange(o.write_, none)) {}
    waker& operator=(waker&& o) noexcept {
        if (this != &o) {
            reset();
            read_ = std::exchange(o.read_, none);
            write_ = std::exchange(o.write_, none);
        }
        return *this;
    }
    ~waker() { reset(); }
    native_handle fd() const noexcept { return read_; }
    // Where signal() writes: the fd itself (eventfd) or the pipe's other end.
    native_handle write_fd() const noexcept { return write_ != none ? write_ : read_; }
    void signal() noexcept;  // POSIX: async-signal-safe, one write()
    void drain() noexcept;   // consume every pending signal

private:
    static constexpr native_handle none = native_handle(-1);
    void reset() noexcept;  // closes what is open
    native_handle read_ = none;
    native_handle write_ = none;  // the other end, where one object is not enough
};

}  // namespace iowait::detail
