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

// libuv's uv_poll_t. A handle is initialised once per fd, here (uv_poll_init
// makes an ioctl, and a handle is freed only through the loop); setup is
// uv_poll_start. This spares libuv one call per watcher in the setup phase.
class libuv_loop final : public loop {
public:
    libuv_loop() : handles_(the_workload.pairs) {
        if (int e = uv_loop_init(&loop_)) throw std::runtime_error(std::string("uv_loop_init: ") + uv_strerror(e));
        for (std::uint32_t i = 0; i < the_workload.pairs; ++i) {
            if (int e = uv_poll_init(&loop_, &handles_[i], the_workload.read_fd(i)))
                throw std::runtime_error(std::string("uv_poll_init: ") + uv_strerror(e));
            handles_[i].data = as_arg(i);
        }
    }
    ~libuv_loop() override {
        for (uv_poll_t& h : handles_) uv_close(reinterpret_cast<uv_handle_t*>(&h), nullptr);
        uv_run(&loop_, UV_RUN_DEFAULT);
        uv_loop_close(&loop_);
    }

    void add_all() override {
        for (uv_poll_t& h : handles_)
            if (int e = uv_poll_start(&h, UV_READABLE, callback))
                throw std::runtime_error(std::string("uv_poll_start: ") + uv_strerror(e));
    }
    void poll_nowait() override { uv_run(&loop_, UV_RUN_NOWAIT); }
    void run_once() override { uv_run(&loop_, UV_RUN_ONCE); }
    void remove_all() override {
        for (uv_poll_t& h : handles_) uv_poll_stop(&h);
    }

private:
    static void callback(uv_poll_t* h, int, int) { on_readable(from_arg(h->data)); }

    uv_loop_t loop_;
    std::vector<uv_poll_t> handles_;
};

}  // namespace

implementation libuv_implementation() {
    return {"libuv", [] { return std::unique_ptr<loop>(new libuv_loop); }};
}

}  // namespace bench
