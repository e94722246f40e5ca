/*
 * engine_harness.c - see engine_harness.h.
 */
#include "engine_harness.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "actions/action.h"
#include "engine/replay.h"
#include "engine/store.h"
#include "test.h"

/* The trace is written on the orchestrator thread and, with drive_in_thread,
 * read on the test's: one lock and condition for the process (one test). */
static pthread_mutex_t trace_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t trace_cond = PTHREAD_COND_INITIALIZER;

static void trace_event(const cairn_event *ev, const cairn_run_state *st, void *ud) {
    (void)st;
    harness *h = ud;
    pthread_mutex_lock(&trace_mu);
    cairn_buf_printf(&h->trace, "%s:%s ", cairn_event_type_name(ev->type), ev->step ? ev->step : "run");
    pthread_cond_broadcast(&trace_cond);
    pthread_mutex_unlock(&trace_mu);
}

int engine_open_at(const char *db, cairn_engine_config *cfg, cairn_engine **e, cairn_err *err) {
    cairn_journal_config jc = {.role = CAIRN_JOURNAL_ENGINE};
    *e = NULL;
    int rc = cairn_journal_open(db, &jc, &cfg->journal, err);
    return rc ? rc : cairn_engine_open(cfg, e, err);
}

void open_engine(harness *h, bool pool_only) {
    if (!h->db) h->db = cairn_sprintf("%s/j.db", test_tmpdir());
    cairn_engine_config cfg = {.on_event = trace_event, .ud = h, .pool_only = pool_only,
                               .workers = 4};
    cairn_err err;
    if (engine_open_at(h->db, &cfg, &h->e, &err)) TEST_FAIL("open: %s", err.msg);
}

void add(harness *h, const char *src) {
    cairn_workflow *wf = NULL;
    cairn_diags d = CAIRN_DIAGS_INIT;
    if (cairn_workflow_load("t.yaml", src, strlen(src), cairn_action_lookup_sig, &wf, &d)) {
        cairn_diags_print(&d, stderr, src, strlen(src));
        TEST_FAIL("workflow did not load");
    }
    cairn_diags_free(&d);
    cairn_err err;
    CHECK_INT(cairn_engine_add_workflow(h->e, wf, h->hash, &err), 0);
}

void start(harness *h, const char *inputs_json, char *run_id) {
    cairn_err err;
    int rc = cairn_engine_start_run(h->e, h->hash, jv_parse(inputs_json), jv_null(), run_id, &err);
    if (rc) TEST_FAIL("start: %s", err.msg);
}

void drive(harness *h) {
    cairn_err err;
    if (cairn_engine_run(h->e, &err)) TEST_FAIL("run: %s", err.msg);
}

/* The run as `show --json` gives it, read back from the journal. */
jv show(harness *h, const char *run_id) {
    cairn_journal *jr = NULL;
    cairn_journal_config jc = {.role = CAIRN_JOURNAL_READER};
    cairn_err err;
    cairn_run_state *st = NULL;
    CHECK_INT(cairn_journal_open(h->db, &jc, &jr, &err), 0);
    CHECK_INT(cairn_journal_use_key(jr, &err), 0);
    if (cairn_journal_load_run(jr, run_id, &st, NULL, &err)) TEST_FAIL("load: %s", err.msg);
    jv j = cairn_run_state_to_json(st);
    cairn_run_state_free(st);
    cairn_journal_close(jr);
    return j;
}

char *get(jv v, const char *jq_path) {
    /* a tiny path walker: "a.b.c" */
    char *p = cairn_strdup(jq_path), *save = NULL;
    jv cur = jv_copy(v);
    for (char *k = strtok_r(p, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
        if (jv_get_kind(cur) != JV_KIND_OBJECT) { jv_free(cur); cur = jv_null(); break; }
        cur = jv_object_get(cur, jv_string(k));
        if (!jv_is_valid(cur)) { cur = jv_null(); break; }
    }
    free(p);
    jv s = jv_get_kind(cur) == JV_KIND_STRING ? cur : jv_dump_string(cur, 0);
    char *out = cairn_strdup(jv_string_value(s));
    jv_free(s);
    return out;
}

/* Start a run of the workflow added last, drive the engine until it has
 * nothing left to do, and return the run as `show` gives it. */
jv run_to_end(harness *h, const char *inputs_json, char *run_id) {
    start(h, inputs_json, run_id);
    drive(h);
    return show(h, run_id);
}

void close_h(harness *h) {
    cairn_engine_close(h->e);
    h->e = NULL;
}

/* With CAIRN_TEST_REPLAY set (tests/run.sh sets it): every run of the
 * journal at db replays consistent (engine/replay.h), or the test fails
 * naming the first divergence. */
static void replay_every_run(const char *db) {
    cairn_journal *j = NULL;
    cairn_journal_config jc = {.role = CAIRN_JOURNAL_READER};
    cairn_err err;
    char **ids = NULL;
    bool *rows = NULL;
    int n = 0;
    if (!getenv("CAIRN_TEST_REPLAY") || cairn_journal_open(db, &jc, &j, &err) != 0) return;
    CHECK_INT(cairn_journal_run_ids(j, &ids, &rows, &n, &err), 0);
    cairn_replay_journal *rj = cairn_replay_journal_new(j, NULL, &err);
    for (int i = 0; i < n; i++) {
        cairn_replay_result res;
        if (cairn_replay_journal_run(rj, ids[i], &res, &err) != 0)
            TEST_FAIL("replay of run %s: %s", ids[i], err.msg);
        if (res.verdict == CAIRN_REPLAY_DIVERGED)
            TEST_FAIL("run %s diverges at event %lld (%s %s): %s\n    journal: %s\n    replay:  %s",
                      ids[i], (long long)res.seq, cairn_event_type_name(res.type), res.step,
                      res.decision, res.journal, res.replay);
    }
    cairn_replay_journal_free(rj);
    cairn_journal_ids_free(ids, rows, n);
    cairn_journal_close(j);
}

void free_h(harness *h) {
    close_h(h);
    if (h->db && !h->edited) replay_every_run(h->db);
    cairn_buf_free(&h->trace);
    free(h->db);
}

int count_lines(const char *path, const char *prefix) {
    FILE *f = fopen(path, "r");
    char line[256];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) n += strncmp(line, prefix, strlen(prefix)) == 0;
    if (f) fclose(f);
    return n;
}

/* A run's events as the journal holds them (free with cairn_events_free). */
cairn_event *journal_of(harness *h, const char *run_id, int *n) {
    cairn_store *s = NULL;
    cairn_err err;
    cairn_event *evs = NULL;
    CHECK_INT(cairn_store_open_sqlite(h->db, CAIRN_SYNC_FULL, true, &s, &err), 0);
    CHECK_INT(s->ops->load_events(s, run_id, &evs, n, &err), 0);
    cairn_store_close(s);
    return evs;
}

/* Events of the only run, as a JSON array (read back from the journal). */
jv events_of(harness *h, const char *run_id) {
    int n = 0;
    cairn_event *evs = journal_of(h, run_id, &n);
    jv arr = jv_array();
    for (int i = 0; i < n; i++) {
        jv o = jv_object_set(jv_object(), jv_string("type"),
                             jv_string(cairn_event_type_name(evs[i].type)));
        o = jv_object_set(o, jv_string("time"), jv_number((double)evs[i].time_ms));
        o = jv_object_set(o, jv_string("attempt"), jv_number(evs[i].attempt));
        o = jv_object_set(o, jv_string("data"), jv_parse(evs[i].data));
        arr = jv_array_append(arr, o);
    }
    cairn_events_free(evs, n);
    return arr;
}

int count_type(jv events, const char *type) {
    int n = 0;
    jv_array_foreach(events, i, ev) {
        jv t = jv_object_get(ev, jv_string("type"));
        n += strcmp(jv_string_value(t), type) == 0;
        jv_free(t);
    }
    return n;
}

/* Data field `key` (a number) of the k-th event of `type`. */
double event_number(jv events, const char *type, int k, const char *key) {
    double out = -1;
    jv_array_foreach(events, i, ev) {
        jv t = jv_object_get(jv_copy(ev), jv_string("type"));
        if (strcmp(jv_string_value(t), type) == 0 && k-- == 0) {
            jv v = strcmp(key, "time") == 0 ? jv_object_get(jv_copy(ev), jv_string("time"))
                                            : jv_object_get(jv_object_get(jv_copy(ev), jv_string("data")),
                                                            jv_string(key));
            out = jv_get_kind(v) == JV_KIND_NUMBER ? jv_number_value(v) : -1;
            jv_free(v);
        }
        jv_free(t);
        jv_free(ev);
    }
    return out;
}


/* ---- an engine on a thread of its own --------------------------------------- */

static void *drive_loop(void *arg) {
    cairn_err err;
    return (void *)(intptr_t)cairn_engine_run(arg, &err);
}

void drive_in_thread(harness *h, pthread_t *thread) {
    CHECK_INT(pthread_create(thread, NULL, drive_loop, h->e), 0);
}

void join_drive(pthread_t thread) {
    void *rc = NULL;
    pthread_join(thread, &rc);
    CHECK_INT((int)(intptr_t)rc, 0);
}

static int occurrences(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; p && (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

void wait_trace(harness *h, const char *event, int count) {
    char *what = cairn_sprintf("%s ", event);
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += HARNESS_WAIT_S;
    int seen = 0, rc = 0;
    pthread_mutex_lock(&trace_mu);
    while ((seen = occurrences(h->trace.data, what)) < count && rc == 0)
        rc = pthread_cond_timedwait(&trace_cond, &trace_mu, &end);
    pthread_mutex_unlock(&trace_mu);
    if (seen < count)
        TEST_FAIL("waited %d s for %d x \"%s\", saw %d; trace: %s", HARNESS_WAIT_S, count, event,
                  seen, h->trace.data ? h->trace.data : "");
    free(what);
}
