/*
 * cmd_fork.c - `cairn fork RUN --from STEP [--input NAME=VALUE]...`: a new
 * run of RUN's pinned definition that runs STEP and what depends on it for
 * real and carries the recorded results of the rest (engine/fork.h), then
 * drives it to its end here, printed as `run` prints its own, with run's
 * options for inputs and output.
 *
 * Beside a `cairn serve` holding the journal the fork still runs in this
 * process, as `cairn resume` does: a second engine commits straight to the
 * journal of record, and the server sees the run there.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/live.h"
#include "common/mem.h"
#include "engine/fork.h"

#define FORK_USAGE                                                                        \
    "usage: cairn fork RUN --from STEP [--input NAME=VALUE]... [--inputs-file F] [--dry-run]" \
    " [--json] [--db PATH]"

typedef struct {
    const char *run, *step, *inputs_file;
    char **input_args;
    int n_inputs;
    bool dry_run;
} fork_args;

static int parse_fork_args(cli_opts *o, int argc, char **argv, fork_args *a) {
    const char *v;
    a->input_args = cairn_calloc((size_t)argc + 1, sizeof *a->input_args);
    for (int i = 0; i < argc; i++) {
        if (cli_common_opt(o, argc, argv, &i)) continue;
        if ((v = cli_opt_value(argc, argv, &i, "--input")) != NULL) a->input_args[a->n_inputs++] = (char *)v;
        else if ((v = cli_opt_value(argc, argv, &i, "--from")) != NULL) a->step = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--inputs-file")) != NULL) a->inputs_file = v;
        else if (strcmp(argv[i], "--dry-run") == 0) a->dry_run = true;
        else if (argv[i][0] == '-') return cli_usage("fork: unknown option '%s'", argv[i]);
        else if (a->run) return cli_usage("fork: one run at a time");
        else a->run = argv[i];
    }
    if (a->run == NULL || a->step == NULL) return cli_usage(FORK_USAGE);
    return 0;
}

/* The inputs given: --inputs-file's, then each --input read as the
 * declared type of its input in the definition RUN is pinned to (read from
 * the journal, hash-checked). */
static int gather_inputs(const cli_opts *o, const fork_args *a, jv *inputs) {
    cairn_journal *j = NULL;
    cairn_run_state *st = NULL;
    cairn_workflow *wf = NULL;
    cairn_err err;
    int rc = cli_open_journal(o->db, &j, &err);
    if (rc == 0) rc = cairn_journal_load_run(j, a->run, &st, &wf, &err);
    if (rc) {
        cli_error(&err);
        rc = cli_lookup_exit(rc);
    }
    *inputs = jv_object();
    if (rc == 0 && a->inputs_file) rc = cli_inputs_file(a->inputs_file, inputs);
    for (int i = 0; rc == 0 && i < a->n_inputs; i++) rc = cli_input_arg(wf, a->input_args[i], inputs);
    cairn_workflow_free(wf);
    cairn_run_state_free(st);
    cairn_journal_close(j);
    return rc;
}

static void print_notes(jv report) {
    jv notes = jv_object_get(jv_copy(report), jv_string("notes"));
    jv_array_foreach(notes, i, n) {
        fprintf(stderr, "cairn: fork: %s\n", jv_string_value(n));
        jv_free(n);
    }
    jv_free(notes);
}

/* --dry-run: what the fork would do with each step, written nowhere. */
static void print_plan(const cli_opts *o, const fork_args *a, jv report) {
    if (o->json) {
        jv out = jv_object_set(jv_copy(report), jv_string("run"), jv_string(a->run));
        cli_print_json(stdout, jv_object_set(out, jv_string("from"), jv_string(a->step)), false);
        return;
    }
    printf("fork of run %s from step %s (dry run: nothing journaled)\n", a->run, a->step);
    jv steps = jv_object_get(jv_copy(report), jv_string("steps"));
    jv_array_foreach(steps, i, st) {
        jv step = jv_object_get(jv_copy(st), jv_string("step"));
        jv action = jv_object_get(jv_copy(st), jv_string("action"));
        bool carry = strcmp(jv_string_value(action), "carry") == 0;
        jv what = jv_object_get(jv_copy(st), jv_string(carry ? "status" : "why"));
        jv seq = jv_object_get(st, jv_string("from_seq"));
        if (carry)
            printf("  %-24s carried  %s at event %lld\n", jv_string_value(step), jv_string_value(what),
                   (long long)jv_number_value(seq));
        else
            printf("  %-24s runs     %s\n", jv_string_value(step), jv_string_value(what));
        jv_free(step);
        jv_free(action);
        jv_free(what);
        jv_free(seq);
    }
    jv_free(steps);
}

int cmd_fork(cli_opts *o, int argc, char **argv) {
    fork_args a = {0};
    cairn_engine *e = NULL;
    cli_live *p = NULL;
    jv inputs = jv_invalid(), report = jv_invalid(), user = jv_invalid();
    cairn_fork_req req;
    char run_id[CAIRN_RUN_ID_MAX];
    cairn_err err;
    int rc = parse_fork_args(o, argc, argv, &a);
    if (rc == 0) rc = cli_journal_exists(o->db);
    if (rc == 0) rc = gather_inputs(o, &a, &inputs);
    if (rc == 0) rc = cli_engine_open(o, &p, &e);
    if (rc) goto done;
    user = cli_real_user();
    req = (cairn_fork_req){.run = a.run, .step = a.step, .inputs = inputs,
                           .user = jv_string_value(user), .dry_run = a.dry_run};
    if (cairn_engine_fork_run(e, &req, run_id, &report, &err) != 0) {
        cli_error(&err);
        rc = err.code == CAIRN_EIO || err.code == CAIRN_ECORRUPT || err.code == CAIRN_EAUTH
                 ? EXIT_JOURNAL : EXIT_USAGE;
        goto done;
    }
    if (a.dry_run) {
        print_notes(report);
        print_plan(o, &a, report);
        goto done;
    }
    fprintf(stderr, "cairn: run %s forks run %s from step %s\n", run_id, a.run, a.step);
    print_notes(report);
    rc = cli_engine_drive(e);
    cairn_engine_close(e);
    e = NULL;
    cli_live_free(p);
    p = NULL;
    if (rc == 0) rc = cli_run_outcome(o, run_id, o->json);
done:
    cairn_engine_close(e);
    cli_live_free(p);
    jv_free(inputs);
    jv_free(report);
    jv_free(user);
    free(a.input_args);
    return rc;
}
