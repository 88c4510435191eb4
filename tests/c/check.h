/* The C tests' checks and shared helpers (see main.c). */
#ifndef IOWAIT_TESTS_C_CHECK_H
#define IOWAIT_TESTS_C_CHECK_H

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

static inline int open_backend(iowait_backend b, iowait_t** w) {
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

static inline int has_edge(iowait_backend b) {
    return b == IOWAIT_BACKEND_EPOLL || b == IOWAIT_BACKEND_IO_URING || b == IOWAIT_BACKEND_KQUEUE;
}

/* The tests, one per rule group: rules.c and modes.c. */
int test_create(iowait_backend b);
int test_readiness(iowait_backend b);
int test_hangup(iowait_backend b);
int test_timeout(iowait_backend b);
int test_notify(iowait_backend b);
int test_errors(iowait_backend b);
int test_oneshot(iowait_backend b);
int test_edge(iowait_backend b);
int test_user_data(iowait_backend b);
int test_capacity(iowait_backend b);
int test_closed(iowait_backend b);
int test_leftovers(iowait_backend b);
int test_signals(iowait_backend b);
int test_timer_source(iowait_backend b);
int test_process_and_signal_sources(iowait_backend b);
int test_forked_child(iowait_backend b);
int test_windows_handles(iowait_backend b);

#endif
