// See signal_hub.hpp. Windows has no signals from outside the process; the
// nearest thing is a console control event, which the system delivers by
// running the process's console control handlers (SetConsoleCtrlHandler), last
// installed first, in a thread it creates for the purpose. What maps to what:
//
//   SIGINT   <- CTRL_C_EVENT      (Ctrl+C, GenerateConsoleCtrlEvent)
//   SIGBREAK <- CTRL_BREAK_EVENT  (Ctrl+Break, GenerateConsoleCtrlEvent)
//
// While one of them is watched, our handler returns TRUE for it, so neither
// the handlers installed before ours nor the default one (ExitProcess) run:
// the rule of POSIX, where iowait's handler replaces the signal's action.
// CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT and CTRL_SHUTDOWN_EVENT are not mapped
// (to SIGHUP or SIGTERM, say): the system ends the process after the handler
// returns whatever it answers, so "the default action does not run while it
// is watched" could not hold. Every other number is errc::unsupported_source.
//
// The handler runs in an ordinary thread, not in a signal context: a mutex
// guards the table it reads, and detach() returns only once no handler can
// still write to the subscriber's socket. SetConsoleCtrlHandler() is never
// called with that mutex held: the system may hold its own lock of the
// handler list while it runs the handlers (ReactOS and Wine do), and the two
// would then wait for each other.
#include <winsock2.h>
// after winsock2.h, which it would otherwise contradict
#include <windows.h>

#include <atomic>
#include <csignal>
#include <mutex>

#include "detail/signal_hub.hpp"
#include "detail/winsock.hpp"

namespace iowait::detail::signal_hub {

namespace {

constexpr int max_signal = 64;
constexpr int places = 64;
constexpr native_handle none = native_handle(-1);

struct subscriber {
    native_handle fd = none;  // the write end of an IOWait's waker (a socket)
    std::uint64_t mask = 0;   // bit signo - 1
};

std::mutex mu;  // the table, which the handler reads
subscriber table[places];
std::mutex config_mu;  // the users, and SetConsoleCtrlHandler(); never taken by the handler
int users[max_signal + 1];
int watched = 0;  // signals with users: the handler is installed while > 0
std::atomic<std::uint64_t> counts[max_signal + 1];

std::uint64_t bit(int signo) noexcept { return std::uint64_t(1) << (signo - 1); }

int signal_of(DWORD event) noexcept {
    switch (event) {
    case CTRL_C_EVENT: return SIGINT;
    case CTRL_BREAK_EVENT: return SIGBREAK;
    default: return 0;
    }
}

BOOL WINAPI on_console_event(DWORD event) {
    const int signo = signal_of(event);
    if (signo == 0) return FALSE;
    std::lock_guard lock(mu);
    bool seen = false;
    for (const auto& s : table) {
        if (s.fd == none || !(s.mask & bit(signo))) continue;
        if (!seen) counts[signo].fetch_add(1, std::memory_order_seq_cst);
        seen = true;
        send_wake_byte(SOCKET(s.fd));
    }
    // Unwatched (by everyone) between the event and this thread: the next
    // handler decides, as if the event had come after the unwatch().
    return seen ? TRUE : FALSE;
}

}  // namespace

bool watchable(int signo) noexcept { return signo >= 1 && signo <= max_signal; }

std::uint64_t count(int signo) noexcept { return counts[signo].load(std::memory_order_seq_cst); }

int attach(native_handle write_fd) noexcept {
    std::lock_guard lock(mu);
    for (int i = 0; i < places; ++i) {
        if (table[i].fd != none) continue;
        table[i] = {write_fd, 0};
        return i;
    }
    return -1;
}

void detach(int place) noexcept {
    // The handler writes only with the lock held: once we have it, none can.
    std::lock_guard lock(mu);
    table[place] = {};
}

// No kernel here reports a console event by itself: a hold alone keeps the
// handler installed, which then leaves the event to the next handler (no
// subscriber wants it); it only spans a use of add() (sources.cpp).
status hold(int signo) noexcept {
    if (signo != SIGINT && signo != SIGBREAK) return errc::unsupported_source;
    std::lock_guard config(config_mu);
    if (users[signo] == 0 && watched == 0 && !::SetConsoleCtrlHandler(on_console_event, TRUE))
        return std::error_code(int(::GetLastError()), std::system_category());
    if (users[signo]++ == 0) ++watched;
    return {};
}

void release(int signo) noexcept {
    std::lock_guard config(config_mu);
    if (--users[signo] == 0 && --watched == 0) ::SetConsoleCtrlHandler(on_console_event, FALSE);
}

status add(int place, int signo) noexcept {
    if (auto st = hold(signo)) return st;
    std::lock_guard lock(mu);
    table[place].mask |= bit(signo);
    return {};
}

void remove(int place, int signo) noexcept {
    {
        std::lock_guard lock(mu);
        table[place].mask &= ~bit(signo);
    }
    release(signo);
}

}  // namespace iowait::detail::signal_hub
