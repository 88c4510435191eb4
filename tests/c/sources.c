/* The C API's sources (docs/behaviour.md, "Sources"): a timer on every
 * backend, a child's exit and a signal where the platform has them. */
#define _POSIX_C_SOURCE 200809L /* kill, fork, waitpid under -std=c11 */
#include "check.h"

#include <errno.h>
#include <signal.h>
#ifdef _WIN32
#include <process.h> /* _getpid */
#else
#include <sys/wait.h>
#include <unistd.h>
#endif

/* T5: a timer is reported when due, never earlier, with its data; unwatch
 * takes its id. */
int test_timer_source(iowait_backend b) {
    iowait_t* w;
    iowait_fd id;
    iowait_event ev[8];
    int64_t start;
    OPEN(b, w);
    start = now_ns();
    CHECK_CALL(iowait_watch_timer(w, 30 * MS, 0, 77, IOWAIT_LEVEL, &id));
    CHECK_EQ(iowait_wait(w, ev, 8, PATIENCE), 1);
    CHECK(now_ns() - start >= 30 * MS);
    CHECK_EQ(ev[0].fd, id);
    CHECK_EQ(ev[0].data, 77);
    CHECK_EQ(ev[0].events, IOWAIT_READ);
    CHECK_CALL(iowait_unwatch(w, id));
    CHECK_EQ(iowait_unwatch(w, id), IOWAIT_E_NOT_WATCHED);
    CHECK_EQ(iowait_watch_timer(w, 0, 0, 0, IOWAIT_LEVEL, NULL), -EINVAL);
    iowait_destroy(w);
    return 0;
}

/* K1, G1: a child's exit and a signal, beside each other (POSIX). Windows
 * (G6, K4; their delivery is tested in C++): SIGINT is watched, SIGTERM is no
 * source; this process, running, is watched and not reported. */
int test_process_and_signal_sources(iowait_backend b) {
#ifdef _WIN32
    iowait_t* w;
    iowait_fd signal_id, process_id, id;
    iowait_event ev[8];
    OPEN(b, w);
    CHECK_EQ(iowait_watch_signal(w, SIGTERM, 0, IOWAIT_LEVEL, &id), IOWAIT_E_UNSUPPORTED_SOURCE);
    CHECK_CALL(iowait_watch_signal(w, SIGINT, 1, IOWAIT_LEVEL, &signal_id));
    CHECK_CALL(iowait_watch_process(w, _getpid(), 2, &process_id));
    CHECK_EQ(iowait_watch_process(w, 1, 0, &id), -ESRCH);
    CHECK_EQ(iowait_wait(w, ev, 8, 20 * MS), 0);
    CHECK_CALL(iowait_unwatch(w, process_id));
    CHECK_CALL(iowait_unwatch(w, signal_id));
    iowait_destroy(w);
    return 0;
#else
    iowait_t* w;
    iowait_fd child_id, signal_id;
    iowait_event ev[8];
    pid_t pid;
    int status = 0;
    OPEN(b, w);
    CHECK_CALL(iowait_watch_signal(w, SIGUSR2, 5, IOWAIT_LEVEL, &signal_id));
    pid = fork();
    if (pid == 0) _exit(3);
    CHECK(pid > 0);
    CHECK_CALL(iowait_watch_process(w, pid, 6, &child_id));
    CHECK_EQ(iowait_wait(w, ev, 8, PATIENCE), 1);
    CHECK_EQ(ev[0].fd, child_id);
    CHECK_EQ(ev[0].data, 6);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
    CHECK_CALL(kill(getpid(), SIGUSR2));
    CHECK_EQ(iowait_wait(w, ev, 8, PATIENCE), 1);
    CHECK_EQ(ev[0].fd, signal_id);
    CHECK_EQ(ev[0].data, 5);
    CHECK_CALL(iowait_unwatch(w, signal_id));
    CHECK_CALL(iowait_unwatch(w, child_id));
    iowait_destroy(w);
    return 0;
#endif
}

/* F1: in a forked child every call on an inherited handle fails with
 * IOWAIT_E_FORKED and a message that says so, iowait_notify() included. */
int test_forked_child(iowait_backend b) {
#ifdef _WIN32
    (void)b;
    printf("SKIP: Windows has no fork()\n");
    return SKIP;
#else
    iowait_t* w;
    iowait_fd p[2];
    iowait_event ev[8];
    pid_t pid;
    int status = 0;
    OPEN(b, w);
    CHECK_CALL(make_pair(p));
    CHECK_CALL(iowait_watch(w, p[0], IOWAIT_READ, 0, IOWAIT_LEVEL));
    fflush(NULL);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int failed = 0;
        failed |= iowait_notify(w) != IOWAIT_E_FORKED || !strstr(iowait_last_error(), "notify on") ||
                  !strstr(iowait_last_error(), "fork");
        failed |= (iowait_wait(w, ev, 8, 0) != IOWAIT_E_FORKED) << 1;
        failed |= (iowait_modify(w, p[0], IOWAIT_WRITE, 0, IOWAIT_LEVEL) != IOWAIT_E_FORKED) << 2;
        _exit(failed);
    }
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0); /* bits: notify, wait, modify */
    CHECK_CALL(iowait_notify(w));     /* the parent's handle works */
    CHECK_EQ(iowait_wait(w, ev, 8, PATIENCE), 0);
    close_fd(p[0]);
    close_fd(p[1]);
    iowait_destroy(w);
    return 0;
#endif
}

/* W11-W13: Windows handles beside sockets through the C API: an event and an
 * anonymous pipe's read end, as iowait_fd values like a SOCKET. */
int test_windows_handles(iowait_backend b) {
#ifdef _WIN32
    iowait_t* w;
    iowait_event ev[8];
    HANDLE event = CreateEventW(NULL, TRUE, FALSE, NULL);
    HANDLE r = NULL, wr = NULL;
    DWORD n = 0;
    char byte = 0;
    CHECK(event != NULL);
    CHECK(CreatePipe(&r, &wr, NULL, 0));
    OPEN(b, w);
    CHECK_CALL(iowait_watch(w, (iowait_fd)event, IOWAIT_READ, 1, IOWAIT_LEVEL));
    CHECK_CALL(iowait_watch(w, (iowait_fd)r, IOWAIT_READ, 2, IOWAIT_LEVEL));
    CHECK_EQ(iowait_watch(w, (iowait_fd)event, IOWAIT_WRITE, 3, IOWAIT_LEVEL), IOWAIT_E_ALREADY_WATCHED);
    CHECK_EQ(iowait_wait(w, ev, 8, 20 * MS), 0);
    CHECK(SetEvent(event));
    CHECK_EQ(iowait_wait(w, ev, 8, PATIENCE), 1);
    CHECK_EQ(ev[0].fd, (iowait_fd)event);
    CHECK_EQ(ev[0].events, IOWAIT_READ);
    CHECK_EQ(ev[0].data, 1);
    CHECK_CALL(iowait_unwatch(w, (iowait_fd)event));
    CHECK(WriteFile(wr, "x", 1, &n, NULL));
    CHECK_EQ(iowait_wait(w, ev, 8, PATIENCE), 1);
    CHECK_EQ(ev[0].fd, (iowait_fd)r);
    CHECK_EQ(ev[0].data, 2);
    CHECK(ReadFile(r, &byte, 1, &n, NULL));
    CloseHandle(wr);
    CHECK_EQ(iowait_wait(w, ev, 8, PATIENCE), 1);
    CHECK_EQ(ev[0].events, IOWAIT_READ | IOWAIT_HANGUP);
    CHECK_CALL(iowait_unwatch(w, (iowait_fd)r));
    iowait_destroy(w);
    CloseHandle(r);
    CloseHandle(event);
    return 0;
#else
    (void)b;
    printf("SKIP: Windows handles: Windows only\n");
    return SKIP;
#endif
}
