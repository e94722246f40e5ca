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

#define FORK_USAGE \
    "usage: cairn fork RUN --from STEP [--input NAME=VALUE]... [--inputs-file F] [--json] [--db PATH]"

typedef struct {
    const char *run, *step, *inputs_file;
    char **input_args;
    int n_inputs;
} fork_args;

static int parse_fork_args(cli_opts *o, int argc, char **argv, fork_args *a) {
    const char *v;
    a->input_args = cairn_calloc((size_t)argc + 1, sizeof *a->input_args);
    for (int i = 0; i < argc; i++) {
        if (cli_common_opt(o, argc, argv, &i)) continue;
        if ((v = cli_opt_value(argc, argv, &i, "--input")) != NULL) a->input_args[a->n_inputs++] = (char *)v;
        else if ((v = cli_opt_value(argc, argv, &i, "--from")) != NULL) a->step = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--inputs-file")) != NULL) a->inputs_file = v;
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

static void print_notes(jv notes) {
    jv_array_foreach(notes, i, n) {
        fprintf(stderr, "cairn: fork: %s\n", jv_string_value(n));
        jv_free(n);
    }
    jv_free(notes);
}

int cmd_fork(cli_opts *o, int argc, char **argv) {
    fork_args a = {0};
    cairn_engine *e = NULL;
    cli_live *p = NULL;
    jv inputs = jv_invalid(), notes = jv_invalid(), user = jv_invalid();
    char run_id[CAIRN_RUN_ID_MAX];
    cairn_err err;
    int rc = parse_fork_args(o, argc, argv, &a);
    if (rc == 0) rc = cli_journal_exists(o->db);
    if (rc == 0) rc = gather_inputs(o, &a, &inputs);
    if (rc == 0) rc = cli_engine_open(o, &p, &e);
    if (rc) goto done;
    user = cli_real_user();
    if (cairn_engine_fork_run(e, a.run, a.step, inputs, jv_string_value(user), run_id, &notes,
                              &err) != 0) {
        inputs = jv_invalid();
        cli_error(&err);
        rc = err.code == CAIRN_EIO || err.code == CAIRN_ECORRUPT || err.code == CAIRN_EAUTH
                 ? EXIT_JOURNAL : EXIT_USAGE;
        goto done;
    }
    inputs = jv_invalid();
    fprintf(stderr, "cairn: run %s forks run %s from step %s\n", run_id, a.run, a.step);
    print_notes(notes);
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
    jv_free(user);
    free(a.input_args);
    return rc;
}
