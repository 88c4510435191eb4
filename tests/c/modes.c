/* The C API against the rules of modes, user data, closed fds and signals,
 * and its own rule for events beyond the caller's capacity. */
#define _POSIX_C_SOURCE 200809L /* socketpair, clock_gettime, nanosleep, sigaction under -std=c11 */
#include "check.h"

/* M2: oneshot reports once, then modify() re-arms. */
int test_oneshot(iowait_backend b) {
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
int test_edge(iowait_backend b) {
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
int test_user_data(iowait_backend b) {
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
int test_capacity(iowait_backend b) {
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

/* Pairs whose first end is readable: data sent, and seen by a probe (loopback
 * TCP on Windows takes a moment). 0 when all are. */
static int readable_pairs(iowait_backend b, iowait_fd p[][2], int n) {
    iowait_t* probe;
    iowait_event ev[8];
    int i, got = 0;
    OPEN(b, probe);
    for (i = 0; i < n; i++) {
        CHECK_CALL(make_pair(p[i]));
        CHECK_EQ(send_bytes(p[i][1], "x", 1), 1);
        CHECK_CALL(iowait_watch(probe, p[i][0], IOWAIT_READ, 0, IOWAIT_LEVEL));
    }
    for (i = 0; i < 100 && (got = iowait_wait(probe, ev, 8, PATIENCE)) < n; i++) sleep_ms(10);
    CHECK_EQ(got, n);
    iowait_destroy(probe);
    return 0;
}

#define LEFT 3
/* C1, C3 for the events beyond the caller's capacity: three readable fds,
 * one handed out, two kept for the next call; then those two are closed
 * (round 0), or closed and their numbers given to a new, idle file (round 1,
 * POSIX: dup2). No later call hands out either: the kept events are checked
 * as a fresh batch is. */
int test_leftovers(iowait_backend b) {
    iowait_t* w;
    iowait_fd p[LEFT][2];
    iowait_event ev[8];
    int i, k, n, round, first, rc;
#ifdef _WIN32
    const int rounds = 1;
#else
    const int rounds = 2;
    iowait_fd idle[2];
#endif
    OPEN(b, w);
    for (round = 0; round < rounds; round++) {
        if ((rc = readable_pairs(b, p, LEFT)) != 0) return rc;
        for (i = 0; i < LEFT; i++) CHECK_CALL(iowait_watch(w, p[i][0], IOWAIT_READ, (uint64_t)(10 + i), IOWAIT_LEVEL));
        CHECK_EQ(iowait_wait(w, ev, 1, PATIENCE), 1);
        for (first = 0; first < LEFT && p[first][0] != ev[0].fd; first++) {
        }
        CHECK(first < LEFT);
#ifndef _WIN32
        if (round == 1) CHECK_CALL(make_pair(idle));
#endif
        for (i = 0; i < LEFT; i++) {
            if (i == first) continue;
            close_fd(p[i][0]);
#ifndef _WIN32
            if (round == 1) CHECK_EQ(dup2(idle[0], p[i][0]), p[i][0]);
#endif
        }
        for (k = 0; k < 3; k++) {
            n = iowait_wait(w, ev, 1, 0);
            CHECK(n == 0 || n == 1);
            if (n == 1) { /* only the fd still open: level, unread */
                CHECK_EQ(ev[0].fd, p[first][0]);
                CHECK_EQ(ev[0].data, 10 + first);
            }
        }
        for (i = 0; i < LEFT; i++) CHECK_CALL(iowait_unwatch(w, p[i][0])); /* C2 */
        for (i = 0; i < LEFT; i++) {
#ifndef _WIN32
            if (round == 1 && i != first) close_fd(p[i][0]);
#endif
            if (i == first) close_fd(p[i][0]);
            close_fd(p[i][1]);
        }
#ifndef _WIN32
        if (round == 1) {
            close_fd(idle[0]);
            close_fd(idle[1]);
        }
#endif
    }
    iowait_destroy(w);
    return 0;
}

/* C1, C2: a fd closed without unwatch is not reported; unwatch still works. */
int test_closed(iowait_backend b) {
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
#include <stdatomic.h>

struct signaller {
    pthread_t target;
    int every_ms;
    atomic_int stop;
};
static void on_signal(int sig) { (void)sig; }
/* Again and again until stopped: one signal could land before the wait
   begins (on a loaded machine), and a wait that should end would not. */
static void signal_until_stopped(void* arg) {
    struct signaller* s = (struct signaller*)arg;
    while (!atomic_load(&s->stop)) {
        pthread_kill(s->target, SIGUSR1);
        sleep_ms(s->every_ms);
    }
}
#endif

/* T2: a signal does not end iowait_wait(); it ends iowait_wait_or_signal() with -EINTR. */
int test_signals(iowait_backend b) {
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
    sig.every_ms = 20;
    atomic_init(&sig.stop, 0);
    s.fn = signal_until_stopped;
    s.arg = &sig;
    CHECK_CALL(thread_run(&t, &s));
    CHECK_EQ(iowait_wait_or_signal(w, ev, 8, PATIENCE), -EINTR);
    atomic_store(&sig.stop, 1);
    thread_join(t);
    CHECK(strstr(iowait_last_error(), "wait_or_signal on") != NULL);

    /* A storm of signals through the whole wait: it still lasts its 200 ms. */
    sig.every_ms = 5;
    atomic_store(&sig.stop, 0);
    CHECK_CALL(thread_run(&t, &s));
    start = now_ns();
    CHECK_EQ(iowait_wait(w, ev, 8, 200 * MS), 0);
    CHECK(now_ns() - start >= 200 * MS);
    atomic_store(&sig.stop, 1);
    thread_join(t);
    iowait_destroy(w);
    return 0;
#endif
}
