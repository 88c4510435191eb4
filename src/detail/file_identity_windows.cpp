// Windows: what identity a socket handle has.
//
// Winsock gives a socket no inode: nothing tells a handle value that was
// closed and handed out again from the socket that was watched. What can be
// checked is that the handle still is an open socket (getsockopt fails with
// WSAENOTSOCK once it is closed) and of the same type. A program cannot pick
// the value of a new handle (there is no dup2), so the reuse rule C3 is
// documented as not testable on Windows; unwatch before closesocket().
#include <winsock2.h>

#include "detail/file_identity.hpp"
#include "detail/winsock.hpp"

namespace iowait::detail {

std::error_code identify(native_handle fd, file_identity& id) noexcept {
    int type = 0;
    int len = sizeof type;
    if (::getsockopt(SOCKET(fd), SOL_SOCKET, SO_TYPE, reinterpret_cast<char*>(&type), &len) != 0)
        return last_wsa_error();
    id = {std::uint64_t(type), 0};
    return {};
}

}  // namespace iowait::detail

namespace iowait::detail {

// No handle names a socket without opening it: nothing to refuse.
std::error_code refuse_path_only(native_handle) noexcept { return {}; }

}  // namespace iowait::detail
