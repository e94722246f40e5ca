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
static void check_head(audit_journal *j, const cairn_run_verdict *r, const audit_head *h,
                       verdict *v) {
    unsigned char now[CAIRN_HASH_LEN];
    cairn_event *evs = NULL;
    int n = 0;
    cairn_err err;
    if (r->last_seq < h->events) {
        failed(v, r->run_id, "run %s: event %lld is gone: the journal ends at event %lld, the"
               " heads recorded %lld events (events were cut off the end)", r->run_id,
               (long long)r->last_seq + 1, (long long)r->last_seq, (long long)h->events);
        return;
    }
    if (r->last_seq == h->events) {
        memcpy(now, r->head, CAIRN_HASH_LEN);
    } else if (audit_events(j, r->run_id, &evs, &n, &err) == 0 && n >= h->events) {
        memcpy(now, evs[h->events - 1].hash, CAIRN_HASH_LEN);
    } else {
        memset(now, 0, sizeof now);
    }
    cairn_events_free(evs, n);
    if (memcmp(now, h->head, CAIRN_HASH_LEN) != 0)
        failed(v, r->run_id, "run %s: event %lld is not the one the heads recorded (its events"
               " were replaced)", r->run_id, (long long)h->events);
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

/* A fork's carried results, from its state folded again in full (the one
 * pass over the journal keeps no state once a run checks out). */
static void check_fork(audit_journal *j, const cairn_run_verdict *r, verdict *v) {
    cairn_run_state *st = NULL;
    cairn_err err;
    if (audit_fold_run(j, r->run_id, &st, &err) == 0) check_carried(j, st, v);
    cairn_run_state_free(st);
}

/* One run's verdict: its line, and its head checked and taken. */
static void report(audit_journal *j, const cairn_run_verdict *r, const audit_heads *heads,
                   audit_heads *taken, verdict *v) {
    if (r->rc == 0) {
        char hex[AUDIT_HEX_LEN + 1];
        audit_hex(r->head, hex);
        printf("%s ok %lld events head %s\n", r->run_id, (long long)r->last_seq, hex);
        const audit_head *h = find_head(heads, r->run_id);
        if (h) check_head(j, r, h, v);
        if (r->forked) check_fork(j, r, v);
        if (taken) audit_heads_add(taken, r->run_id, r->last_seq, r->head);
    } else if (r->rc == CAIRN_ECORRUPT) {
        char msg[CAIRN_ERR_MSG_MAX + CAIRN_ERR_FILE_MAX + 32];
        failed(v, r->run_id, "%s", cairn_err_format(r->err, msg, sizeof msg));
    } else if (r->rc == CAIRN_ENOTFOUND && !r->has_row) {
        failed(v, r->run_id, "run %s: its events are in the journal, its runs row is not (the"
               " row was deleted)", r->run_id);
    } else {
        cli_error(r->err);
        v->broken = true;
    }
}

static bool listed(char **ids, int n, const char *id, bool *has_row, bool *has_rows) {
    for (int i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0) {
            *has_row = has_rows[i];
            return true;
        }
    return false;
}

/* Every run the heads list that the journal no longer has at all (ids[0..n)
 * the journal's runs, rows[i] whether ids[i] has a runs row). */
static void check_vanished(const audit_heads *heads, char **ids, bool *rows, int n, char **only,
                           int n_only, verdict *v) {
    for (int i = 0; i < heads->n; i++) {
        const audit_head *h = &heads->v[i];
        bool row, wanted = n_only == 0;
        for (int k = 0; k < n_only; k++) wanted = wanted || strcmp(only[k], h->run) == 0;
        if (wanted && !listed(ids, n, h->run, &row, rows))
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

/* The runs named, each checked on its own. */
static int verify_named(audit_journal *j, const verify_args *a, const audit_heads *heads,
                        audit_heads *taken, verdict *v) {
    char **ids = NULL;
    bool *rows = NULL;
    int n = 0;
    cairn_err err;
    if (audit_run_ids(j, &ids, &rows, &n, &err) != 0) {
        cli_error(&err);
        return EXIT_JOURNAL;
    }
    for (int i = 0; i < a->n_runs; i++) {
        bool has_row = false;
        const char *id = a->runs[i];
        if (listed(ids, n, id, &has_row, rows)) {
            cairn_run_verdict r;
            audit_verify_run(j, id, has_row, &r);
            report(j, &r, heads, taken, v);
            cairn_run_verdict_clear(&r);
        } else if (!find_head(heads, id)) {
            fprintf(stderr, "cairn: run %s: not found\n", id);
            v->missing = true;
        }
    }
    if (a->heads) check_vanished(heads, ids, rows, n, a->runs, a->n_runs, v);
    audit_ids_free(ids, rows, n);
    return 0;
}

/* Every run, in one pass over the journal's events. */
static int verify_all(audit_journal *j, const verify_args *a, const audit_heads *heads,
                      audit_heads *taken, verdict *v) {
    cairn_run_verdict *r = NULL;
    int n = 0;
    cairn_err err;
    if (audit_verify_runs(j, &r, &n, &err) != 0) {
        cli_error(&err);
        return EXIT_JOURNAL;
    }
    char **ids = cairn_calloc((size_t)(n ? n : 1), sizeof *ids);
    bool *rows = cairn_calloc((size_t)(n ? n : 1), sizeof *rows);
    for (int i = 0; i < n; i++) {
        report(j, &r[i], heads, taken, v);
        ids[i] = r[i].run_id;
        rows[i] = r[i].has_row;
    }
    if (a->heads) check_vanished(heads, ids, rows, n, NULL, 0, v);
    free(ids);
    free(rows);
    cairn_run_verdicts_free(r, n);
    return 0;
}

int cmd_verify(cli_opts *o, int argc, char **argv) {
    verify_args a = {0};
    audit_journal *j = NULL;
    audit_heads heads = {0}, taken = {0};
    verdict v = {0};
    cairn_err err;
    int rc = parse_args(o, argc, argv, &a);
    if (rc) return rc;
    if (audit_open(o->db, false, &j, &err) != 0) {
        cli_error(&err);
        return EXIT_JOURNAL;
    }
    if (a.heads) rc = read_heads(j, a.heads, &heads);
    audit_heads *take = a.export_heads ? &taken : NULL;
    if (rc == 0) rc = a.n_runs ? verify_named(j, &a, &heads, take, &v) : verify_all(j, &a, &heads, take, &v);
    if (rc == 0 && a.export_heads) rc = write_heads(j, a.export_heads, &taken);
    if (rc == 0) rc = verdict_exit(&v);
    audit_heads_free(&heads);
    audit_heads_free(&taken);
    audit_close(j);
    return rc;
}
