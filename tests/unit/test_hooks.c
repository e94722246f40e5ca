/*
 * The webhook normalizers (server/hook.h) on payloads written after each
 * vendor's documented format (tests/fixtures/hooks), and on bad bodies.
 */
#include "server/hook.h"

#include "common/json.h"
#include "common/mem.h"
#include "test.h"

#define HOOKS "tests/fixtures/hooks/"

static char *read_fixture(const char *name, size_t *len) {
    char path[256];
    snprintf(path, sizeof path, HOOKS "%s", name);
    FILE *f = fopen(path, "rb");
    if (!f) TEST_FAIL("cannot open %s", path);
    char *buf = cairn_malloc(CAIRN_HOOK_BODY_MAX + 1);
    *len = fread(buf, 1, CAIRN_HOOK_BODY_MAX, f);
    fclose(f);
    buf[*len] = '\0';
    return buf;
}

/* The events of a fixture; the test fails when it does not normalize. */
static jv events_of(const char *source, const char *fixture) {
    size_t len;
    char *body = read_fixture(fixture, &len);
    jv events;
    cairn_err err;
    int rc = cairn_hook_normalize(source, body, len, &events, &err);
    free(body);
    if (rc) TEST_FAIL("%s: %s", fixture, err.msg);
    return events;
}

/* Field path (".a.b") of event i as text, "" when absent; a static buffer. */
static const char *field(jv events, int i, const char *k1, const char *k2) {
    static char out[512];
    jv v = jv_object_get(jv_array_get(jv_copy(events), i), jv_string(k1));
    if (k2 && jv_get_kind(v) == JV_KIND_OBJECT) v = jv_object_get(v, jv_string(k2));
    else if (k2) {
        jv_free(v);
        v = jv_null();
    }
    snprintf(out, sizeof out, "%s", jv_get_kind(v) == JV_KIND_STRING ? jv_string_value(v) : "");
    jv_free(v);
    return out;
}

TEST(hook_alertmanager_group_is_one_event_per_alert) {
    jv ev = events_of("alertmanager", "alertmanager_group.json");
    CHECK_INT(jv_array_length(jv_copy(ev)), 2);
    CHECK_STR(field(ev, 0, "source", NULL), "alertmanager");
    CHECK_STR(field(ev, 0, "status", NULL), "firing");
    CHECK_STR(field(ev, 0, "alertname", NULL), "HighErrorRate");
    CHECK_STR(field(ev, 0, "severity", NULL), "critical");
    CHECK_STR(field(ev, 0, "summary", NULL), "5xx rate above 5% on api-1:8080");
    CHECK_STR(field(ev, 0, "fingerprint", NULL), "7f3c2a91e0b4d5c6");
    CHECK_STR(field(ev, 1, "fingerprint", NULL), "0d94b1e27a6f3c58");
    CHECK_STR(field(ev, 1, "labels", "instance"), "api-2:8080");
    CHECK_STR(field(ev, 1, "labels", "job"), "api");
    /* the common annotations reach every alert */
    CHECK_STR(field(ev, 1, "annotations", "runbook_url"), "https://runbooks.example.com/high-error-rate");
    CHECK_STR(field(ev, 0, "receiver", NULL), "cairn");
    CHECK_CONTAINS(field(ev, 0, "group_key", NULL), "HighErrorRate");
    CHECK_CONTAINS(field(ev, 0, "url", NULL), "prometheus.example.com");
    CHECK_STR(field(ev, 0, "starts_at", NULL), "2026-12-07T06:58:12.345Z");
    jv raw = jv_object_get(jv_array_get(jv_copy(ev), 1), jv_string("raw"));
    jv wrapped = jv_array_append(jv_array(), jv_copy(raw));
    CHECK_STR(field(wrapped, 0, "version", NULL), "4");
    CHECK_STR(field(wrapped, 0, "groupLabels", "alertname"), "HighErrorRate");
    jv_free(wrapped);
    /* the group, with this event's alert alone */
    jv alerts = jv_object_get(raw, jv_string("alerts"));
    CHECK_INT(jv_array_length(jv_copy(alerts)), 1);
    CHECK_STR(field(alerts, 0, "fingerprint", NULL), "0d94b1e27a6f3c58");
    jv_free(alerts);
    jv_free(ev);
}

TEST(hook_alertmanager_group_labels_are_merged_under_the_alerts) {
    const char *body = "{'version':'4','groupLabels':{'team':'db'},'commonLabels':{'env':'prod',"
                       "'team':'x'},'alerts':[{'status':'firing','labels':{'alertname':'A',"
                       "'env':'stage'}}]}";
    jv parsed = test_json(body);
    char *text = cairn_json_text(parsed);
    jv_free(parsed);
    jv ev;
    cairn_err err;
    CHECK_INT(cairn_hook_normalize("alertmanager", text, strlen(text), &ev, &err), 0);
    CHECK_STR(field(ev, 0, "labels", "team"), "db");    /* group over common */
    CHECK_STR(field(ev, 0, "labels", "env"), "stage");  /* the alert's own over both */
    /* no fingerprint sent: one is computed, the same for the same alert */
    CHECK_INT(strlen(field(ev, 0, "fingerprint", NULL)), CAIRN_HOOK_FINGERPRINT_HEX);
    jv again;
    CHECK_INT(cairn_hook_normalize("alertmanager", text, strlen(text), &again, &err), 0);
    CHECK_STR(field(again, 0, "fingerprint", NULL), field(ev, 0, "fingerprint", NULL));
    free(text);
    jv_free(ev);
    jv_free(again);
}

TEST(hook_alertmanager_resolved_keeps_the_fingerprint) {
    jv firing = events_of("alertmanager", "alertmanager_group.json");
    jv resolved = events_of("alertmanager", "alertmanager_resolved.json");
    CHECK_INT(jv_array_length(jv_copy(resolved)), 1);
    CHECK_STR(field(resolved, 0, "status", NULL), "resolved");
    CHECK_STR(field(resolved, 0, "fingerprint", NULL), field(firing, 0, "fingerprint", NULL));
    CHECK_STR(field(resolved, 0, "ends_at", NULL), "2026-12-07T07:21:42.000Z");
    jv_free(firing);
    jv_free(resolved);
}

TEST(hook_pagerduty_incident_triggered_and_resolved) {
    jv t = events_of("pagerduty", "pagerduty_triggered.json");
    jv r = events_of("pagerduty", "pagerduty_resolved.json");
    CHECK_INT(jv_array_length(jv_copy(t)), 1);
    CHECK_STR(field(t, 0, "status", NULL), "firing");
    CHECK_STR(field(r, 0, "status", NULL), "resolved");
    CHECK_STR(field(t, 0, "alertname", NULL), "DBPoolExhausted on orders-db");
    CHECK_STR(field(t, 0, "fingerprint", NULL), "Q2K7UR3CT8E6VJ");
    CHECK_STR(field(r, 0, "fingerprint", NULL), "Q2K7UR3CT8E6VJ");
    CHECK_STR(field(t, 0, "severity", NULL), "P1");
    CHECK_STR(field(t, 0, "event_type", NULL), "incident.triggered");
    CHECK_STR(field(t, 0, "labels", "service"), "checkout-api");
    CHECK_STR(field(t, 0, "labels", "urgency"), "high");
    CHECK_STR(field(t, 0, "labels", "escalation_policy"), "Checkout on-call");
    CHECK_CONTAINS(field(t, 0, "url", NULL), "/incidents/Q2K7UR3CT8E6VJ");
    jv_free(t);
    jv_free(r);
}

TEST(hook_pagerduty_ping_gives_no_event) {
    jv ev = events_of("pagerduty", "pagerduty_ping.json");
    CHECK_INT(jv_get_kind(ev), JV_KIND_ARRAY);
    CHECK_INT(jv_array_length(ev), 0);
}

TEST(hook_datadog_template_fields) {
    jv t = events_of("datadog", "datadog_triggered.json");
    jv r = events_of("datadog", "datadog_recovered.json");
    CHECK_STR(field(t, 0, "status", NULL), "firing");
    CHECK_STR(field(r, 0, "status", NULL), "resolved");
    CHECK_STR(field(t, 0, "alertname", NULL), "Postgres connections near max_connections");
    CHECK_STR(field(t, 0, "fingerprint", NULL), "6834573627781463000");
    CHECK_STR(field(r, 0, "fingerprint", NULL), "6834573627781463000");
    CHECK_STR(field(t, 0, "severity", NULL), "P2");
    CHECK_STR(field(t, 0, "labels", "service"), "orders");
    CHECK_STR(field(t, 0, "labels", "env"), "prod");
    CHECK(jv_object_has(jv_object_get(jv_array_get(jv_copy(t), 0), jv_string("labels")),
                        jv_string("monitor")));
    CHECK_STR(field(t, 0, "labels", "host"), "db-7");
    CHECK_STR(field(t, 0, "alert_id", NULL), "90412376");
    CHECK_CONTAINS(field(t, 0, "summary", NULL), "[Triggered on {host:db-7}]");
    jv_free(t);
    jv_free(r);
}

TEST(hook_grafana_group_firing_and_resolved) {
    jv ev = events_of("grafana", "grafana_group.json");
    CHECK_INT(jv_array_length(jv_copy(ev)), 2);
    CHECK_STR(field(ev, 0, "status", NULL), "firing");
    CHECK_STR(field(ev, 1, "status", NULL), "resolved");
    CHECK_STR(field(ev, 0, "alertname", NULL), "DiskFillingUp");
    CHECK_STR(field(ev, 0, "severity", NULL), "warning");
    CHECK_STR(field(ev, 0, "labels", "mountpoint"), "/var/lib/postgresql");
    CHECK_STR(field(ev, 1, "fingerprint", NULL), "5c0e7d2b9a8f3e64");
    CHECK_CONTAINS(field(ev, 0, "dashboard_url", NULL), "node-exporter");
    CHECK_STR(field(ev, 1, "dashboard_url", NULL), "");   /* "" is not kept */
    jv_free(ev);
}

TEST(hook_servicenow_incident_record) {
    jv t = events_of("servicenow", "servicenow_incident.json");
    jv r = events_of("servicenow", "servicenow_resolved.json");
    CHECK_STR(field(t, 0, "status", NULL), "firing");
    CHECK_STR(field(r, 0, "status", NULL), "resolved");
    CHECK_STR(field(t, 0, "alertname", NULL), "Payroll batch stuck in RUNNING");
    CHECK_STR(field(t, 0, "fingerprint", NULL), "9d385017c611228701d22104cc95c371");
    CHECK_STR(field(r, 0, "fingerprint", NULL), field(t, 0, "fingerprint", NULL));
    CHECK_STR(field(t, 0, "severity", NULL), "critical");
    CHECK_STR(field(r, 0, "severity", NULL), "critical");
    CHECK_STR(field(t, 0, "labels", "assignment_group"), "Payroll Ops");
    CHECK_STR(field(t, 0, "labels", "cmdb_ci"), "payroll-batch-01");
    CHECK_STR(field(t, 0, "number", NULL), "INC0010423");
    jv_free(t);
    jv_free(r);
}

TEST(hook_generic_list) {
    jv ev = events_of("generic", "generic_list.json");
    CHECK_INT(jv_array_length(jv_copy(ev)), 2);
    CHECK_STR(field(ev, 0, "status", NULL), "firing");     /* the default */
    CHECK_STR(field(ev, 0, "fingerprint", NULL), "backup-orders-db");
    CHECK_STR(field(ev, 1, "status", NULL), "resolved");
    CHECK_STR(field(ev, 1, "labels", "days_left"), "29");  /* a number as text */
    CHECK_INT(strlen(field(ev, 1, "fingerprint", NULL)), CAIRN_HOOK_FINGERPRINT_HEX);
    CHECK_STR(field(ev, 1, "severity", NULL), "");
    jv raw = jv_object_get(jv_array_get(jv_copy(ev), 1), jv_string("raw"));   /* its own entry */
    jv name = jv_object_get(raw, jv_string("alertname"));
    CHECK_STR(jv_string_value(name), "CertExpiring");
    jv_free(name);
    jv_free(ev);
}

/* ---- bad bodies ------------------------------------------------------------ */

static void refused(const char *source, const char *body, size_t len, int code, const char *why) {
    jv ev = jv_null();
    cairn_err err;
    int rc = cairn_hook_normalize(source, body, len, &ev, &err);
    if (rc != code) TEST_FAIL("%s: got %d (%s), want %d", why, rc, rc ? err.msg : "", code);
    CHECK(!jv_is_valid(ev));
    CHECK_CONTAINS(err.msg, why);
}

static void refused_json(const char *source, const char *body, int code, const char *why) {
    jv parsed = test_json(body);
    char *text = cairn_json_text(parsed);
    jv_free(parsed);
    refused(source, text, strlen(text), code, why);
    free(text);
}

TEST(hook_refuses_bad_json_utf8_depth_and_size) {
    refused("generic", "{\"alertname\": ", 14, CAIRN_ESYNTAX, "generic: not JSON: unfinished");
    refused("generic", "{\"alertname\": \"a\"} x", 20, CAIRN_ESYNTAX, "more after the value");
    refused("generic", "{\"alertname\": \"caf\xc3\"}", 20, CAIRN_ESYNTAX, "invalid UTF-8 at byte 18");
    refused("generic", "{\"alertname\": \"\xed\xa0\x80\"}", 20, CAIRN_ESYNTAX, "invalid UTF-8 at byte 15");
    refused("generic", "{\"alertname\": \"\xc0\xaf\"}", 19, CAIRN_ESYNTAX, "invalid UTF-8 at byte 15");
    size_t deep = 100000;
    char *nest = cairn_malloc(2 * deep);
    memset(nest, '[', deep);
    memset(nest + deep, ']', deep);
    refused("generic", nest, 2 * deep, CAIRN_ESYNTAX, "nested too deeply");
    free(nest);
    size_t big = CAIRN_HOOK_BODY_MAX + 1;
    char *huge = cairn_malloc(big);
    memset(huge, ' ', big);
    refused("generic", huge, big, CAIRN_ELIMIT, "more than 1048576");
    free(huge);
    refused("nagios", "{}", 2, CAIRN_ENOTFOUND, "no webhook source 'nagios'");
}

TEST(hook_refuses_payloads_missing_their_fields) {
    refused_json("alertmanager", "{'version':'3','alerts':[]}", CAIRN_EINVAL, "version: expected \"4\"");
    refused_json("alertmanager", "{'version':'4'}", CAIRN_EINVAL, "alerts: expected a list");
    refused_json("alertmanager", "{'version':'4','alerts':[{'status':'firing','labels':{'alertname':'A'}},"
                 "{'labels':{'alertname':'B'}}]}", CAIRN_EINVAL, "alerts[1].status: missing");
    refused_json("alertmanager", "{'version':'4','alerts':[{'status':'pending','labels':{'alertname':'A'}}]}",
                 CAIRN_EINVAL, "alerts[0].status: expected firing or resolved, got 'pending'");
    refused_json("alertmanager", "{'version':'4','alerts':[{'status':'firing','labels':{'job':'x'}}]}",
                 CAIRN_EINVAL, "alerts[0].labels.alertname: missing");
    refused_json("grafana", "{'alerts':[{'status':'firing','labels':{'alertname':'A','x':{'y':1}}}]}",
                 CAIRN_EINVAL, "alerts[0].labels.x: expected a string");
    refused_json("pagerduty", "{'messages':[]}", CAIRN_EINVAL, "event: expected an object");
    refused_json("pagerduty", "{'event':{'event_type':'incident.triggered','resource_type':'incident',"
                 "'data':{'title':'t'}}}", CAIRN_EINVAL, "event.data.id: missing");
    refused_json("datadog", "{'alert_title':'t'}", CAIRN_EINVAL, "alert_transition: missing");
    refused_json("datadog", "{'alert_transition':'Triggered'}", CAIRN_EINVAL, "alert_title: missing");
    refused_json("servicenow", "{'result':{'sys_id':'1','short_description':'x'}}", CAIRN_EINVAL,
                 "state: missing");
    refused_json("servicenow", "[1]", CAIRN_EINVAL, "expected a JSON object");
    refused_json("generic", "{'status':'firing'}", CAIRN_EINVAL, "alertname: missing");
    refused_json("generic", "[{'alertname':'a'},{'alertname':'b','status':'open'}]", CAIRN_EINVAL,
                 "[1].status: expected firing or resolved, got 'open'");
    refused_json("generic", "{'alertname':['a']}", CAIRN_EINVAL, "alertname: expected a string, got a list");
}

TEST(hook_refuses_too_many_alerts_and_labels) {
    cairn_buf b = CAIRN_BUF_INIT;
    cairn_buf_puts(&b, "[");
    for (int i = 0; i <= CAIRN_HOOK_EVENTS_MAX; i++) cairn_buf_printf(&b, "%s{\"alertname\":\"a%d\"}", i ? "," : "", i);
    cairn_buf_puts(&b, "]");
    refused("generic", b.data, b.len, CAIRN_ELIMIT, "more than 1000 alerts");
    cairn_buf_reset(&b);
    cairn_buf_puts(&b, "{\"alertname\":\"a\",\"labels\":{");
    for (int i = 0; i <= CAIRN_HOOK_LABELS_MAX; i++) cairn_buf_printf(&b, "%s\"l%d\":\"v\"", i ? "," : "", i);
    cairn_buf_puts(&b, "}}");
    refused("generic", b.data, b.len, CAIRN_ELIMIT, "more than 256 labels");
    cairn_buf_free(&b);
}
