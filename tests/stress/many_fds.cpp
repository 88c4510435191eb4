// As many watched fds as RLIMIT_NOFILE allows (raised to the hard limit;
// 20,000 on the CI machine, so about 19,900 eventfds; 100,000 where the
// limit allows), on every backend that can hold them (not select: FD_SETSIZE).
// One of them made ready must be reported, alone, by one wait.
#include <sys/eventfd.h>

#include <cstring>
#include <random>

#include "stress.hpp"

namespace iowait::test {
namespace {

class ManyFds : public testing::TestWithParam<Backend> {};

std::vector<Backend> scalable_backends() {
    std::vector<Backend> out;
    for (Backend b : IOWait::available_backends())
        if (b != Backend::select) out.push_back(b);
    return out;
}

INSTANTIATE_TEST_SUITE_P(Stress, ManyFds, testing::ValuesIn(scalable_backends()), name_of);

struct fd_set_guard {
    std::vector<int> fds;
    ~fd_set_guard() {
        for (int fd : fds) ::close(fd);
    }
};

TEST_P(ManyFds, OneReadyAmongAllTheFdsTheLimitAllowsIsReportedInOneWait) {
    const rlim_t limit = raise_fd_limit();
    IOWait w{GetParam()};
    // Room for what the process (gtest, the IOWait) and the kernel objects of
    // a poll call may still need.
    const long room = long(limit) - open_fd_count() - 16;
    const long target = std::min(room, 100'000L);
    ASSERT_GT(target, 1000) << "RLIMIT_NOFILE " << limit << " leaves too few fds for a stress test";
    fd_set_guard guard;
    guard.fds.reserve(std::size_t(target));
    for (long i = 0; i < target; ++i) {
        const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        ASSERT_GE(fd, 0) << "eventfd #" << i << ": " << std::strerror(errno);
        guard.fds.push_back(fd);
        w.watch(fd, Interest::read, std::uint64_t(fd));
    }
    std::cout << "[ NOTE     ] watching " << target << " eventfds (RLIMIT_NOFILE " << limit << ")\n";
    EXPECT_TRUE(wait_events(w, 0ns).empty()) << "nothing is ready yet";

    std::mt19937 rng(12345);
    for (int round = 0; round < 3; ++round) {
        const int fd = guard.fds[rng() % guard.fds.size()];
        const std::uint64_t one = 1;
        ASSERT_EQ(::write(fd, &one, sizeof one), ssize_t(sizeof one));
        auto events = wait_events(w, 5s);
        ASSERT_EQ(events.size(), 1u) << "round " << round;
        EXPECT_EQ(events[0].fd, fd);
        EXPECT_TRUE(events[0].read);
        EXPECT_EQ(events[0].data, std::uint64_t(fd));
        std::uint64_t value;
        ASSERT_EQ(::read(fd, &value, sizeof value), ssize_t(sizeof value));
        EXPECT_TRUE(wait_events(w, 0ns).empty());
    }
    for (int fd : guard.fds) w.unwatch(fd);
}

}  // namespace
}  // namespace iowait::test
