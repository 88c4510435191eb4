// Which open file a fd number refers to, so that a number the program closed
// and reused is not taken for the file that was watched.
#pragma once

#include <cstdint>
#include <system_error>

#include "iowait/iowait.hpp"

namespace iowait::detail {

// POSIX: device and inode. Windows (sockets only): what Winsock can tell
// of a socket; see file_identity_windows.cpp for how little that is.
struct file_identity {
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
    bool operator==(const file_identity&) const = default;
};

// One fstat() on POSIX: also how poll and select learn, at watch time, that a
// fd is not open (EBADF), which their kernel calls only say later. On Windows
// one getsockopt(): ENOTSOCK for a handle that is not an open socket.
std::error_code identify(native_handle fd, file_identity& id) noexcept;

// EBADF for a fd that names a file without opening it for I/O (Linux's
// O_PATH: it can be neither read nor written, and epoll refuses it so), else
// nothing. One fcntl(); for the backends that key by number (epoll's own
// watch path needs none). Windows: nothing, there is no such handle.
std::error_code refuse_path_only(native_handle fd) noexcept;

}  // namespace iowait::detail
