/*
 * ssh_detach.c - `detach: true`: the command runs on the host as a job that
 * outlives the connection and the engine, filed under the step's
 * idempotency key, so an attempt after a crash collects its result instead
 * of running it again.
 *
 * Layout on the host (umask 077; POSIX sh only):
 *
 *   <state_dir>/<sha256 hex of the idempotency key>/
 *       key               the idempotency key, for people
 *       1/ 2/ ...         one directory per run of the command:
 *           attempt       the attempt that claimed the run
 *           cmd           the script (ssh.c), run with bash -eo pipefail, or
 *                         sh -e where the host has no bash
 *           in            stdin, when given
 *           pid           the job's pid, written by the job itself (rename)
 *           out, err      its stdout and stderr
 *           rc            its exit code, written when it ends (rename)
 *           collected     an attempt read the result (or declared it lost)
 *
 * An attempt looks at the newest run:
 *
 *   none, or collected without rc      claim the next run (mkdir is the lock)
 *   rc, not collected                  collect it (reattached)
 *   rc, collected, exit code ok        collect it again: a success is never
 *                                      run twice (the engine may have died
 *                                      before recording it)
 *   rc, collected, exit code not ok    a retry: claim the next run
 *   pid alive                          wait for it, then collect (reattached)
 *   pid gone, no rc / never started    fail "crash" and mark it collected,
 *                                      so only a further attempt, after the
 *                                      failure is on record, runs it anew
 *
 * A new run is claimed, its files written, then launched with
 * `setsid nohup sh -c JOB`, detached from the session; the launcher returns
 * once the job has written its pid.  Waiting is one channel running a
 * remote loop that checks every 200 ms and prints a heartbeat byte: when
 * our side goes away (timeout, stop, crash) the loop dies on SIGPIPE and
 * the job keeps running.  A pid counts as alive only while its command line
 * still names the run directory, so a recycled pid is not mistaken for it.
 *
 * With retry.until, a succeeded run is collected again by every attempt:
 * poll with a plain (non-detached) step.  Nothing is deleted on the host:
 * the files (the command with its env, stdin, output) stay for inspection
 * and must be cleaned like logs; they may hold secrets the step was given.
 */
#include "actions/ssh_int.h"
#include "common/mem.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_WORD_MAX 16

/* ---- the remote scripts ------------------------------------------------- */

/* alive PID DIR: the process exists and its command line names DIR.
 * state: the run $n in $r as S="STATE n value". */
static const char sh_state[] =
    "alive() {\n"
    "  kill -0 \"$1\" 2>/dev/null || return 1\n"
    "  if [ -r \"/proc/$1/cmdline\" ]; then\n"
    "    a=$(tr '\\000' ' ' <\"/proc/$1/cmdline\" 2>/dev/null) || return 0\n"
    "  else a=$(ps -o args= -p \"$1\" 2>/dev/null) || return 0; fi\n"
    "  case $a in *\"$2\"*) return 0;; esac\n"
    "  return 1\n"
    "}\n"
    "state() {\n"
    "  if [ -f \"$r/rc\" ]; then S=\"DONE $n $(cat \"$r/rc\")\"; return; fi\n"
    "  if [ -f \"$r/pid\" ]; then\n"
    "    p=$(cat \"$r/pid\")\n"
    "    if alive \"$p\" \"$r\"; then S=\"RUNNING $n $p\"; return; fi\n"
    "    if [ -f \"$r/rc\" ]; then S=\"DONE $n $(cat \"$r/rc\")\"; return; fi\n"
    "    S=\"DEAD $n $p\"; return\n"
    "  fi\n"
    "  S=\"NOSTART $n -\"\n"
    "}\n";

/* Prints "STATE n value collected|- dir" for the newest run, or claims a
 * new one ("NEW n - - dir").  F=1 claims a new one regardless. */
static const char sh_probe[] =
    "mkdir -p \"$j\" || exit 90\n"
    "[ -f \"$j/key\" ] || printf '%s\\n' \"$K\" >\"$j/key\"\n"
    "n=0\n"
    "for e in \"$j\"/*; do x=${e##*/}\n"
    "  case $x in ''|*[!0-9]*) ;; *) [ \"$x\" -gt \"$n\" ] && n=$x;; esac\n"
    "done\n"
    "if [ \"$n\" -gt 0 ] && [ \"$F\" = 0 ]; then\n"
    "  r=\"$j/$n\"; state; c=-\n"
    "  [ -f \"$r/collected\" ] && c=collected\n"
    "  case $S in DONE*) ;; *) [ $c = collected ] && S=;; esac\n"
    "  if [ -n \"$S\" ]; then echo \"$S $c $r\"; exit 0; fi\n"
    "fi\n"
    "n=$((n + 1)); r=\"$j/$n\"\n"
    "mkdir \"$r\" || exit 91\n"
    "echo \"$A\" >\"$r/attempt\"\n"
    "echo \"NEW $n - - $r\"\n";

/* The job itself: $1 is the run directory. */
static const char sh_job[] =
    "r=$1\n"
    "echo $$ >\"$r/pid.tmp\" && mv -f \"$r/pid.tmp\" \"$r/pid\" || exit 125\n"
    "echo $$\n"
    "exec </dev/null >/dev/null 2>&1\n"
    "i=/dev/null\n"
    "[ -f \"$r/in\" ] && i=\"$r/in\"\n"
    "if command -v bash >/dev/null 2>&1; then\n"
    "  bash --noprofile --norc -eo pipefail \"$r/cmd\" <\"$i\" >\"$r/out\" 2>\"$r/err\"\n"
    "else /bin/sh -e \"$r/cmd\" <\"$i\" >\"$r/out\" 2>\"$r/err\"; fi\n"
    "echo $? >\"$r/rc.tmp\" && mv -f \"$r/rc.tmp\" \"$r/rc\"\n";

/* Starts the job ($job) detached; prints "STARTED pid" once it runs. */
static const char sh_launch[] =
    "[ -f \"$r/cmd\" ] || { echo \"no command file in $r\" >&2; exit 92; }\n"
    "s=; command -v setsid >/dev/null 2>&1 && s=setsid\n"
    "p=$($s nohup /bin/sh -c \"$job\" cairn-job \"$r\" </dev/null 2>/dev/null &)\n"
    "[ -n \"$p\" ] || { echo \"the detached command did not start\" >&2; exit 93; }\n"
    "echo \"STARTED $p\"\n";

/* Waits while the run is RUNNING, with a heartbeat byte per check. */
static const char sh_wait[] =
    "while :; do\n"
    "  state\n"
    "  case $S in RUNNING*) ;; *) echo; echo \"$S - $r\"; exit 0;; esac\n"
    "  printf . || exit 1\n"
    "  sleep 0.2 2>/dev/null || sleep 1\n"
    "done\n";

/* ---- building and running scripts --------------------------------------- */

typedef struct run_state {
    char state[STATE_WORD_MAX];        /* NEW DONE RUNNING DEAD NOSTART */
    int n;
    char value[32];                    /* exit code, pid or "-" */
    bool collected;
    char *dir;                         /* owned */
} run_state;

static void key_hex(const char *key, char out[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(key, strlen(key), md, &len, EVP_sha256(), NULL);
    for (unsigned i = 0; i < len && i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* "~" and "~/..." mean the remote user's home. */
static void put_base(cairn_buf *b, const char *dir) {
    if (strcmp(dir, "~") == 0) cairn_buf_puts(b, "\"$HOME\"");
    else if (strncmp(dir, "~/", 2) == 0) {
        cairn_buf_puts(b, "\"$HOME\"/");
        ssh__quote(b, dir + 2);
    } else
        ssh__quote(b, dir);
}

static void put_var(cairn_buf *b, const char *name, const char *value) {
    cairn_buf_printf(b, "%s=", name);
    ssh__quote(b, value);
    cairn_buf_putc(b, '\n');
}

static char *probe_script(const ssh_job *j, const cairn_attempt_info *info, bool fresh) {
    cairn_buf b = CAIRN_BUF_INIT;
    char hex[65] = "", attempt[16];
    key_hex(info->idempotency_key, hex);
    snprintf(attempt, sizeof attempt, "%d", info->attempt);
    cairn_buf_puts(&b, "umask 077\nb=");
    put_base(&b, j->state_dir ? j->state_dir : CAIRN_SSH_STATE_DIR_DEFAULT);
    cairn_buf_printf(&b, "\nj=\"$b/%s\"\nF=%d\n", hex, fresh);
    put_var(&b, "K", info->idempotency_key);
    put_var(&b, "A", attempt);
    cairn_buf_puts(&b, sh_state);
    cairn_buf_puts(&b, sh_probe);
    return cairn_buf_detach(&b);
}

/* A script for the run in dir: r=dir, then body. */
static char *run_script(const char *dir, const char *body) {
    cairn_buf b = CAIRN_BUF_INIT;
    cairn_buf_puts(&b, "umask 077\n");
    put_var(&b, "r", dir);
    cairn_buf_puts(&b, body);
    return cairn_buf_detach(&b);
}

/* The last complete line of what the script printed. */
static void last_line(const cairn_capbuf *b, char *out, size_t outlen) {
    size_t end = b->tail_len;
    while (end && (b->tail[end - 1] == '\n' || b->tail[end - 1] == '\r')) end--;
    size_t start = end;
    while (start && b->tail[start - 1] != '\n') start--;
    snprintf(out, outlen, "%.*s", (int)(end - start), b->tail + start);
}

/* Run a bookkeeping script; 0 with its last line of output, or -1. */
static int script(ssh_conn *c, char *text, const char *in, size_t inlen, const char *what,
                  char *line, size_t linelen) {
    ssh_run r;
    char tail[CAIRN_OUTPUT_TAIL_MAX + 8];
    ssh__run_init(&r, CAIRN_SSH_SCRIPT_OUTPUT_MAX);
    int rc = ssh__exec(c, text, in, inlen, &r, what);
    if (rc == 0 && (r.exit_code != 0 || r.signal[0])) {
        cairn_capbuf_tail(&r.err, tail, sizeof tail);
        rc = ssh__fail(c->job, "exit", "detach: %s failed on %s (exit %d%s%s)%s%s", what,
                       c->where, r.exit_code, r.signal[0] ? ", signal " : "", r.signal,
                       tail[0] ? ": " : "", tail);
    }
    if (rc == 0 && line) last_line(&r.out, line, linelen);
    ssh__run_free(&r);
    free(text);
    return rc;
}

static int parse_state(ssh_conn *c, const char *line, run_state *st) {
    char flag[STATE_WORD_MAX];
    int pos = 0;
    free(st->dir);
    memset(st, 0, sizeof *st);
    if (sscanf(line, "%15s %d %31s %15s %n", st->state, &st->n, st->value, flag, &pos) < 4 ||
        pos == 0 || line[pos] == '\0')
        return ssh__fail(c->job, "protocol", "detach: unexpected answer from %s: '%.200s'",
                         c->where, line);
    st->collected = strcmp(flag, "collected") == 0;
    st->dir = cairn_strdup(line + pos);
    if (strcmp(st->state, "DONE") == 0 && strspn(st->value, "0123456789") != strlen(st->value))
        return ssh__fail(c->job, "protocol", "detach: the exit code file in %s on %s holds "
                                             "'%s'", st->dir, c->where, st->value);
    return 0;
}

/* ---- the steps ---------------------------------------------------------- */

static int probe(ssh_conn *c, const cairn_attempt_info *info, bool fresh, run_state *st) {
    char line[1024];
    if (script(c, probe_script(c->job, info, fresh), NULL, 0, "looking up the job directory",
               line, sizeof line))
        return -1;
    return parse_state(c, line, st);
}

static int write_file(ssh_conn *c, const char *dir, const char *name, const char *data,
                      size_t len) {
    char body[256], what[64];
    snprintf(body, sizeof body, "cat >\"$r/%s.tmp\" && mv -f \"$r/%s.tmp\" \"$r/%s\"\n", name,
             name, name);
    snprintf(what, sizeof what, "writing the job's %s file", name);
    return script(c, run_script(dir, body), data, len, what, NULL, 0);
}

static int launch(ssh_conn *c, const run_state *st) {
    cairn_buf body = CAIRN_BUF_INIT;
    char line[256];
    put_var(&body, "job", sh_job);
    cairn_buf_puts(&body, sh_launch);
    int rc = script(c, run_script(st->dir, body.data), NULL, 0, "starting the job", line,
                    sizeof line);
    cairn_buf_free(&body);
    if (rc == 0 && strncmp(line, "STARTED ", 8) != 0)
        rc = ssh__fail(c->job, "protocol", "detach: unexpected answer from %s: '%.200s'",
                       c->where, line);
    return rc;
}

static int wait_job(ssh_conn *c, run_state *st) {
    char doing[CAIRN_FAIL_MSG_MAX / 2], line[1024], n[16];
    cairn_buf body = CAIRN_BUF_INIT;
    snprintf(n, sizeof n, "%d", st->n);
    snprintf(doing, sizeof doing, "waiting for the detached command in %s (it keeps running "
                                  "on the host; an attempt with the same idempotency key "
                                  "reattaches to it)", st->dir);
    put_var(&body, "n", n);
    cairn_buf_puts(&body, sh_state);
    cairn_buf_puts(&body, sh_wait);
    int rc = script(c, run_script(st->dir, body.data), NULL, 0, doing, line, sizeof line);
    cairn_buf_free(&body);
    return rc ? rc : parse_state(c, line, st);
}

/* Read out and err, and mark the run collected by this attempt. */
static int fetch(ssh_conn *c, const run_state *st, const cairn_attempt_info *info) {
    ssh_job *j = c->job;
    ssh_run r;
    char body[128];
    snprintf(body, sizeof body, "cat \"$r/out\" && cat \"$r/err\" >&2 && "
                                "echo %d >\"$r/collected\"\n", info->attempt);
    char *text = run_script(st->dir, body);
    ssh__run_init(&r, CAIRN_SHELL_OUTPUT_MAX);
    int rc = ssh__exec(c, text, NULL, 0, &r, "reading the detached command's output");
    if (rc == 0 && r.exit_code != 0)
        rc = ssh__fail(j, "exit", "detach: cannot read the results in %s on %s (exit %d)",
                       st->dir, c->where, r.exit_code);
    free(text);
    cairn_capbuf_free(&j->out);
    cairn_capbuf_free(&j->err);
    j->out = r.out;
    j->err = r.err;
    j->exit_code = atoi(st->value);
    return rc;
}

/* The run is lost (never started, or died without an exit code). */
static int crashed(ssh_conn *c, const run_state *st, const cairn_attempt_info *info) {
    char body[128];
    snprintf(body, sizeof body, "echo '%d lost' >\"$r/collected\"\n", info->attempt);
    if (script(c, run_script(st->dir, body), NULL, 0, "marking the lost job", NULL, 0))
        return -1;
    if (strcmp(st->state, "NOSTART") == 0)
        return ssh__fail(c->job, "crash", "the detached command in %s on %s was claimed by an "
                                          "earlier attempt but never started (the engine "
                                          "stopped in between); this attempt does not run it, "
                                          "so it never runs twice; a further attempt starts it "
                                          "anew", st->dir, c->where);
    return ssh__fail(c->job, "crash", "the detached command in %s on %s died without an exit "
                                      "code (pid %s is gone: killed, or the host restarted?); "
                                      "this attempt does not run it again; a further attempt "
                                      "starts it anew", st->dir, c->where, st->value);
}

static int start_run(ssh_conn *c, run_state *st) {
    ssh_job *j = c->job;
    if (write_file(c, st->dir, "cmd", j->script, strlen(j->script)) ||
        (j->stdin_data && write_file(c, st->dir, "in", j->stdin_data, j->stdin_len)) ||
        launch(c, st))
        return -1;
    return wait_job(c, st);
}

static bool is(const run_state *st, const char *state) { return strcmp(st->state, state) == 0; }

static bool ok_code(const ssh_job *j, const char *value) {
    int code = atoi(value);
    return code >= 0 && code < CAIRN_EXIT_CODES && j->ok[code];
}

int ssh__detach(ssh_conn *c, const cairn_attempt_info *info) {
    ssh_job *j = c->job;
    run_state st = {0};
    int rc = probe(c, info, false, &st);
    if (rc == 0 && is(&st, "DONE") && st.collected && !ok_code(j, st.value))
        rc = probe(c, info, true, &st);           /* a reported failure: this is a retry */
    if (rc == 0) {
        j->job_dir = cairn_strdup(st.dir);
        j->reattached = !is(&st, "NEW");
        if (is(&st, "NEW")) rc = start_run(c, &st);
        else if (is(&st, "RUNNING")) rc = wait_job(c, &st);
    }
    if (rc == 0 && is(&st, "DONE")) rc = fetch(c, &st, info);
    else if (rc == 0) rc = crashed(c, &st, info);
    free(st.dir);
    return rc;
}
