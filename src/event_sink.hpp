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
    hangup = 4,         // the peer will send no more (EOF): Event::hangup
    error = 8,          // Event::error
    write_closed = 16,  // our writing is over too (POLLHUP): gone both ways
};

// What a watch sees of the flags (rules R4, R6): a fd that will return EOF
// or an error is readable; one that is gone both ways or in error is
// writable (the call fails at once), but a peer's shutdown of its own
// writing (hangup alone) says nothing of ours.
constexpr unsigned effective(unsigned flags) noexcept {
    unsigned rw = flags & (readable | writable);
    if (flags & (hangup | error | write_closed)) rw |= readable;
    if (flags & (error | write_closed)) rw |= writable;
    return rw;
}

// The Event's four bools for every (interest, flags): one table load gives
// all of them, and read|write both false means "nothing for this watch".
struct event_bools {
    bool read, write, hangup, error;
};
struct event_tables {
    event_bools bools[4 * 32];  // [interest << 5 | flags]
    constexpr event_tables() : bools{} {
        for (unsigned interest = 0; interest < 4; ++interest)
            for (unsigned f = 0; f < 32; ++f) {
                const unsigned rw = effective(f) & interest;
                bools[interest << 5 | f] = {bool(rw & readable), bool(rw & writable), rw != 0 && (f & hangup) != 0,
                                            rw != 0 && (f & error) != 0};
            }
    }
};
inline constexpr event_tables tables{};

// A token no watch has: every generation is above 0 (the waker's and the
// sources' included), so no token is 0, and a zeroed slot (fd_table's
// "nothing here") matches no kernel entry.
constexpr std::uint64_t no_token = 0;

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
    // that every other case takes the slow path. Every member's default is
    // zero bytes (see fd_table).
    std::uint64_t live = no_token;
    std::uint64_t data = 0;
    std::uint32_t generation = 0;
    state_t state = free;
    bool armed = false;  // set by watch(); false once a oneshot (or always-ready edge) watch has reported
    // unsigned(interest) << 6, kept with it: the watch's row of the epoll
    // pass's table (epoll_tables in backends/epoll_set.hpp), one OR per event.
    std::uint8_t interest_row = 0;
    Interest interest = Interest::none;
    Mode mode = Mode::level;
    std::uint32_t batch = 0;  // deliver_merging(): the batch that last reported this slot...
    std::uint32_t event = 0;  // ...the index of its Event in that batch, and its flags so far
    unsigned flags = 0;
    // Several waiters: the waiter (shared_waits, its index) whose thread was
    // reported this watch and holds it, disarmed, until its next wait(); 0: none.
    std::uint16_t holder = 0;
    file_identity id;  // kept where the backend cannot tell a reused number itself
};
// A power of two, so that the inline path finds a slot with a shift.
static_assert(sizeof(slot) == 64);

// Watches take 1 to waker_generation - 1; sources.hpp's source_generation is the one above.
constexpr std::uint32_t waker_generation = ~std::uint32_t(0) - 1;

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
    // One entry of the kernel's batch; flags are ready_flag bits (below 32).
    // At most one per fd per batch: a
    // backend whose kernel may answer twice for one fd (kqueue's two
    // filters) uses deliver_merging() instead.
    void deliver(std::uint64_t token, unsigned flags) noexcept {
        Event* out = out_;
        out_ = deliver_one(out, dense_, dense_size_, token, flags);
    }
    // The same over a whole batch, with the sink's state held in registers
    // across it: entry(i) gives the (token, flags) of the i-th kernel entry.
    template <class Entry>
    void deliver_each(std::size_t n, Entry entry) noexcept {
        Event* out = out_;
        const slot* dense = dense_;
        const std::size_t size = dense_size_;
        for (std::size_t i = 0; i < n; ++i) {
            const auto [token, flags] = entry(i);
            out = deliver_one(out, dense, size, token, flags);
        }
        out_ = out;
    }
    // As deliver(), where entries for one fd may come more than once per
    // batch: they are merged into one Event.
    virtual void deliver_merging(std::uint64_t token, unsigned flags) noexcept = 0;
    // The kernel says the fd of this token is no longer open (POLLNVAL,
    // EBADF): the front end drops it from the backend (remove()) and never
    // reports it again.
    virtual void closed(std::uint64_t token) noexcept = 0;

protected:
    // The inline path; returns where the next Event goes.
    Event* deliver_one(Event* out, const slot* dense, std::size_t size, std::uint64_t token, unsigned flags) noexcept {
        const auto index = std::size_t(std::uint32_t(token));
        if (index >= size || dense[index].live != token) [[unlikely]] {
            out_ = out;
            deliver_slow(token, flags);
            return out_;
        }
        const slot& s = dense[index];
        const event_bools b = tables.bools[unsigned(s.interest) << 5 | flags];
        if (!b.read && !b.write) return out;
        *out = Event{native_handle(index), b.read, b.write, b.hangup, b.error, s.data};
        return out + 1;
    }

    // Virtual only off the inline path: the front end (src/front_end.cpp) implements them.
    virtual void deliver_slow(std::uint64_t token, unsigned flags) noexcept = 0;
    ~event_sink() = default;

    // The dense part of the front end's table, as it is during this batch
    // (the table does not grow while the lock is held for deliver()).
    const slot* dense_ = nullptr;
    std::size_t dense_size_ = 0;
    Event* out_ = nullptr;  // the next Event to write
    Event* first_ = nullptr;
    std::uint32_t batch_ = 0;  // counts batches, for deliver_merging() (not on epoll's set: collect_epoll)
    bool woken_ = false;       // the waker's token was seen and notify() had been called
};

}  // namespace iowait::detail
