/*
 * journal_sqlite.c - the journal in a SQLite file (the embedded default).
 *
 * Where it is: PATH, the database (store_sqlite.c); PATH-clog, the engine's
 * commit log in front of it (clog.h); PATH.key, the journal's key (or
 * CAIRN_JOURNAL_KEY); PATH.secrets and PATH.secrets.key (secrets.h).
 *
 * A reader opens one read-only connection, after applying what a stopped
 * engine left in the commit log.  An engine opens three things: a
 * read-write connection for the orchestrator's reads and claims, the
 * writer's connection (commits deferred: the writer syncs apart, see
 * writer.c), and the commit log when it can take it (another engine may
 * hold it: then batches commit straight to SQLite).  What may refuse the
 * journal (the file's integrity, the log's damage or foreign id) only
 * reads, so a refusal changes nothing.
 */
#include "engine/journal_int.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/mem.h"
#include "engine/owner.h"
#include "engine/secrets.h"

static int open_reader(cairn_journal *j, cairn_err *err) {
    cairn_err settle;
    int rc = cairn_clog_settle(j->where, &settle);
    if (rc == CAIRN_ECORRUPT) {   /* damaged or foreign: refused, nothing changed */
        *err = settle;
        return rc;
    }
    if (rc != 0) {
        char msg[CAIRN_ERR_MSG_MAX + CAIRN_ERR_FILE_MAX + 32];
        j->warning = cairn_sprintf("the newest events of a stopped engine may be missing (%s)",
                                   cairn_err_format(&settle, msg, sizeof msg));
    }
    return cairn_store_open_sqlite(j->where, CAIRN_SYNC_FULL, true, &j->reader, err);
}

/* The commit log, unless syncs are relaxed (it is a log of synced batches)
 * or another engine holds it. */
static int take_log(cairn_journal *j, cairn_err *err) {
    if (j->cfg.sync != CAIRN_SYNC_FULL) return cairn_clog_settle(j->where, err);
    int rc = cairn_clog_take(j->where, j->owner, true, &j->log, err);
    return rc == CAIRN_EBUSY ? 0 : rc;
}

static int open_engine(cairn_journal *j, cairn_err *err) {
    cairn_sync_mode sync = j->cfg.sync;
    int rc = cairn_store_check_sqlite(j->where, err);
    if (rc == 0) rc = take_log(j, err);
    if (rc == 0) rc = cairn_store_open_sqlite(j->where, sync, false, &j->reader, err);
    if (rc == 0) rc = cairn_journal_key(j->where, true, j->key, err);
    if (rc == 0) rc = cairn_journal_key_check(j->reader, j->where, j->key, true, err);
    /* the writer syncs apart from its commits (writer.c) */
    cairn_sync_mode ws = sync == CAIRN_SYNC_FULL ? CAIRN_SYNC_DEFERRED : sync;
    if (rc == 0) rc = cairn_store_open_sqlite_writer(j->where, ws, &j->writer, err);
    if (rc) return rc;
    j->writer->ops->set_owner(j->writer, j->owner);
    j->keyed = true;
    return 0;
}

static int sq_open(cairn_journal *j, const char *where, cairn_err *err) {
    (void)where;   /* j->where: a path is its own name */
    return j->cfg.role == CAIRN_JOURNAL_ENGINE ? open_engine(j, err) : open_reader(j, err);
}

static int sq_open_store(const char *where, bool create, cairn_store **out, cairn_err *err) {
    return create ? cairn_store_open_sqlite_checked(where, CAIRN_SYNC_FULL, out, err)
                  : cairn_store_open_sqlite(where, CAIRN_SYNC_FULL, true, out, err);
}

static int sq_read_key(cairn_journal *j, cairn_err *err) {
    return cairn_journal_key(j->where, false, j->key, err);
}

static int sq_put_command(cairn_journal *j, const char *run_id, const char *type,
                          const char *data, cairn_err *err) {
    cairn_store *s = NULL;
    cairn_run_row row = {0};
    /* A live engine holds the run: it journals the command's effect durably
     * and callers wait to see that, so the command row itself need not cost
     * a sync.  With no engine, the row is all there is: synced. */
    bool held = j->reader->ops->get_run(j->reader, run_id, &row, NULL) == 0 && row.owner &&
                cairn_journal_owner_alive(j, row.owner);
    int rc = cairn_store_open_sqlite(j->where, held ? CAIRN_SYNC_NORMAL : CAIRN_SYNC_FULL, false,
                                     &s, err);
    if (rc == 0) rc = s->ops->add_command(s, run_id, type, data, err);
    if (rc == 0 && held) cairn_owner_wake(row.owner);   /* read it now, not at the next poll */
    cairn_run_row_clear(&row);
    cairn_store_close(s);
    return rc;
}

/* A write of the server's, synced, on a connection of its own: the
 * journal's may be a reader's. */
static int sq_put_request(cairn_journal *j, const char *key, const char *request,
                          const char *run_id, cairn_err *err) {
    cairn_store *s = NULL;
    int rc = cairn_store_open_sqlite(j->where, CAIRN_SYNC_FULL, false, &s, err);
    if (rc == 0) rc = s->ops->put_request(s, key, request, run_id, err);
    cairn_store_close(s);
    return rc;
}

/* Claims come one after another from a server (a webhook's dedupe key
 * each): their connection is kept, not opened for each, and its commits
 * are synced apart (CAIRN_SYNC_DEFERRED), so that claims taken at once
 * share a sync (cairn_journal_sync_claims). */
static int sq_claim_deferred(cairn_journal *j, const char *space, const char *key,
                             const char *value, const char *replace, char **held,
                             cairn_err *err) {
    int rc = j->claims ? 0 : cairn_store_open_sqlite(j->where, CAIRN_SYNC_DEFERRED, false,
                                                      &j->claims, err);
    return rc ? rc : j->claims->ops->claim(j->claims, space, key, value, replace, held, err);
}

static int sq_sync_claims(cairn_journal *j, cairn_err *err) {
    return j->claims ? j->claims->ops->sync(j->claims, err) : 0;
}

static int sq_claim(cairn_journal *j, const char *space, const char *key, const char *value,
                    const char *replace, char **held, cairn_err *err) {
    int rc = sq_claim_deferred(j, space, key, value, replace, held, err);
    if (rc == 0 || rc == CAIRN_EEXISTS) {
        int synced = sq_sync_claims(j, err);
        if (synced) {
            free(*held);
            *held = NULL;
            rc = synced;
        }
    }
    return rc;
}

static bool sq_owner_alive(cairn_journal *j, const char *owner) {
    (void)j;
    return cairn_owner_alive(owner);
}

static int sq_takes_writes(cairn_journal *j, cairn_err *err) {
    cairn_store *s = NULL;
    int rc = cairn_store_open_sqlite(j->where, CAIRN_SYNC_FULL, false, &s, err);
    if (rc == 0) rc = s->ops->batch_begin(s, err);
    if (rc == 0) rc = s->ops->batch_end(s, err);
    cairn_store_close(s);
    return rc;
}

static int sq_settle_others(cairn_journal *j, cairn_err *err) {
    return cairn_clog_settle(j->where, err);
}

static void sq_secrets_paths(const cairn_journal *j, char **file, char **key_file) {
    cairn_secrets_paths(j->where, file, key_file);
}

static int sq_append_batch(cairn_journal *j, cairn_event *const *evs, int n, int64_t *mark,
                           cairn_err *err) {
    *mark = 0;
    if (j->log) return cairn_clog_append(j->log, evs, n, mark, err);
    return j->writer->ops->append(j->writer, evs, n, err);
}

static int sq_sync(cairn_journal *j, cairn_err *err) {
    if (j->log) return cairn_clog_sync(j->log, err);
    return j->writer->ops->sync(j->writer, err);
}

static int64_t sq_written_end(const cairn_journal *j) {
    return j->log ? cairn_clog_end(j->log) : 0;
}

static int sq_apply_written(cairn_journal *j, int64_t from, int64_t to, cairn_event *const *evs,
                            int n, cairn_err *err) {
    if (evs) return n > 0 ? j->writer->ops->append_missing(j->writer, evs, n, err) : 0;
    return cairn_clog_apply(j->log, j->writer, from, to, NULL, err);
}

static int sq_start_over(cairn_journal *j, size_t need, cairn_err *err) {
    int rc = j->writer->ops->sync(j->writer, err);
    return rc ? rc : cairn_clog_reset(j->log, need, err);
}

static void sq_close(cairn_journal *j) {
    cairn_store_close(j->claims);
    cairn_clog_close(j->log);
    cairn_store_close(j->writer);
    cairn_store_close(j->reader);
}

const cairn_journal_backend cairn_journal_sqlite = {
    .serves = NULL,
    .open = sq_open,
    .open_store = sq_open_store,
    .read_key = sq_read_key,
    .put_command = sq_put_command,
    .put_request = sq_put_request,
    .claim = sq_claim,
    .claim_deferred = sq_claim_deferred,
    .sync_claims = sq_sync_claims,
    .takes_writes = sq_takes_writes,
    .owner_alive = sq_owner_alive,
    .settle_others = sq_settle_others,
    .secrets_paths = sq_secrets_paths,
    .append_batch = sq_append_batch,
    .sync = sq_sync,
    .written_end = sq_written_end,
    .apply_written = sq_apply_written,
    .start_over = sq_start_over,
    .close = sq_close,
};
