/* A C program outside the project, built against the installed library
 * through include/iowait/iowait.h. */
#define _POSIX_C_SOURCE 200809L /* socketpair under -std=c11 */
#include <iowait/iowait.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
    int fds[2];
    iowait_t* w;
    iowait_event events[4];
    int n;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return 1;
    if (iowait_create(&w) != 0 || iowait_watch(w, fds[0], IOWAIT_READ, 123, IOWAIT_LEVEL) != 0)
        return fprintf(stderr, "%s\n", iowait_last_error()), 1;
    if (write(fds[1], "x", 1) != 1) return 1;
    n = iowait_wait(w, events, 4, 5000000000LL);
    if (n != 1 || events[0].data != 123 || !(events[0].events & IOWAIT_READ)) return puts("C consumer FAILED"), 1;
    printf("C consumer OK on %s\n", iowait_backend_name(iowait_get_backend(w)));
    iowait_destroy(w);
    return 0;
}
