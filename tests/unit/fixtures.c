#include "fixtures.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/mem.h"
#include "test.h"

char *fx_run_created_data(const char *data) {
    jv d = jv_parse(data);
    if (jv_get_kind(d) != JV_KIND_OBJECT) {   /* bytes a test sends as they are */
        jv_free(d);
        return cairn_strdup(data);
    }
    jv w = jv_object_get(jv_copy(d), jv_string("workflow"));
    if (!jv_is_valid(w)) d = jv_object_set(d, jv_string("workflow"), jv_string("wf"));
    jv_free(w);
    jv h = jv_object_get(jv_copy(d), jv_string("def_hash"));
    if (!jv_is_valid(h)) d = jv_object_set(d, jv_string("def_hash"), jv_string("h1"));
    jv_free(h);
    jv text = jv_dump_string(d, JV_PRINT_SORTED);
    char *out = cairn_strdup(jv_string_value(text));
    jv_free(text);
    return out;
}

cairn_event *fx_event(const char *run, int64_t seq, cairn_event_type t, const char *data) {
    cairn_event *ev = cairn_calloc(1, sizeof *ev);
    snprintf(ev->run_id, sizeof ev->run_id, "%s", run);
    ev->seq = seq;
    ev->time_ms = 1000 + seq;
    ev->type = t;
    ev->data = t == CAIRN_EV_RUN_CREATED ? fx_run_created_data(data) : cairn_strdup(data);
    ev->data_len = strlen(ev->data);
    if (t != CAIRN_EV_RUN_CREATED) ev->step = cairn_strdup("a");
    return ev;
}

void fx_put_def(cairn_store *s) {
    cairn_err err;
    CHECK_INT(s->ops->put_definition(s, "h1", "wf", "wf.yaml", "src", 3, &err), 0);
}

void fx_free_events(cairn_event **evs, int n) {
    for (int i = 0; i < n; i++) {
        cairn_event_clear(evs[i]);
        free(evs[i]);
    }
}
