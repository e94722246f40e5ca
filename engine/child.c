/*
 * child.c - child workflows: a `workflow` step starts a run of another
 * workflow and waits for it without a thread.
 *
 * The parent's child_started and the child's run_created are appended in the
 * same orchestrator turn, so they reach the journal in one commit: there is
 * never a parent waiting for a child that does not exist.  The child is named
 * by `with.name` and is the newest definition of that name in the journal
 * (`cairn run FILE` stores every *.yaml beside FILE).  When the child ends its
 * parent's step takes its outputs, or fails with kind "child" and the
 * child's error.  Cancelling a parent cancels its children.  After a crash,
 * a parent whose child ended meanwhile takes the outcome on recovery.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "engine/engine_int.h"

static jv get(jv o, const char *key) {
    return jv_get_kind(o) == JV_KIND_OBJECT ? jv_object_get(jv_copy(o), jv_string(key)) : jv_null();
}

/* Each start of a child is an attempt of the step, numbered like any other,
 * so that `retry` counts them and `with` may read .step.attempt (a second
 * attempt can ask the child for something else). */
void eng_start_child(cairn_engine *e, eng_run *r, int i, int index) {
    const cairn_step *step = r->plan->steps[i];
    jv with = jv_invalid();
    cairn_err err;
    char hash[65], child[CAIRN_RUN_ID_MAX];
    if (index >= 0) {
        eng_attempt_failed(e, r, i, index, step->retry.max_attempts,
                           eng_error("schema", "a workflow step cannot use foreach"));
        return;
    }
    int attempt = eng_next_attempt(&r->st->steps[i], -1);
    if (eng_scoped_input(r, i, -1, attempt, &with, &err) != 0) {
        eng_attempt_failed(e, r, i, -1, attempt, eng_error("expression", err.msg));
        return;
    }
    jv name = get(with, "name"), inputs = get(with, "inputs");
    eng_plan *plan = NULL;
    int rc = jv_get_kind(name) == JV_KIND_STRING
                 ? cairn_journal_find_definition(e->journal, jv_string_value(name), hash, &err)
                 : cairn_err_set(&err, CAIRN_EINVAL, "workflow: `name` must be a string");
    if (rc == 0) plan = eng_plan_for(e, hash, NULL, &err);
    if (plan && jv_get_kind(inputs) == JV_KIND_NULL) {
        jv_free(inputs);
        inputs = jv_object();
    }
    if (plan) {   /* a child whose inputs are refused is never announced */
        jv checked = jv_invalid();
        rc = cairn_workflow_check_inputs(plan->wf, inputs, &checked, &err);
        jv_free(checked);
        if (rc) plan = NULL;
    }
    eng_emit(e, r, CAIRN_EV_STEP_STARTED, i, -1, attempt, jv_object_set(jv_object(), jv_string("input"), with));
    if (plan) {
        jv trigger = jv_object_set(jv_object(), jv_string("source"), jv_string("workflow"));
        trigger = jv_object_set(trigger, jv_string("parent"), jv_string(r->st->id));
        trigger = jv_object_set(trigger, jv_string("step"), jv_string(r->plan->ids[i]));
        trigger = jv_object_set(trigger, jv_string("user"), get(r->st->trigger, "user"));
        cairn_new_run_id(child);   /* announced first, so the parent's event precedes the child's */
        eng_emit(e, r, CAIRN_EV_CHILD_STARTED, i, -1, attempt,
                 jv_object_set(jv_object(), jv_string("child"), jv_string(child)));
        rc = eng_start_run(e, plan, jv_copy(inputs), trigger, r->st->id, child, &err);
    } else {
        rc = rc ? rc : CAIRN_ENOTFOUND;
    }
    jv_free(inputs);
    jv_free(name);
    if (rc) eng_attempt_failed(e, r, i, -1, attempt, eng_error("schema", err.msg));
}

/* The outcome of a child (state borrowed) for the parent's step i: like an
 * action's result, a success must also meet retry.until, and a failure is
 * retried while the step has attempts left. */
static void take_outcome(cairn_engine *e, eng_run *parent, int i, const cairn_run_state *child) {
    int attempt = parent->st->steps[i].attempts;
    jv error = jv_null();
    if (child->status == CAIRN_RUN_SUCCEEDED && eng_until_met(parent, i, child->outputs, &error)) {
        eng_emit(e, parent, CAIRN_EV_STEP_SUCCEEDED, i, -1, attempt,
                 jv_object_set(jv_object(), jv_string("output"), jv_copy(child->outputs)));
        eng_step_done(e, parent, i);
    } else {
        if (child->status != CAIRN_RUN_SUCCEEDED) {
            jv msg = get(child->error, "message");
            char text[1024];
            snprintf(text, sizeof text, "child run %s %s%s%s", child->id,
                     cairn_run_status_name(child->status), jv_get_kind(msg) == JV_KIND_STRING ? ": " : "",
                     jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "");
            jv_free(msg);
            jv_free(error);
            error = eng_error("child", text);
        }
        eng_attempt_failed(e, parent, i, -1, attempt, error);
    }
    eng_schedule(e, parent);
}

static int step_waiting_for(const eng_run *parent, const char *child) {
    for (int i = 0; i < parent->st->n_steps; i++)
        if (parent->st->steps[i].status == CAIRN_STEP_WAITING &&
            strcmp(parent->st->steps[i].child, child) == 0)
            return i;
    return -1;
}

void eng_child_ended(cairn_engine *e, eng_run *child) {
    child->parent_told = true;
    eng_run *parent = eng_find_run(e, child->st->parent);
    int i = parent && !parent->ended ? step_waiting_for(parent, child->st->id) : -1;
    if (i >= 0) take_outcome(e, parent, i, child->st);
}

void eng_reconcile_children(cairn_engine *e, eng_run *parent) {
    for (int i = 0; i < parent->st->n_steps; i++) {
        const cairn_step_state *s = &parent->st->steps[i];
        if (s->status != CAIRN_STEP_WAITING || !s->child[0] || eng_find_run(e, s->child)) continue;
        cairn_run_state *st = NULL;
        cairn_err err;
        if (cairn_journal_load_run(e->journal, s->child, &st, NULL, &err) == 0 &&
            cairn_run_status_terminal(st->status))
            take_outcome(e, parent, i, st);
        cairn_run_state_free(st);
    }
}

void eng_cancel_children(cairn_engine *e, eng_run *r) {
    for (int k = 0; k < eng_run_count(e); k++) {
        eng_run *c = eng_run_at(e, k);
        if (c->st->parent && strcmp(c->st->parent, r->st->id) == 0) eng_cancel_run(e, c, 0);
    }
}
