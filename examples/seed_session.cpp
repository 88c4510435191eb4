// The session from the original Python module's page, in C++: a socket pair,
// a read watch, "this is a test" sent, the read event, recv, and wait(0) empty.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iowait/iowait.hpp>

int main() {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return perror("socketpair"), 1;
    const int a = pair[0], b = pair[1];

    iowait::IOWait waitobj;  // the best backend here, or IOWAIT_BACKEND's
    std::printf("backend: %s\n", std::string(iowait::to_string(waitobj.backend())).c_str());
    waitobj.watch(a, iowait::Interest::read);

    const char msg[] = "this is a test";
    if (send(b, msg, std::strlen(msg), 0) != ssize_t(std::strlen(msg))) return perror("send"), 1;

    auto events = waitobj.wait();
    for (const iowait::Event& e : events)
        std::printf("IOEvent(fd=%d, read=%s, write=%s)\n", e.fd, e.read ? "True" : "False", e.write ? "True" : "False");
    if (events.size() != 1 || events[0].fd != a || !events[0].read)
        return std::puts("FAIL: expected a read event on a"), 1;

    char buf[64] = {};
    const ssize_t n = recv(a, buf, sizeof buf - 1, 0);
    std::printf("recv: '%s'\n", buf);
    if (n != ssize_t(std::strlen(msg))) return 1;

    events = waitobj.wait(std::chrono::milliseconds(0));
    std::printf("wait(0): %zu events\n", events.size());
    if (!events.empty()) return std::puts("FAIL: wait(0) should be empty"), 1;
    close(a);
    close(b);
    std::puts("OK");
}
