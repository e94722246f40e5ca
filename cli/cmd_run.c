/*
 * cmd_run.c - the commands that drive the engine: run, resume, cancel.
 *
 * Each prints the durable transitions as they happen (live.h: a line each,
 * or the terminal view).  SIGTERM and SIGINT ask the engine to stop taking
 * work: running attempts get the grace period, then are journaled as
 * interrupted, and `cairn resume` carries on later.
 */
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actions/action.h"
#include "common/file.h"
#include "common/json.h"
#include "cli/cli.h"
#include "cli/live.h"
#include "common/clock.h"
#include "common/mem.h"
#include "engine/engine.h"
#include "dsl/wfset.h"

#define CAIRN_CANCEL_WAIT_MS 60000   /* how long `cancel` waits for another engine */
#define CAIRN_INPUTS_FILE_MAX (1 << 20)

static cairn_engine *signal_engine;

static void on_signal(int sig) {
    (void)sig;
    if (signal_engine) cairn_engine_request_stop(signal_engine);
}

static void on_wake(int sig) {
    (void)sig;
    if (signal_engine) cairn_engine_wake(signal_engine);
}

static void install_signals(cairn_engine *e) {
    signal_engine = e;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_wake;
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* ---- shared --------------------------------------------------------------- */

/* The engine, its events printed by a new *p: the terminal view on a
 * terminal (not with --json), else a line per transition (live.h). */
static int open_engine(const cli_opts *o, cli_live **p, cairn_engine **e) {
    cairn_err err;
    *p = cli_live_new(stdout, o->db, cli_tty() && !o->json, cli_colour());
    cairn_engine_config cfg = {.on_event = cli_live_event, .ud = *p};
    const char *grace = getenv("CAIRN_GRACE_MS");
    if (grace && atoll(grace) > 0) cfg.grace_ms = atoll(grace);
    cairn_journal_config jc = {.role = CAIRN_JOURNAL_ENGINE, .sync = o->sync};
    if (cairn_journal_open(o->db, &jc, &cfg.journal, &err) != 0 ||
        cairn_engine_open(&cfg, e, &err) != 0) {
        cli_error(&err);
        return EXIT_JOURNAL;
    }
    install_signals(*e);
    return 0;
}

static int drive(cairn_engine *e) {
    cairn_err err;
    int rc = cairn_engine_run(e, &err);
    if (rc) {
        cli_error(&err);
        return EXIT_JOURNAL;
    }
    return 0;
}

/* Read the finished run back from the journal (as `show` would). */
static int final_status(const cli_opts *o, const char *run_id, bool print_json) {
    cairn_journal *j = NULL;
    cairn_run_state *st = NULL;
    cairn_err err;
    int rc = cli_open_journal(o->db, &j, &err);
    if (rc == 0) rc = cairn_journal_load_run(j, run_id, &st, NULL, &err);
    if (rc) {
        cli_error(&err);
        cairn_journal_close(j);
        return EXIT_JOURNAL;   /* the run was there: it is the journal that fails */
    }
    int out = st->status == CAIRN_RUN_SUCCEEDED ? EXIT_OK : EXIT_FAILED;
    if (print_json) cli_print_json(stdout, cairn_run_state_to_json(st), false);
    else if (!cairn_run_status_terminal(st->status))
        fprintf(stderr, "cairn: run %s stopped while %s; `cairn resume` carries it on\n",
                run_id, cairn_run_status_name(st->status));
    cairn_run_state_free(st);
    cairn_journal_close(j);
    return out;
}

/* ---- run ------------------------------------------------------------------ */

/* Who starts a run: the process's real user, from the password database
 * (never $USER, which anyone sets), or its uid as digits when it has no
 * entry there.  The approval rule against self-approval compares --as with
 * this name. */
jv cli_real_user(void) {
    uid_t uid = getuid();
    struct passwd *pw = getpwuid(uid);
    if (pw && pw->pw_name && *pw->pw_name) return jv_string(pw->pw_name);
    return jv_string_fmt("%lu", (unsigned long)uid);
}

static int read_inputs_file(const char *path, jv *inputs) {
    char *buf;
    size_t n;
    int got = cairn_file_read(path, CAIRN_INPUTS_FILE_MAX, &buf, &n);
    if (got == CAIRN_FILE_UNREADABLE) return cli_usage("--inputs-file %s: cannot open", path);
    int rc = 0;
    if (got == CAIRN_FILE_TOO_LARGE) {
        rc = cli_usage("--inputs-file %s: larger than %d bytes", path, CAIRN_INPUTS_FILE_MAX);
    } else {
        jv v = cairn_json_parse(buf, n);
        if (jv_get_kind(v) != JV_KIND_OBJECT) {
            rc = cli_usage("--inputs-file %s: expected a JSON object", path);
            jv_free(v);
        } else {
            jv_object_foreach(v, k, val) *inputs = jv_object_set(*inputs, k, val);
            jv_free(v);
        }
    }
    free(buf);
    return rc;
}

typedef struct {
    const char *file;
    const char *inputs_file;
    char **input_args;
    int n_inputs;
} run_args;

static int parse_run_args(cli_opts *o, int argc, char **argv, run_args *a) {
    const char *v;
    a->input_args = cairn_calloc((size_t)argc + 1, sizeof *a->input_args);
    for (int i = 0; i < argc; i++) {
        if (cli_common_opt(o, argc, argv, &i)) continue;
        if ((v = cli_opt_value(argc, argv, &i, "--input")) != NULL) a->input_args[a->n_inputs++] = (char *)v;
        else if ((v = cli_opt_value(argc, argv, &i, "--inputs-file")) != NULL) a->inputs_file = v;
        else if (argv[i][0] == '-') return cli_usage("run: unknown option '%s'", argv[i]);
        else if (a->file) return cli_usage("run: one workflow file at a time");
        else a->file = argv[i];
    }
    if (a->file == NULL) return cli_usage("usage: cairn run FILE [--input k=v]... [--inputs-file F] [--json]");
    return 0;
}

static int gather_inputs(const cairn_workflow *wf, const run_args *a, jv *inputs) {
    *inputs = jv_object();
    if (a->inputs_file && read_inputs_file(a->inputs_file, inputs)) return EXIT_USAGE;
    for (int i = 0; i < a->n_inputs; i++)
        if (cli_input_arg(wf, a->input_args[i], inputs)) return EXIT_USAGE;
    return 0;
}

int cli_input_arg(const cairn_workflow *wf, const char *arg, jv *inputs) {
    char *eq = strchr(arg, '=');
    if (eq == NULL) return cli_usage("--input %s: expected name=value", arg);
    char *name = cairn_strndup(arg, (size_t)(eq - arg));
    jv v;
    cairn_err err;
    int rc = cairn_workflow_parse_input(wf, name, eq + 1, &v, &err);
    if (rc == 0) *inputs = jv_object_set(*inputs, jv_string(name), v);
    free(name);
    if (rc) cli_error(&err);
    return rc ? EXIT_USAGE : 0;
}

/* Every workflow of the set goes into the journal, so `uses: workflow` can
 * start it by name: those beside the file first (one that fails is
 * reported and skipped), the file's own last, whose hash is *hash. */
static int add_workflows(cairn_engine *e, cairn_wfset *set, char hash[65], cairn_err *err) {
    int n = cairn_wfset_count(set), rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        rc = cairn_engine_add_workflow(e, cairn_wfset_take(set, i), hash, err);
        if (rc && i < n - 1) {
            cli_error(err);
            rc = 0;
        }
    }
    return rc;
}

int cmd_run(cli_opts *o, int argc, char **argv) {
    run_args a = {0};
    cairn_engine *e = NULL;
    cairn_wfset *set = NULL;
    const cairn_workflow *wf = NULL;
    jv inputs = jv_invalid();
    char hash[65], run_id[CAIRN_RUN_ID_MAX];
    cairn_err err;
    cli_live *p = NULL;
    int rc = parse_run_args(o, argc, argv, &a);
    if (rc) goto done;
    if ((rc = cli_load_set(&a.file, 1, &set, &wf)) != 0) goto done;
    if ((rc = gather_inputs(wf, &a, &inputs)) != 0) goto done;
    if ((rc = cli_check_secrets(o->db, set)) != 0) goto done;
    /* a `cairn serve` holding the journal takes the run: one engine, one
     * group commit; its transitions come back as lines (the view needs the
     * run's state, which stays in the server) */
    p = cli_live_new(stdout, o->db, false, cli_colour());
    if ((rc = cli_run_handoff(o, a.file, wf->name, inputs, cli_live_event, p, run_id)) >= 0) {
        cli_live_free(p);
        p = NULL;
        if (rc == 0) rc = final_status(o, run_id, o->json);
        goto done;
    }
    cli_live_free(p);
    p = NULL;
    if ((rc = open_engine(o, &p, &e)) != 0) goto done;
    rc = add_workflows(e, set, hash, &err);
    if (rc == 0) {
        jv trigger = jv_object_set(jv_object(), jv_string("source"), jv_string("cli"));
        trigger = jv_object_set(trigger, jv_string("user"), cli_real_user());
        rc = cairn_engine_start_run(e, hash, inputs, trigger, run_id, &err);
        inputs = jv_invalid();
    }
    if (rc) {
        cli_error(&err);
        rc = err.code == CAIRN_EIO || err.code == CAIRN_ECORRUPT ? EXIT_JOURNAL : EXIT_USAGE;
        goto done;
    }
    rc = drive(e);
    cairn_engine_close(e);
    e = NULL;
    cli_live_free(p);
    p = NULL;
    if (rc == 0) rc = final_status(o, run_id, o->json);
done:
    cairn_engine_close(e);
    cli_live_free(p);
    cairn_wfset_free(set);
    jv_free(inputs);
    free(a.input_args);
    return rc;
}

/* ---- shared with fork (cli.h) -------------------------------------------- */

int cli_engine_open(const cli_opts *o, cli_live **p, cairn_engine **e) { return open_engine(o, p, e); }
int cli_engine_drive(cairn_engine *e) { return drive(e); }
int cli_run_outcome(const cli_opts *o, const char *run_id, bool print_json) {
    return final_status(o, run_id, print_json);
}
int cli_inputs_file(const char *path, jv *inputs) { return read_inputs_file(path, inputs); }

/* ---- resume --------------------------------------------------------------- */

int cmd_resume(cli_opts *o, int argc, char **argv) {
    const char *only = NULL;
    for (int i = 0; i < argc; i++) {
        if (cli_common_opt(o, argc, argv, &i)) continue;
        if (argv[i][0] == '-') return cli_usage("resume: unknown option '%s'", argv[i]);
        only = argv[i];
    }
    cairn_engine *e = NULL;
    cli_live *p = NULL;
    cairn_err err;
    int taken = 0;
    int rc = cli_journal_exists(o->db);
    if (rc == 0) rc = open_engine(o, &p, &e);
    if (rc) {
        cli_live_free(p);
        return rc;
    }
    if (cairn_engine_resume(e, only, &taken, &err) != 0) {
        cli_error(&err);
        rc = err.code == CAIRN_ENOTFOUND || err.code == CAIRN_EBUSY ? EXIT_USAGE : EXIT_JOURNAL;
    } else {
        fprintf(stderr, "cairn: resuming %d run%s\n", taken, taken == 1 ? "" : "s");
        cli_live_resumed(p);
        rc = drive(e);
        if (rc == 0 && cli_live_ended_badly(p)) rc = EXIT_FAILED;
    }
    cairn_engine_close(e);
    cli_live_free(p);
    return rc;
}

/* ---- cancel, pause, unpause ---------------------------------------------- */

/* The runs row of run_id; else the exit code, the error printed: 3 when
 * the journal cannot be opened, 2 when it holds no such run. */
/* The run's row, and whether a live engine holds it (*held). */
static int run_status(const char *db, const char *run_id, cairn_run_row *row, bool *held) {
    cairn_journal *j = NULL;
    cairn_err err;
    int out = 0, rc = cli_open_journal(db, &j, &err);
    if (rc) out = EXIT_JOURNAL;
    else if ((rc = cairn_journal_get_run(j, run_id, row, &err)) != 0) out = cli_lookup_exit(rc);
    if (out) cli_error(&err);
    *held = out == 0 && row->owner && cairn_journal_owner_alive(j, row->owner);
    cairn_journal_close(j);
    return out;
}

static bool row_ended(const cairn_run_row *row) { return cairn_run_status_name_ends(row->status); }

/* Another engine holds the run: wait (bounded) for it to carry out the cancel. */
static int wait_for_end(const cli_opts *o, const char *run_id) {
    int64_t deadline = cairn_now_ms() + CAIRN_CANCEL_WAIT_MS;
    while (cairn_now_ms() < deadline) {
        cairn_run_row row;
        bool held;
        int rc = run_status(o->db, run_id, &row, &held);
        if (rc) return rc;
        bool ended = row_ended(&row);
        if (ended) printf("run %s %s\n", run_id, row.status);
        cairn_run_row_clear(&row);
        if (ended) return EXIT_OK;
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "cairn: cancel of %s recorded; the engine holding it has not finished yet\n",
            run_id);
    return EXIT_OK;
}

/* Wait (bounded) until the engine holding the run has taken the command. */
static bool wait_taken(const cli_opts *o, const char *run_id, const char *field, bool want) {
    int64_t deadline = cairn_now_ms() + CAIRN_CANCEL_WAIT_MS;
    while (cairn_now_ms() < deadline) {
        cairn_journal *j = NULL;
        cairn_run_state *st = NULL;
        cairn_err err;
        bool done = false;
        if (cli_open_journal(o->db, &j, &err) == 0 &&
            cairn_journal_load_run(j, run_id, &st, NULL, &err) == 0)
            done = strcmp(field, "paused") == 0 ? st->paused == want : false;
        cairn_run_state_free(st);
        cairn_journal_close(j);
        if (done) return true;
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

static int pause_or_unpause(cli_opts *o, int argc, char **argv, bool pause) {
    const char *run_id = NULL, *cmd = pause ? "pause" : "unpause";
    for (int i = 0; i < argc; i++) {
        if (cli_common_opt(o, argc, argv, &i)) continue;
        if (argv[i][0] == '-') return cli_usage("%s: unknown option '%s'", cmd, argv[i]);
        run_id = argv[i];
    }
    if (run_id == NULL) return cli_usage("usage: cairn %s RUN", cmd);
    char status[32];
    int rc = cli_command_handoff(o, run_id, cmd, "{}", false, status, sizeof status);
    if (rc == 0) printf("run %s %s\n", run_id, pause ? "paused" : "unpaused");
    if (rc >= 0) return rc;
    cairn_run_row row;
    cairn_err err;
    bool held;
    rc = run_status(o->db, run_id, &row, &held);
    if (rc) return rc;
    bool ended = row_ended(&row);
    cairn_run_row_clear(&row);
    if (ended) {
        fprintf(stderr, "cairn: run %s has already ended\n", run_id);
        return EXIT_USAGE;
    }
    if (cairn_journal_command(o->db, run_id, cmd, "{}", &err) != 0) {
        cli_error(&err);
        return EXIT_JOURNAL;
    }
    if (!held) {
        printf("run %s: %s recorded; it takes effect when the run resumes\n", run_id, cmd);
        return EXIT_OK;
    }
    if (!wait_taken(o, run_id, "paused", pause)) {
        fprintf(stderr, "cairn: %s of %s recorded; the engine holding it has not taken it yet\n",
                cmd, run_id);
        return EXIT_OK;
    }
    printf("run %s %s\n", run_id, pause ? "paused" : "unpaused");
    return EXIT_OK;
}

int cmd_pause(cli_opts *o, int argc, char **argv) { return pause_or_unpause(o, argc, argv, true); }
int cmd_unpause(cli_opts *o, int argc, char **argv) { return pause_or_unpause(o, argc, argv, false); }

int cmd_cancel(cli_opts *o, int argc, char **argv) {
    const char *run_id = NULL;
    for (int i = 0; i < argc; i++) {
        if (cli_common_opt(o, argc, argv, &i)) continue;
        if (argv[i][0] == '-') return cli_usage("cancel: unknown option '%s'", argv[i]);
        run_id = argv[i];
    }
    if (run_id == NULL) return cli_usage("usage: cairn cancel RUN");
    char ended[32];
    int rc = cli_command_handoff(o, run_id, "cancel", "{}", true, ended, sizeof ended);
    if (rc == 0 && *ended && strcmp(ended, "running") && strcmp(ended, "compensating"))
        printf("run %s %s\n", run_id, ended);
    else if (rc == 0)
        fprintf(stderr, "cairn: cancel of %s done; the server holding it has not finished it yet\n", run_id);
    if (rc >= 0) return rc;
    cairn_run_row row;
    cairn_err err;
    bool held;
    rc = run_status(o->db, run_id, &row, &held);
    if (rc) return rc;
    if (row_ended(&row)) {
        fprintf(stderr, "cairn: run %s has already ended (%s)\n", run_id, row.status);
        rc = EXIT_USAGE;
    } else if (cairn_journal_command(o->db, run_id, "cancel", "{}", &err) != 0) {
        cli_error(&err);
        rc = EXIT_JOURNAL;
    }
    cairn_run_row_clear(&row);
    if (rc) return rc;
    if (held) return wait_for_end(o, run_id);
    /* no engine holds it: carry out the cancel here */
    cairn_engine *e = NULL;
    cli_live *p = NULL;
    if ((rc = open_engine(o, &p, &e)) != 0) {
        cli_live_free(p);
        return rc;
    }
    if (cairn_engine_resume(e, run_id, NULL, &err) != 0) {
        cli_error(&err);
        cairn_engine_close(e);
        cli_live_free(p);
        return err.code == CAIRN_EBUSY ? EXIT_USAGE : EXIT_JOURNAL;
    }
    rc = drive(e);
    cairn_engine_close(e);
    cli_live_free(p);
    return rc ? rc : final_status(o, run_id, false) == EXIT_JOURNAL ? EXIT_JOURNAL : EXIT_OK;
}
