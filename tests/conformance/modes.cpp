// Rules M1-M5 of docs/behaviour.md: level (default), oneshot and edge watches.
#include "helpers.hpp"

namespace iowait::test {
namespace {

using Modes = ConformanceTest;
IOWAIT_CONFORMANCE(Modes);

// Runs `body` if the backend supports edge; else checks the refusal (M4).
#define REQUIRE_EDGE_OR_CHECK_REFUSAL()                                                  \
    if (!w.supports(Mode::edge)) {                                                       \
        socket_pair refused;                                                             \
        try {                                                                            \
            w.watch(refused.a, Interest::read, 0, Mode::edge);                           \
            ADD_FAILURE() << "edge accepted by a backend that says it cannot do it";     \
        } catch (const usage_error& e) {                                                 \
            EXPECT_EQ(e.code(), errc::unsupported_mode);                                 \
        }                                                                                \
        EXPECT_NO_THROW(w.watch(refused.a, Interest::read)); /* nothing was recorded */  \
        std::cout << "[ NOTE     ] " << to_string(GetParam()) << " refuses edge (M4)\n"; \
        return;                                                                          \
    }

TEST_P(Modes, LevelAndOneshotAreSupportedEverywhere) {
    EXPECT_TRUE(w.supports(Mode::level));
    EXPECT_TRUE(w.supports(Mode::oneshot));
}

TEST_P(Modes, OneshotReportsOnceThenModifyRearms) {
    socket_pair p;
    w.watch(p.a, Interest::read, 1, Mode::oneshot);
    p.send_b();
    auto events = wait_events(w, 1s);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, 1u);
    EXPECT_TRUE(wait_events(w, 20ms).empty()) << "still readable, but disarmed";
    p.send_b();
    EXPECT_TRUE(wait_events(w, 0ns).empty()) << "new data does not re-arm it";
    w.modify(p.a, Interest::read, 2, Mode::oneshot);
    events = wait_events(w, 1s);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, 2u);
    EXPECT_TRUE(wait_events(w, 0ns).empty());
}

TEST_P(Modes, DisarmedOneshotReportsNoHangupAndDoesNotSpin) {
    socket_pair p;
    w.watch(p.a, Interest::read, 0, Mode::oneshot);
    p.send_b();
    ASSERT_EQ(wait_events(w, 1s).size(), 1u);
    p.close_b();               // hangup while disarmed
    expect_sleeps_through(w);  // no event, and no busy loop on the hangup: CPU time, not the wall clock
    w.modify(p.a, Interest::read, 0, Mode::oneshot);
    Event e = expect_event(w, p.a);
    if (hangup_waits_for_unread_data && !e.hangup) {  // docs/behaviour.md, Windows
        EXPECT_TRUE(e.read);
        EXPECT_EQ(p.recv_a(), "x");
        w.modify(p.a, Interest::read, 0, Mode::oneshot);
        e = expect_event(w, p.a);
    }
    EXPECT_TRUE(e.hangup);
}

TEST_P(Modes, OneshotCanBeUnwatchedAndWatchedAgainAfterItFired) {
    socket_pair p;
    w.watch(p.a, Interest::read, 0, Mode::oneshot);
    p.send_b();
    ASSERT_EQ(wait_events(w, 1s).size(), 1u);
    w.unwatch(p.a);
    w.watch(p.a, Interest::read);  // level again: reported on every wait
    EXPECT_EQ(wait_events(w, 1s).size(), 1u);
    EXPECT_EQ(wait_events(w, 1s).size(), 1u);
}

TEST_P(Modes, ModifyChangesTheMode) {
    socket_pair p;
    p.send_b();
    w.watch(p.a, Interest::read);
    EXPECT_EQ(wait_events(w, 1s).size(), 1u);
    w.modify(p.a, Interest::read, 0, Mode::oneshot);
    EXPECT_EQ(wait_events(w, 1s).size(), 1u);
    EXPECT_TRUE(wait_events(w, 0ns).empty());
    w.modify(p.a, Interest::read, 0, Mode::level);
    EXPECT_EQ(wait_events(w, 1s).size(), 1u);
    EXPECT_EQ(wait_events(w, 1s).size(), 1u);
}

TEST_P(Modes, OneshotRegularFileIsReportedOnce) {
    temp_file file;
    const fd_t fd = file.fd;
    ASSERT_NE(fd, no_fd);
    w.watch(fd, Interest::read, 0, Mode::oneshot);
    EXPECT_EQ(wait_events(w, 1s).size(), 1u);
    EXPECT_TRUE(wait_events(w, 10ms).empty());
    w.modify(fd, Interest::read, 0, Mode::oneshot);
    EXPECT_EQ(wait_events(w, 1s).size(), 1u);
    w.unwatch(fd);
}

TEST_P(Modes, EdgeReportsWhenNewDataArrivesNotWhileDataSits) {
    REQUIRE_EDGE_OR_CHECK_REFUSAL();
    socket_pair p;
    w.watch(p.a, Interest::read, 0, Mode::edge);
    EXPECT_TRUE(wait_events(w, 0ns).empty());
    p.send_b();
    ASSERT_EQ(wait_events(w, 1s).size(), 1u);
    EXPECT_TRUE(wait_events(w, 20ms).empty()) << "data still there, but no new edge";
    p.send_b();
    ASSERT_EQ(wait_events(w, 1s).size(), 1u) << "new data is a new edge";
}

TEST_P(Modes, EdgeReportsWritableAgainAfterTheBufferDrains) {
    REQUIRE_EDGE_OR_CHECK_REFUSAL();
    socket_pair p;
    w.watch(p.a, Interest::write, 0, Mode::edge);
    ASSERT_EQ(wait_events(w, 1s).size(), 1u);
    EXPECT_TRUE(wait_events(w, 20ms).empty());
    fill(p.a);
    drain(p.b);
    EXPECT_TRUE(expect_event(w, p.a).write);
}

TEST_P(Modes, EdgeReportsHangup) {
    REQUIRE_EDGE_OR_CHECK_REFUSAL();
    socket_pair p;
    w.watch(p.a, Interest::read, 0, Mode::edge);
    p.close_b();
    Event e = expect_event(w, p.a);
    EXPECT_TRUE(e.read);
    EXPECT_TRUE(e.hangup);
}

// M3: modify() re-arms an edge watch, as watch() arms one: readiness already
// there is reported once, then only new edges (a regression: kqueue
// re-enabled its knotes, which report only new edges).
TEST_P(Modes, ModifyOfAnEdgeWatchReportsReadinessAlreadyThereOnce) {
    REQUIRE_EDGE_OR_CHECK_REFUSAL();
    socket_pair p;
    w.watch(p.a, Interest::read, 1, Mode::edge);
    p.send_b();
    ASSERT_EQ(wait_events(w, 1s).size(), 1u);
    EXPECT_TRUE(wait_events(w, 20ms).empty()) << "data still there, but no new edge";
    w.modify(p.a, Interest::read, 1, Mode::edge);  // the same watch: still re-armed
    Event e = expect_event(w, p.a);
    EXPECT_TRUE(e.read);
    EXPECT_FALSE(e.write);
    EXPECT_TRUE(wait_events(w, 20ms).empty()) << "reported once, not while the data sits";
    // Adding an interest re-arms the one kept too: both are reported.
    w.modify(p.a, Interest::read | Interest::write, 2, Mode::edge);
    e = expect_event(w, p.a);
    EXPECT_TRUE(e.read);
    EXPECT_TRUE(e.write);
    EXPECT_EQ(e.data, 2u);
    EXPECT_TRUE(wait_events(w, 20ms).empty());
    // Write alone, the fuzzer's case: room in the buffer is reported again.
    w.modify(p.a, Interest::write, 3, Mode::edge);
    e = expect_event(w, p.a);
    EXPECT_FALSE(e.read);
    EXPECT_TRUE(e.write);
    EXPECT_TRUE(wait_events(w, 20ms).empty());
}

TEST_P(Modes, UnknownModeIsRefused) {
    socket_pair p;
    try {
        w.watch(p.a, Interest::read, 0, Mode(42));
        ADD_FAILURE() << "Mode(42) accepted";
    } catch (const usage_error& e) {
        EXPECT_EQ(e.code(), errc::unsupported_mode);
    }
    EXPECT_NO_THROW(w.watch(p.a, Interest::read));
}

}  // namespace
}  // namespace iowait::test
