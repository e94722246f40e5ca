/*
 * store_pg_int.h - what store_pg.c and store_pg_ops.c share: the
 * connection and the helpers over libpq.  Private to the store's own files.
 */
#ifndef CAIRN_STORE_PG_INT_H
#define CAIRN_STORE_PG_INT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/strmap.h"
#include "engine/store_pg.h"

typedef struct {
    cairn_store base;
    PGconn *conn;
    char *name;                 /* the database as errors name it (cairn_pg_name) */
    char *owner;                /* recorded on the runs this connection creates */
    bool in_batch;              /* between batch_begin and batch_end */
    bool listening;             /* LISTEN CAIRN_PG_CHANNEL */
    cairn_sync_mode sync;       /* NORMAL: synchronous_commit off */
    bool prepared;              /* the hot statements (store_pg.c), this session */
    int64_t changes;            /* notifications seen (data_version) */
    cairn_strmap *last_seq;     /* run id -> seq of its last event, for runs in flight */
    bool hears_placed;          /* LISTEN CAIRN_PG_PLACED_CHANNEL (a lease's connection) */
    cairn_strmap *placed;       /* run id -> index in placed_on: runs the next append */
    char **placed_on;           /*   creates for another engine (cairn_pg_place) */
    int n_placed, cap_placed;
    cairn_pg_bound bound;       /* when a connection being made gives up */
} pg_store;

/* runs.epoch of a run placed on an engine that has not taken it yet: its
 * claim (cairn_pg_take_placed) makes it 0. */
#define PG_EPOCH_PLACED "-1"

/* The engine a run created by the next append is placed on, or NULL
 * (store_pg_lease.c); the placements forgotten (pg_close). */
const char *pg_placed_on(pg_store *s, const char *run_id);
void pg_place_free(pg_store *s);

/* 0 when the connection is up, after making it again if it broke. */
int pg_ready(pg_store *s, cairn_err *err);

/* Run sql with n text parameters (NULL: SQL NULL); the result when it
 * succeeded (the caller PQclears it), else NULL with err set (CAIRN_EIO,
 * naming the database and what was being done). */
PGresult *pg_query(pg_store *s, const char *sql, int n, const char *const *vals, const char *what,
                   cairn_err *err);
/* pg_query for a statement with no rows to keep: 0 or CAIRN_EIO. */
int pg_exec(pg_store *s, const char *sql, int n, const char *const *vals, const char *what,
            cairn_err *err);
/* err from res (or the connection, res NULL): CAIRN_EIO. */
int pg_error(pg_store *s, const PGresult *res, const char *what, cairn_err *err);
char *pg_text(const PGresult *res, int row, int col);   /* a copy, or NULL for SQL NULL */
int64_t pg_int(const PGresult *res, int row, int col);
/* A bytea column (hex output) into *len bytes, the caller's. */
char *pg_bytes(const PGresult *res, int row, int col, size_t *len);
/* n bytes as bytea's hex input ("\\x..."), the caller's. */
char *pg_hex_bytea(const void *p, size_t n);
/* PostgreSQL's array input for texts v[0..n) ({"a","b"}) and numbers, the
 * caller's. */
char *pg_text_array(const char *const *v, int n);
char *pg_int_array(const int64_t *v, int n);
/* The holds' run ids and epochs as arrays (all, or those not refused),
 * the caller's, and how many. */
void pg_hold_arrays(const cairn_pg_hold *holds, int n, bool all, char **ids, char **epochs,
                    int *count);
/* The database's clock, Unix ms: what leases are measured by. */
#define PG_NOW_MS "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
/* Decimal text of v into buf (at least 24 bytes); returns buf. */
const char *pg_num(char *buf, int64_t v);

/* A claim of run_id for owner (store_pg_lease.c): alive decides whether
 * another holder lives, or (NULL) its lease; *epoch (may be NULL) receives
 * the run's epoch afterwards. */
int pg_claim_one(pg_store *s, const char *run_id, const char *owner,
                 bool (*alive)(const char *owner), int64_t *epoch, cairn_err *err);

/* The store ops of store_pg_ops.c. */
int pg_claim_run(cairn_store *base, const char *run_id, const char *owner,
                 bool (*alive)(const char *owner), cairn_err *err);
int pg_batch_begin(cairn_store *base, cairn_err *err);
int pg_batch_end(cairn_store *base, cairn_err *err);
int pg_release_runs(cairn_store *base, const char *owner, cairn_err *err);
int pg_add_command(cairn_store *base, const char *run_id, const char *type, const char *data,
                   cairn_err *err);
int pg_delete_command(cairn_store *base, int64_t id, cairn_err *err);
int pg_list_commands(cairn_store *base, const char *owner, cairn_command **out, int *n,
                     cairn_err *err);
int pg_run_commands(cairn_store *base, const char *run_id, cairn_command **out, int *n,
                    cairn_err *err);
int pg_get_request(cairn_store *base, const char *key, char run_id[CAIRN_RUN_ID_MAX],
                   char request[65], cairn_err *err);
int pg_put_request(cairn_store *base, const char *key, const char *request, const char *run_id,
                   cairn_err *err);
int pg_claim(cairn_store *base, const char *space, const char *key, const char *value,
             const char *replace, char **held, cairn_err *err);
int pg_get_claim(cairn_store *base, const char *space, const char *key, char **value,
                 cairn_err *err);
int pg_get_meta(cairn_store *base, const char *key, char **value, cairn_err *err);
int pg_put_meta(cairn_store *base, const char *key, const char *value, cairn_err *err);
int64_t pg_data_version(cairn_store *base);
int pg_run_ids(cairn_store *base, char ***ids, bool **in_runs, int *n, cairn_err *err);
int pg_dump(cairn_store *base, cairn_dump_kind kind, cairn_dump_cb cb, void *ud, cairn_err *err);
int pg_load(cairn_store *base, cairn_dump_kind kind, const cairn_dump_row *row, cairn_err *err);
/* store_pg_audit.c */
int pg_scan(cairn_store *base, const cairn_scan_cb *cb, cairn_err *err);

#endif
