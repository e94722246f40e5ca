/*
 * test_schedule.c - the scheduler (server/schedule.h) over a real engine
 * and journal in this process, its clock given by the test through
 * srv_schedule_tick: two schedulers over one journal fire each slot once,
 * and a claim left by a dead server is started under its own run id.
 */
#include "test.h"

#include <pthread.h>
#include <unistd.h>

#include "actions/action.h"
#include "common/clock.h"
#include "engine/journal.h"
#include "server/backend.h"
#include "server/schedule.h"

static const char WF[] = "cairn: 1\n"
                         "name: tick\n"
                         "triggers:\n"
                         "  - schedule: \"*/5 * * * *\"\n"
                         "steps:\n"
                         "  - id: a\n"
                         "    uses: set\n"
                         "    with: { x: 1 }\n";

typedef struct rig {
    char dir[64], db[128];
    srv_backend *b;
    pthread_t loop;
    cairn_workflow *wf;          /* kept for staging */
    char hash[65];
} rig;

static void *turn(void *arg) {
    cairn_err err;
    srv_backend_run(((rig *)arg)->b, &err);
    return NULL;
}

static int start(void *ud, const char *hash, jv inputs, jv trigger, const char *run_id,
                 cairn_err *err) {
    return srv_backend_start_as(((rig *)ud)->b, hash, inputs, trigger, run_id, err);
}

static bool exists(void *ud, const char *run_id) {
    return srv_backend_run_exists(((rig *)ud)->b, run_id);
}

static cairn_workflow *load(void) {
    cairn_workflow *wf = NULL;
    cairn_diags d = CAIRN_DIAGS_INIT;
    if (cairn_workflow_load("tick.yaml", WF, strlen(WF), cairn_action_lookup_sig, &wf, &d) != 0)
        TEST_FAIL("the workflow does not load");
    cairn_diags_free(&d);
    return wf;
}

static void rig_open(rig *r) {
    cairn_err err;
    snprintf(r->dir, sizeof r->dir, "/tmp/cairn-schedXXXXXX");
    CHECK(mkdtemp(r->dir) != NULL);
    snprintf(r->db, sizeof r->db, "%s/j.db", r->dir);
    srv_backend_config bc = {.db_path = r->db, .sync = CAIRN_SYNC_NORMAL};
    if (srv_backend_open(&bc, &r->b, &err) != 0) TEST_FAIL("backend: %s", err.msg);
    r->wf = load();
    if (srv_backend_add_workflow(r->b, load(), r->hash, &err) != 0) TEST_FAIL("add: %s", err.msg);
    CHECK(pthread_create(&r->loop, NULL, turn, r) == 0);
    int64_t deadline = cairn_now_ms() + 10000;
    while (!srv_backend_healthy(r->b, 1000, &err) && cairn_now_ms() < deadline) usleep(1000);
}

static void rig_close(rig *r) {
    srv_backend_stop(r->b);
    pthread_join(r->loop, NULL);
    srv_backend_close(r->b);
    cairn_workflow_free(r->wf);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", r->dir);
    CHECK(system(cmd) == 0);
}

/* A scheduler serving the rig's workflow. */
static srv_schedule *scheduler(rig *r) {
    srv_schedule_config c = {.db_path = r->db, .start = start, .exists = exists, .ud = r};
    srv_schedule *s = NULL;
    cairn_err err;
    if (srv_schedule_new(&c, &s, &err) != 0) TEST_FAIL("scheduler: %s", err.msg);
    srv_schedule_stage(s, r->wf);
    jv served = jv_array_append(jv_array(), jv_object_set(jv_object_set(jv_object(),
        jv_string("name"), jv_string("tick")), jv_string("hash"), jv_string(r->hash)));
    int n = 0;
    srv_schedule_commit(s, served, &n);
    jv_free(served);
    CHECK_INT(n, 1);
    return s;
}

static int64_t ms(const char *rfc3339) {
    int64_t v;
    if (cairn_rfc3339_parse(rfc3339, &v) != 0) TEST_FAIL("bad time %s", rfc3339);
    return v;
}

/* The run id holding slot `key`, or "" (a claim refused or absent). */
static void fire_of(rig *r, const char *key, char out[64]) {
    cairn_journal *j = NULL;
    cairn_journal_config jc = {.role = CAIRN_JOURNAL_READER};
    cairn_err err;
    char *v = NULL;
    out[0] = '\0';
    CHECK(cairn_journal_open(r->db, &jc, &j, &err) == 0);
    if (cairn_journal_get_claim(j, "schedule/tick/0", key, &v, &err) == 0) sscanf(v, "%63s", out);
    free(v);
    cairn_journal_close(j);
}

/* Wait until the journal's tables list exactly n runs (they trail the
 * engine by milliseconds, never lead it): more is a failure at once. */
static void expect_runs(rig *r, int n) {
    int64_t deadline = cairn_now_ms() + 5000;
    for (;;) {
        jv runs;
        char cursor[CAIRN_SERVE_CURSOR_LEN];
        cairn_err err;
        if (srv_backend_list_runs(r->b, NULL, NULL, "", 1000, &runs, cursor, &err) != 0)
            TEST_FAIL("runs: %s", err.msg);
        int have = jv_array_length(runs);
        if (have > n || (have < n && cairn_now_ms() > deadline))
            TEST_FAIL("%d runs in the journal, want %d", have, n);
        if (have == n) return;
        usleep(1000);
    }
}

TEST(schedule_two_schedulers_one_journal_fire_each_slot_once) {
    rig r;
    rig_open(&r);
    srv_schedule *a = scheduler(&r), *b = scheduler(&r);
    srv_schedule_tick(a, ms("2026-12-07T10:03:00Z"));   /* new: both start from now */
    srv_schedule_tick(b, ms("2026-12-07T10:03:00Z"));
    static const char *const slots[] = {"10:05", "10:10", "10:15", "10:20", "10:25"};
    char ids[5][64];
    for (int i = 0; i < 5; i++) {
        char at[40], key[40];
        snprintf(at, sizeof at, "2026-12-07T%s:01Z", slots[i]);
        snprintf(key, sizeof key, "2026-12-07T%s:00.000Z", slots[i]);
        srv_schedule *first = i % 2 ? a : b, *second = i % 2 ? b : a;
        CHECK_INT(srv_schedule_tick(first, ms(at)), ms(at) + 299000);   /* the next slot */
        srv_schedule_tick(second, ms(at));
        srv_schedule_tick(first, ms(at) + 30000);   /* later in the same slot */
        fire_of(&r, key, ids[i]);
        CHECK(ids[i][0] != '\0');
        CHECK(srv_backend_run_exists(r.b, ids[i]));
        for (int k = 0; k < i; k++) CHECK(strcmp(ids[k], ids[i]) != 0);
    }
    expect_runs(&r, 5);
    srv_schedule_free(a);
    srv_schedule_free(b);
    rig_close(&r);
}

TEST(schedule_claim_of_a_dead_server_starts_its_run) {
    rig r;
    rig_open(&r);
    srv_schedule *a = scheduler(&r);
    srv_schedule_tick(a, ms("2026-12-07T10:03:00Z"));
    srv_schedule_tick(a, ms("2026-12-07T10:05:00Z"));
    srv_schedule_free(a);
    /* the state a crash between claim and run leaves: the 10:10 slot names
     * a run that does not exist, claimed by a process that is gone */
    char lost[CAIRN_RUN_ID_MAX], host[200], value[300], *held = NULL;
    cairn_new_run_id(lost);
    gethostname(host, sizeof host);
    snprintf(value, sizeof value, "%s %s:4194302:1", lost, host);
    cairn_journal *j = NULL;
    cairn_journal_config jc = {.role = CAIRN_JOURNAL_READER};
    cairn_err err;
    CHECK(cairn_journal_open(r.db, &jc, &j, &err) == 0);
    CHECK(cairn_journal_claim(j, "schedule/tick/0", "2026-12-07T10:10:00.000Z", value, NULL, &held,
                              &err) == 0);
    cairn_journal_close(j);
    CHECK(!srv_backend_run_exists(r.b, lost));
    srv_schedule *b = scheduler(&r);   /* a server starting: 10:10 and 10:15 missed */
    srv_schedule_tick(b, ms("2026-12-07T10:21:00Z"));
    CHECK(srv_backend_run_exists(r.b, lost));
    char id[64];
    fire_of(&r, "2026-12-07T10:15:00.000Z", id);
    CHECK_STR(id, "");                    /* catch_up false: skipped, not fired */
    fire_of(&r, "2026-12-07T10:20:00.000Z", id);
    CHECK(id[0] != '\0');                 /* a minute old: late, not missed */
    expect_runs(&r, 3);
    srv_schedule_tick(b, ms("2026-12-07T10:25:00Z"));
    expect_runs(&r, 4);
    srv_schedule_free(b);
    rig_close(&r);
}
