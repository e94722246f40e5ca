/*
 * schedule.c - firing the served workflows' schedule triggers (schedule.h).
 *
 * One list of schedules, guarded by a lock; a tick settles the schedules
 * not yet settled (their past: a claimed fire whose run was lost, missed
 * fires and catch-up), then fires, in time order, every slot that is due.
 * A slot's fate is one of: done (move "considered" past it), wait (another
 * live server holds its claim and has not started its run yet), retry (the
 * journal or the engine could not be used now; the claim, if taken, stays
 * and is found again).
 */
#include "server/schedule.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/file.h"
#include "common/mem.h"
#include "common/strmap.h"
#include "common/tz.h"
#include "dsl/cron.h"
#include "dsl/expr.h"
#include "engine/engine.h"
#include "engine/journal.h"
#include "engine/owner.h"

#define CONSIDERED "considered"
#define TIME_TEXT 40                     /* an RFC 3339 time and its NUL */

typedef enum { SLOT_DONE, SLOT_WAIT, SLOT_RETRY } slot_fate;

typedef struct entry {
    char *workflow, *text, *space;
    char hash[65];
    int index;                           /* in the workflow's triggers */
    cairn_cron cron;
    cairn_tz *tz;                        /* NULL: UTC */
    bool catch_up;
    jv inputs;                           /* the mapping as written, or null */
    bool settled;                        /* its past is decided */
    bool at_start;                       /* settled as a server's start (else a reload's) */
    int64_t next;                        /* the next slot, UTC seconds; INT64_MAX: none */
    char considered[TIME_TEXT];          /* as last read or written; "" none */
} entry;

struct srv_schedule {
    srv_schedule_config cfg;
    cairn_journal *j;
    char owner[256];
    char *clock_file;                    /* CAIRN_SCHEDULE_CLOCK */
    int64_t clock_last;                  /* the file's last good reading */
    pthread_mutex_t mu;                  /* everything below */
    pthread_cond_t cond;
    entry *e, *staged;
    int n, n_staged;
    bool ticked;                         /* a tick ran: later schedules come by reload */
    bool thread_on, stop;
    bool ready;                          /* the engine turned once: starts go to it (thread) */
    pthread_t thread;
};

/* ---- entries ------------------------------------------------------------------------ */

static void entry_clear(entry *e) {
    free(e->workflow);
    free(e->text);
    free(e->space);
    cairn_tz_free(e->tz);
    jv_free(e->inputs);
}

static void say(srv_schedule *s, const entry *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(srv_schedule *s, const entry *e, const char *fmt, ...) {
    if (s->cfg.log == NULL) return;
    va_list ap;
    va_start(ap, fmt);
    flockfile(s->cfg.log);   /* one line, not interleaved with other threads' */
    fprintf(s->cfg.log, "cairn: schedule %s[%d] \"%s\" %s: ", e->workflow, e->index, e->text,
            cairn_tz_name(e->tz));
    vfprintf(s->cfg.log, fmt, ap);
    fputc('\n', s->cfg.log);
    funlockfile(s->cfg.log);
    va_end(ap);
}

static void count(srv_schedule *s, const entry *e, const char *result) {
    if (s->cfg.count) s->cfg.count(s->cfg.ud, e->workflow, result);
}

static jv get(jv obj, const char *key) {
    jv v = jv_object_get(jv_copy(obj), jv_string(key));
    return jv_is_valid(v) ? v : (jv_free(v), jv_null());
}

/* Trigger i of wf (borrowed) as an entry, when it is a schedule; false
 * when it is not one or does not load (reported). */
static bool entry_of(srv_schedule *s, const cairn_workflow *wf, int i, jv t, entry *e) {
    jv text = get(t, "schedule"), zone = get(t, "timezone");
    bool ok = jv_get_kind(text) == JV_KIND_STRING;
    memset(e, 0, sizeof *e);
    e->inputs = jv_null();
    if (ok) {
        char msg[256];
        size_t at;
        cairn_err err;
        e->workflow = cairn_strdup(wf->name);
        e->text = cairn_strdup(jv_string_value(text));
        e->space = cairn_sprintf("schedule/%s/%d", wf->name, i);
        e->index = i;
        snprintf(e->hash, sizeof e->hash, "%s", wf->sha256);
        e->catch_up = jv_get_kind(get(t, "catch_up")) == JV_KIND_TRUE;
        jv_free(e->inputs);
        e->inputs = get(t, "inputs");
        e->next = INT64_MAX;
        ok = cairn_cron_parse(e->text, &e->cron, msg, sizeof msg, &at) == 0;
        if (ok && jv_get_kind(zone) == JV_KIND_STRING &&
            cairn_tz_load(jv_string_value(zone), &e->tz, &err) != 0) {
            say(s, e, "not served: %s", err.msg);
            ok = false;
        }
        if (!ok) entry_clear(e);
    }
    jv_free(text);
    jv_free(zone);
    return ok;
}

void srv_schedule_stage(srv_schedule *s, const cairn_workflow *wf) {
    if (jv_get_kind(wf->triggers) != JV_KIND_ARRAY) return;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < jv_array_length(jv_copy(wf->triggers)); i++) {
        jv t = jv_array_get(jv_copy(wf->triggers), i);
        entry e;
        if (jv_get_kind(t) == JV_KIND_OBJECT && entry_of(s, wf, i, t, &e)) {
            s->staged = cairn_realloc(s->staged, (size_t)(s->n_staged + 1) * sizeof *s->staged);
            s->staged[s->n_staged++] = e;
        }
        jv_free(t);
    }
    pthread_mutex_unlock(&s->mu);
}

/* The entry of list[0..n) with e's space, cron text and zone, or NULL;
 * by_space maps a space to its index in list. */
static entry *same(entry *list, const cairn_strmap *by_space, const entry *e) {
    int64_t i;
    if (!cairn_strmap_get(by_space, e->space, &i)) return NULL;
    entry *o = &list[i];
    bool kept = strcmp(o->text, e->text) == 0 && strcmp(cairn_tz_name(o->tz), cairn_tz_name(e->tz)) == 0;
    return kept ? o : NULL;
}

static bool has(const cairn_strmap *set, const char *key) {
    int64_t v;
    return cairn_strmap_get(set, key, &v);
}

/* "NAME\nHASH" of each workflow served, and "NAME" of those staged in a
 * served version. */
static cairn_strmap *served_set(const srv_schedule *s, jv served) {
    cairn_strmap *set = cairn_strmap_new();
    jv_array_foreach(served, i, w) {
        jv n = get(w, "name"), h = get(w, "hash");
        if (jv_get_kind(n) == JV_KIND_STRING && jv_get_kind(h) == JV_KIND_STRING) {
            char *k = cairn_sprintf("%s\n%s", jv_string_value(n), jv_string_value(h));
            cairn_strmap_put(set, k, 1);
            free(k);
        }
        jv_free(n);
        jv_free(h);
        jv_free(w);
    }
    for (int i = 0; i < s->n_staged; i++) {
        char *k = cairn_sprintf("%s\n%s", s->staged[i].workflow, s->staged[i].hash);
        if (has(set, k)) cairn_strmap_put(set, s->staged[i].workflow, 1);
        free(k);
    }
    return set;
}

static bool listed(const cairn_strmap *set, const entry *e) {
    char *k = cairn_sprintf("%s\n%s", e->workflow, e->hash);
    bool found = has(set, k);
    free(k);
    return found;
}

void srv_schedule_commit(srv_schedule *s, jv served, int *served_count) {
    pthread_mutex_lock(&s->mu);
    cairn_strmap *set = served_set(s, served), *by_space = cairn_strmap_new();
    for (int i = 0; i < s->n; i++) cairn_strmap_put(by_space, s->e[i].space, i);
    entry *next = cairn_calloc((size_t)(s->n + s->n_staged) + 1, sizeof *next);
    int n = 0;
    for (int i = 0; i < s->n_staged; i++) {   /* the versions loaded now and served */
        entry *e = &s->staged[i], *old = same(s->e, by_space, e);
        if (!listed(set, e)) {
            entry_clear(e);
            continue;
        }
        if (old) {   /* unchanged timing: keep its place */
            e->settled = old->settled;
            e->at_start = old->at_start;
            e->next = old->next;
            memcpy(e->considered, old->considered, sizeof e->considered);
        } else {
            e->at_start = !s->ticked;
        }
        next[n++] = *e;
    }
    for (int i = 0; i < s->n; i++) {   /* the versions kept (a file that failed to load again) */
        entry *e = &s->e[i];
        if (listed(set, e) && !has(set, e->workflow)) next[n++] = *e;
        else entry_clear(e);
    }
    cairn_strmap_free(set);
    cairn_strmap_free(by_space);
    free(s->e);
    free(s->staged);
    s->staged = NULL;
    s->n_staged = 0;
    s->e = next;
    s->n = n;
    *served_count = n;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

/* ---- times and claims -------------------------------------------------------------- */

static void time_text(int64_t secs, char out[TIME_TEXT]) { cairn_rfc3339(secs * 1000, out, TIME_TEXT); }

/* The entry's first slot after t (seconds), INT64_MAX when none. */
static int64_t after(const entry *e, int64_t t) {
    int64_t n;
    return cairn_cron_next(&e->cron, e->tz, t, &n) == 0 ? n : INT64_MAX;
}

/* The latest slot of e in (from, limit), or `from` when there is none.
 * Searched backwards in widening windows, so that a slot every minute does
 * not walk a year of minutes. */
static int64_t last_before(const entry *e, int64_t from, int64_t limit) {
    static const int64_t windows[] = {3600, 86400, 32 * 86400, 400 * 86400, -1};
    for (int w = 0;; w++) {
        int64_t lo = windows[w] < 0 || limit - windows[w] < from ? from : limit - windows[w];
        int64_t last = from;
        for (int64_t t = after(e, lo); t < limit; t = after(e, t)) last = t;
        if (last > from || lo == from) return last;
    }
}

/* Move "considered" on to at least t, by compare-and-set. */
static void consider(srv_schedule *s, entry *e, int64_t t) {
    char want[TIME_TEXT];
    cairn_err err;
    time_text(t, want);
    for (int i = 0; i < CAIRN_SCHEDULE_CAS_TRIES; i++) {
        if (e->considered[0] && strcmp(e->considered, want) >= 0) return;
        char *held = NULL;
        int rc = cairn_journal_claim(s->j, e->space, CONSIDERED, want,
                                     e->considered[0] ? e->considered : NULL, &held, &err);
        if (rc == 0) snprintf(e->considered, sizeof e->considered, "%s", want);
        else if (rc == CAIRN_EEXISTS) snprintf(e->considered, sizeof e->considered, "%s", held);
        else say(s, e, "cannot record the slots considered: %s", err.msg);
        free(held);
        if (rc != CAIRN_EEXISTS) return;
    }
}

/* ---- starting a slot's run ------------------------------------------------------------ */

/* v (consumed) with each string holding an expression rendered over doc;
 * the first failure in *why (code 0 while none). */
static jv render(jv v, jv doc, cairn_err *why) {
    jv_kind k = jv_get_kind(v);
    if (k == JV_KIND_STRING && strstr(jv_string_value(v), "${{")) {
        cairn_exprset *set = cairn_exprset_new();
        cairn_diags d = CAIRN_DIAGS_INIT;
        cairn_tmpl *t = cairn_tmpl_from_string(jv_string_value(v), 0, 0, set, "schedule", &d);
        jv out = jv_null();
        if (cairn_diags_count(&d) > 0 || cairn_exprset_compile(set, &d) != 0) {
            if (why->code == 0) cairn_diags_to_err(&d, why);
        } else {
            cairn_err scratch;
            if (cairn_tmpl_render(t, set, doc, &out, why->code ? &scratch : why) != 0) out = jv_null();
        }
        cairn_tmpl_free(t);
        cairn_exprset_free(set);
        cairn_diags_free(&d);
        jv_free(v);
        return out;
    }
    if (k == JV_KIND_OBJECT) {
        jv out = jv_object();
        jv_object_foreach(v, key, val) out = jv_object_set(out, key, render(val, doc, why));
        jv_free(v);
        return out;
    }
    if (k == JV_KIND_ARRAY) {
        jv out = jv_array();
        jv_array_foreach(v, i, val) out = jv_array_append(out, render(val, doc, why));
        jv_free(v);
        return out;
    }
    return v;
}

static jv trigger_of(const entry *e, int64_t slot, bool caught_up) {
    char at[TIME_TEXT];
    time_text(slot, at);
    jv t = jv_object_set(jv_object(), jv_string("source"), jv_string("schedule"));
    t = jv_object_set(t, jv_string("user"), jv_string("schedule"));
    t = jv_object_set(t, jv_string("workflow"), jv_string(e->workflow));
    t = jv_object_set(t, jv_string("trigger"), jv_number(e->index));
    t = jv_object_set(t, jv_string("schedule"), jv_string(e->text));
    t = jv_object_set(t, jv_string("timezone"), jv_string(cairn_tz_name(e->tz)));
    t = jv_object_set(t, jv_string("at"), jv_string(at));
    return jv_object_set(t, jv_string("caught_up"), jv_bool(caught_up));
}

/* Start run_id for slot, under the claim `claim` (the value that holds
 * the slot now: ours).  `result` names it for metrics and the log. */
static slot_fate start_slot(srv_schedule *s, entry *e, int64_t slot, const char *run_id,
                            const char *claim, bool caught_up, const char *result) {
    char key[TIME_TEXT];
    cairn_err err = {0};
    time_text(slot, key);
    jv trigger = trigger_of(e, slot, caught_up);
    jv inputs = jv_get_kind(e->inputs) == JV_KIND_OBJECT ? render(jv_copy(e->inputs), trigger, &err)
                                                        : jv_object();
    int rc = err.code;
    if (rc) {
        jv_free(inputs);
        jv_free(trigger);
    } else {
        rc = s->cfg.start(s->cfg.ud, e->hash, inputs, trigger, run_id, &err);
    }
    if (rc == 0) {
        say(s, e, "%s run %s for %s", result, run_id, key);
        count(s, e, result);
        return SLOT_DONE;
    }
    if (rc == CAIRN_ESTATE || rc == CAIRN_EIO) {   /* the claim stays: a later look starts it */
        say(s, e, "run %s for %s not started yet: %s", run_id, key, err.msg);
        if (rc == CAIRN_EIO) count(s, e, "failed");
        return SLOT_RETRY;
    }
    char *refused = cairn_sprintf("refused %s", run_id), *held = NULL;
    cairn_err cerr;
    cairn_journal_claim(s->j, e->space, key, refused, claim, &held, &cerr);
    say(s, e, "run %s for %s refused: %s", run_id, key, err.msg);
    count(s, e, "refused");
    free(refused);
    free(held);
    return SLOT_DONE;
}

/* A claim held on slot (value `held`): its run exists (done), was refused
 * (done), is ours from an earlier look (start it), is another live server's
 * and not yet started (wait), or was left by a dead one (take it over and
 * start that same run id). */
static slot_fate settle_held(srv_schedule *s, entry *e, int64_t slot, const char *held,
                             bool caught_up) {
    char run_id[64], owner[256], key[TIME_TEXT];
    if (strncmp(held, "refused ", 8) == 0) return SLOT_DONE;
    if (sscanf(held, "%63s %255s", run_id, owner) != 2 || strlen(run_id) >= CAIRN_RUN_ID_MAX) {
        say(s, e, "the claim on a slot holds '%.80s', not a run: left alone", held);
        return SLOT_DONE;
    }
    if (s->cfg.exists(s->cfg.ud, run_id)) return SLOT_DONE;
    if (strcmp(owner, s->owner) == 0)
        return start_slot(s, e, slot, run_id, held, caught_up, "started");
    if (cairn_journal_owner_alive(s->j, owner)) return SLOT_WAIT;
    time_text(slot, key);
    char *mine = cairn_sprintf("%s %s", run_id, s->owner), *now = NULL;
    cairn_err err;
    int rc = cairn_journal_claim(s->j, e->space, key, mine, held, &now, &err);
    slot_fate fate = rc == 0 ? start_slot(s, e, slot, run_id, mine, caught_up, "recovered")
                     : rc == CAIRN_EEXISTS ? SLOT_WAIT : SLOT_RETRY;
    if (rc == 0) say(s, e, "the fire at %s was claimed by %s, which died before its run started",
                     key, owner);
    free(mine);
    free(now);
    return fate;
}

/* Fire slot: claim it for a new run id and start that run, or settle the
 * claim someone already holds. */
static slot_fate fire(srv_schedule *s, entry *e, int64_t slot, bool caught_up) {
    char key[TIME_TEXT], run_id[CAIRN_RUN_ID_MAX];
    cairn_err err;
    time_text(slot, key);
    cairn_new_run_id(run_id);
    char *value = cairn_sprintf("%s %s", run_id, s->owner), *held = NULL;
    int rc = cairn_journal_claim(s->j, e->space, key, value, NULL, &held, &err);
    slot_fate fate = SLOT_RETRY;
    if (rc == 0) fate = start_slot(s, e, slot, run_id, value, caught_up,
                                   caught_up ? "caught_up" : "started");
    else if (rc == CAIRN_EEXISTS) fate = settle_held(s, e, slot, held, caught_up);
    else say(s, e, "cannot claim the fire at %s: %s", key, err.msg);
    free(value);
    free(held);
    return fate;
}

/* ---- settling a schedule's past ------------------------------------------------------- */

/* The slots missed from the one after `from` to the last before `limit`:
 * the latest runs when the schedule catches up; the others are skipped. */
static slot_fate missed(srv_schedule *s, entry *e, int64_t from, int64_t limit) {
    int64_t first = after(e, from), last = last_before(e, from, limit);
    char a[TIME_TEXT], b[TIME_TEXT];
    if (last <= from) return SLOT_DONE;
    time_text(first, a);
    time_text(last, b);
    if (e->catch_up) {
        slot_fate fate = fire(s, e, last, true);
        if (fate != SLOT_DONE) return fate;
        if (first < last) say(s, e, "missed fires from %s to %s: the last ran (catch_up), the "
                              "earlier ones are skipped", a, b);
    } else {
        say(s, e, "missed fires from %s to %s while no server looked: skipped (catch_up is "
            "false)", a, b);
        count(s, e, "skipped");
    }
    consider(s, e, last);
    return SLOT_DONE;
}

/* The slots after `from` that are more than CAIRN_SCHEDULE_LATE_S old at
 * `now` were missed: no server looked while they were due (it was down,
 * stalled, or the clock jumped).  The first of them may hold a claim whose
 * run a crash lost; the rest go to `missed`.  *from moves to the last slot
 * decided. */
static slot_fate settle_missed(srv_schedule *s, entry *e, int64_t now, int64_t *from) {
    int64_t limit = now - CAIRN_SCHEDULE_LATE_S, first = after(e, *from);
    char key[TIME_TEXT], *held = NULL;
    cairn_err err;
    if (first >= limit) return SLOT_DONE;
    time_text(first, key);
    if (cairn_journal_get_claim(s->j, e->space, key, &held, &err) == 0) {
        slot_fate fate = settle_held(s, e, first, held, false);
        free(held);
        if (fate != SLOT_DONE) return fate;
        consider(s, e, first);
        *from = first;
    }
    slot_fate fate = missed(s, e, *from, limit);
    if (fate == SLOT_DONE) *from = last_before(e, *from, limit);
    return fate;
}

/* Decide e's past, then its next slot.  A schedule new to the journal, or
 * one a reload added, starts from now. */
static slot_fate settle(srv_schedule *s, entry *e, int64_t now) {
    char *value = NULL, next[TIME_TEXT];
    cairn_err err;
    int64_t from = now, ms;
    int rc = cairn_journal_get_claim(s->j, e->space, CONSIDERED, &value, &err);
    if (rc == 0) snprintf(e->considered, sizeof e->considered, "%s", value);
    bool known = rc == 0 && cairn_rfc3339_parse(value, &ms) == 0;
    free(value);
    if (rc != 0 && rc != CAIRN_ENOTFOUND) {
        say(s, e, "cannot read the slots considered: %s", err.msg);
        return SLOT_RETRY;
    }
    if (known && e->at_start) {
        from = cairn_floor_div(ms, 1000);
        slot_fate fate = settle_missed(s, e, now, &from);
        if (fate != SLOT_DONE) return fate;
    } else {
        if (known && cairn_floor_div(ms, 1000) > now) from = cairn_floor_div(ms, 1000);
        consider(s, e, from);
    }
    e->next = after(e, from);
    e->settled = true;
    if (e->next == INT64_MAX) say(s, e, "never fires again");
    else say(s, e, "next fire at %s", (time_text(e->next, next), next));
    return SLOT_DONE;
}

/* ---- the clock and the thread --------------------------------------------------------- */

/* The time written in the clock file, or -1. */
static int64_t read_clock_file(const char *path) {
    char *buf = NULL;
    size_t len;
    int64_t ms = -1;
    if (cairn_file_read(path, 256, &buf, &len) == CAIRN_FILE_OK) {
        buf[strcspn(buf, "\r\n")] = '\0';
        if (cairn_rfc3339_parse(buf, &ms) != 0) ms = -1;
    }
    free(buf);
    return ms;
}

static int64_t clock_now(srv_schedule *s) {
    if (s->cfg.clock) return s->cfg.clock(s->cfg.ud);
    if (s->clock_file == NULL) return cairn_wall_ms();
    int64_t ms = read_clock_file(s->clock_file);
    if (ms >= 0) s->clock_last = ms;
    return s->clock_last;
}

int64_t srv_schedule_tick(srv_schedule *s, int64_t now_ms) {
    int64_t now = cairn_floor_div(now_ms, 1000), soonest = INT64_MAX;
    pthread_mutex_lock(&s->mu);
    s->ticked = true;
    for (int i = 0; i < s->n && !s->stop; i++) {
        entry *e = &s->e[i];
        bool again = !e->settled && settle(s, e, now) != SLOT_DONE;
        if (!again && e->next < now - CAIRN_SCHEDULE_LATE_S) {   /* a stall or a clock jump */
            int64_t from = e->next - 1;
            again = settle_missed(s, e, now, &from) != SLOT_DONE;
            if (!again) e->next = after(e, from);
        }
        while (!again && e->next <= now && !s->stop) {
            again = fire(s, e, e->next, false) != SLOT_DONE;
            if (again) break;
            consider(s, e, e->next);
            e->next = after(e, e->next);
        }
        int64_t due = again ? now + 1 : e->next;   /* a slot waited for: look again in a second */
        if (due < soonest) soonest = due;
    }
    pthread_mutex_unlock(&s->mu);
    return soonest == INT64_MAX ? INT64_MAX : soonest * 1000;
}

static void wait_ms(srv_schedule *s, int64_t ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);   /* the condition waits on it: a wall clock set back
                                            * must not stall the scheduler */
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&s->mu);
    if (!s->stop) pthread_cond_timedwait(&s->cond, &s->mu, &ts);
    pthread_mutex_unlock(&s->mu);
}

static bool stopping(srv_schedule *s) {
    pthread_mutex_lock(&s->mu);
    bool stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

static void *loop(void *arg) {
    srv_schedule *s = arg;
    int64_t poll = s->clock_file ? CAIRN_SCHEDULE_TEST_POLL_MS : CAIRN_SCHEDULE_POLL_MS;
    while (!stopping(s)) {
        int64_t wait = poll;
        if (!s->ready && (s->cfg.ready == NULL || s->cfg.ready(s->cfg.ud))) s->ready = true;
        if (s->ready) {
            int64_t now = clock_now(s), next = srv_schedule_tick(s, now);
            if (next - now < wait) wait = next - now < 1 ? 1 : next - now;
        }
        wait_ms(s, wait);
    }
    return NULL;
}

int srv_schedule_start(srv_schedule *s, cairn_err *err) {
    if (s->thread_on) return 0;
    if (pthread_create(&s->thread, NULL, loop, s) != 0)
        return cairn_err_set(err, CAIRN_EIO, "cannot start the scheduler's thread");
    s->thread_on = true;
    return 0;
}

/* ---- life ------------------------------------------------------------------------------- */

int srv_schedule_new(const srv_schedule_config *cfg, srv_schedule **out, cairn_err *err) {
    *out = NULL;
    const char *file = getenv("CAIRN_SCHEDULE_CLOCK");
    if (cfg->clock == NULL && file && *file && read_clock_file(file) < 0)
        return cairn_err_set(err, CAIRN_EINVAL, "CAIRN_SCHEDULE_CLOCK=%s: no RFC 3339 time in it",
                             file);
    srv_schedule *s = cairn_calloc(1, sizeof *s);
    s->cfg = *cfg;
    cairn_journal_config jc = {.role = CAIRN_JOURNAL_READER};
    int rc = cairn_journal_open(cfg->db_path, &jc, &s->j, err);
    if (rc) {
        free(s);
        return rc;
    }
    if (cfg->clock == NULL && file && *file) {
        s->clock_file = cairn_strdup(file);
        s->clock_last = read_clock_file(file);
    }
    cairn_owner_self(s->owner, sizeof s->owner);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    *out = s;
    return 0;
}

void srv_schedule_free(srv_schedule *s) {
    if (s == NULL) return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
    if (s->thread_on) pthread_join(s->thread, NULL);
    for (int i = 0; i < s->n; i++) entry_clear(&s->e[i]);
    for (int i = 0; i < s->n_staged; i++) entry_clear(&s->staged[i]);
    free(s->e);
    free(s->staged);
    cairn_journal_close(s->j);
    free(s->clock_file);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    free(s);
}
