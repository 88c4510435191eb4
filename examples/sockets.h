/* The few socket calls the C example makes, the same on POSIX and on Windows
 * (Winsock): the C counterpart of sockets.hpp. Not part of the library. */
#ifndef IOWAIT_EXAMPLES_SOCKETS_H
#define IOWAIT_EXAMPLES_SOCKETS_H

#include <iowait/iowait.h>
#include <stddef.h>
#include <string.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>

static inline void close_socket(iowait_fd s) { closesocket((SOCKET)s); }
static inline long send_some(iowait_fd s, const void* p, size_t n) {
    return send((SOCKET)s, (const char*)p, (int)n, 0);
}
static inline long recv_some(iowait_fd s, void* p, size_t n) { return recv((SOCKET)s, (char*)p, (int)n, 0); }
/* A connected pair of stream sockets: Windows has no socketpair(), so a
 * loopback TCP connection and its accepted end. 0 on success. */
static inline int socket_pair(iowait_fd out[2]) {
    WSADATA data;
    struct sockaddr_in addr;
    int len = (int)sizeof addr;
    SOCKET listener, a, b;
    if (WSAStartup(MAKEWORD(2, 2), &data) != 0) return -1;
    listener = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (listener == INVALID_SOCKET) return -1;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(listener, 1) != 0 ||
        getsockname(listener, (struct sockaddr*)&addr, &len) != 0)
        return closesocket(listener), -1;
    a = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (a == INVALID_SOCKET || connect(a, (struct sockaddr*)&addr, sizeof addr) != 0) return closesocket(listener), -1;
    b = accept(listener, NULL, NULL);
    closesocket(listener);
    if (b == INVALID_SOCKET) return closesocket(a), -1;
    out[0] = (iowait_fd)a;
    out[1] = (iowait_fd)b;
    return 0;
}
#else
#include <sys/socket.h>
#include <unistd.h>

static inline void close_socket(iowait_fd s) { close(s); }
static inline long send_some(iowait_fd s, const void* p, size_t n) { return (long)send(s, p, n, 0); }
static inline long recv_some(iowait_fd s, void* p, size_t n) { return (long)recv(s, p, n, 0); }
static inline int socket_pair(iowait_fd out[2]) { return socketpair(AF_UNIX, SOCK_STREAM, 0, out); }
#endif

#endif
