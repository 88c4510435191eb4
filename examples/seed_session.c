/* The session from the original Python module's page, in C through the C
 * API: a socket pair, a read watch, "this is a test" sent, the read event,
 * recv, and wait(0) empty. (examples/seed_session.cpp is the same in C++.)
 * A Unix socket pair on POSIX, a loopback TCP pair on Windows (sockets.h). */
#define _POSIX_C_SOURCE 200809L /* socketpair under -std=c11 */
#include <iowait/iowait.h>
#include <stdio.h>
#include <string.h>

#include "sockets.h"

static int fail(const char* what) {
    fprintf(stderr, "%s: %s\n", what, iowait_last_error());
    return 1;
}

int main(void) {
    iowait_fd pair[2], a, b;
    iowait_t* waitobj;
    iowait_event events[16];
    const char msg[] = "this is a test";
    const long len = (long)strlen(msg);
    char buf[64] = {0};
    int n, i;

    if (socket_pair(pair) != 0) return puts("FAIL: socket pair"), 1;
    a = pair[0];
    b = pair[1];

    if (iowait_create(&waitobj) != 0) return fail("create"); /* the best backend here, or IOWAIT_BACKEND's */
    printf("backend: %s\n", iowait_backend_name(iowait_get_backend(waitobj)));
    if (iowait_watch(waitobj, a, IOWAIT_READ, 0, IOWAIT_LEVEL) != 0) return fail("watch");

    if (send_some(b, msg, strlen(msg)) != len) return puts("FAIL: send"), 1;

    n = iowait_wait(waitobj, events, 16, -1); /* no timeout */
    if (n < 0) return fail("wait");
    for (i = 0; i < n; i++)
        printf("IOEvent(fd=%lld, read=%s, write=%s)\n", (long long)events[i].fd,
               events[i].events & IOWAIT_READ ? "True" : "False", events[i].events & IOWAIT_WRITE ? "True" : "False");
    if (n != 1 || events[0].fd != a || !(events[0].events & IOWAIT_READ))
        return puts("FAIL: expected a read event on a"), 1;

    if (recv_some(a, buf, sizeof buf - 1) != len) return puts("FAIL: recv did not return the whole message"), 1;
    printf("recv: '%s'\n", buf);

    n = iowait_wait(waitobj, events, 16, 0);
    printf("wait(0): %d events\n", n);
    if (n != 0) return puts("FAIL: wait(0) should be empty"), 1;
    iowait_unwatch(waitobj, a);
    iowait_destroy(waitobj);
    close_socket(a);
    close_socket(b);
    puts("OK");
    return 0;
}
