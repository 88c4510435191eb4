// What the two halves of the differential fuzzer share: the input reader,
// the report of a finding, and the call made on every backend that must
// answer the same (fuzz_backends.cpp for fds, fuzz_sources.hpp for sources).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iowait/iowait.hpp>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace fuzz {

using iowait::Event;
using iowait::IOWait;

using waits_t = std::vector<std::unique_ptr<IOWait>>;
using trace_t = std::vector<std::string>;

[[noreturn]] inline void fail(const trace_t& trace, const std::string& why) {
    std::fprintf(stderr, "\n=== iowait differential fuzzer: %s\n=== after these operations:\n", why.c_str());
    for (const auto& t : trace) std::fprintf(stderr, "  %s\n", t.c_str());
    std::fflush(stderr);
    std::abort();
}

inline std::string str(const Event& e) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "{fd=%lld r=%d w=%d hup=%d err=%d data=%llu}", static_cast<long long>(e.fd), e.read,
                  e.write, e.hangup, e.error, static_cast<unsigned long long>(e.data));
    return buf;
}

inline std::string str(const std::vector<Event>& evs) {
    std::string s = "[";
    for (const auto& e : evs) s += str(e) + " ";
    return s + "]";
}

inline std::string str(std::error_code ec) {
    return ec ? ec.category().name() + std::string(":") + ec.message() : "ok";
}

inline bool same(const Event& a, const Event& b) {
    return a.fd == b.fd && a.read == b.read && a.write == b.write && a.hangup == b.hangup && a.error == b.error &&
           a.data == b.data;
}

struct input {
    const std::uint8_t* p;
    std::size_t n;
    bool empty() const { return n == 0; }
    std::uint8_t byte() {
        if (n == 0) return 0;
        --n;
        return *p++;
    }
};

// Every backend must answer the same, and what the model expects.
template <class F>
void each(const waits_t& waits, trace_t& trace, const std::string& what, std::error_code expected, F call) {
    trace.push_back(what + " -> expect " + str(expected));
    for (auto& w : waits) {
        std::error_code ec;
        call(*w, ec);
        if (ec != expected)
            fail(trace, std::string(to_string(w->backend())) + ": " + what + " returned " + str(ec) + ", expected " +
                            str(expected));
    }
}

}  // namespace fuzz
