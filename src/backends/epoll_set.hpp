// The epoll set both Linux backends are built on: epoll waits on it with
// epoll_wait, io_uring through its ring. One mapping of interests and modes
// to epoll's bits and back, one set of epoll_ctl calls, one kernel batch and
// one pass over it, so that io_uring keeps epoll's semantics by
// construction (level, oneshot, edge, hangups, closed fds leaving the set,
// regular files refused with EPERM).
#pragma once

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <span>
#include <utility>
#include <vector>

#include "backend.hpp"
#include "detail/status.hpp"
#include "detail/unique_fd.hpp"

namespace iowait::detail {

constexpr std::uint32_t compute_epoll(Interest interest, Mode mode) {
    std::uint32_t ev = 0;
    if (has(interest, Interest::read)) ev |= EPOLLIN | EPOLLRDHUP;
    if (has(interest, Interest::write)) ev |= EPOLLOUT;
    if (mode == Mode::edge) ev |= EPOLLET;
    // Interest::none (a disarmed watch) also gets EPOLLONESHOT: epoll reports
    // EPOLLHUP and EPOLLERR even for an empty mask, at most once this way.
    if (mode == Mode::oneshot || interest == Interest::none) ev |= EPOLLONESHOT;
    return ev;
}

// Every (interest, mode) pair computed once: the watch path does a load.
struct epoll_masks {
    std::uint32_t mask[3][4];
    constexpr epoll_masks() : mask{} {
        for (unsigned m = 0; m < 3; ++m)
            for (unsigned i = 0; i < 4; ++i) mask[m][i] = compute_epoll(Interest(i), Mode(m));
    }
};
inline constexpr epoll_masks epoll_mask_table{};
static_assert(int(Mode::level) == 0 && int(Mode::oneshot) == 1 && int(Mode::edge) == 2);

// The public watch()'s inline path (src/front_end.hpp, watch_fast): the mask of every
// valid (interest, mode) at [mode << 2 | interest], and 0 for an interest of
// none or a fourth mode, so that one load both checks the arguments and
// gives the mask. Anything else goes to the general path, which names the error.
struct epoll_watch_masks {
    std::uint32_t mask[16];
    constexpr epoll_watch_masks() : mask{} {
        for (unsigned m = 0; m < 3; ++m)
            for (unsigned i = 1; i < 4; ++i) mask[m << 2 | i] = compute_epoll(Interest(i), Mode(m));
    }
};
inline constexpr epoll_watch_masks epoll_watch_mask_table{};

// The front end passes only valid interests (read, write or both, or none
// for a disarmed watch) and modes the backend supports.
inline std::uint32_t to_epoll(Interest interest, Mode mode) noexcept {
    return epoll_mask_table.mask[unsigned(mode)][unsigned(interest) & 3];
}

// EPOLLRDHUP (the peer shut down its writing side) says nothing of ours:
// hangup only; EPOLLHUP (gone both ways) also ends our writing (rule R6).
// A table over the five low bits (IN, PRI, OUT, ERR, HUP) plus RDHUP
// (0x2000) shifted onto `hangup`: a few instructions per event instead of
// five tests.
constexpr unsigned from_low_bits(unsigned ev) {
    unsigned flags = 0;
    if (ev & (EPOLLIN | EPOLLPRI)) flags |= readable;
    if (ev & EPOLLOUT) flags |= writable;
    if (ev & EPOLLHUP) flags |= hangup | write_closed;
    if (ev & EPOLLERR) flags |= error;
    return flags;
}
struct low_bits_table {
    unsigned flags[32];
    constexpr low_bits_table() : flags{} {
        for (unsigned ev = 0; ev < 32; ++ev) flags[ev] = from_low_bits(ev);
    }
};
inline constexpr low_bits_table epoll_low_bits{};
static_assert(EPOLLIN == 1 && EPOLLPRI == 2 && EPOLLOUT == 4 && EPOLLERR == 8 && EPOLLHUP == 16);
static_assert(EPOLLRDHUP >> 11 == hangup);

inline unsigned from_epoll(std::uint32_t ev) noexcept {
    return epoll_low_bits.flags[ev & 31] | ((ev & EPOLLRDHUP) >> 11);
}

// For the front end's pass (src/front_end.hpp): the Event's four bools for
// every (interest, epoll bits), so that an entry costs one table load from
// the kernel's bits to the Event, with no ready_flag in between.
// epoll reports only the bits a watch asked for (EPOLLIN, EPOLLOUT,
// EPOLLRDHUP: see to_epoll) and EPOLLERR and EPOLLHUP: in the low byte, and
// EPOLLRDHUP in the second, on the bit (5) that no other takes in the first;
// row (interest << 6) takes bits 6 and 7, which none of these has.
constexpr unsigned epoll_index(std::uint32_t ev, std::uint8_t row) noexcept {
    return unsigned(std::uint8_t(ev) | std::uint8_t(ev >> 8) | row);
}
static_assert(EPOLLRDHUP >> 8 == 32 && ((EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP) >> 8) == 0 &&
              ((EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP) & 0xe0) == 0);
struct epoll_event_tables {
    event_bools bools[4 * 64];  // [interest << 6 | epoll_index(events)]
    constexpr epoll_event_tables() : bools{} {
        for (unsigned interest = 0; interest < 4; ++interest)
            for (unsigned i = 0; i < 64; ++i)
                bools[interest << 6 | i] =
                    tables.bools[interest << 5 | from_low_bits(i & 31) | (i & 32 ? unsigned(hangup) : 0u)];
    }
};
inline constexpr epoll_event_tables epoll_tables{};

class epoll_set {
public:
    // Room for a hundred ready fds in the first wait of a fresh IOWait (3 KiB).
    static constexpr int initial_batch = 256;
    // Beyond this a bigger batch saves no system calls worth the memory.
    static constexpr int max_batch = 4096;

    explicit epoll_set(unique_fd epfd) : epfd_(std::move(epfd)), batch_(initial_batch) {}

    int fd() const noexcept { return epfd_.get(); }

    // Every change is one epoll_ctl, answered at once: the front end's rules
    // need the kernel's answer from the call itself (EBADF, ENOENT, EPERM).
    status add(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept {
        return ctl(EPOLL_CTL_ADD, fd, to_epoll(interest, mode), token);
    }
    status modify(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept {
        return ctl(EPOLL_CTL_MOD, fd, to_epoll(interest, mode), token);
    }
    status remove(native_handle fd) noexcept {
        epoll_event ev{};  // non-null for kernels before 2.6.9, which required one
        return ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, &ev) == 0 ? status{} : status::from_errno(errno);
    }

    // A fresh set of the watches whose number still names the file they were
    // made for: EPOLL_CTL_MOD on the old set finds the entry (file, fd) only
    // then (ENOENT for a number reused by another file, EBADF for a closed
    // one). The stale entries go with the old set. Rare: see backend.hpp.
    [[gnu::cold]] status rebuild(std::span<rewatch> watches) noexcept {
        unique_fd fresh(::epoll_create1(EPOLL_CLOEXEC));
        if (!fresh) return status::from_errno(errno);
        for (rewatch& w : watches) {
            epoll_event ev;
            ev.events = to_epoll(w.interest, w.mode);
            ev.data.u64 = w.token;
            if (::epoll_ctl(epfd_.get(), EPOLL_CTL_MOD, w.fd, &ev) != 0) {
                w.gone = true;
                continue;
            }
            if (::epoll_ctl(fresh.get(), EPOLL_CTL_ADD, w.fd, &ev) != 0) return status::from_errno(errno);
        }
        // The fresh set takes the old one's number: a new number would be
        // the lowest free one, quite likely the watched number just closed,
        // which the program may be about to dup2() its file back onto. The
        // number staying the same also keeps io_uring's requests, which name
        // the set by number, pointed at the right set.
        if (::dup3(fresh.get(), epfd_.get(), O_CLOEXEC) < 0) return status::from_errno(errno);
        return {};
    }

    // Before a wait: where the kernel writes its entries, and how many fit
    // (more than last time if the last batch came back full).
    epoll_event* batch() noexcept {
        if (ready_ == batch_size_) grow();
        return batch_.data();
    }
    int capacity() const noexcept { return batch_size_; }
    // After it: how many entries the kernel wrote (0 after an error).
    void filled(int n) noexcept { ready_ = n; }
    int ready() const noexcept { return ready_; }
    // The entries of the last wait.
    const epoll_event* entries() const noexcept { return batch_.data(); }
    // The last wait filled the whole batch: more fds may be ready.
    bool full() const noexcept { return ready_ == batch_size_; }

    // The entries of the last wait, to the sink in one pass.
    void deliver(event_sink& sink) const noexcept {
        const epoll_event* batch = batch_.data();
        sink.deliver_each(std::size_t(ready_), [batch](std::size_t i) {
            // A copy: epoll_event is packed on x86-64, and a reference to its
            // u64 (pair's constructor takes one) is misaligned (UBSan).
            return std::pair{std::uint64_t(batch[i].data.u64), from_epoll(batch[i].events)};
        });
    }

    // The common wait, inline: no timeout or a zero one.
    int wait(int timeout_ms) noexcept {
        epoll_event* entries = batch();  // first: it may grow batch_size_
        return ::epoll_wait(epfd_.get(), entries, batch_size_, timeout_ms);
    }

private:
    // The last batch came back full: a bigger one saves system calls.
    [[gnu::noinline]] void grow() noexcept {
        if (batch_.size() >= std::size_t(max_batch)) return;
        try {
            batch_.resize(batch_.size() * 2);
            batch_size_ = int(batch_.size());
        } catch (const std::bad_alloc&) {
            // Keep the smaller batch: the kernel rotates its ready list, so nothing starves.
        }
    }

    status ctl(int op, int fd, std::uint32_t events, std::uint64_t token) noexcept {
        epoll_event ev;
        ev.events = events;
        ev.data.u64 = token;
        return ::epoll_ctl(epfd_.get(), op, fd, &ev) == 0 ? status{} : status::from_errno(errno);
    }

    unique_fd epfd_;
    std::vector<epoll_event> batch_;
    int batch_size_ = initial_batch;
    int ready_ = 0;  // entries of batch_ the last wait filled
};

}  // namespace iowait::detail
