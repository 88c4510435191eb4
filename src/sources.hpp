// Signals, child processes and timers as sources in an IOWait, beside the
// fds, the same on every backend (docs/behaviour.md, "Sources").
//
// How, once for every backend:
// - timers live here, as deadlines on the monotonic clock: the front end
//   shortens the kernel wait to the next deadline (before_wait) and reports
//   the timers due after it (collect). No kernel timer object, so a timer
//   has the precision of the wait's own timeout on every backend.
// - signals: a sigaction handler (detail/signal_hub.hpp says why not
//   signalfd) counts each delivery and writes to this IOWait's signal waker,
//   a fd the backend watches like the notify() waker.
// - processes: a pidfd (Linux 5.3+) the backend watches; without pidfd, the
//   SIGCHLD of the signal hub marks the sources dirty and collect() asks
//   waitid(WNOHANG | WNOWAIT), which neither reaps nor blocks.
// - Windows: console control events stand for SIGINT and SIGBREAK
//   (signal_hub_windows.cpp), and a process's handle is waited on by the
//   thread pool (detail/process_wait.hpp); both write to the same waker, a
//   socket, which afd and wsapoll watch like any other.
// - natively, where the backend takes the source (backend::add_source:
//   kqueue's EVFILT_SIGNAL and EVFILT_PROC): the kernel reports it, and
//   only its bookkeeping stays here (modes, re-arming, what fired while
//   disarmed; for a signal the hub's handler still holds the disposition,
//   so that the default action does not run).
// Every internal fd goes to the backend with a token of source_generation,
// which no watch's token has, so its entries leave the sink's inline path
// for the front end's slow path: the fd path's cost is unchanged. A native
// source's token is its id with source_generation.
//
// Everything here runs under the front end's lock.
#pragma once

#include <cstdint>
#include <vector>

#include "backend.hpp"
#include "detail/status.hpp"
#include "detail/waker.hpp"
#include "iowait/iowait.hpp"

namespace iowait::detail {

class process_wait;

constexpr std::uint32_t source_generation = ~std::uint32_t(0);  // no watch has it

// A source id: native_handle(-2 - n) for the n-th source of an IOWait.
inline bool is_source_id(native_handle h) noexcept { return std::int64_t(std::intptr_t(h)) <= -2; }

class sources {
public:
    explicit sources(backend& be) noexcept : be_(be) {}
    ~sources();
    sources(const sources&) = delete;
    sources& operator=(const sources&) = delete;

    status watch_signal(int signo, std::uint64_t data, Mode mode, native_handle& id) noexcept;
    status watch_process(std::int64_t pid, std::uint64_t data, native_handle& id) noexcept;
    status watch_timer(std::int64_t first_ns, std::int64_t period_ns, std::uint64_t data, Mode mode,
                       native_handle& id) noexcept;
    // not_watched for an id this IOWait gave out and that is gone; bad_fd for
    // one it never gave out (as for any negative fd).
    status modify(native_handle id, Interest interest, std::uint64_t data, Mode mode) noexcept;
    status unwatch(native_handle id) noexcept;

    // An entry of the backend with source_generation, given the token's low
    // half: one of our fds is ready, or (a source id) a native source fired.
    void ready(std::uint32_t low) noexcept;
    // Whether the front end must call before_wait() (the lock before the
    // kernel wait): a timer is armed or something is already pending.
    bool need_before_wait() const noexcept { return dirty_ || armed_timers_ != 0; }
    // The longest the kernel may wait (ns; -1: no bound) given `remaining`.
    std::int64_t before_wait(std::int64_t remaining) noexcept;
    // At most how many Events collect() writes.
    std::size_t size() const noexcept { return list_.size(); }
    // Writes an Event for each source that fired; returns the next free place.
    Event* collect(Event* out) noexcept;

private:
    enum class kind : std::uint8_t { signal, process, timer };
    struct source {
        native_handle id;
        kind what;
        Mode mode;
        bool armed = true;
        bool native = false;  // signal, process: the backend's kernel watches it (add_source)
        bool fired = false;   // process: exited; timer (period 0): spent; native signal: not reported yet
        std::uint64_t data = 0;
        int signo = 0;            // signal
        std::uint64_t seen = 0;   // signal: the hub's count when last reported
        std::int64_t pid = 0;     // process
        int pidfd = -1;           // process: -1 where SIGCHLD and waitid() do it
        std::int64_t due = 0;     // timer: the next deadline (steady clock, ns)
        std::int64_t period = 0;  // timer: 0 for once

        // process, Windows: the thread pool's wait; null if it had exited at the watch
        process_wait* wait = nullptr;
    };
    source* find(native_handle id) noexcept;
    native_handle peek_id() const noexcept { return native_handle(-2 - std::intptr_t(issued_)); }
    native_handle next_id() noexcept { return native_handle(-2 - std::intptr_t(issued_++)); }
    status insert(source s) noexcept;
    // sources_windows.cpp: after the checks that are the same everywhere.
    status watch_process_windows(std::int64_t pid, std::uint64_t data, native_handle& id) noexcept;
    status use_waker() noexcept;            // signals_, made and watched by the first user
    status use_signal(int signo) noexcept;  // this IOWait's share of the hub
    void drop_signal(int signo) noexcept;
    status watch_native(source& s, backend::source_kind as, std::int64_t ident) noexcept;
    void drop_native(const source& s) noexcept;
    void count_timers() noexcept;
    void fire(source& s, Event*& out) noexcept;

    backend& be_;
    std::vector<source> list_;  // by id, newest last
    std::uint32_t issued_ = 0;
    bool dirty_ = false;  // something may have fired that no deadline says
    std::size_t armed_timers_ = 0;
    std::int64_t next_due_ = 0;  // the earliest deadline of an armed timer
    waker signals_;              // written by the hub's handler; on Windows by process waits too
    int place_ = -1;             // in the hub
    int signal_users_[65] = {};  // watches of each signal, internal SIGCHLD included
};

}  // namespace iowait::detail
