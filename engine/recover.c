/*
 * recover.c - bringing runs back from the journal.
 *
 * A run is loaded by folding its events (the same fold live execution uses),
 * checking the hash chain on the way.  Then every attempt that was in flight
 * when its engine died goes to the step's on_crash:
 *   retry  step_crashed{action: retry}: the step is pending again and starts
 *          a new attempt with the same idempotency key;
 *   fail   step_crashed{action: fail}, then step_failed with kind "crash";
 *   ask    step_crashed{action: ask}: an approval asks whether to run the
 *          step again (approval.c); not for foreach items, which fail.
 * Steps that are done are never started again (invariant 2).  Before an
 * in-flight attempt is retried, failed or asked about, what is left of the
 * process group it started is killed (orphan.c).
 *
 * Several engines on one journal (journal.h): a run taken over from an
 * engine whose lease lapsed comes back the same way, and a run lost to
 * another engine is dropped here (eng_poll_holds).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "engine/engine_int.h"
#include "engine/owner.h"

cairn_on_crash eng_on_crash(const eng_run *r, int i) {
    cairn_on_crash oc = r->plan->steps[i]->on_crash;
    if (oc == CAIRN_ON_CRASH_ASK && r->st->steps[i].n_items > 0) oc = CAIRN_ON_CRASH_FAIL;   /* per item: no */
    return oc;
}

const char *eng_on_crash_name(cairn_on_crash oc) {
    static const char *const names[] = {"retry", "fail", "ask"};
    return names[oc];
}

/* Hand each attempt found in flight to its step's on_crash. */
static void handle_crashed(cairn_engine *e, eng_run *r) {
    const char *why = "the engine stopped while this attempt was running (on_crash: fail)";
    for (int i = 0; i < r->plan->n_all; i++) {
        cairn_step_state *s = &r->st->steps[i];
        cairn_on_crash oc = eng_on_crash(r, i);
        jv action = jv_object_set(jv_object(), jv_string("action"), jv_string(eng_on_crash_name(oc)));
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

/* A run this engine holds and could not resume: let go (journal.h), so
 * that it is not held here for ever while another engine might resume
 * it; the log says so. */
/* again: the resume failed for a cause that may pass (CAIRN_EIO: the
 * database's or the disk's), so the run may be claimed again, here too. */
static void let_go(cairn_engine *e, const char *run_id, bool again) {
    char msg[CAIRN_ERR_MSG_MAX + 300];
    cairn_err err;
    bool done = false;
    if (cairn_journal_let_go(e->journal, run_id, again, &done, &err) != 0)
        fprintf(stderr, "cairn: run %s: cannot let it go: %s\n", run_id,
                cairn_err_format(&err, msg, sizeof msg));
    else if (done)
        fprintf(stderr, "cairn: run %s: let go, for another engine to resume (%s)\n", run_id,
                again ? "any engine may try it again" : "this one will not try it again");
}

int eng_resume_run(cairn_engine *e, const char *run_id, cairn_err *err) {
    if (eng_find_run(e, run_id)) return 0;
    cairn_event *evs = NULL;
    int n = 0;
    eng_run *r = NULL;
    char pin[65];
    jv created = jv_invalid();
    eng_plan *plan = NULL;
    int rc = eng_secrets_refresh(e, err), claim = -1;
    if (rc == 0) rc = claim = cairn_journal_claim_run(e->journal, run_id, err);
    if (rc == 0) rc = cairn_journal_load_pinned(e->journal, run_id, &evs, &n, pin, &created, err);
    if (rc == 0 && (plan = eng_plan_for(e, pin, run_id, err)) == NULL) rc = err->code;
    if (rc == 0) {
        r = eng_run_new(plan, run_id);
        rc = cairn_journal_fold_pinned(e->journal, r->st, evs, n, created, err);
        created = jv_invalid();
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
    if (rc && claim != CAIRN_EBUSY)   /* held here, as it may be, taken over */
        let_go(e, run_id, rc == CAIRN_EIO);
    eng_run_free(r);
    cairn_events_free(evs, n);
    jv_free(created);
    return rc;
}

/* ---- several engines ------------------------------------------------------- */

static void lose(cairn_engine *e, char **ids, int n) {
    for (int i = 0; i < n; i++) {
        eng_run *r = eng_find_run(e, ids[i]);
        if (r) {
            fprintf(stderr, "cairn: run %s: held by another engine now; dropped here, its"
                    " attempts' results discarded\n", ids[i]);
            eng_lose_run(e, r);   /* forgotten once freed (runs.c) */
            eng_stop_attempts(e, r);   /* their results are discarded */
        } else {
            cairn_journal_forget(e->journal, ids[i]);   /* nothing of it here */
        }
        free(ids[i]);
    }
    free(ids);
}

static void take_over(cairn_engine *e, char **ids, int n) {
    for (int i = 0; i < n; i++) {
        cairn_err err;
        if (eng_resume_run(e, ids[i], &err) == 0) {
            fprintf(stderr, "cairn: run %s: taken over (its engine's lease lapsed, or no engine"
                    " held it)\n", ids[i]);
        } else {
            char msg[CAIRN_ERR_MSG_MAX + 300];
            fprintf(stderr, "cairn: run %s not taken over: %s\n", ids[i],
                    cairn_err_format(&err, msg, sizeof msg));
        }
        free(ids[i]);
    }
    free(ids);
}

/* Runs another engine placed on this one (journal.h): started from their
 * run_created, as a run taken over is. */
static void take_placed(cairn_engine *e, char **ids, int n) {
    for (int i = 0; i < n; i++) {
        cairn_err err;
        if (eng_resume_run(e, ids[i], &err) != 0) {
            char msg[CAIRN_ERR_MSG_MAX + 300];
            fprintf(stderr, "cairn: run %s, placed on this engine, not started: %s\n", ids[i],
                    cairn_err_format(&err, msg, sizeof msg));
        }
        free(ids[i]);
    }
    free(ids);
}

void eng_poll_holds(cairn_engine *e, bool lost_only) {
    char **ids;
    int n = cairn_journal_take_lost(e->journal, &ids);
    if (n || ids) lose(e, ids, n);
    if (lost_only) return;
    eng_free_lost(e);
    if (e->stopping || eng_is_sticky(e)) return;
    n = cairn_journal_take_claimed(e->journal, &ids);
    if (n || ids) take_over(e, ids, n);
    n = cairn_journal_take_placed(e->journal, &ids);
    if (n || ids) take_placed(e, ids, n);
    if (cairn_journal_lease_held(e->journal)) eng_dispatch_durable(e);   /* waited for it */
}
