/*
 * test_expr_bound.c - every evaluation is bounded in time and memory
 * (dsl/expr.h, dsl/expr_guard.h), and a workflow's `limits:` sets the bounds.
 * The runaway programs here would run forever, or until the machine runs out
 * of memory, without the bounds: the runner's time-out is what catches a
 * bound that does not hold.
 */
#include "test.h"

#include <jv.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actions/action.h"
#include "common/clock.h"
#include "common/mem.h"
#include "dsl/expr.h"
#include "dsl/workflow.h"

/* A set of the programs progs[0..n), compiled, bounded by time_ms and memory. */
static cairn_exprset *bounded_set(const char *const *progs, int n, int64_t time_ms,
                                  int64_t memory) {
    cairn_exprset *set = cairn_exprset_new();
    cairn_exprset_set_limits(set, time_ms, memory);
    for (int i = 0; i < n; i++) CHECK_INT(cairn_exprset_add(set, progs[i], "w.yaml", i + 1, 5), i);
    cairn_diags d = CAIRN_DIAGS_INIT;
    if (cairn_exprset_compile(set, &d) != 0) TEST_FAIL("compile: %s", d.items[0].msg);
    cairn_diags_free(&d);
    return set;
}

/* Evaluate program idx over the JSON text doc: the result as compact JSON,
 * or "error: <message>" (the caller frees either). */
static char *eval_text(cairn_exprset *set, int idx, const char *doc) {
    jv d = jv_parse(doc), out;
    cairn_err err;
    char *s;
    if (cairn_exprset_eval(set, idx, d, &out, &err) == 0) {
        jv text = jv_dump_string(out, 0);
        s = cairn_strdup(jv_string_value(text));
        jv_free(text);
    } else {
        CHECK_INT(err.code, CAIRN_EEXPR);
        s = cairn_sprintf("error: %s", err.msg);
    }
    jv_free(d);
    return s;
}

#define CHECK_EVAL_IS(set, idx, doc, want)                                   \
    do {                                                                     \
        char *got_ = eval_text((set), (idx), (doc));                         \
        CHECK_STR(got_, (want));                                             \
        free(got_);                                                          \
    } while (0)

#define CHECK_EVAL_FAILS(set, idx, doc, part)                                \
    do {                                                                     \
        char *got_ = eval_text((set), (idx), (doc));                         \
        CHECK_CONTAINS(got_, "error: ");                                     \
        CHECK_CONTAINS(got_, (part));                                        \
        free(got_);                                                          \
    } while (0)

/* ---- time ----------------------------------------------------------------------- */

TEST(expr_bound_time_halts_runaways_and_the_state_serves_again) {
    static const char *const progs[] = {
        "def f: f; f", "[limit(1e12; repeat(1))]", "[.a, .a] | length", "1, (def f: f; f)"};
    cairn_exprset *set = bounded_set(progs, 4, 200, CAIRN_EXPR_MEMORY_DEFAULT);
    for (int round = 0; round < 2; round++) {
        int64_t t0 = cairn_now_ms();
        CHECK_EVAL_FAILS(set, 0, "{}", "ran past its time bound of 200 ms");
        CHECK(cairn_now_ms() - t0 >= 200);
        CHECK_EVAL_IS(set, 2, "{\"a\": 1}", "2");     /* the same jq_state, reused */
        CHECK_EVAL_FAILS(set, 1, "{}", "ran past its time bound of 200 ms");
        CHECK_EVAL_FAILS(set, 3, "{}", "ran past its time bound of 200 ms");
        CHECK_EVAL_IS(set, 2, "{\"a\": 1}", "2");
    }
    cairn_exprset_free(set);
}

/* A child of fork() has no watchdog thread of its parent's: it gets its own. */
TEST(expr_bound_holds_in_a_forked_child) {
    static const char *const progs[] = {"def f: f; f", "[.a] | length"};
    cairn_exprset *set = bounded_set(progs, 2, 200, CAIRN_EXPR_MEMORY_DEFAULT);
    /* the parent's watchdog has started (a fork while a thread starts is
     * beyond what fork() promises a threaded process) and bounds its own */
    CHECK_EVAL_FAILS(set, 0, "{}", "ran past its time bound of 200 ms");
    pid_t pid = fork();
    if (pid == 0) {
        char *got = eval_text(set, 0, "{}");
        _exit(strstr(got, "ran past its time bound of 200 ms") ? 0 : 1);
    }
    int status = 0;
    int64_t deadline = cairn_now_ms() + 20000;
    while (waitpid(pid, &status, WNOHANG) == 0 && cairn_now_ms() < deadline) usleep(10000);
    bool exited = kill(pid, 0) != 0;
    if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    CHECK(exited);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cairn_exprset_free(set);
}

/* ---- memory --------------------------------------------------------------------- */

TEST(expr_bound_memory_stops_programs_that_grow) {
    static const char *const progs[] = {
        "[range(1e9)] | length", "reduce range(40) as $i (\"x\"; . + .) | length", ".a + 1"};
    cairn_exprset *set = bounded_set(progs, 3, 5000, 32LL << 20);
    CHECK_EVAL_FAILS(set, 0, "{}", "grew memory past its bound of 32 MiB");
    CHECK_EVAL_IS(set, 2, "{\"a\": 1}", "2");
    CHECK_EVAL_FAILS(set, 1, "{}", "grew memory past its bound of 32 MiB");
    cairn_exprset_free(set);
}

/* One multiplication can make a gigabyte in one C call, where jq cannot be
 * halted: it is checked before it runs.  Everything else `*` does is jq's. */
TEST(expr_bound_string_repetition_is_checked_before_it_runs) {
    static const char *const progs[] = {
        "\"x\" * 1e9 | length", "1e9 * \"xy\" | length", "\"ab\" * 3", "3 * \"ab\"",
        "[(1, 2) * (10, 20)]", "[\"ab\" * (0, 0.5, -1, 2.7)]", "{\"a\": {\"b\": 1}} * .o",
        "[.n * 2, 2 * .n]", "try (\"ab\" * {}) catch ."};
    cairn_exprset *set = bounded_set(progs, 9, 60000, 64LL << 20);
    const char *doc = "{\"n\": 1.5, \"o\": {\"a\": {\"c\": 2}}}";
    CHECK_EVAL_FAILS(set, 0, doc, "string repetition past the memory bound of 64 MiB");
    CHECK_EVAL_FAILS(set, 1, doc, "string repetition past the memory bound of 64 MiB");
    CHECK_EVAL_IS(set, 2, doc, "\"ababab\"");
    CHECK_EVAL_IS(set, 3, doc, "\"ababab\"");
    CHECK_EVAL_IS(set, 4, doc, "[10,20,20,40]");
    CHECK_EVAL_IS(set, 5, doc, "[null,\"ab\",null,\"abab\"]");
    CHECK_EVAL_IS(set, 6, doc, "{\"a\":{\"b\":1,\"c\":2}}");
    CHECK_EVAL_IS(set, 7, doc, "[3,3]");
    CHECK_EVAL_IS(set, 8, doc, "\"string (\\\"ab\\\") and object ({}) cannot be multiplied\"");
    cairn_exprset_free(set);
}

/* A value may share its parts: 40 doublings hold 40 arrays and mean 2^40
 * elements to whoever dumps them.  The result is walked, within the bounds,
 * before anyone else sees it. */
TEST(expr_bound_results_too_large_or_deep_are_refused) {
    static const char *const progs[] = {
        "reduce range(40) as $i ([0]; [., .])", "reduce range(600) as $i (0; [.])",
        "reduce range(400) as $i (0; [.]) | [paths] | length", "[range(1000)] | length"};
    cairn_exprset *set = bounded_set(progs, 4, 60000, 4LL << 20);
    CHECK_EVAL_FAILS(set, 0, "{}", "result is larger than its memory bound of 4 MiB");
    CHECK_EVAL_FAILS(set, 1, "{}", "or nested deeper than 512");
    CHECK_EVAL_IS(set, 2, "{}", "400");
    CHECK_EVAL_IS(set, 3, "{}", "1000");
    cairn_exprset_free(set);
    cairn_exprset *timed = bounded_set(progs, 1, 300, CAIRN_EXPR_MEMORY_MAX);
    CHECK_EVAL_FAILS(timed, 0, "{}", "ran past its time bound of 300 ms");
    cairn_exprset_free(timed);
}

/* What Cairn evaluates itself is bounded by its text and the document, but
 * for concatenation: a large one goes to jq and its bounds. */
TEST(expr_bound_native_concatenation_goes_to_jq_when_large) {
    static const char *const progs[] = {".s + .s | length", ".s + .t | length"};
    char *doc = cairn_sprintf("{\"s\": \"%0*d\", \"t\": \"x\"}", 600000, 0);
    cairn_exprset *set = bounded_set(progs, 2, 60000, CAIRN_EXPR_MEMORY_DEFAULT);
    CHECK_EVAL_IS(set, 0, doc, "1200000");
    CHECK_EVAL_IS(set, 1, doc, "600001");
    cairn_exprset_free(set);
    /* under 1 MiB, jq refuses the result or stops the evaluation making it */
    static const char *const whole[] = {".s + .s"};
    set = bounded_set(whole, 1, 60000, CAIRN_EXPR_MEMORY_MIN);
    CHECK_EVAL_FAILS(set, 0, doc, "bound of 1 MiB (limits.expression_memory)");
    cairn_exprset_free(set);
    free(doc);
}

/* ---- the workflow's limits: key -------------------------------------------------- */

static cairn_workflow *load(const char *src, cairn_diags *d) {
    cairn_workflow *wf = NULL;
    cairn_workflow_load("w.yaml", src, strlen(src), cairn_action_lookup_sig, &wf, d);
    return wf;
}

/* The workflow's exprs, loaded from a workflow whose step `a` has with:
 * { v: "${{ <prog> }}" } and the given limits line (or none). */
static cairn_workflow *load_one(const char *limits, const char *prog) {
    char *src = cairn_sprintf("cairn: 1\nname: w\n%s\nsteps:\n  - id: a\n    uses: set\n"
                              "    with: { v: \"${{ %s }}\" }\n", limits, prog);
    cairn_diags d = CAIRN_DIAGS_INIT;
    cairn_workflow *wf = load(src, &d);
    if (wf == NULL) TEST_FAIL("load: %s", d.items[0].msg);
    cairn_diags_free(&d);
    free(src);
    return wf;
}

TEST(expr_bound_workflow_limits_set_the_bounds) {
    cairn_workflow *wf = load_one("limits: { expression_time: 150ms }", "def f: f; f");
    CHECK_EVAL_FAILS(wf->exprs, 0, "{}", "ran past its time bound of 150 ms");
    cairn_workflow_free(wf);
    wf = load_one("limits: { expression_time: 5s, expression_memory: 16MB }", "[range(1e9)]");
    CHECK_EVAL_FAILS(wf->exprs, 0, "{}", "grew memory past its bound of 16 MiB");
    cairn_workflow_free(wf);
    wf = load_one("", "def f: f; f");
    CHECK_EVAL_FAILS(wf->exprs, 0, "{}", "ran past its time bound of 1000 ms");
    cairn_workflow_free(wf);
}

TEST(expr_bound_workflow_limits_are_checked_at_load) {
    static const struct { const char *limits, *want; } cases[] = {
        {"{ expression_time: 2m }",
         "w.yaml:3:28: error: limits.expression_time: 2m is longer than the most allowed, 60s"},
        {"{ expression_time: soon }",
         "w.yaml:3:28: error: limits.expression_time: expected a positive duration such as 30s, "
         "5m or 1h30m"},
        {"{ expression_memory: 12XB }",
         "w.yaml:3:30: error: limits.expression_memory: expected a size from 1MB to 16GB such "
         "as 256MB (units B, KB, MB, GB), got '12XB'"},
        {"{ expression_memory: 17GB }", "got '17GB'"},
        {"{ expression_memory: 1KB }", "got '1KB'"},
        {"{ expression_memory: 99999999999999999999GB }", "got '99999999999999999999GB'"},
        {"{ expresion_time: 1s }", "did you mean 'expression_time'"},
        {"[1s]", "w.yaml:3:9: error: limits: expected a map"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *src = cairn_sprintf("cairn: 1\nname: w\nlimits: %s\nsteps:\n  - id: a\n"
                                  "    uses: set\n    with: {}\n", cases[i].limits);
        cairn_diags d = CAIRN_DIAGS_INIT;
        CHECK(load(src, &d) == NULL);
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        cairn_diags_print(&d, f, src, strlen(src));
        fclose(f);
        CHECK_CONTAINS(text, cases[i].want);
        free(text);
        cairn_diags_free(&d);
        free(src);
    }
    cairn_diags d = CAIRN_DIAGS_INIT;
    cairn_workflow *wf = load("cairn: 1\nname: w\nlimits: { expression_time: 60s, "
                              "expression_memory: 1GiB }\nsteps:\n  - id: a\n    uses: set\n", &d);
    CHECK(wf != NULL);
    cairn_workflow_free(wf);
    cairn_diags_free(&d);
}
