/*
 * store_pg_ops.c - the PostgreSQL journal's ownership of runs, commands,
 * idempotency keys, claims, meta, and its rows for a copy (store.h).
 *
 * A claim is one statement: INSERT ... ON CONFLICT DO UPDATE ... WHERE the
 * value is the one replaced, so of two servers asking at once one wins, the
 * other is told what holds the key.  A command is inserted and NOTIFYed in
 * one statement: the engine LISTENs on its reader and counts what it hears
 * (data_version), so a command put by another host reaches it at its next
 * poll, and one put on its own host at once (owner.h, cairn_owner_wake).
 */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/mem.h"
#include "engine/store_pg_int.h"

/* ---- ownership ------------------------------------------------------------ */

/* A run is taken under its row's lock (FOR UPDATE), so two engines claiming
 * it at once are ordered: the second sees the first's owner.  alive NULL:
 * the holder's lease decides (store_pg_lease.c). */
int pg_claim_run(cairn_store *base, const char *run_id, const char *owner,
                 bool (*alive)(const char *owner), cairn_err *err) {
    return pg_claim_one((pg_store *)base, run_id, owner, alive, NULL, err);
}

int pg_batch_begin(cairn_store *base, cairn_err *err) {
    pg_store *s = (pg_store *)base;
    int rc = pg_exec(s, "BEGIN", 0, NULL, "starting a transaction", err);
    s->in_batch = rc == 0;
    return rc;
}

int pg_batch_end(cairn_store *base, cairn_err *err) {
    pg_store *s = (pg_store *)base;
    s->in_batch = false;
    return pg_exec(s, "COMMIT", 0, NULL, "committing", err);
}

int pg_release_runs(cairn_store *base, const char *owner, cairn_err *err) {
    return pg_exec((pg_store *)base, "UPDATE runs SET owner = NULL WHERE owner = $1", 1, &owner,
                   "releasing runs", err);
}

/* ---- commands ---------------------------------------------------------------- */

int pg_add_command(cairn_store *base, const char *run_id, const char *type, const char *data,
                   cairn_err *err) {
    char now[24];
    const char *v[] = {run_id, type, data ? data : "{}", pg_num(now, cairn_wall_ms())};
    return pg_exec((pg_store *)base,
                   "WITH c AS (INSERT INTO commands(run_id, type, data, created_at)"
                   " VALUES ($1, $2, $3, $4) RETURNING run_id)"
                   " SELECT pg_notify('" CAIRN_PG_CHANNEL "', run_id) FROM c",
                   4, v, "adding a command", err);
}

int pg_delete_command(cairn_store *base, int64_t id, cairn_err *err) {
    char num[24];
    const char *v[] = {pg_num(num, id)};
    return pg_exec((pg_store *)base, "DELETE FROM commands WHERE id = $1", 1, v,
                   "deleting a command", err);
}

static int read_commands(PGresult *res, cairn_command **out, int *n) {
    int rows = PQntuples(res);
    cairn_command *cmds = cairn_calloc((size_t)rows + 1, sizeof *cmds);
    for (int i = 0; i < rows; i++) {
        cmds[i].id = pg_int(res, i, 0);
        cmds[i].run_id = pg_text(res, i, 1);
        cmds[i].type = pg_text(res, i, 2);
        cmds[i].data = pg_text(res, i, 3);
        cmds[i].created_at = pg_int(res, i, 4);
    }
    PQclear(res);
    *out = cmds;
    *n = rows;
    return 0;
}

#define COMMAND_COLUMNS "SELECT c.id, c.run_id, c.type, c.data, c.created_at FROM commands c"

int pg_list_commands(cairn_store *base, const char *owner, cairn_command **out, int *n,
                     cairn_err *err) {
    PGresult *res = pg_query((pg_store *)base, COMMAND_COLUMNS " JOIN runs r ON r.id = c.run_id"
                             " WHERE r.owner = $1 ORDER BY c.id", 1, &owner, "reading commands", err);
    return res ? read_commands(res, out, n) : CAIRN_EIO;
}

int pg_run_commands(cairn_store *base, const char *run_id, cairn_command **out, int *n,
                    cairn_err *err) {
    PGresult *res = pg_query((pg_store *)base, COMMAND_COLUMNS " WHERE c.run_id = $1 ORDER BY c.id",
                             1, &run_id, "reading commands", err);
    return res ? read_commands(res, out, n) : CAIRN_EIO;
}

/* Notifications heard since the last look, counted: a cheap poll. */
int64_t pg_data_version(cairn_store *base) {
    pg_store *s = (pg_store *)base;
    if (!s->listening || pg_ready(s, NULL) != 0) return s->changes;
    if (!PQconsumeInput(s->conn)) s->changes++;   /* broken: look, and reconnect next time */
    PGnotify *note;
    while ((note = PQnotifies(s->conn)) != NULL) {
        s->changes++;
        PQfreemem(note);
    }
    return s->changes;
}

/* ---- idempotency keys and claims ------------------------------------------- */

int pg_get_request(cairn_store *base, const char *key, char run_id[CAIRN_RUN_ID_MAX],
                   char request[65], cairn_err *err) {
    run_id[0] = request[0] = '\0';
    PGresult *res = pg_query((pg_store *)base, "SELECT run_id, request FROM idempotency"
                             " WHERE key = $1", 1, &key, "reading idempotency keys", err);
    if (!res) return CAIRN_EIO;
    if (PQntuples(res) == 1) {
        snprintf(run_id, CAIRN_RUN_ID_MAX, "%s", PQgetvalue(res, 0, 0));
        snprintf(request, 65, "%s", PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return 0;
}

int pg_put_request(cairn_store *base, const char *key, const char *request, const char *run_id,
                   cairn_err *err) {
    char now[24];
    const char *v[] = {key, request, run_id, pg_num(now, cairn_wall_ms())};
    return pg_exec((pg_store *)base, "INSERT INTO idempotency(key, request, run_id, created_at)"
                   " VALUES ($1, $2, $3, $4)", 4, v, "recording an idempotency key", err);
}

int pg_claim(cairn_store *base, const char *space, const char *key, const char *value,
             const char *replace, char **held, cairn_err *err) {
    pg_store *s = (pg_store *)base;
    char now[24];
    const char *v[] = {space, key, value, pg_num(now, cairn_wall_ms()), replace};
    *held = NULL;
    PGresult *res = pg_query(s, replace
        ? "INSERT INTO claims(space, key, value, created_at, updated_at) VALUES ($1,$2,$3,$4,$4)"
          " ON CONFLICT (space, key) DO UPDATE SET value = excluded.value,"
          " updated_at = excluded.updated_at WHERE claims.value = $5 RETURNING 1"
        : "INSERT INTO claims(space, key, value, created_at, updated_at) VALUES ($1,$2,$3,$4,$4)"
          " ON CONFLICT (space, key) DO NOTHING RETURNING 1",
        replace ? 5 : 4, v, "taking a claim", err);
    if (!res) return CAIRN_EIO;
    int taken = PQntuples(res);
    PQclear(res);
    if (taken) return 0;
    int rc = pg_get_claim(base, space, key, held, err);
    return rc ? rc : CAIRN_EEXISTS;
}

int pg_get_claim(cairn_store *base, const char *space, const char *key, char **value,
                 cairn_err *err) {
    const char *v[] = {space, key};
    *value = NULL;
    PGresult *res = pg_query((pg_store *)base, "SELECT value FROM claims WHERE space = $1"
                             " AND key = $2", 2, v, "reading a claim", err);
    if (!res) return CAIRN_EIO;
    int rc = 0;
    if (PQntuples(res) == 1) *value = pg_text(res, 0, 0);
    else rc = cairn_err_set(err, CAIRN_ENOTFOUND, "no claim %s/%s", space, key);
    PQclear(res);
    return rc;
}

/* ---- meta ------------------------------------------------------------------ */

int pg_get_meta(cairn_store *base, const char *key, char **value, cairn_err *err) {
    pg_store *s = (pg_store *)base;
    *value = NULL;
    PGresult *res = pg_query(s, "SELECT value FROM meta WHERE key = $1", 1, &key,
                             "reading the journal's meta table", err);
    if (!res) return CAIRN_EIO;
    int rc = 0;
    if (PQntuples(res) == 1) *value = pg_text(res, 0, 0);
    else rc = cairn_err_set(err, CAIRN_ENOTFOUND, "%s: no '%s' in meta", s->name, key);
    PQclear(res);
    return rc;
}

int pg_put_meta(cairn_store *base, const char *key, const char *value, cairn_err *err) {
    const char *v[] = {key, value};
    return pg_exec((pg_store *)base, "INSERT INTO meta(key, value) VALUES ($1, $2)"
                   " ON CONFLICT (key) DO NOTHING", 2, v, "writing the journal's meta table", err);
}

/* ---- a copy of the journal ------------------------------------------------- */

int pg_run_ids(cairn_store *base, char ***ids, bool **in_runs, int *n, cairn_err *err) {
    PGresult *res = pg_query((pg_store *)base,
        "SELECT id, max(r) FROM (SELECT id, 1 AS r FROM runs UNION ALL"
        " SELECT DISTINCT run_id, 0 FROM events) t GROUP BY id ORDER BY id", 0, NULL,
        "listing the runs", err);
    *n = 0;
    if (!res) return CAIRN_EIO;
    int rows = PQntuples(res);
    *ids = cairn_calloc((size_t)rows + 1, sizeof **ids);
    *in_runs = cairn_calloc((size_t)rows + 1, sizeof **in_runs);
    for (int i = 0; i < rows; i++) {
        (*ids)[i] = pg_text(res, i, 0);
        (*in_runs)[i] = pg_int(res, i, 1) != 0;
    }
    PQclear(res);
    *n = rows;
    return 0;
}

typedef struct {
    const char *select, *insert;   /* insert: $1.. the texts, then the numbers */
    int texts, nums;
    int blob;                      /* the text column that is bytea, or -1 */
} dump_sql;

static const dump_sql kinds[CAIRN_DUMP_KINDS] = {
    [CAIRN_DUMP_META] = {"SELECT key, value FROM meta ORDER BY key",
                         "INSERT INTO meta(key, value) VALUES ($1, $2)"
                         " ON CONFLICT (key) DO UPDATE SET value = excluded.value", 2, 0, -1},
    [CAIRN_DUMP_DEFINITIONS] = {
        "SELECT d.hash, d.name, d.path, d.source, s.steps, d.created_at FROM definitions d"
        " LEFT JOIN definition_steps s ON s.hash = d.hash ORDER BY d.created_at, d.loaded",
        "WITH d AS (INSERT INTO definitions(hash, name, path, source, created_at)"
        " VALUES ($1, $2, $3, $4, $6) RETURNING hash)"
        " INSERT INTO definition_steps(hash, steps) SELECT hash, $5 FROM d WHERE $5::text IS NOT NULL",
        5, 1, 3},
    [CAIRN_DUMP_COMMANDS] = {
        "SELECT run_id, type, data, created_at FROM commands ORDER BY id",
        "INSERT INTO commands(run_id, type, data, created_at) VALUES ($1, $2, $3, $4)", 3, 1, -1},
    [CAIRN_DUMP_REQUESTS] = {
        "SELECT key, request, run_id, created_at FROM idempotency ORDER BY created_at, key",
        "INSERT INTO idempotency(key, request, run_id, created_at) VALUES ($1, $2, $3, $4)",
        3, 1, -1},
    [CAIRN_DUMP_CLAIMS] = {
        "SELECT space, key, value, created_at, updated_at FROM claims"
        " ORDER BY created_at, space, key",
        "INSERT INTO claims(space, key, value, created_at, updated_at) VALUES ($1,$2,$3,$4,$5)",
        3, 2, -1},
};

int pg_dump(cairn_store *base, cairn_dump_kind kind, cairn_dump_cb cb, void *ud, cairn_err *err) {
    const dump_sql *k = &kinds[kind];
    PGresult *res = pg_query((pg_store *)base, k->select, 0, NULL, "reading the journal to copy it",
                             err);
    if (!res) return CAIRN_EIO;
    int rc = 0;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        cairn_dump_row row = {0};
        char *blob = NULL;
        for (int c = 0; c < k->texts; c++) {
            if (PQgetisnull(res, i, c)) continue;
            if (c == k->blob) row.text[c] = blob = pg_bytes(res, i, c, &row.len[c]);
            else row.text[c] = PQgetvalue(res, i, c), row.len[c] = (size_t)PQgetlength(res, i, c);
        }
        for (int c = 0; c < k->nums; c++) row.num[c] = pg_int(res, i, k->texts + c);
        rc = cb(&row, ud, err);
        free(blob);
    }
    PQclear(res);
    return rc;
}

int pg_load(cairn_store *base, cairn_dump_kind kind, const cairn_dump_row *row, cairn_err *err) {
    const dump_sql *k = &kinds[kind];
    const char *v[CAIRN_DUMP_TEXTS + 2] = {0};
    char nums[2][24], *blob = NULL;
    for (int c = 0; c < k->texts; c++) v[c] = row->text[c];
    if (k->blob >= 0 && row->text[k->blob])
        v[k->blob] = blob = pg_hex_bytea(row->text[k->blob], row->len[k->blob]);
    for (int c = 0; c < k->nums; c++) v[k->texts + c] = pg_num(nums[c], row->num[c]);
    int rc = pg_exec((pg_store *)base, k->insert, k->texts + k->nums, v, "copying into the journal",
                     err);
    free(blob);
    return rc;
}
