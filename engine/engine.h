/*
 * engine.h - the crash-safe engine: orchestrator, journal writer, workers.
 *
 * Invariants (numbered as the design refers to them):
 *   1. An action's attempt never starts before its step_started event is
 *      durable (synced in the commit log, clog.h, or in SQLite).
 *   2. A step recorded as succeeded is never run again: not after a crash or
 *      a restart.  Recovery folds the journal and starts only steps
 *      that are not done; attempts in flight at a crash go to on_crash.
 *   3. Each transition is appended to the journal before anything that
 *      depends on it becomes visible: dependents are started in a later or
 *      the same transaction as the event that made them ready.
 *   4. All run state is owned by the orchestrator thread (the thread calling
 *      cairn_engine_run), and is a fold of the journal (fold.h).  jq and jv
 *      are used on that thread only.
 *   5. A failed journal write is sticky: the engine stops trusting memory,
 *      starts nothing more, and returns the error; a new engine reloads.
 *      A write refused by the fence (journal.h, CAIRN_EFENCED: another
 *      engine holds the run now) is not a failure: that run is lost, the
 *      rest goes on.
 *   6. Several engines on one journal (PostgreSQL, journal.h): an engine
 *      starts no attempt while its lease does not hold (durable.c's queue
 *      of attempts waits), and a run it lost is out of its memory before
 *      any attempt of the batch that lost it starts (runs.c, recover.c).
 *
 * Threads:
 *   orchestrator  the caller of cairn_engine_run: decides, renders, appends.
 *                 It blocks on the journal only to commit a small batch
 *                 itself when the writer and syncer are idle and no mail
 *                 waits (writer.c, CAIRN_COMMIT_HERE_MAX).
 *   writer        group commit: every event queued since its last write is
 *                 hashed into its run's chain and goes into one record of
 *                 the commit log (clog.h), or, when another engine holds
 *                 the log, one SQLite transaction (not yet synced).  When
 *                 the log is full it waits for the applier, applies the
 *                 rest, syncs SQLite and starts the log over.
 *   syncer        one sync for every batch written since its last; then it
 *                 tells the orchestrator how far is durable.  So the
 *                 writer's next write overlaps the last one's sync (writer.c).
 *   applier       with the commit log: applies durable records to SQLite
 *                 from the events it still holds, in bulk and without a
 *                 sync, while the writer writes the next records.
 *   workers       a pool running actions' execute() (blocking I/O).
 *
 * A waiting run holds no thread.  Finished runs are dropped from memory once
 * their last event is durable, so memory stays flat as runs pile up.
 *
 * Who owns what.  Each piece of state belongs to one file; the others
 * reach it through that file's functions (engine_int.h), never its fields:
 *
 *   engine.c    the configuration, the stop (stopping, its deadline); the
 *               loop, and what a timer that fires means.  The top: it calls
 *               the others, none calls it.
 *   durable.c   appending (seq, fold, the batch for the writer, its
 *               tickets), the durable mark, the queue of attempts waiting
 *               for their step_started to be durable, every attempt in
 *               flight and their count, ended runs waiting to be dropped,
 *               the sticky failure, the secrets events are masked with.
 *   inbox.c     the orchestrator's mailbox (writer, workers, signals, and
 *               other threads' calls: cairn_engine_call).
 *   runs.c      the runs held (by id and in a list), the plans, the runs
 *               lost and not yet freed (eng_lose_run).
 *   timer.c     the durable timers (a heap; it calls nobody).
 *   commands.c  commands from other processes, and those taken already;
 *               a caller's command for a held run (cairn_engine_command).
 *   sched.c     each run's readiness, foreach windows, rollback, ending.
 *   attempt.c   one attempt: render, prepare, dispatch, finish.
 *   retry.c     retries and `until`.   carried.c  steps the engine
 *   approval.c, wait.c, child.c        carries out itself, by action.
 *   recover.c   taking runs over from the journal, on_crash; runs lost to
 *               another engine and runs taken over from a lapsed one
 *               (eng_poll_holds).  The epochs of the runs held, the lease
 *               and its heartbeat thread are the journal's
 *               (journal_lease.c), not the engine's.
 *   fork.c      a new run of an ended one from one of its steps (fork.h).
 *   orphan.c    attempts' process groups.
 *   batch.c     events and batches handed to the writer, who holds them
 *               (each the last to let go frees them); an event's link of
 *               its run's hash chain (eng_run.chain_head, the writer's).
 *   writer.c    the writer, syncer and applier threads; the hash chain is
 *               computed where a batch is written.  pool.c  the workers.
 *   journal*.c, store*.c, clog.c  the journal (journal.h is the door).
 *   replay*.c   no engine: a run of its own, folded from a journal, whose
 *               decisions it takes again with the step logic's decision
 *               functions (engine_int.h) and compares (replay.h).
 *
 * Who calls whom: engine.c, recover.c, commands.c and fork.c from above; the
 * step logic (sched, attempt, carried, approval, wait, child, retry) calls
 * round in circles of at most five files (scripts/call_cycles.py, run by
 * `make test`); below it durable, runs, timer, batch, inbox, writer, pool
 * and the journal call nothing above them.
 *
 * Memory: the engine owns every workflow given to cairn_engine_add_workflow.
 * Strings passed in are borrowed.
 */
#ifndef CAIRN_ENGINE_H
#define CAIRN_ENGINE_H

#include <jv.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "dsl/workflow.h"
#include "engine/event.h"
#include "engine/fold.h"
#include "engine/journal.h"

#define CAIRN_DEFAULT_WORKERS 16
#define CAIRN_DEFAULT_GRACE_MS 30000      /* SIGTERM: time running attempts get to finish */
#define CAIRN_COMMAND_POLL_MS 100         /* how often commands from other processes are read */
/* Items one foreach may expand to; a longer list fails the step (kind
 * expression).  The list is journaled once, in step_expanded. */
#define CAIRN_FOREACH_MAX_ITEMS 10000000
/* Items of one foreach in flight at once when its `concurrency` is unset
 * ("all"): more start as these finish.  Actions run on CAIRN_DEFAULT_WORKERS
 * threads anyway; the window keeps a long foreach from holding an attempt
 * and a queued event for every item at once (100,000 `set` items: 227 MB
 * peak without it, 163 MB with it). */
#define CAIRN_FOREACH_WINDOW 4096
/* An approval link lapses with its approval's time-out, and at the latest
 * this long after the approval opens (a link is a bearer credential: an
 * approval with no time-out must not hand out one that never lapses). */
#define CAIRN_APPROVAL_LINK_TTL_MAX_MS (7LL * 24 * 3600 * 1000)

typedef struct cairn_engine cairn_engine;

/* Called on the orchestrator thread once ev is durable.  st is the run's
 * current state (it may already be past ev).  ev is as the journal holds
 * it: its data is text (event.h). */
typedef void (*cairn_event_cb)(const cairn_event *ev, const cairn_run_state *st, void *ud);

/* Called on the orchestrator thread after on_event has seen every event of
 * one durable batch (a group commit): n events (metrics). */
typedef void (*cairn_batch_cb)(int n, void *ud);

/* Called on the orchestrator thread when an approval opens whose `with`
 * has a `notify` body: links for the approvers, an object {NAME: URL} the
 * body reads as `.approval.links` (engine/approval.c).  approvers (the
 * rendered list, borrowed) may hold `group:` entries, which get none;
 * expires_ms is when the links lapse (wall ms).  Must not block; returns
 * {} when it makes none.  The object returned is the engine's. */
typedef jv (*cairn_links_cb)(const char *run_id, const char *step, jv approvers,
                             int64_t expires_ms, void *ud);

typedef struct cairn_engine_config {
    cairn_journal *journal;      /* opened as CAIRN_JOURNAL_ENGINE; the engine's, even on error */
    int workers;                 /* 0: CAIRN_DEFAULT_WORKERS */
    int64_t grace_ms;            /* 0: CAIRN_DEFAULT_GRACE_MS */
    bool pool_only;              /* run every action on the worker pool, even inline ones */
    bool serve;                  /* the loop turns with no run until a stop is requested */
    cairn_event_cb on_event;
    cairn_batch_cb on_batch;     /* may be NULL */
    cairn_links_cb approval_links; /* may be NULL: no approval links */
    void *ud;
} cairn_engine_config;

/* Open the engine on cfg->journal, which it owns from here on (and closes
 * with cairn_engine_close, or at once on error). */
int cairn_engine_open(const cairn_engine_config *cfg, cairn_engine **out, cairn_err *err);

/* Close the engine: stops the threads (the loop must have returned). NULL ok. */
void cairn_engine_close(cairn_engine *e);

/* Give the engine a loaded workflow (ownership passes to the engine, even on
 * error).  Its source is stored in the journal, pinned by its SHA-256.
 * *def_hash (65 bytes) receives the hash runs are started with. */
int cairn_engine_add_workflow(cairn_engine *e, cairn_workflow *wf, char def_hash[65],
                              cairn_err *err);

/* Start a run of a workflow added before.  inputs (consumed) are checked
 * against the workflow's specs before anything is journaled; trigger
 * (consumed) is recorded as `.run.trigger`.  run_id receives the new id. */
int cairn_engine_start_run(cairn_engine *e, const char *def_hash, jv inputs, jv trigger,
                           char run_id[CAIRN_RUN_ID_MAX], cairn_err *err);

/* As cairn_engine_start_run, with the run's id chosen by the caller
 * (cairn_new_run_id): a server records the id with an idempotency key
 * before the run exists.  CAIRN_EEXISTS when this engine holds that run. */
int cairn_engine_start_run_as(cairn_engine *e, const char *def_hash, jv inputs, jv trigger,
                              const char run_id[CAIRN_RUN_ID_MAX], cairn_err *err);

/* As cairn_engine_start_run_as, the run placed on the engine node (its
 * owner string, from cairn_journal_node_loads; journal.h, "placement"):
 * its run_created is journaled here, and node runs it.  node NULL or this
 * engine: started here.  CAIRN_ESTATE on a journal with no placement
 * (SQLite). */
int cairn_engine_start_run_on(cairn_engine *e, const char *def_hash, jv inputs, jv trigger,
                              const char run_id[CAIRN_RUN_ID_MAX], const char *node,
                              cairn_err *err);

/* Run fn(e, ud) on the orchestrator thread at its next turn: the one way
 * another thread (an HTTP server's) acts on runs.  Any thread; fn must not
 * block.  A call still queued when the engine closes runs there with e
 * NULL, so that its poster learns it was not carried out. */
typedef void (*cairn_engine_call_fn)(cairn_engine *e, void *ud);
void cairn_engine_call(cairn_engine *e, cairn_engine_call_fn fn, void *ud);

/* Orchestrator thread only (in a cairn_engine_call): carry out a command
 * ("cancel", "pause", "unpause", "decide", "resolve" with data as
 * cairn_journal_put_command takes it) for a run this engine holds now,
 * with no row in the commands table.  *seq receives the run's last seq
 * once the command's events are appended: they are durable once on_event
 * has reported that seq; 0 when the command appended nothing (a pause of a
 * paused run, a run resolved already).
 * CAIRN_EINVAL for any other type (the engines' own "child" included);
 * CAIRN_ENOTFOUND with *seq -1 when this engine holds no such run;
 * CAIRN_ESTATE when it has ended; for "decide" the error of
 * cairn_approval_check. */
int cairn_engine_command(cairn_engine *e, const char *run_id, const char *type, const char *data,
                         int64_t *seq, cairn_err *err);

/* Take over unfinished runs (run_id, or every unfinished run when NULL) whose
 * engine is gone: fold their journals and hand in-flight attempts to
 * on_crash.  First everything this engine wrote is applied to SQLite, and
 * so is a dead engine's commit log if this engine does not hold the log.
 * *taken counts the runs taken (may be NULL). */
int cairn_engine_resume(cairn_engine *e, const char *run_id, int *taken, cairn_err *err);

/* Run the orchestrator on this thread until no run it holds is active (each
 * has ended, with its last event durable and in SQLite), or a stop was
 * requested and running attempts have finished or been interrupted.
 * Returns 0, or the sticky journal error. */
int cairn_engine_run(cairn_engine *e, cairn_err *err);

/* Ask the engine to stop taking work (async-signal-safe: for SIGTERM/SIGINT;
 * and safe from any thread, as `cairn serve` stops it from its own).
 * Running attempts get the grace period, then are stopped and journaled as
 * interrupted. */
void cairn_engine_request_stop(cairn_engine *e);

/* Read commands from other processes now rather than at the next poll
 * (async-signal-safe: for SIGUSR1, which cairn_journal_put_command sends;
 * and safe from any thread). */
void cairn_engine_wake(cairn_engine *e);

/* How many runs the engine holds now: started, resumed or taken over here,
 * not yet ended and let go (a run placed on another engine, or lost to
 * one, is not held).  Safe from any thread; a moment old. */
int cairn_engine_runs_held(const cairn_engine *e);

/* Whether `by` may decide the open approval of step in st now: the approval
 * exists and is undecided, the run has not ended, by is an approver (or
 * there is no list): named in it, or a member of one of its `group:NAME`
 * entries by groups (an array of group names, borrowed; jv_null() for a
 * decider who brings none, as the CLI's); to approve, by must also not have
 * started the run (unless allow_self_approval) nor approved already.  0, or
 * an error saying which (CAIRN_EAUTH for who may not). */
int cairn_approval_check(const cairn_run_state *st, const char *step, const char *by, jv groups,
                         bool approve, cairn_err *err);

/* Who started the run whose trigger data is trigger (borrowed), as the
 * self-approval rule compares it: the trigger's `user` (a token's name
 * through the API, the Unix user of `cairn run`), else its `source` (a
 * webhook's source, `schedule`); NULL when it names neither.  Borrowed from
 * trigger. */
const char *cairn_run_starter(jv trigger);

/* A new run id: time-ordered, 16 characters [0-9a-z]. */
void cairn_new_run_id(char out[CAIRN_RUN_ID_MAX]);

#endif
