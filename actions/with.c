/*
 * with.c - the field readers every action's prepare shares (see with.h).
 */
#include "actions/with.h"

#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "dsl/workflow.h"

jv cairn_with_get(jv with, const char *name) {
    jv v = jv_object_get(jv_copy(with), jv_string(name));
    if (jv_get_kind(v) == JV_KIND_NULL) {
        jv_free(v);
        return jv_invalid();
    }
    return v;
}

int cairn_with_text(jv v, const char *who, const char *what, size_t max, char **out,
                    cairn_fail *f) {
    int rc = 0;
    size_t len = jv_get_kind(v) == JV_KIND_STRING ? (size_t)jv_string_length_bytes(jv_copy(v)) : 0;
    if (jv_get_kind(v) != JV_KIND_STRING)
        rc = cairn_fail_set(f, "schema", "%s%s must be a string, not %s", who, what,
                            jv_kind_name(jv_get_kind(v)));
    else if (strlen(jv_string_value(v)) != len)
        rc = cairn_fail_set(f, "schema", "%s%s must not contain a NUL byte", who, what);
    else if (max && len > max)
        rc = cairn_fail_set(f, "schema", "%s%s is longer than %zu bytes", who, what, max);
    else
        *out = cairn_strdup(jv_string_value(v));
    jv_free(v);
    return rc;
}

int cairn_with_scalar_text(jv v, const char *who, const char *what, char **out, cairn_fail *f) {
    jv_kind k = jv_get_kind(v);
    if (k == JV_KIND_NUMBER || k == JV_KIND_TRUE || k == JV_KIND_FALSE)
        v = jv_dump_string(v, 0);
    else if (k != JV_KIND_STRING) {
        jv_free(v);
        return cairn_fail_set(f, "schema", "%s%s must be a string, number or boolean, not %s",
                              who, what, jv_kind_name(k));
    }
    return cairn_with_text(v, who, what, 0, out, f);
}

int cairn_with_string(jv with, const char *name, bool required, char **out, cairn_fail *f) {
    jv v = cairn_with_get(with, name);
    *out = NULL;
    if (jv_is_valid(v)) return cairn_with_text(v, "", name, 0, out, f);
    jv_free(v);
    return required ? cairn_fail_set(f, "schema", "the field '%s' is required", name) : 0;
}

int cairn_with_bool(jv with, const char *name, bool *out, cairn_fail *f) {
    jv v = cairn_with_get(with, name);
    jv_kind k = jv_get_kind(v);
    int rc = 0;
    if (k == JV_KIND_TRUE || k == JV_KIND_FALSE) *out = k == JV_KIND_TRUE;
    else if (jv_is_valid(v))
        rc = cairn_fail_set(f, "schema", "%s must be true or false, not %s", name,
                            jv_kind_name(k));
    jv_free(v);
    return rc;
}

int cairn_with_duration(jv with, const char *name, int64_t *out_ms, cairn_fail *f) {
    char *s = NULL;
    int64_t ms = 0;
    int rc = cairn_with_string(with, name, false, &s, f);
    if (rc == 0 && s && (cairn_duration_parse(s, &ms) != 0 || ms <= 0))
        rc = cairn_fail_set(f, "schema", "%s must be a positive duration such as 30s, not "
                                         "'%.60s'", name, s);
    else if (rc == 0 && s)
        *out_ms = ms;
    free(s);
    return rc;
}

bool cairn_with_listed(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, name, n) == 0) return true;
        p += len + (p[len] == ',');
    }
    return false;
}
