/*
 * cli.h - what the subcommands share: options, the database path, output.
 *
 * Exit codes, the same for every command:
 *   0  EXIT_OK       done as asked (for `run`, the run succeeded; for `cancel`,
 *                    the run is cancelled or the cancel is recorded)
 *   1  EXIT_FAILED   a run failed or was cancelled: `run`, and `resume` when a
 *                    run it finished ended failed or cancelled; a check of
 *                    `verify` failed (a chain, a runs row, a head); `replay`
 *                    found a run deciding differently
 *   2  EXIT_USAGE    bad usage or bad input (an unknown option, a workflow
 *                    file that does not load, as in `check` and `graph`, an
 *                    input of the wrong type, a decision the approval refuses,
 *                    a run that has already ended), or not found (a run, a
 *                    secret, a step)
 *   3  EXIT_JOURNAL  the journal cannot be used: it does not exist (only
 *                    `run` and `import` make one), it is not a Cairn
 *                    journal, it is damaged, its key does not match or
 *                    cannot be read, a run fails `show`'s (or timeline's,
 *                    export's) chain check, or a write to it or to the
 *                    secrets file beside it failed
 */
#ifndef CAIRN_CLI_H
#define CAIRN_CLI_H

#include <jv.h>
#include <stdbool.h>
#include <stdio.h>

#include "common/err.h"
#include "dsl/workflow.h"
#include "engine/engine.h"
#include "engine/journal.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_JOURNAL = 3 };

#define CLI_DEFAULT_DB "cairn.db"   /* the journal with neither --db nor $CAIRN_DB */

typedef struct cli_opts {
    const char *db;           /* --db, CAIRN_DB, or ./cairn.db: a path or a postgres:// URL */
    cairn_sync_mode sync;     /* CAIRN_SYNC (cli_sync_mode) */
    bool json;
    int argc;                 /* positional arguments left */
    char **argv;
} cli_opts;

typedef int (*cli_cmd_fn)(cli_opts *o, int argc, char **argv);

/* Print "cairn: <formatted err>" to stderr. */
void cli_error(const cairn_err *err);
/* Print "cairn: message" and return EXIT_USAGE. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Take "--name value" or "--name=value" at argv[*i]; returns the value or NULL. */
const char *cli_opt_value(int argc, char **argv, int *i, const char *name);

/* Consume a global option at argv[*i] (--db PATH, --json); true if it was one. */
bool cli_common_opt(cli_opts *o, int argc, char **argv, int *i);

/* Open the journal at db to read it.  First, if an engine that is gone
 * left events in the commit log (engine/clog.h), they are applied, so what
 * is read is everything that engine made durable; failing that, a warning
 * says the newest events may be missing.  The only write a reading command
 * makes, as SQLite recovers its own log for the first reader after a crash.
 * A damaged log, or one of another journal, refuses the journal
 * (CAIRN_ECORRUPT; callers exit 3) with nothing written. */
int cli_open_journal(const char *db, cairn_journal **j, cairn_err *err);

/* The real user of this process (its uid's name, else the number): who
 * `cairn run` records as the run's starter and who `cairn approve`
 * decides as when no --as is given. */
jv cli_real_user(void);

/* The exit code for a lookup in an open journal that failed with code:
 * EXIT_USAGE when what was named is not there (CAIRN_ENOTFOUND), else
 * EXIT_JOURNAL. */
int cli_lookup_exit(int code);

/* Refuse (EXIT_JOURNAL, error printed) when there is no journal at db, so a
 * command that opens the engine does not make one; 0 when there is. */
int cli_journal_exists(const char *db);

/* The durability mode CAIRN_SYNC asks for: unset or empty or "full" is
 * CAIRN_SYNC_FULL, "normal" CAIRN_SYNC_NORMAL.  Any other value is refused
 * by every command but help (EXIT_USAGE, error printed) before anything is
 * opened:
 * a mistyped mode must not quietly give another durability. */
int cli_sync_mode(cairn_sync_mode *out);

/* Print v (consumed) as JSON: pretty when pretty, else one line. */
void cli_print_json(FILE *out, jv v, bool pretty);

/* Whether stdout is a terminal (live lines). */
bool cli_tty(void);

/* Print COMMAND's usage (cmd_help.c) to stdout: EXIT_OK, or EXIT_USAGE for an
 * unknown command. */
int cli_help_command(const char *name);
/* Whether argv (a command's arguments) asks for its help: --help or -h. */
bool cli_wants_help(int argc, char **argv);

/* Whether to colour what goes to stdout: a terminal, and NO_COLOR unset or
 * empty (https://no-color.org: any other value turns colour off). */
bool cli_colour(void);

/* Load the workflow at path (cmd_check.c); on failure print every
 * diagnostic to stderr as file:line:col with its source line and a caret
 * under the spot, and return NULL.  The caller frees what it returns. */
cairn_workflow *cli_load_workflow(const char *path);

typedef struct cairn_wfset cairn_wfset;

/* Load the files named (files[0..n)) and the workflow files beside them as
 * one set (dsl/wfset.h: the names children are started by), printing every
 * error and warning to stderr with its source line and caret.  wfs[i] is
 * files[i]'s workflow (owned by *set, which the caller frees), or NULL when
 * it does not load or an error is in it.  Returns EXIT_OK, or EXIT_USAGE
 * when an error was printed. */
int cli_load_set(const char *const *files, int n, cairn_wfset **set, const cairn_workflow **wfs);

/* Before a run is journaled: every secret that a needed workflow of set
 * (the one run, and the children it starts by constant names, as
 * cairn_wfset_check found them) reads by a constant name (wf->secrets) is
 * in the secrets file beside db or the environment.  EXIT_OK; EXIT_USAGE
 * naming each one missing, at the expression that reads it; EXIT_JOURNAL
 * when the secrets cannot be read (error printed). */
int cli_check_secrets(const char *db, const cairn_wfset *set);

/* Hand the run of file (workflow: its name; inputs borrowed, gathered
 * and checked) to the `cairn serve` that holds the journal, over its socket
 * (server/local.h), printing each transition with print as `run` does.
 * -1 when no server answers or it stops (run it here); else 0 once the run
 * has ended there or the server stopped (run_id names it), or an exit code
 * (the error printed). */
int cli_run_handoff(const cli_opts *o, const char *file, const char *workflow, jv inputs,
                    cairn_event_cb print, void *ud, char run_id[CAIRN_RUN_ID_MAX]);

/* Carry out a command (cancel, pause, unpause, decide; data as
 * cairn_journal_put_command takes it) through the `cairn serve` holding
 * the run, at once, even for a run the journal's tables do not show yet.  -1 when
 * no server holds it (nothing done: go through the journal); 0 once it is
 * durable, with wait_end once the run has ended (status: its status then,
 * "" if unknown); or an exit code, the error printed. */
int cli_command_handoff(const cli_opts *o, const char *run_id, const char *type, const char *data,
                        bool wait_end, char *status, size_t len);

/* Who runs this command, as a run's starter (cmd_run.c): the real user's
 * name from the password database, or the uid as digits. */
jv cli_real_user(void);

/* Hand a webhook (source, len bytes of body) to the `cairn serve` holding
 * the journal, which carries it out as POST /v1/hooks/SOURCE
 * (server/hookroute.h).  -1 when no server answers; 0 with *answer (the
 * caller's); or an exit code, the error printed. */
int cli_hook_handoff(const cli_opts *o, const char *source, const char *body, size_t len,
                     jv *answer);

/* What `run` and `fork` share (cmd_run.c).  The engine on the journal at
 * o->db, its events printed by a new *p (live.h: the view on a terminal
 * unless --json, else lines), SIGTERM/SIGINT asking it to stop: 0 or
 * EXIT_JOURNAL (error printed).  Driving it to its end: 0 or EXIT_JOURNAL.
 * The exit code of a run that was driven, read back from the journal (with
 * print_json, the run as `show --json` prints it). */
typedef struct cli_live cli_live;
int cli_engine_open(const cli_opts *o, cli_live **p, cairn_engine **e);
int cli_engine_drive(cairn_engine *e);
int cli_run_outcome(const cli_opts *o, const char *run_id, bool print_json);
/* Add `--input NAME=VALUE` (arg, "NAME=VALUE") to *inputs, VALUE read as
 * the declared type of NAME in wf: 0, or EXIT_USAGE with the error printed. */
int cli_input_arg(const cairn_workflow *wf, const char *arg, jv *inputs);
/* Add the members of `--inputs-file` path (a JSON object, at most 1 MiB)
 * to *inputs: 0, or EXIT_USAGE with the error printed. */
int cli_inputs_file(const char *path, jv *inputs);

int cmd_check(cli_opts *o, int argc, char **argv);
int cmd_graph(cli_opts *o, int argc, char **argv);
int cmd_run(cli_opts *o, int argc, char **argv);
int cmd_resume(cli_opts *o, int argc, char **argv);
int cmd_cancel(cli_opts *o, int argc, char **argv);
int cmd_pause(cli_opts *o, int argc, char **argv);
int cmd_approvals(cli_opts *o, int argc, char **argv);
int cmd_approve(cli_opts *o, int argc, char **argv);
int cmd_approval_link(cli_opts *o, int argc, char **argv);
int cmd_reject(cli_opts *o, int argc, char **argv);
int cmd_unpause(cli_opts *o, int argc, char **argv);
int cmd_show(cli_opts *o, int argc, char **argv);
int cmd_runs(cli_opts *o, int argc, char **argv);
int cmd_journal(cli_opts *o, int argc, char **argv);
int cmd_verify(cli_opts *o, int argc, char **argv);
int cmd_timeline(cli_opts *o, int argc, char **argv);
int cmd_replay(cli_opts *o, int argc, char **argv);
int cmd_export(cli_opts *o, int argc, char **argv);
int cmd_import(cli_opts *o, int argc, char **argv);
int cmd_secret(cli_opts *o, int argc, char **argv);
int cmd_actions(cli_opts *o, int argc, char **argv);
int cmd_trigger(cli_opts *o, int argc, char **argv);
int cmd_token(cli_opts *o, int argc, char **argv);
int cmd_serve(cli_opts *o, int argc, char **argv);
int cmd_fork(cli_opts *o, int argc, char **argv);
int cmd_migrate(cli_opts *o, int argc, char **argv);

#endif
