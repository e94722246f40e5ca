/*
 * test_place.c - where a server starts a new run (server/place.h): the
 * choice of the least loaded node, ties in turn; the loads as the journal
 * gives them (live serving engines only, unfinished runs only); a burst
 * spread by what is pending; and a run placed on an engine, which the
 * engine hears of and takes at a new epoch long before its next beat, and
 * which the engine that created it does not hold.  One PostgreSQL server
 * of the test's own (fixtures.h); every wait polls with a deadline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/mem.h"
#include "engine/journal.h"
#include "engine/store_pg.h"
#include "fixtures.h"
#include "server/place.h"
#include "test.h"

#define KEY_HEX "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define NOW "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
#define BURST 30
#define LONG_LEASE_MS 30000   /* a beat every 10 s: a take sooner is the NOTIFY's */
#define WOKEN_WITHIN_MS 3000

/* ---- the choice alone ------------------------------------------------------------ */

TEST(place_pick) {
    int64_t loads[] = {3, 1, 2, 1};
    CHECK_INT(srv_place_pick(loads, 4, -1, 0), 1);
    CHECK_INT(srv_place_pick(loads, 4, -1, 1), 3);   /* tied: the next in turn */
    CHECK_INT(srv_place_pick(loads, 4, -1, 2), 1);
    CHECK_INT(srv_place_pick(loads, 4, 0, 1), 3);    /* here is not among the least */
    CHECK_INT(srv_place_pick(loads, 4, 3, 0), 3);    /* here is: it stays here */
    CHECK_INT(srv_place_pick(loads, 4, 3, 1), 3);
    int64_t one[] = {7};
    CHECK_INT(srv_place_pick(one, 1, -1, 5), 0);
    CHECK_INT(srv_place_pick(NULL, 0, -1, 0), -1);
    srv_place_mode m;
    cairn_err err;
    CHECK_INT(srv_place_mode_parse("local", &m, &err), 0);
    CHECK_INT(m, SRV_PLACE_LOCAL);
    CHECK_INT(srv_place_mode_parse(NULL, &m, &err), 0);
    CHECK_INT(m, SRV_PLACE_SPREAD);
    CHECK_INT(srv_place_mode_parse("nearest", &m, &err), CAIRN_EINVAL);
    CHECK_CONTAINS(err.msg, "spread or local");
}

/* ---- on PostgreSQL --------------------------------------------------------------- */

/* Nodes a, b, c serve and live; d serves and its lease lapsed; e lives and
 * does not serve (a `cairn run`).  a holds 2 unfinished runs (one placed,
 * not taken) and 3 ended; b 1; c none; d and e 1 each. */
static void nodes_and_runs(void) {
    cairn_store *s = fx_pg_open(0);
    fx_put_def(s);
    cairn_store_close(s);
    fx_psql(0, "INSERT INTO engines VALUES ('a:1:1', 0, " NOW " + 60000),"
               " ('b:1:1', 0, " NOW " + 60000), ('c:1:1', 0, " NOW " + 60000),"
               " ('d:1:1', 0, " NOW " - 1000), ('e:1:1', 0, " NOW " + 60000)");
    fx_psql(0, "INSERT INTO claims SELECT 'serving', o, '', 0, 0 FROM"
               " unnest(ARRAY['a:1:1', 'b:1:1', 'c:1:1', 'd:1:1']) AS o");
    fx_psql(0, "INSERT INTO runs(id, workflow, def_hash, status, created_at, updated_at, owner,"
               " epoch) VALUES ('r1', 'wf', 'h1', 'running', 1, 1, 'a:1:1', 0),"
               " ('r2', 'wf', 'h1', 'running', 1, 1, 'a:1:1', -1),"
               " ('r3', 'wf', 'h1', 'succeeded', 1, 1, 'a:1:1', 0),"
               " ('r4', 'wf', 'h1', 'failed', 1, 1, 'a:1:1', 0),"
               " ('r5', 'wf', 'h1', 'cancelled', 1, 1, 'a:1:1', 0),"
               " ('r6', 'wf', 'h1', 'waiting', 1, 1, 'b:1:1', 0),"
               " ('r7', 'wf', 'h1', 'running', 1, 1, 'd:1:1', 0),"
               " ('r8', 'wf', 'h1', 'running', 1, 1, 'e:1:1', 0)");
}

/* The journal's loads: the live serving engines, their unfinished runs. */
static void loads_of_live_serving_nodes(void) {
    char *url = fx_pg_url(0, "postgres");
    cairn_journal_config cfg = {.role = CAIRN_JOURNAL_READER};
    cairn_journal *j = NULL;
    cairn_err err;
    if (cairn_journal_open(url, &cfg, &j, &err)) TEST_FAIL("open %s: %s", url, err.msg);
    char **nodes = NULL;
    int64_t *runs = NULL;
    int n = 0;
    CHECK_INT(cairn_journal_node_loads(j, &nodes, &runs, &n, &err), 0);
    CHECK_INT(n, 3);
    const char *want[] = {"a:1:1", "b:1:1", "c:1:1"};
    int64_t held[] = {2, 1, 0};
    for (int i = 0; i < n && i < 3; i++) {
        CHECK_STR(nodes[i], want[i]);
        CHECK_INT(runs[i], held[i]);
    }
    for (int i = 0; i < n; i++) free(nodes[i]);
    free(nodes);
    free(runs);
    cairn_journal_close(j);
    free(url);
}

/* A burst of starts (here: b) with none durable yet spreads as if each
 * had landed: 2+1+0 held and 30 more come to 11 each; the dead and the
 * non-serving nodes get none.  Once they are done the journal's loads
 * decide again; a tie with b goes to b. */
static void burst_spreads(void) {
    char *url = fx_pg_url(0, "postgres");
    srv_place *p = NULL;
    cairn_err err;
    if (srv_place_new(url, SRV_PLACE_SPREAD, "b:1:1", &p, &err)) TEST_FAIL("place: %s", err.msg);
    char chosen[BURST][CAIRN_PLACE_NODE_MAX];
    int got[3] = {0};
    for (int i = 0; i < BURST; i++) {
        srv_place_choose(p, chosen[i]);
        for (int k = 0; k < 3; k++) got[k] += chosen[i][0] == "abc"[k] && chosen[i][1] == ':';
    }
    CHECK_INT(got[0], 9);
    CHECK_INT(got[1], 10);
    CHECK_INT(got[2], 11);
    for (int i = 0; i < BURST; i++) srv_place_done(p, chosen[i]);
    char next[CAIRN_PLACE_NODE_MAX], tied[CAIRN_PLACE_NODE_MAX];
    srv_place_choose(p, next);
    CHECK_STR(next, "c:1:1");
    srv_place_choose(p, tied);
    CHECK_STR(tied, "b:1:1");   /* b and c hold one each: here */
    srv_place_done(p, next);
    srv_place_done(p, tied);
    srv_place_free(p);
    srv_place_new(url, SRV_PLACE_LOCAL, "b:1:1", &p, &err);
    srv_place_choose(p, next);
    CHECK_STR(next, "");   /* local: here */
    srv_place_free(p);
    free(url);
}

static cairn_journal *engine_on(int db, int64_t lease_ms) {
    setenv("CAIRN_JOURNAL_KEY", KEY_HEX, 1);
    char *url = fx_pg_url(db, "postgres");
    cairn_journal_config cfg = {.role = CAIRN_JOURNAL_ENGINE, .lease_ms = lease_ms};
    cairn_journal *j = NULL;
    cairn_err err;
    if (cairn_journal_open(url, &cfg, &j, &err)) TEST_FAIL("open %s: %s", url, err.msg);
    free(url);
    return j;
}

static void nap(void) {
    struct timespec ts = {0, 10 * 1000000};
    nanosleep(&ts, NULL);
}

/* Runs placed by one engine on another: their rows name the target at
 * epoch -1; the target, with a lease whose beats are 10 s apart, takes
 * them at epoch 0 within a few seconds (woken by the NOTIFY).  The creator
 * holds nothing of them: its write is refused.  Draining (take-over off),
 * the target is no longer marked as taking placed runs.  When it stops
 * and the creator claims one back, the creator writes after the target's
 * events, not after what it wrote itself. */
static void placed_runs_are_taken_at_once(void) {
    cairn_journal *target = engine_on(1, LONG_LEASE_MS), *creator = engine_on(1, LONG_LEASE_MS);
    cairn_store *s = fx_pg_open(1);
    fx_put_def(s);
    cairn_store_close(s);
    cairn_journal_take_over(target, true);
    char *marked = cairn_sprintf("SELECT count(*) FROM claims WHERE space = 'serving' AND key = '%s'",
                                 cairn_journal_owner(target));
    for (int64_t end = cairn_now_ms() + WOKEN_WITHIN_MS; fx_pg_int(1, marked) == 0 && cairn_now_ms() < end;)
        nap();
    CHECK_INT(fx_pg_int(1, marked), 1);
    cairn_err err;
    CHECK_INT(cairn_journal_place(creator, "p00", cairn_journal_owner(target), &err), 0);
    CHECK_INT(cairn_journal_place(creator, "p01", cairn_journal_owner(target), &err), 0);
    cairn_event *made[] = {fx_event("p00", 1, CAIRN_EV_RUN_CREATED, "{}"),
                           fx_event("p01", 1, CAIRN_EV_RUN_CREATED, "{}")};
    int64_t mark, placed_at = cairn_now_ms();
    CHECK_INT(cairn_journal_append_batch(creator, made, 2, &mark, &err), 0);
    int n = 0;
    while (n < 2 && cairn_now_ms() < placed_at + WOKEN_WITHIN_MS) {
        char **ids = NULL;
        int k = cairn_journal_take_placed(target, &ids);
        for (int i = 0; i < k; i++) free(ids[i]);
        free(ids);
        n += k;
        if (n < 2) nap();
    }
    CHECK_INT(n, 2);
    char *row = cairn_sprintf("SELECT count(*) FROM runs WHERE owner = '%s' AND epoch = 0",
                              cairn_journal_owner(target));
    CHECK_INT(fx_pg_int(1, row), 2);
    cairn_event *next[] = {fx_event("p00", 2, CAIRN_EV_STEP_STARTED, "{}")};
    CHECK_INT(cairn_journal_append_batch(target, next, 1, &mark, &err), 0);
    cairn_journal_take_over(target, false);   /* draining: no longer chosen */
    for (int64_t end = cairn_now_ms() + WOKEN_WITHIN_MS; fx_pg_int(1, marked) == 1 && cairn_now_ms() < end;)
        nap();
    CHECK_INT(fx_pg_int(1, marked), 0);
    cairn_journal_close(target);   /* lets its runs go */
    CHECK_INT(cairn_journal_claim_run(creator, "p00", &err), 0);
    cairn_event *back[] = {fx_event("p00", 3, CAIRN_EV_STEP_SUCCEEDED, "{}")};
    CHECK_INT(cairn_journal_append_batch(creator, back, 1, &mark, &err), 0);
    CHECK_INT(fx_pg_int(1, "SELECT count(*) FROM events WHERE run_id = 'p00'"), 3);
    cairn_event *late[] = {fx_event("p01", 2, CAIRN_EV_STEP_STARTED, "{}")};
    CHECK_INT(cairn_journal_append_batch(creator, late, 1, &mark, &err), CAIRN_EFENCED);
    CHECK_INT(fx_pg_int(1, "SELECT count(*) FROM events WHERE run_id = 'p01'"), 1);
    fx_free_events(made, 2);
    fx_free_events(next, 1);
    fx_free_events(back, 1);
    fx_free_events(late, 1);
    free(row);
    free(marked);
    cairn_journal_close(creator);
}

TEST(place_postgres) {
    fx_pg_start(2);
    nodes_and_runs();
    loads_of_live_serving_nodes();
    burst_spreads();
    placed_runs_are_taken_at_once();
}
