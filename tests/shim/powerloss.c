/*
 * powerloss.c - an LD_PRELOAD library that records what a process does to
 * the journal's files, for tests/integration/powerloss.py to rebuild them as
 * a power loss at any moment would leave them.
 *
 * Environment:
 *   CAIRN_PL_TRACE  the trace file (appended to; one line per operation)
 *   CAIRN_PL_DB     the journal's absolute path: every file whose absolute
 *                   path starts with it (PATH, PATH-wal, PATH-clog, PATH.key;
 *                   PATH-shm is SQLite's shared memory, rebuilt from PATH-wal,
 *                   and is left out) is traced
 *   CAIRN_PL_MARK   a file the workflow's steps append to (their side
 *                   effects): its writes are traced with their bytes, in
 *                   order with the journal's writes
 *   CAIRN_PL_SYNC_US  each sync of a traced file takes this much longer, as
 *                   on a slow disk: more is written while a sync is in flight
 * Without CAIRN_PL_TRACE nothing is recorded.
 *
 * Trace lines (pid first, so the engine and its steps can be told apart):
 *   PID O PATH TRUNC       opened (TRUNC 1 when O_TRUNC emptied it)
 *   PID W PATH OFF LEN HEX written (HEX the bytes, "z" when all zeros)
 *   PID S+ PATH ID         a sync of PATH began (covers what was written before)
 *   PID S- PATH ID         that sync returned
 *   PID T PATH LEN         truncated to LEN
 *   PID U PATH             unlinked
 *   PID R FROM TO          renamed
 *   PID M HEX              appended to the mark file
 * Each line goes out in one write to a file opened O_APPEND, under a lock,
 * after the call it records returned (a sync: before and after).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_FDS 4096

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char *fd_path[MAX_FDS];   /* traced descriptors: their file */
static int fd_mark[MAX_FDS];     /* descriptors of the mark file */
static int trace_fd = -1;
static long sync_ids;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_ftruncate)(int, off_t);
static int (*real_close)(int);
static int (*real_unlink)(const char *);
static int (*real_rename)(const char *, const char *);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);
static int (*real_fcntl)(int, int, ...);

__attribute__((constructor)) static void init(void) {
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
    real_close = dlsym(RTLD_NEXT, "close");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
    real_rename = dlsym(RTLD_NEXT, "rename");
    real_open = dlsym(RTLD_NEXT, "open");
    real_open64 = dlsym(RTLD_NEXT, "open64");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_dup2 = dlsym(RTLD_NEXT, "dup2");
    real_dup3 = dlsym(RTLD_NEXT, "dup3");
    real_fcntl = dlsym(RTLD_NEXT, "fcntl");
    const char *t = getenv("CAIRN_PL_TRACE");
    if (t && *t) trace_fd = real_open(t, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
}

/* The absolute form of path (relative to the working directory). */
static void absolute(const char *path, char out[2 * PATH_MAX]) {
    char cwd[PATH_MAX];
    if (path[0] == '/' || getcwd(cwd, sizeof cwd) == NULL) snprintf(out, 2 * PATH_MAX, "%s", path);
    else snprintf(out, 2 * PATH_MAX, "%s/%s", cwd, path);
}

static int traced_path(const char *abs) {
    const char *db = getenv("CAIRN_PL_DB");
    size_t n = db ? strlen(db) : 0;
    if (n == 0 || strncmp(abs, db, n) != 0) return 0;
    return strcmp(abs + n, "-shm") != 0;
}

static int mark_path(const char *path) {
    const char *m = getenv("CAIRN_PL_MARK");
    return m && *m && strcmp(path, m) == 0;
}

/* One line, built in pieces, written at once. */
typedef struct {
    char *p;
    size_t len, cap;
} line;

static void put(line *l, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(l->p + l->len, l->cap - l->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < l->cap - l->len) {
            l->len += (size_t)n;
            return;
        }
        l->cap = l->cap * 2 + (size_t)n + 64;
        l->p = realloc(l->p, l->cap);
        if (l->p == NULL) abort();
    }
}

static void put_hex(line *l, const unsigned char *b, size_t n) {
    size_t i = 0;
    while (i < n && b[i] == 0) i++;
    if (i == n) {
        put(l, "z");
        return;
    }
    if (l->cap - l->len < 2 * n + 2) {
        l->cap = l->len + 2 * n + 64;
        l->p = realloc(l->p, l->cap);
        if (l->p == NULL) abort();
    }
    static const char digits[] = "0123456789abcdef";
    for (i = 0; i < n; i++) {
        l->p[l->len++] = digits[b[i] >> 4];
        l->p[l->len++] = digits[b[i] & 15];
    }
    l->p[l->len] = '\0';
}

static void emit(line *l) {
    put(l, "\n");
    for (size_t at = 0; at < l->len;) {
        ssize_t w = real_write(trace_fd, l->p + at, l->len - at);
        if (w <= 0) break;
        at += (size_t)w;
    }
    free(l->p);
}

static line start(void) {
    line l = {malloc(256), 0, 256};
    if (l.p == NULL) abort();
    put(&l, "%d ", (int)getpid());
    return l;
}

static void opened(int fd, const char *path, int flags) {
    if (trace_fd < 0 || fd < 0 || fd >= MAX_FDS) return;
    char abs[2 * PATH_MAX];
    absolute(path, abs);
    pthread_mutex_lock(&mu);
    free(fd_path[fd]);
    fd_path[fd] = NULL;
    fd_mark[fd] = mark_path(path);
    if (traced_path(abs)) {
        fd_path[fd] = strdup(abs);
        line l = start();
        put(&l, "O %s %d", abs, (flags & O_TRUNC) ? 1 : 0);
        emit(&l);
    }
    pthread_mutex_unlock(&mu);
}

/* A shell's redirection: the new descriptor is the old one's file. */
static void duplicated(int from, int to) {
    if (trace_fd < 0 || from < 0 || from >= MAX_FDS || to < 0 || to >= MAX_FDS || from == to)
        return;
    pthread_mutex_lock(&mu);
    free(fd_path[to]);
    fd_path[to] = fd_path[from] ? strdup(fd_path[from]) : NULL;
    fd_mark[to] = fd_mark[from];
    pthread_mutex_unlock(&mu);
}

static void wrote(int fd, const void *buf, ssize_t n, off_t off) {
    if (trace_fd < 0 || fd < 0 || fd >= MAX_FDS || n <= 0) return;
    pthread_mutex_lock(&mu);
    if (fd_path[fd]) {
        line l = start();
        put(&l, "W %s %lld %lld ", fd_path[fd], (long long)off, (long long)n);
        put_hex(&l, buf, (size_t)n);
        emit(&l);
    } else if (fd_mark[fd]) {
        line l = start();
        put(&l, "M ");
        put_hex(&l, buf, (size_t)n);
        emit(&l);
    }
    pthread_mutex_unlock(&mu);
}

static int synced(int fd, int (*real)(int)) {
    if (trace_fd < 0 || fd < 0 || fd >= MAX_FDS || fd_path[fd] == NULL) return real(fd);
    pthread_mutex_lock(&mu);
    long id = ++sync_ids;
    char *path = strdup(fd_path[fd]);
    line l = start();
    put(&l, "S+ %s %ld", path, id);
    emit(&l);
    pthread_mutex_unlock(&mu);
    const char *slow = getenv("CAIRN_PL_SYNC_US");
    if (slow && atoi(slow) > 0) usleep((useconds_t)atoi(slow));
    int rc = real(fd);
    int saved = errno;
    pthread_mutex_lock(&mu);
    if (rc == 0) {
        l = start();
        put(&l, "S- %s %ld", path, id);
        emit(&l);
    }
    pthread_mutex_unlock(&mu);
    free(path);
    errno = saved;
    return rc;
}

static void path_op(const char *op, const char *a, const char *b) {
    if (trace_fd < 0) return;
    char abs_a[2 * PATH_MAX], abs_b[2 * PATH_MAX];
    absolute(a, abs_a);
    if (b) absolute(b, abs_b);
    if (!traced_path(abs_a) && !(b && traced_path(abs_b))) return;
    pthread_mutex_lock(&mu);
    line l = start();
    put(&l, "%s %s%s%s", op, abs_a, b ? " " : "", b ? abs_b : "");
    emit(&l);
    pthread_mutex_unlock(&mu);
}

/* ---- the calls ----------------------------------------------------------- */

#define MODE_ARG(flags, mode)                                                    \
    mode_t mode = 0;                                                             \
    if ((flags) & (O_CREAT | O_TMPFILE)) {                                       \
        va_list ap;                                                              \
        va_start(ap, flags);                                                     \
        mode = (mode_t)va_arg(ap, int);                                          \
        va_end(ap);                                                              \
    }

int open(const char *path, int flags, ...) {
    MODE_ARG(flags, mode);
    int fd = real_open(path, flags, mode);
    opened(fd, path, flags);
    return fd;
}

int open64(const char *path, int flags, ...) {
    MODE_ARG(flags, mode);
    int fd = real_open64(path, flags, mode);
    opened(fd, path, flags);
    return fd;
}

int openat(int dirfd, const char *path, int flags, ...) {
    MODE_ARG(flags, mode);
    int fd = real_openat(dirfd, path, flags, mode);
    if (dirfd == AT_FDCWD || path[0] == '/') opened(fd, path, flags);
    return fd;
}

ssize_t write(int fd, const void *buf, size_t n) {
    off_t off = fd >= 0 && fd < MAX_FDS && fd_path[fd] ? lseek(fd, 0, SEEK_CUR) : 0;
    ssize_t w = real_write(fd, buf, n);
    wrote(fd, buf, w, off);
    return w;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    ssize_t w = real_pwrite(fd, buf, n, off);
    wrote(fd, buf, w, off);
    return w;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    ssize_t w = real_pwrite64(fd, buf, n, off);
    wrote(fd, buf, w, off);
    return w;
}

int fsync(int fd) { return synced(fd, real_fsync); }

int fdatasync(int fd) { return synced(fd, real_fdatasync); }

int ftruncate(int fd, off_t len) {
    int rc = real_ftruncate(fd, len);
    if (rc == 0 && trace_fd >= 0 && fd >= 0 && fd < MAX_FDS && fd_path[fd]) {
        pthread_mutex_lock(&mu);
        line l = start();
        put(&l, "T %s %lld", fd_path[fd], (long long)len);
        emit(&l);
        pthread_mutex_unlock(&mu);
    }
    return rc;
}

int dup2(int from, int to) {
    int fd = real_dup2(from, to);
    if (fd >= 0) duplicated(from, fd);
    return fd;
}

int dup3(int from, int to, int flags) {
    int fd = real_dup3(from, to, flags);
    if (fd >= 0) duplicated(from, fd);
    return fd;
}

int fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);   /* every command this process may use takes an int or a pointer */
    va_end(ap);
    int rc = real_fcntl(fd, cmd, arg);
    if (rc >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) duplicated(fd, rc);
    return rc;
}

int close(int fd) {
    if (fd >= 0 && fd < MAX_FDS) {
        pthread_mutex_lock(&mu);
        free(fd_path[fd]);
        fd_path[fd] = NULL;
        fd_mark[fd] = 0;
        pthread_mutex_unlock(&mu);
    }
    return real_close(fd);
}

int unlink(const char *path) {
    int rc = real_unlink(path);
    if (rc == 0) path_op("U", path, NULL);
    return rc;
}

int rename(const char *from, const char *to) {
    int rc = real_rename(from, to);
    if (rc == 0) path_op("R", from, to);
    return rc;
}
