/*
 * audit_io.h - how verify, timeline, export and import reach the journal:
 * through its door (engine/journal.h), opened with its key in use, so that
 * every load checks the hash chain.
 *
 * Memory: everything returned belongs to the caller (free with the matching
 * free); strings passed in are borrowed.
 */
#ifndef CAIRN_AUDIT_IO_H
#define CAIRN_AUDIT_IO_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "dsl/workflow.h"
#include "engine/journal.h"

#define AUDIT_HEX_LEN (2 * CAIRN_HASH_LEN)   /* a hash or a key check as hex */

typedef struct audit_journal audit_journal;

/* Open the journal at db with its key, which must be the journal's.  To
 * read: as every reading command (cli_open_journal); a journal that is not
 * there is named as such before its key is looked for.  To write (import):
 * as an engine opens it, made when absent; the caller has made sure there
 * is a key (cairn_journal_key_of), since a new one could never match. */
int audit_open(const char *db, bool write, audit_journal **out, cairn_err *err);
void audit_close(audit_journal *j);   /* NULL allowed */

/* The journal's id and its key check value (cairn_journal_identity). */
void audit_identity(const audit_journal *j, char id[CAIRN_JOURNAL_ID_HEX + 1],
                    char key_check[AUDIT_HEX_LEN + 1]);

/* Every run id in the runs table or in the events (cairn_journal_run_ids);
 * free with audit_ids_free. */
int audit_run_ids(audit_journal *j, char ***ids, bool **in_runs, int *n, cairn_err *err);
void audit_ids_free(char **ids, bool *in_runs, int n);

/* A run folded with its chain checked, its definition compiled (*wf, the
 * caller's). */
int audit_load_run(audit_journal *j, const char *run_id, cairn_run_state **st,
                   cairn_workflow **wf, cairn_err *err);

/* As audit_load_run without compiling the definition (its source is still
 * checked against its pinned hash): for a run among many. */
int audit_fold_run(audit_journal *j, const char *run_id, cairn_run_state **st, cairn_err *err);

/* Whether the runs row of st's run agrees with st, its fold
 * (cairn_run_row_check): CAIRN_ECORRUPT naming the column when not. */
int audit_check_row(audit_journal *j, const cairn_run_state *st, cairn_err *err);

/* The events of run_id, in seq order (data_text set); free with
 * cairn_events_free. */
int audit_events(audit_journal *j, const char *run_id, cairn_event **evs, int *n,
                 cairn_err *err);

/* What verify says of one run, and of every run (in one pass over the
 * events): cairn_journal_verify_run, cairn_journal_verify_runs. */
void audit_verify_run(audit_journal *j, const char *run_id, bool has_row, cairn_run_verdict *v);
int audit_verify_runs(audit_journal *j, cairn_run_verdict **out, int *n, cairn_err *err);

/* Write an exported run into the journal (opened to write): its definition
 * and events[0..n) (cairn_journal_import). */
int audit_import(audit_journal *j, const cairn_workflow *wf, cairn_event *const *events, int n,
                 cairn_err *err);

#endif
