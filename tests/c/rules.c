/* The C API against the rules of readiness, timeouts, notify and errors
 * (docs/behaviour.md), through include/iowait/iowait.h. */
#define _POSIX_C_SOURCE 200809L /* socketpair, clock_gettime, nanosleep, sigaction under -std=c11 */
#include <stdatomic.h>

#include "check.h"

int test_create(iowait_backend b) {
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
int test_readiness(iowait_backend b) {
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
int test_hangup(iowait_backend b) {
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
int test_timeout(iowait_backend b) {
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
int test_notify(iowait_backend b) {
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
    x->result = iowait_wait(x->w, ev, 4, -1);
}

/* K3: a thread's rest is its own. Two ready fds, room for one: the second
 * waits for this thread, while the main thread's wait finds nothing. */
struct rest_owner {
    iowait_t* w;
    atomic_int step; /* 1: first wait done; 2: the main thread's wait done */
    int first, second;
};

static void wait_twice(void* arg) {
    struct rest_owner* x = (struct rest_owner*)arg;
    iowait_event ev[4];
    int tries;
    x->first = iowait_wait(x->w, ev, 1, PATIENCE);
    atomic_store(&x->step, 1);
    for (tries = 0; tries < 500 && atomic_load(&x->step) != 2; tries++) sleep_ms(10);
    x->second = iowait_wait(x->w, ev, 4, 0);
}

/* E1-E5 through the C API, the codes and the messages. */
int test_errors(iowait_backend b) {
    iowait_t *w, *none = NULL;
    iowait_fd p[2], q[2];
    iowait_event ev[8];
    iowait_backend parsed;
    char expect[128];
    struct waiter x;
    struct rest_owner owner;
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
    CHECK_EQ(iowait_get_backend(NULL), IOWAIT_BACKEND_NONE);
    CHECK(strcmp(iowait_backend_name(IOWAIT_BACKEND_NONE), "unknown") == 0);
    CHECK(strcmp(iowait_backend_name((iowait_backend)42), "unknown") == 0);
    CHECK_EQ(iowait_supports(NULL, IOWAIT_LEVEL), 0);
    CHECK(strcmp(iowait_strerror(IOWAIT_E_UNKNOWN_BACKEND), "IOWAIT_BACKEND names no available backend") == 0);
    CHECK(strncmp(iowait_strerror(12345), "not an iowait error code", 24) == 0);

    /* K3: several threads wait at once; notify() ends every wait. */
    drain(p[0]);
    x.w = w;
    x.result = 1;
    s.fn = wait_in_thread;
    s.arg = &x;
    CHECK_CALL(thread_run(&t, &s));
    for (tries = 0; tries < 5; tries++) CHECK_EQ(iowait_wait(w, ev, 8, 10 * MS), 0);
    CHECK_CALL(iowait_notify(w));
    thread_join(t);
    CHECK_EQ(x.result, 0);

    /* K3: the rest of a thread's batch is that thread's. */
    CHECK_CALL(make_pair(q));
    CHECK_CALL(iowait_watch(w, q[0], IOWAIT_READ, 2, IOWAIT_LEVEL));
    CHECK_EQ(send_bytes(p[1], "x", 1), 1);
    CHECK_EQ(send_bytes(q[1], "x", 1), 1);
    owner.w = w;
    atomic_init(&owner.step, 0);
    s.fn = wait_twice;
    s.arg = &owner;
    CHECK_CALL(thread_run(&t, &s));
    for (tries = 0; tries < 500 && atomic_load(&owner.step) != 1; tries++) sleep_ms(10);
    rc = iowait_wait(w, ev, 8, 50 * MS);
    atomic_store(&owner.step, 2);
    thread_join(t);
    CHECK_EQ(owner.first, 1);
    CHECK_EQ(rc, 0);
    CHECK_EQ(owner.second, 1);
    close_fd(q[0]);
    close_fd(q[1]);

    close_fd(p[0]);
    close_fd(p[1]);
    iowait_destroy(w);
    return 0;
}
