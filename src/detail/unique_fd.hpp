// The one owner of a kernel fd: closes it exactly once.
#pragma once

#include <unistd.h>

#include <utility>

namespace iowait::detail {

class unique_fd {
public:
    unique_fd() noexcept = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o) reset(std::exchange(o.fd_, -1));
        return *this;
    }
    ~unique_fd() { reset(); }
    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);  // close() errors carry no information for us: the fd is gone either way
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

}  // namespace iowait::detail
