/*
 * Process identity and orphaned groups (actions/pgroup.h), and what the
 * process runner tells an attempt about the group it starts and how that
 * group dies with its engine (actions/proc.h), all on real processes.
 *
 * Children wait in pause() until killed; the test proves a process dead by
 * reaping it (as its parent, or as a child subreaper for orphans) and alive
 * with waitpid(WNOHANG).  Waits for a state are polls with a deadline.
 */
#include "test.h"
#include "actions/action.h"
#include "actions/pgroup.h"
#include "actions/proc.h"
#include "common/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 5000   /* deadline for anything these tests wait on */
#define LEAK_S 60      /* a helper process left by a failed test ends itself */

/* ---- helpers ------------------------------------------------------------ */

/* A child leading a process group of its own, waiting to be killed. */
static pid_t start_leader(void) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        alarm(LEAK_S);
        for (;;) pause();
    }
    setpgid(pid, pid);                 /* whichever side runs first, the group exists */
    return pid;
}

static int64_t start_of(pid_t pid) {
    cairn_proc_stat ps;
    cairn_err err;
    if (cairn_proc_stat_read(pid, &ps, &err) != 0) TEST_FAIL("stat of %d: %s", (int)pid, err.msg);
    return ps.start;
}

/* Reap pid (our child, or an orphan of ours as subreaper) within WAIT_MS
 * and return the signal that ended it, or 0 for an exit. */
static int reap(pid_t pid) {
    int st = 0;
    int64_t until = cairn_now_ms() + WAIT_MS;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (cairn_now_ms() >= until) TEST_FAIL("process %d still runs after %d ms", (int)pid, WAIT_MS);
        usleep(2000);
    }
    return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

static bool runs(pid_t pid) { return waitpid(pid, NULL, WNOHANG) == 0; }

/* ---- /proc/PID/stat ----------------------------------------------------- */

TEST(pgroup_stat_parse_reads_past_a_name_with_parentheses) {
    cairn_proc_stat ps;
    cairn_err err;
    CHECK_INT(cairn_proc_stat_parse("1234 (a) b (c) S 1 77 77 0 -1 4194560 100 0 0 0 0 0 0 0 20 0"
                                    " 1 0 5555 1000 9 18446744073709551615", &ps, &err), 0);
    CHECK_INT(ps.pid, 1234);
    CHECK_INT(ps.state, 'S');
    CHECK_INT(ps.pgrp, 77);
    CHECK_INT(ps.start, 5555);
    CHECK_INT(cairn_proc_stat_parse("1234 (x", &ps, &err), CAIRN_EINVAL);
    CHECK_INT(cairn_proc_stat_parse("1234 (x) S 1 2 3", &ps, &err), CAIRN_EINVAL);
    CHECK_CONTAINS(err.msg, "not a /proc/PID/stat line");
}

TEST(pgroup_stat_read_of_a_real_process_and_of_a_dead_one) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_NAME, "a) b (c");
        alarm(LEAK_S);
        for (;;) pause();
    }
    setpgid(pid, pid);
    cairn_proc_stat ps;
    cairn_err err;
    int64_t until = cairn_now_ms() + WAIT_MS;
    char comm[64] = "", path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    while (strcmp(comm, "a) b (c\n") != 0 && cairn_now_ms() < until) {
        FILE *fp = fopen(path, "r");
        if (fp && fgets(comm, sizeof comm, fp) == NULL) comm[0] = '\0';
        if (fp) fclose(fp);
    }
    CHECK_STR(comm, "a) b (c\n");
    CHECK_INT(cairn_proc_stat_read(pid, &ps, &err), 0);
    CHECK_INT(ps.pid, pid);
    CHECK_INT(ps.pgrp, pid);
    CHECK(ps.start >= start_of(getpid()));   /* started after us */
    kill(pid, SIGKILL);
    CHECK_INT(reap(pid), SIGKILL);
    CHECK_INT(cairn_proc_stat_read(pid, &ps, &err), CAIRN_ENOTFOUND);
}

TEST(pgroup_host_names_boot_and_pid_namespace) {
    const char *h = cairn_pgroup_host();
    CHECK(strlen(h) > 37);
    CHECK(h[36] == '/');
    CHECK(h == cairn_pgroup_host());   /* computed once */
}

/* ---- killing an orphaned group ------------------------------------------- */

TEST(pgroup_kills_the_recorded_group_and_waits_until_gone) {
    pid_t leader = start_leader();
    cairn_orphan_outcome o = cairn_pgroup_kill_orphan(leader, start_of(leader), cairn_pgroup_host(),
                                                      CAIRN_ORPHAN_WAIT_MS);
    CHECK_STR(cairn_orphan_outcome_name(o), "killed");
    CHECK_INT(reap(leader), SIGKILL);
}

TEST(pgroup_spares_a_reused_pid_whose_start_time_differs) {
    pid_t other = start_leader();      /* holds the recorded pid, started at another time */
    int64_t start = start_of(other);
    CHECK_INT(cairn_pgroup_kill_orphan(other, start + 1, cairn_pgroup_host(), 100), CAIRN_ORPHAN_REUSED);
    CHECK_INT(cairn_pgroup_kill_orphan(other, start - 1, cairn_pgroup_host(), 100), CAIRN_ORPHAN_REUSED);
    CHECK(runs(other));
    kill(other, SIGKILL);
    CHECK_INT(reap(other), SIGKILL);
}

TEST(pgroup_spares_groups_recorded_on_another_host) {
    pid_t leader = start_leader();
    int64_t start = start_of(leader);
    CHECK_INT(cairn_pgroup_kill_orphan(leader, start, "0b2e43f1-0000-4000-8000-000000000000/1", 100),
              CAIRN_ORPHAN_ELSEWHERE);
    CHECK_INT(cairn_pgroup_kill_orphan(leader, start, "", 100), CAIRN_ORPHAN_ELSEWHERE);
    CHECK_INT(cairn_pgroup_kill_orphan(leader, start, NULL, 100), CAIRN_ORPHAN_ELSEWHERE);
    CHECK(runs(leader));
    kill(leader, SIGKILL);
    CHECK_INT(reap(leader), SIGKILL);
}

/* A leader that starts a member of its group, tells its pid, and exits when
 * told (so that the test reads its start time first). */
static pid_t start_leader_with_member(pid_t *member, int64_t *leader_start) {
    int tell[2], go[2];
    CHECK_INT(pipe(tell), 0);
    CHECK_INT(pipe(go), 0);
    pid_t leader = fork();
    CHECK(leader >= 0);
    if (leader == 0) {
        setpgid(0, 0);
        close(tell[0]);
        close(go[1]);
        pid_t m = fork();
        if (m == 0) {
            alarm(LEAK_S);
            for (;;) pause();
        }
        char c;
        if (write(tell[1], &m, sizeof m) != sizeof m || read(go[0], &c, 1) < 0) _exit(1);
        _exit(0);
    }
    CHECK_INT(read(tell[0], member, sizeof *member), sizeof *member);
    *leader_start = start_of(leader);
    close(go[1]);
    CHECK_INT(reap(leader), 0);
    close(tell[0]);
    close(tell[1]);
    close(go[0]);
    return leader;
}

TEST(pgroup_kills_members_a_dead_leader_left_unless_older_than_it) {
    CHECK_INT(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);   /* the member comes back to us */
    pid_t member;
    int64_t start;
    pid_t leader = start_leader_with_member(&member, &start);
    /* A member that started before the recorded leader is not of its group. */
    CHECK_INT(cairn_pgroup_kill_orphan(leader, start_of(member) + 1, cairn_pgroup_host(), 100),
              CAIRN_ORPHAN_REUSED);
    CHECK(runs(member));
    CHECK_INT(cairn_pgroup_kill_orphan(leader, start, cairn_pgroup_host(), CAIRN_ORPHAN_WAIT_MS),
              CAIRN_ORPHAN_KILLED);
    CHECK_INT(reap(member), SIGKILL);
    CHECK_INT(cairn_pgroup_kill_orphan(leader, start, cairn_pgroup_host(), 100), CAIRN_ORPHAN_GONE);
}

TEST(pgroup_zombie_leader_counts_as_gone) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        _exit(0);
    }
    setpgid(pid, pid);
    int64_t until = cairn_now_ms() + WAIT_MS;
    cairn_proc_stat ps = {0};
    while ((cairn_proc_stat_read(pid, &ps, NULL) != 0 || ps.state != 'Z') && cairn_now_ms() < until) {}
    CHECK_INT(ps.state, 'Z');
    CHECK_INT(cairn_pgroup_kill_orphan(pid, ps.start, cairn_pgroup_host(), 100), CAIRN_ORPHAN_GONE);
    CHECK_INT(reap(pid), 0);
}

/* ---- what the runner tells the attempt, and dying with the engine -------- */

typedef struct told {
    int64_t pgid, start;
    int fd;                            /* or -1: write the pgid here too */
    const char *fifo;                  /* or NULL: then let the script go on */
} told;

static void on_spawned(const cairn_attempt_info *info, int64_t pgid, int64_t start) {
    told *t = info->spawned_ud;
    t->pgid = pgid;
    t->start = start;
    if (t->fd >= 0 && write(t->fd, &pgid, sizeof pgid) != sizeof pgid) abort();
    int go = t->fifo ? open(t->fifo, O_WRONLY) : -1;   /* the script waits on it */
    if (go >= 0 && write(go, "go\n", 3) != 3) abort();
    if (go >= 0) close(go);
}

static void run_script(const char *script, told *t, cairn_proc_result *res) {
    char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    cairn_attempt_info info = {.attempt = 1, .spawned = on_spawned, .spawned_ud = t};
    cairn_proc_spec spec = {.argv = argv, .envp = envp, .output_max = 4096, .kill_grace_ms = 100,
                            .attempt = &info};
    cairn_err err;
    if (cairn_proc_run(&spec, res, &err) != 0) TEST_FAIL("proc_run: %s", err.msg);
}

TEST(proc_tells_the_attempt_its_group_and_start_time_while_it_runs) {
    char fifo[300], script[600];
    snprintf(fifo, sizeof fifo, "%s/go", test_tmpdir());
    CHECK_INT(mkfifo(fifo, 0600), 0);
    told t = {0, 0, -1, fifo};
    cairn_proc_result res;
    /* the script ends once it has been reported, or fails after 5 s */
    snprintf(script, sizeof script, "echo $$ $(cut -d' ' -f5,22 /proc/$$/stat); timeout 5 cat %s", fifo);
    run_script(script, &t, &res);
    CHECK_INT(res.outcome, CAIRN_PROC_EXITED);
    CHECK_INT(res.exit_code, 0);
    long long pid, pgrp, start;
    CHECK_INT(sscanf(res.out.head.data, "%lld %lld %lld", &pid, &pgrp, &start), 3);
    CHECK_INT(t.pgid, pid);
    CHECK_INT(pgrp, pid);
    CHECK_INT(t.start, start);
    cairn_proc_result_free(&res);
}

static void *run_forever(void *arg) {
    cairn_proc_result res;
    run_script("sleep 100", arg, &res);
    return NULL;
}

TEST(proc_leader_dies_with_the_engine) {
    CHECK_INT(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);   /* the leader comes back to us */
    int fds[2];
    CHECK_INT(pipe(fds), 0);
    pid_t engine = fork();
    CHECK(engine >= 0);
    if (engine == 0) {                 /* starts the process from a thread, as a worker does */
        told t = {0, 0, fds[1], NULL};
        pthread_t th;
        pthread_create(&th, NULL, run_forever, &t);
        alarm(LEAK_S);
        for (;;) pause();
    }
    int64_t leader;
    CHECK_INT(read(fds[0], &leader, sizeof leader), sizeof leader);
    kill(engine, SIGKILL);
    CHECK_INT(reap(engine), SIGKILL);
    CHECK_INT(reap((pid_t)leader), SIGKILL);
}
