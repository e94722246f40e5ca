/*
 * batch.c - the engine's events and the batches they travel in, between
 * the orchestrator (which makes them) and the writer threads (which write
 * them, and with a commit log keep them until they are applied to the
 * journal of record).  A batch's events are freed by whichever of its
 * holders lets go last: the orchestrator once it has seen them durable,
 * or the applier once it has applied them.
 */
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "engine/engine_int.h"

cairn_event *eng_event_new(eng_run *r, const char *step, const char *text, size_t len) {
    size_t step_len = step ? strlen(step) + 1 : 0;
    eng_event *e = cairn_malloc(sizeof *e + step_len + len + 1);
    memset(e, 0, sizeof *e);   /* the tail is written whole below */
    char *tail = (char *)(e + 1);
    cairn_event *ev = &e->ev;
    if (step) ev->step = memcpy(tail, step, step_len);
    ev->data = memcpy(tail + step_len, text, len);
    ev->data[len] = '\0';
    ev->data_len = len;
    e->run = r;
    return ev;
}

void eng_event_hash(cairn_chain *chain, cairn_event *ev) {
    eng_event *e = (eng_event *)ev;
    if (e->hashed) return;
    cairn_chain_hash(chain, ev->seq > 1 ? e->run->chain_head : NULL, ev);
    memcpy(e->run->chain_head, ev->hash, CAIRN_HASH_LEN);
    e->hashed = true;
}

void eng_event_free(cairn_event *ev) {
    free(ev);   /* eng_event begins with it; step and data lie in the same block */
}

void eng_batch_push(eng_batch *b, cairn_event *ev) {
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->events = cairn_realloc(b->events, (size_t)b->cap * sizeof *b->events);
    }
    b->events[b->n++] = ev;
}

void eng_batch_free_events(eng_batch *b) {
    bool last = b->holders == NULL || atomic_fetch_sub(b->holders, 1) == 1;
    if (last) {
        for (int i = 0; i < b->n; i++) eng_event_free(b->events[i]);
        free(b->events);
        free(b->holders);
    }
    memset(b, 0, sizeof *b);
}

void eng_batch_share(eng_batch *b, eng_batch *copy) {
    if (b->holders == NULL) {
        b->holders = cairn_malloc(sizeof *b->holders);
        atomic_init(b->holders, 1);
    }
    atomic_fetch_add(b->holders, 1);
    *copy = *b;
}
