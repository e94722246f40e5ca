/*
 * attempt.c - one attempt of an action, from render to journaled result.
 *
 *   render `with` -> prepare (checks it) -> append step_started
 *   -> wait until step_started is durable (invariant 1)
 *   -> execute on a worker (or inline for pure actions) -> finish
 *   -> append step_succeeded / step_failed, and let the scheduler go on.
 *
 * The idempotency key is <run id>/<step id>[/<index>]: the same in every
 * attempt, so a retry after a crash can be recognised downstream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/mem.h"
#include "engine/engine_int.h"

static void attempt_free(eng_attempt *a) {
    eng_text_memo_clear(&a->input);
    free(a);
}

static void fail_before_start(cairn_engine *e, eng_attempt *a, jv error) {
    eng_run *r = a->run;
    if (a->index < 0 && r->st->steps[a->step].attempts < a->attempt)
        r->st->steps[a->step].attempts = a->attempt;   /* journaled with the failure */
    eng_attempt_failed(e, r, a->step, a->index, a->attempt, error);
    attempt_free(a);
}

int eng_step_input(eng_run *r, int i, int index, int attempt, jv *with, cairn_err *err) {
    const eng_carried *c = eng_carried_for(cairn_action_find(r->plan->steps[i]->uses));
    if (c && c->input) return c->input(r, i, index, attempt, with, err);
    return eng_scoped_input(r, i, index, attempt, with, err);
}

void eng_start_attempt(cairn_engine *e, eng_run *r, int i, int index) {
    const cairn_step *step = r->plan->steps[i];
    const char *id = r->plan->ids[i];
    const cairn_step_state *s = &r->st->steps[i];
    const cairn_action *action = cairn_action_find(step->uses);
    const eng_carried *carried = eng_carried_for(action);
    if (carried) {   /* the engine carries it out itself: no attempt */
        carried->start(e, r, i, index);
        return;
    }
    eng_attempt *a = cairn_calloc(1, sizeof *a);
    a->run = r;
    a->step = i;
    a->index = index;
    a->attempt = eng_next_attempt(s, index);
    a->action = action;
    eng_idem_key(r, i, index, a->idem_key, sizeof a->idem_key);
    a->info = (cairn_attempt_info){.run_id = r->st->id, .step_id = id,
                                   .idempotency_key = a->idem_key, .attempt = a->attempt,
                                   .stop = &a->stop, .env = (const char *const *)r->env,
                                   .spawned = eng_attempt_spawned, .spawned_ud = e->inbox};
    if (a->action == NULL) {
        fail_before_start(e, a, eng_error("schema", "no such action"));
        return;
    }
    jv with = jv_invalid();
    cairn_err err;
    cairn_buf text = CAIRN_BUF_INIT;   /* with's text, written as it is rendered */
    if (eng_scoped_input_text(r, i, index, a->attempt, &with, &text, &err) != 0) {
        cairn_buf_free(&text);
        fail_before_start(e, a, eng_error("expression", err.msg));
        return;
    }
    eng_text_memo_set(&a->input, with, &text);
    cairn_fail fail;
    cairn_fail_clear(&fail);
    if (a->action->prepare(with, &a->info, &a->job, &fail) != 0) {
        jv_free(with);
        fail_before_start(e, a, eng_error(fail.kind[0] ? fail.kind : "schema", fail.message));
        return;
    }
    a->ticket = eng_emit_step(e, r, CAIRN_EV_STEP_STARTED, i, index, a->attempt, a->idem_key,
                             &a->input, with);
    eng_attempt_started(e, a);
}

static void dispatch(cairn_engine *e, eng_attempt *a) {
    const cairn_step *step = a->run->plan->steps[a->step];
    if ((a->run->st->cancel_requested && !eng_is_rollback_step(a->run, a->step)) || a->run->lost)
        a->stop.requested = 1;
    if (eng_past_grace(e, cairn_now_ms())) {
        a->stop.requested = 1;
        a->interrupted = true;
    }
    if (step->timeout_ms > 0) a->info.deadline_ms = cairn_now_ms() + step->timeout_ms;
    if (atomic_load(&a->stop.requested)) {
        eng_finish_attempt(e, a);   /* never began: the job is dropped, not executed */
    } else if ((a->action->flags & CAIRN_ACTION_INLINE) && !e->cfg.pool_only) {
        a->executed = true;
        a->action->execute(a->job, &a->info);
        eng_finish_attempt(e, a);
    } else {
        a->executed = true;
        eng_pool_queue(e->pool, a);
    }
}

void eng_start_side_notify(cairn_engine *e, eng_run *r, int i, jv with) {
    eng_attempt *a = cairn_calloc(1, sizeof *a);
    a->run = r;
    a->step = i;
    a->index = -1;
    a->attempt = r->st->steps[i].attempts;
    a->side = true;
    a->action = cairn_action_find("notify");
    snprintf(a->idem_key, sizeof a->idem_key, "%s/%s/notify", r->st->id, r->plan->ids[i]);
    a->info = (cairn_attempt_info){.run_id = r->st->id, .step_id = r->plan->ids[i],
                                   .idempotency_key = a->idem_key, .attempt = a->attempt,
                                   .stop = &a->stop, .env = (const char *const *)r->env};
    cairn_fail fail = {{0}, {0}};
    if (a->action == NULL || a->action->prepare(with, &a->info, &a->job, &fail) != 0) {
        jv err = eng_error(fail.kind[0] ? fail.kind : "schema", fail.message[0] ? fail.message : "no notify action");
        eng_emit(e, r, CAIRN_EV_APPROVAL_NOTIFIED, i, -1, a->attempt,
                 jv_object_set(jv_object(), jv_string("error"), err));
        jv_free(with);
        free(a);
        return;
    }
    jv_free(with);
    a->ticket = eng_next_ticket(e);   /* after the request it announces is durable */
    eng_attempt_started(e, a);
}

/* Start every attempt whose step_started is durable.  When many runs wait on
 * one commit, the events their attempts produce go to the writer, and the
 * attempts queued for the pool to the workers, every CAIRN_SUBMIT_EVERY
 * attempts rather than all at the end: the writer and the workers start on
 * the first of them while this thread works on the rest, so the threads
 * overlap instead of taking turns. */
void eng_dispatch_durable(cairn_engine *e) {
    int since_submit = 0;
    for (eng_attempt *a; (a = eng_take_ready(e, false)) != NULL;) {
        dispatch(e, a);
        if (++since_submit == CAIRN_SUBMIT_EVERY) {
            eng_submit(e, false);
            eng_pool_flush(e->pool);
            since_submit = 0;
        }
    }
    eng_pool_flush(e->pool);
}

static void record_result(cairn_engine *e, eng_attempt *a, int rc, jv output,
                          const cairn_fail *fail) {
    eng_run *r = a->run;
    jv error = jv_null();
    if (rc == 0 && eng_until_met(r, a->step, output, &error)) {
        eng_emit_step(e, r, CAIRN_EV_STEP_SUCCEEDED, a->step, a->index, a->attempt, NULL,
                      &a->input, output);
        if (a->index < 0) eng_step_done(e, r, a->step);
        else eng_item_finished(e, r, a->step, a->index, true, jv_null());
        return;
    }
    if (rc != 0) error = eng_error(fail->kind[0] ? fail->kind : "failed", fail->message);
    jv_free(output);
    eng_attempt_failed(e, r, a->step, a->index, a->attempt, error);
}

void eng_finish_attempt(cairn_engine *e, eng_attempt *a) {
    eng_run *r = a->run;
    eng_attempt_ended(e, a);
    jv output = jv_invalid();
    cairn_fail fail;
    cairn_fail_clear(&fail);
    int rc;
    if (a->executed) {
        rc = a->action->finish(a->job, &output, &fail);
    } else {
        if (a->action->discard) a->action->discard(a->job);
        rc = cairn_fail_set(&fail, "cancelled", "stopped before it began");
    }
    if (eng_is_sticky(e) || r->lost) {   /* a lost run's results are another engine's */
        jv_free(output);
    } else if (a->side) {
        jv data = rc == 0 ? jv_object_set(jv_object(), jv_string("output"), output)
                          : (jv_free(output),
                             jv_object_set(jv_object(), jv_string("error"),
                                           eng_error(fail.kind[0] ? fail.kind : "failed", fail.message)));
        eng_emit(e, r, CAIRN_EV_APPROVAL_NOTIFIED, a->step, -1, a->attempt, data);
    } else if (a->interrupted && rc != 0) {
        jv_free(output);
        eng_emit(e, r, CAIRN_EV_STEP_INTERRUPTED, a->step, a->index, a->attempt, jv_object());
        if (a->index >= 0) r->items_running[a->step]--;
    } else if (r->st->cancel_requested && rc != 0 && !eng_is_rollback_step(r, a->step)) {
        jv_free(output);
        jv error = eng_error("cancelled", "the run was cancelled");
        jv data = jv_object_set(jv_object(), jv_string("error"), error);
        eng_emit(e, r, CAIRN_EV_STEP_FAILED, a->step, a->index, a->attempt, data);
    } else {
        record_result(e, a, rc, output, &fail);
    }
    attempt_free(a);
    if (!r->lost) eng_schedule(e, r);
}

void eng_stop_attempts(cairn_engine *e, eng_run *r) {
    for (eng_attempt *a = eng_live_first(e); a; a = a->live_next) {
        if (r && a->run != r) continue;
        if (r == NULL) a->interrupted = true;
        atomic_store(&a->stop.requested, 1);
    }
    if (!eng_is_sticky(e) && (r || cairn_journal_lease_held(e->journal))) return;
    /* After a journal failure nothing more becomes durable, and a stop
     * without a lease starts nothing: attempts waiting for their started
     * event will never run. */
    for (eng_attempt *a; (a = eng_take_ready(e, true)) != NULL;) eng_finish_attempt(e, a);
}
