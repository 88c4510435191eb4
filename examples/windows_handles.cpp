// Windows: a child's output pipe, its process handle, the console and a
// socket in one IOWait (docs/behaviour.md, "Windows", W11-W14). The child
// (this program, "child") writes three lines to its standard output, an
// anonymous pipe, and exits with status 3; meanwhile a socket gets a
// message and, where the program has a console that takes input, a key is
// put into its input buffer. ./windows_handles [backend [console]]: with
// "console", a program without such a console fails.
#include "sockets.hpp"
// after winsock2.h (in sockets.hpp), which it would otherwise contradict
#include <windows.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iowait/iowait.hpp>
#include <string>
#include <thread>

using namespace std::chrono_literals;

static iowait::native_handle fd_of(HANDLE h) { return iowait::native_handle(reinterpret_cast<std::uintptr_t>(h)); }

static int child_main() {
    for (int i = 1; i <= 3; ++i) {
        std::printf("line %d\n", i);
        std::fflush(stdout);
        std::this_thread::sleep_for(20ms);
    }
    return 3;
}

// The child, with its standard output the write end of a new pipe; out: the read end.
static bool start_child(PROCESS_INFORMATION& pi, HANDLE& out) {
    SECURITY_ATTRIBUTES inherit{sizeof inherit, nullptr, TRUE};
    HANDLE write_end = nullptr;
    if (!::CreatePipe(&out, &write_end, &inherit, 0)) return false;
    ::SetHandleInformation(out, HANDLE_FLAG_INHERIT, 0);  // the child inherits only its end
    char self[MAX_PATH];
    const DWORD n = ::GetModuleFileNameA(nullptr, self, MAX_PATH);
    std::string cmd = "\"" + std::string(self, n) + "\" child";
    STARTUPINFOA si{};
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdOutput = write_end;
    si.hStdError = ::GetStdHandle(STD_ERROR_HANDLE);
    si.hStdInput = ::GetStdHandle(STD_INPUT_HANDLE);
    const BOOL ok = ::CreateProcessA(nullptr, cmd.data(), nullptr, nullptr, TRUE, 0, nullptr, nullptr, &si, &pi);
    ::CloseHandle(write_end);  // ours: the pipe ends when the child's is closed
    return ok;
}

// CONIN$, if this program has a console that takes input (under Wine: run in a terminal).
static HANDLE console_input() {
    HANDLE in = ::CreateFileW(L"CONIN$", GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, nullptr,
                              OPEN_EXISTING, 0, nullptr);
    DWORD mode = 0;
    if (in != INVALID_HANDLE_VALUE && !::GetConsoleMode(in, &mode)) {
        ::CloseHandle(in);
        in = INVALID_HANDLE_VALUE;
    }
    return in;
}

static void press_key(HANDLE in, wchar_t c) {
    INPUT_RECORD rec{};
    rec.EventType = KEY_EVENT;
    rec.Event.KeyEvent.bKeyDown = TRUE;
    rec.Event.KeyEvent.wRepeatCount = 1;
    rec.Event.KeyEvent.uChar.UnicodeChar = c;
    DWORD n = 0;
    ::WriteConsoleInputW(in, &rec, 1, &n);
}

int main(int argc, char** argv) {
    if (argc == 2 && std::string(argv[1]) == "child") return child_main();
    if (!example::start_sockets()) return example::fail("WSAStartup");
    iowait::IOWait w;
    if (argc >= 2) {
        for (iowait::Backend b : iowait::IOWait::available_backends())
            if (iowait::to_string(b) == argv[1]) w = iowait::IOWait{b};
        if (iowait::to_string(w.backend()) != argv[1]) return std::printf("SKIP: no backend %s\n", argv[1]), 77;
    }

    enum : std::uint64_t { pipe_data = 1, process_data, socket_data, console_data };
    PROCESS_INFORMATION child{};
    HANDLE output = nullptr;
    if (!start_child(child, output)) return example::fail("CreateProcess");
    ::CloseHandle(child.hThread);
    w.watch(fd_of(output), iowait::Interest::read, pipe_data);
    w.watch(fd_of(child.hProcess), iowait::Interest::read, process_data);

    example::socket_t pair[2];
    if (!example::socket_pair(pair)) return example::fail("socket pair");
    w.watch(pair[0], iowait::Interest::read, socket_data);
    example::send_some(pair[1], "ping", 4);

    const HANDLE console = console_input();
    if (console == INVALID_HANDLE_VALUE && argc == 3 && std::string(argv[2]) == "console")
        return std::puts("FAIL: no console that takes input"), 1;
    if (console != INVALID_HANDLE_VALUE) {
        ::FlushConsoleInputBuffer(console);
        w.watch(fd_of(console), iowait::Interest::read, console_data);
        press_key(console, L'k');
    }

    std::string lines;
    bool pipe_done = false, exited = false, got_socket = false, got_key = console == INVALID_HANDLE_VALUE;
    DWORD status = 0;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!(pipe_done && exited && got_socket && got_key) && std::chrono::steady_clock::now() < deadline) {
        for (const iowait::Event& e : w.wait(1s)) {
            switch (e.data) {
            case pipe_data: {
                char buf[256];
                DWORD n = 0;
                // Readable: data is there (this read does not block), or EOF.
                if (::ReadFile(output, buf, sizeof buf, &n, nullptr) && n > 0) {
                    lines.append(buf, n);
                } else {  // ERROR_BROKEN_PIPE: the child closed its end
                    w.unwatch(e.fd);
                    pipe_done = true;
                }
                break;
            }
            case process_data:
                ::GetExitCodeProcess(child.hProcess, &status);
                w.unwatch(e.fd);
                exited = true;
                break;
            case socket_data: {
                char buf[16];
                got_socket = example::recv_some(e.fd, buf, sizeof buf) == 4;
                break;
            }
            case console_data: {
                INPUT_RECORD rec;
                DWORD n = 0;
                ::ReadConsoleInputW(console, &rec, 1, &n);  // an input record is there: no wait
                got_key =
                    got_key || (n == 1 && rec.EventType == KEY_EVENT && rec.Event.KeyEvent.uChar.UnicodeChar == L'k');
                break;
            }
            }
        }
    }
    // Unwatched before the handles close (whatever a timeout left watched).
    std::error_code ignored;
    for (HANDLE h : {output, child.hProcess, console}) w.unwatch(fd_of(h), ignored);
    w.unwatch(pair[0], ignored);
    const bool lines_ok = lines.find("line 1") != std::string::npos && lines.find("line 3") != std::string::npos;
    std::printf("pipe %d (%zu bytes), process %d (exit status %lu), socket %d, console %s, on %s\n", pipe_done,
                lines.size(), exited, static_cast<unsigned long>(status), got_socket,
                console == INVALID_HANDLE_VALUE ? "none (not a terminal)" : (got_key ? "key read" : "no key"),
                std::string(iowait::to_string(w.backend())).c_str());
    ::CloseHandle(output);
    ::CloseHandle(child.hProcess);
    if (console != INVALID_HANDLE_VALUE) ::CloseHandle(console);
    example::close_socket(pair[0]);
    example::close_socket(pair[1]);
    if (!(pipe_done && exited && got_socket && got_key && lines_ok && status == 3)) return std::puts("FAIL"), 1;
    std::puts("OK");
}
