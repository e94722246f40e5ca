/*
 * pgroup.c - process identity from /proc, and killing an orphaned group.
 *
 * Membership of a group is read from /proc (a scan of every process's stat
 * line) rather than taken from kill(-pgid, 0), which also answers for
 * zombies and cannot say when each member started.
 */
#include "actions/pgroup.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

#define PGROUP_STAT_MAX 1024        /* a stat line; the name in it is at most 16 bytes */
#define PGROUP_POLL_MS 2            /* between looks at a killed group */

static const char *const outcome_names[] = {
#define CAIRN_ORPHAN_NAME(n, s) s,
    CAIRN_ORPHAN_MAP(CAIRN_ORPHAN_NAME)
#undef CAIRN_ORPHAN_NAME
};

const char *cairn_orphan_outcome_name(cairn_orphan_outcome o) { return outcome_names[o]; }

/* ---- /proc/PID/stat -------------------------------------------------------- */

int cairn_proc_stat_parse(const char *text, cairn_proc_stat *out, cairn_err *err) {
    const char *close = strrchr(text, ')');
    long long pid, pgrp, start;
    char state;
    /* after the name: state(3) ppid(4) pgrp(5) session tty_nr tpgid flags minflt
     * cminflt majflt cmajflt utime stime cutime cstime priority nice
     * num_threads itrealvalue starttime(22) */
    if (sscanf(text, "%lld", &pid) != 1 || close == NULL ||
        sscanf(close + 1, " %c %*d %lld %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d"
                          " %*d %*d %*d %lld", &state, &pgrp, &start) != 3)
        return cairn_err_set(err, CAIRN_EINVAL, "not a /proc/PID/stat line: %.80s", text);
    *out = (cairn_proc_stat){.pid = pid, .state = state, .pgrp = pgrp, .start = start};
    return 0;
}

int cairn_proc_stat_read(int64_t pid, cairn_proc_stat *out, cairn_err *err) {
    char path[64], text[PGROUP_STAT_MAX];
    snprintf(path, sizeof path, "/proc/%lld/stat", (long long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cairn_err_set(err, errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_EIO, "%s: %s", path,
                             strerror(errno));
    ssize_t n = read(fd, text, sizeof text - 1);
    int saved = errno;
    close(fd);
    if (n <= 0)   /* ESRCH: it died between the open and the read */
        return cairn_err_set(err, n == 0 || saved == ESRCH ? CAIRN_ENOTFOUND : CAIRN_EIO,
                             "%s: %s", path, n == 0 ? "empty" : strerror(saved));
    text[n] = '\0';
    return cairn_proc_stat_parse(text, out, err);
}

/* ---- the host -------------------------------------------------------------- */

static char host[CAIRN_PGROUP_HOST_MAX];
static pthread_once_t host_once = PTHREAD_ONCE_INIT;

static void host_init(void) {
    char boot[64] = "";
    struct stat ns;
    FILE *fp = fopen("/proc/sys/kernel/random/boot_id", "re");
    bool ok = fp && fgets(boot, sizeof boot, fp) != NULL;
    if (fp) fclose(fp);
    boot[strcspn(boot, "\n")] = '\0';
    ok = ok && boot[0] && stat("/proc/self/ns/pid", &ns) == 0;
    if (ok) snprintf(host, sizeof host, "%.36s/%llu", boot, (unsigned long long)ns.st_ino);
}

const char *cairn_pgroup_host(void) {
    pthread_once(&host_once, host_init);
    return host;
}

/* ---- the group --------------------------------------------------------------- */

typedef struct members {
    int live;                   /* in the group and not a zombie */
    bool older;                 /* one of them started before the recorded leader */
} members;

static members scan_group(int64_t pgid, int64_t start) {
    members m = {0, false};
    DIR *d = opendir("/proc");
    for (struct dirent *de; d && (de = readdir(d)) != NULL;) {
        cairn_proc_stat ps;
        if (!isdigit((unsigned char)de->d_name[0]) ||
            cairn_proc_stat_read(atoll(de->d_name), &ps, NULL) != 0 || ps.pgrp != pgid ||
            ps.state == 'Z')
            continue;
        m.live++;
        m.older |= ps.start < start;
    }
    if (d) closedir(d);
    return m;
}

/* The leader, when the process at pid pgid is the one recorded and not a
 * zombie. */
static bool leader_runs(int64_t pgid, int64_t start) {
    cairn_proc_stat ps;
    return cairn_proc_stat_read(pgid, &ps, NULL) == 0 && ps.start == start && ps.state != 'Z';
}

static void sleep_ms(int ms) {
    struct timespec ts = {0, (long)ms * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* SIGKILL the group (and the leader, which may have left it) until nothing
 * of it runs, or the deadline. */
static cairn_orphan_outcome kill_until_gone(int64_t pgid, int64_t start, int64_t wait_ms) {
    int64_t until = cairn_now_ms() + wait_ms;
    for (;;) {
        bool leader = leader_runs(pgid, start);
        if (leader) kill((pid_t)pgid, SIGKILL);
        kill(-(pid_t)pgid, SIGKILL);
        if (!leader && scan_group(pgid, start).live == 0) return CAIRN_ORPHAN_KILLED;
        if (cairn_now_ms() >= until) return CAIRN_ORPHAN_STUCK;
        sleep_ms(PGROUP_POLL_MS);
    }
}

cairn_orphan_outcome cairn_pgroup_kill_orphan(int64_t pgid, int64_t start, const char *where,
                                              int64_t wait_ms) {
    const char *here = cairn_pgroup_host();
    if (where == NULL || here[0] == '\0' || strcmp(where, here) != 0) return CAIRN_ORPHAN_ELSEWHERE;
    if (pgid <= 1 || pgid == getpgrp()) return CAIRN_ORPHAN_REUSED;   /* never kill(-1), nor us */
    cairn_proc_stat leader;
    int rc = cairn_proc_stat_read(pgid, &leader, NULL);
    if (rc == 0 && leader.start != start) return CAIRN_ORPHAN_REUSED;
    if (rc == 0 && leader.state != 'Z') return kill_until_gone(pgid, start, wait_ms);
    members m = scan_group(pgid, start);   /* the leader is gone: its children may not be */
    if (m.live == 0) return CAIRN_ORPHAN_GONE;
    if (m.older) return CAIRN_ORPHAN_REUSED;
    return kill_until_gone(pgid, start, wait_ms);
}
