// The peers Rust's mio 0.8 and polling 2 (Debian librust-mio-dev,
// librust-polling-dev), from the shared library that bench/rust/ builds
// (target iowait-bench-rust; bench/run builds it for its full run). Loaded
// at run time, so that the driver builds and runs without a Rust toolchain:
// without the library these peers are absent, and the driver says why.
//
// mio is edge-triggered and the workload reads one byte per event, as every
// implementation does. That loses nothing here: the chains are spread apart
// and each advances one pair per wait, so a pair is written at most once
// between two reports of it, and each write is an edge of its own. It would
// stop holding if a wait could not return every ready fd (more than 1,024
// chains), which the constructor refuses.
#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <stdexcept>
#include <system_error>

#include "workload.hpp"

namespace bench {

namespace {

// bench/rust/src/lib.rs's Peer, field for field.
struct rust_peer {
    const char* name;
    void* (*make)(int* error);
    int (*add_all)(void* p, const int* fds, std::uint32_t pairs);
    int (*poll)(void* p, int timeout_ms, void (*cb)(std::uint32_t), std::uint32_t* events);
    void (*free)(void* p);
};

// Its batch capacity (lib.rs's CAPACITY).
constexpr std::uint32_t rust_capacity = 1024;

extern "C" void rust_callback(std::uint32_t i) { on_readable(i); }

class rust_loop final : public loop {
public:
    explicit rust_loop(const rust_peer& p) : p_(p) {
        if (the_workload.active > rust_capacity)
            throw std::runtime_error("more chains than one wait returns, which edge-triggered mio would lose");
        int e = 0;
        h_ = p_.make(&e);
        if (!h_) throw std::system_error(e, std::generic_category(), std::string(p_.name) + ": new poller");
    }
    ~rust_loop() override { p_.free(h_); }

    void add_all() override {
        if (int e = p_.add_all(h_, the_workload.fds.data(), the_workload.pairs))
            throw std::system_error(e, std::generic_category(), std::string(p_.name) + ": register");
    }
    void poll_nowait() override { poll(0); }
    void run_once() override { poll(-1); }

private:
    void poll(int timeout_ms) {
        std::uint32_t n = 0;
        if (int e = p_.poll(h_, timeout_ms, rust_callback, &n))
            throw std::system_error(e, std::generic_category(), std::string(p_.name) + ": wait");
    }

    const rust_peer& p_;
    void* h_;
};

// Beside the driver's executable, or where IOWAIT_BENCH_RUST_LIB says.
std::string library_path() {
    if (const char* p = std::getenv("IOWAIT_BENCH_RUST_LIB")) return p;
    char exe[PATH_MAX];
    const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return "libiowait_bench_rust.so";
    std::string dir(exe, std::size_t(n));
    return dir.substr(0, dir.rfind('/') + 1) + "libiowait_bench_rust.so";
}

}  // namespace

std::vector<implementation> rust_implementations(std::string& why_not) {
    const std::string path = library_path();
    // Never closed: the peers' code must outlive every loop.
    void* lib = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        why_not = std::string(::dlerror()) +
                  " (build the target iowait-bench-rust: needs Debian's cargo, "
                  "librust-mio-dev and librust-polling-dev, scripts/install-deps)";
        return {};
    }
    auto peers = reinterpret_cast<const rust_peer* (*)(std::size_t*)>(::dlsym(lib, "iowait_bench_rust_peers"));
    if (!peers) {
        why_not = path + " has no iowait_bench_rust_peers";
        return {};
    }
    std::size_t count = 0;
    const rust_peer* table = peers(&count);
    std::vector<implementation> out;
    for (std::size_t i = 0; i < count; ++i) {
        const rust_peer& p = table[i];
        out.push_back({p.name, [&p] { return std::unique_ptr<loop>(new rust_loop(p)); }});
    }
    return out;
}

}  // namespace bench
