// The timer benchmark: iowait's watch_timer() beside libev's ev_timer and
// libuv's uv_timer, with N timers armed in one loop (deadlines an hour and
// more away, in a scrambled order, so that none fires), measured per
// operation over K operations:
//   start  arm one more timer (a deadline among the N, as a connection's
//          timeout lands among the others')
//   stop   stop one of those (anywhere in the heap)
//   fire   one loop iteration that reports the one timer due (armed, due
//          now, unmeasured just before it), among the N that are not
//          (iowait: wait(0); libev: ev_run(EVRUN_NOWAIT); libuv: uv_run(UV_RUN_NOWAIT))
// Every implementation runs on its default backend (epoll). Output, one
// line per implementation: name, N, then ns per start, stop and fire
// (medians of the rounds). With --count: one round whose phases are
// bracketed for callgrind (collection toggled around each operation, then
// dumped as "<impl> start" and so on), for bench/run's instruction counts.
#include <ev.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iowait/iowait.hpp>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_TOGGLE_COLLECT
#define CALLGRIND_DUMP_STATS_AT(label)
#endif

namespace {

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// The i-th of n deadlines, in ms: an hour, then spread over another hour in
// a scrambled order.
std::uint64_t deadline_ms(std::uint64_t i, std::uint64_t n) { return 3'600'000 + (i * 7919 % n) * 3'600'000 / n; }

long fired = 0;  // every implementation's callback counts here

// One library: arm(n) makes a fresh loop with n timers; start(k)/stop(k) the
// k-th probe timer; fire_setup() arms one due now, fire() runs one iteration
// that must report it, fire_done() cleans it up.
struct timers {
    virtual ~timers() = default;
    virtual void arm(std::uint32_t n, std::uint32_t probes) = 0;
    virtual void start(std::uint32_t k, std::uint64_t ms) = 0;
    virtual void stop(std::uint32_t k) = 0;
    virtual void fire_setup() = 0;
    virtual void fire() = 0;
    virtual void fire_done() {}
};

class iowait_timers final : public timers {
public:
    void arm(std::uint32_t n, std::uint32_t probes) override {
        w_ = std::make_unique<iowait::IOWait>(iowait::Backend::epoll);
        for (std::uint32_t i = 0; i < n; ++i)
            w_->watch_timer(std::chrono::milliseconds(deadline_ms(i, n)), std::chrono::milliseconds(0), i);
        probes_.assign(probes, 0);
    }
    void start(std::uint32_t k, std::uint64_t ms) override {
        probes_[k] = w_->watch_timer(std::chrono::milliseconds(ms), std::chrono::milliseconds(0), k);
    }
    void stop(std::uint32_t k) override { w_->unwatch(probes_[k]); }
    void fire_setup() override { due_ = w_->watch_timer(std::chrono::nanoseconds(0)); }
    void fire() override { fired += long(w_->wait(std::chrono::nanoseconds(0)).size()); }
    void fire_done() override { w_->unwatch(due_); }

private:
    std::unique_ptr<iowait::IOWait> w_;
    std::vector<iowait::native_handle> probes_;
    iowait::native_handle due_ = 0;
};

class libev_timers final : public timers {
public:
    ~libev_timers() override { close(); }
    void arm(std::uint32_t n, std::uint32_t probes) override {
        close();
        loop_ = ev_loop_new(EVFLAG_AUTO);
        if (!loop_) throw std::runtime_error("ev_loop_new failed");
        all_.assign(n, ev_timer{});
        for (std::uint32_t i = 0; i < n; ++i) {
            ev_timer_init(&all_[i], on_timer, double(deadline_ms(i, n)) / 1e3, 0.);
            ev_timer_start(loop_, &all_[i]);
        }
        probes_.assign(probes, ev_timer{});
        for (ev_timer& t : probes_) ev_timer_init(&t, on_timer, 0., 0.);
        ev_timer_init(&due_, on_timer, 0., 0.);
    }
    void start(std::uint32_t k, std::uint64_t ms) override {
        ev_timer_set(&probes_[k], double(ms) / 1e3, 0.);
        ev_timer_start(loop_, &probes_[k]);
    }
    void stop(std::uint32_t k) override { ev_timer_stop(loop_, &probes_[k]); }
    void fire_setup() override {
        // Due now: the loop's time, which ev_run() brings up to date first.
        ev_timer_set(&due_, 0., 0.);
        ev_timer_start(loop_, &due_);
    }
    void fire() override { ev_run(loop_, EVRUN_NOWAIT); }

private:
    static void on_timer(struct ev_loop*, ev_timer*, int) { ++fired; }
    void close() {
        if (!loop_) return;
        for (ev_timer& t : all_) ev_timer_stop(loop_, &t);
        ev_loop_destroy(loop_);
        loop_ = nullptr;
    }
    struct ev_loop* loop_ = nullptr;
    std::vector<ev_timer> all_, probes_;
    ev_timer due_{};
};

class libuv_timers final : public timers {
public:
    ~libuv_timers() override { close(); }
    void arm(std::uint32_t n, std::uint32_t probes) override {
        close();
        loop_ = std::make_unique<uv_loop_t>();
        if (uv_loop_init(loop_.get()) != 0) throw std::runtime_error("uv_loop_init failed");
        all_ = std::vector<uv_timer_t>(n);
        for (std::uint32_t i = 0; i < n; ++i) {
            uv_timer_init(loop_.get(), &all_[i]);
            uv_timer_start(&all_[i], on_timer, deadline_ms(i, n), 0);
        }
        probes_ = std::vector<uv_timer_t>(probes);
        for (uv_timer_t& t : probes_) uv_timer_init(loop_.get(), &t);
        uv_timer_init(loop_.get(), &due_);
    }
    void start(std::uint32_t k, std::uint64_t ms) override { uv_timer_start(&probes_[k], on_timer, ms, 0); }
    void stop(std::uint32_t k) override { uv_timer_stop(&probes_[k]); }
    void fire_setup() override { uv_timer_start(&due_, on_timer, 0, 0); }
    void fire() override { uv_run(loop_.get(), UV_RUN_NOWAIT); }

private:
    static void on_timer(uv_timer_t*) { ++fired; }
    void close() {
        if (!loop_) return;
        for (uv_timer_t& t : all_) uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
        for (uv_timer_t& t : probes_) uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&due_), nullptr);
        uv_run(loop_.get(), UV_RUN_DEFAULT);
        uv_loop_close(loop_.get());
        loop_.reset();
    }
    std::unique_ptr<uv_loop_t> loop_;
    std::vector<uv_timer_t> all_, probes_;
    uv_timer_t due_{};
};

struct result {
    double start = 0, stop = 0, fire = 0;  // ns per operation
};

// Measures op(i) for i < k: ns per call, and (counted) the instructions,
// dumped under "<name> <what>". before() and after() run unmeasured around
// each call.
template <class Op, class Before, class After>
double phase(const std::string& name, const char* what, std::uint32_t k, bool counted, Op op, Before before,
             After after) {
    std::int64_t total = 0;
    for (std::uint32_t i = 0; i < k; ++i) {
        before();
        const std::int64_t t0 = now_ns();
        if (counted) CALLGRIND_TOGGLE_COLLECT;
        op(i);
        if (counted) CALLGRIND_TOGGLE_COLLECT;
        total += now_ns() - t0;
        after();
    }
    if (counted) {
        const std::string label = name + " " + what;
        CALLGRIND_DUMP_STATS_AT(label.c_str());
    }
    return double(total) / k;
}

// One round on a fresh loop of n timers: k starts, k stops, k fires. A
// loop that has run a while is measured (a server's steady state): the k
// probes are started and stopped twice, unmeasured, before the measured
// starts, so that no library grows its arrays in them.
result round(timers& t, const std::string& name, std::uint32_t n, std::uint32_t k, bool counted) {
    t.arm(n, k);
    const auto nothing = [] {};
    // The probes' deadlines worked out before, outside the measure.
    std::vector<std::uint64_t> probe_ms(k);
    for (std::uint32_t i = 0; i < k; ++i) probe_ms[i] = deadline_ms(std::uint64_t(i) * 997, k) + 1;
    const auto start = [&](std::uint32_t i) { t.start(i, probe_ms[i]); };
    const auto stop = [&](std::uint32_t i) { t.stop(i); };
    for (int warm = 0; warm < 2; ++warm) {
        for (std::uint32_t i = 0; i < k; ++i) start(i);
        for (std::uint32_t i = 0; i < k; ++i) stop(i);
    }
    result r;
    r.start = phase(name, "start", k, counted, start, nothing, nothing);
    r.stop = phase(name, "stop", k, counted, stop, nothing, nothing);
    const long before = fired;
    r.fire = phase(
        name, "fire", k, counted, [&](std::uint32_t) { t.fire(); }, [&] { t.fire_setup(); }, [&] { t.fire_done(); });
    if (fired - before != long(k))
        throw std::runtime_error(name + ": " + std::to_string(fired - before) + " timers fired of " +
                                 std::to_string(k));
    return r;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

[[noreturn]] void usage() {
    std::fprintf(stderr, "usage: iowait-bench-timers [-n timers] [-k operations] [-r rounds] [--count]\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    std::uint32_t n = 1000, k = 1000;
    int rounds = 5;
    bool count = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-n" && i + 1 < argc) {
            n = std::uint32_t(std::stoul(argv[++i]));
        } else if (a == "-k" && i + 1 < argc) {
            k = std::uint32_t(std::stoul(argv[++i]));
        } else if (a == "-r" && i + 1 < argc) {
            rounds = std::stoi(argv[++i]);
        } else if (a == "--count") {
            count = true;
        } else {
            usage();
        }
    }
    if (n == 0 || k == 0 || rounds < 1) usage();
    try {
        std::vector<std::pair<std::string, std::unique_ptr<timers>>> all;
        all.emplace_back("iowait", std::make_unique<iowait_timers>());
        all.emplace_back("libev", std::make_unique<libev_timers>());
        all.emplace_back("libuv", std::make_unique<libuv_timers>());
        for (auto& [name, t] : all) {
            if (count) {  // the probes' two unmeasured cycles are its warm-up
                round(*t, name, n, k, true);
                t.reset();
                continue;
            }
            round(*t, name, n, k, false);  // warm-up
            std::vector<double> start, stop, fire;
            for (int r = 0; r < rounds; ++r) {
                const result x = round(*t, name, n, k, false);
                start.push_back(x.start);
                stop.push_back(x.stop);
                fire.push_back(x.fire);
            }
            std::printf("%s\t%u\t%.1f\t%.1f\t%.1f\n", name.c_str(), n, median(start), median(stop), median(fire));
            t.reset();  // its n timers freed before the next library arms its own
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "iowait-bench-timers: %s\n", e.what());
        return 1;
    }
    return 0;
}
