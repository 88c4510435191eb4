// This library, once per backend that this build and kernel offer, so that a
// backend added later is measured without a change here.
#include <iowait/iowait.hpp>

#include "workload.hpp"

namespace bench {

namespace {

class iowait_loop final : public loop {
public:
    explicit iowait_loop(iowait::Backend b) : w_(b) {}

    void add_all() override {
        const workload& w = the_workload;
        for (std::uint32_t i = 0; i < w.pairs; ++i) w_.watch(w.read_fd(i), iowait::Interest::read, i);
    }
    void poll_nowait() override { dispatch(w_.wait(std::chrono::nanoseconds(0))); }
    void run_once() override { dispatch(w_.wait()); }

private:
    static void dispatch(std::span<const iowait::Event> events) {
        for (const iowait::Event& e : events) on_readable(std::uint32_t(e.data));
    }

    iowait::IOWait w_;
};

}  // namespace

std::vector<implementation> iowait_implementations() {
    std::vector<implementation> out;
    for (iowait::Backend b : iowait::IOWait::available_backends())
        out.push_back(
            {"iowait-" + std::string(iowait::to_string(b)), [b] { return std::unique_ptr<loop>(new iowait_loop(b)); }});
    return out;
}

}  // namespace bench
