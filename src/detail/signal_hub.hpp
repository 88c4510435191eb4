// The process-wide part of signal sources: one handler, installed with
// sigaction() for each signal some IOWait watches (signal_hub.cpp; on Windows
// a console control handler, signal_hub_windows.cpp), that counts the
// delivery and writes to the waker of every IOWait that watches the signal.
//
// Why a handler and not signalfd: signalfd only sees a signal that is
// blocked in every thread of the process, which a library cannot ensure (a
// thread it did not create, Python's own threads) and which would change
// what the program's other threads see. A handler receives the signal in
// whichever thread the kernel picks, works the same on every backend and
// every POSIX system, and ends the wait through its EINTR and the waker.
#pragma once

#include <cstdint>

#include "detail/status.hpp"
#include "iowait/iowait.hpp"

namespace iowait::detail::signal_hub {

// The signals a source may watch: 1..64, not SIGKILL or SIGSTOP (sigaction
// refuses them), nor SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP: a handler
// that returns from those re-runs the faulting instruction for ever.
bool watchable(int signo) noexcept;

// How many times the handler saw signo (since the process began).
std::uint64_t count(int signo) noexcept;

// A subscriber is one IOWait's waker (the fd the handler writes to).
// attach() returns its place in the hub's fixed table, or -1 (EMFILE: 64
// IOWaits watch signals already). detach() waits for handlers that may still
// write to the fd, so that the caller may then close it.
int attach(native_handle write_fd) noexcept;
void detach(int place) noexcept;

// Makes the subscriber receive signo; the first subscription in the process
// installs the handler and keeps the action it replaces, the last one
// (remove) puts that action back.
status add(int place, int signo) noexcept;
void remove(int place, int signo) noexcept;

// The handler alone, for a kernel that reports the signal itself (kqueue's
// EVFILT_SIGNAL): the default action must not run while it is watched, and
// the program's action comes back with the last release() of the process,
// as with remove(). No subscriber is written to.
status hold(int signo) noexcept;
void release(int signo) noexcept;

}  // namespace iowait::detail::signal_hub
