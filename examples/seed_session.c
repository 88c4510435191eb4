/* The session from the original Python module's page, in C through the C
 * API: a socket pair, a read watch, "this is a test" sent, the read event,
 * recv, and wait(0) empty. (examples/seed_session.cpp is the same in C++.) */
#define _POSIX_C_SOURCE 200809L /* socketpair under -std=c11 */
#include <iowait/iowait.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

int main(void) {
    int pair[2], a, b, n;
    iowait_t* waitobj;
    iowait_event events[16];
    const char msg[] = "this is a test";
    char buf[64] = {0};
    ssize_t got;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) return perror("socketpair"), 1;
    a = pair[0];
    b = pair[1];

    /* The best backend here, or IOWAIT_BACKEND's. */
    if (iowait_create(&waitobj) != 0) return fprintf(stderr, "%s\n", iowait_last_error()), 1;
    printf("backend: %s\n", iowait_backend_name(iowait_get_backend(waitobj)));
    if (iowait_watch(waitobj, a, IOWAIT_READ, 0, IOWAIT_LEVEL) != 0)
        return fprintf(stderr, "%s\n", iowait_last_error()), 1;

    if (send(b, msg, strlen(msg), 0) != (ssize_t)strlen(msg)) return perror("send"), 1;

    n = iowait_wait(waitobj, events, 16, -1); /* no timeout */
    if (n < 0) return fprintf(stderr, "%s\n", iowait_last_error()), 1;
    for (int i = 0; i < n; i++)
        printf("IOEvent(fd=%d, read=%s, write=%s)\n", events[i].fd, events[i].events & IOWAIT_READ ? "True" : "False",
               events[i].events & IOWAIT_WRITE ? "True" : "False");
    if (n != 1 || events[0].fd != a || !(events[0].events & IOWAIT_READ))
        return puts("FAIL: expected a read event on a"), 1;

    got = recv(a, buf, sizeof buf - 1, 0);
    printf("recv: '%s'\n", buf);
    if (got != (ssize_t)strlen(msg)) return 1;

    n = iowait_wait(waitobj, events, 16, 0);
    printf("wait(0): %d events\n", n);
    if (n != 0) return puts("FAIL: wait(0) should be empty"), 1;
    iowait_destroy(waitobj);
    close(a);
    close(b);
    puts("OK");
    return 0;
}
