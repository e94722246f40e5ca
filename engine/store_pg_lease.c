/*
 * store_pg_lease.c - several engines on one PostgreSQL journal: leases,
 * claims at a new epoch, and what fencing needs (store_pg.h).
 *
 * Every time is the database's clock (PG_NOW_MS): the engines' hosts may
 * disagree about the time, the one server does not.  An engine is alive
 * while its engines row's lease_until is ahead of that clock.  A claim
 * locks the run's row (FOR UPDATE) and takes epoch + 1 when the run
 * changes hands, so the engine that held it before is refused at its next
 * append (store_pg.c, the fence); a claim of lapsed runs skips rows that
 * another engine is claiming at that moment (SKIP LOCKED), so that of two
 * engines claiming at once each run goes to exactly one.
 *
 * An engine on this host whose process is gone (owner.h) is dead at once,
 * lease or not: a server restarted after a crash takes its runs back
 * without waiting for the lease to lapse.  An owner with no engines row at
 * all (a process that holds a claim but is no engine) is judged as on
 * SQLite: alive while its process on this host lives (owner_judged).
 */
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "engine/owner.h"
#include "engine/store_pg_int.h"

/* ---- arrays as parameters --------------------------------------------------- */

char *pg_text_array(const char *const *v, int n) {
    cairn_buf b = CAIRN_BUF_INIT;
    cairn_buf_putc(&b, '{');
    for (int i = 0; i < n; i++) {
        if (i) cairn_buf_putc(&b, ',');
        cairn_buf_putc(&b, '"');
        for (const char *p = v[i]; *p; p++) {
            if (*p == '"' || *p == '\\') cairn_buf_putc(&b, '\\');
            cairn_buf_putc(&b, *p);
        }
        cairn_buf_putc(&b, '"');
    }
    cairn_buf_putc(&b, '}');
    return cairn_buf_detach(&b);
}

char *pg_int_array(const int64_t *v, int n) {
    cairn_buf b = CAIRN_BUF_INIT;
    cairn_buf_putc(&b, '{');
    for (int i = 0; i < n; i++) {
        if (i) cairn_buf_putc(&b, ',');
        cairn_buf_put_ll(&b, v[i]);
    }
    cairn_buf_putc(&b, '}');
    return cairn_buf_detach(&b);
}

void pg_hold_arrays(const cairn_pg_hold *holds, int n, bool all, char **ids, char **epochs,
                    int *count) {
    const char **id = cairn_calloc((size_t)n + 1, sizeof *id);
    int64_t *epoch = cairn_calloc((size_t)n + 1, sizeof *epoch);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!all && holds[i].refused) continue;
        id[k] = holds[i].run_id;
        epoch[k++] = holds[i].epoch;
    }
    *ids = pg_text_array(id, k);
    *epochs = pg_int_array(epoch, k);
    *count = k;
    free(id);
    free(epoch);
}

/* ---- the lease ---------------------------------------------------------------- */

/* The claims' space of the engines that take runs placed on them (a
 * server's, not `cairn run`'s): a row keyed by the engine, until its
 * lease ends (a dead engine's row is harmless: its lease has lapsed). */
#define PG_SERVING "serving"

int cairn_pg_lease_renew(cairn_store *base, const char *owner, int64_t lease_ms, cairn_err *err) {
    char ms[24];
    const char *v[] = {owner, pg_num(ms, lease_ms)};
    return pg_exec((pg_store *)base,
                   "INSERT INTO engines(owner, started_at, lease_until)"
                   " VALUES ($1, " PG_NOW_MS ", " PG_NOW_MS " + $2::bigint)"
                   " ON CONFLICT (owner) DO UPDATE SET lease_until = excluded.lease_until",
                   2, v, "renewing the engine's lease", err);
}

int cairn_pg_lease_end(cairn_store *base, const char *owner, cairn_err *err) {
    int rc = pg_exec((pg_store *)base, "DELETE FROM engines WHERE owner = $1", 1, &owner,
                     "ending the engine's lease", err);
    return rc ? rc : cairn_pg_lease_unserve(base, owner, err);
}

int cairn_pg_lease_unserve(cairn_store *base, const char *owner, cairn_err *err) {
    return pg_exec((pg_store *)base, "DELETE FROM claims WHERE space = '" PG_SERVING "'"
                   " AND key = $1", 1, &owner, "unmarking the engine as taking placed runs", err);
}

int cairn_pg_lease_serve(cairn_store *base, const char *owner, cairn_err *err) {
    return pg_exec((pg_store *)base,
                   "INSERT INTO claims(space, key, value, created_at, updated_at)"
                   " VALUES ('" PG_SERVING "', $1, 'takes placed runs', " PG_NOW_MS ", " PG_NOW_MS ")"
                   " ON CONFLICT (space, key) DO NOTHING",
                   1, &owner, "marking the engine as taking placed runs", err);
}

/* Whether owner lives: its lease holds (leased; has_row false: it has
 * none), and on this host its process lives. */
static bool owner_judged(const char *owner, bool has_row, bool leased) {
    if (!has_row) return cairn_owner_local(owner) && cairn_owner_alive(owner);
    return leased && cairn_owner_alive(owner);
}

int cairn_pg_owner_alive(cairn_store *base, const char *owner, bool *alive, cairn_err *err) {
    PGresult *res = pg_query((pg_store *)base, "SELECT lease_until > " PG_NOW_MS " FROM engines"
                             " WHERE owner = $1", 1, &owner, "reading the engines' leases", err);
    if (!res) return CAIRN_EIO;
    bool has_row = PQntuples(res) == 1;
    *alive = owner_judged(owner, has_row, has_row && PQgetvalue(res, 0, 0)[0] == 't');
    PQclear(res);
    return 0;
}

/* ---- claims ------------------------------------------------------------------- */

/* The run's holder and epoch, its row locked, and whether that holder
 * lives (owner_judged): 0, or CAIRN_ENOTFOUND.  The lease is read after
 * the lock is had: a claim that waited for another reads its holder. */
static int lock_run(pg_store *s, const char *run_id, char **held, int64_t *epoch, bool *alive,
                    cairn_err *err) {
    PGresult *res = pg_query(s, "SELECT owner, epoch FROM runs WHERE id = $1 FOR UPDATE", 1,
                             &run_id, "claiming a run", err);
    if (!res) return CAIRN_EIO;
    int rc = 0;
    if (PQntuples(res) == 1) {
        *held = pg_text(res, 0, 0);
        *epoch = pg_int(res, 0, 1);
    } else {
        rc = cairn_err_set(err, CAIRN_ENOTFOUND, "no run '%s' in %s", run_id, s->name);
    }
    PQclear(res);
    *alive = false;
    if (rc == 0 && *held) rc = cairn_pg_owner_alive(&s->base, *held, alive, err);
    return rc;
}

/* A claim under the run row's lock: alive decides whether its holder
 * lives, or (NULL) the holder's lease and, on this host, its process. */
int pg_claim_one(pg_store *s, const char *run_id, const char *owner,
                 bool (*alive)(const char *owner), int64_t *epoch, cairn_err *err) {
    const char *begin = s->in_batch ? "SAVEPOINT claim" : "BEGIN";
    if (pg_exec(s, begin, 0, NULL, "claiming a run", err)) return CAIRN_EIO;
    char *held = NULL;
    int64_t at = 0;
    bool leased = false;
    int rc = lock_run(s, run_id, &held, &at, &leased, err);
    bool theirs = rc == 0 && held && strcmp(held, owner) != 0;
    if (theirs && (alive ? alive(held) : leased))
        rc = cairn_err_set(err, CAIRN_EBUSY, "run %s is held by a running engine (%s)", run_id, held);
    if (rc == 0 && (held == NULL || theirs)) {
        const char *v[] = {owner, run_id};
        rc = pg_exec(s, "UPDATE runs SET owner = $1, epoch = epoch + 1 WHERE id = $2", 2, v,
                     "claiming a run", err);
        at++;
    }
    free(held);
    if (epoch) *epoch = at;
    const char *finish = s->in_batch ? (rc ? "ROLLBACK TO claim" : "RELEASE claim")
                                     : (rc ? "ROLLBACK" : "COMMIT");
    cairn_err ignored;
    int end = pg_exec(s, finish, 0, NULL, "claiming a run", rc ? &ignored : err);
    return rc ? rc : end;
}

int cairn_pg_claim_run(cairn_store *base, const char *run_id, const char *owner, int64_t *epoch,
                       cairn_err *err) {
    return pg_claim_one((pg_store *)base, run_id, owner, NULL, epoch, err);
}

int cairn_pg_check_held(cairn_store *base, const char *owner, cairn_pg_hold *holds, int n,
                        cairn_err *err) {
    if (n == 0) return 0;
    char *id_arr, *ep_arr;
    int k;
    pg_hold_arrays(holds, n, true, &id_arr, &ep_arr, &k);
    const char *v[] = {id_arr, ep_arr, owner};
    PGresult *res = pg_query((pg_store *)base,
        "SELECT h.i FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS h(id, epoch, i)"
        " JOIN runs r ON r.id = h.id WHERE r.owner IS DISTINCT FROM $3 AND r.epoch >= h.epoch",
        3, v, "checking the runs this engine holds", err);
    free(id_arr);
    free(ep_arr);
    if (!res) return CAIRN_EIO;
    for (int r = 0; r < PQntuples(res); r++) {
        int64_t i = pg_int(res, r, 0) - 1;
        if (i >= 0 && i < n) holds[i].refused = true;
    }
    PQclear(res);
    return 0;
}

/* The rows of (text, bigint) a statement gave (claims: id, epoch), the
 * caller's; res is cleared. */
static int read_pairs(PGresult *res, char ***ids, int64_t **epochs, int *n) {
    int rows = PQntuples(res);
    *ids = cairn_calloc((size_t)rows + 1, sizeof **ids);
    *epochs = cairn_calloc((size_t)rows + 1, sizeof **epochs);
    for (int i = 0; i < rows; i++) {
        (*ids)[i] = pg_text(res, i, 0);
        (*epochs)[i] = pg_int(res, i, 1);
    }
    PQclear(res);
    *n = rows;
    return 0;
}

int cairn_pg_release_run(cairn_store *base, const char *run_id, const char *owner, int64_t epoch,
                         cairn_err *err) {
    char at[24];
    const char *v[] = {run_id, owner, pg_num(at, epoch)};
    return pg_exec((pg_store *)base, "UPDATE runs SET owner = NULL WHERE id = $1 AND owner = $2"
                   " AND epoch = $3::bigint", 3, v, "letting a run go", err);
}

/* A run the claim may take: unfinished, not skipped ($4), and its owner's
 * lease lapsed, or no owner, or ($3) this engine's own ($1). */
#define CLAIMABLE(r) \
    " " r ".status IN ('running', 'waiting', 'paused', 'compensating')" \
    " AND " r ".id <> ALL($4::text[])" \
    " AND (" r ".owner IS NULL OR (" r ".owner <> $1 AND NOT EXISTS (SELECT 1 FROM engines e" \
    " WHERE e.owner = " r ".owner AND e.lease_until > " PG_NOW_MS "))" \
    " OR ($3::boolean AND " r ".owner = $1))"

int cairn_pg_claim_lapsed(cairn_store *base, const char *owner, int max, bool mine_too,
                          const char *const *skip, int n_skip, char ***ids, int64_t **epochs,
                          int *n, cairn_err *err) {
    char limit[24], *held_arr = pg_text_array(skip, n_skip);
    const char *v[] = {owner, pg_num(limit, max), mine_too ? "t" : "f", held_arr};
    PGresult *res = pg_query((pg_store *)base,
        /* A family (a root run and every run under it by parent_id) is
         * claimed whole or not at all, so that a parent and the children it
         * waits for stay on one engine.  The root's row, locked (SKIP
         * LOCKED), is the family's: two engines never claim one family at
         * once.  Then each claimable run of the family is locked, checked
         * again under its lock (no join: a row claimed meanwhile is judged
         * by its new owner's lease), and the family is taken only when every
         * one was had: a run locked elsewhere (being claimed or written by
         * another engine) leaves the whole family for a later look. */
        "WITH RECURSIVE lapsed AS (SELECT r.id, r.parent_id FROM runs r WHERE" CLAIMABLE("r") "),"
        " up(id, parent_id) AS (SELECT id, parent_id FROM lapsed UNION"
        " SELECT p.id, p.parent_id FROM runs p JOIN up ON p.id = up.parent_id),"
        " roots AS (SELECT r.id FROM runs r WHERE r.id IN (SELECT u.id FROM up u WHERE NOT EXISTS"
        " (SELECT 1 FROM up a WHERE a.id = u.parent_id))"
        " ORDER BY r.created_at, r.id LIMIT $2::bigint FOR UPDATE SKIP LOCKED),"
        " family(root, id) AS (SELECT id, id FROM roots UNION"
        " SELECT f.root, c.id FROM runs c JOIN family f ON c.parent_id = f.id),"
        " wanted AS (SELECT f.root, f.id FROM family f JOIN runs r ON r.id = f.id WHERE"
        CLAIMABLE("r") "),"
        " got AS (SELECT r.id FROM runs r WHERE r.id IN (SELECT id FROM wanted) AND" CLAIMABLE("r")
        " FOR UPDATE SKIP LOCKED),"
        " whole AS (SELECT w.root FROM wanted w LEFT JOIN got g ON g.id = w.id GROUP BY w.root"
        " HAVING count(g.id) = count(*))"
        " UPDATE runs SET owner = $1, epoch = runs.epoch + 1 WHERE runs.id IN (SELECT g.id FROM got g"
        " JOIN wanted w ON w.id = g.id JOIN whole ON whole.root = w.root)"
        " RETURNING runs.id, runs.epoch",
        4, v, "claiming the runs of lapsed engines", err);
    free(held_arr);
    *n = 0;
    return res ? read_pairs(res, ids, epochs, n) : CAIRN_EIO;
}

/* ---- placement ------------------------------------------------------------------ */

/* The statuses of a run that has not ended (the runs projection's). */
#define PG_UNENDED "('running', 'waiting', 'paused', 'compensating')"

void cairn_pg_place(cairn_store *base, const char *run_id, const char *node) {
    pg_store *s = (pg_store *)base;
    if (s->placed == NULL) s->placed = cairn_strmap_new();
    if (s->n_placed == s->cap_placed) {
        s->cap_placed = s->cap_placed ? 2 * s->cap_placed : 16;
        s->placed_on = cairn_realloc(s->placed_on, (size_t)s->cap_placed * sizeof *s->placed_on);
    }
    s->placed_on[s->n_placed] = cairn_strdup(node);
    cairn_strmap_put(s->placed, run_id, s->n_placed++);
}

void cairn_pg_place_clear(cairn_store *base) {
    pg_store *s = (pg_store *)base;
    for (int i = 0; i < s->n_placed; i++) free(s->placed_on[i]);
    s->n_placed = 0;
    if (s->placed) cairn_strmap_clear(s->placed);
}

const char *pg_placed_on(pg_store *s, const char *run_id) {
    int64_t at;
    return s->placed && cairn_strmap_get(s->placed, run_id, &at) ? s->placed_on[at] : NULL;
}

void pg_place_free(pg_store *s) {
    cairn_pg_place_clear(&s->base);
    cairn_strmap_free(s->placed);
    free(s->placed_on);
}

int cairn_pg_hear_placed(cairn_store *base, cairn_err *err) {
    pg_store *s = (pg_store *)base;
    s->hears_placed = true;
    return pg_exec(s, "LISTEN " CAIRN_PG_PLACED_CHANNEL, 0, NULL, "listening for runs placed", err);
}

int cairn_pg_socket(cairn_store *base) {
    pg_store *s = (pg_store *)base;
    return PQstatus(s->conn) == CONNECTION_OK ? PQsocket(s->conn) : -1;
}

bool cairn_pg_placed_heard(cairn_store *base, const char *owner) {
    pg_store *s = (pg_store *)base;
    bool mine = false;
    if (PQstatus(s->conn) != CONNECTION_OK || !PQconsumeInput(s->conn)) return false;
    PGnotify *note;
    while ((note = PQnotifies(s->conn)) != NULL) {
        mine |= strcmp(note->relname, CAIRN_PG_PLACED_CHANNEL) == 0 && strcmp(note->extra, owner) == 0;
        PQfreemem(note);
    }
    return mine;
}

int cairn_pg_take_placed(cairn_store *base, const char *owner, int max, char ***ids,
                         int64_t **epochs, int *n, cairn_err *err) {
    char limit[24];
    const char *v[] = {owner, pg_num(limit, max)};
    PGresult *res = pg_query((pg_store *)base,
        "WITH c AS (SELECT r.id FROM runs r WHERE r.status IN " PG_UNENDED
        " AND r.owner = $1 AND r.epoch = " PG_EPOCH_PLACED
        " ORDER BY r.created_at, r.id LIMIT $2::bigint FOR UPDATE SKIP LOCKED)"
        " UPDATE runs SET epoch = runs.epoch + 1 FROM c WHERE runs.id = c.id"
        " RETURNING runs.id, runs.epoch",
        2, v, "taking the runs placed on this engine", err);
    *n = 0;
    return res ? read_pairs(res, ids, epochs, n) : CAIRN_EIO;
}

int cairn_pg_node_loads(cairn_store *base, char ***nodes, int64_t **runs, int *n, cairn_err *err) {
    /* the unfinished runs are found by status (few), not by owner (every
     * run an engine ever held) */
    PGresult *res = pg_query((pg_store *)base,
        "SELECT e.owner, count(r.id) FROM engines e JOIN claims c ON c.space = '" PG_SERVING "'"
        " AND c.key = e.owner LEFT JOIN runs r ON r.owner = e.owner"
        " AND r.status IN " PG_UNENDED " WHERE e.lease_until > " PG_NOW_MS
        " GROUP BY e.owner ORDER BY e.owner",
        0, NULL, "reading the live engines' loads", err);
    *n = 0;
    return res ? read_pairs(res, nodes, runs, n) : CAIRN_EIO;
}
