// Differential fuzzer: one random sequence of operations on a few socket
// pairs and a regular file, applied to one IOWait per available backend, all watching the SAME
// fds. After each wait the backends' event sets must be equal, and each
// must agree with a small model of what the rules of docs/behaviour.md say
// must be ready. Any difference aborts with the decoded sequence. Most waits
// are wait(0); one in eight is a blocking wait (where the model is sure
// something is ready: it returns at once; sure nothing is: notify() from
// another thread, sent once the wait is in progress, ends it), one in eight
// a 200 us timeout on one backend in turn (blocking_wait). A run left with one backend says so: it
// checks the model only.
//
// What the model predicts, and what it leaves to the backends to agree on:
// - Level and oneshot watches: presence, read, write and hangup exactly.
//   Writable is predicted only while it is certain: true while the peer holds
//   little of our data (an AF_UNIX stream socket is writable while the bytes
//   it has queued at the peer stay under a quarter of its send buffer), false
//   right after a fill ended in EAGAIN; otherwise unknown.
// - `error`: only backends are compared. On a socket pair it appears only
//   when the peer closed with our data unread, and a hangup is reported then
//   anyway, so presence does not depend on it.
// - Edge watches (M3): reported at the next wait after watch or modify
//   (if ready then) and after new data (if readable then); never again
//   while nothing touched the end or its peer; an event's flags as level's.
//   On Linux epoll and io_uring share one epoll set, so this model, not their
//   comparison, is what checks edge. Edge is refused by poll and select (M4),
//   so an input whose first byte is odd is an "edge run" that drives only the
//   backends supporting edge, with edge allowed; other inputs drive every
//   backend and turn edge requests into level. An input whose first byte has
//   bit 1 set leaves select out; those that drive select never make the one
//   state select cannot report (R6: a hangup by shutdown on both sides while
//   the send buffer is full) on an end watched for write only.
// - Always: no event for an unwatched, closed (C1) or reused (C3) watch, or
//   for a disarmed oneshot (M2); read/write only for the interests asked (R5);
//   at most one event per fd (R5); the same error code for each call, the
//   one the rules give (E1, E2, C2, E4).
// - An input whose first byte has bit 2 set drives the sources too
//   (signals, child processes, timers: fuzz_sources.hpp): an operation byte
//   with bit 6 set is then a source's operation, or the close of a socket
//   while a dup() keeps its file (epoll's stale entry, C4, which rebuilds the
//   kernel set with the sources' fds in it). (The named inputs of the
//   corpus from before the sources have bit 2 clear: they mean what they did.)
//   Only inputs whose first byte has bits 3 and 4 set do the slow things
//   (fork children, arm timers a few hundred microseconds away and sleep for
//   them); the others keep well under a millisecond (fuzz_sources.hpp).
// kqueue on Linux is libkqueue: three of its bugs are let pass, narrowly
// (libkqueue_quirks.hpp; IOWAIT_FUZZ_STRICT_LIBKQUEUE=1 shows them).
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iowait/iowait.hpp>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "fuzz_common.hpp"
#include "fuzz_sources.hpp"
#include "libkqueue_quirks.hpp"

namespace {

using namespace iowait;
using namespace std::chrono_literals;
using fuzz::each;
using fuzz::fail;
using fuzz::input;
using fuzz::same;
using fuzz::str;

constexpr int pairs = 4;
constexpr int ends = 2 * pairs;
// After the socket ends, one regular file: always ready (R8); epoll refuses
// it, so the front end's always-ready path is compared with poll and select.
constexpr int file_slot = ends;
constexpr int slots = ends + 1;
// Below a quarter of the smallest default AF_UNIX send buffer (net.core.wmem_default,
// 212992) even counting each skb's overhead (about 1 KiB): writable for certain.
constexpr int certain_sends = 16;
constexpr std::size_t max_write = 256;

enum class tri { no, yes, unknown };

struct end_model {
    bool open = true;
    std::size_t queue = 0;  // bytes readable here
    bool rcv_shut = false;  // RCV_SHUTDOWN: this end will receive no more
    bool send_shut = false;
    int sends_at_peer = 0;  // our sends still (partly) unread at the peer
    tri writable = tri::yes;
};

struct watch_model {
    bool watched = false;
    bool dead = false;  // its fd was closed while watched (C1-C3)
    Interest interest = Interest::none;
    Mode mode = Mode::level;
    bool armed = true;
    std::uint64_t data = 0;
    // Edge (M3): an edge the next wait must report if the end is ready then
    // (armed by watch or modify; new data from the peer), and whether nothing
    // touched the end or its peer since the last wait, so no edge is due.
    enum { none, read, any } edge_due = none;
    bool quiet = false;
};

class session {
public:
    session(bool edge_run, bool without_select, bool with_sources, bool slow_sources) : edge_run_(edge_run) {
        // IOWAIT_FUZZ_WITHOUT=name,...: backends left out (scripts/fuzz), e.g. while a finding is open.
        // Whole names: "epoll" leaves poll in.
        const char* env = std::getenv("IOWAIT_FUZZ_WITHOUT");
        const std::string without = "," + std::string(env ? env : "") + ",";
        for (Backend b : IOWait::available_backends()) {
            if (without.find("," + std::string(to_string(b)) + ",") != std::string::npos) continue;
            auto w = std::make_unique<IOWait>(b);
            if (edge_run && !w->supports(Mode::edge)) continue;
            if (b == Backend::select) {
                if (without_select) continue;
                with_select_ = true;
            }
            waits_.push_back(std::move(w));
        }
        libkqueue_quirks::wait_last(waits_);  // kqueue on Linux: see libkqueue_quirks.hpp
        if (waits_.size() == 1) note_alone(edge_run ? "an edge run" : without_select ? "an input without select" : "");
        for (int p = 0; p < pairs; ++p) open_pair(p, nullptr);
        open_file(-1);
        if (with_sources) sources_.emplace(waits_, trace_, slow_sources);
    }
    ~session() {
        // IOWAIT_FUZZ_TRACE=1: the decoded operations of every input, to see what a seed does.
        if (std::getenv("IOWAIT_FUZZ_TRACE"))
            for (const auto& t : trace_) std::fprintf(stderr, "  %s\n", t.c_str());
        waits_.clear();
        retired_.clear();
        sources_.reset();  // after the IOWaits: their last unwatch of a signal put the fuzzer's handler back
        for (int fd : fds_)
            if (fd >= 0) ::close(fd);
        for (int fd : hidden_)
            if (fd >= 0) ::close(fd);
        for (const auto& f : files_) ::unlink(f.c_str());
        if (!dir_.empty()) ::rmdir(dir_.c_str());
    }
    session(const session&) = delete;
    session& operator=(const session&) = delete;

    bool usable() const { return !waits_.empty(); }

    void run(input& in) {
        int ops = 0;
        while (!in.empty() && ops++ < 400) {
            const std::uint8_t op = in.byte();
            if (sources_ && (op & 0x40)) {
                const int kind = (op & 0x3f) % 8;
                if (kind == 7) {
                    close_keeping_file(in);
                } else {
                    const fuzz::hold_numbers hold(closed_numbers());
                    sources_->step(kind, in);
                    if (sources_->take_reaped_unreported())
                        retire_kqueue("libkqueue's EVFILT_PROC misses a child reaped before its exit was reported");
                }
            } else {
                step(op % 11, op, in);
            }
            if (op & 0x80) wait_and_compare();
        }
        wait_and_compare();
    }

private:
    void log(std::string s) { trace_.push_back(std::move(s)); }

    // One backend left: its waits are checked against the model, but there
    // is nothing to compare them with. Said once per process and kind, on
    // stderr, so that a run that compares nothing does not look like one
    // that found nothing.
    void note_alone(const std::string& why) {
        static std::vector<std::string> said;
        const std::string what = std::string(to_string(waits_[0]->backend())) + (why.empty() ? "" : " in " + why);
        if (std::find(said.begin(), said.end(), what) != said.end()) return;
        said.push_back(what);
        std::fprintf(stderr,
                     "iowait fuzzer: only %s: no other backend to compare with, only the model (IOWAIT_FUZZ_WITHOUT "
                     "or this machine's backends)\n",
                     what.c_str());
    }

    int peer(int e) const { return e ^ 1; }

    // The numbers of closed ends, which a reopen takes back (fuzz::hold_numbers).
    std::vector<int> closed_numbers() const {
        std::vector<int> numbers;
        for (int e = 0; e < slots; ++e)
            if (!model_[e].open) numbers.push_back(fds_[e]);
        return numbers;
    }

    // The fds of pair p are fds_[2p], fds_[2p+1]. A reopen puts the new pair
    // on the old numbers, so that a watch of the old file meets a new file
    // under its number (C3).
    void open_pair(int p, const int* numbers) {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) fail(trace_, "socketpair");
        if (numbers) {
            // Both ends go to high numbers first: the new pair may have been
            // given one of the numbers we want, even in the other order.
            for (int& fd : sv) {
                const int tmp = ::fcntl(fd, F_DUPFD_CLOEXEC, 512);
                ::close(fd);
                fd = tmp;
            }
            for (int i = 0; i < 2; ++i) {
                if (::dup3(sv[i], numbers[i], O_CLOEXEC) != numbers[i]) fail(trace_, "dup3");
                ::close(sv[i]);
                sv[i] = numbers[i];
            }
        }
        if (fds_.size() < std::size_t(slots)) fds_.resize(slots, -1);
        for (int i = 0; i < 2; ++i) {
            fds_[2 * p + i] = sv[i];
            model_[2 * p + i] = end_model{};
        }
    }

    // A new regular file, on `number` if it is not -1. Each keeps its name
    // (in a directory of its own, removed at the end) so that its inode is
    // not freed and handed to the next one: a deleted file whose inode number
    // is reused cannot be told from the new file (docs/behaviour.md, C3).
    void open_file(int number) {
        if (dir_.empty()) {
            char templ[] = "/tmp/iowait-fuzz-XXXXXX";
            if (!::mkdtemp(templ)) fail(trace_, std::string("mkdtemp: ") + std::strerror(errno));
            dir_ = templ;
        }
        files_.push_back(dir_ + "/f" + std::to_string(files_.size()));
        int fd = ::open(files_.back().c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0) fail(trace_, "open(" + files_.back() + "): " + std::strerror(errno));
        if (number >= 0 && fd != number) {
            if (::dup3(fd, number, O_CLOEXEC) != number) fail(trace_, "dup3");
            ::close(fd);
            fd = number;
        }
        if (fds_.size() < std::size_t(slots)) fds_.resize(slots, -1);
        fds_[file_slot] = fd;
        model_[file_slot] = end_model{};
    }

    // Closes end e; a closed end whose file a dup() kept open
    // (close_keeping_file) lets that file go now.
    void close_end(int e) {
        if (!model_[e].open) {
            if (e != file_slot && hidden_[e] >= 0) {
                ::close(std::exchange(hidden_[e], -1));
                peer_closed(e);
            }
            return;
        }
        ::close(fds_[e]);
        model_[e] = end_model{};
        model_[e].open = false;
        if (watch_[e].watched) watch_[e].dead = true;
        if (e != file_slot) peer_closed(e);
    }

    // The file of end e is gone: what its peer sees.
    void peer_closed(int e) {
        end_model& o = model_[peer(e)];
        if (o.open) {
            // unix_release_sock(): the peer gets SHUTDOWN_MASK; what it had
            // sent us is freed, so it is writable again.
            o.rcv_shut = o.send_shut = true;
            o.sends_at_peer = 0;
            o.writable = tri::yes;
        }
    }

    // A socket's number closed while a dup() keeps its file open, then
    // unwatched (allowed for a closed fd): epoll's kernel entry outlives the
    // watch, keyed by the file, and two waits that meet it make epoll and
    // io_uring rebuild their kernel set (C4), which must keep the sources'
    // fds. The peer sees nothing until the dup goes (close_end).
    void close_keeping_file(input& in) {
        const int e = in.byte() % ends;
        if (!model_[e].open) return;
        const int fd = fds_[e];
        touch(e);
        rebuild_waits_ = 3;  // epoll's rebuild re-arms every edge watch: any may be reported again
        hidden_[e] = ::fcntl(fd, F_DUPFD_CLOEXEC, 600);  // above every number the fuzzer reuses
        if (hidden_[e] < 0) fail(trace_, std::string("F_DUPFD: ") + std::strerror(errno));
        ::close(fd);
        log("close(end " + std::to_string(e) + " fd " + std::to_string(fd) + ") while a dup keeps its file open");
        model_[e] = end_model{};
        model_[e].open = false;
        if (watch_[e].watched) {
            retire_kqueue("libkqueue keeps a closed fd's knotes");
            each("unwatch(end " + std::to_string(e) + " fd " + std::to_string(fd) + ")", {},
                 [&](IOWait& w, std::error_code& ec) { w.unwatch(fd, ec); });
            watch_[e] = watch_model{};
        }
    }

    // Something happened to end e or its peer: an edge watch of either may be
    // reported again (not only what edge_due enforces: a wake-up for room to
    // write, a shutdown).
    void touch(int e) {
        if (e >= ends) return;
        watch_[e].quiet = false;
        watch_[peer(e)].quiet = false;
    }

    // New data at end e: a read edge there, due if it is watched for read.
    void data_arrived(int e) {
        if (watch_[e].edge_due == watch_model::none) watch_[e].edge_due = watch_model::read;
    }

    // Is end e watched for write only, on an input that drives select (R6 above)?
    bool write_only(int e) const {
        return with_select_ && watch_[e].watched && !watch_[e].dead && watch_[e].interest == Interest::write;
    }
    bool select_would_miss_hangup(int e, Interest i) const {
        return with_select_ && i == Interest::write && hangs_up_unwritable(model_[e], false, false);
    }

    // Would this open end be shut both ways (EPOLLHUP) while not surely writable?
    static bool hangs_up_unwritable(const end_model& x, bool shut_rcv, bool shut_send) {
        return x.open && (x.rcv_shut || shut_rcv) && (x.send_shut || shut_send) && x.writable != tri::yes;
    }

    Interest interest_of(std::uint8_t b) { return Interest(1 + b % 3); }
    Mode mode_of(std::uint8_t b) {
        switch (b % 3) {
        case 0: return Mode::level;
        case 1: return Mode::oneshot;
        default: return edge_run_ ? Mode::edge : Mode::level;
        }
    }

    template <class F>
    void each(const std::string& what, std::error_code expected, F call) {
        fuzz::each(waits_, trace_, what, expected, call);
    }

    void step(int kind, std::uint8_t op, input& in) {
        const int e = in.byte() % slots;
        // Data, fills and shutdowns are for sockets.
        if (e == file_slot && (kind == 3 || kind == 4 || kind == 5 || kind == 6 || kind == 10)) return;
        const int fd = fds_[e];
        watch_model& wm = watch_[e];
        end_model& m = model_[e];
        char buf[200];
        if (kind >= 3 && kind != 9) touch(e);  // data, shutdown, close, reopen
        switch (kind) {
        case 0: {  // watch
            const Interest i = interest_of(in.byte());
            const Mode md = mode_of(in.byte());
            const std::uint64_t data = in.byte() * 0x0101010101ull;
            std::error_code expected;
            if (!wm.watched && m.open && select_would_miss_hangup(e, i)) {
                log("watch for write skipped: select would miss this end's hangup (R6)");
                break;
            }
            if (wm.watched)
                expected = errc::already_watched;  // E1, C2
            else if (!m.open)
                expected = std::make_error_code(std::errc::bad_file_descriptor);  // E4
            std::snprintf(buf, sizeof buf, "watch(end %d fd %d, interest %u, %s, data %llu)", e, fd, unsigned(i),
                          std::string(to_string(md)).c_str(), (unsigned long long)data);
            each(buf, expected, [&](IOWait& w, std::error_code& ec) { w.watch(fd, i, data, md, ec); });
            if (!expected) wm = {true, false, i, md, true, data, watch_model::any, false};
            break;
        }
        case 1: {  // modify
            const Interest i = interest_of(in.byte());
            const Mode md = mode_of(in.byte());
            const std::uint64_t data = in.byte() * 0x0101010101ull;
            std::error_code expected;
            if (wm.watched && !wm.dead && select_would_miss_hangup(e, i)) {
                log("modify to write skipped: select would miss this end's hangup (R6)");
                break;
            }
            if (!wm.watched)
                expected = errc::not_watched;  // E2
            else if (wm.dead)
                // C2: the file is gone (EBADF); or its number names a file
                // the watch never saw (ENOENT, as epoll_ctl answers).
                expected = std::make_error_code(m.open ? std::errc::no_such_file_or_directory
                                                       : std::errc::bad_file_descriptor);
            std::snprintf(buf, sizeof buf, "modify(end %d fd %d, interest %u, %s, data %llu)", e, fd, unsigned(i),
                          std::string(to_string(md)).c_str(), (unsigned long long)data);
            each(buf, expected, [&](IOWait& w, std::error_code& ec) { w.modify(fd, i, data, md, ec); });
            if (!expected) wm = {true, false, i, md, true, data, watch_model::any, false};
            break;
        }
        case 2: {  // unwatch
            const std::error_code expected = wm.watched ? std::error_code{} : make_error_code(errc::not_watched);
            std::snprintf(buf, sizeof buf, "unwatch(end %d fd %d)", e, fd);
            each(buf, expected, [&](IOWait& w, std::error_code& ec) { w.unwatch(fd, ec); });
            wm = watch_model{};
            break;
        }
        case 3: {  // write a little
            const std::size_t len = 1 + in.byte() % max_write;
            if (!m.open) break;
            static const std::string bytes(max_write, 'w');
            const ssize_t n = ::send(fd, bytes.data(), len, MSG_DONTWAIT | MSG_NOSIGNAL);
            std::snprintf(buf, sizeof buf, "send(end %d fd %d, %zu bytes) = %zd", e, fd, len, n);
            log(buf);
            if (n > 0) {
                data_arrived(peer(e));
                model_[peer(e)].queue += std::size_t(n);
                ++m.sends_at_peer;
                if (m.writable == tri::yes && m.sends_at_peer > certain_sends) m.writable = tri::unknown;
            }
            break;
        }
        case 4:     // read everything
        case 10: {  // read a little
            const std::size_t want = kind == 4 ? SIZE_MAX : 1 + in.byte() % max_write;
            if (!m.open) break;
            char data[65536];
            std::size_t got = 0;
            while (got < want) {
                const ssize_t n = ::recv(fd, data, std::min(sizeof data, want - got), MSG_DONTWAIT);
                if (n <= 0) break;
                got += std::size_t(n);
            }
            std::snprintf(buf, sizeof buf, "recv(end %d fd %d, up to %zu) = %zu bytes", e, fd, want, got);
            log(buf);
            m.queue -= std::min(m.queue, got);
            end_model& o = model_[peer(e)];
            if (m.queue == 0) {
                o.sends_at_peer = 0;
                if (o.open) o.writable = tri::yes;
            } else if (got > 0 && o.writable == tri::no) {
                o.writable = tri::unknown;
            }
            break;
        }
        case 5: {  // fill the peer's buffer
            if (!m.open) break;
            static const std::string chunk(65536, 'f');
            std::size_t sent = 0;
            ssize_t n;
            while ((n = ::send(fd, chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL)) > 0) sent += size_t(n);
            const int why = errno;
            std::snprintf(buf, sizeof buf, "fill(end %d fd %d) = %zu bytes, then %s", e, fd, sent, std::strerror(why));
            log(buf);
            if (sent > 0) {
                data_arrived(peer(e));
                model_[peer(e)].queue += sent;
                m.sends_at_peer += certain_sends;
            }
            if (why == EAGAIN)
                m.writable = tri::no;
            else if (sent > 0)
                m.writable = tri::unknown;
            break;
        }
        case 6: {  // shutdown
            const int how = in.byte() % 3;
            if (!m.open) break;
            // select cannot see the hangup of a fd watched for write only
            // while its buffer at the peer is full (docs/behaviour.md, R6):
            // inputs that drive select make that state only on ends not so
            // watched (watch and modify keep it so), the others anywhere.
            const end_model& other = model_[peer(e)];
            if ((write_only(e) && hangs_up_unwritable(m, how != SHUT_WR, how != SHUT_RD)) ||
                (write_only(peer(e)) && hangs_up_unwritable(other, how != SHUT_RD, how != SHUT_WR))) {
                log("shutdown skipped: select would miss the hangup of a write-only watch (R6)");
                break;
            }
            const int r = ::shutdown(fd, how);
            std::snprintf(buf, sizeof buf, "shutdown(end %d fd %d, %s) = %d", e, fd,
                          how == SHUT_RD   ? "SHUT_RD"
                          : how == SHUT_WR ? "SHUT_WR"
                                           : "SHUT_RDWR",
                          r);
            log(buf);
            if (r != 0) break;
            // unix_shutdown(): the mode applies here and, mirrored, at the peer.
            end_model& o = model_[peer(e)];
            if (how != SHUT_WR) {
                m.rcv_shut = true;
                if (o.open) o.send_shut = true;
            }
            if (how != SHUT_RD) {
                m.send_shut = true;
                if (o.open) o.rcv_shut = true;
            }
            break;
        }
        case 7: {  // close without unwatch
            std::snprintf(buf, sizeof buf, "close(end %d fd %d)%s", e, fd, m.open ? "" : " (already closed)");
            log(buf);
            close_end(e);
            break;
        }
        case 8: {  // reopen the pair on the same numbers
            if (e == file_slot) {
                const int number = fds_[e];
                close_end(e);
                open_file(number);
                log("reopen(file on fd " + std::to_string(number) + ")");
                break;
            }
            const int p = e / 2;
            const int numbers[2] = {fds_[2 * p], fds_[2 * p + 1]};
            close_end(2 * p);
            close_end(2 * p + 1);
            open_pair(p, numbers);
            std::snprintf(buf, sizeof buf, "reopen(pair %d on fds %d, %d)", p, numbers[0], numbers[1]);
            log(buf);
            break;
        }
        case 9:
            // Mostly wait(0); one in eight a blocking wait woken by notify()
            // from another thread, one in eight a 200 us timeout (blocking_wait).
            if (op / 11 % 8 == 0)
                blocking_wait(true);
            else if (op / 11 % 8 == 4)
                blocking_wait(false);
            else
                wait_and_compare();
            break;
        default: break;
        }
    }

    void wait_and_compare(std::chrono::milliseconds timeout = 0ms) {
        if (sources_) sources_->settle();
        log(timeout == 0ms ? "wait(0)" : "wait(" + std::to_string(timeout.count()) + " ms), something certainly ready");
        std::vector<Event> first;
        for (std::size_t k = 0; k < waits_.size(); ++k) {
            IOWait& w = *waits_[k];
            std::error_code ec;
            const auto start = std::chrono::steady_clock::now();
            auto span = w.wait(timeout, ec);
            if (ec) fail(trace_, std::string(to_string(w.backend())) + ": wait failed: " + str(ec));
            if (timeout > 0ms && span.empty())
                fail(trace_, std::string(to_string(w.backend())) +
                                 ": a blocking wait returned nothing, though the "
                                 "model is certain something is ready");
            if (timeout > 0ms && std::chrono::steady_clock::now() - start > timeout / 2)
                fail(trace_, std::string(to_string(w.backend())) +
                                 ": a blocking wait with something ready did not "
                                 "return at once");
            std::vector<Event> evs(span.begin(), span.end());
            std::sort(evs.begin(), evs.end(), [](const Event& a, const Event& b) { return a.fd < b.fd; });
            for (std::size_t i = 1; i < evs.size(); ++i)
                if (evs[i].fd == evs[i - 1].fd)
                    fail(trace_, std::string(to_string(w.backend())) + ": two events for one fd (R5): " + str(evs));
            if (k == 0) {
                first = evs;
                continue;
            }
            if (w.backend() == Backend::kqueue) forgive_dropped_eof(first, evs);
            const bool equal = evs.size() == first.size() && std::equal(evs.begin(), evs.end(), first.begin(), same);
            if (!equal)
                fail(trace_, "backends differ: " + std::string(to_string(waits_[0]->backend())) + " " + str(first) +
                                 " vs " + std::string(to_string(w.backend())) + " " + str(evs));
        }
        log("  -> " + str(first));
        check_model(first);
        if (rebuild_waits_ > 0) --rebuild_waits_;
        if (sources_) sources_->check(first);
    }

    // What the model is sure the next wait reports: 1 some event, 0 none, -1 not sure.
    int certainty() const {
        bool some = false;
        for (int e = 0; e < slots; ++e) {
            const watch_model& wm = watch_[e];
            const end_model& m = model_[e];
            if (!wm.watched || wm.dead || !wm.armed) continue;
            if (e == file_slot) {
                some = true;  // R8; edge's one report is still to come while armed
                continue;
            }
            const bool want_r = has(wm.interest, Interest::read), want_w = has(wm.interest, Interest::write);
            const bool hup = (m.rcv_shut && m.send_shut) || (want_r && m.rcv_shut);
            const bool r = want_r && (hup || m.queue > 0 || m.rcv_shut);
            const tri w = !want_w ? tri::no : m.rcv_shut && m.send_shut ? tri::yes : m.writable;
            if (wm.mode == Mode::edge) {
                const bool must = (wm.edge_due == watch_model::any && (r || w == tri::yes)) ||
                                  (wm.edge_due == watch_model::read && r);
                if (must)
                    some = true;
                else if (!wm.quiet || rebuild_waits_ > 0)
                    return -1;
                continue;
            }
            if (r || w == tri::yes)
                some = true;
            else if (w == tri::unknown)
                return -1;
        }
        return some ? 1 : 0;
    }

    // A blocking wait (docs/behaviour.md T1, N1). Where the model is sure
    // something is ready: on every backend a long timeout, which returns at
    // once with what wait(0) would have. Where it is sure nothing is: on one
    // backend, in turn (a thread and a sleep on each would cost more than the
    // rest of an input), a wait that blocks until notify() from another
    // thread, sent once the wait is found in progress (or, `notified` false,
    // runs its 200 us timeout), and reports nothing. Otherwise, and with
    // sources (deadlines, children), a wait(0).
    void blocking_wait(bool notified) {
        const int sure = sources_ ? -1 : certainty();
        if (sure < 0) return wait_and_compare();
        if (sure > 0) return wait_and_compare(2000ms);
        IOWait& w = *waits_[blocking_turn_++ % waits_.size()];
        const std::string name(to_string(w.backend()));
        // IOWAIT_FUZZ_NO_BLOCKING=name,...: backends whose turn is a wait(0)
        // instead (scripts/valgrind: valgrind 3.19 holds its big lock while a
        // thread sits in io_uring_enter, so no notifier runs, and its wait
        // with a timeout returned at once there). Whole names, as above.
        static const std::string no_blocking = [] {
            const char* env = std::getenv("IOWAIT_FUZZ_NO_BLOCKING");
            return "," + std::string(env ? env : "") + ",";
        }();
        if (no_blocking.find("," + name + ",") != std::string::npos) return wait_and_compare();
        log(name + (notified ? ": wait(2 s), nothing ready, woken by notify() from another thread"
                             : ": wait(200 us), nothing ready"));
        {
            std::atomic<bool> done{false}, sent{false};
            const long waiter_tid = long(::syscall(SYS_gettid));
            std::thread notifier;
            if (notified)
                notifier = std::thread([&] {
                    // Until the wait is in progress: the waiting thread asleep
                    // in it, twice in a row (a probing wait(0) would be a
                    // second waiter, which the rules allow).
                    const std::string path = "/proc/self/task/" + std::to_string(waiter_tid) + "/stat";
                    const auto deadline = std::chrono::steady_clock::now() + 2s;
                    int asleep = 0;
                    while (!done && std::chrono::steady_clock::now() < deadline) {
                        std::ifstream stat(path);
                        std::string line;
                        std::getline(stat, line);
                        const auto paren = line.rfind(')');
                        const bool s_state =
                            paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'S';
                        asleep = s_state ? asleep + 1 : 0;
                        if (asleep == 2) {
                            sent = true;
                            w.notify();
                            return;
                        }
                        std::this_thread::sleep_for(1ms);
                    }
                });
            const auto start = std::chrono::steady_clock::now();
            std::error_code ec;
            std::span<const Event> span = w.wait(notified ? std::chrono::microseconds(2s) : 200us, ec);
            const auto took = std::chrono::steady_clock::now() - start;
            const bool woken = sent;
            done = true;
            if (notifier.joinable()) notifier.join();
            if (ec) fail(trace_, name + ": blocking wait failed: " + str(ec));
            if (!span.empty())
                fail(trace_, name + ": nothing is ready, yet a blocking wait reported " +
                                 str(std::vector<Event>(span.begin(), span.end())));
            if (notified && !woken) fail(trace_, name + ": the wait returned before notify() (it did not block)");
            if (notified && took > 1500ms) fail(trace_, name + ": notify() did not wake the wait in progress (N1)");
            if (!notified && took < 200us) fail(trace_, name + ": a 200 us wait returned early (T1)");
        }
        log("  -> []");
        check_model({});
        if (rebuild_waits_ > 0) --rebuild_waits_;
    }

    // libkqueue_quirks.hpp, 3 and 4: kqueue out of the comparison for the rest of the input.
    void retire_kqueue(const char* why) {
        if (!libkqueue_quirks::retire(waits_, retired_)) return;
        log(std::string("  kqueue left out from here: ") + why + " (libkqueue_quirks.hpp)");
        if (sources_) sources_->leave(*retired_.back());
    }

    // libkqueue's dropped EOF (libkqueue_quirks.hpp): kqueue's event is taken
    // as the others' where that is the only difference.
    void forgive_dropped_eof(const std::vector<Event>& want, std::vector<Event>& got) {
        for (Event& ev : got) {
            const auto other = std::find_if(want.begin(), want.end(), [&](const Event& x) { return x.fd == ev.fd; });
            if (other == want.end()) continue;
            for (int e = 0; e < ends; ++e) {
                if (fds_[e] != ev.fd || !model_[e].open ||
                    !libkqueue_quirks::dropped_eof(*other, ev, model_[e].rcv_shut, model_[e].queue))
                    continue;
                log("  kqueue: " + str(ev) + " without the hangup: libkqueue's dropped EOF, let pass");
                ev.hangup = true;
            }
        }
    }

    void check_model(const std::vector<Event>& evs) {
        for (int e = 0; e < slots; ++e) {
            watch_model& wm = watch_[e];
            const end_model& m = model_[e];
            const Event* ev = nullptr;
            for (const auto& x : evs)
                if (x.fd == fds_[e]) ev = &x;
            const std::string who = "end " + std::to_string(e) + " fd " + std::to_string(fds_[e]);
            if (!wm.watched || wm.dead || !wm.armed) {
                if (ev) fail(trace_, who + ": event for an unwatched, closed or disarmed watch: " + str(*ev));
                continue;
            }
            const bool want_r = has(wm.interest, Interest::read), want_w = has(wm.interest, Interest::write);
            if (ev) {
                if (ev->data != wm.data) fail(trace_, who + ": wrong data " + str(*ev));
                if ((ev->read && !want_r) || (ev->write && !want_w))
                    fail(trace_, who + ": an interest not asked for (R5): " + str(*ev));
                if (wm.mode == Mode::oneshot) wm.armed = false;
            }
            if (e == file_slot) {
                // R8: ready for every interest asked, no hangup; edge, like
                // oneshot, reports it once (M3), as it has no new edges.
                if (!ev) fail(trace_, who + ": a regular file is always ready (R8), got no event");
                if (ev->read != want_r || ev->write != want_w || ev->hangup)
                    fail(trace_, who + ": a regular file is ready for each interest asked, got " + str(*ev));
                if (wm.mode == Mode::edge) wm.armed = false;
                continue;
            }
            // unix_poll(): RCV_SHUTDOWN is EPOLLRDHUP|EPOLLIN, both shut is EPOLLHUP;
            // RDHUP is asked for only with read interest.
            const bool hup = (m.rcv_shut && m.send_shut) || (want_r && m.rcv_shut);
            const bool r = want_r && (hup || m.queue > 0 || m.rcv_shut);
            // R6: writable for certain only when gone both ways (EPOLLHUP);
            // the peer's shutdown of its writing says nothing of ours.
            const bool gone = m.rcv_shut && m.send_shut;
            const tri w = !want_w ? tri::no : gone ? tri::yes : m.writable;
            if (wm.mode == Mode::edge) {
                // M3: reported when an edge is due and the end is ready then;
                // never with nothing new since the last wait; an event says
                // what is ready now, as a level one would.
                const auto due = std::exchange(wm.edge_due, watch_model::none);
                const bool must = (due == watch_model::any && (r || w == tri::yes)) || (due == watch_model::read && r);
                if (ev && wm.quiet)
                    fail(trace_, who + ": edge watch reported again with no new edge (M3): " + str(*ev));
                if (!ev && must)
                    fail(trace_, who +
                                     ": edge watch not reported after its edge (armed, or new data), though ready: "
                                     "read=" +
                                     std::to_string(r) + " write=" + std::to_string(w == tri::yes));
                if (ev && (ev->read != r || ev->hangup != hup || (w != tri::unknown && ev->write != (w == tri::yes))))
                    fail(trace_, who + ": model expects read=" + std::to_string(r) +
                                     " write=" + (w == tri::unknown ? "?" : std::to_string(w == tri::yes)) +
                                     " hangup=" + std::to_string(hup) + ", got " + str(*ev));
                wm.quiet = rebuild_waits_ == 0;
                continue;
            }
            if (w == tri::unknown) {
                if (ev && (ev->read != r || ev->hangup != hup))
                    fail(trace_, who + ": model expects read=" + std::to_string(r) + " hangup=" + std::to_string(hup) +
                                     ", got " + str(*ev));
                if (!ev && r) fail(trace_, who + ": model expects a read event, got none");
                continue;
            }
            const bool present = r || w == tri::yes;
            if (!present && ev) fail(trace_, who + ": model expects no event, got " + str(*ev));
            if (present && !ev)
                fail(trace_, who + ": model expects read=" + std::to_string(r) + " write=" +
                                 std::to_string(w == tri::yes) + " hangup=" + std::to_string(hup) + ", got none");
            if (ev && (ev->read != r || ev->write != (w == tri::yes) || ev->hangup != hup))
                fail(trace_, who + ": model expects read=" + std::to_string(r) +
                                 " write=" + std::to_string(w == tri::yes) + " hangup=" + std::to_string(hup) +
                                 ", got " + str(*ev));
        }
    }

    bool edge_run_;
    bool with_select_ = false;
    int rebuild_waits_ = 0;
    std::size_t blocking_turn_ = 0;  // the backend of the next nothing-ready blocking wait  // waits left in which
                                     // epoll may rebuild its set (close_keeping_file)
    std::vector<std::unique_ptr<IOWait>> waits_;
    std::vector<std::unique_ptr<IOWait>> retired_;  // left out of the comparison (libkqueue_quirks.hpp)
    std::optional<fuzz::source_ops> sources_;
    std::vector<int> fds_;
    std::array<end_model, slots> model_{};
    std::array<watch_model, slots> watch_{};
    std::array<int, ends> hidden_ = {-1, -1, -1, -1, -1, -1, -1, -1};  // close_keeping_file's dups
    std::vector<std::string> trace_;
    std::string dir_;
    std::vector<std::string> files_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    input in{data, size};
    const std::uint8_t group = in.byte();
    session s(group & 1, group & 2, group & 4, (group & 0x18) == 0x18);
    if (!s.usable()) return 0;  // an edge run on a build where no backend has edge
    s.run(in);
    return 0;
}
