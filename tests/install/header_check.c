/* The C header alone, as a consumer compiles it: strict C11 with warnings
 * as errors through a plain -I (the package.c_header tests in tests/CMakeLists.txt). */
#include <iowait/iowait.h>

int header_check(iowait_t* w, iowait_fd fd);
int header_check(iowait_t* w, iowait_fd fd) {
    iowait_event events[4];
    const int rc = iowait_watch(w, fd, IOWAIT_READ | IOWAIT_WRITE, 1, IOWAIT_ONESHOT);
    return rc ? rc : iowait_wait(w, events, sizeof events / sizeof events[0], -1);
}
