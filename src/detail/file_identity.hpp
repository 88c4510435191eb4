// Which open file a fd number refers to, so that a number the program closed
// and reused is not taken for the file that was watched.
#pragma once

#include <sys/stat.h>

#include <system_error>

#include "detail/sys_error.hpp"

namespace iowait::detail {

struct file_identity {
    dev_t dev = 0;
    ino_t ino = 0;
    bool operator==(const file_identity&) const = default;
};

// One fstat(): also how poll and select learn, at watch time, that a fd is
// not open (EBADF), which their kernel calls only say later.
inline std::error_code identify(int fd, file_identity& id) noexcept {
    struct stat st;
    if (::fstat(fd, &st) != 0) return last_error();
    id = {st.st_dev, st.st_ino};
    return {};
}

}  // namespace iowait::detail
