// The peer libev 4 (Debian libev-dev).
// The same workload as every other implementation, written with the calls
// this peer's documentation recommends and its default backend (epoll on
// Linux).
//
// Its own file: libevent's event.h defines EV_READ as 2, which is libev's
// EV_WRITE. And libev is linked statically (its ev.o alone, see
// CMakeLists.txt) because libev.so also exports libevent's names (its
// emulation layer), which would shadow libevent's own in this process.
#include <ev.h>

#include <stdexcept>
#include <string>

#include "workload.hpp"

namespace bench {

namespace {

std::uint32_t from_arg(void* p) { return std::uint32_t(reinterpret_cast<std::uintptr_t>(p)); }
void* as_arg(std::uint32_t i) { return reinterpret_cast<void*>(std::uintptr_t(i)); }

class libev_loop final : public loop {
public:
    libev_loop() : loop_(ev_loop_new(EVFLAG_AUTO)), watchers_(the_workload.pairs) {
        if (!loop_) throw std::runtime_error("ev_loop_new failed");
    }
    ~libev_loop() override { ev_loop_destroy(loop_); }

    void add_all() override {
        for (std::uint32_t i = 0; i < the_workload.pairs; ++i) {
            ev_io_init(&watchers_[i], callback, the_workload.read_fd(i), EV_READ);
            watchers_[i].data = as_arg(i);
            ev_io_start(loop_, &watchers_[i]);
        }
    }
    void poll_nowait() override { ev_run(loop_, EVRUN_NOWAIT); }
    void run_once() override { ev_run(loop_, EVRUN_ONCE); }

private:
    static void callback(struct ev_loop*, ev_io* w, int) { on_readable(from_arg(w->data)); }

    struct ev_loop* loop_;
    std::vector<ev_io> watchers_;
};

}  // namespace

implementation libev_implementation() {
    return {"libev", [] { return std::unique_ptr<loop>(new libev_loop); }};
}

}  // namespace bench
