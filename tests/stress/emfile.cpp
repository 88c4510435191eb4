// Rule X1 of docs/behaviour.md: creating an IOWait when the process has no
// fd left (EMFILE), or too few for all of the backend's kernel objects,
// throws std::system_error with EMFILE and a message naming IOWait and the
// backend, and leaks nothing: no fd, no memory. With the fds back it works.
#include <fcntl.h>

#include "stress.hpp"

namespace iowait::test {
namespace {

class Exhaustion : public testing::TestWithParam<Backend> {};
INSTANTIATE_TEST_SUITE_P(Stress, Exhaustion, testing::ValuesIn(IOWait::available_backends()), name_of);

// UBSan's vptr check makes sure an object is readable through a pipe(); with
// no fd left that fails, and each virtual call (error_category::equivalent)
// is reported as one on an invalid vptr. These tests run in the plain build
// and under valgrind instead.
#define SKIP_UNDER_UBSAN()                                                                                 \
    if (std::string_view(IOWAIT_SANITIZED).find("undefined") != std::string_view::npos)                    \
    GTEST_SKIP() << "UBSan needs a free fd for its own checks (pipe()), so it cannot run with none left; " \
                    "checked by the plain build and scripts/valgrind"

// Leaves exactly `spare` fd numbers free under a lowered soft RLIMIT_NOFILE:
// the gaps below it are filled with /dev/null. Undone on destruction.
class fd_squeeze {
public:
    explicit fd_squeeze(int spare) {
        ::getrlimit(RLIMIT_NOFILE, &saved_);
        int highest = 0;
        for (int fd = 0; fd < 4096; ++fd)
            if (::fcntl(fd, F_GETFD) >= 0) highest = fd;
        for (int fd = 0; fd < highest; ++fd)
            if (::fcntl(fd, F_GETFD) < 0) {
                const int filler = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (filler >= 0) fillers_.push_back(filler);
            }
        rlimit rl = saved_;
        rl.rlim_cur = rlim_t(highest + 1 + spare);
        ok_ = ::setrlimit(RLIMIT_NOFILE, &rl) == 0;
    }
    ~fd_squeeze() {
        ::setrlimit(RLIMIT_NOFILE, &saved_);
        for (int fd : fillers_) ::close(fd);
    }
    fd_squeeze(const fd_squeeze&) = delete;
    fd_squeeze& operator=(const fd_squeeze&) = delete;
    bool ok() const { return ok_; }

private:
    rlimit saved_{};
    std::vector<int> fillers_;
    bool ok_ = false;
};

// With too few fds left, every backend's constructor fails cleanly, whichever
// of its kernel objects (the waker's eventfd, epoll's own fd, ...) it could
// not get; the fewest that suffice is found by trying, not hard-coded.
TEST_P(Exhaustion, TooFewFdsLeftIsAClearEMFILEAndLeaksNothing) {
    SKIP_UNDER_UBSAN();
    const Backend backend = GetParam();
    socket_pair p;  // made before the squeeze, to check the IOWait made under it
    // Enough for any backend: kqueue through libkqueue holds the most (8
    // fds for an IOWait, 9 once a fd is watched); the kernels need 1 or 2.
    constexpr int most_spare = 16;
    // Squeezes the fds left from 0 upwards until an IOWait can be made;
    // returns how many it needed.
    auto squeeze_until_created = [&] {
        const int fds_before = open_fd_count();
        int spare = 0;
        for (; spare < most_spare; ++spare) {
            bool created = false;
            for (int attempt = 0; attempt < 20 && !created; ++attempt) {
                fd_squeeze squeeze(spare);
                if (!squeeze.ok()) {
                    ADD_FAILURE() << "could not squeeze to " << spare << " spare fd(s)";
                    return most_spare;
                }
                try {
                    IOWait w{backend};
                    created = true;
                    // Exactly enough fds: it works.
                    w.watch(p.a, Interest::read, 5);
                    p.send_b();
                    auto events = wait_events(w, 1s);
                    EXPECT_EQ(events.size(), 1u);
                    if (!events.empty()) {
                        EXPECT_EQ(events[0].data, 5u);
                    }
                    EXPECT_EQ(p.recv_a(), "x");
                } catch (const std::system_error& e) {
                    EXPECT_EQ(e.code(), std::errc::too_many_files_open) << e.what();
                    const std::string what = e.what();
                    EXPECT_NE(what.find("IOWait"), std::string::npos) << what;
                    EXPECT_NE(what.find(std::string(to_string(backend))), std::string::npos) << what;
                }
            }
            EXPECT_EQ(open_fd_count(), fds_before) << "fds leaked with " << spare << " fd(s) left";
            if (created) break;
        }
        return spare;
    };
    // The first round pays the first-use allocations of every failure path
    // (error categories, locale; libkqueue keeps a few KB for good after its
    // first refusals, the same after 1 or 1000 of them). A leak grows with
    // each refused construction, so the second round must add nothing.
    // libkqueue also runs a thread while any kqueue is open, and ends it some
    // time after the last one closes, its memory with it: whether it had
    // ended when the heap was measured varied (by about 1.3 KB). One IOWait
    // open through both rounds keeps the thread, so they compare alike.
    IOWait kept_open{backend};
    squeeze_until_created();
    const std::size_t heap_before = heap_in_use();
    const int spare = squeeze_until_created();
    ASSERT_LT(spare, most_spare) << "no IOWait even with " << most_spare << " fds left";
    std::cout << "[ NOTE     ] " << to_string(backend) << " needs " << spare << " fd(s); with fewer: EMFILE\n";
    EXPECT_GT(spare, 0) << "an IOWait needs at least the waker's fd";
    EXPECT_LE(long(heap_in_use()) - long(heap_before), 4096) << "memory leaked by failed constructions";
}

// The fewest spare fds with which IOWait{b} can be made (found by trying);
// -1 if even 16 are not enough.
int fds_needed(Backend b) {
    for (int spare = 0; spare <= 16; ++spare) {
        fd_squeeze squeeze(spare);
        if (!squeeze.ok()) return -1;
        try {
            IOWait w{b};
            return spare;
        } catch (const std::system_error&) {
        }
    }
    return -1;
}

// EMFILE is no refusal of the mechanism (X1): the default constructor does
// not fall back to another backend. Tested with as many spare fds as the
// best backend lacks one of, where a backend after it would fit (epoll needs
// its set and the waker, poll only the waker): with none left, every backend
// fails anyway and a fallback could not show.
TEST(ExhaustionDefault, DefaultConstructorWithTooFewFdsForTheBestBackendIsEMFILENotAFallback) {
    SKIP_UNDER_UBSAN();
    const auto available = IOWait::available_backends();
    ASSERT_FALSE(available.empty());
    const Backend best = available.front();
    const int best_needs = fds_needed(best);
    ASSERT_GT(best_needs, 0) << to_string(best);
    const auto fits =
        std::find_if(available.begin() + 1, available.end(), [&](Backend b) { return fds_needed(b) < best_needs; });
    if (fits == available.end())
        GTEST_SKIP() << "no backend here needs fewer fds than " << to_string(best) << " (" << best_needs
                     << "): nothing to fall back to";
    fd_squeeze squeeze(best_needs - 1);
    ASSERT_TRUE(squeeze.ok());
    {
        IOWait fallback{*fits};  // the fallback would succeed: this is the case that tells
    }
    try {
        IOWait w;
        ADD_FAILURE() << "IOWait() created (on " << to_string(w.backend()) << ") with " << best_needs - 1
                      << " fd(s) left, fewer than " << to_string(best) << " needs";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::too_many_files_open) << e.what();
        EXPECT_NE(std::string(e.what()).find(std::string(to_string(best))), std::string::npos) << e.what();
    }
}

// X2: select's own wake-up fd must be below FD_SETSIZE. When every number
// below it is open, select cannot be made: EMFILE (a kernel limit, not
// misuse) with a message that says so, and available_backends() leaves it
// out; the other backends are not affected. With one low number free, it
// takes that one and works.
TEST(ExhaustionSelect, EveryNumberBelowFdSetsizeOpenIsEMFILEForSelectOnly) {
    const auto before = IOWait::available_backends();
    if (std::find(before.begin(), before.end(), Backend::select) == before.end())
        GTEST_SKIP() << "the select backend is not in this build";
    ASSERT_GE(raise_fd_limit(), rlim_t(FD_SETSIZE + 100)) << "needs RLIMIT_NOFILE above " << FD_SETSIZE + 100;
    std::vector<int> fillers;
    for (;;) {
        const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        ASSERT_GE(fd, 0);
        fillers.push_back(fd);
        if (fd >= FD_SETSIZE + 50) break;
    }
    const auto under = IOWait::available_backends();
    EXPECT_EQ(std::find(under.begin(), under.end(), Backend::select), under.end()) << "select listed";
    EXPECT_EQ(under.size(), before.size() - 1);
    try {
        IOWait w{Backend::select};
        ADD_FAILURE() << "select created with every number below FD_SETSIZE open";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::too_many_files_open) << e.what();
        EXPECT_FALSE(dynamic_cast<const usage_error*>(&e)) << "a kernel limit, not misuse: " << e.what();
        EXPECT_NE(std::string(e.what()).find("FD_SETSIZE"), std::string::npos) << e.what();
    }
    for (Backend b : under) {
        SCOPED_TRACE(to_string(b));
        IOWait w{b};
        w.notify();
        EXPECT_TRUE(wait_events(w, 1s).empty());
    }
    // One number below the limit free again: select takes it and works.
    const int low = FD_SETSIZE / 2;
    ASSERT_EQ(::close(low), 0);
    std::erase(fillers, low);
    {
        IOWait w{Backend::select};
        w.notify();
        const auto start = std::chrono::steady_clock::now();
        EXPECT_TRUE(wait_events(w, 5s).empty());
        EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << "notify() did not wake select";
    }
    for (int fd : fillers) ::close(fd);
}

}  // namespace
}  // namespace iowait::test
