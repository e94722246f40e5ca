/*
 * recover.c - bringing runs back from the journal.
 *
 * A run is loaded by folding its events (the same fold live execution uses),
 * checking the hash chain on the way.  Then every attempt that was in flight
 * when its engine died goes to the step's on_crash:
 *   retry  step_crashed{action: retry}: the step is pending again and starts
 *          a new attempt with the same idempotency key;
 *   fail   step_crashed{action: fail}, then step_failed with kind "crash";
 *   ask    (approvals) treated as fail until approvals exist.
 * Steps that are done are never started again (invariant 2).  Before an
 * in-flight attempt is retried, failed or asked about, what is left of the
 * process group it started is killed (orphan.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "engine/engine_int.h"
#include "engine/owner.h"

static int verify_link(const cairn_event *ev, const unsigned char *prev, cairn_chain *chain,
                       cairn_err *err) {
    cairn_event copy = *ev;
    cairn_chain_hash(chain, prev, &copy);
    if (memcmp(copy.hash, ev->hash, CAIRN_HASH_LEN) == 0) return 0;
    return cairn_err_set(err, CAIRN_ECORRUPT,
                         "run %s: event %lld does not match the journal's hash chain"
                         " (edited, removed or reordered events)",
                         ev->run_id, (long long)ev->seq);
}

/* Fold events into st, verifying the chain when chain is not NULL.  Each
 * event is cleared once folded (the state holds what it needs), so a long
 * run's parsed events are not all held at once. */
static int fold_events(cairn_run_state *st, cairn_event *evs, int n, cairn_chain *chain,
                       cairn_err *err) {
    for (int i = 0; i < n; i++) {
        int rc = cairn_event_parse_data(&evs[i], err);
        if (rc == 0 && chain) rc = verify_link(&evs[i], i ? st->head : NULL, chain, err);
        if (rc == 0) rc = cairn_fold_apply(st, &evs[i], err);
        cairn_event_clear(&evs[i]);
        if (rc) return rc;
    }
    return 0;
}

int cairn_definition_load(cairn_store *s, const char *hash, const char *run_id,
                          cairn_workflow **wf, cairn_err *err) {
    char *src = NULL, *path = NULL, actual[65];
    size_t len = 0;
    *wf = NULL;
    int rc = s->ops->get_definition(s, hash, &src, &len, &path, err);
    if (rc == 0) {
        cairn_workflow_hash(src, len, actual);
        if (strcmp(actual, hash) != 0)
            rc = cairn_err_set(err, CAIRN_ECORRUPT,
                               "%s%s%sthe stored definition does not match the hash it is pinned"
                               " to: pinned %s, stored source hashes to %s (the definitions"
                               " table was edited); refusing to use it",
                               run_id ? "run " : "", run_id ? run_id : "", run_id ? ": " : "",
                               hash, actual);
    }
    if (rc == 0) {
        cairn_diags d = CAIRN_DIAGS_INIT;
        rc = cairn_workflow_load(path, src, len, cairn_action_lookup_sig, wf, &d);
        if (rc) cairn_diags_to_err(&d, err);
        cairn_diags_free(&d);
    }
    free(src);
    free(path);
    return rc;
}

/* The definition a run is pinned to: the def_hash of its run_created event
 * (covered by the chain), which its runs row must repeat. */
static int run_pin(const cairn_run_row *row, cairn_event *evs, int n, char hash[65],
                   cairn_err *err) {
    if (n == 0 || evs[0].type != CAIRN_EV_RUN_CREATED)
        return cairn_err_set(err, CAIRN_ECORRUPT, "run %s: its journal does not begin with"
                             " run_created (event 1 missing or replaced)", row->id);
    int rc = cairn_event_parse_data(&evs[0], err);
    if (rc) return rc;
    jv h = jv_object_get(jv_copy(evs[0].data), jv_string("def_hash"));
    if (jv_get_kind(h) == JV_KIND_STRING) snprintf(hash, 65, "%s", jv_string_value(h));
    else rc = cairn_err_set(err, CAIRN_ECORRUPT, "run %s: event 1 (run_created) pins no"
                            " definition", row->id);
    jv_free(h);
    if (rc == 0 && strcmp(hash, row->def_hash) != 0)
        rc = cairn_err_set(err, CAIRN_ECORRUPT, "run %s: the runs table names definition %s,"
                           " its run_created event (seq 1) pins %s", row->id, row->def_hash, hash);
    return rc;
}

/* A text column of the runs row against what the fold says it should hold
 * (NULL: SQL NULL). */
static int same_text(const cairn_run_row *row, const char *column, const char *got,
                     const char *want, cairn_err *err) {
    if (got == want || (got && want && strcmp(got, want) == 0)) return 0;
    return cairn_err_set(err, CAIRN_ECORRUPT, "run %s: the runs table says %s = %s, its events"
                         " say %s (the row was edited)", row->id, column, got ? got : "NULL",
                         want ? want : "NULL");
}

static int same_time(const cairn_run_row *row, const char *column, int64_t got, int64_t want,
                     cairn_err *err) {
    if (got == want) return 0;
    return cairn_err_set(err, CAIRN_ECORRUPT, "run %s: the runs table says %s = %lld, its events"
                         " say %lld (the row was edited)", row->id, column, (long long)got,
                         (long long)want);
}

int cairn_run_row_check(const cairn_run_row *row, const cairn_run_state *st, cairn_err *err) {
    int rc = same_text(row, "status", row->status, cairn_run_status_name(st->status), err);
    if (rc == 0) rc = same_text(row, "workflow", row->workflow, st->workflow ? st->workflow : "?", err);
    if (rc == 0) rc = same_text(row, "def_hash", row->def_hash, st->def_hash ? st->def_hash : "", err);
    if (rc == 0) rc = same_text(row, "parent_id", row->parent_id, st->parent, err);
    if (rc == 0) rc = same_time(row, "created_at", row->created_at, st->created_ms, err);
    if (rc == 0) rc = same_time(row, "updated_at", row->updated_at, st->status_ms, err);
    return rc;
}

int cairn_load_run(cairn_store *s, const char *run_id, const unsigned char *key,
                   cairn_run_state **st_out, cairn_workflow **wf_out, cairn_err *err) {
    cairn_run_row row;
    cairn_workflow *wf = NULL;
    cairn_event *evs = NULL;
    cairn_chain *chain = key ? cairn_chain_new(key, 32) : NULL;
    char **ids = NULL, pin[65];
    int n = 0;
    *st_out = NULL;
    *wf_out = NULL;
    int rc = s->ops->get_run(s, run_id, &row, err);
    if (rc) return rc;
    rc = s->ops->load_events(s, row.id, &evs, &n, err);
    if (rc == 0) rc = run_pin(&row, evs, n, pin, err);
    if (rc == 0) rc = cairn_definition_load(s, pin, row.id, &wf, err);
    int n_ids = 0;
    if (rc == 0) {
        ids = cairn_step_ids(wf, &n_ids);
        *st_out = cairn_run_state_new(row.id, ids, n_ids);
        rc = fold_events(*st_out, evs, n, chain, err);
    }
    if (rc == 0) {
        *wf_out = wf;
        wf = NULL;
    } else {
        cairn_run_state_free(*st_out);
        *st_out = NULL;
    }
    cairn_workflow_free(wf);
    cairn_step_ids_free(ids, n_ids);
    cairn_events_free(evs, n);
    cairn_chain_free(chain);
    cairn_run_row_clear(&row);
    return rc;
}

/* Hand each attempt found in flight to its step's on_crash. */
static void handle_crashed(cairn_engine *e, eng_run *r) {
    static const char *const names[] = {"retry", "fail", "ask"};
    const char *why = "the engine stopped while this attempt was running (on_crash: fail)";
    for (int i = 0; i < r->plan->n_all; i++) {
        cairn_step_state *s = &r->st->steps[i];
        cairn_on_crash oc = r->plan->steps[i]->on_crash;
        if (oc == CAIRN_ON_CRASH_ASK && s->n_items > 0) oc = CAIRN_ON_CRASH_FAIL;   /* per item: no */
        jv action = jv_object_set(jv_object(), jv_string("action"), jv_string(names[oc]));
        if (s->in_flight) {
            jv crashed = eng_kill_orphan(r, i, -1, s->attempts, jv_copy(action));
            eng_emit(e, r, CAIRN_EV_STEP_CRASHED, i, -1, s->attempts, crashed);
            if (oc == CAIRN_ON_CRASH_FAIL) {
                jv data = jv_object_set(jv_object(), jv_string("error"), eng_error("crash", why));
                eng_emit(e, r, CAIRN_EV_STEP_FAILED, i, -1, s->attempts, data);
            } else if (oc == CAIRN_ON_CRASH_ASK) {
                eng_ask_after_crash(e, r, i);   /* a person decides whether to run it again */
            }
        }
        for (int k = 0; k < s->n_items; k++) {
            if (!s->items[k].in_flight) continue;
            jv crashed = eng_kill_orphan(r, i, k, s->items[k].attempts, jv_copy(action));
            eng_emit(e, r, CAIRN_EV_STEP_CRASHED, i, k, s->items[k].attempts, crashed);
            if (oc != CAIRN_ON_CRASH_RETRY) {
                jv data = jv_object_set(jv_object(), jv_string("error"), eng_error("crash", why));
                eng_emit(e, r, CAIRN_EV_STEP_FAILED, i, k, s->items[k].attempts, data);
            }
        }
        jv_free(action);
    }
}

int eng_resume_run(cairn_engine *e, const char *run_id, cairn_err *err) {
    if (eng_find_run(e, run_id)) return 0;
    cairn_run_row row;
    cairn_event *evs = NULL;
    int n = 0;
    eng_run *r = NULL;
    int rc = eng_secrets_refresh(e, err);
    if (rc) return rc;
    rc = e->aux->ops->claim_run(e->aux, run_id, e->owner, cairn_owner_alive, err);
    if (rc == 0) rc = e->aux->ops->get_run(e->aux, run_id, &row, err);
    if (rc) return rc;
    char pin[65];
    eng_plan *plan = NULL;
    rc = e->aux->ops->load_events(e->aux, run_id, &evs, &n, err);
    if (rc == 0) rc = run_pin(&row, evs, n, pin, err);
    if (rc == 0 && (plan = eng_plan_for(e, pin, run_id, err)) == NULL) rc = err->code;
    if (rc == 0) {
        r = eng_run_new(e, plan, run_id);
        rc = fold_events(r->st, evs, n, e->chain, err);
    }
    if (rc == 0 && cairn_run_status_terminal(r->st->status))
        rc = cairn_err_set(err, CAIRN_ESTATE, "run %s has already ended (%s)", run_id,
                           cairn_run_status_name(r->st->status));
    if (rc == 0) {
        eng_add_run(e, r);
        handle_crashed(e, r);
        eng_run_rebuild(e, r);
        eng_timers_rearm(e, r);     /* a deadline that passed meanwhile fires at once */
        eng_reconcile_children(e, r);
        eng_apply_commands(e, r);   /* a cancel made while no engine held the run */
        eng_schedule(e, r);
        r = NULL;
    }
    eng_run_free(r);
    cairn_events_free(evs, n);
    cairn_run_row_clear(&row);
    return rc;
}
