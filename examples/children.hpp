// The process and signal calls examples/sources.cpp makes, the same on POSIX
// and on Windows, as sockets.hpp does for sockets. Not part of the library.
//
// The child is this very program, with a socket to the parent: fork() and a
// socketpair() on POSIX; on Windows, which has no fork, the program started
// again as "child <port>", which connects to the parent's loopback listener
// (Wine 8 cannot use an inherited socket: WSAENOTSOCK). Its signal to the
// parent: SIGUSR1 on POSIX; on Windows SIGINT, i.e. a CTRL_C_EVENT on the
// console the two share (docs/behaviour.md, G6).
#pragma once

#include "sockets.hpp"
#ifdef _WIN32
// after winsock2.h (in sockets.hpp), which it would otherwise contradict
#include <windows.h>

#include <cstdlib>
#include <string>
#else
#include <sys/wait.h>
#endif
#include <signal.h>

#include <cstdint>

namespace example {

#ifdef _WIN32
constexpr int parent_signal = SIGINT;

struct child_process {
    std::int64_t pid = -1;
    socket_t socket = no_socket;  // the parent's end
    HANDLE handle = nullptr;
};

// Ctrl+C goes to every process on a console: a program without one (under
// ctest, say) makes one of its own, which the child then shares.
inline void share_console() {
    if (!::GetConsoleWindow()) {
        ::FreeConsole();
        ::AllocConsole();
    }
}

// The child's side: the program was started as "child <port>".
inline bool is_child(int argc, char** argv) { return argc == 3 && std::string(argv[1]) == "child"; }
inline socket_t child_socket(char** argv) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(u_short(std::atoi(argv[2])));
    return tcp_connect(addr);
}
// The child ignores the Ctrl+C it sends: it reaches every process on the console.
inline void signal_parent() {
    ::SetConsoleCtrlHandler(nullptr, TRUE);
    ::GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0);
}

// Starts this program again as the child, and takes its connection; main()
// sends the child to child_main (is_child, child_socket).
template <class F>
child_process start_child(F /*child_main*/) {
    sockaddr_in addr;
    const socket_t listener = tcp_listener(addr);
    if (listener == no_socket) return {};
    char self[MAX_PATH];
    const DWORD n = ::GetModuleFileNameA(nullptr, self, MAX_PATH);
    std::string cmd = "\"" + std::string(self, n) + "\" child " + std::to_string(ntohs(addr.sin_port));
    STARTUPINFOA si{};
    si.cb = sizeof si;
    PROCESS_INFORMATION pi{};
    if (!::CreateProcessA(self, cmd.data(), nullptr, nullptr, FALSE, 0, nullptr, nullptr, &si, &pi)) {
        close_socket(listener);
        return {};
    }
    ::CloseHandle(pi.hThread);
    const socket_t s = socket_t(::accept(SOCKET(listener), nullptr, nullptr));
    close_socket(listener);
    return {std::int64_t(pi.dwProcessId), s, pi.hProcess};
}

// Once its exit was reported: its exit status (-1 on failure).
inline int reap(const child_process& c) {
    DWORD status = 0;
    const bool ok = ::GetExitCodeProcess(c.handle, &status);
    ::CloseHandle(c.handle);
    return ok ? int(status) : -1;
}
#else
constexpr int parent_signal = SIGUSR1;

struct child_process {
    std::int64_t pid = -1;
    socket_t socket = no_socket;  // the parent's end
};

inline void share_console() {}

// fork(): the child is the same call returning 0, with every socket.
inline bool is_child(int, char**) { return false; }
inline socket_t child_socket(char**) { return no_socket; }
inline void signal_parent() { ::kill(::getppid(), SIGUSR1); }

// Runs child_main(its end of a socket pair) in a child process.
template <class F>
child_process start_child(F child_main) {
    socket_t pair[2];
    if (!socket_pair(pair)) return {};
    const pid_t pid = ::fork();
    if (pid == 0) {
        close_socket(pair[0]);
        ::_exit(child_main(pair[1]));
    }
    close_socket(pair[1]);
    return {pid, pair[0]};
}

inline int reap(const child_process& c) {
    int status = -1;
    return ::waitpid(pid_t(c.pid), &status, 0) == c.pid && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
#endif

}  // namespace example
