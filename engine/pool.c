/*
 * pool.c - worker threads that run actions' execute(): the blocking part of
 * an attempt (fork and wait, HTTP, SSH, SQL).  A finished attempt goes back
 * to the orchestrator's inbox as MSG_RESULT; the job holds the result as
 * plain C data (no jv crosses threads).
 *
 * The orchestrator queues attempts on a list of its own (eng_pool_queue) and
 * hands the list over in one piece (eng_pool_flush): one lock for many
 * attempts, and a wake-up only for as many sleeping workers as there are new
 * attempts, sent after the lock is released so that a woken worker does not
 * at once wait for it.  A wake per attempt, under the lock, cost the
 * orchestrator a seventh of its time with a thousand runs in flight.
 *
 * A worker exits only in eng_pool_stop, once no attempt is in flight, and
 * execute returns only once the process it started is reaped (proc.h): so a
 * child's PR_SET_PDEATHSIG, which follows the thread that started it, fires
 * only when the engine itself dies.
 */
#include <stdlib.h>

#include "common/mem.h"
#include "engine/engine_int.h"

struct eng_pool {
    eng_inbox *inbox;            /* where results go */
    pthread_t *threads;
    int n;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    eng_attempt *head, *tail;    /* handed over, not yet taken: under mu */
    int idle;                    /* workers waiting on cond: under mu */
    bool stop;
    eng_attempt *queued, *queued_tail;   /* orchestrator only: not yet handed over */
    int n_queued;
};

static void *worker_main(void *arg) {
    eng_pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->head == NULL && !p->stop) {
            p->idle++;
            pthread_cond_wait(&p->cond, &p->mu);
            p->idle--;
        }
        eng_attempt *a = p->head;
        if (a == NULL) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        p->head = a->next;
        if (p->head == NULL) p->tail = NULL;
        pthread_mutex_unlock(&p->mu);

        a->next = NULL;
        a->action->execute(a->job, &a->info);
        eng_msg *m = a->result;
        a->result = NULL;
        eng_post(p->inbox, m);
    }
    return NULL;
}

eng_pool *eng_pool_start(eng_inbox *inbox, int threads) {
    eng_pool *p = cairn_calloc(1, sizeof *p);
    p->inbox = inbox;
    p->n = threads;
    p->threads = cairn_calloc((size_t)threads, sizeof *p->threads);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cond, NULL);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) abort();
        pthread_setname_np(p->threads[i], "cairn-worker");
    }
    return p;
}

/* The result's message is allocated here, on the orchestrator, which also
 * frees it: a worker that allocated it would grow its own malloc arena while
 * the orchestrator's frees shrank it again, a page fault or two per attempt. */
void eng_pool_queue(eng_pool *p, eng_attempt *a) {
    a->result = cairn_calloc(1, sizeof *a->result);
    a->result->kind = MSG_RESULT;
    a->result->attempt = a;
    a->next = NULL;
    if (p->queued_tail) p->queued_tail->next = a; else p->queued = a;
    p->queued_tail = a;
    p->n_queued++;
}

void eng_pool_flush(eng_pool *p) {
    if (p->queued == NULL) return;
    pthread_mutex_lock(&p->mu);
    if (p->tail) p->tail->next = p->queued; else p->head = p->queued;
    p->tail = p->queued_tail;
    int wake = p->idle < p->n_queued ? p->idle : p->n_queued;
    pthread_mutex_unlock(&p->mu);
    p->queued = p->queued_tail = NULL;
    p->n_queued = 0;
    /* a worker that wakes to an empty queue (another took the work) waits
     * again: a spare wake costs time, never an attempt */
    for (int i = 0; i < wake; i++) pthread_cond_signal(&p->cond);
}

/* Workers finish the queue first: the orchestrator stops the pool only once
 * no attempt is in flight. */
void eng_pool_stop(eng_pool *p) {
    if (p == NULL) return;
    eng_pool_flush(p);
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cond);
    free(p->threads);
    free(p);
}
