// io_uring's wait on an epoll set, through the ring (src/backends/io_uring.cpp
// has the design). In a header so that the front end makes the common wait,
// no timeout, inline as it does epoll's: one io_uring_enter, one completion,
// then its own pass over the set's batch, with no virtual call.
#pragma once

#include <chrono>
#include <cstring>
#include <ctime>

#include "backends/epoll_set.hpp"
#include "backends/io_uring_ring.hpp"

namespace iowait::detail {

class uring_waiter {
public:
    // user_data of our two kinds of request.
    static constexpr std::uint64_t wait_tag = 1;    // the wait: EPOLL_WAIT, or POLL_ADD on the epoll fd
    static constexpr std::uint64_t cancel_tag = 2;  // an ASYNC_CANCEL of the wait

    // Every SQ slot gets the wait request on `set` (IORING_OP_EPOLL_WAIT, or
    // POLL_ADD on the epoll fd without epoll_wait_op): a wait writes only the
    // batch's address and size (the kernel only reads SQEs).
    void start(epoll_set& set, bool epoll_wait_op) noexcept;

    uring_ring& ring() noexcept { return ring_; }

    // A wait without timeout, the common case: one io_uring_enter that
    // submits the request and waits for it, and its completion. Returns the
    // entries now in the set's batch, or -errno.
    [[gnu::always_inline]] int wait_forever() noexcept {
        if (!epoll_wait_op_) [[unlikely]]
            return wait(nullptr);
        arm();
        const long r = ring_.enter(1, 1);
        int res;
        if (r >= 0 && ring_.reap_only(wait_tag, res)) [[likely]]
            return res;
        return finish(r, nullptr, {});
    }

    // Any timeout (null: none). Returns as wait_forever().
    int wait(const std::timespec* timeout) noexcept;

private:
    using clock = std::chrono::steady_clock;

    // The request that waits, in the next slot, which holds it already: the
    // SQ is empty between waits, so there is room.
    void arm() noexcept {
        io_uring_sqe* sqe = ring_.next_sqe();
        if (epoll_wait_op_) {
            sqe->addr = std::uint64_t(reinterpret_cast<std::uintptr_t>(set_->batch()));
            sqe->len = std::uint32_t(set_->capacity());
        }
    }

    // After the enter of a wait (r: its result): the request's result, or,
    // where it has not completed, what unfinished() makes of it.
    [[gnu::noinline]] int finish(long r, const std::timespec* timeout, clock::time_point entered) noexcept;
    int unfinished(long r, const std::timespec* timeout, clock::time_point entered) noexcept;
    int after_poll(int res) noexcept;
    int zero_wait() noexcept;
    bool reap(int& res) noexcept;
    int cancel_wait(int& res) noexcept;

    uring_ring ring_;
    epoll_set* set_ = nullptr;
    bool epoll_wait_op_ = false;  // IORING_OP_EPOLL_WAIT, else POLL_ADD + epoll_wait(0)
    // The wait request, but for the batch's address and size. Bytes: a member
    // of type io_uring_sqe, with its zero-size array, is not standard C++.
    alignas(io_uring_sqe) unsigned char wait_sqe_[sizeof(io_uring_sqe)] = {};
};

}  // namespace iowait::detail
