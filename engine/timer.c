/*
 * timer.c - durable timers: retry back-offs and `wait` steps.
 *
 * A timer is journaled before it is armed (step_retrying or step_waiting
 * carries its deadline), so a restart re-arms it from the fold; a deadline
 * that passed while the engine was down fires at once.  Armed timers live in
 * a binary min-heap on the orchestrator: a waiting run holds no thread.  A
 * timer whose step has moved on (cancelled, already restarted) is dropped
 * when it fires.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/mem.h"
#include "engine/engine_int.h"

static void swap(eng_timer *a, eng_timer *b) {
    eng_timer t = *a;
    *a = *b;
    *b = t;
}

void eng_timer_add(cairn_engine *e, eng_run *r, int step, int index, int64_t at) {
    if (e->n_timers == e->cap_timers) {
        e->cap_timers = e->cap_timers ? e->cap_timers * 2 : 64;
        e->timers = cairn_realloc(e->timers, (size_t)e->cap_timers * sizeof *e->timers);
    }
    int i = e->n_timers++;
    e->timers[i] = (eng_timer){.at = at, .step = step, .index = index};
    snprintf(e->timers[i].run_id, sizeof e->timers[i].run_id, "%s", r->st->id);
    while (i > 0 && e->timers[(i - 1) / 2].at > e->timers[i].at) {
        swap(&e->timers[(i - 1) / 2], &e->timers[i]);
        i = (i - 1) / 2;
    }
}

static eng_timer pop(cairn_engine *e) {
    eng_timer top = e->timers[0];
    e->timers[0] = e->timers[--e->n_timers];
    for (int i = 0;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < e->n_timers && e->timers[l].at < e->timers[m].at) m = l;
        if (r < e->n_timers && e->timers[r].at < e->timers[m].at) m = r;
        if (m == i) break;
        swap(&e->timers[i], &e->timers[m]);
        i = m;
    }
    return top;
}

int64_t eng_timer_next(const cairn_engine *e) {
    return e->n_timers ? e->timers[0].at : INT64_MAX;
}

/* The waiting slot a timer belongs to, if it still waits for this deadline. */
static bool still_waiting(eng_run *r, const eng_timer *t) {
    if (r->ended || t->step >= r->st->n_steps) return false;
    const cairn_step_state *s = &r->st->steps[t->step];
    if (t->index < 0) return s->status == CAIRN_STEP_WAITING && s->wake_at == t->at;
    if (t->index >= s->n_items) return false;
    return s->items[t->index].status == CAIRN_STEP_WAITING && s->items[t->index].wake_at == t->at;
}

static void fire(cairn_engine *e, eng_run *r, const eng_timer *t) {
    const cairn_step *step = r->plan->steps[t->step];
    if (strcmp(step->uses, "approval") == 0 &&
        jv_get_kind(r->st->steps[t->step].approval) == JV_KIND_OBJECT) {
        eng_approval_timeout(e, r, t->step);
    } else if (strcmp(step->uses, "wait") == 0) {
        char when[40];
        jv out = jv_object_set(jv_object(), jv_string("fired_at"),
                               jv_string(cairn_rfc3339(cairn_wall_ms(), when, sizeof when)));
        eng_emit(e, r, CAIRN_EV_STEP_SUCCEEDED, t->step, t->index, 1,
                 jv_object_set(jv_object(), jv_string("output"), out));
        if (t->index < 0) eng_step_done(e, r, t->step);
        else eng_item_finished(e, r, t->step, t->index, true, jv_null());
    } else if (eng_is_rollback_step(r, t->step) || (!r->failing && !r->st->cancel_requested)) {
        eng_start_attempt(e, r, t->step, t->index);
    }
    eng_schedule(e, r);
}

void eng_timers_fire(cairn_engine *e) {
    int64_t now = cairn_wall_ms();
    while (e->n_timers && e->timers[0].at <= now && !e->stopping) {
        eng_timer t = pop(e);
        eng_run *r = eng_find_run(e, t.run_id);
        if (r && !r->ended && still_waiting(r, &t)) fire(e, r, &t);
    }
}

void eng_timers_rearm(cairn_engine *e, eng_run *r) {
    for (int i = 0; i < r->st->n_steps; i++) {
        const cairn_step_state *s = &r->st->steps[i];
        /* wake_at 0: waiting for people, with no time-out */
        if (s->status == CAIRN_STEP_WAITING && s->wake_at > 0) eng_timer_add(e, r, i, -1, s->wake_at);
        for (int k = 0; k < s->n_items; k++)
            if (s->items[k].status == CAIRN_STEP_WAITING && s->items[k].wake_at > 0)
                eng_timer_add(e, r, i, k, s->items[k].wake_at);
    }
}
