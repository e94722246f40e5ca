/*
 * runs.c - the runs this engine holds, and the plans of its workflows.
 *
 * The run table: an array (for walks) plus a map from run id to position in
 * the array (for lookups: timers, commands and child runs name runs by id,
 * and an engine may hold tens of thousands of parked runs).  Each run knows
 * its own position, so adding and dropping a run cost O(1): a run that ends
 * while ten thousand others are parked must not cost a walk over them.
 *
 * A plan is a compiled workflow and what the engine derives from it once
 * (step order, dependents, retry patterns, interned keys); plans live as
 * long as the engine.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/clock.h"
#include "common/mem.h"
#include "common/strmap.h"
#include "engine/engine_int.h"

struct eng_runs {
    eng_run **runs;
    int n, cap;
    cairn_strmap *slots;         /* run id -> position in runs */
    eng_plan *plans;
    eng_run *lost;               /* lost runs not yet freed (eng_lose_run) */
    atomic_int held;             /* n, for other threads (cairn_engine_runs_held) */
};


eng_runs *eng_runs_new(void) {
    eng_runs *rs = cairn_calloc(1, sizeof *rs);
    rs->slots = cairn_strmap_new();
    return rs;
}

void eng_runs_free(eng_runs *rs) {
    if (rs == NULL) return;
    for (int i = 0; i < rs->n; i++) eng_run_free(rs->runs[i]);
    for (eng_run *r = rs->lost, *next; r; r = next) {
        next = r->lost_next;
        eng_run_free(r);
    }
    free(rs->runs);
    cairn_strmap_free(rs->slots);
    while (rs->plans) {
        eng_plan *p = rs->plans;
        rs->plans = p->next;
        eng_plan_free(p);
    }
    free(rs);
}

/* ---- the run table ----------------------------------------------------- */

void cairn_new_run_id(char out[CAIRN_RUN_ID_MAX]) {
    static const char digits[] = "0123456789abcdefghijklmnopqrstuv";
    uint64_t ms = (uint64_t)cairn_wall_ms();
    unsigned char rnd[6];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) memset(rnd, 0, sizeof rnd);
    for (int i = 9; i >= 0; i--, ms >>= 5) out[i] = digits[ms & 31];
    for (int i = 0; i < 6; i++) out[10 + i] = digits[rnd[i] & 31];
    out[16] = '\0';
}


eng_run *eng_find_run(cairn_engine *e, const char *id) {
    eng_runs *rs = e->runs;
    int64_t pos;
    return cairn_strmap_get(rs->slots, id, &pos) ? rs->runs[pos] : NULL;
}

void eng_add_run(cairn_engine *e, eng_run *r) {
    eng_runs *rs = e->runs;
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 16;
        rs->runs = cairn_realloc(rs->runs, (size_t)rs->cap * sizeof *rs->runs);
    }
    r->slot = rs->n;
    rs->runs[rs->n++] = r;
    atomic_store_explicit(&rs->held, rs->n, memory_order_relaxed);
    cairn_strmap_put(rs->slots, r->st->id, r->slot);
}

/* Take r out of the table (the last run moves into its place). */
static void take_out(eng_runs *rs, eng_run *r) {
    int pos = r->slot, last = rs->n - 1;
    cairn_strmap_remove(rs->slots, r->st->id);
    if (pos != last) {
        rs->runs[pos] = rs->runs[last];
        rs->runs[pos]->slot = pos;
        cairn_strmap_put(rs->slots, rs->runs[pos]->st->id, pos);
    }
    rs->n--;
    atomic_store_explicit(&rs->held, rs->n, memory_order_relaxed);
    r->slot = -1;
}

/* Take r out of the table (a lost run is out already) and free it. */
void eng_drop_run(cairn_engine *e, eng_run *r) {
    if (r->slot >= 0) take_out(e->runs, r);
    if (r->lost) cairn_journal_forget(e->journal, r->st->id);
    eng_run_free(r);
}

void eng_lose_run(cairn_engine *e, eng_run *r) {
    eng_runs *rs = e->runs;
    take_out(rs, r);
    r->lost = true;
    if (r->ended) return;   /* the queue of ended runs frees it (durable.c) */
    r->lost_ticket = eng_next_ticket(e);
    r->lost_next = rs->lost;
    rs->lost = r;
}

void eng_free_lost(cairn_engine *e) {
    for (eng_run **p = &e->runs->lost; *p;) {
        eng_run *r = *p;
        if (r->in_flight > 0 || !eng_ticket_durable(e, r->lost_ticket)) {
            p = &r->lost_next;
            continue;
        }
        *p = r->lost_next;
        cairn_journal_forget(e->journal, r->st->id);   /* it may be claimed again */
        eng_run_free(r);
    }
}

int eng_run_count(const cairn_engine *e) { return e->runs->n; }

int cairn_engine_runs_held(const cairn_engine *e) {
    return atomic_load_explicit(&e->runs->held, memory_order_relaxed);
}

eng_run *eng_run_at(const cairn_engine *e, int i) { return e->runs->runs[i]; }


eng_view *eng_views_new(int n) {
    eng_view *v = cairn_calloc((size_t)(n ? n : 1), sizeof *v);
    for (int i = 0; i < n; i++) {
        v[i].output = jv_null();
        v[i].error = jv_null();
    }
    return v;
}

void eng_views_free(eng_view *v, int n) {
    for (int i = 0; v && i < n; i++) {
        jv_free(v[i].output);
        jv_free(v[i].error);
    }
    free(v);
}

eng_run *eng_run_new(eng_plan *plan, const char *run_id) {
    int n = plan->n_all;
    eng_run *r = cairn_calloc(1, sizeof *r);
    r->plan = plan;
    r->st = cairn_run_state_new(run_id, plan->ids, n);
    r->rollback = cairn_calloc((size_t)n + 1, sizeof *r->rollback);
    r->ctx = jv_null();
    r->views = eng_views_new(n);
    r->stale = -1;
    r->fail_error = jv_null();
    r->waiting_on = cairn_calloc((size_t)(n ? n : 1), sizeof(int));
    r->items_running = cairn_calloc((size_t)(n ? n : 1), sizeof(int));
    r->items_next = cairn_calloc((size_t)(n ? n : 1), sizeof(int));
    r->items = cairn_calloc((size_t)(n ? n : 1), sizeof(jv));
    for (int i = 0; i < n; i++) r->items[i] = jv_null();
    r->ready = cairn_calloc((size_t)(n ? n : 1), sizeof(int));
    return r;
}

void eng_run_free(eng_run *r) {
    if (r == NULL) return;
    cairn_run_state_free(r->st);
    jv_free(r->ctx);
    eng_views_free(r->views, r->plan->n_all);
    jv_free(r->fail_error);
    for (char **p = r->env; p && *p; p++) free(*p);
    free(r->env);
    free(r->waiting_on);
    free(r->items_running);
    free(r->items_next);
    for (int i = 0; r->items && i < r->plan->n_all; i++) jv_free(r->items[i]);
    free(r->items);
    free(r->ready);
    free(r->rollback);
    free(r);
}

/* ---- plans ------------------------------------------------------------------ */

/* retry.on of each step, compiled once per plan (retry.c matches errors). */
static void compile_retry(eng_plan *p) {
    int n = p->n_all;
    p->retry_on = cairn_calloc((size_t)(n ? n : 1), sizeof *p->retry_on);
    for (int i = 0; i < n; i++) {
        const char *on = p->steps[i]->retry.on;
        int code;
        PCRE2_SIZE off;
        if (on)   /* the loader compiled it once already: it compiles */
            p->retry_on[i] = pcre2_compile((PCRE2_SPTR)on, PCRE2_ZERO_TERMINATED, PCRE2_UTF,
                                           &code, &off, NULL);
    }
}

static void free_retry(eng_plan *p) {
    for (int i = 0; p->retry_on && i < p->n_all; i++) pcre2_code_free(p->retry_on[i]);
    free(p->retry_on);
}

eng_plan *eng_plan_new(cairn_workflow *wf) {
    eng_plan *p = cairn_calloc(1, sizeof *p);
    p->wf = wf;
    p->n_main = wf->n_steps;
    p->n_on_failure = wf->n_on_failure;
    p->ids = cairn_step_ids(wf, &p->n_all);
    int n = p->n_all;
    p->steps = cairn_calloc((size_t)n + 1, sizeof *p->steps);
    p->comp_of = cairn_calloc((size_t)p->n_main + 1, sizeof *p->comp_of);
    int k = 0;
    for (int i = 0; i < wf->n_steps; i++) p->steps[k++] = &wf->steps[i];
    for (int i = 0; i < wf->n_on_failure; i++) p->steps[k++] = &wf->on_failure[i];
    for (int i = 0; i < wf->n_steps; i++) {
        p->comp_of[i] = wf->steps[i].compensate ? k : -1;
        if (wf->steps[i].compensate) p->steps[k++] = wf->steps[i].compensate;
    }
    p->n_dependents = cairn_calloc((size_t)n + 1, sizeof *p->n_dependents);
    p->dependents = cairn_calloc((size_t)n + 1, sizeof *p->dependents);
    for (int i = 0; i < p->n_main; i++)
        for (int j = 0; j < wf->steps[i].n_needs; j++) p->n_dependents[wf->steps[i].needs[j]]++;
    for (int i = 0; i < n; i++)
        p->dependents[i] = cairn_calloc((size_t)(p->n_dependents[i] + 1), sizeof(int));
    int *fill = cairn_calloc((size_t)n + 1, sizeof *fill);
    for (int i = 0; i < p->n_main; i++)
        for (int j = 0; j < wf->steps[i].n_needs; j++) {
            int need = wf->steps[i].needs[j];
            p->dependents[need][fill[need]++] = i;
        }
    free(fill);
    compile_retry(p);
    p->pending_steps = jv_invalid();
    static const char *const key_text[KEY_COUNT] = {
        [KEY_STATUS] = "status", [KEY_OUTPUT] = "output", [KEY_ERROR] = "error",
        [KEY_ATTEMPTS] = "attempts", [KEY_STEPS] = "steps", [KEY_INDEX] = "index"};
    for (int k = 0; k < KEY_COUNT; k++) p->keys[k] = jv_string(key_text[k]);
    p->id_keys = cairn_calloc((size_t)n + 1, sizeof *p->id_keys);
    for (int i = 0; i < n; i++) p->id_keys[i] = jv_string(p->ids[i]);
    p->step_at = cairn_strmap_new();
    for (int i = 0; i < n; i++) {
        int64_t first;
        if (!cairn_strmap_get(p->step_at, p->ids[i], &first)) cairn_strmap_put(p->step_at, p->ids[i], i);
    }
    for (int k = 0; k < CAIRN_STEP_STATUS_COUNT; k++)
        p->status_names[k] = jv_string(cairn_step_status_name((cairn_step_status)k));
    /* most steps never read their attempt's own fields: then rendering
     * `with` needs no per-attempt document (attempt.c) */
    p->with_reads_attempt = cairn_calloc((size_t)n + 1, sizeof *p->with_reads_attempt);
    for (int i = 0; i < n; i++) {
        const cairn_tmpl *w = p->steps[i]->with;
        p->with_reads_attempt[i] = cairn_tmpl_reads(w, wf->exprs, "step") ||
                                   cairn_tmpl_reads(w, wf->exprs, "item") ||
                                   cairn_tmpl_reads(w, wf->exprs, "index");
    }
    return p;
}

void eng_plan_free(eng_plan *p) {
    free_retry(p);
    jv_free(p->pending_steps);
    free(p->with_reads_attempt);
    for (int k = 0; k < KEY_COUNT; k++) jv_free(p->keys[k]);
    for (int k = 0; k < CAIRN_STEP_STATUS_COUNT; k++) jv_free(p->status_names[k]);
    for (int i = 0; i < p->n_all; i++) jv_free(p->id_keys[i]);
    free(p->id_keys);
    cairn_strmap_free(p->step_at);
    for (int i = 0; i < p->n_all; i++) free(p->dependents[i]);
    free(p->dependents);
    free(p->n_dependents);
    cairn_step_ids_free(p->ids, p->n_all);
    free(p->steps);
    free(p->comp_of);
    cairn_workflow_free(p->wf);
    free(p);
}

static eng_plan *find_plan(cairn_engine *e, const char *hash) {
    for (eng_plan *p = e->runs->plans; p; p = p->next)
        if (strcmp(p->wf->sha256, hash) == 0) return p;
    return NULL;
}

eng_plan *eng_plan_add(cairn_engine *e, cairn_workflow *wf) {
    eng_plan *p = find_plan(e, wf->sha256);
    if (p) {
        cairn_workflow_free(wf);
        return p;
    }
    p = eng_plan_new(wf);
    p->next = e->runs->plans;
    e->runs->plans = p;
    return p;
}

bool eng_plan_known(cairn_engine *e, const char *def_hash) { return find_plan(e, def_hash) != NULL; }

eng_plan *eng_plan_for(cairn_engine *e, const char *def_hash, const char *run_id, cairn_err *err) {
    eng_plan *p = find_plan(e, def_hash);
    cairn_workflow *wf = NULL;
    if (p == NULL && cairn_journal_definition(e->journal, def_hash, run_id, &wf, err) == 0)
        p = eng_plan_add(e, wf);
    return p;
}

