/*
 * Fuzz target: the webhook normalizers (server/hook.c).  Every source reads
 * the input as its body.  Whatever the bytes, each either gives events that
 * hold the fields every trigger event has, or fails with a known code and a
 * message, and never crashes or leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/hook.h"

static int is_string(jv ev, const char *key, int nonempty) {
    jv v = jv_object_get(jv_copy(ev), jv_string(key));
    int ok = jv_get_kind(v) == JV_KIND_STRING && (!nonempty || jv_string_length_bytes(jv_copy(v)) > 0);
    jv_free(v);
    return ok;
}

static void check_event(jv ev) {
    if (jv_get_kind(ev) != JV_KIND_OBJECT || !is_string(ev, "alertname", 1) ||
        !is_string(ev, "fingerprint", 1) || !is_string(ev, "severity", 0) ||
        !is_string(ev, "summary", 0) || !is_string(ev, "source", 1))
        abort();
    jv status = jv_object_get(jv_copy(ev), jv_string("status"));
    if (strcmp(jv_string_value(status), "firing") != 0 && strcmp(jv_string_value(status), "resolved") != 0)
        abort();
    jv_free(status);
    jv labels = jv_object_get(jv_copy(ev), jv_string("labels"));
    if (jv_get_kind(labels) != JV_KIND_OBJECT) abort();
    jv_object_foreach(labels, k, v) {
        if (jv_get_kind(v) != JV_KIND_STRING) abort();
        jv_free(k);
        jv_free(v);
    }
    jv_free(labels);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int s = 0; cairn_hook_source(s); s++) {
        jv events;
        cairn_err err;
        int rc = cairn_hook_normalize(cairn_hook_source(s), (const char *)data, size, &events, &err);
        if (rc == 0) {
            if (jv_array_length(jv_copy(events)) > CAIRN_HOOK_EVENTS_MAX) abort();
            jv_array_foreach(events, i, ev) {
                check_event(ev);
                jv_free(ev);
            }
            jv_free(events);
        } else if ((rc != CAIRN_ESYNTAX && rc != CAIRN_EINVAL && rc != CAIRN_ELIMIT) ||
                   err.msg[0] == '\0' || jv_is_valid(events)) {
            abort();
        }
    }
    return 0;
}
