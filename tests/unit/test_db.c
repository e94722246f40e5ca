/*
 * The `db` action against real databases: SQLite files in the test's
 * directory, and a PostgreSQL server on 127.0.0.1 started by
 * tests/servers/pg.sh.
 *
 * Starting PostgreSQL costs over a second, so the tests of one run of the
 * unit runner share one server: the first test that needs it starts it in
 * /tmp/cairn-unit-pg-<runner pid> (under a lock), later ones read its port
 * there, and pg.sh's watchdog stops it and removes the folder once the
 * runner has exited.  Each test uses tables of its own.
 *
 * Waiting is done by polling a real condition with a deadline (a query
 * showing up in pg_stat_activity, an SQLite write lock being held), never
 * by sleeping a fixed time.
 */
#include "test.h"
#include "actions/action.h"
#include "actions/db_int.h"
#include "common/clock.h"
#include "common/mem.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <jv.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern const cairn_action cairn_action_db;

#define PROMPT_MS 2000                 /* "promptly": well under the 10 s sleeps below */

/* ---- driving the action ------------------------------------------------- */

typedef struct attempt {
    cairn_stop stop;
    cairn_attempt_info info;
} attempt;

static void attempt_init(attempt *a, int64_t deadline_ms) {
    memset(a, 0, sizeof *a);
    a->info = (cairn_attempt_info){
        .run_id = "run-1", .step_id = "query", .idempotency_key = "run-1/query",
        .attempt = 1, .deadline_ms = deadline_ms, .stop = &a->stop, .env = NULL,
    };
}

/* {driver, dsn, query} merged into extra (JSON text with ', or NULL). */
static jv with_q(const char *driver, const char *dsn, const char *query, const char *extra) {
    jv w = extra ? test_json(extra) : jv_object();
    w = jv_object_set(w, jv_string("driver"), jv_string(driver));
    w = jv_object_set(w, jv_string("dsn"), jv_string(dsn));
    return jv_object_set(w, jv_string("query"), jv_string(query));
}

/* prepare + execute + finish; 1 when prepare refused (f set). */
static int db_run(jv with, const cairn_attempt_info *info, jv *out, cairn_fail *f) {
    void *job = NULL;
    int rc = cairn_action_db.prepare(with, info, &job, f);
    jv_free(with);
    if (rc != 0) return 1;
    cairn_action_db.execute(job, info);
    return cairn_action_db.finish(job, out, f);
}

static jv db_ok(jv with) {
    attempt a;
    attempt_init(&a, 0);
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    if (db_run(with, &a.info, &out, &f) != 0) TEST_FAIL("db failed: %s: %s", f.kind, f.message);
    return out;
}

/* Expect a failure of kind, with needle in its message. */
static void db_fails(jv with, const char *kind, const char *needle) {
    attempt a;
    attempt_init(&a, 0);
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    if (db_run(with, &a.info, &out, &f) == 0) TEST_FAIL("db succeeded; wanted %s", kind);
    CHECK_STR(f.kind, kind);
    CHECK_CONTAINS(f.message, needle);
}

static jv get(jv out, const char *key) { return jv_object_get(jv_copy(out), jv_string(key)); }

static double get_num(jv out, const char *key) {
    jv v = get(out, key);
    if (jv_get_kind(v) != JV_KIND_NUMBER) TEST_FAIL("output.%s is not a number", key);
    double d = jv_number_value(v);
    jv_free(v);
    return d;
}

static int get_bool(jv out, const char *key) {
    jv v = get(out, key);
    jv_kind k = jv_get_kind(v);
    jv_free(v);
    if (k != JV_KIND_TRUE && k != JV_KIND_FALSE) TEST_FAIL("output.%s is not a boolean", key);
    return k == JV_KIND_TRUE;
}

/* out[key] must equal the JSON want (with '). */
static void check_json(jv out, const char *key, const char *want) {
    jv got = get(out, key), w = test_json(want);
    if (!jv_equal(jv_copy(got), jv_copy(w))) {
        jv g = jv_dump_string(jv_copy(got), JV_PRINT_SORTED), e = jv_dump_string(w, JV_PRINT_SORTED);
        TEST_FAIL("output.%s:\n    got:  %s\n    want: %s", key, jv_string_value(g),
                  jv_string_value(e));
    }
    jv_free(got);
    jv_free(w);
}

typedef struct exec_arg {
    void *job;
    attempt *a;
} exec_arg;

static void *exec_thread(void *arg) {
    exec_arg *e = arg;
    cairn_action_db.execute(e->job, &e->a->info);
    return NULL;
}

static void nap_ms(long ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- SQLite fixtures ---------------------------------------------------- */

/* A database file in the test's directory, with sql run in it. */
static char *lite_file(const char *name, const char *sql) {
    char *path = malloc(512);
    snprintf(path, 512, "%s/%s", test_tmpdir(), name);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) TEST_FAIL("setup: %s", err);
    sqlite3_close(db);
    return path;
}

static long long lite_scalar(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    CHECK_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* ---- the shared PostgreSQL server --------------------------------------- */

static int pg_port(void) {
    char base[64], path[96];
    int port = 0;
    snprintf(base, sizeof base, "/tmp/cairn-unit-pg-%d", (int)getppid());
    mkdir(base, 0700);
    snprintf(path, sizeof path, "%s/lock", base);
    int fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    CHECK_INT(flock(fd, LOCK_EX), 0);
    snprintf(path, sizeof path, "%s/port", base);
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        char cmd[200];
        snprintf(cmd, sizeof cmd, "sh tests/servers/pg.sh start %s %d", base, (int)getppid());
        fp = popen(cmd, "r");
        CHECK(fp != NULL);
        if (fscanf(fp, "%d", &port) != 1) port = 0;
        CHECK_INT(pclose(fp), 0);
    } else {
        if (fscanf(fp, "%d", &port) != 1) port = 0;
        fclose(fp);
    }
    close(fd);
    if (port <= 0) TEST_FAIL("no PostgreSQL server (tests/servers/pg.sh)");
    return port;
}

static char *pg_dsn(void) {
    return cairn_sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres", pg_port());
}

static void pg_quiet(void *arg, const char *message) {
    (void)arg;
    (void)message;
}

static PGconn *pg_admin(const char *dsn) {
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK) TEST_FAIL("admin connection: %s", PQerrorMessage(c));
    PQsetNoticeProcessor(c, pg_quiet, NULL);
    return c;
}

static void pg_exec(PGconn *c, const char *sql) {
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        TEST_FAIL("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

static long long pg_scalar(PGconn *c, const char *sql) {
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        TEST_FAIL("%s: %s", sql, PQresultErrorMessage(r));
    long long v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

/* Queries holding marker that are running on the server (not ours). */
static long long pg_active(PGconn *c, const char *marker) {
    char *sql = cairn_sprintf("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                              "AND pid <> pg_backend_pid() AND strpos(query, '%s') > 0", marker);
    long long n = pg_scalar(c, sql);
    free(sql);
    return n;
}

/* Poll until pg_active(marker) == want, for at most ms; returns the last count. */
static long long pg_wait_active(PGconn *c, const char *marker, long long want, int64_t ms) {
    int64_t until = cairn_now_ms() + ms;
    long long n;
    while ((n = pg_active(c, marker)) != want && cairn_now_ms() < until) nap_ms(5);
    return n;
}

/* ---- with: checked in prepare ------------------------------------------- */

static void bad_with(jv with, const char *needle) {
    attempt a;
    attempt_init(&a, 0);
    void *job = NULL;
    cairn_fail f = {{0}, {0}};
    int rc = cairn_action_db.prepare(with, &a.info, &job, &f);
    jv_free(with);
    if (rc == 0) {
        cairn_action_db.discard(job);
        TEST_FAIL("prepare accepted a bad with (wanted \"%s\")", needle);
    }
    CHECK_STR(f.kind, "schema");
    CHECK_CONTAINS(f.message, needle);
}

TEST(db_with_is_checked) {
    bad_with(test_json("{'driver': 'sqlite', 'dsn': 'x'}"), "query is required");
    bad_with(with_q("mysql", "x", "SELECT 1", NULL), "driver must be");
    bad_with(with_q("sqlite", "x", "SELECT 1", "{'params': {'a': 1}}"), "params must be a list");
    bad_with(with_q("sqlite", "x", "SELECT 1", "{'max_rows': 10001}"), "max_rows");
    bad_with(with_q("sqlite", "x", "SELECT 1", "{'max_rows': 1.5}"), "max_rows");
    bad_with(with_q("sqlite", "x", "SELECT 1", "{'timeout': 'soon'}"), "timeout");
    bad_with(with_q("sqlite", "x", "SELECT 1", "{'querry': 'x'}"), "unknown field 'querry'");
    bad_with(with_q("sqlite", "", "SELECT 1", NULL), "dsn must be a non-empty");
    bad_with(with_q("postgres", "x", "SELECT $1", "{'params': ['a\\u0000b']}"), "NUL");
    void *job = NULL;                  /* a NUL is fine in an SQLite parameter */
    attempt a;
    attempt_init(&a, 0);
    cairn_fail f = {{0}, {0}};
    jv w = with_q("sqlite", "x", "SELECT ?", "{'params': ['a\\u0000b']}");
    CHECK_INT(cairn_action_db.prepare(w, &a.info, &job, &f), 0);
    cairn_action_db.discard(job);
    jv_free(w);
}

/* ---- SQLite ------------------------------------------------------------- */

TEST(db_sqlite_params_of_every_type_and_typed_values) {
    char *path = lite_file("t.db", "CREATE TABLE t(x);");
    jv out = db_ok(with_q("sqlite", path,
                          "SELECT ? AS s, ? AS i, ? AS f, ? AS b, ? AS n, ? AS o, ? AS a, "
                          "typeof(?) AS ti, typeof(?) AS tf",
                          "{'params': ['h\\u00e9', 42, 1.5, true, null, {'k': [1, 2]}, [3], 7, 7.25]}"));
    check_json(out, "rows", "[{'s': 'h\\u00e9', 'i': 42, 'f': 1.5, 'b': 1, 'n': null, "
                            "'o': '{\\'k\\':[1,2]}', 'a': '[3]', 'ti': 'integer', 'tf': 'real'}]");
    check_json(out, "columns", "['s', 'i', 'f', 'b', 'n', 'o', 'a', 'ti', 'tf']");
    CHECK_INT(get_num(out, "row_count"), 1);
    CHECK_INT(get_bool(out, "rows_truncated"), 0);
    jv_free(out);
    out = db_ok(with_q("sqlite", path,
                       "SELECT x'00ff10' AS blob, 9007199254740993 AS big, -3 AS neg, "
                       "9e999 AS inf, 'two\nlines' AS txt", NULL));
    check_json(out, "rows", "[{'blob': 'AP8Q', 'big': '9007199254740993', 'neg': -3, "
                            "'inf': 'Infinity', 'txt': 'two\\nlines'}]");
    jv_free(out);
    free(path);
}

TEST(db_sqlite_row_count_for_changes_and_columns_in_order) {
    char *path = lite_file("t.db", "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);");
    jv out = db_ok(with_q("sqlite", path, "INSERT INTO t(v) VALUES (?), (?), (?)",
                          "{'params': ['a', 'b', 'c']}"));
    CHECK_INT(get_num(out, "row_count"), 3);
    check_json(out, "rows", "[]");
    check_json(out, "columns", "[]");
    jv_free(out);
    out = db_ok(with_q("sqlite", path, "UPDATE t SET v = upper(v) WHERE id >= ?", "{'params': [2]}"));
    CHECK_INT(get_num(out, "row_count"), 2);
    jv_free(out);
    out = db_ok(with_q("sqlite", path, "DELETE FROM t WHERE v = ? RETURNING id, v",
                       "{'params': ['C']}"));
    CHECK_INT(get_num(out, "row_count"), 1);
    check_json(out, "rows", "[{'id': 3, 'v': 'C'}]");
    jv_free(out);
    out = db_ok(with_q("sqlite", path, "SELECT v AS zeta, id AS alpha, 'k' AS mid FROM t ORDER BY id", NULL));
    check_json(out, "columns", "['zeta', 'alpha', 'mid']");
    check_json(out, "rows", "[{'zeta': 'a', 'alpha': 1, 'mid': 'k'}, {'zeta': 'B', 'alpha': 2, 'mid': 'k'}]");
    CHECK_INT(get_num(out, "row_count"), 2);
    jv_free(out);
    free(path);
}

TEST(db_sqlite_hostile_parameter_is_stored_verbatim) {
    char *path = lite_file("t.db", "CREATE TABLE t(v TEXT);");
    const char *evil = "x'); DROP TABLE t; --";
    jv w = with_q("sqlite", path, "INSERT INTO t(v) VALUES (?)", NULL);
    w = jv_object_set(w, jv_string("params"), jv_array_append(jv_array(), jv_string(evil)));
    jv out = db_ok(w);
    jv_free(out);
    out = db_ok(with_q("sqlite", path, "SELECT v FROM t", NULL));
    jv want = jv_array_append(jv_array(), jv_object_set(jv_object(), jv_string("v"), jv_string(evil)));
    jv rows = get(out, "rows");
    CHECK(jv_equal(rows, want));
    CHECK_INT(lite_scalar(path, "SELECT count(*) FROM sqlite_master WHERE name = 't'"), 1);
    jv_free(out);
    free(path);
}

TEST(db_sqlite_errors_have_kinds) {
    char *path = lite_file("t.db", "CREATE TABLE t(v);");
    db_fails(with_q("sqlite", path, "SELECT * FROM nope", NULL), "sql", "no such table: nope");
    db_fails(with_q("sqlite", path, "SELEKT 1", NULL), "sql", "syntax error");
    db_fails(with_q("sqlite", path, "SELECT 1; DROP TABLE t", NULL), "sql", "more than one statement");
    db_fails(with_q("sqlite", path, "SELECT ?, ?", "{'params': [1]}"), "sql",
             "takes 2 parameters but params holds 1");
    db_fails(with_q("sqlite", path, "INSERT INTO t VALUES (1) RETURNING nope", NULL), "sql", "nope");
    CHECK_INT(lite_scalar(path, "SELECT count(*) FROM sqlite_master WHERE name = 't'"), 1);
    char *missing = cairn_sprintf("%s/missing.db", test_tmpdir());
    db_fails(with_q("sqlite", missing, "SELECT 1", NULL), "connect", "No such file");
    CHECK(access(missing, F_OK) != 0);     /* never created */
    char *junk = cairn_sprintf("%s/junk.db", test_tmpdir());
    FILE *fp = fopen(junk, "w");
    fputs("this is not a database, just some text long enough to have a header..........\n", fp);
    fclose(fp);
    db_fails(with_q("sqlite", junk, "SELECT 1", NULL), "connect", "not a database");
    free(missing);
    free(junk);
    free(path);
}

TEST(db_sqlite_max_rows_and_output_cap_truncate) {
    char *path = lite_file("t.db", "CREATE TABLE t(v);");
    const char *series = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50) "
                         "SELECT x FROM c";
    jv out = db_ok(with_q("sqlite", path, series, "{'max_rows': 10}"));
    CHECK_INT(jv_array_length(get(out, "rows")), 10);
    CHECK_INT(get_num(out, "row_count"), 50);
    CHECK_INT(get_bool(out, "rows_truncated"), 1);
    CHECK_INT(get_num(out, "max_rows"), 10);
    check_json(out, "columns", "['x']");
    jv_free(out);
    out = db_ok(with_q("sqlite", path, series, NULL));
    CHECK_INT(jv_array_length(get(out, "rows")), 50);
    CHECK_INT(get_bool(out, "rows_truncated"), 0);
    CHECK_INT(get_num(out, "max_rows"), CAIRN_DB_MAX_ROWS);
    jv_free(out);
    /* 10 rows of 1 MB: only whole rows within CAIRN_DB_OUTPUT_MAX are kept. */
    out = db_ok(with_q("sqlite", path,
                       "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10) "
                       "SELECT x, zeroblob(750000) AS b FROM c", NULL));
    int kept = jv_array_length(get(out, "rows"));
    CHECK_INT(kept, CAIRN_DB_OUTPUT_MAX / 1000000);
    CHECK_INT(get_num(out, "row_count"), 10);
    CHECK_INT(get_bool(out, "rows_truncated"), 1);
    CHECK_INT(get_num(out, "output_cap_bytes"), CAIRN_DB_OUTPUT_MAX);
    jv_free(out);
    free(path);
}

TEST(db_sqlite_timeout_interrupts_a_long_statement) {
    char *path = lite_file("t.db", "CREATE TABLE t(v);");
    const char *forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                          "SELECT count(*) FROM c";
    int64_t t0 = cairn_now_ms();
    db_fails(with_q("sqlite", path, forever, "{'timeout': '200ms'}"), "timeout", "interrupted");
    int64_t took = cairn_now_ms() - t0;
    CHECK(took >= 200 && took < 200 + PROMPT_MS);
    /* The step's own deadline counts too, and one already past stops it at once. */
    attempt a;
    attempt_init(&a, cairn_now_ms() + 150);
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    t0 = cairn_now_ms();
    CHECK(db_run(with_q("sqlite", path, forever, "{'timeout': '1h'}"), &a.info, &out, &f) != 0);
    CHECK_STR(f.kind, "timeout");
    CHECK_CONTAINS(f.message, "step deadline reached");
    CHECK(cairn_now_ms() - t0 < 150 + PROMPT_MS);
    attempt_init(&a, cairn_now_ms() - 1);
    CHECK(db_run(with_q("sqlite", path, "SELECT 1", NULL), &a.info, &out, &f) != 0);
    CHECK_STR(f.kind, "timeout");
    CHECK_CONTAINS(f.message, "before the start");
    free(path);
}

/* Whether another connection holds the write lock on path. */
static int lite_write_locked(const char *path) {
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE; ROLLBACK;", NULL, NULL, NULL);
    sqlite3_close(db);
    return rc == SQLITE_BUSY;
}

TEST(db_sqlite_stop_cancels_and_rolls_back) {
    char *path = lite_file("t.db", "CREATE TABLE t(v);");
    attempt a;
    attempt_init(&a, 0);
    void *job = NULL;
    cairn_fail f = {{0}, {0}};
    /* A write that never ends: it holds the write lock while it runs. */
    jv w = with_q("sqlite", path, "INSERT INTO t SELECT count(*) FROM (WITH RECURSIVE c(x) AS "
                                  "(SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c)", NULL);
    CHECK_INT(cairn_action_db.prepare(w, &a.info, &job, &f), 0);
    jv_free(w);
    exec_arg e = {job, &a};
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, exec_thread, &e), 0);
    int64_t until = cairn_now_ms() + 5000;
    while (!lite_write_locked(path) && cairn_now_ms() < until) nap_ms(2);
    CHECK(lite_write_locked(path));
    int64_t asked = cairn_now_ms();
    atomic_store(&a.stop.requested, 1);
    CHECK_INT(pthread_join(t, NULL), 0);
    CHECK(cairn_now_ms() - asked < PROMPT_MS);
    jv out = jv_invalid();
    CHECK(cairn_action_db.finish(job, &out, &f) != 0);
    CHECK_STR(f.kind, "cancelled");
    CHECK_CONTAINS(f.message, "interrupted");
    CHECK(!lite_write_locked(path));
    CHECK_INT(lite_scalar(path, "SELECT count(*) FROM t"), 0);
    free(path);
}

TEST(db_sqlite_locked_file_waits_within_the_deadline) {
    char *path = lite_file("t.db", "CREATE TABLE t(v);");
    sqlite3 *holder = NULL;
    CHECK_INT(sqlite3_open(path, &holder), SQLITE_OK);
    CHECK_INT(sqlite3_exec(holder, "BEGIN EXCLUSIVE; INSERT INTO t VALUES (1);", NULL, NULL, NULL),
              SQLITE_OK);
    int64_t t0 = cairn_now_ms();
    db_fails(with_q("sqlite", path, "INSERT INTO t VALUES (2)", "{'timeout': '300ms'}"), "timeout",
             "timeout of 300 ms reached while waiting for a lock");
    int64_t took = cairn_now_ms() - t0;
    CHECK(took >= 300 && took < 300 + PROMPT_MS);
    CHECK_INT(sqlite3_exec(holder, "COMMIT;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(holder);
    jv out = db_ok(with_q("sqlite", path, "INSERT INTO t VALUES (2)", NULL));   /* free again */
    CHECK_INT(get_num(out, "row_count"), 1);
    jv_free(out);
    free(path);
}

/* ---- PostgreSQL --------------------------------------------------------- */

TEST(db_pg_params_of_every_type_and_typed_values) {
    char *dsn = pg_dsn();
    jv out = db_ok(with_q("postgres", dsn,
                          "SELECT $1::text AS s, $2::int AS i, $3::float8 AS f, $4::bool AS b, "
                          "$5::text AS n, $6::jsonb AS o, $7::json AS a, $8::numeric AS num, "
                          "$9 AS untyped, $10::bigint AS big",
                          "{'params': ['h\\u00e9', 42, 1.5, true, null, {'k': [1, 2]}, [3, 'x'], "
                          "12.25, 'plain', -5000000000]}"));
    check_json(out, "rows", "[{'s': 'h\\u00e9', 'i': 42, 'f': 1.5, 'b': true, 'n': null, "
                            "'o': {'k': [1, 2]}, 'a': [3, 'x'], 'num': 12.25, 'untyped': 'plain', "
                            "'big': -5000000000}]");
    CHECK_INT(get_num(out, "row_count"), 1);
    jv_free(out);
    out = db_ok(with_q("postgres", dsn,
                       "SELECT 7::int2 AS i2, 9007199254740993::int8 AS big, 2.5::float4 AS f4, "
                       "'NaN'::float8 AS nan, '-Infinity'::float8 AS ninf, 1.50::numeric AS n150, "
                       "0.1::numeric AS tenth, 123456789012345678901234.5::numeric AS huge, "
                       "'NaN'::numeric AS nnan, '\\x00ff10'::bytea AS bin, false AS f, "
                       "NULL::int AS nul, 'null'::jsonb AS jnull, '2024-01-02'::date AS d, "
                       "ARRAY[1, 2] AS arr, 26::oid AS o",
                       NULL));
    check_json(out, "rows", "[{'i2': 7, 'big': '9007199254740993', 'f4': 2.5, 'nan': 'NaN', "
                            "'ninf': '-Infinity', 'n150': 1.5, 'tenth': 0.1, "
                            "'huge': '123456789012345678901234.5', 'nnan': 'NaN', 'bin': 'AP8Q', "
                            "'f': false, 'nul': null, 'jnull': null, 'd': '2024-01-02', "
                            "'arr': '{1,2}', 'o': 26}]");
    jv_free(out);
    free(dsn);
}

TEST(db_pg_row_count_for_changes_and_columns_in_order) {
    char *dsn = pg_dsn();
    PGconn *c = pg_admin(dsn);
    pg_exec(c, "DROP TABLE IF EXISTS rc; CREATE TABLE rc(id serial PRIMARY KEY, v text)");
    jv out = db_ok(with_q("postgres", dsn, "INSERT INTO rc(v) VALUES ($1), ($2), ($3)",
                          "{'params': ['a', 'b', 'c']}"));
    CHECK_INT(get_num(out, "row_count"), 3);
    check_json(out, "rows", "[]");
    check_json(out, "columns", "[]");
    jv_free(out);
    out = db_ok(with_q("postgres", dsn, "UPDATE rc SET v = upper(v) WHERE id >= $1", "{'params': [2]}"));
    CHECK_INT(get_num(out, "row_count"), 2);
    jv_free(out);
    out = db_ok(with_q("postgres", dsn, "DELETE FROM rc WHERE v = $1 RETURNING id, v",
                       "{'params': ['C']}"));
    CHECK_INT(get_num(out, "row_count"), 1);
    check_json(out, "rows", "[{'id': 3, 'v': 'C'}]");
    jv_free(out);
    out = db_ok(with_q("postgres", dsn,
                       "SELECT v AS zeta, id AS alpha, 'k' AS mid FROM rc ORDER BY id", NULL));
    check_json(out, "columns", "['zeta', 'alpha', 'mid']");
    check_json(out, "rows", "[{'zeta': 'a', 'alpha': 1, 'mid': 'k'}, {'zeta': 'B', 'alpha': 2, 'mid': 'k'}]");
    CHECK_INT(get_num(out, "row_count"), 2);
    jv_free(out);
    out = db_ok(with_q("postgres", dsn, "SELECT 1 AS one WHERE false", NULL));
    check_json(out, "columns", "['one']");
    CHECK_INT(get_num(out, "row_count"), 0);
    jv_free(out);
    PQfinish(c);
    free(dsn);
}

TEST(db_pg_hostile_parameter_is_stored_verbatim) {
    char *dsn = pg_dsn();
    PGconn *c = pg_admin(dsn);
    pg_exec(c, "DROP TABLE IF EXISTS hostile; CREATE TABLE hostile(v text)");
    const char *evil = "x'); DROP TABLE hostile; --";
    jv w = with_q("postgres", dsn, "INSERT INTO hostile(v) VALUES ($1)", NULL);
    w = jv_object_set(w, jv_string("params"), jv_array_append(jv_array(), jv_string(evil)));
    jv_free(db_ok(w));
    jv out = db_ok(with_q("postgres", dsn, "SELECT v FROM hostile", NULL));
    jv want = jv_array_append(jv_array(), jv_object_set(jv_object(), jv_string("v"), jv_string(evil)));
    CHECK(jv_equal(get(out, "rows"), want));
    CHECK_INT(pg_scalar(c, "SELECT count(*) FROM pg_tables WHERE tablename = 'hostile'"), 1);
    jv_free(out);
    PQfinish(c);
    free(dsn);
}

TEST(db_pg_sql_errors_carry_sqlstate_and_message) {
    char *dsn = pg_dsn();
    db_fails(with_q("postgres", dsn, "SELECT * FROM no_such_table", NULL), "sql",
             "SQLSTATE 42P01: relation \"no_such_table\" does not exist");
    db_fails(with_q("postgres", dsn, "SELECT 1/0", NULL), "sql", "22012");
    db_fails(with_q("postgres", dsn, "SELECT 1; SELECT 2", NULL), "sql", "42601");
    db_fails(with_q("postgres", dsn, "SELECT $1::int", "{'params': ['seven']}"), "sql",
             "invalid input syntax for type integer");
    db_fails(with_q("postgres", dsn, "COPY (SELECT 1) TO STDOUT", NULL), "sql", "COPY is not supported");
    /* A failing statement after some rows: the error wins. */
    db_fails(with_q("postgres", dsn, "SELECT 10 / (3 - g) FROM generate_series(1, 5) g", NULL),
             "sql", "division by zero");
    free(dsn);
}

TEST(db_pg_connect_and_auth_failures) {
    int port = pg_port();
    db_fails(with_q("postgres", "host=127.0.0.1 port=abc", "SELECT 1", NULL), "connect", "abc");
    db_fails(with_q("postgres", "bogus_option=1", "SELECT 1", NULL), "connect", "bogus_option");
    db_fails(with_q("postgres", "postgresql://127.0.0.1:notaport/x", "SELECT 1", NULL), "connect",
             "port");
    /* A port bound but not listening refuses connections. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    CHECK_INT(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_INT(getsockname(s, (struct sockaddr *)&sa, &len), 0);
    char *dsn = cairn_sprintf("host=127.0.0.1 port=%d user=postgres", ntohs(sa.sin_port));
    db_fails(with_q("postgres", dsn, "SELECT 1", NULL), "connect", "refused");
    free(dsn);
    close(s);
    dsn = cairn_sprintf("postgresql://cairn:wrong@127.0.0.1:%d/postgres", port);
    db_fails(with_q("postgres", dsn, "SELECT 1", NULL), "auth", "password authentication failed");
    free(dsn);
    dsn = cairn_sprintf("host=127.0.0.1 port=%d user=cairn dbname=postgres", port);
    db_fails(with_q("postgres", dsn, "SELECT 1", NULL), "auth", "no password");
    free(dsn);
    dsn = cairn_sprintf("host=127.0.0.1 port=%d user=cairn password=cairn-pw dbname=postgres", port);
    jv out = db_ok(with_q("postgres", dsn, "SELECT current_user AS u", NULL));
    check_json(out, "rows", "[{'u': 'cairn'}]");
    jv_free(out);
    free(dsn);
    dsn = cairn_sprintf("host=127.0.0.1 port=%d user=postgres dbname=no_such_db", port);
    db_fails(with_q("postgres", dsn, "SELECT 1", NULL), "connect", "3D000");
    free(dsn);
}

TEST(db_pg_silent_server_times_out_while_connecting) {
    /* Listening, never accepting: TCP connects, then nothing ever answers. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    CHECK_INT(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_INT(listen(s, 4), 0);
    CHECK_INT(getsockname(s, (struct sockaddr *)&sa, &len), 0);
    char *dsn = cairn_sprintf("host=127.0.0.1 port=%d user=postgres", ntohs(sa.sin_port));
    int64_t t0 = cairn_now_ms();
    db_fails(with_q("postgres", dsn, "SELECT 1", "{'timeout': '300ms'}"), "timeout",
             "while connecting");
    int64_t took = cairn_now_ms() - t0;
    CHECK(took >= 300 && took < 300 + PROMPT_MS);
    free(dsn);
    close(s);
}

TEST(db_pg_timeout_cancels_the_query_on_the_server) {
    char *dsn = pg_dsn();
    PGconn *c = pg_admin(dsn);
    int64_t t0 = cairn_now_ms();
    db_fails(with_q("postgres", dsn, "SELECT pg_sleep(10) /* cairn-timeout-probe */",
                    "{'timeout': '300ms'}"), "timeout",
             "timeout of 300 ms reached while the query ran; a cancel was sent");
    int64_t took = cairn_now_ms() - t0;
    CHECK(took >= 300 && took < 300 + PROMPT_MS);
    CHECK_INT(pg_wait_active(c, "cairn-timeout-probe", 0, PROMPT_MS), 0);
    PQfinish(c);
    free(dsn);
}

TEST(db_pg_stop_cancels_the_query_on_the_server) {
    char *dsn = pg_dsn();
    PGconn *c = pg_admin(dsn);
    attempt a;
    attempt_init(&a, 0);
    void *job = NULL;
    cairn_fail f = {{0}, {0}};
    jv w = with_q("postgres", dsn, "SELECT pg_sleep(10) /* cairn-stop-probe */", NULL);
    CHECK_INT(cairn_action_db.prepare(w, &a.info, &job, &f), 0);
    jv_free(w);
    exec_arg e = {job, &a};
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, exec_thread, &e), 0);
    CHECK_INT(pg_wait_active(c, "cairn-stop-probe", 1, 5000), 1);
    int64_t asked = cairn_now_ms();
    atomic_store(&a.stop.requested, 1);
    CHECK_INT(pthread_join(t, NULL), 0);
    CHECK(cairn_now_ms() - asked < PROMPT_MS);
    jv out = jv_invalid();
    CHECK(cairn_action_db.finish(job, &out, &f) != 0);
    CHECK_STR(f.kind, "cancelled");
    CHECK_INT(pg_wait_active(c, "cairn-stop-probe", 0, PROMPT_MS), 0);
    PQfinish(c);
    free(dsn);
}

TEST(db_pg_max_rows_and_output_cap_truncate) {
    char *dsn = pg_dsn();
    jv out = db_ok(with_q("postgres", dsn, "SELECT g FROM generate_series(1, 50) g", "{'max_rows': 10}"));
    CHECK_INT(jv_array_length(get(out, "rows")), 10);
    check_json(out, "rows", "[{'g':1},{'g':2},{'g':3},{'g':4},{'g':5},{'g':6},{'g':7},{'g':8},"
                            "{'g':9},{'g':10}]");
    CHECK_INT(get_num(out, "row_count"), 50);
    CHECK_INT(get_bool(out, "rows_truncated"), 1);
    jv_free(out);
    out = db_ok(with_q("postgres", dsn, "SELECT g FROM generate_series(1, 50) g", "{'max_rows': 0}"));
    check_json(out, "rows", "[]");
    CHECK_INT(get_num(out, "row_count"), 50);
    jv_free(out);
    out = db_ok(with_q("postgres", dsn, "SELECT g, repeat('x', 1000000) AS pad "
                                        "FROM generate_series(1, 10) g", NULL));
    CHECK_INT(jv_array_length(get(out, "rows")), CAIRN_DB_OUTPUT_MAX / 1000000);
    CHECK_INT(get_num(out, "row_count"), 10);
    CHECK_INT(get_bool(out, "rows_truncated"), 1);
    jv_free(out);
    free(dsn);
}
