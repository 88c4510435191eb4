// Shared test helpers: socket pairs, buffers, and running one test body on
// every backend compiled in. The platform differences of the tests live here:
// on Windows a socket is a SOCKET and a pair is a loopback TCP connection.
#pragma once

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif
#include <time.h>
#include <unistd.h>
#endif
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iowait/iowait.hpp>
#include <string>
#include <thread>
#include <vector>

namespace iowait {
// So gtest names a backend parameter by its name, not its bytes.
inline void PrintTo(Backend b, std::ostream* os) { *os << to_string(b); }
}  // namespace iowait

namespace iowait::test {

using namespace std::chrono_literals;

// A fd on POSIX, a socket or another handle on Windows: what watch() takes.
using fd_t = native_handle;
constexpr fd_t no_fd = fd_t(-1);

#ifdef _WIN32
// Windows: the rules that need a POSIX file, or a chosen fd number, are
// skipped with this reason printed (docs/behaviour.md, "Windows").
#define IOWAIT_SKIP_ON_WINDOWS(why) GTEST_SKIP() << "not on Windows: " << why
constexpr bool on_windows = true;
inline void close_fd(fd_t fd) { ::closesocket(SOCKET(fd)); }
inline int socket_error() { return ::WSAGetLastError(); }
constexpr int would_block = WSAEWOULDBLOCK;
constexpr int connection_refused = WSAECONNREFUSED;
constexpr int shut_wr = SD_SEND;
// A handle that is not open, socket or not (E4).
constexpr std::errc not_open = std::errc::bad_file_descriptor;
// Wine reports a peer's close or shutdown(SD_SEND) that arrives behind
// unread data as "readable" only, on both backends, until the data is read
// (it asks Linux with a peek); Windows itself signals the FIN at once.
constexpr bool hangup_waits_for_unread_data = true;
inline const bool winsock_started = [] {
    WSADATA data;
    return ::WSAStartup(MAKEWORD(2, 2), &data) == 0;
}();
inline void set_nonblocking(fd_t fd) {
    u_long on = 1;
    ::ioctlsocket(SOCKET(fd), FIONBIO, &on);
}
inline fd_t tcp_socket() { return fd_t(::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)); }
#else
#define IOWAIT_SKIP_ON_WINDOWS(why) (void)0
constexpr bool on_windows = false;
inline void close_fd(fd_t fd) { ::close(fd); }
inline int socket_error() { return errno; }
constexpr int would_block = EINPROGRESS;
constexpr int connection_refused = ECONNREFUSED;
constexpr int shut_wr = SHUT_WR;
constexpr std::errc not_open = std::errc::bad_file_descriptor;
constexpr bool hangup_waits_for_unread_data = false;
inline void set_nonblocking(fd_t fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }
inline fd_t tcp_socket() { return ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); }
#endif

// send/recv with the platform's buffer and length types; -1 on error.
inline long send_some(fd_t fd, const char* data, std::size_t len) { return long(::send(fd, data, int(len), 0)); }
inline long recv_some(fd_t fd, char* data, std::size_t len) { return long(::recv(fd, data, int(len), 0)); }

// A loopback address with a port that nobody listens on: bound, noted, closed.
inline sockaddr_in unused_loopback_port() {
    const fd_t probe = tcp_socket();
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(::bind(probe, (sockaddr*)&addr, sizeof addr), 0);
    EXPECT_EQ(::getsockname(probe, (sockaddr*)&addr, &len), 0);
    close_fd(probe);
    return addr;
}

// A connected, non-blocking stream pair, closed on destruction (unless a
// test closed an end itself with close_a/b). POSIX: AF_UNIX socketpair();
// Windows, which has none: a loopback TCP connection.
struct socket_pair {
    fd_t a = no_fd, b = no_fd;
    socket_pair() {
#ifdef _WIN32
        const fd_t listener = tcp_socket();
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (::bind(listener, (sockaddr*)&addr, sizeof addr) != 0 ||
            ::getsockname(listener, (sockaddr*)&addr, &len) != 0 || ::listen(listener, 1) != 0)
            throw std::system_error(socket_error(), std::system_category(), "listen");
        a = tcp_socket();
        if (::connect(a, (sockaddr*)&addr, sizeof addr) != 0)
            throw std::system_error(socket_error(), std::system_category(), "connect");
        b = fd_t(::accept(listener, nullptr, nullptr));
        close_fd(listener);
        if (b == no_fd) throw std::system_error(socket_error(), std::system_category(), "accept");
        // One-byte sends are the tests' signals: no Nagle delay.
        const BOOL on = TRUE;
        for (fd_t s : {a, b}) {
            ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char*)&on, sizeof on);
            set_nonblocking(s);
        }
#else
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0)
            throw std::system_error(errno, std::generic_category(), "socketpair");
        a = fds[0];
        b = fds[1];
#endif
    }
    socket_pair(const socket_pair&) = delete;
    socket_pair& operator=(const socket_pair&) = delete;
    ~socket_pair() {
        if (a != no_fd) close_fd(a);
        if (b != no_fd) close_fd(b);
    }
    void close_a() { close_fd(std::exchange(a, no_fd)); }
    void close_b() { close_fd(std::exchange(b, no_fd)); }
    void send_b(const std::string& s = "x") const { ASSERT_EQ(send_some(b, s.data(), s.size()), long(s.size())); }
    std::string recv_a() const {
        char buf[4096];
        const long n = recv_some(a, buf, sizeof buf);
        return n > 0 ? std::string(buf, size_t(n)) : std::string();
    }
};

// Writes into fd (non-blocking) until the kernel's buffer is full.
inline void fill(fd_t fd) {
    static const std::string chunk(65536, 'f');
    while (send_some(fd, chunk.data(), chunk.size()) > 0) {
    }
}

// Reads fd (non-blocking) until nothing is left.
inline void drain(fd_t fd) {
    char buf[65536];
    while (recv_some(fd, buf, sizeof buf) > 0) {
    }
}

// A regular file (a disk file on Windows), deleted when closed: always
// ready for every interest (R8, W1).
struct temp_file {
    fd_t fd = no_fd;
    temp_file() {
#ifdef _WIN32
        char dir[MAX_PATH], path[MAX_PATH];
        if (::GetTempPathA(MAX_PATH, dir) == 0 || ::GetTempFileNameA(dir, "iow", 0, path) == 0) return;
        const HANDLE h = ::CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, nullptr, OPEN_EXISTING,
                                       FILE_FLAG_DELETE_ON_CLOSE, nullptr);
        if (h != INVALID_HANDLE_VALUE) fd = fd_t(reinterpret_cast<std::uintptr_t>(h));
#else
        char path[] = "/tmp/iowait-file-XXXXXX";
        fd = ::mkostemp(path, O_CLOEXEC);
        if (fd >= 0) ::unlink(path);
#endif
        EXPECT_NE(fd, no_fd) << "no temporary file";
    }
    temp_file(const temp_file&) = delete;
    temp_file& operator=(const temp_file&) = delete;
    ~temp_file() {
        if (fd == no_fd) return;
#ifdef _WIN32
        ::CloseHandle(reinterpret_cast<HANDLE>(fd));
#else
        ::close(fd);
#endif
    }
};

// The events of one wait(), copied out of the span.
inline std::vector<Event> wait_events(IOWait& w, std::chrono::nanoseconds timeout = 0ns) {
    auto span = w.wait(timeout);
    return {span.begin(), span.end()};
}

inline const Event* find_event(const std::vector<Event>& events, fd_t fd) {
    auto it = std::find_if(events.begin(), events.end(), [fd](const Event& e) { return e.fd == fd; });
    return it == events.end() ? nullptr : &*it;
}

// CPU time this thread has used: a rule that says "no busy loop" is checked
// by it, never by the wall clock, which a wait spinning inside also passes.
// (Windows counts it in scheduler ticks, about 15 ms: measure over 100 ms or more.)
inline std::chrono::nanoseconds thread_cpu_time() {
#ifdef _WIN32
    FILETIME created, exited, kernel, user;
    ::GetThreadTimes(::GetCurrentThread(), &created, &exited, &kernel, &user);
    auto ticks = [](FILETIME t) { return (std::uint64_t(t.dwHighDateTime) << 32) | t.dwLowDateTime; };
    return std::chrono::nanoseconds(std::int64_t(ticks(kernel) + ticks(user)) * 100);
#else
    ::timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
#endif
}

// The most CPU time a wait of `timeout` may use and still count as asleep: a
// tenth. A sleeping wait costs microseconds; a spinning one on a machine
// loaded with other work gets maybe a third of a core, so a half would let it
// pass. Windows counts CPU time in scheduler ticks (Wine: 10 ms), and charges
// a whole one to a thread that ran at all in it: two more there.
inline std::chrono::nanoseconds spin_limit(std::chrono::milliseconds timeout) {
    return timeout / 10 + (on_windows ? 32ms : 0ms);
}

// A blocking wait(timeout) that must sleep through its timeout: reports
// nothing, lasts the timeout, and costs at most spin_limit() in CPU time.
inline void expect_sleeps_through(IOWait& w, std::chrono::milliseconds timeout = 200ms) {
    const auto cpu_before = thread_cpu_time();
    const auto start = std::chrono::steady_clock::now();
    const auto events = wait_events(w, timeout);
    const auto took = std::chrono::steady_clock::now() - start;
    const auto cpu = thread_cpu_time() - cpu_before;
    EXPECT_TRUE(events.empty()) << events.size() << " events, the first for fd " << events.front().fd;
    EXPECT_GE(took, timeout);
    EXPECT_LT(cpu, spin_limit(timeout)) << "the wait spun instead of sleeping: "
                                        << std::chrono::duration_cast<std::chrono::milliseconds>(cpu).count()
                                        << " ms of CPU in " << timeout.count() << " ms";
}

// Where a test needs a wait to be in progress in another thread: the other
// thread waits with wait_retrying(), this one calls await_wait_in_progress()
// before it acts. A fixed sleep only hopes the waiter got there; on a loaded
// machine it tests the easier "change before the wait".
//
// True once another thread is inside w.wait(): the thread wait_retrying()
// named is asleep there (Linux: its state in /proc, twice in a row), or,
// where the system does not say, 200 ms after it announced its wait; false
// after `limit`. (A probing wait(0) no longer tells: several threads may
// wait at once, docs/behaviour.md "Several waiters".)
inline std::atomic<const IOWait*> about_to_wait{nullptr};
inline std::atomic<long> about_to_wait_tid{0};

inline long this_thread_tid() {
#ifdef __linux__
    return long(::syscall(SYS_gettid));
#else
    return 0;
#endif
}

inline bool await_wait_in_progress(IOWait& w, std::chrono::milliseconds limit = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (about_to_wait.load() != &w && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    if (about_to_wait.load() != &w) return false;
#ifdef __linux__
    const std::string path = "/proc/self/task/" + std::to_string(about_to_wait_tid.load()) + "/stat";
    int asleep = 0;
    while (asleep < 2 && std::chrono::steady_clock::now() < deadline) {
        std::ifstream stat(path);
        std::string line;
        std::getline(stat, line);
        const auto paren = line.rfind(')');
        asleep = paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'S' ? asleep + 1 : 0;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return asleep >= 2;
#else
    std::this_thread::sleep_for(200ms);
    return true;
#endif
}

// The waiting side: w.wait(timeout) (any duration type; none: no timeout),
// tried again while it is refused because the other thread's probe was the
// wait in progress.
template <class... Timeout>
inline std::vector<Event> wait_retrying(IOWait& w, Timeout... timeout) {
    std::error_code ec;
    std::span<const Event> events;
    for (;;) {
        about_to_wait_tid = this_thread_tid();
        about_to_wait = &w;
        events = w.wait(timeout..., ec);
        if (ec != errc::wait_in_progress) break;
        std::this_thread::sleep_for(std::chrono::microseconds(100));  // not a spin, for CPU-time checks
    }
    about_to_wait = nullptr;
    EXPECT_FALSE(ec) << ec.message();
    return {events.begin(), events.end()};
}

// Waits (up to `limit`) until fd is reported; returns its event or fails.
inline Event expect_event(IOWait& w, fd_t fd, std::chrono::milliseconds limit = 2000ms) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        auto events = wait_events(w, 50ms);
        if (auto* e = find_event(events, fd)) return *e;
    }
    ADD_FAILURE() << "no event for fd " << fd << " within " << limit.count() << " ms";
    return Event{fd, false, false, false, false, 0};
}

#ifndef _WIN32
// Makes epoll and io_uring rebuild their kernel set (backend::keeps_stale_entries,
// rule C4): a watched number closed while a dup() keeps its file open, then
// unwatched, leaves a kernel entry for no watch, which a writable socket
// brings back in consecutive waits. On the other backends these are plain
// waits. Whatever else is watched must be reported as before.
inline void rebuild_kernel_set(IOWait& w) {
    socket_pair p;
    const int fd = p.a;
    w.watch(fd, Interest::write);
    const int duplicate = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    ASSERT_GE(duplicate, 0);
    p.close_a();
    w.unwatch(fd);
    for (int i = 0; i < 3; ++i) wait_events(w, 0ns);
    ::close(duplicate);
}
#endif

#ifndef _WIN32
// Every free fd number below `top` taken (duplicates of one fd), so that any
// fd made next is at or above it, as in a program with that many files
// open; closed again at the end. ok() is false where RLIMIT_NOFILE is lower.
struct fds_taken_below {
    std::vector<int> fds;
    int top;
    explicit fds_taken_below(int top_) : top(top_) {
        const int first = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (first < 0) return;
        fds.push_back(first);
        while (fds.back() < top - 1) {
            const int fd = ::fcntl(first, F_DUPFD_CLOEXEC, 0);
            if (fd < 0) break;
            fds.push_back(fd);
        }
    }
    bool ok() const { return !fds.empty() && fds.back() >= top - 1; }
    ~fds_taken_below() {
        for (int fd : fds) ::close(fd);
    }
};
#endif

inline std::string name_of(const testing::TestParamInfo<Backend>& info) { return std::string(to_string(info.param)); }

// The fixture of every conformance test: GetParam() is the backend.
class ConformanceTest : public testing::TestWithParam<Backend> {
protected:
    IOWait w{GetParam()};
    bool is(Backend b) const { return GetParam() == b; }
};

}  // namespace iowait::test

// Runs the test suite `suite` (an alias of ConformanceTest) on every backend
// this build and kernel can use; names read Conformance/<suite>.<test>/<backend>.
// libkqueue (kqueue emulated over epoll, the build with IOWAIT_KQUEUE_PREFIX
// on Linux) rather than a kernel kqueue.
#if defined(__linux__)
#define IOWAIT_LIBKQUEUE true
#else
#define IOWAIT_LIBKQUEUE false
#endif

#define IOWAIT_CONFORMANCE(suite)                                                                         \
    INSTANTIATE_TEST_SUITE_P(Conformance, suite, testing::ValuesIn(iowait::IOWait::available_backends()), \
                             iowait::test::name_of)
