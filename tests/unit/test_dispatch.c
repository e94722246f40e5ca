/*
 * Invariant 1 under load: an attempt never starts before its step_started
 * event is durable.  The engine's writer is given a store that keeps the
 * real SQLite journal underneath but holds every sync until the next batch
 * has been written behind it (or HOLD_MS pass), so that step_started events
 * of parallel, retrying steps are often written and not yet synced when an
 * earlier batch becomes durable: exactly when a dispatch one event too
 * early would start them.  The store checks, as each batch is written,
 * that every attempt's result in it follows a step_started already synced:
 * a result is made only after the action ran, so a result behind an
 * unsynced start means the action ran before its start was durable.
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "common/mem.h"
#include "engine/engine_int.h"
#include "engine/journal_int.h"
#include "engine_harness.h"
#include "test.h"

#define HOLD_MS 5   /* how long a sync waits for the next batch to be written */

/* One step_started written through the store. */
typedef struct {
    char run_id[CAIRN_RUN_ID_MAX];
    char step[64];
    int index, attempt;
    bool synced;
} started;

typedef struct {
    cairn_store base;
    cairn_store *real;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    started *starts;
    int n_starts, cap_starts;
    int appended;           /* batches written */
    int results;            /* attempt results checked */
    char violation[512];    /* the first result found behind an unsynced start */
    cairn_journal *journal;      /* over this store: the writer's */
} holding_store;

static bool is_result(cairn_event_type t) {
    return t == CAIRN_EV_STEP_SUCCEEDED || t == CAIRN_EV_STEP_FAILED ||
           t == CAIRN_EV_STEP_RETRYING;
}

/* The foreach item an event names ("index" in its data), or -1.  Read from
 * the text: this runs on the writer's thread, where jv is not used. */
static int index_of(const cairn_event *ev) {
    const char *p = strstr(ev->data, "\"index\":");
    return p ? atoi(p + 8) : -1;
}

static started *find_start(holding_store *s, const cairn_event *ev) {
    for (int i = s->n_starts - 1; i >= 0; i--) {
        started *st = &s->starts[i];
        if (st->index == index_of(ev) && st->attempt == ev->attempt &&
            strcmp(st->step, ev->step) == 0 && strcmp(st->run_id, ev->run_id) == 0)
            return st;
    }
    return NULL;
}

/* Under s->mu: check ev against what is synced, and remember a start. */
static void note(holding_store *s, const cairn_event *ev) {
    if (ev->step == NULL) return;
    if (is_result(ev->type)) {
        started *st = find_start(s, ev);
        s->results++;
        if (st && !st->synced && s->violation[0] == '\0')
            snprintf(s->violation, sizeof s->violation,
                     "%s of %s[%d] attempt %d written while its step_started was not synced",
                     cairn_event_type_name(ev->type), ev->step, index_of(ev), ev->attempt);
    }
    if (ev->type != CAIRN_EV_STEP_STARTED) return;
    if (s->n_starts == s->cap_starts) {
        s->cap_starts = s->cap_starts ? 2 * s->cap_starts : 64;
        s->starts = cairn_realloc(s->starts, (size_t)s->cap_starts * sizeof *s->starts);
    }
    started *st = &s->starts[s->n_starts++];
    snprintf(st->run_id, sizeof st->run_id, "%s", ev->run_id);
    snprintf(st->step, sizeof st->step, "%s", ev->step);
    st->index = index_of(ev);
    st->attempt = ev->attempt;
    st->synced = false;
}

static int held_append(cairn_store *base, cairn_event *const *evs, int n, cairn_err *err) {
    holding_store *s = (holding_store *)base;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < n; i++) note(s, evs[i]);
    s->appended++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
    return s->real->ops->append(s->real, evs, n, err);
}

static int held_sync(cairn_store *base, cairn_err *err) {
    holding_store *s = (holding_store *)base;
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_nsec += HOLD_MS * 1000000L;
    end.tv_sec += end.tv_nsec / 1000000000L;
    end.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&s->mu);
    int covers = s->n_starts, batches = s->appended, rc = 0;
    while (s->appended == batches && rc == 0) rc = pthread_cond_timedwait(&s->cond, &s->mu, &end);
    pthread_mutex_unlock(&s->mu);
    rc = s->real->ops->sync(s->real, err);
    pthread_mutex_lock(&s->mu);
    for (int i = 0; rc == 0 && i < covers; i++) s->starts[i].synced = true;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void held_close(cairn_store *base) {
    holding_store *s = (holding_store *)base;
    cairn_store_close(s->real);
    s->real = NULL;
}

static const cairn_store_ops holding_ops = {
    .name = "holding", .append = held_append, .sync = held_sync, .close = held_close};

static void post(void *inbox, eng_msg *m) { eng_post(inbox, m); }

/* Give h's engine a writer over a holding store on the same journal, in
 * place of the one it opened (and of its commit log: the writer then syncs
 * SQLite itself, as an engine beside a log holder does). */
static void hold_syncs(harness *h, holding_store *s) {
    memset(s, 0, sizeof *s);
    s->base.ops = &holding_ops;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    eng_writer_stop(h->e->writer);
    cairn_err err;
    if (cairn_store_open_sqlite_writer(h->db, CAIRN_SYNC_DEFERRED, &s->real, &err))
        TEST_FAIL("open: %s", err.msg);
    const char *owner = cairn_journal_owner(h->e->journal);
    s->real->ops->set_owner(s->real, owner);
    s->journal = cairn_journal_over(&s->base, NULL, owner);
    h->e->writer = eng_writer_start(s->journal, cairn_journal_new_chain(h->e->journal), post,
                                    h->e->inbox);
}

/* Parallel steps and a foreach, each attempt failing until its third. */
static const char *const retrying_wf =
    "cairn: 1\nname: busy\nsteps:\n"
    "  - id: many\n    needs: []\n    foreach: ${{ [range(0; 12)] }}\n"
    "    retry: { max_attempts: 3, delay: 1ms }\n"
    "    uses: fail\n    with: { message: \"item ${{ .index }}\" }\n"
    "    continue_on_error: true\n"
    "  - id: side\n    needs: []\n    foreach: ${{ [range(0; 4)] }}\n    concurrency: 2\n"
    "    retry: { max_attempts: 3, delay: 1ms, until: \"${{ .output.n > 1 }}\" }\n"
    "    uses: set\n    with: { n: \"${{ .step.attempt }}\" }\n"
    "  - id: alone\n    needs: []\n    retry: { max_attempts: 3, delay: 2ms }\n"
    "    uses: fail\n    with: { message: down }\n    continue_on_error: true\n";

static void check_dispatch(bool pool_only) {
    harness h = {0};
    holding_store s;
    open_engine(&h, pool_only);
    hold_syncs(&h, &s);
    add(&h, retrying_wf);
    char ids[3][CAIRN_RUN_ID_MAX];
    for (int i = 0; i < 3; i++) start(&h, "{}", ids[i]);
    drive(&h);
    for (int i = 0; i < 3; i++) {
        jv run = show(&h, ids[i]);
        CHECK_AT(run, "status", "succeeded");
        CHECK_AT(run, "steps.many.status", "failed");
        CHECK_AT(run, "steps.side.status", "succeeded");
        jv_free(run);
    }
    pthread_mutex_lock(&s.mu);
    if (s.violation[0]) TEST_FAIL("invariant 1 broken: %s", s.violation);
    /* each run: 12 items and a step failing 3 times, 4 items retried once by
     * `until`, and the two foreach steps' own ends */
    CHECK_INT(s.results, 3 * (12 * 3 + 3 + 4 * 2 + 2));
    pthread_mutex_unlock(&s.mu);
    free_h(&h);
    cairn_journal_close(s.journal);
    free(s.starts);
}

TEST(dispatch_starts_no_inline_action_before_its_start_is_synced) {
    check_dispatch(false);
}

TEST(dispatch_starts_no_pooled_action_before_its_start_is_synced) {
    check_dispatch(true);
}
