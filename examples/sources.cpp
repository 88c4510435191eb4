// One loop, four kinds of source: a socket, a signal, a child's exit and a
// timer, in one IOWait, the same on every backend (docs/behaviour.md,
// "Sources"). The child sends the parent a signal (SIGUSR1; on Windows
// SIGINT, a Ctrl+C), writes to its socket and exits with status 3; a
// periodic timer counts ticks meanwhile. ./sources [backend]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iowait/iowait.hpp>
#include <string>
#include <thread>

#include "children.hpp"
#include "sockets.hpp"

using namespace std::chrono_literals;

// The IOWait of the backend named on the command line, or the automatic one.
static iowait::IOWait make(int argc, char** argv) {
    if (argc < 2) return iowait::IOWait{};
    for (iowait::Backend b : iowait::IOWait::available_backends())
        if (iowait::to_string(b) == argv[1]) return iowait::IOWait{b};
    std::printf("SKIP: backend %s is not available in this build or kernel\n", argv[1]);
    std::exit(77);
}

// The child: a signal to the parent, a message on its socket, an exit status.
static int child_main(example::socket_t s) {
    std::this_thread::sleep_for(30ms);
    example::signal_parent();
    example::send_some(s, "hello", 5);
    return 3;
}

int main(int argc, char** argv) {
    if (!example::start_sockets()) return example::fail("WSAStartup");
    if (example::is_child(argc, argv)) return child_main(example::child_socket(argv));
    example::share_console();

    iowait::IOWait w = make(argc, argv);
    // Watched before the child starts: a signal that arrives early is not lost (nor fatal).
    enum : std::uint64_t { socket_data = 1, signal_data, child_data, timer_data };
    w.watch_signal(example::parent_signal, signal_data);
    w.watch_timer(10ms, 10ms, timer_data);

    const example::child_process child = example::start_child(child_main);
    if (child.pid < 0 || child.socket == example::no_socket) return example::fail("start_child");
    w.watch(child.socket, iowait::Interest::read, socket_data);
    w.watch_process(child.pid, child_data);

    bool got_socket = false, got_signal = false, got_child = false;
    int ticks = 0, status = -1;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!(got_socket && got_signal && got_child && ticks >= 3) && std::chrono::steady_clock::now() < deadline) {
        for (const iowait::Event& e : w.wait(1s)) {
            switch (e.data) {
            case socket_data: {
                char buf[16];
                const auto n = example::recv_some(e.fd, buf, sizeof buf);
                if (n > 0) got_socket = std::string(buf, std::size_t(n)) == "hello";
                if (n == 0) w.unwatch(e.fd);  // the child's end closed as it exited
                break;
            }
            case signal_data: got_signal = true; break;
            case child_data:  // reported once: reap it and read its status
                status = example::reap(child);
                got_child = status >= 0;
                w.unwatch(e.fd);
                break;
            case timer_data: ++ticks; break;
            }
        }
    }
    std::printf("socket %d, signal %d, child %d (exit status %d), timer ticks %d, on %s\n", got_socket, got_signal,
                got_child, status, ticks, std::string(iowait::to_string(w.backend())).c_str());
    if (!(got_socket && got_signal && got_child && ticks >= 3 && status == 3)) return std::puts("FAIL"), 1;
    std::puts("OK");
}
