/*
 * live.h - what `cairn run`, `resume` and `cancel` print while they drive
 * runs: fed by the engine's event callback (engine.h cairn_event_cb) with
 * each durable event and its run's state (fold.h).
 *
 * Two forms:
 *   lines  one line per durable transition: time, step, event type, detail.
 *          Stable, for pipes, logs, tests and CI; what `--json` prints
 *          before its last line.
 *   view   on a terminal: a line per finished step (progress "3/5" of the
 *          workflow's own steps, outcome, duration and attempts), decisions
 *          (who decided, and the comment), for an open approval the exact
 *          `cairn approve` and `cairn reject` commands to type (with --db
 *          when the journal is not ./cairn.db, the run id and the step id),
 *          child runs' lines prefixed with the child's workflow name, and at
 *          the end how the run ended and its outputs.  Below the finished
 *          lines one status line (progress and what runs or waits now) is
 *          redrawn in place with \r and erase-line, only when it changes.
 *
 * Memory: cli_live_new returns a printer the caller frees with cli_live_free
 * (NULL allowed), after the engine that calls it is closed.  db is copied.
 * Used on the engine's orchestrator thread only (it loads definitions,
 * which hold a jq_state).
 */
#ifndef CAIRN_CLI_LIVE_H
#define CAIRN_CLI_LIVE_H

#include <stdbool.h>
#include <stdio.h>

#include "engine/engine.h"

/* The status line's length in bytes at most; it is also cut to the
 * terminal's width, so that \r returns to its start. */
#define CAIRN_LIVE_STATUS_MAX 400
/* Child runs and resumed runs the view follows at once; past this many, a
 * run's lines still print but it has no place in the status line. */
#define CAIRN_LIVE_RUNS_MAX 64

typedef struct cli_live cli_live;

/* ms as people read a duration: "0.2s", "3m05s", "2h10m". */
void cli_duration_text(int64_t ms, char *out, size_t len);

/* A printer writing to out.  view: the terminal form (else lines); colour:
 * colour the outcomes (NO_COLOR is the caller's business, cli_colour).  db
 * is the journal path the engine uses, printed in approve commands when it
 * is not CLI_DEFAULT_DB. */
cli_live *cli_live_new(FILE *out, const char *db, bool view, bool colour);

/* The engine's event callback (cairn_event_cb); ud is the cli_live. */
void cli_live_event(const cairn_event *ev, const cairn_run_state *st, void *ud);

/* After cairn_engine_resume and before the engine runs: in the view, say
 * where each run this process took over stands, and print the commands for
 * the approvals it waits on, since their events came before this process.
 * Lines print nothing here. */
void cli_live_resumed(cli_live *l);

/* Top-level runs seen ending failed or cancelled. */
int cli_live_ended_badly(const cli_live *l);

/* Erase the status line, if one shows, and free l.  NULL allowed. */
void cli_live_free(cli_live *l);

#endif
