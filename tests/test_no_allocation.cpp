// Waits in a steady state allocate nothing, on every backend: once the first
// waits have grown the buffers, a wait that reports the same ready fds again,
// or a notify(), makes no call to operator new. The backend's pass from the
// kernel's batch to the caller's Events writes into room reserved beforehand
// (backend.hpp), and so must everything around it. The global operator new
// is replaced here to count calls: its own program, so that no other test
// pays for the count.
#include <atomic>
#include <cstdlib>
#include <new>

#include "helpers.hpp"

namespace {
std::atomic<std::size_t> allocations{0};
}  // namespace

// The other forms of new (array, nothrow) call this one by default.
void* operator new(std::size_t n) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace iowait::test {
namespace {

class Allocation : public ConformanceTest {};

TEST_P(Allocation, SteadyStateWaitsAllocateNothing) {
    socket_pair p, q;
    w.watch(p.a, Interest::read, 1);   // readable for ever: the data stays unread
    w.watch(q.a, Interest::write, 2);  // writable for ever: an empty send buffer
    p.send_b("x");
    std::size_t reported = 0, woken = 0;
    auto round = [&] {
        reported += w.wait(2s).size();  // level: both, again and again
        w.notify();
        woken += w.wait(2s).empty() ? 1 : 0;  // the notify, or the fds again
    };
    for (int i = 0; i < 10; ++i) round();  // the first waits grow what they need
    reported = woken = 0;
    constexpr int rounds = 200;
    const std::size_t before = allocations.load();
    for (int i = 0; i < rounds; ++i) round();
    const std::size_t allocated = allocations.load() - before;
    EXPECT_EQ(allocated, 0u) << "calls to operator new in " << 2 * rounds << " waits";
    // The waits did report: the count above is of real work.
    EXPECT_GE(reported, std::size_t(rounds)) << "woken without events " << woken << " times";
}

INSTANTIATE_TEST_SUITE_P(Conformance, Allocation, testing::ValuesIn(iowait::IOWait::available_backends()), name_of);

}  // namespace
}  // namespace iowait::test
