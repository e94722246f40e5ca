/*
 * writer.c - the journal writer thread: group commit.
 *
 * The orchestrator hands over batches of events; the writer takes every event
 * queued since its last commit, writes them in one transaction with one sync,
 * and posts the batch back (MSG_DURABLE) so the orchestrator knows how far the
 * journal is durable and can start what waited on it.  This is what lets many
 * runs share each fsync.  Events go back to the orchestrator to be freed:
 * their jv data must never be touched on this thread.
 *
 * After each commit the writer spins a little for the next batch before it
 * sleeps on its condition variable (eng_spin_for).
 *
 * A failed write is posted as MSG_WRITE_FAILED; every later batch fails too
 * (sticky), since the store's state is no longer known.
 */
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "engine/engine_int.h"

struct eng_writer {
    cairn_engine *e;
    cairn_store *store;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    eng_batch pending;
    bool stop;
    bool failed;
    atomic_int work;             /* pending is not empty: read while spinning */
};

void eng_batch_push(eng_batch *b, cairn_event *ev) {
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->events = cairn_realloc(b->events, (size_t)b->cap * sizeof *b->events);
    }
    b->events[b->n++] = ev;
}

void eng_batch_free_events(eng_batch *b) {
    for (int i = 0; i < b->n; i++) {
        cairn_event_clear(b->events[i]);
        free(b->events[i]);
    }
    free(b->events);
    memset(b, 0, sizeof *b);
}

static void post_result(eng_writer *w, eng_batch *batch, int rc, const cairn_err *err) {
    eng_msg *m = cairn_calloc(1, sizeof *m);
    m->kind = rc == 0 ? MSG_DURABLE : MSG_WRITE_FAILED;
    m->batch = *batch;
    if (rc) m->err = *err;
    eng_post(w->e, m);
}

static void *writer_main(void *arg) {
    eng_writer *w = arg;
    for (;;) {
        /* the orchestrator answers a commit within microseconds */
        eng_spin_for(&w->work);
        pthread_mutex_lock(&w->mu);
        while (w->pending.n == 0 && !w->stop) pthread_cond_wait(&w->cond, &w->mu);
        if (w->pending.n == 0 && w->stop) {
            pthread_mutex_unlock(&w->mu);
            break;
        }
        eng_batch batch = w->pending;
        memset(&w->pending, 0, sizeof w->pending);
        atomic_store(&w->work, 0);
        pthread_mutex_unlock(&w->mu);

        cairn_err err;
        cairn_err_clear(&err);
        int rc = w->failed ? cairn_err_set(&err, CAIRN_EIO, "the journal failed earlier")
                           : w->store->ops->append(w->store, batch.events, batch.n, &err);
        if (rc) w->failed = true;
        post_result(w, &batch, rc, &err);
    }
    return NULL;
}

eng_writer *eng_writer_start(cairn_engine *e, cairn_store *store) {
    eng_writer *w = cairn_calloc(1, sizeof *w);
    w->e = e;
    w->store = store;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) abort();
    return w;
}

void eng_writer_submit(eng_writer *w, eng_batch *batch) {
    if (batch->n == 0) return;
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < batch->n; i++) eng_batch_push(&w->pending, batch->events[i]);
    if (batch->ticket > w->pending.ticket) w->pending.ticket = batch->ticket;
    atomic_store(&w->work, 1);
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
    batch->n = 0;
}

void eng_writer_stop(eng_writer *w) {
    if (w == NULL) return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    cairn_store_close(w->store);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
    free(w->pending.events);
    free(w);
}
