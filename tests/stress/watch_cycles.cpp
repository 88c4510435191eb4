// A million watch/unwatch cycles (split over the backends, with modify() and
// an occasional wait) leave the heap and the resident set where they were.
#include "stress.hpp"

namespace iowait::test {
namespace {

class WatchCycles : public testing::TestWithParam<Backend> {};
INSTANTIATE_TEST_SUITE_P(Stress, WatchCycles, testing::ValuesIn(IOWait::available_backends()), name_of);

void cycles(IOWait& w, const socket_pair& p, long n) {
    for (long i = 0; i < n; ++i) {
        const Interest interest = Interest(1 + i % 3);
        w.watch(p.a, interest, std::uint64_t(i), i % 2 ? Mode::oneshot : Mode::level);
        if (i % 4 == 0) w.modify(p.a, Interest::read_write, std::uint64_t(i));
        if (i % 1000 == 0) {
            ASSERT_EQ(wait_events(w, 0ns).size(), 1u) << "p.a is writable";
        }
        w.unwatch(p.a);
    }
}

TEST_P(WatchCycles, AMillionWatchUnwatchCyclesDoNotGrowMemory) {
    const long total = long(1'000'000 * stress_scale());
    const long n = total / long(IOWait::available_backends().size());
    IOWait w{GetParam()};
    socket_pair p;
    cycles(w, p, 10'000);  // warm up: the tables and buffers reach their size
    const std::size_t heap_before = heap_in_use();
    const long rss_before = rss_bytes();
    const auto start = std::chrono::steady_clock::now();
    cycles(w, p, n);
    const auto took = std::chrono::steady_clock::now() - start;
    const long heap_growth = long(heap_in_use()) - long(heap_before);
    const long rss_growth = rss_bytes() - rss_before;
    std::cout << "[ NOTE     ] " << n << " cycles in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms; heap " << heap_growth
              << " B, RSS " << rss_growth << " B\n";
    // A leak of even one byte per cycle would show as ~300 KB here.
    EXPECT_LE(heap_growth, 16 * 1024);
    EXPECT_LE(rss_growth, 256 * 1024);
}

}  // namespace
}  // namespace iowait::test
