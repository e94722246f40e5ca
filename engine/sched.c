/*
 * sched.c - deciding what runs next.
 *
 * A step is done when it succeeded, was skipped, or failed with
 * continue_on_error.  Each step counts the needs it still waits on; when a
 * step becomes done its dependents' counts drop, and a step whose count
 * reaches zero is ready.  Ready steps start (if, foreach, attempt) each time
 * eng_schedule runs.  A step that fails for good makes the run "failing":
 * nothing new starts, running attempts finish, then the run ends failed.
 * A run ends succeeded when every step is done, with its outputs rendered.
 *
 * foreach: the expression is rendered once, when the step expands, and its
 * list journaled once in step_expanded; each item's attempt takes its
 * element from that list, and after a crash the list comes from the journal,
 * not from rendering again over a document that may have changed.  Items
 * start in index order from a cursor and are counted as they finish (the
 * fold keeps the counts), so a foreach of n items costs O(n), not O(n^2).
 * At most CAIRN_FOREACH_MAX_ITEMS items; without `concurrency`, at most
 * CAIRN_FOREACH_WINDOW of them in flight at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/mem.h"
#include "engine/engine_int.h"

/* ---- starting a run --------------------------------------------------------- */

int eng_create_run(cairn_engine *e, eng_plan *plan, jv inputs, jv trigger, const char *parent,
                   jv extra, char run_id[CAIRN_RUN_ID_MAX], eng_run **out, cairn_err *err) {
    jv checked = jv_invalid();
    int rc = cairn_workflow_check_inputs(plan->wf, inputs, &checked, err);
    jv_free(inputs);
    if (rc == 0) rc = eng_secrets_refresh(e, err);
    if (rc) {
        jv_free(checked);
        jv_free(trigger);
        jv_free(extra);
        return rc;
    }
    if (run_id[0] == '\0') cairn_new_run_id(run_id);
    eng_run *r = eng_run_new(plan, run_id);
    jv data = jv_get_kind(extra) == JV_KIND_OBJECT ? extra : (jv_free(extra), jv_object());
    data = jv_object_set(data, jv_string("workflow"), jv_string(plan->wf->name));
    data = jv_object_set(data, jv_string("def_hash"), jv_string(plan->wf->sha256));
    data = jv_object_set(data, jv_string("inputs"), checked);
    data = jv_object_set(data, jv_string("trigger"), trigger);
    if (parent) data = jv_object_set(data, jv_string("parent"), jv_string(parent));
    if (eng_emit(e, r, CAIRN_EV_RUN_CREATED, -1, -1, 0, data) < 0) {
        *err = *eng_sticky_err(e);
        eng_run_free(r);
        return CAIRN_ECORRUPT;
    }
    eng_add_run(e, r);
    *out = r;
    return 0;
}

int eng_start_run(cairn_engine *e, eng_plan *plan, jv inputs, jv trigger, const char *parent,
                     char run_id[CAIRN_RUN_ID_MAX], cairn_err *err) {
    eng_run *r = NULL;
    int rc = eng_create_run(e, plan, inputs, trigger, parent, jv_null(), run_id, &r, err);
    if (rc) return rc;
    eng_run_rebuild(e, r);
    eng_schedule(e, r);
    return 0;
}

bool eng_may_start(const eng_run *r) {
    return !r->st->cancel_requested && !r->st->paused && !r->failing;
}

bool eng_step_is_done(const eng_run *r, int i) {
    const cairn_step_state *s = &r->st->steps[i];
    return s->status == CAIRN_STEP_SUCCEEDED || s->status == CAIRN_STEP_SKIPPED ||
           (s->status == CAIRN_STEP_FAILED && r->plan->steps[i]->continue_on_error);
}


/* ---- the expression document ------------------------------------------- */

static jv step_view(const eng_plan *p, const eng_view *v) {
    jv o = jv_object();
    o = jv_object_set(o, eng_key(p, KEY_STATUS), eng_status_name(p, v->status));
    o = jv_object_set(o, eng_key(p, KEY_OUTPUT), jv_copy(v->output));
    o = jv_object_set(o, eng_key(p, KEY_ERROR), jv_copy(v->error));
    return jv_object_set(o, eng_key(p, KEY_ATTEMPTS), jv_number(v->attempts));
}

static bool untouched(const cairn_step_state *s) {
    return s->status == CAIRN_STEP_PENDING && s->attempts == 0 &&
           jv_get_kind(s->output) == JV_KIND_NULL && jv_get_kind(s->error) == JV_KIND_NULL;
}

/* Every step is present in `.steps` from the start, in workflow order, so it
 * has the same shape (and key order) live and after recovery.  The
 * object for a run where nothing has started is built once per plan and
 * shared: a new run costs a reference, not an object per step. */
static jv pending_steps(eng_plan *p) {
    if (!jv_is_valid(p->pending_steps)) {
        eng_view fresh = {.status = CAIRN_STEP_PENDING, .output = jv_null(), .error = jv_null()};
        jv view = step_view(p, &fresh);
        p->pending_steps = jv_object();
        for (int i = 0; i < p->n_all; i++)
            p->pending_steps = jv_object_set(p->pending_steps, eng_id_key(p, i), jv_copy(view));
        jv_free(view);
    }
    return jv_copy(p->pending_steps);
}

static void view_take(eng_view *v, const cairn_step_state *s) {
    jv_free(v->output);
    jv_free(v->error);
    v->status = s->status;
    v->attempts = s->attempts;
    v->output = jv_copy(s->output);
    v->error = jv_copy(s->error);
}

/* Step i's view takes its state; ctx's `.steps` shows it from the next
 * time an expression needs the whole document (doc_sync). */
void eng_ctx_step(eng_run *r, int i) {
    eng_view *v = &r->views[i];
    view_take(v, &r->st->steps[i]);
    if (!v->stale) {
        v->stale = true;
        v->next_stale = r->stale;
        r->stale = i;
    }
}

/* ctx's `.steps` brought up to date with the views, in one pass. */
static void doc_sync(eng_run *r) {
    if (r->stale < 0) return;
    const eng_plan *p = r->plan;
    jv steps = jv_object_get(jv_copy(r->ctx), eng_key(p, KEY_STEPS));
    r->ctx = jv_object_set(r->ctx, eng_key(p, KEY_STEPS), jv_null());   /* keep steps unshared */
    for (int i = r->stale; i >= 0; i = r->views[i].next_stale) {
        r->views[i].stale = false;
        steps = jv_object_set(steps, eng_id_key(p, i), step_view(p, &r->views[i]));
    }
    r->stale = -1;
    r->ctx = jv_object_set(r->ctx, eng_key(p, KEY_STEPS), steps);
}

eng_doc_saved eng_doc_save(eng_run *r) {
    doc_sync(r);
    eng_doc_saved saved = {r->ctx, r->views};
    r->ctx = jv_null();
    r->views = eng_views_new(r->plan->n_all);
    return saved;
}

void eng_doc_restore(eng_run *r, eng_doc_saved saved) {
    jv_free(r->ctx);
    eng_views_free(r->views, r->plan->n_all);
    r->ctx = saved.ctx;
    r->views = saved.views;
    r->stale = -1;   /* saved in step: none is stale */
}

/* The workflow's env, rendered once per run over {inputs, run} (again,
 * in place of the last, when the document is built again). */
static void render_env(eng_run *r, jv doc) {
    const cairn_workflow *wf = r->plan->wf;
    for (char **p = r->env; p && *p; p++) free(*p);
    free(r->env);
    r->env = cairn_calloc((size_t)wf->n_env + 1, sizeof *r->env);
    jv env = jv_object();
    for (int i = 0; i < wf->n_env; i++) {
        jv v = jv_invalid();
        cairn_err err;
        if (cairn_tmpl_render(wf->env[i].value, wf->exprs, doc, &v, &err) != 0) v = jv_string("");
        if (jv_get_kind(v) != JV_KIND_STRING) {
            jv t = jv_dump_string(v, 0);
            v = t;
        }
        r->env[i] = cairn_sprintf("%s=%s", wf->env[i].name, jv_string_value(v));
        env = jv_object_set(env, jv_string(wf->env[i].name), v);
    }
    r->ctx = jv_object_set(r->ctx, jv_string("env"), env);
}

static jv secrets_object(const cairn_secrets *s) {
    jv o = jv_object();
    for (int i = 0; s && i < s->count; i++)
        o = jv_object_set(o, jv_string(s->names[i]), jv_string_sized(s->values[i], (int)s->lens[i]));
    return o;
}

void eng_build_ctx(eng_run *r, const cairn_secrets *secrets) {
    const cairn_run_state *st = r->st;
    char when[40];
    jv run = jv_object();
    run = jv_object_set(run, jv_string("id"), jv_string(st->id));
    run = jv_object_set(run, jv_string("workflow"), jv_string(st->workflow ? st->workflow : ""));
    run = jv_object_set(run, jv_string("started_at"),
                        jv_string(cairn_rfc3339(st->created_ms, when, sizeof when)));
    run = jv_object_set(run, jv_string("trigger"), jv_copy(st->trigger));
    jv_free(r->ctx);
    r->ctx = jv_object();
    r->ctx = jv_object_set(r->ctx, jv_string("inputs"), jv_copy(st->inputs));
    r->ctx = jv_object_set(r->ctx, jv_string("secrets"), secrets_object(secrets));
    r->ctx = jv_object_set(r->ctx, jv_string("run"), run);
    jv steps = pending_steps(r->plan);
    r->stale = -1;
    for (int i = 0; i < r->plan->n_all; i++) {
        eng_view *v = &r->views[i];
        view_take(v, &st->steps[i]);
        v->stale = false;
        if (!untouched(&st->steps[i]))
            steps = jv_object_set(steps, eng_id_key(r->plan, i), step_view(r->plan, v));
    }
    r->ctx = jv_object_set(r->ctx, eng_key(r->plan, KEY_STEPS), steps);
    render_env(r, r->ctx);
}

static void fail_run(eng_run *r, jv error, const char *step_id) {
    r->failing = true;
    jv_free(r->fail_error);
    jv base = jv_get_kind(error) == JV_KIND_OBJECT ? error : (jv_free(error), eng_error("failed", ""));
    r->fail_error = step_id ? jv_object_set(base, jv_string("step"), jv_string(step_id)) : base;
}

static void build_rollback(eng_run *r);

int eng_needs_waiting(const eng_run *r, int i) {
    const cairn_step *step = r->plan->steps[i];
    int n = 0;
    for (int k = 0; k < step->n_needs; k++) n += !eng_step_is_done(r, step->needs[k]);
    return n;
}

/* After the run's events are folded (new run or recovery): derive the
 * scheduler's counters from the state. */
void eng_run_rebuild(cairn_engine *e, eng_run *r) {
    const eng_plan *p = r->plan;
    eng_build_ctx(r, eng_secrets(e));
    r->done = 0;
    r->n_ready = r->ready_head = 0;
    for (int i = 0; i < p->n_main; i++) {
        const cairn_step_state *s = &r->st->steps[i];
        const cairn_step *step = p->steps[i];
        if (eng_step_is_done(r, i)) r->done++;
        if (s->status == CAIRN_STEP_FAILED && !step->continue_on_error && !r->failing)
            fail_run(r, jv_copy(s->error), step->id);
        r->waiting_on[i] = eng_needs_waiting(r, i);
    }
    for (int i = 0; i < p->n_all; i++) {
        const cairn_step_state *s = &r->st->steps[i];
        r->items_running[i] = 0;
        r->items_next[i] = 0;
        if (s->expanded) eng_recall_items(r, i, eng_secrets(e));
        for (int k = 0; k < s->n_items; k++)   /* a waiting item keeps its place */
            r->items_running[i] += s->items[k].in_flight || s->items[k].status == CAIRN_STEP_WAITING;
        /* a foreach cut short by a crash is ready too: its pending items start */
        bool resumable = s->status == CAIRN_STEP_RUNNING && s->expanded;
        if (i < p->n_main && (s->status == CAIRN_STEP_PENDING || resumable) && r->waiting_on[i] == 0)
            r->ready[r->n_ready++] = i;
    }
    if (r->st->status == CAIRN_RUN_COMPENSATING) {   /* a crash during the rollback */
        r->failing = true;
        jv_free(r->fail_error);
        r->fail_error = jv_copy(r->st->error);
        r->ctx = jv_object_set(r->ctx, jv_string("error"), jv_copy(r->fail_error));
        r->rolling_back = true;
        build_rollback(r);
    }
}

/* ---- transitions ---------------------------------------------------------- */

void eng_step_done(cairn_engine *e, eng_run *r, int i) {
    (void)e;
    eng_ctx_step(r, i);
    if (!eng_is_rollback_step(r, i)) r->done++;
    for (int k = 0; k < r->plan->n_dependents[i]; k++) {
        int d = r->plan->dependents[i][k];
        if (--r->waiting_on[d] == 0 && r->st->steps[d].status == CAIRN_STEP_PENDING)
            r->ready[r->n_ready++] = d;
    }
}

void eng_step_failed(cairn_engine *e, eng_run *r, int i, jv error) {
    const cairn_step *step = r->plan->steps[i];
    jv data = jv_object_set(jv_object(), jv_string("error"), jv_copy(error));
    eng_emit(e, r, CAIRN_EV_STEP_FAILED, i, -1, r->st->steps[i].attempts, data);
    if (step->continue_on_error || eng_is_rollback_step(r, i)) {
        eng_step_done(e, r, i);   /* a failed compensation is recorded; the rest still run */
        jv_free(error);
    } else {
        eng_ctx_step(r, i);
        if (!r->failing) fail_run(r, error, step->id);
        else jv_free(error);
    }
}

static void fail_expression(cairn_engine *e, eng_run *r, int i, const cairn_err *err) {
    eng_step_failed(e, r, i, eng_error("expression", err->msg));
}

jv eng_attempt_scope(const eng_run *r, int step, int index, int attempt, const char *idem_key) {
    jv cur = jv_object();
    cur = jv_object_set(cur, jv_string("id"), jv_string(r->plan->ids[step]));
    cur = jv_object_set(cur, jv_string("attempt"), jv_number(attempt));
    cur = jv_object_set(cur, jv_string("idempotency_key"), jv_string(idem_key));
    jv extra = jv_object_set(jv_object(), jv_string("step"), cur);
    if (index >= 0) {   /* the element of the list the step expanded to, once */
        jv item = jv_array_get(jv_copy(r->items[step]), index);
        extra = jv_object_set(extra, jv_string("item"), jv_is_valid(item) ? item : jv_null());
        extra = jv_object_set(extra, jv_string("index"), jv_number(index));
    }
    return extra;
}

int eng_next_attempt(const cairn_step_state *s, int index) {
    return (index < 0 ? s->attempts : s->items[index].attempts) + 1;
}

/* Written with memcpy, not snprintf: it is made for every attempt, and
 * snprintf's parsing of its format was a twentieth of a W2 step. */
void eng_idem_key(const eng_run *r, int i, int index, char *key, size_t len) {
    const char *run = r->st->id, *id = r->plan->ids[i];
    size_t nr = strlen(run), ni = strlen(id);
    char digits[16];
    size_t nd = 0;
    for (unsigned v = index < 0 ? 0u : (unsigned)index; index >= 0 && (nd == 0 || v > 0); v /= 10)
        digits[nd++] = (char)('0' + v % 10);
    if (nr + ni + nd + 3 > len) {   /* cannot happen with CAIRN_IDEM_KEY_MAX: truncate as snprintf */
        snprintf(key, len, index < 0 ? "%s/%s" : "%s/%s/%d", run, id, index);
        return;
    }
    char *p = key;
    memcpy(p, run, nr);
    p += nr;
    *p++ = '/';
    memcpy(p, id, ni);
    p += ni;
    if (index >= 0) *p++ = '/';
    while (nd > 0) *p++ = digits[--nd];
    *p = '\0';
}

int eng_scoped_input_text(eng_run *r, int i, int index, int attempt, jv *with, cairn_buf *text,
                          cairn_err *err) {
    jv extra = jv_null();
    if (r->plan->with_reads_attempt[i]) {
        char key[CAIRN_IDEM_KEY_MAX];
        eng_idem_key(r, i, index, key, sizeof key);
        extra = eng_attempt_scope(r, i, index, attempt, key);
    }
    return eng_render_text(r, r->plan->steps[i]->with, extra, with, text, err);
}

int eng_scoped_input(eng_run *r, int i, int index, int attempt, jv *with, cairn_err *err) {
    return eng_scoped_input_text(r, i, index, attempt, with, NULL, err);
}

/* The run's document for one render: `extra`'s fields over ctx.  A path
 * `.steps.<id>.<field>...` is answered from the step's view (the very value
 * ctx's `.steps` holds or will hold once brought up to date), so a render
 * that reads steps only through such paths makes no document at all; any
 * other read brings `.steps` up to date and makes the document once. */
typedef struct run_doc {
    cairn_doc d;
    eng_run *r;
    jv extra;                    /* an object, or null */
    jv whole;                    /* made on first need */
} run_doc;

static jv run_doc_whole(cairn_doc *d) {
    run_doc *x = (run_doc *)d;
    if (!jv_is_valid(x->whole)) {
        doc_sync(x->r);
        jv doc = jv_copy(x->r->ctx);
        if (jv_get_kind(x->extra) == JV_KIND_OBJECT)
            jv_object_foreach(x->extra, k, v) doc = jv_object_set(doc, k, v);
        x->whole = doc;
    }
    return x->whole;
}

static jv run_doc_path(cairn_doc *d, const char *const *keys, int n, int *used) {
    run_doc *x = (run_doc *)d;
    const eng_plan *p = x->r->plan;
    if (n < 3) return jv_invalid();
    const char *root = keys[0], *id = keys[1], *field = keys[2];
    if (!root || !id || !field || strcmp(root, "steps") != 0) return jv_invalid();
    if (jv_get_kind(x->extra) == JV_KIND_OBJECT && jv_object_has(jv_copy(x->extra), eng_key(p, KEY_STEPS)))
        return jv_invalid();
    int64_t i;
    if (!cairn_strmap_get(p->step_at, id, &i)) return jv_invalid();
    const eng_view *v = &x->r->views[i];
    *used = 3;
    if (strcmp(field, "output") == 0) return jv_copy(v->output);
    if (strcmp(field, "status") == 0) return eng_status_name(p, v->status);
    if (strcmp(field, "error") == 0) return jv_copy(v->error);
    if (strcmp(field, "attempts") == 0) return jv_number(v->attempts);
    return jv_null();   /* as jq indexes an object by a key it lacks */
}

/* Render a template over the run's document plus `extra` fields (consumed);
 * with text, the value's canonical text appended to it. */
int eng_render_text(eng_run *r, const cairn_tmpl *t, jv extra, jv *out, cairn_buf *text,
                    cairn_err *err) {
    if (cairn_tmpl_is_const(t)) {
        jv_free(extra);
        *out = cairn_tmpl_const_value(t);
        if (text) cairn_json_write(text, *out);
        return 0;
    }
    run_doc d = {{run_doc_whole, run_doc_path}, r, extra, jv_invalid()};
    cairn_exprset *set = r->plan->wf->exprs;
    int rc = text ? cairn_tmpl_render_text(t, set, &d.d, out, text, err)
                  : cairn_tmpl_render_doc(t, set, &d.d, out, err);
    jv_free(d.whole);
    jv_free(d.extra);
    return rc;
}

int eng_render(eng_run *r, const cairn_tmpl *t, jv extra, jv *out, cairn_err *err) {
    return eng_render_text(r, t, extra, out, NULL, err);
}

int eng_foreach_window(const cairn_step *step) {
    return step->concurrency > 0 ? step->concurrency : CAIRN_FOREACH_WINDOW;
}

/* Start pending items in index order, from the cursor on.  An item behind
 * the cursor never becomes pending again while the run is live (a retry
 * restarts its own item from a timer; a crash's retry is seen at rebuild,
 * which puts the cursor back to 0). */
static void start_items(cairn_engine *e, eng_run *r, int i) {
    const cairn_step *step = r->plan->steps[i];
    cairn_step_state *s = &r->st->steps[i];
    int limit = eng_foreach_window(step);
    while (r->items_next[i] < s->n_items && s->items_failed == 0 && !r->failing) {
        if (r->items_running[i] >= limit) break;
        int k = r->items_next[i]++;
        if (s->items[k].status != CAIRN_STEP_PENDING) continue;
        r->items_running[i]++;
        eng_start_attempt(e, r, i, k);
    }
}

static void finish_foreach(cairn_engine *e, eng_run *r, int i) {
    cairn_step_state *s = &r->st->steps[i];
    for (int k = 0; k < s->n_items; k++) {
        if (s->items[k].status == CAIRN_STEP_FAILED) {
            eng_step_failed(e, r, i, jv_copy(s->items[k].error));
            return;
        }
    }
    eng_emit(e, r, CAIRN_EV_STEP_SUCCEEDED, i, -1, 0, jv_object());
    eng_step_done(e, r, i);
}

/* Start more items, or end the step when its items are all done (or one
 * failed and the rest have stopped). */
static void foreach_progress(cairn_engine *e, eng_run *r, int i) {
    cairn_step_state *s = &r->st->steps[i];
    bool any_failed = s->items_failed > 0;
    bool all_done = s->items_succeeded + s->items_failed == s->n_items;
    if ((all_done || any_failed) && r->items_running[i] == 0)
        finish_foreach(e, r, i);
    else if (!any_failed && !r->failing && !e->stopping)
        start_items(e, r, i);
}

void eng_item_finished(cairn_engine *e, eng_run *r, int i, int index, bool ok, jv error) {
    (void)index;
    (void)ok;
    jv_free(error);
    r->items_running[i]--;
    foreach_progress(e, r, i);
}

int eng_foreach_items(eng_run *r, int i, jv *items, cairn_err *err) {
    int rc = eng_render(r, r->plan->steps[i]->foreach, jv_null(), items, err);
    if (rc) return rc;
    if (jv_get_kind(*items) != JV_KIND_ARRAY)
        rc = cairn_err_set(err, CAIRN_EINVAL, "foreach must give an array");
    else if (jv_array_length(jv_copy(*items)) > CAIRN_FOREACH_MAX_ITEMS)
        rc = cairn_err_set(err, CAIRN_ELIMIT, "foreach gave %d items; at most %d",
                           jv_array_length(jv_copy(*items)), CAIRN_FOREACH_MAX_ITEMS);
    if (rc) {
        jv_free(*items);
        *items = jv_invalid();
    }
    return rc;
}

/* After recovery: the items of an expanded foreach are the list its
 * step_expanded journaled.  Secrets in it were journaled masked, so when
 * rendering again gives a list that masks to exactly the journaled one,
 * that list is the same one with the secrets' values: it is used.  A
 * journal that recorded only the count gets the list rendered again. */
void eng_recall_items(eng_run *r, int i, const cairn_secrets *secrets) {
    const cairn_step_state *s = &r->st->steps[i];
    bool journaled = jv_get_kind(s->item_list) == JV_KIND_ARRAY;
    bool masks = secrets && secrets->count > 0;
    jv items = jv_invalid();
    cairn_err err;
    jv_free(r->items[i]);
    r->items[i] = jv_copy(s->item_list);
    if ((journaled && !masks) || eng_foreach_items(r, i, &items, &err) != 0) return;
    if (!journaled || jv_equal(cairn_secrets_mask(jv_copy(items), secrets),
                               jv_copy(s->item_list))) {
        jv_free(r->items[i]);
        r->items[i] = items;
    } else {
        jv_free(items);
    }
}

static void start_foreach(cairn_engine *e, eng_run *r, int i) {
    jv items = jv_invalid();
    cairn_err err;
    if (eng_foreach_items(r, i, &items, &err) != 0) {
        fail_expression(e, r, i, &err);
        return;
    }
    int n = jv_array_length(jv_copy(items));
    jv data = jv_object_set(jv_object(), jv_string("count"), jv_number(n));
    data = jv_object_set(data, jv_string("items"), jv_copy(items));
    jv_free(r->items[i]);
    r->items[i] = items;
    r->items_next[i] = 0;
    eng_emit(e, r, CAIRN_EV_STEP_EXPANDED, i, -1, 0, data);
    if (n == 0) {
        finish_foreach(e, r, i);
        return;
    }
    start_items(e, r, i);
}

int eng_if_holds(eng_run *r, int i, bool *go, cairn_err *err) {
    const cairn_tmpl *cond = r->plan->steps[i]->if_;
    *go = true;
    if (cond == NULL) return 0;
    jv v = jv_invalid();
    int rc = eng_render(r, cond, jv_null(), &v, err);
    if (rc == 0) *go = cairn_truthy(v);
    jv_free(v);
    return rc;
}

static void start_step(cairn_engine *e, eng_run *r, int i) {
    const cairn_step *step = r->plan->steps[i];
    cairn_step_state *s = &r->st->steps[i];
    if (s->status == CAIRN_STEP_RUNNING && s->expanded) {   /* a foreach resumed */
        foreach_progress(e, r, i);
        return;
    }
    bool go = true;
    cairn_err err;
    if (eng_if_holds(r, i, &go, &err) != 0) {
        fail_expression(e, r, i, &err);
        return;
    }
    if (!go) {
        eng_emit(e, r, CAIRN_EV_STEP_SKIPPED, i, -1, 0, jv_object());
        eng_step_done(e, r, i);
        return;
    }
    if (step->foreach)
        start_foreach(e, r, i);
    else
        eng_start_attempt(e, r, i, -1);
}

/* Before a run's failure is journaled: a step that never started ends
 * skipped, and one that waits for people or a timer (an approval, a retry's
 * back-off, a `wait`) or a foreach cut short ends cancelled, as a cancel
 * leaves them, each as an event in the batch that ends the run.  A crash
 * before that batch is durable loses them all, and the run, failing again
 * on resume, settles what is still open.  A step waiting on a child run
 * keeps waiting: the child's own end settles it. */
static void settle_unfinished(cairn_engine *e, eng_run *r) {
    for (int i = 0; i < r->plan->n_all; i++) {
        const cairn_step_state *s = &r->st->steps[i];
        if (s->status == CAIRN_STEP_PENDING) {
            eng_emit(e, r, CAIRN_EV_STEP_SKIPPED, i, -1, 0,
                     jv_object_set(jv_object(), jv_string("reason"), jv_string("run_failed")));
        } else if ((s->status == CAIRN_STEP_WAITING && !s->child[0]) ||
                   (s->status == CAIRN_STEP_RUNNING && !s->in_flight)) {
            jv error = eng_error("cancelled", "the run failed before this step finished");
            eng_emit(e, r, CAIRN_EV_STEP_FAILED, i, -1, s->attempts,
                     jv_object_set(jv_object(), jv_string("error"), error));
        }
    }
}

int eng_run_outputs(eng_run *r, jv *out) {
    const cairn_workflow *wf = r->plan->wf;
    jv outputs = jv_object();
    for (int i = 0; i < wf->n_outputs; i++) {
        jv v = jv_invalid();
        cairn_err err;
        if (eng_render(r, wf->outputs[i].value, jv_null(), &v, &err) != 0) {
            jv_free(outputs);
            jv error = eng_error("expression", err.msg);
            *out = jv_object_set(error, jv_string("output"), jv_string(wf->outputs[i].name));
            return -1;
        }
        outputs = jv_object_set(outputs, jv_string(wf->outputs[i].name), v);
    }
    *out = outputs;
    return 0;
}

static void end_run(cairn_engine *e, eng_run *r) {
    jv outputs = jv_invalid();
    if (eng_run_outputs(r, &outputs) != 0) {
        settle_unfinished(e, r);
        eng_emit(e, r, CAIRN_EV_RUN_FAILED, -1, -1, 0,
                 jv_object_set(jv_object(), jv_string("error"), outputs));
        return;
    }
    eng_emit(e, r, CAIRN_EV_RUN_SUCCEEDED, -1, -1, 0,
             jv_object_set(jv_object(), jv_string("outputs"), outputs));
}

/* Journal an answer to a command from another process, marking the command
 * row for deletion in the same transaction. */
static void emit_for_command(cairn_engine *e, eng_run *r, cairn_event_type type, int64_t command_id) {
    int64_t t = eng_emit(e, r, type, -1, -1, 0, jv_object());
    if (t > 0) eng_mark_answer(e, command_id);
}

void eng_pause_run(cairn_engine *e, eng_run *r, bool pause, int64_t command_id) {
    if (r->ended || r->st->paused == pause) {
        if (command_id > 0) cairn_journal_drop_command(e->journal, command_id);
        return;
    }
    emit_for_command(e, r, pause ? CAIRN_EV_RUN_PAUSED : CAIRN_EV_RUN_UNPAUSED, command_id);
    eng_schedule(e, r);
}

void eng_cancel_run(cairn_engine *e, eng_run *r, int64_t command_id) {
    /* a run already rolling back finishes its rollback, whatever is asked */
    if (r->ended || r->st->cancel_requested || r->rolling_back) {
        if (command_id > 0) cairn_journal_drop_command(e->journal, command_id);
        return;
    }
    emit_for_command(e, r, CAIRN_EV_RUN_CANCEL_REQUESTED, command_id);
    eng_cancel_children(e, r);
    eng_stop_attempts(e, r);
    eng_schedule(e, r);
}

/* ---- rollback ------------------------------------------------------------- */

/* The rollback's order: the compensate bodies of succeeded steps, latest
 * completion first, then the on_failure steps as written.  Derived from the
 * state alone, so recovery rebuilds the same order. */
int eng_rollback_order(const eng_plan *p, const cairn_run_state *st, int *order) {
    int n = 0;
    for (int i = 0; i < p->n_main; i++) {
        if (p->comp_of[i] < 0 || st->steps[i].status != CAIRN_STEP_SUCCEEDED) continue;
        order[n++] = i;
    }
    for (int a = 1; a < n; a++)   /* insertion sort: latest completion first */
        for (int b = a; b > 0 && st->steps[order[b - 1]].done_seq < st->steps[order[b]].done_seq;
             b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    for (int k = 0; k < n; k++) order[k] = p->comp_of[order[k]];
    for (int k = 0; k < p->n_on_failure; k++) order[n++] = p->n_main + k;
    return n;
}

static void build_rollback(eng_run *r) {
    r->n_rollback = eng_rollback_order(r->plan, r->st, r->rollback);
}

bool eng_settled(cairn_step_status s) {
    return s == CAIRN_STEP_SUCCEEDED || s == CAIRN_STEP_FAILED || s == CAIRN_STEP_SKIPPED ||
           s == CAIRN_STEP_CANCELLED;
}

static void end_rollback(cairn_engine *e, eng_run *r) {
    if (r->st->cancel_requested) {
        eng_emit(e, r, CAIRN_EV_RUN_CANCELLED, -1, -1, 0, jv_object());
        return;
    }
    settle_unfinished(e, r);
    jv data = jv_object_set(jv_object(), jv_string("error"), jv_copy(r->fail_error));
    eng_emit(e, r, CAIRN_EV_RUN_FAILED, -1, -1, 0, data);
}

/* Run the rollback one body at a time, in order. */
static void rollback_next(cairn_engine *e, eng_run *r) {
    if (r->in_flight > 0) return;
    for (int k = 0; k < r->n_rollback; k++) {
        int i = r->rollback[k];
        cairn_step_status s = r->st->steps[i].status;
        if (eng_settled(s)) continue;
        if (s != CAIRN_STEP_PENDING) return;           /* waiting on a retry back-off */
        start_step(e, r, i);
        if (!eng_settled(r->st->steps[i].status)) return;  /* started: it comes back later */
    }
    end_rollback(e, r);
}

static void begin_rollback(cairn_engine *e, eng_run *r) {
    if (!r->failing) fail_run(r, eng_error("cancelled", "the run was cancelled"), NULL);
    r->rolling_back = true;
    build_rollback(r);
    if (r->n_rollback == 0) {
        end_rollback(e, r);
        return;
    }
    eng_emit(e, r, CAIRN_EV_RUN_COMPENSATING, -1, -1, 0,
             jv_object_set(jv_object(), jv_string("error"), jv_copy(r->fail_error)));
    r->ctx = jv_object_set(r->ctx, jv_string("error"), jv_copy(r->fail_error));
    rollback_next(e, r);
}

static void schedule(cairn_engine *e, eng_run *r);

void eng_schedule(cairn_engine *e, eng_run *r) {
    schedule(e, r);
    if (r->ended && r->st->parent && !r->parent_told) eng_child_ended(e, r);
}

static void schedule(cairn_engine *e, eng_run *r) {
    if (r->ended || eng_is_sticky(e) || e->stopping) return;
    if (r->rolling_back) {
        rollback_next(e, r);
        return;
    }
    while (r->ready_head < r->n_ready && eng_may_start(r)) start_step(e, r, r->ready[r->ready_head++]);
    if (r->ready_head == r->n_ready) r->ready_head = r->n_ready = 0;
    if (r->failing || r->st->cancel_requested) {
        if (r->in_flight == 0) begin_rollback(e, r);   /* running attempts finish first */
        return;
    }
    /* an approval's notify may still be on its way: the run ends once its
     * outcome is journaled, and the attempt never outlives its run */
    if (r->done == r->plan->n_main && !r->st->paused && r->in_flight == 0) end_run(e, r);
}
