/*
 * The `ssh` action against a real OpenSSH server on 127.0.0.1, driven as
 * the engine drives it: prepare and finish on this thread, execute on this
 * thread or, where a stop or a kill must arrive meanwhile, another thread
 * or a forked child.
 *
 * Each test starts its own sshd (/usr/sbin/sshd -D, as root) with a config
 * file, host keys and authorized_keys in the test's temp dir, on a free
 * port; readiness is its PidFile appearing (written after it listens).  The
 * sshd dies with the test process (PR_SET_PDEATHSIG) and is also stopped
 * and reaped at exit, with the orphans that came back to the test as the
 * child subreaper.  Remote commands report through files: the server is
 * this machine, so the test reads them directly.
 */
#include "test.h"
#include "splice_matrix.h"
#include "actions/action.h"
#include "actions/proc.h"
#include "common/clock.h"
#include "dsl/workflow.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jv.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern const cairn_action cairn_action_ssh;

#define SSHD_READY_MS 10000
#define PASSWORD_USER "cairn-ssh-test"
#define PASSWORD "cairn-Test-pw-7"

enum { SSHD_RSA_SHA1 = 1 };            /* let libssh2's ssh-rsa signatures in */

typedef struct sshd {
    pid_t pid;
    int port;
} sshd;

static pid_t server_pid;               /* the sshd to stop at exit */

/* ---- files and processes ------------------------------------------------ */

static const char *tmp_path(const char *name) {
    static char bufs[8][PATH_MAX];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, PATH_MAX, "%s/%s", test_tmpdir(), name);
    return b;
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0) TEST_FAIL("command failed: %s", cmd);
}

static char *slurp(const char *path) {
    FILE *fp = fopen(path, "r");
    if (fp == NULL) return NULL;
    char *s = calloc(1, 1 << 16);
    size_t n = fread(s, 1, (1 << 16) - 1, fp);
    s[n] = '\0';
    fclose(fp);
    return s;
}

static void put_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    if (fp == NULL) TEST_FAIL("cannot write %s", path);
    fputs(text, fp);
    fclose(fp);
}

static int count_lines(const char *path) {
    char *s = slurp(path);
    int n = 0;
    for (char *p = s; p && *p; p++) n += *p == '\n';
    free(s);
    return n;
}

/* Wait for path to exist (a remote command's signal), at most 20 s. */
static void await_file(const char *path) {
    int64_t until = cairn_now_ms() + 20000;
    while (access(path, F_OK) != 0) {
        if (cairn_now_ms() > until) TEST_FAIL("%s never appeared", path);
        usleep(10000);
    }
}

static pid_t read_pid(const char *path) {
    char *s = slurp(path);
    if (s == NULL) TEST_FAIL("no pid file %s", path);
    pid_t pid = (pid_t)atol(s);
    free(s);
    return pid;
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- the server --------------------------------------------------------- */

static const char *key_path(const char *name) { return tmp_path(name); }

static void keygen(const char *name, const char *type, const char *passphrase) {
    sh("ssh-keygen -q -t %s %s -N '%s' -C %s -f %s", type,
       strcmp(type, "rsa") == 0 ? "-b 2048" : "", passphrase, name, key_path(name));
}

static void make_keys(void) {
    keygen("host_ed25519", "ed25519", "");
    keygen("host_rsa", "rsa", "");
    keygen("user_ed25519", "ed25519", "");
    keygen("user_rsa", "rsa", "");
    keygen("user_locked", "ed25519", "open sesame");
    sh("cat %s.pub %s.pub %s.pub > %s", key_path("user_ed25519"), key_path("user_rsa"),
       key_path("user_locked"), tmp_path("authorized_keys"));
}

/* The public key (type and base64) of key file name. */
static char *pubkey(const char *name) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s.pub", key_path(name));
    char *s = slurp(path);
    if (s == NULL) TEST_FAIL("no %s", path);
    char *sp = strchr(s, ' ');
    if (sp && (sp = strchr(sp + 1, ' '))) *sp = '\0';
    s[strcspn(s, "\n")] = '\0';
    return s;
}

/* A known_hosts file with one line per key: "<name> <type> <base64>". */
static const char *known_hosts(const char *file, const char *name, const char *key1,
                               const char *key2) {
    char text[8192] = "";
    const char *keys[] = {key1, key2};
    for (int i = 0; i < 2; i++) {
        if (keys[i] == NULL) continue;
        char *k = pubkey(keys[i]);
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s %s\n", name, k);
        free(k);
    }
    put_file(tmp_path(file), text);
    return tmp_path(file);
}

static const char *host_name(const sshd *d) {
    static char name[64];
    snprintf(name, sizeof name, "[127.0.0.1]:%d", d->port);
    return name;
}

static const char *good_known_hosts(const sshd *d) {
    return known_hosts("known_hosts", host_name(d), "host_ed25519", "host_rsa");
}

static void write_config(const sshd *d, int flags) {
    char cfg[4096];
    snprintf(cfg, sizeof cfg,
             "ListenAddress 127.0.0.1\nPort %d\nHostKey %s\nHostKey %s\nPidFile %s\n"
             "AuthorizedKeysFile %s\nStrictModes no\nUsePAM no\n"
             "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
             "KbdInteractiveAuthentication no\nLogLevel ERROR\n%s"
             "Match User " PASSWORD_USER "\n    PasswordAuthentication yes\n",
             d->port, key_path("host_ed25519"), key_path("host_rsa"), tmp_path("sshd.pid"),
             tmp_path("authorized_keys"),
             flags & SSHD_RSA_SHA1 ? "PubkeyAcceptedAlgorithms +ssh-rsa\n"
                                     "HostKeyAlgorithms +ssh-rsa\n" : "");
    put_file(tmp_path("sshd_config"), cfg);
}

/* At exit: stop the server, then reap what came back to us as the child
 * subreaper (its finished sessions, remote commands the test killed). */
static void sshd_stop(void) {
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
        server_pid = 0;
    }
    int64_t until = cairn_now_ms() + 5000;
    for (pid_t p; (p = waitpid(-1, NULL, WNOHANG)) >= 0 && cairn_now_ms() < until;)
        if (p == 0) usleep(10000);
}

/* 1 once the PidFile names the server, 0 when it exited (port taken). */
static int sshd_ready(sshd *d) {
    int64_t until = cairn_now_ms() + SSHD_READY_MS;
    while (cairn_now_ms() < until) {
        if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
            server_pid = 0;
            return 0;
        }
        char *s = slurp(tmp_path("sshd.pid"));
        int ok = s && atol(s) == d->pid;
        free(s);
        if (ok) return 1;
        usleep(5000);
    }
    TEST_FAIL("sshd did not start; log:\n%s", slurp(tmp_path("sshd.log")));
}

static void sshd_start(sshd *d, int flags) {
    if (access(key_path("host_ed25519"), F_OK) != 0) make_keys();
    mkdir("/run/sshd", 0755);
    CHECK_INT(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    for (int tries = 0; tries < 20; tries++) {
        d->port = free_port();
        write_config(d, flags);
        unlink(tmp_path("sshd.pid"));
        d->pid = fork();
        if (d->pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            int log = open(tmp_path("sshd.log"), O_WRONLY | O_CREAT | O_APPEND, 0600);
            dup2(log, 2);
            execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-e", "-f", tmp_path("sshd_config"),
                  NULL);
            _exit(127);
        }
        server_pid = d->pid;
        if (sshd_ready(d)) {
            atexit(sshd_stop);         /* one server per test */
            good_known_hosts(d);
            return;
        }
        char *log = slurp(tmp_path("sshd.log"));
        if (log == NULL || strstr(log, "Address already in use") == NULL)
            TEST_FAIL("sshd failed; log:\n%s", log ? log : "");
        free(log);
        unlink(tmp_path("sshd.log"));
    }
    TEST_FAIL("sshd could not get a port; log:\n%s", slurp(tmp_path("sshd.log")));
}

static void ensure_password_user(void) {
    sh("id -u " PASSWORD_USER " >/dev/null 2>&1 || useradd -m -s /bin/sh " PASSWORD_USER);
    sh("echo '" PASSWORD_USER ":" PASSWORD "' | chpasswd");
}

/* ---- driving the action ------------------------------------------------- */

typedef struct attempt {
    cairn_stop stop;
    const char *env[3];
    cairn_attempt_info info;
} attempt;

static void attempt_init(attempt *a, const char *key, int number) {
    memset(a, 0, sizeof *a);
    a->env[0] = "WF_ONLY=from workflow";
    a->info = (cairn_attempt_info){
        .run_id = "run-7", .step_id = "remediate", .idempotency_key = key,
        .attempt = number, .stop = &a->stop, .env = a->env,
    };
}

/* The usual `with`: root with the ed25519 key, checked host key. */
static jv base_with(const sshd *d, const char *command) {
    jv w = jv_object();
    w = jv_object_set(w, jv_string("host"), jv_string("127.0.0.1"));
    w = jv_object_set(w, jv_string("port"), jv_number(d->port));
    w = jv_object_set(w, jv_string("user"), jv_string("root"));
    w = jv_object_set(w, jv_string("key_file"), jv_string(key_path("user_ed25519")));
    w = jv_object_set(w, jv_string("known_hosts"), jv_string(tmp_path("known_hosts")));
    return jv_object_set(w, jv_string("command"), jv_string(command));
}

static jv set(jv w, const char *key, jv value) { return jv_object_set(w, jv_string(key), value); }
static jv del(jv w, const char *key) { return jv_object_delete(w, jv_string(key)); }

/* prepare + execute + finish.  1 when prepare refused (f set), else
 * finish's result. */
static int ssh_run(jv with, const cairn_attempt_info *info, jv *out, cairn_fail *f) {
    const cairn_action *a = &cairn_action_ssh;
    void *job = NULL;
    int rc = a->prepare(with, info, &job, f);
    jv_free(with);
    if (rc != 0) return 1;
    a->execute(job, info);
    return a->finish(job, out, f);
}

static jv ssh_ok(jv with, const cairn_attempt_info *info) {
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    if (ssh_run(with, info, &out, &f) != 0) TEST_FAIL("ssh failed: %s: %s", f.kind, f.message);
    return out;
}

static cairn_fail ssh_fails(jv with, const cairn_attempt_info *info) {
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    if (ssh_run(with, info, &out, &f) == 0) {
        jv_free(out);
        TEST_FAIL("ssh succeeded but should have failed");
    }
    return f;
}

static cairn_fail run_fails(jv with) {
    attempt a;
    attempt_init(&a, "run-7/remediate", 1);
    return ssh_fails(with, &a.info);
}

static jv run_ok(jv with) {
    attempt a;
    attempt_init(&a, "run-7/remediate", 1);
    return ssh_ok(with, &a.info);
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

/* OpenSSH's own SHA256 fingerprint of a public key file. */
static char *ssh_keygen_fingerprint(const char *name) {
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "ssh-keygen -l -E sha256 -f %s.pub | cut -d' ' -f2 > %s",
             key_path(name), tmp_path("fp"));
    sh("%s", cmd);
    char *s = slurp(tmp_path("fp"));
    s[strcspn(s, "\n")] = '\0';
    return s;
}

/* A command that touches a marker file: proves whether anything ran. */
static char *marker_command(void) {
    char *cmd = malloc(PATH_MAX + 32);
    snprintf(cmd, PATH_MAX + 32, "echo ran >> %s", tmp_path("marker"));
    return cmd;
}

/* ---- the contract ------------------------------------------------------- */

TEST(ssh_signature_marks_command_and_one_of) {
    const cairn_action_sig *sig = cairn_action_ssh.sig;
    CHECK_STR(sig->name, "ssh");
    CHECK_STR(sig->one_of, "key_file|password");
    int shell_flagged = 0;
    for (const cairn_field_sig *f = sig->fields; f->name; f++)
        if (strcmp(f->name, "command") == 0) shell_flagged = f->flags & CAIRN_FIELD_SHELL;
    CHECK(shell_flagged);
}

static const cairn_action_sig *lookup_ssh(const char *name) {
    return strcmp(name, "ssh") == 0 ? cairn_action_ssh.sig : NULL;
}

/* The number of load errors of a one-step workflow with this `with`. */
static int load_errors(const char *with, const char *needle) {
    char src[1024];
    snprintf(src, sizeof src, "cairn: 1\nname: t\nsteps:\n  - id: a\n    uses: ssh\n"
                              "    with: %s\n", with);
    cairn_workflow *wf = NULL;
    cairn_diags d = CAIRN_DIAGS_INIT;
    int rc = cairn_workflow_load("w.yaml", src, strlen(src), lookup_ssh, &wf, &d);
    int n = rc == 0 ? 0 : cairn_diags_count(&d);
    for (int i = 0; needle && i < d.count; i++)
        if (strstr(d.items[i].msg, needle)) needle = NULL;
    if (needle) TEST_FAIL("no load error mentions '%s'", needle);
    cairn_workflow_free(wf);
    cairn_diags_free(&d);
    return n;
}

TEST(ssh_static_with_is_checked_at_load) {
    CHECK_INT(load_errors("{host: h, user: u, key_file: k, known_hosts: kh, command: c}", NULL),
              0);
    CHECK(load_errors("{host: h, user: u, key_file: k, password: p, known_hosts: kh, "
                      "command: c}", "only one of") > 0);
    CHECK(load_errors("{host: h, user: u, known_hosts: kh, command: c}", "one of") > 0);
    CHECK(load_errors("{host: h, key_file: k, known_hosts: kh, command: c}", "'user'") > 0);
    CHECK(load_errors("{host: h, user: u, key_file: k, known_hosts: kh, command: c, "
                      "timeout: soon}", "duration") > 0);
}

TEST(ssh_bad_with_is_schema) {
    sshd d = {.port = 2222};
    put_file(tmp_path("known_hosts"), "");
    struct { jv with; const char *needle; } cases[] = {
        {set(base_with(&d, "true"), "password", jv_string("pw")), "exactly one of key_file"},
        {del(base_with(&d, "true"), "key_file"), "exactly one of key_file"},
        {del(base_with(&d, "true"), "known_hosts"), "known_hosts is required"},
        {set(base_with(&d, "true"), "insecure_host_key", jv_true()), "not both"},
        {set(base_with(&d, "true"), "port", jv_number(70000)), "port must be"},
        {set(base_with(&d, "true"), "bogus", jv_true()), "unknown field 'bogus'"},
        {set(base_with(&d, "true"), "env", jv_parse("{\"A-B\": \"x\"}")), "not a shell variable"},
        {set(base_with(&d, "true"), "ok_codes", jv_parse("[300]")), "ok_codes[0]"},
        {set(base_with(&d, "true"), "timeout", jv_string("soon")), "timeout must be"},
        {set(base_with(&d, "true"), "state_dir", jv_string("/tmp/x")), "goes with detach"},
        {set(base_with(&d, "true"), "host", jv_string("a b")), "not a host name"},
        {set(base_with(&d, ""), "port", jv_number(22)), "command must be"},
        {set(base_with(&d, "true"), "detach", jv_string("yes")), "detach must be true or false"},
        {set(base_with(&d, "true"), "stdin", jv_number(1)), "ssh: stdin must be a string"},
        {set(base_with(&d, "true"), "env", jv_parse("{\"A\": [1]}")),
         "ssh: env.A must be a string, number or boolean, not array"},
        {set(base_with(&d, "true"), "user", jv_string_sized("a\0b", 3)),
         "ssh: user must not contain a NUL byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cairn_fail f = run_fails(cases[i].with);
        CHECK_STR(f.kind, "schema");
        CHECK_CONTAINS(f.message, cases[i].needle);
    }
}

/* ---- authentication ----------------------------------------------------- */

TEST(ssh_ed25519_key_runs_command) {
    sshd d;
    sshd_start(&d, 0);
    jv out = run_ok(base_with(&d, "echo out; echo err >&2; printf 'no newline'"));
    CHECK_STR(get_str(out, "stdout"), "out\nno newline");
    CHECK_STR(get_str(out, "stderr"), "err\n");
    CHECK_INT(get_num(out, "exit_code"), 0);
    CHECK_STR(get_str(out, "host"), "127.0.0.1");
    CHECK_INT(get_bool(out, "host_key_checked"), 1);
    CHECK_STR(get_str(out, "host_key_type"), "ssh-ed25519");
    char *fp = ssh_keygen_fingerprint("host_ed25519");
    CHECK_STR(get_str(out, "host_key_fingerprint"), fp);
    CHECK_INT(get_num(out, "output_cap_bytes"), CAIRN_SHELL_OUTPUT_MAX);
    CHECK_INT(get_bool(out, "stdout_truncated"), 0);
    CHECK(!jv_object_has(jv_copy(out), jv_string("warning")));
    free(fp);
    jv_free(out);
}

TEST(ssh_rsa_key_auth) {
    sshd d;
    sshd_start(&d, SSHD_RSA_SHA1);
    jv out = run_ok(set(base_with(&d, "whoami"), "key_file", jv_string(key_path("user_rsa"))));
    CHECK_STR(get_str(out, "stdout"), "root\n");
    jv_free(out);
}

TEST(ssh_rsa_key_refused_by_modern_sshd_says_why) {
    sshd d;
    sshd_start(&d, 0);
    char *cmd = marker_command();
    cairn_fail f = run_fails(set(base_with(&d, cmd), "key_file", jv_string(key_path("user_rsa"))));
    CHECK_STR(f.kind, "auth");
    CHECK_CONTAINS(f.message, "PubkeyAcceptedAlgorithms +ssh-rsa");
    CHECK(access(tmp_path("marker"), F_OK) != 0);
    free(cmd);
}

TEST(ssh_key_with_passphrase) {
    sshd d;
    sshd_start(&d, 0);
    jv w = set(base_with(&d, "echo unlocked"), "key_file", jv_string(key_path("user_locked")));
    jv out = run_ok(set(jv_copy(w), "passphrase", jv_string("open sesame")));
    CHECK_STR(get_str(out, "stdout"), "unlocked\n");
    jv_free(out);
    cairn_fail f = run_fails(set(w, "passphrase", jv_string("wrong")));
    CHECK_STR(f.kind, "auth");
    CHECK_CONTAINS(f.message, "wrong passphrase");
}

TEST(ssh_unauthorized_key_is_auth) {
    sshd d;
    sshd_start(&d, 0);
    keygen("stranger", "ed25519", "");
    char *cmd = marker_command();
    cairn_fail f = run_fails(set(base_with(&d, cmd), "key_file", jv_string(key_path("stranger"))));
    CHECK_STR(f.kind, "auth");
    CHECK_CONTAINS(f.message, "refused key_file");
    CHECK(access(tmp_path("marker"), F_OK) != 0);
    f = run_fails(set(base_with(&d, cmd), "key_file", jv_string(key_path("missing"))));
    CHECK_STR(f.kind, "auth");
    CHECK_CONTAINS(f.message, "cannot read key_file");
    free(cmd);
}

TEST(ssh_password_auth) {
    ensure_password_user();
    sshd d;
    sshd_start(&d, 0);
    jv w = set(del(base_with(&d, "whoami"), "key_file"), "user", jv_string(PASSWORD_USER));
    jv out = run_ok(set(jv_copy(w), "password", jv_string(PASSWORD)));
    CHECK_STR(get_str(out, "stdout"), PASSWORD_USER "\n");
    jv_free(out);
    cairn_fail f = run_fails(set(w, "password", jv_string("not-it")));
    CHECK_STR(f.kind, "auth");
    CHECK_CONTAINS(f.message, "refused the password for user '" PASSWORD_USER "'");
    CHECK(strstr(f.message, "not-it") == NULL);
}

/* ---- host keys ---------------------------------------------------------- */

TEST(ssh_hashed_known_hosts_entry_passes) {
    sshd d;
    sshd_start(&d, 0);
    const char *kh = tmp_path("known_hosts");
    sh("ssh-keygen -q -H -f %s >/dev/null 2>&1", kh);
    char *text = slurp(kh);
    CHECK(strncmp(text, "|1|", 3) == 0);
    CHECK(strstr(text, "127.0.0.1") == NULL);
    free(text);
    jv out = run_ok(base_with(&d, "echo hashed"));
    CHECK_STR(get_str(out, "stdout"), "hashed\n");
    jv_free(out);
}

TEST(ssh_known_hosts_skips_lines_it_cannot_read) {
    sshd d;
    sshd_start(&d, 0);
    char *good = slurp(tmp_path("known_hosts")), text[8192];
    snprintf(text, sizeof text, "# comment\n\nnot a known_hosts line\n"
                                "@cert-authority *.example.org ssh-ed25519 AAAAC3Nz\n"
                                "[127.0.0.1]:%d ssh-frobnicate AAAAB3Nz\n%s", d.port, good);
    put_file(tmp_path("known_hosts"), text);
    jv out = run_ok(base_with(&d, "echo read"));
    CHECK_STR(get_str(out, "stdout"), "read\n");
    jv_free(out);
    free(good);
}

TEST(ssh_host_name_is_resolved) {
    sshd d;
    sshd_start(&d, 0);
    char name[64];
    snprintf(name, sizeof name, "[localhost]:%d", d.port);
    const char *kh = known_hosts("named_hosts", name, "host_ed25519", NULL);
    /* localhost may resolve to ::1 first, where nothing listens: the next
     * address is tried */
    jv w = set(set(base_with(&d, "echo by name"), "host", jv_string("localhost")),
               "known_hosts", jv_string(kh));
    jv out = run_ok(w);
    CHECK_STR(get_str(out, "stdout"), "by name\n");
    CHECK_STR(get_str(out, "host"), "localhost");
    jv_free(out);
}

TEST(ssh_unknown_host_is_auth_and_runs_nothing) {
    sshd d;
    sshd_start(&d, 0);
    char *cmd = marker_command(), *fp = ssh_keygen_fingerprint("host_ed25519");
    /* the right key, but filed under another name, and a plain entry that
     * (as in OpenSSH) does not cover a port other than 22 */
    const char *names[] = {"[127.0.0.2]:2222", "127.0.0.1"};
    for (int i = 0; i < 2; i++) {
        const char *kh = known_hosts("other_hosts", names[i], "host_ed25519", NULL);
        cairn_fail f = run_fails(set(base_with(&d, cmd), "known_hosts", jv_string(kh)));
        CHECK_STR(f.kind, "auth");
        CHECK_CONTAINS(f.message, "is not in known_hosts");
        CHECK_CONTAINS(f.message, fp);
        CHECK_CONTAINS(f.message, "nothing ran");
        CHECK(access(tmp_path("marker"), F_OK) != 0);
    }
    free(cmd);
    free(fp);
}

TEST(ssh_changed_host_key_is_auth_and_runs_nothing) {
    sshd d;
    sshd_start(&d, 0);
    keygen("impostor", "ed25519", "");
    char *cmd = marker_command(), *fp = ssh_keygen_fingerprint("host_ed25519");
    const char *kh = known_hosts("changed_hosts", host_name(&d), "impostor", NULL);
    cairn_fail f = run_fails(set(base_with(&d, cmd), "known_hosts", jv_string(kh)));
    CHECK_STR(f.kind, "auth");
    CHECK_CONTAINS(f.message, "CHANGED");
    CHECK_CONTAINS(f.message, fp);
    CHECK(access(tmp_path("marker"), F_OK) != 0);
    free(cmd);
    free(fp);
}

TEST(ssh_revoked_host_key_is_auth) {
    sshd d;
    sshd_start(&d, 0);
    char *k = pubkey("host_ed25519"), text[2048];
    snprintf(text, sizeof text, "@revoked * %s\n", k);
    FILE *fp = fopen(tmp_path("known_hosts"), "a");   /* beside the entry that matches */
    fputs(text, fp);
    fclose(fp);
    cairn_fail f = run_fails(base_with(&d, "true"));
    CHECK_STR(f.kind, "auth");
    CHECK_CONTAINS(f.message, "@revoked");
    free(k);
}

TEST(ssh_missing_known_hosts_file_is_auth) {
    sshd d;
    sshd_start(&d, 0);
    cairn_fail f = run_fails(set(base_with(&d, "true"), "known_hosts",
                                 jv_string(tmp_path("no_such_file"))));
    CHECK_STR(f.kind, "auth");
    CHECK_CONTAINS(f.message, "cannot read known_hosts");
}

TEST(ssh_rsa_only_known_hosts_prefers_rsa_host_key) {
    sshd d;
    sshd_start(&d, SSHD_RSA_SHA1);
    const char *kh = known_hosts("rsa_hosts", host_name(&d), "host_rsa", NULL);
    jv out = run_ok(set(base_with(&d, "true"), "known_hosts", jv_string(kh)));
    CHECK_STR(get_str(out, "host_key_type"), "ssh-rsa");
    jv_free(out);
}

TEST(ssh_rsa_only_known_hosts_against_modern_sshd_says_why) {
    sshd d;
    sshd_start(&d, 0);
    const char *kh = known_hosts("rsa_hosts", host_name(&d), "host_rsa", NULL);
    cairn_fail f = run_fails(set(base_with(&d, "true"), "known_hosts", jv_string(kh)));
    CHECK_STR(f.kind, "auth");
    CHECK_CONTAINS(f.message, "known_hosts has only ssh-rsa keys for it");
}

TEST(ssh_insecure_host_key_is_recorded) {
    sshd d;
    sshd_start(&d, 0);
    jv w = set(del(base_with(&d, "echo trusting"), "known_hosts"), "insecure_host_key", jv_true());
    jv out = run_ok(w);
    CHECK_STR(get_str(out, "stdout"), "trusting\n");
    CHECK_INT(get_bool(out, "host_key_checked"), 0);
    CHECK_CONTAINS(get_str(out, "warning"), "NOT checked");
    char *fp = ssh_keygen_fingerprint("host_ed25519");
    CHECK_STR(get_str(out, "host_key_fingerprint"), fp);
    free(fp);
    jv_free(out);
}

/* ---- the command -------------------------------------------------------- */

TEST(ssh_stdin_and_env_reach_the_command) {
    sshd d;
    sshd_start(&d, 0);
    jv w = base_with(&d, "printf '%s|%s|%s|%s|%s|' \"$GREETING\" \"$PORT\" \"$WF_ONLY\" "
                         "\"$CAIRN_IDEMPOTENCY_KEY\" \"$CAIRN_ATTEMPT\"; cat");
    w = set(w, "env", jv_parse("{\"GREETING\": \"it's $HOME; `id` \\\"q\\\"\", \"PORT\": 8080}"));
    w = set(w, "stdin", jv_string("line one\nline two\n"));
    jv out = run_ok(w);
    CHECK_STR(get_str(out, "stdout"),
              "it's $HOME; `id` \"q\"|8080|from workflow|run-7/remediate|1|line one\nline two\n");
    jv_free(out);
}

TEST(ssh_exit_codes_and_ok_codes) {
    sshd d;
    sshd_start(&d, 0);
    jv out = run_ok(set(base_with(&d, "echo partial; exit 3"), "ok_codes", jv_parse("[0, 3]")));
    CHECK_INT(get_num(out, "exit_code"), 3);
    jv_free(out);
    cairn_fail f = run_fails(base_with(&d, "echo 'disk full' >&2; exit 4"));
    CHECK_STR(f.kind, "exit");
    CHECK_CONTAINS(f.message, "exit code 4");
    CHECK_CONTAINS(f.message, "disk full");
    f = run_fails(base_with(&d, "kill -TERM $$"));
    CHECK_STR(f.kind, "exit");
    CHECK_CONTAINS(f.message, "SIGTERM");
}

TEST(ssh_output_is_capped_and_counted) {
    sshd d;
    sshd_start(&d, 0);
    char cmd[128];
    long total = CAIRN_SHELL_OUTPUT_MAX + 1000;
    snprintf(cmd, sizeof cmd, "head -c %ld /dev/zero | tr '\\000' x; echo small >&2", total);
    jv out = run_ok(base_with(&d, cmd));
    CHECK_INT(get_bool(out, "stdout_truncated"), 1);
    CHECK_INT(get_num(out, "stdout_bytes"), total);
    CHECK_INT(strlen(get_str(out, "stdout")), CAIRN_SHELL_OUTPUT_MAX);
    CHECK_STR(get_str(out, "stderr"), "small\n");
    CHECK_INT(get_bool(out, "stderr_truncated"), 0);
    jv_free(out);
}

TEST(ssh_timeout_closes_the_channel_promptly) {
    sshd d;
    sshd_start(&d, 0);
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "echo $$ > %s; exec sleep 60", tmp_path("remote.pid"));
    /* the deadline outlasts connecting, which can take a second on a
     * loaded machine, so that it is the running command that it stops */
    int64_t t0 = cairn_now_ms();
    cairn_fail f = run_fails(set(base_with(&d, cmd), "timeout", jv_string("3s")));
    int64_t took = cairn_now_ms() - t0;
    CHECK_STR(f.kind, "timeout");
    CHECK_CONTAINS(f.message, "deadline reached while running the command");
    CHECK(took >= 3000 && took < 5000);
    kill(read_pid(tmp_path("remote.pid")), SIGKILL);
}

TEST(ssh_step_deadline_applies) {
    sshd d;
    sshd_start(&d, 0);
    attempt a;
    attempt_init(&a, "run-7/remediate", 1);
    a.info.deadline_ms = cairn_now_ms() + 3000;   /* outlasts connecting */
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "echo $$ > %s; exec sleep 60", tmp_path("remote.pid"));
    cairn_fail f = ssh_fails(base_with(&d, cmd), &a.info);
    CHECK_STR(f.kind, "timeout");
    CHECK(cairn_now_ms() - a.info.deadline_ms < 1500);
    kill(read_pid(tmp_path("remote.pid")), SIGKILL);
}

typedef struct bg_run {
    const cairn_action *a;
    void *job;
    const cairn_attempt_info *info;
} bg_run;

static void *bg_execute(void *p) {
    bg_run *r = p;
    r->a->execute(r->job, r->info);
    return NULL;
}

TEST(ssh_stop_cancels_promptly) {
    sshd d;
    sshd_start(&d, 0);
    attempt a;
    attempt_init(&a, "run-7/remediate", 1);
    char cmd[2 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "echo $$ > %s; touch %s; exec sleep 60", tmp_path("remote.pid"),
             tmp_path("started"));
    bg_run r = {&cairn_action_ssh, NULL, &a.info};
    cairn_fail f = {{0}, {0}};
    jv with = base_with(&d, cmd), out = jv_invalid();
    CHECK_INT(r.a->prepare(with, &a.info, &r.job, &f), 0);
    jv_free(with);
    pthread_t t;
    pthread_create(&t, NULL, bg_execute, &r);
    await_file(tmp_path("started"));
    int64_t t0 = cairn_now_ms();
    atomic_store(&a.stop.requested, 1);
    pthread_join(t, NULL);
    CHECK(cairn_now_ms() - t0 < 1000);
    CHECK(r.a->finish(r.job, &out, &f) != 0);
    CHECK_STR(f.kind, "cancelled");
    kill(read_pid(tmp_path("remote.pid")), SIGKILL);
}

/* ---- misbehaving peers -------------------------------------------------- */

TEST(ssh_connection_refused_is_connect) {
    sshd d = {.port = free_port()};
    put_file(tmp_path("known_hosts"), "");
    cairn_fail f = run_fails(set(base_with(&d, "true"), "known_hosts",
                                 jv_string(tmp_path("known_hosts"))));
    CHECK_STR(f.kind, "connect");
    CHECK_CONTAINS(f.message, "Connection refused");
}

TEST(ssh_silent_server_times_out) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    CHECK(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    CHECK(listen(fd, 4) == 0);         /* the kernel accepts; nobody ever speaks */
    CHECK(getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
    sshd d = {.port = ntohs(addr.sin_port)};
    put_file(tmp_path("known_hosts"), "");
    int64_t t0 = cairn_now_ms();
    cairn_fail f = run_fails(set(base_with(&d, "true"), "timeout", jv_string("500ms")));
    CHECK_STR(f.kind, "timeout");
    CHECK_CONTAINS(f.message, "handshake");
    CHECK(cairn_now_ms() - t0 < 2000);
    close(fd);
}

TEST(ssh_not_an_ssh_server_fails_cleanly) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    CHECK(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    CHECK(listen(fd, 4) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
    pid_t pid = fork();
    if (pid == 0) {                    /* an HTTP server: answers and hangs up */
        int c = accept(fd, NULL, NULL);
        const char *reply = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n";
        if (write(c, reply, strlen(reply)) < 0) _exit(1);
        close(c);
        _exit(0);
    }
    close(fd);
    sshd d = {.port = ntohs(addr.sin_port)};
    put_file(tmp_path("known_hosts"), "");
    cairn_fail f = run_fails(base_with(&d, "true"));
    CHECK(strcmp(f.kind, "connect") == 0 || strcmp(f.kind, "protocol") == 0);
    CHECK_CONTAINS(f.message, "handshake");
    waitpid(pid, NULL, 0);
}

TEST(ssh_server_killed_mid_command_is_connect) {
    sshd d;
    sshd_start(&d, 0);
    attempt a;
    attempt_init(&a, "run-7/remediate", 1);
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "echo $PPID > %s; echo $$ > %s; touch %s; exec sleep 60",
             tmp_path("sshd_session.pid"), tmp_path("remote.pid"), tmp_path("started"));
    bg_run r = {&cairn_action_ssh, NULL, &a.info};
    cairn_fail f = {{0}, {0}};
    jv with = base_with(&d, cmd), out = jv_invalid();
    CHECK_INT(r.a->prepare(with, &a.info, &r.job, &f), 0);
    jv_free(with);
    pthread_t t;
    pthread_create(&t, NULL, bg_execute, &r);
    await_file(tmp_path("started"));
    CHECK_INT(kill(read_pid(tmp_path("sshd_session.pid")), SIGKILL), 0);
    pthread_join(t, NULL);             /* the harness alarm catches a hang */
    CHECK(r.a->finish(r.job, &out, &f) != 0);
    CHECK_STR(f.kind, "connect");
    CHECK_CONTAINS(f.message, "lost while running the command");
    kill(read_pid(tmp_path("remote.pid")), SIGKILL);
}

/* ---- spliced values ------------------------------------------------------ */

/* `command` with `${{ .inputs.x }}` splices, rendered over value, with d's
 * connection fields in place of the placeholders the loader needs. */
static jv spliced_with(const sshd *d, const char *command, const char *value) {
    jv w = sm_render("ssh", "command", command, "host: h, user: u, key_file: k, "
                     "known_hosts: kh", value);
    jv base = base_with(d, "true");
    jv_object_foreach(base, key, v) {
        if (strcmp(jv_string_value(key), "command") != 0) w = jv_object_set(w, key, v);
        else {
            jv_free(key);
            jv_free(v);
        }
    }
    jv_free(base);
    return w;
}

/* Every hostile value prints as exactly itself in every quoting context on
 * the host, and nothing of it runs there. */
TEST(ssh_spliced_values_stay_data) {
    sshd d;
    sshd_start(&d, 0);
    char *pwned = cairn_strdup(tmp_path("PWNED"));     /* tmp_path's buffer is reused */
    for (int i = 0; i < sm_payload_count(); i++) {
        char *v = sm_payload(i, pwned), *want = sm_expected(v, true);
        jv out = run_ok(spliced_with(&d, sm_script(true), v));
        CHECK_STR(get_str(out, "stdout"), want);
        if (access(pwned, F_OK) == 0) TEST_FAIL("payload %d ran on the host: %s", i, v);
        jv_free(out);
        free(v);
        free(want);
    }
    free(pwned);
}

/* Neither the script nor its values are on the host's command lines: the
 * exec request is a fixed bootstrap and the script arrives on stdin, ahead
 * of with.stdin, which the command still reads. */
TEST(ssh_spliced_values_are_not_on_the_command_line) {
    sshd d;
    sshd_start(&d, 0);
    jv w = spliced_with(&d, "tr '\\000' ' ' </proc/$$/cmdline; echo; tr '\\000' ' ' "
                        "</proc/$PPID/cmdline; echo; printf '%s|' \"${{ .inputs.x }}\"; cat",
                        "s3cr3t-value");
    jv out = run_ok(set(w, "stdin", jv_string("from stdin")));
    const char *got = get_str(out, "stdout");
    CHECK_CONTAINS(got, "pipefail -c eval \"$(head -c ");
    const char *tail = strstr(got, "s3cr3t-value|from stdin");
    CHECK(tail != NULL && tail == strstr(got, "s3cr3t-value"));   /* its only appearance */
    jv_free(out);
}

/* The command runs under bash -eo pipefail on the host: a failing command
 * fails the step, in a pipeline too. */
TEST(ssh_command_stops_at_the_first_failure) {
    sshd d;
    sshd_start(&d, 0);
    cairn_fail f = run_fails(base_with(&d, "false | cat; echo after"));
    CHECK_STR(f.kind, "exit");
    CHECK_CONTAINS(f.message, "exit code 1");
}

/* ---- detach ------------------------------------------------------------- */

static jv detach_with(const sshd *d, const char *command) {
    jv w = set(base_with(d, command), "detach", jv_true());
    return set(w, "state_dir", jv_string(tmp_path("jobs")));
}

TEST(ssh_detach_runs_once_and_collects) {
    sshd d;
    sshd_start(&d, 0);
    char cmd[PATH_MAX + 128];
    snprintf(cmd, sizeof cmd, "echo ran >> %s; cat; echo \"$TAG\" >&2; exit 5",
             tmp_path("marker"));
    jv w = set(detach_with(&d, cmd), "ok_codes", jv_parse("[5]"));
    w = set(set(w, "stdin", jv_string("from stdin\n")), "env", jv_parse("{\"TAG\": \"tagged\"}"));
    attempt a;
    attempt_init(&a, "run-9/remediate", 1);
    jv out = ssh_ok(jv_copy(w), &a.info);
    CHECK_STR(get_str(out, "stdout"), "from stdin\n");
    CHECK_STR(get_str(out, "stderr"), "tagged\n");
    CHECK_INT(get_num(out, "exit_code"), 5);
    CHECK_INT(get_bool(out, "detached"), 1);
    CHECK_INT(get_bool(out, "reattached"), 0);
    CHECK_CONTAINS(get_str(out, "job_dir"), tmp_path("jobs/"));
    jv_free(out);
    /* the same key again: the succeeded run is collected, not run again */
    attempt_init(&a, "run-9/remediate", 2);
    out = ssh_ok(w, &a.info);
    CHECK_STR(get_str(out, "stdout"), "from stdin\n");
    CHECK_INT(get_bool(out, "reattached"), 1);
    CHECK_INT(count_lines(tmp_path("marker")), 1);
    jv_free(out);
}

TEST(ssh_detach_reattaches_after_engine_crash) {
    sshd d;
    sshd_start(&d, 0);
    char cmd[4 * PATH_MAX];
    snprintf(cmd, sizeof cmd,
             "echo ran >> %s; touch %s; while [ ! -f %s ]; do sleep 0.05; done; "
             "echo finished; echo done-err >&2",
             tmp_path("marker"), tmp_path("started"), tmp_path("go"));
    jv w = detach_with(&d, cmd);
    pid_t engine = fork();
    if (engine == 0) {                 /* the engine: dies mid-wait */
        attempt a;
        attempt_init(&a, "run-crash/remediate", 1);
        jv out = ssh_ok(jv_copy(w), &a.info);
        jv_free(out);
        _exit(0);
    }
    await_file(tmp_path("started"));
    CHECK_INT(kill(engine, SIGKILL), 0);
    int st = 0;
    CHECK_INT(waitpid(engine, &st, 0), engine);
    CHECK(WIFSIGNALED(st));
    /* the job still runs: an attempt that times out says it keeps running.
     * The deadline must outlast the connection and the job lookup, which
     * take well under a second but more on a loaded machine. */
    attempt a;
    attempt_init(&a, "run-crash/remediate", 2);
    cairn_fail f = ssh_fails(set(jv_copy(w), "timeout", jv_string("3s")), &a.info);
    CHECK_STR(f.kind, "timeout");
    CHECK_CONTAINS(f.message, "keeps running on the host");
    put_file(tmp_path("go"), "");
    attempt_init(&a, "run-crash/remediate", 3);
    jv out = ssh_ok(w, &a.info);
    CHECK_STR(get_str(out, "stdout"), "finished\n");
    CHECK_STR(get_str(out, "stderr"), "done-err\n");
    CHECK_INT(get_bool(out, "reattached"), 1);
    CHECK_INT(count_lines(tmp_path("marker")), 1);
    jv_free(out);
}

TEST(ssh_detach_failed_run_is_run_again_by_a_retry) {
    sshd d;
    sshd_start(&d, 0);
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "echo ran >> %s; exit 1", tmp_path("marker"));
    jv w = detach_with(&d, cmd);
    attempt a;
    attempt_init(&a, "run-retry/remediate", 1);
    cairn_fail f = ssh_fails(jv_copy(w), &a.info);
    CHECK_STR(f.kind, "exit");
    attempt_init(&a, "run-retry/remediate", 2);
    f = ssh_fails(w, &a.info);
    CHECK_STR(f.kind, "exit");
    CHECK_INT(count_lines(tmp_path("marker")), 2);
}

/* The directory for key's run n, as the action names it. */
static const char *run_dir(const char *key, int n) {
    static char path[PATH_MAX];
    char cmd[PATH_MAX];
    snprintf(cmd, sizeof cmd, "printf '%%s' '%s' | sha256sum | cut -c1-64 > %s", key,
             tmp_path("hex"));
    sh("%s", cmd);
    char *hex = slurp(tmp_path("hex"));
    hex[strcspn(hex, "\n")] = '\0';
    snprintf(path, sizeof path, "%s/%s/%d", tmp_path("jobs"), hex, n);
    free(hex);
    return path;
}

TEST(ssh_detach_never_started_is_crash_then_runs_once) {
    sshd d;
    sshd_start(&d, 0);
    char *cmd = marker_command();
    sh("mkdir -p %s", run_dir("run-lost/remediate", 1));   /* claimed, then the engine died */
    jv w = detach_with(&d, cmd);
    attempt a;
    attempt_init(&a, "run-lost/remediate", 2);
    cairn_fail f = ssh_fails(jv_copy(w), &a.info);
    CHECK_STR(f.kind, "crash");
    CHECK_CONTAINS(f.message, "never started");
    CHECK(access(tmp_path("marker"), F_OK) != 0);
    attempt_init(&a, "run-lost/remediate", 3);                  /* after the failure is on record */
    jv out = ssh_ok(w, &a.info);
    CHECK_INT(get_bool(out, "reattached"), 0);
    CHECK_INT(count_lines(tmp_path("marker")), 1);
    jv_free(out);
    free(cmd);
}

TEST(ssh_detach_dead_job_is_crash) {
    sshd d;
    sshd_start(&d, 0);
    const char *dir = run_dir("run-dead/remediate", 1);
    pid_t gone = fork();
    if (gone == 0) _exit(0);
    waitpid(gone, NULL, 0);            /* a pid that no longer runs */
    sh("mkdir -p %s && echo %d > %s/pid && echo true > %s/cmd", dir, (int)gone, dir, dir);
    attempt a;
    attempt_init(&a, "run-dead/remediate", 2);
    cairn_fail f = ssh_fails(detach_with(&d, "true"), &a.info);
    CHECK_STR(f.kind, "crash");
    CHECK_CONTAINS(f.message, "died without an exit code");
}

TEST(ssh_detach_default_state_dir_is_in_home) {
    ensure_password_user();
    sshd d;
    sshd_start(&d, 0);
    jv w = set(del(base_with(&d, "echo home job"), "key_file"), "user", jv_string(PASSWORD_USER));
    w = set(set(w, "password", jv_string(PASSWORD)), "detach", jv_true());
    char key[64];
    snprintf(key, sizeof key, "run-%d/remediate", (int)getpid());
    attempt a;
    attempt_init(&a, key, 1);
    jv out = ssh_ok(w, &a.info);
    CHECK_STR(get_str(out, "stdout"), "home job\n");
    const char *dir = get_str(out, "job_dir");
    CHECK(strncmp(dir, "/home/" PASSWORD_USER "/.cairn/jobs/", 28) == 0);
    char rc[PATH_MAX];
    snprintf(rc, sizeof rc, "%s/rc", dir);
    CHECK(access(rc, F_OK) == 0);
    sh("rm -rf '%.*s'", (int)(strrchr(dir, '/') - dir), dir);
    jv_free(out);
}

/* A detached job's script carries its spliced values the same way. */
TEST(ssh_detach_spliced_values_stay_data) {
    sshd d;
    sshd_start(&d, 0);
    char *pwned = cairn_strdup(tmp_path("PWNED"));
    char *v = sm_payload(0, pwned), *want = sm_expected(v, true);
    jv w = spliced_with(&d, sm_script(true), v);
    w = set(set(w, "detach", jv_true()), "state_dir", jv_string(tmp_path("jobs")));
    attempt a;
    attempt_init(&a, "run-9/spliced", 1);
    jv out = ssh_ok(w, &a.info);
    CHECK_STR(get_str(out, "stdout"), want);
    CHECK(access(pwned, F_OK) != 0);
    jv_free(out);
    free(v);
    free(want);
    free(pwned);
}
