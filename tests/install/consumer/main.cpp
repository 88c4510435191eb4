// A program outside the project, built against the installed library.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iowait/iowait.hpp>

// pkg-config's Cflags must not pin the standard: built with a later one, it stays later.
#if defined(IOWAIT_EXPECT_AFTER_CXX20) && __cplusplus <= 202002L
#error "the C++ standard was set back to C++20 or earlier"
#endif

int main() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return 1;
    iowait::IOWait w;
    w.watch(fds[0], iowait::Interest::read, 123);
    if (write(fds[1], "x", 1) != 1) return 1;
    auto events = w.wait(std::chrono::seconds(5));
    if (events.size() != 1 || events[0].data != 123 || !events[0].read) return std::puts("consumer FAILED"), 1;
    std::printf("consumer OK on %.*s\n", int(iowait::to_string(w.backend()).size()),
                iowait::to_string(w.backend()).data());
}
