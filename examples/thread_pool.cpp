// A TCP echo server on loopback served by a pool of threads that all wait on
// one IOWait, and clients in the same process that check the echo:
// ./thread_pool [threads] [connections]
//
// No lock guards a connection: a fd reported to a thread is reported to no
// other until that thread waits again (docs/behaviour.md, L2), so the thread
// that gets a connection reads it, echoes it, and may close it, alone.
// notify() ends every wait in progress (L5): the pool's shutdown.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iowait/iowait.hpp>
#include <string>
#include <thread>
#include <vector>

#include "sockets.hpp"

int main(int argc, char** argv) {
    using namespace example;
    const int threads = argc > 1 ? std::atoi(argv[1]) : 4;
    const int clients = argc > 2 ? std::atoi(argv[2]) : 40;
    sockaddr_in addr;
    socket_t listener;
    if (!start_sockets() || (listener = tcp_listener(addr)) == no_socket) return fail("listen");
    set_nonblocking(listener);

    iowait::IOWait w;
    w.watch(listener, iowait::Interest::read);
    std::atomic<bool> stop{false};
    std::atomic<int> failures{0};
    std::vector<int> served(std::size_t(threads), 0);

    auto worker = [&](int me) {
        while (!stop.load()) {
            for (const iowait::Event& e : w.wait(std::chrono::seconds(5))) {
                if (e.fd == listener) {
                    socket_t s;
                    while ((s = accept_nonblocking(listener)) != no_socket) w.watch(s, iowait::Interest::read);
                    continue;
                }
                char buf[256];
                const long n = recv_some(e.fd, buf, sizeof buf);
                if (n > 0) {
                    if (send_some(e.fd, buf, std::size_t(n)) != n) ++failures;
                    ++served[std::size_t(me)];
                } else if (n == 0 || e.hangup) {
                    w.unwatch(e.fd);  // then closed: no wait reports it any more (N6)
                    close_socket(e.fd);
                }
            }
        }
        w.notify();  // a thread whose wait began after the shutdown's notify() ends too
    };
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(worker, t);

    // Clients, blocking: connect, send their number, expect it back, twice.
    std::vector<socket_t> conns;
    for (int i = 0; i < clients; ++i) {
        const socket_t c = tcp_connect(addr);
        if (c == no_socket) return fail("connect");
        conns.push_back(c);
    }
    for (int round = 0; round < 2; ++round)
        for (int i = 0; i < clients; ++i) {
            const std::string msg = "hello " + std::to_string(i) + "\n";
            if (send_some(conns[std::size_t(i)], msg.data(), msg.size()) != long(msg.size())) return fail("send");
            std::string got;
            char buf[256];
            while (got.size() < msg.size()) {
                const long n = recv_some(conns[std::size_t(i)], buf, sizeof buf);
                if (n <= 0) return fail("recv");
                got.append(buf, std::size_t(n));
            }
            if (got != msg) return std::puts("FAIL: bad echo"), 1;
        }
    for (socket_t c : conns) close_socket(c);

    stop = true;
    w.notify();
    for (auto& t : pool) t.join();
    int total = 0;
    std::printf("echoes per thread:");
    for (int n : served) {
        std::printf(" %d", n);
        total += n;
    }
    std::printf("\n%d echoes by %d threads on one IOWait (%s)\n", total, threads,
                std::string(iowait::to_string(w.backend())).c_str());
    if (total != 2 * clients || failures.load() != 0) return std::puts("FAIL"), 1;
    std::puts("OK");
}
