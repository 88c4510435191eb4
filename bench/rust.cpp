// The peers Rust's mio 0.8 and polling 2 (Debian librust-mio-dev,
// librust-polling-dev), and mio-lto (the same with link-time optimisation),
// from the shared libraries that bench/rust/ builds
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
#include <string_view>
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
    rust_loop(const rust_peer& p, std::string name) : p_(p), name_(std::move(name)) {
        if (the_workload.active > rust_capacity)
            throw std::runtime_error("more chains than one wait returns, which edge-triggered mio would lose");
        int e = 0;
        h_ = p_.make(&e);
        if (!h_) throw std::system_error(e, std::generic_category(), name_ + ": new poller");
    }
    ~rust_loop() override { p_.free(h_); }

    void add_all() override {
        if (int e = p_.add_all(h_, the_workload.fds.data(), the_workload.pairs))
            throw std::system_error(e, std::generic_category(), name_ + ": register");
    }
    void poll_nowait() override { poll(0); }
    void run_once() override { poll(-1); }

private:
    void poll(int timeout_ms) {
        std::uint32_t n = 0;
        if (int e = p_.poll(h_, timeout_ms, rust_callback, &n))
            throw std::system_error(e, std::generic_category(), name_ + ": wait");
    }

    const rust_peer& p_;
    const std::string name_;
    void* h_;
};

// The directory of the driver's executable, where the build puts the libraries.
std::string own_directory() {
    char exe[PATH_MAX];
    const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return "./";
    const std::string path(exe, std::size_t(n));
    return path.substr(0, path.rfind('/') + 1);
}

// The peers of one library, named with `suffix`; with `only`, just that one.
// Empty, with *why_not set, when the library cannot be loaded.
std::vector<implementation> load(const std::string& file, const std::string& suffix, const char* only,
                                 std::string& why_not) {
    const std::string path = own_directory() + file;
    // Never closed: the peers' code must outlive every loop.
    void* lib = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        why_not = std::string(::dlerror()) +
                  " (build the target iowait-bench-rust: needs Debian's cargo, rustc, "
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
        if (only && std::string_view(p.name) != only) continue;
        const std::string name = p.name + suffix;
        out.push_back({name, [&p, name] { return std::unique_ptr<loop>(new rust_loop(p, name)); }});
    }
    return out;
}

}  // namespace

std::vector<implementation> rust_implementations(std::string& why_not) {
    std::vector<implementation> out = load("libiowait_bench_rust.so", "", nullptr, why_not);
    // The same crate built with link-time optimisation (Cargo.toml's
    // release-lto): mio only, the thin peer the issue measures against.
    if (why_not.empty())
        for (implementation& i : load("libiowait_bench_rust_lto.so", "-lto", "mio", why_not)) out.push_back(i);
    return out;
}

}  // namespace bench
