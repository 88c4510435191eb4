// Rule F1 of docs/behaviour.md: after fork(), the child makes its own
// IOWait, which works as usual, also on the fds it inherited; the parent's
// IOWait is not affected by anything the child does with its own, nor by
// the child destroying the inherited object, closing the inherited fds, or
// exiting. (The child must not use the inherited IOWait otherwise: with
// epoll, the kernel set behind it is shared with the parent.)
#include <sys/wait.h>

#include <csignal>

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

// F1: every call on an inherited IOWait fails in the child with
// errc::forked, before it reaches the kernel, so that a child that waits on
// it (with io_uring, that used to disarm the parent's watch for good)
// cannot change the parent's state. Exit status: 0 when all hold.
int child_uses_inherited(IOWait& inherited, socket_pair& p) {
    auto is_forked = [](auto call) {
        std::error_code ec;
        call(ec);
        return ec == errc::forked;
    };
    auto throws_forked = [](auto call) {
        try {
            call();
        } catch (const usage_error& e) {
            return e.code() == errc::forked && std::string_view(e.what()).find("fork") != std::string_view::npos;
        }
        return false;
    };
    if (!is_forked([&](std::error_code& ec) { inherited.wait(0ns, ec); })) return 1;
    if (!is_forked([&](std::error_code& ec) { inherited.wait(ec); })) return 2;
    if (!throws_forked([&] { inherited.wait(10ms); })) return 3;
    if (!is_forked([&](std::error_code& ec) { inherited.watch(p.b, Interest::read, 9, ec); })) return 4;
    if (!throws_forked([&] { inherited.watch(p.b, Interest::read); })) return 5;
    if (!is_forked([&](std::error_code& ec) { inherited.modify(p.a, Interest::write, 9, ec); })) return 6;
    if (!throws_forked([&] { inherited.modify(p.a, Interest::write); })) return 7;
    if (!is_forked([&](std::error_code& ec) { inherited.unwatch(p.a, ec); })) return 8;
    if (!throws_forked([&] { inherited.unwatch(p.a); })) return 9;
    if (!throws_forked([&] { inherited.notify(); })) return 10;
    if (!is_forked([&](std::error_code& ec) { inherited.notify(ec); })) return 11;
    if (!is_forked([&](std::error_code& ec) { inherited.watch_signal(SIGUSR2, 0, Mode::level, ec); })) return 12;
    if (!is_forked([&](std::error_code& ec) { inherited.watch_process(1, 0, ec); })) return 13;
    if (!is_forked([&](std::error_code& ec) { inherited.watch_timer(1s, 0s, 0, Mode::level, ec); })) return 14;
    return 0;
}

TEST_P(Fork, ChildsCallsOnTheInheritedIOWaitFailAndLeaveTheParentsWatch) {
    IOWait w{GetParam()};
    socket_pair p;
    w.watch(p.a, Interest::read, 1);
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) ::_exit(child_uses_inherited(w, p));
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "child ended by signal " << WTERMSIG(status);
    ASSERT_EQ(WEXITSTATUS(status), 0) << "child check #" << WEXITSTATUS(status) << " failed";
    // The parent's watch is as it was: nothing yet, then the new byte.
    EXPECT_TRUE(wait_events(w, 0ns).empty());
    p.send_b();
    auto events = wait_events(w, 1s);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].fd, p.a);
    EXPECT_EQ(events[0].data, 1u);
    // A second child of the same parent, after the first: the inherited
    // IOWait refuses it too, and the parent's watch is still intact.
    const pid_t pid2 = ::fork();
    ASSERT_GE(pid2, 0);
    if (pid2 == 0) ::_exit(child_uses_inherited(w, p));
    ASSERT_EQ(::waitpid(pid2, &status, 0), pid2);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "second child's check #" << WEXITSTATUS(status) << " failed";
    EXPECT_EQ(wait_events(w, 1s).size(), 1u);  // the byte is still unread: level-triggered
}

}  // namespace
}  // namespace iowait::test
