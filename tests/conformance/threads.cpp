// Rules N4-N9 of docs/behaviour.md: calls from other threads while one thread
// waits. Each test runs the waiter in its own thread and bounds every wait, so
// a lost wake-up fails the test instead of hanging it.
#include <thread>

#include "helpers.hpp"

namespace iowait::test {
namespace {

using Threads = ConformanceTest;
IOWAIT_CONFORMANCE(Threads);

// Regression: epoll keeps regular files aside (R8), and its waiter was not
// woken when one was watched or re-armed, so the wait in progress slept
// through it.
TEST_P(Threads, WatchOrRearmOfARegularFileFromAnotherThreadReachesAWaitInProgress) {
    char path[] = "/tmp/iowait-threads-XXXXXX";
    const int fd = ::mkostemp(path, O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ::unlink(path);
    for (std::uint64_t data : {5u, 6u}) {
        std::thread other([&] {
            std::this_thread::sleep_for(20ms);  // let the waiter block
            if (data == 5)
                w.watch(fd, Interest::read, data, Mode::oneshot);
            else
                w.modify(fd, Interest::read, data, Mode::oneshot);  // re-arms the fired watch
        });
        const auto start = std::chrono::steady_clock::now();
        auto events = wait_events(w, 3s);
        const auto took = std::chrono::steady_clock::now() - start;
        other.join();
        ASSERT_EQ(events.size(), 1u) << "the wait ran to its timeout without seeing the file";
        EXPECT_EQ(events[0].data, data);
        EXPECT_LT(took, 2s);
    }
    w.unwatch(fd);
    ::close(fd);
}

}  // namespace
}  // namespace iowait::test
