// A million timers in one IOWait, due over two seconds; a tenth of them
// cancelled and watched again (a new deadline, a new id) while the others
// fire, and each fired one unwatched at once, so that slots are reused while
// timers fire. Every timer must be reported exactly once, under its current
// id, never before its deadline. Memory per timer is measured and printed.
#include <string_view>

#include "stress.hpp"

namespace iowait::test {
namespace {

using clock_type = std::chrono::steady_clock;

struct timer {
    fd_t id = 0;
    clock_type::time_point due;  // at least the library's own deadline: taken before watch_timer()
    int reports = 0;
    bool rearmed = false;
};

long timer_count() {
    long n = long(1'000'000 * stress_scale());
    // ThreadSanitizer makes every memory access of the heap a call: the
    // same test at a tenth of the load, so that it stays within its bound.
    if (std::string_view(IOWAIT_SANITIZED).find("thread") != std::string_view::npos) {
        std::cout << "[ NOTE     ] ThreadSanitizer build: a tenth of the timers\n";
        n /= 10;
    }
    return n;
}

TEST(MillionTimers, EachFiresOnceUnderItsCurrentIdNeverEarlyWhileATenthAreCancelledAndRearmed) {
    const long n = timer_count();
    IOWait w;
    std::vector<timer> timers(static_cast<std::size_t>(n));
    // Deadlines spread over two seconds in a scrambled order, so that the
    // heap sees them out of order, from twice the time the watches take
    // (measured on 10,000: a sanitized or valgrind build is many times
    // slower), so that none is due before the loop below begins; the
    // victims (a tenth) are sorted by their deadline once watched.
    const clock_type::duration base = [n] {
        IOWait probe;
        const auto t0 = clock_type::now();
        for (int i = 0; i < 10'000; ++i) probe.watch_timer(1h);
        return std::max<clock_type::duration>(1s, 2 * (clock_type::now() - t0) * n / 10'000);
    }();
    const auto offset = [n, base](long i) {
        return std::chrono::duration_cast<std::chrono::microseconds>(base) + 2'000'000us * ((i * 7919) % n) / n;
    };
    std::vector<long> victims;
    for (long i = 3; i < n; i += 10) victims.push_back(i);

    // The C heap's bytes in use, the blocks it took with mmap() included
    // (the big vectors): what iowait holds for the timers.
    const auto heap_bytes = [] {
        const auto m = ::mallinfo2();
        return long(m.uordblks + m.hblkhd);
    };
    const long heap_before = heap_bytes();
    const long rss_before = rss_bytes();
    const auto start = clock_type::now();
    for (long i = 0; i < n; ++i) {
        timer& t = timers[std::size_t(i)];
        t.due = clock_type::now() + offset(i);
        t.id = w.watch_timer(offset(i), 0s, std::uint64_t(i));
    }
    const auto watched = clock_type::now();
    std::sort(victims.begin(), victims.end(),
              [&](long a, long b) { return timers[std::size_t(a)].due < timers[std::size_t(b)].due; });
    const double per_timer = double(heap_bytes() - heap_before) / double(n);
    std::cout << "[ NOTE     ] " << n << " timers watched in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(watched - start).count() << " ms; heap "
              << per_timer << " B per timer, RSS " << double(rss_bytes() - rss_before) / double(n) << " B per timer\n";
    if (heap_bytes() == 0) {
        std::cout << "[ NOTE     ] no memory figure: the allocator is not glibc's (valgrind)\n";
    } else {
        EXPECT_LE(per_timer, 128) << "a slot and a heap entry, with the vectors' slack";
        EXPECT_GE(per_timer, 40) << "the measure counts the library's vectors";
    }

    long fired = 0, early = 0, cancelled = 0, stale_refused = 0;
    std::size_t next_victim = 0;
    clock_type::duration latest{};
    const auto give_up = clock_type::now() + 60s;
    while (fired < n && clock_type::now() < give_up) {
        const auto events = w.wait(100ms);
        const auto now = clock_type::now();
        for (const Event& e : events) {
            ASSERT_LT(e.data, std::uint64_t(n));
            timer& t = timers[std::size_t(e.data)];
            ASSERT_EQ(e.fd, t.id) << "timer " << e.data << " reported under an id it no longer has";
            ASSERT_EQ(t.reports++, 0) << "timer " << e.data << " reported twice";
            ++fired;
            if (now < t.due) ++early;
            latest = std::max(latest, now - t.due);
            w.unwatch(t.id);  // spent: its slot is free for the re-armed ones
        }
        // The victims due within 200 ms: cancelled and watched again, due
        // 0-500 ms from now, under a new id; a few of the old ids tried again.
        while (next_victim < victims.size() && timers[std::size_t(victims[next_victim])].due < now + 200ms) {
            const long i = victims[next_victim++];
            timer& t = timers[std::size_t(i)];
            if (t.reports != 0) continue;  // fired already: nothing to cancel
            w.unwatch(t.id);
            if (cancelled % 1000 == 0) {
                std::error_code ec;
                w.unwatch(t.id, ec);
                ASSERT_EQ(ec, errc::not_watched) << "a cancelled timer's id names nothing";
                ++stale_refused;
            }
            const auto again = std::chrono::microseconds((i * 31) % 500'000);
            t.due = clock_type::now() + again;
            t.id = w.watch_timer(again, 0s, std::uint64_t(i));
            t.rearmed = true;
            ++cancelled;
        }
    }
    const auto took = clock_type::now() - watched;
    std::cout << "[ NOTE     ] " << fired << " reported in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms after the watches, "
              << cancelled << " cancelled and re-armed; latest report "
              << std::chrono::duration_cast<std::chrono::milliseconds>(latest).count() << " ms after its deadline\n";
    EXPECT_EQ(fired, n) << "every timer reported";
    EXPECT_EQ(early, 0) << "never before its deadline";
    EXPECT_GT(cancelled, long(victims.size()) / 2) << "most of the tenth were cancelled before they fired";
    EXPECT_GT(stale_refused, 0);
    EXPECT_LT(latest, 20s) << "none held back for long (a slow build on a loaded machine is seconds late)";
    EXPECT_TRUE(w.wait(20ms).empty()) << "nothing more";
}

}  // namespace
}  // namespace iowait::test
