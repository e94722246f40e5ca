/*
 * jq_count.c - an LD_PRELOAD shim for tests: counts the expressions libjq
 * evaluates (calls to jq_start, one per evaluation of a program Cairn does
 * not evaluate itself) and writes the count to the file $JQ_COUNT_FILE when
 * the process exits.  Built by the test that uses it:
 *   cc -shared -fPIC -o jq_count.so tests/lib/jq_count.c -ldl
 * so a test counts work (how often an expression was rendered) rather than
 * timing it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <jq.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static atomic_long calls;

void jq_start(jq_state *jq, jv input, int flags) {
    static void (*real)(jq_state *, jv, int);
    if (real == NULL) real = (void (*)(jq_state *, jv, int))dlsym(RTLD_NEXT, "jq_start");
    atomic_fetch_add(&calls, 1);
    real(jq, input, flags);
}

__attribute__((destructor)) static void report(void) {
    const char *path = getenv("JQ_COUNT_FILE");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (f == NULL) return;
    fprintf(f, "%ld\n", atomic_load(&calls));
    fclose(f);
}
