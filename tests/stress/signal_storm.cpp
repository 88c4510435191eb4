// A storm of signals (one every few microseconds, handler installed without
// SA_RESTART so that every kernel wait fails with EINTR) during blocking
// waits: each timeout is honoured in full, no wait returns early or with
// events, and a fd that becomes ready or a notify() still ends the wait (T1, T2).
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <thread>

#include "stress.hpp"

namespace iowait::test {
namespace {

class SignalStorm : public testing::TestWithParam<Backend> {};
INSTANTIATE_TEST_SUITE_P(Stress, SignalStorm, testing::ValuesIn(IOWait::available_backends()), name_of);

std::atomic<long> caught{0};
void on_signal(int) { caught.fetch_add(1, std::memory_order_relaxed); }

// Sends SIGUSR2 to one thread until destroyed.
class storm {
public:
    explicit storm(pthread_t target) : target_(target) {
        struct sigaction sa {};
        sa.sa_handler = on_signal;
        ::sigaction(SIGUSR2, &sa, &old_);
        thread_ = std::thread([this] {
            while (!stop_.load()) {
                ::pthread_kill(target_, SIGUSR2);
                std::this_thread::sleep_for(20us);
            }
        });
    }
    ~storm() {
        stop_ = true;
        thread_.join();
        ::sigaction(SIGUSR2, &old_, nullptr);
    }
    storm(const storm&) = delete;
    storm& operator=(const storm&) = delete;

private:
    pthread_t target_;
    struct sigaction old_ {};
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

using clock = std::chrono::steady_clock;

TEST_P(SignalStorm, EveryTimeoutIsHonouredInFull) {
    IOWait w{GetParam()};
    socket_pair p;
    w.watch(p.a, Interest::read);
    caught = 0;
    storm s(::pthread_self());
    for (int round = 0; round < 3; ++round)
        for (auto timeout : {1ms, 5ms, 20ms, 100ms}) {
            const auto start = clock::now();
            const auto events = wait_events(w, timeout);
            const auto took = clock::now() - start;
            EXPECT_TRUE(events.empty());
            EXPECT_GE(took, timeout) << "returned early from a " << timeout.count() << " ms wait";
            EXPECT_LT(took, timeout + 2s) << "a storm must not make a wait hang";
        }
    EXPECT_GT(caught.load(), 50) << "the storm did not reach the waiting thread";
}

TEST_P(SignalStorm, AFdThatBecomesReadyStillEndsTheWait) {
    IOWait w{GetParam()};
    socket_pair p;
    w.watch(p.a, Interest::read, 9);
    storm s(::pthread_self());
    std::atomic<clock::rep> sent_at{0};
    std::jthread writer([&] {  // joined also when an assertion ends the test
        std::this_thread::sleep_for(50ms);
        sent_at = clock::now().time_since_epoch().count();
        p.send_b();
    });
    const auto events = wait_events(w, 10s);
    const auto returned = clock::now();
    writer.join();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, 9u);
    EXPECT_GE(returned.time_since_epoch().count(), sent_at.load()) << "returned before the data was sent";
}

TEST_P(SignalStorm, AWaitWithoutTimeoutEndsOnlyAtNotify) {
    IOWait w{GetParam()};
    socket_pair p;
    w.watch(p.a, Interest::read);
    storm s(::pthread_self());
    std::atomic<clock::rep> notified_at{0};
    std::jthread notifier([&] {  // joined also when an assertion ends the test
        std::this_thread::sleep_for(100ms);
        notified_at = clock::now().time_since_epoch().count();
        w.notify();
    });
    auto span = w.wait();
    const auto returned = clock::now();
    notifier.join();
    EXPECT_TRUE(span.empty());
    EXPECT_GE(returned.time_since_epoch().count(), notified_at.load()) << "returned before notify()";
}

}  // namespace
}  // namespace iowait::test
