/*
 * Replay: real runs, made by the engine, replay consistent; each kind of
 * decision, edited in the journal to differ, is reported at the event
 * that records it, with what the journal says and what the replay decides.
 */
#include "actions/action.h"
#include "common/mem.h"
#include "engine/replay.h"
#include "engine_harness.h"
#include "test.h"

/* needs, if, a rendered input, foreach, outputs */
static const char *const FLOW =
    "cairn: 1\nname: flow\n"
    "inputs:\n  go: { type: boolean, default: false }\n"
    "steps:\n"
    "  - id: a\n    uses: set\n    with: { n: 2 }\n"
    "  - id: b\n    needs: [a]\n    if: ${{ .inputs.go }}\n    uses: set\n    with: { x: 1 }\n"
    "  - id: c\n    needs: [a]\n    uses: set\n    with: { m: \"${{ .steps.a.output.n * 10 }}\" }\n"
    "  - id: d\n    needs: [c]\n    foreach: ${{ [1, .steps.a.output.n] }}\n    uses: set\n"
    "    with: { i: \"${{ .item }}\", at: \"${{ .index }}\" }\n"
    "    retry: { max_attempts: 2, until: \"${{ .output.i > 0 }}\" }\n"
    "outputs:\n  m: ${{ .steps.c.output.m }}\n";

/* retries on timeouts, then a rollback of two compensations */
static const char *const UNDO =
    "cairn: 1\nname: undo\n"
    "steps:\n"
    "  - id: r0\n    uses: set\n    with: { v: 0 }\n    compensate: { uses: set, with: { u: 0 } }\n"
    "  - id: r1\n    needs: [r0]\n    uses: set\n    with: { v: 1 }\n"
    "    compensate: { uses: set, with: { u: 1 } }\n"
    "  - id: e\n    needs: [r1]\n    uses: fail\n    with: { kind: timeout, message: slow }\n"
    "    retry: { max_attempts: 3, delay: 1ms, backoff: exponential, on: \"^timeout\" }\n";

typedef struct {
    cairn_event *evs;
    int n;
    const char *src;
} recorded;

/* Run src to its end in an engine and keep its journal. */
static recorded record(const char *src, const char *inputs) {
    harness h = {0};
    char id[CAIRN_RUN_ID_MAX];
    open_engine(&h, false);
    add(&h, src);
    jv run = run_to_end(&h, inputs, id);
    jv_free(run);
    close_h(&h);
    recorded r = {.src = src};
    r.evs = journal_of(&h, id, &r.n);
    free_h(&h);
    return r;
}

static cairn_replay_result replay_with(const char *src, const recorded *r) {
    cairn_workflow *wf = NULL;
    cairn_diags d = CAIRN_DIAGS_INIT;
    CHECK_INT(cairn_workflow_load("t.yaml", src, strlen(src), cairn_action_lookup_sig, &wf, &d), 0);
    cairn_diags_free(&d);
    cairn_replayer *rp = cairn_replayer_new(wf, NULL, NULL, NULL);
    cairn_replay_result res;
    cairn_err err;
    CHECK_INT(cairn_replay_run(rp, r->evs, r->n, &res, &err), 0);
    cairn_replayer_free(rp);
    return res;
}

static cairn_replay_result replay(const recorded *r) { return replay_with(r->src, r); }

/* Index of the k-th event of type (of step, when not NULL). */
static int find(const recorded *r, const char *type, const char *step, int k) {
    for (int i = 0; i < r->n; i++)
        if (strcmp(cairn_event_type_name(r->evs[i].type), type) == 0 &&
            (step == NULL || (r->evs[i].step && strcmp(r->evs[i].step, step) == 0)) && k-- == 0)
            return i;
    TEST_FAIL("no %s of %s", type, step ? step : "the run");
}

/* Give event i new data (JSON, ' for "). */
static void set_data(recorded *r, int i, const char *json) {
    jv v = test_json(json);
    jv text = jv_dump_string(v, 0);
    free(r->evs[i].data);
    r->evs[i].data = cairn_strdup(jv_string_value(text));
    r->evs[i].data_len = strlen(r->evs[i].data);
    jv_free(text);
}

/* Set member key of event i's data to value (JSON, ' for "). */
static void set_member(recorded *r, int i, const char *key, const char *value) {
    jv data = jv_object_set(jv_parse(r->evs[i].data), jv_string(key), test_json(value));
    jv text = jv_dump_string(data, 0);
    free(r->evs[i].data);
    r->evs[i].data = cairn_strdup(jv_string_value(text));
    r->evs[i].data_len = strlen(r->evs[i].data);
    jv_free(text);
}

/* Move event from to position to, the seqs numbered again. */
static void move_event(recorded *r, int from, int to) {
    cairn_event ev = r->evs[from];
    if (from < to) memmove(&r->evs[from], &r->evs[from + 1], (size_t)(to - from) * sizeof ev);
    else memmove(&r->evs[to + 1], &r->evs[to], (size_t)(from - to) * sizeof ev);
    r->evs[to] = ev;
    for (int i = 0; i < r->n; i++) r->evs[i].seq = i + 1;
}

static void done(recorded *r) { cairn_events_free(r->evs, r->n); }

/* Replay r (against src, or the workflow it ran when NULL): it must
 * diverge at event index at, of type on step ("" for the run), in
 * decision, the replay's side saying says.  r is freed; the result is
 * returned for more checks. */
static cairn_replay_result diverges(recorded *r, const char *src, int at, const char *type,
                                    const char *step, const char *decision, const char *says) {
    cairn_replay_result res = replay_with(src ? src : r->src, r);
    done(r);
    if (res.verdict != CAIRN_REPLAY_DIVERGED) TEST_FAIL("no divergence found");
    CHECK_INT(res.seq, at + 1);
    CHECK_STR(cairn_event_type_name(res.type), type);
    CHECK_STR(res.step, step);
    CHECK_STR(res.decision, decision);
    CHECK_CONTAINS(res.replay, says);
    return res;
}

TEST(replay_real_runs_are_consistent) {
    recorded flow = record(FLOW, "{}"), undo = record(UNDO, "{}");
    cairn_replay_result a = replay(&flow), b = replay(&undo);
    CHECK_INT(a.verdict, CAIRN_REPLAY_CONSISTENT);
    CHECK_INT(a.events, flow.n);
    CHECK_STR(a.status, "succeeded");
    /* ready, if, input: a b c d; foreach; items' input and until; end */
    CHECK(a.decisions >= 12);
    CHECK_INT(b.verdict, CAIRN_REPLAY_CONSISTENT);
    CHECK_STR(b.status, "failed");
    CHECK(b.decisions >= 10);
    done(&flow);
    done(&undo);
}

TEST(replay_step_started_before_its_needs_finished) {
    recorded r = record(FLOW, "{}");
    int c = find(&r, "step_started", "c", 0), a_done = find(&r, "step_succeeded", "a", 0);
    move_event(&r, c, a_done);   /* c starts before a has succeeded */
    diverges(&r, NULL, a_done, "step_started", "c", "ready", "c waits for a (running)");
}

TEST(replay_step_that_ran_though_its_if_skips_it) {
    recorded r = record(FLOW, "{\"go\": true}");
    /* the run as if started with go false */
    set_member(&r, find(&r, "run_created", NULL, 0), "inputs", "{'go': false}");
    diverges(&r, NULL, find(&r, "step_started", "b", 0), "step_started", "b", "if",
             "`if` is false: b is skipped");
}

TEST(replay_changed_rendered_input) {
    recorded r = record(FLOW, "{}");
    int c = find(&r, "step_started", "c", 0);
    set_data(&r, c, "{'input': {'m': 21}, 'idempotency_key': 'k'}");
    cairn_replay_result res = diverges(&r, NULL, c, "step_started", "c", "input", "input.m = 20");
    CHECK_STR(res.journal, "input.m = 21");
}

TEST(replay_retry_after_a_kind_retry_on_refuses) {
    recorded r = record(UNDO, "{}");
    int retry = find(&r, "step_retrying", "e", 0);
    set_member(&r, retry, "error", "{'kind': 'schema', 'message': 'slow'}");
    diverges(&r, NULL, retry, "step_retrying", "e", "retry",
             "\"schema: slow\" does not match retry.on ^timeout");
}

TEST(replay_final_failure_where_a_retry_was_due) {
    recorded r = record(UNDO, "{}");
    /* with five attempts allowed, the third's failure is retried */
    char *five = cairn_strdup(UNDO);
    memcpy(strstr(five, "max_attempts: 3"), "max_attempts: 5", 15);
    diverges(&r, five, find(&r, "step_failed", "e", 0), "step_failed", "e", "retry",
             "is retried (attempt 3 of 5)");
    free(five);
}

TEST(replay_back_off_shorter_than_the_delay) {
    recorded r = record(UNDO, "{}");
    int second = find(&r, "step_retrying", "e", 1);   /* exponential: 2 ms after attempt 2 */
    char data[256];
    snprintf(data, sizeof data,
             "{'error': {'kind': 'timeout', 'message': 'slow'}, 'retry_at': %lld}",
             (long long)r.evs[second].time_ms + 1);
    set_data(&r, second, data);
    diverges(&r, NULL, second, "step_retrying", "e", "backoff", "back-off of 2 ms");
}

TEST(replay_rollback_in_the_wrong_order) {
    recorded r = record(UNDO, "{}");
    /* latest completion first: r1's compensation, then r0's; swap them */
    int first = find(&r, "step_started", "r1#compensate", 0);
    int second = find(&r, "step_started", "r0#compensate", 0);
    CHECK(first < second);
    move_event(&r, second, first);       /* r0#compensate started */
    move_event(&r, second + 1, first + 1);   /* r0#compensate succeeded */
    diverges(&r, NULL, first, "step_started", "r0#compensate", "rollback",
             "r1#compensate is next (order: r1#compensate, r0#compensate)");
}

TEST(replay_run_failed_without_its_rollback) {
    recorded r = record(UNDO, "{}");
    int comp = find(&r, "run_compensating", NULL, 0), end = find(&r, "run_failed", NULL, 0);
    move_event(&r, end, comp);   /* the run ends before its rollback */
    diverges(&r, NULL, comp, "run_failed", "", "rollback",
             "the rollback runs first: r1#compensate");
}

TEST(replay_foreach_expanded_to_other_items) {
    recorded r = record(FLOW, "{}");
    int exp = find(&r, "step_expanded", "d", 0);
    set_data(&r, exp, "{'count': 2, 'items': [1, 3]}");
    cairn_replay_result res = diverges(&r, NULL, exp, "step_expanded", "d", "foreach",
                                       "items[1] = 2");
    CHECK_STR(res.journal, "items[1] = 3");
}

TEST(replay_success_that_until_refuses) {
    recorded r = record(FLOW, "{}");
    int item = find(&r, "step_succeeded", "d", 0);
    set_data(&r, item, "{'index': 0, 'output': {'i': 0, 'at': 0}}");
    diverges(&r, NULL, item, "step_succeeded", "d", "until", "`until` is not met");
}

TEST(replay_another_definition_shows_the_first_difference) {
    recorded r = record(FLOW, "{}");
    char *edited = cairn_strdup(FLOW);
    char *at = strstr(edited, "if: ${{ .inputs.go }}");
    memcpy(at, "if: ${{ true       }}", 21);
    diverges(&r, edited, find(&r, "step_skipped", "b", 0), "step_skipped", "b", "if",
             "`if` is true: b starts");
    free(edited);
}

TEST(replay_of_a_run_cut_short_is_unfinished_not_divergent) {
    recorded r = record(UNDO, "{}");
    int cut = find(&r, "step_started", "e", 1) + 1;   /* a crash in attempt 2 */
    for (int i = cut; i < r.n; i++) cairn_event_clear(&r.evs[i]);
    r.n = cut;
    cairn_replay_result res = replay(&r);
    CHECK_INT(res.verdict, CAIRN_REPLAY_UNFINISHED);
    CHECK_STR(res.status, "running");
    CHECK_INT(res.events, cut);
    done(&r);
}

TEST(replay_crash_handled_other_than_on_crash_says) {
    recorded r = record(FLOW, "{}");
    int done_a = find(&r, "step_succeeded", "a", 0);   /* as if a crash found a in flight */
    r.evs[done_a].type = CAIRN_EV_STEP_CRASHED;
    set_data(&r, done_a, "{'action': 'fail'}");
    diverges(&r, NULL, done_a, "step_crashed", "a", "crash", "on_crash is retry");
}

TEST(replay_run_succeeded_before_every_step_was_done) {
    recorded r = record(FLOW, "{}");
    int end = find(&r, "run_succeeded", NULL, 0), d = find(&r, "step_succeeded", "d", 2);
    move_event(&r, end, d);   /* the run ends before the foreach does */
    diverges(&r, NULL, d, "run_succeeded", "", "end", "d is not done (running)");
}
