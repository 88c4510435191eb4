/* The C API's tests, in C: the main rules of docs/behaviour.md through
 * include/iowait/iowait.h, on one backend per run.
 *
 *   capi_tests TEST BACKEND    one test (ctest runs each as capi.TEST/BACKEND)
 *   capi_tests --list          the tests, one a line
 *   capi_tests all BACKEND [TEST...]   every test on one backend, but those named
 *   capi_tests                 every test on every available backend
 *
 * Exit status: 0 passed, 1 failed, 77 skipped (with the reason printed). */
#define _POSIX_C_SOURCE 200809L /* socketpair, clock_gettime, nanosleep, sigaction under -std=c11 */
#include "check.h"

typedef int (*test_fn)(iowait_backend);
/* One line per test: tests/c/CMakeLists.txt reads the names from here. */
#define TEST_ENTRY(name) \
    { #name, test_##name }
static const struct {
    const char* name;
    test_fn fn;
} tests[] = {
    /* clang-format off */
    TEST_ENTRY(create),
    TEST_ENTRY(readiness),
    TEST_ENTRY(hangup),
    TEST_ENTRY(timeout),
    TEST_ENTRY(notify),
    TEST_ENTRY(errors),
    TEST_ENTRY(oneshot),
    TEST_ENTRY(edge),
    TEST_ENTRY(user_data),
    TEST_ENTRY(capacity),
    TEST_ENTRY(closed),
    TEST_ENTRY(leftovers),
    TEST_ENTRY(signals),
    TEST_ENTRY(timer_source),
    TEST_ENTRY(process_and_signal_sources),
    TEST_ENTRY(forked_child),
    TEST_ENTRY(windows_handles),
    /* clang-format on */
};
#define NTESTS (sizeof tests / sizeof tests[0])

/* Runs the tests on backend b, but those named in skip; 0 if none failed. */
static int run_all(iowait_backend b, char** skip, int nskip) {
    size_t i;
    int failed = 0;
    for (i = 0; i < NTESTS; i++) {
        int k, rc, skipped = 0;
        for (k = 0; k < nskip; k++) skipped |= strcmp(skip[k], tests[i].name) == 0;
        if (skipped) {
            printf("capi.%s/%s: left out, as asked\n", tests[i].name, iowait_backend_name(b));
            continue;
        }
        rc = tests[i].fn(b);
        printf("capi.%s/%s: %s\n", tests[i].name, iowait_backend_name(b),
               rc == 0      ? "OK"
               : rc == SKIP ? "skipped"
                            : "FAILED");
        failed |= rc != 0 && rc != SKIP;
    }
    return failed;
}

int main(int argc, char** argv) {
    iowait_backend b;
    size_t i;
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (i = 0; i < NTESTS; i++) puts(tests[i].name);
        return 0;
    }
    if (argc == 1) {
        iowait_backend list[16];
        const int n = iowait_available_backends(list, 16);
        int j, failed = 0;
        for (j = 0; j < n && j < 16; j++) failed |= run_all(list[j], NULL, 0);
        return failed;
    }
    if (argc >= 3 && iowait_backend_from_name(argv[2], &b) != 0) return fprintf(stderr, "no backend %s\n", argv[2]), 2;
    if (argc >= 3 && strcmp(argv[1], "all") == 0) return run_all(b, argv + 3, argc - 3);
    if (argc == 3) {
        for (i = 0; i < NTESTS; i++)
            if (strcmp(tests[i].name, argv[1]) == 0) {
                const int rc = tests[i].fn(b);
                if (rc == 0) printf("capi.%s/%s: OK\n", argv[1], argv[2]);
                return rc;
            }
        return fprintf(stderr, "no test %s\n", argv[1]), 2;
    }
    fprintf(stderr, "usage: %s [--list | TEST BACKEND | all BACKEND [TEST_TO_LEAVE_OUT...]]\n", argv[0]);
    return 2;
}
