// poll(2)'s revents bits as the backends' ready flags: one mapping for the
// backends whose kernel speaks poll's bits (poll, io_uring).
#pragma once

#include <poll.h>

#include "backend.hpp"

#ifndef POLLRDHUP
#define POLLRDHUP 0
#endif

namespace iowait::detail {

// POLLNVAL is not a flag: the backend hands such an entry to sink.closed().
inline unsigned from_poll(unsigned rev) noexcept {
    unsigned flags = 0;
    if (rev & (POLLIN | POLLPRI)) flags |= readable;
    if (rev & POLLOUT) flags |= writable;
    if (rev & (POLLHUP | POLLRDHUP)) flags |= hangup;
    if (rev & POLLHUP) flags |= write_closed;  // POLLRDHUP alone: only the peer's writing is over
    if (rev & POLLERR) flags |= error;
    return flags;
}

}  // namespace iowait::detail
