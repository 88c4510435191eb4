// Shared test helpers: socket pairs, buffers, and running one test body on
// every backend compiled in.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iowait/iowait.hpp>
#include <string>
#include <vector>

namespace iowait {
// So gtest names a backend parameter by its name, not its bytes.
inline void PrintTo(Backend b, std::ostream* os) { *os << to_string(b); }
}  // namespace iowait

namespace iowait::test {

using namespace std::chrono_literals;

inline void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// A connected, non-blocking AF_UNIX stream pair, closed on destruction
// (unless a test closed an end itself and said so with release_a/b).
struct socket_pair {
    int a = -1, b = -1;
    socket_pair() {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0)
            throw std::system_error(errno, std::generic_category(), "socketpair");
        a = fds[0];
        b = fds[1];
    }
    socket_pair(const socket_pair&) = delete;
    socket_pair& operator=(const socket_pair&) = delete;
    ~socket_pair() {
        if (a >= 0) ::close(a);
        if (b >= 0) ::close(b);
    }
    void close_a() { ::close(std::exchange(a, -1)); }
    void close_b() { ::close(std::exchange(b, -1)); }
    void send_b(const std::string& s = "x") const { ASSERT_EQ(::send(b, s.data(), s.size(), 0), ssize_t(s.size())); }
    std::string recv_a() const {
        char buf[4096];
        const ssize_t n = ::recv(a, buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, size_t(n)) : std::string();
    }
};

// Writes into fd until the kernel's buffer is full (EAGAIN).
inline void fill(int fd) {
    static const std::string chunk(65536, 'f');
    while (::send(fd, chunk.data(), chunk.size(), MSG_DONTWAIT) > 0) {
    }
}

// The events of one wait(), copied out of the span.
inline std::vector<Event> wait_events(IOWait& w, std::chrono::nanoseconds timeout = 0ns) {
    auto span = w.wait(timeout);
    return {span.begin(), span.end()};
}

inline const Event* find_event(const std::vector<Event>& events, int fd) {
    auto it = std::find_if(events.begin(), events.end(), [fd](const Event& e) { return e.fd == fd; });
    return it == events.end() ? nullptr : &*it;
}

// Waits (up to `limit`) until fd is reported; returns its event or fails.
inline Event expect_event(IOWait& w, int fd, std::chrono::milliseconds limit = 2000ms) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        auto events = wait_events(w, 50ms);
        if (auto* e = find_event(events, fd)) return *e;
    }
    ADD_FAILURE() << "no event for fd " << fd << " within " << limit.count() << " ms";
    return Event{fd, false, false, false, false, 0};
}

inline std::string name_of(const testing::TestParamInfo<Backend>& info) { return std::string(to_string(info.param)); }

// The fixture of every conformance test: GetParam() is the backend.
class ConformanceTest : public testing::TestWithParam<Backend> {
protected:
    IOWait w{GetParam()};
    bool is(Backend b) const { return GetParam() == b; }
};

}  // namespace iowait::test

// Runs the test suite `suite` (an alias of ConformanceTest) on every backend
// this build and kernel can use; names read Conformance/<suite>.<test>/<backend>.
#define IOWAIT_CONFORMANCE(suite)                                                                         \
    INSTANTIATE_TEST_SUITE_P(Conformance, suite, testing::ValuesIn(iowait::IOWait::available_backends()), \
                             iowait::test::name_of)
