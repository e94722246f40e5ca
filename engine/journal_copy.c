/*
 * journal_copy.c - a journal copied into another store (journal.h,
 * cairn_journal_copy; `cairn migrate`).
 *
 * The source is opened as a reader (so a stopped engine's commit log is
 * applied first) and must have no run held by a live engine: a copy taken
 * while an engine writes would miss its newest events.  The target is one
 * connection of its backend's (journal_int.h, open_store), not a journal:
 * an engine's open would make the target a key and an id of its own, and
 * both must be the source's.  Events go through the store's append, which
 * checks that each follows its run's last and writes the runs rows they
 * project, so a source whose events have gaps is refused on the way.
 *
 * The whole copy, and the check that the target holds nothing, is one
 * transaction on the target (store.h, batch_begin): a copy that fails, or
 * a cairn killed half-way, leaves the target as empty as it found it (a
 * new journal's schema and meta at most), and another try can follow.
 */
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "engine/journal_int.h"

typedef struct {
    cairn_store *to;
    cairn_dump_kind kind;
    int rows;
} copy_ctx;

static int load_row(const cairn_dump_row *row, void *ud, cairn_err *err) {
    copy_ctx *c = ud;
    c->rows++;
    return c->to->ops->load(c->to, c->kind, row, err);
}

static int count_row(const cairn_dump_row *row, void *ud, cairn_err *err) {
    (void)row;
    (void)err;
    ((copy_ctx *)ud)->rows++;
    return 0;
}

static int copy_kind(cairn_store *from, cairn_store *to, cairn_dump_kind kind, int *rows,
                     cairn_err *err) {
    copy_ctx c = {.to = to, .kind = kind};
    int rc = from->ops->dump(from, kind, load_row, &c, err);
    if (rows) *rows = c.rows;
    return rc;
}

/* Nothing in the target but what a new journal holds (its meta). */
static int target_empty(cairn_store *to, const char *name, cairn_err *err) {
    char **ids = NULL;
    bool *in_runs = NULL;
    int n = 0, rc = to->ops->run_ids(to, &ids, &in_runs, &n, err);
    copy_ctx c = {0};
    for (int k = CAIRN_DUMP_DEFINITIONS; rc == 0 && k < CAIRN_DUMP_KINDS; k++)
        rc = to->ops->dump(to, (cairn_dump_kind)k, count_row, &c, err);
    cairn_journal_ids_free(ids, in_runs, n);
    if (rc == 0 && (n || c.rows))
        rc = cairn_err_set(err, CAIRN_EEXISTS, "%s holds a journal already (%d runs, %d other"
                           " rows): a copy goes into an empty one; nothing was copied", name, n,
                           c.rows);
    return rc;
}

/* No run of the source held by a live engine. */
static int source_idle(cairn_journal *j, cairn_err *err) {
    cairn_run_row *rows = NULL;
    int n = 0, rc = cairn_journal_list_runs(j, NULL, &rows, &n, err);
    for (int i = 0; rc == 0 && i < n; i++)
        if (rows[i].owner && cairn_journal_owner_alive(j, rows[i].owner))
            rc = cairn_err_set(err, CAIRN_EBUSY, "%s: run %s is held by a running engine (%s):"
                               " stop it before copying the journal; nothing was copied",
                               j->where, rows[i].id, rows[i].owner);
    cairn_run_rows_free(rows, n);
    return rc;
}

static int copy_run(cairn_journal *j, cairn_store *to, const char *run_id, int64_t *events,
                    cairn_err *err) {
    cairn_event *evs = NULL;
    int n = 0, rc = j->reader->ops->load_events(j->reader, run_id, &evs, &n, err);
    cairn_event **ptrs = cairn_calloc((size_t)n + 1, sizeof *ptrs);
    for (int i = 0; i < n; i++) ptrs[i] = &evs[i];
    for (int at = 0; rc == 0 && at < n; at += CAIRN_COPY_BATCH) {
        int len = n - at < CAIRN_COPY_BATCH ? n - at : CAIRN_COPY_BATCH;
        rc = to->ops->append(to, ptrs + at, len, err);
    }
    if (rc == 0) *events += n;
    free(ptrs);
    cairn_events_free(evs, n);
    return rc;
}

static int copy_all(cairn_journal *j, cairn_store *to, cairn_copy_counts *counts,
                    cairn_err *err) {
    cairn_store *from = j->reader;
    char **ids = NULL;
    bool *in_runs = NULL;
    int n = 0;
    int rc = copy_kind(from, to, CAIRN_DUMP_META, NULL, err);
    if (rc == 0) rc = copy_kind(from, to, CAIRN_DUMP_DEFINITIONS, &counts->definitions, err);
    if (rc == 0) rc = from->ops->run_ids(from, &ids, &in_runs, &n, err);
    for (int i = 0; rc == 0 && i < n; i++) rc = copy_run(j, to, ids[i], &counts->events, err);
    if (rc == 0) counts->runs = n;
    if (rc == 0) rc = copy_kind(from, to, CAIRN_DUMP_COMMANDS, &counts->commands, err);
    if (rc == 0) rc = copy_kind(from, to, CAIRN_DUMP_REQUESTS, &counts->requests, err);
    if (rc == 0) rc = copy_kind(from, to, CAIRN_DUMP_CLAIMS, &counts->claims, err);
    cairn_journal_ids_free(ids, in_runs, n);
    return rc;
}

int cairn_journal_copy(const char *from, const char *to, cairn_copy_counts *counts,
                       cairn_err *err) {
    cairn_journal_config cfg = {.role = CAIRN_JOURNAL_READER};
    cairn_journal *j = NULL;
    cairn_journal *target = cairn_calloc(1, sizeof *target);   /* its backend and name */
    cairn_store *dst = NULL;
    unsigned char key[32];
    memset(counts, 0, sizeof *counts);
    int rc = cairn_journal_open(from, &cfg, &j, err);
    if (rc == 0) rc = source_idle(j, err);
    if (rc == 0) rc = cairn_journal_key(from, false, key, err);
    if (rc == 0) rc = cairn_journal_backend_of(to, target, err);
    if (rc == 0) rc = target->backend->open_store(to, true, &dst, err);
    if (rc == 0) rc = dst->ops->batch_begin(dst, err);
    if (rc == 0) rc = target_empty(dst, target->where, err);
    if (rc == 0) rc = cairn_journal_key_give(to, key, err);
    if (rc == 0 && (rc = copy_all(j, dst, counts, err)) != 0) {
        char why[CAIRN_ERR_MSG_MAX];
        snprintf(why, sizeof why, "%s", err->msg);
        cairn_err_set(err, rc, "%s; nothing was copied into %s (the copy is one transaction,"
                      " rolled back)", why, target->where);
    }
    if (rc == 0) rc = dst->ops->batch_end(dst, err);
    memset(key, 0, sizeof key);
    cairn_store_close(dst);   /* a transaction not ended is rolled back */
    free(target->where);
    free(target);
    cairn_journal_close(j);
    return rc;
}
