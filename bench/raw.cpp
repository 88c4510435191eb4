// The floors: the system calls used directly, as a program with no library
// would. Raw epoll is level-triggered epoll_wait with a callback table
// indexed by fd; raw poll keeps one pollfd array and scans it after each call.
// Each sizes its table for the workload's fds when it is made (the create
// phase), as Redis's ae sizes its table to the `setsize` it is given, so that
// its setup is the kernel calls and the table stores and nothing else: the
// floor under every library, which must grow its tables as fds come.
#include <poll.h>
#include <sys/epoll.h>

#include <algorithm>
#include <stdexcept>
#include <system_error>

#include "workload.hpp"

namespace bench {

namespace {

[[noreturn]] void fail(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

// What a hand-written loop stores per fd: the callback and its argument.
struct handler {
    void (*cb)(std::uint32_t) = nullptr;
    std::uint32_t arg = 0;
};

class raw_epoll final : public loop {
public:
    raw_epoll() : ep_(::epoll_create1(EPOLL_CLOEXEC)) {
        if (ep_ < 0) fail("epoll_create1");
        const workload& w = the_workload;
        int top = 0;
        for (std::uint32_t i = 0; i < w.pairs; ++i) top = std::max(top, w.read_fd(i));
        table_.resize(std::size_t(top) + 1);
    }
    ~raw_epoll() override { ::close(ep_); }

    void add_all() override {
        const workload& w = the_workload;
        for (std::uint32_t i = 0; i < w.pairs; ++i) {
            const int fd = w.read_fd(i);
            table_[fd] = {on_readable, i};
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.fd = fd;
            if (::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) fail("epoll_ctl");
        }
    }
    void poll_nowait() override { dispatch(0); }
    void run_once() override { dispatch(-1); }

private:
    void dispatch(int timeout) {
        const int n = ::epoll_wait(ep_, batch_, max_events, timeout);
        if (n < 0 && errno != EINTR) fail("epoll_wait");
        for (int i = 0; i < n; ++i) {
            const handler& h = table_[batch_[i].data.fd];
            h.cb(h.arg);
        }
    }

    // Large enough that every ready fd of these workloads (at most A = 100
    // at once, give or take a chain that caught up with another) comes back
    // in one call: the fewest system calls there can be.
    static constexpr int max_events = 1024;
    int ep_;
    std::vector<handler> table_;
    epoll_event batch_[max_events];
};

class raw_poll final : public loop {
public:
    raw_poll() {
        fds_.reserve(the_workload.pairs);
        table_.reserve(the_workload.pairs);
    }

    void add_all() override {
        const workload& w = the_workload;
        for (std::uint32_t i = 0; i < w.pairs; ++i) {
            fds_.push_back({w.read_fd(i), POLLIN, 0});
            table_.push_back({on_readable, i});
        }
    }
    void poll_nowait() override { dispatch(0); }
    void run_once() override { dispatch(-1); }

private:
    void dispatch(int timeout) {
        int n = ::poll(fds_.data(), nfds_t(fds_.size()), timeout);
        if (n < 0 && errno != EINTR) fail("poll");
        for (std::size_t i = 0; n > 0 && i < fds_.size(); ++i)
            if (fds_[i].revents) {
                --n;
                table_[i].cb(table_[i].arg);
            }
    }

    std::vector<pollfd> fds_;
    std::vector<handler> table_;
};

}  // namespace

std::vector<implementation> raw_implementations() {
    return {
        {"raw-epoll", [] { return std::unique_ptr<loop>(new raw_epoll); }},
        {"raw-poll", [] { return std::unique_ptr<loop>(new raw_poll); }},
    };
}

}  // namespace bench
