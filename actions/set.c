/*
 * set.c - the `set` action: its output is its rendered `with`, a map of any
 * keys (data shaping, tests, benchmarks).
 *
 * The job holds a jv copy of `with`.  Only prepare and finish touch it, both
 * on the orchestrator thread; execute does nothing, so the job may still be
 * handed to a worker thread safely.
 */
#include "actions/action.h"
#include "common/mem.h"

#include <stdlib.h>

static const cairn_field_sig set_fields[] = {{NULL, 0, 0}};

static const cairn_action_sig set_sig = {.name = "set", .fields = set_fields, .open = true};

typedef struct set_job {
    jv value;
} set_job;

static int set_prepare(jv with, const cairn_attempt_info *info, void **job, cairn_fail *f) {
    (void)info;
    if (jv_get_kind(with) != JV_KIND_OBJECT)
        return cairn_fail_set(f, "schema", "set: with must be a map, not %s",
                              jv_kind_name(jv_get_kind(with)));
    set_job *j = cairn_malloc(sizeof *j);
    j->value = jv_copy(with);
    *job = j;
    return 0;
}

static void set_execute(void *job, const cairn_attempt_info *info) {
    (void)job;
    (void)info;
}

static int set_finish(void *job, jv *output, cairn_fail *f) {
    set_job *j = job;
    (void)f;
    *output = j->value;
    free(j);
    return 0;
}

static void set_discard(void *job) {
    set_job *j = job;
    if (j == NULL) return;
    jv_free(j->value);
    free(j);
}

const cairn_action cairn_action_set = {
    .sig = &set_sig,
    .flags = CAIRN_ACTION_INLINE,
    .prepare = set_prepare,
    .execute = set_execute,
    .finish = set_finish,
    .discard = set_discard,
};
