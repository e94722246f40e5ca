/*
 * hook_sources.c - each source's payload mapped to trigger events (hook.h).
 *
 * Alertmanager (webhook v4) and Grafana (unified alerting) send the same
 * shape, a group of alerts with the group's common labels; PagerDuty (v3)
 * one event about an incident; Datadog the JSON of a payload template
 * (docs/api.md gives the one Cairn reads); ServiceNow a record of the
 * incident table, bare or wrapped in `result` as its Table API writes it;
 * generic one event object or a list of them.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server/hook_int.h"

/* ev[field] = obj[key] as text (hook_text); "" is not set unless required. */
static int put(hook_in *in, jv *ev, const char *field, jv obj, const char *key,
               const char *path, bool required) {
    jv t;
    int rc = cairn__hook_text(in, obj, key, path, required, &t);
    if (rc) return rc;
    if (required || jv_string_length_bytes(jv_copy(t)) > 0)
        *ev = jv_object_set(*ev, jv_string(field), t);
    else
        jv_free(t);
    return 0;
}

/* The first non-empty string of obj's keys (a NULL-terminated list), or "". */
static jv first_text(jv obj, const char *const *keys) {
    for (; *keys; keys++) {
        jv v = cairn__hook_get(obj, *keys);
        if (jv_get_kind(v) == JV_KIND_STRING && jv_string_length_bytes(jv_copy(v)) > 0) return v;
        jv_free(v);
    }
    return jv_string("");
}

static bool is(jv s, const char *text) {
    return jv_get_kind(s) == JV_KIND_STRING && strcmp(jv_string_value(s), text) == 0;
}

static int want_status(hook_in *in, jv status, const char *path) {
    if (is(status, "firing") || is(status, "resolved")) return 0;
    return cairn__hook_fail(in, CAIRN_EINVAL, "%s: expected firing or resolved, got '%.64s'",
                            path, jv_string_value(status));
}

/* ---- Alertmanager and Grafana: a group of alerts ---------------------------- */

typedef struct {
    const char *version;               /* the `version` required, or NULL */
    const char *const (*extras)[2];    /* alert field -> event field, {NULL} ends */
} group_shape;

static const char *const am_extras[][2] = {
    {"startsAt", "starts_at"}, {"endsAt", "ends_at"}, {"generatorURL", "url"}, {NULL, NULL}};
static const char *const grafana_extras[][2] = {
    {"startsAt", "starts_at"}, {"endsAt", "ends_at"}, {"generatorURL", "url"},
    {"dashboardURL", "dashboard_url"}, {"panelURL", "panel_url"},
    {"silenceURL", "silence_url"}, {NULL, NULL}};
static const char *const group_extras[][2] = {
    {"groupKey", "group_key"}, {"receiver", "receiver"}, {"externalURL", "external_url"},
    {NULL, NULL}};

static int copy_extras(hook_in *in, jv *ev, jv from, const char *const (*map)[2],
                       const char *path) {
    int rc = 0;
    for (int k = 0; rc == 0 && map[k][0]; k++) {
        char p[96];
        snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", map[k][0]);
        rc = put(in, ev, map[k][1], from, map[k][0], p, false);
    }
    return rc;
}

static const char *const summary_keys[] = {"summary", "description", "message", NULL};

/* One alert of a group: its labels over the group's, its annotations over
 * the common ones. */
static int group_alert(hook_in *in, const group_shape *shape, jv alert, int i, jv common,
                       jv common_ann) {
    char path[48], p[96];
    snprintf(path, sizeof path, "alerts[%d]", i);
    if (jv_get_kind(alert) != JV_KIND_OBJECT)
        return cairn__hook_fail(in, CAIRN_EINVAL, "%s: expected an object", path);
    jv ev = jv_object(), labels = jv_copy(common), ann = jv_copy(common_ann), t = jv_invalid();
    snprintf(p, sizeof p, "%s.labels", path);
    int rc = cairn__hook_labels(in, cairn__hook_get(alert, "labels"), p, &labels);
    snprintf(p, sizeof p, "%s.annotations", path);
    if (rc == 0) rc = cairn__hook_labels(in, cairn__hook_get(alert, "annotations"), p, &ann);
    snprintf(p, sizeof p, "%s.status", path);
    if (rc == 0) rc = put(in, &ev, "status", alert, "status", p, true);
    jv status = cairn__hook_get(ev, "status");
    if (rc == 0) rc = want_status(in, status, p);
    jv name = cairn__hook_get(labels, "alertname");
    if (rc == 0 && jv_get_kind(name) != JV_KIND_STRING)
        rc = cairn__hook_fail(in, CAIRN_EINVAL, "%s.labels.alertname: missing", path);
    snprintf(p, sizeof p, "%s.fingerprint", path);
    if (rc == 0) rc = cairn__hook_text(in, alert, "fingerprint", p, false, &t);
    if (rc == 0 && jv_string_length_bytes(jv_copy(t)) == 0) {
        jv_free(t);
        t = cairn__hook_fingerprint(name, labels);
    }
    if (rc == 0) rc = copy_extras(in, &ev, alert, shape->extras, path);
    if (rc == 0) rc = copy_extras(in, &ev, in->body, group_extras, "");
    if (rc == 0) {
        jv sev = cairn__hook_get(labels, "severity");
        ev = jv_object_set(ev, jv_string("alertname"), jv_copy(name));
        ev = jv_object_set(ev, jv_string("severity"),
                           jv_get_kind(sev) == JV_KIND_STRING ? sev : (jv_free(sev), jv_string("")));
        ev = jv_object_set(ev, jv_string("summary"), first_text(ann, summary_keys));
        ev = jv_object_set(ev, jv_string("fingerprint"), t);
        ev = jv_object_set(ev, jv_string("labels"), jv_copy(labels));
        ev = jv_object_set(ev, jv_string("annotations"), jv_copy(ann));
        /* the group with this alert alone: a run started from one alert
         * carries it, not every alert of the group */
        ev = jv_object_set(ev, jv_string("raw"),
                           jv_object_set(jv_copy(in->body), jv_string("alerts"),
                                         jv_array_append(jv_array(), jv_copy(alert))));
        rc = cairn__hook_push(in, ev);
        ev = jv_invalid();
    } else {
        jv_free(t);
    }
    jv_free(ev); jv_free(labels); jv_free(ann);
    jv_free(status); jv_free(name);
    return rc;
}

static int group(hook_in *in, const group_shape *shape) {
    jv b = in->body, version = cairn__hook_get(b, "version");
    jv alerts = cairn__hook_get(b, "alerts");
    jv common = jv_object(), common_ann = jv_object();
    int rc = 0;
    if (jv_get_kind(b) != JV_KIND_OBJECT)
        rc = cairn__hook_fail(in, CAIRN_EINVAL, "expected a JSON object");
    else if (shape->version && !is(version, shape->version))
        rc = cairn__hook_fail(in, CAIRN_EINVAL, "version: expected \"%s\" (webhook v%s)",
                              shape->version, shape->version);
    else if (jv_get_kind(alerts) != JV_KIND_ARRAY)
        rc = cairn__hook_fail(in, CAIRN_EINVAL, "alerts: expected a list");
    if (rc == 0)
        rc = cairn__hook_labels(in, cairn__hook_get(b, "commonLabels"), "commonLabels", &common);
    if (rc == 0) rc = cairn__hook_labels(in, cairn__hook_get(b, "groupLabels"), "groupLabels", &common);
    if (rc == 0)
        rc = cairn__hook_labels(in, cairn__hook_get(b, "commonAnnotations"), "commonAnnotations",
                                &common_ann);
    for (int i = 0; rc == 0 && i < jv_array_length(jv_copy(alerts)); i++) {
        jv alert = jv_array_get(jv_copy(alerts), i);
        rc = group_alert(in, shape, alert, i, common, common_ann);
        jv_free(alert);
    }
    jv_free(version); jv_free(alerts); jv_free(common); jv_free(common_ann);
    return rc;
}

int cairn__hook_alertmanager(hook_in *in) {
    static const group_shape shape = {"4", am_extras};
    return group(in, &shape);
}

int cairn__hook_grafana(hook_in *in) {
    static const group_shape shape = {NULL, grafana_extras};
    return group(in, &shape);
}

/* ---- PagerDuty: webhooks v3, one event about an incident --------------------- */

/* obj[key].summary as text, or "" (PagerDuty's references: service, ...). */
static jv ref_summary(jv obj, const char *key) {
    static const char *const summary[] = {"summary", NULL};
    jv ref = cairn__hook_get(obj, key);
    jv s = first_text(ref, summary);
    jv_free(ref);
    return s;
}

static jv label_if(jv labels, const char *key, jv value) {
    if (jv_get_kind(value) == JV_KIND_STRING && jv_string_length_bytes(jv_copy(value)) > 0)
        return jv_object_set(labels, jv_string(key), value);
    jv_free(value);
    return labels;
}

static int pd_incident(hook_in *in, jv event, jv data, jv type) {
    jv ev = jv_object(), labels = jv_object(), urgency = jv_invalid(), status = jv_invalid();
    int rc = put(in, &ev, "fingerprint", data, "id", "event.data.id", true);
    if (rc == 0) rc = put(in, &ev, "alertname", data, "title", "event.data.title", true);
    if (rc == 0) rc = cairn__hook_text(in, data, "status", "event.data.status", false, &status);
    if (rc == 0) rc = cairn__hook_text(in, data, "urgency", "event.data.urgency", false, &urgency);
    if (rc == 0) rc = put(in, &ev, "url", data, "html_url", "event.data.html_url", false);
    if (rc == 0) rc = put(in, &ev, "occurred_at", event, "occurred_at", "event.occurred_at", false);
    if (rc == 0) {
        bool resolved = is(type, "incident.resolved") || is(status, "resolved");
        jv prio = ref_summary(data, "priority");
        ev = jv_object_set(ev, jv_string("status"), jv_string(resolved ? "resolved" : "firing"));
        ev = jv_object_set(ev, jv_string("summary"), cairn__hook_get(ev, "alertname"));
        ev = jv_object_set(ev, jv_string("incident_id"), cairn__hook_get(ev, "fingerprint"));
        ev = jv_object_set(ev, jv_string("event_type"), jv_copy(type));
        ev = jv_object_set(ev, jv_string("severity"),
                           jv_string_length_bytes(jv_copy(prio)) ? jv_copy(prio) : jv_copy(urgency));
        labels = label_if(labels, "service", ref_summary(data, "service"));
        labels = label_if(labels, "escalation_policy", ref_summary(data, "escalation_policy"));
        labels = label_if(labels, "priority", prio);
        labels = label_if(labels, "urgency", jv_copy(urgency));
        ev = jv_object_set(ev, jv_string("labels"), labels);
        labels = jv_invalid();
        rc = cairn__hook_push(in, ev);
        ev = jv_invalid();
    }
    jv_free(ev); jv_free(labels); jv_free(urgency); jv_free(status);
    return rc;
}

int cairn__hook_pagerduty(hook_in *in) {
    jv event = cairn__hook_get(in->body, "event"), data = cairn__hook_get(event, "data");
    jv type = jv_invalid(), kind = jv_invalid();
    int rc = 0;
    if (jv_get_kind(event) != JV_KIND_OBJECT)
        rc = cairn__hook_fail(in, CAIRN_EINVAL, "event: expected an object (webhooks v3)");
    if (rc == 0) rc = cairn__hook_text(in, event, "event_type", "event.event_type", true, &type);
    if (rc == 0) rc = cairn__hook_text(in, event, "resource_type", "event.resource_type", false, &kind);
    /* A ping or an event about another resource carries no incident: no event. */
    if (rc == 0 && is(kind, "incident")) {
        if (jv_get_kind(data) != JV_KIND_OBJECT)
            rc = cairn__hook_fail(in, CAIRN_EINVAL, "event.data: expected an object");
        else
            rc = pd_incident(in, event, data, type);
    }
    jv_free(event); jv_free(data); jv_free(type); jv_free(kind);
    return rc;
}

/* ---- Datadog: the payload template of docs/api.md ------------------------------ */

/* Datadog's $TAGS, "key:value,flag,...", as labels (a flag's value is ""); a
 * list of such strings is taken too. */
static int dd_tags(hook_in *in, jv tags, jv *labels) {
    jv list = jv_get_kind(tags) == JV_KIND_STRING
                  ? jv_string_split(jv_copy(tags), jv_string(","))
                  : jv_copy(tags);
    int rc = 0;
    if (jv_get_kind(list) != JV_KIND_ARRAY && jv_get_kind(list) != JV_KIND_NULL)
        rc = cairn__hook_fail(in, CAIRN_EINVAL, "tags: expected a string or a list");
    for (int i = 0; rc == 0 && jv_get_kind(list) == JV_KIND_ARRAY &&
                    i < jv_array_length(jv_copy(list)); i++) {
        jv t = jv_array_get(jv_copy(list), i);
        if (jv_get_kind(t) != JV_KIND_STRING) {
            jv_free(t);
            rc = cairn__hook_fail(in, CAIRN_EINVAL, "tags[%d]: expected a string", i);
            break;
        }
        const char *s = jv_string_value(t), *end = s + strlen(s);
        while (*s == ' ') s++;
        while (end > s && end[-1] == ' ') end--;
        const char *colon = memchr(s, ':', (size_t)(end - s));
        if (end > s) {
            jv key = jv_string_sized(s, (int)((colon ? colon : end) - s));
            jv val = colon ? jv_string_sized(colon + 1, (int)(end - colon - 1)) : jv_string("");
            *labels = jv_object_set(*labels, key, val);
        }
        jv_free(t);
        if (jv_object_length(jv_copy(*labels)) > CAIRN_HOOK_LABELS_MAX)
            rc = cairn__hook_fail(in, CAIRN_ELIMIT, "tags: more than %d", CAIRN_HOOK_LABELS_MAX);
    }
    jv_free(list);
    return rc;
}

static const char *const dd_fields[][2] = {
    {"alert_id", "alert_id"}, {"link", "url"}, {"event_type", "event_type"},
    {"alert_metric", "alert_metric"}, {"body", "message"}, {NULL, NULL}};

int cairn__hook_datadog(hook_in *in) {
    static const char *const names[] = {"alert_title", "title", NULL};
    static const char *const keys[] = {"alert_cycle_key", "aggreg_key", NULL};
    static const char *const severities[] = {"alert_priority", "alert_type", NULL};
    jv b = in->body, ev = jv_object(), labels = jv_object(), transition = jv_invalid();
    jv tags = cairn__hook_get(b, "tags");
    int rc = jv_get_kind(b) == JV_KIND_OBJECT
                 ? cairn__hook_text(in, b, "alert_transition", "alert_transition", true, &transition)
                 : cairn__hook_fail(in, CAIRN_EINVAL, "expected a JSON object");
    jv name = first_text(b, names), key = first_text(b, keys);
    if (rc == 0 && jv_string_length_bytes(jv_copy(name)) == 0)
        rc = cairn__hook_fail(in, CAIRN_EINVAL, "alert_title: missing (and no title)");
    if (rc == 0) rc = dd_tags(in, tags, &labels);
    if (rc == 0) rc = copy_extras(in, &ev, b, dd_fields, "");
    jv host = cairn__hook_get(b, "hostname");
    if (rc == 0) {
        static const char *const summaries[] = {"title", "alert_title", NULL};
        labels = label_if(labels, "host",
                          jv_get_kind(host) == JV_KIND_STRING ? jv_copy(host) : jv_null());
        if (jv_string_length_bytes(jv_copy(key)) == 0) {
            jv_free(key);
            key = cairn__hook_fingerprint(name, labels);
        }
        bool resolved = strcasecmp(jv_string_value(transition), "Recovered") == 0;
        ev = jv_object_set(ev, jv_string("status"), jv_string(resolved ? "resolved" : "firing"));
        ev = jv_object_set(ev, jv_string("alertname"), jv_copy(name));
        ev = jv_object_set(ev, jv_string("fingerprint"), jv_copy(key));
        ev = jv_object_set(ev, jv_string("severity"), first_text(b, severities));
        ev = jv_object_set(ev, jv_string("summary"), first_text(b, summaries));
        ev = jv_object_set(ev, jv_string("transition"), jv_copy(transition));
        ev = jv_object_set(ev, jv_string("labels"), labels);
        labels = jv_invalid();
        rc = cairn__hook_push(in, ev);
        ev = jv_invalid();
    }
    jv_free(ev); jv_free(labels); jv_free(transition); jv_free(tags);
    jv_free(name); jv_free(key); jv_free(host);
    return rc;
}

/* ---- ServiceNow: an incident record ------------------------------------------ */

/* rec[key] as text: a reference field ({"value", "display_value", "link"})
 * gives its display value, else its value. */
static jv sn_text(jv rec, const char *key) {
    static const char *const ref[] = {"display_value", "value", NULL};
    jv v = cairn__hook_get(rec, key);
    if (jv_get_kind(v) == JV_KIND_OBJECT) {
        jv t = first_text(v, ref);
        jv_free(v);
        return t;
    }
    if (jv_get_kind(v) == JV_KIND_STRING) return v;
    if (jv_get_kind(v) == JV_KIND_NUMBER) {
        jv t = jv_string_fmt("%.17g", jv_number_value(v));
        jv_free(v);
        return t;
    }
    jv_free(v);
    return jv_string("");
}

/* Incident states 6 Resolved, 7 Closed and 8 Canceled end an incident. */
static bool sn_ended(jv state) {
    static const char *const ended[] = {"6", "7", "8", "resolved", "closed", "canceled",
                                        "cancelled", NULL};
    for (int i = 0; ended[i]; i++)
        if (strcasecmp(jv_string_value(state), ended[i]) == 0) return true;
    return false;
}

/* "1 - Critical" or "1" to the word for it; other text as it is. */
static jv sn_severity(jv prio) {
    static const char *const words[] = {"critical", "high", "moderate", "low", "planning"};
    const char *p = jv_string_value(prio);
    if (p[0] >= '1' && p[0] <= '5' && (p[1] == '\0' || p[1] == ' ')) {
        jv w = jv_string(words[p[0] - '1']);
        jv_free(prio);
        return w;
    }
    return prio;
}

static const char *const sn_labels[] = {"number", "category", "subcategory", "assignment_group",
                                        "cmdb_ci", "priority", "urgency", "impact", "state", NULL};

int cairn__hook_servicenow(hook_in *in) {
    jv result = cairn__hook_get(in->body, "result");
    jv rec = jv_get_kind(result) == JV_KIND_OBJECT ? result : (jv_free(result), jv_copy(in->body));
    if (jv_get_kind(rec) != JV_KIND_OBJECT) {
        jv_free(rec);
        return cairn__hook_fail(in, CAIRN_EINVAL, "expected a JSON object (an incident record)");
    }
    jv id = sn_text(rec, "sys_id"), title = sn_text(rec, "short_description");
    jv state = sn_text(rec, "state"), ev = jv_object(), labels = jv_object();
    if (jv_string_length_bytes(jv_copy(id)) == 0) {
        jv_free(id);
        id = sn_text(rec, "number");
    }
    int rc = 0;
    if (jv_string_length_bytes(jv_copy(id)) == 0)
        rc = cairn__hook_fail(in, CAIRN_EINVAL, "sys_id: missing (and no number)");
    else if (jv_string_length_bytes(jv_copy(title)) == 0)
        rc = cairn__hook_fail(in, CAIRN_EINVAL, "short_description: missing");
    else if (jv_string_length_bytes(jv_copy(state)) == 0)
        rc = cairn__hook_fail(in, CAIRN_EINVAL, "state: missing");
    if (rc == 0) {
        for (int i = 0; sn_labels[i]; i++)
            labels = label_if(labels, sn_labels[i], sn_text(rec, sn_labels[i]));
        ev = jv_object_set(ev, jv_string("status"), jv_string(sn_ended(state) ? "resolved" : "firing"));
        ev = jv_object_set(ev, jv_string("alertname"), jv_copy(title));
        ev = jv_object_set(ev, jv_string("summary"), jv_copy(title));
        ev = jv_object_set(ev, jv_string("fingerprint"), jv_copy(id));
        ev = jv_object_set(ev, jv_string("severity"), sn_severity(sn_text(rec, "priority")));
        ev = jv_object_set(ev, jv_string("number"), sn_text(rec, "number"));
        ev = jv_object_set(ev, jv_string("description"), sn_text(rec, "description"));
        ev = jv_object_set(ev, jv_string("labels"), labels);
        labels = jv_invalid();
        rc = cairn__hook_push(in, ev);
        ev = jv_invalid();
    }
    jv_free(rec); jv_free(id); jv_free(title); jv_free(state); jv_free(ev); jv_free(labels);
    return rc;
}

/* ---- generic: the event itself, or a list of them ------------------------------ */

static int generic_one(hook_in *in, jv obj, const char *path) {
    char p[96];
    if (jv_get_kind(obj) != JV_KIND_OBJECT)
        return cairn__hook_fail(in, CAIRN_EINVAL, "%s: expected an object",
                                *path ? path : "the body");
    jv ev = jv_object(), labels = jv_object(), fp = jv_invalid();
#define P(key) (snprintf(p, sizeof p, "%s%s" key, path, *path ? "." : ""), p)
    int rc = put(in, &ev, "alertname", obj, "alertname", P("alertname"), true);
    if (rc == 0) rc = put(in, &ev, "status", obj, "status", P("status"), false);
    if (rc == 0) rc = put(in, &ev, "severity", obj, "severity", P("severity"), false);
    if (rc == 0) rc = put(in, &ev, "summary", obj, "summary", P("summary"), false);
    if (rc == 0) rc = cairn__hook_labels(in, cairn__hook_get(obj, "labels"), P("labels"), &labels);
    if (rc == 0) rc = cairn__hook_text(in, obj, "fingerprint", P("fingerprint"), false, &fp);
    jv status = cairn__hook_get(ev, "status");
    if (rc == 0 && jv_get_kind(status) == JV_KIND_NULL)
        ev = jv_object_set(ev, jv_string("status"), jv_string("firing"));
    else if (rc == 0)
        rc = want_status(in, status, P("status"));
#undef P
    if (rc == 0) {
        if (jv_string_length_bytes(jv_copy(fp)) == 0) {
            jv name = cairn__hook_get(ev, "alertname");
            jv_free(fp);
            fp = cairn__hook_fingerprint(name, labels);
            jv_free(name);
        }
        ev = jv_object_set(ev, jv_string("fingerprint"), fp);
        ev = jv_object_set(ev, jv_string("labels"), labels);
        ev = jv_object_set(ev, jv_string("raw"), jv_copy(obj));   /* of a list, its own entry */
        fp = labels = jv_invalid();
        rc = cairn__hook_push(in, ev);
        ev = jv_invalid();
    }
    jv_free(status); jv_free(ev); jv_free(labels); jv_free(fp);
    return rc;
}

int cairn__hook_generic(hook_in *in) {
    if (jv_get_kind(in->body) != JV_KIND_ARRAY) return generic_one(in, in->body, "");
    int rc = 0;
    for (int i = 0; rc == 0 && i < jv_array_length(jv_copy(in->body)); i++) {
        char path[32];
        snprintf(path, sizeof path, "[%d]", i);
        jv one = jv_array_get(jv_copy(in->body), i);
        rc = generic_one(in, one, path);
        jv_free(one);
    }
    return rc;
}
