// Windows only: starting Winsock, and turning its errors into the errno
// values of the generic category that every backend reports (backend.hpp).
#pragma once

#include <winsock2.h>

#include <ctime>
#include <system_error>

namespace iowait::detail {

// WSAStartup once per process (Winsock counts the calls; we never undo ours,
// since sockets of the program may outlive any IOWait). Every Windows backend
// calls it before its first socket call.
std::error_code winsock_start() noexcept;

// A WSA error code as an errno value in the generic category, so that
// callers compare with std::errc on every platform; codes without a POSIX
// twin stay in the system category.
std::error_code wsa_error(int code) noexcept;
inline std::error_code last_wsa_error() noexcept { return wsa_error(::WSAGetLastError()); }

// A connected pair of non-blocking, non-inheritable TCP sockets on the
// loopback interface: Windows has no socketpair(). Used by the wakers.
std::error_code loopback_pair(SOCKET (&out)[2]) noexcept;

// Sends one wake-up byte on the write end of such a pair. WSAEWOULDBLOCK
// does not always mean a full buffer (bytes already wait for the reader):
// Wine refuses a non-blocking send while another thread's send on the same
// socket is still in flight, and that byte would be lost (measured: about
// one notify() in 2,000 under four notifying threads, the waiter then slept
// its whole timeout). So it waits, a bounded time, for the socket to take
// the byte; a buffer still full after that holds wakes enough.
void send_wake_byte(SOCKET write_end) noexcept;

// Nanoseconds to whole milliseconds for Windows' waits, rounded up (a 1 ns
// timeout must not become 0) and capped below INFINITE: the front end waits
// again for whatever is left. A null timeout is INFINITE.
unsigned long timeout_ms(const ::timespec* ts) noexcept;

}  // namespace iowait::detail
