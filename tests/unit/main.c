/*
 * The unit test runner: every registered test runs in a forked child with a
 * time-out (UNIT_TIMEOUT seconds, default 60), so one crash or hang cannot hide
 * the others.  Arguments filter tests by substring of their name; one
 * that starts with '!' leaves out the tests whose name contains the rest.
 */

#include "test.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    const char *name, *file;
    test_fn fn;
} test_case;

static test_case *tests;
static int ntests, captests;
static char tmpdir[256];

void test_register(const char *name, const char *file, test_fn fn) {
    if (ntests == captests) {
        captests = captests ? captests * 2 : 64;
        tests = realloc(tests, (size_t)captests * sizeof *tests);
        if (!tests) abort();
    }
    tests[ntests++] = (test_case){name, file, fn};
}

const char *test_tmpdir(void) { return tmpdir; }

jv test_json(const char *text) {
    char *s = strdup(text);
    if (s == NULL) abort();
    for (char *p = s; *p; p++)
        if (*p == '\'') *p = '"';
    jv v = jv_parse(s);
    free(s);
    if (!jv_is_valid(v)) TEST_FAIL("bad test JSON: %s", text);
    return v;
}

static int selected(const char *name, int argc, char **argv) {
    int wanted = 0, any = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '!') {
            if (strstr(name, argv[i] + 1)) return 0;
            continue;
        }
        any = 1;
        if (strstr(name, argv[i])) wanted = 1;
    }
    return wanted || !any;
}

static int run_one(const test_case *t, int timeout) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cairn-unit-XXXXXX");
    if (!mkdtemp(tmpdir)) return 0;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm((unsigned)timeout);
        t->fn();
        exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    if (WIFSIGNALED(status))
        fprintf(stderr, "  %s: killed by signal %d%s\n", t->name, WTERMSIG(status),
                WTERMSIG(status) == SIGALRM ? " (time-out)" : "");
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv) {
    int timeout = getenv("UNIT_TIMEOUT") ? atoi(getenv("UNIT_TIMEOUT")) : 60;
    int passed = 0, failed = 0, n = 0;
    for (int i = 0; i < ntests; i++) {
        if (!selected(tests[i].name, argc, argv)) continue;
        int ok = run_one(&tests[i], timeout);
        printf("%sok %d - %s\n", ok ? "" : "not ", ++n, tests[i].name);
        if (ok) passed++; else failed++;
    }
    printf("1..%d\n", n);
    printf("unit: %d passed, %d failed\n", passed, failed);
    free(tests);
    return failed ? 1 : 0;
}
