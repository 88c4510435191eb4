// The sources in the differential fuzzer (docs/behaviour.md, "Sources"):
// signals, child processes and timers, watched, modified, unwatched and made
// to fire in the same order on every backend's IOWait. After each round of
// wait(0) the backends' events must be equal (fuzz_backends.cpp), and the
// sources' events exactly those of a model of the rules G1-G4, K1-K2, T5-T9.
//
// What makes each kind deterministic, so that every backend must see the same:
// - signals: raise() runs the handler in this thread before it returns, so
//   every IOWait's waker is written before the next wait. During a session the
//   fuzzer's own handler is installed for its signals: one that no IOWait
//   watches lands there, one they watch must not (G1; unwatch puts it back, G2).
// - child processes: a child forked here first closes every fd it inherited
//   (the sockets' hangups stay the model's), then exits when its command pipe
//   closes; the fuzzer waits for the exit with waitid(WNOWAIT), which neither
//   reaps it nor returns before the exit is visible to every kernel wait.
//   Only with pidfd: the SIGCHLD fallback learns of an exit through a signal
//   that any thread may take later (IOWAIT_NO_PIDFD=1: no process sources).
// - timers: deadlines already due, a few hundred microseconds away, or an
//   hour away (never due in a run). Each IOWait counts a deadline from its own
//   watch_timer() call, so before each round of waits the fuzzer sleeps until
//   every armed near deadline has passed for all of them: a near timer is then
//   due in every IOWait, and a far one in none.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstring>
#include <thread>
#include <utility>

#include "fuzz_common.hpp"

namespace fuzz {

// Signals that neither libFuzzer nor the sanitizers use, nor anyone sends us.
inline constexpr int fuzz_signals[] = {SIGURG, SIGVTALRM, SIGPROF};
inline constexpr int signal_count = 3;
inline std::atomic<unsigned> own_handler_ran[signal_count];

extern "C" inline void fuzz_own_handler(int signo) {
    for (int k = 0; k < signal_count; ++k)
        if (fuzz_signals[k] == signo) own_handler_ran[k].fetch_add(1);
}

inline std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// While a source's call may open fds (a waker, a pidfd, a child's pipes), the
// numbers of the fuzzer's closed ends are held by /dev/null: an fd of the
// library or of a child that took one would be closed by the next reopen's
// dup3(), and a watch of the closed end would find it open.
class hold_numbers {
public:
    explicit hold_numbers(const std::vector<int>& numbers) {
        if (numbers.empty()) return;
        base_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (base_ < 0) return;
        for (int n : numbers)
            if (::fcntl(n, F_GETFD) < 0 && errno == EBADF && ::dup3(base_, n, O_CLOEXEC) == n) held_.push_back(n);
    }
    ~hold_numbers() {
        for (int n : held_) ::close(n);
        if (base_ >= 0) ::close(base_);
    }
    hold_numbers(const hold_numbers&) = delete;
    hold_numbers& operator=(const hold_numbers&) = delete;

private:
    int base_ = -1;
    std::vector<int> held_;
};

class source_ops {
public:
    // slow: this input may fork children and arm timers a few hundred
    // microseconds away, whose deadlines the waits sleep for. Otherwise a
    // child operation does nothing and near deadlines are due at once (and
    // periods an hour long): most inputs then run in well under a millisecond.
    source_ops(const waits_t& waits, trace_t& trace, bool slow) : waits_(waits), trace_(trace), slow_(slow) {
        for (int k = 0; k < signal_count; ++k) {
            struct sigaction sa {};
            sa.sa_handler = fuzz_own_handler;
            ::sigaction(fuzz_signals[k], &sa, &saved_[k]);
        }
    }
    // After the session's IOWaits are gone (their last unwatch put our handler back).
    ~source_ops() {
        for (auto& c : children_) {
            if (c.cmd >= 0) ::close(c.cmd);  // a running child exits on EOF
            if (c.state != child::reaped) reap(c.pid);
        }
        for (int k = 0; k < signal_count; ++k) ::sigaction(fuzz_signals[k], &saved_[k], nullptr);
    }
    source_ops(const source_ops&) = delete;
    source_ops& operator=(const source_ops&) = delete;

    // which: 0 to 6.
    void step(int which, input& in) {
        switch (which) {
        case 0: watch_signal(in); break;
        case 1: raise_signal(in); break;
        case 2: child_op(in); break;
        case 3: watch_process(in); break;
        case 4: watch_timer(in); break;
        case 5: modify(in); break;
        default: unwatch(in); break;
        }
    }

    // An IOWait taken out of the comparison (libkqueue_quirks.hpp, 3) drops
    // its signal watches at once: a signal it kept would take the
    // program's handler's deliveries, which G2 counts for the IOWaits compared.
    void leave(IOWait& w) const {
        for (const auto& r : records_) {
            std::error_code ec;
            if (r.what == kind::signal && r.watched) w.unwatch(r.id, ec);
        }
    }

    // A child was reaped while a watch of it had not reported its exit yet
    // (libkqueue_quirks.hpp, 4): true once, then false until the next.
    bool take_reaped_unreported() { return std::exchange(reaped_unreported_, false); }

    // Before a round of waits: until every armed near timer is due everywhere.
    void settle() const {
        std::int64_t until = 0;
        for (const auto& r : records_)
            if (r.what == kind::timer && r.watched && r.armed && !r.spent && !r.far) until = std::max(until, r.hi);
        while (until != 0 && now_ns() <= until)
            std::this_thread::sleep_for(std::chrono::nanoseconds(until - now_ns() + 1));
    }

    // The sources' events of a round (evs sorted by fd: sources' ids first),
    // against the model; then the model moves on as the round did.
    void check(const std::vector<Event>& evs) {
        const std::int64_t end = now_ns();
        std::vector<Event> want;
        for (auto& r : records_) {
            if (!r.watched || !r.armed) continue;
            bool fires = false;
            switch (r.what) {
            case kind::signal: fires = r.pending; break;
            case kind::process: fires = children_[r.child].state != child::running; break;
            case kind::timer: fires = !r.spent && !r.far; break;
            }
            if (!fires) continue;
            want.push_back(Event{r.id, true, false, false, false, r.data});
            r.pending = false;
            if (r.mode == iowait::Mode::oneshot) r.armed = false;
            if (r.what == kind::timer) {
                // The next deadline is after this round's wait, at most one period later.
                if (r.period == 0)
                    r.spent = true;
                else if (r.period >= far_ns)
                    r.far = true;
                else
                    r.hi = end + r.period;
            }
        }
        std::sort(want.begin(), want.end(), [](const Event& a, const Event& b) { return a.fd < b.fd; });
        std::vector<Event> got;
        for (const auto& e : evs)
            if (std::int64_t(e.fd) <= -2) got.push_back(e);
        if (got.size() != want.size() || !std::equal(got.begin(), got.end(), want.begin(), same))
            fail(trace_, "sources: the model expects " + str(want) + ", got " + str(got));
    }

private:
    using Mode = iowait::Mode;
    using native_handle = iowait::native_handle;
    enum class kind { signal, process, timer };
    static constexpr std::int64_t far_ns = std::int64_t(3600) * 1000000000;
    static constexpr int child_slots = 3;
    static constexpr int max_forks = 6;  // per input: a fork costs a millisecond or more under ASan

    struct child {
        pid_t pid = -1;
        int cmd = -1;  // the write end of its command pipe: closed, the child exits
        enum { running, exited, reaped } state = running;
    };
    struct record {
        kind what;
        native_handle id;
        Mode mode;
        std::uint64_t data;
        bool watched = true;
        bool armed = true;
        int sig = 0;              // signal: index in fuzz_signals
        bool pending = false;     // signal: delivered since its last report
        std::size_t child = 0;    // process: index in children_
        std::int64_t pid = 0;     // process
        std::int64_t period = 0;  // timer
        bool spent = false;       // timer: period 0, reported
        bool far = false;         // timer: next deadline an hour away
        std::int64_t hi = 0;      // timer: its next deadline in the IOWait that made it last
    };

    void log(std::string s) { trace_.push_back(std::move(s)); }

    static Mode mode_of(std::uint8_t b) { return b % 3 == 0 ? Mode::level : b % 3 == 1 ? Mode::oneshot : Mode::edge; }
    static std::uint64_t data_of(std::uint8_t b) { return b * 0x0101010101ull + 0x5000000000000000ull; }

    // A watch of a source on every backend: each must answer `expected`, and
    // on success the same id, no fd's (<= -2) and none given before.
    template <class F>
    native_handle watch_all(const std::string& what, std::error_code expected, F call) {
        log(what + " -> expect " + str(expected));
        native_handle first = -1;
        for (std::size_t k = 0; k < waits_.size(); ++k) {
            IOWait& w = *waits_[k];
            std::error_code ec;
            const native_handle id = call(w, ec);
            const std::string who = std::string(to_string(w.backend())) + ": " + what;
            if (ec != expected) fail(trace_, who + " returned " + str(ec) + ", expected " + str(expected));
            if (ec) continue;
            if (k == 0) first = id;
            if (id != first)
                fail(trace_, who + " gave id " + std::to_string(id) + ", the first backend " + std::to_string(first));
        }
        if (expected) return -1;
        if (std::int64_t(first) > -2) fail(trace_, what + ": id " + std::to_string(first) + " could be a fd");
        for (const auto& r : records_)
            if (r.id == first) fail(trace_, what + ": id " + std::to_string(first) + " given twice");
        log("  -> id " + std::to_string(first));
        return first;
    }

    record* watching_signal(int k) {
        for (auto& r : records_)
            if (r.what == kind::signal && r.watched && r.sig == k) return &r;
        return nullptr;
    }

    void watch_signal(input& in) {
        const std::uint8_t s = in.byte();
        const Mode mode = mode_of(in.byte());
        const std::uint64_t data = data_of(in.byte());
        static constexpr int invalid[] = {0, SIGKILL, SIGSEGV, 65};
        const bool valid = s % 4 < 3;
        const int signo = valid ? fuzz_signals[s % 4] : invalid[s / 4 % 4];
        std::error_code expected;
        if (mode == Mode::edge)
            expected = iowait::errc::unsupported_mode;
        else if (!valid)
            expected = std::make_error_code(std::errc::invalid_argument);  // G4
        else if (watching_signal(s % 4))
            expected = iowait::errc::already_watched;
        char buf[120];
        std::snprintf(buf, sizeof buf, "watch_signal(%d, %s, data %llu)", signo, std::string(to_string(mode)).c_str(),
                      static_cast<unsigned long long>(data));
        const native_handle id = watch_all(
            buf, expected, [&](IOWait& w, std::error_code& ec) { return w.watch_signal(signo, data, mode, ec); });
        if (expected) return;
        record r{kind::signal, id, mode, data};
        r.sig = s % 4;
        records_.push_back(r);
    }

    void raise_signal(input& in) {
        const int k = in.byte() % signal_count;
        record* r = watching_signal(k);
        const unsigned before = own_handler_ran[k].load();
        ::raise(fuzz_signals[k]);
        const unsigned ran = own_handler_ran[k].load() - before;
        log("raise(" + std::to_string(fuzz_signals[k]) + "): the program's own handler ran " + std::to_string(ran) +
            " times");
        if (ran != (r ? 0u : 1u))
            fail(trace_, r ? "G1: a watched signal ran the program's own handler"
                           : "G2: a signal no IOWait watches did not run the program's own handler");
        if (r) r->pending = true;
    }

    // libFuzzer's SIGALRM (its -timeout) has no SA_RESTART: a blocking
    // waitpid() would return EINTR and leave a zombie.
    static pid_t reap(pid_t pid) {
        pid_t r;
        while ((r = ::waitpid(pid, nullptr, 0)) < 0 && errno == EINTR) {
        }
        return r;
    }

    // Waits until the child has exited, without reaping it.
    void await_exit(child& c) {
        siginfo_t info{};
        while (::waitid(P_PID, id_t(c.pid), &info, WEXITED | WNOWAIT) != 0)
            if (errno != EINTR) fail(trace_, std::string("waitid: ") + std::strerror(errno));
        c.state = child::exited;
    }

    void spawn(int slot, bool at_once) {
        if (forks_ == max_forks) {
            log("fork skipped: " + std::to_string(max_forks) + " in this input already");
            return;
        }
        int cmd[2], ack[2];
        if (::pipe2(cmd, O_CLOEXEC) != 0) fail(trace_, std::string("pipe2: ") + std::strerror(errno));
        if (::pipe2(ack, O_CLOEXEC) != 0) fail(trace_, std::string("pipe2: ") + std::strerror(errno));
        const pid_t pid = ::fork();
        if (pid < 0) fail(trace_, std::string("fork: ") + std::strerror(errno));
        if (pid == 0) {
            // Only async-signal-safe calls here. Every inherited fd but the
            // command pipe closes, ack's write end with them: the parent's EOF.
            const unsigned keep = unsigned(cmd[0]);
            if (keep > 0) ::syscall(SYS_close_range, 0u, keep - 1, 0u);
            ::syscall(SYS_close_range, keep + 1, ~0u, 0u);
            char c;
            if (!at_once)
                while (::read(cmd[0], &c, 1) < 0 && errno == EINTR) {
                }
            ::_exit(0);
        }
        ++forks_;
        ::close(cmd[0]);
        ::close(ack[1]);
        char c;
        while (::read(ack[0], &c, 1) < 0 && errno == EINTR) {
        }
        ::close(ack[0]);
        child ch;
        ch.pid = pid;
        ch.cmd = cmd[1];
        slots_[slot] = int(children_.size());
        children_.push_back(ch);
        if (at_once) {
            ::close(children_.back().cmd);
            children_.back().cmd = -1;
            await_exit(children_.back());
        }
        log("fork(slot " + std::to_string(slot) + ") = pid " + std::to_string(pid) +
            (at_once ? ", exited at once" : ""));
    }

    // A child's life, one step each time: forked, exits, reaped.
    void child_op(input& in) {
        const std::uint8_t b = in.byte();
        if (!pidfd_ || !slow_) return;
        const int slot = b % child_slots;
        if (slots_[slot] < 0 || children_[std::size_t(slots_[slot])].state == child::reaped) {
            spawn(slot, b & 4);
            return;
        }
        child& c = children_[std::size_t(slots_[slot])];
        if (c.state == child::running) {
            ::close(c.cmd);
            c.cmd = -1;
            await_exit(c);
            log("exit(pid " + std::to_string(c.pid) + ")");
            return;
        }
        if (reap(c.pid) != c.pid) fail(trace_, std::string("waitpid: ") + std::strerror(errno));
        const auto index = std::size_t(slots_[slot]);
        reaped_unreported_ |= std::any_of(records_.begin(), records_.end(), [&](const record& r) {
            return r.what == kind::process && r.watched && r.armed && r.child == index;
        });
        c.state = child::reaped;
        log("reap(pid " + std::to_string(c.pid) + ")");
    }

    void watch_process(input& in) {
        const std::uint8_t b = in.byte();
        const std::uint64_t data = data_of(in.byte());
        if (!pidfd_) return;
        static constexpr std::int64_t invalid[] = {0, -1, std::int64_t(INT_MAX) + 1};
        std::int64_t pid = ::getpid();  // not its own child: ECHILD (K2)
        if (b % 5 < child_slots && slots_[b % 5] >= 0) pid = children_[std::size_t(slots_[b % 5])].pid;
        if (b % 5 == 4) pid = invalid[b / 5 % 3];
        std::error_code expected;
        std::size_t instance = children_.size();
        for (std::size_t i = 0; i < children_.size(); ++i)
            if (children_[i].pid == pid && children_[i].state != child::reaped) instance = i;
        const bool watched = std::any_of(records_.begin(), records_.end(), [&](const record& r) {
            return r.what == kind::process && r.watched && r.pid == pid;
        });
        if (pid <= 0 || pid > INT_MAX)
            expected = std::make_error_code(std::errc::invalid_argument);
        else if (watched)
            expected = iowait::errc::already_watched;
        else if (instance == children_.size())
            expected = std::make_error_code(std::errc::no_child_process);
        const std::string what = "watch_process(pid " + std::to_string(pid) + ", data " + std::to_string(data) + ")";
        const native_handle id =
            watch_all(what, expected, [&](IOWait& w, std::error_code& ec) { return w.watch_process(pid, data, ec); });
        if (expected) return;
        record r{kind::process, id, Mode::oneshot, data};
        r.child = instance;
        r.pid = pid;
        records_.push_back(r);
    }

    void watch_timer(input& in) {
        using std::chrono::nanoseconds;
        static constexpr std::int64_t firsts[] = {0, 0, 200000, 1000000, far_ns, -1};
        static constexpr std::int64_t periods[] = {0, 0, 300000, far_ns, far_ns, -1};
        std::int64_t first = firsts[in.byte() % 6];
        std::int64_t period = periods[in.byte() % 6];
        if (!slow_) {  // no sleeping for deadlines: see the constructor
            if (first > 0 && first < far_ns) first = 0;
            if (period > 0 && period < far_ns) period = far_ns;
        }
        const Mode mode = mode_of(in.byte());
        const std::uint64_t data = data_of(in.byte());
        std::error_code expected;
        if (first < 0 || period < 0)
            expected = iowait::errc::bad_timeout;  // T9
        else if (mode == Mode::edge)
            expected = iowait::errc::unsupported_mode;
        const std::string what = "watch_timer(first " + std::to_string(first) + " ns, period " +
                                 std::to_string(period) + " ns, " + std::string(to_string(mode)) + ", data " +
                                 std::to_string(data) + ")";
        const native_handle id = watch_all(what, expected, [&](IOWait& w, std::error_code& ec) {
            return w.watch_timer(nanoseconds(first), nanoseconds(period), data, mode, ec);
        });
        if (expected) return;
        record r{kind::timer, id, mode, data};
        r.period = period;
        r.far = first >= far_ns;
        r.hi = now_ns() + first;
        records_.push_back(r);
    }

    // A source of the model, or an id never given (bad_fd, E3).
    record* pick(std::uint8_t b, native_handle& id) {
        const std::size_t i = b % (records_.size() + 1);
        if (i < records_.size()) {
            id = records_[i].id;
            return &records_[i];
        }
        id = native_handle(-2 - std::int64_t(records_.size()) - b % 4);
        return nullptr;
    }

    static std::error_code gone(const record* r) {
        if (!r) return iowait::errc::bad_fd;
        return r->watched ? std::error_code{} : make_error_code(iowait::errc::not_watched);
    }

    void modify(input& in) {
        native_handle id;
        record* r = pick(in.byte(), id);
        const iowait::Interest interest = in.byte() % 8 == 7 ? iowait::Interest::write : iowait::Interest::read;
        const Mode mode = mode_of(in.byte());
        const std::uint64_t data = data_of(in.byte());
        std::error_code expected = gone(r);
        if (!expected && interest != iowait::Interest::read)
            expected = iowait::errc::bad_interest;
        else if (!expected && (mode == Mode::edge || (r->what == kind::process && mode != Mode::oneshot)))
            expected = iowait::errc::unsupported_mode;
        const std::string what = "modify(source " + std::to_string(id) + ", interest " +
                                 std::to_string(unsigned(interest)) + ", " + std::string(to_string(mode)) + ", data " +
                                 std::to_string(data) + ")";
        each(waits_, trace_, what, expected,
             [&](IOWait& w, std::error_code& ec) { w.modify(id, interest, data, mode, ec); });
        if (expected) return;
        r->mode = mode;
        r->data = data;
        r->armed = true;  // what fired meanwhile comes at the next wait
    }

    void unwatch(input& in) {
        native_handle id;
        record* r = pick(in.byte(), id);
        const std::error_code expected = gone(r);
        each(waits_, trace_, "unwatch(source " + std::to_string(id) + ")", expected,
             [&](IOWait& w, std::error_code& ec) { w.unwatch(id, ec); });
        if (!expected) r->watched = false;
    }

    // Once per process (valgrind 3.19, which lacks the call, warns at each).
    static bool have_pidfd() {
        static const bool have = [] {
#ifdef SYS_pidfd_open
            if (std::getenv("IOWAIT_NO_PIDFD")) return false;
            const long fd = ::syscall(SYS_pidfd_open, ::getpid(), 0u);
            if (fd < 0) return false;
            ::close(int(fd));
            return true;
#else
            return false;
#endif
        }();
        return have;
    }

    const waits_t& waits_;
    trace_t& trace_;
    struct sigaction saved_[signal_count] {};
    std::vector<record> records_;     // every source watched, in the order of their ids
    bool reaped_unreported_ = false;  // take_reaped_unreported()
    std::vector<child> children_;     // every child forked
    int slots_[child_slots] = {-1, -1, -1};
    int forks_ = 0;
    bool slow_;
    const bool pidfd_ = have_pidfd();
};

}  // namespace fuzz
