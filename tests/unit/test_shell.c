/*
 * The `shell` action and the process runner under it (actions/proc.h),
 * driven as the engine drives them: prepare and finish on this thread,
 * execute on this thread or, where a stop must arrive meanwhile, another.
 *
 * Nothing here sleeps to wait: processes tell the test where they stand
 * through files and FIFOs, and dead processes are proved dead by reaping
 * them (the test makes itself a child subreaper, so orphaned grandchildren
 * come back to it) and then by kill(pid, 0) failing with ESRCH.  Scripts
 * start their background process from a subshell, `(sleep 100 &)`, so it is
 * orphaned at once and no shell can reap it before the test does.
 */
#include "test.h"
#include "splice_matrix.h"
#include "actions/action.h"
#include "actions/proc.h"
#include "common/clock.h"

#include <errno.h>
#include <limits.h>
#include <jv.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

typedef struct attempt {
    cairn_stop stop;
    const char *env[4];
    cairn_attempt_info info;
} attempt;

static void attempt_init(attempt *a, int64_t deadline_ms) {
    memset(a, 0, sizeof *a);
    a->env[0] = "WF_ONLY=from-workflow";
    a->env[1] = "SHARED=workflow";
    a->info = (cairn_attempt_info){
        .run_id = "run-7", .step_id = "deploy", .idempotency_key = "run-7/deploy",
        .attempt = 2, .deadline_ms = deadline_ms, .stop = &a->stop, .env = a->env,
    };
}

/* {run: script} merged into extra (a JSON object text, or NULL). */
static jv with_run(const char *script, const char *extra) {
    jv w = extra ? test_json(extra) : jv_object();
    return jv_object_set(w, jv_string("run"), jv_string(script));
}

/* prepare + execute + finish.  Returns 1 when prepare refused (f set), else
 * finish's result. */
static int shell_run(jv with, const cairn_attempt_info *info, jv *out, cairn_fail *f) {
    const cairn_action *a = cairn_action_find("shell");
    void *job = NULL;
    int rc = a->prepare(with, info, &job, f);
    jv_free(with);
    if (rc != 0) return 1;
    a->execute(job, info);
    return a->finish(job, out, f);
}

/* Run and expect success; returns the output. */
static jv shell_ok(jv with, const cairn_attempt_info *info) {
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    int rc = shell_run(with, info, &out, &f);
    if (rc != 0) TEST_FAIL("shell failed (%d): %s: %s", rc, f.kind, f.message);
    return out;
}

static const char *get_str(jv out, const char *key) {
    jv v = jv_object_get(jv_copy(out), jv_string(key));
    if (jv_get_kind(v) != JV_KIND_STRING) TEST_FAIL("output.%s is not a string", key);
    const char *s = jv_string_value(v);
    jv_free(v);                        /* out still holds it */
    return s;
}

static double get_num(jv out, const char *key) {
    jv v = jv_object_get(jv_copy(out), jv_string(key));
    if (jv_get_kind(v) != JV_KIND_NUMBER) TEST_FAIL("output.%s is not a number", key);
    double d = jv_number_value(v);
    jv_free(v);
    return d;
}

static int get_bool(jv out, const char *key) {
    jv_kind k = jv_get_kind(jv_object_get(jv_copy(out), jv_string(key)));
    if (k != JV_KIND_TRUE && k != JV_KIND_FALSE) TEST_FAIL("output.%s is not a boolean", key);
    return k == JV_KIND_TRUE;
}

static pid_t read_pid(const char *path) {
    FILE *fp = fopen(path, "r");
    long pid = 0;
    if (fp == NULL) TEST_FAIL("no pid file %s", path);
    if (fscanf(fp, "%ld", &pid) != 1) TEST_FAIL("no pid in %s", path);
    fclose(fp);
    return (pid_t)pid;
}

static int is_gone(pid_t pid) { return kill(pid, 0) == -1 && errno == ESRCH; }

/* pid is an orphan re-parented to this (subreaper) process: wait for it to
 * die and return how it died; the harness alarm catches a survivor. */
static int reap_orphan(pid_t pid) {
    int st = 0;
    CHECK_INT(waitpid(pid, &st, 0), pid);
    CHECK(WIFSIGNALED(st));
    CHECK(is_gone(pid));
    return WTERMSIG(st);
}

static void become_subreaper(void) { CHECK_INT(prctl(PR_SET_CHILD_SUBREAPER, 1), 0); }

static void expect_fail(jv with, const char *kind, const char *needle) {
    attempt a;
    attempt_init(&a, 0);
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    CHECK(shell_run(with, &a.info, &out, &f) != 0);
    CHECK_STR(f.kind, kind);
    CHECK_CONTAINS(f.message, needle);
}

/* ---- running and output ------------------------------------------------- */

TEST(shell_run_reports_stdout_stderr_exit_code) {
    attempt a;
    attempt_init(&a, 0);
    jv out = shell_ok(with_run("echo out; echo err >&2; printf 'no newline'", NULL), &a.info);
    CHECK_STR(get_str(out, "stdout"), "out\nno newline");
    CHECK_STR(get_str(out, "stderr"), "err\n");
    CHECK_INT(get_num(out, "exit_code"), 0);
    CHECK_INT(get_bool(out, "stdout_truncated"), 0);
    CHECK_INT(get_num(out, "stdout_bytes"), 14);
    CHECK_INT(get_num(out, "output_cap_bytes"), CAIRN_SHELL_OUTPUT_MAX);
    jv_free(out);
}

TEST(shell_argv_keeps_each_argument_whole) {
    attempt a;
    attempt_init(&a, 0);
    char canary[300];
    snprintf(canary, sizeof canary, "%s/canary", test_tmpdir());
    char *inject = malloc(400);
    snprintf(inject, 400, "; rm -rf / ; touch %s", canary);
    jv argv = jv_array();
    argv = jv_array_append(argv, jv_string("printf"));
    argv = jv_array_append(argv, jv_string("<%s>"));
    argv = jv_array_append(argv, jv_string("a b"));
    argv = jv_array_append(argv, jv_string(inject));
    argv = jv_array_append(argv, jv_string("$HOME"));
    jv out = shell_ok(jv_object_set(jv_object(), jv_string("argv"), argv), &a.info);
    char want[600];
    snprintf(want, sizeof want, "<a b><%s><$HOME>", inject);
    CHECK_STR(get_str(out, "stdout"), want);
    CHECK(access(canary, F_OK) != 0);
    free(inject);
    jv_free(out);
}

TEST(shell_env_layers_and_attempt_variables) {
    attempt a;
    attempt_init(&a, 0);
    const char *script = "printf '%s|%s|%s|%s|%s|%s|%s|%s' \"$WF_ONLY\" \"$SHARED\" \"$PORT\" "
                         "\"$CAIRN_IDEMPOTENCY_KEY\" \"$CAIRN_RUN_ID\" \"$CAIRN_STEP_ID\" "
                         "\"$CAIRN_ATTEMPT\" \"$INHERITED\"";
    setenv("INHERITED", "from-engine", 1);
    setenv("SHARED", "engine", 1);
    jv out = shell_ok(with_run(script, "{'env': {'SHARED': 'step', 'PORT': 8080, "
                                       "'CAIRN_ATTEMPT': '99'}}"), &a.info);
    CHECK_STR(get_str(out, "stdout"),
              "from-workflow|step|8080|run-7/deploy|run-7|deploy|2|from-engine");
    jv_free(out);
}

TEST(shell_argv_found_in_step_path) {
    attempt a;
    attempt_init(&a, 0);
    char tool[300];
    snprintf(tool, sizeof tool, "%s/my-tool", test_tmpdir());
    FILE *fp = fopen(tool, "w");
    fputs("#!/bin/sh\necho tool ran \"$1\"\n", fp);
    fclose(fp);
    chmod(tool, 0755);
    char extra[600];
    snprintf(extra, sizeof extra, "{'argv': ['my-tool', 'x'], 'env': {'PATH': '%s:/usr/bin:/bin'}}",
             test_tmpdir());
    jv out = shell_ok(test_json(extra), &a.info);
    CHECK_STR(get_str(out, "stdout"), "tool ran x\n");
    jv_free(out);
}

TEST(shell_cwd_sets_directory) {
    attempt a;
    attempt_init(&a, 0);
    char extra[400], want[PATH_MAX + 2];
    snprintf(extra, sizeof extra, "{'cwd': '%s'}", test_tmpdir());
    CHECK(realpath(test_tmpdir(), want) != NULL);
    strcat(want, "\n");
    jv out = shell_ok(with_run("pwd -P", extra), &a.info);
    CHECK_STR(get_str(out, "stdout"), want);
    jv_free(out);
}

TEST(shell_stdin_is_fed_or_dev_null) {
    attempt a;
    attempt_init(&a, 0);
    jv out = shell_ok(with_run("tr a-z A-Z", "{'stdin': 'hello\\nworld'}"), &a.info);
    CHECK_STR(get_str(out, "stdout"), "HELLO\nWORLD");
    jv_free(out);
    /* No stdin: /dev/null, so cat ends at once instead of waiting. */
    out = shell_ok(with_run("cat; echo end", NULL), &a.info);
    CHECK_STR(get_str(out, "stdout"), "end\n");
    jv_free(out);
}

TEST(shell_large_stdin_and_output_flow_together) {
    attempt a;
    attempt_init(&a, cairn_now_ms() + 60000);
    size_t n = 4 * 1024 * 1024;        /* far beyond any pipe buffer, both ways */
    char *big = malloc(n);
    memset(big, 'x', n);
    jv w = jv_object_set(jv_object(), jv_string("stdin"), jv_string_sized(big, (int)n));
    jv out = shell_ok(jv_object_set(w, jv_string("run"), jv_string("tee /dev/stderr | wc -c")),
                      &a.info);
    CHECK_STR(get_str(out, "stdout"), "4194304\n");
    CHECK_INT(get_num(out, "stderr_bytes"), n);
    CHECK_INT(get_bool(out, "stderr_truncated"), 1);
    free(big);
    jv_free(out);
}

TEST(shell_child_ignoring_stdin_is_fine) {
    attempt a;
    attempt_init(&a, cairn_now_ms() + 60000);
    size_t n = 1024 * 1024;
    char *big = malloc(n);
    memset(big, 'y', n);
    jv w = jv_object_set(jv_object(), jv_string("stdin"), jv_string_sized(big, (int)n));
    /* Our write gets EPIPE; SIGPIPE must not kill this process. */
    jv out = shell_ok(jv_object_set(w, jv_string("run"), jv_string("echo early")), &a.info);
    CHECK_STR(get_str(out, "stdout"), "early\n");
    free(big);
    jv_free(out);
}

TEST(shell_ok_codes_accept_listed_exit) {
    attempt a;
    attempt_init(&a, 0);
    jv out = shell_ok(with_run("exit 3", "{'ok_codes': [0, 3]}"), &a.info);
    CHECK_INT(get_num(out, "exit_code"), 3);
    jv_free(out);
    expect_fail(with_run("exit 0", "{'ok_codes': [3]}"), "exit", "exit code 0");
}

TEST(shell_nonzero_exit_fails_with_stderr_tail) {
    expect_fail(with_run("echo 'first line' >&2; echo 'disk is full' >&2; exit 2", NULL), "exit",
                "exit code 2: first line\ndisk is full");
    /* A long stderr: the message carries its end, marked as cut. */
    expect_fail(with_run("i=0; while [ $i -lt 200 ]; do echo line $i >&2; i=$((i+1)); done;"
                         " echo LAST >&2; exit 1", NULL), "exit", "...");
    expect_fail(with_run("i=0; while [ $i -lt 200 ]; do echo line $i >&2; i=$((i+1)); done;"
                         " echo LAST >&2; exit 1", NULL), "exit", "line 199\nLAST");
}

TEST(shell_failure_without_stderr_quotes_stdout) {
    expect_fail(with_run("echo 'nothing on stderr'; exit 4", NULL), "exit",
                "exit code 4 (stdout: nothing on stderr)");
    attempt a;
    attempt_init(&a, 0);
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    CHECK_INT(shell_run(with_run("exit 5", NULL), &a.info, &out, &f), -1);
    CHECK_STR(f.message, "exit code 5");
}

TEST(shell_killed_by_signal_fails_with_exit) {
    expect_fail(with_run("kill -KILL $$", NULL), "exit", "killed by signal 9 (SIGKILL)");
}

TEST(shell_invalid_utf8_is_replaced) {
    attempt a;
    attempt_init(&a, 0);
    jv out = shell_ok(with_run("printf 'a\\377b\\342\\202'", NULL), &a.info);
    CHECK_STR(get_str(out, "stdout"), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
    jv_free(out);
}

/* ---- limits and stopping ------------------------------------------------ */

TEST(shell_output_is_capped_and_child_not_blocked) {
    attempt a;
    attempt_init(&a, cairn_now_ms() + 60000);
    /* 3 MiB on stdout; "done" on stderr proves the writer got to its end. */
    jv out = shell_ok(with_run("head -c 3145728 /dev/zero | tr '\\0' a; echo done >&2", NULL),
                      &a.info);
    const char *s = get_str(out, "stdout");
    CHECK_INT(strlen(s), CAIRN_SHELL_OUTPUT_MAX);
    CHECK(s[0] == 'a' && s[CAIRN_SHELL_OUTPUT_MAX - 1] == 'a');
    CHECK_INT(get_bool(out, "stdout_truncated"), 1);
    CHECK_INT(get_num(out, "stdout_bytes"), 3145728);
    CHECK_INT(get_num(out, "output_cap_bytes"), CAIRN_SHELL_OUTPUT_MAX);
    CHECK_STR(get_str(out, "stderr"), "done\n");
    CHECK_INT(get_bool(out, "stderr_truncated"), 0);
    CHECK_INT(get_num(out, "exit_code"), 0);
    jv_free(out);
}

TEST(shell_timeout_kills_process_group) {
    become_subreaper();
    attempt a;
    /* The margin only has to cover starting sh and two echos. */
    attempt_init(&a, cairn_now_ms() + 1000);
    char script[800];
    const char *d = test_tmpdir();
    snprintf(script, sizeof script, "(sleep 100 & echo $! > %s/grandchild); echo $$ > %s/leader;"
             " sleep 100", d, d);
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    CHECK_INT(shell_run(with_run(script, NULL), &a.info, &out, &f), -1);
    CHECK_STR(f.kind, "timeout");
    char path[400];
    snprintf(path, sizeof path, "%s/leader", d);
    CHECK(is_gone(read_pid(path)));                 /* reaped by the action */
    snprintf(path, sizeof path, "%s/grandchild", d);
    CHECK_INT(reap_orphan(read_pid(path)), SIGTERM);
}

TEST(shell_deadline_already_passed_starts_nothing) {
    attempt a;
    attempt_init(&a, cairn_now_ms() - 1);
    char script[400];
    snprintf(script, sizeof script, "touch %s/ran", test_tmpdir());
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    CHECK_INT(shell_run(with_run(script, NULL), &a.info, &out, &f), -1);
    CHECK_STR(f.kind, "timeout");
    snprintf(script, sizeof script, "%s/ran", test_tmpdir());
    CHECK(access(script, F_OK) != 0);
}

typedef struct exec_arg {
    const cairn_action *action;
    void *job;
    const cairn_attempt_info *info;
} exec_arg;

static void *exec_thread(void *p) {
    exec_arg *e = p;
    e->action->execute(e->job, e->info);
    return NULL;
}

TEST(shell_stop_request_cancels_and_kills_group) {
    become_subreaper();
    attempt a;
    attempt_init(&a, 0);
    char fifo[300], script[800];
    snprintf(fifo, sizeof fifo, "%s/fifo", test_tmpdir());
    CHECK_INT(mkfifo(fifo, 0600), 0);
    snprintf(script, sizeof script, "(sleep 100 & echo $$ $! > %s); sleep 100", fifo);
    const cairn_action *sh = cairn_action_find("shell");
    exec_arg e = {sh, NULL, &a.info};
    cairn_fail f = {{0}, {0}};
    jv with = with_run(script, NULL);
    CHECK_INT(sh->prepare(with, &a.info, &e.job, &f), 0);
    jv_free(with);
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, exec_thread, &e), 0);
    FILE *fp = fopen(fifo, "r");       /* returns once the script opened it */
    long leader = 0, grandchild = 0;
    CHECK(fp != NULL);
    CHECK_INT(fscanf(fp, "%ld %ld", &leader, &grandchild), 2);
    fclose(fp);
    int64_t asked = cairn_now_ms();
    atomic_store(&a.stop.requested, 1);
    CHECK_INT(pthread_join(t, NULL), 0);
    /* Noticed within a poll slice; SIGTERM sufficed, so no kill grace. */
    CHECK(cairn_now_ms() - asked < CAIRN_SHELL_KILL_GRACE_MS);
    jv out = jv_invalid();
    CHECK_INT(sh->finish(e.job, &out, &f), -1);
    CHECK_STR(f.kind, "cancelled");
    CHECK(is_gone((pid_t)leader));
    CHECK_INT(reap_orphan((pid_t)grandchild), SIGTERM);
}

TEST(shell_background_child_does_not_hold_the_step) {
    become_subreaper();
    attempt a;
    attempt_init(&a, 0);               /* no deadline: only the drain rule ends it */
    char script[600], path[300];
    snprintf(path, sizeof path, "%s/bg", test_tmpdir());
    snprintf(script, sizeof script, "(sleep 100 & echo $! > %s); echo started", path);
    jv out = shell_ok(with_run(script, NULL), &a.info);
    CHECK_STR(get_str(out, "stdout"), "started\n");
    pid_t bg = read_pid(path);
    CHECK(!is_gone(bg));               /* still holds the pipes; we returned anyway */
    kill(bg, SIGKILL);
    CHECK_INT(reap_orphan(bg), SIGKILL);
    jv_free(out);
}

TEST(proc_term_ignoring_group_gets_sigkill) {
    become_subreaper();
    char script[800];
    const char *d = test_tmpdir();
    snprintf(script, sizeof script, "trap '' TERM; (sleep 100 & echo $! > %s/g); echo $$ > %s/l;"
             " sleep 100", d, d);
    char *argv[] = {"/bin/sh", "-c", script, NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    cairn_stop stop = {0};
    cairn_proc_spec spec = {
        .argv = argv, .envp = envp, .output_max = 1024, .stop = &stop,
        .deadline_ms = cairn_now_ms() + 1000, .kill_grace_ms = 100,
    };
    cairn_proc_result res;
    cairn_err err;
    CHECK_INT(cairn_proc_run(&spec, &res, &err), 0);
    CHECK_INT(res.outcome, CAIRN_PROC_TIMEOUT);
    CHECK(res.spawned);
    char path[400];
    snprintf(path, sizeof path, "%s/l", d);
    CHECK(is_gone(read_pid(path)));
    snprintf(path, sizeof path, "%s/g", d);
    CHECK_INT(reap_orphan(read_pid(path)), SIGKILL);
    cairn_proc_result_free(&res);
}

TEST(proc_capbuf_keeps_head_counts_all_and_keeps_tail) {
    cairn_capbuf b;
    cairn_capbuf_init(&b, 4);
    cairn_capbuf_append(&b, "ab", 2);
    cairn_capbuf_append(&b, "cdef", 4);
    cairn_capbuf_append(&b, "  \xC3\xA9 end \n", 10);
    CHECK_INT(b.head.len, 4);
    CHECK_STR(b.head.data, "abcd");
    CHECK_INT(b.total, 16);
    CHECK(cairn_capbuf_truncated(&b));
    char tail[64];
    cairn_capbuf_tail(&b, tail, sizeof tail);
    CHECK_STR(tail, "abcdef  \xC3\xA9 end");
    cairn_capbuf_tail(&b, tail, 8);    /* cut on a character boundary */
    CHECK_STR(tail, "abcdef ");
    cairn_capbuf_free(&b);
    /* A cap in the middle of a character drops the piece, adds no U+FFFD. */
    cairn_capbuf_init(&b, 2);
    cairn_capbuf_append(&b, "a\xC3\xA9", 3);
    jv s = cairn_capbuf_jv(&b);
    CHECK_STR(jv_string_value(s), "a");
    jv_free(s);
    cairn_capbuf_free(&b);
}

static void expect_repair(const char *in, size_t n, bool drop_cut, const char *want) {
    cairn_buf b = CAIRN_BUF_INIT;
    cairn_utf8_repair(&b, in, n, drop_cut);
    CHECK_STR(b.data ? b.data : "", want);
    cairn_buf_free(&b);
}

TEST(proc_utf8_repair_replaces_maximal_bad_pieces) {
    expect_repair("ok \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", 14, false,
                  "ok \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
    expect_repair("\xE2\x82X", 3, false, "\xEF\xBF\xBDX");              /* one piece */
    expect_repair("\xC0\x80", 2, false, "\xEF\xBF\xBD\xEF\xBF\xBD");     /* overlong */
    expect_repair("\xED\xA0\x80", 3, false,                                  /* surrogate */
                  "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    expect_repair("\xF4\x90\x80\x80", 4, false,                             /* > U+10FFFF */
                  "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    expect_repair("ab\xF0\x9F\x98", 5, false, "ab\xEF\xBF\xBD");
    expect_repair("ab\xF0\x9F\x98", 5, true, "ab");
    expect_repair("a\0b", 3, false, "a");  /* NUL kept (CHECK_STR sees up to it) */
}

/* ---- failures before and at the start ---------------------------------- */

TEST(shell_schema_errors) {
    expect_fail(test_json("{}"), "schema", "exactly one of run and argv");
    expect_fail(test_json("{'run': 'true', 'argv': ['true']}"), "schema", "exactly one of");
    expect_fail(test_json("{'run': 42}"), "schema", "run must be a string, not number");
    expect_fail(test_json("{'argv': 'ls -l'}"), "schema", "argv must be a non-empty list");
    expect_fail(test_json("{'argv': []}"), "schema", "argv must be a non-empty list");
    expect_fail(test_json("{'argv': ['echo', 5]}"), "schema", "argv[1] must be a string");
    expect_fail(test_json("{'argv': ['']}"), "schema", "argv[0] must not be empty");
    expect_fail(with_run("true", "{'ok_codes': ['0']}"), "schema", "ok_codes[0] must be an integer");
    expect_fail(with_run("true", "{'ok_codes': [0, 1.5]}"), "schema", "ok_codes[1] must be");
    expect_fail(with_run("true", "{'ok_codes': [256]}"), "schema", "from 0 to 255");
    expect_fail(with_run("true", "{'ok_codes': []}"), "schema", "ok_codes must be a non-empty");
    expect_fail(with_run("true", "{'ok_codes': 0}"), "schema", "ok_codes must be");
    expect_fail(with_run("true", "{'env': ['A=1']}"), "schema", "env must be a map");
    expect_fail(with_run("true", "{'env': {'A': {'x': 1}}}"), "schema", "env.A must be a string");
    expect_fail(with_run("true", "{'env': {'A=B': 'x'}}"), "schema", "not a valid variable name");
    expect_fail(with_run("true", "{'cwd': 7}"), "schema", "cwd must be a string");
    expect_fail(with_run("true", "{'stdin': [1]}"), "schema", "stdin must be a string");
    expect_fail(with_run("true", "{'timeout': '5s'}"), "schema", "unknown field 'timeout'");
    expect_fail(with_run("true", "{'shell': 'zsh'}"), "schema", "shell must be bash or sh, not 'zsh'");
    char *big = malloc(200001);
    memset(big, 'y', 200000);
    big[200000] = '\0';
    jv w = with_run("true", NULL);
    w = jv_object_set(w, jv_string("env"), jv_object_set(jv_object(), jv_string("CAIRN_V1"),
                                                         jv_string(big)));
    expect_fail(w, "size", "env CAIRN_V1 is 200010 bytes; the kernel takes less than 131072");
    free(big);
    expect_fail(test_json("{'argv': ['true'], 'shell': 'sh'}"), "schema", "shell goes with run");
    jv nul = jv_object_set(jv_object(), jv_string("run"), jv_string_sized("echo a\0b", 8));
    expect_fail(nul, "schema", "run must not contain a NUL byte");
}

TEST(shell_start_failures_are_exit) {
    expect_fail(test_json("{'argv': ['cairn-no-such-program']}"), "exit",
                "program 'cairn-no-such-program' not found in PATH");
    expect_fail(test_json("{'argv': ['/nonexistent/prog']}"), "exit", "cannot run '/nonexistent/prog'");
    expect_fail(with_run("true", "{'cwd': '/nonexistent-dir'}"), "exit", "cwd '/nonexistent-dir'");
}

TEST(shell_discard_frees_job) {
    attempt a;
    attempt_init(&a, 0);
    const cairn_action *sh = cairn_action_find("shell");
    void *job = NULL;
    cairn_fail f = {{0}, {0}};
    jv with = with_run("true", "{'stdin': 'x', 'cwd': '/'}");
    CHECK_INT(sh->prepare(with, &a.info, &job, &f), 0);
    jv_free(with);
    sh->discard(job);
}

/* ---- spliced values and the shell ---------------------------------------- */

/* Every hostile value prints as exactly itself in every quoting context, and
 * nothing of it runs, under bash and under sh. */
static void splice_matrix(bool bash) {
    attempt a;
    attempt_init(&a, 0);
    char *pwned = cairn_sprintf("%s/PWNED", test_tmpdir());
    for (int i = 0; i < sm_payload_count(); i++) {
        char *v = sm_payload(i, pwned), *want = sm_expected(v, bash);
        jv out = shell_ok(sm_render("shell", "run", sm_script(bash),
                                    bash ? "shell: bash" : "shell: sh", v), &a.info);
        CHECK_STR(get_str(out, "stdout"), want);
        if (access(pwned, F_OK) == 0) TEST_FAIL("payload %d ran: %s", i, v);
        jv_free(out);
        free(v);
        free(want);
    }
    free(pwned);
}

TEST(shell_spliced_values_stay_data_under_bash) { splice_matrix(true); }
TEST(shell_spliced_values_stay_data_under_sh) { splice_matrix(false); }

/* A value, a secret say, is in the script's environment, never on the
 * shell's command line (which any user of the host can read). */
TEST(shell_spliced_values_are_not_on_the_command_line) {
    attempt a;
    attempt_init(&a, 0);
    jv out = shell_ok(sm_render("shell", "run", "tr '\\000' ' ' </proc/$$/cmdline; echo; "
                                "printf '%s' \"${{ .inputs.x }}\"", "", "s3cr3t-value"),
                      &a.info);
    const char *got = get_str(out, "stdout"), *first = strstr(got, "s3cr3t-value");
    CHECK_CONTAINS(got, "pipefail -c");
    /* its one appearance is what printf printed, at the end: not on the command line */
    CHECK(first != NULL && strstr(first + 1, "s3cr3t-value") == NULL);
    CHECK_STR(first, "s3cr3t-value");
    jv_free(out);
}

/* Scripts run as bash -eo pipefail: a failing command fails the step, in a
 * pipeline too; sh runs with -e. */
TEST(shell_scripts_stop_at_the_first_failure) {
    expect_fail(with_run("false | cat; echo after", NULL), "exit", "exit code 1");
    expect_fail(with_run("false; echo after", "{'shell': 'sh'}"), "exit", "exit code 1");
    attempt a;
    attempt_init(&a, 0);
    jv out = shell_ok(with_run("test -n \"$BASH_VERSION\" && echo bash", NULL), &a.info);
    CHECK_STR(get_str(out, "stdout"), "bash\n");
    jv_free(out);
    out = shell_ok(with_run("echo \"${BASH_VERSION:-sh}\"", "{'shell': 'sh'}"), &a.info);
    CHECK_STR(get_str(out, "stdout"), "sh\n");
    jv_free(out);
}

/* Without bash in the step's PATH, sh runs the script; `shell: bash` then
 * fails instead. */
TEST(shell_without_bash_falls_back_to_sh) {
    attempt a;
    attempt_init(&a, 0);
    jv out = shell_ok(with_run("echo \"${BASH_VERSION:-sh}\"", "{'env': {'PATH': '/nonexistent'}}"),
                      &a.info);
    CHECK_STR(get_str(out, "stdout"), "sh\n");
    jv_free(out);
    expect_fail(with_run("true", "{'shell': 'bash', 'env': {'PATH': '/nonexistent'}}"), "exit",
                "bash is not in the step's PATH");
}
