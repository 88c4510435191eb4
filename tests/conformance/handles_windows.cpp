// Windows handles that are not sockets, watched in the same IOWait as the
// sockets (docs/behaviour.md, "Windows", W11-W14): pipes (anonymous and
// named, both ends), waitable objects, console input; on afd and wsapoll.
#include <winsock2.h>
// after winsock2.h, which it would otherwise contradict
#include <windows.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>

#include "helpers.hpp"

namespace iowait::test {
namespace {

fd_t as_fd(HANDLE h) { return fd_t(reinterpret_cast<std::uintptr_t>(h)); }

struct handle {
    HANDLE h = nullptr;
    handle() = default;
    explicit handle(HANDLE x) : h(x) {}
    handle(const handle&) = delete;
    handle& operator=(const handle&) = delete;
    ~handle() { close(); }
    void close() {
        if (h && h != INVALID_HANDLE_VALUE) ::CloseHandle(h);
        h = nullptr;
    }
    fd_t fd() const { return as_fd(h); }
};

// CreatePipe's pair: synchronous handles, as a child's standard handles are.
struct anonymous_pipe {
    handle r, w;
    anonymous_pipe() { EXPECT_TRUE(::CreatePipe(&r.h, &w.h, nullptr, 0)) << ::GetLastError(); }
};

// A named pipe's two ends, both opened for overlapped I/O unless told otherwise.
struct named_pipe {
    handle server, client;
    explicit named_pipe(bool overlapped = true) {
        static std::atomic<int> made{0};
        const std::string name =
            "\\\\.\\pipe\\iowait-test-" + std::to_string(::GetCurrentProcessId()) + "-" + std::to_string(made++);
        const DWORD flag = overlapped ? FILE_FLAG_OVERLAPPED : 0;
        server.h = ::CreateNamedPipeA(name.c_str(), PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE | flag,
                                      PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT, 1, 4096, 4096, 0, nullptr);
        EXPECT_NE(server.h, INVALID_HANDLE_VALUE) << ::GetLastError();
        client.h = ::CreateFileA(name.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr, OPEN_EXISTING, flag, nullptr);
        EXPECT_NE(client.h, INVALID_HANDLE_VALUE) << ::GetLastError();
    }
};

// Writes (or reads) through an OVERLAPPED where the handle wants one, and
// waits for the end: the tests' own I/O, not iowait's.
void write_to(HANDLE h, const std::string& data) {
    OVERLAPPED ov{};
    ov.hEvent = ::CreateEventW(nullptr, TRUE, FALSE, nullptr);
    DWORD n = 0;
    if (!::WriteFile(h, data.data(), DWORD(data.size()), &n, &ov)) {
        ASSERT_EQ(::GetLastError(), DWORD(ERROR_IO_PENDING));
        ASSERT_TRUE(::GetOverlappedResult(h, &ov, &n, TRUE));
    }
    ::CloseHandle(ov.hEvent);
    EXPECT_EQ(n, data.size());
}

std::string read_from(HANDLE h, std::size_t most = 256) {
    std::string buf(most, '\0');
    OVERLAPPED ov{};
    ov.hEvent = ::CreateEventW(nullptr, TRUE, FALSE, nullptr);
    DWORD n = 0;
    if (!::ReadFile(h, buf.data(), DWORD(most), &n, &ov)) {
        if (::GetLastError() == ERROR_IO_PENDING) ::GetOverlappedResult(h, &ov, &n, TRUE);
    }
    ::CloseHandle(ov.hEvent);
    buf.resize(n);
    return buf;
}

// The one event of fd in the next waits, or a failure; nothing else expected.
Event only_event(IOWait& w, fd_t fd) {
    Event e = expect_event(w, fd);
    return e;
}

// ---------------------------------------------------------------- pipes

using Pipe = ConformanceTest;
IOWAIT_CONFORMANCE(Pipe);

TEST_P(Pipe, AnonymousReadEndIsReadableWhenDataArrivesDuringAWait) {
    anonymous_pipe p;
    w.watch(p.r.fd(), Interest::read, 7);
    EXPECT_TRUE(wait_events(w, 20ms).empty());
    std::thread writer([&] {
        std::this_thread::sleep_for(50ms);
        write_to(p.w.h, "hello");
    });
    auto events = wait_events(w, 5s);
    writer.join();
    if (events.empty()) events = wait_events(w, 1s);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].fd, p.r.fd());
    EXPECT_TRUE(events[0].read);
    EXPECT_FALSE(events[0].write);
    EXPECT_FALSE(events[0].hangup);
    EXPECT_EQ(events[0].data, 7u);
    EXPECT_EQ(read_from(p.r.h), "hello");
    EXPECT_TRUE(wait_events(w, 20ms).empty());
    w.unwatch(p.r.fd());
}

TEST_P(Pipe, AnonymousReadEndIsHangupWhenTheWriterCloses) {
    anonymous_pipe p;
    w.watch(p.r.fd(), Interest::read);
    EXPECT_TRUE(wait_events(w, 20ms).empty());
    p.w.close();
    Event e = only_event(w, p.r.fd());
    EXPECT_TRUE(e.read);
    EXPECT_TRUE(e.hangup);
    EXPECT_FALSE(e.error);
    // Level: EOF stays.
    EXPECT_TRUE(only_event(w, p.r.fd()).hangup);
    w.unwatch(p.r.fd());
}

TEST_P(Pipe, DataThenCloseIsReadableThenHangup) {
    anonymous_pipe p;
    write_to(p.w.h, "last words");
    p.w.close();
    w.watch(p.r.fd(), Interest::read);
    Event e = only_event(w, p.r.fd());
    EXPECT_TRUE(e.read);
    EXPECT_EQ(read_from(p.r.h), "last words");
    e = only_event(w, p.r.fd());
    EXPECT_TRUE(e.read);
    EXPECT_TRUE(e.hangup);
    w.unwatch(p.r.fd());
}

TEST_P(Pipe, WriteEndIsWritableAndErrorOnceTheReaderIsGone) {
    anonymous_pipe p;
    w.watch(p.w.fd(), Interest::write);
    Event e = only_event(w, p.w.fd());
    EXPECT_TRUE(e.write);
    EXPECT_FALSE(e.read);
    EXPECT_FALSE(e.error);
    p.r.close();
    e = only_event(w, p.w.fd());
    EXPECT_TRUE(e.write);
    EXPECT_TRUE(e.error);
    DWORD n = 0;
    EXPECT_FALSE(::WriteFile(p.w.h, "x", 1, &n, nullptr));  // what the error announced
    w.unwatch(p.w.fd());
}

TEST_P(Pipe, NamedPipeBothEndsReadableWhenTheOtherWrites) {
    named_pipe p;
    w.watch(p.server.fd(), Interest::read, 1);
    w.watch(p.client.fd(), Interest::read, 2);
    EXPECT_TRUE(wait_events(w, 20ms).empty());
    write_to(p.client.h, "to server");
    Event e = only_event(w, p.server.fd());
    EXPECT_TRUE(e.read);
    EXPECT_EQ(e.data, 1u);
    EXPECT_EQ(read_from(p.server.h), "to server");
    write_to(p.server.h, "to client");
    e = only_event(w, p.client.fd());
    EXPECT_TRUE(e.read);
    EXPECT_EQ(e.data, 2u);
    EXPECT_EQ(read_from(p.client.h), "to client");
    EXPECT_TRUE(wait_events(w, 20ms).empty());
    w.unwatch(p.server.fd());
    w.unwatch(p.client.fd());
}

TEST_P(Pipe, NamedPipeIsReadableWhenDataArrivesDuringAWait) {
    named_pipe p;
    w.watch(p.server.fd(), Interest::read);
    EXPECT_TRUE(wait_events(w, 20ms).empty());
    std::thread writer([&] {
        std::this_thread::sleep_for(50ms);
        write_to(p.client.h, "late");
    });
    auto events = wait_events(w, 5s);
    writer.join();
    if (events.empty()) events = wait_events(w, 1s);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_TRUE(events[0].read);
    EXPECT_EQ(read_from(p.server.h), "late");
    w.unwatch(p.server.fd());
}

TEST_P(Pipe, NamedPipeServerIsHangupWhenTheClientCloses) {
    named_pipe p;
    w.watch(p.server.fd(), Interest::read);
    EXPECT_TRUE(wait_events(w, 20ms).empty());
    p.client.close();
    Event e = only_event(w, p.server.fd());
    EXPECT_TRUE(e.read);
    EXPECT_TRUE(e.hangup);
    w.unwatch(p.server.fd());
}

TEST_P(Pipe, SynchronousNamedPipeIsReadableToo) {
    named_pipe p(false);
    w.watch(p.server.fd(), Interest::read);
    EXPECT_TRUE(wait_events(w, 20ms).empty());
    DWORD n = 0;
    ASSERT_TRUE(::WriteFile(p.client.h, "sync", 4, &n, nullptr));
    EXPECT_TRUE(only_event(w, p.server.fd()).read);
    w.unwatch(p.server.fd());
}

TEST_P(Pipe, LevelReportsAgainWhileDataIsUnread) {
    anonymous_pipe p;
    write_to(p.w.h, "x");
    w.watch(p.r.fd(), Interest::read);
    for (int i = 0; i < 3; ++i) {
        auto events = wait_events(w, 1s);
        ASSERT_EQ(events.size(), 1u) << "wait #" << i;
        EXPECT_TRUE(events[0].read);
    }
    w.unwatch(p.r.fd());
}

TEST_P(Pipe, OneshotReportsOnceUntilModifyRearmsIt) {
    named_pipe p;
    write_to(p.client.h, "x");
    w.watch(p.server.fd(), Interest::read, 3, Mode::oneshot);
    EXPECT_TRUE(only_event(w, p.server.fd()).read);
    EXPECT_TRUE(wait_events(w, 50ms).empty());
    w.modify(p.server.fd(), Interest::read, 4, Mode::oneshot);
    Event e = only_event(w, p.server.fd());
    EXPECT_TRUE(e.read);
    EXPECT_EQ(e.data, 4u);
    w.unwatch(p.server.fd());
}

TEST_P(Pipe, UnwatchWhileWaitingForDataStopsIt) {
    anonymous_pipe p;
    named_pipe q;
    w.watch(p.r.fd(), Interest::read);
    w.watch(q.server.fd(), Interest::read);
    EXPECT_TRUE(wait_events(w, 20ms).empty());  // both waits for data in progress
    w.unwatch(p.r.fd());
    w.unwatch(q.server.fd());
    write_to(p.w.h, "x");
    write_to(q.client.h, "y");
    EXPECT_TRUE(wait_events(w, 50ms).empty());
    // Nothing of iowait's was left in the pipes: the data is all there.
    EXPECT_EQ(read_from(p.r.h), "x");
    EXPECT_EQ(read_from(q.server.h), "y");
}

TEST_P(Pipe, WatchFromAnotherThreadReachesAWaitInProgress) {
    anonymous_pipe p;
    write_to(p.w.h, "ready");
    std::atomic<bool> started{false};
    std::vector<Event> got;
    std::thread waiter([&] {
        started = true;
        got = wait_events(w, 5s);
    });
    while (!started) std::this_thread::yield();
    // Probe until the waiter is inside wait(): then ours is refused.
    for (int i = 0; i < 1000; ++i) {
        std::error_code ec;
        (void)w.wait(0ns, ec);
        if (ec == errc::wait_in_progress) break;
        std::this_thread::sleep_for(1ms);
    }
    w.watch(p.r.fd(), Interest::read);
    waiter.join();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].fd, p.r.fd());
    EXPECT_TRUE(got[0].read);
    w.unwatch(p.r.fd());
}

TEST_P(Pipe, SocketsAndPipesInOneWait) {
    anonymous_pipe p;
    socket_pair s;
    w.watch(p.r.fd(), Interest::read);
    w.watch(s.a, Interest::read);
    write_to(p.w.h, "p");
    s.send_b("s");
    bool pipe_seen = false, socket_seen = false;
    // A synchronous pipe's data is seen when its reader thread's read
    // returns (W12): the socket, read as it comes, does not keep the waits
    // from blocking meanwhile.
    for (int i = 0; i < 20 && !(pipe_seen && socket_seen); ++i)
        for (const Event& e : wait_events(w, 100ms)) {
            pipe_seen = pipe_seen || (e.fd == p.r.fd() && e.read);
            if (e.fd == s.a && e.read) {
                socket_seen = true;
                EXPECT_EQ(s.recv_a(), "s");
            }
        }
    EXPECT_TRUE(pipe_seen);
    EXPECT_TRUE(socket_seen);
    w.unwatch(p.r.fd());
    w.unwatch(s.a);
}

// The process's CPU time (every thread: the reader threads and the thread
// pool's waits are threads of this process).
std::chrono::microseconds process_cpu_time() {
    FILETIME created, exited, kernel, user;
    ::GetProcessTimes(::GetCurrentProcess(), &created, &exited, &kernel, &user);
    auto us = [](FILETIME t) { return (std::uint64_t(t.dwHighDateTime) << 32 | t.dwLowDateTime) / 10; };
    return std::chrono::microseconds(us(kernel) + us(user));
}

TEST_P(Pipe, WaitingForDataOnPipesAndObjectsDoesNotSpin) {
    anonymous_pipe p;
    named_pipe q;
    handle ev(::CreateEventW(nullptr, TRUE, FALSE, nullptr));
    w.watch(p.r.fd(), Interest::read);
    w.watch(q.server.fd(), Interest::read);
    w.watch(ev.fd(), Interest::read);
    EXPECT_TRUE(wait_events(w, 20ms).empty());  // every wait for data started
    const auto cpu_start = process_cpu_time();
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(wait_events(w, 300ms).empty());
    const auto took = std::chrono::steady_clock::now() - start;
    const auto cpu = process_cpu_time() - cpu_start;
    EXPECT_GE(took, 300ms);
    EXPECT_LT(cpu, 100ms) << "the process was busy while nothing was ready";
    w.unwatch(p.r.fd());
    w.unwatch(q.server.fd());
    w.unwatch(ev.fd());
}

TEST_P(Pipe, ClosedHandleIsEBADFAndLeavesNoWatch) {
    HANDLE r, wr;
    ASSERT_TRUE(::CreatePipe(&r, &wr, nullptr, 0));
    ::CloseHandle(r);
    ::CloseHandle(wr);
    try {
        w.watch(as_fd(r), Interest::read);
        ADD_FAILURE() << "a closed handle was watched";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::bad_file_descriptor) << e.what();
        EXPECT_NE(std::string(e.what()).find("watch(fd=" + std::to_string(as_fd(r)) + ")"), std::string::npos)
            << e.what();
    }
    EXPECT_THROW(w.unwatch(as_fd(r)), usage_error);
}

// ---------------------------------------------------------------- waitable objects

using Waitable = ConformanceTest;
IOWAIT_CONFORMANCE(Waitable);

TEST_P(Waitable, ManualResetEventIsReadableWhileSet) {
    handle ev(::CreateEventW(nullptr, TRUE, FALSE, nullptr));
    w.watch(ev.fd(), Interest::read, 9);
    EXPECT_TRUE(wait_events(w, 20ms).empty());
    ::SetEvent(ev.h);
    Event e = only_event(w, ev.fd());
    EXPECT_TRUE(e.read);
    EXPECT_FALSE(e.write);
    EXPECT_EQ(e.data, 9u);
    // Level: still set, reported again, on every wait.
    for (int i = 0; i < 3; ++i) {
        auto events = wait_events(w, 1s);
        ASSERT_EQ(events.size(), 1u) << "wait #" << i;
    }
    ::ResetEvent(ev.h);
    EXPECT_TRUE(wait_events(w, 20ms).empty());
    w.unwatch(ev.fd());
}

TEST_P(Waitable, SetFromAnotherThreadEndsAWaitInProgress) {
    handle ev(::CreateEventW(nullptr, TRUE, FALSE, nullptr));
    w.watch(ev.fd(), Interest::read);
    std::thread setter([&] {
        std::this_thread::sleep_for(50ms);
        ::SetEvent(ev.h);
    });
    const auto start = std::chrono::steady_clock::now();
    auto events = wait_events(w, 5s);
    setter.join();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].fd, ev.fd());
    EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
    w.unwatch(ev.fd());
}

TEST_P(Waitable, AutoResetEventIsReportedOncePerSetAndTheReportTakesIt) {
    handle ev(::CreateEventW(nullptr, FALSE, FALSE, nullptr));
    w.watch(ev.fd(), Interest::read);
    EXPECT_TRUE(wait_events(w, 20ms).empty());
    ::SetEvent(ev.h);
    EXPECT_TRUE(only_event(w, ev.fd()).read);
    EXPECT_TRUE(wait_events(w, 50ms).empty());
    EXPECT_EQ(::WaitForSingleObject(ev.h, 0), DWORD(WAIT_TIMEOUT));  // taken by the report
    ::SetEvent(ev.h);
    EXPECT_TRUE(only_event(w, ev.fd()).read);
    w.unwatch(ev.fd());
}

TEST_P(Waitable, SemaphoreIsReportedOncePerCount) {
    handle sem(::CreateSemaphoreW(nullptr, 0, 10, nullptr));
    w.watch(sem.fd(), Interest::read);
    ::ReleaseSemaphore(sem.h, 3, nullptr);
    int reports = 0;
    for (int i = 0; i < 10; ++i) reports += int(wait_events(w, 100ms).size());
    EXPECT_EQ(reports, 3);
    w.unwatch(sem.fd());
}

TEST_P(Waitable, ThreadAndProcessAreReadableOnceExited) {
    handle thread(::CreateThread(
        nullptr, 0, [](void*) -> DWORD { return ::Sleep(50), 0; }, nullptr, 0, nullptr));
    w.watch(thread.fd(), Interest::read);
    EXPECT_TRUE(only_event(w, thread.fd()).read);
    w.unwatch(thread.fd());
    // A process: this test's own child, which exits at once.
    char self[MAX_PATH];
    const DWORD n = ::GetModuleFileNameA(nullptr, self, MAX_PATH);
    std::string exe(self, n);
    exe = exe.substr(0, exe.find_last_of("\\/") + 1) + "iowait_test_child.exe";
    std::string cmd = "\"" + exe + "\" 0";
    STARTUPINFOA si{};
    si.cb = sizeof si;
    PROCESS_INFORMATION pi{};
    ASSERT_TRUE(::CreateProcessA(exe.c_str(), cmd.data(), nullptr, nullptr, FALSE, 0, nullptr, nullptr, &si, &pi));
    ::CloseHandle(pi.hThread);
    handle process(pi.hProcess);
    w.watch(process.fd(), Interest::read);
    EXPECT_TRUE(only_event(w, process.fd()).read);
    w.unwatch(process.fd());
}

TEST_P(Waitable, WaitableTimerIsReadableWhenDue) {
    handle timer(::CreateWaitableTimerW(nullptr, TRUE, nullptr));
    w.watch(timer.fd(), Interest::read);
    LARGE_INTEGER due;
    due.QuadPart = -50 * 10000;  // 50 ms from now, in 100 ns units
    ASSERT_TRUE(::SetWaitableTimer(timer.h, &due, 0, nullptr, nullptr, FALSE));
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(only_event(w, timer.fd()).read);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 40ms);
    w.unwatch(timer.fd());
}

TEST_P(Waitable, OneshotIsReportedOnceUntilModify) {
    handle ev(::CreateEventW(nullptr, TRUE, TRUE, nullptr));
    w.watch(ev.fd(), Interest::read, 1, Mode::oneshot);
    EXPECT_TRUE(only_event(w, ev.fd()).read);
    EXPECT_TRUE(wait_events(w, 50ms).empty());
    w.modify(ev.fd(), Interest::read, 2, Mode::oneshot);
    EXPECT_EQ(only_event(w, ev.fd()).data, 2u);
    w.unwatch(ev.fd());
}

TEST_P(Waitable, RearmFromAnotherThreadReachesAWaitInProgress) {
    handle ev(::CreateEventW(nullptr, TRUE, TRUE, nullptr));
    w.watch(ev.fd(), Interest::read, 1, Mode::oneshot);
    EXPECT_TRUE(only_event(w, ev.fd()).read);  // disarmed now, still set
    std::thread other([&] {
        std::this_thread::sleep_for(50ms);  // let the waiter block
        w.modify(ev.fd(), Interest::read, 2, Mode::oneshot);
    });
    const auto start = std::chrono::steady_clock::now();
    auto events = wait_events(w, 5s);
    other.join();
    ASSERT_EQ(events.size(), 1u) << "the wait ran to its timeout without seeing the re-armed watch";
    EXPECT_EQ(events[0].data, 2u);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
    w.unwatch(ev.fd());
}

TEST_P(Waitable, UnwatchDuringAWaitStopsItsReports) {
    handle ev(::CreateEventW(nullptr, TRUE, FALSE, nullptr));
    w.watch(ev.fd(), Interest::read);
    EXPECT_TRUE(wait_events(w, 20ms).empty());  // the pool's wait is on
    w.unwatch(ev.fd());
    ::SetEvent(ev.h);
    EXPECT_TRUE(wait_events(w, 50ms).empty());
}

// Watches made, signalled and dropped while another thread waits, for a
// second: their waits (the pool's, a reader thread) end as unwatch() returns,
// so nothing crashes or hangs, and nothing of iowait's is left in the pipe.
TEST_P(Waitable, WatchSignalUnwatchCyclesBesideAWaitingThread) {
    std::atomic<bool> stop{false};
    std::atomic<int> waits{0};
    std::thread waiter([&] {
        while (!stop) {
            std::error_code ec;
            (void)w.wait(10ms, ec);
            ++waits;
        }
    });
    anonymous_pipe p;
    const auto end = std::chrono::steady_clock::now() + 1s;
    int cycles = 0;
    for (; std::chrono::steady_clock::now() < end; ++cycles) {
        handle ev(::CreateEventW(nullptr, cycles % 2 == 0, FALSE, nullptr));
        w.watch(ev.fd(), Interest::read, 1, cycles % 3 == 0 ? Mode::oneshot : Mode::level);
        w.watch(p.r.fd(), Interest::read, 2);
        if (cycles % 2 == 0) ::SetEvent(ev.h);
        if (cycles % 5 == 0) write_to(p.w.h, "x");
        std::this_thread::sleep_for(1ms);
        w.unwatch(p.r.fd());
        w.unwatch(ev.fd());
        if (cycles % 5 == 0) {
            EXPECT_EQ(read_from(p.r.h, 1), "x");
        }
    }
    stop = true;
    waiter.join();
    EXPECT_GT(cycles, 10);
    EXPECT_GT(waits, 0);
}

TEST_P(Waitable, MutexAndWriteInterestAreRefusedAndLeaveNoWatch) {
    handle mutex(::CreateMutexW(nullptr, FALSE, nullptr));
    try {
        w.watch(mutex.fd(), Interest::read);
        ADD_FAILURE() << "a mutex was watched";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument) << e.what();
    }
    EXPECT_THROW(w.unwatch(mutex.fd()), usage_error);
    handle ev(::CreateEventW(nullptr, TRUE, TRUE, nullptr));
    try {
        w.watch(ev.fd(), Interest::write);
        ADD_FAILURE() << "an event was watched for write";
    } catch (const usage_error& e) {
        EXPECT_EQ(e.code(), errc::bad_interest) << e.what();
    }
    EXPECT_THROW(w.unwatch(ev.fd()), usage_error);
    w.watch(ev.fd(), Interest::read);
    EXPECT_TRUE(only_event(w, ev.fd()).read);
    w.unwatch(ev.fd());
}

TEST_P(Waitable, NotifyStillWorksBesideAWaitableWatch) {
    handle ev(::CreateEventW(nullptr, TRUE, FALSE, nullptr));
    w.watch(ev.fd(), Interest::read);
    w.notify();
    EXPECT_TRUE(wait_events(w, 5s).empty());
    ::SetEvent(ev.h);
    EXPECT_TRUE(only_event(w, ev.fd()).read);
    w.unwatch(ev.fd());
}

// ---------------------------------------------------------------- console input

using Console = ConformanceTest;
IOWAIT_CONFORMANCE(Console);

// CONIN$, or a skip with the reason: a process without a console (Wine run
// without a terminal, a service) has none to watch.
struct console_input {
    handle in;
    std::string why_not;
    console_input() {
        in.h = ::CreateFileW(L"CONIN$", GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, nullptr,
                             OPEN_EXISTING, 0, nullptr);
        DWORD mode = 0;
        if (in.h == INVALID_HANDLE_VALUE)
            why_not = "no console (CONIN$: error " + std::to_string(::GetLastError()) + ")";
        else if (!::GetConsoleMode(in.h, &mode))
            why_not = "a console that takes no input (GetConsoleMode: error " + std::to_string(::GetLastError()) +
                      "; Wine without a terminal)";
        else
            ::FlushConsoleInputBuffer(in.h);
    }
    // Flushed, and no input reported by a wait. A terminal's answers to the
    // console's own queries arrive as input records now and then, under
    // Wine in script(1): flushed again, a few times at most.
    bool quiet(IOWait& w) const {
        for (int i = 0; i < 5; ++i) {
            ::FlushConsoleInputBuffer(in.h);
            if (wait_events(w, 50ms).empty()) return true;
        }
        return false;
    }
    bool write_key(wchar_t c) const {
        INPUT_RECORD rec{};
        rec.EventType = KEY_EVENT;
        rec.Event.KeyEvent.bKeyDown = TRUE;
        rec.Event.KeyEvent.wRepeatCount = 1;
        rec.Event.KeyEvent.uChar.UnicodeChar = c;
        DWORD n = 0;
        return ::WriteConsoleInputW(in.h, &rec, 1, &n) && n == 1;
    }
};

// IOWAIT_REQUIRE_CONSOLE=1 (ctest's Conformance/Console/in_a_terminal, run
// in a terminal by script(1)): no console is a failure, not a skip.
#define IOWAIT_NEED_CONSOLE(c)                                                \
    if (!(c).why_not.empty()) {                                               \
        if (std::getenv("IOWAIT_REQUIRE_CONSOLE")) FAIL() << (c).why_not;     \
        GTEST_SKIP() << (c).why_not                                           \
                     << ": the Console tests run in a terminal as ctest's "   \
                        "Conformance/Console/in_a_terminal, under script(1)"; \
    }

TEST_P(Console, InputHandleIsReadableWhenAnInputRecordIsThere) {
    console_input c;
    IOWAIT_NEED_CONSOLE(c);
    w.watch(c.in.fd(), Interest::read, 5);
    EXPECT_TRUE(c.quiet(w));
    ASSERT_TRUE(c.write_key(L'a'));
    Event e = only_event(w, c.in.fd());
    EXPECT_TRUE(e.read);
    EXPECT_FALSE(e.write);
    EXPECT_EQ(e.data, 5u);
    // Level: the record is still there.
    EXPECT_TRUE(only_event(w, c.in.fd()).read);
    EXPECT_TRUE(c.quiet(w));
    w.unwatch(c.in.fd());
}

TEST_P(Console, InputDuringAWaitEndsIt) {
    console_input c;
    IOWAIT_NEED_CONSOLE(c);
    w.watch(c.in.fd(), Interest::read);
    std::thread typist([&] {
        std::this_thread::sleep_for(50ms);
        c.write_key(L'b');
    });
    auto events = wait_events(w, 5s);
    typist.join();
    if (events.empty()) events = wait_events(w, 1s);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].fd, c.in.fd());
    ::FlushConsoleInputBuffer(c.in.h);
    w.unwatch(c.in.fd());
}

TEST_P(Console, WriteInterestIsRefused) {
    console_input c;
    IOWAIT_NEED_CONSOLE(c);
    try {
        w.watch(c.in.fd(), Interest::write);
        ADD_FAILURE() << "console input was watched for write";
    } catch (const usage_error& e) {
        EXPECT_EQ(e.code(), errc::bad_interest) << e.what();
    }
}

}  // namespace
}  // namespace iowait::test
