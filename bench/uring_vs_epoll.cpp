// io_uring beside epoll, through iowait's own API, in one run: each workload
// runs on both backends in alternating order, round after round, so that
// the machine's drift (other builds on a shared machine) hits both alike.
// Prints the median time per iteration of each backend and the ratio
// io_uring / epoll (below 1: io_uring is faster).
//
//   uring_vs_epoll [--cpu] [rounds [workload...]]   (default: 15 rounds, every workload)
//
// --cpu measures the thread's CPU time (CLOCK_THREAD_CPUTIME_ID, user and
// kernel) instead of the wall clock: on a loaded machine it leaves out the
// time other processes run. Every workload keeps its fds ready, so its
// waits never sleep and CPU time is all of its cost.
//
// Workloads (N socket pairs, AF_UNIX, non-blocking):
//   ping_1_of_1000     1000 level read watches, one becomes readable per
//                      iteration: send 1 byte, wait(), recv it. A server
//                      with many idle connections.
//   level_100_ready    100 level read watches whose data is never read:
//                      every wait(0) reports all 100. A busy server.
//   oneshot_rearm_1000 1000 oneshot read watches, all readable: re-arm each
//                      with modify(), then wait until all 1000 are reported.
//                      Many changes per wait: where batching should win.
//   churn_100          watch 100 readable fds, wait(), unwatch them all.
//                      Short connections.
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <iowait/iowait.hpp>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using iowait::Backend;
using iowait::Interest;
using iowait::IOWait;
using iowait::Mode;

namespace {

struct pair_fds {
    int a = -1, b = -1;
    pair_fds() {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0)
            throw std::system_error(errno, std::generic_category(), "socketpair");
        a = fds[0];
        b = fds[1];
    }
    pair_fds(const pair_fds&) = delete;
    pair_fds& operator=(const pair_fds&) = delete;
    ~pair_fds() {
        ::close(a);
        ::close(b);
    }
    void send() const {
        if (::send(b, "x", 1, 0) != 1) throw std::system_error(errno, std::generic_category(), "send");
    }
    void recv() const {
        char c;
        if (::recv(a, &c, 1, 0) != 1) throw std::system_error(errno, std::generic_category(), "recv");
    }
};

std::vector<std::unique_ptr<pair_fds>> make_pairs(int n) {
    std::vector<std::unique_ptr<pair_fds>> v;
    for (int i = 0; i < n; ++i) v.push_back(std::make_unique<pair_fds>());
    return v;
}

void require(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "uring_vs_epoll: %s\n", what);
        std::exit(1);
    }
}

// A workload: sets up on `w`, then returns the body of one iteration.
using workload = std::function<std::function<void()>(IOWait& w)>;

struct bench_case {
    const char* name;
    int iterations;  // per round
    workload setup;
};

std::vector<std::unique_ptr<pair_fds>> pairs;  // of the workload being set up

std::function<void()> ping_1_of_1000(IOWait& w) {
    pairs = make_pairs(1000);
    for (auto& p : pairs) w.watch(p->a, Interest::read);
    return [&w, i = std::size_t(0)]() mutable {
        const pair_fds& p = *pairs[i++ % pairs.size()];
        p.send();
        auto events = w.wait();
        require(events.size() == 1 && events[0].fd == p.a, "ping: expected one event for the sender");
        p.recv();
    };
}

std::function<void()> level_100_ready(IOWait& w) {
    pairs = make_pairs(100);
    for (auto& p : pairs) {
        w.watch(p->a, Interest::read);
        p->send();
    }
    // epoll's first batch is 64 and grows when it comes back full: let it grow.
    for (int i = 0; i < 4; ++i) w.wait(0s);
    return [&w] { require(w.wait(0s).size() == pairs.size(), "level: expected every fd in one wait"); };
}

std::function<void()> oneshot_rearm_1000(IOWait& w) {
    pairs = make_pairs(1000);
    for (auto& p : pairs) {
        w.watch(p->a, Interest::read, 0, Mode::oneshot);
        p->send();
    }
    // Drain the first firing so that each iteration starts disarmed.
    for (std::size_t seen = 0; seen < pairs.size();) seen += w.wait(1s).size();
    return [&w] {
        for (auto& p : pairs) w.modify(p->a, Interest::read, 0, Mode::oneshot);
        std::size_t seen = 0;
        while (seen < pairs.size()) {
            const std::size_t n = w.wait(1s).size();
            require(n > 0, "oneshot: a re-armed fd was not reported");
            seen += n;
        }
        require(seen == pairs.size(), "oneshot: a fd was reported twice");
    };
}

std::function<void()> churn_100(IOWait& w) {
    pairs = make_pairs(100);
    for (auto& p : pairs) p->send();
    return [&w] {
        for (auto& p : pairs) w.watch(p->a, Interest::read);
        std::size_t seen = 0;
        while (seen < pairs.size()) seen += w.wait(1s).size();
        for (auto& p : pairs) w.unwatch(p->a);
    };
}

bool cpu_clock = false;

double now_ns() {
    if (!cpu_clock)
        return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now().time_since_epoch()).count();
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

double run_round(Backend b, const bench_case& c) {
    IOWait w{b};
    auto body = c.setup(w);
    for (int i = 0; i < c.iterations / 10; ++i) body();  // warm up caches and the kernel's structures
    const double start = now_ns();
    for (int i = 0; i < c.iterations; ++i) body();
    const double took = now_ns() - start;
    pairs.clear();
    return took / c.iterations;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "--cpu") {
        cpu_clock = true;
        --argc;
        ++argv;
    }
    const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 15;
    rlimit lim{};  // 1000 socket pairs need 2000 fds and more: take the hard limit
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
    }
    const auto available = IOWait::available_backends();
    if (std::find(available.begin(), available.end(), Backend::io_uring) == available.end()) {
        try {
            IOWait probe{Backend::io_uring};
        } catch (const std::exception& e) {
            std::printf("io_uring is not available here, nothing to compare: %s\n", e.what());
        }
        return 0;
    }
    const bench_case cases[] = {
        {"ping_1_of_1000", 20000, ping_1_of_1000},
        {"level_100_ready", 5000, level_100_ready},
        {"oneshot_rearm_1000", 300, oneshot_rearm_1000},
        {"churn_100", 2000, churn_100},
    };
    std::printf("%d rounds, epoll and io_uring alternating; median ns per iteration (%s)\n\n", rounds,
                cpu_clock ? "thread CPU time" : "wall clock");
    std::printf("%-20s %14s %14s %16s\n", "workload", "epoll", "io_uring", "io_uring/epoll");
    for (const bench_case& c : cases) {
        if (argc > 2 &&
            std::find_if(argv + 2, argv + argc, [&](const char* a) { return std::string(a) == c.name; }) == argv + argc)
            continue;
        std::vector<double> epoll_ns, uring_ns;
        for (int r = 0; r < rounds; ++r) {
            // Alternate which goes first, so neither always runs on a warmer machine.
            if (r % 2 == 0) {
                epoll_ns.push_back(run_round(Backend::epoll, c));
                uring_ns.push_back(run_round(Backend::io_uring, c));
            } else {
                uring_ns.push_back(run_round(Backend::io_uring, c));
                epoll_ns.push_back(run_round(Backend::epoll, c));
            }
        }
        const double e = median(epoll_ns), u = median(uring_ns);
        std::printf("%-20s %14.0f %14.0f %16.2f\n", c.name, e, u, u / e);
    }
    return 0;
}
