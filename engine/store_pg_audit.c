/*
 * store_pg_audit.c - the PostgreSQL journal read whole for verify's one
 * pass (store.h, scan; journal_audit.c).
 *
 * One read-only REPEATABLE READ transaction, so the runs rows, the
 * definitions read between them and the events, and every event are of one
 * snapshot however long the pass takes while engines append.  The events
 * come through a cursor in id order (the order they were appended),
 * CAIRN_PG_SCAN_FETCH rows a round trip, in binary, so a journal of any
 * size is read in bounded memory, with no hex to decode and no number to
 * parse from text.
 */
#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "engine/store_pg_int.h"

/* Events a round trip brings: about a megabyte of the usual events. */
#define CAIRN_PG_SCAN_FETCH 4096
#define SCAN_WHAT "reading the journal to verify it"

static int scan_rows(pg_store *s, const cairn_scan_cb *cb, cairn_err *err) {
    PGresult *res = pg_query(s, "SELECT id, workflow, def_hash, parent_id, status, created_at,"
                                " updated_at FROM runs", 0, NULL, SCAN_WHAT, err);
    if (!res) return CAIRN_EIO;
    for (int i = 0; i < PQntuples(res); i++) {
        cairn_run_row row = {pg_text(res, i, 0), pg_text(res, i, 1), pg_text(res, i, 2),
                             pg_text(res, i, 3), pg_text(res, i, 4), NULL, pg_int(res, i, 5),
                             pg_int(res, i, 6)};
        cb->row(cb->ud, &row);
    }
    PQclear(res);
    return 0;
}

/* A binary integer column (int8 or int4, big-endian on the wire). */
static int64_t bin_int(const PGresult *res, int row, int col) {
    const char *v = PQgetvalue(res, row, col);
    if (PQgetlength(res, row, col) == 4) {
        uint32_t x;
        memcpy(&x, v, 4);
        return (int32_t)be32toh(x);
    }
    uint64_t x = 0;
    if (PQgetlength(res, row, col) == 8) memcpy(&x, v, 8);
    return (int64_t)be64toh(x);
}

/* One fetched row as an event, false for a run id too long to be one (no
 * run's): text columns are the row's own bytes (libpq ends every value
 * with a zero byte). */
static bool scan_event_row(const PGresult *res, int i, cairn_event *ev) {
    size_t len = (size_t)PQgetlength(res, i, 1);
    memset(ev, 0, sizeof *ev);
    if (len >= sizeof ev->run_id) return false;
    memcpy(ev->run_id, PQgetvalue(res, i, 1), len + 1);
    ev->seq = bin_int(res, i, 2);
    ev->time_ms = bin_int(res, i, 3);
    ev->type = cairn_event_type_parse(PQgetvalue(res, i, 4));
    ev->step = PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5);
    ev->attempt = (int)bin_int(res, i, 6);
    ev->data = PQgetvalue(res, i, 7);
    ev->data_len = (size_t)PQgetlength(res, i, 7);
    if (PQgetlength(res, i, 8) == CAIRN_HASH_LEN)
        memcpy(ev->hash, PQgetvalue(res, i, 8), CAIRN_HASH_LEN);
    return true;
}

static int scan_events(pg_store *s, const cairn_scan_cb *cb, cairn_err *err) {
    char fetch[48];
    snprintf(fetch, sizeof fetch, "FETCH %d FROM cairn_scan", CAIRN_PG_SCAN_FETCH);
    int rc = pg_exec(s, "DECLARE cairn_scan BINARY NO SCROLL CURSOR FOR SELECT id, run_id, seq,"
                        " time, type, step, attempt, data, hash FROM events ORDER BY id",
                     0, NULL, SCAN_WHAT, err);
    for (int rows = CAIRN_PG_SCAN_FETCH; rc == 0 && rows == CAIRN_PG_SCAN_FETCH;) {
        PGresult *res = pg_query(s, fetch, 0, NULL, SCAN_WHAT, err);
        if (!res) return CAIRN_EIO;
        rows = PQntuples(res);
        for (int i = 0; i < rows; i++) {
            cairn_event ev;
            if (scan_event_row(res, i, &ev)) cb->event(cb->ud, bin_int(res, i, 0), &ev);
        }
        PQclear(res);
    }
    return rc;
}

int pg_scan(cairn_store *base, const cairn_scan_cb *cb, cairn_err *err) {
    pg_store *s = (pg_store *)base;
    int rc = pg_exec(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, SCAN_WHAT, err);
    if (rc) return rc;
    rc = scan_rows(s, cb, err);
    if (rc == 0) rc = cb->between(cb->ud, err);
    if (rc == 0) rc = scan_events(s, cb, err);
    cairn_err ignored;
    int end = pg_exec(s, rc ? "ROLLBACK" : "COMMIT", 0, NULL, SCAN_WHAT, rc ? &ignored : err);
    return rc ? rc : end;
}
