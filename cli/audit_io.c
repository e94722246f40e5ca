/*
 * audit_io.c - the audit commands' door to the journal (audit_io.h).
 */
#include <stdlib.h>

#include "cli/audit_io.h"
#include "cli/cli.h"
#include "common/mem.h"

struct audit_journal {
    cairn_journal *j;
};

int audit_open(const char *db, bool write, audit_journal **out, cairn_err *err) {
    audit_journal *a = cairn_calloc(1, sizeof *a);
    cairn_journal_config cfg = {.role = CAIRN_JOURNAL_ENGINE, .sync = CAIRN_SYNC_FULL};
    int rc = write ? cairn_journal_open(db, &cfg, &a->j, err) : cli_open_journal(db, &a->j, err);
    if (rc == 0 && !write) rc = cairn_journal_use_key(a->j, err);
    *out = NULL;
    if (rc) {
        audit_close(a);
        return rc;
    }
    *out = a;
    return 0;
}

void audit_close(audit_journal *a) {
    if (a == NULL) return;
    cairn_journal_close(a->j);
    free(a);
}

void audit_identity(const audit_journal *a, char id[CAIRN_JOURNAL_ID_HEX + 1],
                    char key_check[AUDIT_HEX_LEN + 1]) {
    cairn_journal_identity(a->j, id, key_check);
}

int audit_run_ids(audit_journal *a, char ***ids, bool **in_runs, int *n, cairn_err *err) {
    return cairn_journal_run_ids(a->j, ids, in_runs, n, err);
}

void audit_ids_free(char **ids, bool *in_runs, int n) { cairn_journal_ids_free(ids, in_runs, n); }

int audit_load_run(audit_journal *a, const char *run_id, cairn_run_state **st,
                   cairn_workflow **wf, cairn_err *err) {
    return cairn_journal_load_run(a->j, run_id, st, wf, err);
}

int audit_fold_run(audit_journal *a, const char *run_id, cairn_run_state **st, cairn_err *err) {
    return cairn_journal_load_run(a->j, run_id, st, NULL, err);
}

int audit_check_row(audit_journal *a, const cairn_run_state *st, cairn_err *err) {
    cairn_run_row row;
    int rc = cairn_journal_get_run(a->j, st->id, &row, err);
    if (rc) return rc;
    rc = cairn_run_row_check(&row, st, err);
    cairn_run_row_clear(&row);
    return rc;
}

int audit_events(audit_journal *a, const char *run_id, cairn_event **evs, int *n,
                 cairn_err *err) {
    return cairn_journal_load_events(a->j, run_id, evs, n, NULL, err);
}

int audit_import(audit_journal *a, const cairn_workflow *wf, cairn_event *const *events, int n,
                 cairn_err *err) {
    return cairn_journal_import(a->j, wf, events, n, err);
}

void audit_verify_run(audit_journal *a, const char *run_id, bool has_row, cairn_run_verdict *v) {
    cairn_journal_verify_run(a->j, run_id, has_row, v);
}

int audit_verify_runs(audit_journal *a, cairn_run_verdict **out, int *n, cairn_err *err) {
    return cairn_journal_verify_runs(a->j, out, n, err);
}
