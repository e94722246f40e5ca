/*
 * store_sqlite_scan.c - the SQLite journal read whole for verify's one pass
 * (store.h, scan; journal_audit.c).
 *
 * One read transaction on the store's connection, so the runs rows, the
 * event index, the definitions read between them and the events are of one
 * snapshot however long the pass takes while an engine appends.  The event
 * index is given too (cairn_scan_cb.indexed and index_row), so the pass can
 * prove that a run's load would read the very events it folded.  The events
 * come in id order (the order they were appended), one row at a time, so a
 * journal of any size is read in bounded memory.
 */
#include <string.h>

#include "engine/store_sqlite_int.h"

#define SCAN_WHAT "reading the journal to verify it"

/* An event's type from its text (len bytes): cairn_event_type_parse, the
 * two most common compared first by length, a million times a pass. */
static cairn_event_type scan_type(const char *text, int len) {
    static const cairn_event_type hot[] = {CAIRN_EV_STEP_STARTED, CAIRN_EV_STEP_SUCCEEDED};
    for (size_t k = 0; text && k < sizeof hot / sizeof hot[0]; k++) {
        const char *name = cairn_event_type_name(hot[k]);
        if ((int)strlen(name) == len && memcmp(name, text, (size_t)len) == 0) return hot[k];
    }
    return text ? cairn_event_type_parse(text) : CAIRN_EV_NONE;
}

static int scan_rows(sqlite_store *s, const cairn_scan_cb *cb) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT " RUN_COLUMNS " FROM runs", -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        cairn_run_row row;
        sq_fill_run(st, &row);
        cb->row(cb->ud, &row);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* A version 1 journal has no event index: nothing is given, and every
 * event counts as the tail. */
static int scan_index(sqlite_store *s, const cairn_scan_cb *cb) {
    if (s->version == CAIRN_SCHEMA_V1) return SQLITE_OK;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT upto FROM index_state", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        cb->indexed(cb->ud, sqlite3_column_int64(st, 0));
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE) return rc;
    rc = sqlite3_prepare_v2(s->db, "SELECT run_id, first_seq, ids FROM event_index"
                            " ORDER BY run_id, first_seq", -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *run_id = (const char *)sqlite3_column_text(st, 0);
        if (run_id)
            cb->index_row(cb->ud, run_id, sqlite3_column_int64(st, 1), sqlite3_column_blob(st, 2),
                          (size_t)sqlite3_column_bytes(st, 2));
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int scan_events(sqlite_store *s, const cairn_scan_cb *cb) {
    static const char sql[] = "SELECT id, run_id, seq, time, type, step, attempt, data, hash"
                              " FROM events ORDER BY id";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        cairn_event ev = {0};
        const char *run_id = (const char *)sqlite3_column_text(st, 1);
        const char *type = (const char *)sqlite3_column_text(st, 4);
        const char *data = (const char *)sqlite3_column_text(st, 7);
        rc = SQLITE_OK;
        if (run_id == NULL || strlen(run_id) >= sizeof ev.run_id) continue;   /* no run's */
        memcpy(ev.run_id, run_id, strlen(run_id) + 1);
        ev.seq = sqlite3_column_int64(st, 2);
        ev.time_ms = sqlite3_column_int64(st, 3);
        ev.type = scan_type(type, sqlite3_column_bytes(st, 4));
        ev.step = (char *)sqlite3_column_text(st, 5);
        ev.attempt = sqlite3_column_int(st, 6);
        ev.data = (char *)(data ? data : "");
        ev.data_len = data ? (size_t)sqlite3_column_bytes(st, 7) : 0;
        if (sqlite3_column_bytes(st, 8) == CAIRN_HASH_LEN)
            memcpy(ev.hash, sqlite3_column_blob(st, 8), CAIRN_HASH_LEN);
        cb->event(cb->ud, sqlite3_column_int64(st, 0), &ev);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int sq_scan(cairn_store *base, const cairn_scan_cb *cb, cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return sq_db_error(s, err, SCAN_WHAT);
    int rc = scan_rows(s, cb);
    if (rc == SQLITE_OK) rc = scan_index(s, cb);
    if (rc != SQLITE_OK) {
        rc = sq_db_error(s, err, SCAN_WHAT);
    } else {
        rc = cb->between(cb->ud, err);   /* reads through this connection, in the snapshot */
        if (rc == 0 && scan_events(s, cb) != SQLITE_OK) rc = sq_db_error(s, err, SCAN_WHAT);
    }
    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);   /* a read: nothing to keep or lose */
    return rc;
}
