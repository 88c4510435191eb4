// The peer libuv 1 (Debian libuv1-dev), with uv_poll_t.
// The same workload as every other implementation, written with the calls
// this peer's documentation recommends and its default backend (epoll on
// Linux).

#include <uv.h>

#include <stdexcept>
#include <string>

#include "workload.hpp"

namespace bench {

namespace {

void* as_arg(std::uint32_t i) { return reinterpret_cast<void*>(std::uintptr_t(i)); }
std::uint32_t from_arg(void* p) { return std::uint32_t(reinterpret_cast<std::uintptr_t>(p)); }

[[noreturn]] void fail(const char* what, int fd, int e) {
    throw std::runtime_error(std::string(what) + " (fd " + std::to_string(fd) + "): " + uv_strerror(e));
}

// libuv's uv_poll_t. A handle belongs to one loop, and every run has a fresh
// loop, so watching an fd is uv_poll_init then uv_poll_start, both in the
// measured setup: that is what registering an fd with a new libuv loop costs
// (uv_poll_init probes the fd with an EPOLL_CTL_ADD and an EPOLL_CTL_DEL and
// sets O_NONBLOCK with an ioctl, three system calls before the real ADD).
class libuv_loop final : public loop {
public:
    libuv_loop() : handles_(the_workload.pairs) {
        if (int e = uv_loop_init(&loop_)) fail("uv_loop_init", -1, e);
    }
    ~libuv_loop() override {
        // A handle is freed only through the loop.
        for (std::size_t i = 0; i < initialised_; ++i) uv_close(reinterpret_cast<uv_handle_t*>(&handles_[i]), nullptr);
        uv_run(&loop_, UV_RUN_DEFAULT);
        uv_loop_close(&loop_);
    }

    void add_all() override {
        for (std::uint32_t i = 0; i < the_workload.pairs; ++i) {
            const int fd = the_workload.read_fd(i);
            if (int e = uv_poll_init(&loop_, &handles_[i], fd)) fail("uv_poll_init", fd, e);
            ++initialised_;
            handles_[i].data = as_arg(i);
            if (int e = uv_poll_start(&handles_[i], UV_READABLE, callback)) fail("uv_poll_start", fd, e);
        }
    }
    void poll_nowait() override { uv_run(&loop_, UV_RUN_NOWAIT); }
    void run_once() override { uv_run(&loop_, UV_RUN_ONCE); }

private:
    static void callback(uv_poll_t* h, int, int) { on_readable(from_arg(h->data)); }

    uv_loop_t loop_;
    std::vector<uv_poll_t> handles_;
    std::size_t initialised_ = 0;
};

}  // namespace

implementation libuv_implementation() {
    return {"libuv", [] { return std::unique_ptr<loop>(new libuv_loop); }};
}

}  // namespace bench
