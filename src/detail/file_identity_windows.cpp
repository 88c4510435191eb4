// Windows: what identity a handle has.
//
// Neither a socket nor another handle has an inode: nothing tells a handle
// value that was closed and handed out again from the one that was watched.
// What can be checked is that the handle is still open (getsockopt fails
// with WSAENOTSOCK once a socket is closed, GetHandleInformation with
// ERROR_INVALID_HANDLE for any handle) and of the same kind: a socket of the
// same type, or a handle that is no socket. A program cannot pick the value of
// a new handle (there is no dup2), so the reuse rule C3 is documented as
// not testable on Windows; unwatch before closing.
#include <winsock2.h>
// after winsock2.h, which it would otherwise contradict
#include <windows.h>

#include "detail/file_identity.hpp"
#include "detail/winsock.hpp"

namespace iowait::detail {

std::error_code identify(native_handle fd, file_identity& id) noexcept {
    int type = 0;
    int len = sizeof type;
    if (::getsockopt(SOCKET(fd), SOL_SOCKET, SO_TYPE, reinterpret_cast<char*>(&type), &len) == 0) {
        id = {std::uint64_t(type), 0};
        return {};
    }
    if (::WSAGetLastError() != WSAENOTSOCK) return last_wsa_error();
    // NOLINTNEXTLINE(performance-no-int-to-ptr): a handle
    const auto handle = reinterpret_cast<HANDLE>(fd);
    DWORD flags = 0;
    if (!::GetHandleInformation(handle, &flags)) return wsa_error(int(::GetLastError()));
    // Not GetFileType: on a synchronous pipe it waits behind a blocked read
    // (the handle set's reader thread), as every call on the file does.
    id = {std::uint64_t(0x10000), 0};
    return {};
}

// No handle names a file without opening it: nothing to refuse.
std::error_code refuse_path_only(native_handle) noexcept { return {}; }

}  // namespace iowait::detail
