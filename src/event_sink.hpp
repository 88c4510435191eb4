// The front end's per-event work, written once and inlined into every
// backend's pass over its kernel batch (backend::deliver), so that a wait is
// one system call and one pass from the kernel's answer to the caller's
// Events, with no intermediate vector between them.
//
// The common case costs one bounds check, one compare and one store of the
// Event: the slot keeps `live`, the exact token the kernel was given while
// the watch is active and armed, and ~0 otherwise, so "is this entry still
// the watch it was made for" (unwatched, rewatched, closed or disarmed since)
// is one compare. Everything else (the waker, oneshot, stale entries, fds
// the kernel keys by number, merging) leaves the inline path.
#pragma once

#include <cstdint>
#include <memory>

#include "detail/fd_table.hpp"
#include "detail/file_identity.hpp"
#include "iowait/iowait.hpp"

namespace iowait::detail {

class backend;

// What the kernel said of one fd, normalised. The values of readable and
// writable are those of Interest::read and Interest::write, so that masking
// with the watch's interest is one AND.
enum ready_flag : unsigned {
    readable = 1,
    writable = 2,
    hangup = 4,  // peer closed both ways (or the connection is gone)
    error = 8,
};

// A token no watch has: generations start at 1 and the waker's is 0.
constexpr std::uint64_t no_token = ~std::uint64_t(0);

// One watched fd. The generation tells this watch from an earlier one of the
// same number, so an event collected before an unwatch() is never reported
// for the watch that follows it.
struct slot {
    enum state_t : std::uint8_t {
        free,
        active,        // in the backend's kernel set
        always_ready,  // a file the kernel cannot poll (epoll: EPERM): ready for every interest
        closed,        // the backend saw the fd closed; waits for unwatch()
    };
    // The kernel's token while the watch is active, armed, level or edge, and
    // the backend tells reused numbers apart itself; no_token otherwise, so
    // that every other case takes the slow path.
    std::uint64_t live = no_token;
    std::uint64_t data = 0;
    std::uint32_t generation = 0;
    state_t state = free;
    Interest interest = Interest::none;
    Mode mode = Mode::level;
    bool armed = true;        // false once a oneshot (or always-ready edge) watch has reported
    std::uint32_t batch = 0;  // deliver_merging(): the batch that last reported this slot...
    std::uint32_t event = 0;  // ...and the index of its Event in that batch
    file_identity id;         // kept where the backend cannot tell a reused number itself
};

constexpr std::uint32_t waker_generation = 0;  // watches start at 1

// A Windows handle fits in 32 bits: the kernel keeps handle values below 2^32
// so that 32- and 64-bit processes can share them, hence the cast is lossless.
inline std::uint64_t make_token(native_handle fd, std::uint32_t generation) noexcept {
    return std::uint64_t(generation) << 32 | std::uint32_t(fd);
}

// Owned by the front end; a backend sees it only inside deliver(), with the
// front end's lock held and room reserved for as many Events as wait()
// promised in its count.
class event_sink {
public:
    // One entry of the kernel's batch. At most one per fd per batch: a
    // backend whose kernel may answer twice for one fd (kqueue's two
    // filters) uses deliver_merging() instead.
    void deliver(std::uint64_t token, unsigned flags) noexcept {
        const auto fd = native_handle(std::uint32_t(token));
        slot* s = slots_->get(fd);
        if (!s || s->live != token) return deliver_slow(token, flags);
        // A fd in hangup or error is readable and writable for the interests
        // asked: the next call will not block (rule R4).
        const unsigned done = (flags & (hangup | error)) ? 3u : 0u;
        const unsigned rw = (flags | done) & unsigned(s->interest);
        if (rw == 0) return;
        *out_++ =
            Event{fd, bool(rw & readable), bool(rw & writable), bool(flags & hangup), bool(flags & error), s->data};
    }
    // As deliver(), where entries for one fd may come more than once per
    // batch: they are merged into one Event.
    virtual void deliver_merging(std::uint64_t token, unsigned flags) noexcept = 0;
    // The kernel says the fd of this token is no longer open (POLLNVAL,
    // EBADF): the front end drops it from the backend (remove()) and never
    // reports it again.
    virtual void closed(std::uint64_t token) noexcept = 0;

protected:
    // Virtual only off the inline path: the front end (src/iowait.cpp) implements them.
    virtual void deliver_slow(std::uint64_t token, unsigned flags) noexcept = 0;
    ~event_sink() = default;

    fd_table<slot>* slots_ = nullptr;
    Event* out_ = nullptr;  // the next Event to write
    Event* first_ = nullptr;
    std::uint32_t batch_ = 0;  // counts batches, for deliver_merging()
    bool woken_ = false;       // the waker's token was seen and notify() had been called
};

}  // namespace iowait::detail
