#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sqlite3.h>

#include "common/idlist.h"
#include "common/mem.h"
#include "engine/event.h"
#include "engine/fold.h"
#include "engine/owner.h"
#include "engine/store.h"
#include "fixtures.h"
#include "test.h"

static char *path_in_tmp(const char *name) { return cairn_sprintf("%s/%s", test_tmpdir(), name); }

static cairn_store *open_rw(const char *path) {
    cairn_store *s = NULL;
    cairn_err err;
    int rc = cairn_store_open_sqlite(path, CAIRN_SYNC_FULL, false, &s, &err);
    if (rc) TEST_FAIL("open %s: %s", path, err.msg);
    return s;
}

/* A new journal holding the definition fx_event's runs name; *path its file. */
static cairn_store *open_with_def(char **path) {
    *path = path_in_tmp("j.db");
    cairn_store *s = open_rw(*path);
    fx_put_def(s);
    return s;
}

TEST(store_appends_and_reads_back_in_order) {
    char *path = path_in_tmp("j.db");
    cairn_store *s = open_rw(path);
    cairn_err err;
    fx_put_def(s);
    cairn_event *evs[3] = {
        fx_event("r1", 1, CAIRN_EV_RUN_CREATED, "{\"workflow\":\"wf\"}"),
        fx_event("r1", 2, CAIRN_EV_STEP_STARTED, "{}"),
        fx_event("r1", 3, CAIRN_EV_STEP_SUCCEEDED, "{\"output\":1}"),
    };
    CHECK_INT(s->ops->append(s, evs, 3, &err), 0);
    cairn_event *back = NULL;
    int n = 0;
    CHECK_INT(s->ops->load_events(s, "r1", &back, &n, &err), 0);
    CHECK_INT(n, 3);
    CHECK_INT(back[2].seq, 3);
    CHECK_INT(back[2].type, CAIRN_EV_STEP_SUCCEEDED);
    CHECK_STR(back[2].data, "{\"output\":1}");
    CHECK_STR(back[1].step, "a");
    cairn_run_row row;
    CHECK_INT(s->ops->get_run(s, "r1", &row, &err), 0);
    CHECK_STR(row.status, "running");
    CHECK_STR(row.workflow, "wf");
    cairn_run_row_clear(&row);
    cairn_events_free(back, n);
    fx_free_events(evs, 3);
    cairn_store_close(s);
    free(path);
}

TEST(store_append_missing_skips_what_it_holds_and_refuses_a_gap) {
    char *path = path_in_tmp("j.db");
    cairn_store *s = open_rw(path);
    cairn_err err;
    fx_put_def(s);
    cairn_event *evs[4] = {
        fx_event("r1", 1, CAIRN_EV_RUN_CREATED, "{}"),
        fx_event("r1", 2, CAIRN_EV_STEP_STARTED, "{}"),
        fx_event("r1", 3, CAIRN_EV_STEP_SUCCEEDED, "{}"),
        fx_event("r1", 5, CAIRN_EV_STEP_STARTED, "{}"),
    };
    CHECK_INT(s->ops->append(s, evs, 2, &err), 0);
    CHECK_INT(s->ops->append_missing(s, evs, 3, &err), 0);   /* 1 and 2 held: 3 is new */
    cairn_event *back = NULL;
    int n = 0;
    CHECK_INT(s->ops->load_events(s, "r1", &back, &n, &err), 0);
    CHECK_INT(n, 3);
    cairn_events_free(back, n);
    CHECK_INT(s->ops->append_missing(s, evs + 3, 1, &err), CAIRN_ESTATE);   /* 4 is missing */
    CHECK_CONTAINS(err.msg, "arrives where event 4 belongs");
    fx_free_events(evs, 4);
    cairn_store_close(s);
    free(path);
}

TEST(store_rejects_a_duplicate_seq_and_keeps_nothing_of_the_batch) {
    char *path = path_in_tmp("j.db");
    cairn_store *s = open_rw(path);
    cairn_err err;
    fx_put_def(s);
    cairn_event *a[1] = {fx_event("r1", 1, CAIRN_EV_RUN_CREATED, "{}")};
    CHECK_INT(s->ops->append(s, a, 1, &err), 0);
    cairn_event *b[2] = {fx_event("r1", 2, CAIRN_EV_STEP_STARTED, "{}"),
                         fx_event("r1", 1, CAIRN_EV_STEP_STARTED, "{}")};
    CHECK(s->ops->append(s, b, 2, &err) != 0);
    cairn_event *back = NULL;
    int n = 0;
    CHECK_INT(s->ops->load_events(s, "r1", &back, &n, &err), 0);
    CHECK_INT(n, 1);   /* seq 2 was rolled back with the bad event */
    cairn_events_free(back, n);
    cairn_event_clear(a[0]); free(a[0]);
    fx_free_events(b, 2);
    cairn_store_close(s);
    free(path);
}

static void free_events(cairn_event **evs, int n) {
    for (int i = 0; i < n; i++) {
        cairn_event_clear(evs[i]);
        free(evs[i]);
    }
}

/* An event whose data names its run and seq (check_loads reads them back). */
static cairn_event *seq_event(const char *run, int64_t seq, cairn_event_type t) {
    char data[48];
    snprintf(data, sizeof data, "{\"run\":\"%s\",\"seq\":%lld}", run, (long long)seq);
    return fx_event(run, seq, t, data);
}

static int append1(cairn_store *s, const char *run, int64_t seq, cairn_event_type t,
                   cairn_err *err) {
    cairn_event *ev[1] = {seq_event(run, seq, t)};
    int rc = s->ops->append(s, ev, 1, err);
    free_events(ev, 1);
    return rc;
}

/* Every event of the run, in seq order 1..n, each carrying its own data;
 * run_created's as fx_event made it, unless `raw` (written by hand). */
static void check_loads(cairn_store *s, const char *run, int n_want, bool raw) {
    cairn_event *back = NULL;
    int n = 0;
    cairn_err err;
    CHECK_INT(s->ops->load_events(s, run, &back, &n, &err), 0);
    CHECK_INT(n, n_want);
    for (int i = 0; i < n; i++) {
        char data[48];
        snprintf(data, sizeof data, "{\"run\":\"%s\",\"seq\":%d}", run, i + 1);
        char *want = i == 0 && !raw ? fx_run_created_data(data) : cairn_strdup(data);
        CHECK_INT(back[i].seq, i + 1);
        CHECK_STR(back[i].data, want);
        free(want);
    }
    cairn_events_free(back, n);
}

static void check_run_loads(cairn_store *s, const char *run, int n_want) {
    check_loads(s, run, n_want, false);
}

static int64_t sql_int(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    CHECK_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Three runs interleaved past one bulk index: each loads whole and in order
 * from the indexed part and the tail, before and after a reopen (which
 * indexes the tail), and the index covers exactly what upto says. */
TEST(store_loads_a_run_from_the_bulk_index_and_the_tail) {
    char *path = path_in_tmp("j.db");
    cairn_store *s = NULL;
    cairn_err err;
    /* tens of thousands of one-event commits: unsynced, or this test is the disk's */
    if (cairn_store_open_sqlite(path, CAIRN_SYNC_NORMAL, false, &s, &err)) TEST_FAIL("%s", err.msg);
    const char *runs[3] = {"rc", "ra", "rb"};
    int per_run = CAIRN_EVENT_INDEX_BATCH / 2;    /* 1.5 batches in all */
    fx_put_def(s);
    for (int seq = 1; seq <= per_run; seq++)
        for (int r = 0; r < 3; r++)
            CHECK_INT(append1(s, runs[r], seq,
                              seq == 1 ? CAIRN_EV_RUN_CREATED : CAIRN_EV_STEP_STARTED, &err), 0);
    int64_t upto = sql_int(path, "SELECT upto FROM index_state");
    CHECK_INT(upto, CAIRN_EVENT_INDEX_BATCH);
    CHECK_INT(sql_int(path, "SELECT count(*) FROM event_index"), 3);   /* a row per run */
    for (int r = 0; r < 3; r++) check_run_loads(s, runs[r], per_run);
    cairn_store_close(s);

    s = open_rw(path);
    CHECK_INT(sql_int(path, "SELECT upto FROM index_state"), 3 * per_run);
    CHECK_INT(sql_int(path, "SELECT count(*) FROM event_index"), 6);
    for (int r = 0; r < 3; r++) check_run_loads(s, runs[r], per_run);
    CHECK_INT(append1(s, "ra", per_run + 1, CAIRN_EV_STEP_STARTED, &err), 0);
    check_run_loads(s, "ra", per_run + 1);

    /* an index row that lists an event of another seq is caught on load */
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, "UPDATE event_index SET ids = x'0102' WHERE run_id = 'rb'"
                               " AND first_seq = 1", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    cairn_event *back = NULL;
    int n = 0;
    CHECK_INT(s->ops->load_events(s, "rb", &back, &n, &err), CAIRN_ECORRUPT);
    CHECK_CONTAINS(err.msg, "run rb: event 1 is not where the event index puts it");
    cairn_store_close(s);
    free(path);
}

/* Append seqs from..to of run in one batch (one commit). */
static int append_range(cairn_store *s, const char *run, int64_t from, int64_t to, cairn_err *err) {
    int n = (int)(to - from + 1);
    cairn_event **evs = cairn_calloc((size_t)n, sizeof *evs);
    for (int i = 0; i < n; i++) {
        char data[48];
        snprintf(data, sizeof data, "{\"run\":\"%s\",\"seq\":%lld}", run, (long long)(from + i));
        evs[i] = fx_event(run, from + i, from + i == 1 ? CAIRN_EV_RUN_CREATED
                                                         : CAIRN_EV_STEP_STARTED, data);
    }
    int rc = s->ops->append(s, evs, n, err);
    free_events(evs, n);
    free(evs);
    return rc;
}

/* Another connection that opens indexes this one's tail: this one must see
 * upto move (or its next bulk index would list those events twice and be
 * refused), and still refuse a repeat. */
TEST(store_indexes_after_another_connection_indexed_its_tail) {
    char *path = path_in_tmp("j.db");
    cairn_store *a = open_rw(path);
    cairn_err err;
    fx_put_def(a);
    CHECK_INT(append_range(a, "r1", 1, 10, &err), 0);
    cairn_store *b = open_rw(path);
    CHECK_INT(sql_int(path, "SELECT upto FROM index_state"), 10);
    cairn_store_close(b);
    int64_t last = 10 + CAIRN_EVENT_INDEX_BATCH;
    CHECK_INT(append_range(a, "r1", 11, last, &err), 0);
    CHECK_INT(sql_int(path, "SELECT upto FROM index_state"), last);
    CHECK_INT(sql_int(path, "SELECT count(*) FROM event_index"), 2);
    CHECK_INT(append1(a, "r1", last, CAIRN_EV_STEP_STARTED, &err), CAIRN_ESTATE);
    check_run_loads(a, "r1", (int)last);
    cairn_store_close(a);
    free(path);
}

/* Every event_index row lists events of its run at first_seq, first_seq + 1,
 * ... by their ids, and together the rows list each event up to upto once. */
static void check_index_rows(const char *path) {
    sqlite3 *db = NULL;
    sqlite3_stmt *rows = NULL, *one = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_prepare_v2(db, "SELECT run_id, first_seq, ids FROM event_index", -1, &rows,
                                 NULL), SQLITE_OK);
    CHECK_INT(sqlite3_prepare_v2(db, "SELECT run_id, seq FROM events WHERE id = ?", -1, &one,
                                 NULL), SQLITE_OK);
    int64_t listed = 0;
    while (sqlite3_step(rows) == SQLITE_ROW) {
        const char *run = (const char *)sqlite3_column_text(rows, 0);
        int64_t seq = sqlite3_column_int64(rows, 1), id = 0;
        const unsigned char *ids = sqlite3_column_blob(rows, 2);
        size_t n = (size_t)sqlite3_column_bytes(rows, 2), pos = 0;
        while (cairn_idlist_next(ids, n, &pos, id, &id) == 0) {
            sqlite3_bind_int64(one, 1, id);
            CHECK_INT(sqlite3_step(one), SQLITE_ROW);
            CHECK_STR((const char *)sqlite3_column_text(one, 0), run);
            CHECK_INT(sqlite3_column_int64(one, 1), seq++);
            sqlite3_reset(one);
            listed++;
        }
    }
    sqlite3_finalize(rows);
    sqlite3_finalize(one);
    sqlite3_close(db);
    CHECK_INT(listed, sql_int(path, "SELECT count(*) FROM events"
                                    " WHERE id <= (SELECT upto FROM index_state)"));
}

/* The index a connection builds from what it appended (not read back) is
 * the one reading the table builds: five batches' worth of events, in
 * appends of many sizes with runs interleaved; in the first and fourth an
 * append is refused late and rolled back, in the third another connection
 * appends between two of its own. */
TEST(store_indexes_what_it_appended_as_the_table_holds_it) {
    char *path = NULL;
    cairn_store *a = open_with_def(&path);
    cairn_err err;
    int64_t next[4] = {1, 1, 1, 1}, total = 0;
    const char *runs[4] = {"r1", "r2", "r3", "r4"};
    cairn_store *b = open_rw(path);   /* opened once: an opening indexes the tail */
    for (int round = 0; total < 5 * CAIRN_EVENT_INDEX_BATCH; round++) {
        int r = round % 3, size = 1 + (round * 37) % 90;
        CHECK_INT(append_range(a, runs[r], next[r], next[r] + size - 1, &err), 0);
        next[r] += size;
        total += size;
        if (round == 7 || round == 1200) {   /* refused at its last event: nothing of it stays */
            cairn_event *evs[40];
            for (int i = 0; i < 40; i++)
                evs[i] = seq_event(runs[r], next[r] + i + (i == 39), CAIRN_EV_STEP_STARTED);
            CHECK_INT(a->ops->append(a, evs, 40, &err), CAIRN_ESTATE);
            fx_free_events(evs, 40);
        }
        if (round == 800) {   /* another connection's events between two of ours */
            CHECK_INT(append_range(b, runs[3], next[3], next[3] + 5, &err), 0);
            next[3] += 6;
            total += 6;
        }
    }
    cairn_store_close(b);
    CHECK(sql_int(path, "SELECT upto FROM index_state") >= 4 * CAIRN_EVENT_INDEX_BATCH);
    check_index_rows(path);
    for (int r = 0; r < 4; r++) check_run_loads(a, runs[r], (int)next[r] - 1);
    cairn_store_close(a);
    free(path);
}

/* The store keeps each run's events numbered 1, 2, 3... with no unique
 * index to lean on: a gap, a repeat, or a run's first event that is not
 * run_created are refused, whether the run's last seq is in memory, must be
 * read from the journal (a new connection), or was moved by another
 * connection's commit meanwhile. */
TEST(store_refuses_an_event_that_does_not_follow_its_run) {
    char *path = path_in_tmp("j.db");
    cairn_store *a = open_rw(path);
    cairn_err err;
    fx_put_def(a);
    CHECK_INT(append1(a, "r1", 1, CAIRN_EV_RUN_CREATED, &err), 0);
    CHECK_INT(append1(a, "r1", 2, CAIRN_EV_STEP_STARTED, &err), 0);
    CHECK_INT(append1(a, "r1", 4, CAIRN_EV_STEP_STARTED, &err), CAIRN_ESTATE);
    CHECK_CONTAINS(err.msg, "event 4 (step_started) arrives where event 3 belongs");
    CHECK_INT(append1(a, "r1", 2, CAIRN_EV_STEP_STARTED, &err), CAIRN_ESTATE);
    CHECK_INT(append1(a, "r2", 1, CAIRN_EV_STEP_STARTED, &err), CAIRN_ESTATE);
    CHECK_INT(append1(a, "r1", 1, CAIRN_EV_RUN_CREATED, &err), CAIRN_EIO);  /* the run exists */

    cairn_store *b = open_rw(path);          /* learns r1's last seq from the journal */
    CHECK_INT(append1(b, "r1", 2, CAIRN_EV_STEP_STARTED, &err), CAIRN_ESTATE);
    CHECK_INT(append1(b, "r1", 3, CAIRN_EV_STEP_STARTED, &err), 0);
    CHECK_INT(append1(a, "r1", 3, CAIRN_EV_STEP_STARTED, &err), CAIRN_ESTATE);
    CHECK_INT(append1(a, "r1", 4, CAIRN_EV_STEP_SUCCEEDED, &err), 0);
    check_run_loads(b, "r1", 4);
    cairn_store_close(b);
    cairn_store_close(a);
    free(path);
}

/* The events table's rows in id order as "run:seq:data" lines. */
static char *rows_in_id_order(const char *path) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cairn_buf b = CAIRN_BUF_INIT;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_prepare_v2(db, "SELECT run_id, seq, data, step IS NULL FROM events"
                                     " ORDER BY id", -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW)
        cairn_buf_printf(&b, "%s:%lld:%s:%d\n", sqlite3_column_text(st, 0),
                         (long long)sqlite3_column_int64(st, 1), sqlite3_column_text(st, 2),
                         sqlite3_column_int(st, 3));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return cairn_buf_detach(&b);
}

/* Batches of every size from 1 to 70 (fewer than one statement's rows, as
 * many, and past one and two statements' worth, with every remainder), three
 * runs' events interleaved in each: every event is stored, in the order of
 * the batch, each with its own data, and each run loads whole. */
TEST(store_appends_batches_of_any_size_whole_and_in_order) {
    char *path = NULL;
    cairn_store *s = open_with_def(&path);
    cairn_err err;
    const char *runs[3] = {"r1", "r2", "r3"};
    int64_t next[3] = {1, 1, 1};
    cairn_buf want = CAIRN_BUF_INIT;
    for (int size = 1; size <= 70; size++) {
        cairn_event *evs[70];
        for (int i = 0; i < size; i++) {
            int r = (i * 7 + size) % 3;
            cairn_event_type t = next[r] == 1 ? CAIRN_EV_RUN_CREATED : CAIRN_EV_STEP_STARTED;
            evs[i] = seq_event(runs[r], next[r]++, t);
            cairn_buf_printf(&want, "%s:%lld:%s:%d\n", runs[r], (long long)evs[i]->seq,
                             evs[i]->data, evs[i]->step == NULL);
        }
        CHECK_INT(s->ops->append(s, evs, size, &err), 0);
        fx_free_events(evs, size);
    }
    char *got = rows_in_id_order(path);
    CHECK_STR(got, want.data);
    for (int r = 0; r < 3; r++) check_run_loads(s, runs[r], (int)next[r] - 1);
    free(got);
    cairn_buf_free(&want);
    cairn_store_close(s);
    free(path);
}

/* An event of a run the store no longer holds in memory (its run ended
 * earlier in the same batch) is checked against the events before it in
 * that batch; an event out of order late in a long batch takes the whole
 * batch with it, and the store takes the right one after. */
TEST(store_checks_each_event_against_the_ones_before_it_in_its_batch) {
    char *path = NULL;
    cairn_store *s = open_with_def(&path);
    cairn_err err;
    cairn_event *evs[40];
    evs[0] = seq_event("r1", 1, CAIRN_EV_RUN_CREATED);
    for (int i = 1; i < 40; i++)
        evs[i] = seq_event("r1", i + 1, i == 2 ? CAIRN_EV_RUN_SUCCEEDED : CAIRN_EV_STEP_STARTED);
    evs[36]->seq = 38;   /* where 37 belongs */
    CHECK_INT(s->ops->append(s, evs, 40, &err), CAIRN_ESTATE);
    CHECK_CONTAINS(err.msg, "event 38 (step_started) arrives where event 37 belongs");
    char *got = rows_in_id_order(path);
    CHECK_STR(got, "");
    free(got);
    evs[36]->seq = 37;
    CHECK_INT(s->ops->append(s, evs, 40, &err), 0);
    check_run_loads(s, "r1", 40);
    fx_free_events(evs, 40);
    cairn_store_close(s);
    free(path);
}

/* A version 1 journal (UNIQUE (run_id, seq) on events, no bulk index) is
 * read as it is by a read-only open and upgraded by the first that writes,
 * keeping every event and its order. */
TEST(store_reads_a_version_1_journal_and_upgrades_it_when_writing) {
    char *path = path_in_tmp("v1.db");
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    const char *v1 =
        "PRAGMA journal_mode = WAL; PRAGMA application_id = 1128354382; PRAGMA user_version = 1;"
        "CREATE TABLE definitions (hash TEXT PRIMARY KEY, name TEXT NOT NULL, path TEXT NOT NULL,"
        " source BLOB NOT NULL, created_at INTEGER NOT NULL);"
        "CREATE TABLE events (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, seq INTEGER NOT NULL,"
        " time INTEGER NOT NULL, type TEXT NOT NULL, step TEXT, attempt INTEGER NOT NULL DEFAULT 0,"
        " data TEXT NOT NULL, hash BLOB NOT NULL, UNIQUE (run_id, seq));"
        "CREATE TABLE runs (id TEXT PRIMARY KEY, workflow TEXT NOT NULL, def_hash TEXT NOT NULL"
        " REFERENCES definitions(hash), parent_id TEXT, status TEXT NOT NULL, created_at INTEGER"
        " NOT NULL, updated_at INTEGER NOT NULL, owner TEXT);"
        "CREATE INDEX runs_by_status ON runs(status); CREATE INDEX runs_by_created ON runs(created_at);"
        "CREATE TABLE commands (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, type TEXT NOT NULL,"
        " data TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL);"
        "INSERT INTO definitions VALUES ('h1', 'wf', 'wf.yaml', 'src', 1);"
        "INSERT INTO runs VALUES ('r1', 'wf', 'h1', NULL, 'running', 1, 1, NULL);"
        "INSERT INTO events(run_id, seq, time, type, step, data, hash) VALUES"
        " ('r1', 1, 1, 'run_created', NULL, '{\"run\":\"r1\",\"seq\":1}', x'00'),"
        " ('r9', 1, 1, 'run_created', NULL, '{}', x'00'),"
        " ('r9', 3, 1, 'step_started', 'a', '{}', x'00'),"
        " ('r1', 2, 2, 'step_started', 'a', '{\"run\":\"r1\",\"seq\":2}', x'00');";
    CHECK_INT(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    cairn_store *s = NULL;
    cairn_err err;
    CHECK_INT(cairn_store_open_sqlite(path, CAIRN_SYNC_FULL, true, &s, &err), 0);
    check_loads(s, "r1", 2, true);
    cairn_store_close(s);
    CHECK_INT(sql_int(path, "PRAGMA user_version"), 1);   /* reading changed nothing */

    s = open_rw(path);
    CHECK_INT(sql_int(path, "PRAGMA user_version"), 2);
    CHECK_INT(sql_int(path, "SELECT upto FROM index_state"), 4);
    /* r1, and r9 in two stretches: a gap left by an older engine is kept */
    CHECK_INT(sql_int(path, "SELECT count(*) FROM event_index"), 3);
    cairn_event *r9 = NULL;
    int n9 = 0;
    CHECK_INT(s->ops->load_events(s, "r9", &r9, &n9, &err), 0);
    CHECK_INT(n9, 2);
    CHECK_INT(r9[0].seq, 1);
    CHECK_INT(r9[1].seq, 3);
    cairn_events_free(r9, n9);
    CHECK_INT(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'events_v1'"), 0);
    check_loads(s, "r1", 2, true);
    CHECK_INT(append1(s, "r1", 2, CAIRN_EV_STEP_STARTED, &err), CAIRN_ESTATE);
    CHECK_INT(append1(s, "r1", 3, CAIRN_EV_STEP_SUCCEEDED, &err), 0);
    check_loads(s, "r1", 3, true);
    cairn_store_close(s);
    free(path);
}

static void copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    CHECK(in != NULL && out != NULL);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) CHECK(fwrite(buf, 1, n, out) == n);
    fclose(in);
    fclose(out);
}

static long long file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* Descriptors this process holds open on path (SQLite's own among them). */
static int fds_on(const char *path) {
    char want[PATH_MAX], link[300], got[PATH_MAX];
    if (realpath(path, want) == NULL) return 0;
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *de; d && (de = readdir(d)) != NULL;) {
        snprintf(link, sizeof link, "/proc/self/fd/%s", de->d_name);
        ssize_t len = readlink(link, got, sizeof got - 1);
        if (len <= 0) continue;
        got[len] = '\0';
        n += strcmp(got, want) == 0;
    }
    if (d) closedir(d);
    return n;
}

/* The journal writer's mode: a commit is whole and seen by other connections
 * at once (it is not synced: SQLite's NORMAL), and sync() syncs the log
 * through a descriptor of its own on that very file, closed with the store.
 * Whether the bytes reach the platter no test here can see; that the log's
 * frames written without a sync make a journal that opens whole, it can. */
TEST(store_deferred_commits_show_at_once_and_sync_apart) {
    char *path = path_in_tmp("j.db");
    char *copy = path_in_tmp("copy.db");
    char *wal = cairn_sprintf("%s-wal", path), *copy_wal = cairn_sprintf("%s-wal", copy);
    cairn_store *s = NULL, *r = NULL;
    cairn_err err;
    cairn_store *full = NULL;
    if (cairn_store_open_sqlite_writer(path, CAIRN_SYNC_FULL, &full, &err)) TEST_FAIL("%s", err.msg);
    int sqlite_own = fds_on(wal);   /* SQLite's descriptor on the log, no more */
    CHECK(sqlite_own >= 1);
    cairn_store_close(full);
    if (cairn_store_open_sqlite_writer(path, CAIRN_SYNC_DEFERRED, &s, &err)) TEST_FAIL("%s", err.msg);
    CHECK_INT(fds_on(wal), sqlite_own + 1);   /* and the store's own, for sync() */
    fx_put_def(s);
    CHECK_INT(append1(s, "r1", 1, CAIRN_EV_RUN_CREATED, &err), 0);
    CHECK_INT(append1(s, "r1", 2, CAIRN_EV_STEP_STARTED, &err), 0);
    if (cairn_store_open_sqlite(path, CAIRN_SYNC_FULL, true, &r, &err)) TEST_FAIL("%s", err.msg);
    check_run_loads(r, "r1", 2);
    CHECK_INT(r->ops->sync(r, &err), 0);   /* nothing deferred there: nothing to do */
    CHECK_INT(append1(s, "r1", 3, CAIRN_EV_STEP_SUCCEEDED, &err), 0);
    CHECK_INT(s->ops->sync(s, &err), 0);
    copy_file(path, copy);
    copy_file(wal, copy_wal);
    cairn_store *c = open_rw(copy);
    check_run_loads(c, "r1", 3);
    cairn_store_close(c);
    cairn_store_close(r);
    cairn_store_close(s);
    CHECK_INT(fds_on(wal), 0);
    free(copy_wal);
    free(wal);
    free(copy);
    free(path);
}

/* The writer's log is written ahead with zeros (a plain read-write open, as
 * a CLI command makes, does not pay for that); a copy of the files taken
 * right after a commit (what a power loss leaves) must recover every
 * committed event, the zeros past the last frame being no frames. */
TEST(store_writes_its_log_ahead_and_recovers_past_the_zeros) {
    char *path = path_in_tmp("j.db");
    char *wal = cairn_sprintf("%s-wal", path);
    long long want = 32 + (long long)CAIRN_WAL_PREALLOC_FRAMES * (4096 + 24);
    cairn_store *plain = open_rw(path);
    CHECK(file_size(wal) < want);
    cairn_store_close(plain);
    cairn_store *s = NULL;
    cairn_err err;
    if (cairn_store_open_sqlite_writer(path, CAIRN_SYNC_FULL, &s, &err)) TEST_FAIL("%s", err.msg);
    CHECK(file_size(wal) >= want);
    fx_put_def(s);
    cairn_event *evs[2] = {fx_event("r1", 1, CAIRN_EV_RUN_CREATED, "{}"),
                           fx_event("r1", 2, CAIRN_EV_STEP_STARTED, "{\"n\":2}")};
    CHECK_INT(s->ops->append(s, evs, 2, &err), 0);

    char *copy = path_in_tmp("copy.db");
    char *copy_wal = cairn_sprintf("%s-wal", copy);
    copy_file(path, copy);
    copy_file(wal, copy_wal);
    cairn_store *c = open_rw(copy);
    cairn_event *back = NULL;
    int n = 0;
    CHECK_INT(c->ops->load_events(c, "r1", &back, &n, &err), 0);
    CHECK_INT(n, 2);
    CHECK_STR(back[1].data, "{\"n\":2}");
    cairn_events_free(back, n);
    cairn_store_close(c);

    cairn_store_close(s);
    CHECK(file_size(wal) >= want);   /* kept for the next open */
    fx_free_events(evs, 2);
    free(copy_wal);
    free(copy);
    free(wal);
    free(path);
}

static void write_file(const char *path, const char *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(bytes, 1, n, f) == n);
    fclose(f);
}

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    char *buf = cairn_malloc(1 << 20);
    *n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

TEST(store_refuses_a_file_that_is_not_a_journal_and_leaves_it_alone) {
    char *path = path_in_tmp("notes.txt");
    const char text[] = "these are my notes, not a database\n";
    write_file(path, text, sizeof text - 1);
    cairn_store *s = NULL;
    cairn_err err;
    CHECK_INT(cairn_store_open_sqlite(path, CAIRN_SYNC_FULL, false, &s, &err), CAIRN_ECORRUPT);
    CHECK_CONTAINS(err.msg, "not a Cairn journal");
    size_t n;
    char *back = read_all(path, &n);
    CHECK_INT(n, sizeof text - 1);
    CHECK(memcmp(back, text, n) == 0);
    free(back);
    free(path);
}

TEST(store_refuses_another_programs_sqlite_database) {
    char *path = path_in_tmp("other.db");
    char *cmd = cairn_sprintf("sqlite3 '%s' 'CREATE TABLE t(x); INSERT INTO t VALUES (1);'", path);
    CHECK_INT(system(cmd), 0);
    size_t before_n, after_n;
    char *before = read_all(path, &before_n);
    cairn_store *s = NULL;
    cairn_err err;
    CHECK_INT(cairn_store_open_sqlite(path, CAIRN_SYNC_FULL, false, &s, &err), CAIRN_ECORRUPT);
    CHECK_CONTAINS(err.msg, "not a Cairn journal");
    char *after = read_all(path, &after_n);
    CHECK_INT(after_n, before_n);
    CHECK(memcmp(before, after, before_n) == 0);
    struct stat sb;
    char *wal = cairn_sprintf("%s-wal", path);
    CHECK(stat(wal, &sb) != 0);   /* not switched to WAL mode either */
    free(wal); free(before); free(after); free(cmd); free(path);
}

TEST(store_refuses_a_corrupt_journal_unmodified) {
    char *path = path_in_tmp("j.db");
    cairn_store *s = open_rw(path);
    cairn_err err;
    fx_put_def(s);
    for (int i = 0; i < 200; i++) {
        char run[16];
        snprintf(run, sizeof run, "r%d", i);
        cairn_event *a[1] = {fx_event(run, 1, CAIRN_EV_RUN_CREATED, "{\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}")};
        CHECK_INT(s->ops->append(s, a, 1, &err), 0);
        cairn_event_clear(a[0]); free(a[0]);
    }
    cairn_store_close(s);
    /* checkpoint the WAL into the main file, then scribble over a page */
    char *cmd = cairn_sprintf("sqlite3 '%s' 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null", path);
    CHECK_INT(system(cmd), 0);
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0);
    char junk[4096];
    memset(junk, 0x5a, sizeof junk);
    CHECK(pwrite(fd, junk, sizeof junk, 4096 * 2) == (ssize_t)sizeof junk);
    close(fd);
    size_t before_n, after_n;
    char *before = read_all(path, &before_n);
    CHECK(cairn_store_open_sqlite_checked(path, CAIRN_SYNC_FULL, &s, &err) != 0);
    CHECK_CONTAINS(err.msg, "was not modified");
    char *after = read_all(path, &after_n);
    CHECK_INT(after_n, before_n);
    CHECK(memcmp(before, after, before_n) == 0);
    free(before); free(after); free(cmd); free(path);
}

static bool never_alive(const char *owner) { (void)owner; return false; }
static bool always_alive(const char *owner) { (void)owner; return true; }

TEST(store_claims_runs_only_from_dead_owners) {
    char *path = path_in_tmp("j.db");
    cairn_store *s = open_rw(path);
    cairn_err err;
    fx_put_def(s);
    s->ops->set_owner(s, "host:1:1");
    cairn_event *a[1] = {fx_event("r1", 1, CAIRN_EV_RUN_CREATED, "{}")};
    CHECK_INT(s->ops->append(s, a, 1, &err), 0);
    CHECK_INT(s->ops->claim_run(s, "r1", "host:2:2", always_alive, &err), CAIRN_EBUSY);
    CHECK_INT(s->ops->claim_run(s, "r1", "host:2:2", never_alive, &err), 0);
    cairn_run_row row;
    CHECK_INT(s->ops->get_run(s, "r1", &row, &err), 0);
    CHECK_STR(row.owner, "host:2:2");
    cairn_run_row_clear(&row);
    /* each claim is committed as it is made: another connection sees it */
    CHECK_INT(s->ops->claim_run(s, "r1", "host:3:3", never_alive, &err), 0);
    cairn_store *other = open_rw(path);
    CHECK_INT(other->ops->get_run(other, "r1", &row, &err), 0);
    CHECK_STR(row.owner, "host:3:3");
    cairn_run_row_clear(&row);
    cairn_store_close(other);
    cairn_event_clear(a[0]); free(a[0]);
    cairn_store_close(s);
    free(path);
}

TEST(owner_of_this_process_is_alive_and_of_a_dead_one_is_not) {
    char me[256];
    cairn_owner_self(me, sizeof me);
    CHECK(cairn_owner_alive(me));
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    int status;
    waitpid(pid, &status, 0);
    char host[128] = "";
    gethostname(host, sizeof host);
    char dead[256];
    snprintf(dead, sizeof dead, "%s:%d:12345", host, (int)pid);
    CHECK(!cairn_owner_alive(dead));
}

TEST(chain_hash_changes_with_any_field) {
    unsigned char key[32] = {1, 2, 3};
    cairn_chain *c = cairn_chain_new(key, 32);
    cairn_event *ev = fx_event("r1", 1, CAIRN_EV_STEP_STARTED, "{\"a\":1}");
    cairn_chain_hash(c, NULL, ev);
    unsigned char h1[32];
    memcpy(h1, ev->hash, 32);
    free(ev->data);
    ev->data = cairn_strdup("{\"a\":2}");
    cairn_chain_hash(c, NULL, ev);
    CHECK(memcmp(h1, ev->hash, 32) != 0);
    free(ev->data);
    ev->data = cairn_strdup("{\"a\":1}");
    cairn_chain_hash(c, NULL, ev);
    CHECK(memcmp(h1, ev->hash, 32) == 0);
    cairn_chain_hash(c, h1, ev);   /* another predecessor */
    CHECK(memcmp(h1, ev->hash, 32) != 0);
    cairn_event_clear(ev); free(ev);
    cairn_chain_free(c);
}

/* The canonical bytes of event.h, written here with printf, apart from the
 * chain's own code, and HMAC-SHA-256 by OpenSSL's one-shot HMAC. */
static void reference_hash(const unsigned char *key, int keylen, const unsigned char *prev,
                           const cairn_event *ev, unsigned char out[CAIRN_HASH_LEN]) {
    static const unsigned char zero[CAIRN_HASH_LEN];
    cairn_buf m = CAIRN_BUF_INIT;
    cairn_buf_append(&m, prev ? prev : zero, CAIRN_HASH_LEN);
    char text[512];
    int n = snprintf(text, sizeof text, "%s%c%lld%c%lld%c%s%c%s%c%d%c", ev->run_id, 0,
                     (long long)ev->seq, 0, (long long)ev->time_ms, 0,
                     cairn_event_type_name(ev->type), 0, ev->step ? ev->step : "", 0,
                     ev->attempt, 0);
    cairn_buf_append(&m, text, (size_t)n);
    cairn_buf_append(&m, ev->data ? ev->data : "", ev->data ? strlen(ev->data) + 1 : 1);
    unsigned int len = 0;
    HMAC(EVP_sha256(), key, keylen, (const unsigned char *)m.data, m.len, out, &len);
    CHECK_INT((int)len, CAIRN_HASH_LEN);
    cairn_buf_free(&m);
}

/* Events whose canonical bytes end before, at and past SHA-256's block
 * boundaries, with negative numbers, no step and no data, under a short key,
 * a 32-byte one and one longer than a block; two hashers of different keys
 * used in turn keep to their own key. */
TEST(chain_hash_is_hmac_sha256_of_the_canonical_bytes) {
    unsigned char k32[32], k100[100], k5[5] = {9, 8, 7, 6, 5};
    for (int i = 0; i < 100; i++) k100[i] = (unsigned char)(i * 7 + 1);
    memcpy(k32, k100 + 3, 32);
    const unsigned char *keys[] = {k32, k100, k5};
    const int lens[] = {32, 100, 5};
    cairn_chain *chains[3];
    for (int k = 0; k < 3; k++) chains[k] = cairn_chain_new(keys[k], lens[k]);
    unsigned char prev[CAIRN_HASH_LEN], want[CAIRN_HASH_LEN];
    memset(prev, 0xa5, sizeof prev);
    cairn_buf data = CAIRN_BUF_INIT;
    for (int size = 0; size < 300; size++) {
        cairn_buf_reset(&data);
        cairn_buf_puts(&data, "{\"k\":\"");
        for (int i = 0; i < size; i++) cairn_buf_putc(&data, (char)('a' + i % 26));
        cairn_buf_puts(&data, "\"}");
        cairn_event *ev = fx_event("01k98kut7r05rn4h", 1 + size, CAIRN_EV_STEP_STARTED, data.data);
        ev->time_ms = size % 3 == 0 ? -1796660491516LL + size : 1796660491516LL + size;
        ev->attempt = size % 4 == 1 ? -size : size;
        if (size % 5 == 2) {
            free(ev->step);
            ev->step = NULL;
        }
        if (size % 7 == 3) {
            free(ev->data);
            ev->data = NULL;
            ev->data_len = 0;
        }
        for (int k = 0; k < 3; k++) {
            const unsigned char *p = size % 2 ? prev : NULL;
            cairn_chain_hash(chains[k], p, ev);
            reference_hash(keys[k], lens[k], p, ev, want);
            if (memcmp(ev->hash, want, sizeof want) != 0)
                TEST_FAIL("key %d, %d bytes of data: not the HMAC of the canonical bytes", k, size);
        }
        memcpy(prev, ev->hash, sizeof prev);
        cairn_event_clear(ev);
        free(ev);
    }
    cairn_buf_free(&data);
    for (int k = 0; k < 3; k++) cairn_chain_free(chains[k]);
}

TEST(journal_key_file_is_created_private_and_reused) {
    char *db = path_in_tmp("j.db");
    unsigned char k1[32], k2[32];
    cairn_err err;
    unsetenv("CAIRN_JOURNAL_KEY");
    CHECK_INT(cairn_journal_key(db, true, k1, &err), 0);
    CHECK_INT(cairn_journal_key(db, false, k2, &err), 0);
    CHECK(memcmp(k1, k2, 32) == 0);
    char *kp = cairn_sprintf("%s.key", db);
    struct stat sb;
    CHECK_INT(stat(kp, &sb), 0);
    CHECK_INT(sb.st_mode & 0777, 0600);
    chmod(kp, 0644);
    CHECK_INT(cairn_journal_key(db, false, k2, &err), CAIRN_EAUTH);
    free(kp); free(db);
}
