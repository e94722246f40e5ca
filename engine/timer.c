/*
 * timer.c - durable timers: retry back-offs, `wait` steps, approvals'
 * time-outs.
 *
 * A timer is journaled before it is armed (step_retrying, step_waiting or
 * approval_requested carries its deadline), so a restart re-arms it from
 * the fold; a deadline that passed while the engine was down fires at once.
 * Armed timers live in a binary min-heap on the orchestrator: a waiting run
 * holds no thread.  This file keeps the heap only; what a timer that fires
 * means is the loop's (engine.c), which drops a timer whose step has moved
 * on (cancelled, already restarted).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/mem.h"
#include "engine/engine_int.h"

struct eng_timers {
    eng_timer *heap;             /* a min-heap on `at` */
    int n, cap;
};

eng_timers *eng_timers_new(void) { return cairn_calloc(1, sizeof(eng_timers)); }

void eng_timers_free(eng_timers *t) {
    if (t == NULL) return;
    free(t->heap);
    free(t);
}

static void swap(eng_timer *a, eng_timer *b) {
    eng_timer t = *a;
    *a = *b;
    *b = t;
}

void eng_timer_add(cairn_engine *e, eng_run *r, int step, int index, int64_t at) {
    eng_timers *t = e->timers;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->heap = cairn_realloc(t->heap, (size_t)t->cap * sizeof *t->heap);
    }
    int i = t->n++;
    t->heap[i] = (eng_timer){.at = at, .step = step, .index = index};
    snprintf(t->heap[i].run_id, sizeof t->heap[i].run_id, "%s", r->st->id);
    while (i > 0 && t->heap[(i - 1) / 2].at > t->heap[i].at) {
        swap(&t->heap[(i - 1) / 2], &t->heap[i]);
        i = (i - 1) / 2;
    }
}

static eng_timer pop(eng_timers *t) {
    eng_timer top = t->heap[0];
    t->heap[0] = t->heap[--t->n];
    for (int i = 0;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < t->n && t->heap[l].at < t->heap[m].at) m = l;
        if (r < t->n && t->heap[r].at < t->heap[m].at) m = r;
        if (m == i) break;
        swap(&t->heap[i], &t->heap[m]);
        i = m;
    }
    return top;
}

int64_t eng_timer_next(const cairn_engine *e) {
    return e->timers->n ? e->timers->heap[0].at : INT64_MAX;
}

bool eng_timer_take_due(cairn_engine *e, int64_t now, eng_timer *out) {
    eng_timers *t = e->timers;
    if (t->n == 0 || t->heap[0].at > now) return false;
    *out = pop(t);
    return true;
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
