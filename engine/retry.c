/*
 * retry.c - what happens after an attempt: retries with back-off, and
 * `until` polling.
 *
 * A failed attempt is retried when the step has attempts left and its error,
 * as "<kind>: <message>", matches retry.on (when set).  The back-off is
 * decided now and journaled (step_retrying{retry_at}), so a restart keeps the
 * same deadline; jitter may be random for the same reason.
 *   constant     delay
 *   linear       delay * attempt
 *   exponential  delay * 2^(attempt-1)
 * then capped at max_delay; jitter picks uniformly in [d/2, d].
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/clock.h"
#include "common/mem.h"
#include "engine/engine_int.h"

static bool error_matches(const eng_plan *p, int step, jv error) {
    pcre2_code *re = p->retry_on[step];
    if (re == NULL) return true;
    jv kind = jv_object_get(jv_copy(error), jv_string("kind"));
    jv msg = jv_object_get(jv_copy(error), jv_string("message"));
    char *text = cairn_sprintf("%s: %s", jv_get_kind(kind) == JV_KIND_STRING ? jv_string_value(kind) : "",
                               jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "");
    jv_free(kind);
    jv_free(msg);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)text, strlen(text), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    free(text);
    return rc >= 0;
}

void eng_backoff_range(const cairn_retry *rt, int attempt, int64_t *lo, int64_t *hi) {
    int64_t d = rt->delay_ms;
    if (rt->backoff == CAIRN_BACKOFF_LINEAR) d *= attempt;
    if (rt->backoff == CAIRN_BACKOFF_EXPONENTIAL)
        for (int i = 1; i < attempt && d < INT64_MAX / 4; i++) d *= 2;
    if (rt->max_delay_ms > 0 && d > rt->max_delay_ms) d = rt->max_delay_ms;
    bool jitter = rt->jitter && d > 1;
    *lo = jitter ? d / 2 : d;
    *hi = jitter ? d / 2 * 2 : d;   /* d less one when odd */
}

static int64_t backoff_ms(const cairn_retry *rt, int attempt) {
    int64_t lo, hi;
    eng_backoff_range(rt, attempt, &lo, &hi);
    if (lo == hi) return hi;
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != sizeof r) r = (uint32_t)time(NULL);
    return lo + (int64_t)(r % (uint32_t)(hi - lo + 1));
}

bool eng_may_go_on(const eng_run *r, int step) {
    /* in the rollback every body gets its own retries; before it, a failing
     * or cancelled run starts nothing more */
    return eng_is_rollback_step(r, step) || (!r->st->cancel_requested && !r->failing);
}

bool eng_retry_allowed(const eng_run *r, int step, int attempt, jv error) {
    return attempt < r->plan->steps[step]->retry.max_attempts && eng_may_go_on(r, step) &&
           jv_get_kind(error) == JV_KIND_OBJECT && error_matches(r->plan, step, error);
}

void eng_attempt_failed(cairn_engine *e, eng_run *r, int step, int index, int attempt, jv error) {
    const cairn_step *s = r->plan->steps[step];
    if (eng_retry_allowed(r, step, attempt, error)) {
        int64_t now = cairn_wall_ms(), at = now + backoff_ms(&s->retry, attempt);
        jv data = jv_object_set(jv_object(), jv_string("error"), error);
        data = jv_object_set(data, jv_string("retry_at"), jv_number((double)at));
        eng_emit_at(e, r, CAIRN_EV_STEP_RETRYING, step, index, attempt, data, now);
        eng_timer_add(e, r, step, index, at);
        return;
    }
    if (index < 0) {
        eng_step_failed(e, r, step, error);
    } else {
        jv data = jv_object_set(jv_object(), jv_string("error"), jv_copy(error));
        eng_emit(e, r, CAIRN_EV_STEP_FAILED, step, index, attempt, data);
        eng_item_finished(e, r, step, index, false, error);
    }
}

bool eng_until_met(eng_run *r, int step, jv output, jv *error) {
    const cairn_tmpl *until = r->plan->steps[step]->retry.until;
    if (until == NULL) return true;
    jv v = jv_invalid();
    cairn_err err;
    jv extra = jv_object_set(jv_object(), jv_string("output"), jv_copy(output));
    if (eng_render(r, until, extra, &v, &err) != 0) {
        *error = eng_error("expression", err.msg);
        return false;
    }
    bool ok = cairn_truthy(v);
    jv_free(v);
    if (!ok) *error = eng_error("until", "the until condition was not met");
    return ok;
}
