/*
 * writer.c - the journal writer: group commit, with the sync overlapped.
 *
 * Two threads, and a third with the commit log.  The writer takes every
 * event the orchestrator queued since its last commit and writes them in
 * one go, not yet synced.  The syncer takes every batch written since its
 * last sync, syncs once, and posts each batch back in order (MSG_DURABLE),
 * so the orchestrator knows how far the journal is durable and can start
 * what waited on it.  So while one batch syncs, the next one is written:
 * the disk's wait and the writer's work overlap instead of taking turns,
 * and many runs share each sync.
 *
 * Where a batch is written depends on whether the engine holds the commit
 * log (clog.h):
 *   - with the log, a batch is one record appended to it, and the syncer
 *     syncs the log.  The applier thread applies what is durable to SQLite
 *     later, many batches in one transaction with no sync (apply_due says
 *     when: a count, an age, a run's end, or someone waiting to read), and
 *     before the log starts over the writer waits for it, applies the rest
 *     and syncs SQLite (make_room).  A step then waits for a pwrite and a
 *     sync, and SQLite's work is off its path: with many runs the apply is
 *     the larger part of the journal's work (1.3-1.5 us an event in W2
 *     against 0.4-0.7 for hashing and writing the record), and on the
 *     writer's own thread it held back every batch queued behind it.
 *   - without it (another engine holds it, or syncs are relaxed), a batch
 *     is a SQLite transaction (CAIRN_SYNC_DEFERRED) and the syncer syncs
 *     SQLite's own log.
 *
 * When both threads are idle (nothing submitted, written or syncing) the
 * orchestrator may write and sync a small batch itself
 * (eng_writer_commit_if_idle): one run going step by step has nothing to
 * overlap, and on a virtual machine every hand-off between threads costs a
 * wake-up or a spinning neighbour, which slows the disk's own sync (see
 * CAIRN_COMMIT_HERE_MAX).  Whoever holds `writing` owns the log, or the
 * store's connection without one; with the log, whoever holds `applying`
 * (the applier, or the writer making room) owns the store's connection.
 * The batch is still posted in order, since nothing earlier is left
 * unposted when the writer is idle.
 *
 *   orchestrator --submit--> pending --writer: write--> committed
 *                --syncer: sync once--> MSG_DURABLE (or MSG_WRITE_FAILED)
 *   orchestrator --commit_if_idle: write, sync--> MSG_DURABLE (to itself)
 *   durable records --applier: apply, in bulk--> SQLite (log mode)
 *
 * Nothing is posted durable before a sync that began after its write
 * returned.  A batch fenced in part (journal.h, CAIRN_EFENCED: runs another
 * engine holds now) is not a failure: the events of the runs refused are
 * taken out of it and freed, and the rest is posted as written.  A failed write, sync or apply fails its batch and every later
 * one (sticky): after a failed sync the kernel may have dropped pages that
 * a later sync would not report.  Events hold no jv (text only): the
 * orchestrator and, in log mode, the applier hold each durable batch's
 * events, the applier until it has applied them (so it need not read the
 * log back and decode it), and whichever lets go last frees them
 * (eng_batch_share).
 *
 * The writer and the syncer spin a little for their next hand-off before
 * they sleep on their condition variables (eng_spin_for); the applier,
 * never on a step's path, just sleeps.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/mem.h"
#include "engine/engine_int.h"

struct eng_writer {
    cairn_journal *journal;
    cairn_chain *chain;          /* its own hasher under the journal's key (NULL: none) */
    bool ahead;                  /* the journal writes ahead (commit log): apply later */
    eng_post_fn post;
    void *ud;
    pthread_t writer, syncer, applier;
    pthread_mutex_t mu;
    pthread_cond_t cond;         /* writer: pending is not empty, or stop */
    pthread_cond_t apply_cond;   /* applier: an apply is due, or stop */
    pthread_cond_t sync_cond;    /* syncer: committed is not empty, or the writer is done */
    pthread_cond_t idle_cond;    /* catch_up, make_room: a thread finished a piece of work */
    eng_batch pending;           /* submitted, not yet written */
    eng_msg *committed, *committed_tail;   /* written (or failed), not yet synced */
    bool writing;                /* a batch is being written (writer thread, or here) */
    bool syncing;                /* the syncer holds a list */
    bool applying;               /* the store's connection is in use (log mode) */
    bool stop;
    bool writer_done;
    bool failed;                 /* whoever holds `writing` */
    atomic_int work;             /* pending is not empty: read while spinning */
    atomic_int sync_work;        /* committed is not empty: read while spinning */
    atomic_int sync_failed;      /* a sync or an apply failed: every later batch fails */
    eng_spinner writer_spin, syncer_spin;   /* each thread's, for its next hand-off */
    /* log mode: records in [log_applied, log_durable) are synced and not
     * yet in the store; `unapplied` counts their events */
    int64_t log_durable, log_applied;
    int unapplied;
    eng_batch *held;             /* their batches, shared with the orchestrator */
    int n_held, cap_held;
    int64_t apply_by;            /* monotonic ms: the oldest unapplied event's deadline */
    bool apply_now;              /* a run ended among them */
    int catching_up;             /* callers waiting in eng_writer_catch_up */
};

static bool failed_already(eng_writer *w) {
    return w->failed || atomic_load(&w->sync_failed);
}

/* ---- log mode: applying to the store ------------------------------------ */

/* Under mu. */
static bool apply_due(const eng_writer *w) {
    return w->unapplied > 0 &&
           (w->apply_now || w->catching_up > 0 || w->unapplied >= CAIRN_CLOG_APPLY_EVENTS ||
            cairn_now_ms() >= w->apply_by);
}

/* A failure no batch carries (an apply's, which apply_durable made
 * sticky): the orchestrator hears of it. */
static void post_failure(eng_writer *w, const cairn_err *err) {
    eng_msg *m = cairn_calloc(1, sizeof *m);
    m->kind = MSG_WRITE_FAILED;
    m->err = *err;
    w->post(w->ud, m);
}

/* Let go of the batches taken from `held` (n of them), and the array. */
static void let_go(eng_batch *held, int n) {
    for (int i = 0; i < n; i++) eng_batch_free_events(&held[i]);
    free(held);
}

/* Whoever holds `applying` (the applier, the writer making room, or the
 * stopping thread once the others are joined): put every durable record
 * into the store, from the events it still holds: the same events the
 * records hold, so the log is not read back. */
static int apply_durable(eng_writer *w, cairn_err *err) {
    pthread_mutex_lock(&w->mu);
    int64_t from = w->log_applied, to = w->log_durable;
    eng_batch *held = w->held;
    int n_held = w->n_held, n = 0;
    w->held = NULL;
    w->n_held = w->cap_held = 0;
    w->unapplied = 0;
    w->apply_now = false;
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < n_held; i++) n += held[i].n;
    cairn_event **evs = cairn_malloc((size_t)(n ? n : 1) * sizeof *evs);
    n = 0;
    for (int i = 0; i < n_held; i++)
        for (int k = 0; k < held[i].n; k++) evs[n++] = held[i].events[k];
    int rc = cairn_journal_apply_written(w->journal, from, to, evs, n, err);
    free(evs);
    let_go(held, n_held);
    pthread_mutex_lock(&w->mu);
    if (rc == 0) w->log_applied = to;
    else atomic_store(&w->sync_failed, 1);   /* before catch_up wakes to look */
    pthread_cond_broadcast(&w->idle_cond);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Every record written is synced: apply them all, sync the store, and
 * start the log over (grown to hold need bytes of records). */
static int start_log_over(eng_writer *w, size_t need, cairn_err *err) {
    int rc = apply_durable(w, err);
    if (rc == 0) rc = cairn_journal_start_over(w->journal, need, err);
    if (rc == 0) {
        pthread_mutex_lock(&w->mu);
        w->log_applied = w->log_durable = cairn_journal_written_end(w->journal);
        pthread_mutex_unlock(&w->mu);
    }
    return rc;
}

/* Writer thread, holding `writing`, when a record of need bytes does not
 * fit: wait until the syncer has synced every record written and the
 * applier is between applies, then hold the store's connection, apply the
 * rest and start the log over. */
static int make_room(eng_writer *w, size_t need, cairn_err *err) {
    pthread_mutex_lock(&w->mu);
    while (w->committed || w->syncing || w->applying) pthread_cond_wait(&w->idle_cond, &w->mu);
    w->applying = true;
    pthread_mutex_unlock(&w->mu);
    int rc = atomic_load(&w->sync_failed)
                 ? cairn_err_set(err, CAIRN_EIO, "the journal failed earlier")
                 : start_log_over(w, need, err);
    pthread_mutex_lock(&w->mu);
    w->applying = false;
    pthread_cond_signal(&w->apply_cond);   /* it may have waited for the store */
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* ---- writing and syncing ------------------------------------------------- */

/* After CAIRN_EFENCED: take the events of the runs refused out of the
 * batch (they were not written, and their runs are lost: the orchestrator
 * drops them), so that what is posted durable is what was written. */
static void drop_refused(eng_writer *w, eng_batch *batch) {
    int k = 0;
    for (int i = 0; i < batch->n; i++) {
        cairn_event *ev = batch->events[i];
        if (cairn_journal_refused(w->journal, ev->run_id)) eng_event_free(ev);
        else batch->events[k++] = ev;
    }
    batch->n = k;
}

/* Write one batch, its events' links of their runs' hash chains computed
 * first (in the order they are written, which is each run's seq order:
 * batches go out in the order they were queued); sticky after any failure.  In log mode *log_end receives
 * the end of its record.  A batch that does not fit in the log makes room
 * when may_wait; else CAIRN_EFULL, with nothing written and nothing failed. */
static int write_batch(eng_writer *w, eng_batch *batch, int64_t *log_end, bool may_wait,
                       cairn_err *err) {
    cairn_err_clear(err);
    *log_end = 0;
    if (failed_already(w)) {
        w->failed = true;
        return cairn_err_set(err, CAIRN_EIO, "the journal failed earlier");
    }
    for (int i = 0; w->chain && i < batch->n; i++) eng_event_hash(w->chain, batch->events[i]);
    int rc = cairn_journal_append_batch(w->journal, batch->events, batch->n, log_end, err);
    if (rc == CAIRN_EFULL && !may_wait) return rc;
    if (rc == CAIRN_EFULL) {
        rc = make_room(w, (size_t)*log_end, err);   /* EFULL: *log_end is the need */
        if (rc == 0)
            rc = cairn_journal_append_batch(w->journal, batch->events, batch->n, log_end, err);
    }
    if (rc == CAIRN_EFENCED) {   /* not a failure of the journal: those runs are lost */
        drop_refused(w, batch);
        rc = 0;
    }
    if (rc) w->failed = true;
    return rc;
}

/* Hand a written batch (or its failure) to the syncer. */
static void hand_to_syncer(eng_writer *w, eng_batch *batch, int64_t log_end, int rc,
                           const cairn_err *err) {
    eng_msg *m = cairn_calloc(1, sizeof *m);
    m->kind = rc == 0 ? MSG_DURABLE : MSG_WRITE_FAILED;
    m->batch = *batch;
    m->log_end = log_end;
    if (rc) m->err = *err;
    pthread_mutex_lock(&w->mu);
    w->writing = false;
    if (w->committed_tail) w->committed_tail->next = m; else w->committed = m;
    w->committed_tail = m;
    atomic_store(&w->sync_work, 1);
    pthread_cond_signal(&w->sync_cond);
    pthread_cond_broadcast(&w->idle_cond);
    pthread_mutex_unlock(&w->mu);
}

/* Log mode, after a sync: the list's records are durable and wait to be
 * applied; the applier holds their events until then.  Before the list is
 * posted (the orchestrator lets go of the events it holds then). */
static void note_durable(eng_writer *w, eng_msg *list) {
    pthread_mutex_lock(&w->mu);
    bool first = w->unapplied == 0;   /* the applier may sleep with no deadline */
    for (eng_msg *m = list; m; m = m->next) {
        if (m->kind != MSG_DURABLE) continue;
        if (m->log_end > w->log_durable) w->log_durable = m->log_end;
        if (w->unapplied == 0) w->apply_by = cairn_now_ms() + CAIRN_CLOG_APPLY_MS;
        w->unapplied += m->batch.n;
        if (w->n_held == w->cap_held) {
            w->cap_held = w->cap_held ? 2 * w->cap_held : 64;
            w->held = cairn_realloc(w->held, (size_t)w->cap_held * sizeof *w->held);
        }
        eng_batch_share(&m->batch, &w->held[w->n_held++]);
        for (int i = 0; i < m->batch.n; i++) w->apply_now |= cairn_event_ends_run(m->batch.events[i]->type);
    }
    if ((first && w->unapplied > 0) || apply_due(w)) pthread_cond_signal(&w->apply_cond);
    pthread_mutex_unlock(&w->mu);
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
        rc = cairn_journal_sync(w->journal, &err);
    if (rc) atomic_store(&w->sync_failed, 1);
    else if (w->ahead) note_durable(w, list);
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

/* ---- the threads --------------------------------------------------------- */

static void *writer_main(void *arg) {
    eng_writer *w = arg;
    for (;;) {
        /* the orchestrator answers a commit within microseconds */
        eng_spin_for(&w->writer_spin, &w->work);
        pthread_mutex_lock(&w->mu);
        while (w->pending.n == 0 && !w->stop) pthread_cond_wait(&w->cond, &w->mu);
        if (w->pending.n == 0) {   /* stopping */
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
        int64_t log_end;
        int rc = write_batch(w, &batch, &log_end, true, &err);
        hand_to_syncer(w, &batch, log_end, rc, &err);
    }
    return NULL;
}

/* Log mode: sleep until an apply is due and the store's connection is
 * free, or stop; under mu.  With events waiting to be applied, no longer
 * than their deadline. */
static void wait_for_apply(eng_writer *w) {
    while (!w->stop && (w->applying || !apply_due(w))) {
        if (w->unapplied == 0 || w->applying) {
            pthread_cond_wait(&w->apply_cond, &w->mu);
            continue;
        }
        int64_t at = w->apply_by;
        struct timespec ts = {.tv_sec = at / 1000, .tv_nsec = (long)(at % 1000) * 1000000};
        pthread_cond_timedwait(&w->apply_cond, &w->mu, &ts);
    }
}

/* What is left to apply at the stop, eng_writer_stop applies. */
static void *applier_main(void *arg) {
    eng_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        wait_for_apply(w);
        if (w->stop) break;
        w->applying = true;
        pthread_mutex_unlock(&w->mu);
        cairn_err err;
        if (apply_durable(w, &err) != 0) post_failure(w, &err);
        pthread_mutex_lock(&w->mu);
        w->applying = false;
        pthread_cond_broadcast(&w->idle_cond);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void *syncer_main(void *arg) {
    eng_writer *w = arg;
    for (;;) {
        /* the writer's next commit is due within a commit's time */
        eng_spin_for(&w->syncer_spin, &w->sync_work);
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
        pthread_cond_broadcast(&w->idle_cond);
        pthread_mutex_unlock(&w->mu);
    }
    return NULL;
}

/* ---- the interface -------------------------------------------------------- */

eng_writer *eng_writer_start(cairn_journal *journal, cairn_chain *chain, eng_post_fn post,
                             void *ud) {
    eng_writer *w = cairn_calloc(1, sizeof *w);
    w->journal = journal;
    w->chain = chain;
    w->ahead = cairn_journal_writes_ahead(journal);
    w->post = post;
    w->ud = ud;
    if (w->ahead) w->log_durable = w->log_applied = cairn_journal_written_end(journal);
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);   /* apply_by is cairn_now_ms */
    pthread_cond_init(&w->cond, &attr);
    pthread_cond_init(&w->apply_cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_cond_init(&w->sync_cond, NULL);
    pthread_cond_init(&w->idle_cond, NULL);
    if (pthread_create(&w->writer, NULL, writer_main, w) != 0 ||
        pthread_create(&w->syncer, NULL, syncer_main, w) != 0 ||
        (w->ahead && pthread_create(&w->applier, NULL, applier_main, w) != 0))
        abort();
    pthread_setname_np(w->writer, "cairn-writer");   /* for top -H (docs/operations.md) */
    pthread_setname_np(w->syncer, "cairn-syncer");
    if (w->ahead) pthread_setname_np(w->applier, "cairn-applier");
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
    cairn_err err;
    int64_t log_end;
    int rc = write_batch(w, batch, &log_end, false, &err);
    if (rc != CAIRN_EFULL) {
        eng_msg *m = cairn_calloc(1, sizeof *m);
        for (int i = 0; i < batch->n; i++) eng_batch_push(&m->batch, batch->events[i]);
        m->batch.ticket = batch->ticket;
        batch->n = 0;
        m->kind = rc == 0 ? MSG_DURABLE : MSG_WRITE_FAILED;
        m->log_end = log_end;
        if (rc) m->err = err;
        sync_and_post(w, m);
    }
    pthread_mutex_lock(&w->mu);
    w->writing = false;
    pthread_mutex_unlock(&w->mu);
    return rc != CAIRN_EFULL;
}

void eng_writer_apply_soon(eng_writer *w) {
    pthread_mutex_lock(&w->mu);
    if (w->unapplied > 0 && !w->apply_now) {
        w->apply_now = true;
        pthread_cond_signal(&w->apply_cond);
    }
    pthread_mutex_unlock(&w->mu);
}

int eng_writer_catch_up(eng_writer *w, cairn_err *err) {
    pthread_mutex_lock(&w->mu);
    w->catching_up++;
    pthread_cond_signal(&w->apply_cond);
    while (!failed_already(w) &&
           (w->pending.n > 0 || w->writing || w->committed || w->syncing ||
            w->log_applied < w->log_durable))
        pthread_cond_wait(&w->idle_cond, &w->mu);
    w->catching_up--;
    bool failed = failed_already(w);
    pthread_mutex_unlock(&w->mu);
    return failed ? cairn_err_set(err, CAIRN_EIO, "the journal failed earlier") : 0;
}

/* Log mode, once the threads are joined: apply what is left, sync the
 * store and start the log over, so the next engine finds it empty.  After a
 * failure the log is left as it is, for the next engine to apply. */
static void drain_log(eng_writer *w) {
    if (failed_already(w)) return;   /* the orchestrator has told of it */
    cairn_err err;
    if (start_log_over(w, 0, &err) != 0) {
        char msg[CAIRN_ERR_MSG_MAX + 300];
        fprintf(stderr, "cairn: the commit log was left for the next engine to apply: %s\n",
                cairn_err_format(&err, msg, sizeof msg));
    }
}

void eng_writer_stop(eng_writer *w) {
    if (w == NULL) return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cond);
    pthread_cond_signal(&w->apply_cond);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->writer, NULL);
    pthread_join(w->syncer, NULL);
    if (w->ahead) {
        pthread_join(w->applier, NULL);
        drain_log(w);
    }
    let_go(w->held, w->n_held);   /* left after a failure: the log keeps them */
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
    pthread_cond_destroy(&w->apply_cond);
    pthread_cond_destroy(&w->sync_cond);
    pthread_cond_destroy(&w->idle_cond);
    free(w->pending.events);
    cairn_chain_free(w->chain);
    free(w);
}
