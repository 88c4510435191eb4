// epoll: Linux's scalable readiness interface, the default there.
//
// Mapping (src/backends/epoll_set.hpp, shared with io_uring): one epoll_ctl
// per watch/modify/unwatch; the token lives in
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
//   accepts both. When a duplicate keeps it open, its entry stays, out of
//   reach: rebuild() (see backend.hpp) and, for a number watched again
//   (EEXIST), the front end's remove-and-add, get rid of it.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "backend.hpp"
#include "backends/epoll_set.hpp"
#include "detail/sys_error.hpp"
#include "detail/unique_fd.hpp"

namespace iowait::detail {

namespace {

// Probed once per process: a kernel without epoll_pwait2 will not grow one.
std::atomic<bool> pwait2_missing{std::getenv("IOWAIT_EPOLL_NO_PWAIT2") != nullptr};

class epoll_backend final : public backend {
public:
    explicit epoll_backend(unique_fd epfd) : set_(std::move(epfd)) {}

    Backend kind() const noexcept override { return Backend::epoll; }
    bool supports(Mode) const noexcept override { return true; }
    bool native_oneshot() const noexcept override { return true; }
    bool needs_before_wait() const noexcept override { return false; }

    status add(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept override {
        return set_.add(fd, interest, mode, token);
    }
    status modify(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept override {
        return set_.modify(fd, interest, mode, token);
    }
    status remove(native_handle fd) noexcept override { return set_.remove(fd); }

    status wait(const std::timespec* timeout, std::size_t& count) noexcept override {
        const int n = kernel_wait(timeout);
        if (n < 0) {
            set_.filled(0);
            return status::from_errno(errno);
        }
        set_.filled(n);
        count = std::size_t(n);
        return {};
    }

    void deliver(event_sink& sink) noexcept override { set_.deliver(sink); }
    bool batch_full() const noexcept override { return set_.full(); }
    bool keeps_stale_entries() const noexcept override { return true; }
    status rebuild(std::span<rewatch> watches) noexcept override { return set_.rebuild(watches); }
    epoll_set* epoll_set_of() noexcept override { return &set_; }

private:
    // No timeout and a zero one are the common cases: kept inline, the
    // others out of line, so that the wait path saves fewer registers.
    int kernel_wait(const std::timespec* timeout) noexcept {
        if (!timeout) return set_.wait(-1);
        if (timeout->tv_sec == 0 && timeout->tv_nsec == 0) return set_.wait(0);
        return timed_wait(timeout);
    }

    [[gnu::noinline]] int timed_wait(const std::timespec* timeout) noexcept {
        epoll_event* batch = set_.batch();
        const int size = set_.capacity();
#ifdef SYS_epoll_pwait2
        if (!pwait2_missing.load(std::memory_order_relaxed)) {
            const long n = ::syscall(SYS_epoll_pwait2, set_.fd(), batch, size, timeout, nullptr, 0);
            if (n >= 0 || errno != ENOSYS) return int(n);
            pwait2_missing.store(true, std::memory_order_relaxed);
        }
#endif
        // Round up: truncating would turn a 0.5 ms timeout into a busy poll.
        const std::int64_t ms = timeout->tv_sec * 1000 + (timeout->tv_nsec + 999'999) / 1'000'000;
        return ::epoll_wait(set_.fd(), batch, size, ms > INT32_MAX ? INT32_MAX : int(ms));
    }

    epoll_set set_;
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
