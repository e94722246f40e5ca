/*
 * approval.c - the `approval` step: its signature only.  Waiting for people
 * is the engine's business (engine/approval.c): the run parks, holding no
 * thread, until `cairn approve` / `cairn reject` decide or the time-out
 * fires.
 */
#include "actions/action.h"

static const cairn_field_sig approval_fields[] = {
    {"prompt", CAIRN_FIELD_STRING, CAIRN_FIELD_REQUIRED},
    {"approvers", CAIRN_FIELD_ARRAY, 0},
    {"quorum", CAIRN_FIELD_INTEGER, 0},
    {"timeout", CAIRN_FIELD_DURATION, 0},
    {"on_timeout", CAIRN_FIELD_STRING, 0},
    {"escalate_to", CAIRN_FIELD_ARRAY, 0},
    {"allow_self_approval", CAIRN_FIELD_BOOL, 0},
    {"notify", CAIRN_FIELD_OBJECT, 0},
    {NULL, 0, 0},
};

static const cairn_action_sig approval_sig = {
    .name = "approval",
    .fields = approval_fields,
};

const cairn_action cairn_action_approval = {
    .sig = &approval_sig,
    .flags = CAIRN_ACTION_ENGINE,
};
