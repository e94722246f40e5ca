/*
 * ssh.c - the `ssh` action: run a command on a host over SSH (libssh2) and
 * report its exit code and (capped) output.
 *
 * with: host, port (22), user, key_file (+ passphrase) or password (exactly
 * one), known_hosts (an OpenSSH file; required unless insecure_host_key:
 * true), command, env, stdin, ok_codes ([0]), detach, state_dir, timeout.
 * A field that is null counts as absent.
 *
 * Order of events, each step non-blocking and bounded by the deadline and
 * the stop flag (ssh_int.h): load known_hosts, resolve, TCP connect, SSH
 * handshake, check the host key (before ANY authentication: a host that is
 * unknown or whose key changed gets no credentials and runs nothing),
 * authenticate, run.  Host key rules follow OpenSSH: port 22 looks up
 * "host", another port "[host]:port"; hashed entries (|1|...) match; an
 * @revoked key is refused; @cert-authority lines, wildcard patterns and
 * lines libssh2 cannot parse are skipped.  Host key algorithms held in
 * known_hosts for the host are preferred in the key exchange.
 *
 * The script: sshd refuses most variables, so the workflow `env`, then
 * `with.env` (which holds the values spliced into `command`, CAIRN_V1, ...:
 * dsl/shlex.h), then CAIRN_IDEMPOTENCY_KEY, CAIRN_RUN_ID, CAIRN_STEP_ID and
 * CAIRN_ATTEMPT become `export NAME='value'` lines ahead of the command, and
 * the whole is wrapped in `{ }`, so that a script cut short is a syntax
 * error that runs nothing.  Names must be shell identifiers.  The script
 * never travels on a command line: the exec request is a fixed bootstrap,
 *
 *   if command -v bash >/dev/null 2>&1; then exec bash --noprofile --norc
 *   -eo pipefail -c 'eval "$(head -c N)"'; else exec /bin/sh -e -c ...; fi
 *
 * and the script's N bytes come first on the channel's stdin, `with.stdin`
 * after them.  So the remote login shell must be POSIX (sh, bash, dash, ksh,
 * zsh) with `head -c`, and no value or secret appears in the host's process
 * list.  With detach the script is the job's `cmd` file, run the same way.
 *
 * Output: exit_code, stdout, stderr (+ _truncated, _bytes), output_cap_bytes,
 * host, port, host_key_checked, host_key_fingerprint (OpenSSH's SHA256:...),
 * host_key_type; with insecure_host_key also `warning`; with detach
 * `detached`, `reattached`, `job_dir`.
 *
 * Failure kinds:
 *   schema     bad `with`
 *   connect    name not resolved, TCP connect failed, no login within
 *              CAIRN_SSH_LOGIN_TIMEOUT_MS, or the connection was lost (the
 *              server dropped it mid-command: the message says the command
 *              may still be running on the host)
 *   protocol   the peer broke the SSH protocol (not an SSH server, failed
 *              key exchange, malformed data, an exec request refused)
 *   auth       unreadable known_hosts, unknown host, changed or revoked host
 *              key (the message gives the server key's SHA-256 fingerprint),
 *              unusable key_file, credentials refused
 *   exit       non-ok exit code or killed by a signal (message ends with the
 *              tail of stderr); detach bookkeeping failing on the host
 *   crash      detach: the job was claimed by an earlier attempt but never
 *              started, or died without an exit code: it is not run again
 *   timeout    the step deadline or with.timeout passed
 *   cancelled  a stop was asked
 *
 * A stopped or timed-out attempt closes its channel and connection at once.
 * OpenSSH does not signal a command that has no terminal when its channel
 * closes: it sees EOF on stdin and gets SIGPIPE on its next write.  libssh2
 * 1.10 cannot tell a channel closed without an exit status from exit 0
 * (OpenSSH always sends one); a lost connection is detected.  libssh2 1.10
 * signs with RSA keys using ssh-rsa (SHA-1), which OpenSSH 8.8+ refuses
 * unless PubkeyAcceptedAlgorithms allows it; the failure message says so.
 *
 * Limits: CAIRN_SHELL_OUTPUT_MAX bytes kept of stdout and of stderr (the
 * rest is read and counted); CAIRN_SSH_KNOWN_HOSTS_MAX bytes of known_hosts; CAIRN_SSH_HOST_MAX and
 * CAIRN_SSH_USER_MAX; the rest in ssh_int.h.
 */
#include "actions/ssh_int.h"
#include "actions/with.h"
#include "common/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cairn_field_sig ssh_fields[] = {
    {"host", CAIRN_FIELD_STRING, CAIRN_FIELD_REQUIRED},
    {"port", CAIRN_FIELD_INTEGER, 0},
    {"user", CAIRN_FIELD_STRING, CAIRN_FIELD_REQUIRED},
    {"key_file", CAIRN_FIELD_STRING, 0},
    {"passphrase", CAIRN_FIELD_STRING, 0},
    {"password", CAIRN_FIELD_STRING, 0},
    {"known_hosts", CAIRN_FIELD_STRING, 0},
    {"insecure_host_key", CAIRN_FIELD_BOOL, 0},
    {"command", CAIRN_FIELD_STRING, CAIRN_FIELD_REQUIRED | CAIRN_FIELD_SHELL},
    {"env", CAIRN_FIELD_OBJECT, 0},
    {"stdin", CAIRN_FIELD_STRING, 0},
    {"ok_codes", CAIRN_FIELD_ARRAY, 0},
    {"detach", CAIRN_FIELD_BOOL, 0},
    {"state_dir", CAIRN_FIELD_STRING, 0},
    {"timeout", CAIRN_FIELD_DURATION, 0},
    {NULL, 0, 0},
};

/* The host key policy, when it is known at load (as read_host_key_policy
 * checks it when the step runs): known_hosts, or insecure_host_key: true,
 * and not both. */
static void ssh_check(cairn_wcheck *w) {
    jv insecure = cairn_wcheck_const(w, "insecure_host_key");
    bool hosts = cairn_wcheck_given(w, "known_hosts"), on = jv_get_kind(insecure) == JV_KIND_TRUE;
    if (!hosts && !cairn_wcheck_given(w, "insecure_host_key"))
        cairn_wcheck_error(w, "known_hosts", "ssh needs known_hosts (a file of trusted host keys), "
                           "or insecure_host_key: true");
    else if (!hosts && jv_get_kind(insecure) == JV_KIND_FALSE)
        cairn_wcheck_error(w, "known_hosts", "ssh needs known_hosts when insecure_host_key is false");
    else if (hosts && on)
        cairn_wcheck_error(w, "insecure_host_key", "give known_hosts or insecure_host_key: true, "
                           "not both");
    jv_free(insecure);
}

static const cairn_action_sig ssh_sig = {
    .name = "ssh", .fields = ssh_fields, .one_of = "key_file|password", .check = ssh_check};

/* ---- small helpers ------------------------------------------------------ */

int ssh__fail(ssh_job *j, const char *kind, const char *fmt, ...) {
    if (j->failed) return -1;
    j->failed = true;
    snprintf(j->fail.kind, sizeof j->fail.kind, "%s", kind);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->fail.message, sizeof j->fail.message, fmt, ap);
    va_end(ap);
    return -1;
}

void ssh__quote(cairn_buf *b, const char *s) {
    cairn_buf_putc(b, '\'');
    for (; *s; s++)
        if (*s == '\'') cairn_buf_puts(b, "'\\''");
        else cairn_buf_putc(b, *s);
    cairn_buf_putc(b, '\'');
}

static void free_secret(char *s) {
    if (s == NULL) return;
    explicit_bzero(s, strlen(s));
    free(s);
}

static void job_free(ssh_job *j) {
    if (j == NULL) return;
    free(j->host);
    free(j->user);
    free(j->key_file);
    free_secret(j->passphrase);
    free_secret(j->password);
    free(j->known_hosts);
    free(j->script);
    free(j->stdin_data);
    free(j->state_dir);
    free(j->job_dir);
    cairn_capbuf_free(&j->out);
    cairn_capbuf_free(&j->err);
    free(j);
}

/* with[name], or jv_invalid() when absent or null. */
/* A string with no NUL byte and at most max bytes (0: any), copied to *out.
 * Consumes v. */
static int c_string(jv v, const char *what, size_t max, char **out, cairn_fail *f) {
    return cairn_with_text(v, "ssh: ", what, max, out, f);
}

/* An optional string field: *out stays NULL when absent. */
static int opt_string(jv with, const char *name, size_t max, char **out, cairn_fail *f) {
    jv v = cairn_with_get(with, name);
    if (jv_is_valid(v)) return c_string(v, name, max, out, f);
    jv_free(v);
    return 0;
}

static bool has_control(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return true;
    return false;
}

static bool is_identifier(const char *s) {
    if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))) return false;
    for (s++; *s; s++)
        if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

/* ---- reading `with` ----------------------------------------------------- */

static int read_host(jv with, ssh_job *j, cairn_fail *f) {
    jv v = cairn_with_get(with, "host");
    if (!jv_is_valid(v)) {
        jv_free(v);
        return cairn_fail_set(f, "schema", "ssh: host is required");
    }
    if (c_string(v, "host", CAIRN_SSH_HOST_MAX, &j->host, f)) return -1;
    if (j->host[0] == '\0' || j->host[0] == '-' || has_control(j->host) ||
        strpbrk(j->host, " /\\@"))
        return cairn_fail_set(f, "schema", "ssh: host '%s' is not a host name or address",
                              j->host);
    return 0;
}

/* An integer from 1 to 65535, or its decimal text. */
static int read_port(jv with, ssh_job *j, cairn_fail *f) {
    jv v = cairn_with_get(with, "port");
    double d = -1;
    j->port = CAIRN_SSH_PORT_DEFAULT;
    if (jv_get_kind(v) == JV_KIND_NUMBER) d = jv_number_value(v);
    else if (jv_get_kind(v) == JV_KIND_STRING) {
        const char *s = jv_string_value(v);
        char *end = NULL;
        d = s[0] >= '0' && s[0] <= '9' ? strtod(s, &end) : -1;
        if (end && *end) d = -1;
    }
    int rc = 0;
    if (jv_is_valid(v) && !(d >= 1 && d <= 65535 && d == (double)(int)d))
        rc = cairn_fail_set(f, "schema", "ssh: port must be an integer from 1 to 65535");
    else if (jv_is_valid(v))
        j->port = (int)d;
    jv_free(v);
    return rc;
}

static int read_user(jv with, ssh_job *j, cairn_fail *f) {
    if (opt_string(with, "user", CAIRN_SSH_USER_MAX, &j->user, f)) return -1;
    if (j->user == NULL || j->user[0] == '\0' || has_control(j->user))
        return cairn_fail_set(f, "schema", "ssh: user must be a non-empty user name");
    return 0;
}

/* Exactly one of key_file (with an optional passphrase) and password. */
static int read_credentials(jv with, ssh_job *j, cairn_fail *f) {
    if (opt_string(with, "key_file", 0, &j->key_file, f) ||
        opt_string(with, "passphrase", 0, &j->passphrase, f) ||
        opt_string(with, "password", 0, &j->password, f))
        return -1;
    if ((j->key_file == NULL) == (j->password == NULL))
        return cairn_fail_set(f, "schema", "ssh needs exactly one of key_file and password");
    if (j->key_file && j->key_file[0] == '\0')
        return cairn_fail_set(f, "schema", "ssh: key_file must not be empty");
    if (j->passphrase && j->key_file == NULL)
        return cairn_fail_set(f, "schema", "ssh: passphrase goes with key_file");
    return 0;
}

static int read_host_key_policy(jv with, ssh_job *j, cairn_fail *f) {
    if (opt_string(with, "known_hosts", 0, &j->known_hosts, f) ||
        cairn_with_bool(with, "insecure_host_key", &j->insecure, f))
        return -1;
    if (j->insecure && j->known_hosts)
        return cairn_fail_set(f, "schema", "ssh: give known_hosts or insecure_host_key: true, "
                                           "not both");
    if (!j->insecure && (j->known_hosts == NULL || j->known_hosts[0] == '\0'))
        return cairn_fail_set(f, "schema", "ssh: known_hosts is required (a file of trusted "
                                           "host keys), unless insecure_host_key: true");
    return 0;
}

static int export_var(cairn_buf *b, const char *name, const char *value, cairn_fail *f) {
    if (!is_identifier(name))
        return cairn_fail_set(f, "schema", "ssh: env name '%.100s' is not a shell variable "
                                           "name (ssh exports env through the remote shell)",
                              name);
    cairn_buf_printf(b, "export %s=", name);
    ssh__quote(b, value);
    cairn_buf_putc(b, '\n');
    return 0;
}

static int export_with_env(jv with, cairn_buf *b, cairn_fail *f) {
    jv env = cairn_with_get(with, "env");
    int rc = 0;
    if (jv_is_valid(env) && jv_get_kind(env) != JV_KIND_OBJECT)
        rc = cairn_fail_set(f, "schema", "ssh: env must be a map, not %s",
                            jv_kind_name(jv_get_kind(env)));
    else if (jv_is_valid(env)) {
        jv_object_foreach(env, name, value) {
            char what[CAIRN_FAIL_MSG_MAX / 4], *val = NULL;
            snprintf(what, sizeof what, "env.%s", jv_string_value(name));
            if (rc == 0 && (rc = cairn_with_scalar_text(jv_copy(value), "ssh: ", what, &val, f)) == 0)
                rc = export_var(b, jv_string_value(name), val, f);
            free(val);
            jv_free(name);
            jv_free(value);
        }
    }
    jv_free(env);
    return rc;
}

static int export_attempt(const cairn_attempt_info *info, cairn_buf *b, cairn_fail *f) {
    const char *names[] = {"CAIRN_IDEMPOTENCY_KEY", "CAIRN_RUN_ID", "CAIRN_STEP_ID"};
    const char *values[] = {info->idempotency_key, info->run_id, info->step_id};
    char attempt[16];
    for (int i = 0; i < 3; i++)
        if (values[i] && export_var(b, names[i], values[i], f)) return -1;
    snprintf(attempt, sizeof attempt, "%d", info->attempt);
    return export_var(b, "CAIRN_ATTEMPT", attempt, f);
}

/* The script: workflow env, with.env, the attempt variables, the command,
 * in braces. */
static int read_script(jv with, const cairn_attempt_info *info, ssh_job *j, cairn_fail *f) {
    cairn_buf b = CAIRN_BUF_INIT;
    char *cmd = NULL;
    int rc = opt_string(with, "command", 0, &cmd, f);
    if (rc == 0 && (cmd == NULL || cmd[0] == '\0'))
        rc = cairn_fail_set(f, "schema", "ssh: command must be a non-empty string");
    cairn_buf_puts(&b, "{\n");
    for (const char *const *e = info->env; rc == 0 && e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq == NULL) continue;
        char *name = cairn_strndup(*e, (size_t)(eq - *e));
        rc = export_var(&b, name, eq + 1, f);
        free(name);
    }
    if (rc == 0) rc = export_with_env(with, &b, f);
    if (rc == 0) rc = export_attempt(info, &b, f);
    if (rc == 0) cairn_buf_printf(&b, "%s\n}\n", cmd);
    free(cmd);
    if (rc == 0) j->script = cairn_buf_detach(&b);
    cairn_buf_free(&b);
    return rc;
}

static int read_detach(jv with, const cairn_attempt_info *info, ssh_job *j, cairn_fail *f) {
    if (cairn_with_bool(with, "detach", &j->detach, f) ||
        opt_string(with, "state_dir", 0, &j->state_dir, f))
        return -1;
    if (j->state_dir && !j->detach)
        return cairn_fail_set(f, "schema", "ssh: state_dir goes with detach: true");
    if (j->state_dir && (j->state_dir[0] == '\0' || has_control(j->state_dir)))
        return cairn_fail_set(f, "schema", "ssh: state_dir must be a directory path");
    if (j->detach && (info->idempotency_key == NULL || info->idempotency_key[0] == '\0'))
        return cairn_fail_set(f, "schema", "ssh: detach needs the step's idempotency key");
    return 0;
}

/* ---- the three phases --------------------------------------------------- */

static int ssh_prepare(jv with, const cairn_attempt_info *info, void **job, cairn_fail *f) {
    if (jv_get_kind(with) != JV_KIND_OBJECT)
        return cairn_fail_set(f, "schema", "ssh: with must be a map");
    ssh_job *j = cairn_calloc(1, sizeof *j);
    if (cairn_with_keys(with, &ssh_sig, f) || read_host(with, j, f) || read_port(with, j, f) ||
        read_user(with, j, f) || read_credentials(with, j, f) ||
        read_host_key_policy(with, j, f) || read_detach(with, info, j, f) ||
        read_script(with, info, j, f) ||
        cairn_with_stdin(with, &j->stdin_data, &j->stdin_len, "ssh: ", f) ||
        cairn_with_ok_codes(with, j->ok, "ssh: ", f) ||
        cairn_with_duration(with, "timeout", &j->timeout_ms, f)) {
        job_free(j);
        return -1;
    }
    cairn_capbuf_init(&j->out, CAIRN_SHELL_OUTPUT_MAX);
    cairn_capbuf_init(&j->err, CAIRN_SHELL_OUTPUT_MAX);
    *job = j;
    return 0;
}

/* The exec request that reads the script's len bytes from stdin and runs
 * it (the header says why). */
static char *bootstrap(size_t len) {
    return cairn_sprintf("if command -v bash >/dev/null 2>&1; then exec bash --noprofile "
                         "--norc -eo pipefail -c 'eval \"$(head -c %zu)\"'; else exec /bin/sh "
                         "-e -c 'eval \"$(head -c %zu)\"'; fi", len, len);
}

static void run_plain(ssh_conn *c, ssh_job *j) {
    ssh_run r;
    size_t slen = strlen(j->script);
    char *request = bootstrap(slen);
    cairn_buf in = CAIRN_BUF_INIT;
    cairn_buf_append(&in, j->script, slen);
    if (j->stdin_data) cairn_buf_append(&in, j->stdin_data, j->stdin_len);
    ssh__run_init(&r, CAIRN_SHELL_OUTPUT_MAX);
    int rc = ssh__exec(c, request, in.data, in.len, &r,
                       "running the command (it may still be running on the host)");
    free(request);
    cairn_buf_free(&in);
    if (rc == 0) {
        j->exit_code = r.exit_code;
        memcpy(j->signal, r.signal, sizeof j->signal);
    }
    cairn_capbuf_free(&j->out);        /* whatever arrived is kept, even on failure */
    cairn_capbuf_free(&j->err);
    j->out = r.out;
    j->err = r.err;
}

static void ssh_execute(void *job, const cairn_attempt_info *info) {
    ssh_job *j = job;
    ssh_conn c;
    if (ssh__open(&c, j, info) == 0) {
        if (j->detach) ssh__detach(&c, info);
        else run_plain(&c, j);
    }
    ssh__close(&c);
}

static jv ssh_output(const ssh_job *j) {
    jv out = jv_object_set(jv_object(), jv_string("exit_code"), jv_number(j->exit_code));
    out = cairn_capbuf_add_output(out, "stdout", &j->out);
    out = cairn_capbuf_add_output(out, "stderr", &j->err);
    out = jv_object_set(out, jv_string("output_cap_bytes"), jv_number(j->out.cap));
    out = jv_object_set(out, jv_string("host"), jv_string(j->host));
    out = jv_object_set(out, jv_string("port"), jv_number(j->port));
    out = jv_object_set(out, jv_string("host_key_checked"), jv_bool(!j->insecure));
    out = jv_object_set(out, jv_string("host_key_fingerprint"), jv_string(j->fingerprint));
    out = jv_object_set(out, jv_string("host_key_type"), jv_string(j->key_type));
    if (j->insecure)
        out = jv_object_set(out, jv_string("warning"),
                            jv_string("host key NOT checked (insecure_host_key: true): the "
                                      "connection may have gone to an impostor"));
    if (j->detach) {
        out = jv_object_set(out, jv_string("detached"), jv_true());
        out = jv_object_set(out, jv_string("reattached"), jv_bool(j->reattached));
        out = jv_object_set(out, jv_string("job_dir"), jv_string(j->job_dir ? j->job_dir : ""));
    }
    return out;
}

/* The end of stderr for a failure message, or of stdout when stderr is
 * empty (a failed step keeps no output: this is all that survives). */
static void failure_detail(const ssh_job *j, char *out, size_t outlen) {
    char tail[CAIRN_OUTPUT_TAIL_MAX + 8];
    cairn_capbuf_tail(&j->err, tail, sizeof tail);
    if (tail[0]) {
        snprintf(out, outlen, ": %s", tail);
        return;
    }
    cairn_capbuf_tail(&j->out, tail, sizeof tail);
    snprintf(out, outlen, tail[0] ? " (stdout: %s)" : "%s", tail);
}

static int ssh_finish(void *job, jv *output, cairn_fail *f) {
    ssh_job *j = job;
    char detail[CAIRN_OUTPUT_TAIL_MAX + 32];
    int rc = 0;
    failure_detail(j, detail, sizeof detail);
    if (j->failed)
        rc = cairn_fail_set(f, j->fail.kind, "%s", j->fail.message);
    else if (j->signal[0])
        rc = cairn_fail_set(f, "exit", "killed by signal SIG%s on %s%s", j->signal, j->host,
                            detail);
    else if (j->exit_code < 0 || j->exit_code >= CAIRN_EXIT_CODES || !j->ok[j->exit_code])
        rc = cairn_fail_set(f, "exit", "exit code %d on %s%s", j->exit_code, j->host, detail);
    else
        *output = ssh_output(j);
    job_free(j);
    return rc;
}

static void ssh_discard(void *job) { job_free(job); }

const cairn_action cairn_action_ssh = {
    .sig = &ssh_sig,
    .flags = 0,
    .prepare = ssh_prepare,
    .execute = ssh_execute,
    .finish = ssh_finish,
    .discard = ssh_discard,
};
