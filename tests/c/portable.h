/* What the C tests need from the system, on POSIX and on Windows: a
 * connected socket pair, sending and draining, a monotonic clock, sleeping,
 * a thread. */
#ifndef IOWAIT_TESTS_C_PORTABLE_H
#define IOWAIT_TESTS_C_PORTABLE_H

#include <errno.h>
#include <iowait/iowait.h>
#include <stdint.h>
#include <string.h>

#ifdef _WIN32
/* winsock2.h first: windows.h would otherwise bring the old winsock.h. */
#include <winsock2.h>
#include <ws2tcpip.h>

#include <windows.h>
#else
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#endif

#ifdef _WIN32
/* A loopback TCP connection: Windows has no socketpair(). */
static inline int make_pair(iowait_fd out[2]) {
    WSADATA data;
    struct sockaddr_in addr;
    int len = (int)sizeof addr;
    SOCKET listener, a, b;
    u_long nonblocking = 1;
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
    ioctlsocket(a, FIONBIO, &nonblocking);
    ioctlsocket(b, FIONBIO, &nonblocking);
    out[0] = (iowait_fd)a;
    out[1] = (iowait_fd)b;
    return 0;
}
static inline void close_fd(iowait_fd fd) { closesocket((SOCKET)fd); }
static inline int send_bytes(iowait_fd fd, const char* s, int n) { return send((SOCKET)fd, s, n, 0); }
static inline int recv_bytes(iowait_fd fd, char* buf, int n) { return recv((SOCKET)fd, buf, n, 0); }
static inline int64_t now_ns(void) {
    LARGE_INTEGER t, f;
    QueryPerformanceCounter(&t);
    QueryPerformanceFrequency(&f);
    return (int64_t)((double)t.QuadPart * 1e9 / (double)f.QuadPart);
}
static inline void sleep_ms(int ms) { Sleep((DWORD)ms); }
typedef HANDLE thread_t;
typedef void (*thread_fn)(void*);
struct thread_start {
    thread_fn fn;
    void* arg;
};
static inline DWORD WINAPI thread_trampoline(LPVOID p) {
    struct thread_start* s = (struct thread_start*)p;
    s->fn(s->arg);
    return 0;
}
/* s must outlive the thread. */
static inline int thread_run(thread_t* t, struct thread_start* s) {
    *t = CreateThread(NULL, 0, thread_trampoline, s, 0, NULL);
    return *t ? 0 : -1;
}
static inline void thread_join(thread_t t) {
    WaitForSingleObject(t, INFINITE);
    CloseHandle(t);
}
/* The code for a handle that is not open (see iowait_watch). */
#define NOT_OPEN_CODE (-EBADF)
#else
static inline int make_pair(iowait_fd out[2]) {
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, out) != 0) return -1;
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(out[1], F_SETFL, O_NONBLOCK);
    return 0;
}
static inline void close_fd(iowait_fd fd) { close(fd); }
static inline int send_bytes(iowait_fd fd, const char* s, int n) { return (int)send(fd, s, (size_t)n, 0); }
static inline int recv_bytes(iowait_fd fd, char* buf, int n) { return (int)recv(fd, buf, (size_t)n, 0); }
static inline int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
static inline void sleep_ms(int ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
typedef pthread_t thread_t;
typedef void (*thread_fn)(void*);
struct thread_start {
    thread_fn fn;
    void* arg;
};
static inline void* thread_trampoline(void* p) {
    struct thread_start* s = (struct thread_start*)p;
    s->fn(s->arg);
    return NULL;
}
static inline int thread_run(thread_t* t, struct thread_start* s) {
    return pthread_create(t, NULL, thread_trampoline, s);
}
static inline void thread_join(thread_t t) { pthread_join(t, NULL); }
#define NOT_OPEN_CODE (-EBADF)
#endif

/* Reads until the socket has nothing left. */
static inline void drain(iowait_fd fd) {
    char buf[256];
    while (recv_bytes(fd, buf, (int)sizeof buf) > 0) {
    }
}

#endif
