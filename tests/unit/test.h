/*
 * test.h - the unit test harness.
 *
 * A test is a function declared with TEST(name); it registers itself at start-up.
 * The runner (main.c) runs each test in its own child process with a time-out,
 * prints TAP ("ok 3 - name"), and ends with "unit: N passed, N failed".
 * Assertions print both values and the place when they fail, then end the test.
 */
#ifndef CAIRN_TEST_H
#define CAIRN_TEST_H

#include <jv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);
void test_register(const char *name, const char *file, test_fn fn);

#define TEST(name)                                                           \
    static void test_##name(void);                                           \
    __attribute__((constructor)) static void test_reg_##name(void) {         \
        test_register(#name, __FILE__, test_##name);                         \
    }                                                                        \
    static void test_##name(void)

#define TEST_FAIL(...)                                                       \
    do {                                                                     \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                    \
        fprintf(stderr, __VA_ARGS__);                                        \
        fprintf(stderr, "\n");                                               \
        exit(1);                                                             \
    } while (0)

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) TEST_FAIL("check failed: %s", #cond);                   \
    } while (0)

#define CHECK_INT(a, b)                                                      \
    do {                                                                     \
        long long a_ = (long long)(a), b_ = (long long)(b);                  \
        if (a_ != b_)                                                        \
            TEST_FAIL("%s == %s: got %lld, want %lld", #a, #b, a_, b_);      \
    } while (0)

#define CHECK_STR(a, b)                                                      \
    do {                                                                     \
        const char *a_ = (a), *b_ = (b);                                     \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                 \
            TEST_FAIL("%s == %s:\n    got:  \"%s\"\n    want: \"%s\"", #a, #b, \
                      a_ ? a_ : "(null)", b_ ? b_ : "(null)");               \
    } while (0)

#define CHECK_CONTAINS(hay, needle)                                          \
    do {                                                                     \
        const char *h_ = (hay), *n_ = (needle);                              \
        if (h_ == NULL || strstr(h_, n_) == NULL)                            \
            TEST_FAIL("%s should contain \"%s\", got:\n    \"%s\"", #hay, n_, \
                      h_ ? h_ : "(null)");                                   \
    } while (0)

/* A fresh empty directory for this test (removed by the runner afterwards). */
const char *test_tmpdir(void);

/* JSON written with ' for " (readability) parsed; bad JSON fails the test. */
jv test_json(const char *text);

#endif
