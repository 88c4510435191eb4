// The session from the original Python module's page, in C++: a socket pair,
// a read watch, "this is a test" sent, the read event, recv, and wait(0) empty.
// A Unix socket pair on POSIX, a loopback TCP pair on Windows (sockets.hpp).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iowait/iowait.hpp>
#include <string>

#include "sockets.hpp"

int main() {
    using namespace example;
    socket_t pair[2];
    if (!start_sockets() || !socket_pair(pair)) return fail("socket pair");
    const socket_t a = pair[0], b = pair[1];

    iowait::IOWait waitobj;  // the best backend here, or IOWAIT_BACKEND's
    std::printf("backend: %s\n", std::string(iowait::to_string(waitobj.backend())).c_str());
    waitobj.watch(a, iowait::Interest::read);

    const char msg[] = "this is a test";
    const long len = long(std::strlen(msg));
    if (send_some(b, msg, std::strlen(msg)) != len) return fail("send");

    auto events = waitobj.wait();
    for (const iowait::Event& e : events)
        std::printf("IOEvent(fd=%lld, read=%s, write=%s)\n", static_cast<long long>(e.fd), e.read ? "True" : "False",
                    e.write ? "True" : "False");
    if (events.size() != 1 || events[0].fd != a || !events[0].read)
        return std::puts("FAIL: expected a read event on a"), 1;

    char buf[64] = {};
    const long n = recv_some(a, buf, sizeof buf - 1);
    std::printf("recv: '%s'\n", buf);
    if (n != len) return std::puts("FAIL: recv did not return the whole message"), 1;

    events = waitobj.wait(std::chrono::milliseconds(0));
    std::printf("wait(0): %zu events\n", events.size());
    if (!events.empty()) return std::puts("FAIL: wait(0) should be empty"), 1;
    waitobj.unwatch(a);
    close_socket(a);
    close_socket(b);
    std::puts("OK");
}
