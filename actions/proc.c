/*
 * proc.c - spawn a process group, pump its pipes, stop it on time.
 *
 * The supervisor is one poll() loop over our ends of the three pipes and,
 * where the kernel has it, a pidfd that turns readable when the leader exits
 * (without one, exit is noticed at the next CAIRN_PROC_POLL_SLICE_MS slice).
 * Exit is tested with waitid(WNOWAIT), so the leader stays a zombie, holding
 * its pid and group id, until every signal to the group has been sent.
 */
#include "actions/proc.h"
#include "actions/pgroup.h"
#include "actions/with.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROC_IO_CHUNK 65536            /* bytes moved per read() or write() */
#define PROC_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* ---- UTF-8 and the capped buffer ---------------------------------------- */

/* Length (1..4) of the valid UTF-8 sequence at s (n > 0 bytes left), or 0.
 * Then *bad is the length of the maximal invalid piece (one U+FFFD stands
 * for it, as Unicode recommends) and *cut tells whether that piece is a
 * valid start cut short by the end of the input. */
static int utf8_seq(const unsigned char *s, size_t n, size_t *bad, bool *cut) {
    unsigned c = s[0];
    int len;
    *bad = 1;
    *cut = false;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) len = 3;
    else if (c >= 0xF0 && c <= 0xF4) len = 4;
    else return 0;
    for (int i = 1; i < len; i++) {
        *bad = (size_t)i;
        if ((size_t)i >= n) {
            *cut = true;
            return 0;
        }
        unsigned lo = 0x80, hi = 0xBF;
        if (i == 1) {               /* no overlongs, surrogates or > U+10FFFF */
            if (c == 0xE0) lo = 0xA0;
            else if (c == 0xED) hi = 0x9F;
            else if (c == 0xF0) lo = 0x90;
            else if (c == 0xF4) hi = 0x8F;
        }
        if (s[i] < lo || s[i] > hi) return 0;
    }
    return len;
}

void cairn_utf8_repair(cairn_buf *b, const char *s, size_t n, bool drop_cut) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0, bad;        /* s[run..i) is valid and not yet copied */
    bool cut;
    while (i < n) {
        int len = utf8_seq(u + i, n - i, &bad, &cut);
        if (len > 0) {
            i += (size_t)len;
            continue;
        }
        cairn_buf_append(b, s + run, i - run);
        if (cut && drop_cut) return;
        cairn_buf_append(b, "\xEF\xBF\xBD", 3);
        run = i += bad;
    }
    cairn_buf_append(b, s + run, i - run);
}

void cairn_capbuf_init(cairn_capbuf *b, size_t cap) {
    memset(b, 0, sizeof *b);
    b->cap = cap;
}

static void tail_push(cairn_capbuf *b, const char *p, size_t n) {
    if (n >= CAIRN_OUTPUT_TAIL_MAX) {
        memcpy(b->tail, p + n - CAIRN_OUTPUT_TAIL_MAX, CAIRN_OUTPUT_TAIL_MAX);
        b->tail_len = CAIRN_OUTPUT_TAIL_MAX;
        return;
    }
    size_t over = b->tail_len + n > CAIRN_OUTPUT_TAIL_MAX
                      ? b->tail_len + n - CAIRN_OUTPUT_TAIL_MAX : 0;
    memmove(b->tail, b->tail + over, b->tail_len - over);
    b->tail_len -= over;
    memcpy(b->tail + b->tail_len, p, n);
    b->tail_len += n;
}

void cairn_capbuf_append(cairn_capbuf *b, const void *p, size_t n) {
    size_t room = b->total < b->cap ? b->cap - b->total : 0;
    if (room) cairn_buf_append(&b->head, p, n < room ? n : room);
    b->total += n;
    tail_push(b, p, n);
}

void cairn_capbuf_free(cairn_capbuf *b) {
    if (b == NULL) return;
    cairn_buf_free(&b->head);
}

jv cairn_capbuf_jv(const cairn_capbuf *b) {
    cairn_buf fixed = CAIRN_BUF_INIT;
    cairn_utf8_repair(&fixed, b->head.data ? b->head.data : "", b->head.len,
                      cairn_capbuf_truncated(b));
    jv s = jv_string_sized(fixed.data ? fixed.data : "", (int)fixed.len);
    cairn_buf_free(&fixed);
    return s;
}

jv cairn_capbuf_add_output(jv obj, const char *name, const cairn_capbuf *b) {
    char key[64];
    obj = jv_object_set(obj, jv_string(name), cairn_capbuf_jv(b));
    snprintf(key, sizeof key, "%s_truncated", name);
    obj = jv_object_set(obj, jv_string(key), jv_bool(cairn_capbuf_truncated(b)));
    snprintf(key, sizeof key, "%s_bytes", name);
    return jv_object_set(obj, jv_string(key), jv_number((double)b->total));
}

static bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

void cairn_capbuf_tail(const cairn_capbuf *b, char *out, size_t outlen) {
    const char *s = b->tail;
    size_t n = b->tail_len;
    bool cut = b->total > b->tail_len;
    for (int i = 0; cut && i < 3 && n && ((unsigned char)*s & 0xC0) == 0x80; i++)
        s++, n--;                      /* skip the rest of a sequence cut at the front */
    while (n && is_space(*s)) s++, n--;
    while (n && is_space(s[n - 1])) n--;
    cairn_buf fixed = CAIRN_BUF_INIT;
    if (n && cut) cairn_buf_puts(&fixed, "...");
    cairn_utf8_repair(&fixed, s, n, false);
    size_t k = fixed.len < outlen - 1 ? fixed.len : outlen - 1;
    while (k < fixed.len && k && ((unsigned char)fixed.data[k] & 0xC0) == 0x80) k--;
    if (k) memcpy(out, fixed.data, k);
    out[k] = '\0';
    cairn_buf_free(&fixed);
}

/* ---- before the spawn --------------------------------------------------- */

static const char *env_get(char *const *envp, const char *name) {
    size_t len = strlen(name);
    for (; envp && *envp; envp++)
        if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=') return *envp + len + 1;
    return NULL;
}

static bool is_program(const char *path, const char *cwd) {
    char *full = path[0] != '/' && cwd ? cairn_sprintf("%s/%s", cwd, path) : NULL;
    struct stat st;
    bool ok = stat(full ? full : path, &st) == 0 && S_ISREG(st.st_mode) &&
              access(full ? full : path, X_OK) == 0;
    free(full);
    return ok;
}

/* The program to exec: argv[0] itself when it holds a '/', else the first
 * match in the child's own PATH (not ours: `env: {PATH: ...}` must count). */
int cairn_proc_find(const char *name, char *const *envp, const char *cwd, char **out,
                    cairn_err *err) {
    if (strchr(name, '/')) {
        *out = cairn_strdup(name);
        return 0;
    }
    const char *path = env_get(envp, "PATH");
    if (path == NULL) path = PROC_DEFAULT_PATH;
    while (name[0] != '\0') {
        size_t len = strcspn(path, ":");
        char *cand = cairn_sprintf("%.*s%s%s", (int)len, path, len ? "/" : "", name);
        if (is_program(cand, cwd)) {
            *out = cand;
            return 0;
        }
        free(cand);
        if (path[len] == '\0') break;
        path += len + 1;
    }
    return cairn_err_set(err, CAIRN_ENOTFOUND, "program '%s' not found in PATH", name);
}

static int check_cwd(const char *cwd, cairn_err *err) {
    struct stat st;
    if (cwd == NULL) return 0;
    if (stat(cwd, &st) != 0)
        return cairn_err_set(err, CAIRN_ENOTFOUND, "cwd '%s': %s", cwd, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return cairn_err_set(err, CAIRN_ENOTFOUND, "cwd '%s': not a directory", cwd);
    return 0;
}

/* ---- the pipes ---------------------------------------------------------- */

typedef struct pump {
    int in, out, err, pidfd;           /* our ends; -1 when closed */
    const char *data;                  /* stdin still to write: data[off..len) */
    size_t len, off;
    cairn_capbuf *outb, *errb;
    bool epipe;                        /* a write raised (blocked) SIGPIPE */
} pump;

static void close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static void pump_close(pump *p) {
    close_fd(&p->in);
    close_fd(&p->out);
    close_fd(&p->err);
    close_fd(&p->pidfd);
}

/* One pipe: child end in child[slot], ours (non-blocking) in *ours. */
static int open_pipe(int child[3], int slot, int *ours, cairn_err *err) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return cairn_err_set(err, CAIRN_EIO, "pipe: %s", strerror(errno));
    int mine = slot == 0 ? fds[1] : fds[0];
    child[slot] = slot == 0 ? fds[0] : fds[1];
    fcntl(mine, F_SETFL, fcntl(mine, F_GETFL) | O_NONBLOCK);
    *ours = mine;
    return 0;
}

static int open_pipes(const cairn_proc_spec *spec, int child[3], pump *p, cairn_err *err) {
    int rc = 0;
    if (spec->stdin_data) rc = open_pipe(child, 0, &p->in, err);
    if (rc == 0) rc = open_pipe(child, 1, &p->out, err);
    if (rc == 0) rc = open_pipe(child, 2, &p->err, err);
    if (spec->stdin_data && p->len == 0) close_fd(&p->in);   /* empty: EOF at once */
    return rc;
}

static void pump_read(int *fd, cairn_capbuf *b) {
    char buf[PROC_IO_CHUNK];
    ssize_t n = read(*fd, buf, sizeof buf);
    if (n > 0) cairn_capbuf_append(b, buf, (size_t)n);
    else if (n == 0 || (errno != EAGAIN && errno != EINTR)) close_fd(fd);
}

static void pump_write(pump *p) {
    size_t left = p->len - p->off;
    ssize_t n = write(p->in, p->data + p->off, left < PROC_IO_CHUNK ? left : PROC_IO_CHUNK);
    if (n > 0) p->off += (size_t)n;
    else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        p->epipe |= errno == EPIPE;
        close_fd(&p->in);              /* the reader is gone: drop the rest */
    }
    if (p->off == p->len) close_fd(&p->in);
}

/* Wait up to timeout_ms for any pipe or the leader's exit; move what is ready. */
static void pump_once(pump *p, int timeout_ms) {
    struct pollfd fds[4] = {
        {p->in, POLLOUT, 0}, {p->out, POLLIN, 0}, {p->err, POLLIN, 0}, {p->pidfd, POLLIN, 0},
    };                                 /* poll() skips negative fds */
    if (poll(fds, 4, timeout_ms) <= 0) return;
    if (fds[0].revents) pump_write(p);
    if (fds[1].revents) pump_read(&p->out, p->outb);
    if (fds[2].revents) pump_read(&p->err, p->errb);
}

/* ---- the child ---------------------------------------------------------- */

/* What the child does between vfork and exec.  It shares our memory and
 * runs on this thread's stack while the thread waits, so it makes system
 * calls only, and hands a failure's errno back through *failed.  Signals
 * are blocked across the vfork (no handler of ours may run in the child);
 * the child resets them to their defaults before it unblocks them. */
static void __attribute__((noreturn))
child_exec(const cairn_proc_spec *spec, const char *path, const int child[3], pid_t parent,
           volatile int *failed) {
    sigset_t none;
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    int slot[3] = {child[0], child[1], child[2]};
    /* Die with the engine.  The kernel sends this when the thread that made
     * us exits, not the process: a pool worker, which lives until the engine
     * closes and never returns from execute while its child runs (pool.c). */
    if (setpgid(0, 0) != 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) goto fail;
    if (getppid() != parent) _exit(127);       /* the engine died before the prctl */
    if (slot[0] < 0 && (slot[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) goto fail;
    for (int fd = 0; fd < 3; fd++) {           /* dup2 onto itself keeps O_CLOEXEC: clear it */
        if (slot[fd] == fd ? fcntl(fd, F_SETFD, 0) != 0 : dup2(slot[fd], fd) != fd) goto fail;
    }
    if (spec->cwd && chdir(spec->cwd) != 0) goto fail;
    close_range(3, ~0U, 0);                    /* no engine fd leaks in (most are O_CLOEXEC) */
    for (int sig = 1; sig < NSIG; sig++) sigaction(sig, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(path, spec->argv, spec->envp);
fail:
    *failed = errno ? errno : EIO;
    _exit(127);
}

/* Start the child as the leader of a new process group; see child_exec. */
static int spawn(const cairn_proc_spec *spec, const char *path, const int child[3],
                 pid_t *pid, cairn_err *err) {
    sigset_t all, old;
    volatile int failed = 0;
    pid_t parent = getpid();
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pid_t p = vfork();
    if (p == 0) child_exec(spec, path, child, parent, &failed);
    int rc = p < 0 ? errno : failed;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (p > 0 && rc != 0)
        while (waitpid(p, NULL, 0) < 0 && errno == EINTR) {}
    if (rc == 0) {
        *pid = p;
        return 0;
    }
    return cairn_err_set(err, rc == ENOENT || rc == EACCES ? CAIRN_ENOTFOUND : CAIRN_EIO,
                         "cannot run '%s': %s", path, strerror(rc));
}

/* Tell the attempt the group exists, with its leader's start time. */
static void report_spawn(const cairn_proc_spec *spec, pid_t pid) {
    const cairn_attempt_info *info = spec->attempt;
    cairn_proc_stat ps;
    if (info == NULL || info->spawned == NULL || cairn_proc_stat_read(pid, &ps, NULL) != 0) return;
    info->spawned(info, pid, ps.start);
}

static bool leader_exited(pid_t pid) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

static int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    return -1;
#endif
}

/* How long the next poll may wait: a slice, cut short by the deadline or by
 * the end of the drain. */
static int wait_ms(int64_t now, int64_t deadline, int64_t until) {
    int64_t w = CAIRN_PROC_POLL_SLICE_MS;
    if (deadline && deadline - now < w) w = deadline - now;
    if (until && until - now < w) w = until - now;
    return w > 0 ? (int)w : 0;
}

/* Pump until the leader exits and its output is drained (returns EXITED, the
 * final status coming from the reap), or until a stop or the deadline.  A
 * leader still running CAIRN_PROC_REPORT_MS after the start is reported. */
static cairn_proc_outcome supervise(const cairn_proc_spec *spec, pump *p, pid_t pid) {
    int64_t drain_until = 0, report_at = cairn_now_ms() + CAIRN_PROC_REPORT_MS;
    for (;;) {
        int64_t now = cairn_now_ms();
        bool late = spec->deadline_ms && now >= spec->deadline_ms;
        bool stop = cairn_stop_requested(spec->stop);
        if (!drain_until && leader_exited(pid)) {
            drain_until = now + CAIRN_PROC_DRAIN_MS;
            close_fd(&p->in);
            close_fd(&p->pidfd);       /* readable for good now */
        }
        if (drain_until && ((p->out < 0 && p->err < 0) || now >= drain_until || late || stop))
            return CAIRN_PROC_EXITED;
        if (!drain_until && stop) return CAIRN_PROC_CANCELLED;
        if (!drain_until && late) return CAIRN_PROC_TIMEOUT;
        if (!drain_until && report_at && now >= report_at) {
            report_spawn(spec, pid);
            report_at = 0;
        }
        pump_once(p, wait_ms(now, spec->deadline_ms, drain_until ? drain_until : report_at));
    }
}

/* SIGTERM the group, keep reading while it dies (so a child flushing on
 * SIGTERM cannot block on a full pipe), then SIGKILL whatever is left. */
static void kill_group(const cairn_proc_spec *spec, pump *p, pid_t pid) {
    kill(-pid, SIGTERM);
    kill(-pid, SIGCONT);               /* a stopped process must run to die */
    int64_t until = cairn_now_ms() + spec->kill_grace_ms;
    for (int64_t now = cairn_now_ms(); now < until && !leader_exited(pid); now = cairn_now_ms())
        pump_once(p, wait_ms(now, 0, until));
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);                /* in case the leader left its group */
}

static void reap(pid_t pid, cairn_proc_result *res) {
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (res->outcome != CAIRN_PROC_EXITED) return;
    if (WIFSIGNALED(st)) {
        res->outcome = CAIRN_PROC_SIGNALED;
        res->term_signal = WTERMSIG(st);
    } else {
        res->exit_code = WEXITSTATUS(st);
    }
}

/* From a spawned child to a reaped one.  SIGPIPE is blocked meanwhile in this
 * thread, and one raised by writing stdin is taken off the pending set. */
static void run_child(const cairn_proc_spec *spec, pump *p, pid_t pid, cairn_proc_result *res) {
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    p->pidfd = open_pidfd(pid);
    res->spawned = true;
    res->pid = pid;
    res->outcome = supervise(spec, p, pid);
    if (res->outcome != CAIRN_PROC_EXITED) kill_group(spec, p, pid);
    reap(pid, res);
    if (p->epipe) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int cairn_proc_run(const cairn_proc_spec *spec, cairn_proc_result *res, cairn_err *err) {
    memset(res, 0, sizeof *res);
    cairn_capbuf_init(&res->out, spec->output_max);
    cairn_capbuf_init(&res->err, spec->output_max);
    if (cairn_stop_requested(spec->stop)) res->outcome = CAIRN_PROC_CANCELLED;
    else if (spec->deadline_ms && cairn_now_ms() >= spec->deadline_ms)
        res->outcome = CAIRN_PROC_TIMEOUT;
    if (res->outcome != CAIRN_PROC_EXITED) return 0;

    char *path = NULL;
    int child[3] = {-1, -1, -1};
    pid_t pid = 0;
    pump p = {-1, -1, -1, -1, spec->stdin_data, spec->stdin_len, 0, &res->out, &res->err, false};
    int rc = check_cwd(spec->cwd, err);
    if (rc == 0) rc = cairn_proc_find(spec->argv[0], spec->envp, spec->cwd, &path, err);
    if (rc == 0) rc = open_pipes(spec, child, &p, err);
    if (rc == 0) rc = spawn(spec, path, child, &pid, err);
    for (int i = 0; i < 3; i++) close_fd(&child[i]);
    if (rc == 0) run_child(spec, &p, pid, res);
    pump_close(&p);
    free(path);
    return rc;
}

void cairn_proc_result_free(cairn_proc_result *res) {
    if (res == NULL) return;
    cairn_capbuf_free(&res->out);
    cairn_capbuf_free(&res->err);
}

/* ---- `with` fields shell and ssh share ---------------------------------------- */

int cairn_with_ok_codes(jv with, bool ok[CAIRN_EXIT_CODES], const char *who, cairn_fail *f) {
    jv codes = cairn_with_get(with, "ok_codes");
    int n = jv_get_kind(codes) == JV_KIND_ARRAY ? jv_array_length(jv_copy(codes)) : 0, rc = 0;
    if (!jv_is_valid(codes))
        ok[0] = true;
    else if (n == 0)
        rc = cairn_fail_set(f, "schema", "%sok_codes must be a non-empty list of integers", who);
    for (int i = 0; i < n && rc == 0; i++) {
        jv c = jv_array_get(jv_copy(codes), i);
        double d = jv_get_kind(c) == JV_KIND_NUMBER ? jv_number_value(c) : -1;
        jv_free(c);
        if (!(d >= 0 && d < CAIRN_EXIT_CODES) || d != (double)(int)d)   /* NaN too */
            rc = cairn_fail_set(f, "schema", "%sok_codes[%d] must be an integer from 0 to %d",
                                who, i, CAIRN_EXIT_CODES - 1);
        else
            ok[(int)d] = true;
    }
    jv_free(codes);
    return rc;
}

int cairn_with_stdin(jv with, char **data, size_t *len, const char *who, cairn_fail *f) {
    jv in = cairn_with_get(with, "stdin");
    int rc = 0;
    if (jv_is_valid(in) && jv_get_kind(in) != JV_KIND_STRING)
        rc = cairn_fail_set(f, "schema", "%sstdin must be a string, not %s", who,
                            jv_kind_name(jv_get_kind(in)));
    else if (jv_is_valid(in)) {
        *len = (size_t)jv_string_length_bytes(jv_copy(in));
        *data = cairn_strndup(jv_string_value(in), *len);
    }
    jv_free(in);
    return rc;
}
