/*
 * refs.c - the steps and inputs an expression reads, checked when the
 * workflow loads (DSL.md, Expressions: references are checked at load time).
 *
 * The paths checked are those cairn_exprset_refs finds (expr.h): `.steps.NAME`
 * and `.inputs.NAME` provably read from the document's root.  A path it
 * cannot prove rooted (after `|`, inside map(...), ...) is not checked.
 *
 *   .inputs.NAME  NAME is a declared input, in every expression checked.
 *   .steps.NAME   NAME is a step of steps or on_failure; and
 *                   in a step of `steps` (with, if, foreach, retry.until):
 *                     a `needs` ancestor of it, so done before it starts;
 *                   in the workflow's env: nothing, since env is rendered
 *                     when the run starts, before any step;
 *                   in a compensate body, an on_failure step, outputs:
 *                     any step.
 *
 *   .secrets.NAME not checked here (the store is the run's): each NAME is
 *                 kept in wf->secrets for `cairn run` to look up first.
 *
 *   .SCOPE.NAME   in the `with` of an action whose signature names a scope
 *                 (approval: .approval.links), NAME is one of its fields.
 *
 * Each name is reported once per expression, at the expression's position,
 * with a did-you-mean.  Triggers' inputs are evaluated over the event, not
 * this document, and are not checked.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "dsl/workflow_int.h"

/* Where the expressions being checked stand, and what they may read. */
typedef struct ref_ctx {
    wf_ctx *c;
    const cairn_step *step;    /* a step of `steps` whose results it may not read
                                  unless ancestor[] says so; NULL: any step */
    const bool *ancestor;      /* per step of `steps`, with step */
    const cairn_action_sig *scoped;   /* the action whose `with` is scanned, when it has a scope */
    bool in_env;               /* the workflow's env: no step at all */
    int idx;                   /* the expression being scanned */
    char **seen;               /* names reported for it, "steps.a" */
    int nseen;
} ref_ctx;

static const char **step_ids(const cairn_workflow *wf, int *n) {
    const char **ids = cairn_calloc((size_t)(wf->n_steps + wf->n_on_failure) + 1, sizeof *ids);
    *n = 0;
    for (int i = 0; i < wf->n_steps; i++) ids[(*n)++] = wf->steps[i].id;
    for (int i = 0; i < wf->n_on_failure; i++) ids[(*n)++] = wf->on_failure[i].id;
    return ids;
}

/* Report at the position of the expression being scanned. */
static void ref_error(ref_ctx *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ref_error(ref_ctx *r, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *file;
    int line, col;
    cairn_exprset_pos(r->c->wf->exprs, r->idx, &file, &line, &col);
    cairn_diags_add(r->c->diags, file, line, col, "%s", msg);
}

/* True the first time the expression being scanned reports root.name. */
static bool first_report(ref_ctx *r, const char *root, const char *name, size_t len) {
    char *key = cairn_sprintf("%s.%.*s", root, (int)len, name);
    for (int i = 0; i < r->nseen; i++)
        if (strcmp(r->seen[i], key) == 0) {
            free(key);
            return false;
        }
    r->seen = cairn_realloc(r->seen, (size_t)(r->nseen + 1) * sizeof *r->seen);
    r->seen[r->nseen++] = key;
    return true;
}

/* The index of name (len bytes) among cands[0..n), or -1. */
static int find_name(const char *const *cands, int n, const char *name, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(cands[i]) == len && memcmp(cands[i], name, len) == 0) return i;
    return -1;
}

/* " (did you mean 'x'?)" into buf, or "" when nothing is close to name. */
static const char *hint(char *buf, size_t size, const char *name, size_t len,
                        const char *const *cands, int n) {
    char *word = cairn_strndup(name, len);
    const char *best = cairn__suggest(word, cands, n);
    free(word);
    if (best) snprintf(buf, size, " (did you mean '%s'?)", best);
    else buf[0] = '\0';
    return buf;
}

static void check_input_ref(void *ctx, const char *name, size_t len) {
    ref_ctx *r = ctx;
    const cairn_workflow *wf = r->c->wf;
    const char **names = cairn_calloc((size_t)wf->n_inputs + 1, sizeof *names);
    for (int i = 0; i < wf->n_inputs; i++) names[i] = wf->inputs[i].name;
    if (find_name(names, wf->n_inputs, name, len) < 0 && first_report(r, "inputs", name, len)) {
        char buf[128];
        ref_error(r, ".inputs.%.*s: unknown input '%.*s'%s", (int)len, name, (int)len, name,
                  wf->n_inputs ? hint(buf, sizeof buf, name, len, names, wf->n_inputs)
                               : " (the workflow declares no inputs)");
    }
    free(names);
}

/* Step k (an index into step_ids) is known: may the expression read it? */
static void check_step_order(ref_ctx *r, int k, const char *name, size_t len) {
    const cairn_workflow *wf = r->c->wf;
    const cairn_step *s = r->step;
    if (r->in_env)
        ref_error(r, ".steps.%.*s: the workflow's env is rendered when the run starts, before "
                  "any step has run", (int)len, name);
    else if (s == NULL)
        return;
    else if (k >= wf->n_steps)
        ref_error(r, ".steps.%.*s: step '%.*s' is in on_failure, which runs after steps",
                  (int)len, name, (int)len, name);
    else if (k == s->index)
        ref_error(r, ".steps.%.*s: a step cannot read its own result (in retry.until, read "
                  ".output)", (int)len, name);
    else if (!r->ancestor[k])
        ref_error(r, ".steps.%.*s: step '%.*s' does not finish before '%s': add it to needs",
                  (int)len, name, (int)len, name, s->id);
}

static void check_step_ref(void *ctx, const char *name, size_t len) {
    ref_ctx *r = ctx;
    int n;
    const char **ids = step_ids(r->c->wf, &n);
    int k = find_name(ids, n, name, len);
    if (!first_report(r, "steps", name, len)) {
        /* reported already */
    } else if (k < 0) {
        char buf[128];
        ref_error(r, ".steps.%.*s: unknown step '%.*s'%s", (int)len, name, (int)len, name,
                  hint(buf, sizeof buf, name, len, ids, n));
    } else {
        check_step_order(r, k, name, len);
    }
    free(ids);
}

/* A secret read by a constant name: kept once (wf->secrets), at the first
 * expression that reads it, for a run to refuse one that is not there. */
static void note_secret_ref(void *ctx, const char *name, size_t len) {
    ref_ctx *r = ctx;
    cairn_workflow *wf = r->c->wf;
    for (int i = 0; i < wf->n_secrets; i++)
        if (strlen(wf->secrets[i].name) == len && memcmp(wf->secrets[i].name, name, len) == 0)
            return;
    const char *file;
    cairn_name_ref *ref;
    wf->secrets = cairn_realloc(wf->secrets, (size_t)(wf->n_secrets + 1) * sizeof *wf->secrets);
    ref = &wf->secrets[wf->n_secrets++];
    ref->name = cairn_strndup(name, len);
    cairn_exprset_pos(wf->exprs, r->idx, &file, &ref->line, &ref->col);
}

/* NAME in .SCOPE.NAME must be a field the scope's action names. */
static void check_scope_ref(void *ctx, const char *name, size_t len) {
    ref_ctx *r = ctx;
    const char *fields[16];
    char *copy = cairn_strdup(r->scoped->scope_fields), *save = NULL;
    int n = 0;
    for (char *f = strtok_r(copy, ",", &save); f && n < 16; f = strtok_r(NULL, ",", &save))
        fields[n++] = f;
    if (find_name(fields, n, name, len) < 0 && first_report(r, r->scoped->scope, name, len)) {
        char buf[128];
        ref_error(r, ".%s.%.*s: an %s step's `with` reads .%s as {%s}%s", r->scoped->scope,
                  (int)len, name, r->scoped->name, r->scoped->scope, r->scoped->scope_fields,
                  hint(buf, sizeof buf, name, len, fields, n));
    }
    free(copy);
}

static void check_expr(void *ctx, int idx) {
    ref_ctx *r = ctx;
    r->idx = idx;
    for (int i = 0; i < r->nseen; i++) free(r->seen[i]);
    r->nseen = 0;
    cairn_exprset_refs(r->c->wf->exprs, idx, "inputs", check_input_ref, r);
    cairn_exprset_refs(r->c->wf->exprs, idx, "steps", check_step_ref, r);
    cairn_exprset_refs(r->c->wf->exprs, idx, "secrets", note_secret_ref, r);
    if (r->scoped) cairn_exprset_refs(r->c->wf->exprs, idx, r->scoped->scope, check_scope_ref, r);
}

static void check_tmpl(ref_ctx *r, const cairn_tmpl *t) { cairn_tmpl_each_expr(t, check_expr, r); }

/* Every expression of step s (its compensate body read as any step may). */
static void check_step(ref_ctx *r, const cairn_step *s) {
    const cairn_action_sig *sig = r->c->lookup && s->uses ? r->c->lookup(s->uses) : NULL;
    r->scoped = sig && sig->scope && sig->scope_fields ? sig : NULL;
    check_tmpl(r, s->with);
    r->scoped = NULL;
    check_tmpl(r, s->if_);
    check_tmpl(r, s->foreach);
    check_tmpl(r, s->retry.until);
    if (s->compensate) {
        const cairn_step *own = r->step;
        r->step = NULL;
        check_step(r, s->compensate);
        r->step = own;
    }
}

/* Mark in anc every step that step i of `steps` needs, directly or not. */
static void mark_ancestors(const cairn_workflow *wf, int i, bool *anc) {
    const cairn_step *s = &wf->steps[i];
    for (int k = 0; k < s->n_needs; k++) {
        int j = s->needs[k];
        if (j < 0 || j >= wf->n_steps || anc[j]) continue;
        anc[j] = true;
        mark_ancestors(wf, j, anc);
    }
}

void cairn__check_refs(wf_ctx *c) {
    const cairn_workflow *wf = c->wf;
    ref_ctx r = {.c = c};
    bool *anc = cairn_calloc((size_t)wf->n_steps + 1, sizeof *anc);
    r.ancestor = anc;
    for (int i = 0; i < wf->n_steps; i++) {
        memset(anc, 0, (size_t)wf->n_steps * sizeof *anc);
        mark_ancestors(wf, i, anc);
        r.step = &wf->steps[i];
        check_step(&r, r.step);
    }
    r.step = NULL;
    for (int i = 0; i < wf->n_on_failure; i++) check_step(&r, &wf->on_failure[i]);
    for (int i = 0; i < wf->n_outputs; i++) check_tmpl(&r, wf->outputs[i].value);
    r.in_env = true;
    for (int i = 0; i < wf->n_env; i++) check_tmpl(&r, wf->env[i].value);
    for (int i = 0; i < r.nseen; i++) free(r.seen[i]);
    free(r.seen);
    free(anc);
}
