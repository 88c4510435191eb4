// The internal interface every backend implements, and its contract.
//
// The front end (src/front_end.hpp, .cpp) owns everything that is the same for all
// backends: argument checks, the fd -> registration table and user data, the
// always-ready list for files a kernel refuses to poll, the waker behind
// notify(), EINTR and the remaining timeout, the closed-fd rules. A backend
// only translates interest changes and one kernel wait into ready entries.
//
// Contract:
// - add/modify/remove are called with the front end's lock held, never
//   concurrently with each other; wait() is called without it, by one thread
//   at a time, possibly while another thread calls add/modify/remove.
//   A backend whose kernel set cannot change during a wait (poll, select)
//   says so with changes_need_wakeup(); the front end then wakes the waiter,
//   which calls wait() again and so picks up the change.
// - token is opaque to the backend: it stores it and hands it back with each
//   entry it delivers for that fd.
// - One wait is two calls, one system call and one pass. wait() makes the
//   kernel wait, without the lock, keeps the kernel's batch inside the
//   backend, and sets count to an upper bound of the entries deliver() will
//   hand over (the front end reserves that much room, so the pass never
//   checks capacity). It returns EINTR unchanged (the front end retries) and
//   never throws; a null timeout blocks. Then, with the lock held, deliver()
//   walks that batch once, handing each entry to the sink as it goes:
//   sink.deliver(token, flags) (at most one entry per fd per batch) or
//   sink.deliver_merging() where the kernel may answer twice for one fd,
//   and sink.closed(token) for a fd the kernel says is no longer open. The
//   sink does the front end's per-event work inline (generation, interest,
//   oneshot, closed-fd rules) and writes the caller's Event directly: no
//   intermediate vector between the kernel's answer and the caller.
//   The sink may call back modify(fd, Interest::none, ...) (emulated
//   oneshot) and remove(fd) (closed fd) during deliver(): a backend's pass
//   must not walk a structure those change.
// - epoll and io_uring, whose changes and batch are an epoll set's
//   (epoll_set_of()), are the exception for speed: the front end calls the
//   set's add/modify/remove and makes the pass over its batch itself, inline
//   (src/front_end.hpp, pass_epoll), epoll's no-timeout and zero waits and
//   io_uring's no-timeout wait (uring_waiter_of()) too, and the common watch
//   is one EPOLL_CTL_ADD on the set's fd; their add/modify/remove/deliver
//   must stay exactly the set's.
// - Errors are errno values in the generic category, or iowait::errc values.
//   add() returns errc-like `not_pollable` (EPERM) for a file the kernel
//   refuses to poll (epoll and regular files); the front end then treats the
//   fd as always ready, as poll() and select() do.
// - Modes: add/modify get the watch's Mode; they are only called with modes
//   supports() accepts (level, always). For oneshot, a backend whose kernel
//   disarms by itself says native_oneshot(); otherwise the front end disarms
//   after each report with modify(fd, Interest::none, ...), which every
//   backend must accept: the fd stays registered and nothing, not even a
//   hangup or error, is reported until the next modify().
// - Sources (sources.hpp): by default the front end makes each signal and
//   process source of its own, through fds it hands to add() like any other.
//   A kernel that watches one itself (kqueue's EVFILT_SIGNAL, EVFILT_PROC)
//   takes it in add_source(); everything else (modes, re-arming, what
//   fired while disarmed, the signal's disposition) stays in the front end.
#pragma once

#include <ctime>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "detail/status.hpp"
#include "event_sink.hpp"
#include "iowait/iowait.hpp"

namespace iowait::detail {

// One watch as the front end has it, for backend::rebuild(): a disarmed
// watch comes as Interest::none, Mode::oneshot. gone: set by the backend
// when the fd no longer names the file that was watched.
struct rewatch {
    native_handle fd;
    Interest interest;
    Mode mode;
    std::uint64_t token;
    bool gone = false;
};

class epoll_set;     // src/backends/epoll_set.hpp (Linux)
class uring_waiter;  // src/backends/uring_waiter.hpp (Linux)

class backend {
public:
    virtual ~backend() = default;
    virtual Backend kind() const noexcept = 0;
    virtual status add(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept = 0;
    virtual status modify(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept = 0;
    // The fd may be closed already or its number reused: forget it anyway.
    virtual status remove(native_handle fd) noexcept = 0;
    // The kernel wait; count: at most how many entries deliver() will hand over.
    virtual status wait(const ::timespec* timeout, std::size_t& count) noexcept = 0;
    // With the front end's lock held, after a wait() that succeeded: the
    // kernel's batch to the sink, in one pass.
    virtual void deliver(event_sink& sink) noexcept = 0;
    // True when the last wait() filled the whole batch the kernel was given
    // (epoll, kqueue, io_uring's CQ, afd's entries), so that more fds may be
    // ready than it delivered; false where one wait sees every ready fd (poll,
    // select, wsapoll). Read by the waiting thread after wait(), until the next wait().
    virtual bool batch_full() const noexcept { return false; }
    // True when the kernel keys watches by fd number and cannot tell a reused
    // number from the file that was watched (poll, select): the front end then
    // checks the file's identity before it reports an event.
    virtual bool keys_by_number() const noexcept { return false; }
    // Level always; oneshot always (see native_oneshot); edge only where the
    // kernel reports transitions (EPOLLET, EV_CLEAR), never emulated.
    virtual bool supports(Mode mode) const noexcept { return mode != Mode::edge; }
    // True when the kernel disarms a oneshot watch as it reports it.
    virtual bool native_oneshot() const noexcept { return false; }
    // True when add/modify/remove reach a wait() in progress only after it is
    // woken and called again.
    virtual bool changes_need_wakeup() const noexcept { return false; }
    // A backend that can wake its own wait() (kqueue's EVFILT_USER) arms that
    // wake-up here, once, and returns true: the front end then creates no
    // waker fd and notify() calls wake(), from any thread (not from a signal
    // handler). wake() makes the wait() in progress, or the next one, return
    // one entry with `token`; wakes before that entry is returned merge into it.
    virtual bool own_wake(std::uint64_t /*token*/) noexcept { return false; }
    virtual void wake() noexcept {}
    // Called with the front end's lock held right before each wait(): where
    // a backend waits on a copy of its set, this is where it takes the copy.
    virtual void before_wait() noexcept {}
    // False for a backend whose before_wait() does nothing, so that the front
    // end can skip taking its lock for it (one lock per wait instead of two).
    virtual bool needs_before_wait() const noexcept { return true; }
    // True where a kernel entry can outlive its watch: epoll keys its entries
    // by (open file, fd number), so a watched number closed while a dup()
    // keeps the file open stays in the set, where EPOLL_CTL_DEL on the closed
    // number cannot reach it, and reports for no watch (a busy loop if it is
    // ready). The sink's slow path sees such stale entries; when they come
    // back in consecutive waits, the front end calls rebuild() with every
    // watch it has (the waker and the sources' fds included): the backend
    // makes a fresh kernel set of those still naming the file they were made
    // for, marks the others gone, and drops the old set with the stale
    // entries in it (libev does the same). Called with the lock held, from inside
    // deliver(): it must not touch the batch deliver() walks. On failure the
    // old set stays as it was.
    virtual bool keeps_stale_entries() const noexcept { return false; }
    // A signal (ident: its number) or a child process (ident: its pid, for
    // its exit) the kernel reports itself: each time it fires, deliver()
    // hands over one entry with `token` (at most one per source per batch),
    // whose generation is source_generation, so that it takes the sink's
    // slow path. A process is reported once and then dropped by the kernel.
    // errc::unsupported_source (the default): the front end does it itself.
    // remove_source() may find it gone already (ENOENT: a process reported).
    enum class source_kind : std::uint8_t { signal, process };
    virtual status add_source(source_kind /*kind*/, std::int64_t /*ident*/, std::uint64_t /*token*/) noexcept {
        return errc::unsupported_source;
    }
    virtual status remove_source(source_kind /*kind*/, std::int64_t /*ident*/) noexcept { return {}; }
    virtual status rebuild(std::span<rewatch> /*watches*/) noexcept { return {}; }
    // The epoll set behind a backend whose add/modify/remove are exactly the
    // set's and whose deliver() is exactly the set's pass (epoll, io_uring),
    // asked once: the front end then makes those calls itself, inline, with
    // no virtual call per change or per wait. Null for every other backend.
    virtual epoll_set* epoll_set_of() noexcept { return nullptr; }
    // io_uring's wait, for the front end to make its common case inline too.
    virtual uring_waiter* uring_waiter_of() noexcept { return nullptr; }
};

// Each returns null when the kernel refuses the backend, with the reason in ec.
std::unique_ptr<backend> make_epoll_backend(std::error_code& ec);
std::unique_ptr<backend> make_poll_backend(std::error_code& ec);
std::unique_ptr<backend> make_select_backend(std::error_code& ec);
std::unique_ptr<backend> make_io_uring_backend(std::error_code& ec);
// Why this thread's last make_io_uring_backend() failed, in words, for the
// usage_error of IOWait{Backend::io_uring}.
std::string io_uring_refusal();
// Why this thread's last make_select_backend() failed, if it was its own
// wake-up fd's number (see select_waker_refusal); empty otherwise.
std::string select_refusal();
constexpr const char* select_waker_refusal =
    "its own wake-up fd could not be placed below FD_SETSIZE, which select() cannot watch above: "
    "every fd number below it is open";
std::unique_ptr<backend> make_kqueue_backend(std::error_code& ec);
std::unique_ptr<backend> make_afd_backend(std::error_code& ec);
std::unique_ptr<backend> make_wsapoll_backend(std::error_code& ec);

}  // namespace iowait::detail
