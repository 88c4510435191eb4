// Windows has no fork(): the count stays 0 and every IOWait is usable.
#include "detail/fork_count.hpp"

namespace iowait::detail {

std::atomic<std::uint32_t> fork_count{0};

std::uint32_t watch_forks() noexcept { return 0; }

}  // namespace iowait::detail
