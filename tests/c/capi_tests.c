/* The C API's tests, in C: the main rules of docs/behaviour.md through
 * include/iowait/iowait.h, on one backend per run.
 *
 *   capi_tests TEST BACKEND    one test (ctest runs each as capi.TEST/BACKEND)
 *   capi_tests --list          the tests, one a line
 *   capi_tests                 every test on every available backend
 *
 * Exit status: 0 passed, 1 failed, 77 skipped (with the reason printed). */
#define _POSIX_C_SOURCE 200809L /* socketpair, clock_gettime, nanosleep, sigaction under -std=c11 */
#include <stdio.h>
#include <stdlib.h>

#include "portable.h"

#define SKIP 77
#define MS 1000000LL
#define PATIENCE (5000 * MS) /* a wait that expects an event: bounded, never hit when all is well */

#define CHECK(cond)                                                                                 \
    do {                                                                                            \
        if (!(cond)) {                                                                              \
            fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, __LINE__, #cond, \
                    iowait_last_error());                                                           \
            return 1;                                                                               \
        }                                                                                           \
    } while (0)
#define CHECK_EQ(a, b)                                                                                                \
    do {                                                                                                              \
        long long a_ = (long long)(a), b_ = (long long)(b);                                                           \
        if (a_ != b_) {                                                                                               \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld; last error: %s\n", __FILE__, __LINE__, #a, #b, a_, \
                    b_, iowait_last_error());                                                                         \
            return 1;                                                                                                 \
        }                                                                                                             \
    } while (0)
#define CHECK_CALL(call) CHECK_EQ(call, 0)
/* A handle on backend b, or skip the test with the reason. */
#define OPEN(b, w)                             \
    do {                                       \
        const int rc_ = open_backend(b, &(w)); \
        if (rc_) return rc_;                   \
    } while (0)

static int open_backend(iowait_backend b, iowait_t** w) {
    const int rc = iowait_create_backend(w, b);
    if (rc == IOWAIT_E_BACKEND_UNAVAILABLE) {
        printf("SKIP: %s is not available here: %s\n", iowait_backend_name(b), iowait_last_error());
        return SKIP;
    }
    if (rc != 0) {
        fprintf(stderr, "iowait_create_backend(%s): %d: %s\n", iowait_backend_name(b), rc, iowait_last_error());
        return 1;
    }
    return 0;
}

static int has_edge(iowait_backend b) {
    return b == IOWAIT_BACKEND_EPOLL || b == IOWAIT_BACKEND_IO_URING || b == IOWAIT_BACKEND_KQUEUE;
}

static int test_create(iowait_backend b) {
    iowait_t *w, *best;
    iowait_backend list[16], parsed;
    const char* forced = getenv("IOWAIT_BACKEND");
    int n, i, found = 0;
    OPEN(b, w);
    CHECK_EQ(iowait_get_backend(w), b);
    CHECK_CALL(iowait_backend_from_name(iowait_backend_name(b), &parsed));
    CHECK_EQ(parsed, b);
    n = iowait_available_backends(list, 16);
    CHECK(n >= 1 && n <= 16);
    CHECK_EQ(iowait_available_backends(NULL, 0), n); /* counting only */
    for (i = 0; i < n; i++) found |= list[i] == b;
    CHECK(found);
    CHECK_EQ(iowait_supports(w, IOWAIT_LEVEL), 1);
    CHECK_EQ(iowait_supports(w, IOWAIT_ONESHOT), 1);
    CHECK_EQ(iowait_supports(w, IOWAIT_EDGE), has_edge(b));
    /* The best backend is the first available, unless IOWAIT_BACKEND names one. */
    CHECK_CALL(iowait_create(&best));
    if (forced && *forced)
        CHECK(strcmp(iowait_backend_name(iowait_get_backend(best)), forced) == 0);
    else
        CHECK_EQ(iowait_get_backend(best), list[0]);
    iowait_destroy(best);
    iowait_destroy(w);
    iowait_destroy(NULL);
    return 0;
}

/* R1, R2, R4, R5, R10: readable after the peer writes, level, merged interests, unwatch. */
static int test_readiness(iowait_backend b) {
    iowait_t* w;
    iowait_fd p[2];
    iowait_event ev[8];
    OPEN(b, w);
    CHECK_CALL(make_pair(p));
    CHECK_CALL(iowait_watch(w, p[0], IOWAIT_READ, 7, IOWAIT_LEVEL));
    CHECK_EQ(iowait_wait(w, ev, 8, 0), 0);
    CHECK_EQ(send_bytes(p[1], "x", 1), 1);
    CHECK_EQ(iowait_wait(w, ev, 8, PATIENCE), 1);
    CHECK_EQ(ev[0].fd, p[0]);
    CHECK_EQ(ev[0].events, IOWAIT_READ);
    CHECK_EQ(ev[0].data, 7);
    CHECK_EQ(iowait_wait(w, ev, 8, PATIENCE), 1); /* level: again while readable */
    drain(p[0]);
    CHECK_EQ(iowait_wait(w, ev, 8, 0), 0);

    CHECK_CALL(iowait_modify(w, p[0], IOWAIT_READ | IOWAIT_WRITE, 8, IOWAIT_LEVEL));
    CHECK_EQ(send_bytes(p[1], "x", 1), 1);
    CHECK_EQ(iowait_wait(w, ev, 8, PATIENCE), 1);
    if (ev[0].events != (IOWAIT_READ | IOWAIT_WRITE)) { /* the data may still be on its way (Windows) */
        sleep_ms(100);
        CHECK_EQ(iowait_wait(w, ev, 8, PATIENCE), 1);
    }
    CHECK_EQ(ev[0].fd, p[0]);
    CHECK_EQ(ev[0].events, IOWAIT_READ | IOWAIT_WRITE);
    CHECK_EQ(ev[0].data, 8);

    CHECK_CALL(iowait_unwatch(w, p[0]));
    CHECK_EQ(iowait_wait(w, ev, 8, 0), 0); /* still readable, no longer watched */
    close_fd(p[0]);
    close_fd(p[1]);
    iowait_destroy(w);
    return 0;
}

/* R6: the peer closes: readable and hangup. */
static int test_hangup(iowait_backend b) {
    iowait_t* w;
    iowait_fd p[2];
    iowait_event ev[8];
    OPEN(b, w);
    CHECK_CALL(make_pair(p));
    CHECK_CALL(iowait_watch(w, p[0], IOWAIT_READ, 1, IOWAIT_LEVEL));
    close_fd(p[1]);
    CHECK_EQ(iowait_wait(w, ev, 8, PATIENCE), 1);
    CHECK_EQ(ev[0].fd, p[0]);
    CHECK_EQ(ev[0].events & (IOWAIT_READ | IOWAIT_HANGUP), IOWAIT_READ | IOWAIT_HANGUP);
    CHECK_CALL(iowait_unwatch(w, p[0]));
    close_fd(p[0]);
    iowait_destroy(w);
    return 0;
}

/* T1: never earlier than the timeout; 0 does not block. */
static int test_timeout(iowait_backend b) {
    iowait_t* w;
    iowait_fd p[2];
    iowait_event ev[8];
    int64_t start, took;
    OPEN(b, w);
    CHECK_CALL(make_pair(p));
    CHECK_CALL(iowait_watch(w, p[0], IOWAIT_READ, 0, IOWAIT_LEVEL));
    start = now_ns();
    CHECK_EQ(iowait_wait(w, ev, 8, 50 * MS), 0);
    took = now_ns() - start;
    CHECK(took >= 50 * MS);
    CHECK(took < PATIENCE);
    start = now_ns();
    CHECK_EQ(iowait_wait(w, ev, 8, 0), 0);
    CHECK(now_ns() - start < 1000 * MS);
    close_fd(p[0]);
    close_fd(p[1]);
    iowait_destroy(w);
    return 0;
}

static void notify_later(void* arg) {
    sleep_ms(50);
    iowait_notify((iowait_t*)arg);
}

/* N: notify wakes a wait, or the next one; repeated calls merge. */
static int test_notify(iowait_backend b) {
    iowait_t* w;
    iowait_event ev[8];
    int64_t start;
    thread_t t;
    struct thread_start s;
    OPEN(b, w);
    CHECK_CALL(iowait_notify(w));
    CHECK_CALL(iowait_notify(w));
    start = now_ns();
    CHECK_EQ(iowait_wait(w, ev, 8, -1), 0);
    CHECK(now_ns() - start < PATIENCE);
    start = now_ns();
    CHECK_EQ(iowait_wait(w, ev, 8, 50 * MS), 0); /* merged: no second wake left */
    CHECK(now_ns() - start >= 50 * MS);

    s.fn = notify_later;
    s.arg = w;
    CHECK_CALL(thread_run(&t, &s));
    CHECK_EQ(iowait_wait(w, ev, 8, -1), 0); /* no timeout: only the notify ends it */
    thread_join(t);
    iowait_destroy(w);
    return 0;
}

struct waiter {
    iowait_t* w;
    int result;
};

static void wait_in_thread(void* arg) {
    struct waiter* x = (struct waiter*)arg;
    iowait_event ev[4];
    /* Retried while the main thread's probing wait(0) holds the handle. */
    do x->result = iowait_wait(x->w, ev, 4, -1);
    while (x->result == IOWAIT_E_WAIT_IN_PROGRESS);
}

/* E1-E5 through the C API, the codes and the messages. */
static int test_errors(iowait_backend b) {
    iowait_t *w, *none = NULL;
    iowait_fd p[2], q[2];
    iowait_event ev[8];
    iowait_backend parsed;
    char expect[128];
    struct waiter x;
    thread_t t;
    struct thread_start s;
    int rc, tries;
    OPEN(b, w);
    CHECK_CALL(make_pair(p));
    CHECK_EQ(iowait_watch(w, (iowait_fd)-1, IOWAIT_READ, 0, IOWAIT_LEVEL), IOWAIT_E_BAD_FD);
    CHECK_EQ(iowait_watch(w, p[0], 0, 0, IOWAIT_LEVEL), IOWAIT_E_BAD_INTEREST);
    CHECK_EQ(iowait_watch(w, p[0], 4, 0, IOWAIT_LEVEL), IOWAIT_E_BAD_INTEREST);
    CHECK_EQ(iowait_watch(w, p[0], IOWAIT_READ, 0, (iowait_mode)9), IOWAIT_E_UNSUPPORTED_MODE);
    CHECK_EQ(iowait_modify(w, p[0], IOWAIT_READ, 0, IOWAIT_LEVEL), IOWAIT_E_NOT_WATCHED);
    CHECK_EQ(iowait_unwatch(w, p[0]), IOWAIT_E_NOT_WATCHED);
    CHECK(strcmp(iowait_strerror(IOWAIT_E_NOT_WATCHED), "not watched") == 0);
    snprintf(expect, sizeof expect, "iowait: unwatch(fd=%llu) on %s: not watched", (unsigned long long)p[0],
             iowait_backend_name(b));
    CHECK(strcmp(iowait_last_error(), expect) == 0);

    /* E1: a second watch fails and leaves the first as it was. */
    CHECK_CALL(iowait_watch(w, p[0], IOWAIT_READ, 1, IOWAIT_LEVEL));
    CHECK_EQ(iowait_watch(w, p[0], IOWAIT_WRITE, 2, IOWAIT_LEVEL), IOWAIT_E_ALREADY_WATCHED);
    CHECK(strstr(iowait_last_error(), "watch(fd=") != NULL);
    CHECK_EQ(send_bytes(p[1], "x", 1), 1);
    CHECK_EQ(iowait_wait(w, ev, 8, PATIENCE), 1);
    CHECK_EQ(ev[0].events, IOWAIT_READ);
    CHECK_EQ(ev[0].data, 1);

    /* E4: a fd that is not open; nothing recorded (a watch of the number later works). */
    CHECK_CALL(make_pair(q));
    close_fd(q[0]);
    CHECK_EQ(iowait_watch(w, q[0], IOWAIT_READ, 0, IOWAIT_LEVEL), NOT_OPEN_CODE);
    CHECK(strcmp(iowait_strerror(NOT_OPEN_CODE), strerror(-NOT_OPEN_CODE)) == 0);
    CHECK_EQ(iowait_unwatch(w, q[0]), IOWAIT_E_NOT_WATCHED);
    close_fd(q[1]);

    /* Misuse of the C API itself. */
    CHECK_EQ(iowait_watch(none, p[0], IOWAIT_READ, 0, IOWAIT_LEVEL), -EINVAL);
    CHECK_EQ(iowait_wait(w, NULL, 8, 0), -EINVAL);
    CHECK_EQ(iowait_wait(w, ev, 0, 0), -EINVAL);
    CHECK_EQ(iowait_create_backend(&none, (iowait_backend)42), IOWAIT_E_BACKEND_UNAVAILABLE);
    CHECK(none == NULL);
    CHECK_EQ(iowait_backend_from_name("nonesuch", &parsed), IOWAIT_E_UNKNOWN_BACKEND);
    CHECK(strcmp(iowait_strerror(IOWAIT_E_UNKNOWN_BACKEND), "IOWAIT_BACKEND names no available backend") == 0);
    CHECK(strncmp(iowait_strerror(12345), "not an iowait error code", 24) == 0);

    /* One waiter at a time. */
    drain(p[0]);
    x.w = w;
    x.result = 1;
    s.fn = wait_in_thread;
    s.arg = &x;
    CHECK_CALL(thread_run(&t, &s));
    for (tries = 0; tries < 500; tries++) {
        rc = iowait_wait(w, ev, 8, 0);
        if (rc == IOWAIT_E_WAIT_IN_PROGRESS) break;
        CHECK_EQ(rc, 0); /* the thread has not started its wait yet */
        sleep_ms(10);
    }
    CHECK_EQ(rc, IOWAIT_E_WAIT_IN_PROGRESS);
    CHECK(strstr(iowait_last_error(), "wait on") != NULL);
    CHECK_CALL(iowait_notify(w));
    thread_join(t);
    CHECK_EQ(x.result, 0);

    close_fd(p[0]);
    close_fd(p[1]);
    iowait_destroy(w);
    return 0;
}

/* M2: oneshot reports once, then modify() re-arms. */
static int test_oneshot(iowait_backend b) {
    iowait_t* w;
    iowait_fd p[2];
    iowait_event ev[8];
    OPEN(b, w);
    CHECK_CALL(make_pair(p));
    CHECK_CALL(iowait_watch(w, p[0], IOWAIT_READ, 3, IOWAIT_ONESHOT));
    CHECK_EQ(send_bytes(p[1], "x", 1), 1);
    CHECK_EQ(iowait_wait(w, ev, 8, PATIENCE), 1);
    CHECK_EQ(ev[0].data, 3);
    CHECK_EQ(iowait_wait(w, ev, 8, 50 * MS), 0); /* still readable, but disarmed */
    CHECK_CALL(iowait_modify(w, p[0], IOWAIT_READ, 4, IOWAIT_ONESHOT));
    CHECK_EQ(iowait_wait(w, ev, 8, PATIENCE), 1);
    CHECK_EQ(ev[0].data, 4);
    CHECK_EQ(iowait_wait(w, ev, 8, 0), 0);
    close_fd(p[0]);
    close_fd(p[1]);
    iowait_destroy(w);
    return 0;
}

/* M4: edge where the backend has it, refused where it has not. */
static int test_edge(iowait_backend b) {
    iowait_t* w;
    iowait_fd p[2];
    iowait_event ev[8];
    OPEN(b, w);
    CHECK_CALL(make_pair(p));
    if (!has_edge(b)) {
        CHECK_EQ(iowait_watch(w, p[0], IOWAIT_READ, 0, IOWAIT_EDGE), IOWAIT_E_UNSUPPORTED_MODE);
        CHECK(strstr(iowait_last_error(), "cannot honour") != NULL);
    } else {
        CHECK_CALL(iowait_watch(w, p[0], IOWAIT_READ, 5, IOWAIT_EDGE));
        CHECK_EQ(send_bytes(p[1], "x", 1), 1);
        CHECK_EQ(iowait_wait(w, ev, 8, PATIENCE), 1);
        CHECK_EQ(iowait_wait(w, ev, 8, 50 * MS), 0); /* still readable, nothing new */
        CHECK_EQ(send_bytes(p[1], "y", 1), 1);
        CHECK_EQ(iowait_wait(w, ev, 8, PATIENCE), 1);
        CHECK_EQ(ev[0].data, 5);
    }
    close_fd(p[0]);
    close_fd(p[1]);
    iowait_destroy(w);
    return 0;
}

/* R10: the whole 64 bits, and a pointer, come back; modify() changes them. */
static int test_user_data(iowait_backend b) {
    iowait_t* w;
    iowait_fd p[2];
    iowait_event ev[8];
    int i, target = 42, seen = 0;
    const uint64_t big = 0xFEEDFACECAFEBEEFull;
    OPEN(b, w);
    CHECK_CALL(make_pair(p));
    CHECK_CALL(iowait_watch(w, p[0], IOWAIT_READ, big, IOWAIT_LEVEL));
    CHECK_CALL(iowait_watch(w, p[1], IOWAIT_WRITE, (uint64_t)(uintptr_t)&target, IOWAIT_LEVEL));
    CHECK_EQ(send_bytes(p[1], "x", 1), 1);
    for (i = 0; i < 50 && seen != 3; i++) {
        const int n = iowait_wait(w, ev, 8, PATIENCE);
        int j;
        CHECK(n >= 1 && n <= 2);
        for (j = 0; j < n; j++) {
            if (ev[j].fd == p[0]) {
                CHECK(ev[j].data == big);
                seen |= 1;
            } else {
                CHECK_EQ(ev[j].fd, p[1]);
                CHECK_EQ(*(int*)(uintptr_t)ev[j].data, 42);
                seen |= 2;
            }
        }
    }
    CHECK_EQ(seen, 3);
    CHECK_CALL(iowait_unwatch(w, p[1]));
    CHECK_CALL(iowait_modify(w, p[0], IOWAIT_READ, 5, IOWAIT_LEVEL));
    CHECK_EQ(iowait_wait(w, ev, 8, PATIENCE), 1);
    CHECK_EQ(ev[0].data, 5);
    close_fd(p[0]);
    close_fd(p[1]);
    iowait_destroy(w);
    return 0;
}

#define PAIRS 5

/* More ready fds than the array holds: the rest comes first in the next
 * waits, once each, and unwatch()/modify() after the wait edit the rest.
 * Oneshot watches, so that the rest is the only place those events are. */
static int test_capacity(iowait_backend b) {
    iowait_t *w, *probe;
    iowait_fd p[PAIRS][2];
    iowait_event ev[8];
    int i, n, total = 0, count[PAIRS] = {0};
    int unwatched = -1, moved = -1, to_write = -1, kept = -1;
    OPEN(b, w);
    OPEN(b, probe);
    for (i = 0; i < PAIRS; i++) {
        CHECK_CALL(make_pair(p[i]));
        CHECK_EQ(send_bytes(p[i][1], "x", 1), 1);
        CHECK_CALL(iowait_watch(probe, p[i][0], IOWAIT_READ, 0, IOWAIT_LEVEL));
    }
    /* All readable before the test starts (loopback TCP on Windows takes a moment). */
    for (i = 0; i < 100 && (n = iowait_wait(probe, ev, 8, PATIENCE)) < PAIRS; i++) sleep_ms(10);
    CHECK_EQ(n, PAIRS);
    iowait_destroy(probe);

    for (i = 0; i < PAIRS; i++) CHECK_CALL(iowait_watch(w, p[i][0], IOWAIT_READ, (uint64_t)(100 + i), IOWAIT_ONESHOT));
    CHECK_EQ(iowait_wait(w, ev, 2, PATIENCE), 2);
    CHECK_EQ(iowait_wait(w, ev + 2, 2, 0), 2);
    CHECK_EQ(iowait_wait(w, ev + 4, 2, 0), 1);
    CHECK_EQ(iowait_wait(w, ev, 8, 0), 0); /* all handed out once, all disarmed */
    for (i = 0; i < PAIRS; i++) {
        CHECK(ev[i].data >= 100 && ev[i].data < 100 + PAIRS);
        CHECK_EQ(ev[i].fd, p[ev[i].data - 100][0]);
        count[ev[i].data - 100]++;
    }
    for (i = 0; i < PAIRS; i++) CHECK_EQ(count[i], 1);

    /* Re-armed; one handed out, four in the rest. */
    for (i = 0; i < PAIRS; i++) CHECK_CALL(iowait_modify(w, p[i][0], IOWAIT_READ, (uint64_t)(200 + i), IOWAIT_ONESHOT));
    CHECK_EQ(iowait_wait(w, ev, 1, PATIENCE), 1);
    for (i = 0; i < PAIRS; i++) {
        if (p[i][0] == ev[0].fd) continue;
        if (unwatched < 0)
            unwatched = i;
        else if (moved < 0)
            moved = i;
        else if (to_write < 0)
            to_write = i;
        else
            kept = i;
    }
    CHECK_CALL(iowait_unwatch(w, p[unwatched][0]));
    CHECK_CALL(iowait_modify(w, p[moved][0], IOWAIT_READ, 1000, IOWAIT_ONESHOT));
    CHECK_CALL(iowait_modify(w, p[to_write][0], IOWAIT_WRITE, 2000, IOWAIT_ONESHOT));
    n = iowait_wait(w, ev, 8, 0);
    for (i = 0; i < n; i++) {
        CHECK(ev[i].fd != p[unwatched][0]);
        CHECK(ev[i].fd != p[to_write][0]); /* its read event was masked out of the rest */
        if (ev[i].fd == p[moved][0]) CHECK_EQ(ev[i].data, 1000);
        if (ev[i].fd == p[kept][0]) CHECK_EQ(ev[i].data, 200 + kept);
        CHECK_EQ(ev[i].events, IOWAIT_READ);
    }
#ifndef _WIN32
    /* The POSIX backends report all five in one batch, so the rest held both. */
    CHECK_EQ(n, 2);
#endif
    for (i = 0; i < 20 && total < 2; i++) { /* the re-armed ones, from the kernel */
        const int m = iowait_wait(w, ev, 8, 100 * MS);
        int j;
        CHECK(m >= 0);
        for (j = 0; j < m; j++) {
            CHECK(ev[j].fd != p[unwatched][0]);
            if (ev[j].fd == p[to_write][0]) {
                CHECK_EQ(ev[j].events, IOWAIT_WRITE);
                CHECK_EQ(ev[j].data, 2000);
                total++;
            } else if (ev[j].fd == p[moved][0]) {
                CHECK_EQ(ev[j].data, 1000);
                total++;
            }
        }
    }
    CHECK_EQ(total, 2);
    for (i = 0; i < PAIRS; i++) {
        close_fd(p[i][0]);
        close_fd(p[i][1]);
    }
    iowait_destroy(w);
    return 0;
}

/* C1, C2: a fd closed without unwatch is not reported; unwatch still works. */
static int test_closed(iowait_backend b) {
    iowait_t* w;
    iowait_fd p[2];
    iowait_event ev[8];
    OPEN(b, w);
    CHECK_CALL(make_pair(p));
    CHECK_CALL(iowait_watch(w, p[0], IOWAIT_READ, 0, IOWAIT_LEVEL));
    CHECK_EQ(send_bytes(p[1], "x", 1), 1);
    CHECK_EQ(iowait_wait(w, ev, 8, PATIENCE), 1);
    close_fd(p[0]);
    CHECK_EQ(iowait_wait(w, ev, 8, 50 * MS), 0);
    CHECK_CALL(iowait_unwatch(w, p[0]));
    close_fd(p[1]);
    iowait_destroy(w);
    return 0;
}

#ifndef _WIN32
#include <signal.h>

struct signaller {
    pthread_t target;
    int delay_ms;
};
static void on_signal(int sig) { (void)sig; }
static void signal_later(void* arg) {
    struct signaller* s = (struct signaller*)arg;
    sleep_ms(s->delay_ms);
    pthread_kill(s->target, SIGUSR1);
}
#endif

/* T2: a signal does not end iowait_wait(); it ends iowait_wait_or_signal() with -EINTR. */
static int test_signals(iowait_backend b) {
#ifdef _WIN32
    (void)b;
    printf("SKIP: Windows has no signals that interrupt a wait\n");
    return SKIP;
#else
    iowait_t* w;
    iowait_event ev[8];
    struct sigaction sa;
    struct signaller sig;
    struct thread_start s;
    thread_t t;
    int64_t start;
    OPEN(b, w);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: the kernel wait sees EINTR */
    sigemptyset(&sa.sa_mask);
    CHECK_CALL(sigaction(SIGUSR1, &sa, NULL));
    sig.target = pthread_self();
    sig.delay_ms = 50;
    s.fn = signal_later;
    s.arg = &sig;
    CHECK_CALL(thread_run(&t, &s));
    CHECK_EQ(iowait_wait_or_signal(w, ev, 8, PATIENCE), -EINTR);
    thread_join(t);
    CHECK(strstr(iowait_last_error(), "wait_or_signal on") != NULL);

    sig.delay_ms = 20;
    CHECK_CALL(thread_run(&t, &s));
    start = now_ns();
    CHECK_EQ(iowait_wait(w, ev, 8, 200 * MS), 0);
    CHECK(now_ns() - start >= 200 * MS);
    thread_join(t);
    iowait_destroy(w);
    return 0;
#endif
}

typedef int (*test_fn)(iowait_backend);
/* One line per test: tests/c/CMakeLists.txt reads the names from here. */
#define TEST_ENTRY(name) \
    { #name, test_##name }
static const struct {
    const char* name;
    test_fn fn;
} tests[] = {
    TEST_ENTRY(create),    TEST_ENTRY(readiness), TEST_ENTRY(hangup),  TEST_ENTRY(timeout),
    TEST_ENTRY(notify),    TEST_ENTRY(errors),    TEST_ENTRY(oneshot), TEST_ENTRY(edge),
    TEST_ENTRY(user_data), TEST_ENTRY(capacity),  TEST_ENTRY(closed),  TEST_ENTRY(signals),
};
#define NTESTS (sizeof tests / sizeof tests[0])

int main(int argc, char** argv) {
    size_t i;
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (i = 0; i < NTESTS; i++) puts(tests[i].name);
        return 0;
    }
    if (argc == 3) {
        iowait_backend b;
        if (iowait_backend_from_name(argv[2], &b) != 0) return fprintf(stderr, "no backend %s\n", argv[2]), 1;
        for (i = 0; i < NTESTS; i++)
            if (strcmp(tests[i].name, argv[1]) == 0) {
                const int rc = tests[i].fn(b);
                if (rc == 0) printf("capi.%s/%s: OK\n", argv[1], argv[2]);
                return rc;
            }
        return fprintf(stderr, "no test %s\n", argv[1]), 1;
    }
    if (argc == 1) {
        iowait_backend list[16];
        const int n = iowait_available_backends(list, 16);
        int j, failed = 0;
        for (j = 0; j < n && j < 16; j++)
            for (i = 0; i < NTESTS; i++) {
                const int rc = tests[i].fn(list[j]);
                printf("capi.%s/%s: %s\n", tests[i].name, iowait_backend_name(list[j]),
                       rc == 0      ? "OK"
                       : rc == SKIP ? "skipped"
                                    : "FAILED");
                failed |= rc != 0 && rc != SKIP;
            }
        return failed;
    }
    fprintf(stderr, "usage: %s [--list | TEST BACKEND]\n", argv[0]);
    return 2;
}
