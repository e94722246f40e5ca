/*
 * fork.h - a new run of an ended run's definition that re-runs it from one
 * step (`cairn fork RUN --from STEP`), taking the recorded results of the
 * steps that step does not depend on.
 *
 * Which steps run again.  The seeds are STEP and every step of `steps`
 * whose result in the old run cannot stand: it failed (without
 * continue_on_error), was cancelled, never ran (pending, or skipped because
 * the run failed first), or its compensate body ran (its effect was
 * undone).  Every step that
 * needs a step that runs again (through `needs`, transitively; a step's
 * expressions read only its `needs` ancestors, dsl/refs.c) runs again too.
 * Every other step of `steps` is carried: a step_carried event (event.h)
 * gives it the old run's result (succeeded, skipped by its `if`, or failed
 * with continue_on_error), its output, error and attempt count, its
 * approval's decisions (who, when, their comments) and its child run, and
 * names the old run's event that ended it.  So a carried step's needs are
 * all carried.  on_failure steps and compensate bodies are never carried:
 * they run only if the fork fails, and a carried step's compensate body
 * runs then like any succeeded step's (its effect stands in the fork).
 *
 * The fork's run_created records {fork: {run, step}}; its carried results
 * follow in the same commit, in the order the old run ended those steps
 * (the rollback's order depends on it).  Inputs are the old run's, each
 * --input replacing one, checked as a new run's are; an input the old
 * journal holds masked ("***": it held a secret's value) must be given
 * again, since the run's steps read the real value.  Secrets are never
 * carried: a step that runs again reads .secrets from the store, as any
 * run's step does; a carried output holds secrets masked, as the engine
 * hands every step's output to the steps after it.  The trigger is the old run's
 * (a step that reads the alert that started it reads the same alert), with
 * `user` the person who forks: the self-approval rule applies to them.
 *
 * The old run names its forks through journal claims (journal.h): space
 * "forks/<old run>", keys "0", "1", ... in the order taken, each holding
 * {"run", "step"} of one fork; taken, synced, before the fork's run_created
 * is appended.  A claim whose run was never journaled (the process died in
 * between) is no fork and is not listed.
 *
 * Refused before anything is written: a run that does not exist or has not
 * ended, a step that is not one of `steps` (did-you-mean), inputs that do
 * not check.
 *
 * Memory: arguments are borrowed unless marked consumed; what is returned
 * belongs to the caller.  The engine's functions: its orchestrator thread.
 */
#ifndef CAIRN_FORK_H
#define CAIRN_FORK_H

#include <jv.h>
#include <stdbool.h>

#include "common/err.h"
#include "engine/engine.h"
#include "engine/journal.h"

#define CAIRN_FORK_SPACE "forks/"     /* claims space prefix: "forks/<old run>" */

/* A fork to make (all borrowed). */
typedef struct cairn_fork_req {
    const char *run;             /* the ended run forked */
    const char *step;            /* the first step to run again */
    jv inputs;                   /* an object: inputs replacing the old run's */
    const char *user;            /* who forks: the trigger's user */
    bool dry_run;                /* decide and report only: nothing is written */
} cairn_fork_req;

/* Start the fork (unless dry_run): run_id receives its id ("" for a dry
 * run).  *report (may be NULL) receives {inputs, notes, steps}: the inputs
 * as checked; one note per step the caller should hear about (a step not
 * downstream of `step` that runs again, and why; a carried step that reads
 * .inputs when inputs change); per step of `steps`, in order,
 * {step, action: "carry", status, from_seq} or {step, action: "run", why}.
 * CAIRN_ENOTFOUND (no such run, no such step), CAIRN_ESTATE (the run has
 * not ended), the error of cairn_workflow_check_inputs, or a journal
 * error. */
int cairn_engine_fork_run(cairn_engine *e, const cairn_fork_req *req, char run_id[CAIRN_RUN_ID_MAX],
                          jv *report, cairn_err *err);

/* The forks of run_id whose runs exist, in the order they were made:
 * *out an array of {run, step}. */
int cairn_fork_list(cairn_journal *j, const char *run_id, jv *out, cairn_err *err);

#endif
