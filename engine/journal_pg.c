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
 * Messages name the database by its URL without the password (j->where);
 * the URL itself is used to connect and kept nowhere.
 */
#include "engine/journal_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "engine/owner.h"
#include "engine/secrets.h"
#include "engine/store_pg.h"

static int open_engine(cairn_journal *j, const char *url, cairn_err *err) {
    int rc = cairn_store_open_pg(url, CAIRN_PG_LISTEN, j->cfg.sync, &j->reader, err);
    if (rc == 0) rc = cairn_journal_key(url, true, j->key, err);
    if (rc == 0) rc = cairn_journal_key_check(j->reader, url, j->key, true, err);
    if (rc == 0) rc = cairn_store_open_pg(url, CAIRN_PG_CREATE, j->cfg.sync, &j->writer, err);
    if (rc) return rc;
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

static int pg_append_batch(cairn_journal *j, cairn_event *const *evs, int n, int64_t *mark,
                           cairn_err *err) {
    *mark = 0;
    return j->writer->ops->append(j->writer, evs, n, err);
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

static void pg_close(cairn_journal *j) {
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
    .settle_others = pg_settle_others,
    .secrets_paths = pg_secrets_paths,
    .append_batch = pg_append_batch,
    .sync = pg_sync,
    .written_end = pg_written_end,
    .apply_written = pg_apply_written,
    .start_over = pg_start_over,
    .close = pg_close,
};
