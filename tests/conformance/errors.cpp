// Rules E1-E8 of docs/behaviour.md: misuse and bad input get a clear error of
// the same type on every backend, and leave the IOWait as it was.
#include <iowait/iowait.h>

#include <memory>

#include "helpers.hpp"

namespace iowait::test {
namespace {

using Errors = ConformanceTest;
IOWAIT_CONFORMANCE(Errors);

// The IOWait still reports a ready fd after the error under test.
void expect_still_works(IOWait& w) {
    socket_pair p;
    w.watch(p.a, Interest::read);
    p.send_b();
    EXPECT_TRUE(expect_event(w, p.a).read);
    w.unwatch(p.a);
}

template <class F>
std::error_code usage_code(F f) {
    try {
        f();
    } catch (const usage_error& e) {
        return e.code();
    } catch (const std::exception& e) {
        ADD_FAILURE() << "expected usage_error, got: " << e.what();
        return {};
    }
    ADD_FAILURE() << "expected usage_error, nothing thrown";
    return {};
}

template <class F>
std::string message_of(F f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "(nothing thrown)";
}

TEST_P(Errors, WatchingAWatchedFdIsAlreadyWatchedAndChangesNothing) {
    socket_pair p;
    w.watch(p.a, Interest::read, 1);
    EXPECT_EQ(usage_code([&] { w.watch(p.a, Interest::write, 2); }), errc::already_watched);
    p.send_b();
    auto events = wait_events(w, 1s);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_TRUE(events[0].read);
    EXPECT_FALSE(events[0].write);  // the failed watch did not change the interest
    EXPECT_EQ(events[0].data, 1u);  // nor the data
}

TEST_P(Errors, ModifyOrUnwatchOfAnUnwatchedFdIsNotWatched) {
    socket_pair p;
    EXPECT_EQ(usage_code([&] { w.modify(p.a, Interest::read); }), errc::not_watched);
    EXPECT_EQ(usage_code([&] { w.unwatch(p.a); }), errc::not_watched);
    w.watch(p.a, Interest::read);
    w.unwatch(p.a);
    EXPECT_EQ(usage_code([&] { w.unwatch(p.a); }), errc::not_watched);
    expect_still_works(w);
}

TEST_P(Errors, NegativeFdIsBadFd) {
    EXPECT_EQ(usage_code([&] { w.watch(-1, Interest::read); }), errc::bad_fd);
    EXPECT_EQ(usage_code([&] { w.modify(-5, Interest::read); }), errc::bad_fd);
    EXPECT_EQ(usage_code([&] { w.unwatch(-1); }), errc::bad_fd);
    expect_still_works(w);
}

TEST_P(Errors, EmptyOrUnknownInterestIsBadInterest) {
    socket_pair p;
    EXPECT_EQ(usage_code([&] { w.watch(p.a, Interest::none); }), errc::bad_interest);
    EXPECT_EQ(usage_code([&] { w.watch(p.a, Interest(8)); }), errc::bad_interest);
    w.watch(p.a, Interest::read);
    EXPECT_EQ(usage_code([&] { w.modify(p.a, Interest::none); }), errc::bad_interest);
    p.send_b();
    EXPECT_TRUE(expect_event(w, p.a).read);
}

TEST_P(Errors, FdThatIsNotOpenIsEBADFAndLeavesNoWatch) {
    fd_t closed = no_fd;
    {
        socket_pair p;
        closed = p.a;
    }
    try {
        w.watch(closed, Interest::read);
        ADD_FAILURE() << "watch of a closed fd did not throw";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), not_open) << e.what();  // ENOTSOCK on Windows: see helpers.hpp
        EXPECT_FALSE(dynamic_cast<const usage_error*>(&e));
    }
    // Nothing was recorded: the number is not watched.
    EXPECT_EQ(usage_code([&] { w.unwatch(closed); }), errc::not_watched);
    expect_still_works(w);
}

TEST_P(Errors, MessagesNameTheOperationTheFdAndTheBackend) {
    socket_pair p;
    w.watch(p.a, Interest::read);
    const std::string fd = "fd=" + std::to_string(p.a);
    const std::string backend(to_string(GetParam()));
    std::string m = message_of([&] { w.watch(p.a, Interest::read); });
    EXPECT_NE(m.find("watch(" + fd + ")"), std::string::npos) << m;
    EXPECT_NE(m.find(backend), std::string::npos) << m;
    EXPECT_NE(m.find("already watched"), std::string::npos) << m;
    // Each message begins with what was called, on which fd and backend:
    // "iowait: <call>(fd=N) on <backend>: <why>" ("iowait: wait on <backend>: ...").
    const std::string other = "(fd=" + std::to_string(p.b) + ") on " + backend + ": ";
    m = message_of([&] { w.unwatch(p.b); });
    EXPECT_EQ(m.rfind("iowait: unwatch" + other, 0), 0u) << m;
    EXPECT_NE(m.find("not watched"), std::string::npos) << m;
    m = message_of([&] { w.modify(p.b, Interest::read); });
    EXPECT_EQ(m.rfind("iowait: modify" + other, 0), 0u) << m;
    EXPECT_NE(m.find("not watched"), std::string::npos) << m;
    m = message_of([&] { w.wait(std::chrono::nanoseconds(-1)); });
    EXPECT_EQ(m.rfind("iowait: wait on " + backend + ": ", 0), 0u) << m;
    EXPECT_NE(m.find("timeout"), std::string::npos) << m;
}

// E5 in C: iowait_last_error() is the what() of the exception the C++ call
// throws for the same failure, word for word (G4 and K2 name the signal and
// the pid there too).
TEST_P(Errors, TheCApisLastErrorIsTheCxxMessage) {
    iowait_t* c = nullptr;
    ASSERT_EQ(iowait_create_backend(&c, iowait_backend(GetParam())), 0) << iowait_last_error();
    const std::unique_ptr<iowait_t, void (*)(iowait_t*)> owner(c, iowait_destroy);
    socket_pair p;
    w.watch(p.a, Interest::read);
    ASSERT_EQ(iowait_watch(c, p.a, IOWAIT_READ, 0, IOWAIT_LEVEL), 0);
    iowait_fd id = 0;
    const auto same = [&](const char* what, auto cxx, int code) {
        EXPECT_NE(code, 0) << what;
        EXPECT_EQ(std::string(iowait_last_error()), message_of(cxx)) << what;
    };
    same(
        "watch_signal(9)", [&] { w.watch_signal(9); }, iowait_watch_signal(c, 9, 0, IOWAIT_LEVEL, &id));
    same(
        "watch_signal(0)", [&] { w.watch_signal(0); }, iowait_watch_signal(c, 0, 0, IOWAIT_LEVEL, &id));
    same(
        "watch_process(1)", [&] { w.watch_process(1); }, iowait_watch_process(c, 1, 0, &id));
    same(
        "watch_timer(-1ns)", [&] { w.watch_timer(-1ns); }, iowait_watch_timer(c, -1, 0, 0, IOWAIT_LEVEL, &id));
    same(
        "watch twice", [&] { w.watch(p.a, Interest::read); }, iowait_watch(c, p.a, IOWAIT_READ, 0, IOWAIT_LEVEL));
    same(
        "watch(-1)", [&] { w.watch(native_handle(-1), Interest::read); },
        iowait_watch(c, iowait_fd(-1), IOWAIT_READ, 0, IOWAIT_LEVEL));
    same(
        "modify, bad interest", [&] { w.modify(p.a, Interest(4)); }, iowait_modify(c, p.a, 4, 0, IOWAIT_LEVEL));
    same(
        "modify, not watched", [&] { w.modify(p.b, Interest::read); },
        iowait_modify(c, p.b, IOWAIT_READ, 0, IOWAIT_LEVEL));
    same(
        "unwatch, not watched", [&] { w.unwatch(p.b); }, iowait_unwatch(c, p.b));
    same(
        "unwatch of a source id never made", [&] { w.unwatch(native_handle(-5)); }, iowait_unwatch(c, iowait_fd(-5)));
}

// E1-E4 and M5 again once the table has room for the numbers, where the
// epoll backends' watch() makes its entry inline before the kernel answers:
// a refusal must take the entry back, and the errors must be the same.
TEST_P(Errors, RefusalsAfterAnEarlierWatchLeaveNoWatch) {
    socket_pair first;
    w.watch(first.a, Interest::read);
    fd_t closed = no_fd;
    {
        socket_pair p;
        closed = p.a;
    }
    try {
        w.watch(closed, Interest::read, 1);
        ADD_FAILURE() << "watch of a closed fd did not throw";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), not_open) << e.what();
    }
    std::error_code ec;
    w.watch(closed, Interest::read, 1, Mode::level, ec);
    EXPECT_EQ(ec, not_open);
    EXPECT_EQ(usage_code([&] { w.unwatch(closed); }), errc::not_watched);

    socket_pair q;
    EXPECT_EQ(usage_code([&] { w.watch(q.a, Interest(4)); }), errc::bad_interest);
    EXPECT_EQ(usage_code([&] { w.watch(q.a, Interest::none); }), errc::bad_interest);
    EXPECT_EQ(usage_code([&] { w.watch(q.a, Interest::read, 0, Mode(3)); }), errc::unsupported_mode);
    EXPECT_EQ(usage_code([&] { w.unwatch(q.a); }), errc::not_watched);

    // Refused three times, then watched: with its data and interest.
    w.watch(q.a, Interest::read, 7);
    EXPECT_EQ(usage_code([&] { w.watch(q.a, Interest::write, 8); }), errc::already_watched);
    q.send_b();
    const Event e = expect_event(w, q.a);
    EXPECT_TRUE(e.read);
    EXPECT_FALSE(e.write);
    EXPECT_EQ(e.data, 7u);
    w.unwatch(q.a);
    w.unwatch(first.a);
    expect_still_works(w);
}

TEST_P(Errors, ErrorCodeOverloadsReportWithoutThrowing) {
    socket_pair p;
    std::error_code ec;
    w.watch(p.a, Interest::read, 5, ec);
    EXPECT_FALSE(ec);
    w.watch(p.a, Interest::read, 5, ec);
    EXPECT_EQ(ec, errc::already_watched);
    EXPECT_EQ(ec, std::errc::file_exists);  // and the portable condition
    w.modify(p.b, Interest::read, 0, ec);
    EXPECT_EQ(ec, errc::not_watched);
    w.unwatch(p.b, ec);
    EXPECT_EQ(ec, errc::not_watched);
    auto events = w.wait(std::chrono::seconds(-1), ec);
    EXPECT_EQ(ec, errc::bad_timeout);
    EXPECT_TRUE(events.empty());
    p.send_b();
    events = w.wait(std::chrono::seconds(1), ec);
    EXPECT_FALSE(ec);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, 5u);
    w.unwatch(p.a, ec);
    EXPECT_FALSE(ec);
}

// E6 for the calls beside watch/modify/unwatch/wait: notify, the
// constructors, the pointer-data forms, available_backends.
TEST_P(Errors, EveryCallHasAnErrorCodeOverload) {
    std::error_code ec = make_error_code(errc::bad_fd);
    w.notify(ec);
    EXPECT_FALSE(ec);
    EXPECT_TRUE(wait_events(w, 0ns).empty());  // the notify's wake, no events
    IOWait made{GetParam(), ec};
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(made.backend(), GetParam());
    socket_pair p;
    int datum = 7;
    made.watch(p.a, Interest::read, &datum, ec);
    EXPECT_FALSE(ec);
    made.watch(p.a, Interest::read, &datum, Mode::level, ec);
    EXPECT_EQ(ec, errc::already_watched);
    int other = 8;
    made.modify(p.a, Interest::read, &other, ec);
    EXPECT_FALSE(ec);
    made.modify(p.b, Interest::read, &other, Mode::level, ec);
    EXPECT_EQ(ec, errc::not_watched);
    p.send_b();
    EXPECT_EQ(expect_event(made, p.a).ptr<int>(), &other);

    IOWait moved = std::move(made);
    made.notify(ec);
    EXPECT_EQ(ec, errc::moved_from);
    IOWait none{Backend(42), ec};
    EXPECT_EQ(ec, errc::backend_unavailable);
    none.watch(p.a, Interest::read, 0, ec);
    EXPECT_EQ(ec, errc::moved_from);  // an IOWait the constructor could not make is empty
    const auto all = IOWait::available_backends(ec);
    EXPECT_FALSE(ec);
    EXPECT_EQ(all, IOWait::available_backends());
    IOWait best{ec};
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(best.backend(), IOWait().backend());
}

TEST_P(Errors, MovedFromIsAnErrorNotACrash) {
    IOWait moved = std::move(w);
    EXPECT_EQ(moved.backend(), GetParam());
    EXPECT_EQ(usage_code([&] { w.watch(0, Interest::read); }), errc::moved_from);
    EXPECT_EQ(usage_code([&] { w.wait(0s); }), errc::moved_from);
    EXPECT_EQ(usage_code([&] { w.notify(); }), errc::moved_from);
    expect_still_works(moved);
}

// E9: an O_PATH descriptor (Linux) names a file without opening it for I/O:
// it can be neither read nor written, so watch() refuses it with EBADF on
// every backend (epoll's own answer), and records nothing.
TEST_P(Errors, OPathDescriptorIsEBADFAtWatch) {
#ifndef O_PATH
    GTEST_SKIP() << "no O_PATH on this system (Linux only)";
#else
    const int fd = ::open(".", O_PATH | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    for (Interest interest : {Interest::read, Interest::write, Interest::read | Interest::write}) {
        try {
            w.watch(fd, interest);
            ADD_FAILURE() << "watch of an O_PATH fd succeeded, interest " << unsigned(interest);
            w.unwatch(fd);
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code(), std::errc::bad_file_descriptor) << e.what();
            EXPECT_FALSE(dynamic_cast<const usage_error*>(&e));
        }
    }
    EXPECT_EQ(usage_code([&] { w.unwatch(fd); }), errc::not_watched);
    ::close(fd);
    expect_still_works(w);
#endif
}

TEST_P(Errors, FdAtOrAboveFdSetsizeIsRefusedBySelectOnlyAtWatchTime) {
    // docs/behaviour.md E7: the one per-backend difference among the errors.
    IOWAIT_SKIP_ON_WINDOWS("no select backend, and Windows' fd_set is an array of handles, not a bitmap");
#ifndef _WIN32
    socket_pair p;
    const int high = ::fcntl(p.a, F_DUPFD_CLOEXEC, FD_SETSIZE + 10);
    ASSERT_GE(high, FD_SETSIZE) << "needs RLIMIT_NOFILE above " << FD_SETSIZE;
    if (is(Backend::select)) {
        EXPECT_EQ(usage_code([&] { w.watch(high, Interest::read); }), errc::fd_too_large);
        expect_still_works(w);
    } else {
        w.watch(high, Interest::read);
        p.send_b();
        EXPECT_TRUE(expect_event(w, high).read);
        w.unwatch(high);
    }
    ::close(high);
#endif
}

}  // namespace
}  // namespace iowait::test
