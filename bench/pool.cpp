// A thread-pool echo server: T threads on one IOWait (shared), beside T
// IOWaits with one thread each (split), T threads on one IOWait with
// oneshot watches re-armed by modify() after each read (oneshot: what a pool
// does where the poller has no rule for several waiters), and, for scale, T
// threads in epoll_wait() on one raw epoll set with EPOLLONESHOT re-armed by
// EPOLL_CTL_MOD (raw-oneshot: the kernel's own way, with no rule of ours).
// docs/behaviour.md, "Several waiters"; bench/pool_run prints the table.
//
// C connections (socket pairs); a client thread of its own (raw epoll)
// keeps one message in flight on each: it sends, the server reads and
// writes it back, the client reads the echo and sends the next, until M
// echoes in all. An event is one message read and echoed by a server thread.
//
//   iowait-pool-bench MODE T [C] [M] [backend]
//     MODE shared | split | oneshot | raw-oneshot; T threads; C connections (default 64);
//     M messages (default 200000). Prints: mode T events seconds events/s.
// Under callgrind, --toggle-collect=serve counts the server threads alone.
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iowait/iowait.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

std::atomic<bool> stop{false};
std::atomic<long> served{0};

// One server thread: wait, read each ready connection, echo it. Not
// inlined, so that callgrind's --toggle-collect=serve finds it.
[[gnu::noinline]] void serve(iowait::IOWait* w, bool oneshot) {
    char buf[256];
    long n_served = 0;
    while (!stop.load(std::memory_order_relaxed)) {
        for (const iowait::Event& e : w->wait()) {
            const ssize_t n = ::recv(e.fd, buf, sizeof buf, 0);
            if (n > 0) {
                if (::send(e.fd, buf, std::size_t(n), 0) != n) std::abort();
                ++n_served;
            }
            if (oneshot) w->modify(e.fd, iowait::Interest::read, e.data, iowait::Mode::oneshot);
        }
    }
    // A thread whose wait began after the last notify() ends it too: each
    // thread that leaves passes the wake on (docs/behaviour.md, L5).
    w->notify();
    served += n_served;
}

[[gnu::noinline]] void serve_raw(int ep) {
    char buf[256];
    long n_served = 0;
    epoll_event evs[64];
    while (!stop.load(std::memory_order_relaxed)) {
        const int n = ::epoll_wait(ep, evs, 64, 100);
        for (int k = 0; k < n; ++k) {
            const int fd = int(evs[k].data.u32);
            const ssize_t got = ::recv(fd, buf, sizeof buf, 0);
            if (got > 0) {
                if (::send(fd, buf, std::size_t(got), 0) != got) std::abort();
                ++n_served;
            }
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLONESHOT;
            ev.data.u32 = std::uint32_t(fd);
            ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
        }
    }
    served += n_served;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: iowait-pool-bench shared|split|oneshot T [C] [M] [backend]\n");
        return 2;
    }
    const std::string mode = argv[1];
    const int threads = std::atoi(argv[2]);
    const int conns = argc > 3 ? std::atoi(argv[3]) : 64;
    const long messages = argc > 4 ? std::atol(argv[4]) : 200000;
    iowait::Backend backend = iowait::IOWait::available_backends().front();
    if (argc > 5)
        for (iowait::Backend b : iowait::IOWait::available_backends())
            if (iowait::to_string(b) == argv[5]) backend = b;
    const bool raw = mode == "raw-oneshot";
    if (threads < 1 || conns < threads || (mode != "shared" && mode != "split" && mode != "oneshot" && !raw)) return 2;

    const int loops = mode == "split" ? threads : 1;
    std::vector<std::unique_ptr<iowait::IOWait>> w;
    for (int i = 0; i < loops; ++i) w.push_back(std::make_unique<iowait::IOWait>(backend));
    const iowait::Mode watch_mode = mode == "oneshot" ? iowait::Mode::oneshot : iowait::Mode::level;
    std::vector<int> client(static_cast<std::size_t>(conns)), server(static_cast<std::size_t>(conns));
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    const int raw_ep = ::epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < conns; ++i) {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return 1;
        client[std::size_t(i)] = fds[0];
        server[std::size_t(i)] = fds[1];
        epoll_event ev{};
        if (raw) {
            ev.events = EPOLLIN | EPOLLONESHOT;
            ev.data.u32 = std::uint32_t(fds[1]);
            ::epoll_ctl(raw_ep, EPOLL_CTL_ADD, fds[1], &ev);
        } else {
            w[std::size_t(i % loops)]->watch(fds[1], iowait::Interest::read, std::uint64_t(i), watch_mode);
        }
        ev.events = EPOLLIN;
        ev.data.u32 = std::uint32_t(i);
        ::epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev);
    }

    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        if (raw)
            pool.emplace_back(serve_raw, raw_ep);
        else
            pool.emplace_back(serve, w[std::size_t(t % loops)].get(), watch_mode == iowait::Mode::oneshot);

    const auto start = std::chrono::steady_clock::now();
    long sent = 0, echoed = 0;
    for (int i = 0; i < conns && sent < messages; ++i, ++sent)
        if (::send(client[std::size_t(i)], "ping", 4, 0) != 4) return 1;
    epoll_event evs[64];
    char buf[256];
    while (echoed < messages) {
        const int n = ::epoll_wait(ep, evs, 64, 5000);
        // EINTR: a stop and continue of the process ends epoll_wait on Linux
        // (signal(7)), here without a signal handler of ours.
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            std::fprintf(stderr, "iowait-pool-bench: no echo for 5 s (%ld of %ld)", echoed, messages);
            // Where the messages wait: unread at the server (a report lost)
            // or at the client (an echo the client's epoll missed).
            for (int i = 0; i < conns; ++i) {
                int at_server = 0, at_client = 0;
                ::ioctl(server[std::size_t(i)], FIONREAD, &at_server);
                ::ioctl(client[std::size_t(i)], FIONREAD, &at_client);
                if (at_server || at_client)
                    std::fprintf(stderr, "; connection %d (fd %d): %d bytes unread by the server, %d by the client", i,
                                 server[std::size_t(i)], at_server, at_client);
            }
            std::fprintf(stderr, "\n");
            std::_Exit(1);
        }
        for (int k = 0; k < n; ++k) {
            const int fd = client[evs[k].data.u32];
            const ssize_t got = ::recv(fd, buf, sizeof buf, 0);
            if (got <= 0) continue;
            echoed += got / 4;
            for (ssize_t m = 0; m < got / 4 && sent < messages; ++m, ++sent)
                if (::send(fd, "ping", 4, 0) != 4) return 1;
        }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    stop = true;
    for (auto& x : w) x->notify();
    for (auto& t : pool) t.join();
    std::printf("%s\t%d\t%ld\t%.3f\t%.0f\n", mode.c_str(), threads, served.load(), seconds,
                double(served.load()) / seconds);
    return 0;
}
