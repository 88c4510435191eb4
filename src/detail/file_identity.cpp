// POSIX: a file is its device and inode.
#include "detail/file_identity.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include "detail/sys_error.hpp"

namespace iowait::detail {

std::error_code identify(native_handle fd, file_identity& id) noexcept {
    struct stat st;
    if (::fstat(fd, &st) != 0) return last_error();
    id = {std::uint64_t(st.st_dev), std::uint64_t(st.st_ino)};
    return {};
}

std::error_code refuse_path_only([[maybe_unused]] native_handle fd) noexcept {
#ifdef O_PATH
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0) return last_error();
    if (flags & O_PATH) return sys_error(EBADF);
#endif
    return {};
}

}  // namespace iowait::detail
