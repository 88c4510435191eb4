// io_uring: Linux's submission/completion rings (5.1+; this backend needs
// 5.13), used for readiness through IORING_OP_POLL_ADD requests.
//
// Mapping onto our model:
// - level and oneshot: a single-shot poll request per watched fd. It
//   completes once when the fd is ready (at once if it already is). The
//   kernel disarms it as it reports it, which is exactly oneshot
//   (native_oneshot). For level we re-arm it after each completion; the new
//   request checks readiness as it is armed, so a fd that stays ready is
//   reported by the next wait again.
// - edge: a multishot poll (IORING_POLL_ADD_MULTI, 5.13) without
//   IORING_POLL_ADD_LEVEL, which the kernel arms with EPOLLET: one
//   completion per wake-up of the file (new data, room again, hangup), and
//   one at arming if the fd is ready then. If the kernel ends a multishot
//   request (a CQE without IORING_CQE_F_MORE) we arm a new one.
// - Every change (watch, modify, unwatch's fallback, level re-arms) is queued
//   and written into the SQ by the waiting thread, which submits all of it
//   with its wait in one io_uring_enter: many changes, one system call.
// - One CQE per fd per wait: completions of one reap are merged by fd.
//
// Threading (see backend.hpp): add/modify/remove run under the front end's
// lock, possibly while another thread sleeps in wait(). Only wait() touches
// the SQ and CQ (the front end lets one thread wait at a time), so the rings
// have a single producer and a single consumer. add/modify/remove only change
// the table and the queue of pending requests, under this backend's own
// mutex, which wait() also takes to flush the queue and to reap; they never
// submit. A change made during a wait therefore needs the waiter woken
// (changes_need_wakeup), as with poll. Submitting only from the waiter also
// matters because the kernel cancels a thread's requests when that thread
// exits: a watch() from a short-lived thread must not own the poll request.
// Requests of a waiter thread that exited come back -ECANCELED and are
// re-armed by the next wait.
//
// Quirks handled here:
// - A poll request takes the fd number when it is submitted and holds a
//   reference to the file until it completes. So a number closed and reused
//   between two requests names another file, and a closed file stays open
//   while its request is armed. keys_by_number() makes the front end check
//   each reported fd's identity (one fstat, as for poll and select), which
//   drops closed and reused numbers; unwatch() cancels at once with
//   IORING_REGISTER_SYNC_CANCEL (6.0) so "unwatch, then close" releases the
//   file at close, as with epoll (before 6.0: at the next wait).
// - Regular files and directories have no wait queue: add() refuses them
//   with EPERM, as epoll does, and the front end treats them as always ready.
// - Timeouts: IORING_ENTER_EXT_ARG (5.11) takes a timespec, so nanoseconds,
//   and needs no timeout request in the ring. io_uring_enter answers ETIME
//   on timeout; EINTR goes back to the front end, which retries.
// - IOWAIT_IO_URING_SETUP_FAIL=EPERM or ENOSYS (for tests) makes ring setup
//   fail as a kernel that forbids or lacks io_uring would.
#include <poll.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>

#include "backend.hpp"
#include "backends/io_uring_ring.hpp"
#include "backends/poll_flags.hpp"
#include "backends/ready_list.hpp"
#include "detail/sys_error.hpp"

namespace iowait::detail {

namespace {

// 256 SQEs (16 KiB) take 256 changes per io_uring_enter; a bigger batch is
// flushed in several. The CQ is larger so that a wait in which every one of
// a few thousand fds completes does not overflow it (and if it does, NODROP
// keeps the overflow in the kernel until the next enter).
constexpr unsigned sq_size = 256;
constexpr unsigned cq_size = 4096;

// user_data: (sequence << 32) | fd for poll requests; removals are marked by
// the top bit and their completions ignored. Sequences are 31 bits and never
// 0; one wraps after 2^31 arms, far beyond the life of a stale completion.
constexpr std::uint64_t removal_mark = std::uint64_t(1) << 63;
std::uint64_t user_data(native_handle fd, std::uint32_t seq) { return std::uint64_t(seq) << 32 | std::uint32_t(fd); }

std::uint32_t to_poll(Interest interest) {
    std::uint32_t ev = 0;
    if (has(interest, Interest::read)) ev |= POLLIN | POLLRDHUP;
    if (has(interest, Interest::write)) ev |= POLLOUT;
    return ev;
}

struct watch_state {
    enum arm_t : std::uint8_t {
        idle,       // no poll request: oneshot fired, or disarmed (Interest::none)
        queued,     // a request waits in pending_ for the next wait()
        in_kernel,  // submitted, not yet completed
    };
    bool present = false;
    arm_t arm = idle;
    Mode mode = Mode::level;
    Interest interest = Interest::none;
    std::uint32_t seq = 0;  // of the current request; completions of older ones are stale
    std::uint64_t token = 0;
    std::uint32_t epoch = 0;  // the wait that last reported it, and where, to merge completions
    std::uint32_t out_index = 0;
    std::uint32_t completions = 0;  // of the current request
    bool trap = false;              // the current request is a multishot one waiting for a wake-up (see complete())
};

struct pending_op {
    native_handle fd;
    std::uint32_t seq;      // arm: the request to submit, if still current
    std::uint64_t removal;  // removal: user_data of the request to cancel (0: an arm)
};

class io_uring_backend final : public backend {
public:
    io_uring_backend() { pending_.reserve(sq_size); }

    // Not noexcept: the reason is a string (bad_alloc goes to the caller, as from make_unique).
    std::error_code init(std::string& why) {
        if (const char* fail = std::getenv("IOWAIT_IO_URING_SETUP_FAIL"); fail && *fail) {
            const int e = std::string_view(fail) == "ENOSYS" ? ENOSYS : EPERM;
            why = explain("io_uring_setup", e) + " [simulated: IOWAIT_IO_URING_SETUP_FAIL is set, for tests]";
            return sys_error(e);
        }
        const char* step = "";
        if (auto ec = ring_.setup(sq_size, cq_size, step)) {
            why = explain(step, ec.value());
            return ec;
        }
        skip_removal_cqes_ = ring_.features() & IORING_FEAT_CQE_SKIP;  // 5.17
        return {};
    }

    Backend kind() const noexcept override { return Backend::io_uring; }
    bool supports(Mode) const noexcept override { return true; }
    bool native_oneshot() const noexcept override { return true; }
    bool keys_by_number() const noexcept override { return true; }
    bool changes_need_wakeup() const noexcept override { return true; }

    status add(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept override {
        struct stat st;
        if (::fstat(fd, &st) != 0) return last_error();
        if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) return sys_error(EPERM);
        std::lock_guard lock(mu_);
        try {
            if (std::size_t(fd) >= table_.size()) table_.resize(std::size_t(fd) + 1);
        } catch (const std::bad_alloc&) {
            return sys_error(ENOMEM);
        }
        if (!room_for(1)) return sys_error(ENOMEM);
        watch_state& w = table_[fd];
        if (w.present) return sys_error(EEXIST);
        w.present = true;
        w.arm = watch_state::idle;
        w.mode = mode;
        w.interest = interest;
        w.token = token;
        if (interest != Interest::none) arm(fd, w);
        return {};
    }

    status modify(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept override {
        std::lock_guard lock(mu_);
        if (std::size_t(fd) >= table_.size() || !table_[fd].present) return sys_error(ENOENT);
        if (!room_for(2)) return sys_error(ENOMEM);
        watch_state& w = table_[fd];
        w.token = token;  // the token lives here, not in the kernel: changing it costs nothing
        // A level request already armed for the same events stays. (Oneshot
        // and edge are re-armed, as epoll's EPOLL_CTL_MOD re-checks readiness.)
        if (w.arm != watch_state::idle && w.interest == interest && w.mode == mode && mode == Mode::level) return {};
        disarm(fd, w);
        w.mode = mode;
        w.interest = interest;
        if (interest != Interest::none) arm(fd, w);
        return {};
    }

    status remove(native_handle fd) noexcept override {
        std::lock_guard lock(mu_);
        if (std::size_t(fd) >= table_.size() || !table_[fd].present) return sys_error(ENOENT);
        watch_state& w = table_[fd];
        if (w.arm == watch_state::in_kernel) {
            // Cancel now, so that the request's reference to the file is gone
            // when unwatch() returns; its completion, if any, is stale.
            // Without room to queue the removal (no memory), the request
            // lingers until it completes; its completion is stale then.
            if (!cancel_now(user_data(fd, w.seq)) && room_for(1))
                pending_.push_back({fd, 0, removal_mark | user_data(fd, w.seq)});
        }
        w.present = false;
        w.arm = watch_state::idle;
        return {};
    }

    status wait(const std::timespec* timeout, std::size_t& count) noexcept override {
        std::vector<ready>& out = ready_;
        out.clear();
        bool all_submitted;
        {
            std::lock_guard lock(mu_);
            if (auto ec = flush()) return ec;
            all_submitted = pending_.empty();
        }
        // Requests left behind (the kernel took no more SQEs) may be the ones
        // that would end this wait: do not sleep; the front end calls again.
        const bool poll_only = !all_submitted || (timeout && timeout->tv_sec == 0 && timeout->tv_nsec == 0);
        const auto entered = std::chrono::steady_clock::now();
        std::error_code ec = ring_.enter(poll_only ? 0 : 1, timeout);
        if (ec.value() == ETIME || ec.value() == EBUSY) ec = {};  // a timeout; a CQ overflow that the reap below drains
        std::lock_guard lock(mu_);
        ++epoch_;
        const std::size_t first = out.size();
        level_checks_.clear();
        level_out_.clear();
        std::size_t reaped = 0;
        ring_.reap([&](const io_uring_cqe& cqe) {
            ++reaped;
            complete(cqe, out);
        });
        recheck_level(out, first);
        // A full CQ may have left completions in the kernel's overflow list,
        // and requests not yet submitted may be of ready fds: more may be ready.
        full_ = reaped >= cq_size || !all_submitted;
        // An enter that submitted requests returns their count even when a
        // signal or its timeout cut its wait short. With no error, no
        // completion and time left, it was a signal: say so, so that
        // wait_or_signal() (Python's signal handlers) sees EINTR as with epoll.
        if (!ec && !poll_only && reaped == 0) {
            const bool timed_out =
                timeout && std::chrono::steady_clock::now() - entered >=
                               std::chrono::seconds(timeout->tv_sec) + std::chrono::nanoseconds(timeout->tv_nsec);
            if (!timed_out) ec = sys_error(EINTR);
        }
        count = out.size();
        return ec;  // EINTR included: the front end retries it
    }

    void deliver(event_sink& sink) noexcept override { deliver_list(ready_, sink); }
    bool batch_full() const noexcept override { return full_; }

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
        if (e == EOPNOTSUPP) return why + " (the kernel is too old: this backend needs Linux 5.13)";
        return why;
    }

    std::uint32_t next_seq() noexcept {
        seq_ = (seq_ + 1) & 0x7fff'ffff;
        if (seq_ == 0) seq_ = 1;
        return seq_;
    }

    // Queues a new poll request for the watch; capacity was reserved by the caller.
    void arm(native_handle fd, watch_state& w, bool trap = false) noexcept {
        w.trap = trap;
        w.seq = next_seq();
        w.arm = watch_state::queued;
        w.completions = 0;
        pending_.push_back({fd, w.seq, 0});
    }

    // The watch's request, if any, stops counting; one in the kernel is cancelled
    // with the next submission (its completion, if it beats the cancel, is stale).
    void disarm(native_handle fd, watch_state& w) noexcept {
        if (w.arm == watch_state::in_kernel) pending_.push_back({fd, 0, removal_mark | user_data(fd, w.seq)});
        w.seq = next_seq();  // a queued request is skipped by flush()
        w.arm = watch_state::idle;
    }

    // IORING_REGISTER_SYNC_CANCEL (6.0); false where the kernel lacks it.
    bool cancel_now(std::uint64_t target) noexcept {
        if (no_sync_cancel_) return false;
        io_uring_sync_cancel_reg reg{};
        reg.addr = target;
        reg.fd = -1;
        // A poll request is cancelled at once; the bound only guards against
        // a kernel that would wait for the owner thread's task work.
        reg.timeout.tv_sec = 0;
        reg.timeout.tv_nsec = 100'000'000;
        if (::syscall(SYS_io_uring_register, ring_.fd(), IORING_REGISTER_SYNC_CANCEL, &reg, 1) == 0) return true;
        if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
            no_sync_cancel_ = true;
            return false;
        }
        return true;  // ENOENT, EALREADY, ETIME: completed or on its way; the completion is stale
    }

    // Writes the queued requests into the SQ, submitting early when it fills.
    std::error_code flush() noexcept {
        std::size_t done = 0;
        for (; done < pending_.size(); ++done) {
            const pending_op& op = pending_[done];
            watch_state* w = nullptr;
            if (!op.removal) {
                w = &table_[op.fd];
                if (!w->present || w->seq != op.seq || w->arm != watch_state::queued) continue;  // superseded
            }
            io_uring_sqe* sqe = ring_.get_sqe();
            if (!sqe) {
                if (auto ec = ring_.enter(0, nullptr); ec && ec != std::errc::interrupted) {
                    pending_.erase(pending_.begin(), pending_.begin() + std::ptrdiff_t(done));
                    return ec;
                }
                sqe = ring_.get_sqe();
                if (!sqe) {  // the kernel took nothing (EBUSY): keep the rest for the next wait
                    pending_.erase(pending_.begin(), pending_.begin() + std::ptrdiff_t(done));
                    return {};
                }
            }
            if (op.removal) {
                sqe->opcode = IORING_OP_POLL_REMOVE;
                sqe->fd = -1;
                sqe->addr = op.removal & ~removal_mark;
                sqe->user_data = removal_mark;
                if (skip_removal_cqes_) sqe->flags = IOSQE_CQE_SKIP_SUCCESS;
            } else {
                sqe->opcode = IORING_OP_POLL_ADD;
                sqe->fd = op.fd;
                // poll32_events is in host order on little-endian machines;
                // the kernel swaps halfwords on big-endian ones.
                sqe->poll32_events = to_poll(w->interest);
                if (w->mode == Mode::edge || w->trap) sqe->len = IORING_POLL_ADD_MULTI;
                sqe->user_data = user_data(op.fd, op.seq);
                w->arm = watch_state::in_kernel;
            }
        }
        pending_.clear();
        return {};
    }

    void complete(const io_uring_cqe& cqe, std::vector<ready>& out) noexcept {
        if (cqe.user_data & removal_mark) return;  // ENOENT: the request had completed already
        const auto fd = native_handle(std::uint32_t(cqe.user_data));
        const auto seq = std::uint32_t(cqe.user_data >> 32);
        if (std::size_t(fd) >= table_.size()) return;
        watch_state& w = table_[fd];
        if (!w.present || w.seq != seq || w.arm != watch_state::in_kernel) return;  // stale
        const bool more = cqe.flags & IORING_CQE_F_MORE;
        if (!more) w.arm = watch_state::idle;
        unsigned flags;
        if (cqe.res >= 0) {
            // io_uring adds EPOLLRDHUP (and ERR, HUP, NVAL) to every poll
            // request's mask, asked for or not (IO_POLL_UNMASK, io_uring/poll.c);
            // epoll and poll() report RDHUP only to a read watch. Drop what
            // was not asked for. (Found by fuzz/fuzz_backends.cpp.)
            const auto res = std::uint32_t(cqe.res) & (to_poll(w.interest) | POLLERR | POLLHUP | POLLNVAL);
            if (res == 0) {
                // Completed for that alone: a socket whose reading side is shut
                // down completes every request at once, so re-arming would spin.
                // Wait for the file's next wake-up with a multishot request (a
                // trap) instead: it completes at arming for the same reason,
                // once, and then only on wake-ups.
                if (!more && w.interest != Interest::none) arm_reserved(fd, w, true);
                return;
            }
            flags = (res & POLLNVAL) ? closed : from_poll(res);
        } else if (cqe.res == -EBADF) {
            flags = closed;  // closed before the request was submitted
        } else if (cqe.res == -ECANCELED || cqe.res == -ENOMEM || cqe.res == -EAGAIN || cqe.res == -EINTR) {
            // Cancelled by the exit of the thread that submitted it, or a
            // passing shortage: arm again, report nothing.
            if (!more && w.interest != Interest::none) arm_reserved(fd, w);
            return;
        } else {
            // Anything else would fail again at once: report it as an error
            // and leave the watch idle, not re-armed, so no wait spins on it.
            report(w, error, out);
            return;
        }
        const std::size_t entries = out.size();
        report(w, flags, out);
        if (out.size() > entries && w.mode != Mode::oneshot && !w.trap && !(flags & closed) && room_for_check()) {
            level_checks_.push_back({fd, short(to_poll(w.interest)), 0});
            level_out_.push_back(std::uint32_t(entries));
        }
        if (w.trap) {
            // The trap caught a real event. Level goes back to single-shot
            // requests, re-checked at every wait; oneshot is spent.
            if (more && room_for(1)) disarm(fd, w);
            w.trap = false;
            if (w.mode == Mode::level && !(flags & closed) && w.interest != Interest::none) arm_reserved(fd, w);
            return;
        }
        // A multishot request that ends on its first completion polls a file
        // with no wait queue (a character device without poll, such as
        // /dev/null): always ready, no edges after the first, and a new
        // request would end the same way at every wait. Leave it idle.
        const bool no_wait_queue = w.mode == Mode::edge && !more && w.completions == 0;
        ++w.completions;
        if (!more && !(flags & closed) && !no_wait_queue && w.mode != Mode::oneshot && w.interest != Interest::none)
            arm_reserved(fd, w);
    }

    // A completion says the fd was ready when it completed, which may be long
    // before this wait: the program may have read the data since. And a
    // wake-up completes a request with the one event that woke it (POLLIN
    // for new data), where epoll reports all the fd's readiness. epoll
    // re-polls each fd as it reports it, so level and edge watches here ask
    // poll() once more, one call for all of them, and report what is true
    // now (found by the differential fuzzer: fuzz/corpus/regression-io-uring-*).
    // Level requests are re-armed and edge ones are multishot whatever this
    // finds, so dropping one loses nothing. A oneshot request is spent: it is
    // reported as it came.
    void recheck_level(std::vector<ready>& out, std::size_t first) noexcept {
        if (level_checks_.empty()) return;
        for (pollfd& p : level_checks_) p.revents = 0;
        if (::poll(level_checks_.data(), level_checks_.size(), 0) < 0) return;  // keep what the ring said
        for (std::size_t i = 0; i < level_checks_.size(); ++i) {
            const pollfd& p = level_checks_[i];
            if (level_out_[i] >= out.size()) continue;  // report() could not store it
            out[level_out_[i]].flags =
                from_poll(std::uint32_t(p.revents) & std::uint32_t(p.events | POLLERR | POLLHUP | POLLNVAL));
        }
        // Drop the entries that are no longer ready.
        auto keep =
            std::remove_if(out.begin() + std::ptrdiff_t(first), out.end(), [](const ready& r) { return r.flags == 0; });
        out.erase(keep, out.end());
    }

    // arm() from wait(); in the steady state pending_ has the room already.
    void arm_reserved(native_handle fd, watch_state& w, bool trap = false) noexcept {
        if (room_for(1))
            arm(fd, w, trap);
        else
            w.arm = watch_state::idle;  // out of memory: the watch stays idle until modify()
    }

    // Room for n more pending requests, growing geometrically (reserve(size + 1)
    // each time would reallocate on every call).
    bool room_for(std::size_t n) noexcept {
        if (pending_.size() + n <= pending_.capacity()) return true;
        try {
            pending_.reserve(std::max(pending_.capacity() * 2, pending_.size() + n));
        } catch (const std::bad_alloc&) {
            return false;
        }
        return true;
    }

    bool room_for_check() noexcept {
        try {
            level_checks_.reserve(level_checks_.size() + 1);
            level_out_.reserve(level_out_.size() + 1);
        } catch (const std::bad_alloc&) {
            return false;
        }
        return true;
    }

    void report(watch_state& w, unsigned flags, std::vector<ready>& out) noexcept {
        if (w.epoch == epoch_ && w.out_index < out.size() && out[w.out_index].token == w.token) {
            out[w.out_index].flags |= flags;  // a second completion of a multishot request
            return;
        }
        try {
            out.push_back({w.token, flags});
        } catch (const std::bad_alloc&) {
            return;
        }
        w.epoch = epoch_;
        w.out_index = std::uint32_t(out.size() - 1);
    }

    uring_ring ring_;
    std::mutex mu_;                   // guards table_, pending_ and the cancel flag against add/modify/remove
    std::vector<watch_state> table_;  // indexed by fd
    std::vector<pending_op> pending_;
    std::vector<pollfd> level_checks_;      // level completions of this wait, re-polled (recheck_level)
    std::vector<std::uint32_t> level_out_;  // their places in `out`
    std::uint32_t seq_ = 0;
    std::uint32_t epoch_ = 0;
    bool skip_removal_cqes_ = false;
    bool no_sync_cancel_ = false;
    std::vector<ready> ready_;  // what the last wait gathered, for deliver()
    bool full_ = false;         // see batch_full(); only the waiting thread touches it
};

// Why the last make_io_uring_backend() of this thread failed.
thread_local std::string last_refusal;

}  // namespace

std::unique_ptr<backend> make_io_uring_backend(std::error_code& ec) {
    auto b = std::make_unique<io_uring_backend>();
    last_refusal.clear();
    ec = b->init(last_refusal);
    if (ec) return nullptr;
    return b;
}

std::string io_uring_refusal() { return last_refusal; }

}  // namespace iowait::detail
