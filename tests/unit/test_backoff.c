/*
 * Retry back-off as the engine decides and journals it: every
 * step_retrying records retry_at, the event's own time plus the back-off,
 * so the back-offs are read from the journal rather than timed.  Linear
 * growth, the max_delay cap and jitter's bounds are checked here; the
 * exponential doubling in test_engine.c.
 */
#include "common/mem.h"
#include "engine_harness.h"
#include "test.h"

#define MAX_RETRIES 32

/* The back-offs (ms) journaled for a step that always fails, retried as
 * `retry` (a YAML flow map) says; returns how many there were. */
static int backoffs(harness *h, const char *name, const char *retry, double *out) {
    char *src = cairn_sprintf("cairn: 1\nname: %s\nsteps:\n"
                              "  - id: down\n    retry: %s\n"
                              "    uses: fail\n    with: { kind: connect, message: refused }\n",
                              name, retry);
    add(h, src);
    char id[CAIRN_RUN_ID_MAX];
    jv run = run_to_end(h, "{}", id);
    CHECK_AT(run, "status", "failed");
    jv evs = events_of(h, id);
    int n = count_type(evs, "step_retrying");
    CHECK(n <= MAX_RETRIES);
    for (int k = 0; k < n; k++)
        out[k] = event_number(evs, "step_retrying", k, "retry_at") -
                 event_number(evs, "step_retrying", k, "time");
    jv_free(evs);
    jv_free(run);
    free(src);
    return n;
}

TEST(backoff_linear_grows_by_the_delay_each_attempt) {
    harness h = {0};
    open_engine(&h, false);
    double d[MAX_RETRIES];
    CHECK_INT(backoffs(&h, "linear", "{ max_attempts: 4, backoff: linear, delay: 10ms }", d), 3);
    CHECK_INT(d[0], 10);
    CHECK_INT(d[1], 20);
    CHECK_INT(d[2], 30);
    free_h(&h);
}

TEST(backoff_max_delay_caps_what_the_back_off_grows_to) {
    harness h = {0};
    open_engine(&h, false);
    double d[MAX_RETRIES];
    CHECK_INT(backoffs(&h, "capped", "{ max_attempts: 5, backoff: exponential, delay: 10ms,"
                                     " max_delay: 25ms }", d), 4);
    CHECK_INT(d[0], 10);   /* under the cap: as it grows */
    CHECK_INT(d[1], 20);
    CHECK_INT(d[2], 25);   /* 40 and 80, capped */
    CHECK_INT(d[3], 25);
    CHECK_INT(backoffs(&h, "linear-capped", "{ max_attempts: 4, backoff: linear, delay: 10ms,"
                                            " max_delay: 15ms }", d), 3);
    CHECK_INT(d[0], 10);
    CHECK_INT(d[1], 15);
    CHECK_INT(d[2], 15);
    free_h(&h);
}

/* Jitter picks in [d/2, d] of the back-off it would have been (after the
 * cap).  Twenty draws: any draw out of bounds fails; all twenty equal would
 * mean no jitter at all (by chance: (1/6)^19). */
TEST(backoff_jitter_stays_within_half_to_all_of_the_back_off) {
    harness h = {0};
    open_engine(&h, false);
    double d[MAX_RETRIES];
    int n = backoffs(&h, "jittered", "{ max_attempts: 21, delay: 10ms, jitter: true }", d);
    CHECK_INT(n, 20);
    bool varied = false;
    for (int k = 0; k < n; k++) {
        if (d[k] < 5 || d[k] > 10) TEST_FAIL("back-off %d is %.0f ms, not in [5, 10]", k + 1, d[k]);
        varied |= d[k] != d[0];
    }
    CHECK(varied);
    n = backoffs(&h, "jittered-capped", "{ max_attempts: 6, backoff: exponential, delay: 20ms,"
                                        " max_delay: 30ms, jitter: true }", d);
    CHECK_INT(n, 5);
    CHECK(d[0] >= 10 && d[0] <= 20);   /* 20 */
    for (int k = 1; k < n; k++)        /* 40, 80...: capped at 30, then jittered */
        if (d[k] < 15 || d[k] > 30) TEST_FAIL("back-off %d is %.0f ms, not in [15, 30]", k + 1, d[k]);
    free_h(&h);
}
