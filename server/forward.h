/*
 * forward.h - a command (cancel, pause, unpause, an approval's decision)
 * for a run another engine holds: recorded in the journal's commands table
 * for that engine (which is woken: SIGUSR1 on its host, NOTIFY on
 * PostgreSQL), then waited for, so that a server answers a command for a
 * run held by another node of its cluster as that node would: once the
 * event that carries it out is durable.
 *
 * A command's row leaves the table in the transaction that journals the
 * event answering it (engine/commands.c), or is dropped when it is moot (a
 * decision the holder refuses: decided meanwhile).  So: the row gone is the
 * command done and durable; a decision is then looked for among the run's
 * events, and its absence means the holder found it moot.  A row still
 * there once the run has ended will not be carried out.  While the row
 * stays (no engine holds the run now: it waits for the next to take it,
 * or the holder is stalled) the wait is bounded by wait_ms, and the
 * command is left recorded for whichever engine takes the run next.
 *
 * Memory: every argument is borrowed; the journal j stays the caller's
 * (a reading connection of its own, used from the calling thread only).
 */
#ifndef CAIRN_SERVER_FORWARD_H
#define CAIRN_SERVER_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "engine/journal.h"

#define CAIRN_SERVE_FORWARD_WAIT_MS 5000   /* a command another engine carries out, waited for */
#define CAIRN_SERVE_FORWARD_POLL_MS 5      /* how often the wait looks at the commands table */

/* Record the command for run_id (which `owner` holds, may be NULL or dead:
 * then it is not waited for) and wait up to wait_ms for the holder to carry
 * it out.  *recorded is false once it was carried out (the answering event
 * durable), true when it is left waiting in the table.  `before` is the
 * run's last seq the caller read: a decision is looked for after it.
 * CAIRN_ESTATE: a decision the holder found moot (decided already), or
 * the run ended with the command still waiting (the holder takes none for
 * an ended run). */
int srv_forward_command(cairn_journal *j, const char *run_id, const char *owner, const char *type,
                        const char *data, int64_t before, int64_t wait_ms, bool *recorded,
                        cairn_err *err);

#endif
