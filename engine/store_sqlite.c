/*
 * store_sqlite.c - the journal in an embedded SQLite database.
 *
 * WAL mode; synchronous=FULL by default (every commit reaches the disk before
 * append returns), NORMAL as the named relaxed mode, and DEFERRED for the
 * journal writer (commits synced by sq_sync, see there).  Statements are prepared
 * once per connection.  The schema is schema/journal.sql, compiled in.
 *
 * Opening never modifies a file that is not already a Cairn journal: the
 * header (application_id, user_version, the table list) is read before any
 * PRAGMA that writes, such as journal_mode=WAL.  A version 1 journal is read
 * as it is, and upgraded to version 2 by the first connection that writes.
 *
 * The event index, and loading a run through it, are store_sqlite_index.c;
 * what both files share is store_sqlite_int.h.
 */
#include "engine/store.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/mem.h"
#include "common/strmap.h"
#include "engine/store_sqlite_int.h"

#define CAIRN_APP_ID 0x4341524E      /* "CARN" */
#define CAIRN_SCHEMA_VERSION 2
#define CAIRN_BUSY_TIMEOUT_MS 10000
#define CAIRN_CACHE_KIB 65536        /* page cache per connection: appends stay in memory */
#define CAIRN_WAL_HEADER 32             /* SQLite's log format: file header, */
#define CAIRN_WAL_FRAME_HEADER 24       /* and each frame's header before its page */

extern const char cairn_schema_sql[];

static const char *const stmt_sql[ST_COUNT] = {
    /* the runs columns are run_created's data members (event.h) */
    [ST_INSERT_RUN] = "INSERT INTO runs(id, workflow, def_hash, parent_id, status, created_at,"
                      " updated_at, owner) VALUES (?1, coalesce(json_extract(?2, '$.workflow'),"
                      " '?'), coalesce(json_extract(?2, '$.def_hash'), ''),"
                      " json_extract(?2, '$.parent'), 'running', ?3, ?3, ?4)",
    /* ?4: the status the run must have for the change, or NULL for any */
    [ST_UPDATE_RUN] = "UPDATE runs SET status = ?1, updated_at = ?2 WHERE id = ?3"
                      " AND status = coalesce(?4, status)",
    [ST_DELETE_COMMAND] = "DELETE FROM commands WHERE id = ?",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_DATA_VERSION] = "PRAGMA data_version",
    [ST_GET_UPTO] = "SELECT (SELECT upto FROM index_state), (SELECT coalesce(max(id), 0) FROM events)",
    [ST_TAIL_ROWS] = "SELECT run_id, seq, id FROM events WHERE id > ?1 AND id <= ?2 ORDER BY id",
    [ST_INDEX_ROW] = "INSERT INTO event_index(run_id, first_seq, ids) VALUES (?,?,?)",
    [ST_SET_UPTO] = "UPDATE index_state SET upto = ?",
    [ST_LAST_ROW] = "SELECT first_seq, ids FROM event_index WHERE run_id = ?"
                    " ORDER BY first_seq DESC LIMIT 1",
    [ST_TAIL_MAX] = "SELECT coalesce(max(seq), 0) FROM events WHERE id > ?2 AND run_id = ?1",
    [ST_RUN_ROW] = "SELECT 1 FROM runs WHERE id = ?",
};


int sq_db_error(sqlite_store *s, cairn_err *err, const char *what) {
    return cairn_err_set(err, CAIRN_EIO, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static int exec_sql(sqlite_store *s, const char *sql, cairn_err *err) {
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
    cairn_err_set(err, CAIRN_EIO, "%s: %s", s->path, msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    return CAIRN_EIO;
}

static sqlite3_stmt *prepare(sqlite_store *s, const char *sql) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return NULL;
    return st;
}

/* A statement kept for the connection's life: prepared the first time,
 * reset (and its bindings cleared) every later time. */
sqlite3_stmt *sq_kept(sqlite_store *s, sqlite3_stmt **slot, const char *sql) {
    if (*slot == NULL) {
        if (sqlite3_prepare_v2(s->db, sql, -1, slot, NULL) != SQLITE_OK) return NULL;
    } else {
        sqlite3_reset(*slot);
        sqlite3_clear_bindings(*slot);
    }
    return *slot;
}

static int64_t pragma_int(sqlite_store *s, const char *sql, int *rc) {
    sqlite3_stmt *st = NULL;
    int64_t v = 0;
    *rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (*rc == SQLITE_OK) {
        *rc = sqlite3_step(st);
        if (*rc == SQLITE_ROW) {
            v = sqlite3_column_int64(st, 0);
            *rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return v;
}

int sq_step_done(sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : rc;
}

int64_t sq_step_int(sqlite3_stmt *st, int col, int *rc) {
    int64_t v = 0;
    *rc = sqlite3_step(st);
    if (*rc == SQLITE_ROW) {
        v = sqlite3_column_int64(st, col);
        *rc = SQLITE_OK;
    }
    sqlite3_reset(st);
    return v;
}

/* ---- opening ----------------------------------------------------------- */

/* Decide, reading only, whether the database is a Cairn journal, an empty
 * file to initialise, or something to refuse. */
static int check_header(sqlite_store *s, bool *fresh, cairn_err *err) {
    int rc;
    int64_t tables = pragma_int(s, "SELECT count(*) FROM sqlite_master", &rc);
    if (rc != SQLITE_OK)
        return cairn_err_set(err, CAIRN_ECORRUPT,
                             "%s: not a Cairn journal (SQLite says: %s); the file was not modified",
                             s->path, sqlite3_errstr(rc));
    int64_t app = pragma_int(s, "PRAGMA application_id", &rc);
    int64_t version = pragma_int(s, "PRAGMA user_version", &rc);
    if (tables == 0 && app == 0) {
        *fresh = true;
        return 0;
    }
    if (app != CAIRN_APP_ID)
        return cairn_err_set(err, CAIRN_ECORRUPT,
                             "%s: not a Cairn journal (application id %lld); the file was not modified",
                             s->path, (long long)app);
    if (version != CAIRN_SCHEMA_VERSION && version != CAIRN_SCHEMA_V1)
        return cairn_err_set(err, CAIRN_ECORRUPT,
                             "%s: journal schema version %lld, this cairn reads versions %d"
                             " to %d; the file was not modified",
                             s->path, (long long)version, CAIRN_SCHEMA_V1, CAIRN_SCHEMA_VERSION);
    s->version = (int)version;
    *fresh = false;
    return 0;
}

static int init_schema(sqlite_store *s, cairn_err *err) {
    char sql[256];
    if (exec_sql(s, "BEGIN IMMEDIATE", err)) return CAIRN_EIO;
    snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d;",
             CAIRN_APP_ID, CAIRN_SCHEMA_VERSION);
    if (exec_sql(s, sql, err) || exec_sql(s, cairn_schema_sql, err)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return CAIRN_EIO;
    }
    s->version = CAIRN_SCHEMA_VERSION;
    return exec_sql(s, "COMMIT", err);
}

/* Version 1 to 2: the events table loses its UNIQUE (run_id, seq), which
 * takes a copy of the table, and gains the bulk index (filled by catch_up).
 * One transaction: a crash leaves version 1 as it was. */
static int upgrade_v1(sqlite_store *s, cairn_err *err) {
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", CAIRN_SCHEMA_VERSION);
    if (exec_sql(s, "BEGIN IMMEDIATE", err)) return CAIRN_EIO;
    if (exec_sql(s, "ALTER TABLE events RENAME TO events_v1", err) ||
        exec_sql(s, cairn_schema_sql, err) ||
        exec_sql(s, "INSERT INTO events(id, run_id, seq, time, type, step, attempt, data, hash)"
                    " SELECT id, run_id, seq, time, type, step, attempt, data, hash"
                    " FROM events_v1 ORDER BY id; DROP TABLE events_v1", err) ||
        exec_sql(s, sql, err)) {
        char why[CAIRN_ERR_MSG_MAX];
        snprintf(why, sizeof why, "%s", err->msg);
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return cairn_err_set(err, CAIRN_EIO, "upgrading the journal to version %d: %s",
                             CAIRN_SCHEMA_VERSION, why);
    }
    s->version = CAIRN_SCHEMA_VERSION;
    return exec_sql(s, "COMMIT", err);
}

/* Give the journal its id if it has none (a journal made before journals
 * had one): 16 random bytes as hex, in meta.  Read first, so a journal that
 * has one costs a read and no write. */
static int ensure_journal_id(sqlite_store *s, cairn_err *err) {
    sqlite3_stmt *st = prepare(s, "SELECT value FROM meta WHERE key = 'journal_id'");
    bool has = st && sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    if (has) return 0;
    unsigned char raw[CAIRN_JOURNAL_ID_HEX / 2];
    char id[CAIRN_JOURNAL_ID_HEX + 1], sql[160];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return cairn_err_set(err, CAIRN_EIO, "getrandom: %s", strerror(errno));
    for (size_t i = 0; i < sizeof raw; i++) snprintf(id + 2 * i, 3, "%02x", raw[i]);
    snprintf(sql, sizeof sql, "INSERT OR IGNORE INTO meta(key, value) VALUES ('journal_id', '%s')",
             id);
    if (exec_sql(s, "BEGIN IMMEDIATE", err)) return CAIRN_EIO;
    if (exec_sql(s, cairn_schema_sql, err) || exec_sql(s, sql, err)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return CAIRN_EIO;
    }
    return exec_sql(s, "COMMIT", err);
}

static int quick_check(sqlite_store *s, cairn_err *err) {
    sqlite3_stmt *st = prepare(s, "PRAGMA quick_check(1)");
    int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
    const char *res = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    int out = 0;
    if (res == NULL || strcmp(res, "ok") != 0)
        out = cairn_err_set(err, CAIRN_ECORRUPT,
                            "%s: the journal is corrupt (%s); the file was not modified",
                            s->path, res ? res : sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return out;
}

/* The write-ahead log, written ahead of time, for the engine's journal
 * writer only (a CLI command that adds one row should not pay for it).  On
 * this file system a sync that must also record a file's new size costs
 * about twice a plain one, and SQLite's log grows with every commit until
 * its first checkpoint.  So the writer extends the log with zeros, once, to
 * the size it reaches between checkpoints, and keeps it when it closes
 * (PERSIST_WAL): each commit then overwrites blocks already on the disk.
 * Zeros past the last frame are not frames to SQLite (a frame must carry the
 * log's salt and checksum), so readers and recovery stop there.  The
 * extension is written under the write lock, so no other process appends
 * meanwhile, and only past the log's current end.  A failure here costs
 * speed, never data: it is not an error. */
static void extend_wal(sqlite3_file *wal, sqlite3_int64 want) {
    static const char zeros[65536];
    sqlite3_int64 size = 0;
    if (wal->pMethods->xFileSize(wal, &size) != SQLITE_OK || size >= want) return;
    for (; size < want; size += (sqlite3_int64)sizeof zeros) {
        int n = want - size < (sqlite3_int64)sizeof zeros ? (int)(want - size) : (int)sizeof zeros;
        if (wal->pMethods->xWrite(wal, zeros, n, size) != SQLITE_OK) break;
    }
    wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
}

static void write_wal_ahead(sqlite_store *s) {
    int persist = 1, rc;
    sqlite3_file_control(s->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
    int64_t page = pragma_int(s, "PRAGMA page_size", &rc);
    if (rc != SQLITE_OK || page <= 0 || exec_sql(s, "BEGIN IMMEDIATE", NULL)) return;
    pragma_int(s, "SELECT count(*) FROM sqlite_master", &rc);   /* a read opens the log */
    sqlite3_file *wal = NULL;
    if (rc == SQLITE_OK &&
        sqlite3_file_control(s->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) == SQLITE_OK &&
        wal && wal->pMethods)
        extend_wal(wal, CAIRN_WAL_HEADER +
                            CAIRN_WAL_PREALLOC_FRAMES * (page + CAIRN_WAL_FRAME_HEADER));
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static const cairn_store_ops sqlite_ops;

/* ---- deferred sync ------------------------------------------------------ */

/* CAIRN_SYNC_DEFERRED.  SQLite commits with synchronous=NORMAL: each commit's
 * frames are written to the log but not synced (SQLite still syncs the log
 * before a checkpoint copies it, the database after, and the log's header
 * when the log starts over, so a crash never leaves a torn journal).  sq_sync
 * syncs the log through a descriptor of its own, which a second thread may
 * use while this connection writes: one fdatasync covers every frame written
 * before it, so every commit that had returned.  The log stays the same file
 * while this connection is open (SQLite deletes it only when the last
 * connection to the database closes).  Its directory is synced once here, as
 * SQLite does at the first sync of a log it has just created. */
static int open_log_for_sync(sqlite_store *s, cairn_err *err) {
    char *log = cairn_sprintf("%s-wal", s->path);
    char *dir_of = cairn_strdup(s->path);
    int rc = 0;
    s->log_fd = open(log, O_RDONLY | O_CLOEXEC);
    int dir = open(dirname(dir_of), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->log_fd < 0 || dir < 0 || fsync(dir) != 0)
        rc = cairn_err_set(err, CAIRN_EIO, "%s: cannot open the write-ahead log to sync it: %s",
                           log, strerror(errno));
    if (dir >= 0) close(dir);
    free(dir_of);
    free(log);
    return rc;
}

static int sq_sync(cairn_store *base, cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    if (s->log_fd < 0 || fdatasync(s->log_fd) == 0) return 0;
    return cairn_err_set(err, CAIRN_EIO, "%s-wal: syncing the journal failed: %s", s->path,
                         strerror(errno));
}

/* How a connection is opened: to read, to read and check the whole file
 * (nothing written, so a refusal changes nothing), to write, or as the
 * engine's journal writer. */
typedef enum { OPEN_READ, OPEN_WRITE, OPEN_CHECKED, OPEN_WRITER } open_mode;

static int configure(sqlite_store *s, cairn_sync_mode sync, open_mode mode, cairn_err *err) {
    bool read_only = mode == OPEN_READ || mode == OPEN_CHECKED;
    bool fresh = false;
    sqlite3_busy_timeout(s->db, CAIRN_BUSY_TIMEOUT_MS);
    if (check_header(s, &fresh, err)) return CAIRN_ECORRUPT;
    if (fresh && read_only)
        return cairn_err_set(err, CAIRN_ENOTFOUND, "%s: no journal here yet", s->path);
    if (!fresh && mode == OPEN_CHECKED && quick_check(s, err)) return CAIRN_ECORRUPT;
    if (!read_only) {
        if (exec_sql(s, "PRAGMA journal_mode = WAL", err)) return CAIRN_EIO;
        /* DEFERRED commits with NORMAL and syncs in sq_sync */
        if (exec_sql(s, sync == CAIRN_SYNC_FULL ? "PRAGMA synchronous = FULL"
                                                : "PRAGMA synchronous = NORMAL", err))
            return CAIRN_EIO;
        if (fresh && init_schema(s, err)) return CAIRN_EIO;
        if (s->version == CAIRN_SCHEMA_V1 && upgrade_v1(s, err)) return CAIRN_EIO;
        if (ensure_journal_id(s, err)) return CAIRN_EIO;
        char ckpt[64];
        snprintf(ckpt, sizeof ckpt, "PRAGMA wal_autocheckpoint = %d", CAIRN_WAL_CHECKPOINT_PAGES);
        exec_sql(s, ckpt, NULL);
        if (mode == OPEN_WRITER) write_wal_ahead(s);
    }
    exec_sql(s, "PRAGMA foreign_keys = ON", NULL);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA cache_size = -%d", CAIRN_CACHE_KIB);
    exec_sql(s, sql, NULL);
    for (int i = 0; i < ST_COUNT; i++) {
        if (read_only) break;
        s->stmt[i] = prepare(s, stmt_sql[i]);
        if (s->stmt[i] == NULL) return sq_db_error(s, err, "preparing statements");
    }
    if (read_only) return 0;
    int rc = sq_catch_up(s, err);
    if (rc == 0 && sync == CAIRN_SYNC_DEFERRED) rc = open_log_for_sync(s, err);
    return rc;
}

/* SQLite counts memory in use under a global mutex unless told not to: a
 * lock and unlock for every allocation, a dozen an append.  Nothing here
 * reads the counts.  The setting only takes before SQLite initialises. */
static void sqlite_setup(void) {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

void cairn_store_sqlite_init(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqlite_setup);
}

static int open_sqlite(const char *path, cairn_sync_mode sync, open_mode mode,
                       cairn_store **out, cairn_err *err) {
    bool read_only = mode == OPEN_READ || mode == OPEN_CHECKED;
    cairn_store_sqlite_init();
    struct stat sb;
    *out = NULL;
    if (read_only && stat(path, &sb) != 0)
        return cairn_err_set(err, CAIRN_ENOTFOUND, "%s: no journal here (use --db or CAIRN_DB)",
                             path);
    sqlite_store *s = cairn_calloc(1, sizeof *s);
    s->base.ops = &sqlite_ops;
    s->path = cairn_strdup(path);
    s->log_fd = -1;
    /* A reader opens the file to write (SQLite falls back to reading when it
     * may not) but writes nothing: query_only, and no checkpoint when it
     * closes.  A connection opened only to read cannot rebuild the index of
     * a write-ahead log that a crash left (SQLITE_READONLY_RECOVERY), and
     * the first reader after a power loss must. */
    int flags = SQLITE_OPEN_READWRITE | (read_only ? 0 : SQLITE_OPEN_CREATE);
    int rc = sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK && read_only &&
        (sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL) != SQLITE_OK ||
         sqlite3_exec(s->db, "PRAGMA query_only = 1", NULL, NULL, NULL) != SQLITE_OK))
        rc = SQLITE_ERROR;
    if (rc != SQLITE_OK) {
        cairn_err_set(err, CAIRN_EIO, "%s: cannot open: %s", path,
                      s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        sqlite_ops.close(&s->base);
        return CAIRN_EIO;
    }
    rc = configure(s, sync, mode, err);
    if (rc) {
        sqlite_ops.close(&s->base);
        return rc;
    }
    *out = &s->base;
    return 0;
}

int cairn_store_open_sqlite(const char *path, cairn_sync_mode sync, bool read_only,
                            cairn_store **out, cairn_err *err) {
    return open_sqlite(path, sync, read_only ? OPEN_READ : OPEN_WRITE, out, err);
}

int cairn_store_open_sqlite_writer(const char *path, cairn_sync_mode sync, cairn_store **out,
                                   cairn_err *err) {
    return open_sqlite(path, sync, OPEN_WRITER, out, err);
}

int cairn_store_check_sqlite(const char *path, cairn_err *err) {
    struct stat sb;
    if (stat(path, &sb) != 0) return 0;   /* nothing to check: a new journal */
    cairn_store *s = NULL;
    int rc = open_sqlite(path, CAIRN_SYNC_FULL, OPEN_CHECKED, &s, err);
    cairn_store_close(s);
    return rc == CAIRN_ENOTFOUND ? 0 : rc;   /* an empty file: made a journal on first write */
}

int cairn_store_open_sqlite_checked(const char *path, cairn_sync_mode sync, cairn_store **out,
                                    cairn_err *err) {
    *out = NULL;
    int rc = cairn_store_check_sqlite(path, err);
    return rc ? rc : open_sqlite(path, sync, OPEN_WRITE, out, err);
}

int cairn_journal_id(const char *db_path, char id[CAIRN_JOURNAL_ID_HEX + 1], cairn_err *err) {
    id[0] = '\0';
    cairn_store *base = NULL;
    int rc = open_sqlite(db_path, CAIRN_SYNC_FULL, OPEN_READ, &base, err);
    if (rc) return rc == CAIRN_ENOTFOUND ? 0 : rc;
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = NULL;
    /* no meta table: a journal made before journals had an id */
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'journal_id'", -1, &st,
                           NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_bytes(st, 0) == CAIRN_JOURNAL_ID_HEX)
        memcpy(id, sqlite3_column_text(st, 0), CAIRN_JOURNAL_ID_HEX + 1);
    sqlite3_finalize(st);
    cairn_store_close(base);
    return 0;
}

/* ---- appending --------------------------------------------------------- */

static int insert_run(sqlite_store *s, const cairn_event *ev) {
    sqlite3_stmt *st = s->stmt[ST_INSERT_RUN];
    sqlite3_bind_text(st, 1, ev->run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ev->data, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, ev->time_ms);
    if (s->owner) sqlite3_bind_text(st, 4, s->owner, -1, SQLITE_STATIC);
    return sq_step_done(st);
}

/* Whether the runs table has run_id's row (0 or 1), or -1 on an error.  A
 * run's row and its run_created are written in one transaction
 * (append_one): a run without its row has no event yet. */
static int run_row(sqlite_store *s, const char *run_id) {
    sqlite3_stmt *st = s->stmt[ST_RUN_ROW];
    sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* Events accepted and not yet inserted: one statement inserts a whole
 * group (CAIRN_INSERT_ROWS), rather than a statement per event, whose
 * start and finish cost SQLite as much again as the row. */
typedef struct {
    const cairn_event *ev[CAIRN_INSERT_ROWS];
    int n;
    int64_t last_id;            /* the newest event id inserted so far */
} pending_rows;

/* The statement inserting 1 << k rows, prepared the first time. */
static sqlite3_stmt *insert_stmt(sqlite_store *s, int k) {
    if (s->insert_rows[k]) return s->insert_rows[k];
    cairn_buf sql = CAIRN_BUF_INIT;
    cairn_buf_puts(&sql, "INSERT INTO events(run_id, seq, time, type, step, attempt, data, hash)"
                         " VALUES ");
    for (int i = 0; i < 1 << k; i++) cairn_buf_puts(&sql, i ? ",(?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?)");
    if (sqlite3_prepare_v2(s->db, sql.data, (int)sql.len, &s->insert_rows[k], NULL) != SQLITE_OK)
        s->insert_rows[k] = NULL;
    cairn_buf_free(&sql);
    return s->insert_rows[k];
}

/* Bind ev as the row whose first parameter is at + 1.  Every parameter is
 * bound each time, so the statement need not be cleared between uses. */
static void bind_event(sqlite3_stmt *st, int at, const cairn_event *ev) {
    sqlite3_bind_text(st, at + 1, ev->run_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, at + 2, ev->seq);
    sqlite3_bind_int64(st, at + 3, ev->time_ms);
    sqlite3_bind_text(st, at + 4, cairn_event_type_name(ev->type), -1, SQLITE_STATIC);
    if (ev->step) sqlite3_bind_text(st, at + 5, ev->step, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, at + 5);
    sqlite3_bind_int(st, at + 6, ev->attempt);
    int len = ev->data_len > 0 && ev->data_len < INT_MAX ? (int)ev->data_len : -1;
    sqlite3_bind_text(st, at + 7, ev->data, len, SQLITE_STATIC);
    sqlite3_bind_blob(st, at + 8, ev->hash, CAIRN_HASH_LEN, SQLITE_STATIC);
}

/* Insert the pending events, in order (their ids ascend as they go in): a
 * full group in one statement, fewer by the powers of two they add up to. */
static int insert_pending(sqlite_store *s, pending_rows *p) {
    int at = 0, rc = 0;
    for (int k = CAIRN_INSERT_ROWS_LOG2; rc == 0 && k >= 0; k--) {
        if (!(p->n & (1 << k))) continue;
        sqlite3_stmt *st = insert_stmt(s, k);
        if (st == NULL) return SQLITE_ERROR;
        for (int i = 0; i < 1 << k; i++) bind_event(st, 8 * i, p->ev[at + i]);
        at += 1 << k;
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        rc = rc == SQLITE_DONE ? 0 : rc;
        if (rc == 0) p->last_id = sqlite3_last_insert_rowid(s->db);
        /* one statement's rows take the ids after the newest, one each */
        for (int i = 0; rc == 0 && i < 1 << k; i++) {
            const cairn_event *ev = p->ev[at - (1 << k) + i];
            sq_tail_note(s, ev->run_id, ev->seq, p->last_id - (1 << k) + 1 + i);
        }
    }
    p->n = 0;
    return rc;
}

/* Refuse an event that does not follow its run's last one: the whole batch
 * goes with it.  A run starts with run_created at 1 (the runs table refuses
 * a second run_created of the same id).  A run_created applied from the
 * log (held) is looked for in the runs table first: a run new to the
 * journal then costs one lookup by key, not a scan of the unindexed tail
 * for its last seq (a tenth of the writer's work in W2).  A run the store
 * does not hold in memory is looked up in the events table, once the events
 * pending are in it. */
static int check_seq(sqlite_store *s, const cairn_event *ev, bool *held, pending_rows *p,
                     int64_t **last, cairn_err *err) {
    int64_t want = 1;
    int known = held && ev->type == CAIRN_EV_RUN_CREATED ? run_row(s, ev->run_id) : 1;
    *last = NULL;
    if (known < 0) return sq_db_error(s, err, "reading a run's row");
    if ((held || ev->type != CAIRN_EV_RUN_CREATED) && known) {
        if ((*last = cairn_strmap_ref(s->last_seq, ev->run_id)) != NULL) want = **last + 1;
        else if (insert_pending(s, p) != 0) return sq_db_error(s, err, "appending to the journal");
        else if (sq_next_seq(s, ev->run_id, &want) != SQLITE_OK)
            return sq_db_error(s, err, "reading a run's last event");
    }
    if (held) *held = ev->seq < want;
    if (held && *held) return 0;
    if (ev->seq == want && (want > 1 || ev->type == CAIRN_EV_RUN_CREATED)) return 0;
    if (ev->seq == want)
        return cairn_err_set(err, CAIRN_ESTATE, "%s: run %s: its first event is %s, not"
                             " run_created; nothing of this batch was written", s->path,
                             ev->run_id, cairn_event_type_name(ev->type));
    return cairn_err_set(err, CAIRN_ESTATE,
                         "%s: run %s: event %lld (%s) arrives where event %lld belongs; nothing"
                         " of this batch was written (is a second engine writing this run?)",
                         s->path, ev->run_id, (long long)ev->seq,
                         cairn_event_type_name(ev->type), (long long)want);
}

/* Take an event that follows its run's last: its row joins the pending
 * group (inserted when the group is full), and what it changes besides,
 * the run's row and the command it answers, is written now.  last is where
 * the store keeps the run's last seq, found by check_seq (NULL: not kept). */
static int append_one(sqlite_store *s, const cairn_event *ev, pending_rows *p, int64_t *last) {
    int rc = 0;
    p->ev[p->n++] = ev;
    if (p->n == CAIRN_INSERT_ROWS) rc = insert_pending(s, p);
    if (rc == 0 && ev->type == CAIRN_EV_RUN_CREATED) rc = insert_run(s, ev);
    const char *from, *status = cairn_store_status_after(ev->type, &from);
    if (rc == 0 && status) {
        sqlite3_stmt *st = s->stmt[ST_UPDATE_RUN];
        sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, ev->time_ms);
        sqlite3_bind_text(st, 3, ev->run_id, -1, SQLITE_STATIC);
        if (from) sqlite3_bind_text(st, 4, from, -1, SQLITE_STATIC);
        rc = sq_step_done(st);
    }
    if (rc == 0 && ev->command_id > 0) {
        sqlite3_stmt *st = s->stmt[ST_DELETE_COMMAND];
        sqlite3_bind_int64(st, 1, ev->command_id);
        rc = sq_step_done(st);
    }
    if (rc == 0) {
        if (cairn_event_ends_run(ev->type)) cairn_strmap_remove(s->last_seq, ev->run_id);
        else if (last) *last = ev->seq;
        else cairn_strmap_put(s->last_seq, ev->run_id, ev->seq);
    }
    return rc;
}

/* Begin, commit or roll back (stmt) an append: its own transaction, or,
 * inside batch_begin's (nested: a copy made whole or not at all), a
 * savepoint, so nothing is durable before batch_end.  A batch not ended is
 * rolled back when the store closes. */
static int append_tx(sqlite_store *s, bool nested, int stmt) {
    if (!nested) return sq_step_done(s->stmt[stmt]);
    return exec_sql(s, stmt == ST_BEGIN ? "SAVEPOINT append"
                       : stmt == ST_COMMIT ? "RELEASE append" : "ROLLBACK TO append; RELEASE append",
                    NULL);
}

/* Append the batch (skipping the events the journal holds already when
 * skip_held), and index the tail when it has grown to a batch's worth.  On
 * failure nothing was written, and last_seq (which may have run ahead) is
 * emptied. */
static int append_batch(sqlite_store *s, cairn_event *const *events, int n, bool skip_held,
                        cairn_err *err) {
    pending_rows p = {.n = 0, .last_id = 0};
    int rc = 0;
    bool held = false, nested = s->in_batch;
    if (nested) sq_tail_forget(s);   /* the batch may yet be rolled back */
    if (append_tx(s, nested, ST_BEGIN) != 0) return sq_db_error(s, err, "starting a transaction");
    if (sq_forget_if_changed(s) != SQLITE_OK) rc = sq_db_error(s, err, "reading the data version");
    for (int i = 0; rc == 0 && i < n; i++) {
        int64_t *last;
        rc = check_seq(s, events[i], skip_held ? &held : NULL, &p, &last, err);
        if (held) continue;
        if (rc == 0 && append_one(s, events[i], &p, last) != 0)
            rc = sq_db_error(s, err, "appending to the journal");
    }
    if (rc == 0 && insert_pending(s, &p) != 0) rc = sq_db_error(s, err, "appending to the journal");
    int64_t last_id = p.last_id;
    bool index = rc == 0 && last_id - s->upto >= CAIRN_EVENT_INDEX_BATCH;
    if (index && sq_index_tail(s, last_id) != 0) rc = sq_db_error(s, err, "indexing the journal");
    if (rc == 0 && append_tx(s, nested, ST_COMMIT) != 0) rc = sq_db_error(s, err, "committing");
    if (rc) {
        append_tx(s, nested, ST_ROLLBACK);
        cairn_strmap_clear(s->last_seq);
        sq_tail_forget(s);
        return rc;
    }
    if (index) s->upto = last_id;
    if (last_id) s->last_event_id = last_id;
    return 0;
}

static int sq_append(cairn_store *base, cairn_event *const *events, int n, cairn_err *err) {
    return append_batch((sqlite_store *)base, events, n, false, err);
}

static int sq_append_missing(cairn_store *base, cairn_event *const *events, int n,
                             cairn_err *err) {
    return append_batch((sqlite_store *)base, events, n, true, err);
}

/* ---- reading ----------------------------------------------------------- */

char *sq_col_text(sqlite3_stmt *st, int i) {
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? cairn_strdup((const char *)t) : NULL;
}

void sq_fill_run(sqlite3_stmt *st, cairn_run_row *r) {
    r->id = sq_col_text(st, 0);
    r->workflow = sq_col_text(st, 1);
    r->def_hash = sq_col_text(st, 2);
    r->parent_id = sq_col_text(st, 3);
    r->status = sq_col_text(st, 4);
    r->created_at = sqlite3_column_int64(st, 5);
    r->updated_at = sqlite3_column_int64(st, 6);
    r->owner = sq_col_text(st, 7);
}


/* Every row st selects (RUN_COLUMNS); st is finalized. */
static int collect_runs(sqlite_store *s, sqlite3_stmt *st, cairn_run_row **out, int *n,
                        cairn_err *err) {
    int cap = 16, count = 0, rc;
    cairn_run_row *rows = cairn_calloc((size_t)cap, sizeof *rows);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            cap *= 2;
            rows = cairn_realloc(rows, (size_t)cap * sizeof *rows);
        }
        sq_fill_run(st, &rows[count++]);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        cairn_run_rows_free(rows, count);
        return sq_db_error(s, err, "listing runs");
    }
    *out = rows;
    *n = count;
    return 0;
}

static int sq_list_runs(cairn_store *base, const char *filter, cairn_run_row **out, int *n,
                        cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = prepare(s, filter
        ? "SELECT " RUN_COLUMNS " FROM runs WHERE instr(',' || ? || ',', ',' || status || ',') > 0"
          " ORDER BY created_at DESC, id DESC"
        : "SELECT " RUN_COLUMNS " FROM runs ORDER BY created_at DESC, id DESC");
    if (!st) return sq_db_error(s, err, "listing runs");
    if (filter) sqlite3_bind_text(st, 1, filter, -1, SQLITE_STATIC);
    return collect_runs(s, st, out, n, err);
}

static int sq_get_run(cairn_store *base, const char *run_id, cairn_run_row *out,
                      cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = sq_kept(s, &s->get_run, "SELECT " RUN_COLUMNS " FROM runs WHERE id = ?");
    if (!st) return sq_db_error(s, err, "reading a run");
    sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), out_rc = 0;
    memset(out, 0, sizeof *out);
    if (rc == SQLITE_ROW)
        sq_fill_run(st, out);
    else if (rc == SQLITE_DONE)
        out_rc = cairn_err_set(err, CAIRN_ENOTFOUND, "no run '%s' in %s", run_id, s->path);
    else
        out_rc = sq_db_error(s, err, "reading a run");
    sqlite3_reset(st);
    return out_rc;
}

static int sq_put_definition(cairn_store *base, const char *hash, const char *name,
                             const char *path, const char *source, size_t len, cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    /* the newest load of a definition is the one child runs get by name */
    sqlite3_stmt *st = prepare(s, "INSERT INTO definitions(hash, name, path, source, created_at)"
                                  " VALUES (?,?,?,?,?) ON CONFLICT(hash) DO UPDATE"
                                  " SET created_at = excluded.created_at");
    if (!st) return sq_db_error(s, err, "storing a definition");
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, path, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, source, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, cairn_wall_ms());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sq_db_error(s, err, "storing a definition");
}

static int sq_get_definition(cairn_store *base, const char *hash, char **source, size_t *len,
                             char **path, cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = prepare(s, "SELECT source, path FROM definitions WHERE hash = ?");
    if (!st) return sq_db_error(s, err, "reading a definition");
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), out = 0;
    if (rc == SQLITE_ROW) {
        *len = (size_t)sqlite3_column_bytes(st, 0);
        *source = cairn_strndup(sqlite3_column_blob(st, 0), *len);
        *path = sq_col_text(st, 1);
    } else {
        out = cairn_err_set(err, CAIRN_ENOTFOUND, "definition %s is missing from %s", hash,
                            s->path);
    }
    sqlite3_finalize(st);
    return out;
}

static int sq_put_steps(cairn_store *base, const char *hash, const char *steps,
                        cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    static const char sql[] = "INSERT OR REPLACE INTO definition_steps(hash, steps) VALUES (?,?)";
    sqlite3_stmt *st = prepare(s, sql);
    /* a journal made before the table: the schema adds what is missing */
    if (!st && exec_sql(s, cairn_schema_sql, NULL) == 0) st = prepare(s, sql);
    if (!st) return sq_db_error(s, err, "storing a definition's steps");
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, steps, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sq_db_error(s, err, "storing a definition's steps");
}

static int sq_get_steps(cairn_store *base, const char *hash, char **steps, cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    /* no table: a journal made before it existed, as a missing row */
    sqlite3_stmt *st = prepare(s, "SELECT steps FROM definition_steps WHERE hash = ?");
    int rc = SQLITE_DONE, out = 0;
    *steps = NULL;
    if (st) {
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW)
        *steps = sq_col_text(st, 0);
    else if (rc == SQLITE_DONE)
        out = cairn_err_set(err, CAIRN_ENOTFOUND, "definition %s: no steps stored", hash);
    else
        out = sq_db_error(s, err, "reading a definition's steps");
    sqlite3_finalize(st);
    return out;
}

static int sq_find_definition(cairn_store *base, const char *name, char hash[65],
                              cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = prepare(s, "SELECT hash FROM definitions WHERE name = ?"
                                  " ORDER BY created_at DESC, rowid DESC LIMIT 1");
    if (!st) return sq_db_error(s, err, "finding a definition");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), out = 0;
    if (rc == SQLITE_ROW)
        snprintf(hash, 65, "%s", (const char *)sqlite3_column_text(st, 0));
    else
        out = cairn_err_set(err, CAIRN_ENOTFOUND, "no workflow named '%s' is loaded (cairn run"
                            " loads every *.yaml beside its FILE)", name);
    sqlite3_finalize(st);
    return out;
}

/* ---- meta ------------------------------------------------------------- */

static int sq_get_meta(cairn_store *base, const char *key, char **value, cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = prepare(s, "SELECT value FROM meta WHERE key = ?");
    int rc = st ? SQLITE_OK : SQLITE_DONE, out = 0;   /* no meta table: an older journal */
    *value = NULL;
    if (st) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW)
        *value = cairn_strdup((const char *)sqlite3_column_text(st, 0));
    else if (rc == SQLITE_DONE)
        out = cairn_err_set(err, CAIRN_ENOTFOUND, "%s: no '%s' in meta", s->path, key);
    else
        out = sq_db_error(s, err, "reading the journal's meta table");
    sqlite3_finalize(st);
    return out;
}

static int sq_put_meta(cairn_store *base, const char *key, const char *value, cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = prepare(s, "INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)");
    if (!st) return sq_db_error(s, err, "writing the journal's meta table");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    int out = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, err, "writing the journal's meta table");
    sqlite3_finalize(st);
    return out;
}

/* ---- ownership and commands -------------------------------------------- */

/* A savepoint, so a claim nests inside a batch (sq_batch_begin) or stands
 * alone as its own transaction. */
static int sq_claim_run(cairn_store *base, const char *run_id, const char *owner,
                        bool (*alive)(const char *owner), cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    cairn_run_row row;
    sqlite3_stmt *begin = sq_kept(s, &s->claim_begin, "SAVEPOINT claim");
    if (begin == NULL || sq_step_done(begin) != 0) return sq_db_error(s, err, "claiming a run");
    int rc = sq_get_run(base, run_id, &row, err);
    if (rc == 0 && row.owner && strcmp(row.owner, owner) != 0 && alive(row.owner))
        rc = cairn_err_set(err, CAIRN_EBUSY, "run %s is held by a running engine (%s)", run_id,
                           row.owner);
    if (rc == 0 && (row.owner == NULL || strcmp(row.owner, owner) != 0)) {
        sqlite3_stmt *st = sq_kept(s, &s->claim, "UPDATE runs SET owner = ? WHERE id = ?");
        if (st) {
            sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, run_id, -1, SQLITE_STATIC);
        }
        if (st == NULL || sqlite3_step(st) != SQLITE_DONE) rc = sq_db_error(s, err, "claiming a run");
        if (st) sqlite3_reset(st);
    }
    cairn_run_row_clear(&row);
    if (rc) {
        sqlite3_exec(s->db, "ROLLBACK TO claim; RELEASE claim", NULL, NULL, NULL);
        return rc;
    }
    sqlite3_stmt *end = sq_kept(s, &s->claim_end, "RELEASE claim");
    return end && sq_step_done(end) == 0 ? 0 : sq_db_error(s, err, "claiming a run");
}

static int sq_batch_begin(cairn_store *base, cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    int rc = exec_sql(s, "BEGIN IMMEDIATE", err);
    s->in_batch = rc == 0;
    return rc;
}

static int sq_batch_end(cairn_store *base, cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    s->in_batch = false;
    return exec_sql(s, "COMMIT", err);
}

static int sq_release_runs(cairn_store *base, const char *owner, cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = prepare(s, "UPDATE runs SET owner = NULL WHERE owner = ?");
    if (!st) return sq_db_error(s, err, "releasing runs");
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sq_db_error(s, err, "releasing runs");
}

static int sq_add_command(cairn_store *base, const char *run_id, const char *type,
                          const char *data, cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = prepare(s, "INSERT INTO commands(run_id, type, data, created_at)"
                                  " VALUES (?,?,?,?)");
    if (!st) return sq_db_error(s, err, "adding a command");
    sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, data ? data : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, cairn_wall_ms());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sq_db_error(s, err, "adding a command");
}

static int sq_delete_command(cairn_store *base, int64_t id, cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = prepare(s, "DELETE FROM commands WHERE id = ?");
    if (!st) return sq_db_error(s, err, "deleting a command");
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sq_db_error(s, err, "deleting a command");
}

/* The rows of st, a query of commands bound and ready; reset after. */
static int read_commands(sqlite_store *s, sqlite3_stmt *st, cairn_command **out, int *n,
                         cairn_err *err) {
    int cap = 4, count = 0, rc;
    cairn_command *cmds = cairn_calloc((size_t)cap, sizeof *cmds);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            cap *= 2;
            cmds = cairn_realloc(cmds, (size_t)cap * sizeof *cmds);
        }
        cairn_command *c = &cmds[count++];
        c->id = sqlite3_column_int64(st, 0);
        c->run_id = sq_col_text(st, 1);
        c->type = sq_col_text(st, 2);
        c->data = sq_col_text(st, 3);
        c->created_at = sqlite3_column_int64(st, 4);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        cairn_commands_free(cmds, count);
        return sq_db_error(s, err, "reading commands");
    }
    *out = cmds;
    *n = count;
    return 0;
}

#define COMMAND_COLUMNS "SELECT c.id, c.run_id, c.type, c.data, c.created_at FROM commands c"

static int sq_list_commands(cairn_store *base, const char *owner, cairn_command **out, int *n,
                            cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = sq_kept(s, &s->list_commands, COMMAND_COLUMNS
                               " JOIN runs r ON r.id = c.run_id WHERE r.owner = ? ORDER BY c.id");
    if (!st) return sq_db_error(s, err, "reading commands");
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    return read_commands(s, st, out, n, err);
}

static int sq_run_commands(cairn_store *base, const char *run_id, cairn_command **out, int *n,
                           cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, COMMAND_COLUMNS " WHERE c.run_id = ? ORDER BY c.id", -1, &st,
                           NULL) != SQLITE_OK)
        return sq_db_error(s, err, "reading commands");
    sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
    int rc = read_commands(s, st, out, n, err);
    sqlite3_finalize(st);
    return rc;
}

/* ---- pages of runs, requests by idempotency key ---------------------------- */

/* status IN (...) from a comma list, bound in order from first; the next. */
static int bind_statuses(sqlite3_stmt *st, int first, const char *status) {
    const char *p = status;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        sqlite3_bind_text(st, first++, p, (int)len, SQLITE_TRANSIENT);
        p = comma ? comma + 1 : p + len;
    }
    return first;
}

static void page_sql(const cairn_run_page *q, cairn_buf *sql) {
    cairn_buf_puts(sql, "SELECT " RUN_COLUMNS " FROM runs WHERE 1");
    if (q->status && *q->status) {
        cairn_buf_puts(sql, " AND status IN (?");
        for (const char *p = q->status; *p; p++)
            if (*p == ',') cairn_buf_puts(sql, ",?");
        cairn_buf_putc(sql, ')');
    }
    if (q->workflow && *q->workflow) cairn_buf_puts(sql, " AND workflow = ?");
    if (q->after_id && *q->after_id)
        cairn_buf_puts(sql, " AND (created_at < ? OR (created_at = ? AND id < ?))");
    cairn_buf_puts(sql, " ORDER BY created_at DESC, id DESC LIMIT ?");
}

static int sq_page_runs(cairn_store *base, const cairn_run_page *q, cairn_run_row **out, int *n,
                        cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    cairn_buf sql = {0};
    page_sql(q, &sql);
    sqlite3_stmt *st = prepare(s, sql.data);
    cairn_buf_free(&sql);
    if (!st) return sq_db_error(s, err, "listing runs");
    int k = bind_statuses(st, 1, q->status);
    if (q->workflow && *q->workflow) sqlite3_bind_text(st, k++, q->workflow, -1, SQLITE_STATIC);
    if (q->after_id && *q->after_id) {
        sqlite3_bind_int64(st, k++, q->after_at);
        sqlite3_bind_int64(st, k++, q->after_at);
        sqlite3_bind_text(st, k++, q->after_id, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int(st, k, q->limit);
    return collect_runs(s, st, out, n, err);
}

static int sq_get_request(cairn_store *base, const char *key, char run_id[CAIRN_RUN_ID_MAX],
                          char request[65], cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    run_id[0] = request[0] = '\0';
    /* no table: a journal no server has opened yet, as a new key */
    sqlite3_stmt *st = prepare(s, "SELECT run_id, request FROM idempotency WHERE key = ?");
    if (!st) return 0;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(run_id, CAIRN_RUN_ID_MAX, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(request, 65, "%s", (const char *)sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_db_error(s, err, "reading idempotency keys");
}

static int sq_put_request(cairn_store *base, const char *key, const char *request,
                          const char *run_id, cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    static const char sql[] =
        "INSERT INTO idempotency(key, request, run_id, created_at) VALUES (?,?,?,?)";
    sqlite3_stmt *st = prepare(s, sql);
    /* a journal made before the table: the schema adds what is missing */
    if (!st && exec_sql(s, cairn_schema_sql, NULL) == 0) st = prepare(s, sql);
    if (!st) return sq_db_error(s, err, "recording an idempotency key");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, request, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, cairn_wall_ms());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sq_db_error(s, err, "recording an idempotency key");
}

static void sq_set_owner(cairn_store *base, const char *owner) {
    sqlite_store *s = (sqlite_store *)base;
    free(s->owner);
    s->owner = cairn_strdup(owner);
}

static int64_t sq_data_version(cairn_store *base) {
    sqlite_store *s = (sqlite_store *)base;
    int rc;
    return pragma_int(s, "PRAGMA data_version", &rc);
}

static void sq_close(cairn_store *base) {
    sqlite_store *s = (sqlite_store *)base;
    for (int i = 0; i < ST_COUNT; i++) sqlite3_finalize(s->stmt[i]);
    for (int k = 0; k <= CAIRN_INSERT_ROWS_LOG2; k++) sqlite3_finalize(s->insert_rows[k]);
    sqlite3_finalize(s->get_run);
    sqlite3_finalize(s->load_rows);
    sqlite3_finalize(s->load_one);
    sqlite3_finalize(s->load_tail);
    sqlite3_finalize(s->load_upto);
    sqlite3_finalize(s->load_begin);
    sqlite3_finalize(s->load_end);
    sqlite3_finalize(s->claim);
    sqlite3_finalize(s->claim_begin);
    sqlite3_finalize(s->claim_end);
    sqlite3_finalize(s->list_commands);
    sqlite3_close(s->db);
    if (s->log_fd >= 0) close(s->log_fd);
    cairn_strmap_free(s->last_seq);
    sq_tail_free(s);
    free(s->owner);
    free(s->path);
    free(s);
}

static const cairn_store_ops sqlite_ops = {
    .name = "sqlite",
    .append = sq_append,
    .append_missing = sq_append_missing,
    .sync = sq_sync,
    .load_events = sq_load_events,
    .list_runs = sq_list_runs,
    .get_run = sq_get_run,
    .put_definition = sq_put_definition,
    .get_definition = sq_get_definition,
    .put_steps = sq_put_steps,
    .get_steps = sq_get_steps,
    .find_definition = sq_find_definition,
    .claim_run = sq_claim_run,
    .batch_begin = sq_batch_begin,
    .batch_end = sq_batch_end,
    .release_runs = sq_release_runs,
    .add_command = sq_add_command,
    .list_commands = sq_list_commands,
    .run_commands = sq_run_commands,
    .delete_command = sq_delete_command,
    .page_runs = sq_page_runs,
    .get_request = sq_get_request,
    .put_request = sq_put_request,
    .claim = sq_claim,
    .get_claim = sq_get_claim,
    .set_owner = sq_set_owner,
    .data_version = sq_data_version,
    .get_meta = sq_get_meta,
    .put_meta = sq_put_meta,
    .run_ids = sq_run_ids,
    .dump = sq_dump,
    .load = sq_load,
    .scan = sq_scan,
    .close = sq_close,
};
