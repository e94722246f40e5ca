/*
 * store_pg.h - the journal in PostgreSQL (store.h's method table over libpq).
 *
 * The schema is schema/journal_pg.sql, compiled in, created by Cairn in a
 * database schema that holds no table yet and recognised by its table
 * cairn_journal (app 'cairn', a version).  A database that holds other
 * tables, or another version, is refused and not modified.  Every append is
 * one transaction, durable when it commits (synchronous_commit on;
 * CAIRN_SYNC_NORMAL turns it off for the session).  Errors name the
 * database as cairn_pg_name gives it: never with its password.
 */
#ifndef CAIRN_STORE_PG_H
#define CAIRN_STORE_PG_H

#include <stdbool.h>

#include "engine/store.h"

#define CAIRN_PG_SCHEMA_VERSION 1
/* Seconds to wait for the server when connecting, unless a bound says
 * otherwise (cairn_pg_bound). */
#define CAIRN_PG_CONNECT_TIMEOUT_S 10
/* The channel a command's NOTIFY goes to (LISTEN on the engine's reader). */
#define CAIRN_PG_CHANNEL "cairn_journal"
/* The channel a run placed on an engine is NOTIFYed on, its payload the
 * engine (LISTEN on the engine's lease connection). */
#define CAIRN_PG_PLACED_CHANNEL "cairn_placed"

typedef enum {
    CAIRN_PG_READ,        /* a Cairn journal or CAIRN_ENOTFOUND; creates nothing */
    CAIRN_PG_CREATE,      /* the schema is created when the database has no table */
    CAIRN_PG_LISTEN       /* as CREATE, and LISTEN: data_version counts notifications */
} cairn_pg_mode;

/* Whether where names a PostgreSQL database (postgres:// or postgresql://). */
bool cairn_pg_url(const char *where);

/* url as errors name it: a password (user:PASSWORD@ or password=...) is
 * replaced by "***".  The caller's (free()). */
char *cairn_pg_name(const char *url);

/* Open a connection to the journal at url (a libpq URI). */
int cairn_store_open_pg(const char *url, cairn_pg_mode mode, cairn_sync_mode sync,
                        cairn_store **out, cairn_err *err);

/* When a connection being made (or made again) gives up: deadline(ud), on
 * cairn_now_ms's clock, asked as each attempt starts; an engine's is the
 * time its lease has left (journal_lease.h), so that a node cut off from
 * the database does not wait past its lease for one attempt.  Without
 * one, the URL's connect_timeout, else CAIRN_PG_CONNECT_TIMEOUT_S.  (A host name is looked up before the
 * clock starts: the bound is for the connection and the server's answer.) */
typedef struct {
    int64_t (*deadline)(void *ud);
    void *ud;
} cairn_pg_bound;

/* cairn_store_open_pg, its connections made under bound (NULL: none). */
int cairn_store_open_pg_bounded(const char *url, cairn_pg_mode mode, cairn_sync_mode sync,
                                const cairn_pg_bound *bound, cairn_store **out, cairn_err *err);
/* Bound the connections s makes again from here on. */
void cairn_pg_bound_connects(cairn_store *s, const cairn_pg_bound *bound);

/* Whether the connection broke under the last statement (the server went
 * away): made again before the next one. */
bool cairn_pg_broken(cairn_store *s);

/* ---- leases and fencing (store_pg_lease.c) ----------------------------------
 *
 * Several engines share one database.  Each keeps a row in `engines` whose
 * lease_until (Unix ms by the database's clock, never a host's) it renews;
 * an engine is alive while its lease has not lapsed.  Every claim of a run
 * takes runs.epoch + 1, and every batch an engine appends checks, in its
 * transaction, that each run it writes to still has owner = that engine at
 * the epoch it claimed (cairn_pg_append_held): a run claimed meanwhile by
 * another engine is refused. */

/* Insert or renew owner's row: lease_until = the database's now + lease_ms. */
int cairn_pg_lease_renew(cairn_store *s, const char *owner, int64_t lease_ms, cairn_err *err);
/* Drop owner's row (an engine that closes cleanly holds nothing), and its
 * mark of cairn_pg_lease_serve. */
int cairn_pg_lease_end(cairn_store *s, const char *owner, cairn_err *err);
/* Mark owner as an engine that takes runs placed on it (a server's):
 * only those are chosen by placement (cairn_pg_node_loads). */
int cairn_pg_lease_serve(cairn_store *s, const char *owner, cairn_err *err);
/* The mark taken off (a server draining: runs are no longer placed on it). */
int cairn_pg_lease_unserve(cairn_store *s, const char *owner, cairn_err *err);
/* Whether owner has a row whose lease has not lapsed, and on this host its
 * process lives (owner.h); an owner with no row, while it is a process on
 * this host that lives (*alive). */
int cairn_pg_owner_alive(cairn_store *s, const char *owner, bool *alive, cairn_err *err);

/* Take run_id for owner unless an engine alive (as cairn_pg_owner_alive
 * says) has it (CAIRN_EBUSY): at a new epoch when another held it, *epoch receiving
 * the run's epoch afterwards.  Inside batch_begin/batch_end, a savepoint. */
int cairn_pg_claim_run(cairn_store *s, const char *run_id, const char *owner, int64_t *epoch,
                       cairn_err *err);

/* Runs held, with the epoch each was claimed at (or created: 0). */
typedef struct cairn_pg_hold {
    const char *run_id;
    int64_t epoch;
    bool refused;                /* out: another engine holds it now */
} cairn_pg_hold;

/* Of holds[0..n), mark refused those another engine claimed since: owner
 * is another and the epoch is at least the one held (a claim of ours not
 * yet committed shows the older epoch, and is not taken for a loss). */
int cairn_pg_check_held(cairn_store *s, const char *owner, cairn_pg_hold *holds, int n,
                        cairn_err *err);

/* Let go of run_id: no owner, if it is still owner's at epoch. */
int cairn_pg_release_run(cairn_store *s, const char *run_id, const char *owner, int64_t epoch,
                         cairn_err *err);

/* Claim the runs that have not ended, are not among skip[0..n_skip), and
 * whose owner's lease lapsed, or that have no owner, or (mine_too) that
 * are owner's, by families: a run whose parent_id chain leads to a root
 * is claimed with every such run of the root's family, all or none, so
 * that a parent and the children it waits for stay on one engine.  At
 * most max families, oldest root first; FOR UPDATE SKIP LOCKED, so
 * engines claiming at once take disjoint families (a family with a run
 * locked elsewhere waits for a later look); each run at a new epoch.
 * *ids and *epochs (the caller's: free each id, then both arrays) receive
 * them, possibly more than max. */
int cairn_pg_claim_lapsed(cairn_store *s, const char *owner, int max, bool mine_too,
                          const char *const *skip, int n_skip, char ***ids, int64_t **epochs,
                          int *n, cairn_err *err);

/* ---- placement: a run created by one engine for another ----------------------
 *
 * A server spreads the runs it starts over the live engines: it writes a
 * run's run_created itself (its chain starts there), the run's row naming
 * the engine chosen as owner at epoch -1 ("placed, not taken"), and
 * NOTIFYs CAIRN_PG_PLACED_CHANNEL with that engine as payload, in the
 * batch's transaction.  The engine claims it (cairn_pg_take_placed: epoch
 * 0, so its batches are fenced as any claim's), then resumes it.  An
 * engine that dies first leaves it to the claim of lapsed engines' runs,
 * as any run it held. */

/* The run_created of run_id in the next append (on this connection) is
 * placed on node (copied).  Writer thread; cleared by cairn_pg_place_clear. */
void cairn_pg_place(cairn_store *s, const char *run_id, const char *node);
void cairn_pg_place_clear(cairn_store *s);

/* LISTEN on CAIRN_PG_PLACED_CHANNEL from here on (again after a reconnect). */
int cairn_pg_hear_placed(cairn_store *s, cairn_err *err);
/* The connection's socket (-1 while it is broken), to wait on. */
int cairn_pg_socket(cairn_store *s);
/* Read what arrived: whether a placement on owner was heard (every
 * notification is consumed). */
bool cairn_pg_placed_heard(cairn_store *s, const char *owner);

/* Claim at most max runs placed on owner and not taken yet (unended,
 * owner's, epoch -1): FOR UPDATE SKIP LOCKED, each at epoch 0.  *ids and
 * *epochs as cairn_pg_claim_lapsed's. */
int cairn_pg_take_placed(cairn_store *s, const char *owner, int max, char ***ids,
                         int64_t **epochs, int *n, cairn_err *err);

/* The live engines that take placed runs (lease_until ahead of the
 * database's clock, marked by cairn_pg_lease_serve), each with
 * how many unfinished runs it holds (placed ones too): *nodes (each and the
 * array the caller's) and *runs, ordered by engine. */
int cairn_pg_node_loads(cairn_store *s, char ***nodes, int64_t **runs, int *n, cairn_err *err);

/* Append events[0..n) in one transaction, as the store's append, fenced:
 * holds[0..n_holds) are the runs the batch writes to (those it creates
 * aside), with the epoch held.  One statement at the transaction's start
 * locks their rows (FOR UPDATE) where owner is still owner at that epoch;
 * a run that is not is refused (holds[i].refused), and the batch is
 * written again without its events.  Holds refused on entry are skipped.
 * 0 when what was not refused is committed, even if all was refused.
 * skip_written: as append_missing (events the journal has are skipped:
 * a retry after a connection broke, when the commit may have landed). */
int cairn_pg_append_held(cairn_store *s, cairn_event *const *evs, int n, cairn_pg_hold *holds,
                         int n_holds, const char *owner, bool skip_written, cairn_err *err);

#endif
