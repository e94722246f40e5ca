/*
 * Approval quorum counting, in-process: decisions arrive as commands (as
 * from `cairn approve` in another process) while the engine runs on its own
 * thread, and what the engine made of them is read back from the journal:
 * which decisions it journaled, in order, and where the step ended.
 */
#include "common/mem.h"
#include "engine_harness.h"
#include "test.h"

static char *gate_workflow(const char *with) {
    return cairn_sprintf("cairn: 1\nname: gated\nsteps:\n"
                         "  - id: gate\n    uses: approval\n    with: %s\n"
                         "  - id: after\n    uses: set\n    with: { done: true }\n", with);
}

static void decide(harness *h, const char *run_id, const char *by, const char *decision) {
    char *data = cairn_sprintf("{\"step\":\"gate\",\"decision\":\"%s\",\"by\":\"%s\"}", decision, by);
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
            jv what = jv_object_get(d, jv_string("decision"));
            cairn_buf_printf(&b, "%s%c ", jv_string_value(by),
                             strcmp(jv_string_value(what), "approve") == 0 ? '+' : '-');
            jv_free(by);
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
