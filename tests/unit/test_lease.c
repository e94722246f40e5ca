/*
 * test_lease.c - several engines on one PostgreSQL journal: leases renewed
 * and lapsing, runs of a lapsed engine claimed once each by engines
 * claiming at once, fencing that refuses a stale epoch and commits the
 * rest of the batch, and liveness on both stores.  One PostgreSQL server
 * of the test's own (fixtures.h); every wait polls with a deadline.
 */
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/mem.h"
#include "engine/journal.h"
#include "engine/journal_lease.h"
#include "engine/owner.h"
#include "engine/store_pg.h"
#include "fixtures.h"
#include "test.h"

#define KEY_HEX "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define WAIT_MS 10000   /* the longest any condition below is waited for */

static void nap(void) {
    struct timespec ts = {0, 20 * 1000000};
    nanosleep(&ts, NULL);
}

/* An engine's journal on database i with a lease of lease_ms. */
static cairn_journal *engine_on(int i, int64_t lease_ms) {
    setenv("CAIRN_JOURNAL_KEY", KEY_HEX, 1);
    char *url = fx_pg_url(i, "postgres");
    cairn_journal_config cfg = {.role = CAIRN_JOURNAL_ENGINE, .lease_ms = lease_ms};
    cairn_journal *j = NULL;
    cairn_err err;
    if (cairn_journal_open(url, &cfg, &j, &err)) TEST_FAIL("open %s: %s", url, err.msg);
    free(url);
    return j;
}

static cairn_journal *reader_on(int i) {
    char *url = fx_pg_url(i, "postgres");
    cairn_journal_config cfg = {.role = CAIRN_JOURNAL_READER};
    cairn_journal *j = NULL;
    cairn_err err;
    if (cairn_journal_open(url, &cfg, &j, &err)) TEST_FAIL("open %s: %s", url, err.msg);
    free(url);
    return j;
}

/* A store on database i whose runs are created held by owner. */
static cairn_store *store_as(int i, const char *owner) {
    cairn_store *s = fx_pg_open(i);
    s->ops->set_owner(s, owner);
    return s;
}

/* Runs prefix0..prefixN-1 created by s (their first event), running. */
static void create_runs(cairn_store *s, const char *prefix, int n) {
    cairn_event **evs = cairn_calloc((size_t)n, sizeof *evs);
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "%s%02d", prefix, i);
        evs[i] = fx_event(id, 1, CAIRN_EV_RUN_CREATED, "{}");
    }
    cairn_err err;
    if (s->ops->append(s, evs, n, &err)) TEST_FAIL("append: %s", err.msg);
    fx_free_events(evs, n);
    free(evs);
}

/* ---- the lease ---------------------------------------------------------------- */

/* The heartbeat renews the lease (lease_until moves on by the database's
 * clock) while nothing else happens; a heartbeat that cannot renew (its
 * row locked by another transaction) lets it lapse: the engine says
 * "lease lapsed" and starts nothing, until the renewal lands again; then,
 * before the lease counts as held, the runs another engine claimed
 * meanwhile are lost (and only those). */
static void renews_and_lapses(void) {
    cairn_journal *j = engine_on(0, 600);
    CHECK(cairn_journal_lease_held(j));
    cairn_store *other = fx_pg_open(0);
    fx_put_def(other);
    cairn_event *made[] = {fx_event("l00", 1, CAIRN_EV_RUN_CREATED, "{}"),
                           fx_event("l01", 1, CAIRN_EV_RUN_CREATED, "{}")};
    int64_t mark;
    cairn_err err;
    CHECK_INT(cairn_journal_append_batch(j, made, 2, &mark, &err), 0);
    fx_free_events(made, 2);
    char *sql = cairn_sprintf("SELECT lease_until FROM engines WHERE owner = '%s'",
                              cairn_journal_owner(j));
    int64_t first = fx_pg_int(0, sql), later = first;
    for (int64_t end = cairn_now_ms() + WAIT_MS; later <= first && cairn_now_ms() < end; nap())
        later = fx_pg_int(0, sql);
    CHECK(later > first);   /* renewed, with no call of ours */
    CHECK(cairn_journal_lease_held(j));

    char *conninfo = fx_pg_url(0, "postgres");
    PGconn *blocker = PQconnectdb(conninfo);
    CHECK_INT(PQstatus(blocker), CONNECTION_OK);
    char *lock = cairn_sprintf("BEGIN; SELECT 1 FROM engines WHERE owner = '%s' FOR UPDATE",
                               cairn_journal_owner(j));
    PQclear(PQexec(blocker, lock));
    bool lapsed = false;
    for (int64_t end = cairn_now_ms() + WAIT_MS; !lapsed && cairn_now_ms() < end; nap())
        lapsed = !cairn_journal_lease_held(j);
    CHECK(lapsed);
    CHECK_INT(cairn_journal_lease_state(j, &err), CAIRN_ESTATE);
    CHECK_CONTAINS(err.msg, "lease lapsed");
    fx_psql(0, "UPDATE runs SET owner = 'b:1:1', epoch = epoch + 1 WHERE id = 'l00'");
    PQclear(PQexec(blocker, "COMMIT"));
    bool held = false;
    for (int64_t end = cairn_now_ms() + WAIT_MS; !held && cairn_now_ms() < end; nap())
        held = cairn_journal_lease_held(j);
    CHECK(held);
    CHECK_INT(cairn_journal_lease_state(j, &err), 0);
    char **lost = NULL;
    CHECK_INT(cairn_journal_take_lost(j, &lost), 1);   /* told before the lease held */
    CHECK_STR(lost[0], "l00");
    free(lost[0]);
    free(lost);
    cairn_store_close(other);
    PQfinish(blocker);
    free(lock);
    free(conninfo);
    free(sql);
    cairn_journal_close(j);
}

/* Liveness by lease: an engine whose lease holds lives, one whose lease
 * lapsed (by the database's clock) or that has no row does not, and one
 * that closed is gone. */
static void liveness_by_lease(void) {
    cairn_journal *e = engine_on(1, 5000), *r = reader_on(1);
    CHECK(cairn_journal_owner_alive(r, cairn_journal_owner(e)));
    fx_psql(1, "INSERT INTO engines VALUES ('far:1:1', 0, 0),"
               " ('far:2:2', 0, (extract(epoch FROM clock_timestamp()) * 1000)::bigint + 60000)");
    CHECK(!cairn_journal_owner_alive(r, "far:1:1"));   /* lapsed */
    CHECK(cairn_journal_owner_alive(r, "far:2:2"));
    CHECK(!cairn_journal_owner_alive(r, "far:3:3"));   /* never leased, another host */
    /* a lease of 500 ms, never renewed, lapses */
    cairn_store *s = fx_pg_open(1);
    cairn_err err;
    CHECK_INT(cairn_pg_lease_renew(s, "far:4:4", 500, &err), 0);
    CHECK(cairn_journal_owner_alive(r, "far:4:4"));
    bool alive = true;
    for (int64_t end = cairn_now_ms() + WAIT_MS; alive && cairn_now_ms() < end; nap())
        alive = cairn_journal_owner_alive(r, "far:4:4");
    CHECK(!alive);
    char *row = cairn_sprintf("SELECT count(*) FROM engines WHERE owner = '%s'",
                              cairn_journal_owner(e));
    CHECK_INT(fx_pg_int(1, row), 1);
    cairn_journal_close(e);
    CHECK_INT(fx_pg_int(1, row), 0);   /* closed: its lease ended with it */
    free(row);
    cairn_store_close(s);
    cairn_journal_close(r);
}

/* ---- claims of lapsed runs ------------------------------------------------------ */

#define LAPSED_RUNS 60

typedef struct {
    const char *owner;
    pthread_barrier_t *go;
    char *ids[LAPSED_RUNS + 1];
    int64_t epochs[LAPSED_RUNS + 1];
    int n;
} claimer;

/* Claim in batches of 7 until none is left, on a connection of its own. */
static void *claim_all(void *arg) {
    claimer *c = arg;
    cairn_store *s = fx_pg_open(2);
    cairn_err err;
    if (cairn_pg_lease_renew(s, c->owner, 60000, &err)) TEST_FAIL("renew: %s", err.msg);
    pthread_barrier_wait(c->go);
    for (;;) {
        char **ids = NULL;
        int64_t *epochs = NULL;
        int n = 0;
        if (cairn_pg_claim_lapsed(s, c->owner, 7, false, NULL, 0, &ids, &epochs, &n, &err))
            TEST_FAIL("claim: %s", err.msg);
        for (int i = 0; i < n && c->n < LAPSED_RUNS; i++) {
            c->ids[c->n] = ids[i];
            c->epochs[c->n++] = epochs[i];
        }
        free(ids);
        free(epochs);
        if (n == 0) break;
    }
    cairn_store_close(s);
    return NULL;
}

/* Runs held by an engine whose lease lapsed, claimed by two engines at
 * once (batches of 7): every run once, by one of them, at epoch 1; runs
 * of a live engine and ended runs are left alone; a run whose row another
 * transaction has locked is skipped, not waited for (SKIP LOCKED), and
 * claimed at a later look. */
static void lapsed_runs_are_claimed_once(void) {
    cairn_store *dead = store_as(2, "gone:1:1"), *live = store_as(2, "here:1:1");
    fx_put_def(dead);
    create_runs(dead, "lapsed", LAPSED_RUNS);
    create_runs(live, "live", 3);
    cairn_err err;
    CHECK_INT(cairn_pg_lease_renew(dead, "gone:1:1", 500, &err), 0);
    CHECK_INT(cairn_pg_lease_renew(live, "here:1:1", 60000, &err), 0);
    fx_psql(2, "UPDATE runs SET status = 'succeeded' WHERE id = 'lapsed00'");
    for (int64_t end = cairn_now_ms() + WAIT_MS;
         fx_pg_int(2, "SELECT count(*) FROM engines WHERE owner = 'gone:1:1'"
                     " AND lease_until > (extract(epoch FROM clock_timestamp()) * 1000)::bigint")
         && cairn_now_ms() < end;)
        nap();
    char *conninfo = fx_pg_url(2, "postgres");
    PGconn *blocker = PQconnectdb(conninfo);
    CHECK_INT(PQstatus(blocker), CONNECTION_OK);
    PQclear(PQexec(blocker, "BEGIN; SELECT 1 FROM runs WHERE id = 'lapsed59' FOR UPDATE"));
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    claimer a = {.owner = "a:1:1", .go = &go}, b = {.owner = "b:1:1", .go = &go};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, claim_all, &a);
    pthread_create(&tb, NULL, claim_all, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&go);
    CHECK_INT(a.n + b.n, LAPSED_RUNS - 2);   /* not the ended one, nor the locked one */
    PQclear(PQexec(blocker, "COMMIT"));
    PQfinish(blocker);
    free(conninfo);
    /* a run the engine asks to skip (lost, its old events on their way) is not taken */
    const char *skip[] = {"lapsed59"};
    char **ids = NULL;
    int64_t *epochs = NULL;
    int n = -1;
    CHECK_INT(cairn_pg_claim_lapsed(dead, "a:1:1", 7, false, skip, 1, &ids, &epochs, &n, &err), 0);
    CHECK_INT(n, 0);
    free(ids);
    free(epochs);
    pthread_barrier_init(&go, NULL, 1);
    claim_all(&a);   /* the row is free now */
    CHECK_INT(a.n + b.n, LAPSED_RUNS - 1);   /* not the live engine's either */
    int seen[LAPSED_RUNS] = {0};
    claimer *cs[] = {&a, &b};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < cs[k]->n; i++) {
            int at = atoi(cs[k]->ids[i] + strlen("lapsed"));
            CHECK(strncmp(cs[k]->ids[i], "lapsed", 6) == 0 && at > 0 && at < LAPSED_RUNS);
            seen[at]++;
            CHECK_INT(cs[k]->epochs[i], 1);
            free(cs[k]->ids[i]);
        }
    for (int i = 1; i < LAPSED_RUNS; i++) CHECK_INT(seen[i], 1);
    CHECK_INT(fx_pg_int(2, "SELECT count(*) FROM runs WHERE owner = 'here:1:1'"), 3);
    cairn_store_close(dead);
    cairn_store_close(live);
}

static int by_text(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Claim what lapsed, as owner: the ids claimed, sorted, joined by ' '
 * (the caller's). */
static char *claim_ids(cairn_store *s, const char *owner) {
    char **ids = NULL;
    int64_t *epochs = NULL;
    int n = 0;
    cairn_err err;
    if (cairn_pg_claim_lapsed(s, owner, 7, false, NULL, 0, &ids, &epochs, &n, &err))
        TEST_FAIL("claim: %s", err.msg);
    qsort(ids, (size_t)n, sizeof *ids, by_text);
    cairn_buf b = CAIRN_BUF_INIT;
    for (int i = 0; i < n; i++) {
        if (i) cairn_buf_putc(&b, ' ');
        cairn_buf_puts(&b, ids[i]);
        free(ids[i]);
    }
    free(ids);
    free(epochs);
    return cairn_buf_detach(&b);
}

/* Runs of a lapsed engine in families (run_created's parent): a family
 * with a run whose row another transaction has locked is not claimed at
 * all, not even its other runs, while a run of no family is; once the
 * lock goes, the family is claimed whole (its ended child left alone),
 * and a family whose root has ended is claimed by its unfinished runs. */
static void families_are_claimed_whole(void) {
    cairn_store *dead = store_as(6, "gone:1:1");
    fx_put_def(dead);
    const char *made[][2] = {{"root", "{}"}, {"kid", "{\"parent\":\"root\"}"},
                             {"grandkid", "{\"parent\":\"kid\"}"},
                             {"done", "{\"parent\":\"root\"}"}, {"lone", "{}"},
                             {"old", "{}"}, {"orphan", "{\"parent\":\"old\"}"}};
    int n = (int)(sizeof made / sizeof made[0]);
    cairn_event **evs = cairn_calloc((size_t)n, sizeof *evs);
    for (int i = 0; i < n; i++) evs[i] = fx_event(made[i][0], 1, CAIRN_EV_RUN_CREATED, made[i][1]);
    cairn_err err;
    if (dead->ops->append(dead, evs, n, &err)) TEST_FAIL("append: %s", err.msg);
    fx_free_events(evs, n);
    free(evs);
    fx_psql(6, "UPDATE runs SET status = 'succeeded' WHERE id IN ('done', 'old')");
    CHECK_INT(cairn_pg_lease_renew(dead, "gone:1:1", 1, &err), 0);
    for (int64_t end = cairn_now_ms() + WAIT_MS;
         fx_pg_int(6, "SELECT count(*) FROM engines WHERE owner = 'gone:1:1'"
                     " AND lease_until > (extract(epoch FROM clock_timestamp()) * 1000)::bigint")
         && cairn_now_ms() < end;)
        nap();
    cairn_store *claimer = fx_pg_open(6);
    CHECK_INT(cairn_pg_lease_renew(claimer, "x:1:1", 60000, &err), 0);
    char *conninfo = fx_pg_url(6, "postgres");
    PGconn *blocker = PQconnectdb(conninfo);
    CHECK_INT(PQstatus(blocker), CONNECTION_OK);
    PQclear(PQexec(blocker, "BEGIN; SELECT 1 FROM runs WHERE id = 'grandkid' FOR UPDATE"));
    char *got = claim_ids(claimer, "x:1:1");
    CHECK_STR(got, "lone orphan");
    free(got);
    CHECK_INT(fx_pg_int(6, "SELECT count(*) FROM runs WHERE owner = 'gone:1:1'"), 5);
    PQclear(PQexec(blocker, "COMMIT"));
    got = claim_ids(claimer, "x:1:1");
    CHECK_STR(got, "grandkid kid root");
    free(got);
    CHECK_INT(fx_pg_int(6, "SELECT count(*) FROM runs WHERE owner = 'x:1:1' AND epoch = 1"), 5);
    CHECK_INT(fx_pg_int(6, "SELECT count(*) FROM runs WHERE owner = 'gone:1:1'"), 2);   /* ended */
    PQfinish(blocker);
    free(conninfo);
    cairn_store_close(claimer);
    cairn_store_close(dead);
}

/* A run the engine could not resume (journal.h, cairn_journal_let_go):
 * released for good (never claimed again by this lease), released with
 * `again` (claimed again at the next look), and not released at all (its
 * owner still this engine: claimed back from itself, at a new epoch,
 * rather than left held by an engine that does not run it). */
static void let_go_retries_only_what_may_pass(void) {
    cairn_store *s = store_as(7, "me:1:1");
    fx_put_def(s);
    create_runs(s, "g", 3);
    int64_t epoch = fx_pg_int(7, "SELECT max(epoch) FROM runs");
    char *url = fx_pg_url(7, "postgres");
    cairn_lease *l = NULL;
    cairn_err err;
    CHECK_INT(cairn_lease_start(url, "me:1:1", 600, &l, &err), 0);
    const char *ids[] = {"g00", "g01", "g02"};
    for (int i = 0; i < 3; i++) cairn_lease_hold(l, ids[i], epoch);
    CHECK_INT(cairn_pg_release_run(s, "g00", "me:1:1", epoch, &err), 0);
    cairn_lease_let_go(l, "g00", true, false);
    CHECK_INT(cairn_pg_release_run(s, "g01", "me:1:1", epoch, &err), 0);
    cairn_lease_let_go(l, "g01", true, true);
    cairn_lease_let_go(l, "g02", false, false);   /* its owner could not be cleared */
    cairn_lease_take_over(l, true);
    for (int64_t end = cairn_now_ms() + WAIT_MS;
         fx_pg_int(7, "SELECT count(*) FROM runs WHERE owner = 'me:1:1' AND epoch > (SELECT"
                      " min(epoch) FROM runs)") < 2 && cairn_now_ms() < end;)
        nap();
    CHECK_INT(fx_pg_int(7, "SELECT count(*) FROM runs WHERE id IN ('g01', 'g02')"
                           " AND owner = 'me:1:1' AND epoch > (SELECT epoch FROM runs"
                           " WHERE id = 'g00')"), 2);
    CHECK_INT(fx_pg_int(7, "SELECT count(*) FROM runs WHERE id = 'g00' AND owner IS NULL"), 1);
    cairn_lease_stop(l);
    free(url);
    cairn_store_close(s);
}

/* ---- fencing -------------------------------------------------------------------- */

/* A batch writing to two runs, one of them claimed since by another engine
 * (a new epoch): that run's events are refused, the other's committed, in
 * the one call. */
static void fencing_refuses_a_stale_epoch(void) {
    cairn_store *a = store_as(3, "a:1:1"), *b = fx_pg_open(3);
    fx_put_def(a);
    create_runs(a, "f", 2);
    create_runs(a, "g", 1);
    cairn_err err;
    int64_t epoch = -1;
    /* f00 goes to b and back to a (neither has a lease): a's hold of it at
     * epoch 0 is stale though a owns it again; g00 is b's now */
    CHECK_INT(cairn_pg_claim_run(b, "f00", "b:1:1", &epoch, &err), 0);
    CHECK_INT(epoch, 1);
    CHECK_INT(cairn_pg_claim_run(b, "f00", "a:1:1", &epoch, &err), 0);
    CHECK_INT(epoch, 2);
    CHECK_INT(cairn_pg_claim_run(b, "g00", "b:1:1", &epoch, &err), 0);
    cairn_event *evs[] = {fx_event("f00", 2, CAIRN_EV_STEP_STARTED, "{}"),
                          fx_event("f01", 2, CAIRN_EV_STEP_STARTED, "{}"),
                          fx_event("g00", 2, CAIRN_EV_STEP_STARTED, "{}"),
                          fx_event("f01", 3, CAIRN_EV_STEP_SUCCEEDED, "{}")};
    /* each batch with one run refused, so that the fence alone refuses it */
    cairn_pg_hold stale[] = {{.run_id = "f00", .epoch = 0}, {.run_id = "f01", .epoch = 0}};
    CHECK_INT(cairn_pg_append_held(a, evs, 2, stale, 2, "a:1:1", false, &err), 0);
    CHECK(stale[0].refused);    /* a stale epoch */
    CHECK(!stale[1].refused);
    cairn_pg_hold theirs[] = {{.run_id = "g00", .epoch = 0}, {.run_id = "f01", .epoch = 0}};
    cairn_event *more[] = {evs[2], evs[3]};
    CHECK_INT(cairn_pg_append_held(a, more, 2, theirs, 2, "a:1:1", false, &err), 0);
    CHECK(theirs[0].refused);   /* another owner */
    CHECK(!theirs[1].refused);
    CHECK_INT(fx_pg_int(3, "SELECT count(*) FROM events WHERE run_id = 'f00'"), 1);
    CHECK_INT(fx_pg_int(3, "SELECT count(*) FROM events WHERE run_id = 'f01'"), 3);
    CHECK_INT(fx_pg_int(3, "SELECT count(*) FROM events WHERE run_id = 'g00'"), 1);
    /* the hold at the new epoch writes on */
    cairn_pg_hold now[] = {{.run_id = "f00", .epoch = 2}};
    CHECK_INT(cairn_pg_append_held(a, evs, 1, now, 1, "a:1:1", false, &err), 0);
    CHECK(!now[0].refused);
    CHECK_INT(fx_pg_int(3, "SELECT count(*) FROM events WHERE run_id = 'f00'"), 2);
    fx_free_events(evs, 4);
    cairn_store_close(a);
    cairn_store_close(b);
}

/* The same through an engine's journal: two of its runs taken by another
 * engine, its next batch says CAIRN_EFENCED, names both refused, lists
 * both lost (the engine drops them), and commits its other run's events. */
static void journal_loses_a_fenced_run(void) {
    cairn_journal *j = engine_on(4, 5000);
    cairn_store *other = fx_pg_open(4);
    fx_put_def(other);
    cairn_event *made[] = {fx_event("j00", 1, CAIRN_EV_RUN_CREATED, "{}"),
                           fx_event("j01", 1, CAIRN_EV_RUN_CREATED, "{}"),
                           fx_event("j02", 1, CAIRN_EV_RUN_CREATED, "{}")};
    int64_t mark;
    cairn_err err;
    CHECK_INT(cairn_journal_append_batch(j, made, 3, &mark, &err), 0);
    fx_psql(4, "UPDATE runs SET owner = 'b:1:1', epoch = epoch + 1 WHERE id IN ('j00', 'j02')");
    cairn_event *next[] = {fx_event("j00", 2, CAIRN_EV_STEP_STARTED, "{}"),
                           fx_event("j01", 2, CAIRN_EV_STEP_STARTED, "{}"),
                           fx_event("j02", 2, CAIRN_EV_STEP_STARTED, "{}")};
    CHECK_INT(cairn_journal_append_batch(j, next, 3, &mark, &err), CAIRN_EFENCED);
    CHECK(cairn_journal_refused(j, "j00"));
    CHECK(!cairn_journal_refused(j, "j01"));
    CHECK(cairn_journal_refused(j, "j02"));
    char **lost = NULL;
    CHECK_INT(cairn_journal_take_lost(j, &lost), 2);
    CHECK((strcmp(lost[0], "j00") == 0 && strcmp(lost[1], "j02") == 0) ||
          (strcmp(lost[0], "j02") == 0 && strcmp(lost[1], "j00") == 0));
    for (int i = 0; i < 2; i++) free(lost[i]);
    free(lost);
    CHECK_INT(fx_pg_int(4, "SELECT count(*) FROM events WHERE run_id = 'j00'"), 1);
    CHECK_INT(fx_pg_int(4, "SELECT count(*) FROM events WHERE run_id = 'j01'"), 2);
    /* a run it never held is refused too, without a statement */
    cairn_event *stray[] = {fx_event("j00", 3, CAIRN_EV_STEP_STARTED, "{}")};
    CHECK_INT(cairn_journal_append_batch(j, stray, 1, &mark, &err), CAIRN_EFENCED);
    fx_free_events(made, 3);
    fx_free_events(next, 3);
    fx_free_events(stray, 1);
    cairn_store_close(other);
    cairn_journal_close(j);
}

/* ---- losing the database ------------------------------------------------------ */

typedef struct {
    cairn_journal *j;
    cairn_event **evs;
    int n, rc;
    cairn_err err;
} appender;

static void *append_now(void *arg) {
    appender *a = arg;
    int64_t mark;
    a->rc = cairn_journal_append_batch(a->j, a->evs, a->n, &mark, &a->err);
    return NULL;
}

/* Database 5 out of reach: its sessions ended and no new one let in. */
static void cut_off(PGconn *admin, bool cut) {
    PQclear(PQexec(admin, cut ? "ALTER DATABASE cairn5 ALLOW_CONNECTIONS false"
                              : "ALTER DATABASE cairn5 ALLOW_CONNECTIONS true"));
    if (cut)
        PQclear(PQexec(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                              " WHERE datname = 'cairn5'"));
}

static int state_of(cairn_journal *j) {
    cairn_err err;
    return cairn_journal_lease_state(j, &err);
}

static bool wait_state(cairn_journal *j, int want) {
    for (int64_t end = cairn_now_ms() + WAIT_MS; cairn_now_ms() < end; nap())
        if (state_of(j) == want) return true;
    return false;
}

/* A batch written while the database is out of reach waits (connecting
 * again with back-off) and is written once when it returns, within the
 * lease; the engine says "journal unreachable" meanwhile.  Out of reach
 * past the lease, the batch gives up: its runs and every run held are
 * lost; once the database returns the lease is renewed. */
static void survives_losing_the_database(void) {
    cairn_journal *j = engine_on(5, 4000);
    cairn_store *s = fx_pg_open(5);
    fx_put_def(s);
    cairn_store_close(s);
    char *url = cairn_sprintf("postgresql://postgres@127.0.0.1:%d/postgres", fx_pg_port());
    PGconn *admin = PQconnectdb(url);
    CHECK_INT(PQstatus(admin), CONNECTION_OK);
    cairn_event *made[] = {fx_event("d00", 1, CAIRN_EV_RUN_CREATED, "{}"),
                           fx_event("d01", 1, CAIRN_EV_RUN_CREATED, "{}")};
    appender a = {.j = j, .evs = made, .n = 2};
    append_now(&a);
    CHECK_INT(a.rc, 0);

    cut_off(admin, true);
    cairn_event *next[] = {fx_event("d00", 2, CAIRN_EV_STEP_STARTED, "{}")};
    a = (appender){.j = j, .evs = next, .n = 1};
    pthread_t t;
    pthread_create(&t, NULL, append_now, &a);
    CHECK(wait_state(j, CAIRN_EIO));   /* journal unreachable */
    cut_off(admin, false);
    pthread_join(t, NULL);
    CHECK_INT(a.rc, 0);
    CHECK_INT(fx_pg_int(5, "SELECT count(*) FROM events WHERE run_id = 'd00'"), 2);
    CHECK(wait_state(j, 0));

    cut_off(admin, true);
    cairn_event *late[] = {fx_event("d00", 3, CAIRN_EV_STEP_SUCCEEDED, "{}")};
    a = (appender){.j = j, .evs = late, .n = 1};
    pthread_create(&t, NULL, append_now, &a);
    pthread_join(t, NULL);   /* gives up once the lease lapses */
    CHECK_INT(a.rc, CAIRN_EFENCED);
    CHECK(!cairn_journal_lease_held(j));
    char **lost = NULL;
    int n = cairn_journal_take_lost(j, &lost);
    CHECK_INT(n, 2);   /* d00, and d01 which it held too */
    for (int i = 0; i < n; i++) free(lost[i]);
    free(lost);
    cut_off(admin, false);
    CHECK(wait_state(j, 0));
    CHECK(cairn_journal_lease_held(j));
    CHECK_INT(fx_pg_int(5, "SELECT count(*) FROM events WHERE run_id = 'd00'"), 2);
    fx_free_events(made, 2);
    fx_free_events(next, 1);
    fx_free_events(late, 1);
    PQfinish(admin);
    free(url);
    cairn_journal_close(j);
}

static int64_t half_a_second(void *ud) {
    (void)ud;
    return cairn_now_ms() + 500;
}

/* The server stopped (SIGSTOP: the kernel still completes the handshake of
 * a new connection, and nothing answers it) after the store's session was
 * ended: making the connection again gives up at the store's bound (half a
 * second from each attempt), not after libpq's connect_timeout (10 s); the
 * bound checked is generous (5 s).  With the server back, the store
 * connects again at its next statement. */
static void reconnect_gives_up_at_the_bound(void) {
    cairn_store *s = fx_pg_open(6);
    cairn_pg_bound bound = {half_a_second, NULL};
    cairn_pg_bound_connects(s, &bound);
    fx_psql(6, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'cairn6'"
               " AND pid <> pg_backend_pid()");
    char *pidfile = cairn_sprintf("%s/data/postmaster.pid", fx_pg_dir());
    FILE *f = fopen(pidfile, "r");
    int server = 0;
    CHECK(f && fscanf(f, "%d", &server) == 1 && server > 0);
    if (f) fclose(f);
    cairn_run_row row;
    cairn_err err;
    CHECK_INT(s->ops->get_run(s, "r", &row, &err), CAIRN_EIO);   /* the session is gone */
    CHECK_INT(kill(server, SIGSTOP), 0);
    int64_t start = cairn_now_ms();
    int rc = s->ops->get_run(s, "r", &row, &err);
    int64_t took = cairn_now_ms() - start;
    kill(server, SIGCONT);
    CHECK_INT(rc, CAIRN_EIO);
    CHECK(took < 5000);
    CHECK(strstr(err.msg, "reconnecting: no answer from the server within") != NULL);
    CHECK_INT(s->ops->get_run(s, "r", &row, &err), CAIRN_ENOTFOUND);   /* back */
    cairn_store_close(s);
    free(pidfile);
}

/* One server for every check (starting one is most of the time); each
 * check has a database of its own. */
TEST(lease_postgres) {
    fx_pg_start(8);
    renews_and_lapses();
    liveness_by_lease();
    lapsed_runs_are_claimed_once();
    families_are_claimed_whole();
    let_go_retries_only_what_may_pass();
    fencing_refuses_a_stale_epoch();
    journal_loses_a_fenced_run();
    survives_losing_the_database();
    reconnect_gives_up_at_the_bound();
}

/* A server that takes the connection and never answers (a socket that
 * listens, and nobody accepts from it: the kernel completes the
 * handshake): taking a lease of 1 s gives up within that lease, not after
 * libpq's connect_timeout (10 s), and says so.  The bound checked is
 * generous (5 s): what is asserted is that the attempt ends before the
 * connect timeout would have ended it. */
/* A socket on loopback that listens and never answers: its fd, and in
 * *port where. */
static int silent_server(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in at = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof at;
    CHECK_INT(bind(fd, (struct sockaddr *)&at, sizeof at), 0);
    CHECK_INT(listen(fd, 8), 0);
    CHECK_INT(getsockname(fd, (struct sockaddr *)&at, &len), 0);
    *port = ntohs(at.sin_port);
    return fd;
}

TEST(lease_connect_gives_up_within_the_lease) {
    int port, fd = silent_server(&port);
    char *url = cairn_sprintf("postgres://cairn@127.0.0.1:%d/silent", port);
    cairn_lease *l = NULL;
    cairn_err err = {0};
    int64_t start = cairn_now_ms();
    int rc = cairn_lease_start(url, "silent:1:1", 1000, &l, &err);
    int64_t took = cairn_now_ms() - start;
    CHECK_INT(rc, CAIRN_EIO);
    CHECK(l == NULL);
    CHECK(took < 5000);
    CHECK(strstr(err.msg, "no answer from the server within") != NULL);
    close(fd);
    free(url);
}

/* Without a lease to bound it, a connection gives up at the URL's own
 * connect_timeout (1 s here), not at the default 10 s: libpq leaves the
 * timeout to whoever polls the connection. */
TEST(pg_connect_gives_up_at_the_urls_connect_timeout) {
    int port, fd = silent_server(&port);
    char *url = cairn_sprintf("postgres://cairn@127.0.0.1:%d/silent?connect_timeout=1", port);
    cairn_store *st = NULL;
    cairn_err err = {0};
    int64_t start = cairn_now_ms();
    int rc = cairn_store_open_pg(url, CAIRN_PG_CREATE, CAIRN_SYNC_FULL, &st, &err);
    int64_t took = cairn_now_ms() - start;
    CHECK_INT(rc, CAIRN_EIO);
    CHECK(took >= 900 && took < 5000);
    CHECK(strstr(err.msg, "no answer from the server within") != NULL);
    close(fd);
    free(url);
}

/* On SQLite liveness is the owner's process: this one lives, a pid that
 * is not running does not, and one on another host counts as alive. */
TEST(lease_liveness_sqlite) {
    char *dir = cairn_sprintf("/tmp/cairn-lease-XXXXXX");
    if (mkdtemp(dir) == NULL) TEST_FAIL("mkdtemp");
    char *path = cairn_sprintf("%s/j.db", dir);
    cairn_journal_config cfg = {.role = CAIRN_JOURNAL_ENGINE};
    cairn_journal *j = NULL;
    cairn_err err;
    if (cairn_journal_open(path, &cfg, &j, &err)) TEST_FAIL("open: %s", err.msg);
    char host[128] = "", dead[300];
    gethostname(host, sizeof host - 1);
    snprintf(dead, sizeof dead, "%s:999999999:1", host);
    CHECK(cairn_journal_owner_alive(j, cairn_journal_owner(j)));
    CHECK(!cairn_journal_owner_alive(j, dead));
    CHECK(cairn_journal_owner_alive(j, "another-host:1:1"));
    CHECK(cairn_journal_lease_held(j));   /* no lease: always held */
    CHECK_INT(cairn_journal_lease_state(j, &err), 0);
    char **ids = NULL;
    CHECK_INT(cairn_journal_take_lost(j, &ids), 0);
    cairn_journal_close(j);
    char *rm = cairn_sprintf("rm -rf %s", dir);
    CHECK_INT(system(rm), 0);
    free(rm);
    free(path);
    free(dir);
}
