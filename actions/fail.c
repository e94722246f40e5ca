/*
 * fail.c - the `fail` action: always fails the step with `kind` (default
 * "failed") and `message`, so a workflow can stop on a condition it checks.
 *
 * The job is two plain C strings.  A message longer than CAIRN_FAIL_MSG_MAX
 * bytes is cut there; a kind must fit CAIRN_FAIL_KIND_MAX, since `retry.on`
 * patterns match it.
 */
#include "actions/action.h"
#include "common/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL_DEFAULT_KIND "failed"

static const cairn_field_sig fail_fields[] = {
    {"message", CAIRN_FIELD_STRING, CAIRN_FIELD_REQUIRED},
    {"kind", CAIRN_FIELD_STRING, 0},
    {NULL, 0, 0},
};

static const cairn_action_sig fail_sig = {.name = "fail", .fields = fail_fields};

typedef struct fail_job {
    char kind[CAIRN_FAIL_KIND_MAX];
    char *message;
} fail_job;

/* with[name] as a string; absent or null gives dflt (NULL: required). */
static int get_string(jv with, const char *name, const char *dflt, char **out, cairn_fail *f) {
    jv v = jv_object_get(jv_copy(with), jv_string(name));
    jv_kind k = jv_get_kind(v);
    int rc = 0;
    if ((k == JV_KIND_INVALID || k == JV_KIND_NULL) && dflt)
        *out = cairn_strdup(dflt);
    else if (k == JV_KIND_INVALID || k == JV_KIND_NULL)
        rc = cairn_fail_set(f, "schema", "fail: %s is required", name);
    else if (k != JV_KIND_STRING)
        rc = cairn_fail_set(f, "schema", "fail: %s must be a string, not %s", name,
                            jv_kind_name(k));
    else
        *out = cairn_strdup(jv_string_value(v));
    jv_free(v);
    return rc;
}

static int fail_prepare(jv with, const cairn_attempt_info *info, void **job, cairn_fail *f) {
    char *kind = NULL, *message = NULL;
    int rc;
    (void)info;
    if (jv_get_kind(with) != JV_KIND_OBJECT)
        return cairn_fail_set(f, "schema", "fail: with must be a map");
    if ((rc = cairn_with_keys(with, &fail_sig, f)) == 0 &&
        (rc = get_string(with, "kind", FAIL_DEFAULT_KIND, &kind, f)) == 0 &&
        (rc = get_string(with, "message", NULL, &message, f)) == 0) {
        if (kind[0] == '\0' || strlen(kind) >= CAIRN_FAIL_KIND_MAX)
            rc = cairn_fail_set(f, "schema", "fail: kind must be 1 to %d bytes",
                                CAIRN_FAIL_KIND_MAX - 1);
    }
    if (rc == 0) {
        fail_job *j = cairn_malloc(sizeof *j);
        snprintf(j->kind, sizeof j->kind, "%s", kind);
        j->message = message;
        message = NULL;
        *job = j;
    }
    free(kind);
    free(message);
    return rc;
}

static void fail_execute(void *job, const cairn_attempt_info *info) {
    (void)job;
    (void)info;
}

static void fail_discard(void *job) {
    fail_job *j = job;
    if (j == NULL) return;
    free(j->message);
    free(j);
}

static int fail_finish(void *job, jv *output, cairn_fail *f) {
    fail_job *j = job;
    (void)output;
    cairn_fail_set(f, j->kind, "%s", j->message);
    fail_discard(j);
    return -1;
}

const cairn_action cairn_action_fail = {
    .sig = &fail_sig,
    .flags = CAIRN_ACTION_INLINE,
    .prepare = fail_prepare,
    .execute = fail_execute,
    .finish = fail_finish,
    .discard = fail_discard,
};
