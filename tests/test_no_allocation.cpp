// Waits in a steady state allocate nothing, on every backend: once the first
// waits have grown the buffers, a wait that reports the same ready fds again,
// or a notify(), makes no call to operator new. The backend's pass from the
// kernel's batch to the caller's Events writes into room reserved beforehand
// (backend.hpp), and so must everything around it. The global operator new
// is replaced here to count calls: its own program, so that no other test
// pays for the count.
#include <iowait/iowait.h>
#include <atomic>
#include <cstdlib>
#include <new>

#include "helpers.hpp"

namespace {
std::atomic<std::size_t> allocations{0};
}  // namespace

// gcc 12 at -O2 sees the std::free() below pair with the operator new it
// inlined elsewhere, and warns (-Wmismatched-new-delete); here they are one
// pair by construction.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

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

// The same through the C API, with an array smaller than the ready set, so
// that the rest of each batch is kept in the handle and handed out by the
// next wait (include/iowait/iowait.h): its room was made at watch().
TEST_P(Allocation, CApiWaitsAllocateNothingWithARestKept) {
    iowait_t* c = nullptr;
    ASSERT_EQ(iowait_create_backend(&c, iowait_backend(GetParam())), 0) << iowait_last_error();
    socket_pair p[3];
    for (std::uint64_t i = 0; i < 3; ++i) {
        ASSERT_EQ(iowait_watch(c, p[i].a, IOWAIT_READ, i, IOWAIT_LEVEL), 0) << iowait_last_error();
        p[i].send_b("x");  // readable for ever: the data stays unread
    }
    iowait_event events[2];
    std::size_t reported = 0;
    auto round = [&] {
        const int n = iowait_wait(c, events, 2, 2'000'000'000);
        ASSERT_GE(n, 0) << iowait_last_error();
        reported += std::size_t(n);
    };
    for (int i = 0; i < 10; ++i) round();
    reported = 0;
    constexpr int rounds = 300;
    const std::size_t before = allocations.load();
    for (int i = 0; i < rounds; ++i) round();
    const std::size_t allocated = allocations.load() - before;
    EXPECT_EQ(allocated, 0u) << "calls to operator new in " << rounds << " waits";
    // Two from the kernel, then the one kept: three events every two waits.
    EXPECT_GE(reported, std::size_t(rounds)) << "events reported";
    iowait_destroy(c);
}

INSTANTIATE_TEST_SUITE_P(Conformance, Allocation, testing::ValuesIn(iowait::IOWait::available_backends()), name_of);

}  // namespace
}  // namespace iowait::test
