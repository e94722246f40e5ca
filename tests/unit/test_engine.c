/*
 * Engine tests: real workflows through the engine, in-process, on a journal
 * in the test's temporary directory.
 */
#include "actions/action.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/mem.h"
#include "engine/clog.h"
#include "engine/engine.h"
#include "engine/store.h"
#include "engine_harness.h"
#include "test.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

TEST(engine_runs_a_sequence_and_renders_outputs) {
    harness h = {0};
    open_engine(&h, false);
    add(&h, "cairn: 1\nname: seq\ninputs:\n  who: { type: string, default: world }\n"
            "outputs:\n  greeting: ${{ .steps.b.output.text }}\n  n: ${{ .steps.a.output.n }}\n"
            "steps:\n"
            "  - id: a\n    uses: set\n    with: { n: 41 }\n"
            "  - id: b\n    uses: set\n    with: { text: \"hello ${{ .inputs.who }} ${{ .steps.a.output.n + 1 }}\" }\n");
    char id[CAIRN_RUN_ID_MAX];
    jv run = run_to_end(&h, "{}", id);
    CHECK_AT(run, "status", "succeeded");
    CHECK_AT(run, "outputs.greeting", "hello world 42");
    CHECK_AT(run, "outputs.n", "41");
    CHECK_AT(run, "steps.a.attempts", "1");
    CHECK_STR(h.trace.data, "run_created:run step_started:a step_succeeded:a step_started:b "
                            "step_succeeded:b run_succeeded:run ");
    jv_free(run);
    free_h(&h);
}

/* `.step` is built per attempt only for a `with` that reads it: both kinds
 * of step in one run, and the fields must be the attempt's own. */
TEST(engine_gives_with_its_attempt_fields_when_it_reads_them) {
    harness h = {0};
    open_engine(&h, false);
    add(&h, "cairn: 1\nname: fields\nsteps:\n"
            "  - id: a\n    uses: set\n    with: { n: 1 }\n"
            "  - id: b\n    uses: set\n"
            "    with: { id: \"${{ .step.id }}\", attempt: \"${{ .step.attempt }}\",\n"
            "            key: \"${{ .step.idempotency_key }}\", n: \"${{ .steps.a.output.n }}\" }\n"
            "  - id: c\n    uses: set\n    with: { n: \"${{ .steps.b.output.attempt + 1 }}\" }\n");
    char id[CAIRN_RUN_ID_MAX];
    jv run = run_to_end(&h, "{}", id);
    CHECK_AT(run, "status", "succeeded");
    CHECK_AT(run, "steps.b.output.id", "b");
    CHECK_AT(run, "steps.b.output.attempt", "1");
    char key[CAIRN_RUN_ID_MAX + 8];
    snprintf(key, sizeof key, "%s/b", id);
    CHECK_AT(run, "steps.b.output.key", key);
    CHECK_AT(run, "steps.b.output.n", "1");
    CHECK_AT(run, "steps.c.output.n", "2");
    jv_free(run);
    free_h(&h);
}

TEST(engine_refuses_bad_inputs_before_journaling_anything) {
    harness h = {0};
    open_engine(&h, false);
    add(&h, "cairn: 1\nname: inp\ninputs:\n  port: { type: integer, required: true }\n"
            "steps:\n  - id: a\n    uses: set\n    with: {}\n");
    char id[CAIRN_RUN_ID_MAX];
    cairn_err err;
    CHECK(cairn_engine_start_run(h.e, h.hash, jv_parse("{\"port\":\"eighty\"}"), jv_null(), id, &err) != 0);
    CHECK_CONTAINS(err.msg, "port");
    CHECK(cairn_engine_start_run(h.e, h.hash, jv_parse("{}"), jv_null(), id, &err) != 0);
    CHECK_CONTAINS(err.msg, "port");
    drive(&h);
    CHECK_INT(h.trace.len, 0);
    cairn_store *s = NULL;
    cairn_run_row *rows = NULL;
    int n = -1;
    CHECK_INT(cairn_store_open_sqlite(h.db, CAIRN_SYNC_FULL, true, &s, &err), 0);
    CHECK_INT(s->ops->list_runs(s, NULL, &rows, &n, &err), 0);
    CHECK_INT(n, 0);
    cairn_run_rows_free(rows, n);
    cairn_store_close(s);
    free_h(&h);
}

TEST(engine_runs_needs_in_parallel_and_joins) {
    harness h = {0};
    open_engine(&h, true);
    char *flag = cairn_sprintf("%s/flag", test_tmpdir());
    /* b waits for a file that only c creates: they must run at the same time */
    char *src = cairn_sprintf(
        "cairn: 1\nname: par\nsteps:\n"
        "  - id: b\n    needs: []\n    run: for i in $(seq 1 200); do [ -e %s ] && exit 0; sleep 0.05; done; exit 1\n"
        "  - id: c\n    needs: []\n    run: touch %s\n"
        "  - id: d\n    needs: [b, c]\n    uses: set\n    with: { b: \"${{ .steps.b.status }}\" }\n",
        flag, flag);
    add(&h, src);
    char id[CAIRN_RUN_ID_MAX];
    jv run = run_to_end(&h, "{}", id);
    CHECK_AT(run, "status", "succeeded");
    CHECK_AT(run, "steps.d.output.b", "succeeded");
    jv_free(run);
    free(src);
    free(flag);
    free_h(&h);
}

TEST(engine_skips_on_if_and_skipped_does_not_spread) {
    harness h = {0};
    open_engine(&h, false);
    add(&h, "cairn: 1\nname: skip\nsteps:\n"
            "  - id: a\n    if: ${{ false }}\n    uses: set\n    with: {}\n"
            "  - id: b\n    uses: set\n    with: { saw: \"${{ .steps.a.status }}\" }\n");
    char id[CAIRN_RUN_ID_MAX];
    jv run = run_to_end(&h, "{}", id);
    CHECK_AT(run, "steps.a.status", "skipped");
    CHECK_AT(run, "steps.b.output.saw", "skipped");
    CHECK_AT(run, "status", "succeeded");
    jv_free(run);
    free_h(&h);
}

TEST(engine_fails_the_run_and_starts_nothing_after_a_failure) {
    harness h = {0};
    open_engine(&h, false);
    add(&h, "cairn: 1\nname: failing\nsteps:\n"
            "  - id: a\n    uses: fail\n    with: { message: boom, kind: broken }\n"
            "  - id: b\n    uses: set\n    with: {}\n");
    char id[CAIRN_RUN_ID_MAX];
    jv run = run_to_end(&h, "{}", id);
    CHECK_AT(run, "status", "failed");
    CHECK_AT(run, "error.kind", "broken");
    CHECK_AT(run, "error.step", "a");
    CHECK_AT(run, "steps.b.status", "skipped");   /* never started: settled, not left pending */
    CHECK_AT(run, "steps.b.attempts", "0");
    jv_free(run);
    free_h(&h);
}

TEST(engine_continue_on_error_lets_dependents_run) {
    harness h = {0};
    open_engine(&h, true);
    add(&h, "cairn: 1\nname: coe\nsteps:\n"
            "  - id: a\n    run: exit 3\n    continue_on_error: true\n"
            "  - id: b\n    uses: set\n    with: { code: \"${{ .steps.a.error.kind }}\" }\n");
    char id[CAIRN_RUN_ID_MAX];
    jv run = run_to_end(&h, "{}", id);
    CHECK_AT(run, "status", "succeeded");
    CHECK_AT(run, "steps.a.status", "failed");
    CHECK_AT(run, "steps.b.output.code", "exit");
    jv_free(run);
    free_h(&h);
}

TEST(engine_foreach_respects_concurrency_and_keeps_order) {
    harness h = {0};
    open_engine(&h, true);
    char *dir = cairn_sprintf("%s/slots", test_tmpdir());
    /* each item takes a slot dir (mkdir is atomic) and fails if 3 are held */
    char *src = cairn_sprintf(
        "cairn: 1\nname: fe\nsteps:\n"
        "  - id: each\n    foreach: ${{ [range(6)] | map(. * 10) }}\n    concurrency: 2\n"
        "    run: mkdir -p %s; n=$(ls %s | wc -l); [ $n -lt 2 ] || exit 9; touch %s/${{ .index }};"
        " sleep 0.2; rm %s/${{ .index }}; echo ${{ .item }}\n",
        dir, dir, dir, dir);
    add(&h, src);
    char id[CAIRN_RUN_ID_MAX];
    jv run = run_to_end(&h, "{}", id);
    CHECK_AT(run, "status", "succeeded");
    jv out = jv_object_get(jv_object_get(jv_object_get(jv_copy(run), jv_string("steps")),
                                         jv_string("each")), jv_string("output"));
    CHECK_INT(jv_array_length(jv_copy(out)), 6);
    jv third = jv_array_get(out, 3);
    char *stdout3 = get(third, "stdout");
    CHECK_STR(stdout3, "30\n");
    free(stdout3);
    jv_free(third);
    jv_free(run);
    free(src);
    free(dir);
    free_h(&h);
}

TEST(engine_expression_errors_fail_the_step_with_kind_expression) {
    harness h = {0};
    open_engine(&h, false);
    add(&h, "cairn: 1\nname: ex\nsteps:\n"
            "  - id: a\n    uses: set\n    with: { v: \"${{ .run.nope.deeper | ascii_downcase }}\" }\n");
    char id[CAIRN_RUN_ID_MAX];
    jv run = run_to_end(&h, "{}", id);
    CHECK_AT(run, "status", "failed");
    CHECK_AT(run, "steps.a.error.kind", "expression");
    jv_free(run);
    free_h(&h);
}

/* A runaway expression in step b of one run, beside another run of 20
 * timed steps in the same engine: b fails with kind `expression` at its
 * bound, a's success (which b reads) is journaled, the run fails, and the
 * other run steps on before b and after it, to its end. */
static void check_runaway_beside_a_run(const char *b_fields) {
    harness h = {0};
    open_engine(&h, false);
    cairn_buf src = CAIRN_BUF_INIT;
    cairn_buf_puts(&src, "cairn: 1\nname: beside\nsteps:\n");
    for (int i = 1; i <= 20; i++)
        cairn_buf_printf(&src, "  - id: w%d\n    uses: wait\n    with: { duration: 50ms }\n", i);
    add(&h, src.data);
    char beside_hash[65], beside[CAIRN_RUN_ID_MAX], runaway[CAIRN_RUN_ID_MAX];
    memcpy(beside_hash, h.hash, sizeof beside_hash);
    start(&h, "{}", beside);
    cairn_buf_free(&src);
    cairn_buf_printf(&src, "cairn: 1\nname: runaway\nlimits: { expression_time: 300ms }\n"
                     "steps:\n  - id: a\n    uses: wait\n    with: { duration: 200ms }\n"
                     "  - id: b\n    uses: set\n%s", b_fields);
    add(&h, src.data);
    start(&h, "{}", runaway);
    drive(&h);
    jv r = show(&h, runaway), o = show(&h, beside);
    CHECK_AT(r, "status", "failed");
    CHECK_AT(r, "steps.a.status", "succeeded");
    CHECK_AT(r, "steps.b.error.kind", "expression");
    CHECK_AT(r, "error.kind", "expression");
    char *msg = get(r, "steps.b.error.message");
    CHECK_CONTAINS(msg, "ran past its time bound of 300 ms");
    CHECK_AT(o, "status", "succeeded");
    const char *failed = strstr(h.trace.data, "step_failed:b ");
    CHECK(failed != NULL);
    CHECK_CONTAINS(failed, "step_succeeded:w");          /* after the bound */
    const char *before = strstr(h.trace.data, "step_succeeded:w");
    CHECK(before != NULL && before < failed);            /* and before it */
    free(msg);
    jv_free(r);
    jv_free(o);
    cairn_buf_free(&src);
    free_h(&h);
}

TEST(engine_runaway_repeat_in_with_fails_its_step_and_others_carry_on) {
    check_runaway_beside_a_run(
        "    with: { v: \"${{ [limit(1e12; repeat(.steps.a.output.fired_at))] }}\" }\n");
}

TEST(engine_runaway_recursion_in_with_fails_its_step_and_others_carry_on) {
    check_runaway_beside_a_run("    with: { v: \"${{ .steps.a.output.fired_at as $x | def f: f; f }}\" }\n");
}

TEST(engine_runaway_repeat_in_if_fails_its_step_and_others_carry_on) {
    check_runaway_beside_a_run(
        "    if: \"${{ [limit(1e12; repeat(.steps.a.output.fired_at))] | length > 0 }}\"\n"
        "    with: { v: 2 }\n");
}

TEST(engine_runaway_recursion_in_if_fails_its_step_and_others_carry_on) {
    check_runaway_beside_a_run("    if: \"${{ .steps.a.output.fired_at as $x | def f: f; f }}\"\n"
                               "    with: { v: 2 }\n");
}

/* Run the workflow in a forked engine on h's journal; returns its pid. */
static pid_t fork_engine(harness *h, const char *src) {
    pid_t pid = fork();
    if (pid == 0) {
        harness c = {0};
        c.db = cairn_strdup(h->db);
        open_engine(&c, true);
        add(&c, src);
        char id[CAIRN_RUN_ID_MAX];
        start(&c, "{}", id);
        drive(&c);
        _exit(0);
    }
    return pid;
}

/* Run the workflow in a forked engine and kill -9 it once `marker` exists
 * (a step creates it while it runs); then resume in this process. */
static void crash_when(harness *h, const char *src, const char *marker) {
    pid_t pid = fork_engine(h, src);
    for (int i = 0; i < 6000 && access(marker, F_OK) != 0; i++) usleep(5000);
    CHECK(access(marker, F_OK) == 0);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status));
}

static char *only_run(harness *h) {
    cairn_store *s = NULL;
    cairn_err err;
    cairn_run_row *rows = NULL;
    int n = 0;
    CHECK_INT(cairn_store_open_sqlite(h->db, CAIRN_SYNC_FULL, true, &s, &err), 0);
    CHECK_INT(s->ops->list_runs(s, NULL, &rows, &n, &err), 0);
    CHECK_INT(n, 1);
    char *id = cairn_strdup(rows[0].id);
    cairn_run_rows_free(rows, n);
    cairn_store_close(s);
    return id;
}

TEST(engine_resume_after_kill_reruns_only_what_was_in_flight) {
    harness h = {0};
    h.db = cairn_sprintf("%s/j.db", test_tmpdir());
    char *log = cairn_sprintf("%s/log", test_tmpdir());
    char *marker = cairn_sprintf("%s/marker", test_tmpdir());
    char *src = cairn_sprintf(
        "cairn: 1\nname: crashy\nsteps:\n"
        "  - id: a\n    run: echo a $CAIRN_ATTEMPT >> %s\n"
        "  - id: b\n    run: echo b $CAIRN_ATTEMPT $CAIRN_IDEMPOTENCY_KEY >> %s;"
        " [ $CAIRN_ATTEMPT -gt 1 ] || { touch %s; sleep 60; }\n"
        "  - id: c\n    run: echo c $CAIRN_ATTEMPT >> %s\n", log, log, marker, log);
    crash_when(&h, src, marker);
    open_engine(&h, true);   /* applies what the commit log held */
    char *id = only_run(&h);
    add(&h, src);
    cairn_err err;
    int taken = 0;
    CHECK_INT(cairn_engine_resume(h.e, NULL, &taken, &err), 0);
    CHECK_INT(taken, 1);
    drive(&h);
    jv run = show(&h, id);
    CHECK_AT(run, "status", "succeeded");
    CHECK_AT(run, "steps.a.attempts", "1");
    CHECK_AT(run, "steps.b.attempts", "2");
    CHECK_INT(count_lines(log, "a "), 1);   /* finished before the kill: never again */
    CHECK_INT(count_lines(log, "b 1 "), 1);
    CHECK_INT(count_lines(log, "b 2 "), 1);
    CHECK_INT(count_lines(log, "c "), 1);
    char *key = cairn_sprintf("b 2 %s/b", id);   /* the same idempotency key */
    CHECK_INT(count_lines(log, key), 1);
    CHECK_CONTAINS(h.trace.data, "step_crashed:b ");
    free(key); jv_free(run); free(id); free(src); free(marker); free(log);
    free_h(&h);
}

/* An engine opened while another holds the commit log commits straight to
 * SQLite; once the holder dies it applies what the log held before it
 * claims the dead engine's runs, so no step that was durable only in the
 * log runs again. */
TEST(engine_beside_a_log_holder_commits_to_sqlite_and_applies_its_log_once_it_dies) {
    harness h = {0};
    h.db = cairn_sprintf("%s/j.db", test_tmpdir());
    char *log = cairn_sprintf("%s/log", test_tmpdir());
    char *marker = cairn_sprintf("%s/marker", test_tmpdir());
    char *src = cairn_sprintf(
        "cairn: 1\nname: holder\nsteps:\n"
        "  - id: a\n    run: echo a $CAIRN_ATTEMPT >> %s\n"
        "  - id: b\n    run: echo b $CAIRN_ATTEMPT >> %s;"
        " [ $CAIRN_ATTEMPT -gt 1 ] || { touch %s; sleep 60; }\n", log, log, marker);
    pid_t pid = fork_engine(&h, src);   /* takes the log */
    for (int i = 0; i < 6000 && access(marker, F_OK) != 0; i++) usleep(5000);
    CHECK(access(marker, F_OK) == 0);
    open_engine(&h, true);
    add(&h, "cairn: 1\nname: beside\nsteps:\n  - id: s\n    uses: set\n    with: { n: 1 }\n");
    char other[CAIRN_RUN_ID_MAX];
    jv run = run_to_end(&h, "{}", other);   /* show reads SQLite alone */
    CHECK_AT(run, "status", "succeeded");
    jv_free(run);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    add(&h, src);
    cairn_err err;
    int taken = 0;
    CHECK_INT(cairn_engine_resume(h.e, NULL, &taken, &err), 0);
    CHECK_INT(taken, 1);
    drive(&h);
    CHECK_INT(count_lines(log, "a "), 1);   /* durable before the kill: never again */
    CHECK_INT(count_lines(log, "b 2"), 1);
    cairn_clog *l = NULL;   /* applied, started over and let go */
    CHECK_INT(cairn_clog_open(h.db, "test", false, &l, &err), 0);
    CHECK_INT(cairn_clog_end(l), CAIRN_CLOG_HEADER);
    cairn_clog_close(l);
    free(src); free(marker); free(log);
    free_h(&h);
}

TEST(engine_resume_on_crash_fail_fails_the_step_with_kind_crash) {
    harness h = {0};
    h.db = cairn_sprintf("%s/j.db", test_tmpdir());
    char *marker = cairn_sprintf("%s/marker", test_tmpdir());
    char *src = cairn_sprintf(
        "cairn: 1\nname: nocrash\nsteps:\n"
        "  - id: risky\n    on_crash: fail\n    run: touch %s; sleep 60\n"
        "  - id: after\n    run: echo after\n", marker);
    crash_when(&h, src, marker);
    open_engine(&h, true);   /* applies what the commit log held */
    char *id = only_run(&h);
    add(&h, src);
    cairn_err err;
    CHECK_INT(cairn_engine_resume(h.e, id, NULL, &err), 0);
    drive(&h);
    jv run = show(&h, id);
    CHECK_AT(run, "status", "failed");
    CHECK_AT(run, "steps.risky.error.kind", "crash");
    CHECK_AT(run, "steps.after.status", "skipped");
    jv_free(run); free(id); free(src); free(marker);
    free_h(&h);
}

TEST(engine_resume_finishes_a_foreach_cut_short) {
    harness h = {0};
    h.db = cairn_sprintf("%s/j.db", test_tmpdir());
    char *dir = cairn_sprintf("%s/items", test_tmpdir());
    char *marker = cairn_sprintf("%s/marker", test_tmpdir());
    /* item 2 of 4 hangs in its first attempt; items run two at a time */
    char *src = cairn_sprintf(
        "cairn: 1\nname: fe\nsteps:\n"
        "  - id: each\n    foreach: ${{ [1,2,3,4] }}\n    concurrency: 2\n"
        "    run: mkdir -p %s; echo x >> %s/${{ .item }};"
        " if [ ${{ .item }} = 2 ] && [ $CAIRN_ATTEMPT = 1 ]; then touch %s; sleep 60; fi; echo ${{ .item }}\n"
        "  - id: after\n    uses: set\n    with: { got: \"${{ .steps.each.output | map(.stdout) | join(\\\"\\\") }}\" }\n",
        dir, dir, marker);
    crash_when(&h, src, marker);
    open_engine(&h, true);   /* applies what the commit log held */
    char *id = only_run(&h);
    jv before = show(&h, id);   /* what the journal held at the kill */
    add(&h, src);
    cairn_err err;
    CHECK_INT(cairn_engine_resume(h.e, id, NULL, &err), 0);
    drive(&h);
    jv run = show(&h, id);
    CHECK_AT(run, "status", "succeeded");
    CHECK_AT(run, "steps.after.output.got", "1\n2\n3\n4\n");
    char *p = cairn_sprintf("%s/2", dir);
    CHECK_INT(count_lines(p, "x"), 2);   /* the hung item ran again */
    free(p);
    for (int k = 0; k < 4; k++) {
        char path[64];
        snprintf(path, sizeof path, "steps.each.items.%d", k);
        jv items = jv_object_get(jv_object_get(jv_object_get(jv_copy(before), jv_string("steps")),
                                               jv_string("each")), jv_string("items"));
        jv item = jv_array_get(items, k);
        char *status = get(item, "status");
        p = cairn_sprintf("%s/%d", dir, k + 1);
        if (strcmp(status, "succeeded") == 0) CHECK_INT(count_lines(p, "x"), 1);
        else CHECK(count_lines(p, "x") >= 1);
        free(p);
        free(status);
        jv_free(item);
    }
    jv_free(before);
    jv_free(run); free(id); free(src); free(marker); free(dir);
    free_h(&h);
}

/* Without `concurrency`, a foreach keeps at most CAIRN_FOREACH_WINDOW items
 * in flight (started, not yet ended, in journal order), and uses the whole
 * window: a long foreach does not hold an attempt for every item at once. */
TEST(engine_foreach_without_concurrency_keeps_a_window_in_flight) {
    harness h = {0};
    open_engine(&h, false);
    char *src = cairn_sprintf("cairn: 1\nname: wide\nsteps:\n"
                              "  - id: each\n    foreach: ${{ [range(%d)] }}\n    uses: set\n"
                              "    with: { v: \"${{ .item }}\" }\n", CAIRN_FOREACH_WINDOW + 500);
    add(&h, src);
    char id[CAIRN_RUN_ID_MAX];
    jv run = run_to_end(&h, "{}", id);
    CHECK_AT(run, "status", "succeeded");
    int n = 0, in_flight = 0, most = 0;
    cairn_event *evs = journal_of(&h, id, &n);
    for (int i = 0; i < n; i++) {
        if (evs[i].step == NULL) continue;
        in_flight += (evs[i].type == CAIRN_EV_STEP_STARTED) - (evs[i].type == CAIRN_EV_STEP_SUCCEEDED);
        if (in_flight > most) most = in_flight;
    }
    CHECK_INT(most, CAIRN_FOREACH_WINDOW);
    cairn_events_free(evs, n);
    jv_free(run);
    free(src);
    free_h(&h);
}

/* ---- retries and durable timers ------------------------------------------ */

/* Every event's data is journaled as canonical text, whichever way the
 * engine wrote it (the hash chain covers those bytes), and a step's events
 * carry what event.h says: idempotency key, item index, input, output. */
TEST(engine_journals_each_event_in_canonical_form) {
    harness h = {0};
    open_engine(&h, false);
    add(&h, "cairn: 1\nname: canon\nsteps:\n"
            "  - id: each\n    foreach: ${{ [1, 2] }}\n    uses: set\n"
            "    with: { zeta: \"${{ .item }}\", alpha: { b: 1, a: [\"x\\ty\"] } }\n"
            "  - id: plain\n    uses: set\n    with: { q: \"\\\"quoted\\\"\" }\n");
    char id[CAIRN_RUN_ID_MAX];
    jv run = run_to_end(&h, "{}", id);
    CHECK_AT(run, "status", "succeeded");
    int n = 0;
    cairn_event *evs = journal_of(&h, id, &n);
    int started = 0, succeeded = 0, plain = 0;
    for (int i = 0; i < n; i++) {
        jv parsed = jv_parse(evs[i].data);
        char *again = cairn_json_text(parsed);   /* borrows */
        jv_free(parsed);
        CHECK_STR(evs[i].data, again);
        free(again);
        if (evs[i].type == CAIRN_EV_STEP_STARTED && strcmp(evs[i].step, "each") == 0) {
            char *want = cairn_sprintf("{\"idempotency_key\":\"%s/each/%d\",\"index\":%d,\"input\":"
                                       "{\"alpha\":{\"a\":[\"x\\ty\"],\"b\":1},\"zeta\":%d}}",
                                       id, started, started, started + 1);
            CHECK_STR(evs[i].data, want);
            free(want);
            started++;
        }
        /* an item's (the step's own, last, holds every item's output) */
        if (evs[i].type == CAIRN_EV_STEP_SUCCEEDED && strcmp(evs[i].step, "each") == 0 &&
            strncmp(evs[i].data, "{\"index\":", 9) == 0) {
            char *want = cairn_sprintf("{\"index\":%d,\"output\":"
                                       "{\"alpha\":{\"a\":[\"x\\ty\"],\"b\":1},\"zeta\":%d}}",
                                       succeeded, succeeded + 1);
            CHECK_STR(evs[i].data, want);
            free(want);
            succeeded++;
        }
        if (evs[i].type == CAIRN_EV_STEP_STARTED && strcmp(evs[i].step, "plain") == 0) {
            char *want = cairn_sprintf("{\"idempotency_key\":\"%s/plain\",\"input\":"
                                       "{\"q\":\"\\\"quoted\\\"\"}}", id);
            CHECK_STR(evs[i].data, want);
            free(want);
            plain++;
        }
        if (evs[i].type == CAIRN_EV_STEP_SUCCEEDED && strcmp(evs[i].step, "plain") == 0) {
            CHECK_STR(evs[i].data, "{\"output\":{\"q\":\"\\\"quoted\\\"\"}}");
            plain++;
        }
    }
    CHECK_INT(started, 2);
    CHECK_INT(succeeded, 2);
    CHECK_INT(plain, 2);
    cairn_events_free(evs, n);
    jv_free(run);
    free_h(&h);
}

/* The engine folds the events it makes with hints and only the data the
 * fold reads; `show` folds the same events parsed from the journal.  Both
 * must give the same run, item by item, inline and on the pool. */
typedef struct {
    jv live;   /* the engine's own state of the run when its end was durable */
} end_state;

static void keep_end_state(const cairn_event *ev, const cairn_run_state *st, void *ud) {
    end_state *es = ud;
    if (ev->type != CAIRN_EV_RUN_SUCCEEDED && ev->type != CAIRN_EV_RUN_FAILED) return;
    jv_free(es->live);
    es->live = cairn_run_state_to_json(st);
}

TEST(engine_state_equals_the_fold_of_its_journal) {
    for (int pool_only = 0; pool_only <= 1; pool_only++) {
        harness h = {0};
        end_state es = {jv_invalid()};
        h.db = cairn_sprintf("%s/live%d.db", test_tmpdir(), pool_only);
        cairn_engine_config cfg = {.on_event = keep_end_state, .ud = &es,
                                   .pool_only = pool_only, .workers = 2};
        cairn_err err;
        CHECK_INT(engine_open_at(h.db, &cfg, &h.e, &err), 0);
        add(&h, "cairn: 1\nname: live\ninputs:\n  n: { type: integer }\n"
                "outputs:\n  sum: ${{ .steps.each.output | map(.v) | add }}\nsteps:\n"
                "  - id: each\n    foreach: ${{ [range(.inputs.n)] }}\n    concurrency: 2\n"
                "    uses: set\n    with: { v: \"${{ .item * 10 }}\" }\n"
                "  - id: broken\n    uses: fail\n    with: { message: no }\n"
                "    continue_on_error: true\n"
                "  - id: never\n    if: ${{ false }}\n    uses: set\n    with: { x: 1 }\n"
                "  - id: last\n    uses: set\n    with: { seen: \"${{ .steps.each.output[2].v }}\" }\n");
        char id[CAIRN_RUN_ID_MAX];
        jv run = run_to_end(&h, "{\"n\":4}", id);
        CHECK_AT(run, "status", "succeeded");
        CHECK_AT(run, "outputs.sum", "60");
        CHECK_AT(run, "steps.broken.status", "failed");
        CHECK_AT(run, "steps.never.status", "skipped");
        CHECK_AT(run, "steps.last.output.seen", "20");
        CHECK(jv_is_valid(es.live));
        if (jv_is_valid(es.live) && !jv_equal(jv_copy(es.live), jv_copy(run))) {
            char *a = cairn_json_text(es.live), *b = cairn_json_text(run);
            TEST_FAIL("live %s\njournal %s", a, b);
        }
        jv_free(es.live);
        jv_free(run);
        free_h(&h);
    }
}

TEST(engine_retries_with_exponential_backoff_until_success) {
    harness h = {0};
    open_engine(&h, true);
    char *count = cairn_sprintf("%s/count", test_tmpdir());
    char *src = cairn_sprintf(
        "cairn: 1\nname: flaky\nsteps:\n"
        "  - id: flaky\n    retry: { max_attempts: 4, backoff: exponential, delay: 100ms }\n"
        "    run: echo x >> %s; [ $(wc -l < %s) -ge 3 ] || { echo down >&2; exit 1; }\n",
        count, count);
    add(&h, src);
    char id[CAIRN_RUN_ID_MAX];
    jv run = run_to_end(&h, "{}", id);
    CHECK_AT(run, "status", "succeeded");
    CHECK_AT(run, "steps.flaky.attempts", "3");
    CHECK_AT(run, "steps.flaky.error", "null");
    jv evs = events_of(&h, id);
    CHECK_INT(count_type(evs, "step_retrying"), 2);
    /* the back-off doubles, and each next attempt waits for its journaled deadline */
    double r1 = event_number(evs, "step_retrying", 0, "retry_at") - event_number(evs, "step_retrying", 0, "time");
    double r2 = event_number(evs, "step_retrying", 1, "retry_at") - event_number(evs, "step_retrying", 1, "time");
    CHECK(r1 == 100);   /* retry_at is the event's own time plus the back-off */
    CHECK(r2 == 200);
    CHECK(event_number(evs, "step_started", 1, "time") >= event_number(evs, "step_retrying", 0, "retry_at"));
    jv_free(evs); jv_free(run); free(src); free(count);
    free_h(&h);
}

TEST(engine_retry_on_filters_errors_and_exhaustion_fails) {
    harness h = {0};
    open_engine(&h, true);
    add(&h, "cairn: 1\nname: picky\nsteps:\n"
            "  - id: auth\n    retry: { max_attempts: 5, delay: 10ms, on: \"^timeout\" }\n"
            "    uses: fail\n    with: { kind: auth, message: denied }\n");
    char id[CAIRN_RUN_ID_MAX];
    jv run = run_to_end(&h, "{}", id);
    CHECK_AT(run, "steps.auth.attempts", "1");   /* auth does not match ^timeout */
    CHECK_AT(run, "status", "failed");
    jv_free(run);
    close_h(&h);
    open_engine(&h, true);
    add(&h, "cairn: 1\nname: tries\nsteps:\n"
            "  - id: t\n    retry: { max_attempts: 3, delay: 10ms, on: \"^timeout: \" }\n"
            "    uses: fail\n    with: { kind: timeout, message: slow }\n");
    start(&h, "{}", id);
    drive(&h);
    run = show(&h, id);
    CHECK_AT(run, "steps.t.attempts", "3");
    CHECK_AT(run, "steps.t.error.kind", "timeout");
    CHECK_AT(run, "status", "failed");
    jv_free(run);
    free_h(&h);
}

TEST(engine_until_polls_the_output) {
    harness h = {0};
    open_engine(&h, true);
    char *count = cairn_sprintf("%s/count", test_tmpdir());
    char *src = cairn_sprintf(
        "cairn: 1\nname: poll\nsteps:\n"
        "  - id: poll\n    retry: { max_attempts: 10, delay: 10ms, until: \"${{ .output.stdout == \\\"3\\\\n\\\" }}\" }\n"
        "    run: echo x >> %s; wc -l < %s\n", count, count);
    add(&h, src);
    char id[CAIRN_RUN_ID_MAX];
    jv run = run_to_end(&h, "{}", id);
    CHECK_AT(run, "status", "succeeded");
    CHECK_AT(run, "steps.poll.attempts", "3");
    CHECK_AT(run, "steps.poll.output.stdout", "3\n");
    jv_free(run); free(src); free(count);
    free_h(&h);
}

/* Kill the engine once the journal holds an event of `type`, wait until
 * the journaled deadline has passed with no engine running, then resume. */
static void crash_at_event(harness *h, const char *src, const char *type, const char *key,
                           char *run_id, double *deadline) {
    pid_t pid = fork_engine(h, src);
    *deadline = -1;
    for (int i = 0; i < 4000 && *deadline < 0; i++) {
        usleep(2000);
        if (access(h->db, F_OK) != 0) continue;
        cairn_store *s = NULL;
        cairn_err err;
        cairn_run_row *rows = NULL;
        int n = 0;
        if (cairn_store_open_sqlite(h->db, CAIRN_SYNC_FULL, true, &s, &err) != 0) continue;
        if (s->ops->list_runs(s, NULL, &rows, &n, &err) == 0 && n == 1) {
            snprintf(run_id, CAIRN_RUN_ID_MAX, "%s", rows[0].id);
            cairn_store_close(s);
            s = NULL;
            jv evs = events_of(h, run_id);
            *deadline = event_number(evs, type, 0, key);
            jv_free(evs);
        }
        cairn_run_rows_free(rows, n);
        cairn_store_close(s);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    CHECK(*deadline > 0);
    while ((double)cairn_wall_ms() <= *deadline) usleep(10000);   /* the deadline passes while down */
}

/* Open an engine on h's journal, resume run_id of src to its end, and
 * return the run as `show` has it. */
static jv resume_to_end(harness *h, const char *src, const char *run_id) {
    open_engine(h, true);
    add(h, src);
    cairn_err err;
    CHECK_INT(cairn_engine_resume(h->e, run_id, NULL, &err), 0);
    drive(h);
    return show(h, run_id);
}

TEST(engine_wait_deadline_that_passed_while_down_fires_on_resume) {
    harness h = {0};
    h.db = cairn_sprintf("%s/j.db", test_tmpdir());
    const char *src = "cairn: 1\nname: nap\nsteps:\n"
                      "  - id: nap\n    uses: wait\n    with: { duration: 400ms }\n"
                      "  - id: after\n    uses: set\n    with: { at: \"${{ .steps.nap.output.fired_at }}\" }\n";
    char id[CAIRN_RUN_ID_MAX];
    double until;
    crash_at_event(&h, src, "step_waiting", "until", id, &until);
    jv mid = show(&h, id);
    CHECK_AT(mid, "steps.nap.status", "waiting");
    jv_free(mid);
    jv run = resume_to_end(&h, src, id);
    CHECK_AT(run, "status", "succeeded");
    CHECK_AT(run, "steps.nap.status", "succeeded");
    jv evs = events_of(&h, id);
    CHECK_INT(count_type(evs, "step_waiting"), 1);     /* not started again */
    CHECK(event_number(evs, "step_succeeded", 0, "time") >= until);
    jv_free(evs); jv_free(run);
    free_h(&h);
}

TEST(engine_retry_backoff_survives_a_crash) {
    harness h = {0};
    h.db = cairn_sprintf("%s/j.db", test_tmpdir());
    char *count = cairn_sprintf("%s/count", test_tmpdir());
    char *src = cairn_sprintf(
        "cairn: 1\nname: again\nsteps:\n"
        "  - id: again\n    retry: { max_attempts: 2, delay: 500ms }\n"
        "    run: echo x >> %s; [ $(wc -l < %s) -ge 2 ]\n", count, count);
    char id[CAIRN_RUN_ID_MAX];
    double retry_at;
    crash_at_event(&h, src, "step_retrying", "retry_at", id, &retry_at);
    jv run = resume_to_end(&h, src, id);
    CHECK_AT(run, "status", "succeeded");
    CHECK_AT(run, "steps.again.attempts", "2");
    CHECK_INT(count_lines(count, "x"), 2);
    jv evs = events_of(&h, id);
    CHECK(event_number(evs, "step_started", 1, "time") >= retry_at);
    jv_free(evs); jv_free(run); free(src); free(count);
    free_h(&h);
}

/* ---- rollback ------------------------------------------------------------- */

/* The run's last k events as "type:step " ("-" for run events). */
static char *last_events(harness *h, const char *run_id, int k) {
    cairn_buf b = CAIRN_BUF_INIT;
    int n = 0;
    cairn_event *evs = journal_of(h, run_id, &n);
    for (int i = n > k ? n - k : 0; i < n; i++)
        cairn_buf_printf(&b, "%s:%s ", cairn_event_type_name(evs[i].type), evs[i].step ? evs[i].step : "-");
    cairn_events_free(evs, n);
    return b.data ? cairn_buf_detach(&b) : cairn_strdup("");
}

#define GATED_FAILURE                                                                   \
    "cairn: 1\nname: gated-failure\nsteps:\n"                                           \
    "  - id: gate\n    uses: approval\n    with: { prompt: go? }\n"                    \
    "  - id: boom\n    needs: []\n    uses: fail\n    with: { message: boom, kind: broken }\n" \
    "  - id: after\n    needs: [gate]\n    uses: set\n    with: {}\n"

/* A failed run leaves nothing open: the step that never started ends
 * skipped and the open approval cancelled, each journaled in the batch that
 * ends the run (so `show`, `journal` and a reload agree). */
TEST(engine_failure_skips_what_never_started_and_cancels_open_approvals) {
    harness h = {0};
    open_engine(&h, false);
    add(&h, GATED_FAILURE);
    char id[CAIRN_RUN_ID_MAX];
    jv run = run_to_end(&h, "{}", id);
    CHECK_AT(run, "status", "failed");
    CHECK_AT(run, "error.step", "boom");
    CHECK_AT(run, "steps.gate.status", "cancelled");
    CHECK_AT(run, "steps.gate.error.kind", "cancelled");
    CHECK_AT(run, "steps.after.status", "skipped");
    CHECK_AT(run, "steps.after.attempts", "0");
    char *tail = last_events(&h, id, 3);
    CHECK_STR(tail, "step_failed:gate step_skipped:after run_failed:- ");
    free(tail);
    jv_free(run);
    free_h(&h);
}

/* A run whose failure is durable but whose end is not (killed while another
 * step still ran) settles the same way on resume, once. */
TEST(engine_failure_cut_short_by_a_crash_settles_on_resume) {
    harness h = {0};
    h.db = cairn_sprintf("%s/j.db", test_tmpdir());
    const char *src = GATED_FAILURE
        "  - id: slow\n    needs: []\n    on_crash: fail\n    run: sleep 60\n";
    char id[CAIRN_RUN_ID_MAX];
    double failed_at;
    crash_at_event(&h, src, "step_failed", "time", id, &failed_at);
    jv mid = show(&h, id);
    CHECK_AT(mid, "steps.gate.status", "waiting");
    CHECK_AT(mid, "steps.after.status", "pending");
    jv_free(mid);
    jv run = resume_to_end(&h, src, id);
    CHECK_AT(run, "status", "failed");
    CHECK_AT(run, "steps.slow.error.kind", "crash");
    CHECK_AT(run, "steps.gate.status", "cancelled");
    CHECK_AT(run, "steps.after.status", "skipped");
    jv evs = events_of(&h, id);
    CHECK_INT(count_type(evs, "step_skipped"), 1);
    CHECK_INT(count_type(evs, "run_failed"), 1);
    jv_free(evs);
    char *tail = last_events(&h, id, 3);
    CHECK_STR(tail, "step_failed:gate step_skipped:after run_failed:- ");
    free(tail);
    jv_free(run);
    free_h(&h);
}

TEST(engine_failure_compensates_in_reverse_then_runs_on_failure) {
    harness h = {0};
    open_engine(&h, true);
    char *log = cairn_sprintf("%s/log", test_tmpdir());
    char *src = cairn_sprintf(
        "cairn: 1\nname: rollback\nsteps:\n"
        "  - id: a\n    run: echo do a >> %s\n    compensate: { run: echo undo a >> %s }\n"
        "  - id: b\n    run: echo do b >> %s\n"
        "    compensate:\n      run: echo undo b ${{ .error.kind }} ${{ .steps.b.status }} >> %s\n"
        "  - id: skipped\n    if: ${{ false }}\n    run: echo never\n    compensate: { run: echo undo skipped >> %s }\n"
        "  - id: c\n    run: echo do c >> %s; exit 9\n    compensate: { run: echo undo c >> %s }\n"
        "  - id: d\n    run: echo do d >> %s\n"
        "on_failure:\n"
        "  - id: tell\n    run: echo tell ${{ .error.step }} ${{ .error.kind }} >> %s\n"
        "  - id: quiet\n    if: ${{ .error.kind == \"nope\" }}\n    run: echo quiet >> %s\n",
        log, log, log, log, log, log, log, log, log, log);
    add(&h, src);
    char id[CAIRN_RUN_ID_MAX];
    start(&h, "{}", id);
    drive(&h);
    FILE *f = fopen(log, "r");
    char text[512] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    CHECK_STR(text, "do a\ndo b\ndo c\nundo b exit succeeded\nundo a\ntell c exit\n");
    jv run = show(&h, id);
    CHECK_AT(run, "status", "failed");
    CHECK_AT(run, "error.step", "c");
    CHECK_AT(run, "error.kind", "exit");
    CHECK_AT(run, "steps.b#compensate.status", "succeeded");
    CHECK_AT(run, "steps.c#compensate.status", "skipped");   /* c never succeeded */
    CHECK_AT(run, "steps.quiet.status", "skipped");
    CHECK_AT(run, "steps.d.status", "skipped");
    CHECK_CONTAINS(h.trace.data, "run_compensating:run ");
    jv_free(run); free(src); free(log);
    free_h(&h);
}

TEST(engine_failed_compensation_is_recorded_and_the_rest_still_run) {
    harness h = {0};
    open_engine(&h, true);
    char *log = cairn_sprintf("%s/log", test_tmpdir());
    char *src = cairn_sprintf(
        "cairn: 1\nname: rollback2\nsteps:\n"
        "  - id: a\n    run: echo do a >> %s\n    compensate: { run: echo undo a >> %s }\n"
        "  - id: b\n    run: echo do b >> %s\n"
        "    compensate:\n      run: echo undo b try >> %s; exit 3\n      retry: { max_attempts: 2, delay: 10ms }\n"
        "  - id: c\n    uses: fail\n    with: { message: broken }\n",
        log, log, log, log);
    add(&h, src);
    char id[CAIRN_RUN_ID_MAX];
    start(&h, "{}", id);
    drive(&h);
    CHECK_INT(count_lines(log, "undo b try"), 2);   /* its own retries */
    CHECK_INT(count_lines(log, "undo a"), 1);       /* still ran */
    jv run = show(&h, id);
    CHECK_AT(run, "status", "failed");
    CHECK_AT(run, "error.step", "c");
    CHECK_AT(run, "steps.b#compensate.status", "failed");
    CHECK_AT(run, "steps.b#compensate.attempts", "2");
    jv_free(run); free(src); free(log);
    free_h(&h);
}

TEST(engine_crash_during_rollback_resumes_it_and_compensates_once) {
    harness h = {0};
    h.db = cairn_sprintf("%s/j.db", test_tmpdir());
    char *log = cairn_sprintf("%s/log", test_tmpdir());
    char *marker = cairn_sprintf("%s/marker", test_tmpdir());
    char *src = cairn_sprintf(
        "cairn: 1\nname: rollback3\nsteps:\n"
        "  - id: a\n    run: echo do a >> %s\n    compensate: { run: echo undo a >> %s }\n"
        "  - id: b\n    run: echo do b >> %s\n"
        "    compensate:\n      run: echo undo b $CAIRN_ATTEMPT >> %s; [ $CAIRN_ATTEMPT -gt 1 ] || { touch %s; sleep 60; }\n"
        "  - id: c\n    uses: fail\n    with: { message: broken }\n"
        "on_failure:\n  - id: tell\n    run: echo tell >> %s\n",
        log, log, log, log, marker, log);
    crash_when(&h, src, marker);
    open_engine(&h, true);   /* applies what the commit log held */
    char *id = only_run(&h);
    jv mid = show(&h, id);
    CHECK_AT(mid, "status", "compensating");
    jv_free(mid);
    add(&h, src);
    cairn_err err;
    CHECK_INT(cairn_engine_resume(h.e, id, NULL, &err), 0);
    drive(&h);
    jv run = show(&h, id);
    CHECK_AT(run, "status", "failed");
    CHECK_INT(count_lines(log, "do "), 2);
    CHECK_INT(count_lines(log, "undo b 1"), 1);
    CHECK_INT(count_lines(log, "undo b 2"), 1);   /* in flight at the crash: run again */
    CHECK_INT(count_lines(log, "undo a"), 1);
    CHECK_INT(count_lines(log, "tell"), 1);
    jv_free(run); free(id); free(src); free(marker); free(log);
    free_h(&h);
}

/* ---- the run table ---------------------------------------------------------- */

typedef struct {
    _Atomic int succeeded;
} end_counter;

static void count_successes(const cairn_event *ev, const cairn_run_state *st, void *ud) {
    (void)st;
    if (ev->type == CAIRN_EV_RUN_SUCCEEDED) atomic_fetch_add(&((end_counter *)ud)->succeeded, 1);
}

static void *engine_thread(void *arg) {
    cairn_err err;
    return (void *)(intptr_t)cairn_engine_run(arg, &err);
}

static bool wait_for_successes(end_counter *c, int want) {
    for (int64_t end = cairn_now_ms() + 60000; cairn_now_ms() < end; usleep(1000))
        if (atomic_load(&c->succeeded) >= want) return true;
    return false;
}

/* Runs that end are taken out of the table one by one while others stay
 * parked; every parked run must still be found by id (a decision names it). */
TEST(engine_finds_parked_runs_after_many_others_ended) {
    enum { RUNS = 300 };
    harness h = {0};
    end_counter ends = {0};
    h.db = cairn_sprintf("%s/j.db", test_tmpdir());
    cairn_engine_config cfg = {.on_event = count_successes, .ud = &ends};
    cairn_err err;
    CHECK_INT(engine_open_at(h.db, &cfg, &h.e, &err), 0);
    add(&h, "cairn: 1\nname: gated\ninputs:\n  kind: { type: string }\nsteps:\n"
            "  - id: gate\n    if: ${{ .inputs.kind == \"approval\" }}\n    uses: approval\n"
            "    with: { prompt: go? }\n"
            "  - id: after\n    uses: set\n    with: { done: true }\n");
    static char ids[RUNS][CAIRN_RUN_ID_MAX];
    int parked = 0;
    for (int i = 0; i < RUNS; i++)
        start(&h, i % 3 == 0 ? "{\"kind\":\"approval\"}" : "{\"kind\":\"quick\"}", ids[i]);
    pthread_t loop;
    CHECK_INT(pthread_create(&loop, NULL, engine_thread, h.e), 0);
    CHECK(wait_for_successes(&ends, RUNS - RUNS / 3));
    for (int i = 0; i < RUNS; i += 3, parked++)
        CHECK_INT(cairn_journal_command(h.db, ids[i], "decide",
                                    "{\"step\":\"gate\",\"decision\":\"approve\",\"by\":\"t\"}", &err), 0);
    cairn_engine_wake(h.e);
    CHECK(wait_for_successes(&ends, RUNS));
    cairn_engine_request_stop(h.e);
    void *rc = NULL;
    pthread_join(loop, &rc);
    CHECK_INT((int)(intptr_t)rc, 0);
    CHECK_INT(parked, RUNS / 3);
    for (int i = 0; i < RUNS; i += 3) {
        jv run = show(&h, ids[i]);
        CHECK_AT(run, "status", "succeeded");
        CHECK_AT(run, "steps.gate.status", "succeeded");
        jv_free(run);
    }
    free_h(&h);
}

/* A caller's command (cairn_engine_command: the local socket, the API)
 * is one of the five a user may send: the engines' own "child", forged or
 * not, and an unknown type are refused as types, before any run is looked
 * for; a user's type goes on to look for the run (none here). */
TEST(engine_command_refuses_the_engines_own_and_unknown_types) {
    harness h = {0};
    open_engine(&h, false);
    cairn_err err;
    int64_t seq = 0;
    CHECK_INT(cairn_engine_command(h.e, "r1", "child", "{\"child\":\"r2\"}", &seq, &err),
              CAIRN_EINVAL);
    CHECK(strstr(err.msg, "no command 'child'") != NULL);
    CHECK_INT(cairn_engine_command(h.e, "r1", "explode", "{}", &seq, &err), CAIRN_EINVAL);
    CHECK_INT(cairn_engine_command(h.e, "r1", "pause", "{}", &seq, &err), CAIRN_ENOTFOUND);
    CHECK_INT(seq, -1);
    free_h(&h);
}
