/*
 * journal_int.h - what journal.c shares with the backends (journal_sqlite.c,
 * journal_pg.c: each fills a cairn_journal_backend).
 * Private to the journal's own files.
 */
#ifndef CAIRN_JOURNAL_INT_H
#define CAIRN_JOURNAL_INT_H

#include "common/strmap.h"
#include "engine/clog.h"
#include "engine/journal.h"
#include "engine/journal_lease.h"

typedef struct cairn_journal_backend {
    /* Whether where (a URL) is this backend's; NULL: the backend of paths. */
    bool (*serves)(const char *where);
    /* where as messages name it (no password), the caller's; NULL: where. */
    char *(*name)(const char *where);
    /* Fill j->reader (and, for an engine, j->writer and j->log), reading
     * the key into j->key (j->keyed) for an engine.  On failure the
     * journal is closed by the caller (close must cope with a partial open).
     * where is the journal's place; j->where, already set, its name. */
    int (*open)(cairn_journal *j, const char *where, cairn_err *err);
    /* One connection to the journal at where, not a journal: what a copy
     * writes into (cairn_journal_migrate), created when create is true. */
    int (*open_store)(const char *where, bool create, cairn_store **out, cairn_err *err);
    /* Read the key (a reader's cairn_journal_use_key); 0 and j->key set. */
    int (*read_key)(cairn_journal *j, cairn_err *err);
    int (*put_command)(cairn_journal *j, const char *run_id, const char *type, const char *data,
                       cairn_err *err);
    int (*put_request)(cairn_journal *j, const char *key, const char *request,
                       const char *run_id, cairn_err *err);
    /* cairn_journal_claim: durable, whatever the journal's role. */
    int (*claim)(cairn_journal *j, const char *space, const char *key, const char *value,
                 const char *replace, char **held, cairn_err *err);
    /* Optional (NULL: claim, synced each): cairn_journal_claim_deferred and
     * cairn_journal_sync_claims, the second callable on another thread
     * while the first writes. */
    int (*claim_deferred)(cairn_journal *j, const char *space, const char *key, const char *value,
                          const char *replace, char **held, cairn_err *err);
    int (*sync_claims)(cairn_journal *j, cairn_err *err);
    int (*takes_writes)(cairn_journal *j, cairn_err *err);
    /* cairn_journal_owner_alive. */
    bool (*owner_alive)(cairn_journal *j, const char *owner);
    /* Optional (NULL: the reader's claim_run, cairn_owner_alive deciding). */
    int (*claim_run)(cairn_journal *j, const char *run_id, cairn_err *err);
    /* Optional (NULL: one engine writes the journal, none to place runs
     * on): cairn_journal_node_loads. */
    int (*node_loads)(cairn_journal *j, char ***nodes, int64_t **runs, int *n, cairn_err *err);
    /* Optional (NULL: nothing to do): cairn_journal_let_go. */
    int (*let_go)(cairn_journal *j, const char *run_id, bool again, bool *done, cairn_err *err);
    int (*settle_others)(cairn_journal *j, cairn_err *err);
    void (*secrets_paths)(const cairn_journal *j, char **file, char **key_file);
    /* The writer's operations (journal.h): sync, and for a backend that
     * writes ahead, the rest. */
    int (*append_batch)(cairn_journal *j, cairn_event *const *evs, int n, int64_t *mark,
                        cairn_err *err);
    int (*sync)(cairn_journal *j, cairn_err *err);
    int64_t (*written_end)(const cairn_journal *j);
    int (*apply_written)(cairn_journal *j, int64_t from, int64_t to, cairn_event *const *evs,
                         int n, cairn_err *err);
    int (*start_over)(cairn_journal *j, size_t need, cairn_err *err);
    /* Release what open made (j->reader, j->writer, j->log...). */
    void (*close)(cairn_journal *j);
} cairn_journal_backend;

struct cairn_journal {
    const cairn_journal_backend *backend;
    char *where;                 /* as messages name it (backend name(): no password) */
    cairn_journal_config cfg;
    cairn_store *reader;         /* reads, claims, commands; the orchestrator's */
    cairn_store *writer;         /* engine: append_batch, on the writer threads */
    cairn_clog *log;             /* engine, SQLite: the commit log it holds, or NULL */
    cairn_store *claims;         /* SQLite: the claims' read-write connection, its
                                    syncs deferred (sync_claims), opened at the first
                                    claim and kept */
    char owner[256];
    bool keyed;
    unsigned char key[32];
    cairn_chain *chain;          /* under key, once keyed */
    cairn_lease *lease;          /* engine, PostgreSQL: its lease and the runs it holds */
    cairn_strmap *refused;       /* the writer's: runs the last batch refused */
    char *warning;
};

extern const cairn_journal_backend cairn_journal_sqlite;
extern const cairn_journal_backend cairn_journal_pg;

/* The step ids a run of the definition pinned by hash journals, its source
 * checked against the hash (journal.c): NULL, with err set, when it cannot
 * be had.  The caller's (cairn_step_ids_free). */
char **cairn_journal_pinned_steps(cairn_journal *j, const char *hash, const char *run_id, int *n,
                                  cairn_err *err);
/* Fill j->backend and j->where (its name) for the journal at where,
 * opening nothing: CAIRN_EINVAL when no backend serves it. */
int cairn_journal_backend_of(const char *where, cairn_journal *j, cairn_err *err);

/* A journal made of parts already open, for a test that puts a store of
 * its own (one that fails, or holds its syncs) under the engine's writer:
 * writer is the store the writer appends to, log (NULL: none) the commit
 * log it writes ahead in.  Both belong to the journal from here on. */
cairn_journal *cairn_journal_over(cairn_store *writer, cairn_clog *log, const char *owner);

#endif
