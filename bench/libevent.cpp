// The peer libevent 2 (Debian libevent-dev).
// The same workload as every other implementation, written with the calls
// this peer's documentation recommends and its default backend (epoll on
// Linux).

#include <event2/event.h>
#include <event2/event_struct.h>

#include <stdexcept>
#include <string>

#include "workload.hpp"

namespace bench {

namespace {

void* as_arg(std::uint32_t i) { return reinterpret_cast<void*>(std::uintptr_t(i)); }
std::uint32_t from_arg(void* p) { return std::uint32_t(reinterpret_cast<std::uintptr_t>(p)); }

// libevent 2: struct event embedded (event_assign), as bench.c does with event_set.
class libevent_loop final : public loop {
public:
    libevent_loop() : base_(event_base_new()), events_(the_workload.pairs) {
        if (!base_) throw std::runtime_error("event_base_new failed");
    }
    ~libevent_loop() override { event_base_free(base_); }

    void add_all() override {
        for (std::uint32_t i = 0; i < the_workload.pairs; ++i) {
            event_assign(&events_[i], base_, the_workload.read_fd(i), EV_READ | EV_PERSIST, callback, as_arg(i));
            if (event_add(&events_[i], nullptr) != 0) throw std::runtime_error("event_add failed");
        }
    }
    void poll_nowait() override { event_base_loop(base_, EVLOOP_ONCE | EVLOOP_NONBLOCK); }
    void run_once() override { event_base_loop(base_, EVLOOP_ONCE); }

private:
    static void callback(evutil_socket_t, short, void* arg) { on_readable(from_arg(arg)); }

    event_base* base_;
    std::vector<event> events_;
};

}  // namespace

implementation libevent_implementation() {
    return {"libevent", [] { return std::unique_ptr<loop>(new libevent_loop); }};
}

}  // namespace bench
