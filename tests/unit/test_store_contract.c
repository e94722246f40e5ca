/*
 * test_store_contract.c - what every store (store.h) does, run against each:
 * the SQLite file, and PostgreSQL (a server of the test's own, started with
 * tests/servers/pg.sh in the test's folder and stopped when it ends).  Then
 * what is PostgreSQL's alone: refusing a database that is not a journal,
 * a reader that creates nothing, no password in a message, commands heard.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/idlist.h"
#include "common/mem.h"
#include "engine/journal.h"
#include "engine/store_pg.h"
#include "fixtures.h"
#include "test.h"

static bool never_alive(const char *owner) { (void)owner; return false; }
static bool always_alive(const char *owner) { (void)owner; return true; }

/* ---- the contract ------------------------------------------------------- */

static void append_ok(cairn_store *s, cairn_event **evs, int n) {
    cairn_err err;
    if (s->ops->append(s, evs, n, &err)) TEST_FAIL("%s: append: %s", s->ops->name, err.msg);
}

/* Events come back as they went in, byte for byte (the chain hashed those
 * bytes), with the runs row they project. */
static void appends_and_projects(cairn_store *s) {
    cairn_err err;
    fx_put_def(s);
    s->ops->set_owner(s, "host:1:1");
    cairn_event *evs[4] = {
        fx_event("r1", 1, CAIRN_EV_RUN_CREATED, "{\"parent\":\"p0\"}"),
        fx_event("r1", 2, CAIRN_EV_STEP_STARTED, "{\"s\":\"caf\xc3\xa9 \\u0000 \\\"q\\\"\"}"),
        fx_event("r1", 3, CAIRN_EV_RUN_PAUSED, "{}"),
        fx_event("r2", 1, CAIRN_EV_RUN_CREATED, "{}"),
    };
    for (int i = 0; i < 4; i++) memset(evs[i]->hash, 0xa0 + i, CAIRN_HASH_LEN);
    evs[1]->attempt = 2;
    append_ok(s, evs, 4);
    cairn_event *got = NULL;
    int n = 0;
    CHECK_INT(s->ops->load_events(s, "r1", &got, &n, &err), 0);
    CHECK_INT(n, 3);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(got[i].seq, i + 1);
        CHECK_INT(got[i].type, evs[i]->type);
        CHECK_INT(got[i].time_ms, evs[i]->time_ms);
        CHECK_INT(got[i].data_len, evs[i]->data_len);
        CHECK(memcmp(got[i].data, evs[i]->data, evs[i]->data_len) == 0);
        CHECK(memcmp(got[i].hash, evs[i]->hash, CAIRN_HASH_LEN) == 0);
    }
    CHECK_INT(got[1].attempt, 2);
    CHECK_STR(got[1].step, "a");
    CHECK(got[0].step == NULL);
    cairn_events_free(got, n);
    cairn_run_row row;
    CHECK_INT(s->ops->get_run(s, "r1", &row, &err), 0);
    CHECK_STR(row.status, "paused");
    CHECK_STR(row.workflow, "wf");
    CHECK_STR(row.def_hash, "h1");
    CHECK_STR(row.parent_id, "p0");
    CHECK_STR(row.owner, "host:1:1");
    CHECK_INT(row.created_at, 1001);
    CHECK_INT(row.updated_at, 1003);
    cairn_run_row_clear(&row);
    CHECK_INT(s->ops->get_run(s, "nope", &row, &err), CAIRN_ENOTFOUND);
    fx_free_events(evs, 4);
}

/* A batch with one event out of place writes nothing; append_missing skips
 * what the store holds. */
static void refuses_out_of_place(cairn_store *s) {
    cairn_err err;
    cairn_event *bad[2] = {fx_event("r2", 2, CAIRN_EV_STEP_STARTED, "{}"),
                           fx_event("r2", 4, CAIRN_EV_STEP_STARTED, "{}")};
    CHECK_INT(s->ops->append(s, bad, 2, &err), CAIRN_ESTATE);
    cairn_event *dup[1] = {fx_event("r1", 3, CAIRN_EV_STEP_STARTED, "{}")};
    CHECK_INT(s->ops->append(s, dup, 1, &err), CAIRN_ESTATE);
    cairn_event *got = NULL;
    int n = 0;
    CHECK_INT(s->ops->load_events(s, "r2", &got, &n, &err), 0);
    CHECK_INT(n, 1);
    cairn_events_free(got, n);
    cairn_event *again[3] = {fx_event("r2", 1, CAIRN_EV_RUN_CREATED, "{}"),
                             fx_event("r2", 2, CAIRN_EV_STEP_STARTED, "{}"),
                             fx_event("r2", 3, CAIRN_EV_RUN_SUCCEEDED, "{}")};
    CHECK_INT(s->ops->append_missing(s, again, 3, &err), 0);
    CHECK_INT(s->ops->load_events(s, "r2", &got, &n, &err), 0);
    CHECK_INT(n, 3);
    cairn_events_free(got, n);
    fx_free_events(bad, 2);
    fx_free_events(dup, 1);
    fx_free_events(again, 3);
}

static void lists_and_pages(cairn_store *s) {
    cairn_err err;
    cairn_run_row *rows = NULL;
    int n = 0;
    CHECK_INT(s->ops->list_runs(s, NULL, &rows, &n, &err), 0);
    CHECK_INT(n, 2);
    CHECK_STR(rows[0].id, "r2");   /* created at the same ms: by id, descending */
    cairn_run_rows_free(rows, n);
    CHECK_INT(s->ops->list_runs(s, "succeeded,failed", &rows, &n, &err), 0);
    CHECK_INT(n, 1);
    CHECK_STR(rows[0].status, "succeeded");
    cairn_run_rows_free(rows, n);
    cairn_run_page q = {.limit = 1};
    CHECK_INT(s->ops->page_runs(s, &q, &rows, &n, &err), 0);
    CHECK_INT(n, 1);
    CHECK_STR(rows[0].id, "r2");
    q.after_id = "r2";
    q.after_at = rows[0].created_at;
    cairn_run_rows_free(rows, n);
    CHECK_INT(s->ops->page_runs(s, &q, &rows, &n, &err), 0);
    CHECK_INT(n, 1);
    CHECK_STR(rows[0].id, "r1");
    cairn_run_rows_free(rows, n);
    q = (cairn_run_page){.status = "paused", .workflow = "other", .limit = 10};
    CHECK_INT(s->ops->page_runs(s, &q, &rows, &n, &err), 0);
    CHECK_INT(n, 0);
    cairn_run_rows_free(rows, n);
    char **ids = NULL;
    bool *in_runs = NULL;
    CHECK_INT(s->ops->run_ids(s, &ids, &in_runs, &n, &err), 0);
    CHECK_INT(n, 2);
    CHECK_STR(ids[0], "r1");
    CHECK(in_runs[0] && in_runs[1]);
    cairn_journal_ids_free(ids, in_runs, n);
}

static void keeps_definitions(cairn_store *s) {
    cairn_err err;
    const char src[] = "any\0bytes\xff";
    char *got = NULL, *path = NULL, hash[65];
    size_t len = 0;
    CHECK_INT(s->ops->put_definition(s, "h2", "wf", "b.yaml", src, sizeof src, &err), 0);
    CHECK_INT(s->ops->get_definition(s, "h2", &got, &len, &path, &err), 0);
    CHECK_INT(len, sizeof src);
    CHECK(memcmp(got, src, len) == 0);
    CHECK_STR(path, "b.yaml");
    free(got);
    free(path);
    CHECK_INT(s->ops->get_definition(s, "h9", &got, &len, &path, &err), CAIRN_ENOTFOUND);
    CHECK_INT(s->ops->find_definition(s, "wf", hash, &err), 0);
    CHECK_STR(hash, "h2");   /* the newest load of the name */
    CHECK_INT(s->ops->find_definition(s, "none", hash, &err), CAIRN_ENOTFOUND);
    CHECK_INT(s->ops->get_steps(s, "h2", &got, &err), CAIRN_ENOTFOUND);
    CHECK_INT(s->ops->put_steps(s, "h2", "a\nb\n", &err), 0);
    CHECK_INT(s->ops->get_steps(s, "h2", &got, &err), 0);
    CHECK_STR(got, "a\nb\n");
    free(got);
}

static void owns_runs_and_takes_commands(cairn_store *s) {
    cairn_err err;
    CHECK_INT(s->ops->claim_run(s, "r1", "host:2:2", always_alive, &err), CAIRN_EBUSY);
    CHECK_INT(s->ops->batch_begin(s, &err), 0);
    CHECK_INT(s->ops->claim_run(s, "r1", "host:2:2", never_alive, &err), 0);
    CHECK_INT(s->ops->claim_run(s, "r2", "host:2:2", never_alive, &err), 0);
    CHECK_INT(s->ops->batch_end(s, &err), 0);
    CHECK_INT(s->ops->add_command(s, "r1", "cancel", NULL, &err), 0);
    CHECK_INT(s->ops->add_command(s, "r1", "decide", "{\"x\":1}", &err), 0);
    CHECK_INT(s->ops->add_command(s, "r9", "pause", NULL, &err), 0);
    cairn_command *cmds = NULL;
    int n = 0;
    CHECK_INT(s->ops->list_commands(s, "host:2:2", &cmds, &n, &err), 0);
    CHECK_INT(n, 2);
    CHECK_STR(cmds[0].type, "cancel");
    CHECK_STR(cmds[0].data, "{}");
    CHECK_STR(cmds[1].data, "{\"x\":1}");
    int64_t answered = cmds[0].id, dropped = cmds[1].id;
    cairn_commands_free(cmds, n);
    /* the event answering a command takes its row, in its transaction */
    cairn_event *ev[1] = {fx_event("r1", 4, CAIRN_EV_RUN_UNPAUSED, "{}")};
    ev[0]->command_id = answered;
    append_ok(s, ev, 1);
    fx_free_events(ev, 1);
    CHECK_INT(s->ops->delete_command(s, dropped, &err), 0);
    CHECK_INT(s->ops->run_commands(s, "r1", &cmds, &n, &err), 0);
    CHECK_INT(n, 0);
    cairn_commands_free(cmds, n);
    CHECK_INT(s->ops->run_commands(s, "r9", &cmds, &n, &err), 0);
    CHECK_INT(n, 1);
    cairn_commands_free(cmds, n);
    cairn_run_row row;
    CHECK_INT(s->ops->get_run(s, "r1", &row, &err), 0);
    CHECK_STR(row.status, "running");
    cairn_run_row_clear(&row);
    CHECK_INT(s->ops->release_runs(s, "host:2:2", &err), 0);
    CHECK_INT(s->ops->get_run(s, "r1", &row, &err), 0);
    CHECK(row.owner == NULL);
    cairn_run_row_clear(&row);
}

/* Two connections: what one takes, the other is told of. */
static void claims_keys_and_meta(cairn_store *s, cairn_store *t) {
    cairn_err err;
    char run[CAIRN_RUN_ID_MAX], req[65], *held = NULL, *v = NULL;
    CHECK_INT(s->ops->get_request(s, "k", run, req, &err), 0);
    CHECK_STR(run, "");
    CHECK_INT(s->ops->put_request(s, "k", "abc", "r1", &err), 0);
    CHECK(t->ops->put_request(t, "k", "def", "r2", &err) != 0);
    CHECK_INT(t->ops->get_request(t, "k", run, req, &err), 0);
    CHECK_STR(run, "r1");
    CHECK_STR(req, "abc");
    CHECK_INT(s->ops->claim(s, "sp", "k", "v1", NULL, &held, &err), 0);
    CHECK_INT(t->ops->claim(t, "sp", "k", "v2", NULL, &held, &err), CAIRN_EEXISTS);
    CHECK_STR(held, "v1");
    free(held);
    CHECK_INT(t->ops->claim(t, "sp", "k", "v3", "v1", &held, &err), 0);
    CHECK_INT(s->ops->claim(s, "sp", "k", "v4", "v1", &held, &err), CAIRN_EEXISTS);
    CHECK_STR(held, "v3");
    free(held);
    CHECK_INT(s->ops->get_claim(s, "sp", "k", &v, &err), 0);
    CHECK_STR(v, "v3");
    free(v);
    CHECK_INT(s->ops->get_claim(s, "sp", "other", &v, &err), CAIRN_ENOTFOUND);
    CHECK_INT(s->ops->get_meta(s, "journal_id", &v, &err), 0);
    CHECK_INT(strlen(v), CAIRN_JOURNAL_ID_HEX);
    CHECK_INT(s->ops->put_meta(s, "journal_id", "replaced", &err), 0);
    char *again = NULL;
    CHECK_INT(t->ops->get_meta(t, "journal_id", &again, &err), 0);
    CHECK_STR(again, v);   /* put_meta keeps a value already there */
    free(again);
    free(v);
}

typedef struct {
    cairn_store *to;
    cairn_dump_kind kind;
    int rows;
} copy_t;

static int into(const cairn_dump_row *row, void *ud, cairn_err *err) {
    copy_t *c = ud;
    c->rows++;
    return c->to->ops->load(c->to, c->kind, row, err);
}

/* The rows a copy moves go into another store as they were. */
static void dumps_what_it_holds(cairn_store *s, cairn_store *empty) {
    cairn_err err;
    int want[CAIRN_DUMP_KINDS] = {[CAIRN_DUMP_META] = 1, [CAIRN_DUMP_DEFINITIONS] = 2,
                                  [CAIRN_DUMP_COMMANDS] = 1, [CAIRN_DUMP_REQUESTS] = 1,
                                  [CAIRN_DUMP_CLAIMS] = 1};
    for (int k = 0; k < CAIRN_DUMP_KINDS; k++) {
        copy_t c = {.to = empty, .kind = (cairn_dump_kind)k};
        if (s->ops->dump(s, (cairn_dump_kind)k, into, &c, &err)) TEST_FAIL("dump %d: %s", k, err.msg);
        CHECK_INT(c.rows, want[k]);
    }
    char *a = NULL, *b = NULL, *src = NULL, *path = NULL;
    size_t len = 0;
    CHECK_INT(s->ops->get_meta(s, "journal_id", &a, &err), 0);
    CHECK_INT(empty->ops->get_meta(empty, "journal_id", &b, &err), 0);
    CHECK_STR(b, a);
    free(a);
    free(b);
    CHECK_INT(empty->ops->get_definition(empty, "h2", &src, &len, &path, &err), 0);
    CHECK_INT(len, sizeof "any\0bytes\xff");
    CHECK(memcmp(src, "any\0bytes\xff", len) == 0);
    free(src);
    free(path);
    CHECK_INT(empty->ops->get_steps(empty, "h2", &a, &err), 0);
    CHECK_STR(a, "a\nb\n");
    free(a);
    CHECK_INT(empty->ops->get_claim(empty, "sp", "k", &a, &err), 0);
    CHECK_STR(a, "v3");
    free(a);
}

/* open(i): a new connection to journal i (0: the one tested, 1: another,
 * empty) of the store under test. */
typedef cairn_store *(*opener)(int i);

static int events_of(cairn_store *s, const char *run) {
    cairn_event *got = NULL;
    int n = 0;
    cairn_err err;
    if (s->ops->load_events(s, run, &got, &n, &err)) TEST_FAIL("load %s: %s", run, err.msg);
    cairn_events_free(got, n);
    return n;
}

/* Appends inside batch_begin are one transaction (a copy, whole or not at
 * all): a failed one is undone alone and the batch goes on; another
 * connection sees nothing before batch_end; a batch never ended (its
 * store closed) leaves nothing. */
static void batch_is_one_transaction(cairn_store *t, opener open) {
    cairn_err err;
    cairn_store *u = open(0);
    cairn_event *ok[2] = {fx_event("r5", 1, CAIRN_EV_RUN_CREATED, "{}"),
                          fx_event("r5", 2, CAIRN_EV_STEP_STARTED, "{}")};
    cairn_event *gap[1] = {fx_event("r5", 4, CAIRN_EV_STEP_STARTED, "{}")};
    cairn_event *next[1] = {fx_event("r5", 3, CAIRN_EV_STEP_SUCCEEDED, "{}")};
    cairn_event *lost[1] = {fx_event("r6", 1, CAIRN_EV_RUN_CREATED, "{}")};
    CHECK_INT(u->ops->batch_begin(u, &err), 0);
    append_ok(u, ok, 2);
    CHECK_INT(u->ops->append(u, gap, 1, &err), CAIRN_ESTATE);
    append_ok(u, next, 1);
    CHECK_INT(events_of(t, "r5"), 0);
    CHECK_INT(u->ops->batch_end(u, &err), 0);
    CHECK_INT(events_of(t, "r5"), 3);
    CHECK_INT(u->ops->batch_begin(u, &err), 0);
    append_ok(u, lost, 1);
    cairn_store_close(u);
    CHECK_INT(events_of(t, "r6"), 0);
    CHECK_INT(t->ops->get_run(t, "r6", &(cairn_run_row){0}, &err), CAIRN_ENOTFOUND);
    fx_free_events(ok, 2);
    fx_free_events(gap, 1);
    fx_free_events(next, 1);
    fx_free_events(lost, 1);
}

static void contract(opener open) {
    cairn_store *s = open(0), *t = open(0), *empty = open(1);
    appends_and_projects(s);
    refuses_out_of_place(s);
    lists_and_pages(t);
    keeps_definitions(s);
    owns_runs_and_takes_commands(s);
    claims_keys_and_meta(s, t);
    dumps_what_it_holds(s, empty);
    batch_is_one_transaction(t, open);
    cairn_store_close(s);
    cairn_store_close(t);
    cairn_store_close(empty);
}

/* ---- SQLite ---------------------------------------------------------------- */

/* What verify's pass (store.h, scan) saw. */
typedef struct {
    cairn_store *other;          /* commits a run while the pass is between */
    int rows, events, r1_same;
    int64_t last_id;
    bool in_order, saw_late;
    int indexed_calls, index_rows, r1_indexed;   /* the event index, where the store keeps one */
    int64_t upto;
    bool between_after_index;
} scan_seen;

static void seen_row(void *ud, cairn_run_row *row) {
    ((scan_seen *)ud)->rows++;
    cairn_run_row_clear(row);
}

static void seen_indexed(void *ud, int64_t upto) {
    scan_seen *v = ud;
    v->indexed_calls++;
    v->upto = upto;
}

/* r1's index rows list its events: as many ids as the rows say, each at or
 * below upto. */
static void seen_index_row(void *ud, const char *run_id, int64_t first_seq,
                           const unsigned char *ids, size_t len) {
    scan_seen *v = ud;
    v->index_rows++;
    if (strcmp(run_id, "r1") != 0 || first_seq != v->r1_indexed + 1) return;
    size_t pos = 0;
    for (int64_t id = 0; cairn_idlist_next(ids, len, &pos, id, &id) == 0;)
        if (id <= v->upto) v->r1_indexed++;
}

static int seen_between(void *ud, cairn_err *err) {
    scan_seen *v = ud;
    v->between_after_index = v->indexed_calls > 0;
    cairn_event *late[1] = {fx_event("r9", 1, CAIRN_EV_RUN_CREATED, "{}")};
    int rc = v->other->ops->append(v->other, late, 1, err);
    fx_free_events(late, 1);
    return rc;
}

/* Each event of r1 as load_events gives it, byte for byte. */
static void seen_event(void *ud, int64_t id, const cairn_event *ev) {
    scan_seen *v = ud;
    cairn_event *got = NULL;
    int n = 0;
    cairn_err err;
    v->events++;
    v->in_order = v->in_order && id > v->last_id;
    v->last_id = id;
    v->saw_late = v->saw_late || strcmp(ev->run_id, "r9") == 0;
    if (strcmp(ev->run_id, "r1") != 0 || v->other->ops->load_events(v->other, "r1", &got, &n, &err))
        return;
    const cairn_event *w = ev->seq >= 1 && ev->seq <= n ? &got[ev->seq - 1] : NULL;
    v->r1_same += w && w->time_ms == ev->time_ms && w->type == ev->type && w->attempt == ev->attempt &&
                  (w->step == NULL) == (ev->step == NULL) && (!w->step || !strcmp(w->step, ev->step)) &&
                  w->data_len == ev->data_len && !memcmp(w->data, ev->data, ev->data_len) &&
                  !memcmp(w->hash, ev->hash, CAIRN_HASH_LEN);
    cairn_events_free(got, n);
}

/* The runs rows and the events a store holds, counted through its
 * operations. */
static void count_held(cairn_store *s, int *rows, int *events) {
    char **ids = NULL;
    bool *in_runs = NULL;
    int n = 0;
    cairn_err err;
    if (s->ops->run_ids(s, &ids, &in_runs, &n, &err)) TEST_FAIL("run ids: %s", err.msg);
    *rows = *events = 0;
    for (int i = 0; i < n; i++) {
        *rows += in_runs[i];
        *events += events_of(s, ids[i]);
    }
    for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);
    free(in_runs);
}

/* verify's pass reads every row and event, the events in id order and as
 * load_events gives them, in one snapshot: a run committed by another
 * connection once the pass began is not in it.  A store with an event
 * index (indexed: SQLite's) gives it before between(), r1's rows listing
 * as many of its events as the index covers. */
static void scan_is_one_snapshot(cairn_store *(*open)(int), bool indexed) {
    cairn_store *s = open(0);
    scan_seen v = {.other = open(0), .in_order = true};
    cairn_scan_cb cb = {seen_row, seen_indexed, seen_index_row, seen_between, seen_event, &v};
    cairn_err err;
    int rows, events;
    count_held(s, &rows, &events);
    CHECK_INT(s->ops->scan(s, &cb, &err), 0);
    CHECK_INT(v.rows, rows);
    CHECK_INT(v.events, events);
    CHECK(v.r1_same > 0 && v.r1_same == events_of(s, "r1"));
    CHECK(v.in_order);
    CHECK(!v.saw_late);
    CHECK_INT(events_of(s, "r9"), 1);   /* it was committed */
    CHECK_INT(v.indexed_calls, indexed ? 1 : 0);
    CHECK(v.between_after_index == indexed);
    if (indexed) {
        CHECK(v.index_rows > 0);
        CHECK_INT(v.r1_indexed, events_of(s, "r1"));   /* the contract's runs are all indexed */
    }
    cairn_store_close(v.other);
    cairn_store_close(s);
}

static cairn_store *open_sqlite(int i) {
    char *path = cairn_sprintf("%s/j%d.db", test_tmpdir(), i);
    cairn_store *s = NULL;
    cairn_err err;
    if (cairn_store_open_sqlite(path, CAIRN_SYNC_FULL, false, &s, &err))
        TEST_FAIL("open %s: %s", path, err.msg);
    free(path);
    return s;
}

TEST(store_contract_sqlite) {
    contract(open_sqlite);
    scan_is_one_snapshot(open_sqlite, true);
}

/* ---- PostgreSQL -------------------------------------------------------------- */

/* Everything a database that is not a journal holds, as text. */
static char *pg_tables(int i) {
    return fx_pg_value(i, "SELECT string_agg(tablename, ',') FROM pg_tables"
                       " WHERE schemaname = 'public'");
}

static void pg_refusals(void) {
    cairn_store *s = NULL;
    cairn_err err;
    char *url = fx_pg_url(2, "postgres");
    /* a reader of an empty database creates nothing */
    CHECK_INT(cairn_store_open_pg(url, CAIRN_PG_READ, CAIRN_SYNC_FULL, &s, &err), CAIRN_ENOTFOUND);
    char *tables = pg_tables(2);
    CHECK_STR(tables, "\n");
    free(tables);
    /* another program's tables: refused, untouched, even by an engine */
    fx_psql(2, "CREATE TABLE orders(id int)");
    CHECK_INT(cairn_store_open_pg(url, CAIRN_PG_CREATE, CAIRN_SYNC_FULL, &s, &err), CAIRN_ECORRUPT);
    CHECK_CONTAINS(err.msg, "not a Cairn journal");
    tables = pg_tables(2);
    CHECK_STR(tables, "orders\n");
    free(tables);
    free(url);
    /* a version this cairn does not know */
    fx_psql(1, "UPDATE cairn_journal SET version = 99");
    url = fx_pg_url(1, "postgres");
    CHECK_INT(cairn_store_open_pg(url, CAIRN_PG_READ, CAIRN_SYNC_FULL, &s, &err), CAIRN_ECORRUPT);
    CHECK_CONTAINS(err.msg, "version 99");
    free(url);
    /* a password never reaches a message */
    url = cairn_sprintf("postgresql://cairn:wrong-pw@127.0.0.1:%d/cairn0", fx_pg_port());
    CHECK_INT(cairn_store_open_pg(url, CAIRN_PG_READ, CAIRN_SYNC_FULL, &s, &err), CAIRN_EIO);
    CHECK(strstr(err.msg, "wrong-pw") == NULL);
    CHECK_CONTAINS(err.msg, "postgresql://cairn:***@127.0.0.1");
    free(url);
    char *name = cairn_pg_name("postgres://h/db?user=u&password=sec%20ret&sslmode=off");
    CHECK_STR(name, "postgres://h/db?user=u&password=***&sslmode=off");
    free(name);
}

/* A command put through one connection is heard on a listening one. */
static void pg_commands_are_heard(void) {
    cairn_store *listener = NULL, *other = fx_pg_open(0);
    cairn_err err;
    char *url = fx_pg_url(0, "postgres");
    CHECK_INT(cairn_store_open_pg(url, CAIRN_PG_LISTEN, CAIRN_SYNC_FULL, &listener, &err), 0);
    int64_t before = listener->ops->data_version(listener);
    CHECK_INT(other->ops->add_command(other, "r1", "cancel", NULL, &err), 0);
    int64_t after = before;
    for (int i = 0; i < 500 && after == before; i++) {   /* a deadline of 5 s, polled */
        usleep(10000);
        after = listener->ops->data_version(listener);
    }
    CHECK(after > before);
    cairn_store_close(listener);
    cairn_store_close(other);
    free(url);
}

/* A server restart breaks every connection: the statement it breaks under
 * fails, the next one runs on a connection made again, and a listening
 * one counts a change (what was NOTIFYed meanwhile is not heard). */
static void pg_reconnects(void) {
    cairn_store *s = fx_pg_open(0), *listener = NULL;
    cairn_err err;
    char *url = fx_pg_url(0, "postgres");
    CHECK_INT(cairn_store_open_pg(url, CAIRN_PG_LISTEN, CAIRN_SYNC_FULL, &listener, &err), 0);
    int64_t before = listener->ops->data_version(listener);
    cairn_event *ev[2] = {fx_event("r1", 5, CAIRN_EV_STEP_STARTED, "{}"),
                          fx_event("r1", 6, CAIRN_EV_STEP_STARTED, "{}")};
    append_ok(s, ev, 1);   /* its statements prepared on this session */
    const char *bin = getenv("PGBIN") ? getenv("PGBIN") : "/usr/lib/postgresql/15/bin";
    char *cmd = cairn_sprintf("runuser -u postgres -- %s/pg_ctl -D %s/data -m fast -w restart"
                              " >/dev/null 2>&1", bin, fx_pg_dir());
    if (system(cmd) != 0) TEST_FAIL("%s", cmd);
    free(cmd);
    cairn_run_row row;
    int rc = s->ops->get_run(s, "r1", &row, &err);
    if (rc == 0) cairn_run_row_clear(&row);
    else CHECK_INT(rc, CAIRN_EIO);
    CHECK_INT(s->ops->get_run(s, "r1", &row, &err), 0);
    CHECK_STR(row.id, "r1");
    cairn_run_row_clear(&row);
    append_ok(s, ev + 1, 1);   /* prepared again, on the new session */
    fx_free_events(ev, 2);
    int64_t after = before;
    for (int i = 0; i < 3 && after == before; i++) after = listener->ops->data_version(listener);
    CHECK(after > before);
    cairn_store_close(listener);
    cairn_store_close(s);
    free(url);
}

/* What a copy moves from one store goes into the other as it was, both
 * ways (cairn migrate): SQLite into PostgreSQL database 5, database 6 into
 * SQLite. */
static void rows_move_between_stores(void) {
    cairn_store *sq = open_sqlite(5), *pg = fx_pg_open(5);
    appends_and_projects(sq);
    keeps_definitions(sq);
    owns_runs_and_takes_commands(sq);
    claims_keys_and_meta(sq, sq);
    dumps_what_it_holds(sq, pg);
    cairn_store_close(sq);
    cairn_store_close(pg);
    pg = fx_pg_open(6);
    sq = open_sqlite(6);
    appends_and_projects(pg);
    keeps_definitions(pg);
    owns_runs_and_takes_commands(pg);
    claims_keys_and_meta(pg, pg);
    dumps_what_it_holds(pg, sq);
    cairn_store_close(sq);
    cairn_store_close(pg);
}

/* One server for every PostgreSQL check (starting one is most of the time):
 * databases 0 and 1 the contract's, 2 the refusals', 5 and 6 the copies'. */
TEST(store_contract_postgres) {
    fx_pg_start(7);
    contract(fx_pg_open);
    /* r1 was taken from its first owner once: its hold's epoch is 1 */
    char *epoch = fx_pg_value(0, "SELECT epoch FROM runs WHERE id = 'r1'");
    CHECK_STR(epoch, "1\n");
    free(epoch);
    pg_commands_are_heard();
    scan_is_one_snapshot(fx_pg_open, false);
    pg_reconnects();
    pg_refusals();
    rows_move_between_stores();
}

