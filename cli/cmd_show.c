/*
 * cmd_show.c - reading the journal: show, runs, journal.
 * These read the database and change nothing in it, but for applying the
 * commit log an engine that is gone left (cli_open_journal).  `show` checks
 * the run's hash chain and pinned definition as it folds (when the journal's
 * key is readable) and refuses a run that fails them (`verify`, in
 * cmd_verify.c, checks every run).
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "common/mem.h"
#include "engine/engine.h"
#include "engine/fork.h"

static int open_ro(const cli_opts *o, cairn_journal **j) {
    cairn_err err;
    if (cli_open_journal(o->db, j, &err) == 0) return 0;
    cli_error(&err);
    return EXIT_JOURNAL;
}

static const char *one_arg(cli_opts *o, int argc, char **argv, const char *cmd, int *rc) {
    const char *arg = NULL;
    *rc = 0;
    for (int i = 0; i < argc; i++) {
        if (cli_common_opt(o, argc, argv, &i)) continue;
        if (argv[i][0] == '-' || arg) {
            *rc = cli_usage("usage: cairn %s RUN [--json] [--db PATH]", cmd);
            return NULL;
        }
        arg = argv[i];
    }
    if (arg == NULL) *rc = cli_usage("usage: cairn %s RUN [--json] [--db PATH]", cmd);
    return arg;
}

static void time_text(int64_t ms, char *out, size_t len) {
    cairn_rfc3339(ms, out, len);
}

/* ---- show ------------------------------------------------------------------- */

static void print_value(const char *label, jv v) {
    jv s = jv_dump_string(v, 0);
    printf("%-8s %s\n", label, jv_string_value(s));
    jv_free(s);
}

/* One line of a step or a foreach item: status, attempts, error. */
static void print_progress(const char *status, int attempts, bool in_flight, jv error) {
    printf(" %-10s %d attempt%s%s", status, attempts, attempts == 1 ? "" : "s",
           in_flight ? " (in flight)" : "");
    if (jv_get_kind(error) == JV_KIND_OBJECT) {
        jv m = jv_dump_string(jv_copy(error), 0);
        printf("  %s", jv_string_value(m));
        jv_free(m);
    }
    printf("\n");
}

/* "forked   from RUN at step STEP" and "forks    RUN (from STEP)" lines. */
static void fork_lines(const cairn_run_state *st, jv forks) {
    if (st->fork_run)
        printf("forked   from run %s at step %s\n", st->fork_run, st->fork_step ? st->fork_step : "?");
    jv_array_foreach(forks, i, f) {
        jv run = jv_object_get(jv_copy(f), jv_string("run")), step = jv_object_get(f, jv_string("step"));
        printf("%-8s %s (from step %s)\n", i ? "" : "forks", jv_string_value(run),
               jv_get_kind(step) == JV_KIND_STRING ? jv_string_value(step) : "?");
        jv_free(run);
        jv_free(step);
    }
}

/* node: the engine holding the run (runs.owner), NULL: none. */
static void show_text(const cairn_run_state *st, jv forks, const char *node) {
    char c[40], u[40];
    time_text(st->created_ms, c, sizeof c);
    time_text(st->updated_ms, u, sizeof u);
    printf("run      %s\nworkflow %s\nstatus   %s\ncreated  %s\nupdated  %s\n", st->id,
           st->workflow ? st->workflow : "?", cairn_run_status_name(cairn_run_state_status(st)), c, u);
    if (node) printf("node     %s\n", node);
    fork_lines(st, forks);
    print_value("inputs", jv_copy(st->inputs));
    if (st->status == CAIRN_RUN_SUCCEEDED) print_value("outputs", jv_copy(st->outputs));
    if (jv_get_kind(st->error) != JV_KIND_NULL) print_value("error", jv_copy(st->error));
    printf("steps\n");
    for (int i = 0; i < st->n_steps; i++) {
        const cairn_step_state *s = &st->steps[i];
        printf("  %-24s", st->step_ids[i]);
        print_progress(cairn_step_status_name(s->status), s->attempts, s->in_flight, s->error);
        if (s->carried_seq > 0)
            printf("    %-22s carried from run %s event %lld%s\n", "", st->fork_run,
                   (long long)s->carried_seq, jv_get_kind(s->approval) == JV_KIND_OBJECT
                                                 ? " (its approval was decided there)" : "");
        for (int k = 0; k < s->n_items; k++) {
            const cairn_item_state *it = &s->items[k];
            char label[24];
            snprintf(label, sizeof label, "[%d]", k);
            printf("    %-22s", label);
            print_progress(cairn_step_status_name(it->status), it->attempts, it->in_flight, it->error);
        }
    }
}

int cmd_show(cli_opts *o, int argc, char **argv) {
    int rc;
    const char *run_id = one_arg(o, argc, argv, "show", &rc);
    if (!run_id) return rc;
    cairn_journal *j = NULL;
    if ((rc = open_ro(o, &j)) != 0) return rc;
    cairn_run_state *st = NULL;
    jv forks = jv_invalid();
    cairn_err err;
    int keyed = cairn_journal_use_key(j, &err);
    if (keyed != 0 && keyed != CAIRN_EAUTH)   /* shown all the same: the chain is for `verify` to judge */
        fprintf(stderr, "cairn: the hash chain is not checked: %s\n", err.msg);
    if (keyed == CAIRN_EAUTH) {
        cli_error(&err);
        rc = EXIT_JOURNAL;
    } else if ((rc = cairn_journal_load_run(j, run_id, &st, NULL, &err)) != 0) {
        cli_error(&err);
        rc = cli_lookup_exit(rc);
    } else if ((rc = cairn_fork_list(j, run_id, &forks, &err)) != 0) {
        cli_error(&err);
        rc = EXIT_JOURNAL;
    } else if (o->json) {
        jv out = cairn_run_state_to_json(st);   /* as `run --json` prints it, and forks if any */
        if (jv_array_length(jv_copy(forks)) > 0) out = jv_object_set(out, jv_string("forks"), jv_copy(forks));
        cli_print_json(stdout, out, false);
    } else {
        cairn_run_row row = {0};
        cairn_journal_get_run(j, run_id, &row, NULL);   /* no row: no node to name */
        show_text(st, forks, row.owner);
        cairn_run_row_clear(&row);
    }
    jv_free(forks);
    cairn_run_state_free(st);
    cairn_journal_close(j);
    return rc;
}

/* ---- runs -------------------------------------------------------------------- */

int cmd_runs(cli_opts *o, int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (!cli_common_opt(o, argc, argv, &i)) return cli_usage("usage: cairn runs [--json]");
    cairn_journal *j = NULL;
    int rc = open_ro(o, &j), n = 0;
    if (rc) return rc;
    cairn_run_row *rows = NULL;
    cairn_err err;
    if (cairn_journal_list_runs(j, NULL, &rows, &n, &err) != 0) {
        cli_error(&err);
        cairn_journal_close(j);
        return EXIT_JOURNAL;
    }
    jv arr = jv_array();
    /* NODE last: a script reading the columns before it reads them still */
    if (!o->json) printf("%-18s %-28s %-12s %-24s %s\n", "ID", "WORKFLOW", "STATUS", "CREATED", "NODE");
    for (int i = 0; i < n; i++) {
        char when[40];
        time_text(rows[i].created_at, when, sizeof when);
        if (!o->json) {
            printf("%-18s %-28s %-12s %-24s %s\n", rows[i].id, rows[i].workflow, rows[i].status, when,
                   rows[i].owner ? rows[i].owner : "-");
            continue;
        }
        jv r = jv_object();
        r = jv_object_set(r, jv_string("id"), jv_string(rows[i].id));
        r = jv_object_set(r, jv_string("workflow"), jv_string(rows[i].workflow));
        r = jv_object_set(r, jv_string("status"), jv_string(rows[i].status));
        r = jv_object_set(r, jv_string("created_at"), jv_string(when));
        if (rows[i].parent_id) r = jv_object_set(r, jv_string("parent"), jv_string(rows[i].parent_id));
        if (rows[i].owner) r = jv_object_set(r, jv_string("node"), jv_string(rows[i].owner));
        arr = jv_array_append(arr, r);
    }
    if (o->json) cli_print_json(stdout, arr, false);
    else jv_free(arr);
    cairn_run_rows_free(rows, n);
    cairn_journal_close(j);
    return EXIT_OK;
}

/* ---- journal ------------------------------------------------------------------- */

static void hash_hex(const unsigned char *hash, char hex[2 * CAIRN_HASH_LEN + 1]) {
    for (int i = 0; i < CAIRN_HASH_LEN; i++) snprintf(hex + 2 * i, 3, "%02x", hash[i]);
}

static jv event_json(const cairn_event *ev) {
    char when[40], hex[2 * CAIRN_HASH_LEN + 1];
    hash_hex(ev->hash, hex);
    jv o = jv_object();
    o = jv_object_set(o, jv_string("seq"), jv_number((double)ev->seq));
    o = jv_object_set(o, jv_string("time"), jv_string(cairn_rfc3339(ev->time_ms, when, sizeof when)));
    o = jv_object_set(o, jv_string("type"), jv_string(cairn_event_type_name(ev->type)));
    o = jv_object_set(o, jv_string("step"), ev->step ? jv_string(ev->step) : jv_null());
    o = jv_object_set(o, jv_string("attempt"), jv_number(ev->attempt));
    o = jv_object_set(o, jv_string("data"), jv_parse(ev->data ? ev->data : "null"));
    return jv_object_set(o, jv_string("hash"), jv_string(hex));
}

int cmd_journal(cli_opts *o, int argc, char **argv) {
    int rc;
    const char *run_id = one_arg(o, argc, argv, "journal", &rc);
    if (!run_id) return rc;
    cairn_journal *j = NULL;
    if ((rc = open_ro(o, &j)) != 0) return rc;
    cairn_event *evs = NULL;
    int n = 0;
    cairn_err err;
    if (cairn_journal_load_events(j, run_id, &evs, &n, NULL, &err) != 0) {
        cli_error(&err);
        cairn_journal_close(j);
        return cli_lookup_exit(err.code);
    }
    jv arr = jv_array();
    for (int i = 0; i < n; i++) {
        if (o->json) {
            arr = jv_array_append(arr, event_json(&evs[i]));
            continue;
        }
        char when[40], hex[2 * CAIRN_HASH_LEN + 1];
        cairn_rfc3339(evs[i].time_ms, when, sizeof when);
        hash_hex(evs[i].hash, hex);
        printf("%4lld %s %-20s %-20s %d %s %s\n", (long long)evs[i].seq, when,
               cairn_event_type_name(evs[i].type), evs[i].step ? evs[i].step : "-",
               evs[i].attempt, hex, evs[i].data);
    }
    if (o->json) cli_print_json(stdout, arr, false);
    else jv_free(arr);
    cairn_events_free(evs, n);
    cairn_journal_close(j);
    return EXIT_OK;
}
