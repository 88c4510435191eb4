// poll(2)'s revents bits as the backends' ready flags (the poll backend; io_uring
// waits on an epoll set and shares epoll's mapping, src/backends/epoll_set.hpp).
#pragma once

#include <poll.h>

#include "backend.hpp"

#ifndef POLLRDHUP
#define POLLRDHUP 0
#endif

namespace iowait::detail {

inline unsigned from_poll(unsigned rev) noexcept {
    unsigned flags = 0;
    if (rev & (POLLIN | POLLPRI)) flags |= readable;
    if (rev & POLLOUT) flags |= writable;
    if (rev & (POLLHUP | POLLRDHUP)) flags |= hangup;
    if (rev & POLLERR) flags |= error;
    if (rev & POLLNVAL) flags |= closed;
    return flags;
}

}  // namespace iowait::detail
