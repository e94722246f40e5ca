/*
 * workflow_action.c - the `workflow` step (a child run): its signature only.
 * Starting the child, waiting for it without a thread and taking its outputs
 * is the engine's business (engine/child.c).
 */
#include "actions/action.h"

static const cairn_field_sig workflow_fields[] = {
    {"name", CAIRN_FIELD_STRING, CAIRN_FIELD_REQUIRED | CAIRN_FIELD_WORKFLOW},
    {"inputs", CAIRN_FIELD_OBJECT, 0},
    {NULL, 0, 0},
};

static const cairn_action_sig workflow_sig = {
    .name = "workflow",
    .fields = workflow_fields,
};

const cairn_action cairn_action_workflow = {
    .sig = &workflow_sig,
    .flags = CAIRN_ACTION_ENGINE,
};
