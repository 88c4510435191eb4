// Rule F1 of docs/behaviour.md: after fork(), the child makes its own
// IOWait, which works as usual, also on the fds it inherited; the parent's
// IOWait is not affected by anything the child does with its own, nor by
// the child destroying the inherited object, closing the inherited fds, or
// exiting. (The child must not use the inherited IOWait otherwise: with
// epoll, the kernel set behind it is shared with the parent.)
#include <sys/wait.h>

#include "stress.hpp"

namespace iowait::test {
namespace {

class Fork : public testing::TestWithParam<Backend> {};
INSTANTIATE_TEST_SUITE_P(Stress, Fork, testing::ValuesIn(IOWait::available_backends()), name_of);

// The child's checks, as an exit status: 0 when all hold, else the number
// of the first that failed. (No gtest in the child: its output and state
// belong to the parent.)
int child(Backend backend, std::unique_ptr<IOWait> inherited, socket_pair& p) {
    IOWait own{backend};
    own.watch(p.a, Interest::read, 2);
    if (!own.wait(0ns).empty()) return 1;
    if (::send(p.b, "c", 1, 0) != 1) return 2;
    auto events = own.wait(5s);
    if (events.size() != 1 || events[0].fd != p.a || !events[0].read || events[0].data != 2) return 3;
    own.unwatch(p.a);
    inherited.reset();  // closes the child's copies of the inherited kernel objects
    ::close(p.a);
    ::close(p.b);
    return 0;
}

TEST_P(Fork, ChildMakesItsOwnIOWaitAndTheParentsWatchesAreUnaffected) {
    auto w = std::make_unique<IOWait>(GetParam());
    socket_pair p, idle;
    w->watch(p.a, Interest::read, 1);
    w->watch(idle.a, Interest::read, 3);
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) ::_exit(child(GetParam(), std::move(w), p));
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "child ended by signal " << WTERMSIG(status);
    ASSERT_EQ(WEXITSTATUS(status), 0) << "child check #" << WEXITSTATUS(status) << " failed";

    // The child's byte is there; the parent's watch reports it, once per wait.
    auto events = wait_events(*w, 1s);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].fd, p.a);
    EXPECT_EQ(events[0].data, 1u);
    EXPECT_EQ(p.recv_a(), "c");
    EXPECT_TRUE(wait_events(*w, 0ns).empty());
    // The other watch, untouched by the child, still works, and so do changes.
    idle.send_b();
    events = wait_events(*w, 1s);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, 3u);
    w->modify(idle.a, Interest::write, 4);
    events = wait_events(*w, 1s);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, 4u);
    // notify() in the parent still wakes the parent.
    w->notify();
    w->unwatch(idle.a);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(wait_events(*w, 5s).empty());
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << "notify() did not wake the parent's wait";
}

}  // namespace
}  // namespace iowait::test
