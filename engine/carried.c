/*
 * carried.c - the steps the engine carries out itself: `approval` (waits
 * for people), `wait` (a durable timer) and `workflow` (a child run).  Their
 * actions (actions/approval.c, wait.c, workflow_action.c) carry the flag
 * CAIRN_ACTION_ENGINE and a signature only; what they do lives in the
 * engine, found here by the action, so that neither an attempt nor a timer
 * asks a step's name what it is.
 */
#include "engine/engine_int.h"

extern const cairn_action cairn_action_approval, cairn_action_wait, cairn_action_workflow;

static const eng_carried carried[] = {
    {&cairn_action_approval, eng_start_approval, eng_approval_timer, eng_approval_input},
    {&cairn_action_wait, eng_start_wait, eng_wait_over, eng_wait_input},
    {&cairn_action_workflow, eng_start_child, NULL, NULL},
};

const eng_carried *eng_carried_for(const cairn_action *action) {
    if (action == NULL || !(action->flags & CAIRN_ACTION_ENGINE)) return NULL;
    for (size_t i = 0; i < sizeof carried / sizeof carried[0]; i++)
        if (carried[i].action == action) return &carried[i];
    return NULL;
}
