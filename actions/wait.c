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

static const cairn_action_sig wait_sig = {
    .name = "wait",
    .fields = wait_fields,
    .one_of = "duration|until",
};

const cairn_action cairn_action_wait = {
    .sig = &wait_sig,
    .flags = CAIRN_ACTION_ENGINE,
};
