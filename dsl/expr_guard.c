/*
 * expr_guard.c - the watchdog that bounds jq evaluations (see expr_guard.h).
 *
 * One watchdog thread serves the process.  Slots (one per evaluating thread)
 * sit in a list under one mutex; arming and disarming take the mutex once
 * each and wake the watchdog only when it sleeps, so an evaluation of a
 * microsecond pays about a tenth of one for its bound.
 */
#include "dsl/expr_guard.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/mem.h"

typedef struct guard_slot {
    struct guard_slot *next;
    jq_state *jq;                 /* armed: the state evaluating; NULL otherwise */
    int64_t start_us, deadline_us;
    int64_t memory_bytes;
    int64_t base_rss;             /* -1 until the watchdog has seen this arming */
    cairn_guard_verdict verdict;
} guard_slot;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t slot_key;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake;       /* on CLOCK_MONOTONIC */
static guard_slot *slots;
static bool running;              /* the watchdog thread exists in this process */
static bool sleeping;
static int64_t last_armed_us;
static int64_t last_rss = -1, last_sample_us;   /* the watchdog's previous sample */

/* ---- the watchdog ----------------------------------------------------------- */

/* Resident set size in bytes, or -1 when /proc cannot say. */
static int64_t read_rss(void) {
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    long long size, resident;
    if (sscanf(buf, "%lld %lld", &size, &resident) != 2) return -1;
    return (int64_t)resident * sysconf(_SC_PAGESIZE);
}

static void halt(guard_slot *s, cairn_guard_verdict why) {
    s->verdict = why;
    jq_halt(s->jq, jv_invalid(), jv_invalid());
}

/* Check every armed slot against its bounds (mu held); returns the time of
 * the nearest deadline, or INT64_MAX when nothing is armed. */
static int64_t check_slots(int64_t now, int64_t rss) {
    int64_t next = INT64_MAX;
    for (guard_slot *s = slots; s; s = s->next) {
        if (s->jq == NULL || s->verdict != CAIRN_GUARD_OK) continue;
        if (s->base_rss < 0)     /* a sample from before it began, if there is one */
            s->base_rss = last_rss >= 0 && last_sample_us <= s->start_us ? last_rss : rss;
        if (now >= s->deadline_us) halt(s, CAIRN_GUARD_TIME);
        else if (rss >= 0 && rss - s->base_rss > s->memory_bytes) halt(s, CAIRN_GUARD_MEMORY);
        else if (s->deadline_us < next) next = s->deadline_us;
    }
    return next;
}

static void wait_until(int64_t us) {
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    pthread_cond_timedwait(&wake, &mu, &ts);
}

static void *watchdog(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        pthread_mutex_unlock(&mu);
        int64_t rss = read_rss();      /* not under the lock: arming never waits on /proc */
        pthread_mutex_lock(&mu);
        int64_t now = cairn_now_us();
        int64_t next = check_slots(now, rss);
        last_rss = rss;
        last_sample_us = now;
        if (next == INT64_MAX && now - last_armed_us >= CAIRN_EXPR_GUARD_IDLE_MS * 1000) {
            sleeping = true;
            while (sleeping) pthread_cond_wait(&wake, &mu);
            last_rss = -1;             /* stale after a sleep */
            continue;
        }
        int64_t tick = now + CAIRN_EXPR_GUARD_TICK_MS * 1000;
        wait_until(next < tick ? next : tick);
    }
    return NULL;
}

/* ---- slots ---------------------------------------------------------------- */

static void slot_free(void *p) {
    guard_slot *s = p;
    pthread_mutex_lock(&mu);
    for (guard_slot **pp = &slots; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    pthread_mutex_unlock(&mu);
    free(s);
}

static void init_wake(void) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wake, &ca);
    pthread_condattr_destroy(&ca);
}

/* A child of fork() has no watchdog: the next arming starts one.  Only the
 * forking thread lives on, with its slot; the lock was held across the fork
 * so that no other thread had it half-way. */
static void fork_prepare(void) { pthread_mutex_lock(&mu); }
static void fork_parent(void) { pthread_mutex_unlock(&mu); }
static void fork_child(void) {
    slots = pthread_getspecific(slot_key);
    if (slots) slots->next = NULL;
    running = sleeping = false;
    pthread_mutex_init(&mu, NULL);
    init_wake();
}

static void init(void) {
    init_wake();
    if (pthread_key_create(&slot_key, slot_free) != 0 ||
        pthread_atfork(fork_prepare, fork_parent, fork_child) != 0) {
        fprintf(stderr, "cairn: cannot set up the expression watchdog\n");
        abort();
    }
}

/* Start the watchdog thread (mu held). */
static void start_watchdog(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, watchdog, NULL) != 0) {
        fprintf(stderr, "cairn: cannot start the expression watchdog\n");
        abort();
    }
    pthread_detach(t);
    running = true;
}

static guard_slot *my_slot(void) {
    guard_slot *s = pthread_getspecific(slot_key);
    if (s) return s;
    s = cairn_calloc(1, sizeof *s);
    pthread_setspecific(slot_key, s);
    pthread_mutex_lock(&mu);
    s->next = slots;
    slots = s;
    pthread_mutex_unlock(&mu);
    return s;
}

void cairn_exprguard_arm(jq_state *jq, int64_t time_ms, int64_t memory_bytes) {
    pthread_once(&once, init);
    guard_slot *s = my_slot();
    int64_t now = cairn_now_us();
    pthread_mutex_lock(&mu);
    s->jq = jq;
    s->start_us = now;
    s->deadline_us = now + time_ms * 1000;
    s->memory_bytes = memory_bytes;
    s->base_rss = -1;
    s->verdict = CAIRN_GUARD_OK;
    last_armed_us = now;
    if (!running) start_watchdog();
    if (sleeping) {
        sleeping = false;
        pthread_cond_signal(&wake);
    }
    pthread_mutex_unlock(&mu);
}

cairn_guard_verdict cairn_exprguard_disarm(void) {
    pthread_once(&once, init);
    guard_slot *s = pthread_getspecific(slot_key);
    if (s == NULL) return CAIRN_GUARD_OK;
    pthread_mutex_lock(&mu);
    s->jq = NULL;
    cairn_guard_verdict v = s->verdict;
    pthread_mutex_unlock(&mu);
    return v;
}
