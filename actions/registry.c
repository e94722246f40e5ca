/*
 * registry.c - the table of built-in actions.
 */
#include "actions/action.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

extern const cairn_action cairn_action_set;
extern const cairn_action cairn_action_fail;
extern const cairn_action cairn_action_shell;
extern const cairn_action cairn_action_db;
extern const cairn_action cairn_action_llm;
extern const cairn_action cairn_action_http;
extern const cairn_action cairn_action_notify;
extern const cairn_action cairn_action_ssh;
extern const cairn_action cairn_action_match;
extern const cairn_action cairn_action_wait;
extern const cairn_action cairn_action_approval;
extern const cairn_action cairn_action_workflow;

static const cairn_action *const builtin[] = {
    &cairn_action_set,
    &cairn_action_fail,
    &cairn_action_shell,
    &cairn_action_db,
    &cairn_action_llm,
    &cairn_action_http,
    &cairn_action_notify,
    &cairn_action_ssh,
    &cairn_action_match,
    &cairn_action_wait,
    &cairn_action_approval,
    &cairn_action_workflow,
};

const cairn_action *cairn_action_find(const char *name) {
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        if (strcmp(builtin[i]->sig->name, name) == 0) return builtin[i];
    return NULL;
}

const cairn_action *cairn_action_at(int i) {
    if (i < 0 || (size_t)i >= sizeof builtin / sizeof builtin[0]) return NULL;
    return builtin[i];
}

const cairn_action_sig *cairn_action_lookup_sig(const char *name) {
    const cairn_action *a = cairn_action_find(name);
    return a ? a->sig : NULL;
}

/* Every key of with must be a field of sig (an open sig takes any). */
int cairn_with_keys(jv with, const cairn_action_sig *sig, cairn_fail *f) {
    int rc = 0;
    if (sig->open) return 0;
    jv keys = jv_keys(jv_copy(with));
    for (int i = 0; rc == 0 && i < jv_array_length(jv_copy(keys)); i++) {
        jv k = jv_array_get(jv_copy(keys), i);
        const cairn_field_sig *s = sig->fields;
        while (s->name && strcmp(s->name, jv_string_value(k)) != 0) s++;
        if (s->name == NULL)
            rc = cairn_fail_set(f, "schema", "%s: unknown field '%.100s'", sig->name,
                                jv_string_value(k));
        jv_free(k);
    }
    jv_free(keys);
    return rc;
}

int cairn_fail_set(cairn_fail *f, const char *kind, const char *fmt, ...) {
    snprintf(f->kind, sizeof f->kind, "%s", kind);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof f->message, fmt, ap);
    va_end(ap);
    return -1;
}
