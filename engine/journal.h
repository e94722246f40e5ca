/*
 * journal.h - the one door to the journal.
 *
 * Everything that reads or writes runs goes through a cairn_journal: the
 * CLI's commands and the engine (its orchestrator and writer threads).  It
 * is opened from where the journal lives (a path, or a postgres:// URL)
 * and owns everything that place implies:
 *
 *   what                   SQLite (journal_sqlite.c)      PostgreSQL (journal_pg.c)
 *   the journal of record  PATH, store_sqlite.c           the database, store_pg.c
 *   a reader connection    every read below, claims, commands (PostgreSQL: and
 *                          the LISTEN that wakes an engine for commands)
 *   a writer connection    append_batch and the commit log's apply
 *   the commit log         PATH-clog (clog.h), engine     none: each batch commits
 *   the key                PATH.key or CAIRN_JOURNAL_KEY  CAIRN_FILES.key or
 *                                                         CAIRN_JOURNAL_KEY
 *                          (never in the database), checked against the
 *                          journal's key check value
 *   the secrets            PATH.secrets{,.key}            CAIRN_FILES.secrets{,.key}
 *                          (secrets.h; CAIRN_SECRETS overrides both)
 *
 * Nothing outside the store's own files (journal*.c, store*.c, clog.c)
 * opens a connection, reads the key file or touches the commit log; the
 * orchestrator and the CLI hold a cairn_journal * and nothing else.  A
 * store is one backend: a file whose open() fills the table of
 * journal_int.h, and its tests.
 *
 * Operations are named for what they do (append a batch, load a run, list
 * runs, put a command, take commands, definitions, the key check), not for
 * how SQLite does them.
 *
 * Roles.  A reader (the CLI's reading commands) opens without creating
 * anything; the only writes it makes are applying a stopped engine's commit
 * log, as SQLite recovers its own log for the first reader, and those asked
 * for by name (put_command, put_request).  An engine
 * opens read-write: it checks the file's integrity, takes the commit log
 * (applying what a dead engine left), makes the key if there is none and
 * records the key check value.  A refused open writes nothing.
 *
 * Threads: one thread at a time, except the writer operations at the end,
 * which belong to the engine's writer threads (engine/writer.c) once the
 * engine runs (sync and apply_written may run beside append_batch, see
 * there).
 *
 * Memory: what an operation returns belongs to the caller (free with the
 * *_free of store.h or fold.h); arguments are borrowed.
 */
#ifndef CAIRN_JOURNAL_H
#define CAIRN_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "dsl/workflow.h"
#include "engine/event.h"
#include "engine/fold.h"
#include "engine/store.h"

typedef struct cairn_journal cairn_journal;

typedef enum { CAIRN_JOURNAL_READER, CAIRN_JOURNAL_ENGINE } cairn_journal_role;

typedef struct cairn_journal_config {
    cairn_journal_role role;
    cairn_sync_mode sync;        /* engine: CAIRN_SYNC_FULL or CAIRN_SYNC_NORMAL */
    int64_t lease_ms;            /* engine, PostgreSQL: its lease (see "several
                                    engines" below); 0: CAIRN_LEASE_MS or the default */
} cairn_journal_config;

/* Open the journal at where.  A reader of a journal that does not exist gets
 * CAIRN_ENOTFOUND; a file that is not a Cairn journal, a damaged commit log
 * or one of another journal is CAIRN_ECORRUPT, nothing written.  A reader
 * that could not apply a stopped engine's log still opens, with a warning
 * (cairn_journal_warning).  CAIRN_EBUSY never: a second engine opens too,
 * and commits straight to the journal of record. */
int cairn_journal_open(const char *where, const cairn_journal_config *cfg, cairn_journal **out,
                       cairn_err *err);

/* where as messages and printed commands name it: a URL without its
 * password ("***").  The caller's (free()). */
char *cairn_journal_name(const char *where);

/* Close, releasing the runs an engine held.  NULL is allowed. */
void cairn_journal_close(cairn_journal *j);

/* What a reader should be told about the open (the newest events of a
 * stopped engine may be missing), or NULL. */
const char *cairn_journal_warning(const cairn_journal *j);

/* ---- the key --------------------------------------------------------------- */

/* Take the journal's key into use, so that loads check the hash chain.
 * CAIRN_EAUTH when it is not this journal's key (event.h, store.h: the key
 * check value); another code when it cannot be read (then loads go on
 * without the check, for those that choose to).  An engine's journal has
 * its key in use from the open. */
int cairn_journal_use_key(cairn_journal *j, cairn_err *err);

/* The hasher of the chain under the key in use, or NULL. */
cairn_chain *cairn_journal_chain(cairn_journal *j);
/* A hasher of its own under the key in use, for another thread (the
 * caller's: cairn_chain_free), or NULL. */
cairn_chain *cairn_journal_new_chain(cairn_journal *j);

/* A key for one purpose (a fixed text naming it, "cairn approval links"),
 * HMAC-SHA-256 of purpose under the journal's key, taken into use first:
 * every process with the journal's key derives the same one, and nothing
 * signed with it can pass for the chain's hashes, nor they for it.
 * Fails as cairn_journal_use_key. */
int cairn_journal_derive_key(cairn_journal *j, const char *purpose,
                             unsigned char out[CAIRN_HASH_LEN], cairn_err *err);

/* ---- runs -------------------------------------------------------------------- */

/* The statuses of a run that has not ended, as a status_filter: what resume
 * takes over and where open approvals are looked for. */
#define CAIRN_RUNS_UNFINISHED "running,waiting,compensating,paused"

/* Runs, newest first; status_filter NULL for all, else a comma list. */
int cairn_journal_list_runs(cairn_journal *j, const char *status_filter, cairn_run_row **out,
                            int *n, cairn_err *err);
int cairn_journal_get_run(cairn_journal *j, const char *run_id, cairn_run_row *out,
                          cairn_err *err);

/* A run's events in seq order.  pin (may be NULL) receives the definition
 * its run_created event pins, which the runs row must name too (else
 * CAIRN_ECORRUPT). */
int cairn_journal_load_events(cairn_journal *j, const char *run_id, cairn_event **evs, int *n,
                              char pin[65], cairn_err *err);

/* Fold evs (as load_events gave them) into st, checking the hash chain when
 * the key is in use (a break is CAIRN_ECORRUPT).  Each event is cleared
 * once folded, so a long run's events are not all held parsed at once. */
int cairn_journal_fold(cairn_journal *j, cairn_run_state *st, cairn_event *evs, int n,
                       cairn_err *err);

/* The same pair for a loader that folds what it loads: *created receives
 * the run_created event's data as run_pin parsed it (the caller's; invalid
 * unless pin was read), and cairn_journal_fold_pinned folds evs[0] from it
 * (consumed; jv_invalid(): parsed from its text) rather than parse the
 * run's largest event twice.  The chain is checked over the text alike. */
int cairn_journal_load_pinned(cairn_journal *j, const char *run_id, cairn_event **evs, int *n,
                              char pin[65], jv *created, cairn_err *err);
int cairn_journal_fold_pinned(cairn_journal *j, cairn_run_state *st, cairn_event *evs, int n,
                              jv created, cairn_err *err);

/* Load a run: its events folded into *st (the caller's).  The steps are
 * those of the definition it pins.  With wf NULL they are read as stored
 * beside the definition (no compile: what `show` needs); else *wf receives
 * the definition compiled (cairn_journal_definition: hash-checked), the
 * caller's. */
int cairn_journal_load_run(cairn_journal *j, const char *run_id, cairn_run_state **st,
                           cairn_workflow **wf, cairn_err *err);

/* Whether the runs table's row agrees with the run's fold (st, from
 * cairn_journal_load_run): workflow, def_hash, parent_id, status (running,
 * paused, compensating or how it ended), created_at and updated_at (when
 * status last changed).  0, or CAIRN_ECORRUPT naming the run and the first
 * column that differs, with both values: the row was edited. */
int cairn_run_row_check(const cairn_run_row *row, const cairn_run_state *st, cairn_err *err);

/* ---- definitions ----------------------------------------------------------- */

/* Store wf's source pinned by its SHA-256, with the step ids a run of it
 * journals (cairn_step_ids). */
int cairn_journal_put_definition(cairn_journal *j, const cairn_workflow *wf, cairn_err *err);

/* Load and compile the definition pinned by hash.  Its source must hash to
 * exactly that: an edited definition is CAIRN_ECORRUPT, naming the run
 * (run_id, or NULL) and both hashes, and nothing is compiled.  *wf is the
 * caller's. */
int cairn_journal_definition(cairn_journal *j, const char *hash, const char *run_id,
                             cairn_workflow **wf, cairn_err *err);

/* The hash of the newest definition named name (child workflows). */
int cairn_journal_find_definition(cairn_journal *j, const char *name, char hash[65],
                                  cairn_err *err);

/* Every step a run of wf can journal, in this order: the steps, then the
 * on_failure steps, then one "<id>#compensate" per step with a compensate
 * body.  The array and its strings are the caller's (cairn_step_ids_free). */
char **cairn_step_ids(const cairn_workflow *wf, int *n);
void cairn_step_ids_free(char **ids, int n);

/* ---- commands ---------------------------------------------------------------- */

/* Record a command for a run ("cancel", "pause", "unpause", "decide", "resolve"), to be
 * carried out by the engine that holds it, or by the next one.  When a live
 * engine holds the run the row is written without a sync (the engine
 * journals its effect durably, and callers wait for that) and the engine is
 * woken; otherwise it is synced, since it must wait for the next resume. */
int cairn_journal_put_command(cairn_journal *j, const char *run_id, const char *type,
                              const char *data, cairn_err *err);

/* Open the journal at where to read, put a command, close: what a command
 * line does once. */
int cairn_journal_command(const char *where, const char *run_id, const char *type,
                          const char *data, cairn_err *err);

/* The commands for run_id not carried out yet, oldest first (decisions made
 * while no engine held the run wait there for the next resume). */
int cairn_journal_run_commands(cairn_journal *j, const char *run_id, cairn_command **out, int *n,
                               cairn_err *err);

/* Engine: the commands waiting for runs it holds, oldest first. */
int cairn_journal_take_commands(cairn_journal *j, cairn_command **out, int *n, cairn_err *err);

/* Engine: drop a command that needs no event (done already, or moot). */
void cairn_journal_drop_command(cairn_journal *j, int64_t id);

/* A number that changes when another process writes (cheap to poll). */
int64_t cairn_journal_changes(cairn_journal *j);

/* ---- serving (cairn serve) ------------------------------------------------ */

/* A page of runs (store.h: cairn_run_page), newest first. */
int cairn_journal_page_runs(cairn_journal *j, const cairn_run_page *q, cairn_run_row **out,
                            int *n, cairn_err *err);

/* The run the request with idempotency key started, and that request's hex
 * SHA-256: run_id "" (and 0) when the key is new. */
int cairn_journal_find_request(cairn_journal *j, const char *key, char run_id[CAIRN_RUN_ID_MAX],
                               char request[65], cairn_err *err);

/* Record, synced, that the request (its hex SHA-256) with key starts run_id:
 * written before the run starts, so that a repeat after a crash between the
 * two starts that same id.  A key recorded already is an error: the caller
 * looks first, one request per key at a time. */
int cairn_journal_put_request(cairn_journal *j, const char *key, const char *request,
                              const char *run_id, cairn_err *err);

/* Claims: what must happen once however often (or by however many servers)
 * it is asked for.  A claim is a key in a space holding a value: a dedupe
 * key names the run it started (space "dedupe/WORKFLOW"), a schedule's
 * fire its run, a spent link who spent it.  Take (space, key) for value,
 * durably (synced), when it is free, or when it holds replace (non-NULL: a
 * compare-and-set, so of two callers replacing the same value one wins).
 * Otherwise CAIRN_EEXISTS, and *held (the caller's, free()) receives the
 * value that holds it.  Claims are never removed; a space's users decide
 * what a held value still means (a dedupe key whose run ended is replaced).
 * space and key: CAIRN_CLAIM_TEXT_MAX bytes each, value CAIRN_CLAIM_VALUE_MAX. */
#define CAIRN_CLAIM_TEXT_MAX 1024
#define CAIRN_CLAIM_VALUE_MAX 4096
int cairn_journal_claim(cairn_journal *j, const char *space, const char *key, const char *value,
                        const char *replace, char **held, cairn_err *err);

/* For a server taking claims from many threads: as cairn_journal_claim,
 * but the claim is written without waiting for its sync; then
 * cairn_journal_sync_claims makes every claim written before it durable,
 * one sync however many claims it covers.  The claims themselves are taken
 * one at a time (the journal's rule), but the sync may run on another
 * thread meanwhile, so that the claims taken while one sync runs share the
 * next.  Neither outcome of a deferred claim (taken, or held by another)
 * may be acted on before a sync that began after it has returned.  A
 * backend that syncs each claim as it is taken does so here too, and its
 * sync_claims does nothing. */
int cairn_journal_claim_deferred(cairn_journal *j, const char *space, const char *key,
                                 const char *value, const char *replace, char **held,
                                 cairn_err *err);
int cairn_journal_sync_claims(cairn_journal *j, cairn_err *err);

/* The value holding (space, key), the caller's (free()), or CAIRN_ENOTFOUND. */
int cairn_journal_get_claim(cairn_journal *j, const char *space, const char *key, char **value,
                            cairn_err *err);

/* 0 when the journal takes writes now (a write transaction that writes
 * nothing), else why not. */
int cairn_journal_takes_writes(cairn_journal *j, cairn_err *err);

/* ---- the engine's hold on runs ------------------------------------------ */

/* Who this engine is, as recorded on the runs it holds ("host:pid:start"). */
const char *cairn_journal_owner(const cairn_journal *j);

/* Take a run if no live engine holds it (else CAIRN_EBUSY).  Between
 * claims_begin and claims_end, many claims are one transaction. */
int cairn_journal_claim_run(cairn_journal *j, const char *run_id, cairn_err *err);
int cairn_journal_claims_begin(cairn_journal *j, cairn_err *err);
int cairn_journal_claims_end(cairn_journal *j, cairn_err *err);

/* Whether the engine named owner ("host:pid:start") lives: on SQLite, its
 * process on this host (owner.h; one on another host counts as alive); on
 * PostgreSQL, it has an engines row whose lease has not lapsed by the
 * database's clock, and (on this host) its process lives; an owner with
 * no row (no engine) lives while its process on this host does (a
 * database out of reach: alive, so nothing is taken from it).  Any role. */
bool cairn_journal_owner_alive(cairn_journal *j, const char *owner);

/* ---- several engines on one journal: leases and fencing -------------------
 *
 * PostgreSQL only; on SQLite one engine writes a journal at a time (the
 * commit log) and all of this is a no-op: the lease always holds, no run
 * is ever lost or taken over.
 *
 * Lease.  An engine keeps a row in `engines` and renews it from a thread
 * of its own every lease/3 (journal_lease.h); another engine may claim its
 * runs once lease_until (the database's clock) has passed.  An engine whose
 * lease does not hold starts no attempt (engine.h).
 *
 * Fencing.  Every claim of a run takes a new epoch (runs.epoch).  The
 * journal (journal_lease.c) keeps the epoch of each run the engine holds:
 * claimed (cairn_journal_claim_run, or taken over), or created by it
 * (epoch 0, the INSERT's).  Every batch checks, in its own transaction and
 * in one statement that locks those rows, that each run it writes to is
 * still this engine's at that epoch; the events of a run that is not are
 * dropped, the rest committed, and append_batch says CAIRN_EFENCED.  The
 * run is then lost: the engine drops it from memory (its attempts'
 * results discarded, nothing more started).
 *
 * Losing the database.  The writer does not fail at once on a broken
 * connection: it connects again with back-off (CAIRN_PG_RETRY_MIN_MS up to
 * CAIRN_PG_RETRY_MAX_MS), the batch held in memory, for as long as the
 * lease holds; past it every run held is lost (the database may have
 * given them to others), and when the lease is renewed the engine claims
 * again those that are still its own. */
#define CAIRN_DEFAULT_LEASE_MS 15000
#define CAIRN_LEASE_MS_MIN 500
#define CAIRN_LEASE_MS_MAX 3600000

/* Engine: whether other engines may hold runs of this journal while it
 * runs (PostgreSQL: it holds a lease).  Any thread. */
bool cairn_journal_shared(const cairn_journal *j);

/* Engine: whether its lease holds now (always on SQLite).  Any thread. */
bool cairn_journal_lease_held(cairn_journal *j);

/* Engine: 0, or why it cannot work now: CAIRN_EIO "journal unreachable:
 * ...", CAIRN_ESTATE "lease lapsed ...".  Any thread. */
int cairn_journal_lease_state(cairn_journal *j, cairn_err *err);

/* Engine: fn(ud) is called, from another thread, when runs were lost or
 * taken over or the lease holds again after a lapse (wake the loop). */
void cairn_journal_on_news(cairn_journal *j, void (*fn)(void *), void *ud);

/* Engine: claim the runs of engines whose lease lapsed (and runs no engine
 * holds), for cairn_journal_take_claimed, and take the runs placed on it:
 * what a server does (turned off again when it drains: nothing more is
 * placed on it or taken).  Any thread. */
void cairn_journal_take_over(cairn_journal *j, bool on);

/* Engine: it holds run_id but could not resume it (its definition does
 * not load here, its secrets cannot be read here, ...): on PostgreSQL the
 * run is no longer held (its owner cleared, when still this engine's at
 * the epoch held), so that another engine may try it.  With `again`
 * false this engine does not claim it again while it lives: each engine
 * tries a run once, so a run no engine can resume does not pass from one
 * to the next for ever, and a new engine (one restarted once the cause is
 * mended) tries it again.  With `again` (the cause may pass: the
 * database's or the disk's error) any engine may claim it at its next
 * look, this one too.  When the owner cannot be cleared, the run is no
 * longer held either, and this engine's next look claims it back from
 * itself (a new epoch), so the resume and the let-go are tried again
 * rather than the run left held by an engine that does not run it.
 * Nothing on SQLite (its next start tries again).  *done: a run held here
 * was let go. */
int cairn_journal_let_go(cairn_journal *j, const char *run_id, bool again, bool *done,
                         cairn_err *err);

/* Engine: the runs lost to another engine (or to a lapse), and the runs
 * taken over, since the last call: *ids (each and the array the caller's,
 * cairn_journal_ids_free with in_runs NULL) and how many.  0 at once on
 * SQLite.  Any thread. */
int cairn_journal_take_lost(cairn_journal *j, char ***ids);
int cairn_journal_take_claimed(cairn_journal *j, char ***ids);

/* Placement (PostgreSQL; store_pg.h, "placement").  A server spreads the
 * runs it starts over the live engines that serve (cairn_journal_node_loads,
 * any role: each with how many unfinished runs it holds).  Engine: run_id,
 * about to be created, is node's (cairn_journal_place, before its
 * run_created is appended; CAIRN_ESTATE on SQLite): its row names node
 * as owner, not yet taken, and node is told.  Node claims it at a new
 * epoch and lists it for cairn_journal_take_placed (as take_claimed). */
int cairn_journal_place(cairn_journal *j, const char *run_id, const char *node, cairn_err *err);
int cairn_journal_take_placed(cairn_journal *j, char ***ids);
/* *nodes (each and the array the caller's, also on error) and *runs (the
 * caller's): the live serving engines and their unfinished runs. */
int cairn_journal_node_loads(cairn_journal *j, char ***nodes, int64_t **runs, int *n,
                             cairn_err *err);

/* Engine: it has let go of a run it lost (every event it appended for it
 * has passed the writer): only then may the run be claimed again here, so
 * that no event of the old hold is written under a new one's epoch. */
void cairn_journal_forget(cairn_journal *j, const char *run_id);

/* Before claiming runs, when the engine does not hold the commit log: apply
 * what a stopped engine left in it (cairn_clog_settle). */
int cairn_journal_settle_others(cairn_journal *j, cairn_err *err);

/* The secrets' files beside the journal (secrets.h), the caller's. */
void cairn_journal_secrets_paths(const cairn_journal *j, char **file, char **key_file);

/* ---- audit (journal_audit.c: cairn verify, export, import) ---------------- */

/* Every run id in the runs table or in the events, in id order (ids are
 * time-ordered): a run whose row was deleted is listed too.  in_runs[i]
 * says whether ids[i] has a runs row.  Free with cairn_journal_ids_free. */
int cairn_journal_run_ids(cairn_journal *j, char ***ids, bool **in_runs, int *n, cairn_err *err);
void cairn_journal_ids_free(char **ids, bool *in_runs, int n);

/* The verdict on one run: what `cairn verify` says of it. */
typedef struct cairn_run_verdict {
    char run_id[CAIRN_RUN_ID_MAX];
    bool has_row;                /* the runs table holds its row */
    int rc;                      /* 0: its chain, its fold and its row agree;
                                    CAIRN_ENOTFOUND without a row: events only
                                    (the row was deleted); else why not, in err */
    cairn_err *err;              /* rc other than 0: the load's error (owned) */
    int64_t last_seq;            /* rc 0: its events, and the last one's hash */
    unsigned char head[CAIRN_HASH_LEN];
    bool forked;                 /* rc 0: a fork (cairn_run_state.fork_run) */
} cairn_run_verdict;

/* One run checked: its events loaded and folded with the chain checked
 * (cairn_journal_load_run, the key in use), its row against the fold
 * (cairn_run_row_check).  has_row false: the verdict is CAIRN_ENOTFOUND
 * at once.  *v is the caller's (cairn_run_verdict_clear). */
void cairn_journal_verify_run(cairn_journal *j, const char *run_id, bool has_row,
                              cairn_run_verdict *v);
void cairn_run_verdict_clear(cairn_run_verdict *v);

/* Every run in the runs table or the events (as cairn_journal_run_ids
 * lists them), each verdict as cairn_journal_verify_run gives it, in run
 * id order; but the events are read in one pass in the order they were
 * appended, every run folded as its events go by, in one snapshot, rather
 * than a load per run (CAIRN_VERIFY_HELD runs' states held at once at
 * most; more start to be checked one by one).  The event index is checked
 * against the events on the way.  A run whose events do not come in seq
 * order, or that fails any check, is loaded and checked again on its own,
 * so its verdict is exactly the one cairn_journal_verify_run gives.  The
 * array is the caller's (cairn_run_verdicts_free).  Fails only when the
 * journal cannot be read. */
#define CAIRN_VERIFY_HELD 16384
int cairn_journal_verify_runs(cairn_journal *j, cairn_run_verdict **out, int *n, cairn_err *err);
void cairn_run_verdicts_free(cairn_run_verdict *v, int n);

/* What identifies the journal and its key: its id (cairn_journal_id, "" for
 * none) and its key check value (hex HMAC-SHA-256, under the key, of
 * CAIRN_KEY_CHECK_TEXT: it names the key without giving it away; "" when
 * the journal has none yet). */
void cairn_journal_identity(cairn_journal *j, char id[CAIRN_JOURNAL_ID_HEX + 1],
                            char key_check[2 * CAIRN_HASH_LEN + 1]);

/* The key of the journal at where, without opening it (it need not exist):
 * *chain, a hasher under it (the caller's: cairn_chain_free), and its key
 * check value.  Fails when there is no key (no where.key, no
 * CAIRN_JOURNAL_KEY): an import checks an export with a key first. */
int cairn_journal_key_of(const char *where, cairn_chain **chain,
                         char key_check[2 * CAIRN_HASH_LEN + 1], cairn_err *err);

/* Engine role: write a run from another journal (its definition wf, its
 * events evs[0..n), checked by the caller), with the runs row they
 * project.  A run already here is CAIRN_EEXISTS, nothing written. */
int cairn_journal_import(cairn_journal *j, const cairn_workflow *wf, cairn_event *const *evs,
                         int n, cairn_err *err);

/* ---- moving between stores (journal_copy.c: cairn migrate) ---------------- */

/* What a copy moved. */
typedef struct cairn_copy_counts {
    int runs, definitions, commands, requests, claims;
    int64_t events;
} cairn_copy_counts;

/* Events appended to the target in one append (a savepoint of the copy's
 * one transaction), at most. */
#define CAIRN_COPY_BATCH 2048

/* Copy the journal at from into the journal at to (made when absent; any
 * store to any store): meta (its id and key check value), definitions
 * with their step ids, every run's events as they are (the bytes its chain
 * hashed, so `cairn verify --heads` taken from one passes on the other),
 * the runs rows they project, commands waiting, idempotency keys, claims.
 * The target is put under the source's key (cairn_journal_key_give).
 * Refused, nothing copied: a target that holds anything (CAIRN_EEXISTS),
 * a source run held by a live engine (CAIRN_EBUSY), no key for the source.
 * The copy is one transaction on the target: one that fails on the way
 * (or is killed) leaves nothing in it but a new journal's schema and meta
 * (and the source's key beside it), so another try can follow. */
int cairn_journal_copy(const char *from, const char *to, cairn_copy_counts *counts,
                       cairn_err *err);

/* ---- the writer (engine/writer.c) ----------------------------------------- */

/* Whether batches become durable ahead of the journal of record (in the
 * commit log) and reach it later through apply_written. */
bool cairn_journal_writes_ahead(const cairn_journal *j);

/* Append a batch of events (the writer's connection).  Writing ahead, *mark
 * receives where the batch ends in the log, and CAIRN_EFULL (nothing
 * written) says the log must start over first, *mark then being the bytes
 * it needs.  Not durable before cairn_journal_sync.  CAIRN_EFENCED: the
 * events of runs another engine holds now were dropped (cairn_journal_refused
 * names them), the rest written; those runs are lost (take_lost). */
int cairn_journal_append_batch(cairn_journal *j, cairn_event *const *evs, int n, int64_t *mark,
                               cairn_err *err);

/* After an append_batch that said CAIRN_EFENCED: whether run_id was refused. */
bool cairn_journal_refused(cairn_journal *j, const char *run_id);

/* Make every batch appended before this call durable: one sync.  May run
 * on a second thread beside append_batch. */
int cairn_journal_sync(cairn_journal *j, cairn_err *err);

/* Writing ahead: where appended batches end so far. */
int64_t cairn_journal_written_end(const cairn_journal *j);

/* Writing ahead: put the batches in [from, to) of the log (durable) into
 * the journal of record, in one transaction, without a sync.  evs[0..n)
 * are their events as appended, when the caller still holds them (the log
 * is then not read back); NULL to read them from the log.  Given the
 * events it touches only the journal of record, so it may run on a third
 * thread beside append_batch and sync; not beside start_over. */
int cairn_journal_apply_written(cairn_journal *j, int64_t from, int64_t to,
                                cairn_event *const *evs, int n, cairn_err *err);

/* Writing ahead, everything applied: sync the journal of record and start
 * the log over, with room for need bytes. */
int cairn_journal_start_over(cairn_journal *j, size_t need, cairn_err *err);

#endif
