/*
 * shell.c - the `shell` action: run a script, or an argv without a shell,
 * and report its exit code and (capped) output.
 *
 * with: run (a script) or argv (a list of strings), shell (`bash` or `sh`),
 * env, cwd, stdin, ok_codes ([0]).
 *
 * A script runs as GitHub Actions runs one, so that a failing command fails
 * the step, in a pipeline too: `bash --noprofile --norc -eo pipefail -c
 * SCRIPT` when bash is found in the step's PATH, else `/bin/sh -e -c
 * SCRIPT`; `shell: bash` insists on bash (a step on a host without it fails
 * with kind exit), `shell: sh` chooses /bin/sh.  Values spliced into `run`
 * arrive as the variables CAIRN_V1, CAIRN_V2, ... in `with.env`, the script
 * referring to them (dsl/shlex.h): no value is ever on the command line.
 *
 * Limits: one environment string (NAME=value) must stay under
 * CAIRN_SHELL_ENV_STRING_MAX bytes, the kernel's MAX_ARG_STRLEN, or the step
 * fails with kind size before it starts; the kernel also caps the whole
 * environment with the arguments (a quarter of the stack limit).
 *
 * prepare copies the rendered `with` into a job of plain C strings (the
 * script or argv, the whole environment, cwd, stdin, the set of ok exit
 * codes); execute chooses the shell and runs it through cairn_proc_run
 * (proc.h: process group, output cap, deadline, stop); finish turns the
 * result into the output or a failure.
 *
 * Environment, later entries winning: the engine's own environment, the
 * workflow `env` (info->env), `with.env`, then CAIRN_IDEMPOTENCY_KEY,
 * CAIRN_RUN_ID, CAIRN_STEP_ID and CAIRN_ATTEMPT, which describe the attempt
 * and cannot be overridden.  `with.env` values may be strings, numbers or
 * booleans (written as JSON writes them: `PORT: 8080` is "8080"); `argv`
 * takes strings only, since it exists for exact control.  A `with` field
 * that is null counts as absent.
 */
#include "actions/action.h"
#include "actions/proc.h"
#include "actions/with.h"
#include "common/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static const cairn_field_sig shell_fields[] = {
    {"run", CAIRN_FIELD_STRING, CAIRN_FIELD_SHELL},
    {"argv", CAIRN_FIELD_ARRAY, 0},
    {"shell", CAIRN_FIELD_STRING, 0},
    {"env", CAIRN_FIELD_OBJECT, 0},
    {"cwd", CAIRN_FIELD_STRING, 0},
    {"stdin", CAIRN_FIELD_STRING, 0},
    {"ok_codes", CAIRN_FIELD_ARRAY, 0},
    {NULL, 0, 0},
};

static const cairn_action_sig shell_sig = {
    .name = "shell", .fields = shell_fields, .one_of = "run|argv"};

#define CAIRN_SHELL_ENV_STRING_MAX (32 * 4096)   /* Linux's MAX_ARG_STRLEN */

/* A NULL-terminated, owned array of owned strings. */
typedef struct strv {
    char **v;
    int n, cap;
} strv;

/* Which shell runs `run`. */
typedef enum { SHELL_AUTO, SHELL_BASH, SHELL_SH } shell_kind;

typedef struct shell_job {
    strv argv, env;                    /* argv: `argv`, or the shell's, made in execute */
    char *script;                      /* `run`, or NULL */
    shell_kind shell;
    char *cwd;                         /* or NULL */
    char *stdin_data;                  /* or NULL: /dev/null */
    size_t stdin_len;
    bool ok[CAIRN_EXIT_CODES];
    int rc;                            /* of cairn_proc_run */
    cairn_err err;
    cairn_proc_result res;
} shell_job;

/* ---- small helpers ------------------------------------------------------ */

static void strv_push(strv *s, char *owned) {
    if (s->n + 2 > s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = cairn_realloc(s->v, (size_t)s->cap * sizeof *s->v);
    }
    s->v[s->n++] = owned;
    s->v[s->n] = NULL;
}

static void strv_free(strv *s) {
    for (int i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
}

/* Put "NAME=value" (owned) in env, replacing an entry of the same name. */
static void env_put(strv *env, char *entry) {
    size_t len = strcspn(entry, "=") + 1;
    for (int i = 0; i < env->n; i++)
        if (strncmp(env->v[i], entry, len) == 0) {
            free(env->v[i]);
            env->v[i] = entry;
            return;
        }
    strv_push(env, entry);
}

static void job_free(shell_job *j) {
    if (j == NULL) return;
    strv_free(&j->argv);
    strv_free(&j->env);
    free(j->script);
    free(j->cwd);
    free(j->stdin_data);
    cairn_proc_result_free(&j->res);
    free(j);
}

/* ---- reading `with` ----------------------------------------------------- */

static int read_argv(jv argv, shell_job *j, cairn_fail *f) {
    if (jv_get_kind(argv) != JV_KIND_ARRAY || jv_array_length(jv_copy(argv)) == 0)
        return cairn_fail_set(f, "schema", "argv must be a non-empty list of strings");
    int n = jv_array_length(jv_copy(argv));
    for (int i = 0; i < n; i++) {
        char what[32], *s = NULL;
        snprintf(what, sizeof what, "argv[%d]", i);
        if (cairn_with_text(jv_array_get(jv_copy(argv), i), "", what, 0, &s, f) != 0) return -1;
        strv_push(&j->argv, s);
    }
    if (j->argv.v[0][0] == '\0') return cairn_fail_set(f, "schema", "argv[0] must not be empty");
    return 0;
}

static int read_shell(jv with, shell_job *j, cairn_fail *f) {
    jv v = cairn_with_get(with, "shell");
    char *name = NULL;
    int rc = 0;
    if (!jv_is_valid(v)) jv_free(v);
    else if ((rc = cairn_with_text(v, "", "shell", 0, &name, f)) == 0) {
        if (strcmp(name, "bash") == 0) j->shell = SHELL_BASH;
        else if (strcmp(name, "sh") == 0) j->shell = SHELL_SH;
        else rc = cairn_fail_set(f, "schema", "shell must be bash or sh, not '%.100s'", name);
    }
    free(name);
    if (rc == 0 && j->shell != SHELL_AUTO && j->script == NULL)
        rc = cairn_fail_set(f, "schema", "shell goes with run (argv runs no shell)");
    return rc;
}

/* Exactly one of `run` (a script for the shell) and `argv`. */
static int read_command(jv with, shell_job *j, cairn_fail *f) {
    jv run = cairn_with_get(with, "run"), argv = cairn_with_get(with, "argv");
    int rc;
    if (jv_is_valid(run) == jv_is_valid(argv))
        rc = cairn_fail_set(f, "schema", "shell needs exactly one of run and argv");
    else if (jv_is_valid(argv))
        rc = read_argv(argv, j, f);
    else
        rc = cairn_with_text(jv_copy(run), "", "run", 0, &j->script, f);
    jv_free(run);
    jv_free(argv);
    return rc ? rc : read_shell(with, j, f);
}

static int read_with_env(jv env, shell_job *j, cairn_fail *f) {
    int rc = 0;
    if (jv_get_kind(env) != JV_KIND_OBJECT)
        return cairn_fail_set(f, "schema", "env must be a map of strings, not %s",
                              jv_kind_name(jv_get_kind(env)));
    jv_object_foreach(env, name, value) {   /* borrows env; name, value are copies */
        const char *nm = jv_string_value(name);
        char what[CAIRN_FAIL_MSG_MAX / 2], *val = NULL;
        snprintf(what, sizeof what, "env.%s", nm);
        if (rc == 0 && (nm[0] == '\0' || strchr(nm, '=') ||
                        strlen(nm) != (size_t)jv_string_length_bytes(jv_copy(name))))
            rc = cairn_fail_set(f, "schema", "env: '%s' is not a valid variable name", nm);
        if (rc == 0 && (rc = cairn_with_scalar_text(jv_copy(value), "", what, &val, f)) == 0)
            env_put(&j->env, cairn_sprintf("%s=%s", nm, val));
        free(val);
        jv_free(name);
        jv_free(value);
    }
    return rc;
}

static void put_attempt_env(shell_job *j, const cairn_attempt_info *info) {
    static const char *const names[] = {"CAIRN_IDEMPOTENCY_KEY", "CAIRN_RUN_ID", "CAIRN_STEP_ID"};
    const char *values[] = {info->idempotency_key, info->run_id, info->step_id};
    for (int i = 0; i < 3; i++)
        if (values[i]) env_put(&j->env, cairn_sprintf("%s=%s", names[i], values[i]));
    env_put(&j->env, cairn_sprintf("CAIRN_ATTEMPT=%d", info->attempt));
}

/* The kernel refuses to exec with an environment string of
 * CAIRN_SHELL_ENV_STRING_MAX bytes or more: say which, before trying. */
static int check_env_sizes(const shell_job *j, cairn_fail *f) {
    for (int i = 0; i < j->env.n; i++) {
        size_t len = strlen(j->env.v[i]) + 1;
        if (len < CAIRN_SHELL_ENV_STRING_MAX) continue;
        int name = (int)strcspn(j->env.v[i], "=");
        return cairn_fail_set(f, "size", "env %.*s is %zu bytes; the kernel takes less than %d "
                              "for one variable (a value spliced into run is one): pass large "
                              "data with stdin or a file", name > 64 ? 64 : name, j->env.v[i],
                              len, CAIRN_SHELL_ENV_STRING_MAX);
    }
    return 0;
}

static int read_env(jv with, const cairn_attempt_info *info, shell_job *j, cairn_fail *f) {
    extern char **environ;
    for (char **e = environ; e && *e; e++) env_put(&j->env, cairn_strdup(*e));
    for (const char *const *e = info->env; e && *e; e++)
        if (strchr(*e, '=')) env_put(&j->env, cairn_strdup(*e));
    jv env = cairn_with_get(with, "env");
    int rc = jv_is_valid(env) ? read_with_env(env, j, f) : 0;
    jv_free(env);
    if (rc == 0) put_attempt_env(j, info);
    return rc ? rc : check_env_sizes(j, f);
}

static int read_cwd(jv with, shell_job *j, cairn_fail *f) {
    jv cwd = cairn_with_get(with, "cwd");
    if (jv_is_valid(cwd)) return cairn_with_text(cwd, "", "cwd", 0, &j->cwd, f);
    jv_free(cwd);
    return 0;
}

/* ---- the three phases --------------------------------------------------- */

static int shell_prepare(jv with, const cairn_attempt_info *info, void **job, cairn_fail *f) {
    if (jv_get_kind(with) != JV_KIND_OBJECT)
        return cairn_fail_set(f, "schema", "shell: with must be a map");
    shell_job *j = cairn_calloc(1, sizeof *j);
    if (cairn_with_keys(with, &shell_sig, f) || read_command(with, j, f) || read_env(with, info, j, f) ||
        read_cwd(with, j, f) || cairn_with_stdin(with, &j->stdin_data, &j->stdin_len, "", f) ||
        cairn_with_ok_codes(with, j->ok, "", f)) {
        job_free(j);
        return -1;
    }
    *job = j;
    return 0;
}

/* The shell's argv for the script: bash when asked for or found, else sh.
 * The lookup runs here, on a worker, since it touches the file system. */
static int shell_argv(shell_job *j) {
    char *bash = NULL;
    cairn_err err;
    if (j->shell != SHELL_SH &&
        cairn_proc_find("bash", j->env.v, j->cwd, &bash, &err) != 0 && j->shell == SHELL_BASH)
        return cairn_err_set(&j->err, CAIRN_ENOTFOUND, "shell: bash is not in the step's "
                             "PATH (shell: sh runs /bin/sh)");
    const char *const with_bash[] = {"--noprofile", "--norc", "-eo", "pipefail", "-c", NULL};
    const char *const with_sh[] = {"-e", "-c", NULL};
    strv_push(&j->argv, bash ? bash : cairn_strdup("/bin/sh"));
    for (const char *const *a = bash ? with_bash : with_sh; *a; a++)
        strv_push(&j->argv, cairn_strdup(*a));
    strv_push(&j->argv, j->script);
    j->script = NULL;
    return 0;
}

static void shell_execute(void *job, const cairn_attempt_info *info) {
    shell_job *j = job;
    if (j->script && (j->rc = shell_argv(j)) != 0) return;
    cairn_proc_spec spec = {
        .argv = j->argv.v, .envp = j->env.v, .cwd = j->cwd,
        .stdin_data = j->stdin_data, .stdin_len = j->stdin_len,
        .output_max = CAIRN_SHELL_OUTPUT_MAX, .deadline_ms = info->deadline_ms,
        .stop = info->stop, .kill_grace_ms = CAIRN_SHELL_KILL_GRACE_MS, .attempt = info,
    };
    j->rc = cairn_proc_run(&spec, &j->res, &j->err);
}

static jv shell_output(const cairn_proc_result *r) {
    jv out = jv_object_set(jv_object(), jv_string("exit_code"), jv_number(r->exit_code));
    out = cairn_capbuf_add_output(out, "stdout", &r->out);
    out = cairn_capbuf_add_output(out, "stderr", &r->err);
    return jv_object_set(out, jv_string("output_cap_bytes"), jv_number(r->out.cap));
}

/* The end of stderr for a failure message, or of stdout when stderr is
 * empty (a failed step keeps no output: this is all that survives). */
static void failure_detail(const cairn_proc_result *r, char *out, size_t outlen) {
    char tail[CAIRN_OUTPUT_TAIL_MAX + 8];
    cairn_capbuf_tail(&r->err, tail, sizeof tail);
    if (tail[0]) {
        snprintf(out, outlen, ": %s", tail);
        return;
    }
    cairn_capbuf_tail(&r->out, tail, sizeof tail);
    snprintf(out, outlen, tail[0] ? " (stdout: %s)" : "%s", tail);
}

/* A process that ran to its end: the output, or kind "exit". */
static int judge_exit(shell_job *j, jv *output, cairn_fail *f) {
    const cairn_proc_result *r = &j->res;
    char detail[CAIRN_OUTPUT_TAIL_MAX + 32];
    failure_detail(r, detail, sizeof detail);
    if (r->outcome == CAIRN_PROC_SIGNALED) {
        const char *abbrev = sigabbrev_np(r->term_signal);
        return cairn_fail_set(f, "exit", "killed by signal %d (SIG%s)%s", r->term_signal,
                              abbrev ? abbrev : "?", detail);
    }
    if (!j->ok[r->exit_code])
        return cairn_fail_set(f, "exit", "exit code %d%s", r->exit_code, detail);
    *output = shell_output(r);
    return 0;
}

static int shell_finish(void *job, jv *output, cairn_fail *f) {
    shell_job *j = job;
    const cairn_proc_result *r = &j->res;
    int rc;
    if (j->rc < 0)
        rc = cairn_fail_set(f, "exit", "%s", j->err.msg);
    else if (r->outcome == CAIRN_PROC_TIMEOUT)
        rc = cairn_fail_set(f, "timeout", r->spawned ? "deadline reached: process group killed"
                                                     : "deadline reached before the start");
    else if (r->outcome == CAIRN_PROC_CANCELLED)
        rc = cairn_fail_set(f, "cancelled", r->spawned ? "stop requested: process group killed"
                                                       : "stop requested before the start");
    else
        rc = judge_exit(j, output, f);
    job_free(j);
    return rc;
}

static void shell_discard(void *job) { job_free(job); }

const cairn_action cairn_action_shell = {
    .sig = &shell_sig,
    .flags = 0,
    .prepare = shell_prepare,
    .execute = shell_execute,
    .finish = shell_finish,
    .discard = shell_discard,
};
