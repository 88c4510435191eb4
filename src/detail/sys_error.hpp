// Turning a failed system call into an error_code, in one place.
#pragma once

#include <cerrno>
#include <ctime>
#include <system_error>

namespace iowait::detail {

inline std::error_code last_error() noexcept { return {errno, std::generic_category()}; }
inline std::error_code sys_error(int e) noexcept { return {e, std::generic_category()}; }

// Nanoseconds to a timespec for the kernel; the caller has ruled out negatives.
// ::timespec, not std::timespec: mingw-w64's <ctime> has only the C one.
inline ::timespec to_timespec(std::int64_t ns) noexcept {
    return {std::time_t(ns / 1'000'000'000), long(ns % 1'000'000'000)};
}

}  // namespace iowait::detail
