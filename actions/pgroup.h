/*
 * pgroup.h - which process is which, after the engine that started it died:
 * the start time of a process, the host where pids mean something, and the
 * killing of an attempt's orphaned process group.
 *
 * A pid alone names a process only while it lives: once the process is gone
 * the kernel may give its number to another.  So a process group is recorded
 * (engine/event.h, step_spawned) with three more facts:
 *   start  the leader's start time, field 22 of /proc/PID/stat (clock ticks
 *          after boot), which a later process with the same pid cannot share;
 *   host   "<boot id>/<pid namespace inode>": after a reboot, or in another
 *          pid namespace (another container reading the same journal), the
 *          numbers name other processes, and nothing is killed.
 *
 * Deciding that a group is still the one recorded (cairn_pgroup_kill_orphan):
 *   - the leader (pid = the group id) still exists: it is ours only if its
 *     start time is the one recorded.  A different start time means the pid
 *     was reused, and then our group is empty: the kernel gives a pid out
 *     again only once no process uses it as a pid or a group id.
 *   - the leader is gone but members of the group remain (a shell's
 *     children, which its death does not take along): they are ours unless
 *     one of them started before the recorded leader did.  What this cannot
 *     tell apart: our group emptied, its pid was reused by a process that
 *     made itself a group leader and then died leaving members, all between
 *     the crash and recovery.  That needs the pid space to wrap around
 *     meanwhile, and is not guarded against.
 * Zombies count as gone: they run nothing, and a container whose first
 * process reaps nothing keeps them forever.  A process that left the group
 * (setsid, a daemon) is out of reach, as it is of a timeout's kill (proc.h).
 *
 * Killing is SIGKILL to the group (and to the leader, in case it left it),
 * repeated until no member runs or CAIRN_ORPHAN_WAIT_MS pass.  No SIGTERM
 * first: the engine that owned the group is dead, its leader got SIGKILL
 * already (proc.h, PR_SET_PDEATHSIG), and the attempt is about to run again.
 *
 * Threads: no jv and no shared state except the host string, computed once.
 * Memory: nothing returned is owned by the caller.
 */
#ifndef CAIRN_PGROUP_H
#define CAIRN_PGROUP_H

#include <stdint.h>

#include "common/err.h"

#define CAIRN_ORPHAN_WAIT_MS 2000   /* longest wait for one killed group to be gone */
#define CAIRN_PGROUP_HOST_MAX 64    /* "<36-char boot id>/<inode>" and a NUL */

/* One process as /proc/PID/stat shows it. */
typedef struct cairn_proc_stat {
    int64_t pid;
    char state;                 /* 'R', 'S', 'D', 'Z', ... */
    int64_t pgrp;
    int64_t start;              /* clock ticks after boot */
} cairn_proc_stat;

/* Parse the text of /proc/PID/stat (NUL-terminated).  The command name, in
 * parentheses, may itself hold spaces and ')': the fields follow its last
 * ')'.  0, or CAIRN_EINVAL with a message. */
int cairn_proc_stat_parse(const char *text, cairn_proc_stat *out, cairn_err *err);

/* Read and parse /proc/PID/stat: 0, CAIRN_ENOTFOUND (no such process) or
 * CAIRN_EIO with a message. */
int cairn_proc_stat_read(int64_t pid, cairn_proc_stat *out, cairn_err *err);

/* This host, as recorded beside a process group: "<boot id>/<pid namespace
 * inode>", or "" when /proc cannot tell (then no recorded group is ever
 * killed).  Computed on the first call; the string is static. */
const char *cairn_pgroup_host(void);

#define CAIRN_ORPHAN_MAP(X)                                                       \
    X(GONE,      "gone")       /* nothing of the group runs any more */           \
    X(KILLED,    "killed")     /* it ran; it was killed and is gone */            \
    X(REUSED,    "reused")     /* the pid or group is another process's now */    \
    X(ELSEWHERE, "elsewhere")  /* recorded on another boot or pid namespace */    \
    X(STUCK,     "stuck")      /* killed, still there after the wait */

typedef enum {
#define CAIRN_ORPHAN_ENUM(n, s) CAIRN_ORPHAN_##n,
    CAIRN_ORPHAN_MAP(CAIRN_ORPHAN_ENUM)
#undef CAIRN_ORPHAN_ENUM
} cairn_orphan_outcome;

const char *cairn_orphan_outcome_name(cairn_orphan_outcome o);

/* Kill the process group pgid whose leader started at `start` on `host`, if
 * it is still that group and anything of it runs, and wait up to wait_ms
 * for it to be gone.  See the top of this file for how "still that group"
 * is decided. */
cairn_orphan_outcome cairn_pgroup_kill_orphan(int64_t pgid, int64_t start, const char *host,
                                              int64_t wait_ms);

#endif
