// The benchmark driver: one process runs every implementation on the same
// socket pairs, interleaved round by round (A B C, B C A, ...) so that the
// machine's drift and the other load on it hit all of them alike. Every run
// has a fresh loop (workload.hpp says why).
//
// --count runs one unmeasured round and one measured round per
// implementation, for the instruction and system-call counts: each measured
// phase (create, setup, events) is bracketed for callgrind (collection
// toggled on around it, then dumped under its name) and for strace (a
// write(-1, "begin <impl> <phase>") before and a write(-1, "end") after,
// which fail at once and only mark the trace). bench/run runs it under both
// tools. It also prints, per implementation, how many of the N fds the
// kernel's epoll sets hold after setup.
#include <dirent.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string_view>
#include <system_error>

#include "workload.hpp"

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_TOGGLE_COLLECT
#define CALLGRIND_DUMP_STATS_AT(label)
#endif

namespace bench {

namespace {

struct options {
    std::uint32_t pairs = 1000;
    std::uint32_t active = 1;
    long writes = 1000;
    int rounds = 15;
    bool count = false;
    bool tsv = false;
    std::vector<std::string> only;  // implementation names; empty: all
};

struct sample {
    std::int64_t setup_ns = 0;
    std::int64_t events_ns = 0;
};

std::vector<implementation> all_implementations(std::string& why_no_rust) {
    std::vector<implementation> all = raw_implementations();
    for (implementation& i : iowait_implementations()) all.push_back(std::move(i));
    for (auto* peer : {libevent_implementation, libev_implementation, libuv_implementation}) all.push_back(peer());
    for (implementation& i : rust_implementations(why_no_rust)) all.push_back(std::move(i));
    return all;
}

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// Besides the pairs, each loop holds a few fds of its own (epoll, eventfd,
// libuv's signal pipe), and valgrind keeps some for itself.
constexpr std::uint32_t reserved_fds = 64;

std::uint32_t largest_pairs() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) throw std::system_error(errno, std::generic_category(), "getrlimit");
    return rl.rlim_cur <= 2 * reserved_fds ? 1 : std::uint32_t((rl.rlim_cur - reserved_fds) / 2);
}

void make_pairs(std::uint32_t n) {
    workload& w = the_workload;
    w.pairs = n;
    w.fds.clear();
    for (std::uint32_t i = 0; i < n; ++i) {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
            throw std::system_error(errno, std::generic_category(), "socketpair (pair " + std::to_string(i) + ")");
        w.fds.push_back(fds[0]);
        w.fds.push_back(fds[1]);
    }
}

void mark(const std::string& text) { [[maybe_unused]] long r = ::syscall(SYS_write, -1, text.data(), text.size()); }

// What the kernel holds for the loop after its setup: the epoll sets this
// process has open, and how many of the workload's read fds they hold
// (/proc/self/fdinfo lists an epoll fd's targets as "tfd: N"). A loop on
// poll, select or io_uring has no epoll set, and this cannot tell for it.
struct kernel_view {
    std::uint32_t epoll_sets = 0;
    std::uint32_t registered = 0;
};

// A loop whose setup did not register its fds: a broken measurement, which
// stops the benchmark, where a loop that cannot serve a workload is skipped.
struct registration_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

kernel_view epoll_registrations() {
    const workload& w = the_workload;
    std::vector<char> wanted, seen;
    for (std::uint32_t i = 0; i < w.pairs; ++i) {
        const auto fd = std::size_t(w.read_fd(i));
        if (fd >= wanted.size()) wanted.resize(fd + 1);
        wanted[fd] = 1;
    }
    seen.resize(wanted.size());
    kernel_view v;
    DIR* dir = ::opendir("/proc/self/fd");
    if (!dir) throw std::system_error(errno, std::generic_category(), "opendir /proc/self/fd");
    while (const dirent* e = ::readdir(dir)) {
        char target[64];
        const ssize_t n = ::readlinkat(::dirfd(dir), e->d_name, target, sizeof target - 1);
        if (n <= 0 || std::string_view(target, std::size_t(n)) != "anon_inode:[eventpoll]") continue;
        ++v.epoll_sets;
        std::ifstream info(std::string("/proc/self/fdinfo/") + e->d_name);
        for (std::string line; std::getline(info, line);) {
            int fd = -1;
            if (std::sscanf(line.c_str(), "tfd: %d", &fd) == 1 && fd >= 0 && std::size_t(fd) < wanted.size() &&
                wanted[std::size_t(fd)] && !seen[std::size_t(fd)]) {
                seen[std::size_t(fd)] = 1;
                ++v.registered;
            }
        }
    }
    ::closedir(dir);
    return v;
}

// One run on a fresh loop: the create phase (counted apart), the setup
// phase, then the event phase, then an unmeasured teardown (the loop's
// destruction) that leaves the pairs empty and unwatched for the next
// implementation. With `check`, fails unless the kernel's epoll sets hold
// every fd after setup (for a loop that has one).
sample run(const implementation& impl, const options& o, bool counted, bool check, kernel_view* seen = nullptr) {
    const std::string& name = impl.name;
    workload& w = the_workload;
    w.count = w.fired = w.failures = 0;
    w.writes_left = o.writes;
    sample s;

    if (counted) {
        mark("begin " + name + " create");
        CALLGRIND_TOGGLE_COLLECT;
    }
    std::unique_ptr<loop> owner = impl.make();
    if (counted) {
        CALLGRIND_TOGGLE_COLLECT;
        const std::string label = name + " create";
        CALLGRIND_DUMP_STATS_AT(label.c_str());
        mark("end");
    }
    loop& l = *owner;

    if (counted) mark("begin " + name + " setup");
    std::int64_t t = now_ns();
    if (counted) CALLGRIND_TOGGLE_COLLECT;
    l.add_all();
    l.poll_nowait();
    if (counted) CALLGRIND_TOGGLE_COLLECT;
    s.setup_ns = now_ns() - t;
    if (counted) {
        // Named: the macro keeps only the pointer, past a temporary's end.
        const std::string label = name + " setup";
        CALLGRIND_DUMP_STATS_AT(label.c_str());
        mark("end");
    }
    if (check) {
        const kernel_view v = epoll_registrations();
        if (v.epoll_sets != 0 && v.registered != w.pairs)
            throw registration_error(name + ": after setup, its epoll set holds " + std::to_string(v.registered) +
                                     " of the " + std::to_string(w.pairs) +
                                     " fds: the setup did not register them all");
        if (seen) *seen = v;
    }
    if (counted) mark("begin " + name + " events");

    const std::uint32_t space = w.pairs / o.active;
    t = now_ns();
    if (counted) CALLGRIND_TOGGLE_COLLECT;
    for (std::uint32_t i = 0; i < o.active; ++i, ++w.fired)
        if (::send(w.write_fd(i * space), "e", 1, 0) != 1) ++w.failures;
    while (w.count != w.fired && w.failures == 0) l.run_once();
    if (counted) CALLGRIND_TOGGLE_COLLECT;
    s.events_ns = now_ns() - t;
    if (counted) {
        const std::string label = name + " events";
        CALLGRIND_DUMP_STATS_AT(label.c_str());
        mark("end");
    }

    owner.reset();
    if (w.failures != 0 || w.count != o.active + o.writes)
        throw std::runtime_error(name + ": " + std::to_string(w.failures) + " failed calls, " +
                                 std::to_string(w.count) + " bytes read of " + std::to_string(o.active + o.writes));
    return s;
}

std::int64_t median(std::vector<std::int64_t> v) {
    std::sort(v.begin(), v.end());
    const std::size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

struct contestant {
    implementation impl;
    std::vector<sample> samples;
};

bool selected(const options& o, const std::string& name) {
    return o.only.empty() || std::find(o.only.begin(), o.only.end(), name) != o.only.end();
}

int run_all(const options& o) {
    make_pairs(o.pairs);
    the_workload.active = o.active;
    std::string why_no_rust;
    std::vector<implementation> all = all_implementations(why_no_rust);
    if (!why_no_rust.empty() && (selected(o, "mio") || selected(o, "mio-lto") || selected(o, "polling")))
        std::fprintf(stderr, "# Rust peers (mio, mio-lto, polling) missing: %s\n", why_no_rust.c_str());

    std::vector<contestant> cs;
    for (implementation& i : all) {
        if (!selected(o, i.name)) continue;
        contestant c{std::move(i), {}};
        // The first run warms up (the allocator's first pages, the code in
        // the cache), checks the registrations, and finds what cannot run.
        try {
            run(c.impl, o, false, true);
        } catch (const registration_error&) {
            throw;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "# %s skipped at N=%u: %s\n", c.impl.name.c_str(), o.pairs, e.what());
            continue;
        }
        cs.push_back(std::move(c));
    }
    if (o.count) {
        for (contestant& c : cs) {
            kernel_view v;
            run(c.impl, o, true, true, &v);
            std::printf("registered\t%s\t%u\t%u\n", c.impl.name.c_str(), v.epoll_sets, v.registered);
        }
        return 0;
    }
    for (int r = 0; r < o.rounds; ++r)
        for (std::size_t k = 0; k < cs.size(); ++k) {
            contestant& c = cs[(k + std::size_t(r)) % cs.size()];
            c.samples.push_back(run(c.impl, o, false, false));
        }

    const long events = o.active + o.writes;
    std::map<std::string, std::pair<std::int64_t, std::int64_t>> medians;
    for (const contestant& c : cs) {
        std::vector<std::int64_t> setup, ev;
        for (const sample& s : c.samples) {
            setup.push_back(s.setup_ns);
            ev.push_back(s.events_ns);
        }
        medians[c.impl.name] = {median(setup), median(ev)};
    }
    if (o.tsv) {
        for (const contestant& c : cs)
            std::printf("%s\t%u\t%u\t%ld\t%d\t%lld\t%lld\n", c.impl.name.c_str(), o.pairs, o.active, o.writes, o.rounds,
                        (long long)medians[c.impl.name].first, (long long)medians[c.impl.name].second);
        return 0;
    }
    const auto floor = medians.count("raw-epoll") ? medians["raw-epoll"] : std::pair<std::int64_t, std::int64_t>{};
    std::printf("N=%u A=%u W=%ld: %ld events per run, medians of %d interleaved rounds\n", o.pairs, o.active, o.writes,
                events, o.rounds);
    std::printf("%-14s %12s %8s %12s %8s %10s\n", "", "setup us", "x epoll", "events us", "x epoll", "ns/event");
    for (const contestant& c : cs) {
        const auto [s, e] = medians[c.impl.name];
        std::printf("%-14s %12.1f %8.2f %12.1f %8.2f %10.0f\n", c.impl.name.c_str(), double(s) / 1e3,
                    floor.first ? double(s) / double(floor.first) : 0.0, double(e) / 1e3,
                    floor.second ? double(e) / double(floor.second) : 0.0, double(e) / double(events));
    }
    return 0;
}

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: iowait-bench [-n pairs|max] [-a active] [-w writes] [-r rounds] [--only a,b,...]\n"
                 "                    [--tsv] [--count] [--list] [--print-pairs]\n");
    std::exit(2);
}

}  // namespace

}  // namespace bench

int main(int argc, char** argv) {
    using namespace bench;
    options o;
    bool print_pairs = false;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            auto value = [&]() -> std::string {
                if (i + 1 >= argc) usage();
                return argv[++i];
            };
            if (a == "-n") {
                const std::string v = value();
                o.pairs = v == "max" ? largest_pairs() : std::uint32_t(std::stoul(v));
            } else if (a == "-a") {
                o.active = std::uint32_t(std::stoul(value()));
            } else if (a == "-w") {
                o.writes = std::stol(value());
            } else if (a == "-r") {
                o.rounds = std::stoi(value());
            } else if (a == "--only") {
                const std::string v = value();
                for (std::size_t p = 0; p <= v.size();) {
                    const std::size_t q = std::min(v.find(',', p), v.size());
                    o.only.push_back(v.substr(p, q - p));
                    p = q + 1;
                }
            } else if (a == "--print-pairs") {
                print_pairs = true;
            } else if (a == "--tsv") {
                o.tsv = true;
            } else if (a == "--count") {
                o.count = true;
            } else if (a == "--list") {
                std::string why_no_rust;
                for (const implementation& im : all_implementations(why_no_rust)) std::printf("%s\n", im.name.c_str());
                if (!why_no_rust.empty())
                    std::fprintf(stderr, "# Rust peers (mio, mio-lto, polling) missing: %s\n", why_no_rust.c_str());
                return 0;
            } else {
                usage();
            }
        }
        if (print_pairs) {
            std::printf("%u\n", o.pairs);
            return 0;
        }
        if (o.pairs == 0 || o.active == 0 || o.active > o.pairs || o.writes < 0 || o.rounds < 1) usage();
        return run_all(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "iowait-bench: %s\n", e.what());
        return 1;
    }
}
