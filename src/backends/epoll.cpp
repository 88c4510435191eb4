// epoll: Linux's scalable readiness interface, the default there.
//
// Mapping: one epoll_ctl per watch/modify/unwatch; the token lives in
// epoll_event.data.u64; level-triggered by default, so a fd that stays ready
// is reported by every wait; Mode::oneshot is EPOLLONESHOT (the kernel
// disarms as it reports, so two threads never both see it) and Mode::edge is
// EPOLLET. The kernel keeps the ready list in order and moves each fd
// it reports to the tail, so a batch smaller than the ready set still
// reaches every fd in turn (no starvation); the batch also grows when it
// comes back full.
//
// Quirks handled here:
// - Timeouts: epoll_wait takes milliseconds; epoll_pwait2 (Linux 5.11) takes
//   a timespec. We use epoll_pwait2 for finite timeouts and fall back to
//   epoll_wait with the timeout rounded up to whole milliseconds when the
//   kernel answers ENOSYS (or IOWAIT_EPOLL_NO_PWAIT2 is set, to test that path).
// - Regular files: epoll_ctl answers EPERM; the front end turns that into
//   "always ready", the answer of poll and select.
// - A closed fd leaves the set by itself (when no duplicate keeps its file
//   open), so removing it afterwards gives EBADF or ENOENT: the front end
//   accepts both.
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <utility>

#include "backend.hpp"
#include "detail/sys_error.hpp"
#include "detail/unique_fd.hpp"

namespace iowait::detail {

namespace {

// Room for a hundred ready fds in the first wait of a fresh IOWait (3 KiB).
constexpr int initial_batch = 256;
// Beyond this a bigger batch saves no system calls worth the memory.
constexpr int max_batch = 4096;

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
constexpr epoll_masks masks{};
static_assert(int(Mode::level) == 0 && int(Mode::oneshot) == 1 && int(Mode::edge) == 2);

// The front end passes only valid interests (read, write or both, or none
// for a disarmed watch) and modes the backend supports.
inline std::uint32_t to_epoll(Interest interest, Mode mode) {
    return masks.mask[unsigned(mode)][unsigned(interest) & 3];
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
constexpr low_bits_table low_bits{};
static_assert(EPOLLIN == 1 && EPOLLPRI == 2 && EPOLLOUT == 4 && EPOLLERR == 8 && EPOLLHUP == 16);
static_assert(EPOLLRDHUP >> 11 == hangup);

inline unsigned from_epoll(std::uint32_t ev) { return low_bits.flags[ev & 31] | ((ev & EPOLLRDHUP) >> 11); }

// Probed once per process: a kernel without epoll_pwait2 will not grow one.
std::atomic<bool> pwait2_missing{std::getenv("IOWAIT_EPOLL_NO_PWAIT2") != nullptr};

class epoll_backend final : public backend {
public:
    explicit epoll_backend(unique_fd epfd) : epfd_(std::move(epfd)), batch_(initial_batch) {}

    Backend kind() const noexcept override { return Backend::epoll; }
    bool supports(Mode) const noexcept override { return true; }
    bool native_oneshot() const noexcept override { return true; }
    bool needs_before_wait() const noexcept override { return false; }

    status add(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept override {
        return ctl(EPOLL_CTL_ADD, fd, to_epoll(interest, mode), token);
    }
    status modify(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept override {
        return ctl(EPOLL_CTL_MOD, fd, to_epoll(interest, mode), token);
    }
    status remove(native_handle fd) noexcept override {
        // A non-null event for kernels before 2.6.9, which required one.
        epoll_event ev{};
        return ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, &ev) == 0 ? status{} : status::from_errno(errno);
    }

    status wait(const std::timespec* timeout, std::size_t& count) noexcept override {
        if (ready_ == batch_size_) grow();
        ready_ = kernel_wait(timeout);
        if (ready_ < 0) {
            ready_ = 0;
            return status::from_errno(errno);
        }
        count = std::size_t(ready_);
        return {};
    }

    void deliver(event_sink& sink) noexcept override {
        const epoll_event* batch = batch_.data();
        sink.deliver_each(std::size_t(ready_), [batch](std::size_t i) {
            return std::pair{batch[i].data.u64, from_epoll(batch[i].events)};
        });
    }

    // ready_ stays until the next wait(), which grows the batch only then.
    bool batch_full() const noexcept override { return ready_ == batch_size_; }

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

    // No timeout and a zero one are the common cases: kept inline, the
    // others out of line, so that the wait path saves fewer registers.
    int kernel_wait(const std::timespec* timeout) noexcept {
        if (!timeout) return ::epoll_wait(epfd_.get(), batch_.data(), batch_size_, -1);
        if (timeout->tv_sec == 0 && timeout->tv_nsec == 0)
            return ::epoll_wait(epfd_.get(), batch_.data(), batch_size_, 0);
        return timed_wait(timeout);
    }

    [[gnu::noinline]] int timed_wait(const std::timespec* timeout) noexcept {
        const int size = batch_size_;
#ifdef SYS_epoll_pwait2
        if (!pwait2_missing.load(std::memory_order_relaxed)) {
            const long n = ::syscall(SYS_epoll_pwait2, epfd_.get(), batch_.data(), size, timeout, nullptr, 0);
            if (n >= 0 || errno != ENOSYS) return int(n);
            pwait2_missing.store(true, std::memory_order_relaxed);
        }
#endif
        // Round up: truncating would turn a 0.5 ms timeout into a busy poll.
        const std::int64_t ms = timeout->tv_sec * 1000 + (timeout->tv_nsec + 999'999) / 1'000'000;
        return ::epoll_wait(epfd_.get(), batch_.data(), size, ms > INT32_MAX ? INT32_MAX : int(ms));
    }

    unique_fd epfd_;
    std::vector<epoll_event> batch_;
    int batch_size_ = initial_batch;
    int ready_ = 0;  // entries of batch_ the last wait filled
};

}  // namespace

std::unique_ptr<backend> make_epoll_backend(std::error_code& ec) {
    unique_fd epfd(::epoll_create1(EPOLL_CLOEXEC));
    if (!epfd) {
        ec = last_error();
        return nullptr;
    }
    return std::make_unique<epoll_backend>(std::move(epfd));
}

}  // namespace iowait::detail
