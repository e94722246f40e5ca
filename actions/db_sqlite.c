/*
 * db_sqlite.c - the `db` action's SQLite driver.
 *
 * Each run opens the file read-write on a connection of its own (never
 * creating it: a missing file is a "connect" failure, since a typo in a
 * path must not quietly make an empty database), prepares exactly one
 * statement, binds the parameters by position, steps it to its end and
 * closes.  A fresh connection makes sqlite3_changes() count this statement
 * only.
 *
 * Stopping: a progress handler, called every CAIRN_DB_SQLITE_PROGRESS_OPS
 * virtual machine steps, interrupts the statement once the deadline passes
 * or a stop is asked; a busy handler waits for a locked file in slices of at
 * most CAIRN_DB_POLL_SLICE_MS, for CAIRN_DB_SQLITE_BUSY_MS at most, checking
 * the same conditions, so a lock held elsewhere cannot outlast the deadline.
 *
 * SQLite values map by their storage class: INTEGER -> DB_INT, REAL ->
 * DB_REAL, TEXT -> DB_TEXT, BLOB -> base64, NULL -> null.  Booleans bind as
 * 1 and 0; integral numbers as 64-bit integers, other numbers as doubles.
 */
#include "actions/db_int.h"
#include "common/mem.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define DB_INT64_LIMIT 9223372036854775808.0    /* 2^63 */

typedef struct lite {
    db_job *j;
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t busy_until;                /* CLOCK_MONOTONIC ms */
} lite;

/* ---- stop hooks --------------------------------------------------------- */

static bool must_stop(const db_job *j) {
    return cairn_stop_requested(j->stop) || (j->deadline_ms && cairn_now_ms() >= j->deadline_ms);
}

static int progress(void *arg) { return must_stop(((lite *)arg)->j); }

/* Wait a little and try again (nonzero), or give up (0): SQLITE_BUSY. */
static int busy(void *arg, int count) {
    lite *l = arg;
    (void)count;
    int64_t now = cairn_now_ms();
    if (must_stop(l->j) || now >= l->busy_until) return 0;
    int64_t ms = cairn__db_wait_ms(l->j), left = l->busy_until - now;
    if (ms > left) ms = left;
    if (ms > 10) ms = 10;              /* short naps: a lock is often brief */
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
    return 1;
}

/* ---- errors ------------------------------------------------------------- */

/* The failure for SQLite result rc, `doing` naming the step. */
static void lite_fail(lite *l, int rc, const char *doing) {
    int prim = rc & 0xff;
    if (prim == SQLITE_INTERRUPT &&
        cairn__db_check_stop(l->j, "while the statement ran: interrupted") != 0)
        return;                        /* our own hooks stopped it */
    if (prim == SQLITE_BUSY && cairn__db_check_stop(l->j, "while waiting for a lock on the file") != 0)
        return;
    const char *msg = l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc);
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
        cairn__db_fail(l->j, "busy", "sqlite: %s: %s (waited %d ms)", doing, msg,
                       CAIRN_DB_SQLITE_BUSY_MS);
    else if (prim == SQLITE_NOTADB || prim == SQLITE_CANTOPEN)
        cairn__db_fail(l->j, "connect", "sqlite: %s '%s': %s", doing, l->j->dsn, msg);
    else if (prim == SQLITE_ERROR)     /* its name, "SQL logic error", adds nothing */
        cairn__db_fail(l->j, "sql", "sqlite: %s: %s", doing, msg);
    else
        cairn__db_fail(l->j, "sql", "sqlite: %s: %s (%s)", doing, msg, sqlite3_errstr(rc));
}

/* ---- open, prepare, bind ------------------------------------------------ */

/* SQLite reads the file lazily, so "SELECT 1" would succeed on any file:
 * read the header now, so a file that is not a database fails here. */
static int lite_check_file(lite *l) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(l->db, "PRAGMA schema_version", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) return 0;
    lite_fail(l, rc, "cannot open");
    return -1;
}

static int lite_open(lite *l) {
    struct stat sb;
    if (stat(l->j->dsn, &sb) != 0)
        return cairn__db_fail(l->j, "connect", "sqlite: cannot open '%s': %s (the file is never created)",
                              l->j->dsn, strerror(errno));
    int rc = sqlite3_open_v2(l->j->dsn, &l->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        lite_fail(l, rc, "cannot open");
        return -1;
    }
    sqlite3_extended_result_codes(l->db, 1);
    sqlite3_progress_handler(l->db, CAIRN_DB_SQLITE_PROGRESS_OPS, progress, l);
    l->busy_until = cairn_now_ms() + CAIRN_DB_SQLITE_BUSY_MS;
    sqlite3_busy_handler(l->db, busy, l);
    return lite_check_file(l);
}

/* Prepare the one statement; a second one after it is refused. */
static int lite_prepare(lite *l) {
    const char *tail = NULL;
    sqlite3_stmt *extra = NULL;
    int rc = sqlite3_prepare_v3(l->db, l->j->query, -1, 0, &l->st, &tail);
    if (rc != SQLITE_OK) {
        lite_fail(l, rc, "cannot prepare the query");
        return -1;
    }
    if (l->st == NULL)
        return cairn__db_fail(l->j, "sql", "sqlite: the query holds no statement");
    rc = sqlite3_prepare_v3(l->db, tail, -1, 0, &extra, NULL);
    sqlite3_finalize(extra);
    if (rc != SQLITE_OK || extra != NULL)
        return cairn__db_fail(l->j, "sql", "sqlite: the query holds more than one statement");
    return 0;
}

static int bind_one(sqlite3_stmt *st, int i, const db_param *p) {
    switch (p->type) {
    case DB_PARAM_NULL: return sqlite3_bind_null(st, i);
    case DB_PARAM_BOOL: return sqlite3_bind_int(st, i, p->b);
    case DB_PARAM_NUMBER:
        if (p->d == floor(p->d) && p->d >= -DB_INT64_LIMIT && p->d < DB_INT64_LIMIT)
            return sqlite3_bind_int64(st, i, (sqlite3_int64)p->d);
        return sqlite3_bind_double(st, i, p->d);
    case DB_PARAM_TEXT:
        return sqlite3_bind_text64(st, i, p->text, p->len, SQLITE_STATIC, SQLITE_UTF8);
    }
    return SQLITE_MISUSE;
}

static int lite_bind(lite *l) {
    int want = sqlite3_bind_parameter_count(l->st);
    if (want != l->j->nparams)
        return cairn__db_fail(l->j, "sql", "sqlite: the query takes %d parameter%s but params holds %d",
                              want, want == 1 ? "" : "s", l->j->nparams);
    for (int i = 0; i < l->j->nparams; i++) {
        int rc = bind_one(l->st, i + 1, &l->j->params[i]);
        if (rc != SQLITE_OK) {
            lite_fail(l, rc, "cannot bind a parameter");
            return -1;
        }
    }
    return 0;
}

/* ---- rows --------------------------------------------------------------- */

static void set_columns(lite *l) {
    int n = sqlite3_column_count(l->st);
    const char **names = cairn_calloc((size_t)n + 1, sizeof *names);
    for (int c = 0; c < n; c++) names[c] = sqlite3_column_name(l->st, c);
    cairn__db_set_columns(l->j, n, names);
    free(names);
}

/* Copy n bytes of text; a value past the byte cap keeps its size only. */
static void text_value(db_value *v, const unsigned char *s, size_t n) {
    v->type = DB_TEXT;
    v->len = n;
    if (n <= CAIRN_DB_OUTPUT_MAX) v->s = cairn_strndup(s ? (const char *)s : "", n);
}

static void read_value(sqlite3_stmt *st, int c, db_value *v) {
    memset(v, 0, sizeof *v);
    switch (sqlite3_column_type(st, c)) {
    case SQLITE_INTEGER: v->type = DB_INT; v->i = sqlite3_column_int64(st, c); break;
    case SQLITE_FLOAT: v->type = DB_REAL; v->d = sqlite3_column_double(st, c); break;
    case SQLITE_TEXT: {
        const unsigned char *s = sqlite3_column_text(st, c);
        text_value(v, s, (size_t)sqlite3_column_bytes(st, c));
        break;
    }
    case SQLITE_BLOB: {
        const void *b = sqlite3_column_blob(st, c);
        cairn__db_blob(v, b ? b : "", (size_t)sqlite3_column_bytes(st, c));
        break;
    }
    default: v->type = DB_NULL; break;
    }
}

static void read_row(lite *l) {
    int n = l->j->ncols;
    db_value *row = cairn_calloc((size_t)n + 1, sizeof *row);
    for (int c = 0; c < n; c++) read_value(l->st, c, &row[c]);
    cairn__db_keep_row(l->j, row);
    free(row);
}

static int lite_step_all(lite *l) {
    int rc;
    set_columns(l);
    while ((rc = sqlite3_step(l->st)) == SQLITE_ROW)
        if (cairn__db_want_row(l->j)) read_row(l);
    if (rc != SQLITE_DONE) {
        lite_fail(l, rc, "the query failed");
        return -1;
    }
    /* Rows returned when there are columns (a query, or RETURNING: the
     * same count as the rows changed), else the rows changed. */
    l->j->row_count = l->j->ncols > 0 ? l->j->rows_seen : sqlite3_changes64(l->db);
    return 0;
}

void cairn__db_sqlite_run(db_job *j) {
    lite l = {j, NULL, NULL, 0};
    if (lite_open(&l) == 0 && lite_prepare(&l) == 0 && lite_bind(&l) == 0) lite_step_all(&l);
    sqlite3_finalize(l.st);
    sqlite3_close_v2(l.db);
}
