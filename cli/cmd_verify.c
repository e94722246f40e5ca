/*
 * cmd_verify.c - `cairn verify`: is the journal what its engine wrote?
 *
 * Each run: its hash chain (an edited, removed, reordered or inserted event
 * breaks it at that event), its pinned definition, and its runs row against
 * the fold of its events; a run with events and no runs row is one whose row
 * was deleted.  A chain cannot show that its last events were cut off, nor
 * that a whole run was deleted: `--export-heads FILE` records each run's
 * event count and last hash, and `--heads FILE` later proves against them
 * that every run listed is still there with at least those events, the
 * same ones.  A fork's carried results (engine/fork.h) are checked against
 * the run it was forked from: each must be what that run's event recorded.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/audit_fmt.h"
#include "cli/cli.h"
#include "common/mem.h"

/* The verdict of the whole command: a run that fails outranks a run named
 * that is not there; the journal failing to read outranks both. */
typedef struct {
    bool failed, missing, broken;
} verdict;

static int verdict_exit(const verdict *v) {
    if (v->broken) return EXIT_JOURNAL;
    if (v->failed) return EXIT_FAILED;
    return v->missing ? EXIT_USAGE : EXIT_OK;
}

static void failed(verdict *v, const char *run_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void failed(verdict *v, const char *run_id, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s FAILED ", run_id);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    v->failed = true;
}

static const audit_head *find_head(const audit_heads *h, const char *run_id) {
    for (int i = 0; h && i < h->n; i++)
        if (strcmp(h->v[i].run, run_id) == 0) return &h->v[i];
    return NULL;
}

/* The run against the head recorded for it: still at least that many
 * events, and the one the head names is the same. */
static void check_head(audit_journal *j, const cairn_run_state *st, const audit_head *h,
                       verdict *v) {
    unsigned char now[CAIRN_HASH_LEN];
    cairn_event *evs = NULL;
    int n = 0;
    cairn_err err;
    if (st->last_seq < h->events) {
        failed(v, st->id, "run %s: event %lld is gone: the journal ends at event %lld, the heads"
               " recorded %lld events (events were cut off the end)", st->id,
               (long long)st->last_seq + 1, (long long)st->last_seq, (long long)h->events);
        return;
    }
    if (st->last_seq == h->events) {
        memcpy(now, st->head, CAIRN_HASH_LEN);
    } else if (audit_events(j, st->id, &evs, &n, &err) == 0 && n >= h->events) {
        memcpy(now, evs[h->events - 1].hash, CAIRN_HASH_LEN);
    } else {
        memset(now, 0, sizeof now);
    }
    cairn_events_free(evs, n);
    if (memcmp(now, h->head, CAIRN_HASH_LEN) != 0)
        failed(v, st->id, "run %s: event %lld is not the one the heads recorded (its events were"
               " replaced)", st->id, (long long)h->events);
}

/* Whether the fork's step a holds what the old run's step b ended with. */
static bool same_result(const cairn_step_state *a, const cairn_step_state *b) {
    return b->done_seq == a->carried_seq && b->status == a->status &&
           strcmp(a->child, b->child) == 0 && jv_equal(jv_copy(a->output), jv_copy(b->output)) &&
           jv_equal(jv_copy(a->error), jv_copy(b->error)) &&
           jv_equal(jv_copy(a->approval), jv_copy(b->approval));
}

/* A fork's carried results against the run it was forked from.  That run
 * missing from this journal (a fork imported alone) is said, not failed:
 * heads catch a deleted run. */
static void check_carried(audit_journal *j, const cairn_run_state *st, verdict *v) {
    cairn_run_state *o = NULL;
    cairn_err err;
    int rc = audit_fold_run(j, st->fork_run, &o, &err);
    if (rc == CAIRN_ENOTFOUND)
        fprintf(stderr, "cairn: run %s: its carried results are not checked: run %s, which it was"
                " forked from, is not in this journal\n", st->id, st->fork_run);
    if (rc == 0 && (o->def_hash == NULL || st->def_hash == NULL || strcmp(o->def_hash, st->def_hash) != 0))
        failed(v, st->id, "run %s: forked from run %s, which is pinned to another definition",
               st->id, st->fork_run);
    for (int i = 0; rc == 0 && i < st->n_steps; i++) {
        const cairn_step_state *a = &st->steps[i];
        int k = a->carried_seq > 0 ? cairn_run_state_step(o, st->step_ids[i]) : -1;
        if (a->carried_seq > 0 && (k < 0 || !same_result(a, &o->steps[k])))
            failed(v, st->id, "run %s: step %s carries a result that event %lld of run %s did not"
                   " record", st->id, st->step_ids[i], (long long)a->carried_seq, st->fork_run);
    }
    cairn_run_state_free(o);   /* another failure of the old run is its own line's */
}

/* One run: 0 and its state when it checks out, else its line is printed. */
static void verify_one(audit_journal *j, const char *run_id, bool has_row, const audit_heads *heads,
                       audit_heads *taken, verdict *v) {
    cairn_run_state *st = NULL;
    cairn_err err;
    int rc = has_row ? audit_fold_run(j, run_id, &st, &err) : CAIRN_ENOTFOUND;
    if (rc == 0) rc = audit_check_row(j, st, &err);
    if (rc == 0) {
        char hex[AUDIT_HEX_LEN + 1];
        audit_hex(st->head, hex);
        printf("%s ok %lld events head %s\n", run_id, (long long)st->last_seq, hex);
        const audit_head *h = find_head(heads, run_id);
        if (h) check_head(j, st, h, v);
        if (st->fork_run) check_carried(j, st, v);
        if (taken) audit_heads_add(taken, run_id, st->last_seq, st->head);
    } else if (rc == CAIRN_ECORRUPT) {
        char msg[CAIRN_ERR_MSG_MAX + CAIRN_ERR_FILE_MAX + 32];
        failed(v, run_id, "%s", cairn_err_format(&err, msg, sizeof msg));
    } else if (rc == CAIRN_ENOTFOUND && !has_row) {
        failed(v, run_id, "run %s: its events are in the journal, its runs row is not (the row"
               " was deleted)", run_id);
    } else {
        cli_error(&err);
        v->broken = true;
    }
    cairn_run_state_free(st);
}

static bool listed(char **ids, int n, const char *id, bool *has_row, bool *has_rows) {
    for (int i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0) {
            *has_row = has_rows[i];
            return true;
        }
    return false;
}

/* Every run the heads list that the journal no longer has at all. */
static void check_vanished(const audit_heads *heads, char **ids, int n, char **only, int n_only,
                           verdict *v) {
    for (int i = 0; i < heads->n; i++) {
        const audit_head *h = &heads->v[i];
        bool row, wanted = n_only == 0;
        for (int k = 0; k < n_only; k++) wanted = wanted || strcmp(only[k], h->run) == 0;
        if (wanted && !listed(ids, n, h->run, &row, &row))
            failed(v, h->run, "run %s: gone from the journal: the heads recorded %lld events of it"
                   " (event 1 to %lld deleted)", h->run, (long long)h->events,
                   (long long)h->events);
    }
}

static int read_heads(audit_journal *j, const char *path, audit_heads *h) {
    cairn_err err;
    char id[CAIRN_JOURNAL_ID_HEX + 1], check[AUDIT_HEX_LEN + 1];
    if (audit_heads_read(path, h, &err) != 0) {
        cli_error(&err);
        return EXIT_USAGE;
    }
    audit_identity(j, id, check);
    if (h->key_check[0] && check[0] && strcmp(h->key_check, check) != 0) {
        fprintf(stderr, "cairn: %s: the heads were taken under another journal key (key_check"
                " %s, this journal's is %s): they prove nothing here\n", path, h->key_check, check);
        return EXIT_JOURNAL;
    }
    if (h->journal[0] && strcmp(h->journal, id) != 0)
        fprintf(stderr, "cairn: %s: heads of journal %s, checked against journal %s\n", path,
                h->journal, id[0] ? id : "-");
    return 0;
}

static int write_heads(audit_journal *j, const char *path, audit_heads *h) {
    audit_identity(j, h->journal, h->key_check);
    char *tmp = cairn_sprintf("%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int rc = 0;
    if (f) {
        audit_heads_write(f, h);
        rc = ferror(f) | fclose(f);
    }
    if (f == NULL || rc != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "cairn: %s: cannot write the heads\n", path);
        remove(tmp);
        rc = EXIT_JOURNAL;
    }
    free(tmp);
    return rc;
}

typedef struct {
    const char *heads, *export_heads;
    char **runs;
    int n_runs;
} verify_args;

static int parse_args(cli_opts *o, int argc, char **argv, verify_args *a) {
    const char *v;
    a->runs = argv;
    for (int i = 0; i < argc; i++) {
        if (cli_common_opt(o, argc, argv, &i)) continue;
        if ((v = cli_opt_value(argc, argv, &i, "--heads")) != NULL) a->heads = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--export-heads")) != NULL) a->export_heads = v;
        else if (argv[i][0] == '-')
            return cli_usage("usage: cairn verify [RUN...] [--heads FILE] [--export-heads FILE]");
        else argv[a->n_runs++] = argv[i];
    }
    return 0;
}

int cmd_verify(cli_opts *o, int argc, char **argv) {
    verify_args a = {0};
    audit_journal *j = NULL;
    audit_heads heads = {0}, taken = {0};
    char **ids = NULL;
    bool *rows = NULL;
    int n = 0;
    verdict v = {0};
    cairn_err err;
    int rc = parse_args(o, argc, argv, &a);
    if (rc) return rc;
    if (audit_open(o->db, false, &j, &err) != 0) {
        cli_error(&err);
        return EXIT_JOURNAL;
    }
    if (a.heads) rc = read_heads(j, a.heads, &heads);
    if (rc == 0 && audit_run_ids(j, &ids, &rows, &n, &err) != 0) {
        cli_error(&err);
        rc = EXIT_JOURNAL;
    }
    for (int i = 0; rc == 0 && i < (a.n_runs ? a.n_runs : n); i++) {
        bool has_row = false;
        const char *id = a.n_runs ? a.runs[i] : ids[i];
        if (a.n_runs && !listed(ids, n, id, &has_row, rows) && !find_head(&heads, id)) {
            fprintf(stderr, "cairn: run %s: not found\n", id);
            v.missing = true;
        } else if (!a.n_runs || listed(ids, n, id, &has_row, rows)) {
            verify_one(j, id, a.n_runs ? has_row : rows[i], &heads, a.export_heads ? &taken : NULL,
                       &v);
        }
    }
    if (rc == 0 && a.heads) check_vanished(&heads, ids, n, a.runs, a.n_runs, &v);
    if (rc == 0 && a.export_heads) rc = write_heads(j, a.export_heads, &taken);
    if (rc == 0) rc = verdict_exit(&v);
    audit_ids_free(ids, rows, n);
    audit_heads_free(&heads);
    audit_heads_free(&taken);
    audit_close(j);
    return rc;
}
