// The kernel object behind notify(): a fd that a backend watches for read like
// any other, made readable by signal() from any thread.
#pragma once

#include <system_error>

#include "detail/unique_fd.hpp"

namespace iowait::detail {

class waker {
public:
    // Creates the object; ec is set (and fd() is -1) if the kernel refuses.
    explicit waker(std::error_code& ec) noexcept;
    // No object: for a backend that wakes itself (see backend::own_wake).
    waker() noexcept = default;
    int fd() const noexcept { return read_.get(); }
    void signal() noexcept;  // async-signal-safe: one write()
    void drain() noexcept;   // consume every pending signal

private:
    unique_fd read_;
    unique_fd write_;  // the other end of the pipe where there is no eventfd
};

}  // namespace iowait::detail
