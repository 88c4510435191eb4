// A TCP echo server on loopback with one IOWait, and a client in the same
// process that checks the echo: ./echo_server [connections]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iowait/iowait.hpp>
#include <string>
#include <vector>

static void nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

int main(int argc, char** argv) {
    const int clients = argc > 1 ? std::atoi(argv[1]) : 10;
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(listener, (sockaddr*)&addr, sizeof addr) != 0 || listen(listener, 128) != 0 ||
        getsockname(listener, (sockaddr*)&addr, &len) != 0)
        return perror("listen"), 1;
    nonblocking(listener);

    iowait::IOWait w;
    w.watch(listener, iowait::Interest::read);

    // Clients: connect, send their number, expect it back.
    std::vector<int> conns;
    for (int i = 0; i < clients; ++i) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(c, (sockaddr*)&addr, sizeof addr) != 0) return perror("connect"), 1;
        std::string msg = "hello " + std::to_string(i) + "\n";
        send(c, msg.data(), msg.size(), 0);
        w.watch(c, iowait::Interest::read, std::uint64_t(1000 + i));  // client side: data = 1000 + index
        conns.push_back(c);
    }

    int echoed = 0;
    while (echoed < clients) {
        for (const iowait::Event& e : w.wait(std::chrono::seconds(5))) {
            if (e.fd == listener) {
                int s;
                while ((s = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0)
                    w.watch(s, iowait::Interest::read);  // server side: data = 0
            } else if (e.data == 0) {
                char buf[256];
                const ssize_t n = recv(e.fd, buf, sizeof buf, 0);
                if (n > 0) send(e.fd, buf, size_t(n), 0);
                if (n == 0 || e.hangup) {
                    w.unwatch(e.fd);
                    close(e.fd);
                }
            } else {
                char buf[256];
                const ssize_t n = recv(e.fd, buf, sizeof buf, 0);
                const std::string want = "hello " + std::to_string(e.data - 1000) + "\n";
                if (std::string(buf, size_t(n > 0 ? n : 0)) != want) return std::puts("FAIL: bad echo"), 1;
                w.unwatch(e.fd);
                close(e.fd);
                ++echoed;
            }
        }
    }
    std::printf("echoed %d connections on %s\nOK\n", echoed, std::string(iowait::to_string(w.backend())).c_str());
}
