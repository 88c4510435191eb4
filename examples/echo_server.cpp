// A TCP echo server on loopback with one IOWait, and a client in the same
// process that checks the echo: ./echo_server [connections]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iowait/iowait.hpp>
#include <string>

#include "sockets.hpp"

int main(int argc, char** argv) {
    using namespace example;
    const int clients = argc > 1 ? std::atoi(argv[1]) : 10;
    sockaddr_in addr;
    socket_t listener;
    if (!start_sockets() || (listener = tcp_listener(addr)) == no_socket) return fail("listen");
    set_nonblocking(listener);

    iowait::IOWait w;
    w.watch(listener, iowait::Interest::read);

    // Clients: connect, send their number, expect it back.
    for (int i = 0; i < clients; ++i) {
        const socket_t c = tcp_connect(addr);
        if (c == no_socket) return fail("connect");
        const std::string msg = "hello " + std::to_string(i) + "\n";
        if (send_some(c, msg.data(), msg.size()) != long(msg.size())) return fail("send");
        w.watch(c, iowait::Interest::read, std::uint64_t(1000 + i));  // client side: data = 1000 + index
    }

    int echoed = 0;
    while (echoed < clients) {
        for (const iowait::Event& e : w.wait(std::chrono::seconds(5))) {
            if (e.fd == listener) {
                socket_t s;
                while ((s = accept_nonblocking(listener)) != no_socket)
                    w.watch(s, iowait::Interest::read);  // server side: data = 0
            } else if (e.data == 0) {
                char buf[256];
                const long n = recv_some(e.fd, buf, sizeof buf);
                if (n > 0) send_some(e.fd, buf, std::size_t(n));
                if (n == 0 || e.hangup) {
                    w.unwatch(e.fd);
                    close_socket(e.fd);
                }
            } else {
                char buf[256];
                const long n = recv_some(e.fd, buf, sizeof buf);
                const std::string want = "hello " + std::to_string(e.data - 1000) + "\n";
                if (std::string(buf, std::size_t(n > 0 ? n : 0)) != want) return std::puts("FAIL: bad echo"), 1;
                w.unwatch(e.fd);
                close_socket(e.fd);
                ++echoed;
            }
        }
    }
    std::printf("echoed %d connections on %s\nOK\n", echoed, std::string(iowait::to_string(w.backend())).c_str());
}
