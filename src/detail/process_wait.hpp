// Windows: a process as a source. Its handle is waited on by the system's
// thread pool (RegisterWaitForSingleObject, once); the callback marks the
// process exited and writes a byte to the IOWait's source waker, a socket
// the backend watches (afd and wsapoll alike: both wait on sockets only).
#pragma once

#include <cstdint>

#include "detail/status.hpp"
#include "iowait/iowait.hpp"

namespace iowait::detail {

class process_wait;

// Opens process pid (SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION: our
// own handle, the caller's stay untouched) and, unless it has exited
// already, registers the wait whose callback writes to wake_fd. out is null
// when it had exited (exited is then true).
status process_wait_start(std::int64_t pid, native_handle wake_fd, process_wait*& out, bool& exited) noexcept;
// Whether the callback has run (the process has exited).
bool process_wait_exited(const process_wait* w) noexcept;
// Unregisters the wait, waiting for a callback that runs now, so that none
// runs once it returns; closes our process handle. Null does nothing.
void process_wait_stop(process_wait* w) noexcept;

}  // namespace iowait::detail
