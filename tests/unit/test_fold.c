#include "common/mem.h"
#include "engine/fold.h"
#include "test.h"

static char *ids[] = {"b", "a", "c"};

static void apply(cairn_run_state *st, int64_t seq, cairn_event_type t, const char *step,
                  int attempt, const char *data, int want) {
    cairn_event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.run_id, sizeof ev.run_id, "r1");
    ev.seq = seq;
    ev.time_ms = seq * 10;
    ev.type = t;
    ev.step = (char *)step;
    ev.attempt = attempt;
    ev.data = (char *)data;
    cairn_err err;
    int rc = cairn_fold_event(st, &ev, &err);
    if (rc != want) TEST_FAIL("seq %lld: got %d want %d (%s)", (long long)seq, rc, want, err.msg);
}

TEST(fold_tracks_steps_through_their_states) {
    cairn_run_state *st = cairn_run_state_new("r1", ids, 3);
    apply(st, 1, CAIRN_EV_RUN_CREATED, NULL, 0, "{\"workflow\":\"w\",\"inputs\":{\"x\":1}}", 0);
    CHECK_INT(st->status, CAIRN_RUN_RUNNING);
    apply(st, 2, CAIRN_EV_STEP_STARTED, "a", 1, "{}", 0);
    CHECK_INT(st->steps[1].status, CAIRN_STEP_RUNNING);
    CHECK(st->steps[1].in_flight);
    apply(st, 3, CAIRN_EV_STEP_SUCCEEDED, "a", 1, "{\"output\":{\"v\":2}}", 0);
    CHECK_INT(st->steps[1].status, CAIRN_STEP_SUCCEEDED);
    CHECK(!st->steps[1].in_flight);
    CHECK_INT(jv_number_value(jv_object_get(jv_copy(st->steps[1].output), jv_string("v"))), 2);
    apply(st, 4, CAIRN_EV_STEP_SKIPPED, "b", 0, "{}", 0);
    CHECK_INT(st->steps[0].status, CAIRN_STEP_SKIPPED);
    apply(st, 5, CAIRN_EV_STEP_STARTED, "c", 1, "{}", 0);
    apply(st, 6, CAIRN_EV_STEP_CRASHED, "c", 1, "{\"action\":\"retry\"}", 0);
    CHECK_INT(st->steps[2].status, CAIRN_STEP_PENDING);
    apply(st, 7, CAIRN_EV_STEP_STARTED, "c", 2, "{}", 0);
    apply(st, 8, CAIRN_EV_STEP_FAILED, "c", 2, "{\"error\":{\"kind\":\"exit\",\"message\":\"1\"}}", 0);
    CHECK_INT(st->steps[2].status, CAIRN_STEP_FAILED);
    CHECK_INT(st->steps[2].attempts, 2);
    apply(st, 9, CAIRN_EV_RUN_FAILED, NULL, 0, "{\"error\":{\"kind\":\"exit\"}}", 0);
    CHECK_INT(st->status, CAIRN_RUN_FAILED);
    jv j = cairn_run_state_to_json(st);
    jv s = jv_dump_string(j, JV_PRINT_SORTED);
    CHECK_CONTAINS(jv_string_value(s), "\"a\":{\"attempts\":1,\"error\":null,\"output\":{\"v\":2},\"status\":\"succeeded\"}");
    jv_free(s);
    cairn_run_state_free(st);
}

TEST(fold_refuses_gaps_unknown_steps_and_events_after_the_end) {
    cairn_run_state *st = cairn_run_state_new("r1", ids, 3);
    apply(st, 2, CAIRN_EV_STEP_STARTED, "a", 1, "{}", CAIRN_ECORRUPT);      /* no run_created */
    apply(st, 1, CAIRN_EV_RUN_CREATED, NULL, 0, "{}", 0);
    apply(st, 3, CAIRN_EV_STEP_STARTED, "a", 1, "{}", CAIRN_ECORRUPT);      /* gap */
    apply(st, 2, CAIRN_EV_STEP_STARTED, "zz", 1, "{}", CAIRN_ECORRUPT);     /* unknown step */
    apply(st, 2, CAIRN_EV_RUN_CREATED, NULL, 0, "{}", CAIRN_ECORRUPT);      /* twice */
    apply(st, 2, CAIRN_EV_RUN_SUCCEEDED, NULL, 0, "{\"outputs\":{}}", 0);
    apply(st, 3, CAIRN_EV_STEP_STARTED, "a", 1, "{}", CAIRN_ECORRUPT);      /* after the end */
    cairn_run_state_free(st);
}

TEST(fold_builds_foreach_output_from_items_in_order) {
    cairn_run_state *st = cairn_run_state_new("r1", ids, 3);
    apply(st, 1, CAIRN_EV_RUN_CREATED, NULL, 0, "{}", 0);
    apply(st, 2, CAIRN_EV_STEP_EXPANDED, "a", 0, "{\"count\":2}", 0);
    apply(st, 3, CAIRN_EV_STEP_STARTED, "a", 1, "{\"index\":1}", 0);
    apply(st, 4, CAIRN_EV_STEP_STARTED, "a", 1, "{\"index\":0}", 0);
    apply(st, 5, CAIRN_EV_STEP_SUCCEEDED, "a", 1, "{\"index\":1,\"output\":\"second\"}", 0);
    apply(st, 6, CAIRN_EV_STEP_SUCCEEDED, "a", 1, "{\"index\":0,\"output\":\"first\"}", 0);
    apply(st, 7, CAIRN_EV_STEP_SUCCEEDED, "a", 0, "{}", 0);
    apply(st, 8, CAIRN_EV_STEP_STARTED, "a", 1, "{\"index\":5}", CAIRN_ECORRUPT);
    jv out = jv_dump_string(jv_copy(st->steps[1].output), 0);
    CHECK_STR(jv_string_value(out), "[\"first\",\"second\"]");
    jv_free(out);
    cairn_run_state_free(st);
}

TEST(fold_keeps_the_journaled_foreach_list_and_counts_items) {
    cairn_run_state *st = cairn_run_state_new("r1", ids, 3);
    apply(st, 1, CAIRN_EV_RUN_CREATED, NULL, 0, "{}", 0);
    apply(st, 2, CAIRN_EV_STEP_EXPANDED, "a", 0, "{\"count\":3,\"items\":[1]}", CAIRN_ECORRUPT);
    apply(st, 2, CAIRN_EV_STEP_EXPANDED, "a", 0, "{\"count\":1,\"items\":\"x\"}", CAIRN_ECORRUPT);
    apply(st, 2, CAIRN_EV_STEP_EXPANDED, "a", 0, "{\"count\":3,\"items\":[\"x\",\"y\",\"z\"]}", 0);
    jv list = jv_dump_string(jv_copy(st->steps[1].item_list), 0);
    CHECK_STR(jv_string_value(list), "[\"x\",\"y\",\"z\"]");
    jv_free(list);
    apply(st, 3, CAIRN_EV_STEP_STARTED, "a", 1, "{\"index\":0}", 0);
    apply(st, 4, CAIRN_EV_STEP_SUCCEEDED, "a", 1, "{\"index\":0,\"output\":1}", 0);
    apply(st, 5, CAIRN_EV_STEP_STARTED, "a", 1, "{\"index\":1}", 0);
    apply(st, 6, CAIRN_EV_STEP_FAILED, "a", 1, "{\"index\":1,\"error\":{\"kind\":\"exit\"}}", 0);
    apply(st, 7, CAIRN_EV_STEP_STARTED, "a", 1, "{\"index\":2}", 0);
    CHECK_INT(st->steps[1].items_succeeded, 1);
    CHECK_INT(st->steps[1].items_failed, 1);
    apply(st, 8, CAIRN_EV_STEP_CRASHED, "a", 1, "{\"index\":2,\"action\":\"retry\"}", 0);
    apply(st, 9, CAIRN_EV_STEP_STARTED, "a", 2, "{\"index\":2}", 0);
    apply(st, 10, CAIRN_EV_STEP_SUCCEEDED, "a", 2, "{\"index\":2,\"output\":3}", 0);
    CHECK_INT(st->steps[1].items_succeeded, 2);
    CHECK_INT(st->steps[1].items_failed, 1);
    cairn_run_state_free(st);
}

TEST(fold_marks_unfinished_steps_cancelled_with_the_run) {
    cairn_run_state *st = cairn_run_state_new("r1", ids, 3);
    apply(st, 1, CAIRN_EV_RUN_CREATED, NULL, 0, "{}", 0);
    apply(st, 2, CAIRN_EV_STEP_STARTED, "b", 1, "{}", 0);
    apply(st, 3, CAIRN_EV_STEP_SUCCEEDED, "b", 1, "{\"output\":null}", 0);
    apply(st, 4, CAIRN_EV_RUN_CANCEL_REQUESTED, NULL, 0, "{}", 0);
    CHECK(st->cancel_requested);
    apply(st, 5, CAIRN_EV_RUN_CANCELLED, NULL, 0, "{}", 0);
    CHECK_INT(st->steps[0].status, CAIRN_STEP_SUCCEEDED);
    CHECK_INT(st->steps[1].status, CAIRN_STEP_CANCELLED);
    CHECK_INT(st->status, CAIRN_RUN_CANCELLED);
    cairn_run_state_free(st);
}

TEST(fold_keeps_process_groups_of_attempts_in_flight) {
    cairn_run_state *st = cairn_run_state_new("r1", ids, 3);
    apply(st, 1, CAIRN_EV_RUN_CREATED, NULL, 0, "{}", 0);
    apply(st, 2, CAIRN_EV_STEP_EXPANDED, "a", 0, "{\"count\":2}", 0);
    apply(st, 3, CAIRN_EV_STEP_STARTED, "a", 1, "{\"index\":1}", 0);
    apply(st, 4, CAIRN_EV_STEP_SPAWNED, "a", 1, "{\"host\":\"h\",\"index\":1,\"pgid\":700,\"start\":9}", 0);
    apply(st, 5, CAIRN_EV_STEP_STARTED, "c", 1, "{}", 0);
    apply(st, 6, CAIRN_EV_STEP_SPAWNED, "c", 1, "{\"host\":\"h\",\"pgid\":800,\"start\":10}", 0);
    const cairn_spawned *p = cairn_run_state_spawned(st, 1, 1, 1);
    CHECK(p != NULL);
    CHECK_INT(p->pgid, 700);
    CHECK_INT(p->start, 9);
    CHECK_STR(p->host, "h");
    CHECK(cairn_run_state_spawned(st, 1, 0, 1) == NULL);     /* another item */
    CHECK(cairn_run_state_spawned(st, 1, -1, 1) == NULL);    /* the step, not the item */
    CHECK_INT(cairn_run_state_spawned(st, 2, -1, 1)->pgid, 800);
    /* Records of ended attempts make room; those in flight are kept. */
    int64_t seq = 7;
    for (int k = 0; k < 40; k++) {
        char data[160];
        apply(st, seq++, CAIRN_EV_STEP_STARTED, "b", k + 1, "{}", 0);
        snprintf(data, sizeof data, "{\"host\":\"h\",\"pgid\":%d,\"start\":1}", 1000 + k);
        apply(st, seq++, CAIRN_EV_STEP_SPAWNED, "b", k + 1, data, 0);
        apply(st, seq++, CAIRN_EV_STEP_RETRYING, "b", k + 1, "{\"retry_at\":0}", 0);
    }
    CHECK(st->cap_spawned <= 8);
    CHECK_INT(cairn_run_state_spawned(st, 1, 1, 1)->pgid, 700);
    CHECK_INT(cairn_run_state_spawned(st, 2, -1, 1)->pgid, 800);
    apply(st, seq++, CAIRN_EV_STEP_SPAWNED, "a", 1, "{\"index\":4,\"pgid\":5}", CAIRN_ECORRUPT);
    cairn_run_state_free(st);
}

/* paused is a status of a running run, changed with updated_at (status_ms)
 * as the runs table's row is; a rollback reads compensating, paused or not. */
TEST(fold_pause_reads_paused_only_while_running) {
    cairn_run_state *st = cairn_run_state_new("r1", ids, 3);
    apply(st, 1, CAIRN_EV_RUN_CREATED, NULL, 0, "{}", 0);
    apply(st, 2, CAIRN_EV_RUN_PAUSED, NULL, 0, "{}", 0);
    CHECK_INT(st->status, CAIRN_RUN_PAUSED);
    CHECK_INT(cairn_run_state_status(st), CAIRN_RUN_PAUSED);
    CHECK_INT(st->status_ms, 20);
    apply(st, 3, CAIRN_EV_RUN_UNPAUSED, NULL, 0, "{}", 0);
    CHECK_INT(st->status, CAIRN_RUN_RUNNING);
    CHECK_INT(st->status_ms, 30);
    apply(st, 4, CAIRN_EV_RUN_COMPENSATING, NULL, 0, "{\"error\":{\"kind\":\"x\"}}", 0);
    apply(st, 5, CAIRN_EV_RUN_PAUSED, NULL, 0, "{}", 0);
    CHECK_INT(st->status, CAIRN_RUN_COMPENSATING);
    CHECK(st->paused);
    apply(st, 6, CAIRN_EV_RUN_UNPAUSED, NULL, 0, "{}", 0);
    CHECK_INT(st->status, CAIRN_RUN_COMPENSATING);
    CHECK_INT(st->status_ms, 40);
    cairn_run_state_free(st);
}

/* Each transition is checked against the state it leaves (fold.h). */
TEST(fold_refuses_a_transition_from_a_state_it_does_not_leave) {
    cairn_run_state *st = cairn_run_state_new("r1", ids, 3);
    apply(st, 1, CAIRN_EV_RUN_CREATED, NULL, 0, "{}", 0);
    apply(st, 2, CAIRN_EV_STEP_SUCCEEDED, "a", 1, "{\"output\":1}", CAIRN_ECORRUPT);
    apply(st, 2, CAIRN_EV_STEP_CRASHED, "a", 1, "{\"action\":\"retry\"}", CAIRN_ECORRUPT);
    apply(st, 2, CAIRN_EV_APPROVAL_DECIDED, "a", 0, "{\"decision\":\"approve\"}", CAIRN_ECORRUPT);
    apply(st, 2, CAIRN_EV_STEP_STARTED, "a", 1, "{}", 0);
    apply(st, 3, CAIRN_EV_STEP_STARTED, "a", 2, "{}", CAIRN_ECORRUPT);     /* running already */
    apply(st, 3, CAIRN_EV_STEP_SKIPPED, "a", 0, "{}", CAIRN_ECORRUPT);
    apply(st, 3, CAIRN_EV_STEP_SUCCEEDED, "a", 1, "{\"output\":1}", 0);
    apply(st, 4, CAIRN_EV_STEP_FAILED, "a", 1, "{\"error\":{}}", CAIRN_ECORRUPT);  /* done */
    apply(st, 4, CAIRN_EV_STEP_STARTED, "a", 2, "{}", CAIRN_ECORRUPT);
    /* items: each is checked on its own */
    apply(st, 4, CAIRN_EV_STEP_EXPANDED, "b", 0, "{\"count\":2}", 0);
    apply(st, 5, CAIRN_EV_STEP_SUCCEEDED, "b", 1, "{\"index\":1,\"output\":1}", CAIRN_ECORRUPT);
    apply(st, 5, CAIRN_EV_STEP_STARTED, "b", 1, "{\"index\":1}", 0);
    apply(st, 6, CAIRN_EV_STEP_SUCCEEDED, "b", 1, "{\"index\":1,\"output\":1}", 0);
    CHECK_INT(st->steps[0].items[1].status, CAIRN_STEP_SUCCEEDED);
    cairn_run_state_free(st);
}

#define FORK_CREATED "{\"fork\":{\"run\":\"r0\",\"step\":\"c\"},\"inputs\":{},\"trigger\":{},\"workflow\":\"w\"}"

TEST(fold_takes_carried_results_at_a_forks_start) {
    cairn_run_state *st = cairn_run_state_new("r1", ids, 3);
    apply(st, 1, CAIRN_EV_RUN_CREATED, NULL, 0, FORK_CREATED, 0);
    CHECK_STR(st->fork_run, "r0");
    CHECK_STR(st->fork_step, "c");
    apply(st, 2, CAIRN_EV_STEP_CARRIED, "a", 0,
          "{\"approval\":{\"decisions\":[{\"by\":\"ann\"}]},\"attempts\":2,\"child\":\"k1\","
          "\"error\":null,\"from_run\":\"r0\",\"from_seq\":7,\"output\":{\"v\":3},\"status\":\"succeeded\"}", 0);
    apply(st, 3, CAIRN_EV_STEP_CARRIED, "b", 0,
          "{\"from_run\":\"r0\",\"from_seq\":4,\"output\":null,\"status\":\"skipped\"}", 0);
    const cairn_step_state *a = &st->steps[1];
    CHECK_INT(a->status, CAIRN_STEP_SUCCEEDED);
    CHECK_INT(a->attempts, 2);
    CHECK(!a->in_flight);
    CHECK_INT(a->carried_seq, 7);
    CHECK_INT(a->done_seq, 2);
    CHECK_STR(a->child, "k1");
    CHECK_INT(jv_get_kind(a->approval), JV_KIND_OBJECT);
    CHECK_INT(st->steps[0].status, CAIRN_STEP_SKIPPED);
    apply(st, 4, CAIRN_EV_STEP_STARTED, "a", 1, "{}", CAIRN_ECORRUPT);   /* carried: done */
    apply(st, 4, CAIRN_EV_STEP_STARTED, "c", 1, "{}", 0);
    jv s = jv_dump_string(cairn_run_state_to_json(st), JV_PRINT_SORTED);
    CHECK_CONTAINS(jv_string_value(s), "\"carried\":{\"run\":\"r0\",\"seq\":7}");
    CHECK_CONTAINS(jv_string_value(s), "\"fork\":{\"run\":\"r0\",\"step\":\"c\"}");
    jv_free(s);
    cairn_run_state_free(st);
}

TEST(fold_refuses_carried_results_outside_a_forks_start) {
    const char *carried = "{\"from_run\":\"r0\",\"from_seq\":4,\"status\":\"succeeded\"}";
    cairn_run_state *st = cairn_run_state_new("r1", ids, 3);
    apply(st, 1, CAIRN_EV_RUN_CREATED, NULL, 0, "{\"workflow\":\"w\"}", 0);
    apply(st, 2, CAIRN_EV_STEP_CARRIED, "a", 0, carried, CAIRN_ECORRUPT);   /* not a fork */
    cairn_run_state_free(st);
    st = cairn_run_state_new("r1", ids, 3);
    apply(st, 1, CAIRN_EV_RUN_CREATED, NULL, 0, FORK_CREATED, 0);
    apply(st, 2, CAIRN_EV_STEP_CARRIED, "a", 0,
          "{\"from_run\":\"r0\",\"from_seq\":4,\"status\":\"running\"}", CAIRN_ECORRUPT);
    apply(st, 2, CAIRN_EV_STEP_CARRIED, "a", 0, "{\"from_run\":\"r0\",\"status\":\"succeeded\"}",
          CAIRN_ECORRUPT);   /* from no event */
    apply(st, 2, CAIRN_EV_STEP_STARTED, "b", 1, "{}", 0);
    apply(st, 3, CAIRN_EV_STEP_CARRIED, "a", 0, carried, CAIRN_ECORRUPT);   /* after a step began */
    cairn_run_state_free(st);
}

/* A status as the runs table spells it names an end exactly when the
 * status it names is terminal: every status, spelled exactly. */
TEST(fold_run_status_names_end_as_their_statuses_do) {
    for (int s = 0; s <= CAIRN_RUN_PAUSED; s++) {
        const char *name = cairn_run_status_name((cairn_run_status)s);
        CHECK(cairn_run_status_name_ends(name) == cairn_run_status_terminal((cairn_run_status)s));
    }
    CHECK(cairn_run_status_name_ends("succeeded"));
    CHECK(!cairn_run_status_name_ends("succeeded "));
    CHECK(!cairn_run_status_name_ends("Failed"));
    CHECK(!cairn_run_status_name_ends(""));
    CHECK(!cairn_run_status_name_ends(NULL));
}
