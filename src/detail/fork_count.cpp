// POSIX: a pthread_atfork() child handler bumps the count. getpid() would
// tell a child too, but it is a system call on every wait (glibc no longer
// caches the pid); the handler makes the check a load.
#include "detail/fork_count.hpp"

#include <pthread.h>

namespace iowait::detail {

std::atomic<std::uint32_t> fork_count{0};

namespace {
// Runs in the child, single-threaded, before fork() returns there.
void on_fork_child() noexcept { fork_count.fetch_add(1, std::memory_order_relaxed); }
}  // namespace

std::uint32_t watch_forks() noexcept {
    // Once per process (a static's initialisation is thread-safe). If it
    // cannot be registered (ENOMEM), use in a child goes undetected, as it
    // did before: nothing else breaks.
    [[maybe_unused]] static const int registered = ::pthread_atfork(nullptr, nullptr, on_fork_child);
    return fork_count.load(std::memory_order_relaxed);
}

}  // namespace iowait::detail
