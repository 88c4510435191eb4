// See process_wait.hpp. Why the thread pool's wait and not afd's completion
// port: wsapoll has no port, and the call that makes a handle complete on a
// port, NtAssociateWaitCompletionPacket (Windows 8+), is in neither mingw-w64's
// headers nor Wine 8's ntdll. RegisterWaitForSingleObject is in every Windows
// and in Wine, and its callback wakes either backend through the same socket.
#include "detail/process_wait.hpp"

#include <winsock2.h>
// after winsock2.h, which it would otherwise contradict
#include <windows.h>

#include <atomic>
#include <new>

#include "detail/winsock.hpp"

namespace iowait::detail {

class process_wait {
public:
    HANDLE process = nullptr;
    HANDLE wait = nullptr;
    native_handle wake_fd = native_handle(-1);
    std::atomic<bool> exited{false};
};

namespace {

std::error_code win_error(DWORD e) noexcept {
    // No such process: OpenProcess says ERROR_INVALID_PARAMETER.
    if (e == ERROR_INVALID_PARAMETER) return std::make_error_code(std::errc::no_such_process);
    if (e == ERROR_ACCESS_DENIED) return std::make_error_code(std::errc::permission_denied);
    return {int(e), std::system_category()};
}

void CALLBACK on_exit(void* context, BOOLEAN /*timed_out: never, the wait is INFINITE*/) {
    auto* w = static_cast<process_wait*>(context);
    w->exited.store(true, std::memory_order_release);
    send_wake_byte(SOCKET(w->wake_fd));
}

}  // namespace

status process_wait_start(std::int64_t pid, native_handle wake_fd, process_wait*& out, bool& exited) noexcept {
    out = nullptr;
    exited = false;
    HANDLE process = ::OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, DWORD(pid));
    if (!process) return win_error(::GetLastError());
    // Exited already (the caller's handle keeps its id from reuse): nothing to
    // wait for, and the next wait reports it without a thread in between.
    if (::WaitForSingleObject(process, 0) == WAIT_OBJECT_0) {
        ::CloseHandle(process);
        exited = true;
        return {};
    }
    auto* w = new (std::nothrow) process_wait;
    if (!w) {
        ::CloseHandle(process);
        return std::make_error_code(std::errc::not_enough_memory);
    }
    w->process = process;
    w->wake_fd = wake_fd;
    // Once: an exit happens once. In the wait thread: the callback only
    // sends a byte on a non-blocking socket, not worth a worker thread.
    if (!::RegisterWaitForSingleObject(&w->wait, process, on_exit, w, INFINITE,
                                       WT_EXECUTEONLYONCE | WT_EXECUTEINWAITTHREAD)) {
        const DWORD e = ::GetLastError();
        ::CloseHandle(process);
        delete w;
        return win_error(e);
    }
    out = w;
    return {};
}

bool process_wait_exited(const process_wait* w) noexcept { return w->exited.load(std::memory_order_acquire); }

void process_wait_stop(process_wait* w) noexcept {
    if (!w) return;
    // INVALID_HANDLE_VALUE: returns once a callback that has begun has ended
    // (N5/N6: nothing of this watch happens after unwatch() returns). The
    // callback takes no lock of ours, so waiting here with the front end's
    // lock held cannot deadlock.
    ::UnregisterWaitEx(w->wait, INVALID_HANDLE_VALUE);
    ::CloseHandle(w->process);
    delete w;
}

}  // namespace iowait::detail
