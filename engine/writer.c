/*
 * writer.c - the journal writer: group commit, with the sync overlapped.
 *
 * Two threads.  The writer takes every event the orchestrator queued since
 * its last commit and writes them in one transaction; the commit is whole at
 * once but not yet synced (CAIRN_SYNC_DEFERRED).  The syncer takes every
 * batch committed since its last sync, syncs the log once, and posts each
 * batch back in order (MSG_DURABLE), so the orchestrator knows how far the
 * journal is durable and can start what waited on it.  So while one batch
 * syncs, the next one is written: the disk's wait and the writer's work
 * overlap instead of taking turns, and many runs share each sync.
 *
 * When both threads are idle (nothing submitted, written or syncing) the
 * orchestrator may write and sync a small batch itself
 * (eng_writer_commit_if_idle): one run going step by step has nothing to
 * overlap, and on a virtual machine every hand-off between threads costs a
 * wake-up or a spinning neighbour, which slows the disk's own sync (see
 * CAIRN_COMMIT_HERE_MAX).  Whoever holds `writing` owns the store's
 * connection; the batch is still posted in order, since nothing earlier is
 * left unposted when the writer is idle.
 *
 *   orchestrator --submit--> pending --writer: append--> committed
 *                --syncer: sync once--> MSG_DURABLE (or MSG_WRITE_FAILED)
 *   orchestrator --commit_if_idle: append, sync--> MSG_DURABLE (to itself)
 *
 * Nothing is posted durable before a sync that began after its commit
 * returned.  A failed append, or a failed sync, fails its batch and every
 * later one (sticky): after a failed sync the kernel may have dropped pages
 * that a later sync would not report.  Events go back to the orchestrator to
 * be freed: their jv data must never be touched on these threads.
 *
 * Each thread spins a little for its next hand-off before it sleeps on its
 * condition variable (eng_spin_for).
 */
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "engine/engine_int.h"

struct eng_writer {
    cairn_store *store;
    eng_post_fn post;
    void *ud;
    pthread_t writer, syncer;
    pthread_mutex_t mu;
    pthread_cond_t cond;         /* writer: pending is not empty, or stop */
    pthread_cond_t sync_cond;    /* syncer: committed is not empty, or the writer is done */
    eng_batch pending;           /* submitted, not yet written */
    eng_msg *committed, *committed_tail;   /* written (or failed), not yet synced */
    bool writing;                /* a batch is being written (writer thread, or here) */
    bool syncing;                /* the syncer holds a list */
    bool stop;
    bool writer_done;
    bool failed;                 /* whoever holds `writing` */
    atomic_int work;             /* pending is not empty: read while spinning */
    atomic_int sync_work;        /* committed is not empty: read while spinning */
    atomic_int sync_failed;      /* set by the syncer, read by the writer */
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

/* Hand a written batch (or its failure) to the syncer. */
static void hand_to_syncer(eng_writer *w, eng_batch *batch, int rc, const cairn_err *err) {
    eng_msg *m = cairn_calloc(1, sizeof *m);
    m->kind = rc == 0 ? MSG_DURABLE : MSG_WRITE_FAILED;
    m->batch = *batch;
    if (rc) m->err = *err;
    pthread_mutex_lock(&w->mu);
    w->writing = false;
    if (w->committed_tail) w->committed_tail->next = m; else w->committed = m;
    w->committed_tail = m;
    atomic_store(&w->sync_work, 1);
    pthread_cond_signal(&w->sync_cond);
    pthread_mutex_unlock(&w->mu);
}

/* Append one batch; sticky after any failure, of an append or of a sync. */
static int write_batch(eng_writer *w, eng_batch *batch, cairn_err *err) {
    cairn_err_clear(err);
    if (atomic_load(&w->sync_failed)) w->failed = true;
    int rc = w->failed ? cairn_err_set(err, CAIRN_EIO, "the journal failed earlier")
                       : w->store->ops->append(w->store, batch->events, batch->n, err);
    if (rc) w->failed = true;
    return rc;
}

static void sync_and_post(eng_writer *w, eng_msg *list);

static void *writer_main(void *arg) {
    eng_writer *w = arg;
    for (;;) {
        /* the orchestrator answers a commit within microseconds */
        eng_spin_for(&w->work);
        pthread_mutex_lock(&w->mu);
        while (w->pending.n == 0 && !w->stop) pthread_cond_wait(&w->cond, &w->mu);
        if (w->pending.n == 0 && w->stop) {
            w->writer_done = true;
            pthread_cond_signal(&w->sync_cond);
            pthread_mutex_unlock(&w->mu);
            break;
        }
        eng_batch batch = w->pending;
        memset(&w->pending, 0, sizeof w->pending);
        atomic_store(&w->work, 0);
        w->writing = true;
        pthread_mutex_unlock(&w->mu);

        cairn_err err;
        int rc = write_batch(w, &batch, &err);
        hand_to_syncer(w, &batch, rc, &err);
    }
    return NULL;
}

/* Sync once for every batch in the list that was written, then post them
 * all, in order. */
static void sync_and_post(eng_writer *w, eng_msg *list) {
    bool written = false;
    for (eng_msg *m = list; m; m = m->next) written |= m->kind == MSG_DURABLE;
    cairn_err err;
    cairn_err_clear(&err);
    int rc = 0;
    if (atomic_load(&w->sync_failed))
        rc = cairn_err_set(&err, CAIRN_EIO, "the journal failed earlier");
    else if (written)
        rc = w->store->ops->sync(w->store, &err);
    if (rc) atomic_store(&w->sync_failed, 1);
    for (eng_msg *m = list, *next; m; m = next) {
        next = m->next;
        m->next = NULL;
        if (rc && m->kind == MSG_DURABLE) {
            m->kind = MSG_WRITE_FAILED;
            m->err = err;
        }
        w->post(w->ud, m);
    }
}

static void *syncer_main(void *arg) {
    eng_writer *w = arg;
    for (;;) {
        /* the writer's next commit is due within a commit's time */
        eng_spin_for(&w->sync_work);
        pthread_mutex_lock(&w->mu);
        while (w->committed == NULL && !w->writer_done) pthread_cond_wait(&w->sync_cond, &w->mu);
        eng_msg *list = w->committed;
        w->committed = w->committed_tail = NULL;
        atomic_store(&w->sync_work, 0);
        w->syncing = list != NULL;
        bool done = w->writer_done;
        pthread_mutex_unlock(&w->mu);
        if (list == NULL) {
            if (done) break;
            continue;
        }
        sync_and_post(w, list);
        pthread_mutex_lock(&w->mu);
        w->syncing = false;
        pthread_mutex_unlock(&w->mu);
    }
    return NULL;
}

eng_writer *eng_writer_start(cairn_store *store, eng_post_fn post, void *ud) {
    eng_writer *w = cairn_calloc(1, sizeof *w);
    w->store = store;
    w->post = post;
    w->ud = ud;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    pthread_cond_init(&w->sync_cond, NULL);
    if (pthread_create(&w->writer, NULL, writer_main, w) != 0 ||
        pthread_create(&w->syncer, NULL, syncer_main, w) != 0)
        abort();
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

bool eng_writer_commit_if_idle(eng_writer *w, eng_batch *batch) {
    if (batch->n == 0) return true;
    pthread_mutex_lock(&w->mu);
    bool idle = !w->writing && !w->syncing && w->pending.n == 0 && w->committed == NULL;
    if (idle) w->writing = true;
    pthread_mutex_unlock(&w->mu);
    if (!idle) return false;
    eng_msg *m = cairn_calloc(1, sizeof *m);
    for (int i = 0; i < batch->n; i++) eng_batch_push(&m->batch, batch->events[i]);
    m->batch.ticket = batch->ticket;
    batch->n = 0;
    int rc = write_batch(w, &m->batch, &m->err);
    m->kind = rc == 0 ? MSG_DURABLE : MSG_WRITE_FAILED;
    sync_and_post(w, m);
    pthread_mutex_lock(&w->mu);
    w->writing = false;
    pthread_mutex_unlock(&w->mu);
    return true;
}

void eng_writer_stop(eng_writer *w) {
    if (w == NULL) return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->writer, NULL);
    pthread_join(w->syncer, NULL);
    cairn_store_close(w->store);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
    pthread_cond_destroy(&w->sync_cond);
    free(w->pending.events);
    free(w);
}
