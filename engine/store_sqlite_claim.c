/*
 * store_sqlite_claim.c - claims in the SQLite journal (table claims,
 * schema/journal.sql; journal.h, cairn_journal_claim).
 *
 * A claim is read and taken in one write transaction (BEGIN IMMEDIATE), so
 * two connections asking for the same key, in this process or another, are
 * ordered by SQLite's write lock: the first takes it, the second is told
 * what holds it.  A journal made before the table gets it from the schema
 * the first time a claim is taken; reading a claim from such a journal is
 * CAIRN_ENOTFOUND.
 */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/mem.h"
#include "engine/store_sqlite_int.h"

extern const char cairn_schema_sql[];

static sqlite3_stmt *prepare_or_add_table(sqlite_store *s, const char *sql) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK) return st;
    if (sqlite3_exec(s->db, cairn_schema_sql, NULL, NULL, NULL) != SQLITE_OK) return NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK) return st;
    return NULL;
}

/* The value holding (space, key): *value the caller's (NULL when free).
 * A writer adds the table when it is missing; a reader finds nothing. */
static int read_claim(sqlite_store *s, const char *space, const char *key, bool writer,
                      char **value, cairn_err *err) {
    static const char sql[] = "SELECT value FROM claims WHERE space = ? AND key = ?";
    sqlite3_stmt *st = NULL;
    *value = NULL;
    if (writer) st = prepare_or_add_table(s, sql);
    else if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return 0;
    if (!st) return sq_db_error(s, err, "reading a claim");
    sqlite3_bind_text(st, 1, space, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *value = sq_col_text(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_db_error(s, err, "reading a claim");
}

static int write_claim(sqlite_store *s, const char *space, const char *key, const char *value,
                       bool update, cairn_err *err) {
    const char *sql = update
        ? "UPDATE claims SET value = ?3, updated_at = ?4 WHERE space = ?1 AND key = ?2"
        : "INSERT INTO claims(space, key, value, created_at, updated_at) VALUES (?1,?2,?3,?4,?4)";
    sqlite3_stmt *st = prepare_or_add_table(s, sql);
    if (!st) return sq_db_error(s, err, "taking a claim");
    sqlite3_bind_text(st, 1, space, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, cairn_wall_ms());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sq_db_error(s, err, "taking a claim");
}

int sq_claim(cairn_store *base, const char *space, const char *key, const char *value,
             const char *replace, char **held, cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    char *now = NULL;
    *held = NULL;
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return sq_db_error(s, err, "taking a claim");
    int rc = read_claim(s, space, key, true, &now, err);
    if (rc == 0 && now == NULL)
        rc = write_claim(s, space, key, value, false, err);
    else if (rc == 0 && replace && strcmp(now, replace) == 0)
        rc = write_claim(s, space, key, value, true, err);
    else if (rc == 0) {
        *held = now;
        now = NULL;
        rc = CAIRN_EEXISTS;
    }
    free(now);
    if (rc == 0 && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = sq_db_error(s, err, "taking a claim");
    if (rc != 0) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int sq_get_claim(cairn_store *base, const char *space, const char *key, char **value,
                 cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    int rc = read_claim(s, space, key, false, value, err);
    if (rc == 0 && *value == NULL)
        rc = cairn_err_set(err, CAIRN_ENOTFOUND, "no claim %s/%s", space, key);
    return rc;
}
