/*
 * wcheck.c - what an action's static check (cairn_action_sig.check) sees of
 * a step's `with`, and how it reports.
 *
 * The rules belong to each action (an enumeration, a field that needs
 * another); this file gives them the constant values and positions, so a
 * wrong constant is a load error at file:line:col, with a did-you-mean
 * where the action lists its values.  A field whose value holds ${{ }}
 * anywhere is "given" but has no constant: the action checks it when the
 * step runs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/mem.h"
#include "dsl/workflow_int.h"

#define WCHECK_VALUES_MAX 32   /* values one enumeration lists */

struct cairn_wcheck {
    wf_ctx *c;
    const cairn_node *at;              /* the step's `with` (or the step) */
    const cairn_node *map;             /* the fields, shorthands merged in */
    const cairn_action_sig *sig;
};

static const cairn_node *field(const cairn_wcheck *w, const char *name) {
    const cairn_node *v = cairn_node_get(w->map, name);
    return cairn__is_null(v) ? NULL : v;
}

/* Whether n holds ${{ anywhere (a map's keys too). */
static bool has_expr_deep(const cairn_node *n) {
    if (n->kind == CAIRN_NODE_SCALAR) return cairn__has_expr(n);
    for (int i = 0; i < n->count; i++)
        if ((n->keys && has_expr_deep(n->keys[i])) || has_expr_deep(n->values[i])) return true;
    return false;
}

bool cairn_wcheck_given(const cairn_wcheck *w, const char *name) { return field(w, name) != NULL; }

jv cairn_wcheck_const(const cairn_wcheck *w, const char *name) {
    const cairn_node *v = field(w, name);
    return v && !has_expr_deep(v) ? cairn_node_to_jv(v) : jv_invalid();
}

const char *cairn_wcheck_string(const cairn_wcheck *w, const char *name) {
    jv v = cairn_wcheck_const(w, name);
    bool is_string = jv_get_kind(v) == JV_KIND_STRING;
    jv_free(v);
    return is_string ? field(w, name)->text : NULL;
}

int cairn_wcheck_length(const cairn_wcheck *w, const char *name) {
    const cairn_node *v = field(w, name);
    return v && v->kind == CAIRN_NODE_SEQ ? v->count : -1;
}

void cairn_wcheck_error(cairn_wcheck *w, const char *name, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const cairn_node *v = field(w, name);
    cairn__wf_error(w->c, v ? v : w->at, "with.%s (action '%s'): %s", name, w->sig->name, msg);
}

/* values split at commas into vals (at most WCHECK_VALUES_MAX); returns the
 * copy the entries point into. */
static char *split(const char *values, const char **vals, int *n) {
    char *copy = cairn_strdup(values), *save = NULL;
    *n = 0;
    for (char *v = strtok_r(copy, ",", &save); v && *n < WCHECK_VALUES_MAX;
         v = strtok_r(NULL, ",", &save))
        vals[(*n)++] = v;
    return copy;
}

bool cairn_wcheck_enum(cairn_wcheck *w, const char *name, const char *values, int flags) {
    const char *s = cairn_wcheck_string(w, name), *vals[WCHECK_VALUES_MAX], *hint = NULL;
    if (s == NULL) return true;
    int n;
    char *copy = split(values, vals, &n);
    bool ok = false;
    for (int i = 0; i < n && !ok; i++) {
        bool same_case = strcmp(vals[i], s) == 0, any_case = strcasecmp(vals[i], s) == 0;
        ok = same_case || (any_case && (flags & CAIRN_WCHECK_ANY_CASE));
        if (any_case && !ok) hint = vals[i];
    }
    if (!ok) {
        char list[512] = "";
        for (int i = 0; i < n; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", vals[i]);
        if (hint == NULL) hint = cairn__suggest(s, vals, n);
        char tail[96] = "";
        if (hint) snprintf(tail, sizeof tail, " (did you mean '%s'?)", hint);
        cairn_wcheck_error(w, name, "expected one of %s, got '%.60s'%s", list, s, tail);
    }
    free(copy);
    return ok;
}

void cairn__wcheck_run(wf_ctx *c, const cairn_node *at, const cairn_node *map,
                       const cairn_action_sig *sig) {
    if (sig->check == NULL) return;
    cairn_wcheck w = {.c = c, .at = at, .map = map, .sig = sig};
    sig->check(&w);
}
