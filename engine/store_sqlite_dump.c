/*
 * store_sqlite_dump.c - the SQLite journal's rows for a copy of the journal
 * (store.h: run_ids, dump, load; journal.h, cairn_journal_migrate).
 *
 * Each kind of row is one SELECT and one INSERT, their columns in the order
 * store.h gives (texts, then numbers).  A table that an older journal does
 * not have yet fails to prepare: it has no rows.
 */
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "engine/store_sqlite_int.h"

extern const char cairn_schema_sql[];

typedef struct {
    const char *select;
    const char *insert;          /* ?1.. the texts, then the numbers */
    int texts, nums;
    int blob;                    /* the text column held as a BLOB, or -1 */
} dump_sql;

static const dump_sql kinds[CAIRN_DUMP_KINDS] = {
    [CAIRN_DUMP_META] = {"SELECT key, value FROM meta ORDER BY key",
                         "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)", 2, 0, -1},
    [CAIRN_DUMP_DEFINITIONS] = {
        "SELECT d.hash, d.name, d.path, d.source, s.steps, d.created_at FROM definitions d"
        " LEFT JOIN definition_steps s ON s.hash = d.hash ORDER BY d.created_at, d.rowid",
        "INSERT INTO definitions(hash, name, path, source, created_at) VALUES (?1,?2,?3,?4,?6)",
        5, 1, 3},
    [CAIRN_DUMP_COMMANDS] = {
        "SELECT run_id, type, data, created_at FROM commands ORDER BY id",
        "INSERT INTO commands(run_id, type, data, created_at) VALUES (?1,?2,?3,?4)", 3, 1, -1},
    [CAIRN_DUMP_REQUESTS] = {
        "SELECT key, request, run_id, created_at FROM idempotency ORDER BY created_at, key",
        "INSERT INTO idempotency(key, request, run_id, created_at) VALUES (?1,?2,?3,?4)", 3, 1, -1},
    [CAIRN_DUMP_CLAIMS] = {
        "SELECT space, key, value, created_at, updated_at FROM claims ORDER BY created_at, space, key",
        "INSERT INTO claims(space, key, value, created_at, updated_at) VALUES (?1,?2,?3,?4,?5)",
        3, 2, -1},
};

int sq_dump(cairn_store *base, cairn_dump_kind kind, cairn_dump_cb cb, void *ud,
            cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    const dump_sql *k = &kinds[kind];
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, k->select, -1, &st, NULL) != SQLITE_OK) return 0;
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        cairn_dump_row row = {0};
        for (int i = 0; i < k->texts; i++) {
            if (sqlite3_column_type(st, i) == SQLITE_NULL) continue;
            /* text is NUL-terminated; a blob is not, and may be empty */
            row.text[i] = i == k->blob ? (const char *)sqlite3_column_blob(st, i)
                                       : (const char *)sqlite3_column_text(st, i);
            if (row.text[i] == NULL) row.text[i] = "";
            row.len[i] = (size_t)sqlite3_column_bytes(st, i);
        }
        for (int i = 0; i < k->nums; i++) row.num[i] = sqlite3_column_int64(st, k->texts + i);
        rc = cb(&row, ud, err);
    }
    if (rc == 0 && step != SQLITE_DONE) rc = sq_db_error(s, err, "reading the journal to copy it");
    sqlite3_finalize(st);
    return rc;
}

static int run_insert(sqlite_store *s, const char *sql, const dump_sql *k,
                      const cairn_dump_row *row, cairn_err *err) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK &&
        (sqlite3_exec(s->db, cairn_schema_sql, NULL, NULL, NULL) != SQLITE_OK ||
         sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK))
        return sq_db_error(s, err, "copying into the journal");
    int n = sqlite3_bind_parameter_count(st);
    for (int i = 0; i < k->texts && i < n; i++) {
        if (row->text[i] == NULL) continue;
        if (i == k->blob) sqlite3_bind_blob(st, i + 1, row->text[i], (int)row->len[i], SQLITE_STATIC);
        else sqlite3_bind_text(st, i + 1, row->text[i], (int)row->len[i], SQLITE_STATIC);
    }
    for (int i = 0; i < k->nums && k->texts + i < n; i++)
        sqlite3_bind_int64(st, k->texts + i + 1, row->num[i]);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sq_db_error(s, err, "copying into the journal");
}

int sq_load(cairn_store *base, cairn_dump_kind kind, const cairn_dump_row *row, cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    const dump_sql *k = &kinds[kind];
    int rc = run_insert(s, k->insert, k, row, err);
    if (rc == 0 && kind == CAIRN_DUMP_DEFINITIONS && row->text[4])
        rc = run_insert(s, "INSERT INTO definition_steps(hash, steps) VALUES (?1, ?5)", k, row, err);
    return rc;
}

int sq_run_ids(cairn_store *base, char ***ids, bool **in_runs, int *n, cairn_err *err) {
    static const char sql[] =
        "SELECT id, MAX(row) FROM (SELECT id, 1 AS row FROM runs"
        " UNION ALL SELECT DISTINCT run_id, 0 FROM events) GROUP BY id ORDER BY id";
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = NULL;
    int cap = 0, rc;
    *ids = NULL;
    *in_runs = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sq_db_error(s, err, "listing the runs");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            *ids = cairn_realloc(*ids, (size_t)cap * sizeof **ids);
            *in_runs = cairn_realloc(*in_runs, (size_t)cap * sizeof **in_runs);
        }
        (*ids)[*n] = sq_col_text(st, 0);
        (*in_runs)[(*n)++] = sqlite3_column_int(st, 1) != 0;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) return 0;
    for (int i = 0; i < *n; i++) free((*ids)[i]);
    free(*ids);
    free(*in_runs);
    *ids = NULL;
    *in_runs = NULL;
    *n = 0;
    return sq_db_error(s, err, "listing the runs");
}
