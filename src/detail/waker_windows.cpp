// Windows: a loopback TCP socket pair, the one kernel object WSAPoll can
// wait on besides the program's sockets (it takes no events or pipes).
// signal() sends a byte on one end; the backend watches the other for read.
#include <winsock2.h>

#include "detail/waker.hpp"
#include "detail/winsock.hpp"

namespace iowait::detail {

waker::waker(std::error_code& ec) noexcept {
    if ((ec = winsock_start())) return;
    SOCKET pair[2];
    if ((ec = loopback_pair(pair))) return;
    read_ = pair[0];
    write_ = pair[1];
}

void waker::reset() noexcept {
    if (read_ != none) ::closesocket(SOCKET(read_));
    if (write_ != none) ::closesocket(SOCKET(write_));
    read_ = write_ = none;
}

void waker::signal() noexcept { send_wake_byte(SOCKET(write_)); }

void waker::drain() noexcept {
    char buf[256];
    while (::recv(SOCKET(read_), buf, sizeof buf, 0) > 0) {
    }
}

}  // namespace iowait::detail
