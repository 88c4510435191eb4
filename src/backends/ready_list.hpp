// For a backend whose kernel answer needs work of its own before it can be
// delivered (completions that re-arm, re-polls), a list of (token, flags)
// gathered by wait() and handed to the sink by deliver(). A backend that can
// read its kernel batch directly (epoll, poll, select, kqueue) does not use
// this: it costs a second pass.
#pragma once

#include <vector>

#include "backend.hpp"

namespace iowait::detail {

// Not a ready_flag: an entry whose fd the kernel says is no longer open.
constexpr unsigned closed = 32;  // above every ready_flag

struct ready {
    std::uint64_t token;
    unsigned flags;
};

inline void deliver_list(const std::vector<ready>& list, event_sink& sink) noexcept {
    for (const ready& r : list)
        if (r.flags & closed)
            sink.closed(r.token);
        else
            sink.deliver_merging(r.token, r.flags);
}

}  // namespace iowait::detail
