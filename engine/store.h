/*
 * store.h - one connection to the journal, behind a small method table.
 *
 * Only the journal's own files (journal.h is the door) open stores; the
 * orchestrator and the CLI hold a cairn_journal.  store_sqlite.c is the
 * embedded default; another backend (PostgreSQL, or a test double that
 * fails the Nth write) is one more file filling the table.
 *
 * Transactions: append() writes a batch of events and every projection they
 * change (runs rows, answered commands) in one transaction, durably, or
 * nothing.  A failed append leaves the store as it was; the engine then stops
 * trusting its memory (sticky error) and exits, and the next start reloads.
 *
 * Fencing (several engines on one PostgreSQL journal; store_pg.h): an
 * engine's batch is appended with cairn_pg_append_held, which checks in the
 * batch's transaction, in one statement that locks their rows, that every
 * run it writes to is still held by that engine at the epoch it claimed
 * (runs.epoch, which every claim takes anew).  A run that is not is
 * refused: its events are left out and the rest is committed.  The epochs
 * held are the journal's (journal_lease.c), not the store's.  SQLite has
 * one writing engine at a time (the commit log): no fence.
 *
 * Threads: a store is used by one thread at a time (sync() excepted, see
 * there).  An engine's journal gives its writer connection to the journal
 * writer thread once execution starts; a reader (the CLI) opens a journal
 * of its own.
 *
 * Memory: everything returned belongs to the caller (free with the matching
 * *_free); strings and events passed in are borrowed.
 */
#ifndef CAIRN_STORE_H
#define CAIRN_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "engine/event.h"

typedef struct cairn_store cairn_store;

typedef struct cairn_run_row {
    char *id, *workflow, *def_hash, *parent_id, *status, *owner;
    int64_t created_at, updated_at;
} cairn_run_row;

typedef struct cairn_command {
    int64_t id;
    char *run_id, *type, *data;
    int64_t created_at;
} cairn_command;

/* Which runs a page lists: newest first (created_at, then id, descending),
 * from the newest or past a run (the last of the page before). */
typedef struct cairn_run_page {
    const char *status;          /* a comma list, or NULL for every status */
    const char *workflow;        /* NULL for every workflow */
    const char *after_id;        /* NULL: from the newest; else past this run... */
    int64_t after_at;            /* ...created at this time */
    int limit;
} cairn_run_page;

/* What a copy of a journal (cairn_journal_migrate) moves beside the runs'
 * events, one kind of row at a time.  The columns of each kind, in order:
 *   META         text: key, value
 *   DEFINITIONS  text: hash, name, path, source (len[3] bytes, any byte),
 *                steps (journal.h; NULL for none); num: created_at
 *   COMMANDS     text: run_id, type, data; num: created_at
 *   REQUESTS     text: key, request, run_id; num: created_at (idempotency)
 *   CLAIMS       text: space, key, value; num: created_at, updated_at */
typedef enum {
    CAIRN_DUMP_META, CAIRN_DUMP_DEFINITIONS, CAIRN_DUMP_COMMANDS, CAIRN_DUMP_REQUESTS,
    CAIRN_DUMP_CLAIMS, CAIRN_DUMP_KINDS
} cairn_dump_kind;

#define CAIRN_DUMP_TEXTS 5
typedef struct cairn_dump_row {
    const char *text[CAIRN_DUMP_TEXTS];
    size_t len[CAIRN_DUMP_TEXTS];
    int64_t num[2];
} cairn_dump_row;

/* Called with each row (borrowed, valid during the call); non-zero stops. */
typedef int (*cairn_dump_cb)(const cairn_dump_row *row, void *ud, cairn_err *err);

/* What verify's one pass over a whole journal (journal_audit.c) is given
 * by a store's scan: row() with every runs row (its strings become the
 * callee's); then, from a store that keeps an event index (SQLite's),
 * indexed() once with the last event id it covers and index_row() with
 * each of its rows (a run's events from first_seq on, as an idlist.h list
 * of ids; a run's rows in first_seq order), borrowed; then between() once,
 * which may read through the same store (inside the pass's snapshot;
 * non-zero stops); then event() with every event in the order they were
 * appended (id), borrowed for the call.  Without an index every event
 * counts as the tail. */
typedef struct cairn_scan_cb {
    void (*row)(void *ud, cairn_run_row *row);
    void (*indexed)(void *ud, int64_t upto);
    void (*index_row)(void *ud, const char *run_id, int64_t first_seq, const unsigned char *ids,
                      size_t len);
    int (*between)(void *ud, cairn_err *err);
    void (*event)(void *ud, int64_t id, const cairn_event *ev);
    void *ud;
} cairn_scan_cb;

typedef struct cairn_store_ops {
    const char *name;
    /* Write events[0..n) and their projections in one durable transaction.
     * Each event's seq must follow its run's last (1 for run_created): an
     * event that does not (a second writer) fails the whole batch.  Opened
     * with CAIRN_SYNC_DEFERRED, durable only once sync() has returned. */
    int (*append)(cairn_store *s, cairn_event *const *events, int n, cairn_err *err);
    /* As append, but an event whose seq is below its run's next is skipped
     * (the store holds it already): replaying a commit log (clog.h) twice
     * changes nothing.  A gap still fails the batch. */
    int (*append_missing)(cairn_store *s, cairn_event *const *events, int n, cairn_err *err);
    /* Make every append that returned before this call durable: one sync
     * however many commits it covers; 0 at once unless the store was opened
     * with CAIRN_SYNC_DEFERRED.  The one call that may run on a second thread
     * while the owning thread appends.  After a failure nothing more is known
     * to be durable (a later sync may not report the lost pages): treat every
     * later commit as failed too. */
    int (*sync)(cairn_store *s, cairn_err *err);
    /* All events of a run, in seq order. */
    int (*load_events)(cairn_store *s, const char *run_id, cairn_event **out, int *n,
                       cairn_err *err);
    /* Runs, newest first; status_filter NULL for all, else a comma list. */
    int (*list_runs)(cairn_store *s, const char *status_filter, cairn_run_row **out,
                     int *n, cairn_err *err);
    int (*get_run)(cairn_store *s, const char *run_id, cairn_run_row *out, cairn_err *err);
    int (*put_definition)(cairn_store *s, const char *hash, const char *name,
                          const char *path, const char *source, size_t len, cairn_err *err);
    int (*get_definition)(cairn_store *s, const char *hash, char **source, size_t *len,
                          char **path, cairn_err *err);
    /* The step ids a run of the definition journals, one a line (journal.h,
     * cairn_journal_put_definition), so a reader need not compile it.
     * get_steps: CAIRN_ENOTFOUND for a definition stored without them.
     * NULL in a store that does not keep them. */
    int (*put_steps)(cairn_store *s, const char *hash, const char *steps, cairn_err *err);
    int (*get_steps)(cairn_store *s, const char *hash, char **steps, cairn_err *err);
    /* The hash of the newest definition named name (child workflows). */
    int (*find_definition)(cairn_store *s, const char *name, char hash[65], cairn_err *err);
    /* Take ownership of a run if it has no live owner (alive() decides;
     * PostgreSQL: NULL lets the owner's lease decide, store_pg.h).
     * Returns 0 when owned by `owner` afterwards, CAIRN_EBUSY when another
     * live engine holds it. */
    int (*claim_run)(cairn_store *s, const char *run_id, const char *owner,
                     bool (*alive)(const char *owner), cairn_err *err);
    /* Group many claims into one transaction (one sync): resume of many runs.
     * Appends and a copy's rows (load) inside it are part of it (each
     * append a savepoint, undone alone when it fails): a copy is made whole
     * or not at all.
     * Closing the store before batch_end rolls the transaction back; do so
     * after a failure (what the store remembers may be of rows gone). */
    int (*batch_begin)(cairn_store *s, cairn_err *err);
    int (*batch_end)(cairn_store *s, cairn_err *err);
    /* Give up ownership of every run held by owner (clean shutdown). */
    int (*release_runs)(cairn_store *s, const char *owner, cairn_err *err);
    int (*add_command)(cairn_store *s, const char *run_id, const char *type,
                       const char *data, cairn_err *err);
    /* Drop a command that needs no event (already done, or moot). */
    int (*delete_command)(cairn_store *s, int64_t id, cairn_err *err);
    /* Commands for runs owned by owner, oldest first. */
    int (*list_commands)(cairn_store *s, const char *owner, cairn_command **out, int *n,
                         cairn_err *err);
    /* Commands for run_id not yet carried out, oldest first (decisions made
     * while no engine held the run wait here for the next resume). */
    int (*run_commands)(cairn_store *s, const char *run_id, cairn_command **out, int *n,
                        cairn_err *err);
    /* A page of runs (store.h: cairn_run_page), newest first. */
    int (*page_runs)(cairn_store *s, const cairn_run_page *q, cairn_run_row **out, int *n,
                     cairn_err *err);
    /* The run started for an idempotency key and the hash of the request
     * that started it; run_id "" (and 0) when the key is new. */
    int (*get_request)(cairn_store *s, const char *key, char run_id[CAIRN_RUN_ID_MAX],
                       char request[65], cairn_err *err);
    /* Record that key's request (its hash) starts run_id. */
    int (*put_request)(cairn_store *s, const char *key, const char *request, const char *run_id,
                       cairn_err *err);
    /* Claims (journal.h, cairn_journal_claim): take (space, key) for value
     * when it is free or holds replace (non-NULL), in one transaction; else
     * CAIRN_EEXISTS and *held (the caller's) receives what holds it. */
    int (*claim)(cairn_store *s, const char *space, const char *key, const char *value,
                 const char *replace, char **held, cairn_err *err);
    /* The value holding (space, key), the caller's, or CAIRN_ENOTFOUND. */
    int (*get_claim)(cairn_store *s, const char *space, const char *key, char **value,
                     cairn_err *err);
    /* The owner string recorded on runs this connection creates. */
    void (*set_owner)(cairn_store *s, const char *owner);
    /* A number that changes when another connection commits (cheap to poll). */
    int64_t (*data_version)(cairn_store *s);
    /* The journal's facts about itself (its id, its key check value): *value
     * (the caller's) for key, or CAIRN_ENOTFOUND.  put_meta keeps a value
     * already there.  A store without them (a test double) leaves them NULL. */
    int (*get_meta)(cairn_store *s, const char *key, char **value, cairn_err *err);
    int (*put_meta)(cairn_store *s, const char *key, const char *value, cairn_err *err);
    /* Every run id in the runs table or in the events, in id order (bytes),
     * with whether it has a runs row (journal.h, cairn_journal_run_ids). */
    int (*run_ids)(cairn_store *s, char ***ids, bool **in_runs, int *n, cairn_err *err);
    /* Every row of a kind (cairn_dump_kind), oldest first; a table the
     * journal does not have yet (an older SQLite journal) has none.  load
     * writes one such row as it is (META replaces a value), for a copy. */
    int (*dump)(cairn_store *s, cairn_dump_kind kind, cairn_dump_cb cb, void *ud, cairn_err *err);
    int (*load)(cairn_store *s, cairn_dump_kind kind, const cairn_dump_row *row, cairn_err *err);
    /* The whole journal as cairn_scan_cb says, in one read transaction that
     * sees one snapshot, the events streamed rather than loaded at once.
     * NULL in a store without it (runs are then verified one by one). */
    int (*scan)(cairn_store *s, const cairn_scan_cb *cb, cairn_err *err);
    void (*close)(cairn_store *s);
} cairn_store_ops;

struct cairn_store {
    const cairn_store_ops *ops;
};

/* Durability of commits: FULL syncs every commit (the default); NORMAL is the
 * relaxed mode (a power loss may lose the newest commits, never corrupt).
 * DEFERRED is FULL with the sync taken out of append: a commit is whole at
 * once (other connections see it, a crash of the process keeps it) and
 * durable against power loss once a later sync() returns.  It is how the
 * journal writer writes one batch while the last one syncs. */
typedef enum { CAIRN_SYNC_FULL, CAIRN_SYNC_NORMAL, CAIRN_SYNC_DEFERRED } cairn_sync_mode;

/* Open (creating if absent) the SQLite journal at path.  A file that is not a
 * Cairn journal is refused with CAIRN_ECORRUPT and not modified.  read_only
 * opens without creating or writing anything.  A read-write open checkpoints
 * every CAIRN_WAL_CHECKPOINT_PAGES pages written to the write-ahead log
 * (PATH-wal).  A checkpoint copies each page changed since the last one back into the
 * database, once however often it changed: with thousands of runs in flight
 * every commit changes a page per run, so fewer, larger checkpoints copy far
 * less (SQLite's default is 1,000 pages). */
#define CAIRN_WAL_CHECKPOINT_PAGES 4000
#define CAIRN_WAL_PREALLOC_FRAMES (CAIRN_WAL_CHECKPOINT_PAGES + 400)   /* and the last commits */
/* Events are indexed by (run, seq) in bulk, this many at a time; a run's
 * load scans at most this many unindexed events (store_sqlite_index.c), about
 * 5 ms.  Larger batches mean fewer, longer rows when many runs are in
 * flight: with 1,000 runs, 4,096 made a row per four events and the rows
 * were a tenth of the writer's time. */
#define CAIRN_EVENT_INDEX_BATCH 16384
int cairn_store_open_sqlite(const char *path, cairn_sync_mode sync, bool read_only,
                            cairn_store **out, cairn_err *err);

/* Check the whole file's integrity (PRAGMA quick_check, which reads every
 * page) through a connection that writes nothing: a corrupt journal is
 * refused with CAIRN_ECORRUPT and nothing is written.  0 when there is no
 * journal yet.  What an engine does first, once per start. */
int cairn_store_check_sqlite(const char *path, cairn_err *err);

/* cairn_store_check_sqlite, then cairn_store_open_sqlite read-write. */
int cairn_store_open_sqlite_checked(const char *path, cairn_sync_mode sync, cairn_store **out,
                                    cairn_err *err);

/* The journal's id (schema/journal.sql, table meta): CAIRN_JOURNAL_ID_HEX
 * hex digits made at random when the journal is created, or by the first
 * connection that writes to a journal made before journals had one.  The
 * commit log is bound to it (clog.h).  id receives "" when there is no
 * journal at path or it has no id yet.  Reads through a connection of its
 * own that writes nothing. */
#define CAIRN_JOURNAL_ID_HEX 32
int cairn_journal_id(const char *path, char id[CAIRN_JOURNAL_ID_HEX + 1], cairn_err *err);

/* As cairn_store_open_sqlite, read-write, for the engine's journal writer,
 * which commits at a rate: it also extends the write-ahead log with zeros to
 * CAIRN_WAL_PREALLOC_FRAMES pages, once, and keeps the log at that size when
 * the store closes, so that commits overwrite blocks already on disk and
 * never pay for a file growing. */
int cairn_store_open_sqlite_writer(const char *path, cairn_sync_mode sync, cairn_store **out,
                                   cairn_err *err);

/* Process-wide SQLite settings, once; every open calls it.  A program that
 * uses SQLite itself before it opens a store calls it first. */
void cairn_store_sqlite_init(void);

/* The runs row's status after event type t, or NULL when t leaves it;
 * *from: the status the row must have for the change (NULL: any), as the
 * fold has it (a pause changes only a running run).  Every store projects
 * the runs table by it. */
const char *cairn_store_status_after(cairn_event_type t, const char **from);

/* Wrappers over the ops, and frees for what they return. */
void cairn_store_close(cairn_store *s);
void cairn_run_rows_free(cairn_run_row *rows, int n);
void cairn_run_row_clear(cairn_run_row *row);
void cairn_events_free(cairn_event *evs, int n);
void cairn_commands_free(cairn_command *cmds, int n);

/* Where the local files of the journal at where are named from (PATH.key,
 * PATH.secrets, PATH.secrets.key, PATH.tokens, PATH.sock): a SQLite
 * journal's path; for a journal in a database (a URL), $CAIRN_FILES, or
 * NULL when that is unset.  Borrowed (where, or the environment's). */
const char *cairn_journal_files(const char *where);

/* The journal's HMAC key, kept beside the database as PATH.key (32 random
 * bytes, mode 0600; PATH as cairn_journal_files gives it), created when
 * create is true and it does not exist; or taken from CAIRN_JOURNAL_KEY (64
 * hex digits) when that is set.  Never in the database: the chain guards
 * against its editors.  A journal in a database with neither is
 * CAIRN_ENOTFOUND, naming both. */
int cairn_journal_key(const char *db_path, bool create, unsigned char key[32],
                      cairn_err *err);

/* Make key the key of the journal at where (a copy's target, which must
 * be under its source's key): 0 when it is already (CAIRN_EAUTH when that
 * journal has another), else it is written to its key file, which is made
 * (mode 0600).  CAIRN_JOURNAL_KEY, when set, is both journals' key. */
int cairn_journal_key_give(const char *where, const unsigned char key[32], cairn_err *err);

/* Whether key is this journal's key, so that a wrong one is named as such
 * rather than read as every chain broken.  The journal keeps a key check
 * value in meta (key_check: hex HMAC-SHA-256, under the key, of
 * CAIRN_KEY_CHECK_TEXT).  A key that does not give it is refused with
 * CAIRN_EAUTH, "the journal key does not match this journal", naming where
 * the key came from (db_path.key or CAIRN_JOURNAL_KEY).  A journal with no
 * value yet passes; when record is true (a writer: the engine opening it)
 * the value is stored, after the key is checked against the first event of
 * the journal's oldest run if it has one (a journal made before the value
 * existed), so a wrong key is never recorded. */
#define CAIRN_KEY_CHECK_TEXT "cairn journal key check"
int cairn_journal_key_check(cairn_store *s, const char *db_path, const unsigned char key[32],
                            bool record, cairn_err *err);

#endif
