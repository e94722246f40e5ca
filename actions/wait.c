/*
 * wait.c - the `wait` step: its signature only.  Sleeping is the engine's
 * business (a journaled timer that holds no thread and survives restarts:
 * engine/timer.c); this file tells the language what `with` it takes.
 */
#include "actions/action.h"

static const cairn_field_sig wait_fields[] = {
    {"duration", CAIRN_FIELD_DURATION, 0},
    {"until", CAIRN_FIELD_STRING, 0},
    {NULL, 0, 0},
};

/* A constant `until` is a time the engine can read (engine/retry.c). */
static void wait_check(cairn_wcheck *w) {
    const char *until = cairn_wcheck_string(w, "until");
    int64_t ms;
    if (until && cairn_rfc3339_parse(until, &ms) != 0)
        cairn_wcheck_error(w, "until", "expected an RFC 3339 time such as "
                           "2026-11-23T15:06:50Z, got '%.60s'", until);
}

static const cairn_action_sig wait_sig = {
    .name = "wait",
    .fields = wait_fields,
    .one_of = "duration|until",
    .check = wait_check,
};

const cairn_action cairn_action_wait = {
    .sig = &wait_sig,
    .flags = CAIRN_ACTION_ENGINE,
};
