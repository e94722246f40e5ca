/*
 * hook.c - webhook bodies to trigger events (hook.h): the checks every body
 * passes, the table of sources, and the building of events.  Each source's
 * own mapping is in hook_sources.c.
 */
#include "server/hook_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/mem.h"
#include "server/sig.h"

typedef struct {
    const char *name;
    hook_normalize_fn fn;
} source_entry;

static const source_entry sources[] = {
    {"alertmanager", cairn__hook_alertmanager}, {"pagerduty", cairn__hook_pagerduty},
    {"datadog", cairn__hook_datadog},           {"grafana", cairn__hook_grafana},
    {"servicenow", cairn__hook_servicenow},     {"generic", cairn__hook_generic},
};
#define N_SOURCES (sizeof sources / sizeof sources[0])

const char *cairn_hook_source(int i) {
    return i >= 0 && (size_t)i < N_SOURCES ? sources[i].name : NULL;
}

static const source_entry *find_source(const char *name) {
    for (size_t i = 0; i < N_SOURCES; i++)
        if (strcmp(sources[i].name, name) == 0) return &sources[i];
    return NULL;
}

bool cairn_hook_source_known(const char *source) { return find_source(source) != NULL; }

/* ---- the body ------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s, size_t left) {
    if (s[0] < 0x80) return 1;
    size_t n = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (n == 0 || s[0] > 0xF4 || n > left) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (n == 3 && s[0] == 0xE0 && s[1] < 0xA0) return 0;   /* overlong */
    if (n == 3 && s[0] == 0xED && s[1] >= 0xA0) return 0;  /* surrogate */
    if (n == 4 && s[0] == 0xF0 && s[1] < 0x90) return 0;   /* overlong */
    if (n == 4 && s[0] == 0xF4 && s[1] >= 0x90) return 0;  /* past U+10FFFF */
    return n;
}

/* The byte offset of the first invalid UTF-8 sequence, or len. */
static size_t utf8_check(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_len((const unsigned char *)s + i, len - i);
        if (n == 0) return i;
        i += n;
    }
    return len;
}

/* The body as JSON, or an error: its size, its encoding, its syntax. */
static int parse_body(const char *source, const char *body, size_t len, jv *out, cairn_err *err) {
    *out = jv_invalid();
    if (len > CAIRN_HOOK_BODY_MAX)
        return cairn_err_set(err, CAIRN_ELIMIT, "%s: the body is %zu bytes, more than %d",
                             source, len, CAIRN_HOOK_BODY_MAX);
    size_t bad = utf8_check(body, len);
    if (bad < len)
        return cairn_err_set(err, CAIRN_ESYNTAX, "%s: invalid UTF-8 at byte %zu", source, bad);
    jv v = cairn_json_parse(body, len);
    if (!jv_is_valid(v)) {
        jv msg = jv_invalid_get_msg(v);
        cairn_err_set(err, CAIRN_ESYNTAX, "%s: not JSON: %s", source,
                      jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "?");
        jv_free(msg);
        return CAIRN_ESYNTAX;
    }
    *out = v;
    return 0;
}

int cairn_hook_normalize(const char *source, const char *body, size_t len, jv *events,
                         cairn_err *err) {
    *events = jv_invalid();
    const source_entry *s = find_source(source);
    if (s == NULL)
        return cairn_err_set(err, CAIRN_ENOTFOUND, "no webhook source '%.64s'; the sources are "
                             "alertmanager, pagerduty, datadog, grafana, servicenow, generic",
                             source);
    hook_in in = {.source = source, .events = jv_array(), .err = err};
    int rc = parse_body(source, body, len, &in.body, err);
    if (rc == 0) rc = s->fn(&in);
    jv_free(in.body);
    if (rc) {
        jv_free(in.events);
        return rc;
    }
    *events = in.events;
    return 0;
}

/* ---- building events ------------------------------------------------------ */

int cairn__hook_fail(hook_in *in, int code, const char *fmt, ...) {
    char msg[CAIRN_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cairn_err_set(in->err, code, "%s: %s", in->source, msg);
}

jv cairn__hook_get(jv obj, const char *key) {
    if (jv_get_kind(obj) != JV_KIND_OBJECT) return jv_null();
    jv v = jv_object_get(jv_copy(obj), jv_string(key));
    if (!jv_is_valid(v)) {
        jv_free(v);
        return jv_null();
    }
    return v;
}

/* v (consumed) as text: strings as they are, numbers and booleans as JSON;
 * null when it is something else. */
static jv scalar_text(jv v) {
    switch (jv_get_kind(v)) {
    case JV_KIND_STRING: return v;
    case JV_KIND_NUMBER: case JV_KIND_TRUE: case JV_KIND_FALSE: {
        char *t = cairn_json_text(v);
        jv s = jv_string(t);
        free(t);
        jv_free(v);
        return s;
    }
    default: jv_free(v); return jv_null();
    }
}

int cairn__hook_text(hook_in *in, jv obj, const char *key, const char *path, bool required,
                     jv *out) {
    jv v = cairn__hook_get(obj, key);
    *out = jv_invalid();
    jv_kind k = jv_get_kind(v);
    if (k == JV_KIND_NULL) {
        jv_free(v);
        if (required) return cairn__hook_fail(in, CAIRN_EINVAL, "%s: missing", path);
        *out = jv_string("");
        return 0;
    }
    if (k == JV_KIND_OBJECT || k == JV_KIND_ARRAY) {
        jv_free(v);
        return cairn__hook_fail(in, CAIRN_EINVAL, "%s: expected a string, got %s", path,
                                k == JV_KIND_OBJECT ? "an object" : "a list");
    }
    *out = scalar_text(v);
    return 0;
}

int cairn__hook_labels(hook_in *in, jv src, const char *path, jv *labels) {
    jv_kind k = jv_get_kind(src);
    if (k == JV_KIND_NULL || k == JV_KIND_INVALID) {
        jv_free(src);
        return 0;
    }
    if (k != JV_KIND_OBJECT) {
        jv_free(src);
        return cairn__hook_fail(in, CAIRN_EINVAL, "%s: expected an object", path);
    }
    int rc = 0;
    jv_object_foreach(src, key, val) {
        jv text = rc ? jv_null() : scalar_text(jv_copy(val));
        jv_kind vk = jv_get_kind(val);
        jv_free(val);
        if (rc == 0 && jv_get_kind(text) == JV_KIND_NULL && vk != JV_KIND_NULL)
            rc = cairn__hook_fail(in, CAIRN_EINVAL, "%s.%.64s: expected a string", path,
                                  jv_string_value(key));
        if (jv_get_kind(text) == JV_KIND_STRING) *labels = jv_object_set(*labels, jv_copy(key), text);
        else jv_free(text);
        jv_free(key);
        if (rc == 0 && jv_object_length(jv_copy(*labels)) > CAIRN_HOOK_LABELS_MAX)
            rc = cairn__hook_fail(in, CAIRN_ELIMIT, "%s: more than %d labels", path,
                                  CAIRN_HOOK_LABELS_MAX);
    }
    jv_free(src);
    return rc;
}

jv cairn__hook_fingerprint(jv alertname, jv labels) {
    jv pair = jv_array_append(jv_array_append(jv_array(), jv_copy(alertname)), jv_copy(labels));
    char *text = cairn_json_text(pair);
    jv_free(pair);
    unsigned char d[CAIRN_SIG_SHA256_LEN];
    char hex[2 * CAIRN_SIG_SHA256_LEN + 1];
    cairn_sig_sha256(text, strlen(text), d);
    cairn_sig_hex(d, CAIRN_HOOK_FINGERPRINT_HEX / 2, hex);
    free(text);
    return jv_string(hex);
}

static bool nonempty_string(jv ev, const char *key) {
    jv v = cairn__hook_get(ev, key);
    bool ok = jv_get_kind(v) == JV_KIND_STRING && jv_string_length_bytes(jv_copy(v)) > 0;
    jv_free(v);
    return ok;
}

static jv with_default(jv ev, const char *key, jv dflt) {
    jv v = cairn__hook_get(ev, key);
    bool absent = jv_get_kind(v) == JV_KIND_NULL;
    jv_free(v);
    if (absent) return jv_object_set(ev, jv_string(key), dflt);
    jv_free(dflt);
    return ev;
}

int cairn__hook_push(hook_in *in, jv ev) {
    jv status = cairn__hook_get(ev, "status");
    bool ok = jv_get_kind(status) == JV_KIND_STRING &&
              (strcmp(jv_string_value(status), "firing") == 0 ||
               strcmp(jv_string_value(status), "resolved") == 0);
    jv_free(status);
    int rc = 0;
    int n = jv_array_length(jv_copy(in->events));
    if (!ok) rc = cairn__hook_fail(in, CAIRN_EINVAL, "event %d: status is not firing or resolved", n);
    else if (!nonempty_string(ev, "alertname"))
        rc = cairn__hook_fail(in, CAIRN_EINVAL, "event %d: no alert name", n);
    else if (!nonempty_string(ev, "fingerprint"))
        rc = cairn__hook_fail(in, CAIRN_EINVAL, "event %d: no fingerprint", n);
    else if (n >= CAIRN_HOOK_EVENTS_MAX)
        rc = cairn__hook_fail(in, CAIRN_ELIMIT, "more than %d alerts in one body",
                              CAIRN_HOOK_EVENTS_MAX);
    if (rc) {
        jv_free(ev);
        return rc;
    }
    ev = with_default(ev, "severity", jv_string(""));
    ev = with_default(ev, "summary", jv_string(""));
    ev = with_default(ev, "labels", jv_object());
    ev = jv_object_set(ev, jv_string("source"), jv_string(in->source));
    ev = with_default(ev, "raw", jv_copy(in->body));
    in->events = jv_array_append(in->events, ev);
    return 0;
}
