/*
 * db_int.h - what the `db` action (db.c) shares with its two drivers,
 * db_sqlite.c and db_pg.c.  Private to those three files.
 *
 * db.c reads `with` into a db_job of plain C data (prepare), hands it to
 * the driver on a worker thread (execute), and turns what the driver stored
 * into the output jv (finish).  A driver fills the result only through the
 * cairn__db_* functions below, which enforce the caps: at most job->max_rows rows
 * and CAIRN_DB_OUTPUT_MAX bytes are kept; later rows are still counted
 * (row_count), so a statement always runs to its end.
 *
 * Values are typed C data (db_value); no jv crosses to the worker thread.
 *
 * Memory: the job owns everything reachable from it (every string, the
 * parameters, the columns and kept cells); cairn__db_job_free releases it all.
 * Functions taking a `char *owned` take ownership of it.
 */
#ifndef CAIRN_DB_INT_H
#define CAIRN_DB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actions/action.h"

/* ---- limits ------------------------------------------------------------- */

#define CAIRN_DB_MAX_ROWS 10000                 /* default and cap of `max_rows` */
#define CAIRN_DB_OUTPUT_MAX (4 * 1024 * 1024)   /* bytes of rows kept (JSON-ish size) */
#define CAIRN_DB_MAX_PARAMS 1000                /* entries of `params` */
#define CAIRN_DB_CONNECT_TIMEOUT_MS 30000       /* connecting to PostgreSQL, at most */
#define CAIRN_DB_SQLITE_BUSY_MS 10000           /* waiting for a locked SQLite file */
#define CAIRN_DB_POLL_SLICE_MS 50               /* longest wait between stop checks */
#define CAIRN_DB_CANCEL_WAIT_MS 1000            /* for the server to end a cancelled query */
#define CAIRN_DB_SQLITE_PROGRESS_OPS 1000       /* VM steps between SQLite stop checks */

/* ---- values ------------------------------------------------------------- */

typedef enum {
    DB_NULL,
    DB_BOOL,                           /* b */
    DB_INT,                            /* i: a number when a double holds it exactly */
    DB_REAL,                           /* d: a number; NaN and infinities as strings */
    DB_NUMERIC,                        /* s: decimal text; a number when it round-trips */
    DB_TEXT,                           /* s, len: a string */
    DB_JSON,                           /* s, len: JSON text, parsed (a string if invalid) */
    DB_BLOB                            /* s, len: already base64 text */
} db_type;

typedef struct db_value {
    db_type type;
    bool b;
    int64_t i;
    double d;
    char *s;                           /* owned; NUL-terminated; may hold NULs inside */
    size_t len;
} db_value;

/* A parameter, from one `params` entry.  text is the form PostgreSQL gets
 * (NULL for null); SQLite binds by type. */
typedef enum { DB_PARAM_NULL, DB_PARAM_BOOL, DB_PARAM_NUMBER, DB_PARAM_TEXT } db_param_type;

typedef struct db_param {
    db_param_type type;
    bool b;
    double d;
    char *text;                        /* owned; NUL-terminated; len bytes */
    size_t len;
} db_param;

/* ---- the job ------------------------------------------------------------ */

typedef enum { DB_DRIVER_SQLITE, DB_DRIVER_POSTGRES } db_driver;

typedef struct db_job {
    /* from `with` */
    db_driver driver;
    char *dsn, *query;
    db_param *params;
    int nparams;
    int64_t timeout_ms;                /* 0: none */
    int max_rows;

    /* set by execute before the driver runs */
    int64_t deadline_ms;               /* the sooner of the step's and `timeout`; 0: none */
    bool deadline_is_timeout;          /* deadline_ms comes from `timeout` */
    const cairn_stop *stop;

    /* the result */
    char **columns;
    int ncols;
    db_value *cells;                   /* kept_rows * ncols */
    size_t cap_cells;
    int64_t kept_rows;
    int64_t rows_seen;                 /* rows the statement returned, kept or not */
    int64_t row_count;                 /* what the output reports */
    size_t kept_bytes;
    bool rows_truncated;
    bool failed;
    cairn_fail fail;
} db_job;

void cairn__db_job_free(db_job *j);          /* NULL is allowed */

/* ---- for the drivers ---------------------------------------------------- */

/* 0 while the job may go on; else -1 with the failure set: "cancelled" when
 * a stop was asked, "timeout" when the deadline passed; `doing` ends the
 * message ("while connecting"). */
int cairn__db_check_stop(db_job *j, const char *doing);

/* Milliseconds to wait at most before the next stop check (0..slice). */
int cairn__db_wait_ms(const db_job *j);

/* Fail the job (kind, printf-style message); returns -1. */
int cairn__db_fail(db_job *j, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record the result's columns (names copied); call once, before any row. */
void cairn__db_set_columns(db_job *j, int ncols, const char *const *names);

/* Count a row; true when the driver should build its values and hand them
 * to cairn__db_keep_row, false when the row is past a cap (already recorded). */
bool cairn__db_want_row(db_job *j);

/* Keep the row's ncols values (taken over, the array itself borrowed), or
 * drop them and mark the result truncated when they would pass the byte cap. */
void cairn__db_keep_row(db_job *j, db_value *row);

/* value as base64 text in v (type DB_BLOB). */
void cairn__db_blob(db_value *v, const void *data, size_t len);

/* The drivers: run job->query once; on failure set the job's fail. */
void cairn__db_sqlite_run(db_job *j);
void cairn__db_pg_run(db_job *j);

#endif
