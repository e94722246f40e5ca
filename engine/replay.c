/*
 * replay.c - re-taking a run's decisions over its journal.  See replay.h
 * for what is re-taken and how each is compared; the steps' decisions are
 * replay_step.c's, the run's and the walk are here.
 *
 * Each event: check (the decision, over the state before it), then fold
 * (fold.h, the engine's), then keep the engine's derived state as it does
 * (the document, failing, a foreach's list and window).  A check that
 * finds a difference fills the result and the walk stops.
 */
#include "engine/replay.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "engine/replay_int.h"


cairn_replayer *cairn_replayer_new(cairn_workflow *wf, const cairn_secrets *secrets,
                                   cairn_replay_child_fn child, void *ud) {
    cairn_replayer *rp = cairn_calloc(1, sizeof *rp);
    rp->secrets = secrets;
    rp->child = child;
    rp->ud = ud;
    for (int k = 0; k < wf->n_secrets; k++)
        rp->secrets_missing |= !cairn_secrets_has(secrets, wf->secrets[k].name);
    rp->plan = eng_plan_new(wf);
    return rp;
}

void cairn_replayer_free(cairn_replayer *rp) {
    if (rp == NULL) return;
    eng_plan_free(rp->plan);
    free(rp);
}

/* The decisions' words (replay.h), and whether each renders an expression. */
static const struct {
    const char *name;
    bool renders;
} decisions[] = {
    [D_READY] = {"ready", false},
    [D_IF] = {"if", true},
    [D_INPUT] = {"input", true},
    [D_FOREACH] = {"foreach", true},
    [D_RETRY] = {"retry", false},
    [D_BACKOFF] = {"backoff", false},
    [D_UNTIL] = {"until", true},
    [D_APPROVAL] = {"approval", true},
    [D_WAIT] = {"wait", true},
    [D_CHILD] = {"child", true},
    [D_CRASH] = {"crash", false},
    [D_ROLLBACK] = {"rollback", false},
    [D_END] = {"end", true},
    [D_INPUTS] = {"inputs", true},
    [D_JOURNAL] = {"journal", false},
};


/* ---- telling a difference ----------------------------------------------------- */

bool rp_differ(replay *x, decision d, const char *journal, const char *fmt, ...) {
    cairn_replay_result *o = x->out;
    o->verdict = CAIRN_REPLAY_DIVERGED;
    o->decision = decisions[d].name;
    x->renders = decisions[d].renders;
    if (journal) snprintf(o->journal, sizeof o->journal, "%s", journal);
    else rp_told(x, o->journal, sizeof o->journal);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->replay, sizeof o->replay, fmt, ap);
    va_end(ap);
    return false;
}

/* v (borrowed) as compact JSON, cut to fit. */
const char *rp_text_of(jv v, char *buf, size_t len) {
    jv s = jv_is_valid(v) ? jv_dump_string(jv_copy(v), 0) : jv_string("(absent)");
    snprintf(buf, len, "%s", jv_string_value(s));
    if (strlen(jv_string_value(s)) >= len && len > 4) memcpy(buf + len - 4, "...", 4);
    jv_free(s);
    return buf;
}

/* The first place a and b (borrowed) differ: a path under prefix into
 * path, and each side's value there (borrowed into *pa, *pb, the caller's
 * to free). */
static void first_difference(jv a, jv b, char *path, size_t len, jv *pa, jv *pb) {
    if (jv_get_kind(a) == JV_KIND_OBJECT && jv_get_kind(b) == JV_KIND_OBJECT) {
        jv keys = jv_keys(jv_copy(b)), more = jv_keys(jv_copy(a));   /* b's keys, then a's */
        keys = jv_array_concat(keys, more);
        jv_array_foreach(keys, k, key) {
            jv va = jv_object_get(jv_copy(a), jv_copy(key));
            jv vb = jv_object_get(jv_copy(b), jv_copy(key));
            if (!jv_equal(jv_copy(va), jv_copy(vb))) {
                size_t at = strlen(path);
                snprintf(path + at, len - at, ".%s", jv_string_value(key));
                first_difference(va, vb, path, len, pa, pb);
                jv_free(va), jv_free(vb), jv_free(key), jv_free(keys);
                return;
            }
            jv_free(va), jv_free(vb), jv_free(key);
        }
        jv_free(keys);
    } else if (jv_get_kind(a) == JV_KIND_ARRAY && jv_get_kind(b) == JV_KIND_ARRAY &&
               jv_array_length(jv_copy(a)) == jv_array_length(jv_copy(b))) {
        jv_array_foreach(a, k, va) {
            jv vb = jv_array_get(jv_copy(b), k);
            if (!jv_equal(jv_copy(va), jv_copy(vb))) {
                size_t at = strlen(path);
                snprintf(path + at, len - at, "[%d]", k);
                first_difference(va, vb, path, len, pa, pb);
                jv_free(va), jv_free(vb);
                return;
            }
            jv_free(va), jv_free(vb);
        }
    }
    *pa = jv_copy(a);
    *pb = jv_copy(b);
}

/* Whether the value replay made (consumed; masked here) is the journal's
 * (borrowed); else the difference is told, at its first path under what. */
bool rp_same_value(replay *x, decision d, const char *what, jv made, jv journal) {
    jv masked = cairn_secrets_mask(made, x->rp->secrets);
    if (jv_equal(jv_copy(masked), jv_copy(journal))) {
        jv_free(masked);
        x->out->decisions++;
        return true;
    }
    char path[256], a[CAIRN_REPLAY_TEXT_MAX / 2], b[CAIRN_REPLAY_TEXT_MAX / 2];
    char told[CAIRN_REPLAY_TEXT_MAX];
    snprintf(path, sizeof path, "%s", what);
    jv pa = jv_invalid(), pb = jv_invalid();
    first_difference(journal, masked, path, sizeof path, &pa, &pb);
    snprintf(told, sizeof told, "%s = %s", path, rp_text_of(pa, a, sizeof a));
    rp_differ(x, d, told, "%s = %s", path, rp_text_of(pb, b, sizeof b));
    jv_free(pa);
    jv_free(pb);
    jv_free(masked);
    return false;
}

/* ---- reading the event ------------------------------------------------------ */

jv rp_field(const replay *x, const char *key) {
    return jv_object_get(jv_copy(x->data), jv_string(key));
}

int64_t rp_field_ms(const replay *x, const char *key) {
    jv v = rp_field(x, key);
    int64_t ms = jv_get_kind(v) == JV_KIND_NUMBER ? (int64_t)jv_number_value(v) : 0;
    jv_free(v);
    return ms;
}

jv rp_member(jv o, const char *key) {
    return jv_get_kind(o) == JV_KIND_OBJECT ? jv_object_get(jv_copy(o), jv_string(key)) : jv_null();
}

bool rp_is(jv v, const char *text) {
    return jv_get_kind(v) == JV_KIND_STRING && strcmp(jv_string_value(v), text) == 0;
}

bool rp_error_kind_is(jv error, const char *kind) {
    jv k = rp_member(error, "kind");
    bool is = rp_is(k, kind);
    jv_free(k);
    return is;
}

bool rp_event_error_is(const replay *x, const char *kind) {
    jv e = rp_field(x, "error");
    bool is = rp_error_kind_is(e, kind);
    jv_free(e);
    return is;
}

/* "<kind>: <message>" of data.error, as retry.on reads it. */
const char *rp_error_text(const replay *x, char *buf, size_t len) {
    jv e = rp_field(x, "error");
    jv k = rp_member(e, "kind"), m = rp_member(e, "message");
    snprintf(buf, len, "%s: %s", jv_get_kind(k) == JV_KIND_STRING ? jv_string_value(k) : "",
             jv_get_kind(m) == JV_KIND_STRING ? jv_string_value(m) : "");
    jv_free(k), jv_free(m), jv_free(e);
    return buf;
}

const char *rp_id_of(const replay *x, int i) { return x->r->plan->ids[i]; }

/* What the journal says happened, for a divergence: "b: step_started". */
const char *rp_told(const replay *x, char *buf, size_t len) {
    if (x->index >= 0)
        snprintf(buf, len, "%s item %d: %s (attempt %d)", rp_id_of(x, x->step), x->index,
                 cairn_event_type_name(x->ev->type), x->ev->attempt);
    else if (x->step >= 0)
        snprintf(buf, len, "%s: %s (attempt %d)", rp_id_of(x, x->step),
                 cairn_event_type_name(x->ev->type), x->ev->attempt);
    else
        snprintf(buf, len, "%s", cairn_event_type_name(x->ev->type));
    return buf;
}

const char *rp_why_no_start(const eng_run *r) {
    if (r->st->cancel_requested) return "the run is cancelled: nothing new starts";
    if (r->st->paused) return "the run is paused: nothing new starts";
    return "the run is failing: nothing new starts";
}


/* ---- the run ------------------------------------------------------------------ */

/* The first main step not done, or -1. */
static int first_not_done(const eng_run *r) {
    for (int i = 0; i < r->plan->n_main; i++)
        if (!eng_step_is_done(r, i)) return i;
    return -1;
}

static bool any_in_flight(const cairn_run_state *st) {
    for (int i = 0; i < st->n_steps; i++) {
        if (st->steps[i].in_flight) return true;
        for (int k = 0; k < st->steps[i].n_items; k++)
            if (st->steps[i].items[k].in_flight) return true;
    }
    return false;
}

static bool check_compensating(replay *x) {
    eng_run *r = x->r;
    if (!r->failing && !r->st->cancel_requested)
        return rp_differ(x, D_ROLLBACK, NULL, "the run is neither failing nor cancelled");
    if (any_in_flight(r->st))
        return rp_differ(x, D_ROLLBACK, NULL, "attempts still run: the rollback waits");
    if (eng_rollback_order(r->plan, r->st, r->rollback) == 0)
        return rp_differ(x, D_ROLLBACK, NULL, "there is nothing to roll back");
    x->out->decisions++;
    return true;
}

/* The run ends failed or cancelled: after its rollback, or with none to run. */
static bool check_rollback_done(replay *x) {
    eng_run *r = x->r;
    if (!r->rolling_back) {
        int n = eng_rollback_order(r->plan, r->st, r->rollback);
        if (n == 0) return true;
        return rp_differ(x, D_ROLLBACK, NULL, "the rollback runs first: %s%s",
                         rp_id_of(x, r->rollback[0]), n > 1 ? " and more" : "");
    }
    for (int k = 0; k < r->n_rollback; k++)
        if (!eng_settled(r->st->steps[r->rollback[k]].status))
            return rp_differ(x, D_ROLLBACK, NULL, "%s has not run", rp_id_of(x, r->rollback[k]));
    x->out->decisions++;
    return true;
}

static bool check_run_succeeded(replay *x) {
    eng_run *r = x->r;
    int i = first_not_done(r);
    if (i >= 0)
        return rp_differ(x, D_END, NULL, "%s is not done (%s)", rp_id_of(x, i),
                         cairn_step_status_name(r->st->steps[i].status));
    if (r->failing || r->st->cancel_requested || r->st->paused)
        return rp_differ(x, D_END, NULL, "%s", rp_why_no_start(r));
    jv outputs = jv_invalid(), journal = rp_field(x, "outputs");
    bool ok;
    if (eng_run_outputs(r, &outputs) == 0) {
        ok = rp_same_value(x, D_END, "outputs", outputs, journal);
    } else {
        jv_free(outputs);
        ok = rp_differ(x, D_END, NULL, "an output does not render: the run fails");
    }
    jv_free(journal);
    return ok;
}

static bool check_run_failed(replay *x) {
    jv error = rp_field(x, "error");
    jv output = rp_member(error, "output");
    bool of_output = jv_get_kind(output) == JV_KIND_STRING && rp_error_kind_is(error, "expression");
    jv_free(output);
    jv_free(error);
    if (!of_output && !x->r->failing && !x->r->rolling_back)
        return rp_differ(x, D_END, NULL, "the run is not failing");
    if (!of_output) return check_rollback_done(x);
    jv outputs = jv_invalid();
    bool fails = eng_run_outputs(x->r, &outputs) != 0;
    jv_free(outputs);
    if (fails) return true;
    return rp_differ(x, D_END, NULL, "every output renders");
}

static bool check_created(replay *x) {
    jv inputs = rp_field(x, "inputs"), checked = jv_invalid();
    cairn_err err;
    bool ok;
    if (cairn_workflow_check_inputs(x->r->plan->wf, inputs, &checked, &err) != 0)
        ok = rp_differ(x, D_INPUTS, "run_created", "the inputs are refused: %s", err.msg);
    else
        ok = rp_same_value(x, D_INPUTS, "inputs", checked, inputs);
    jv_free(inputs);
    return ok;
}

static bool check(replay *x) {
    if (x->step >= 0) return rp_check_step(x);
    switch (x->ev->type) {
    case CAIRN_EV_RUN_CREATED: return check_created(x);
    case CAIRN_EV_RUN_COMPENSATING: return check_compensating(x);
    case CAIRN_EV_RUN_SUCCEEDED: return check_run_succeeded(x);
    case CAIRN_EV_RUN_FAILED: return check_run_failed(x);
    case CAIRN_EV_RUN_CANCELLED: return check_rollback_done(x);
    default: return true;   /* records, and commands people gave: nothing decided */
    }
}

/* A render that differs is tried once more over the document rebuilt from
 * the whole state, as the engine rebuilds it after a crash. */
static bool check_either_document(replay *x) {
    if (check(x) || x->lookup_rc) return x->lookup_rc == 0;
    if (x->rp->secrets_missing && x->renders) {   /* it may read that secret */
        x->out->verdict = CAIRN_REPLAY_CONSISTENT;
        x->out->unjudged++;
        return true;
    }
    eng_run *r = x->r;
    cairn_replay_result first = *x->out;
    eng_doc_saved live = eng_doc_save(r);
    for (char **p = r->env; p && *p; p++) free(*p);
    free(r->env);
    r->env = NULL;
    eng_build_ctx(r, x->rp->secrets);
    if (r->rolling_back) r->ctx = jv_object_set(r->ctx, jv_string("error"), jv_copy(r->st->error));
    first.verdict = CAIRN_REPLAY_DIVERGED;
    x->out->verdict = CAIRN_REPLAY_CONSISTENT;
    bool ok = check(x);
    eng_doc_restore(r, live);
    if (!ok) *x->out = first;
    return ok;
}

/* ---- keeping the engine's derived state --------------------------------------- */

static bool holds_place(const cairn_item_state *it) {
    return it->in_flight || it->status == CAIRN_STEP_WAITING;
}

/* A step's end the live engine brings into the document (eng_step_done,
 * eng_step_failed): succeeded, skipped, failed, not by a cancel.  Told by
 * the state the event leaves, not by its type, so that every event that
 * ends a step counts, a fork's carried results among them. */
static bool ends_step(cairn_step_status was, cairn_step_status now) {
    return !eng_settled(was) &&
           (now == CAIRN_STEP_SUCCEEDED || now == CAIRN_STEP_SKIPPED || now == CAIRN_STEP_FAILED);
}

/* After the event is folded: what the engine derives as it goes. */
static void after(replay *x, bool held, cairn_step_status was) {
    eng_run *r = x->r;
    const cairn_event *ev = x->ev;
    int i = x->step;
    if (i >= 0 && x->index >= 0)
        x->holding[i] += holds_place(&r->st->steps[i].items[x->index]) - held;
    if (ev->type == CAIRN_EV_RUN_COMPENSATING) {
        r->rolling_back = r->failing = true;
        r->n_rollback = eng_rollback_order(r->plan, r->st, r->rollback);
        r->ctx = jv_object_set(r->ctx, jv_string("error"), rp_field(x, "error"));
        return;
    }
    if (i < 0 || x->index >= 0) return;
    if (ev->type == CAIRN_EV_STEP_EXPANDED) eng_recall_items(r, i, x->rp->secrets);
    cairn_step_status now = r->st->steps[i].status;
    if (!ends_step(was, now)) return;
    eng_ctx_step(r, i);
    if (now == CAIRN_STEP_FAILED && !eng_is_rollback_step(r, i) &&
        !r->plan->steps[i]->continue_on_error)
        r->failing = true;
}

/* ---- the walk -------------------------------------------------------------------- */

static bool known_place(replay *x) {
    const cairn_run_state *st = x->r->st;
    if (x->ev->step == NULL) return true;
    x->step = cairn_run_state_step(st, x->ev->step);
    if (x->step < 0) return false;
    const cairn_step_state *s = &st->steps[x->step];
    jv idx = rp_field(x, "index");
    x->index = jv_get_kind(idx) == JV_KIND_NUMBER ? (int)jv_number_value(idx) : -1;
    jv_free(idx);
    return x->index < 0 || (s->expanded && x->index < s->n_items);
}

/* One event: check, fold, keep up.  false: the walk stops. */
static bool replay_event(replay *x, const cairn_event *ev) {
    eng_run *r = x->r;
    cairn_err err;
    x->ev = ev;
    x->step = x->index = -1;
    x->data = jv_parse_sized(ev->data ? ev->data : "", ev->data ? (int)strlen(ev->data) : 0);
    bool known = jv_get_kind(x->data) == JV_KIND_OBJECT && known_place(x);
    bool held = known && x->index >= 0 && holds_place(&r->st->steps[x->step].items[x->index]);
    cairn_step_status was = known && x->step >= 0 ? r->st->steps[x->step].status
                                                   : CAIRN_STEP_PENDING;
    bool ok = !known || ev->seq == 1 || check_either_document(x);
    if (ok && !x->lookup_rc) {
        if (cairn_fold_apply(r->st, ev, x->step, x->data, &err) != 0) {
            char t[128];
            snprintf(t, sizeof t, "%s%s%s", ev->step ? ev->step : "", ev->step ? ": " : "",
                     cairn_event_type_name(ev->type));
            if (ev->step && x->step < 0)   /* another definition's */
                ok = rp_differ(x, D_JOURNAL, NULL, "this definition has no step %s", ev->step);
            else
                ok = rp_differ(x, D_JOURNAL, NULL, "%s", err.msg);
        } else {
            if (ev->seq == 1) {
                eng_build_ctx(r, x->rp->secrets);
                ok = check_created(x);
            }
            after(x, held, was);
        }
    }
    jv_free(x->data);
    x->data = jv_invalid();
    return ok && !x->lookup_rc;
}

static void fill_place(cairn_replay_result *out, const cairn_event *ev, int index) {
    out->seq = ev->seq;
    out->type = ev->type;
    snprintf(out->step, sizeof out->step, "%s", ev->step ? ev->step : "");
    out->attempt = ev->attempt;
    out->index = index;
}

int cairn_replay_run(cairn_replayer *rp, const cairn_event *evs, int n, cairn_replay_result *out,
                     cairn_err *err) {
    memset(out, 0, sizeof *out);
    out->index = -1;
    if (n == 0) return cairn_err_set(err, CAIRN_ENOTFOUND, "the run has no events");
    eng_plan *p = rp->plan;
    replay x = {.rp = rp, .r = eng_run_new(p, evs[0].run_id), .out = out, .err = err};
    x.holding = cairn_calloc((size_t)p->n_all + 1, sizeof *x.holding);
    for (int k = 0; k < n; k++) {
        out->events++;
        if (!replay_event(&x, &evs[k])) {
            fill_place(out, &evs[k], x.index);
            break;
        }
    }
    if (out->verdict != CAIRN_REPLAY_DIVERGED)
        out->verdict = cairn_run_status_terminal(x.r->st->status) ? CAIRN_REPLAY_CONSISTENT
                                                                  : CAIRN_REPLAY_UNFINISHED;
    out->status = cairn_run_status_name(cairn_run_state_status(x.r->st));
    int rc = x.lookup_rc;
    free(x.holding);
    eng_run_free(x.r);
    return rc;
}
