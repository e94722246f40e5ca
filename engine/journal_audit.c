/*
 * journal_audit.c - what `cairn verify`, `export` and `import` need of the
 * journal beyond reading runs (journal.h, "audit").
 *
 * The runs a journal holds are listed from its events as well as from its
 * runs table, so that a run whose row was deleted is still found: the store
 * lists only the table, so the events are read through a read-only
 * connection of this file's own (the SQLite journal being the only
 * backend).
 */
#include <openssl/hmac.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "engine/journal_int.h"

static void add_id(char ***ids, bool **in_runs, int *n, int *cap, const char *id, bool row) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *ids = cairn_realloc(*ids, (size_t)*cap * sizeof **ids);
        *in_runs = cairn_realloc(*in_runs, (size_t)*cap * sizeof **in_runs);
    }
    (*ids)[*n] = cairn_strdup(id);
    (*in_runs)[(*n)++] = row;
}

void cairn_journal_ids_free(char **ids, bool *in_runs, int n) {
    for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);
    free(in_runs);
}

int cairn_journal_run_ids(cairn_journal *j, char ***ids, bool **in_runs, int *n, cairn_err *err) {
    static const char sql[] =
        "SELECT id, MAX(row) FROM (SELECT id, 1 AS row FROM runs"
        " UNION ALL SELECT DISTINCT run_id, 0 FROM events) GROUP BY id ORDER BY id";
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int cap = 0;
    *ids = NULL;
    *in_runs = NULL;
    *n = 0;
    int rc = sqlite3_open_v2(j->where, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        add_id(ids, in_runs, n, &cap, (const char *)sqlite3_column_text(st, 0),
               sqlite3_column_int(st, 1) != 0);
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_DONE)
        rc = cairn_err_set(err, CAIRN_EIO, "%s: listing the runs: %s", j->where,
                           db ? sqlite3_errmsg(db) : "out of memory");
    else
        rc = 0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (rc) {
        cairn_journal_ids_free(*ids, *in_runs, *n);
        *ids = NULL;
        *in_runs = NULL;
        *n = 0;
    }
    return rc;
}

static void hex_of(const unsigned char *p, int n, char *hex) {
    for (int i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", p[i]);
}

void cairn_journal_identity(cairn_journal *j, char id[CAIRN_JOURNAL_ID_HEX + 1],
                            char key_check[2 * CAIRN_HASH_LEN + 1]) {
    cairn_err err;
    char *v = NULL;
    if (cairn_journal_id(j->where, id, &err) != 0) id[0] = '\0';
    key_check[0] = '\0';
    if (j->reader->ops->get_meta && j->reader->ops->get_meta(j->reader, "key_check", &v, &err) == 0)
        snprintf(key_check, 2 * CAIRN_HASH_LEN + 1, "%s", v);
    free(v);
}

int cairn_journal_key_of(const char *where, cairn_chain **chain,
                         char key_check[2 * CAIRN_HASH_LEN + 1], cairn_err *err) {
    unsigned char key[32], mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    *chain = NULL;
    int rc = cairn_journal_key(where, false, key, err);
    if (rc) return rc;
    HMAC(EVP_sha256(), key, 32, (const unsigned char *)CAIRN_KEY_CHECK_TEXT,
         strlen(CAIRN_KEY_CHECK_TEXT), mac, &n);
    hex_of(mac, CAIRN_HASH_LEN, key_check);
    *chain = cairn_chain_new(key, 32);
    memset(key, 0, sizeof key);
    return 0;
}

int cairn_journal_import(cairn_journal *j, const cairn_workflow *wf, cairn_event *const *evs,
                         int n, cairn_err *err) {
    cairn_run_row row;
    if (n == 0) return cairn_err_set(err, CAIRN_EINVAL, "nothing to import");
    int rc = j->reader->ops->get_run(j->reader, evs[0]->run_id, &row, err);
    if (rc == 0) {
        cairn_run_row_clear(&row);
        return cairn_err_set(err, CAIRN_EEXISTS, "%s: run %s is in this journal already;"
                             " nothing was written", j->where, evs[0]->run_id);
    }
    if (rc != CAIRN_ENOTFOUND) return rc;
    rc = cairn_journal_put_definition(j, wf, err);
    if (rc == 0) rc = j->reader->ops->append(j->reader, evs, n, err);
    return rc;
}
