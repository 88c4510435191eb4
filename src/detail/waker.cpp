// Linux has eventfd: one fd, one 8-byte counter, so any number of signals
// cost one read to drain. Elsewhere a non-blocking pipe does the same job.
#include "detail/waker.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>

#include "detail/sys_error.hpp"

#ifdef __linux__
#include <sys/eventfd.h>
#endif

namespace iowait::detail {

waker::waker(std::error_code& ec) noexcept {
#ifdef __linux__
    read_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (read_ < 0) ec = last_error();
#else
    int fds[2];
    if (::pipe(fds) != 0) {
        ec = last_error();
        return;
    }
    read_ = fds[0];
    write_ = fds[1];
    for (int fd : fds) {
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
#endif
}

void waker::reset() noexcept {
    // close() errors carry no information for us: the fd is gone either way.
    if (read_ >= 0) ::close(read_);
    if (write_ >= 0) ::close(write_);
    read_ = write_ = none;
}

void waker::signal() noexcept {
    const std::uint64_t one = 1;
    const int fd = write_ >= 0 ? write_ : read_;
    // A full pipe or a saturated counter means a wake is already pending: EAGAIN is fine.
    [[maybe_unused]] auto n = ::write(fd, &one, write_ >= 0 ? 1 : sizeof one);
}

void waker::drain() noexcept {
    std::uint64_t buf[8];
    while (::read(read_, buf, sizeof buf) > 0 && write_ >= 0) {
    }
}

}  // namespace iowait::detail
