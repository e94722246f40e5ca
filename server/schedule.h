/*
 * schedule.h - the `schedule:` triggers of the workflows a server offers,
 * fired by the server.
 *
 * Each schedule trigger (workflow W, index I in its `triggers`) is read on
 * the wall clock of its `timezone` (UTC without one; dsl/cron.h says how
 * gaps and repeated hours of daylight saving time fire).  Its fires live in
 * the journal as claims (journal.h) in the space "schedule/W/I":
 *
 *   key "2026-12-07T10:05:00.000Z"  a fire (the slot's UTC time): value
 *                                   "RUN OWNER", the run's id chosen before
 *                                   it starts and the server that claimed it
 *                                   (owner.h); "refused RUN" when the run
 *                                   could not start (its inputs refused)
 *   key "considered"                the latest slot decided (fired or
 *                                   skipped), moved on by compare-and-set
 *
 * Firing a slot: claim it (synced), then start its run under the chosen id,
 * then move "considered" past it.  So:
 *   - a restart never fires a slot twice: the claim is found;
 *   - a crash between the claim and a durable run loses nothing: the claim
 *     names a run that does not exist and a server that is dead, and the
 *     next scheduler to look at that slot takes the claim over (compare-and-
 *     set: of two, one wins) and starts that same run id;
 *   - two servers on one journal fire each slot once: the claim decides; a
 *     claim whose owner lives and whose run is not there yet is waited for,
 *     never passed, so "considered" never passes a fire whose run may be
 *     lost.
 *
 * Missed fires and catch-up: at start each schedule reads "considered" (a
 * schedule never seen before starts from now: nothing is missed).  A slot
 * after it fires, late, while it is at most CAIRN_SCHEDULE_LATE_S old (a
 * quick restart loses nothing); older ones were missed while no server
 * looked, and so are those a running server finds that old (a stall, the
 * wall clock jumping forward).  The first missed slot is settled as above if
 * it was claimed (a crash between claim and run).  Of the rest, with
 * `catch_up: true` the latest runs once now (`.run.trigger.caught_up` true)
 * and the others are logged as skipped; with `catch_up: false` all are
 * logged as skipped.  A schedule added or changed by a reload starts from
 * the time of the reload.
 *
 * The run's trigger (`.run.trigger`): {source: "schedule", user: "schedule",
 * workflow, trigger (I), schedule (the cron text), timezone, at (the slot,
 * RFC 3339 UTC), caught_up}.  The trigger's `inputs`, if any, are rendered
 * over that object (`${{ .at }}`) and checked by the engine as any start's.
 *
 * The clock: the system's wall clock; or, when CAIRN_SCHEDULE_CLOCK names a
 * file, the RFC 3339 time written in it (read at each look, every
 * CAIRN_SCHEDULE_TEST_POLL_MS): tests move time by rewriting the file.
 * Unit tests give a clock of their own (srv_schedule_config.clock) or call
 * srv_schedule_tick themselves.
 *
 * Threads: srv_schedule_start runs one thread of its own that looks at the
 * clock and fires; stage, commit and tick may be called from any thread (a
 * lock guards the schedules).  Memory: arguments are borrowed.
 */
#ifndef CAIRN_SERVER_SCHEDULE_H
#define CAIRN_SERVER_SCHEDULE_H

#include <jv.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "dsl/workflow.h"

#define CAIRN_SCHEDULE_POLL_MS 1000       /* longest sleep between looks at the clock */
#define CAIRN_SCHEDULE_TEST_POLL_MS 20    /* ... with CAIRN_SCHEDULE_CLOCK */
#define CAIRN_SCHEDULE_CAS_TRIES 16       /* compare-and-set rounds moving "considered" */
#define CAIRN_SCHEDULE_LATE_S 300         /* a slot older than this when first looked at was missed */

typedef struct srv_schedule srv_schedule;

/* Start a run of definition hash under run_id with inputs and trigger
 * (consumed); 0 once its first event is durable.  CAIRN_ESTATE when the
 * server is stopping; other codes when the start is refused (inputs). */
typedef int (*srv_schedule_start_fn)(void *ud, const char *hash, jv inputs, jv trigger,
                                     const char *run_id, cairn_err *err);
/* Whether run_id is in the journal (or durable, on its way there). */
typedef bool (*srv_schedule_exists_fn)(void *ud, const char *run_id);
/* Whether the engine takes starts now (the scheduler waits for it). */
typedef bool (*srv_schedule_ready_fn)(void *ud);
/* What came of a slot, for metrics: "started", "recovered", "caught_up",
 * "skipped", "refused", "failed". */
typedef void (*srv_schedule_count_fn)(void *ud, const char *workflow, const char *result);
/* The wall clock, Unix ms. */
typedef int64_t (*srv_schedule_clock_fn)(void *ud);

typedef struct srv_schedule_config {
    const char *db_path;                 /* the journal, for claims */
    srv_schedule_start_fn start;
    srv_schedule_exists_fn exists;
    srv_schedule_ready_fn ready;         /* may be NULL: always */
    srv_schedule_count_fn count;         /* may be NULL */
    srv_schedule_clock_fn clock;         /* NULL: the system's, or CAIRN_SCHEDULE_CLOCK */
    FILE *log;                           /* what fired, what was skipped, and why */
    void *ud;
} srv_schedule_config;

/* Open the journal's claims.  CAIRN_EINVAL when CAIRN_SCHEDULE_CLOCK names
 * a file that holds no RFC 3339 time. */
int srv_schedule_new(const srv_schedule_config *cfg, srv_schedule **out, cairn_err *err);

/* Stop the thread (if started) and free everything.  NULL is allowed. */
void srv_schedule_free(srv_schedule *s);

/* Note wf's schedule triggers under its definition hash (wf->sha256): a
 * workflow loaded, before it goes to the engine. */
void srv_schedule_stage(srv_schedule *s, const cairn_workflow *wf);

/* Serve the schedules of the workflows in `served` (an array of {name,
 * hash}, as srv_registry_list gives it; borrowed): a workflow whose hash
 * was staged gets those schedules (one whose cron text and zone are
 * unchanged keeps its place), one no longer listed loses its own.  Then
 * what was staged is forgotten.  *count receives the schedules served. */
void srv_schedule_commit(srv_schedule *s, jv served, int *count);

/* Start the thread (once). */
int srv_schedule_start(srv_schedule *s, cairn_err *err);

/* Look at the clock as if it read now_ms: settle new schedules, fire what
 * is due.  The thread calls this; a unit test may instead.  Returns the
 * UTC ms of the next slot due (INT64_MAX when none). */
int64_t srv_schedule_tick(srv_schedule *s, int64_t now_ms);

#endif
