// afd: the Windows backend of choice. Readiness of sockets straight from
// the AFD driver, the kernel side of Winsock, with completions through an I/O
// completion port: no per-wait rebuild of the set, any number of sockets.
// The mechanism of wepoll, mio, Rust's polling and libuv; written here from
// the driver's interface (afd_ntapi.hpp), not from their code.
//
// Mapping: one handle on \Device\Afd, associated with one completion port.
// Each watched socket has at most one live IOCTL_AFD_POLL request (a poll_op)
// for its interest; the request completes, through the port, when one of its
// events is true, and is then spent. wait() is one GetQueuedCompletionStatusEx
// into entries_, without any lock but its own around waiting_; deliver(),
// under the front end's lock, walks those completions once: each hands its
// verdict to the sink, returns its poll_op to the pool and queues the watch
// for renewal, all into storage reserved beforehand (no allocation).
// - Level: a socket whose request completed is asked again at the start of
//   the next wait (before_wait), not at once: asked at once, its answer could
//   be stale by the next wait (the program may have read the data meanwhile).
// - Oneshot: native (native_oneshot()): a spent request is simply not renewed
//   until modify(). Edge: refused; AFD reports states, not transitions.
// - A request answers with the state when it completes, which may be stale
//   by the time a wait dequeues it: one issued at watch() for read|write
//   completes at once with "writable" only, and data that arrives before the
//   wait is not in it. So requests are issued in before_wait(), right before
//   the kernel wait; add/modify issue at once only while a wait is in
//   progress (so that they reach it without waking it). A request that
//   completed between two waits still reports what was true then: if the
//   program consumed that readiness meanwhile, one spurious event follows.
// - notify(): a completion posted to the port (own_wake()), merged while
//   one is pending.
//
// Quirks handled here:
// - A cancelled request still completes (STATUS_CANCELLED) and the kernel
//   writes its result into the poll_op: a poll_op is never freed while in
//   flight. modify()/remove() mark it stale (owner = null) and it returns
//   to the pool when its completion arrives; the destructor cancels all and
//   waits for them.
// - AFD polls the base socket, not a layered (LSP) handle: SIO_BASE_HANDLE.
// - Wine 8 answers SIO_BASE_HANDLE for any handle, even a file: a socket is
//   recognised by getsockopt(SO_TYPE) first, so a file is ENOTSOCK as on
//   Windows.
// - Closing a watched socket completes its request with AFD_POLL_LOCAL_CLOSE
//   (measured under Wine); a request for a socket already closed fails at
//   once with STATUS_INVALID_HANDLE. Both are reported as `closed`.
// - Hangup: AFD_POLL_DISCONNECT is the peer's FIN (close or shutdown(SD_SEND)),
//   AFD_POLL_ABORT a reset; both are asked for with any interest, so a write
//   watch learns of a closed peer too. A refused connect is AFD_POLL_CONNECT_FAIL.
// - The driver's requests are tied to the port, not to the thread that issued
//   them, so a thread that watches and exits does not cancel them (Vista+).
//
// Handles that are not sockets (pipes, console input, waitable objects) go
// to a handle_set (handles_windows.hpp), whose waits wake this one with a
// completion of their own key, merged while one is pending.
#include <atomic>
#include <mutex>
#include <unordered_map>

#include "backend.hpp"
#include "backends/afd_ntapi.hpp"
#include "backends/handles_windows.hpp"
#include "detail/winsock.hpp"

#ifndef SIO_BASE_HANDLE
#define SIO_BASE_HANDLE 0x48000022
#endif
#ifndef SIO_BSP_HANDLE_POLL
#define SIO_BSP_HANDLE_POLL 0x4800001D
#endif

namespace iowait::detail {

namespace {

constexpr ULONG_PTR poll_key = 0;     // completions of the AFD handle
constexpr ULONG_PTR wake_key = 1;     // completions posted by wake()
constexpr ULONG_PTR handles_key = 2;  // completions posted by the handle set's waits

struct watch;

// One IOCTL_AFD_POLL request; the kernel owns it until its completion is dequeued.
struct poll_op {
    IO_STATUS_BLOCK iosb;
    afd::poll_info info;
    watch* owner;  // null once stale: cancelled by modify() or remove()
};

struct watch {
    SOCKET base;
    ULONG events;  // what requests ask for; 0: disarmed
    bool oneshot;
    std::uint64_t token;
    poll_op* op = nullptr;  // the live request, if any
    bool queued = false;    // in to_arm_
};

ULONG to_afd(Interest interest) {
    if (interest == Interest::none) return 0;
    ULONG ev = afd::poll_disconnect | afd::poll_abort | afd::poll_connect_fail | afd::poll_local_close;
    if (has(interest, Interest::read)) ev |= afd::poll_receive | afd::poll_accept;
    if (has(interest, Interest::write)) ev |= afd::poll_send;
    return ev;
}

// A completed request's events as ready flags. AFD_POLL_LOCAL_CLOSE (the
// socket was closed under its request) is the caller's to check first.
unsigned from_afd(ULONG ev) {
    unsigned flags = 0;
    if (ev & (afd::poll_receive | afd::poll_accept | afd::poll_receive_expedited)) flags |= readable;
    if (ev & afd::poll_send) flags |= writable;
    if (ev & (afd::poll_disconnect | afd::poll_abort)) flags |= hangup;
    if (ev & afd::poll_abort) flags |= write_closed;  // a disconnect alone is the peer's shutdown of its sending
    if (ev & (afd::poll_abort | afd::poll_connect_fail)) flags |= error;
    return flags;
}

std::error_code base_socket(SOCKET s, SOCKET& base) {
    DWORD bytes = 0;
    for (DWORD ioctl : {DWORD(SIO_BASE_HANDLE), DWORD(SIO_BSP_HANDLE_POLL)})
        if (::WSAIoctl(s, ioctl, nullptr, 0, &base, sizeof base, &bytes, nullptr, nullptr) == 0) return {};
    return last_wsa_error();
}

class afd_backend final : public backend {
public:
    afd_backend(const afd::ntdll& nt, HANDLE port, HANDLE device) : nt_(nt), port_(port), device_(device) {
        entries_.resize(256);
    }

    ~afd_backend() override {
        handles_.reset();  // its waits post to port_: ended first
        std::lock_guard lock(mu_);
        for (auto& [fd, w] : watches_) cancel(*w);
        // Cancelled requests still complete: wait for each, or their memory
        // would be written after it is freed. A driver that never completes
        // them (not seen) costs their memory, never a crash.
        for (ULONG i = 0; i < batch_; ++i)  // dequeued by a wait whose batch was never delivered
            if (entries_[i].lpCompletionKey == poll_key) --in_flight_;
        while (in_flight_ > 0) {
            ULONG n = 0;
            if (!::GetQueuedCompletionStatusEx(port_, entries_.data(), ULONG(entries_.size()), &n, 1000, FALSE)) break;
            for (ULONG i = 0; i < n; ++i)
                if (entries_[i].lpCompletionKey == poll_key) --in_flight_;
        }
        if (in_flight_ > 0)
            for (auto& op : ops_) (void)op.release();  // leaked on purpose: the kernel may still write them
        ::CloseHandle(device_);
        ::CloseHandle(port_);
    }

    Backend kind() const noexcept override { return Backend::afd; }
    bool native_oneshot() const noexcept override { return true; }
    bool own_wake(std::uint64_t token) noexcept override {
        wake_token_ = token;
        return true;
    }

    void wake() noexcept override {
        if (!wake_posted_.exchange(true, std::memory_order_acq_rel))
            if (!::PostQueuedCompletionStatus(port_, 0, wake_key, nullptr))
                wake_posted_.store(false, std::memory_order_release);
    }

    status add(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept override {
        if (!is_socket(fd)) return add_handle(fd, interest, mode, token);
        SOCKET base;
        if (auto ec = base_socket(SOCKET(fd), base)) return ec;
        std::lock_guard lock(mu_);
        if (watches_.count(fd)) return std::make_error_code(std::errc::file_exists);
        try {
            // So that arm() and before_wait() cannot throw: each watch is
            // queued at most once, and found closed at most once per batch.
            to_arm_.reserve(watches_.size() + 1);
            failed_.reserve(watches_.size() + 1);
            // In the table first: a request must never outlive its watch.
            auto owned = std::make_unique<watch>(watch{base, to_afd(interest), mode == Mode::oneshot, token});
            watch& w = *owned;
            auto it = watches_.emplace(fd, std::move(owned)).first;
            if (!waiting_) {
                arm(w);
            } else if (w.events) {
                if (auto ec = submit(w)) {
                    watches_.erase(it);
                    return ec;
                }
            }
        } catch (const std::bad_alloc&) {
            return std::make_error_code(std::errc::not_enough_memory);
        }
        return {};
    }

    status modify(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept override {
        std::lock_guard lock(mu_);
        auto it = watches_.find(fd);
        if (it == watches_.end())
            return handles_ ? handles_->modify(fd, interest, mode, token)
                            : std::make_error_code(std::errc::no_such_file_or_directory);
        watch& w = *it->second;
        const ULONG events = to_afd(interest);
        w.token = token;
        w.oneshot = mode == Mode::oneshot;
        // The live request asks for exactly this: keep it, and any answer it has queued.
        if (w.op && events == w.events) return {};
        cancel(w);
        w.events = events;
        if (waiting_ && events) return submit(w);
        arm(w);
        return {};
    }

    status remove(native_handle fd) noexcept override {
        std::lock_guard lock(mu_);
        auto it = watches_.find(fd);
        if (it == watches_.end())
            return handles_ ? handles_->remove(fd) : std::make_error_code(std::errc::no_such_file_or_directory);
        cancel(*it->second);
        if (it->second->queued) std::erase(to_arm_, it->second.get());
        watches_.erase(it);
        return {};
    }

    // Issues the requests of new and changed watches, and renews those spent
    // by the last wait (level-triggered watches).
    void before_wait() noexcept override {
        std::lock_guard lock(mu_);
        waiting_ = true;
        std::size_t keep = 0;
        for (watch* w : to_arm_) {
            w->queued = false;
            if (!w->op && w->events && submit(*w)) {
                // Closed since (STATUS_INVALID_HANDLE): reported by the next
                // deliver(). No room only if deliver() was skipped since the
                // last wait (the front end failed): then asked again next time.
                if (failed_.size() < failed_.capacity()) {
                    failed_.push_back(w->token);
                } else {
                    w->queued = true;
                    to_arm_[keep++] = w;
                }
            }
        }
        to_arm_.resize(keep);
        report_closed_ = !failed_.empty();
        handles_ready_ = handles_ && handles_->before_wait();
    }

    bool batch_full() const noexcept override { return full_; }

    // The kernel wait only; the completions stay in entries_ for deliver().
    status wait(const ::timespec* timeout, std::size_t& count) noexcept override {
        ULONG n = batch_;
        BOOL ok = TRUE;
        DWORD e = 0;
        // A batch the front end never delivered (it failed in between) is
        // handed over again rather than lost: only deliver() sets its
        // poll_ops free and renews its watches.
        if (n == 0) {
            // The last batch came back full: a bigger one, as epoll's, or a
            // level watch set larger than the batch, whose sockets complete
            // again as soon as they are renewed, would keep it full for ever.
            if (full_ && entries_.size() < 4096) {
                try {
                    entries_.resize(entries_.size() * 2);
                } catch (const std::bad_alloc&) {
                    // Keep the smaller batch: completions are taken in order, nothing starves.
                }
            }
            const DWORD ms = report_closed_ || handles_ready_ ? 0 : DWORD(timeout_ms(timeout));
            ok = ::GetQueuedCompletionStatusEx(port_, entries_.data(), ULONG(entries_.size()), &n, ms, FALSE);
            if (!ok) {
                e = ::GetLastError();
                n = 0;
            }
        }
        std::lock_guard lock(mu_);  // add() may grow failed_ meanwhile
        waiting_ = false;
        if (!ok && e != WAIT_TIMEOUT) return wsa_error(int(e));
        batch_ = n;
        full_ = n == entries_.size();
        handles_promised_ = handles_ ? handles_->size() : 0;
        count = n + failed_.size() + handles_promised_;
        return {};
    }

    // One pass over the completions, with the front end's lock held, which
    // add/modify/remove also need: nothing else touches the watches meanwhile,
    // so mu_ is not taken (the sink's remove() takes it). Each entry is done
    // with its watch before the sink is called, since the sink may remove it.
    void deliver(event_sink& sink) noexcept override {
        for (std::uint64_t token : failed_) sink.closed(token);
        failed_.clear();
        const ULONG n = batch_;
        batch_ = 0;
        for (ULONG i = 0; i < n; ++i) {
            const OVERLAPPED_ENTRY& entry = entries_[i];
            if (entry.lpCompletionKey == wake_key) {
                wake_posted_.store(false, std::memory_order_release);
                sink.deliver(wake_token_, readable);
                continue;
            }
            if (entry.lpCompletionKey == handles_key) {  // handles_->deliver() below looks at them all
                handles_posted_.store(false, std::memory_order_release);
                continue;
            }
            auto* op = reinterpret_cast<poll_op*>(entry.lpOverlapped);
            --in_flight_;
            watch* w = op->owner;
            const NTSTATUS status = op->iosb.Status;
            const ULONG events = op->info.number_of_handles ? op->info.handles[0].events : 0;
            free_.push_back(op);  // capacity reserved in take(): cannot throw
            if (!w) continue;     // stale: cancelled by modify() or remove()
            w->op = nullptr;
            // Cancelled by someone else (its events are still those asked for): ask again.
            if (status == afd::status_cancelled) {
                arm(*w);
                continue;
            }
            // STATUS_INVALID_HANDLE and the like, or closed under the request:
            // the socket is gone; not renewed, the front end removes it.
            if (status < 0 || (events & afd::poll_local_close)) {
                sink.closed(w->token);
                continue;
            }
            const unsigned flags = from_afd(events);
            if (!flags || !w->oneshot) arm(*w);  // nothing said: ask again
            if (flags) sink.deliver(w->token, flags);
        }
        if (handles_) handles_->deliver(sink, handles_promised_);
    }

private:
    // A handle that is not a socket. Called without mu_.
    status add_handle(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept {
        std::lock_guard lock(mu_);
        if (watches_.count(fd)) return std::make_error_code(std::errc::file_exists);
        if (!handles_) {
            handles_.reset(new (std::nothrow) handle_set(wake_handles, this));
            if (!handles_) return std::make_error_code(std::errc::not_enough_memory);
        }
        return handles_->add(fd, interest, mode, token);
    }

    static void wake_handles(void* context) noexcept {
        auto* self = static_cast<afd_backend*>(context);
        if (!self->handles_posted_.exchange(true, std::memory_order_acq_rel))
            if (!::PostQueuedCompletionStatus(self->port_, 0, handles_key, nullptr))
                self->handles_posted_.store(false, std::memory_order_release);
    }

    // Queues w for a request before the next wait. to_arm_ has room for
    // every watch (reserved in add()). Called with the front end's lock held
    // (and mu_, except from deliver()).
    void arm(watch& w) noexcept {
        if (w.queued || !w.events) return;
        w.queued = true;
        to_arm_.push_back(&w);
    }

    poll_op* take() {
        if (free_.empty()) {
            ops_.push_back(std::make_unique<poll_op>());
            free_.reserve(ops_.size());  // so that deliver() can return any op to free_ without allocating
            return ops_.back().get();
        }
        poll_op* op = free_.back();
        free_.pop_back();
        return op;
    }

    // Issues a request for w's events. Called with mu_ held.
    std::error_code submit(watch& w) noexcept {
        poll_op* op;
        try {
            op = take();
        } catch (const std::bad_alloc&) {
            return std::make_error_code(std::errc::not_enough_memory);
        }
        op->owner = &w;
        op->info = {};
        op->info.timeout.QuadPart = INT64_MAX;
        op->info.number_of_handles = 1;
        op->info.exclusive = FALSE;
        // NOLINTNEXTLINE(performance-no-int-to-ptr): a SOCKET is a kernel handle
        op->info.handles[0] = {reinterpret_cast<HANDLE>(w.base), w.events, 0};
        op->iosb.Status = afd::status_pending;
        // The request's context (completion's lpOverlapped) is the op itself.
        const NTSTATUS status = nt_.device_io_control_file(device_, nullptr, nullptr, op, &op->iosb, afd::ioctl_poll,
                                                           &op->info, sizeof op->info, &op->info, sizeof op->info);
        if (status < 0) {  // refused at once: no completion will come
            free_.push_back(op);
            return nt_.error(status);
        }
        w.op = op;  // pending, or done at once: either way its completion is queued
        ++in_flight_;
        return {};
    }

    // Cancels w's live request, if any. Called with mu_ held.
    void cancel(watch& w) noexcept {
        if (!w.op) return;
        w.op->owner = nullptr;
        IO_STATUS_BLOCK cancel_status;
        // STATUS_NOT_FOUND: it has completed already; its completion is queued and now stale.
        nt_.cancel_io_file_ex(device_, &w.op->iosb, &cancel_status);
        w.op = nullptr;
    }

    const afd::ntdll& nt_;
    HANDLE port_;
    HANDLE device_;
    // wait() runs without the front end's lock, beside add/modify/remove:
    // mu_ guards waiting_ and failed_'s storage against them.
    std::mutex mu_;
    std::unordered_map<native_handle, std::unique_ptr<watch>> watches_;
    bool waiting_ = false;               // between before_wait() and the end of the kernel wait
    std::vector<watch*> to_arm_;         // watches to issue a request for before the next wait
    std::vector<std::uint64_t> failed_;  // tokens found closed while renewing: for the next deliver()
    std::vector<std::unique_ptr<poll_op>> ops_;
    std::vector<poll_op*> free_;
    std::size_t in_flight_ = 0;
    std::vector<OVERLAPPED_ENTRY> entries_;  // the kernel's batch...
    bool full_ = false;                      // the last wait filled entries_: more may be ready (batch_full())
    ULONG batch_ = 0;                        // ...and how many of them the last wait filled
    bool report_closed_ = false;             // failed_ has entries: the next wait must not block
    std::atomic<bool> wake_posted_{false};
    std::uint64_t wake_token_ = 0;  // set once, before any wait
    // Pipes, console input, waitable objects: made by the first such watch.
    std::unique_ptr<handle_set> handles_;
    bool handles_ready_ = false;               // its before_wait() found one ready: the wait must not block
    std::size_t handles_promised_ = 0;         // its size() when wait() counted the batch
    std::atomic<bool> handles_posted_{false};  // a handles_key completion is queued
};

// \Device\Afd\<anything> opens the driver; the name after it is free.
HANDLE open_afd(const afd::ntdll& nt) {
    wchar_t name[] = L"\\Device\\Afd\\iowait";
    UNICODE_STRING path{USHORT(sizeof name - sizeof(wchar_t)), USHORT(sizeof name), name};
    OBJECT_ATTRIBUTES attributes;
    InitializeObjectAttributes(&attributes, &path, 0, nullptr, nullptr);
    IO_STATUS_BLOCK iosb;
    HANDLE device = nullptr;
    const NTSTATUS status = nt.create_file(&device, SYNCHRONIZE, &attributes, &iosb, nullptr, 0,
                                           FILE_SHARE_READ | FILE_SHARE_WRITE, FILE_OPEN, 0, nullptr, 0);
    return status < 0 ? nullptr : device;
}

}  // namespace

std::unique_ptr<backend> make_afd_backend(std::error_code& ec) {
    if ((ec = winsock_start())) return nullptr;
    const afd::ntdll* nt = afd::ntdll::get();
    // Without ntdll's functions or the driver this system refuses the
    // mechanism (ENOSYS): the automatic choice falls back to wsapoll.
    if (!nt) {
        ec = std::make_error_code(std::errc::function_not_supported);
        return nullptr;
    }
    const HANDLE port = ::CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
    if (!port) {
        ec = wsa_error(int(::GetLastError()));
        return nullptr;
    }
    const HANDLE device = open_afd(*nt);
    if (!device || ::CreateIoCompletionPort(device, port, poll_key, 0) != port) {
        ec = std::make_error_code(std::errc::function_not_supported);
        if (device) ::CloseHandle(device);
        ::CloseHandle(port);
        return nullptr;
    }
    try {
        return std::make_unique<afd_backend>(*nt, port, device);
    } catch (const std::bad_alloc&) {
        ::CloseHandle(device);
        ::CloseHandle(port);
        ec = std::make_error_code(std::errc::not_enough_memory);
        return nullptr;
    }
}

}  // namespace iowait::detail
