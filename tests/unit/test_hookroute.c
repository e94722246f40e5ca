/*
 * Webhooks carried out against a real journal and engine (server/hookroute.h),
 * and the fold of a resolved trigger event (engine/fold.h).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "actions/action.h"
#include "common/clock.h"
#include "common/mem.h"
#include "engine/fold.h"
#include "engine/journal.h"
#include "server/backend.h"
#include "server/hookroute.h"
#include "test.h"

static void fold(cairn_run_state *st, int64_t seq, cairn_event_type t, const char *data) {
    cairn_event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.run_id, sizeof ev.run_id, "r1");
    ev.seq = seq;
    ev.time_ms = seq * 10;
    ev.type = t;
    ev.data = (char *)data;
    cairn_err err;
    if (cairn_fold_event(st, &ev, &err) != 0) TEST_FAIL("seq %lld: %s", (long long)seq, err.msg);
}

static const char *text(jv v, const char *a, const char *b) {
    static char out[256];
    jv x = jv_object_get(jv_object_get(jv_copy(v), jv_string(a)), jv_string(b));
    snprintf(out, sizeof out, "%s", jv_get_kind(x) == JV_KIND_STRING ? jv_string_value(x) : "?");
    jv_free(x);
    return out;
}

TEST(fold_sets_trigger_resolved_and_leaves_the_status) {
    cairn_run_state *st = cairn_run_state_new("r1", NULL, 0);
    fold(st, 1, CAIRN_EV_RUN_CREATED, "{\"workflow\":\"w\",\"trigger\":{\"source\":\"grafana\"}}");
    fold(st, 2, CAIRN_EV_RUN_PAUSED, "{}");
    fold(st, 3, CAIRN_EV_TRIGGER_RESOLVED, "{\"event\":{\"status\":\"resolved\"}}");
    CHECK_STR(text(st->trigger, "resolved", "status"), "resolved");
    jv src = jv_object_get(jv_copy(st->trigger), jv_string("source"));
    CHECK_STR(jv_string_value(src), "grafana");
    jv_free(src);
    CHECK_INT(st->status, CAIRN_RUN_PAUSED);
    CHECK_INT(st->status_ms, 20);   /* moved by the pause, not by the resolved event */
    CHECK_INT(st->last_seq, 3);
    cairn_run_state_free(st);
}

static const char WF[] =
    "cairn: 1\n"
    "name: held\n"
    "inputs:\n"
    "  k: { type: string, required: true }\n"
    "triggers:\n"
    "  - webhook: generic\n"
    "    match: { alertname: \"^A$\" }\n"
    "    dedupe: ${{ .labels.k }}\n"
    "    inputs: { k: \"${{ .labels.k }}\" }\n"
    "steps:\n"
    "  - id: hold\n"
    "    uses: approval\n"
    "    with: { prompt: \"go?\", approvers: [ann] }\n";

static void *turn(void *arg) {
    cairn_err err;
    srv_backend_run(arg, &err);
    return NULL;
}

/* Deliver body; the run named by the first entry of list, or "" (answer freed). */
static const char *deliver(srv_hooks *h, const char *body, const char *list, int *n) {
    static char run[CAIRN_RUN_ID_MAX];
    jv a;
    cairn_err err;
    if (srv_hooks_deliver(h, "generic", body, strlen(body), jv_object(), &a, &err) != 0)
        TEST_FAIL("deliver: %s", err.msg);
    jv l = jv_object_get(a, jv_string(list));
    *n = jv_array_length(jv_copy(l));
    jv first = jv_array_get(l, 0);
    jv id = jv_is_valid(first) ? jv_object_get(first, jv_string("run")) : (jv_free(first), jv_null());
    snprintf(run, sizeof run, "%s", jv_get_kind(id) == JV_KIND_STRING ? jv_string_value(id) : "");
    jv_free(id);
    return run;
}

/* A backend serving WF at db, opened on this thread, and its hooks. */
static srv_backend *served(const char *db, srv_hooks **h) {
    srv_backend *b = NULL;
    cairn_err err;
    char hash[65];
    srv_backend_config bc = {.db_path = db};
    if (srv_backend_open(&bc, &b, &err) != 0) TEST_FAIL("%s", err.msg);
    srv_hooks_config hc = {.backend = b, .db_path = db};
    *h = srv_hooks_new(&hc);
    cairn_diags d = CAIRN_DIAGS_INIT;
    cairn_workflow *wf = NULL;
    CHECK_INT(cairn_workflow_load("held.yaml", WF, sizeof WF - 1, cairn_action_lookup_sig, &wf, &d), 0);
    cairn_diags_free(&d);
    srv_hooks_learn(*h, wf);
    CHECK_INT(srv_backend_add_workflow(b, wf, hash, &err), 0);
    CHECK_INT(srv_hooks_rebuild(*h, NULL, NULL, &err), 0);
    return b;
}

typedef struct early {
    srv_backend *b;
    srv_hooks *h;
    int rc;
    atomic_bool done;
    cairn_err err;
} early;

static void *deliver_early(void *arg) {
    early *e = arg;
    jv a = jv_invalid();
    const char *body = "{\"alertname\":\"A\",\"labels\":{\"k\":\"1\"}}";
    e->rc = srv_hooks_deliver(e->h, "generic", body, strlen(body), jv_object(), &a, &e->err);
    jv_free(a);
    atomic_store(&e->done, true);
    srv_backend_stop(e->b);
    return NULL;
}

/* A server takes requests before its loop turns: a delivery that arrives
 * then is queued for the loop and answered once its run is durable, not
 * carried out on the request's thread (a race with the loop) and refused. */
TEST(hooks_a_delivery_before_the_loop_turns_waits_for_it) {
    char *db = cairn_sprintf("%s/j.db", test_tmpdir());
    srv_hooks *h = NULL;
    srv_backend *b = served(db, &h);
    early e = {.b = b, .h = h, .rc = -1};
    pthread_t t;
    pthread_create(&t, NULL, deliver_early, &e);
    /* give a delivery carried out at once the time to finish; one that
     * waits for the loop is not done before it turns */
    int64_t until = cairn_now_ms() + 300;
    while (!atomic_load(&e.done) && cairn_now_ms() < until) sched_yield();
    cairn_err err;
    CHECK_INT(srv_backend_run(b, &err), 0);   /* until the delivery stops it */
    pthread_join(t, NULL);
    if (e.rc != 0) TEST_FAIL("the early delivery: %s", e.err.msg);
    srv_hooks_free(h);
    srv_backend_close(b);
    free(db);
}

TEST(hooks_start_one_run_a_key_and_deliver_its_resolved_event) {
    char *db = cairn_sprintf("%s/j.db", test_tmpdir()), first[CAIRN_RUN_ID_MAX];
    srv_hooks *h = NULL;
    srv_backend *b = served(db, &h);
    cairn_err err;
    pthread_t t;
    pthread_create(&t, NULL, turn, b);
    int64_t deadline = cairn_now_ms() + 10000;   /* the loop on t takes over from this thread */
    while (!srv_backend_running(b) && cairn_now_ms() < deadline) sched_yield();
    CHECK(srv_backend_running(b));
    int n;
    snprintf(first, sizeof first, "%s", deliver(h, "{\"alertname\":\"A\",\"labels\":{\"k\":\"1\"}}", "started", &n));
    CHECK_INT(n, 1);
    CHECK_STR(deliver(h, "{\"alertname\":\"A\",\"labels\":{\"k\":\"1\"}}", "existed", &n), first);
    CHECK_INT(n, 1);
    CHECK(strcmp(deliver(h, "{\"alertname\":\"A\",\"labels\":{\"k\":\"2\"}}", "started", &n), first) != 0);
    CHECK_INT(n, 1);
    const char *res = "{\"alertname\":\"A\",\"status\":\"resolved\",\"labels\":{\"k\":\"1\"}}";
    CHECK_STR(deliver(h, res, "resolved", &n), first);
    CHECK_INT(n, 1);
    deliver(h, "{\"alertname\":\"A\",\"status\":\"resolved\",\"labels\":{\"k\":\"9\"}}", "ignored", &n);
    CHECK_INT(n, 1);
    deliver(h, "{\"alertname\":\"B\"}", "unmatched", &n);
    CHECK_INT(n, 1);
    jv run;
    CHECK_INT(srv_backend_get_run(b, first, &run, &err), 0);
    jv status = jv_object_get(run, jv_string("status"));
    CHECK_STR(jv_string_value(status), "waiting");
    jv_free(status);
    jv evs;
    bool ended;
    CHECK_INT(srv_backend_events(b, first, 0, 100, &evs, &ended, &err), 0);
    int resolved = 0;
    jv_array_foreach(evs, i, ev) {
        jv type = jv_object_get(ev, jv_string("type"));
        resolved += strcmp(jv_string_value(type), "trigger_resolved") == 0;
        jv_free(type);
    }
    jv_free(evs);
    CHECK_INT(resolved, 1);
    srv_backend_stop(b);
    pthread_join(t, NULL);
    srv_hooks_free(h);
    srv_backend_close(b);
    free(db);
}

static void *sync_claims(void *arg) {
    cairn_err err;
    return (void *)(intptr_t)cairn_journal_sync_claims(arg, &err);
}

/* Deferred claims are claims like the others to every reader at once; a
 * sync on another thread while a claim is written is allowed, and makes
 * what was written durable. */
TEST(journal_deferred_claims_are_claims_and_sync_on_another_thread) {
    char *path = cairn_sprintf("%s/j.db", test_tmpdir()), *held = NULL, *value = NULL;
    cairn_journal_config ec = {.role = CAIRN_JOURNAL_ENGINE}, rc = {.role = CAIRN_JOURNAL_READER};
    cairn_journal *e = NULL, *a = NULL, *b = NULL;
    cairn_err err;
    CHECK_INT(cairn_journal_open(path, &ec, &e, &err), 0);   /* makes the journal */
    CHECK_INT(cairn_journal_open(path, &rc, &a, &err), 0);
    CHECK_INT(cairn_journal_open(path, &rc, &b, &err), 0);
    CHECK_INT(cairn_journal_claim_deferred(a, "dedupe/w", "k1", "v1", NULL, &held, &err), 0);
    pthread_t t;
    pthread_create(&t, NULL, sync_claims, a);
    CHECK_INT(cairn_journal_claim_deferred(a, "dedupe/w", "k2", "v2", NULL, &held, &err), 0);
    void *synced;
    pthread_join(t, &synced);
    CHECK_INT((intptr_t)synced, 0);
    CHECK_INT(cairn_journal_sync_claims(a, &err), 0);
    CHECK_INT(cairn_journal_get_claim(b, "dedupe/w", "k2", &value, &err), 0);
    CHECK_STR(value, "v2");
    free(value);
    CHECK_INT(cairn_journal_claim_deferred(b, "dedupe/w", "k1", "x", NULL, &held, &err), CAIRN_EEXISTS);
    CHECK_STR(held, "v1");
    free(held);
    CHECK_INT(cairn_journal_claim(b, "dedupe/w", "k1", "v3", "v1", &held, &err), 0);   /* synced */
    CHECK_INT(cairn_journal_get_claim(a, "dedupe/w", "k1", &value, &err), 0);
    CHECK_STR(value, "v3");
    free(value);
    cairn_journal_close(a);
    cairn_journal_close(b);
    cairn_journal_close(e);
    free(path);
}
