/*
 * check_with.c - a step's `with` against its action's signature, and the
 * template the engine renders it from.
 *
 * What is static is checked now (unknown field, missing field, wrong type,
 * one_of, a constant PCRE2 pattern that does not compile, then the action's
 * own rules on constant values: wcheck.c); a scalar that
 * holds an expression gets its type only when it is rendered, so the action
 * checks it then (failure kind `schema`).
 *
 * `run: script` is the shorthand for `uses: shell` with `with.run`: the run
 * node is merged into `with` (which may give shell's other fields).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "dsl/workflow_int.h"

static const cairn_field_sig *find_field(const cairn_action_sig *sig, const char *name) {
    for (const cairn_field_sig *f = sig->fields; f && f->name; f++)
        if (strcmp(f->name, name) == 0) return f;
    return NULL;
}

static const char *type_name(cairn_field_type t) {
    switch (t) {
    case CAIRN_FIELD_STRING: return "a string";
    case CAIRN_FIELD_NUMBER: return "a number";
    case CAIRN_FIELD_INTEGER: return "an integer";
    case CAIRN_FIELD_BOOL: return "true or false";
    case CAIRN_FIELD_OBJECT: return "a map";
    case CAIRN_FIELD_ARRAY: return "a list";
    case CAIRN_FIELD_STRING_OR_ARRAY: return "a string or a list";
    case CAIRN_FIELD_DURATION: return "a duration such as 30s, 5m or 1h30m";
    case CAIRN_FIELD_PATTERN: return "a string (a PCRE2 pattern)";
    case CAIRN_FIELD_ANY: break;
    }
    return "any value";
}

static bool scalar_is(const cairn_node *n, jv_kind want) {
    jv v = cairn_node_to_jv(n);
    jv_kind k = jv_get_kind(v);
    bool ok = k == want || (want == JV_KIND_TRUE && k == JV_KIND_FALSE);
    if (ok && k == JV_KIND_NUMBER && want == JV_KIND_NUMBER) ok = isfinite(jv_number_value(v));
    jv_free(v);
    return ok;
}

static bool is_integer(const cairn_node *n) {
    jv v = cairn_node_to_jv(n);
    bool ok = jv_get_kind(v) == JV_KIND_NUMBER && isfinite(jv_number_value(v)) &&
              floor(jv_number_value(v)) == jv_number_value(v);
    jv_free(v);
    return ok;
}

/* Whether n can be of type t; a scalar holding ${{ }} is checked at run time. */
static bool type_ok(cairn_field_type t, const cairn_node *n) {
    bool scalar = n->kind == CAIRN_NODE_SCALAR;
    int64_t ms;
    if (cairn__has_expr(n)) return true;
    switch (t) {
    case CAIRN_FIELD_ANY: return true;
    case CAIRN_FIELD_PATTERN:          /* a string; check_pattern compiles it */
    case CAIRN_FIELD_STRING: return scalar && scalar_is(n, JV_KIND_STRING);
    case CAIRN_FIELD_NUMBER: return scalar && scalar_is(n, JV_KIND_NUMBER);
    case CAIRN_FIELD_INTEGER: return scalar && is_integer(n);
    case CAIRN_FIELD_BOOL: return scalar && scalar_is(n, JV_KIND_TRUE);
    case CAIRN_FIELD_OBJECT: return n->kind == CAIRN_NODE_MAP;
    case CAIRN_FIELD_ARRAY: return n->kind == CAIRN_NODE_SEQ;
    case CAIRN_FIELD_STRING_OR_ARRAY:
        return n->kind == CAIRN_NODE_SEQ || (scalar && scalar_is(n, JV_KIND_STRING));
    case CAIRN_FIELD_DURATION:
        return scalar && cairn_duration_parse(n->text, &ms) == 0;
    }
    return false;
}

/* A constant pattern must compile (its type already checked).  It is refused
 * only when it compiles neither plain nor with PCRE2_EXTENDED, which an
 * action's flags may turn on (see CAIRN_FIELD_PATTERN); PCRE2's message is
 * the plain one's. */
static void check_pattern(wf_ctx *c, const cairn_node *val, const char *what) {
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)val->text, val->len,
                                   CAIRN_PCRE2_OPTIONS | PCRE2_EXTENDED, &code, &off, NULL);
    if (re == NULL) re = cairn__compile_pattern(c, val, what);
    pcre2_code_free(re);
}

static void unknown_field(wf_ctx *c, const cairn_node *key, const cairn_action_sig *sig) {
    int n = 0;
    for (const cairn_field_sig *f = sig->fields; f && f->name; f++) n++;
    const char **names = cairn_malloc((size_t)(n + 1) * sizeof *names);
    cairn_buf all = CAIRN_BUF_INIT;
    for (int i = 0; i < n; i++) {
        names[i] = sig->fields[i].name;
        cairn_buf_printf(&all, "%s%s", i ? ", " : "", names[i]);
    }
    const char *hint = cairn__suggest(key->text, names, n);
    if (hint)
        cairn__wf_error(c, key, "with: unknown field '%s' for action '%s' (did you mean '%s'?)",
                        key->text, sig->name, hint);
    else
        cairn__wf_error(c, key, "with: unknown field '%.60s' for action '%s'; it takes: %s",
                        key->text, sig->name, n ? all.data : "no fields");
    cairn_buf_free(&all);
    free(names);
}

/* "run|argv": exactly one of these must be present. */
static void check_one_of(wf_ctx *c, const cairn_node *at, const cairn_node *map,
                         const cairn_action_sig *sig) {
    char *alts = cairn_strdup(sig->one_of), *save = NULL;
    const cairn_node *first = NULL;
    for (char *a = strtok_r(alts, "|", &save); a; a = strtok_r(NULL, "|", &save)) {
        const cairn_node *k = cairn_node_key(map, a);
        if (k && first)
            cairn__wf_error(c, k, "with: give only one of '%s' and '%s' for action '%s'",
                            first->text, k->text, sig->name);
        else if (k)
            first = k;
    }
    if (first == NULL) {
        char *list = cairn_strdup(sig->one_of);
        for (char *p = list; *p; p++) if (*p == '|') *p = '/';
        cairn__wf_error(c, at, "with: action '%s' needs one of %s", sig->name, list);
        free(list);
    }
    free(alts);
}

static void check_fields(wf_ctx *c, const cairn_node *at, const cairn_node *map,
                         const cairn_action_sig *sig) {
    for (int i = 0; i < map->count; i++) {
        const cairn_node *key = map->keys[i], *val = map->values[i];
        const cairn_field_sig *f = find_field(sig, key->text);
        if (f == NULL && !sig->open) unknown_field(c, key, sig);
        if (f == NULL) continue;
        char what[CAIRN_ID_MAX + 80];
        snprintf(what, sizeof what, "with.%.60s (action '%s')", key->text, sig->name);
        if (!type_ok(f->type, val))
            cairn__expected(c, val, what, type_name(f->type));
        else if (f->type == CAIRN_FIELD_PATTERN && !cairn__has_expr(val))
            check_pattern(c, val, what);
    }
    for (const cairn_field_sig *f = sig->fields; f && f->name; f++)
        if ((f->flags & CAIRN_FIELD_REQUIRED) && !cairn_node_key(map, f->name))
            cairn__wf_error(c, at, "with: action '%s' needs the field '%s'", sig->name, f->name);
    if (sig->one_of) check_one_of(c, at, map, sig);
}

/* A constant workflow name (CAIRN_FIELD_WORKFLOW) is kept with its place,
 * for the check over the loaded set (wfset.h). */
static void note_children(wf_ctx *c, const cairn_node *map, const cairn_action_sig *sig) {
    cairn_workflow *wf = c->wf;
    for (const cairn_field_sig *f = sig->fields; f && f->name; f++) {
        const cairn_node *v = cairn_node_get(map, f->name);
        if (!(f->flags & CAIRN_FIELD_WORKFLOW) || v == NULL || v->kind != CAIRN_NODE_SCALAR ||
            cairn__has_expr(v) || cairn__is_null(v))
            continue;
        wf->children = cairn_realloc(wf->children, (size_t)(wf->n_children + 1) * sizeof *wf->children);
        wf->children[wf->n_children++] = (cairn_name_ref){cairn_strdup(v->text), v->line, v->col};
    }
}

/* The template.  Values spliced into fields flagged CAIRN_FIELD_SHELL
 * become variables the script refers to (expr.h); every other field splices
 * as text. */
static cairn_tmpl *build(wf_ctx *c, const cairn_node *map, const cairn_action_sig *sig) {
    const char *shell_keys[8] = {NULL};
    int n = 0;
    for (const cairn_field_sig *f = sig ? sig->fields : NULL; f && f->name && n < 7; f++)
        if (f->flags & CAIRN_FIELD_SHELL) shell_keys[n++] = f->name;
    return cairn_tmpl_new_fields(map, shell_keys, c->wf->exprs, c->file, c->diags);
}

/* The step keys that are shorthand for a field of `with` (`run: x` is
 * `uses: shell` with `with.run: x`; `shell:` goes with it). */
static const char *const shorthands[] = {"run", "shell", NULL};

void cairn__check_with(wf_ctx *c, const cairn_node *step, const cairn_node *with,
                       const cairn_action_sig *sig, cairn_step *s) {
    cairn_node empty = {.kind = CAIRN_NODE_MAP, .line = step->line, .col = step->col};
    if (with && !cairn__want_map(c, with, "with")) with = NULL, sig = NULL;  /* one error */
    const cairn_node *map = with ? with : &empty;
    cairn_node merged = *map;
    merged.keys = cairn_malloc((size_t)(map->count + 2) * sizeof *merged.keys);
    merged.values = cairn_malloc((size_t)(map->count + 2) * sizeof *merged.values);
    for (int i = 0; i < map->count; i++) {
        merged.keys[i] = map->keys[i];
        merged.values[i] = map->values[i];
    }
    for (const char *const *k = shorthands; *k; k++) {
        const cairn_node *v = cairn_node_get(step, *k);
        if (v == NULL) continue;
        if (cairn_node_key(map, *k))
            cairn__wf_error(c, cairn_node_key(map, *k), "with: '%s' is given twice (the "
                            "step's %s: is with.%s)", *k, *k, *k);
        if (!cairn__want_text(c, v, *k)) sig = NULL;   /* one error is enough */
        merged.keys[merged.count] = (cairn_node *)cairn_node_key(step, *k);
        merged.values[merged.count++] = (cairn_node *)v;
    }
    if (sig) {
        int before = cairn_diags_count(c->diags);
        check_fields(c, with ? with : step, &merged, sig);
        if (cairn_diags_count(c->diags) == before) {   /* the types hold: the values */
            cairn__wcheck_run(c, with ? with : step, &merged, sig);
            note_children(c, &merged, sig);
        }
    }
    s->with = build(c, &merged, sig);
    free(merged.keys);
    free(merged.values);
}
