/*
 * bench.c - `make bench`: the engine's speed on this machine, in one run.
 *
 *   fsync    this disk's fdatasync rate (4 KiB writes), the limit W1 meets;
 *            also appending, and after 100 us of work before each sync
 *   sqlite   bare SQLite commits of two rows: what one durable step costs at least
 *   W1       one run of 1,000 sequential `set` steps (one durable commit each)
 *   W2       1,000 concurrent runs of 100 `set` steps each
 *   W3       10,000 runs parked on approvals and timers: start-to-ready, memory,
 *            and the time from an approval decision to the next step
 *   foreach  one run of one foreach step over 100,000 `set` items: items per
 *            second and the peak resident memory of a fresh process doing it
 *   load     load and compile a generated 1,000-step workflow, an expression
 *            in every step: plain paths, arithmetic and jq pipelines (all
 *            in the native subset, dsl/expr_native.c), then programs outside
 *            it (compiled by libjq); wall time and the process's CPU time
 *   mask     masking secrets (in every spelling, secrets.h) out of a stored
 *            value with MASK_SECRETS secrets loaded: a W2 step's input, and
 *            a shell step's output holding 4 KiB of text
 *   eval     one expression evaluation, each bounded in time and memory:
 *            a plain path, a jq pipeline (both native) and a program outside
 *            the native subset (libjq), over a document of 1,000 steps' outputs
 *   verify   `cairn verify` (the command, in a process of its own) over a
 *            journal of 1,000,000 events: 1,000 runs of 499 `set` steps
 *   export   `cairn export` of a run of 1,000 `set` steps
 *   replay   `cairn replay` of that run (BENCH_ONLY=replay: export and replay
 *            only, without verify's million events)
 * W1 and W2 steps each read the step before them through a plain path.
 * W1 and W2 run twice: with `set` executed inline on the orchestrator, and
 * with every action sent through the worker pool as side-effecting actions
 * are; W1 also on a journal already in use.  Each figure is the median of
 * BENCH_REPEAT runs (default 3).  "vs fsync" divides by the fsync rate
 * measured first; "beside" (W1 only) is the median of each trial's ratio to
 * the fsync rate measured just before and just after it (w1_beside_fsync).
 */
#include <fcntl.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>

#include "actions/action.h"
#include "common/clock.h"
#include "common/mem.h"
#include "engine/engine.h"
#include "engine/secrets.h"
#include "engine/store.h"

static const char *dir;

/* The journal at db opened as an engine opens it, and an engine on it. */
static int open_at(const char *db, cairn_engine_config *cfg, cairn_engine **e, cairn_err *err) {
    cairn_journal_config jc = {.role = CAIRN_JOURNAL_ENGINE};
    *e = NULL;
    int rc = cairn_journal_open(db, &jc, &cfg->journal, err);
    return rc ? rc : cairn_engine_open(cfg, e, err);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* fdatasync rate of 4 KiB writes over `ms` milliseconds: overwriting one
 * block (the raw limit of a durable commit), or appending, so that every
 * sync must also record the file's new size; with work_us, after that long
 * on the CPU before each write, as a workload that computes between its
 * commits does: on a virtual disk a sync that follows a pause costs more
 * than one issued back to back, so this is the most a loop doing that much
 * work per commit could reach. */
#define FSYNC_WORK_US 100   /* about what a W1 step does between its syncs */

static double fsync_rate(bool append, int work_us, int ms) {
    char *path = cairn_sprintf("%s/fsync.bin", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char block[4096];
    memset(block, 'x', sizeof block);
    int n = 0;
    int64_t start = cairn_now_ms(), end = start + ms;
    while (cairn_now_ms() < end) {
        for (int64_t until = cairn_now_us() + work_us; cairn_now_us() < until;) {
        }
        off_t at = append ? (off_t)n * (off_t)sizeof block : 0;
        if (pwrite(fd, block, sizeof block, at) < 0 || fdatasync(fd) != 0) break;
        n++;
    }
    double secs = (double)(cairn_now_ms() - start) / 1000.0;
    close(fd);
    unlink(path);
    free(path);
    return n / secs;
}

/* What one SQLite transaction of two small rows costs on this disk (WAL,
 * synchronous=FULL): the floor under W1, since each step commits once. */
static double sqlite_commit_rate(void) {
    char *path = cairn_sprintf("%s/commit.db", dir);
    sqlite3 *db = NULL;
    sqlite3_open(path, &db);
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "CREATE TABLE t(id INTEGER PRIMARY KEY, run TEXT, seq INT, data TEXT,"
                     " UNIQUE(run, seq));", NULL, NULL, NULL);
    sqlite3_stmt *ins = NULL;
    sqlite3_prepare_v2(db, "INSERT INTO t(run, seq, data) VALUES ('r', ?, 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx')", -1, &ins, NULL);
    int n = 0;
    int64_t start = cairn_now_ms(), end = start + 1000;
    while (cairn_now_ms() < end) {
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        for (int r = 0; r < 2; r++) {
            sqlite3_bind_int(ins, 1, 2 * n + r);
            sqlite3_step(ins);
            sqlite3_reset(ins);
        }
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        n++;
    }
    double secs = (double)(cairn_now_ms() - start) / 1000.0;
    sqlite3_finalize(ins);
    sqlite3_close(db);
    char *cmd = cairn_sprintf("rm -f '%s' '%s'-wal '%s'-shm", path, path, path);
    if (system(cmd) != 0) fprintf(stderr, "bench: could not remove %s\n", path);
    free(cmd);
    free(path);
    return n / secs;
}

/* A workflow of `steps` set steps, each reading the step before it through
 * an expression: a plain path (PATH), arithmetic (ARITH), a pipeline (JQ:
 * all three in the subset of jq that Cairn evaluates natively,
 * dsl/expr_native.c), or the same value through a jq program outside that
 * subset (LIBJQ: a reduce, compiled and run by libjq). */
enum { PATH, ARITH, JQ, LIBJQ };

static char *gen_workflow(int steps, int kind) {
    static const char *const shape[] = {
        [PATH] = "{ n: %d, prev: \"${{ .steps.s%d.output.n }}\" }",
        [ARITH] = "{ n: %d, prev: \"${{ .steps.s%d.output.n + 1 }}\" }",
        [JQ] = "{ n: %d, prev: \"${{ .steps.s%d.output.n | . + 1 }}\" }",
        [LIBJQ] = "{ n: %d, prev: \"${{ .steps.s%d.output.n | reduce . as $x (0; $x + 1) }}\" }",
    };
    cairn_buf b = CAIRN_BUF_INIT;
    cairn_buf_printf(&b, "cairn: 1\nname: bench-%d\nsteps:\n", steps);
    cairn_buf_printf(&b, "  - id: s0\n    uses: set\n    with: { n: 0 }\n");
    for (int i = 1; i < steps; i++) {
        cairn_buf_printf(&b, "  - id: s%d\n    uses: set\n    with: ", i);
        cairn_buf_printf(&b, shape[kind], i, i - 1);
        cairn_buf_printf(&b, "\n");
    }
    return cairn_buf_detach(&b);
}

static cairn_workflow *load(const char *src) {
    cairn_workflow *wf = NULL;
    cairn_diags d = CAIRN_DIAGS_INIT;
    if (cairn_workflow_load("bench.yaml", src, strlen(src), cairn_action_lookup_sig, &wf, &d)) {
        cairn_diags_print(&d, stderr, src, strlen(src));
        exit(1);
    }
    cairn_diags_free(&d);
    return wf;
}

static void start_runs(cairn_engine *e, const char *hash, int runs) {
    char id[CAIRN_RUN_ID_MAX];
    cairn_err err;
    for (int i = 0; i < runs; i++) {
        if (cairn_engine_start_run(e, hash, jv_object(), jv_null(), id, &err)) {
            fprintf(stderr, "bench: %s\n", err.msg);
            exit(1);
        }
    }
    if (cairn_engine_run(e, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
}

static double cpu_us_of(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double thread_cpu_us(void) { return cpu_us_of(CLOCK_THREAD_CPUTIME_ID); }

/* Steps per second for `runs` concurrent runs of a `steps`-step workflow.
 * A fresh journal starts with an empty write-ahead log that grows with every
 * commit; with `warm`, the same runs go through once first, unmeasured, so
 * the measured ones find the journal as a long-lived engine has it.
 * *cpu_us (may be NULL) receives the orchestrator's CPU time a step: this
 * thread runs it (cairn_engine_run), and its time counts only while it is
 * on a CPU, so it says what the steps cost it however busy the machine is. */
/* BENCH_PG_URL: W1 and W2 again on that PostgreSQL journal, emptied before
 * each trial by the shell command BENCH_PG_RESET (bench/run.sh sets both). */
static const char *pg_url;

static double run_steps(int runs, int steps, bool pool_only, bool warm, int trial,
                        double *cpu_us, double *others_us) {
    char *db = cairn_sprintf("%s/w-%d-%d-%d-%d.db", dir, runs, steps, pool_only, trial);
    if (pg_url) {
        if (system(getenv("BENCH_PG_RESET")) != 0) fprintf(stderr, "bench: BENCH_PG_RESET failed\n");
        free(db);
        db = cairn_strdup(pg_url);
    }
    cairn_engine_config cfg = {.pool_only = pool_only, .workers = 4};
    cairn_engine *e = NULL;
    cairn_err err;
    if (open_at(db, &cfg, &e, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    char *src = gen_workflow(steps, PATH);
    char hash[65];
    cairn_engine_add_workflow(e, load(src), hash, &err);
    if (warm) start_runs(e, hash, runs);
    int64_t start = cairn_now_ms();
    double cpu = thread_cpu_us(), all = cpu_us_of(CLOCK_PROCESS_CPUTIME_ID);
    start_runs(e, hash, runs);
    cpu = thread_cpu_us() - cpu;
    if (cpu_us) *cpu_us = cpu / (runs * steps);
    double secs = (double)(cairn_now_ms() - start) / 1000.0;
    cairn_engine_close(e);   /* applies the journal's last events */
    if (others_us) *others_us = (cpu_us_of(CLOCK_PROCESS_CPUTIME_ID) - all - cpu) / (runs * steps);
    char *cmd = cairn_sprintf("rm -f '%s' '%s'-wal '%s'-shm '%s'-clog '%s'.key", db, db, db, db, db);
    if (system(cmd) != 0) fprintf(stderr, "bench: could not remove %s\n", db);
    free(cmd);
    free(src);
    free(db);
    return runs * steps / secs;
}

/* One W1 trial (one run of `steps` steps) between two half-second fsync
 * measurements: its steps per second go to *rate, and the ratio to the mean
 * of the two fsync rates is returned.  This disk's fsync rate drifts by a
 * third within a minute, so a ratio against the rate measured at the start
 * of `make bench` says as much about the drift as about W1; the rate
 * measured beside each trial does not. */
#define FSYNC_BESIDE_MS 500

static double w1_beside_fsync(int steps, bool pool, bool warm, int trial, double *rate) {
    double before = fsync_rate(false, 0, FSYNC_BESIDE_MS);
    *rate = run_steps(1, steps, pool, warm, trial, NULL, NULL);
    double after = fsync_rate(false, 0, FSYNC_BESIDE_MS);
    return *rate / ((before + after) / 2);
}

/* ---- verify and export: the audit commands, as a user runs them ------------- */

#define VERIFY_RUNS 1000
#define VERIFY_STEPS 499      /* 2 events a step, run_created and run_succeeded: 1,000 a run */
#define EXPORT_STEPS 1000

/* A journal of `runs` finished runs of `steps` steps, made by the engine;
 * its path (the caller frees it and removes the files). */
static char *make_journal(const char *name, int runs, int steps) {
    char *db = cairn_sprintf("%s/%s.db", dir, name);
    cairn_engine_config cfg = {.workers = 4};
    cairn_engine *e = NULL;
    cairn_err err;
    if (open_at(db, &cfg, &e, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    char *src = gen_workflow(steps, PATH), hash[65];
    cairn_engine_add_workflow(e, load(src), hash, &err);
    start_runs(e, hash, runs);
    cairn_engine_close(e);
    free(src);
    return db;
}

static void remove_journal(char *db) {
    if (getenv("BENCH_KEEP")) return;
    char *cmd = cairn_sprintf("rm -f '%s' '%s'-wal '%s'-shm '%s'-clog '%s'.key", db, db, db, db, db);
    if (system(cmd) != 0) fprintf(stderr, "bench: could not remove %s\n", db);
    free(cmd);
    free(db);
}

/* Milliseconds the cairn command takes, its output thrown away; exits the
 * bench when it fails. */
static double cairn_ms(const char *args) {
    const char *cairn = getenv("BENCH_CAIRN") ? getenv("BENCH_CAIRN") : "./cairn";
    char *cmd = cairn_sprintf("'%s' %s >/dev/null", cairn, args);
    int64_t start = cairn_now_us();
    int rc = system(cmd);
    double ms = (double)(cairn_now_us() - start) / 1000.0;
    if (rc != 0) {
        fprintf(stderr, "bench: `%s` failed (%d)\n", cmd, rc);
        exit(1);
    }
    free(cmd);
    return ms;
}

static void audit_lines(int repeat, double *v, bool verify) {
    char *db, *args;
    if (verify) {
        db = make_journal("verify", VERIFY_RUNS, VERIFY_STEPS);
        args = cairn_sprintf("--db '%s' verify", db);
        double events = (double)VERIFY_RUNS * (2 * VERIFY_STEPS + 2);
        for (int i = 0; i < repeat; i++) v[i] = events / (cairn_ms(args) / 1000.0);
        printf("%-44s %6.0f events/s %8s %10s\n", "verify 1000 runs, 1000000 events",
               median(v, repeat), "-", "-");
        free(args);
        remove_journal(db);
    }
    db = make_journal("export", 1, EXPORT_STEPS);
    sqlite3 *sq = NULL;
    sqlite3_stmt *st = NULL;
    char run[CAIRN_RUN_ID_MAX] = "";
    if (sqlite3_open_v2(db, &sq, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(sq, "SELECT id FROM runs", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        snprintf(run, sizeof run, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(sq);
    args = cairn_sprintf("--db '%s' export %s", db, run);
    for (int i = 0; i < repeat; i++) v[i] = cairn_ms(args);
    printf("%-44s %9.1f ms %10s\n", "export 1 run x 1000 steps (2002 events)", median(v, repeat), "-");
    free(args);
    args = cairn_sprintf("--db '%s' replay %s", db, run);   /* a divergence (exit 1) ends the bench */
    for (int i = 0; i < repeat; i++) v[i] = cairn_ms(args);
    printf("%-44s %9.1f ms %10s\n", "replay 1 run x 1000 steps (2002 events)", median(v, repeat), "-");
    free(args);
    remove_journal(db);
}

/* ---- W3: runs parked on approvals and timers ------------------------------ */

#define W3_RUNS 10000
#define W3_DECISIONS 50

static cairn_engine *w3_engine;
static char w3_watch[CAIRN_RUN_ID_MAX];
static atomic_llong w3_seen_us;

static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void w3_on_event(const cairn_event *ev, const cairn_run_state *st, void *ud) {
    (void)st;
    (void)ud;
    if (ev->type == CAIRN_EV_STEP_STARTED && ev->step && strcmp(ev->step, "after") == 0 &&
        strcmp(ev->run_id, w3_watch) == 0)
        atomic_store(&w3_seen_us, mono_us());
}

static void w3_wake(int sig) {
    (void)sig;
    if (w3_engine) cairn_engine_wake(w3_engine);
}

static void *w3_loop(void *arg) {
    cairn_err err;
    cairn_engine_run(arg, &err);
    return NULL;
}

/* Heap bytes in use (not what the allocator keeps from earlier phases). */
static double heap_mb(void) {
    struct mallinfo2 mi = mallinfo2();
    return (double)mi.uordblks / (1024.0 * 1024.0);
}

static void w3(void) {
    char *db = cairn_sprintf("%s/w3.db", dir);
    const char *src = "cairn: 1\nname: parked\ninputs:\n  kind: { type: string }\nsteps:\n"
                      "  - id: gate\n    if: ${{ .inputs.kind == \"approval\" }}\n    uses: approval\n"
                      "    with: { prompt: go? }\n"
                      "  - id: nap\n    needs: []\n    if: ${{ .inputs.kind == \"timer\" }}\n"
                      "    uses: wait\n    with: { duration: 1h }\n"
                      "  - id: after\n    needs: [gate, nap]\n    uses: set\n    with: { done: true }\n";
    cairn_engine_config cfg = {0};
    cairn_engine *e = NULL;
    cairn_err err;
    char hash[65], id[CAIRN_RUN_ID_MAX], (*ids)[CAIRN_RUN_ID_MAX] = cairn_calloc(W3_DECISIONS, sizeof *ids);
    if (open_at(db, &cfg, &e, &err)) exit(1);
    cairn_engine_add_workflow(e, load(src), hash, &err);
    for (int i = 0; i < W3_RUNS; i++) {
        jv in = jv_object_set(jv_object(), jv_string("kind"), jv_string(i % 2 ? "timer" : "approval"));
        cairn_engine_start_run(e, hash, in, jv_null(), id, &err);
        if (i % 2 == 0 && i / 2 < W3_DECISIONS) memcpy(ids[i / 2], id, sizeof id);
    }
    cairn_engine_request_stop(e);   /* stop once everything is parked and durable */
    cairn_engine_run(e, &err);
    cairn_engine_close(e);

    /* a fresh process for the engine that loads them */
    fflush(stdout);
    pid_t pid = fork();
    if (pid != 0) {
        waitpid(pid, NULL, 0);
        char *cmd = cairn_sprintf("rm -f '%s' '%s'-wal '%s'-shm '%s'-clog '%s'.key", db, db, db, db, db);
        if (system(cmd) != 0) fprintf(stderr, "bench: could not remove %s\n", db);
        free(cmd);
        free(ids);
        free(db);
        return;
    }
    double heap0 = heap_mb();
    int64_t t0 = mono_us();
    cfg.on_event = w3_on_event;
    open_at(db, &cfg, &e, &err);
    int taken = 0;
    cairn_engine_resume(e, NULL, &taken, &err);
    double ready_ms = (double)(mono_us() - t0) / 1000.0;
    double heap = heap_mb() - heap0;
    printf("%-44s %9.1f ms %10s\n", "W3 start-to-ready, 10000 parked runs", ready_ms, "-");
    printf("%-44s %9.1f MB %10s\n", "W3 memory of the engine with them loaded", heap, "-");
    if (taken != W3_RUNS) fprintf(stderr, "bench: resumed %d of %d runs\n", taken, W3_RUNS);

    w3_engine = e;
    signal(SIGUSR1, w3_wake);
    pthread_t loop;
    pthread_create(&loop, NULL, w3_loop, e);
    double lat[W3_DECISIONS];
    for (int k = 0; k < W3_DECISIONS; k++) {
        memcpy(w3_watch, ids[k], sizeof w3_watch);
        atomic_store(&w3_seen_us, 0);
        int64_t start = mono_us();
        cairn_journal_command(db, ids[k], "decide",
                          "{\"step\":\"gate\",\"decision\":\"approve\",\"by\":\"bench\"}", &err);
        while (atomic_load(&w3_seen_us) == 0 && mono_us() - start < 5000000) usleep(50);
        lat[k] = (double)(atomic_load(&w3_seen_us) - start) / 1000.0;
    }
    printf("%-44s %9.2f ms %10s\n", "W3 approval decision to next step (median)", median(lat, W3_DECISIONS), "-");
    cairn_engine_request_stop(e);
    pthread_join(loop, NULL);
    w3_engine = NULL;
    cairn_engine_close(e);
    fflush(stdout);
    _exit(0);
}

/* ---- foreach: one step over many items ------------------------------------ */

#define FOREACH_ITEMS 100000

/* This process's own peak resident size (VmHWM).  Not getrusage's
 * ru_maxrss: the kernel carries that over exec, so a process started by
 * a bench that had grown would report the bench's peak. */
static long own_peak_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib;
}

/* In a fresh process (this program run again with the argument "foreach"),
 * so that its peak resident memory is the foreach's own: run the foreach
 * once and print "<items per second> <peak resident KiB>". */
static int foreach_child(void) {
    char *db = cairn_sprintf("%s/foreach.db", dir);
    const char *src = "cairn: 1\nname: fan\ninputs:\n  n: { type: integer }\nsteps:\n"
                      "  - id: each\n    foreach: ${{ [range(.inputs.n)] }}\n    uses: set\n"
                      "    with: { v: \"${{ .item }}\", i: \"${{ .index }}\" }\n";
    cairn_engine_config cfg = {0};
    cairn_engine *e = NULL;
    cairn_err err;
    char hash[65], id[CAIRN_RUN_ID_MAX];
    if (open_at(db, &cfg, &e, &err)) exit(1);
    cairn_engine_add_workflow(e, load(src), hash, &err);
    int64_t start = cairn_now_ms();
    jv in = jv_object_set(jv_object(), jv_string("n"), jv_number(FOREACH_ITEMS));
    if (cairn_engine_start_run(e, hash, in, jv_null(), id, &err) || cairn_engine_run(e, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    double secs = (double)(cairn_now_ms() - start) / 1000.0;
    cairn_engine_close(e);
    printf("%f %ld\n", FOREACH_ITEMS / secs, own_peak_kib());
    char *cmd = cairn_sprintf("rm -f '%s' '%s'-wal '%s'-shm '%s'-clog '%s'.key", db, db, db, db, db);
    if (system(cmd) != 0) fprintf(stderr, "bench: could not remove %s\n", db);
    free(cmd);
    free(db);
    return 0;
}

static void foreach_bench(int repeat, double *rate, double *mb) {
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) exit(1);
    self[len] = '\0';
    char *cmd = cairn_sprintf("exec '%s' foreach", self);
    for (int i = 0; i < repeat; i++) {
        FILE *p = popen(cmd, "r");
        long kib = 0;
        if (p == NULL || fscanf(p, "%lf %ld", &rate[i], &kib) != 2) {
            fprintf(stderr, "bench: the foreach trial failed\n");
            exit(1);
        }
        pclose(p);
        mb[i] = (double)kib / 1024.0;
    }
    free(cmd);
}

static double ms_between(struct timespec a, struct timespec b) {
    return (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
}

/* Wall milliseconds to load the workflow; *cpu_ms the process's CPU time
 * meanwhile (every thread's: libjq compiles on two). */
static double load_ms(int steps, int kind, double *cpu_ms) {
    char *src = gen_workflow(steps, kind);
    struct timespec a, b, ca, cb;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ca);
    clock_gettime(CLOCK_MONOTONIC, &a);
    cairn_workflow *wf = load(src);
    clock_gettime(CLOCK_MONOTONIC, &b);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cb);
    cairn_workflow_free(wf);
    free(src);
    *cpu_ms = ms_between(ca, cb);
    return ms_between(a, b);
}

/* Each load line: the median wall time, and the median CPU time in the
 * last column. */
static void load_lines(int repeat, double *v) {
    static const struct { const char *name; int kind; } kinds[] = {
        {"load 1000 steps, 999 path expressions", PATH},
        {"load 1000 steps, 999 arithmetic expressions", ARITH},
        {"load 1000 steps, 999 jq pipelines", JQ},
        {"load 1000 steps, 999 reduce (libjq)", LIBJQ},
    };
    double *cpu = cairn_calloc((size_t)repeat, sizeof *cpu);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (int i = 0; i < repeat; i++) v[i] = load_ms(1000, kinds[k].kind, &cpu[i]);
        char c[32];
        snprintf(c, sizeof c, "cpu %.1f", median(cpu, repeat));
        printf("%-44s %9.1f ms %10s\n", kinds[k].name, median(v, repeat), c);
    }
    free(cpu);
}

/* ---- mask: what hiding secrets costs each stored value ----------------------- */

#define MASK_SECRETS 3

/* Microseconds to mask value (borrowed) once, the median of `repeat` rounds
 * of `n` maskings. */
static double mask_us(jv value, int n, int repeat) {
    static const char *const values[MASK_SECRETS] = {
        "ghp_4f9Kq2ZxV7mB1nR8tY3uW6pL0sD5aHcE", "hunter2-correct-horse", "xoxb-1234-5678-abcdEFGH"};
    char name[32];
    for (int i = 0; i < MASK_SECRETS; i++) {
        snprintf(name, sizeof name, "CAIRN_SECRET_BENCH%d", i);
        setenv(name, values[i], 1);
    }
    cairn_secrets *s = NULL;
    cairn_err err;
    char *file = cairn_sprintf("%s/none.secrets", dir);
    if (cairn_secrets_load(file, file, &s, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    double *v = cairn_calloc((size_t)repeat, sizeof *v);
    for (int r = 0; r < repeat; r++) {
        int64_t start = cairn_now_us();
        for (int i = 0; i < n; i++) jv_free(cairn_secrets_mask(jv_copy(value), s));
        v[r] = (double)(cairn_now_us() - start) / n;
    }
    double m = median(v, repeat);
    free(v);
    free(file);
    cairn_secrets_free(s);
    jv_free(value);
    return m;
}

static void mask_lines(int repeat) {
    jv input = jv_object_set(jv_object(), jv_string("n"), jv_number(42));
    input = jv_object_set(input, jv_string("prev"), jv_string("41"));
    cairn_buf text = CAIRN_BUF_INIT;
    while (text.len < 4096) cairn_buf_printf(&text, "%zu 2026-12-07T05:06:07Z INFO pruned /var/spool/app/%zu.log\n", text.len, text.len);
    jv out = jv_object_set(jv_object(), jv_string("exit_code"), jv_number(0));
    out = jv_object_set(out, jv_string("stdout"), jv_string_sized(text.data, (int)text.len));
    out = jv_object_set(out, jv_string("stderr"), jv_string(""));
    double a = mask_us(input, 200000, repeat), b = mask_us(out, 20000, repeat);
    printf("%-44s %9.2f us %10s\n", "mask a W2 step's input, 3 secrets", a, "-");
    printf("%-44s %9.0f MB/s %8s\n", "mask a 4 KiB shell output, 3 secrets", text.len / b, "-");
    cairn_buf_free(&text);
}

/* Microseconds per evaluation of the 999 expressions of a generated
 * workflow (kind as gen_workflow) over the document they read, 100 times. */
static double eval_us(int kind) {
    char *src = gen_workflow(1000, kind);
    cairn_workflow *wf = load(src);
    jv steps = jv_object();
    for (int i = 0; i < 1000; i++)
        steps = jv_object_set(steps, jv_string_fmt("s%d", i),
                              JV_OBJECT(jv_string("output"), JV_OBJECT(jv_string("n"), jv_number(i))));
    jv doc = JV_OBJECT(jv_string("steps"), steps);
    int n = cairn_exprset_count(wf->exprs);
    int64_t t0 = cairn_now_us();
    for (int round = 0; round < 100; round++)
        for (int i = 0; i < n; i++) {
            jv out;
            cairn_err err;
            if (cairn_exprset_eval(wf->exprs, i, doc, &out, &err)) {
                fprintf(stderr, "bench: %s\n", err.msg);
                exit(1);
            }
            jv_free(out);
        }
    double us = (double)(cairn_now_us() - t0) / (100.0 * n);
    jv_free(doc);
    cairn_workflow_free(wf);
    free(src);
    return us;
}

static void eval_lines(int repeat) {
    double *v = cairn_calloc((size_t)repeat, sizeof *v);
    for (int i = 0; i < repeat; i++) v[i] = eval_us(PATH);
    printf("%-44s %9.2f us %10s\n", "eval a plain path (native), each", median(v, repeat), "-");
    for (int i = 0; i < repeat; i++) v[i] = eval_us(JQ);
    printf("%-44s %9.2f us %10s\n", "eval a jq pipeline, each", median(v, repeat), "-");
    for (int i = 0; i < repeat; i++) v[i] = eval_us(LIBJQ);
    printf("%-44s %9.2f us %10s\n", "eval a reduce (libjq), each", median(v, repeat), "-");
    free(v);
}

/* The fsync and sqlite lines; the raw fsync rate, which the W lines
 * compare with. */
static double fsync_lines(int repeat, double *v) {
    for (int i = 0; i < repeat; i++) v[i] = fsync_rate(false, 0, 1000);
    double fs = median(v, repeat);
    printf("%-44s %10.0f/s %10s\n", "fsync (fdatasync of 4 KiB)", fs, "1.00");
    for (int i = 0; i < repeat; i++) v[i] = fsync_rate(true, 0, 1000);
    double fa = median(v, repeat);
    printf("%-44s %10.0f/s %10.2f\n", "fsync appending 4 KiB (the file grows)", fa, fa / fs);
    for (int i = 0; i < repeat; i++) v[i] = fsync_rate(false, FSYNC_WORK_US, 1000);
    double fw = median(v, repeat);
    char label[64];
    snprintf(label, sizeof label, "fsync after %d us of work each", FSYNC_WORK_US);
    printf("%-44s %10.0f/s %10.2f\n", label, fw, fw / fs);
    for (int i = 0; i < repeat; i++) v[i] = sqlite_commit_rate();
    double sc = median(v, repeat);
    printf("%-44s %10.0f/s %10.2f\n", "sqlite commit (2 rows, WAL, synchronous=FULL)", sc, sc / fs);
    return fs;
}

int main(int argc, char **argv) {
    cairn_store_sqlite_init();   /* before this file's own SQLite use */
    dir = getenv("BENCH_DIR") ? getenv("BENCH_DIR") : ".";
    if (argc > 1 && strcmp(argv[1], "foreach") == 0) return foreach_child();
    int repeat = getenv("BENCH_REPEAT") ? atoi(getenv("BENCH_REPEAT")) : 3;
    if (repeat < 1) repeat = 1;
    double *v = cairn_calloc((size_t)repeat, sizeof *v);
    double *paired = cairn_calloc((size_t)repeat, sizeof *paired);
    double *others = cairn_calloc((size_t)repeat, sizeof *others);

    /* BENCH_ONLY: a name prefix ("W2", "load", "audit"...): only those lines,
     * and the fsync lines when the W lines that compare with them run */
    const char *only = getenv("BENCH_ONLY");
    printf("%-44s %12s %10s %10s\n", "benchmark", "median", "vs fsync", "beside");
    double fs = 0;
    if (only == NULL || only[0] == 'W' || strncmp(only, "fsync", 5) == 0 ||
        strncmp(only, "sqlite", 6) == 0)
        fs = fsync_lines(repeat, v);

    struct workload { const char *name; int runs, steps; bool pool, warm; } w[] = {
        {"W1 1 run x 1000 sequential set (inline)", 1, 1000, false, false},
        {"W1 1 run x 1000 sequential set (pool)", 1, 1000, true, false},
        {"W1 as above, journal in use (inline)", 1, 1000, false, true},
        {"W1 as above, journal in use (pool)", 1, 1000, true, true},
        {"W2 1000 runs x 100 set (inline)", 1000, 100, false, false},
        {"W2 1000 runs x 100 set (pool)", 1000, 100, true, false},
    };
    size_t n_w = sizeof w / sizeof w[0];
    const char *pg = getenv("BENCH_PG_URL");
    for (size_t k = 0; k < n_w + (pg && *pg ? n_w : 0); k++) {
        pg_url = k >= n_w ? pg : NULL;   /* the same workloads, on PostgreSQL */
        if (only && strncmp(w[k % n_w].name, only, strlen(only)) != 0) continue;
        const struct workload *x = &w[k % n_w];
        if (pg_url && x->warm) continue;   /* no write-ahead log to warm */
        char beside[16] = "-";
        for (int i = 0; i < repeat; i++) {
            if (x->runs == 1)
                paired[i] = w1_beside_fsync(x->steps, x->pool, x->warm, i, &v[i]);
            else
                v[i] = run_steps(x->runs, x->steps, x->pool, x->warm, i, &paired[i], &others[i]);
        }
        if (x->runs == 1) snprintf(beside, sizeof beside, "%.2f", median(paired, repeat));
        double m = median(v, repeat);
        char name[64];
        snprintf(name, sizeof name, "%s%s", pg_url ? "pg " : "", x->name);
        printf("%-44s %6.0f steps/s %9.2f %10s\n", name, m, m / fs, beside);
        if (x->runs > 1) {
            printf("%-44s %9.2f us %10s\n", x->pool ? "W2 orchestrator CPU a step (pool)"
                                                   : "W2 orchestrator CPU a step (inline)",
                   median(paired, repeat), "-");
            /* the journal's writer and syncer, the pool's workers, and the
             * engine's close (its last apply) */
            printf("%-44s %9.2f us %10s\n", x->pool ? "W2 other threads' CPU a step (pool)"
                                                   : "W2 other threads' CPU a step (inline)",
                   median(others, repeat), "-");
        }
    }
    pg_url = NULL;
    if (only == NULL || strncmp(only, "load", 4) == 0) load_lines(repeat, v);
    if (only == NULL || strncmp(only, "mask", 4) == 0) mask_lines(repeat);
    if (only == NULL || strncmp(only, "eval", 4) == 0) eval_lines(repeat);
    if (only == NULL || strncmp(only, "W3", 2) == 0) w3();
    if (only == NULL || strncmp(only, "foreach", 7) == 0) {
        double *mb = cairn_calloc((size_t)repeat, sizeof *mb);
        foreach_bench(repeat, v, mb);
        printf("%-44s %6.0f items/s %9s %10s\n", "foreach 1 run x 100000 set items",
               median(v, repeat), "-", "-");
        printf("%-44s %9.1f MB %10s\n", "foreach peak resident memory (own process)",
               median(mb, repeat), "-");
        free(mb);
    }
    if (only == NULL || strncmp(only, "audit", 5) == 0 || strncmp(only, "replay", 6) == 0)
        audit_lines(repeat, v, only == NULL || only[0] == 'a');
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%-44s %9.1f MB %10s\n", "peak resident memory of the whole run", ru.ru_maxrss / 1024.0, "-");
    free(v);
    free(paired);
    free(others);
    return 0;
}
