/*
 * wait.c - the `wait` step, which the engine carries out itself: its
 * deadline (`duration` from now, or `until` an RFC 3339 time) is journaled
 * in step_waiting and armed as a durable timer; when it fires, the step
 * succeeds with {fired_at}.  It holds no thread, and survives restarts.
 */
#include "common/clock.h"
#include "engine/engine_int.h"

int eng_wait_input(eng_run *r, int i, int index, int attempt, jv *with, cairn_err *err) {
    (void)index;
    (void)attempt;
    return eng_render(r, r->plan->steps[i]->with, jv_null(), with, err);
}

void eng_start_wait(cairn_engine *e, eng_run *r, int i, int index) {
    const cairn_step *step = r->plan->steps[i];
    jv with = jv_invalid();
    cairn_err err;
    int64_t until = 0;
    int rc = eng_wait_input(r, i, index, 1, &with, &err);
    jv error = jv_null();
    if (rc) {
        error = eng_error("expression", err.msg);
    } else {
        jv d = jv_object_get(jv_copy(with), jv_string("duration"));
        jv u = jv_object_get(jv_copy(with), jv_string("until"));
        int64_t ms = 0;
        if (jv_get_kind(d) == JV_KIND_STRING && cairn_duration_parse(jv_string_value(d), &ms) == 0)
            until = cairn_wall_ms() + ms;
        else if (jv_get_kind(u) == JV_KIND_STRING && cairn_rfc3339_parse(jv_string_value(u), &until) == 0)
            ;
        else
            error = eng_error("schema", "wait needs `duration` (like 30s) or `until` (RFC 3339)");
        jv_free(d);
        jv_free(u);
    }
    if (jv_get_kind(error) != JV_KIND_NULL) {
        jv_free(with);
        eng_attempt_failed(e, r, i, index, step->retry.max_attempts, error);
        return;
    }
    jv data = jv_object_set(jv_object(), jv_string("input"), with);
    eng_emit(e, r, CAIRN_EV_STEP_STARTED, i, index, 1, data);
    eng_emit(e, r, CAIRN_EV_STEP_WAITING, i, index, 1,
             jv_object_set(jv_object(), jv_string("until"), jv_number((double)until)));
    eng_timer_add(e, r, i, index, until);
}

void eng_wait_over(cairn_engine *e, eng_run *r, int i, int index) {
    char when[40];
    jv out = jv_object_set(jv_object(), jv_string("fired_at"),
                           jv_string(cairn_rfc3339(cairn_wall_ms(), when, sizeof when)));
    eng_emit(e, r, CAIRN_EV_STEP_SUCCEEDED, i, index, 1,
             jv_object_set(jv_object(), jv_string("output"), out));
    if (index < 0) eng_step_done(e, r, i);
    else eng_item_finished(e, r, i, index, true, jv_null());
}
