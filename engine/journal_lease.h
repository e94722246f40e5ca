/*
 * journal_lease.h - an engine's hold on runs in a journal that several
 * engines share (PostgreSQL): its lease, renewed by a heartbeat thread of
 * its own; the epoch of every run it holds (the fence its batches carry);
 * the runs it lost to another engine; the runs it took over from engines
 * whose lease lapsed.  Private to the journal's own files (journal_pg.c
 * makes one for an engine; journal.c reaches it for journal.h's calls).
 *
 * The heartbeat, every lease/3 (CAIRN_LEASE_BEATS a lease):
 *   1. renews the engines row (lease_until = the database's now + lease),
 *      on a connection of its own, so the orchestrator never waits on it;
 *   2. after a lapse (the process was stopped, or the database was out of
 *      reach), before the lease counts as held again: finds the runs it
 *      holds that another engine claimed meanwhile, and loses them;
 *   3. with take-over on (cairn serve): claims runs whose holder's lease
 *      lapsed (at most CAIRN_TAKE_OVER_BATCH families at a time, a parent
 *      run with its children: store_pg.h; again at once when that many
 *      runs came) for the orchestrator to resume;
 *   4. with take-over on: claims the runs another engine placed on this
 *      one (store_pg.h, "placement") that it has not taken yet.
 * Between beats it waits on its connection too: a run placed on this
 * engine is NOTIFYed there, and taken at once (4), not at the next beat.
 * When it cannot renew and the lease lapses, every run held is lost: the
 * database may have given them to others; once it renews, this engine
 * claims again those that are still its own (at a new epoch).
 *
 * The lease counts as held by this host's monotonic clock: from the moment
 * the renewal was sent, lease minus a tenth (the database measures from a
 * later moment, so the engine gives up first).  An engine starts no
 * attempt while its lease does not hold (durable.c).
 *
 * Threads: every function may be called from any thread (a mutex guards
 * the state); the news callback runs on the heartbeat thread.
 * Memory: strings passed in are copied; lists returned are the caller's.
 */
#ifndef CAIRN_JOURNAL_LEASE_H
#define CAIRN_JOURNAL_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define CAIRN_LEASE_BEATS 3          /* renewals a lease */
#define CAIRN_TAKE_OVER_BATCH 64     /* lapsed run families, or runs placed here, at one look */

typedef struct cairn_lease cairn_lease;

/* Open the lease's connection to url, take owner's lease now (a failure
 * fails the open), and start the heartbeat. */
int cairn_lease_start(const char *url, const char *owner, int64_t lease_ms, cairn_lease **out,
                      cairn_err *err);
/* Stop the heartbeat and end the lease (the row goes).  NULL ok. */
void cairn_lease_stop(cairn_lease *l);

/* When a connection to the database being made for this engine gives up
 * (cairn_pg_bound; ud is the lease): when the lease lapses, or, lapsed
 * already, a beat from now (the next renewal tries again). */
int64_t cairn_lease_connect_deadline(void *lease);

/* Whether the lease holds now (this host's clock). */
bool cairn_lease_held(cairn_lease *l);
/* 0, or why the engine cannot work: CAIRN_EIO "journal unreachable: ...",
 * CAIRN_ESTATE "lease lapsed". */
int cairn_lease_state(cairn_lease *l, cairn_err *err);
/* The writer could not reach the database (err): said by lease_state until
 * the next renewal. */
void cairn_lease_unreachable(cairn_lease *l, const cairn_err *err);
/* fn(ud), on the heartbeat thread, when runs were lost or taken over, or
 * the lease holds again after a lapse. */
void cairn_lease_on_news(cairn_lease *l, void (*fn)(void *), void *ud);
/* Whether the heartbeat claims the runs of lapsed engines. */
void cairn_lease_take_over(cairn_lease *l, bool on);

/* The runs held and their epochs. */
void cairn_lease_hold(cairn_lease *l, const char *run_id, int64_t epoch);
bool cairn_lease_epoch(cairn_lease *l, const char *run_id, int64_t *epoch);
void cairn_lease_release(cairn_lease *l, const char *run_id);   /* it ended */
/* The engine could not resume it: no longer held.  Released (its owner
 * cleared): never claimed again by this lease, unless `again`.  Not
 * released: claimed back from this engine itself at the next look
 * (journal.h, cairn_journal_let_go). */
void cairn_lease_let_go(cairn_lease *l, const char *run_id, bool released, bool again);
/* Another engine holds it now: no longer held, and listed as lost. */
void cairn_lease_lose(cairn_lease *l, const char *run_id);
/* Lose every run held (the lease lapsed out of the database's reach). */
void cairn_lease_lose_all(cairn_lease *l);

/* The engine let go of a run it lost (its events have all passed the
 * writer): from here on it may be claimed again.  Until then it is not, so
 * that no event of the old hold is written under the new one's epoch. */
void cairn_lease_forget(cairn_lease *l, const char *run_id);

/* The runs lost, and those taken over, since the last call: *ids (the
 * caller's, each id and the array free()d) and their count. */
int cairn_lease_take_lost(cairn_lease *l, char ***ids);
int cairn_lease_take_claimed(cairn_lease *l, char ***ids);
/* The runs placed on this engine and taken since the last call (held at
 * their new epoch), as cairn_lease_take_claimed. */
int cairn_lease_take_placed(cairn_lease *l, char ***ids);

/* Placement: run_id, which this engine creates now, is another's: node
 * (copied).  The writer asks (cairn_lease_placing) when it writes the
 * run's run_created, which forgets it and copies node into node[len]. */
void cairn_lease_place(cairn_lease *l, const char *run_id, const char *node);
bool cairn_lease_placing(cairn_lease *l, const char *run_id, char *node, size_t len);

#endif
