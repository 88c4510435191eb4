// The epoll set both Linux backends are built on: epoll waits on it with
// epoll_wait, io_uring through its ring. One mapping of interests and modes
// to epoll's bits, one set of epoll_ctl calls and one batch of kernel
// entries, so that io_uring keeps epoll's semantics by construction (level,
// oneshot, edge, hangups, closed fds, regular files refused with EPERM).
#pragma once

#include <sys/epoll.h>

#include <vector>

#include "backend.hpp"
#include "detail/sys_error.hpp"
#include "detail/unique_fd.hpp"

namespace iowait::detail {

inline std::uint32_t to_epoll(Interest interest, Mode mode) noexcept {
    std::uint32_t ev = 0;
    if (has(interest, Interest::read)) ev |= EPOLLIN | EPOLLRDHUP;
    if (has(interest, Interest::write)) ev |= EPOLLOUT;
    if (mode == Mode::edge) ev |= EPOLLET;
    // Interest::none (a disarmed watch) also gets EPOLLONESHOT: epoll reports
    // EPOLLHUP and EPOLLERR even for an empty mask, at most once this way.
    if (mode == Mode::oneshot || interest == Interest::none) ev |= EPOLLONESHOT;
    return ev;
}

inline unsigned from_epoll(std::uint32_t ev) noexcept {
    unsigned flags = 0;
    if (ev & (EPOLLIN | EPOLLPRI)) flags |= readable;
    if (ev & EPOLLOUT) flags |= writable;
    if (ev & (EPOLLHUP | EPOLLRDHUP)) flags |= hangup;
    if (ev & EPOLLERR) flags |= error;
    return flags;
}

class epoll_set {
public:
    // The kernel's batch starts at 64 entries and doubles, up to 4096, each
    // time it comes back full; beyond that a bigger batch saves no system
    // calls worth the memory.
    static constexpr int initial_batch = 64;
    static constexpr int max_batch = 4096;

    explicit epoll_set(unique_fd epfd) : epfd_(std::move(epfd)), batch_(initial_batch) {}

    int fd() const noexcept { return epfd_.get(); }

    // Every change is one epoll_ctl, answered at once: the front end's rules
    // need the kernel's answer from the call itself (EBADF, ENOENT, EPERM).
    std::error_code add(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept {
        return ctl(EPOLL_CTL_ADD, fd, to_epoll(interest, mode), token);
    }
    std::error_code modify(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept {
        return ctl(EPOLL_CTL_MOD, fd, to_epoll(interest, mode), token);
    }
    std::error_code remove(native_handle fd) noexcept {
        epoll_event ev{};  // non-null for kernels before 2.6.9, which required one
        return ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, &ev) == 0 ? std::error_code{} : last_error();
    }

    // Where the kernel writes its entries, and how many fit.
    epoll_event* batch() noexcept { return batch_.data(); }
    int capacity() const noexcept { return int(batch_.size()); }

    // Hands over the first n entries the kernel wrote; a full batch grows.
    void take(int n, std::vector<ready>& out) noexcept {
        for (int i = 0; i < n; ++i) out.push_back({batch_[i].data.u64, from_epoll(batch_[i].events)});
        if (n == capacity() && capacity() < max_batch) {
            try {
                batch_.resize(batch_.size() * 2);
            } catch (const std::bad_alloc&) {  // the batch stays as it is: still correct
            }
        }
    }

private:
    std::error_code ctl(int op, native_handle fd, std::uint32_t events, std::uint64_t token) noexcept {
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = token;
        return ::epoll_ctl(epfd_.get(), op, fd, &ev) == 0 ? std::error_code{} : last_error();
    }

    unique_fd epfd_;
    std::vector<epoll_event> batch_;
};

}  // namespace iowait::detail
