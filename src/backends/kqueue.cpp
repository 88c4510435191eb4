// kqueue: the readiness interface of macOS, FreeBSD, OpenBSD, NetBSD and
// DragonFly, and the automatic choice there. On Linux it can be built against
// libkqueue (CMake option IOWAIT_KQUEUE_PREFIX), which emulates kqueue over
// epoll; that build exists to run the conformance suite on this file.
//
// Mapping: read interest is an EVFILT_READ knote, write interest an
// EVFILT_WRITE knote, both level-triggered, with the token in kevent.udata.
// The kernel reports the two filters of one fd as two kevents; deliver() merges
// them into one Event per fd, in its one pass (see there). EV_EOF is hangup (EVFILT_READ: also readable,
// the read returns EOF at once); EV_EOF with a non-zero fflags (the socket's
// so_error, e.g. ECONNREFUSED) is error; EV_ERROR is error.
//
// Sources (backend::add_source): a child process is an EVFILT_PROC knote
// (NOTE_EXIT), which the kernel drops as it reports the exit, without
// reaping the child (kevent.data holds the status waitpid() will give). A
// signal is an EVFILT_SIGNAL knote, EV_CLEAR so that deliveries before one
// wait are one kevent, on FreeBSD, NetBSD, OpenBSD and DragonFly, whose
// kernels record every signal sent to the process or to one of its threads
// (tdsendsignal, kpsignal2, ptsignal, lwpsignal). Not on macOS: XNU's
// psignal_internal records a signal sent to the process, not one sent to a
// thread (raise(), pthread_kill(), the SIGPIPE of a write()), which rule G1
// must report; there the front end's handler serves signals, as on the
// other backends. A knote records a signal, it does not catch it: the
// front end's signal hub still installs its handler, so that the default
// action does not run (the BSDs record even an ignored signal, but SIG_IGN
// is no answer: an ignored SIGCHLD is not recorded and reaps the children).
// Both knotes stay enabled in every mode: the front end keeps a oneshot
// source's report for the modify() that re-arms it, so no kernel's way of
// re-enabling a knote matters. Timers stay in the front end, as deadlines
// the wait's own timeout ends at (sources.hpp): EVFILT_TIMER would add a
// kevent() to every watch, modify and unwatch and give nothing the wait's
// timespec does not, its clock and units differ between the BSDs (macOS
// coalesces timers with a leeway; older OpenBSD and NetBSD count in
// milliseconds only), re-arming a dispatched timer for a new mode
// restarts it off its grid (rule T6), and FreeBSD caps its timers for the
// whole system (kern.kq_calloutmax, 4096 by default).
//
// Each watch, modify and unwatch is one kevent() call carrying all of its
// changes. They are not deferred to the next wait's kevent() call, though
// kqueue allows it: a change must reach a wait already in progress (rule N3),
// and watch() must report EBADF itself, not a later wait. Every change asks
// for a receipt (EV_RECEIPT), so the kernel applies each one and answers for
// each one; that is how a failed change is rolled back exactly.
//
// Quirks handled here:
// - Regular files and directories: kqueue accepts them, but EVFILT_READ then
//   means "the offset is before the end of the file", so an empty file is
//   never readable. add() answers EPERM for them, as epoll does, and the
//   front end reports them always ready, as poll() and select() do (rule R8).
// - A pipe whose reader is gone is EV_EOF on EVFILT_WRITE with fflags 0 on
//   FreeBSD and macOS (filt_pipewrite), where poll() says POLLERR: the next
//   write fails with EPIPE. One fstat() on that rare path tells a FIFO from
//   a socket, so that it is reported as error, as on the other backends.
// - Closing a fd removes its knotes in the kernel, so a closed fd is never
//   reported and a reused number is never mistaken for the file that was
//   watched. modify() therefore first re-asserts a knote it already has,
//   without EV_ADD: EBADF if the fd was closed, ENOENT if the number now names
//   another file, and the front end is told so instead of a new knote being
//   created for a file nobody watched. unwatch() then gets EBADF or ENOENT,
//   which the front end accepts.
// - libkqueue (Linux) does not drop knotes when a fd is closed (its BUGS.md,
//   "If a file descriptor outside of kqueue is closed, the internal kqueue
//   state is not cleaned up"), so a stale knote would answer for a reused
//   number. There this backend keys by number, and the front end checks the
//   file's identity, as for poll.
// - libkqueue frees a kqueue's own fds and memory some time after close(),
//   in its monitoring thread, where a kernel frees them at once: an IOWait
//   destroyed (or refused for EMFILE) would seem to leak for a moment, and
//   an fd count taken then is wrong (rule X1). close_kqueue() waits for that
//   thread with libkqueue_drain_pending_close(), exported by libkqueue 2.7
//   but not declared in its header; a weak reference, so an older libkqueue
//   still links and keeps its asynchronous release.
// - libkqueue's EVFILT_SIGNAL is a signalfd underneath (its BUGS.md): it
//   sees a signal only where the signal is blocked in every thread, and it
//   blocks it in the registering thread for good. That is the limit
//   docs/behaviour.md (G1) gives for not using signalfd at all, so there
//   this backend declines signals and the front end's handler serves them
//   (IOWAIT_LIBKQUEUE_SIGNALS=1 makes it take them, for the one test that
//   blocks the signal everywhere: the native path run on Linux).
//   Its EVFILT_PROC is a pidfd, as the front end's own path on Linux.
// - kevent.udata holds the 64-bit token: void* on most systems, intptr_t on
//   NetBSD before 10; 32-bit systems are not supported (static_assert below).
// sys/types.h first: the BSDs' sys/event.h uses its types without including it.
#include <sys/types.h>

#include <fcntl.h>
#include <sys/event.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <type_traits>
#include <utility>

#include "backend.hpp"
#include "detail/sys_error.hpp"
#include "detail/unique_fd.hpp"

namespace iowait::detail {

namespace {

#ifdef __linux__
extern "C" void libkqueue_drain_pending_close() __attribute__((weak));
#endif

// Closes a kqueue and, under libkqueue, waits until its resources are gone (see the header).
void close_kqueue(unique_fd& kq) noexcept {
    kq.reset();
#ifdef __linux__
    if (libkqueue_drain_pending_close) libkqueue_drain_pending_close();
#endif
}

constexpr int initial_batch = 64;
// As for epoll: beyond this a bigger batch saves no system calls worth the memory.
constexpr int max_batch = 4096;

using udata_t = decltype(std::declval<struct kevent>().udata);
static_assert(sizeof(udata_t) >= sizeof(std::uint64_t),
              "the kqueue backend keeps a 64-bit token in kevent.udata: 64-bit systems only");

// NOLINTBEGIN(performance-no-int-to-ptr): kevent.udata is a pointer; the token an integer.
udata_t to_udata(std::uint64_t token) {
    if constexpr (std::is_pointer_v<udata_t>)
        return reinterpret_cast<udata_t>(std::uintptr_t(token));
    else
        return udata_t(token);
}
// NOLINTEND(performance-no-int-to-ptr)

std::uint64_t from_udata(udata_t u) {
    if constexpr (std::is_pointer_v<udata_t>)
        return std::uint64_t(reinterpret_cast<std::uintptr_t>(u));
    else
        return std::uint64_t(u);
}

// Each interest bit is one filter: read is EVFILT_READ, write is EVFILT_WRITE.
constexpr Interest both[] = {Interest::read, Interest::write};

auto filter_of(Interest bit) { return bit == Interest::read ? EVFILT_READ : EVFILT_WRITE; }

// How a mode is asked of kqueue: oneshot is EV_DISPATCH, not EV_ONESHOT,
// because a dispatched knote stays (disabled) until modify() re-enables it,
// so the probe in modify() still finds it and closing the fd still drops it.
unsigned mode_flags(Mode mode) {
    switch (mode) {
    case Mode::level: return 0;
    case Mode::oneshot: return EV_DISPATCH;
    case Mode::edge: return EV_CLEAR;
    }
    return 0;
}

Interest filter_bit(const struct kevent& ev) { return ev.filter == EVFILT_READ ? Interest::read : Interest::write; }

// One change for the kernel; with a receipt unless said otherwise (see apply()).
struct kevent change(int fd, Interest bit, unsigned flags, std::uint64_t token, bool receipt = true) {
    struct kevent ev {};
    ev.ident = decltype(ev.ident)(fd);
    ev.filter = decltype(ev.filter)(filter_of(bit));
    ev.flags = decltype(ev.flags)(flags | (receipt ? EV_RECEIPT : 0));
    ev.udata = to_udata(token);
    return ev;
}

// Whether EVFILT_SIGNAL serves signal sources (see the header).
bool native_signals() {
#if defined(__APPLE__)
    return false;  // it misses a signal sent to one thread
#elif defined(__linux__)
    static const bool asked = std::getenv("IOWAIT_LIBKQUEUE_SIGNALS") != nullptr;  // libkqueue's signalfd
    return asked;
#else
    return true;
#endif
}

#ifdef EVFILT_USER
struct kevent user_event(unsigned flags, unsigned fflags) {
    struct kevent ev {};
    ev.filter = EVFILT_USER;
    ev.flags = decltype(ev.flags)(flags);
    ev.fflags = decltype(ev.fflags)(fflags);
    return ev;
}
bool is_user(const struct kevent& ev) { return ev.filter == EVFILT_USER; }
#else
// Without EVFILT_USER (older OpenBSD) the front end's pipe wakes the wait.
bool is_user(const struct kevent&) { return false; }
#endif

unsigned from_kevent(const struct kevent& ev) {
    unsigned flags = 0;
    if (ev.flags & EV_ERROR) return error;
    const bool eof = ev.flags & EV_EOF;
    if (ev.filter == EVFILT_READ) {
        flags |= readable;
        if (eof) flags |= hangup;
    } else if (ev.filter == EVFILT_WRITE) {
        flags |= writable;
        if (eof) {
            struct stat st;
            const bool fifo = ::fstat(int(ev.ident), &st) == 0 && S_ISFIFO(st.st_mode);
            // A pipe's reader is gone: EPIPE; a socket can send no more: gone both ways.
            flags |= fifo ? error : hangup | write_closed;
        }
    }
    if (eof && ev.fflags != 0) flags |= error;
    return flags;
}

class kqueue_backend final : public backend {
public:
    explicit kqueue_backend(unique_fd kq) : kq_(std::move(kq)), batch_(initial_batch) {}
    ~kqueue_backend() override { close_kqueue(kq_); }
    kqueue_backend(const kqueue_backend&) = delete;
    kqueue_backend& operator=(const kqueue_backend&) = delete;

    Backend kind() const noexcept override { return Backend::kqueue; }
    bool supports(Mode) const noexcept override { return true; }
    bool native_oneshot() const noexcept override { return true; }

#ifdef __linux__
    // libkqueue keeps the knotes of a closed fd (see the header).
    bool keys_by_number() const noexcept override { return true; }
#endif

#ifdef EVFILT_USER
    // notify() through a user event: no pipe, and one kevent() per wake.
    // EV_CLEAR resets it as a wait returns it, so wakes before that merge.
    // Its ident lives apart from fds (user events have their own namespace).
    bool own_wake(std::uint64_t token) noexcept override {
        struct kevent ev = user_event(EV_ADD | EV_CLEAR, 0);
        ev.udata = to_udata(token);
        wake_token_ = token;
        return ::kevent(kq_.get(), &ev, 1, nullptr, 0, nullptr) == 0;
    }
    // The trigger carries the token again: a change to a knote replaces its
    // udata (libkqueue and FreeBSD both), so a trigger without it would
    // return the event with udata 0, which is no waker's token.
    void wake() noexcept override {
        struct kevent ev = user_event(0, NOTE_TRIGGER);
        ev.udata = to_udata(wake_token_);
        ::kevent(kq_.get(), &ev, 1, nullptr, 0, nullptr);  // fails only if own_wake() did, and then it is not called
    }
#endif

    status add_source(source_kind kind, std::int64_t ident, std::uint64_t token) noexcept override {
        if (kind == source_kind::signal && !native_signals()) return errc::unsupported_source;
        struct kevent ev = source_change(kind, ident, EV_ADD | EV_CLEAR);
        ev.fflags = kind == source_kind::process ? NOTE_EXIT : 0;
        ev.udata = to_udata(token);
        return apply(&ev, 1);
    }

    status remove_source(source_kind kind, std::int64_t ident) noexcept override {
        const struct kevent ev = source_change(kind, ident, EV_DELETE);
        return apply(&ev, 1);
    }

    status add(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept override {
        if (interest == Interest::none) return sys_error(EINVAL);  // the front end never asks for it
        struct stat st;
        if (::fstat(fd, &st) != 0) return last_error();
        if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) return sys_error(EPERM);
        try {
            if (std::size_t(fd) >= watched_.size()) watched_.resize(std::size_t(fd) + 1);
        } catch (const std::bad_alloc&) {
            return sys_error(ENOMEM);
        }
        struct kevent changes[2];
        int n = 0;
        for (Interest bit : both)
            if (has(interest, bit)) changes[n++] = change(fd, bit, EV_ADD | mode_flags(mode), token);
        int status[2];
        if (auto ec = apply(changes, n, status)) {
            take_back(changes, status, n);
            return ec;
        }
        watched_[fd] = {interest, mode, true, token};
        return {};
    }

    status modify(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept override {
        if (!watched(fd)) return sys_error(ENOENT);
        entry& now = watched_[fd];
        struct kevent changes[4];
        int n = 0;
        // First the probe: re-asserting, without EV_ADD, the state of a
        // knote we have fails if the kernel dropped it (EBADF: closed;
        // ENOENT: the number names another file now). No receipts in this
        // call: without an event list the kernel stops at the first
        // failure, so a failed probe applies nothing. (libkqueue also takes
        // EV_ENABLE|EV_RECEIPT for a change of the knote, which it refuses
        // for sockets.)
        const Interest probed = has(now.filters, Interest::read) ? Interest::read : Interest::write;
        changes[n++] = change(fd, probed, now.enabled ? EV_ENABLE : EV_DISABLE, now.token, false);
        if (interest == Interest::none) {
            // Disarmed: the knotes stay, so that closing the fd still drops
            // them and the probe above keeps working, but report nothing.
            for (Interest bit : both)
                if (has(now.filters, bit)) changes[n++] = change(fd, bit, EV_DISABLE, 0, false);
            if (::kevent(kq_.get(), changes, n, nullptr, 0, nullptr) != 0) return last_error();
            now.enabled = false;
            return {};
        }
        // EV_CLEAR and EV_DISPATCH are fixed when a knote is created (EV_ADD
        // on an existing knote leaves them, on every kqueue), so a new mode
        // means new knotes; a new token too (libkqueue refuses EV_ADD on an
        // existing read or write knote unless EV_CLEAR is set). An edge
        // watch gets new knotes on every modify() too: modify() re-arms it
        // (rule M3), so readiness already there must be reported once. A new
        // knote is checked as it is added, on every kqueue; an EV_CLEAR knote
        // kept and re-enabled need not be (libkqueue reports only later
        // edges then). That path probes first, then replaces the knotes with
        // receipts, so that a failure is undone exactly.
        if (mode != now.mode || token != now.token || mode == Mode::edge) {
            if (::kevent(kq_.get(), changes, n, nullptr, 0, nullptr) != 0) return last_error();
            return replace(fd, interest, mode, token);
        }
        // The common path, one call: additions, the only changes that can
        // fail once the probe has passed (ENOMEM), then re-enabling the
        // knotes kept (this re-arms a oneshot watch, EV_DISPATCH), then deletions.
        for (Interest bit : both)
            if (has(interest, bit) && !has(now.filters, bit))
                changes[n++] = change(fd, bit, EV_ADD | mode_flags(mode), token, false);
        for (Interest bit : both)
            if (has(interest, bit) && has(now.filters, bit) && bit != probed)
                changes[n++] = change(fd, bit, EV_ENABLE, token, false);
        for (Interest bit : both)
            if (!has(interest, bit) && has(now.filters, bit)) changes[n++] = change(fd, bit, EV_DELETE, 0, false);
        if (has(interest, probed)) changes[0].flags = decltype(changes[0].flags)(EV_ENABLE);
        if (::kevent(kq_.get(), changes, n, nullptr, 0, nullptr) != 0) {
            const std::error_code ec = last_error();
            // Only an addition can have taken effect: take it back.
            struct kevent added[2];
            int m = 0;
            for (Interest bit : both)
                if (has(interest, bit) && !has(now.filters, bit)) added[m++] = change(fd, bit, EV_DELETE, 0);
            apply(added, m);
            return ec;
        }
        record(now, interest, mode, token);
        return {};
    }

    status remove(native_handle fd) noexcept override {
        if (!watched(fd)) return sys_error(ENOENT);
        const entry old = std::exchange(watched_[fd], entry{});
        struct kevent changes[2];
        int n = 0;
        for (Interest bit : both)
            if (has(old.filters, bit)) changes[n++] = change(fd, bit, EV_DELETE, 0);
        // Receipts make the kernel try both deletions even if the first fails.
        return apply(changes, n);
    }

    status wait(const std::timespec* timeout, std::size_t& count) noexcept override {
        if (ready_ == int(batch_.size()) && batch_.size() < max_batch) {
            try {
                batch_.resize(batch_.size() * 2);  // the last batch came back full
            } catch (const std::bad_alloc&) {
                // Keep the smaller batch: the kernel rotates its ready list, so nothing starves.
            }
        }
        ready_ = ::kevent(kq_.get(), nullptr, 0, batch_.data(), int(batch_.size()), timeout);
        if (ready_ < 0) {
            ready_ = 0;
            return last_error();
        }
        count = std::size_t(ready_);
        return {};
    }

    // One pass over the batch. The two filters of one fd come as two
    // kevents: next to each other under libkqueue (one epoll event per fd),
    // in any order in a kernel (FreeBSD queues each knote as it fires). Two
    // neighbours with one token are merged here, and handed over as one
    // entry. An fd with a single filter has one kevent at most and takes the
    // sink's inline path; one with both, or with both since the last
    // deliver() (the batch was collected before modify() dropped one), takes
    // deliver_merging(), which merges entries that are not neighbours. A
    // source's kevent (EVFILT_SIGNAL, EVFILT_PROC) goes the fd's way at no
    // cost to it: its token names no fd, so the sink hands it to the front
    // end's slow path, which reads only the token.
    void deliver(event_sink& sink) noexcept override {
        std::uint64_t token = 0;
        unsigned flags = 0;
        bool pending = false;
        for (int i = 0; i < ready_; ++i) {
            const struct kevent& ev = batch_[std::size_t(i)];
            if (is_user(ev)) {  // notify(): not a fd
                sink.deliver(from_udata(ev.udata), 0);
                continue;
            }
            const std::uint64_t t = from_udata(ev.udata);
            if (pending && t == token) {
                flags |= from_kevent(ev);
                continue;
            }
            if (pending) hand_over(sink, token, flags);
            token = t;
            flags = from_kevent(ev);
            pending = true;
        }
        if (pending) hand_over(sink, token, flags);
        ++delivered_;
    }

    // ready_ stays until the next wait(), which grows the batch only then. (One
    // fd's two filters may straddle a full batch: the caller's second wait
    // brings the other.)
    bool batch_full() const noexcept override { return ready_ == int(batch_.size()); }

private:
    static struct kevent source_change(source_kind kind, std::int64_t ident, unsigned flags) {
        struct kevent ev {};
        ev.ident = decltype(ev.ident)(ident);
        ev.filter = decltype(ev.filter)(kind == source_kind::signal ? EVFILT_SIGNAL : EVFILT_PROC);
        ev.flags = decltype(ev.flags)(flags | EV_RECEIPT);
        return ev;
    }

    void hand_over(event_sink& sink, std::uint64_t token, unsigned flags) noexcept {
        const auto fd = std::size_t(std::uint32_t(token));
        const bool paired =
            fd < watched_.size() && (watched_[fd].filters == read_write || watched_[fd].paired_through > delivered_);
        if (paired)
            sink.deliver_merging(token, flags);
        else
            sink.deliver(token, flags);
    }

    // Applies n (at most 4) changes in one call and records, for each, 0 or
    // the errno in status; returns the first error. The receipts come back
    // in the order of the changes, each with EV_ERROR set and data 0 or the errno.
    std::error_code apply(const struct kevent* changes, int n, int* status) noexcept {
        if (n == 0) return {};
        struct kevent receipts[4];
        const int got = ::kevent(kq_.get(), changes, n, receipts, n, nullptr);
        const int failed = got < 0 ? errno : 0;  // the call itself: no change was applied
        std::error_code first;
        for (int i = 0; i < n; ++i) {
            if (failed)
                status[i] = failed;
            else
                status[i] = i < got && receipts[i].filter == changes[i].filter ? int(receipts[i].data) : EIO;
            if (status[i] != 0 && !first) first = sys_error(status[i]);
        }
        return first;
    }

    std::error_code apply(const struct kevent* changes, int n) noexcept {
        int status[4];
        return apply(changes, n, status);
    }

    // The knotes of one watched fd, as the kernel has them.
    struct entry {
        Interest filters = Interest::none;  // none: not watched
        Mode mode = Mode::level;
        bool enabled = true;  // false after modify(fd, Interest::none)
        std::uint64_t token = 0;
        // Had both filters until a modify() before deliver() number
        // paired_through: that batch may hold a kevent of each.
        std::uint64_t paired_through = 0;
    };
    static constexpr Interest read_write = Interest::read | Interest::write;

    // The knotes of a watch after modify(); see entry::paired_through.
    void record(entry& now, Interest interest, Mode mode, std::uint64_t token) noexcept {
        const bool had_both = now.filters == read_write || now.paired_through > delivered_;
        now = {interest, mode, true, token, had_both ? delivered_ + 1 : 0};
    }

    bool watched(native_handle fd) const {
        return std::size_t(fd) < watched_.size() && watched_[fd].filters != Interest::none;
    }

    // After a failed apply(): deletes the knotes that its EV_ADDs created.
    void take_back(const struct kevent* changes, const int* status, int n) noexcept {
        struct kevent added[4];
        int m = 0;
        for (int i = 0; i < n; ++i)
            if (status[i] == 0 && (changes[i].flags & EV_ADD))
                added[m++] = change(int(changes[i].ident), filter_bit(changes[i]), EV_DELETE, 0);
        apply(added, m);
    }

    // New knotes for a new mode or token; on failure the old ones come back.
    std::error_code replace(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept {
        entry& now = watched_[fd];
        struct kevent changes[4];
        int n = 0;
        for (Interest bit : both)
            if (has(now.filters, bit)) changes[n++] = change(fd, bit, EV_DELETE, 0);
        for (Interest bit : both)
            if (has(interest, bit)) changes[n++] = change(fd, bit, EV_ADD | mode_flags(mode), token);
        int status[4];
        const std::error_code ec = apply(changes, n, status);
        if (!ec) {
            record(now, interest, mode, token);
            return {};
        }
        take_back(changes, status, n);
        struct kevent restore[4];
        int m = 0;
        for (int i = 0; i < n; ++i)
            if (status[i] == 0 && (changes[i].flags & EV_DELETE)) {
                const unsigned disabled = now.enabled ? 0 : EV_DISABLE;
                restore[m++] = change(fd, filter_bit(changes[i]), EV_ADD | mode_flags(now.mode) | disabled, now.token);
            }
        apply(restore, m);
        return ec;
    }

    unique_fd kq_;
    std::vector<entry> watched_;  // by fd; under the front end's lock
    std::vector<struct kevent> batch_;
    int ready_ = 0;                 // entries of batch_ the last wait filled
    std::uint64_t wake_token_ = 0;  // own_wake()'s, for every trigger
    std::uint64_t delivered_ = 0;   // deliver() calls so far; under the front end's lock
};

}  // namespace

std::unique_ptr<backend> make_kqueue_backend(std::error_code& ec) {
    unique_fd kq(::kqueue());
    if (!kq) {
        ec = last_error();
        return nullptr;
    }
    // kqueue1(O_CLOEXEC) is not everywhere (macOS lacks it). A kqueue is not
    // inherited by fork() on the BSDs, but it is kept across exec().
    if (::fcntl(kq.get(), F_SETFD, FD_CLOEXEC) != 0) {
        ec = last_error();
        close_kqueue(kq);
        return nullptr;
    }
    return std::make_unique<kqueue_backend>(std::move(kq));
}

}  // namespace iowait::detail
