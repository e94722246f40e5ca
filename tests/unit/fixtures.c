#include "fixtures.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/mem.h"
#include "test.h"

cairn_event *fx_event(const char *run, int64_t seq, cairn_event_type t, const char *data) {
    cairn_event *ev = cairn_calloc(1, sizeof *ev);
    snprintf(ev->run_id, sizeof ev->run_id, "%s", run);
    ev->seq = seq;
    ev->time_ms = 1000 + seq;
    ev->type = t;
    ev->data_text = cairn_strdup(data);
    ev->data = jv_invalid();
    if (t == CAIRN_EV_RUN_CREATED) {
        ev->workflow = cairn_strdup("wf");
        ev->def_hash = cairn_strdup("h1");
    } else {
        ev->step = cairn_strdup("a");
    }
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
