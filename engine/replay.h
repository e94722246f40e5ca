/*
 * replay.h - re-taking a run's decisions over its journal (`cairn replay`).
 *
 * A replay folds the run's events, one by one, through the fold the engine
 * uses (fold.h), into the engine's own run structure, and before each event
 * re-takes the decision that event records with the engine's own decision
 * functions (engine_int.h, "Decisions"), over the state the events before
 * it left.  Nothing runs, nothing is written; the result is the first
 * event whose decision comes out different, or none.  Against another
 * version of the workflow (cairn_replayer_new with that definition) the
 * same walk says where that version would have decided differently.
 *
 * The decisions re-taken, and how each is compared (the `decision` word a
 * divergence names):
 *
 *   ready     a step's first event (step_started, step_skipped,
 *             step_expanded, or a step_failed or step_retrying before any
 *             attempt began): every step it needs is done (succeeded,
 *             skipped, or failed with continue_on_error), and the run was
 *             not failing, cancelled or paused (eng_needs_waiting,
 *             eng_may_start).
 *   if        that first event follows the step's `if` (eng_if_holds): a
 *             skip where it is falsy, a start where it is truthy, a
 *             step_failed of kind expression where it does not render.
 *   input     each step_started's `input` is the step's `with` rendered for
 *             that attempt (eng_step_input: .step, .item, .index included),
 *             masked with the secrets as the engine masked it, and equal
 *             to the journal's as JSON.  The attempt number is the one
 *             after the last (eng_next_attempt).
 *   foreach   step_expanded's items are the foreach expression rendered
 *             and masked (a journal that recorded the count only: the
 *             count); an item starts only while fewer than the step's
 *             window (eng_foreach_window) hold a place; the step succeeds
 *             when every item has, fails once one has.
 *   retry     a step_retrying: the attempt's error is retried
 *             (eng_retry_allowed: attempts left, run not failing unless a
 *             rollback body, "<kind>: <message>" matches retry.on); a
 *             final step_failed after an attempt: it is not.  Errors of
 *             kind cancelled, crash and rejected end a step without that
 *             decision.
 *   backoff   retry_at less the event's time lies within the back-off
 *             (eng_backoff_range: exactly it without jitter, within the
 *             jitter's bounds with it), and the next attempt starts no
 *             earlier than retry_at.
 *   until     a succeeded attempt meets retry.until with its journaled
 *             output (eng_until_met).  An attempt that failed `until` is
 *             not re-judged: its output is not journaled, so only that the
 *             step has an `until` is checked.
 *   approval  approval_requested is the step's request (eng_approval_request;
 *             its deadline within its time-out of the step_started and
 *             the request); each approval_decided passes
 *             cairn_approval_check over the state before it; the step
 *             succeeds when its quorum is met (eng_quorum_met) or the
 *             time-out approves, fails rejected after a rejection or the
 *             time-out; an escalation follows on_timeout.
 *   wait      a wait step's deadline is its `duration` after the step
 *             began (between its step_started and step_waiting) or its
 *             `until`; it succeeds no earlier than that.
 *   child     child_started's run is of the workflow `with.name` names,
 *             has this run as parent, and its inputs are `with.inputs`
 *             checked against its definition (defaults filled), masked.
 *             A child the journal does not hold is not judged.
 *   crash     step_crashed's action is the step's on_crash (eng_on_crash).
 *   rollback  run_compensating only when the run fails or is cancelled,
 *             no attempt in flight, with a rollback to run; its bodies
 *             begin one at a time in eng_rollback_order (the compensate
 *             bodies of succeeded steps, latest completion first, then
 *             on_failure); the run ends only once every one has settled;
 *             a run that fails or is cancelled without run_compensating
 *             had no rollback to run.
 *   end       run_succeeded when every step is done and the run neither
 *             failing nor cancelled, its outputs rendered (eng_run_outputs)
 *             and masked equal to the journal's; run_failed with an
 *             output's error only when that output does not render.
 *   inputs    run_created's inputs pass the definition's input check.
 *   journal   an event the fold refuses (fold.h) under this definition:
 *             a step it does not have, a transition its state forbids.
 *
 * The document expressions render over is the one the live engine keeps:
 * each step's view is brought up to date when it is done or fails.  After
 * a crash the engine rebuilt it from the whole state; so a render that
 * differs is tried once more over the document rebuilt from the state then
 * (eng_build_ctx) before it counts as a divergence.
 *
 * Not judged: an event's hash chain (`cairn verify` checks it); what an
 * action did; a value a template reads from the clock (jq `now`); a
 * comparison whose workflow reads a secret by name that the replay was not
 * given (it counts as unjudged, not as a divergence); actions' own checks
 * of their `with` (prepare).  A run that has not ended (still running, or
 * cut short by a crash and not resumed) is judged as far as its journal
 * goes: CAIRN_REPLAY_UNFINISHED.
 *
 * Cost: O(events + the size of their data + the renders), one pass; the
 * document is updated per step, not rebuilt.
 *
 * Memory: a replayer owns its definition; the secrets are borrowed and
 * must outlive it.  A journal's replay owns its replayers and secrets.
 * jv: one thread.
 */
#ifndef CAIRN_REPLAY_H
#define CAIRN_REPLAY_H

#include <jv.h>
#include <stdint.h>

#include "common/err.h"
#include "dsl/workflow.h"
#include "engine/event.h"
#include "engine/journal.h"
#include "engine/secrets.h"

/* Bytes of each side of a divergence as told (longer values are cut). */
#define CAIRN_REPLAY_TEXT_MAX 512

typedef enum {
    CAIRN_REPLAY_CONSISTENT,   /* every decision the same; the run has ended */
    CAIRN_REPLAY_UNFINISHED,   /* the same so far; the run has not ended */
    CAIRN_REPLAY_DIVERGED      /* the first event decided differently */
} cairn_replay_verdict;

typedef struct cairn_replay_result {
    cairn_replay_verdict verdict;
    int64_t events;            /* events replayed (up to the divergence, included) */
    int decisions;             /* decisions re-taken and found the same */
    int unjudged;              /* comparisons left out: a secret not given */
    const char *status;        /* the run's status at the end (static) */
    /* CAIRN_REPLAY_DIVERGED: the event, and what each side says */
    int64_t seq;
    cairn_event_type type;
    char step[CAIRN_ID_MAX + 16];  /* "" for a run event */
    int index, attempt;        /* index: a foreach item, or -1 */
    const char *decision;      /* one of the words above (static) */
    char journal[CAIRN_REPLAY_TEXT_MAX], replay[CAIRN_REPLAY_TEXT_MAX];
} cairn_replay_result;

/* The child run a child_started names, for the `child` decision: 0 with
 * *created its run_created data (the caller's) and *wf its definition
 * (borrowed: it must live until the replay returns), or CAIRN_ENOTFOUND
 * when the journal does not hold it (not judged), or another error. */
typedef int (*cairn_replay_child_fn)(void *ud, const char *child_id, jv *created,
                                     const cairn_workflow **wf, cairn_err *err);

typedef struct cairn_replayer cairn_replayer;

/* A replayer of runs against wf (consumed, even on error), with the
 * secrets the engine masked with (borrowed; NULL: none).  child may be
 * NULL (children not judged). */
cairn_replayer *cairn_replayer_new(cairn_workflow *wf, const cairn_secrets *secrets,
                                   cairn_replay_child_fn child, void *ud);
void cairn_replayer_free(cairn_replayer *rp);   /* NULL ok */

/* Replay one run's events evs[0..n) (seq order, as the journal gave them;
 * borrowed).  0 and *out; an error only when there is nothing to replay
 * (n 0) or the child lookup failed. */
int cairn_replay_run(cairn_replayer *rp, const cairn_event *evs, int n, cairn_replay_result *out,
                     cairn_err *err);

/* Replaying the runs of a journal (replay_journal.c): each run against
 * the definition it is pinned to (compiled once however many runs share
 * it), or against fixed when given (consumed; NULL: pinned); children are
 * looked up in the same journal; the secrets beside it (and CAIRN_SECRET_*)
 * are read once, to mask as the engine did.  When they cannot be read,
 * warning->code is set and says why (replays go on without them: a
 * comparison that reads one is then not judged); else it is 0.  j is
 * borrowed and must outlive it. */
typedef struct cairn_replay_journal cairn_replay_journal;
cairn_replay_journal *cairn_replay_journal_new(cairn_journal *j, cairn_workflow *fixed,
                                               cairn_err *warning);
void cairn_replay_journal_free(cairn_replay_journal *rj);   /* NULL ok */

/* Replay run_id: 0 and *out; CAIRN_ENOTFOUND when the journal has no such
 * run; another code when its events or its definition cannot be read (an
 * edited definition: CAIRN_ECORRUPT). */
int cairn_replay_journal_run(cairn_replay_journal *rj, const char *run_id,
                             cairn_replay_result *out, cairn_err *err);

#endif
