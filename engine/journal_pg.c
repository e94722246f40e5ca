/*
 * journal_pg.c - the journal in a PostgreSQL database (--db postgres://...).
 *
 * Where it is: the database the URL names (store_pg.c; schema/journal_pg.sql,
 * created by the first engine that opens an empty database).  The key is
 * never in the database, whose editors the chain guards against: it is
 * CAIRN_JOURNAL_KEY, or the file CAIRN_FILES.key, which an engine makes
 * when there is none (store.h, cairn_journal_key).  The secrets are
 * CAIRN_FILES.secrets and CAIRN_FILES.secrets.key (or CAIRN_SECRETS and
 * CAIRN_SECRET_KEY_FILE), as beside a SQLite journal.
 *
 * A reader opens one connection and creates nothing (an empty database is
 * CAIRN_ENOTFOUND).  An engine opens two: its reader, which LISTENs for
 * commands (cairn_journal_changes counts what it hears), and the writer's.
 * There is no commit log: every batch is one transaction, durable when it
 * commits, so the writer's sync has nothing left to do.
 *
 * An engine also holds a lease (journal_lease.h: a third connection, its
 * heartbeat's), and every batch it appends is fenced by the epochs of the
 * runs it holds (journal.h, "several engines").  A broken connection under
 * a batch is made again with back-off while the lease holds.
 *
 * Messages name the database by its URL without the password (j->where);
 * the URL itself is used to connect and kept nowhere.
 */
#include "engine/journal_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mem.h"
#include "engine/owner.h"
#include "engine/secrets.h"
#include "engine/store_pg.h"

/* A broken connection under a batch is made again after this long, twice
 * as long each time, up to the most (while the lease holds). */
#define CAIRN_PG_RETRY_MIN_MS 50
#define CAIRN_PG_RETRY_MAX_MS 1000

/* The lease asked for (cfg, else CAIRN_LEASE_MS, else the default), in
 * its bounds. */
static int lease_ms(const cairn_journal *j, int64_t *ms, cairn_err *err) {
    const char *env = getenv("CAIRN_LEASE_MS");
    *ms = j->cfg.lease_ms ? j->cfg.lease_ms : env && *env ? atoll(env) : CAIRN_DEFAULT_LEASE_MS;
    if (*ms >= CAIRN_LEASE_MS_MIN && *ms <= CAIRN_LEASE_MS_MAX) return 0;
    return cairn_err_set(err, CAIRN_EINVAL, "a lease of %lld ms (%s): it must be from %d to %d ms",
                         (long long)*ms, j->cfg.lease_ms ? "--lease-ms" : "CAIRN_LEASE_MS",
                         CAIRN_LEASE_MS_MIN, CAIRN_LEASE_MS_MAX);
}

static int open_engine(cairn_journal *j, const char *url, cairn_err *err) {
    int64_t ms;
    int rc = lease_ms(j, &ms, err);
    if (rc == 0) rc = cairn_store_open_pg(url, CAIRN_PG_LISTEN, j->cfg.sync, &j->reader, err);
    if (rc == 0) rc = cairn_journal_key(url, true, j->key, err);
    if (rc == 0) rc = cairn_journal_key_check(j->reader, url, j->key, true, err);
    if (rc == 0) rc = cairn_store_open_pg(url, CAIRN_PG_CREATE, j->cfg.sync, &j->writer, err);
    if (rc == 0) rc = cairn_lease_start(url, j->owner, ms, &j->lease, err);
    if (rc) return rc;
    cairn_pg_bound bound = {cairn_lease_connect_deadline, j->lease};
    cairn_pg_bound_connects(j->reader, &bound);   /* a connection made again: within the lease */
    cairn_pg_bound_connects(j->writer, &bound);
    j->refused = cairn_strmap_new();
    j->writer->ops->set_owner(j->writer, j->owner);
    j->keyed = true;
    return 0;
}

static int pg_open(cairn_journal *j, const char *url, cairn_err *err) {
    if (j->cfg.role == CAIRN_JOURNAL_ENGINE) return open_engine(j, url, err);
    return cairn_store_open_pg(url, CAIRN_PG_READ, CAIRN_SYNC_FULL, &j->reader, err);
}

static int pg_open_store(const char *where, bool create, cairn_store **out, cairn_err *err) {
    return cairn_store_open_pg(where, create ? CAIRN_PG_CREATE : CAIRN_PG_READ, CAIRN_SYNC_FULL,
                               out, err);
}

static int pg_read_key(cairn_journal *j, cairn_err *err) {
    return cairn_journal_key(j->where, false, j->key, err);
}

/* One connection serves every role: the row is durable at its commit, and
 * its NOTIFY reaches the holder wherever it runs; on this host the holder
 * is also woken at once. */
static int pg_put_command(cairn_journal *j, const char *run_id, const char *type,
                          const char *data, cairn_err *err) {
    cairn_run_row row = {0};
    bool held = j->reader->ops->get_run(j->reader, run_id, &row, NULL) == 0 && row.owner;
    int rc = j->reader->ops->add_command(j->reader, run_id, type, data, err);
    if (rc == 0 && held) cairn_owner_wake(row.owner);
    cairn_run_row_clear(&row);
    return rc;
}

static int pg_put_request(cairn_journal *j, const char *key, const char *request,
                          const char *run_id, cairn_err *err) {
    return j->reader->ops->put_request(j->reader, key, request, run_id, err);
}

static int pg_claim(cairn_journal *j, const char *space, const char *key, const char *value,
                    const char *replace, char **held, cairn_err *err) {
    return j->reader->ops->claim(j->reader, space, key, value, replace, held, err);
}

/* A write that writes nothing (the journal id over itself, which the
 * insert keeps): a standby, or a read-only database, refuses it. */
static int pg_takes_writes(cairn_journal *j, cairn_err *err) {
    cairn_store *s = j->reader;
    char *id = NULL;
    int rc = s->ops->get_meta(s, "journal_id", &id, err);
    if (rc == 0) rc = s->ops->put_meta(s, "journal_id", id, err);
    free(id);
    return rc;
}

static int pg_settle_others(cairn_journal *j, cairn_err *err) {
    (void)j;
    (void)err;
    return 0;
}

static void pg_secrets_paths(const cairn_journal *j, char **file, char **key_file) {
    cairn_secrets_paths(j->where, file, key_file);
}

/* ---- the writer: fenced batches ---------------------------------------------- */

/* The batch's runs: those it creates (created, by id) and the others, with
 * the epoch held of each (refused when none is: not this engine's). */
typedef struct {
    cairn_strmap *created, *slot;
    cairn_pg_hold *holds;
    int n;
} batch_runs;

static void runs_of(cairn_journal *j, cairn_event *const *evs, int n, batch_runs *b) {
    b->created = cairn_strmap_new();
    b->slot = cairn_strmap_new();
    b->holds = cairn_calloc((size_t)n + 1, sizeof *b->holds);
    b->n = 0;
    int64_t at;
    for (int i = 0; i < n; i++)
        if (evs[i]->type == CAIRN_EV_RUN_CREATED) cairn_strmap_put(b->created, evs[i]->run_id, i);
    for (int i = 0; i < n; i++) {
        const char *id = evs[i]->run_id;
        if (cairn_strmap_get(b->created, id, &at) || cairn_strmap_get(b->slot, id, &at)) continue;
        cairn_pg_hold *h = &b->holds[b->n];
        h->run_id = id;
        h->refused = !cairn_lease_epoch(j->lease, id, &h->epoch);
        cairn_strmap_put(b->slot, id, b->n++);
    }
}

static void runs_free(batch_runs *b) {
    cairn_strmap_free(b->created);
    cairn_strmap_free(b->slot);
    free(b->holds);
}

static void lose(cairn_journal *j, const char *run_id) {
    cairn_strmap_put(j->refused, run_id, 1);
    cairn_lease_lose(j->lease, run_id);
}

/* Append, making a broken connection again with back-off while the lease
 * holds.  A retry skips what the journal has (the commit may have landed).
 * *lapsed: the lease lapsed first (then the error is the connection's). */
static int append_retrying(cairn_journal *j, cairn_event *const *evs, int n, batch_runs *b,
                           bool *lapsed, cairn_err *err) {
    bool again = false;
    *lapsed = false;
    for (int64_t delay = CAIRN_PG_RETRY_MIN_MS;; delay = delay * 2 > CAIRN_PG_RETRY_MAX_MS
                                                           ? CAIRN_PG_RETRY_MAX_MS : delay * 2) {
        int rc = cairn_pg_append_held(j->writer, evs, n, b->holds, b->n, j->owner, again, err);
        if (rc == 0 || !cairn_pg_broken(j->writer)) return rc;
        cairn_lease_unreachable(j->lease, err);
        if (!cairn_lease_held(j->lease)) {
            *lapsed = true;
            return rc;
        }
        struct timespec ts = {.tv_sec = delay / 1000, .tv_nsec = (long)(delay % 1000) * 1000000};
        nanosleep(&ts, NULL);
        again = true;
    }
}

/* The runs the batch creates for other engines (cairn_journal_place), told
 * to the writer's connection: *placed[i] for each such run_created. */
static bool *placements(cairn_journal *j, cairn_event *const *evs, int n) {
    bool *placed = cairn_calloc((size_t)n + 1, sizeof *placed);
    char node[256];
    for (int i = 0; i < n; i++)
        if (evs[i]->type == CAIRN_EV_RUN_CREATED &&
            cairn_lease_placing(j->lease, evs[i]->run_id, node, sizeof node)) {
            cairn_pg_place(j->writer, evs[i]->run_id, node);
            placed[i] = true;
        }
    return placed;
}

static int pg_append_batch(cairn_journal *j, cairn_event *const *evs, int n, int64_t *mark,
                           cairn_err *err) {
    *mark = 0;
    if (j->lease == NULL) return j->writer->ops->append(j->writer, evs, n, err);
    cairn_strmap_clear(j->refused);
    batch_runs b;
    runs_of(j, evs, n, &b);
    bool fenced = false, lapsed, *placed = placements(j, evs, n);
    int rc = append_retrying(j, evs, n, &b, &lapsed, err);
    cairn_pg_place_clear(j->writer);
    if (lapsed) {   /* out of reach past the lease: every run goes */
        for (int i = 0; i < n; i++)
            if (!cairn_journal_refused(j, evs[i]->run_id)) lose(j, evs[i]->run_id);
        cairn_lease_lose_all(j->lease);
        fenced = true;
        rc = 0;
    }
    for (int i = 0; rc == 0 && !lapsed && i < b.n; i++)
        if (b.holds[i].refused) {
            fprintf(stderr, "cairn: run %s: its write was refused: another engine holds it"
                    " now\n", b.holds[i].run_id);
            lose(j, b.holds[i].run_id);
            fenced = true;
        }
    for (int i = 0; rc == 0 && i < n; i++) {
        if (cairn_journal_refused(j, evs[i]->run_id)) continue;
        if (evs[i]->type == CAIRN_EV_RUN_CREATED && !placed[i])   /* a placed run is another's */
            cairn_lease_hold(j->lease, evs[i]->run_id, 0);
        if (cairn_event_ends_run(evs[i]->type)) cairn_lease_release(j->lease, evs[i]->run_id);
    }
    runs_free(&b);
    free(placed);
    if (rc == 0 && fenced)
        rc = cairn_err_set(err, CAIRN_EFENCED, "%s: runs held by another engine now were"
                           " refused", j->where);
    return rc;
}

static int pg_sync(cairn_journal *j, cairn_err *err) { return j->writer->ops->sync(j->writer, err); }

static int64_t pg_written_end(const cairn_journal *j) {
    (void)j;
    return 0;
}

static int pg_no_log(cairn_journal *j, cairn_err *err) {
    return cairn_err_set(err, CAIRN_ESTATE, "%s: a journal in PostgreSQL has no commit log",
                         j->where);
}

static int pg_apply_written(cairn_journal *j, int64_t from, int64_t to, cairn_event *const *evs,
                            int n, cairn_err *err) {
    (void)from;
    (void)to;
    (void)evs;
    (void)n;
    return pg_no_log(j, err);
}

static int pg_start_over(cairn_journal *j, size_t need, cairn_err *err) {
    (void)need;
    return pg_no_log(j, err);
}

/* ---- several engines ---------------------------------------------------------- */

static bool pg_owner_alive(cairn_journal *j, const char *owner) {
    bool alive = true;
    cairn_pg_owner_alive(j->reader, owner, &alive, NULL);
    return alive;
}

/* A claim at a new epoch, held from here on.  A run the lease holds was
 * claimed by its heartbeat (taken over, or placed here) and is not asked
 * for again: a claim by another since is found by the fence, as ever. */
static int pg_claim_run(cairn_journal *j, const char *run_id, cairn_err *err) {
    int64_t epoch = 0;
    if (j->lease && cairn_lease_epoch(j->lease, run_id, &epoch)) return 0;
    int rc = cairn_pg_claim_run(j->reader, run_id, j->owner, &epoch, err);
    if (rc == 0 && j->lease) cairn_lease_hold(j->lease, run_id, epoch);
    return rc;
}

static int pg_node_loads(cairn_journal *j, char ***nodes, int64_t **runs, int *n,
                         cairn_err *err) {
    return cairn_pg_node_loads(j->reader, nodes, runs, n, err);
}

/* Held here at an epoch: released in the journal at that epoch first, and
 * only then no longer held (journal.h says what follows a failure). */
static int pg_let_go(cairn_journal *j, const char *run_id, bool again, bool *done,
                     cairn_err *err) {
    int64_t epoch;
    if (j->lease == NULL || !cairn_lease_epoch(j->lease, run_id, &epoch)) return 0;
    int rc = cairn_pg_release_run(j->reader, run_id, j->owner, epoch, err);
    cairn_lease_let_go(j->lease, run_id, rc == 0, again);
    *done = rc == 0;
    return rc;
}

static void pg_close(cairn_journal *j) {
    cairn_lease_stop(j->lease);
    cairn_strmap_free(j->refused);
    cairn_store_close(j->writer);
    cairn_store_close(j->reader);
}

const cairn_journal_backend cairn_journal_pg = {
    .serves = cairn_pg_url,
    .name = cairn_pg_name,
    .open = pg_open,
    .open_store = pg_open_store,
    .read_key = pg_read_key,
    .put_command = pg_put_command,
    .put_request = pg_put_request,
    .claim = pg_claim,
    .takes_writes = pg_takes_writes,
    .owner_alive = pg_owner_alive,
    .claim_run = pg_claim_run,
    .node_loads = pg_node_loads,
    .let_go = pg_let_go,
    .settle_others = pg_settle_others,
    .secrets_paths = pg_secrets_paths,
    .append_batch = pg_append_batch,
    .sync = pg_sync,
    .written_end = pg_written_end,
    .apply_written = pg_apply_written,
    .start_over = pg_start_over,
    .close = pg_close,
};
