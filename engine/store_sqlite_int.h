/*
 * store_sqlite_int.h - what store_sqlite.c and its store_sqlite_*.c files share:
 * the connection, its prepared statements, and the entry points of the
 * event index and the claims.  Private to the store's own files.
 */
#ifndef CAIRN_STORE_SQLITE_INT_H
#define CAIRN_STORE_SQLITE_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/strmap.h"
#include "engine/store.h"

/* Events one INSERT statement writes, at most (a power of two: fewer go in
 * by the powers of two they add up to, a statement kept for each). */
#define CAIRN_INSERT_ROWS_LOG2 5
#define CAIRN_INSERT_ROWS (1 << CAIRN_INSERT_ROWS_LOG2)

#define CAIRN_SCHEMA_V1 1            /* events carried UNIQUE (run_id, seq); no event_index */

/* Statements every writing connection prepares at open (stmt_sql). */
enum {
    ST_INSERT_RUN, ST_UPDATE_RUN, ST_DELETE_COMMAND, ST_BEGIN, ST_COMMIT,
    ST_ROLLBACK, ST_DATA_VERSION, ST_GET_UPTO, ST_TAIL_ROWS, ST_INDEX_ROW, ST_SET_UPTO,
    ST_LAST_ROW, ST_TAIL_MAX, ST_RUN_ROW, ST_COUNT
};

typedef struct {
    cairn_store base;
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    sqlite3_stmt *insert_rows[CAIRN_INSERT_ROWS_LOG2 + 1];   /* 1 << k events each, kept */
    /* prepared on first use, kept: recovery runs them once per run */
    sqlite3_stmt *get_run, *claim, *claim_begin, *claim_end, *list_commands;
    sqlite3_stmt *load_rows, *load_one, *load_tail, *load_upto, *load_begin, *load_end;
    char *owner;
    char *path;
    int version;                /* of the schema: CAIRN_SCHEMA_VERSION once written */
    int64_t upto;               /* index_state.upto as this connection last saw it */
    int64_t data_version;       /* PRAGMA data_version after this connection's last append */
    int64_t last_event_id;      /* the newest event id this connection knows of */
    cairn_strmap *last_seq;     /* run id -> seq of its last event, for runs in flight */
    struct sq_tail *tail;       /* what it appended since it last indexed (store_sqlite_index.c) */
    int log_fd;                 /* CAIRN_SYNC_DEFERRED: the write-ahead log, for sync(); else -1 */
    bool in_batch;              /* between batch_begin and batch_end: appends are savepoints */
} sqlite_store;

/* Shared helpers (store_sqlite.c). */
int sq_db_error(sqlite_store *s, cairn_err *err, const char *what);   /* CAIRN_EIO, with SQLite's message */
sqlite3_stmt *sq_kept(sqlite_store *s, sqlite3_stmt **slot, const char *sql);   /* prepared once, reset */
int sq_step_done(sqlite3_stmt *st);                  /* step, reset, unbind: 0 or SQLite's code */
int64_t sq_step_int(sqlite3_stmt *st, int col, int *rc);   /* one row's integer; reset */
char *sq_col_text(sqlite3_stmt *st, int i);          /* a copy, or NULL */
/* A runs row as st selects its RUN_COLUMNS, the strings copied. */
#define RUN_COLUMNS "id, workflow, def_hash, parent_id, status, created_at, updated_at, owner"
void sq_fill_run(sqlite3_stmt *st, cairn_run_row *r);

/* Claims (store_sqlite_claim.c): the store ops of the same names. */
int sq_claim(cairn_store *base, const char *space, const char *key, const char *value,
             const char *replace, char **held, cairn_err *err);
int sq_get_claim(cairn_store *base, const char *space, const char *key, char **value,
                 cairn_err *err);

/* A copy of the journal (store_sqlite_dump.c): the store ops of the same names. */
int sq_run_ids(cairn_store *base, char ***ids, bool **in_runs, int *n, cairn_err *err);
int sq_dump(cairn_store *base, cairn_dump_kind kind, cairn_dump_cb cb, void *ud, cairn_err *err);
int sq_load(cairn_store *base, cairn_dump_kind kind, const cairn_dump_row *row, cairn_err *err);
/* Verify's one pass (store.h, scan; store_sqlite_scan.c). */
int sq_scan(cairn_store *base, const cairn_scan_cb *cb, cairn_err *err);

/* The event index (store_sqlite_index.c). */
int sq_index_tail(sqlite_store *s, int64_t through);   /* index upto < id <= through */
/* The event (run, seq) went in at id, in id order, in the transaction
 * under way; the index takes it from memory rather than reading it back
 * while this connection has noted every event since it last indexed. */
void sq_tail_note(sqlite_store *s, const char *run_id, int64_t seq, int64_t id);
void sq_tail_forget(sqlite_store *s);   /* what was noted may not be in the table: read it */
void sq_tail_free(sqlite_store *s);
int sq_catch_up(sqlite_store *s, cairn_err *err);      /* at open: index the whole tail */
int sq_forget_if_changed(sqlite_store *s);             /* another connection appended? */
int sq_next_seq(sqlite_store *s, const char *run_id, int64_t *next);
int sq_load_events(cairn_store *base, const char *run_id, cairn_event **out, int *n,
                   cairn_err *err);

#endif
