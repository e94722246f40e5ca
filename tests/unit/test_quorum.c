/*
 * Approval quorum counting, in-process: decisions arrive as commands (as
 * from `cairn approve` in another process, or the API with a token's
 * groups) while the engine runs on its own thread, and what the engine made
 * of them is read back from the journal: which decisions it journaled, in
 * order, and where the step ended.
 */
#include "common/mem.h"
#include "engine/event.h"
#include "engine_harness.h"
#include "test.h"

static char *gate_workflow(const char *with) {
    return cairn_sprintf("cairn: 1\nname: gated\nsteps:\n"
                         "  - id: gate\n    uses: approval\n    with: %s\n"
                         "  - id: after\n    uses: set\n    with: { done: true }\n", with);
}

/* From test_http.c. */
int test_srv_start(const char *script, const char *const *extra);

/* vote: "ann" or "ann@g1,g2" (a token's groups, as the API sends them). */
static void decide(harness *h, const char *run_id, const char *vote, const char *decision) {
    const char *at = strchr(vote, '@');
    char *groups = cairn_strdup(""), *data;
    for (const char *g = at ? at + 1 : NULL; g && *g; g += strcspn(g, ",") + (g[strcspn(g, ",")] != 0)) {
        char *more = cairn_sprintf("%s%s\"%.*s\"", groups, *groups ? "," : "", (int)strcspn(g, ","), g);
        free(groups);
        groups = more;
    }
    data = cairn_sprintf("{\"step\":\"gate\",\"decision\":\"%s\",\"by\":\"%.*s\",\"groups\":[%s]}",
                         decision, (int)(at ? at - vote : (long)strlen(vote)), vote, groups);
    free(groups);
    cairn_err err;
    if (cairn_journal_command(h->db, run_id, "decide", data, &err)) TEST_FAIL("decide: %s", err.msg);
    cairn_engine_wake(h->e);
    free(data);
}

/* The gate's story as journaled: "ann+" an approval, "cy-" a rejection,
 * then how the step ended. */
static char *story(harness *h, const char *run_id) {
    cairn_buf b = CAIRN_BUF_INIT;
    int n = 0;
    cairn_event *evs = journal_of(h, run_id, &n);
    for (int i = 0; i < n; i++) {
        if (evs[i].step == NULL || strcmp(evs[i].step, "gate") != 0) continue;
        if (evs[i].type == CAIRN_EV_APPROVAL_DECIDED) {
            jv d = jv_parse(evs[i].data);
            jv by = jv_object_get(jv_copy(d), jv_string("by"));
            jv as = jv_object_get(jv_copy(d), jv_string("as"));
            jv what = jv_object_get(d, jv_string("decision"));
            cairn_buf_printf(&b, "%s%s%s%s%c ", jv_string_value(by),
                             jv_is_valid(as) ? "(" : "", jv_is_valid(as) ? jv_string_value(as) : "",
                             jv_is_valid(as) ? ")" : "",
                             strcmp(jv_string_value(what), "approve") == 0 ? '+' : '-');
            jv_free(by);
            jv_free(as);
            jv_free(what);
        } else if (evs[i].type == CAIRN_EV_STEP_SUCCEEDED || evs[i].type == CAIRN_EV_STEP_FAILED) {
            cairn_buf_puts(&b, cairn_event_type_name(evs[i].type));
        }
    }
    cairn_events_free(evs, n);
    return b.data ? cairn_buf_detach(&b) : cairn_strdup("");
}

/* Run the gate of `with` to its end with these decisions ("ann+", "cy-"),
 * each sent once the engine asks; returns the run as `show` has it. */
static jv decide_all(harness *h, const char *with, const char *const *votes, int n,
                     char *run_id) {
    char *src = gate_workflow(with);
    open_engine(h, false);
    add(h, src);
    start(h, "{}", run_id);
    pthread_t loop;
    drive_in_thread(h, &loop);
    wait_trace(h, "approval_requested:gate", 1);
    for (int i = 0; i < n; i++) {
        char *by = cairn_strndup(votes[i], strlen(votes[i]) - 1);
        decide(h, run_id, by, votes[i][strlen(votes[i]) - 1] == '+' ? "approve" : "reject");
        free(by);
    }
    join_drive(loop);
    free(src);
    return show(h, run_id);
}

TEST(quorum_needs_distinct_approvers_and_one_counts_once) {
    harness h = {0};
    char id[CAIRN_RUN_ID_MAX];
    static const char *const votes[] = {"ann+", "ann+", "dave+", "bob+", "cy+"};
    jv run = decide_all(&h, "{ prompt: go?, approvers: [ann, bob, cy], quorum: 2 }", votes, 5, id);
    char *s = story(&h, id);
    /* ann's second vote and dave (no approver) are dropped; bob's makes two */
    CHECK_STR(s, "ann+ bob+ step_succeeded");
    CHECK_AT(run, "status", "succeeded");
    CHECK_AT(run, "steps.gate.output.by", "[\"ann\",\"bob\"]");
    CHECK_AT(run, "steps.after.status", "succeeded");
    free(s);
    jv_free(run);
    free_h(&h);
}

TEST(quorum_is_reached_exactly_at_the_last_approval_needed) {
    harness h = {0};
    char id[CAIRN_RUN_ID_MAX];
    static const char *const votes[] = {"ann+", "bob+", "cy+", "dee+"};
    jv run = decide_all(&h, "{ prompt: go?, approvers: [ann, bob, cy, dee], quorum: 3 }", votes,
                        4, id);
    char *s = story(&h, id);
    /* not at two approvals, at three; the fourth comes too late to count */
    CHECK_STR(s, "ann+ bob+ cy+ step_succeeded");
    CHECK_AT(run, "steps.gate.output.by", "[\"ann\",\"bob\",\"cy\"]");
    free(s);
    jv_free(run);
    free_h(&h);
}

TEST(quorum_one_rejection_fails_the_step_whatever_the_approvals) {
    harness h = {0};
    char id[CAIRN_RUN_ID_MAX];
    static const char *const votes[] = {"ann+", "cy-", "bob+"};
    jv run = decide_all(&h, "{ prompt: go?, approvers: [ann, bob, cy], quorum: 2 }", votes, 3, id);
    char *s = story(&h, id);
    CHECK_STR(s, "ann+ cy- step_failed");
    CHECK_AT(run, "status", "failed");
    CHECK_AT(run, "steps.gate.error.kind", "rejected");
    CHECK_AT(run, "steps.after.status", "skipped");
    free(s);
    jv_free(run);
    free_h(&h);
}

TEST(quorum_counts_a_groups_members_by_name_and_no_one_else) {
    harness h = {0};
    char id[CAIRN_RUN_ID_MAX];
    /* cy's groups hold no named one; bo's do (once); a person named like
     * the group, or like its entry, is no member; ann is named */
    static const char *const votes[] = {"cy@dba+", "bo@web,oncall+", "bo@oncall+", "oncall+",
                                        "group:oncall+", "ann+"};
    jv run = decide_all(&h, "{ prompt: go?, approvers: [ann, 'group:oncall'], quorum: 2 }",
                        votes, 6, id);
    char *s = story(&h, id);
    CHECK_STR(s, "bo(group:oncall)+ ann+ step_succeeded");
    CHECK_AT(run, "steps.gate.output.by", "[\"bo\",\"ann\"]");
    free(s);
    jv_free(run);
    free_h(&h);
}

TEST(quorum_a_rejection_through_a_group_fails_the_step) {
    harness h = {0};
    char id[CAIRN_RUN_ID_MAX];
    static const char *const votes[] = {"zed-", "bo@oncall-"};
    jv run = decide_all(&h, "{ prompt: go?, approvers: ['group:oncall'] }", votes, 2, id);
    char *s = story(&h, id);
    CHECK_STR(s, "bo(group:oncall)- step_failed");
    CHECK_AT(run, "steps.gate.error.message", "rejected by bo");
    free(s);
    jv_free(run);
    free_h(&h);
}

TEST(approval_starter_is_the_triggers_user_else_its_source) {
    static const struct { const char *trigger, *want; } cases[] = {
        {"{\"source\":\"api\",\"user\":\"op1\"}", "op1"},
        {"{\"source\":\"cli\",\"user\":\"root\"}", "root"},
        {"{\"source\":\"alertmanager\",\"fingerprint\":\"f1\"}", "alertmanager"},
        {"{\"source\":\"schedule\",\"user\":\"\"}", "schedule"},
        {"{\"user\":7}", NULL},
        {"{}", NULL},
        {"null", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jv t = jv_parse(cases[i].trigger);
        const char *got = cairn_run_starter(t);
        if (cases[i].want == NULL) CHECK(got == NULL);
        else CHECK_STR(got, cases[i].want);
        jv_free(t);
    }
}

TEST(quorum_a_webhooks_source_may_not_approve_its_own_run) {
    harness h = {0};
    char id[CAIRN_RUN_ID_MAX];
    char *src = gate_workflow("{ prompt: go?, approvers: [alertmanager, ann] }");
    cairn_err err;
    open_engine(&h, false);
    add(&h, src);
    if (cairn_engine_start_run(h.e, h.hash, jv_object(),
                               jv_parse("{\"source\":\"alertmanager\",\"fingerprint\":\"f\"}"), id,
                               &err) != 0)
        TEST_FAIL("start: %s", err.msg);
    pthread_t loop;
    drive_in_thread(&h, &loop);
    wait_trace(&h, "approval_requested:gate", 1);
    decide(&h, id, "alertmanager", "approve");
    decide(&h, id, "ann", "approve");
    join_drive(loop);
    char *s = story(&h, id);
    CHECK_STR(s, "ann+ step_succeeded");
    free(s);
    free(src);
    free_h(&h);
}

TEST(quorum_run_ends_only_after_its_approvals_notify_came_back) {
    harness h = {0};
    char id[CAIRN_RUN_ID_MAX];
    int port = test_srv_start("tests/servers/http_target.py", NULL);
    char *with = cairn_sprintf("{ prompt: go?, approvers: [ann], notify: { channel: webhook, "
                               "url: 'http://127.0.0.1:%d/slow/800', json: { a: 1 } } }", port);
    static const char *const votes[] = {"ann+"};
    jv run = decide_all(&h, with, votes, 1, id);   /* decided while the notify is on its way */
    CHECK_AT(run, "status", "succeeded");
    jv evs = events_of(&h, id);
    int notified = -1, ended = -1;
    jv_array_foreach(evs, k, ev) {
        jv type = jv_object_get(ev, jv_string("type"));
        if (strcmp(jv_string_value(type), "approval_notified") == 0) notified = k;
        if (strcmp(jv_string_value(type), "run_succeeded") == 0) ended = k;
        jv_free(type);
    }
    CHECK(notified >= 0 && notified < ended);
    jv_free(evs);
    jv_free(run);
    free(with);
    free_h(&h);
}
