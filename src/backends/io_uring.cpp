// io_uring: Linux's submission/completion rings, here waiting on an epoll
// set through the ring, so that its semantics are epoll's by construction.
//
// Design (docs/benchmarks.md, "io_uring beside epoll", has the measurements behind it):
// - The source of truth is an epoll set (src/backends/epoll_set.hpp, shared
//   with the epoll backend): level, oneshot (EPOLLONESHOT), edge (EPOLLET),
//   hangups, closed fds leaving the set, regular files refused with EPERM
//   are all epoll's. No poll request holds a watched file, so no fstat is
//   needed and closing a file releases it as with epoll.
// - Every change is one epoll_ctl, answered at once, as on epoll. The
//   front end's rules need the kernel's answer from the call itself: EBADF
//   for a closed fd and ENOENT for a reused number from modify() (C2, C3),
//   EBADF and EPERM from watch() (E4, R8), and unwatch() must remove the
//   file from the set before the program closes it, or a duplicate that
//   keeps the file open would leave an entry behind that nothing can remove.
//   A change deferred to the next io_uring_enter (IORING_OP_EPOLL_CTL) could
//   only report its error after the call returned, and no system call that
//   checks an fd (fcntl, fstat) costs less than the epoll_ctl itself, so
//   changes are not batched through the ring (docs/benchmarks.md has the figures of
//   what batching would gain if the rules allowed it).
// - The wait goes through the ring: IORING_OP_EPOLL_WAIT (Linux 6.15, opcode
//   59, newer than Debian 12's <linux/io_uring.h>), found with
//   IORING_REGISTER_PROBE; on older kernels a single-shot IORING_OP_POLL_ADD
//   on the epoll fd, then epoll_wait(0) to take the entries it announced.
//   IOWAIT_IO_URING_NO_EPOLL_WAIT=1 forces that older path, to test it.
//   A zero timeout asks the set with epoll_wait(0) at once: one system call
//   either way, and no request to cancel when nothing is ready.
// - No request outlives the wait() that submitted it: one that has not
//   completed when the wait ends (timeout, signal) is cancelled before the
//   wait returns. Else it would complete later and hand over entries as
//   they were then, which the program may have consumed since, and its
//   completion would run in a thread that may be waiting for something else.
// - The wait's user-space side is a few stores: every SQ slot holds the
//   wait request from the start (the kernel only reads SQEs), a wait writes
//   the batch's address and size, then one io_uring_enter.
//
// What the measurement chose (bench/uring_vs_epoll.cpp): as fast as epoll
// on changes (they are epoll's), 2-8% slower on a wait that finds one fd
// ready (the kernel's side of a ring request costs more than epoll_wait),
// so epoll stays the first choice (src/factory.cpp).
//
// Threading (see backend.hpp): add/modify/remove are epoll_ctl calls, which
// the kernel lets run during a wait, and a change reaches a wait in progress
// as with epoll (the set's readiness wakes the ring's request). Only wait()
// touches the ring, one thread at a time, so the SQ and CQ have a single
// producer and a single consumer.
//
// Quirks handled here:
// - Timeouts: IORING_ENTER_EXT_ARG (5.11) takes a timespec, so nanoseconds,
//   as epoll_pwait2. An io_uring_enter that submitted a request returns the
//   count submitted even when a signal cut its wait short: with no
//   completion and time left, it was a signal (the clock is read for
//   finite timeouts only), and wait() says EINTR, so that wait_or_signal()
//   sees it as with epoll.
// - IOWAIT_IO_URING_SETUP_FAIL=EPERM or ENOSYS (for tests) makes ring setup
//   fail as a kernel that forbids or lacks io_uring would.
#include <poll.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>

#include "backend.hpp"
#include "backends/epoll_set.hpp"
#include "backends/io_uring_ring.hpp"
#include "backends/uring_waiter.hpp"
#include "detail/sys_error.hpp"

namespace iowait::detail {

namespace {

// IORING_OP_EPOLL_WAIT, Linux 6.15: an enum value of newer headers than
// Debian 12's, so named here by its number (the ABI does not change).
constexpr unsigned op_epoll_wait = 59;
static_assert(op_epoll_wait < 64, "supported_ops() reports the opcodes below 64");

// One wait request and its cancel at most: a tiny ring.
constexpr unsigned sq_size = 4;
constexpr unsigned cq_size = 8;

class io_uring_backend final : public backend {
public:
    io_uring_backend() = default;

    // Not noexcept: the reason is a string (bad_alloc goes to the caller, as from make_unique).
    std::error_code init(std::string& why) {
        if (const char* fail = std::getenv("IOWAIT_IO_URING_SETUP_FAIL"); fail && *fail) {
            const int e = std::string_view(fail) == "ENOSYS" ? ENOSYS : EPERM;
            why = explain("io_uring_setup", e) + " [simulated: IOWAIT_IO_URING_SETUP_FAIL is set, for tests]";
            return sys_error(e);
        }
        const char* step = "";
        uring_ring& ring = waiter_.ring();
        if (auto ec = ring.setup(sq_size, cq_size, step)) {
            why = explain(step, ec.value());
            return ec;
        }
        const std::uint64_t ops = ring.supported_ops();
        constexpr std::uint64_t needed = std::uint64_t(1) << IORING_OP_POLL_ADD | std::uint64_t(1)
                                                                                      << IORING_OP_ASYNC_CANCEL;
        if ((ops & needed) != needed) {
            why = explain("IORING_REGISTER_PROBE (POLL_ADD, ASYNC_CANCEL)", EOPNOTSUPP);
            return sys_error(EOPNOTSUPP);
        }
        const char* no_epoll_wait = std::getenv("IOWAIT_IO_URING_NO_EPOLL_WAIT");
        const bool epoll_wait_op = !(no_epoll_wait && *no_epoll_wait) && (ops >> op_epoll_wait & 1);
        unique_fd epfd(::epoll_create1(EPOLL_CLOEXEC));
        if (!epfd) {
            const std::error_code ec = last_error();
            why = explain("epoll_create1", ec.value());
            return ec;
        }
        set_.emplace(std::move(epfd));
        waiter_.start(*set_, epoll_wait_op);
        return {};
    }

    Backend kind() const noexcept override { return Backend::io_uring; }
    bool supports(Mode) const noexcept override { return true; }
    bool native_oneshot() const noexcept override { return true; }
    bool needs_before_wait() const noexcept override { return false; }

    status add(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept override {
        return set_->add(fd, interest, mode, token);
    }
    status modify(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept override {
        return set_->modify(fd, interest, mode, token);
    }
    status remove(native_handle fd) noexcept override { return set_->remove(fd); }

    status wait(const std::timespec* timeout, std::size_t& count) noexcept override {
        const int n = waiter_.wait(timeout);
        if (n < 0) [[unlikely]] {
            set_->filled(0);
            return status::from_errno(-n);
        }
        set_->filled(n);
        count = std::size_t(n);
        return {};
    }

    void deliver(event_sink& sink) noexcept override { set_->deliver(sink); }
    bool batch_full() const noexcept override { return set_->full(); }
    // An epoll set keeps entries of files that outlive their number, as epoll does.
    bool keeps_stale_entries() const noexcept override { return true; }
    status rebuild(std::span<rewatch> watches) noexcept override { return set_->rebuild(watches); }
    epoll_set* epoll_set_of() noexcept override { return &*set_; }
    uring_waiter* uring_waiter_of() noexcept override { return &waiter_; }

private:
    // Why the kernel refused, in words a user can act on.
    static std::string explain(const char* step, int e) {
        std::string why = std::string(step) + ": " + std::generic_category().message(e);
        if (e == EPERM || e == EACCES) {
            std::ifstream in("/proc/sys/kernel/io_uring_disabled");  // 6.6+
            int disabled = -1;
            if (in >> disabled && disabled == 2)
                return why + " (io_uring is disabled: /proc/sys/kernel/io_uring_disabled is 2)";
            if (disabled == 1)
                return why +
                       " (/proc/sys/kernel/io_uring_disabled is 1: only CAP_SYS_ADMIN or the group in "
                       "/proc/sys/kernel/io_uring_group may use io_uring)";
            return why +
                   " (forbidden by a seccomp filter or a security module, e.g. a container runtime's default profile)";
        }
        if (e == ENOSYS) return why + " (this kernel has no io_uring, or a seccomp filter hides it)";
        if (e == EOPNOTSUPP) return why + " (the kernel is too old: this backend needs Linux 5.11)";
        return why;
    }

    std::optional<epoll_set> set_;  // before waiter_, which points at it
    uring_waiter waiter_;
};

// Why the last make_io_uring_backend() of this thread failed.
thread_local std::string last_refusal;

}  // namespace

void uring_waiter::start(epoll_set& set, bool epoll_wait_op) noexcept {
    set_ = &set;
    epoll_wait_op_ = epoll_wait_op;
    io_uring_sqe sqe{};
    sqe.opcode = epoll_wait_op ? std::uint8_t(op_epoll_wait) : std::uint8_t(IORING_OP_POLL_ADD);
    sqe.fd = set.fd();
    sqe.user_data = wait_tag;
    if (!epoll_wait_op) sqe.poll32_events = POLLIN;
    std::memcpy(wait_sqe_, &sqe, sizeof sqe);
    for (unsigned i = 0; i < ring_.slots(); ++i) std::memcpy(ring_.slot(i), wait_sqe_, sizeof sqe);
}

int uring_waiter::wait(const std::timespec* timeout) noexcept {
    if (timeout && timeout->tv_sec == 0 && timeout->tv_nsec == 0) return zero_wait();
    arm();
    if (!timeout) return finish(ring_.enter(1, 1), nullptr, {});
    const clock::time_point entered = clock::now();
    return finish(ring_.enter(1, *timeout), timeout, entered);
}

int uring_waiter::finish(long r, const std::timespec* timeout, clock::time_point entered) noexcept {
    int res = 0;
    if (r < 0 || !reap(res)) return unfinished(r, timeout, entered);
    return epoll_wait_op_ ? res : after_poll(res);
}

// The enter failed, or came back without the request's completion: a
// timeout or a signal. No request may outlive its wait: cancel it.
int uring_waiter::unfinished(long r, const std::timespec* timeout, clock::time_point entered) noexcept {
    if (r < 0 && ring_.pending() > 0) {
        ring_.unfill();  // nothing submitted: the SQ is as before the wait
        return int(r);
    }
    // Which of the two matters only to wait_or_signal().
    const bool interrupted = !timeout || clock::now() - entered < std::chrono::seconds(timeout->tv_sec) +
                                                                      std::chrono::nanoseconds(timeout->tv_nsec);
    int res = 0;
    if (const int e = cancel_wait(res)) return e;
    if (res == -ECANCELED) res = 0;
    if (res < 0) return res;
    const int n = epoll_wait_op_ ? res : after_poll(res);
    return n == 0 && interrupted ? -EINTR : n;  // the front end retries EINTR
}

// The poll path: the poll says the set has entries; epoll_wait takes them.
int uring_waiter::after_poll(int res) noexcept {
    if (res < 0) return res;
    return zero_wait();
}

// A zero timeout asks the set at once: one system call either way, and no
// request to cancel when nothing is ready.
int uring_waiter::zero_wait() noexcept {
    const int n = set_->wait(0);
    return n < 0 ? -errno : n;
}

// The wait request's result, if it has completed; other completions (a
// cancel's) carry nothing.
bool uring_waiter::reap(int& res) noexcept {
    bool done = false;
    ring_.reap([&](const io_uring_cqe& cqe) {
        if (cqe.user_data == wait_tag) {
            res = cqe.res;
            done = true;
        }
    });
    return done;
}

// Cancels the wait request and waits for its completion: cancelled, or done
// with entries if it completed meanwhile (kept: they are fresh). Returns 0
// or -errno.
int uring_waiter::cancel_wait(int& res) noexcept {
    io_uring_sqe* sqe = ring_.next_sqe();  // room: the wait request was taken
    std::memset(sqe, 0, sizeof *sqe);
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->addr = wait_tag;
    sqe->user_data = cancel_tag;
    int e = 0;
    for (;;) {
        // A signal may cut this short too: enter again until the request is done.
        const long r = ring_.enter(1);
        if (r < 0 && r != -EINTR) {
            if (ring_.pending() > 0) ring_.unfill();
            e = int(r);
            break;
        }
        if (reap(res)) break;
    }
    std::memcpy(sqe, wait_sqe_, sizeof *sqe);  // taken by the kernel, or taken back: the slot is ours again
    return e;
}

std::unique_ptr<backend> make_io_uring_backend(std::error_code& ec) {
    auto b = std::make_unique<io_uring_backend>();
    last_refusal.clear();
    ec = b->init(last_refusal);
    if (ec) return nullptr;
    return b;
}

std::string io_uring_refusal() { return last_refusal; }

}  // namespace iowait::detail
