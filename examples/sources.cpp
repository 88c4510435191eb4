// One loop, four kinds of source: a socket, a signal, a child's exit and a
// timer, in one IOWait, the same on every backend (docs/behaviour.md,
// "Sources"). The child sends the parent SIGUSR1, writes to its socket and
// exits; a periodic timer counts ticks meanwhile. POSIX: ./sources [backend]
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iowait/iowait.hpp>
#include <string>

// The IOWait of the backend named on the command line, or the automatic one.
static iowait::IOWait make(int argc, char** argv) {
    if (argc < 2) return iowait::IOWait{};
    for (iowait::Backend b : iowait::IOWait::available_backends())
        if (iowait::to_string(b) == argv[1]) return iowait::IOWait{b};
    std::printf("SKIP: backend %s is not available in this build or kernel\n", argv[1]);
    std::exit(77);
}

int main(int argc, char** argv) {
    using namespace std::chrono_literals;
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) return std::perror("socketpair"), 1;

    iowait::IOWait w = make(argc, argv);
    // Watched before the fork: a SIGUSR1 that arrives early is not lost (nor fatal).
    enum : std::uint64_t { socket_data = 1, signal_data, child_data, timer_data };
    w.watch(pair[0], iowait::Interest::read, socket_data);
    w.watch_signal(SIGUSR1, signal_data);
    w.watch_timer(10ms, 10ms, timer_data);

    const pid_t pid = ::fork();
    if (pid == 0) {
        ::usleep(30'000);
        ::kill(::getppid(), SIGUSR1);
        [[maybe_unused]] auto n = ::write(pair[1], "hello", 5);
        ::_exit(3);
    }
    w.watch_process(pid, child_data);

    bool got_socket = false, got_signal = false, got_child = false;
    int ticks = 0, status = -1;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!(got_socket && got_signal && got_child && ticks >= 3) && std::chrono::steady_clock::now() < deadline) {
        for (const iowait::Event& e : w.wait(1s)) {
            switch (e.data) {
            case socket_data: {
                char buf[16];
                const auto n = ::read(e.fd, buf, sizeof buf);
                if (n > 0) got_socket = std::string(buf, std::size_t(n)) == "hello";
                if (n == 0) w.unwatch(e.fd);  // the child's end closed as it exited
                break;
            }
            case signal_data: got_signal = true; break;
            case child_data:  // reported once: reap it and read its status
                got_child = ::waitpid(pid, &status, 0) == pid;
                w.unwatch(e.fd);
                break;
            case timer_data: ++ticks; break;
            }
        }
    }
    std::printf("socket %d, signal %d, child %d (exit status %d), timer ticks %d, on %s\n", got_socket, got_signal,
                got_child, WIFEXITED(status) ? WEXITSTATUS(status) : -1, ticks,
                std::string(iowait::to_string(w.backend())).c_str());
    if (!(got_socket && got_signal && got_child && ticks >= 3 && WEXITSTATUS(status) == 3)) return std::puts("FAIL"), 1;
    std::puts("OK");
}
