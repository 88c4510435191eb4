// Rule R11 of docs/behaviour.md: urgent (out-of-band) TCP data, on every backend.
#include <thread>

#include "helpers.hpp"

namespace iowait::test {
namespace {

using Urgent = ConformanceTest;
IOWAIT_CONFORMANCE(Urgent);

// A connected loopback TCP pair: AF_UNIX sockets have no urgent data.
struct tcp_pair {
    fd_t a = no_fd, b = no_fd;
    tcp_pair() {
        const fd_t listener = tcp_socket();
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        EXPECT_EQ(::bind(listener, (sockaddr*)&addr, sizeof addr), 0);
        EXPECT_EQ(::getsockname(listener, (sockaddr*)&addr, &len), 0);
        EXPECT_EQ(::listen(listener, 1), 0);
        a = tcp_socket();
        EXPECT_EQ(::connect(a, (sockaddr*)&addr, sizeof addr), 0);
        b = fd_t(::accept(listener, nullptr, nullptr));
        close_fd(listener);
        EXPECT_NE(b, no_fd);
        set_nonblocking(b);
    }
    tcp_pair(const tcp_pair&) = delete;
    tcp_pair& operator=(const tcp_pair&) = delete;
    ~tcp_pair() {
        close_fd(a);
        close_fd(b);
    }
    // Sends one urgent byte from a and waits (up to 2 s) until b has it.
    bool send_urgent() const {
        if (::send(a, "!", 1, MSG_OOB) != 1) return false;
        char c;
        for (int i = 0; i < 200; ++i) {
            if (::recv(b, &c, 1, MSG_OOB | MSG_PEEK) == 1) return true;  // arrived, out of band
            if (::recv(b, &c, 1, MSG_PEEK) == 1) return true;            // arrived, inline
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }
};

TEST_P(Urgent, UrgentDataAloneIsNotReadable) {
    // A plain recv() does not return it, so a level-triggered "readable"
    // would be reported on every wait while nothing can be read: a busy
    // loop that any peer could cause. (recv(MSG_OOB) is how it is read.)
    tcp_pair p;
    w.watch(p.b, Interest::read);
    ASSERT_TRUE(p.send_urgent());
    EXPECT_TRUE(wait_events(w, 100ms).empty());
    char c = 0;
    EXPECT_EQ(recv_some(p.b, &c, 1), -1) << "a plain recv() returned the urgent byte";
    ASSERT_EQ(send_some(p.a, "x", 1), 1);
    EXPECT_TRUE(expect_event(w, p.b).read);
}

TEST_P(Urgent, InlineUrgentDataIsReadableAsAnyData) {
    // SO_OOBINLINE: the urgent byte is in the stream, and a plain recv() reads it.
    tcp_pair p;
    const int on = 1;
    ASSERT_EQ(::setsockopt(p.b, SOL_SOCKET, SO_OOBINLINE, (const char*)&on, sizeof on), 0);
    w.watch(p.b, Interest::read);
    ASSERT_TRUE(p.send_urgent());
    EXPECT_TRUE(expect_event(w, p.b).read);
    char c = 0;
    EXPECT_EQ(recv_some(p.b, &c, 1), 1);
    EXPECT_EQ(c, '!');
    EXPECT_TRUE(wait_events(w).empty());
}

}  // namespace
}  // namespace iowait::test
