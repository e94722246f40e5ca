/*
 * pool.c - worker threads that run actions' execute(): the blocking part of
 * an attempt (fork and wait, HTTP, SSH, SQL).  A finished attempt goes back
 * to the orchestrator's inbox as MSG_RESULT; the job holds the result as
 * plain C data (no jv crosses threads).
 */
#include <stdlib.h>

#include "common/mem.h"
#include "engine/engine_int.h"

struct eng_pool {
    cairn_engine *e;
    pthread_t *threads;
    int n;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    eng_attempt *head, *tail;
    bool stop;
};

static void *worker_main(void *arg) {
    eng_pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->head == NULL && !p->stop) pthread_cond_wait(&p->cond, &p->mu);
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
        eng_msg *m = cairn_calloc(1, sizeof *m);
        m->kind = MSG_RESULT;
        m->attempt = a;
        eng_post(p->e, m);
    }
    return NULL;
}

eng_pool *eng_pool_start(cairn_engine *e, int threads) {
    eng_pool *p = cairn_calloc(1, sizeof *p);
    p->e = e;
    p->n = threads;
    p->threads = cairn_calloc((size_t)threads, sizeof *p->threads);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cond, NULL);
    for (int i = 0; i < threads; i++)
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) abort();
    return p;
}

void eng_pool_submit(eng_pool *p, eng_attempt *a) {
    a->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->tail) p->tail->next = a; else p->head = a;
    p->tail = a;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mu);
}

/* Workers finish the queue first: the orchestrator stops the pool only once
 * no attempt is in flight. */
void eng_pool_stop(eng_pool *p) {
    if (p == NULL) return;
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
