/*
 * Journal writer tests: the writer, syncer and applier threads over a store
 * double whose sync and apply the test holds and releases, so the order of
 * appends, syncs, applies and posts is fixed by the test rather than by
 * timing.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "common/mem.h"
#include "engine/clog.h"
#include "engine/engine_int.h"
#include "engine/journal_int.h"
#include "test.h"

typedef struct {
    cairn_store base;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int appended;               /* batches appended */
    int append_calls;
    pthread_t append_thread;    /* the thread of the last append */
    int syncs;                  /* syncs finished */
    int covered;                /* batches appended when the last finished sync began */
    bool in_sync, hold_sync;
    bool in_append, hold_append;
    int fail_sync;              /* the sync (1-based) that fails; 0: none */
    int applied, apply_calls;   /* with the commit log: events applied, and in how many calls */
    bool fail_apply;
    int in_apply;               /* applies under way (the store's connection is one thread's) */
    bool hold_apply;            /* applies wait while set */
    bool overlap;               /* an apply or the store's sync began while an apply ran */
    /* what the writer posted, in order */
    int posted, posted_batch[8], posted_kind[8], posted_covered[8];
} fake_store;

static int fake_append(cairn_store *base, cairn_event *const *evs, int n, cairn_err *err) {
    (void)evs, (void)n, (void)err;
    fake_store *f = (fake_store *)base;
    pthread_mutex_lock(&f->mu);
    f->append_calls++;
    f->append_thread = pthread_self();
    f->in_append = true;
    pthread_cond_broadcast(&f->cond);
    while (f->hold_append) pthread_cond_wait(&f->cond, &f->mu);
    f->in_append = false;
    f->appended++;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static int fake_sync(cairn_store *base, cairn_err *err) {
    fake_store *f = (fake_store *)base;
    pthread_mutex_lock(&f->mu);
    f->overlap |= f->in_apply > 0;
    int covers = f->appended;
    f->in_sync = true;
    pthread_cond_broadcast(&f->cond);
    while (f->hold_sync) pthread_cond_wait(&f->cond, &f->mu);
    f->in_sync = false;
    f->syncs++;
    f->covered = covers;
    int rc = f->syncs == f->fail_sync ? cairn_err_set(err, CAIRN_EIO, "sync failed") : 0;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static int fake_append_missing(cairn_store *base, cairn_event *const *evs, int n,
                               cairn_err *err) {
    (void)evs;
    fake_store *f = (fake_store *)base;
    pthread_mutex_lock(&f->mu);
    f->overlap |= f->in_apply > 0;
    f->in_apply++;
    f->apply_calls++;
    pthread_cond_broadcast(&f->cond);
    while (f->hold_apply) pthread_cond_wait(&f->cond, &f->mu);
    if (!f->fail_apply) f->applied += n;
    f->in_apply--;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
    return f->fail_apply ? cairn_err_set(err, CAIRN_EIO, "apply failed") : 0;
}

static void fake_close(cairn_store *base) {
    (void)base;
}

static const cairn_store_ops fake_ops = {
    .name = "fake", .append = fake_append, .append_missing = fake_append_missing,
    .sync = fake_sync, .close = fake_close};

/* The batch number travels as the first event's seq. */
static void collect(void *ud, eng_msg *m) {
    fake_store *f = ud;
    pthread_mutex_lock(&f->mu);
    if (f->posted < 8) {   /* a failure no batch carries (an apply's) counts as batch 0 */
        f->posted_batch[f->posted] = m->batch.n ? (int)m->batch.events[0]->seq : 0;
        f->posted_kind[f->posted] = m->kind;
        f->posted_covered[f->posted] = f->covered;
    }
    f->posted++;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
    eng_batch_free_events(&m->batch);
    free(m);
}

/* The writer of the test running (one a process): over a journal made of
 * f's store and log, closed with it. */
static cairn_journal *journal;

static eng_writer *start_writer(cairn_store *store, cairn_clog *log, fake_store *f) {
    journal = cairn_journal_over(store, log, "test");
    return eng_writer_start(journal, NULL, collect, f);
}

static void stop_writer(eng_writer *w) {
    eng_writer_stop(w);
    cairn_journal_close(journal);
    journal = NULL;
}

static void fake_init(fake_store *f) {
    memset(f, 0, sizeof *f);
    f->base.ops = &fake_ops;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cond, NULL);
}

static eng_batch one_event_batch(int number) {
    cairn_event *ev = eng_event_new(NULL, NULL, "{}", 2);
    ev->seq = number;
    eng_batch b = {0};
    eng_batch_push(&b, ev);
    b.ticket = number;
    return b;
}

static void submit(eng_writer *w, int number) {
    eng_batch b = one_event_batch(number);
    eng_writer_submit(w, &b);
    free(b.events);
}

/* Commit on this thread if the writer is idle; else submit.  Returns
 * whether it was committed here. */
static bool commit_here_or_submit(eng_writer *w, int number) {
    eng_batch b = one_event_batch(number);
    bool here = eng_writer_commit_if_idle(w, &b);
    if (!here) {
        CHECK_INT(b.n, 1);            /* left as it was */
        eng_writer_submit(w, &b);
    }
    free(b.events);
    return here;
}

/* Wait until *field reaches want (under f->mu). */
static void wait_for(fake_store *f, const int *field, int want) {
    pthread_mutex_lock(&f->mu);
    while (*field < want) pthread_cond_wait(&f->cond, &f->mu);
    pthread_mutex_unlock(&f->mu);
}

/* As wait_for, giving up after ms: whether it was reached.  For what must
 * happen while the test holds something else back (the bug it guards
 * against would hold it back too, for ever). */
static bool wait_for_within(fake_store *f, const int *field, int want, int ms) {
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    at.tv_sec += ms / 1000;
    at.tv_nsec += (long)(ms % 1000) * 1000000;
    if (at.tv_nsec >= 1000000000) {
        at.tv_sec++;
        at.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&f->mu);
    int rc = 0;
    while (*field < want && rc == 0) rc = pthread_cond_timedwait(&f->cond, &f->mu, &at);
    bool reached = *field >= want;
    pthread_mutex_unlock(&f->mu);
    return reached;
}

static void release_applies(fake_store *f) {
    pthread_mutex_lock(&f->mu);
    f->hold_apply = false;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
}

static void wait_in_sync(fake_store *f) {
    pthread_mutex_lock(&f->mu);
    while (!f->in_sync) pthread_cond_wait(&f->cond, &f->mu);
    pthread_mutex_unlock(&f->mu);
}

static void release_syncs(fake_store *f) {
    pthread_mutex_lock(&f->mu);
    f->hold_sync = false;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
}

/* Start a writer over f and submit batch 1; return once its sync has begun
 * and is held. */
static eng_writer *start_with_first_sync_held(fake_store *f) {
    f->hold_sync = true;
    eng_writer *w = start_writer(&f->base, NULL, f);
    submit(w, 1);
    wait_in_sync(f);
    return w;
}

TEST(writer_writes_on_while_a_sync_runs_and_posts_only_what_a_sync_covered) {
    fake_store f;
    fake_init(&f);
    eng_writer *w = start_with_first_sync_held(&f);
    submit(w, 2);
    wait_for(&f, &f.appended, 2);
    submit(w, 3);
    wait_for(&f, &f.appended, 3);   /* both written while the first sync waits */
    pthread_mutex_lock(&f.mu);
    CHECK_INT(f.posted, 0);         /* nothing is durable before its sync */
    pthread_mutex_unlock(&f.mu);
    release_syncs(&f);
    wait_for(&f, &f.posted, 3);
    stop_writer(w);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(f.posted_batch[i], i + 1);   /* in order */
        CHECK_INT(f.posted_kind[i], MSG_DURABLE);
        CHECK(f.posted_covered[i] >= f.posted_batch[i]);
    }
    CHECK_INT(f.posted_covered[0], 1);   /* the first sync began before 2 and 3 */
    /* 2 and 3 share the second sync unless 3 reached the syncer only after
     * it began (its append is counted before it is handed over) */
    CHECK(f.syncs == 2 || f.syncs == 3);
}

TEST(writer_fails_the_batch_of_a_failed_sync_and_every_later_one) {
    fake_store f;
    fake_init(&f);
    f.fail_sync = 1;
    eng_writer *w = start_with_first_sync_held(&f);
    submit(w, 2);                    /* written while the failing sync runs */
    wait_for(&f, &f.appended, 2);
    release_syncs(&f);
    wait_for(&f, &f.posted, 2);
    submit(w, 3);
    wait_for(&f, &f.posted, 3);
    stop_writer(w);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(f.posted_batch[i], i + 1);
        CHECK_INT(f.posted_kind[i], MSG_WRITE_FAILED);   /* 2 too, though its own sync was fine */
    }
    CHECK_INT(f.append_calls, 2);   /* the third batch was never written */
}

TEST(writer_commits_on_the_calling_thread_when_idle_and_posts_before_returning) {
    fake_store f;
    fake_init(&f);
    eng_writer *w = start_writer(&f.base, NULL, &f);
    for (int i = 1; i <= 3; i++) {
        CHECK(commit_here_or_submit(w, i));
        pthread_mutex_lock(&f.mu);
        CHECK_INT(f.posted, i);      /* synced and posted before it returned */
        CHECK_INT(f.syncs, i);
        CHECK(pthread_equal(f.append_thread, pthread_self()));
        pthread_mutex_unlock(&f.mu);
    }
    stop_writer(w);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(f.posted_batch[i], i + 1);
        CHECK_INT(f.posted_kind[i], MSG_DURABLE);
        CHECK_INT(f.posted_covered[i], i + 1);
    }
}

TEST(writer_leaves_a_batch_to_its_threads_while_a_sync_is_under_way) {
    fake_store f;
    fake_init(&f);
    eng_writer *w = start_with_first_sync_held(&f);
    CHECK(!commit_here_or_submit(w, 2));   /* 1 is syncing: 2 must follow it */
    wait_for(&f, &f.appended, 2);
    CHECK(!pthread_equal(f.append_thread, pthread_self()));
    release_syncs(&f);
    wait_for(&f, &f.posted, 2);
    cairn_err err;
    CHECK_INT(eng_writer_catch_up(w, &err), 0);   /* and the syncer is done */
    CHECK(commit_here_or_submit(w, 3));    /* idle again */
    stop_writer(w);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(f.posted_batch[i], i + 1);
        CHECK_INT(f.posted_kind[i], MSG_DURABLE);
        CHECK(f.posted_covered[i] >= f.posted_batch[i]);
    }
}

TEST(writer_fails_every_batch_after_a_failed_sync_on_the_calling_thread) {
    fake_store f;
    fake_init(&f);
    f.fail_sync = 1;
    eng_writer *w = start_writer(&f.base, NULL, &f);
    CHECK(commit_here_or_submit(w, 1));
    CHECK(commit_here_or_submit(w, 2));
    submit(w, 3);
    wait_for(&f, &f.posted, 3);
    stop_writer(w);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(f.posted_batch[i], i + 1);
        CHECK_INT(f.posted_kind[i], MSG_WRITE_FAILED);
    }
    CHECK_INT(f.append_calls, 1);   /* nothing written after the failure */
}

TEST(writer_leaves_a_batch_to_its_threads_while_one_is_being_written) {
    fake_store f;
    fake_init(&f);
    f.hold_append = true;
    eng_writer *w = start_writer(&f.base, NULL, &f);
    submit(w, 1);
    pthread_mutex_lock(&f.mu);
    while (!f.in_append) pthread_cond_wait(&f.cond, &f.mu);   /* 1 is being written, held */
    pthread_mutex_unlock(&f.mu);
    CHECK(!commit_here_or_submit(w, 2));   /* the store's connection is the writer's */
    pthread_mutex_lock(&f.mu);
    f.hold_append = false;
    pthread_cond_broadcast(&f.cond);
    pthread_mutex_unlock(&f.mu);
    wait_for(&f, &f.posted, 2);
    stop_writer(w);
    for (int i = 0; i < 2; i++) {
        CHECK_INT(f.posted_batch[i], i + 1);
        CHECK_INT(f.posted_kind[i], MSG_DURABLE);
    }
    CHECK(!pthread_equal(f.append_thread, pthread_self()));
}

/* ---- with the commit log ---------------------------------------------------- */

/* A batch of `events` step events of `size` data bytes each, numbered as
 * above, that the commit log can carry. */
static eng_batch log_batch(int number, int events, size_t size) {
    eng_batch b = {0};
    for (int i = 0; i < events; i++) {
        char *text = cairn_malloc(size);
        memset(text, 'x', size);
        cairn_event *ev = eng_event_new(NULL, "a", text, size);
        free(text);
        snprintf(ev->run_id, sizeof ev->run_id, "r");
        ev->seq = number;
        ev->type = CAIRN_EV_STEP_STARTED;
        eng_batch_push(&b, ev);
    }
    b.ticket = number;
    return b;
}

static eng_writer *start_logged(fake_store *f, char **db) {
    *db = cairn_sprintf("%s/j.db", test_tmpdir());
    cairn_clog *log = NULL;
    cairn_store *journal = NULL;   /* the log names its journal: make one */
    cairn_err err;
    CHECK_INT(cairn_store_open_sqlite(*db, CAIRN_SYNC_FULL, false, &journal, &err), 0);
    cairn_store_close(journal);
    CHECK_INT(cairn_clog_open(*db, "test", true, &log, &err), 0);
    return start_writer(&f->base, log, f);
}

static int64_t log_end_after_stop(const char *db) {
    cairn_clog *log = NULL;
    cairn_err err;
    CHECK_INT(cairn_clog_open(db, "test", false, &log, &err), 0);
    int64_t end = cairn_clog_end(log);
    cairn_clog_close(log);
    return end;
}

TEST(writer_with_the_log_syncs_it_and_applies_to_the_store_without_a_sync) {
    fake_store f;
    fake_init(&f);
    char *db;
    eng_writer *w = start_logged(&f, &db);
    for (int i = 1; i <= 3; i++) {   /* one at a time: pending batches would merge */
        eng_batch b = log_batch(i, 2, 10);
        eng_writer_submit(w, &b);
        free(b.events);
        wait_for(&f, &f.posted, i);
    }
    CHECK_INT(f.syncs, 0);            /* durable in the log: the store was not synced */
    cairn_err err;
    CHECK_INT(eng_writer_catch_up(w, &err), 0);
    CHECK_INT(f.applied, 6);          /* in the store once caught up */
    CHECK_INT(f.appended, 0);         /* never committed one batch at a time */
    stop_writer(w);
    CHECK_INT(f.syncs, 1);            /* the store synced before the log started over */
    CHECK_INT(log_end_after_stop(db), CAIRN_CLOG_HEADER);
    for (int i = 0; i < 3; i++) CHECK_INT(f.posted_kind[i], MSG_DURABLE);
    free(db);
}

TEST(writer_with_a_full_log_applies_syncs_the_store_and_starts_it_over) {
    fake_store f;
    fake_init(&f);
    char *db;
    eng_writer *w = start_logged(&f, &db);
    int batches = 24;                 /* 24 x 256 KiB: half again the log's size */
    for (int i = 1; i <= batches; i++) {
        eng_batch b = log_batch(i, 1, 256 * 1024);
        eng_writer_submit(w, &b);
        free(b.events);
        wait_for(&f, &f.posted, i);
    }
    for (int i = 0; i < 8; i++) CHECK_INT(f.posted_kind[i], MSG_DURABLE);
    pthread_mutex_lock(&f.mu);
    int synced_when_full = f.syncs;
    pthread_mutex_unlock(&f.mu);
    CHECK(synced_when_full >= 1);
    cairn_err err;
    CHECK_INT(eng_writer_catch_up(w, &err), 0);
    CHECK_INT(f.applied, batches);
    stop_writer(w);
    free(db);
}

TEST(writer_with_the_log_fails_every_later_batch_after_a_failed_apply) {
    fake_store f;
    fake_init(&f);
    f.fail_apply = true;
    char *db;
    eng_writer *w = start_logged(&f, &db);
    eng_batch b = log_batch(1, 1, 10);
    eng_writer_submit(w, &b);
    free(b.events);
    wait_for(&f, &f.posted, 1);
    cairn_err err;
    CHECK_INT(eng_writer_catch_up(w, &err), CAIRN_EIO);   /* the apply failed */
    wait_for(&f, &f.posted, 2);
    CHECK_INT(f.posted_batch[1], 0);
    CHECK_INT(f.posted_kind[1], MSG_WRITE_FAILED);        /* the orchestrator hears of it */
    b = log_batch(2, 1, 10);
    eng_writer_submit(w, &b);
    free(b.events);
    wait_for(&f, &f.posted, 3);
    CHECK_INT(f.posted_kind[2], MSG_WRITE_FAILED);
    stop_writer(w);
    CHECK(log_end_after_stop(db) > CAIRN_CLOG_HEADER);  /* kept for the next engine */
    free(db);
}

TEST(writer_with_the_log_leaves_a_batch_that_does_not_fit_to_its_thread) {
    fake_store f;
    fake_init(&f);
    char *db;
    eng_writer *w = start_logged(&f, &db);
    bool here[5];
    for (int i = 1; i <= 5; i++) {   /* 1 MiB each: the fourth finds the log full */
        eng_batch b = log_batch(i, 1, 1024 * 1024);
        here[i - 1] = eng_writer_commit_if_idle(w, &b);
        if (!here[i - 1]) {
            CHECK_INT(b.n, 1);       /* left as it was */
            eng_writer_submit(w, &b);
        }
        free(b.events);
        wait_for(&f, &f.posted, i);
        cairn_err err;
        CHECK_INT(eng_writer_catch_up(w, &err), 0);
    }
    CHECK(here[0] && here[1] && here[2] && !here[3]);
    CHECK(here[4]);                  /* the log started over */
    CHECK_INT(f.syncs, 1);
    CHECK_INT(f.applied, 5);
    for (int i = 0; i < 5; i++) CHECK_INT(f.posted_kind[i], MSG_DURABLE);
    stop_writer(w);
    free(db);
}

/* A batch whose apply is due as soon as it is durable: its run ends. */
static eng_batch ending_batch(int number) {
    eng_batch b = log_batch(number, 1, 10);
    b.events[0]->type = CAIRN_EV_RUN_SUCCEEDED;
    return b;
}

static void submit_log_batch(eng_writer *w, eng_batch b) {
    eng_writer_submit(w, &b);
    free(b.events);
}

/* Start a logged writer whose first batch (a run's end, applied at once)
 * is being applied, held; then submit batches 2-4 of `events` events of
 * `size` bytes, each of which must be written, synced and posted
 * meanwhile. */
static eng_writer *batches_past_a_held_apply(fake_store *f, char **db, int events, size_t size) {
    fake_init(f);
    f->hold_apply = true;
    eng_writer *w = start_logged(f, db);
    submit_log_batch(w, ending_batch(1));
    wait_for(f, &f->in_apply, 1);
    for (int i = 2; i <= 4; i++) {
        submit_log_batch(w, log_batch(i, events, size));
        CHECK(wait_for_within(f, &f->posted, i, 10000));
    }
    return w;
}

TEST(writer_with_the_log_writes_syncs_and_posts_on_while_an_apply_runs) {
    fake_store f;
    char *db;
    eng_writer *w = batches_past_a_held_apply(&f, &db, 2, 10);
    pthread_mutex_lock(&f.mu);
    CHECK_INT(f.apply_calls, 1);
    CHECK_INT(f.applied, 0);
    pthread_mutex_unlock(&f.mu);
    release_applies(&f);
    cairn_err err;
    CHECK_INT(eng_writer_catch_up(w, &err), 0);
    CHECK_INT(f.applied, 7);          /* each event once */
    for (int i = 0; i < 4; i++) CHECK_INT(f.posted_kind[i], MSG_DURABLE);
    stop_writer(w);
    CHECK(!f.overlap);
    free(db);
}

TEST(writer_with_the_log_makes_room_only_once_an_apply_under_way_ends) {
    fake_store f;
    char *db;   /* 1 MiB each: the log holds three */
    eng_writer *w = batches_past_a_held_apply(&f, &db, 1, 1024 * 1024);
    submit_log_batch(w, log_batch(5, 1, 1024 * 1024));   /* needs room */
    /* Nothing may apply beside the held apply, nor sync the store: the
     * writer waits for it.  A writer that did not would start within this
     * window; one that waits is seen to post nothing in it. */
    CHECK(!wait_for_within(&f, &f.apply_calls, 2, 300));
    pthread_mutex_lock(&f.mu);
    CHECK_INT(f.posted, 4);
    CHECK_INT(f.syncs, 0);
    pthread_mutex_unlock(&f.mu);
    release_applies(&f);
    CHECK(wait_for_within(&f, &f.posted, 5, 10000));
    cairn_err err;
    CHECK_INT(eng_writer_catch_up(w, &err), 0);
    CHECK_INT(f.applied, 5);          /* each event once */
    CHECK_INT(f.syncs, 1);            /* the store, before the log started over */
    for (int i = 0; i < 5; i++) CHECK_INT(f.posted_kind[i], MSG_DURABLE);
    stop_writer(w);
    CHECK(!f.overlap);
    free(db);
}

/* How many of this process's threads carry name (docs/operations.md lists
 * them, for top -H). */
static int threads_named(const char *name) {
    DIR *d = opendir("/proc/self/task");
    int count = 0;
    for (struct dirent *de; d && (de = readdir(d)) != NULL;) {
        if (de->d_name[0] == '.') continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", de->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL) continue;
        if (fgets(comm, sizeof comm, f)) comm[strcspn(comm, "\n")] = 0;
        fclose(f);
        count += strcmp(comm, name) == 0;
    }
    if (d) closedir(d);
    return count;
}

TEST(writer_threads_carry_their_names_and_the_applier_only_with_the_log) {
    fake_store f;
    fake_init(&f);
    eng_writer *w = start_writer(&f.base, NULL, &f);
    CHECK_INT(threads_named("cairn-writer"), 1);
    CHECK_INT(threads_named("cairn-syncer"), 1);
    CHECK_INT(threads_named("cairn-applier"), 0);
    stop_writer(w);
    char *db;
    w = start_logged(&f, &db);
    CHECK_INT(threads_named("cairn-writer"), 1);
    CHECK_INT(threads_named("cairn-applier"), 1);
    stop_writer(w);
    CHECK_INT(threads_named("cairn-writer"), 0);   /* joined */
    free(db);
}
