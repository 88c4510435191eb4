// See handles_windows.hpp. What each kind of handle is, how its readiness is
// asked without blocking, and what waits for it meanwhile:
//
// - A pipe (GetFileType: FILE_TYPE_PIPE, and getsockopt says it is no
//   socket), either end, named or anonymous. Readable: PeekNamedPipe says
//   bytes are there, or fails with ERROR_BROKEN_PIPE (the other end is
//   closed: EOF, a hangup). Hangup also when the pipe's state
//   (NtQueryInformationFile, FilePipeLocalInformation) is "closing" with
//   bytes still unread. Writable: always, unless the other end is gone (then
//   error: the write fails at once with ERROR_NO_DATA). Windows tells no room
//   in a pipe: WriteQuotaAvailable is 0 under Wine whatever the pipe holds
//   (measured), so a write to a full pipe blocks, or pends if overlapped.
//   What waits for data:
//   - a handle opened for overlapped I/O (a named pipe made or opened with
//     FILE_FLAG_OVERLAPPED; FileModeInformation has no FILE_SYNCHRONOUS_IO
//     flag): a zero-byte overlapped ReadFile, which completes when data or
//     EOF is there and consumes nothing; its event is waited on by the
//     thread pool (RegisterWaitForSingleObject). The event's low bit is set,
//     so that the completion never goes to a port the program associated
//     the handle with.
//   - a synchronous handle (CreatePipe's, a child's standard handles, a
//     named pipe without FILE_FLAG_OVERLAPPED): no overlapped I/O, so a
//     thread of the watch's own blocks in a zero-byte ReadFile, as libuv's
//     does; CancelSynchronousIo stops it. Cost: one thread per such watch
//     (64 KiB of stack reserved), made at the first wait that finds no data,
//     one wake-up per arrival; a synchronous handle serialises its I/O, so a
//     read of the program's on the same handle from another thread waits
//     behind the zero-byte read (it ends as soon as data is there).
// - Console input (FILE_TYPE_CHAR, GetNumberOfConsoleInputEvents answers):
//   readable when an input record is there (any record: keys, mouse, focus,
//   window size; ReadConsole may still block on records that are no
//   characters). The handle itself is waitable: the thread pool waits on it.
// - A waitable object (GetFileType: FILE_TYPE_UNKNOWN; NtQueryObject names
//   its type): an event, a semaphore, a process, a thread, a waitable timer.
//   Readable when signalled, asked with WaitForSingleObject(0); the thread
//   pool waits on it meanwhile. Both are waits, with their effects: each
//   report of an auto-reset event, a semaphore or a synchronisation timer
//   is one successful wait, that took the signal (one count of a
//   semaphore); a manual-reset event, a process or a thread stays signalled
//   and, level-triggered, is reported on every wait. A mutex is refused
//   (EINVAL): a thread of the pool would own it.
//   NtAssociateWaitCompletionPacket (Windows 8+) would let afd's port wait
//   on the object itself, with no thread of the pool, but Wine 8's ntdll
//   has no such function (looked up: absent), so it could not be checked
//   here: every Windows version uses the thread pool's wait.
// - A disk file, or a character device that is not console input (NUL, a
//   serial port): EPERM, which the front end takes as always ready, as
//   poll() does for a regular file.
//
// The thread pool's waits (RegisterWaitForSingleObject, WT_EXECUTEONLYONCE)
// run their callback in the pool's wait thread: it sets `fired` and wakes
// the backend, nothing else. One wait thread serves 63 handles. A watch's
// wait runs only while it has nothing to report: a level watch found ready
// is asked again right before the next kernel wait, without a pool wait.
// Right before each kernel wait, the watches with no wait running (new,
// re-armed, or found ready by the last wait, as level-triggered ones are)
// are asked; one whose wait runs is not, so an idle watch costs nothing per
// wait. Readiness that comes while its wait runs reaches the backend
// through the wait's callback or thread: a thread switch later, so a
// zero-timeout wait right after may not see it yet. (A synchronous pipe
// could not be asked then anyway: its query would block behind the read.)
#include "backends/handles_windows.hpp"

#include <winsock2.h>
// after winsock2.h, which it would otherwise contradict
#include <windows.h>
#include <winternl.h>

#include <atomic>
#include <cwchar>
#include <memory>
#include <new>
#include <vector>

namespace iowait::detail {

namespace {

enum class kind : std::uint8_t { waitable, console, pipe_overlapped, pipe_sync };

// winternl.h has neither structure.
struct pipe_local_information {
    ULONG type, configuration, maximum_instances, current_instances, inbound_quota, read_data_available, outbound_quota,
        write_quota_available, state, end;
};
constexpr int file_pipe_local_information = 24;
constexpr int file_mode_information = 16;
constexpr ULONG pipe_disconnected = 1, pipe_listening = 2, pipe_closing = 4;
constexpr ULONG synchronous_io = 0x10 | 0x20;  // FILE_SYNCHRONOUS_IO_ALERT | _NONALERT
constexpr int object_type_information = 2;

struct ntdll_calls {
    NTSTATUS(NTAPI* query_file)(HANDLE, PIO_STATUS_BLOCK, PVOID, ULONG, ULONG) = nullptr;
    NTSTATUS(NTAPI* query_object)(HANDLE, ULONG, PVOID, ULONG, PULONG) = nullptr;
    NTSTATUS(NTAPI* query_event)(HANDLE, int, PVOID, ULONG, PULONG) = nullptr;
};
struct event_basic_information {
    int type;  // EVENT_TYPE: 0 NotificationEvent (manual reset), 1 SynchronizationEvent (auto reset)
    LONG state;
};

const ntdll_calls& nt() noexcept {
    static const ntdll_calls calls = [] {
        ntdll_calls c;
        if (const HMODULE m = ::GetModuleHandleW(L"ntdll.dll")) {
            // NOLINTBEGIN(cppcoreguidelines-pro-type-reinterpret-cast): GetProcAddress's way
            c.query_file = reinterpret_cast<decltype(c.query_file)>(
                reinterpret_cast<void*>(::GetProcAddress(m, "NtQueryInformationFile")));
            c.query_object = reinterpret_cast<decltype(c.query_object)>(
                reinterpret_cast<void*>(::GetProcAddress(m, "NtQueryObject")));
            c.query_event =
                reinterpret_cast<decltype(c.query_event)>(reinterpret_cast<void*>(::GetProcAddress(m, "NtQueryEvent")));
            // NOLINTEND(cppcoreguidelines-pro-type-reinterpret-cast)
        }
        return c;
    }();
    return calls;
}

status win_error(DWORD e) noexcept {
    switch (e) {
    case ERROR_INVALID_HANDLE: return status::from_errno(EBADF);
    case ERROR_ACCESS_DENIED: return status::from_errno(EACCES);
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY: return status::from_errno(ENOMEM);
    default: return std::error_code(int(e), std::system_category());
    }
}

// The object type's name, as NtQueryObject gives it ("Event", "Process").
bool object_type(HANDLE h, std::wstring& name) {
    alignas(8) unsigned char buf[512];
    ULONG len = 0;
    if (!nt().query_object || nt().query_object(h, object_type_information, buf, sizeof buf, &len) < 0) return false;
    const auto* u = reinterpret_cast<const UNICODE_STRING*>(buf);
    name.assign(u->Buffer, u->Length / sizeof(wchar_t));
    return true;
}

// Whether a wait on the object takes its signal (an auto-reset event, a
// semaphore, a timer, which may be a synchronisation timer: Windows does not
// say) or leaves it (a manual-reset event, a process, a thread).
bool takes_signal(HANDLE h, const std::wstring& type) noexcept {
    if (type == L"Process" || type == L"Thread") return false;
    if (type != L"Event") return true;
    event_basic_information info{};
    ULONG len = 0;
    return !nt().query_event || nt().query_event(h, 0, &info, sizeof info, &len) < 0 || info.type != 0;
}

status classify(HANDLE h, kind& k, bool& consuming) noexcept {
    DWORD flags = 0;
    if (!::GetHandleInformation(h, &flags)) return win_error(::GetLastError());
    // Open (GetHandleInformation says so): FILE_TYPE_UNKNOWN is an object
    // that is no file, whatever error GetFileType leaves (Wine: ERROR_INVALID_HANDLE).
    const DWORD type = ::GetFileType(h);
    if (type == FILE_TYPE_PIPE) {
        IO_STATUS_BLOCK io;
        ULONG mode = 0;
        const NTSTATUS st = nt().query_file ? nt().query_file(h, &io, &mode, sizeof mode, file_mode_information) : -1;
        k = st >= 0 && !(mode & synchronous_io) ? kind::pipe_overlapped : kind::pipe_sync;
        return {};
    }
    if (type == FILE_TYPE_CHAR) {
        DWORD n = 0;
        if (::GetNumberOfConsoleInputEvents(h, &n)) {
            k = kind::console;
            return {};
        }
        return status::from_errno(EPERM);  // NUL, a serial port, console output: always ready
    }
    if (type != FILE_TYPE_UNKNOWN) return status::from_errno(EPERM);  // a disk file
    std::wstring name;
    try {
        if (!object_type(h, name)) return status::from_errno(EINVAL);
    } catch (const std::bad_alloc&) {
        return status::from_errno(ENOMEM);
    }
    for (const wchar_t* waitable : {L"Event", L"Semaphore", L"Process", L"Thread", L"Timer"})
        if (name == waitable) {
            k = kind::waitable;
            consuming = takes_signal(h, name);
            return {};
        }
    return status::from_errno(EINVAL);  // a mutex (Mutant), or no object one can wait on
}

}  // namespace

struct handle_watch {
    handle_set* owner;
    HANDLE h;
    kind what;
    Interest interest = Interest::none;  // none: disarmed
    bool oneshot = false;
    std::uint64_t token = 0;
    unsigned ready = 0;              // flags to report in the next deliver()
    bool closed = false;             // the handle is no longer open: report once
    bool pending = false;            // a wait for data (or a signal) is in progress
    bool owed = false;               // waitable: a wait took a signal that was never reported
    bool consuming = false;          // waitable: a wait takes its signal (else it stays: ask again)
    bool abandoned = false;          // overlapped read that would not end: the memory is the kernel's
    bool listening = false;          // a named pipe's server end before a client connects
    std::atomic<bool> fired{false};  // the wait ended: set by its callback or thread

    HANDLE registration = nullptr;  // the thread pool's wait (waitable, console, overlapped pipe)
    // Overlapped pipe: the zero-byte read.
    HANDLE event = nullptr;
    OVERLAPPED overlapped{};
    bool io_pending = false;
    char byte = 0;
    // Synchronous pipe: the reader thread and its hand-shake.
    HANDLE thread = nullptr;
    HANDLE go = nullptr;    // auto-reset: read once
    HANDLE idle = nullptr;  // auto-reset: a read ended
    std::atomic<bool> busy{false};
    std::atomic<bool> cancel{false};
    std::atomic<bool> quit{false};

    ~handle_watch() {
        for (HANDLE x : {event, thread, go, idle})
            if (x) ::CloseHandle(x);
    }
};

namespace {

void CALLBACK on_signal(void* context, BOOLEAN /*timed_out: never, INFINITE*/) {
    auto* w = static_cast<handle_watch*>(context);
    w->fired.store(true, std::memory_order_release);
    w->owner->wake();
}

DWORD WINAPI reader(void* context) {
    auto* w = static_cast<handle_watch*>(context);
    for (;;) {
        ::WaitForSingleObject(w->go, INFINITE);
        if (w->quit.load(std::memory_order_acquire)) return 0;
        if (!w->cancel.load(std::memory_order_acquire)) {
            DWORD n = 0;
            // Blocks until data or EOF is there; consumes nothing.
            ::ReadFile(w->h, &w->byte, 0, &n, nullptr);
        }
        const bool cancelled = w->cancel.load(std::memory_order_acquire);
        w->busy.store(false, std::memory_order_release);
        ::SetEvent(w->idle);
        if (!cancelled) {
            w->fired.store(true, std::memory_order_release);
            w->owner->wake();
        }
    }
}

// The handle's state now, without blocking and without consuming anything
// but a waitable object's signal. Sets closed for a handle no longer open.
unsigned check(handle_watch& w) noexcept {
    unsigned flags = 0;
    switch (w.what) {
    case kind::waitable: {
        if (!has(w.interest, Interest::read)) return 0;
        if (w.owed) {
            w.owed = false;
            return readable;
        }
        const DWORD r = ::WaitForSingleObject(w.h, 0);
        if (r == WAIT_OBJECT_0 || r == WAIT_ABANDONED) return readable;
        if (r == WAIT_FAILED) w.closed = ::GetLastError() == ERROR_INVALID_HANDLE;
        return r == WAIT_FAILED && !w.closed ? unsigned(error) : 0;
    }
    case kind::console: {
        DWORD n = 0;
        if (::GetNumberOfConsoleInputEvents(w.h, &n)) return n > 0 ? unsigned(readable) : 0;
        w.closed = ::GetLastError() == ERROR_INVALID_HANDLE;
        return w.closed ? 0 : unsigned(error);
    }
    case kind::pipe_overlapped:
    case kind::pipe_sync: break;
    }
    IO_STATUS_BLOCK io;
    pipe_local_information info{};
    w.listening = false;
    if (nt().query_file && nt().query_file(w.h, &io, &info, sizeof info, file_pipe_local_information) >= 0) {
        if (info.state == pipe_closing || info.state == pipe_disconnected) flags |= hangup | write_closed;
        // No client yet: nothing to read or write, and nothing to wait on
        // but the program's own ConnectNamedPipe (whose event it can watch).
        if (info.state == pipe_listening) {
            w.listening = true;
            return 0;
        }
    } else if (DWORD handle_flags = 0; !::GetHandleInformation(w.h, &handle_flags)) {
        w.closed = true;
        return 0;
    }
    if (has(w.interest, Interest::read)) {
        DWORD avail = 0;
        if (::PeekNamedPipe(w.h, nullptr, 0, nullptr, &avail, nullptr)) {
            if (avail > 0) flags |= readable;
        } else {
            switch (::GetLastError()) {
            case ERROR_BROKEN_PIPE:
            case ERROR_PIPE_NOT_CONNECTED: flags |= readable | hangup; break;
            case ERROR_INVALID_HANDLE: w.closed = true; return 0;
            case ERROR_ACCESS_DENIED: break;  // a write-only end: never readable
            default: flags |= error;
            }
        }
    }
    if (has(w.interest, Interest::write)) {
        flags |= writable;
        // The other end is gone: the write fails at once (ERROR_NO_DATA), as EPIPE.
        if (flags & write_closed) flags |= error;
    }
    // A hangup says nothing to a write watch of a pipe whose reader is
    // still there; to a read watch, only with the EOF it brings.
    if (!has(w.interest, Interest::read)) flags &= ~unsigned(hangup);
    return flags;
}

// Starts the wait for data or a signal. Returns false if it could not be
// started (then the watch is reported in error rather than never).
bool start_wait(handle_watch& w) noexcept {
    w.fired.store(false, std::memory_order_relaxed);
    switch (w.what) {
    case kind::waitable:
    case kind::console:
        if (!::RegisterWaitForSingleObject(&w.registration, w.h, on_signal, &w, INFINITE,
                                           WT_EXECUTEONLYONCE | WT_EXECUTEINWAITTHREAD))
            return false;
        break;
    case kind::pipe_overlapped: {
        if (!w.event && !(w.event = ::CreateEventW(nullptr, TRUE, FALSE, nullptr))) return false;
        ::ResetEvent(w.event);
        w.overlapped = OVERLAPPED{};
        // The low bit: no completion packet, whatever port the handle has.
        // NOLINTNEXTLINE(performance-no-int-to-ptr)
        w.overlapped.hEvent = reinterpret_cast<HANDLE>(reinterpret_cast<std::uintptr_t>(w.event) | 1);
        if (!::ReadFile(w.h, &w.byte, 0, nullptr, &w.overlapped) && ::GetLastError() != ERROR_IO_PENDING) {
            // Ended at once (EOF, a closed handle): what it means, check() says.
            w.fired.store(true, std::memory_order_relaxed);
            w.owner->wake();
            break;
        }
        w.io_pending = true;
        if (!::RegisterWaitForSingleObject(&w.registration, w.event, on_signal, &w, INFINITE,
                                           WT_EXECUTEONLYONCE | WT_EXECUTEINWAITTHREAD))
            return false;
        break;
    }
    case kind::pipe_sync:
        if (!w.thread) {
            w.go = ::CreateEventW(nullptr, FALSE, FALSE, nullptr);
            w.idle = ::CreateEventW(nullptr, FALSE, FALSE, nullptr);
            if (!w.go || !w.idle) return false;
            w.thread =
                ::CreateThread(nullptr, SIZE_T(64) * 1024, reader, &w, STACK_SIZE_PARAM_IS_A_RESERVATION, nullptr);
            if (!w.thread) return false;
        }
        w.cancel.store(false, std::memory_order_relaxed);
        w.busy.store(true, std::memory_order_release);
        ::SetEvent(w.go);
        break;
    }
    w.pending = true;
    return true;
}

// Ends the wait for data, if one runs: once this returns, no callback or
// thread of this watch runs or starts, except a reader thread going back to
// sleep. A signal a waitable's wait took is kept (owed) for the next report.
void stop_wait(handle_watch& w) noexcept {
    if (!w.pending) return;
    w.pending = false;
    if (w.registration) {
        // INVALID_HANDLE_VALUE: returns once a callback that began has ended.
        ::UnregisterWaitEx(w.registration, INVALID_HANDLE_VALUE);
        w.registration = nullptr;
    }
    switch (w.what) {
    case kind::waitable:
        if (w.fired.exchange(false, std::memory_order_acquire) && w.consuming) w.owed = true;
        break;
    case kind::console: break;
    case kind::pipe_overlapped:
        if (w.io_pending) {
            ::CancelIoEx(w.h, &w.overlapped);
            // A cancelled request still completes; its OVERLAPPED must live
            // until then. A driver that never completes it (not seen) keeps
            // the watch's memory, never a crash.
            if (::WaitForSingleObject(w.event, 5000) != WAIT_OBJECT_0) w.abandoned = true;
            w.io_pending = false;
        }
        break;
    case kind::pipe_sync:
        if (w.busy.load(std::memory_order_acquire)) {
            w.cancel.store(true, std::memory_order_release);
            // The thread may be between its check and the ReadFile: cancel again until it is out.
            while (w.busy.load(std::memory_order_acquire)) {
                ::CancelSynchronousIo(w.thread);
                ::WaitForSingleObject(w.idle, 1);
            }
        }
        break;
    }
    w.fired.store(false, std::memory_order_relaxed);
}

// After the wait ended (fired): its resources released; what is ready now.
unsigned finish(handle_watch& w) noexcept {
    w.pending = false;
    if (w.registration) {
        ::UnregisterWaitEx(w.registration, INVALID_HANDLE_VALUE);  // its callback has run: returns at once
        w.registration = nullptr;
    }
    // The wait took the signal: report it. One that left it (a manual-reset
    // event, which may have been reset since) is asked again.
    if (w.what == kind::waitable && w.consuming) return readable;
    if (w.what == kind::pipe_overlapped && w.io_pending) {
        DWORD n = 0;
        ::GetOverlappedResult(w.h, &w.overlapped, &n, FALSE);
        w.io_pending = false;
    }
    return check(w);
}

// Readiness now or, if none, a wait for it. True if there is something to report.
bool arm(handle_watch& w) noexcept {
    const unsigned flags = check(w);
    if (flags || w.closed) {
        w.ready = flags;
        return true;
    }
    if (w.listening) {
        w.pending = true;  // no wait to start: nothing reports it until modify()
        return false;
    }
    if (has(w.interest, Interest::read) && !start_wait(w)) {
        stop_wait(w);
        w.ready = error | readable;
        return true;
    }
    return false;
}

void destroy(handle_watch* w) noexcept {
    stop_wait(*w);
    if (w->thread) {
        w->quit.store(true, std::memory_order_release);
        ::SetEvent(w->go);
        ::WaitForSingleObject(w->thread, INFINITE);
    }
    if (!w->abandoned) delete w;
}

}  // namespace

bool is_socket(native_handle h) noexcept {
    int type = 0;
    int len = sizeof type;
    return ::getsockopt(SOCKET(h), SOL_SOCKET, SO_TYPE, reinterpret_cast<char*>(&type), &len) == 0;
}

handle_set::~handle_set() {
    for (auto& [h, w] : watches_) destroy(w);
}

status handle_set::add(native_handle h, Interest interest, Mode mode, std::uint64_t token) noexcept {
    if (watches_.count(h)) return std::make_error_code(std::errc::file_exists);
    // NOLINTNEXTLINE(performance-no-int-to-ptr): a handle
    const auto handle = reinterpret_cast<HANDLE>(h);
    kind what = kind::waitable;
    bool consuming = false;
    if (auto st = classify(handle, what, consuming)) return st;
    if (what != kind::pipe_overlapped && what != kind::pipe_sync && has(interest, Interest::write))
        return errc::bad_interest;  // console input and objects are never "writable"
    auto* w = new (std::nothrow) handle_watch{this, handle, what};
    if (!w) return status::from_errno(ENOMEM);
    try {
        watches_.emplace(h, w);
    } catch (const std::bad_alloc&) {
        delete w;
        return status::from_errno(ENOMEM);
    }
    w->interest = interest;
    w->oneshot = mode == Mode::oneshot;
    w->token = token;
    w->consuming = consuming;
    if (arm(*w)) wake();  // reaches a wait in progress
    return {};
}

status handle_set::modify(native_handle h, Interest interest, Mode mode, std::uint64_t token) noexcept {
    auto it = watches_.find(h);
    if (it == watches_.end()) return std::make_error_code(std::errc::no_such_file_or_directory);
    handle_watch& w = *it->second;
    if (w.what != kind::pipe_overlapped && w.what != kind::pipe_sync && has(interest, Interest::write))
        return errc::bad_interest;
    w.token = token;
    w.oneshot = mode == Mode::oneshot;
    // Still waiting for data, and read still wanted: the wait goes on.
    if (w.pending && interest == w.interest) return {};
    stop_wait(w);
    // A signal that a check took for a report not made yet is still owed.
    if (w.what == kind::waitable && w.consuming && (w.ready & readable)) w.owed = true;
    w.interest = interest;
    w.ready = 0;
    if (interest != Interest::none && arm(w)) wake();
    return {};
}

status handle_set::remove(native_handle h) noexcept {
    auto it = watches_.find(h);
    if (it == watches_.end()) return std::make_error_code(std::errc::no_such_file_or_directory);
    destroy(it->second);
    watches_.erase(it);
    return {};
}

bool handle_set::before_wait() noexcept {
    bool any = false;
    for (auto& [h, w] : watches_) {
        if (w->interest == Interest::none) continue;
        if (w->fired.load(std::memory_order_acquire)) {
            any = true;  // deliver() finishes it: the wait must not block
            continue;
        }
        if (w->ready || w->closed) {
            any = true;
            continue;
        }
        // A watch whose wait runs is not asked: it costs no system call per
        // wait (one is 35 us under Wine: 50 idle events made each wait(0)
        // 1.8 ms when they were all asked, measured), and its readiness
        // comes through the wait's callback.
        if (!w->pending) arm(*w);
        any = any || w->ready || w->closed;
    }
    return any;
}

void handle_set::deliver(event_sink& sink, std::size_t most) noexcept {
    // The sink may call modify() and remove() of these watches: what is to
    // be reported is taken first, then handed over. Tokens and flags only.
    struct entry {
        std::uint64_t token;
        unsigned flags;
        bool closed;
    };
    entry out[64];
    std::size_t n = 0;
    auto flush = [&] {
        for (std::size_t i = 0; i < n; ++i)
            if (out[i].closed)
                sink.closed(out[i].token);
            else
                sink.deliver(out[i].token, out[i].flags);
        n = 0;
    };
    // Taken in rounds of 64: a watch reported once is not ready any more,
    // so a second round finds only what the first left.
    for (bool more = true; more && most > 0;) {
        more = false;
        for (auto& [h, wp] : watches_) {
            handle_watch& w = *wp;
            if (w.fired.exchange(false, std::memory_order_acq_rel) && w.pending) {
                // A waitable's check took one signal and its pool wait another: two reports.
                if (w.what == kind::waitable && w.consuming && (w.ready & readable)) w.owed = true;
                const unsigned flags = finish(w);
                w.ready |= flags;
                if (!flags && !w.closed && w.interest != Interest::none) arm(w);  // woken early: wait again
            }
            if (w.interest == Interest::none || !(w.ready || w.closed)) continue;
            if (n == std::size(out) || n == most) {
                more = n < most;
                break;
            }
            out[n++] = {w.token, w.ready, w.closed};
            w.ready = 0;
            if (w.closed) {
                w.interest = Interest::none;  // the front end removes it
            } else if (w.oneshot) {
                stop_wait(w);                 // its check may have seen it while its wait still ran
                w.interest = Interest::none;  // disarmed until modify()
            }
        }
        most -= n;
        flush();
    }
}

}  // namespace iowait::detail
