// How many times this process's line has forked: so that an IOWait can tell,
// with one load and no system call, that it is used in a child (rule F1).
#pragma once

#include <atomic>
#include <cstdint>

namespace iowait::detail {

// Bumped in every child by a pthread_atfork() handler (fork_count.cpp), so
// a child's count differs from the one its parent's IOWait recorded. Always
// 0 on Windows (fork_count_windows.cpp), which has no fork().
extern std::atomic<std::uint32_t> fork_count;

// Registers the handler (once per process, the first time) and returns the
// count now: what a new IOWait records.
std::uint32_t watch_forks() noexcept;

}  // namespace iowait::detail
