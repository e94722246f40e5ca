/*
 * Trigger events matched against workflows' webhook triggers
 * (server/trigger.h): the fixtures of tests/fixtures/hooks through the
 * normalizers, then the workflows of tests/fixtures/hooks/workflows.
 */
#include "server/trigger.h"

#include "common/json.h"
#include "common/mem.h"
#include "server/hook.h"
#include "test.h"

#define HOOKS "tests/fixtures/hooks/"

static const char *const wf_files[] = {"on-alert", "pd-page", "disk", "typed"};
#define N_WF 4

typedef struct {
    cairn_workflow *wf[N_WF + 1];
    int n;
    cairn_triggers *t;
} loaded;

static void load_wf(loaded *l, const char *path, const char *src) {
    cairn_diags d = CAIRN_DIAGS_INIT;
    cairn_err err;
    int rc = src ? cairn_workflow_load(path, src, strlen(src), NULL, &l->wf[l->n], &d)
                 : cairn_workflow_load_file(path, NULL, &l->wf[l->n], &d);
    if (rc) {
        cairn_diags_to_err(&d, &err);
        TEST_FAIL("%s: %s", path, err.msg);
    }
    cairn_diags_free(&d);
    l->n++;
}

static void load_all(loaded *l, const char *extra_src) {
    memset(l, 0, sizeof *l);
    for (int i = 0; i < N_WF; i++) {
        char path[256];
        snprintf(path, sizeof path, HOOKS "workflows/%s.yaml", wf_files[i]);
        load_wf(l, path, NULL);
    }
    if (extra_src) load_wf(l, "extra.yaml", extra_src);
    cairn_err err;
    if (cairn_triggers_new(l->wf, l->n, &l->t, &err) != 0) TEST_FAIL("triggers: %s", err.msg);
}

static void unload(loaded *l) {
    cairn_triggers_free(l->t);
    for (int i = 0; i < l->n; i++) cairn_workflow_free(l->wf[i]);
}

static jv normalize_text(const char *source, const char *body) {
    jv events;
    cairn_err err;
    if (cairn_hook_normalize(source, body, strlen(body), &events, &err) != 0)
        TEST_FAIL("%s: %s", source, err.msg);
    return events;
}

static jv normalize_file(const char *source, const char *fixture) {
    char path[256];
    snprintf(path, sizeof path, HOOKS "%s", fixture);
    FILE *f = fopen(path, "rb");
    if (!f) TEST_FAIL("cannot open %s", path);
    char *buf = cairn_malloc(CAIRN_HOOK_BODY_MAX + 1);
    size_t n = fread(buf, 1, CAIRN_HOOK_BODY_MAX, f);
    fclose(f);
    buf[n] = '\0';
    jv events = normalize_text(source, buf);
    free(buf);
    return events;
}

/* The answer's list as compact JSON, only the keys named kept (the rest,
 * such as whole payloads, would drown the comparison). */
static char *list_of(jv answer, const char *list, const char *const *keys) {
    jv l = jv_object_get(jv_copy(answer), jv_string(list)), out = jv_array();
    jv_array_foreach(l, i, item) {
        jv o = jv_object();
        for (int k = 0; keys[k]; k++) {
            jv v = jv_object_get(jv_copy(item), jv_string(keys[k]));
            if (jv_is_valid(v)) o = jv_object_set(o, jv_string(keys[k]), v);
            else jv_free(v);
        }
        out = jv_array_append(out, o);
        jv_free(item);
    }
    jv_free(l);
    char *text = cairn_json_text(out);
    jv_free(out);
    return text;
}

static void check_list(jv answer, const char *list, const char *const *keys, const char *want) {
    char *got = list_of(answer, list, keys);
    jv parsed = test_json(want);
    char *w = cairn_json_text(parsed);
    jv_free(parsed);
    CHECK_STR(got, w);
    free(got);
    free(w);
}

static const char *const start_keys[] = {"workflow", "trigger", "event", "dedupe", NULL};
static const char *const all_keys[] = {"workflow", "event", "dedupe", "inputs", "error", NULL};

TEST(trigger_alertmanager_group_starts_one_run_per_alert) {
    loaded l;
    load_all(&l, NULL);
    CHECK_INT(cairn_triggers_count(l.t), 5);   /* webhook triggers only: not the schedule */
    jv events = normalize_file("alertmanager", "alertmanager_group.json");
    jv a = cairn_triggers_match(l.t, events);
    check_list(a, "start", start_keys,
               "[{'dedupe':'7f3c2a91e0b4d5c6','event':0,'trigger':0,'workflow':'on-alert'},"
               " {'dedupe':'0d94b1e27a6f3c58','event':1,'trigger':0,'workflow':'on-alert'}]");
    jv s1 = jv_array_get(jv_object_get(jv_copy(a), jv_string("start")), 1);
    jv inputs = jv_object_get(jv_copy(s1), jv_string("inputs"));
    jv inst = jv_object_get(jv_copy(inputs), jv_string("instance"));
    CHECK_STR(jv_string_value(inst), "api-2:8080");
    /* `${{ . }}` hands the whole event to the run */
    jv alert = jv_object_get(jv_copy(inputs), jv_string("alert"));
    CHECK(jv_equal(alert, jv_array_get(jv_copy(events), 1)));
    jv sha = jv_object_get(s1, jv_string("sha256"));
    CHECK_STR(jv_string_value(sha), l.wf[0]->sha256);
    check_list(a, "unmatched", start_keys, "[]");
    check_list(a, "resolve", start_keys, "[]");
    jv_free(inst); jv_free(inputs); jv_free(sha);
    jv_free(a); jv_free(events);
    unload(&l);
}

TEST(trigger_resolved_alert_starts_nothing_and_names_its_key) {
    loaded l;
    load_all(&l, NULL);
    jv events = normalize_file("alertmanager", "alertmanager_resolved.json");
    jv a = cairn_triggers_match(l.t, events);
    check_list(a, "start", start_keys, "[]");
    check_list(a, "resolve", all_keys, "[{'dedupe':'7f3c2a91e0b4d5c6','event':0,'workflow':'on-alert'}]");
    jv_free(a); jv_free(events);
    unload(&l);
}

TEST(trigger_inputs_mapping_renders_nested_values_and_defaults) {
    loaded l;
    load_all(&l, NULL);
    jv events = normalize_file("pagerduty", "pagerduty_triggered.json");
    jv a = cairn_triggers_match(l.t, events);
    check_list(a, "start", all_keys,
               "[{'workflow':'pd-page','event':0,'dedupe':'pd-Q2K7UR3CT8E6VJ','inputs':{"
               "'incident':'Q2K7UR3CT8E6VJ','title':'DBPoolExhausted on orders-db (P1)',"
               "'page':{'url':'https://acme.pagerduty.com/incidents/Q2K7UR3CT8E6VJ','sent':['high',1]},"
               "'team':'checkout'}}]");
    jv_free(a); jv_free(events);
    unload(&l);
}

/* Matching reads labels when the event has no such field, and a source's
 * triggers see only that source's events. */
TEST(trigger_match_reads_labels_and_keeps_to_its_source) {
    loaded l;
    load_all(&l, NULL);
    jv events = normalize_file("grafana", "grafana_group.json");
    jv a = cairn_triggers_match(l.t, events);
    check_list(a, "start", all_keys, "[{'workflow':'disk','event':0,'dedupe':null,"
               "'inputs':{'mount':'/var/lib/postgresql'}}]");
    check_list(a, "unmatched", (const char *const[]){"event", "alertname", "status", NULL},
               "[{'event':1,'alertname':'DiskFillingUp','status':'resolved'}]");
    jv_free(a); jv_free(events);
    /* an alert on-alert would take, but from grafana */
    events = normalize_text("grafana", "{\"alerts\":[{\"status\":\"firing\",\"labels\":{"
                            "\"alertname\":\"HighErrorRate\",\"severity\":\"critical\",\"instance\":\"i\"}}]}");
    a = cairn_triggers_match(l.t, events);
    check_list(a, "start", start_keys, "[]");
    check_list(a, "unmatched", (const char *const[]){"event", "source", NULL},
               "[{'event':0,'source':'grafana'}]");
    jv_free(a); jv_free(events);
    unload(&l);
}

TEST(trigger_patterns_are_searched_unanchored) {
    loaded l;
    load_all(&l, NULL);
    jv events = normalize_text("alertmanager", "{\"version\":\"4\",\"alerts\":[{\"status\":"
        "\"firing\",\"fingerprint\":\"f\",\"labels\":{\"alertname\":\"HighErrorRate\","
        "\"severity\":\"not-critical\",\"instance\":\"i\"}},{\"status\":\"firing\",\"fingerprint\":"
        "\"g\",\"labels\":{\"alertname\":\"HighErrorRateX\",\"severity\":\"critical\"}}]}");
    jv a = cairn_triggers_match(l.t, events);
    check_list(a, "start", start_keys, "[{'workflow':'on-alert','trigger':0,'event':0,'dedupe':'f'}]");
    check_list(a, "unmatched", (const char *const[]){"event", NULL}, "[{'event':1}]");
    jv_free(a); jv_free(events);
    unload(&l);
}

TEST(trigger_refuses_bad_inputs_and_empty_dedupe_keys) {
    loaded l;
    load_all(&l, NULL);
    jv events = normalize_file("generic", "generic_list.json");
    jv a = cairn_triggers_match(l.t, events);
    char *got = list_of(a, "refused", all_keys);
    CHECK_CONTAINS(got, "\"error\":\"inputs: input 'count'");
    CHECK_CONTAINS(got, "\"error\":\"dedupe: the key is empty");
    free(got);
    check_list(a, "start", start_keys, "[]");
    check_list(a, "unmatched", (const char *const[]){"event", NULL}, "[{'event':1}]");
    jv_free(a); jv_free(events);
    unload(&l);
}

TEST(trigger_runaway_pattern_is_refused_not_hung) {
    loaded l;
    load_all(&l, "cairn: 1\nname: slow\ntriggers:\n  - webhook: generic\n"
                 "    match: { alertname: \"^(a+)+$\" }\nsteps:\n  - id: s\n    uses: set\n");
    cairn_buf b = CAIRN_BUF_INIT;
    cairn_buf_puts(&b, "{\"alertname\":\"");
    for (int i = 0; i < 40; i++) cairn_buf_putc(&b, 'a');
    cairn_buf_puts(&b, "b\"}");
    jv events = normalize_text("generic", b.data);
    jv a = cairn_triggers_match(l.t, events);
    char *got = list_of(a, "refused", all_keys);
    CHECK_CONTAINS(got, "match.alertname: match limit exceeded");
    free(got);
    jv_free(a); jv_free(events);
    cairn_buf_free(&b);
    unload(&l);
}

/* The language's list of sources (dsl/triggers.c) and the normalizers'
 * table are one list: each source a workflow may name has a normalizer. */
TEST(trigger_sources_are_the_languages) {
    int n = 0;
    for (int i = 0; cairn_hook_source(i); i++, n++) {
        char *src = cairn_sprintf("cairn: 1\nname: s\ntriggers:\n  - webhook: %s\n"
                                  "steps:\n  - id: s\n    uses: set\n", cairn_hook_source(i));
        cairn_workflow *wf = NULL;
        cairn_diags d = CAIRN_DIAGS_INIT;
        cairn_err err;
        if (cairn_workflow_load("s.yaml", src, strlen(src), NULL, &wf, &d) != 0) {
            cairn_diags_to_err(&d, &err);
            TEST_FAIL("%s: %s", cairn_hook_source(i), err.msg);
        }
        CHECK(cairn_hook_source_known(cairn_hook_source(i)));
        cairn_workflow_free(wf);
        cairn_diags_free(&d);
        free(src);
    }
    CHECK_INT(n, 6);
    CHECK(!cairn_hook_source_known("nagios"));
}
