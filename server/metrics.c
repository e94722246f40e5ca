/*
 * metrics.c - counters and histograms for GET /metrics (metrics.h).
 *
 * A series is a family name and its label text ("workflow=\"deploy\"");
 * series live in one array, found by a linear search: a few hundred at
 * most, touched once per event.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/mem.h"
#include "common/strmap.h"
#include "server/metrics.h"

#define N_BUCKETS 12

typedef enum { COUNTER, GAUGE, HISTOGRAM } kind;

typedef struct family {
    const char *name, *help;
    kind kind;
    const double *bounds;        /* histograms: N_BUCKETS upper bounds */
} family;

static const double seconds_bounds[N_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                 0.05, 0.1, 0.5, 1, 10, 60};
static const double batch_bounds[N_BUCKETS] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};

enum {
    F_STARTED, F_FINISHED, F_ACTIVE, F_STEPS, F_STEP_SECONDS, F_COMMIT_SECONDS, F_BATCH,
    F_STREAMS, F_REQUESTS, F_WEBHOOKS, F_SCHEDULES, F_COUNT
};

static const family families[F_COUNT] = {
    [F_STARTED] = {"cairn_runs_started_total", "Runs started, by workflow.", COUNTER, NULL},
    [F_FINISHED] = {"cairn_runs_finished_total", "Runs ended, by workflow and status.", COUNTER, NULL},
    [F_ACTIVE] = {"cairn_runs_active", "Runs held by this server that have not ended.", GAUGE, NULL},
    [F_STEPS] = {"cairn_steps_total", "Step attempts ended, by action and status.", COUNTER, NULL},
    [F_STEP_SECONDS] = {"cairn_step_duration_seconds", "Step attempts, start to end, by action.",
                        HISTOGRAM, seconds_bounds},
    [F_COMMIT_SECONDS] = {"cairn_journal_commit_seconds",
                          "Events from append to durable in the journal.", HISTOGRAM, seconds_bounds},
    [F_BATCH] = {"cairn_journal_batch_events", "Events per group commit of the journal.",
                 HISTOGRAM, batch_bounds},
    [F_STREAMS] = {"cairn_event_streams", "Server-Sent Events streams open.", GAUGE, NULL},
    [F_REQUESTS] = {"cairn_http_requests_total", "HTTP requests answered, by status code.",
                    COUNTER, NULL},
    [F_WEBHOOKS] = {"cairn_webhooks_total", "Webhook deliveries, by source and result.", COUNTER,
                    NULL},
    [F_SCHEDULES] = {"cairn_schedule_fires_total", "Schedule slots, by workflow and what came of "
                     "them.", COUNTER, NULL},
};

typedef struct series {
    int family;
    char *labels;
    double value;                /* counter, gauge; histogram: the sum */
    uint64_t count, buckets[N_BUCKETS];
} series;

struct srv_metrics {
    pthread_mutex_t mu;
    series *s;
    int n, cap;
    int per_family[F_COUNT];
    cairn_strmap *action_of;     /* "def_hash\nstep" -> index in actions */
    char **actions;
    int n_actions;
    cairn_strmap *started_at;    /* "run\nstep\nindex\nattempt" -> wall ms */
    int (*active)(void *);       /* cairn_runs_active, read when written */
    void *active_ud;
};

srv_metrics *srv_metrics_new(void) {
    srv_metrics *m = cairn_calloc(1, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    m->action_of = cairn_strmap_new();
    m->started_at = cairn_strmap_new();
    return m;
}

void srv_metrics_free(srv_metrics *m) {
    if (m == NULL) return;
    for (int i = 0; i < m->n; i++) free(m->s[i].labels);
    free(m->s);
    for (int i = 0; i < m->n_actions; i++) free(m->actions[i]);
    free(m->actions);
    cairn_strmap_free(m->action_of);
    cairn_strmap_free(m->started_at);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* The series (m->mu held); one past the family's bound is "other". */
static series *find(srv_metrics *m, int fam, const char *labels) {
    for (int i = 0; i < m->n; i++)
        if (m->s[i].family == fam && strcmp(m->s[i].labels, labels) == 0) return &m->s[i];
    if (m->per_family[fam] >= CAIRN_METRICS_SERIES_MAX) labels = "other=\"true\"";
    for (int i = 0; i < m->n; i++)
        if (m->s[i].family == fam && strcmp(m->s[i].labels, labels) == 0) return &m->s[i];
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 32;
        m->s = cairn_realloc(m->s, (size_t)m->cap * sizeof *m->s);
    }
    series *s = &m->s[m->n++];
    memset(s, 0, sizeof *s);
    s->family = fam;
    s->labels = cairn_strdup(labels);
    m->per_family[fam]++;
    return s;
}

static void add(srv_metrics *m, int fam, const char *labels, double v) {
    find(m, fam, labels)->value += v;
}

static void observe(srv_metrics *m, int fam, const char *labels, double v) {
    series *s = find(m, fam, labels);
    s->value += v;
    s->count++;
    for (int b = 0; b < N_BUCKETS; b++)
        if (v <= families[fam].bounds[b]) s->buckets[b]++;
}

/* A label value escaped as the format asks (\\, \", \n). */
static void label(cairn_buf *b, const char *name, const char *value) {
    if (b->len) cairn_buf_putc(b, ',');
    cairn_buf_printf(b, "%s=\"", name);
    for (const char *p = value ? value : ""; *p; p++) {
        if (*p == '\\' || *p == '"') cairn_buf_putc(b, '\\');
        if (*p == '\n') cairn_buf_puts(b, "\\n");
        else cairn_buf_putc(b, *p);
    }
    cairn_buf_putc(b, '"');
}

void srv_metrics_learn(srv_metrics *m, const cairn_workflow *wf) {
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < wf->n_steps + wf->n_on_failure; i++) {
        const cairn_step *st = i < wf->n_steps ? &wf->steps[i] : &wf->on_failure[i - wf->n_steps];
        char *key = cairn_sprintf("%s\n%s", wf->sha256, st->id);
        int64_t pos;
        if (!cairn_strmap_get(m->action_of, key, &pos)) {
            m->actions = cairn_realloc(m->actions, (size_t)(m->n_actions + 1) * sizeof *m->actions);
            m->actions[m->n_actions] = cairn_strdup(st->uses ? st->uses : "");
            cairn_strmap_put(m->action_of, key, m->n_actions++);
        }
        free(key);
    }
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_active_from(srv_metrics *m, int (*fn)(void *), void *ud) {
    pthread_mutex_lock(&m->mu);
    m->active = fn;
    m->active_ud = ud;
    pthread_mutex_unlock(&m->mu);
}

static const char *action_of(srv_metrics *m, const cairn_run_state *st, const char *step) {
    char key[256];
    int64_t pos;
    snprintf(key, sizeof key, "%s\n%s", st->def_hash ? st->def_hash : "", step);
    char *hash = strchr(key, '#');   /* a compensate body: "<id>#compensate" */
    if (hash) *hash = '\0';
    return cairn_strmap_get(m->action_of, key, &pos) ? m->actions[pos] : "unknown";
}

/* The attempt's key: a foreach item's index is in its data. */
static void attempt_key(const cairn_event *ev, char *out, size_t len) {
    const char *ix = ev->data ? strstr(ev->data, "\"index\":") : NULL;
    snprintf(out, len, "%s\n%s\n%lld\n%d", ev->run_id, ev->step,
             ix ? atoll(ix + 8) : -1LL, ev->attempt);
}

static const char *step_outcome(cairn_event_type t) {
    switch (t) {
    case CAIRN_EV_STEP_SUCCEEDED: return "succeeded";
    case CAIRN_EV_STEP_FAILED: return "failed";
    case CAIRN_EV_STEP_RETRYING: return "retrying";
    case CAIRN_EV_STEP_CRASHED: return "crashed";
    case CAIRN_EV_STEP_INTERRUPTED: return "interrupted";
    case CAIRN_EV_STEP_SKIPPED: return "skipped";
    default: return NULL;
    }
}

static void step_event(srv_metrics *m, const cairn_event *ev, const cairn_run_state *st) {
    char key[512];
    cairn_buf l = {0};
    const char *outcome = step_outcome(ev->type);
    const char *action = action_of(m, st, ev->step);
    attempt_key(ev, key, sizeof key);
    if (ev->type == CAIRN_EV_STEP_STARTED) {
        cairn_strmap_put(m->started_at, key, ev->time_ms);
    } else if (outcome) {
        label(&l, "action", action);
        label(&l, "status", outcome);
        add(m, F_STEPS, l.data, 1);
        int64_t t0;
        if (cairn_strmap_get(m->started_at, key, &t0)) {
            cairn_buf_reset(&l);
            label(&l, "action", action);
            observe(m, F_STEP_SECONDS, l.data, (double)(ev->time_ms - t0) / 1000.0);
            cairn_strmap_remove(m->started_at, key);
        }
    }
    cairn_buf_free(&l);
}

void srv_metrics_event(srv_metrics *m, const cairn_event *ev, const cairn_run_state *st) {
    cairn_buf l = {0};
    pthread_mutex_lock(&m->mu);
    observe(m, F_COMMIT_SECONDS, "", (double)(cairn_wall_ms() - ev->time_ms) / 1000.0);
    label(&l, "workflow", st->workflow);
    if (ev->type == CAIRN_EV_RUN_CREATED) {
        add(m, F_STARTED, l.data, 1);
    } else if (ev->type == CAIRN_EV_RUN_SUCCEEDED || ev->type == CAIRN_EV_RUN_FAILED ||
               ev->type == CAIRN_EV_RUN_CANCELLED) {
        label(&l, "status", cairn_event_type_name(ev->type) + 4);   /* past "run_" */
        add(m, F_FINISHED, l.data, 1);
    } else if (ev->step) {
        step_event(m, ev, st);
    }
    pthread_mutex_unlock(&m->mu);
    cairn_buf_free(&l);
}

void srv_metrics_batch(srv_metrics *m, int n) {
    pthread_mutex_lock(&m->mu);
    observe(m, F_BATCH, "", n);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_request(srv_metrics *m, int status) {
    char l[24];
    snprintf(l, sizeof l, "code=\"%d\"", status);
    pthread_mutex_lock(&m->mu);
    add(m, F_REQUESTS, l, 1);
    pthread_mutex_unlock(&m->mu);
}

/* One more in fam, under two labels. */
static void count_pair(srv_metrics *m, int fam, const char *k1, const char *v1, const char *k2,
                       const char *v2) {
    cairn_buf l = {0};
    label(&l, k1, v1);
    label(&l, k2, v2);
    pthread_mutex_lock(&m->mu);
    add(m, fam, l.data, 1);
    pthread_mutex_unlock(&m->mu);
    cairn_buf_free(&l);
}

void srv_metrics_webhook(srv_metrics *m, const char *source, const char *result) {
    count_pair(m, F_WEBHOOKS, "source", source, "result", result);
}

void srv_metrics_schedule(srv_metrics *m, const char *workflow, const char *result) {
    count_pair(m, F_SCHEDULES, "workflow", workflow, "result", result);
}

void srv_metrics_streams(srv_metrics *m, int delta) {
    pthread_mutex_lock(&m->mu);
    add(m, F_STREAMS, "", delta);
    pthread_mutex_unlock(&m->mu);
}

static void write_series(cairn_buf *out, const family *f, const series *s) {
    const char *comma = s->labels[0] ? "," : "";
    if (f->kind != HISTOGRAM) {
        cairn_buf_printf(out, "%s%s%s%s %.17g\n", f->name, s->labels[0] ? "{" : "", s->labels,
                         s->labels[0] ? "}" : "", s->value);
        return;
    }
    for (int b = 0; b < N_BUCKETS; b++)
        cairn_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", f->name, s->labels, comma,
                         f->bounds[b], (unsigned long long)s->buckets[b]);
    cairn_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", f->name, s->labels, comma,
                     (unsigned long long)s->count);
    cairn_buf_printf(out, "%s_sum%s%s%s %.17g\n", f->name, s->labels[0] ? "{" : "", s->labels,
                     s->labels[0] ? "}" : "", s->value);
    cairn_buf_printf(out, "%s_count%s%s%s %llu\n", f->name, s->labels[0] ? "{" : "", s->labels,
                     s->labels[0] ? "}" : "", (unsigned long long)s->count);
}

void srv_metrics_write(srv_metrics *m, cairn_buf *out) {
    static const char *const kind_name[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&m->mu);
    int (*active)(void *) = m->active;
    void *ud = m->active_ud;
    pthread_mutex_unlock(&m->mu);
    int held = active ? active(ud) : 0;   /* takes the backend's lock: not under this one */
    pthread_mutex_lock(&m->mu);
    if (active) find(m, F_ACTIVE, "")->value = held;
    for (int f = 0; f < F_COUNT; f++) {
        cairn_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", families[f].name, families[f].help,
                         families[f].name, kind_name[families[f].kind]);
        bool any = false;
        for (int i = 0; i < m->n; i++)
            if (m->s[i].family == f) {
                write_series(out, &families[f], &m->s[i]);
                any = true;
            }
        if (!any && families[f].kind != HISTOGRAM && strchr(families[f].name, '{') == NULL &&
            (f == F_ACTIVE || f == F_STREAMS))
            cairn_buf_printf(out, "%s 0\n", families[f].name);
    }
    pthread_mutex_unlock(&m->mu);
}
