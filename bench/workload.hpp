// The workload of libevent's test/bench.c and of libev's published
// benchmark, shared by every implementation so that each does exactly the
// same work and only the event loop differs.
//
// N socket pairs, each read end watched for read. A chains are started by
// writing one byte into A pairs spread evenly; each read callback reads one
// byte and, while the global budget of W writes lasts, writes one byte into
// the next pair. A run ends when every byte written has been read, so it
// processes A + W events.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace bench {

struct workload {
    std::vector<int> fds;  // pair i: fds[2i] is watched, fds[2i+1] is written
    std::uint32_t pairs = 0;
    std::uint32_t active = 0;  // A, the chains of this configuration
    long writes_left = 0;
    long fired = 0;  // bytes written in this run
    long count = 0;  // bytes read in this run
    long failures = 0;

    int read_fd(std::uint32_t i) const { return fds[2 * i]; }
    int write_fd(std::uint32_t i) const { return fds[2 * i + 1]; }
};

// One global, as in libevent's bench.c: the C libraries hand their callbacks
// one pointer, which carries the pair's index.
inline workload the_workload;

// The body of every implementation's read callback.
inline void on_readable(std::uint32_t i) {
    workload& w = the_workload;
    char ch;
    const ssize_t n = ::recv(w.read_fd(i), &ch, 1, 0);
    if (n >= 0)
        w.count += n;
    else
        ++w.failures;
    if (w.writes_left > 0) {
        std::uint32_t next = i + 1;
        if (next == w.pairs) next = 0;
        if (::send(w.write_fd(next), "e", 1, 0) != 1) ++w.failures;
        --w.writes_left;
        ++w.fired;
    }
}

// One event loop under test, made fresh for every run, so that the setup
// phase is what the workload promises, registering all N watchers with a loop
// that has none, for every implementation alike. (A loop kept across runs,
// with its watchers removed and added again, measured something else: libev
// removes lazily, so each of its re-registrations was an EPOLL_CTL_ADD that
// failed with EEXIST, a thousand failed calls per run that cost less than
// real ones.)
//
// The driver, per run: constructs the loop (the create phase: counted on its
// own, outside the setup figures, since it is paid once per loop and not per
// watcher); calls add_all() and one poll_nowait() (the setup phase: every
// library then has its watchers in the kernel, including those that defer
// changes to the next iteration); run_once() until every byte is read (the
// event phase); then destroys the loop, unmeasured.
class loop {
public:
    virtual ~loop() = default;
    virtual void add_all() = 0;
    virtual void poll_nowait() = 0;
    virtual void run_once() = 0;
};

struct implementation {
    std::string name;
    // Makes a new loop with no watchers. Throws when this implementation
    // cannot serve this workload (select and fds at or above FD_SETSIZE);
    // the driver then skips it for this N.
    std::function<std::unique_ptr<loop>()> make;
};

// Each file of an implementation appends its entries.
std::vector<implementation> raw_implementations();
std::vector<implementation> iowait_implementations();
implementation libevent_implementation();
implementation libev_implementation();
implementation libuv_implementation();
// Rust's mio and polling, when their shared library was built (bench/rust.cpp);
// otherwise none, and *why_not says why.
std::vector<implementation> rust_implementations(std::string& why_not);

}  // namespace bench
