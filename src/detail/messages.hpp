// The message of a failed call, written once for both interfaces: the what()
// of the exception a C++ call throws, and what iowait_last_error() gives for
// the same failure of the C call: "iowait: watch(fd=7) on epoll: already
// watched", "iowait: watch_signal(signo=9) on epoll: Invalid argument".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "iowait/iowait.hpp"

namespace iowait::detail {

// A call as its message names it: op, then its argument where it has one,
// "watch(fd=7)", "watch_process(pid=1)"; an fd that is a source's id reads
// "unwatch(source=-2)".
struct call {
    std::string_view op;
    const char* arg = nullptr;  // "fd", "signo", "pid"; null: none
    std::int64_t value = 0;
};
inline call fd_call(std::string_view op, native_handle fd) noexcept {
    return {op, "fd", std::int64_t(std::intptr_t(fd))};
}

// backend: empty where there is none yet (a constructor that failed first).
std::string error_message(std::error_code ec, const call& c, std::string_view backend);
// usage_error for iowait_category()'s codes, std::system_error for the kernel's.
[[noreturn]] void throw_error(std::error_code ec, const call& c, std::string_view backend);

}  // namespace iowait::detail
