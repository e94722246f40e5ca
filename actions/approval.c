/*
 * approval.c - the `approval` step: its signature only.  Waiting for people
 * is the engine's business (engine/approval.c): the run parks, holding no
 * thread, until `cairn approve` / `cairn reject` decide or the time-out
 * fires.
 */
#include "actions/action.h"

#include <string.h>

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

/* Whether a constant approvers list names a group (engine.h,
 * CAIRN_APPROVER_GROUP), whose members are not counted at load. */
static bool names_a_group(const cairn_wcheck *w) {
    jv list = cairn_wcheck_const(w, "approvers");
    bool group = false;
    if (jv_get_kind(list) == JV_KIND_ARRAY)
        jv_array_foreach(list, i, v) {
            group |= jv_get_kind(v) == JV_KIND_STRING &&
                     strncmp(jv_string_value(v), CAIRN_APPROVER_GROUP, strlen(CAIRN_APPROVER_GROUP)) == 0;
            jv_free(v);
        }
    jv_free(list);
    return group;
}

/* The rules the engine relies on, for constants: on_timeout's values,
 * escalate with someone to escalate to, a quorum the approvers can reach
 * (a group counts as many). */
static void approval_check(cairn_wcheck *w) {
    const char *on_timeout = cairn_wcheck_string(w, "on_timeout");
    jv quorum = cairn_wcheck_const(w, "quorum");
    int approvers = names_a_group(w) ? 0 : cairn_wcheck_length(w, "approvers");
    if (cairn_wcheck_enum(w, "on_timeout", "reject,approve,escalate", 0) && on_timeout &&
        strcmp(on_timeout, "escalate") == 0 && !cairn_wcheck_given(w, "escalate_to"))
        cairn_wcheck_error(w, "escalate_to", "on_timeout: escalate needs this field (who is "
                           "asked when the time-out fires)");
    double q = jv_get_kind(quorum) == JV_KIND_NUMBER ? jv_number_value(quorum) : 1;
    if (approvers > 0 && (q < 1 || q > approvers))
        cairn_wcheck_error(w, "quorum", "expected a whole number from 1 to %d (the approvers "
                           "listed), got %g", approvers, q);
    else if (q < 1)
        cairn_wcheck_error(w, "quorum", "expected a whole number of at least 1, got %g", q);
    jv_free(quorum);
}

static const cairn_action_sig approval_sig = {
    .name = "approval",
    .fields = approval_fields,
    .check = approval_check,
    .scope = "approval",                 /* engine/approval.c renders it */
    .scope_fields = "links,expires_at",
};

const cairn_action cairn_action_approval = {
    .sig = &approval_sig,
    .flags = CAIRN_ACTION_ENGINE,
};
