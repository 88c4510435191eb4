// See signal_hub.hpp. The handler touches only lock-free atomics and write():
// both async-signal-safe. The table is fixed so that the handler never sees
// memory being reallocated.
#include "detail/signal_hub.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>

namespace iowait::detail::signal_hub {

namespace {

constexpr int max_signal = 64;
constexpr int places = 64;

struct subscriber {
    std::atomic<int> fd{-1};
    std::atomic<std::uint64_t> mask{0};  // bit signo - 1
};

subscriber table[places];
std::atomic<std::uint64_t> counts[max_signal + 1];
std::atomic<int> in_handler{0};  // handlers running now, for detach()

// Guards the sigaction changes and the users of each signal (not used by the handler).
std::mutex mu;
int users[max_signal + 1];
struct sigaction saved[max_signal + 1];

static_assert(std::atomic<std::uint64_t>::is_always_lock_free && std::atomic<int>::is_always_lock_free,
              "the handler needs lock-free atomics");

std::uint64_t bit(int signo) noexcept { return std::uint64_t(1) << (signo - 1); }

extern "C" void on_signal(int signo) {
    const int saved_errno = errno;
    in_handler.fetch_add(1, std::memory_order_seq_cst);
    counts[signo].fetch_add(1, std::memory_order_seq_cst);
    for (auto& s : table) {
        if (!(s.mask.load(std::memory_order_seq_cst) & bit(signo))) continue;
        const int fd = s.fd.load(std::memory_order_seq_cst);
        if (fd < 0) continue;
        // An eventfd takes 8 bytes, a pipe any; a full one already wakes its reader.
        const std::uint64_t one = 1;
#ifdef __linux__
        [[maybe_unused]] auto n = ::write(fd, &one, sizeof one);
#else
        [[maybe_unused]] auto n = ::write(fd, &one, 1);
#endif
    }
    in_handler.fetch_sub(1, std::memory_order_seq_cst);
    errno = saved_errno;
}

}  // namespace

bool watchable(int signo) noexcept {
    if (signo < 1 || signo > max_signal || signo >= NSIG) return false;
    switch (signo) {
    case SIGKILL:
    case SIGSTOP:
    case SIGSEGV:
    case SIGBUS:
    case SIGFPE:
    case SIGILL:
    case SIGTRAP: return false;
    default: return true;
    }
}

std::uint64_t count(int signo) noexcept { return counts[signo].load(std::memory_order_seq_cst); }

int attach(int write_fd) noexcept {
    std::lock_guard lock(mu);
    for (int i = 0; i < places; ++i) {
        if (table[i].fd.load() >= 0) continue;
        table[i].mask.store(0);
        table[i].fd.store(write_fd);
        return i;
    }
    return -1;
}

void detach(int place) noexcept {
    {
        std::lock_guard lock(mu);
        table[place].mask.store(0);
        table[place].fd.store(-1);
    }
    // A handler that loaded the fd before the store may still write to it:
    // wait until none runs (they never block). A handler that starts later
    // sees -1. In this thread a handler cannot be preempted by us.
    while (in_handler.load(std::memory_order_seq_cst) != 0) {
    }
}

namespace {

// The first user of signo in the process installs the handler; mu held.
status hold_locked(int signo) noexcept {
    if (users[signo] == 0) {
        struct sigaction sa {};
        sa.sa_handler = on_signal;
        sigfillset(&sa.sa_mask);  // one handler at a time per thread; none nests
        // SA_RESTART: the program's other blocking calls are not cut short by
        // a signal that, unwatched, would have been ignored or fatal; the
        // kernel wait is interrupted all the same (epoll_wait, poll are never
        // restarted), and the front end then sees the waker (or the kernel's own
        // report, kqueue's EVFILT_SIGNAL).
        sa.sa_flags = SA_RESTART;
        if (::sigaction(signo, &sa, &saved[signo]) != 0) return status::from_errno(errno);
    }
    ++users[signo];
    return {};
}

// The last user puts the program's action back; mu held.
void release_locked(int signo) noexcept {
    if (--users[signo] == 0) ::sigaction(signo, &saved[signo], nullptr);
}

}  // namespace

status add(int place, int signo) noexcept {
    std::lock_guard lock(mu);
    if (auto st = hold_locked(signo)) return st;
    table[place].mask.fetch_or(bit(signo));
    return {};
}

void remove(int place, int signo) noexcept {
    std::lock_guard lock(mu);
    table[place].mask.fetch_and(~bit(signo));
    release_locked(signo);
}

status hold(int signo) noexcept {
    std::lock_guard lock(mu);
    return hold_locked(signo);
}

void release(int signo) noexcept {
    std::lock_guard lock(mu);
    release_locked(signo);
}

}  // namespace iowait::detail::signal_hub
