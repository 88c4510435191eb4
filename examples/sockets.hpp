// The few socket calls the examples make, the same on POSIX and on Windows
// (Winsock): so that each example reads as one program, without #ifdefs.
// Not part of the library: a sketch of what an application brings itself.
#pragma once

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#endif
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <iowait/iowait.hpp>

namespace example {

// What watch() takes: an fd on POSIX, a SOCKET on Windows.
using socket_t = iowait::native_handle;
constexpr socket_t no_socket = socket_t(-1);  // INVALID_SOCKET on Windows

#ifdef _WIN32
// Winsock must be started before the first socket call; the library starts
// it for itself, but the examples make their sockets before any IOWait.
inline bool start_sockets() {
    WSADATA data;
    return ::WSAStartup(MAKEWORD(2, 2), &data) == 0;
}
inline int last_error() { return ::WSAGetLastError(); }
inline void close_socket(socket_t s) { ::closesocket(SOCKET(s)); }
inline void set_nonblocking(socket_t s) {
    u_long on = 1;
    ::ioctlsocket(SOCKET(s), FIONBIO, &on);
}
// Winsock counts bytes in int.
inline long send_some(socket_t s, const void* p, std::size_t n) {
    return ::send(SOCKET(s), static_cast<const char*>(p), int(n), 0);
}
inline long recv_some(socket_t s, void* p, std::size_t n) {
    return ::recv(SOCKET(s), static_cast<char*>(p), int(n), 0);
}
#else
inline bool start_sockets() { return true; }
inline int last_error() { return errno; }
inline void close_socket(socket_t s) { ::close(s); }
inline void set_nonblocking(socket_t s) { ::fcntl(s, F_SETFL, ::fcntl(s, F_GETFL) | O_NONBLOCK); }
inline long send_some(socket_t s, const void* p, std::size_t n) { return long(::send(s, p, n, 0)); }
inline long recv_some(socket_t s, void* p, std::size_t n) { return long(::recv(s, p, n, 0)); }
#endif

// Prints what failed and why, and gives 1: `return fail("connect");`.
inline int fail(const char* what) {
#ifdef _WIN32
    std::fprintf(stderr, "%s: Winsock error %d\n", what, last_error());
#else
    std::fprintf(stderr, "%s: %s\n", what, std::strerror(last_error()));
#endif
    return 1;
}

// A TCP socket listening on the loopback interface, on a port the system
// chooses; addr receives its address.
inline socket_t tcp_listener(sockaddr_in& addr) {
    const socket_t s = socket_t(::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP));
    std::memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    auto* sa = reinterpret_cast<sockaddr*>(&addr);
    if (s != no_socket &&
        (::bind(s, sa, sizeof addr) != 0 || ::listen(s, 128) != 0 || ::getsockname(s, sa, &len) != 0)) {
        close_socket(s);
        return no_socket;
    }
    return s;
}

inline socket_t tcp_connect(const sockaddr_in& addr) {
    const socket_t s = socket_t(::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP));
    if (s != no_socket && ::connect(s, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        close_socket(s);
        return no_socket;
    }
    return s;
}

// The next pending connection, non-blocking; no_socket when there is none.
inline socket_t accept_nonblocking(socket_t listener) {
    const socket_t s = socket_t(::accept(listener, nullptr, nullptr));
    if (s != no_socket) set_nonblocking(s);
    return s;
}

// A connected pair of stream sockets: socketpair() on POSIX; Windows has
// none, so there a loopback TCP connection and its accepted end.
inline bool socket_pair(socket_t (&out)[2]) {
#ifdef _WIN32
    sockaddr_in addr;
    const socket_t listener = tcp_listener(addr);
    if (listener == no_socket) return false;
    out[0] = tcp_connect(addr);
    out[1] = out[0] == no_socket ? no_socket : socket_t(::accept(listener, nullptr, nullptr));
    close_socket(listener);
    if (out[1] == no_socket && out[0] != no_socket) close_socket(out[0]);
    return out[1] != no_socket;
#else
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return false;
    out[0] = fds[0];
    out[1] = fds[1];
    return true;
#endif
}

}  // namespace example
