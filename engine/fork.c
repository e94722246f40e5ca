/*
 * fork.c - forking an ended run from one of its steps (fork.h says which
 * steps run again and what a carried result holds).
 *
 * The old run is folded from the journal, with its chain checked, by the
 * same fold recovery uses; nothing of it is written.  The fork is an
 * ordinary run from its first commit on: recovery, cancel and the rollback
 * know nothing of forks, and a carried step, done from its step_carried,
 * can never start (the fold refuses a step_started for a done step).
 */
#include "engine/fork.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/mem.h"
#include "engine/engine_int.h"

#define MASK "***"   /* what cairn_secrets_mask leaves of a secret */

/* The old run as its journal ended it, and what the fold forgets of it. */
typedef struct origin {
    eng_plan *plan;
    cairn_run_state *st;
    bool *run_failed;           /* per step: skipped because the run failed first */
} origin;

static void origin_free(origin *o) {
    cairn_run_state_free(o->st);
    free(o->run_failed);
}

/* Steps skipped by a failing run (step_skipped{reason}) rather than by
 * their `if`: the fold keeps no reason, so it is read from the events. */
static void note_run_failed(origin *o, const cairn_event *evs, int n) {
    for (int i = 0; i < n; i++) {
        if (evs[i].type != CAIRN_EV_STEP_SKIPPED || evs[i].step == NULL || evs[i].data == NULL ||
            strstr(evs[i].data, "\"run_failed\"") == NULL)
            continue;
        int k = cairn_run_state_step(o->st, evs[i].step);
        if (k >= 0) o->run_failed[k] = true;
    }
}

static int load_origin(cairn_engine *e, const char *run_id, origin *o, cairn_err *err) {
    cairn_event *evs = NULL;
    int n = 0;
    char pin[65];
    int rc = cairn_journal_load_events(e->journal, run_id, &evs, &n, pin, err);
    if (rc == 0 && (o->plan = eng_plan_for(e, pin, run_id, err)) == NULL) rc = err->code;
    if (rc == 0) {
        o->st = cairn_run_state_new(run_id, o->plan->ids, o->plan->n_all);
        o->run_failed = cairn_calloc((size_t)o->plan->n_all + 1, sizeof *o->run_failed);
        note_run_failed(o, evs, n);
        rc = cairn_journal_fold(e->journal, o->st, evs, n, err);
    }
    if (rc == 0 && !cairn_run_status_terminal(o->st->status))
        rc = cairn_err_set(err, CAIRN_ESTATE, "run %s is %s: a run is forked once it has ended"
                           " (wait for it, or cancel it)", run_id,
                           cairn_run_status_name(cairn_run_state_status(o->st)));
    cairn_events_free(evs, n);
    return rc;
}

/* The index of step id among the workflow's `steps`, or an error with a
 * did-you-mean. */
static int find_step(const origin *o, const char *id, int *out, cairn_err *err) {
    int i = cairn_run_state_step(o->st, id);
    if (i >= 0 && i < o->plan->n_main) {
        *out = i;
        return 0;
    }
    if (i >= 0)
        return cairn_err_set(err, CAIRN_ENOTFOUND, "step '%s' of run %s runs only in a rollback"
                             " (on_failure or compensate): fork from a step of `steps`", id,
                             o->st->id);
    const char *hint = cairn_workflow_suggest_step(o->plan->wf, id);
    if (hint)
        return cairn_err_set(err, CAIRN_ENOTFOUND, "run %s has no step '%s' (did you mean '%s'?)",
                             o->st->id, id, hint);
    return cairn_err_set(err, CAIRN_ENOTFOUND, "run %s has no step '%s'", o->st->id, id);
}

/* Whether v holds the mask of a secret, in a string or an object key. */
static bool has_mask(jv v) {
    bool found = false;
    switch (jv_get_kind(v)) {
    case JV_KIND_STRING: return strstr(jv_string_value(v), MASK) != NULL;
    case JV_KIND_ARRAY:
        jv_array_foreach(v, i, x) {
            found = found || has_mask(x);
            jv_free(x);
        }
        return found;
    case JV_KIND_OBJECT:
        jv_object_foreach(v, k, x) {
            found = found || strstr(jv_string_value(k), MASK) != NULL || has_mask(x);
            jv_free(k);
            jv_free(x);
        }
        return found;
    default: return false;
    }
}

/* Why step i's old result cannot be carried, or NULL when it can. */
static const char *cannot_carry(const origin *o, int i) {
    const cairn_step_state *s = &o->st->steps[i];
    int comp = o->plan->comp_of[i];
    if (comp >= 0) {
        const cairn_step_state *c = &o->st->steps[comp];
        if (c->attempts > 0 || c->status == CAIRN_STEP_SUCCEEDED || c->status == CAIRN_STEP_FAILED)
            return "its compensate body ran there (its effect was undone)";
    }
    switch (s->status) {
    case CAIRN_STEP_SUCCEEDED: break;
    case CAIRN_STEP_SKIPPED:
        if (o->run_failed[i]) return "it never ran there (the run failed first)";
        break;
    case CAIRN_STEP_FAILED:
        if (!o->plan->steps[i]->continue_on_error) return "it failed there";
        break;
    case CAIRN_STEP_CANCELLED: return "it was cancelled there";
    default: return "it never ran there";
    }
    return NULL;
}

static void add_note(jv *notes, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_note(jv *notes, const char *fmt, ...) {
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    *notes = jv_array_append(*notes, jv_string(text));
}

/* What the fork does with each step of `steps`. */
typedef struct fork_plan {
    bool *again;                 /* runs again (else carried) */
    int *cause;                  /* runs again: -1 for why[i], else a step it needs that does */
    const char **why;
    int *stack;
} fork_plan;

static void plan_free(fork_plan *fp) {
    free(fp->again);
    free(fp->cause);
    free(fp->why);
    free(fp->stack);
}

/* Step i runs again for why, and so does every step that needs it,
 * transitively. */
static void run_again(const eng_plan *p, fork_plan *fp, int i, const char *why) {
    int top = 0;
    fp->again[i] = true;
    fp->cause[i] = -1;
    fp->why[i] = why;
    fp->stack[top++] = i;
    while (top > 0) {
        int at = fp->stack[--top];
        for (int k = 0; k < p->n_dependents[at]; k++) {
            int d = p->dependents[at][k];
            if (d < p->n_main && !fp->again[d]) {
                fp->again[d] = true;
                fp->cause[d] = at;
                fp->stack[top++] = d;
            }
        }
    }
}

/* Which steps run again: `from` and what needs it, then each other step
 * whose result cannot be carried (a note says why) and what needs it. */
static void plan_steps(const origin *o, int from, fork_plan *fp, jv *notes) {
    const eng_plan *p = o->plan;
    size_t n = (size_t)p->n_main + 1;
    fp->again = cairn_calloc(n, sizeof *fp->again);
    fp->cause = cairn_calloc(n, sizeof *fp->cause);
    fp->why = cairn_calloc(n, sizeof *fp->why);
    fp->stack = cairn_calloc(n, sizeof *fp->stack);
    run_again(p, fp, from, "the step forked from");
    for (int i = 0; i < p->n_main; i++) {
        const char *why = fp->again[i] ? NULL : cannot_carry(o, i);
        if (why == NULL) continue;
        add_note(notes, "step %s runs again: %s", p->ids[i], why);
        run_again(p, fp, i, why);
    }
}

/* The plan as people read it: [{step, action: "carry", status, from_seq}
 * or {step, action: "run", why}], in the workflow's order. */
static jv plan_json(const origin *o, const fork_plan *fp) {
    jv out = jv_array();
    for (int i = 0; i < o->plan->n_main; i++) {
        const cairn_step_state *s = &o->st->steps[i];
        jv one = jv_object_set(jv_object(), jv_string("step"), jv_string(o->plan->ids[i]));
        one = jv_object_set(one, jv_string("action"), jv_string(fp->again[i] ? "run" : "carry"));
        if (!fp->again[i]) {
            one = jv_object_set(one, jv_string("status"), jv_string(cairn_step_status_name(s->status)));
            one = jv_object_set(one, jv_string("from_seq"), jv_number((double)s->done_seq));
        } else if (fp->cause[i] < 0) {
            one = jv_object_set(one, jv_string("why"), jv_string(fp->why[i]));
        } else {
            one = jv_object_set(one, jv_string("why"), jv_string_fmt("needs %s, which runs again",
                                                                     o->plan->ids[fp->cause[i]]));
        }
        out = jv_array_append(out, one);
    }
    return out;
}

/* The old run's inputs with each of `given` (consumed) in place; an old
 * input kept that the journal holds masked is refused. */
static int fork_inputs(const origin *o, jv given, jv *out, cairn_err *err) {
    jv inputs = jv_copy(o->st->inputs);
    int rc = 0;
    if (jv_get_kind(inputs) != JV_KIND_OBJECT) {
        jv_free(inputs);
        inputs = jv_object();
    }
    jv_object_foreach(inputs, k, v) {
        if (rc == 0 && !jv_object_has(jv_copy(given), jv_copy(k)) && has_mask(v))
            rc = cairn_err_set(err, CAIRN_EINVAL, "input '%s' of run %s was journaled masked (it"
                               " held a secret): give it again with --input %s=...",
                               jv_string_value(k), o->st->id, jv_string_value(k));
        jv_free(k);
        jv_free(v);
    }
    jv_object_foreach(given, k, v) inputs = jv_object_set(inputs, k, v);
    jv_free(given);
    if (rc) jv_free(inputs);
    else *out = inputs;
    return rc;
}

/* The fork's trigger: the old run's, with `user` the one who forks. */
static jv fork_trigger(const origin *o, const char *user) {
    jv t = jv_get_kind(o->st->trigger) == JV_KIND_OBJECT ? jv_copy(o->st->trigger) : jv_object();
    return jv_object_set(t, jv_string("user"), jv_string(user));
}

/* Record run_id as the next fork of from_run (fork.h: the claims). */
static int link_fork(cairn_journal *j, const char *from_run, const char *run_id, const char *step,
                     cairn_err *err) {
    char space[CAIRN_RUN_ID_MAX + sizeof CAIRN_FORK_SPACE], key[24];
    snprintf(space, sizeof space, "%s%s", CAIRN_FORK_SPACE, from_run);
    jv v = jv_object_set(jv_object(), jv_string("run"), jv_string(run_id));
    v = jv_object_set(v, jv_string("step"), jv_string(step));
    char *value = cairn_json_text(v);
    jv_free(v);
    int rc = CAIRN_EEXISTS;
    for (long n = 0; rc == CAIRN_EEXISTS; n++) {   /* the first key free; a race takes the next */
        char *held = NULL;
        snprintf(key, sizeof key, "%ld", n);
        rc = cairn_journal_get_claim(j, space, key, &held, err);
        free(held);
        held = NULL;
        if (rc == 0) rc = CAIRN_EEXISTS;
        else if (rc == CAIRN_ENOTFOUND) rc = cairn_journal_claim(j, space, key, value, NULL, &held, err);
        free(held);
    }
    free(value);
    return rc;
}

/* step_carried data for step i of the old run. */
static jv carried_data(const origin *o, int i) {
    const cairn_step_state *s = &o->st->steps[i];
    jv d = jv_object_set(jv_object(), jv_string("from_run"), jv_string(o->st->id));
    d = jv_object_set(d, jv_string("from_seq"), jv_number((double)s->done_seq));
    d = jv_object_set(d, jv_string("status"), jv_string(cairn_step_status_name(s->status)));
    d = jv_object_set(d, jv_string("output"), jv_copy(s->output));
    d = jv_object_set(d, jv_string("error"), jv_copy(s->error));
    d = jv_object_set(d, jv_string("attempts"), jv_number(s->attempts));
    if (jv_get_kind(s->approval) == JV_KIND_OBJECT)
        d = jv_object_set(d, jv_string("approval"), jv_copy(s->approval));
    if (s->child[0]) d = jv_object_set(d, jv_string("child"), jv_string(s->child));
    return d;
}

/* Append the carried results, in the order the old run ended the steps. */
static void carry(cairn_engine *e, eng_run *r, const origin *o, const bool *again) {
    int n = 0, *order = cairn_calloc((size_t)o->plan->n_main + 1, sizeof *order);
    for (int i = 0; i < o->plan->n_main; i++)
        if (!again[i]) order[n++] = i;
    const cairn_step_state *s = o->st->steps;
    for (int a = 1; a < n; a++)   /* insertion sort by done_seq: n is a workflow's steps */
        for (int b = a; b > 0 && s[order[b - 1]].done_seq > s[order[b]].done_seq; b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    for (int k = 0; k < n; k++)
        eng_emit(e, r, CAIRN_EV_STEP_CARRIED, order[k], -1, 0, carried_data(o, order[k]));
    free(order);
}

/* A note for each carried step whose `with`, `if` or `foreach` reads
 * .inputs, when inputs change: it keeps what it did with the old ones. */
static void note_inputs_read(const origin *o, const bool *again, jv given, jv *notes) {
    if (jv_get_kind(given) != JV_KIND_OBJECT || jv_object_length(jv_copy(given)) == 0) return;
    const cairn_exprset *x = o->plan->wf->exprs;
    for (int i = 0; i < o->plan->n_main; i++) {
        const cairn_step *s = o->plan->steps[i];
        if (again[i]) continue;
        if (cairn_tmpl_reads(s->with, x, "inputs") || (s->if_ && cairn_tmpl_reads(s->if_, x, "inputs")) ||
            (s->foreach && cairn_tmpl_reads(s->foreach, x, "inputs")))
            add_note(notes, "step %s is carried: it reads .inputs, and keeps what it did with the"
                     " old ones", o->plan->ids[i]);
    }
}

int cairn_engine_fork_run(cairn_engine *e, const cairn_fork_req *req, char run_id[CAIRN_RUN_ID_MAX],
                          jv *report, cairn_err *err) {
    origin o = {0};
    fork_plan fp = {0};
    jv notes = jv_array(), fork_in = jv_invalid(), checked = jv_invalid();
    eng_run *r = NULL;
    int from = -1;
    run_id[0] = '\0';
    int rc = load_origin(e, req->run, &o, err);
    if (rc == 0) rc = find_step(&o, req->step, &from, err);
    if (rc == 0) rc = fork_inputs(&o, jv_copy(req->inputs), &fork_in, err);
    if (rc == 0) rc = cairn_workflow_check_inputs(o.plan->wf, fork_in, &checked, err);
    if (rc == 0) {
        plan_steps(&o, from, &fp, &notes);
        note_inputs_read(&o, fp.again, req->inputs, &notes);
    }
    if (rc == 0 && !req->dry_run) {
        cairn_new_run_id(run_id);
        rc = link_fork(e->journal, req->run, run_id, req->step, err);
    }
    if (rc == 0 && !req->dry_run) {
        jv fork = jv_object_set(jv_object(), jv_string("run"), jv_string(req->run));
        fork = jv_object_set(fork, jv_string("step"), jv_string(req->step));
        rc = eng_create_run(e, o.plan, jv_copy(fork_in), fork_trigger(&o, req->user), NULL,
                            jv_object_set(jv_object(), jv_string("fork"), fork), run_id, &r, err);
    }
    if (rc == 0 && !req->dry_run) {
        carry(e, r, &o, fp.again);   /* before anything else of the run: in its first commit */
        eng_run_rebuild(e, r);
        eng_schedule(e, r);
    }
    if (rc == 0 && report) {
        jv out = jv_object_set(jv_object(), jv_string("inputs"), checked);
        out = jv_object_set(out, jv_string("notes"), notes);
        *report = jv_object_set(out, jv_string("steps"), plan_json(&o, &fp));
    } else {
        jv_free(checked);
        jv_free(notes);
    }
    jv_free(fork_in);
    plan_free(&fp);
    origin_free(&o);
    return rc;
}

/* ---- the old run's side ------------------------------------------------------ */

int cairn_fork_list(cairn_journal *j, const char *run_id, jv *out, cairn_err *err) {
    char space[CAIRN_RUN_ID_MAX + sizeof CAIRN_FORK_SPACE], key[24];
    snprintf(space, sizeof space, "%s%s", CAIRN_FORK_SPACE, run_id);
    *out = jv_array();
    int rc = 0;
    for (long n = 0; rc == 0; n++) {
        char *value = NULL;
        snprintf(key, sizeof key, "%ld", n);
        rc = cairn_journal_get_claim(j, space, key, &value, err);
        if (rc) break;
        jv link = cairn_json_parse(value, strlen(value));
        jv run = jv_get_kind(link) == JV_KIND_OBJECT ? jv_object_get(jv_copy(link), jv_string("run"))
                                                     : jv_invalid();
        cairn_run_row row;
        cairn_err miss;
        if (jv_get_kind(run) == JV_KIND_STRING &&
            cairn_journal_get_run(j, jv_string_value(run), &row, &miss) == 0) {
            cairn_run_row_clear(&row);
            *out = jv_array_append(*out, jv_copy(link));
        }
        jv_free(run);
        jv_free(link);
        free(value);
    }
    if (rc == CAIRN_ENOTFOUND) return 0;
    jv_free(*out);
    *out = jv_invalid();
    return rc;
}
