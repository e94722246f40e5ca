/*
 * fold.h - the one pure function from journal events to run state.
 *
 * Live execution, crash recovery, `cairn show` and `cairn verify` all build
 * run state with cairn_fold_apply, event by event: there is one source of
 * truth.  The fold decides nothing; it records.  What to
 * do next is the orchestrator's business (engine.c).
 *
 * Step state machine (per step; per item for foreach steps):
 *
 *     pending --step_started--> running --step_succeeded--> succeeded
 *        |                        |   \---step_failed-----> failed
 *        |                        |    \--step_crashed{retry}--> pending
 *        |                        \--step_retrying--> waiting --(timer)--> step_started
 *        +--step_waiting--> waiting --(timer)--> step_succeeded
 *        |                        \--step_interrupted: stays running, in flight
 *        +--step_skipped--> skipped
 *        +--step_expanded--> running (foreach: items pending)
 *        +--step_carried--> succeeded | skipped | failed  (a fork: the result
 *                           the run it was forked from recorded; no attempt)
 *     any not done --run_cancelled--> cancelled
 *
 * "In flight" means an attempt has a step_started and no ending event: after
 * a crash, exactly those attempts are handed to the step's on_crash policy.
 *
 * Run state machine:
 *     (none) --run_created--> running --run_succeeded--> succeeded
 *                               |  \----run_failed-----> failed
 *                               \--run_cancel_requested (flag)--run_cancelled--> cancelled
 *                     running --run_paused--> paused --run_unpaused--> running
 *                              (paused ends as running does; run_paused in any
 *                              other status sets the flag only)
 *                     running --run_compensating--> compensating --run_failed / run_cancelled
 *
 * Invariants checked by the fold (a violation is CAIRN_ECORRUPT, naming the
 * run and the event's seq): the first event is run_created; seq increases
 * by exactly one; step events name a known step and a valid item index; a
 * step_expanded's item list, when it has one, holds `count` items; no event
 * follows a terminal run event; step_carried comes only in a fork
 * (run_created with `fork`), right after run_created or another
 * step_carried, with a status it may carry; and every step event finds its step (or
 * item) in a state the machine above leaves by it:
 *
 *     step_started                          pending, waiting
 *     step_succeeded                        running, waiting
 *     step_crashed                          running, waiting (an on_crash ask
 *                                           answered "run it again")
 *     step_interrupted                      running
 *     step_skipped, step_expanded,          pending
 *     step_carried
 *     approval_decided, approval_escalated  waiting
 *     step_failed, step_retrying, step_waiting,
 *     approval_requested, child_started     pending, running, waiting
 *     step_spawned, approval_notified       any (records)
 *
 * Cost: applying one event is O(size of its data), whatever the run's size:
 * a foreach's items are counted as they change state (items_succeeded,
 * items_failed) rather than scanned, so a foreach of n items folds in O(n).
 *
 * Memory: a cairn_run_state owns its jv values and arrays;
 * cairn_run_state_free releases them (NULL allowed).  jv: one thread.
 */
#ifndef CAIRN_FOLD_H
#define CAIRN_FOLD_H

#include <jv.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "engine/event.h"

#define CAIRN_STEP_STATUS_MAP(X) \
    X(PENDING, "pending") X(RUNNING, "running") X(WAITING, "waiting") \
    X(SUCCEEDED, "succeeded") X(FAILED, "failed") X(SKIPPED, "skipped") \
    X(CANCELLED, "cancelled")

typedef enum {
#define CAIRN_SS_ENUM(n, s) CAIRN_STEP_##n,
    CAIRN_STEP_STATUS_MAP(CAIRN_SS_ENUM)
#undef CAIRN_SS_ENUM
    CAIRN_STEP_STATUS_COUNT
} cairn_step_status;

#define CAIRN_RUN_STATUS_MAP(X) \
    X(RUNNING, "running") X(WAITING, "waiting") X(SUCCEEDED, "succeeded") \
    X(FAILED, "failed") X(COMPENSATING, "compensating") X(CANCELLED, "cancelled") \
    X(PAUSED, "paused")

typedef enum {
#define CAIRN_RS_ENUM(n, s) CAIRN_RUN_##n,
    CAIRN_RUN_STATUS_MAP(CAIRN_RS_ENUM)
#undef CAIRN_RS_ENUM
} cairn_run_status;

const char *cairn_step_status_name(cairn_step_status s);
const char *cairn_run_status_name(cairn_run_status s);
bool cairn_run_status_terminal(cairn_run_status s);
/* Whether a status as the runs table spells it (cairn_run_status_name)
 * names an end; NULL: no. */
bool cairn_run_status_name_ends(const char *name);

typedef struct cairn_item_state {
    cairn_step_status status;
    int attempts;
    bool in_flight;
    int64_t wake_at;               /* waiting: Unix ms its timer fires */
    jv output, error;
} cairn_item_state;

typedef struct cairn_step_state {
    cairn_step_status status;
    int attempts;                  /* attempts started (not for foreach steps) */
    bool in_flight;
    int64_t wake_at;               /* waiting: Unix ms its timer fires (retry, wait) */
    bool expanded;                 /* foreach: items known */
    int n_items;
    cairn_item_state *items;
    jv item_list;                  /* foreach: the items as step_expanded journaled them
                                      (secrets masked), or jv_null() (not expanded, or a
                                      journal that recorded the count only) */
    int items_succeeded, items_failed;   /* foreach: items now in those states */
    jv output, error;              /* jv_null() until set */
    char child[CAIRN_RUN_ID_MAX];  /* a `workflow` step's child run, or "" */
    jv approval;                   /* an open or decided approval: the request, with
                                      "approvals" (names so far) and "decision"; or null */
    int64_t done_seq;              /* seq of the event that made it done; 0 if not */
    int64_t carried_seq;           /* step_carried: the event of the run forked from
                                      (cairn_run_state.fork_run) that ended it there; 0 if
                                      the step is this run's own */
} cairn_step_state;

/* A process group an attempt started (step_spawned), kept while the attempt
 * may be in flight, so that recovery can kill what a crash left of it.  A
 * record whose attempt has ended is dropped when the table fills up: it
 * holds about twice as many as there are attempts with a process at once. */
typedef struct cairn_spawned {
    int step, index, attempt;             /* index: foreach item, or -1 */
    int64_t pgid, start;
    char *host;                           /* owned */
} cairn_spawned;

typedef struct cairn_run_state {
    char id[CAIRN_RUN_ID_MAX];
    char *workflow, *def_hash, *parent;
    char *fork_run, *fork_step;           /* a fork: the run and step it was forked
                                             from (run_created's fork), else NULL */
    int n_carried;                        /* its step_carried events */
    cairn_run_status status;
    bool cancel_requested;
    bool paused;                          /* run_paused, until run_unpaused */
    jv inputs, trigger, outputs, error;
    int64_t created_ms, updated_ms;
    int64_t status_ms;                    /* time of run_created or of the last event
                                             that changed status (the runs table's
                                             updated_at) */
    int64_t last_seq;
    unsigned char head[CAIRN_HASH_LEN];   /* hash of the last event */
    int n_steps;
    char **step_ids;                      /* owned copies (one allocation) */
    int *order;                           /* step indices sorted by id, for lookup */
    cairn_step_state *steps;
    cairn_spawned *spawned;               /* see cairn_spawned */
    int n_spawned, cap_spawned;
} cairn_run_state;

/* Start an empty state for run_id whose workflow has these steps (ids are
 * copied).  The steps are every step a run can journal: see eng_step_ids. */
cairn_run_state *cairn_run_state_new(const char *run_id, char **step_ids, int n_steps);
void cairn_run_state_free(cairn_run_state *st);

/* Index of step id, or -1. */
int cairn_run_state_step(const cairn_run_state *st, const char *id);

/* The process group recorded for that attempt of step (index: item or -1),
 * or NULL. */
const cairn_spawned *cairn_run_state_spawned(const cairn_run_state *st, int step, int index,
                                             int attempt);

/* Apply one event; data is its data parsed (borrowed).  The engine, which
 * wrote ev->data from a value it holds, may pass an object holding only
 * the members the fold reads of that type (step_started: index;
 * step_succeeded: output, index) rather than parse its own text back, and
 * step, the index of ev->step in st->step_ids when it knows it (checked
 * with one comparison), or -1 to have it looked up.  Returns 0 or
 * CAIRN_ECORRUPT with a message naming the run and seq. */
int cairn_fold_apply(cairn_run_state *st, const cairn_event *ev, int step, jv data,
                     cairn_err *err);

/* As cairn_fold_apply for a step_started or step_succeeded the engine made,
 * given the members the fold reads of them rather than an object holding
 * them: index (-1: none, the step itself) and, of step_succeeded, output
 * (borrowed; ignored for step_started).  Any other type is CAIRN_ECORRUPT. */
int cairn_fold_apply_step(cairn_run_state *st, const cairn_event *ev, int step, int index,
                          jv output, cairn_err *err);

/* Parse an event's data (as read from the journal) and apply it. */
int cairn_fold_event(cairn_run_state *st, const cairn_event *ev, cairn_err *err);

/* The run's status as people see it: a running run whose only activity is
 * waiting (approvals, timers) is "waiting". */
cairn_run_status cairn_run_state_status(const cairn_run_state *st);

/* The run as `cairn show --json` gives it:
 * {id, workflow, status, inputs, outputs, error, created_at, updated_at,
 *  fork?: {run, step},
 *  steps: {id: {status, attempts, output, error, approval?, child?,
 *              carried?: {run, seq},
 *              items?: [{index, status, attempts, in_flight, output, error}]}}}
 * (items: a foreach step's, once expanded; carried: a fork's step whose
 * result is the one that event of that run recorded).  Times are RFC 3339 in
 * UTC with milliseconds ("2026-12-07T05:05:04.527Z"), as in every JSON
 * output of the CLI. */
jv cairn_run_state_to_json(const cairn_run_state *st);

/* A step's approval (cairn_step_state.approval, borrowed) as people see it:
 * its deadline (wall-clock ms, 0 for none) as an RFC 3339 time or null. */
jv cairn_approval_to_json(jv approval);

#endif
