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
 *
 * A child ends on the engine that holds it.  Its parent is told in memory
 * when the same engine holds it (a family is held by one engine:
 * journal.h); when another engine does (several engines on one journal:
 * the child was claimed or resumed on its own), the parent's holder is
 * told through the journal, by a "child" command written once the child's
 * end is durable, and reads the outcome from the journal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
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

/* Step i of parent waits for a child this engine does not hold: its
 * outcome from the journal, when it has ended there.  1: it had, and the
 * step took it; 0: it had not; -1: the child could not be read (said, and
 * to be tried again). */
static int outcome_from_journal(cairn_engine *e, eng_run *parent, int i) {
    cairn_run_state *st = NULL;
    cairn_err err;
    char msg[CAIRN_ERR_MSG_MAX + 300];
    const char *child = parent->st->steps[i].child;
    if (cairn_journal_load_run(e->journal, child, &st, NULL, &err) != 0) {
        fprintf(stderr, "cairn: run %s: its child %s cannot be read yet: %s\n", parent->st->id,
                child, cairn_err_format(&err, msg, sizeof msg));
        return -1;
    }
    bool ended = cairn_run_status_terminal(st->status);
    if (ended) take_outcome(e, parent, i, st);
    cairn_run_state_free(st);
    return ended;
}

void eng_reconcile_children(cairn_engine *e, eng_run *parent) {
    for (int i = 0; i < parent->st->n_steps; i++) {
        const cairn_step_state *s = &parent->st->steps[i];
        if (s->status != CAIRN_STEP_WAITING || !s->child[0] || eng_find_run(e, s->child)) continue;
        outcome_from_journal(e, parent, i);
    }
}

void eng_tell_parent_elsewhere(cairn_engine *e, const eng_run *child) {
    const char *parent = child->st->parent;
    /* alone on its journal, the engine holds every live run: a parent not
     * here takes the outcome when it is next resumed */
    if (parent == NULL || eng_find_run(e, parent) || !cairn_journal_shared(e->journal)) return;
    cairn_run_row row = {0};
    cairn_err err;
    char msg[CAIRN_ERR_MSG_MAX + 300];
    int rc = cairn_journal_get_run(e->journal, parent, &row, &err);
    bool waits = rc == 0 && !cairn_run_status_name_ends(row.status);
    cairn_run_row_clear(&row);
    if (waits) {
        jv data = jv_object_set(jv_object(), jv_string("child"), jv_string(child->st->id));
        cairn_buf text = CAIRN_BUF_INIT;
        cairn_json_write(&text, data);
        jv_free(data);
        rc = cairn_journal_put_command(e->journal, parent, "child", text.data, &err);
        cairn_buf_free(&text);
    }
    if (rc && rc != CAIRN_ENOTFOUND)
        fprintf(stderr, "cairn: run %s: its parent %s is not told of its end here (it will be when"
                " it is next resumed): %s\n", child->st->id, parent,
                cairn_err_format(&err, msg, sizeof msg));
}

void eng_child_told(cairn_engine *e, eng_run *parent, const char *data, int64_t command_id) {
    jv d = cairn_json_parse(data, strlen(data));
    jv child = get(d, "child");
    int i = jv_get_kind(child) == JV_KIND_STRING ? step_waiting_for(parent, jv_string_value(child)) : -1;
    jv_free(child);
    jv_free(d);
    int got = i >= 0 && !eng_find_run(e, parent->st->steps[i].child)
                  ? outcome_from_journal(e, parent, i) : 0;
    if (got > 0)
        eng_mark_answer(e, command_id);
    else if (got == 0 && command_id > 0)
        cairn_journal_drop_command(e->journal, command_id);   /* moot: taken already, or no such child */
    /* got < 0: the row stays, and the next look at the commands tries again */
}

void eng_cancel_children(cairn_engine *e, eng_run *r) {
    for (int k = 0; k < eng_run_count(e); k++) {
        eng_run *c = eng_run_at(e, k);
        if (c->st->parent && strcmp(c->st->parent, r->st->id) == 0) eng_cancel_run(e, c, 0);
    }
}
