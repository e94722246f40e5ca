/*
 * needs.c - step ids and the dependency graph.
 *
 * Ids are unique across steps and on_failure (compensate bodies have none);
 * they are sorted once, so each `needs` entry is a binary search and a
 * 10,000-step workflow costs n log n, not n^2.  `needs` refers only to steps
 * of the same list; absent, it means the step just before.  Cycles are found
 * with an iterative depth-first search (no recursion on the C stack) and
 * reported with their path.
 */
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "dsl/workflow_int.h"

#define CYCLE_SHOWN 12         /* ids printed in a cycle message before "..." */

typedef struct id_ref {
    const char *id;
    int block, index;
} id_ref;

static int ref_cmp(const void *a, const void *b) {
    const id_ref *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c) return c;
    if (x->block != y->block) return x->block - y->block;
    return x->index - y->index;
}

typedef struct ids {
    id_ref *refs;
    int n;
} ids;

static ids sort_ids(wf_ctx *c) {
    ids t = {cairn_malloc((size_t)(c->blocks[0].n + c->blocks[1].n + 1) * sizeof *t.refs), 0};
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < c->blocks[b].n; i++)
            if (c->blocks[b].steps[i].id) t.refs[t.n++] = (id_ref){c->blocks[b].steps[i].id, b, i};
    qsort(t.refs, (size_t)t.n, sizeof *t.refs, ref_cmp);
    return t;
}

static void report_duplicates(wf_ctx *c, const ids *t) {
    for (int i = 1, first = 0; i < t->n; i++) {
        if (strcmp(t->refs[i].id, t->refs[first].id) != 0) {
            first = i;
            continue;
        }
        const id_ref *a = &t->refs[first], *d = &t->refs[i];
        const cairn_node *at = cairn_node_get(c->blocks[d->block].nodes[d->index], "id");
        const cairn_node *fa = cairn_node_get(c->blocks[a->block].nodes[a->index], "id");
        cairn__wf_error(c, at, "duplicate step id '%s' (first at %d:%d)", d->id, fa->line, fa->col);
    }
}

/* The step with this id in block b (-1: none); *elsewhere says another block has it. */
static int find(const ids *t, const char *id, int b, bool *elsewhere) {
    int lo = 0, hi = t->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (strcmp(t->refs[mid].id, id) < 0) lo = mid + 1; else hi = mid;
    }
    *elsewhere = false;
    for (; lo < t->n && strcmp(t->refs[lo].id, id) == 0; lo++) {
        if (t->refs[lo].block == b) return t->refs[lo].index;
        *elsewhere = true;
    }
    return -1;
}

static void unknown_need(wf_ctx *c, const wf_block *blk, const cairn_node *item, bool elsewhere) {
    if (elsewhere) {
        cairn__wf_error(c, item, "needs: '%s' is not in %s; needs refers to steps of the same list",
                        item->text, blk->name);
        return;
    }
    const char *hint = NULL;
    if (cairn_diags_count(c->diags) < CAIRN_DIAGS_MAX) {   /* bounded work on bad input */
        const char **names = cairn_malloc((size_t)(blk->n + 1) * sizeof *names);
        int k = 0;
        for (int i = 0; i < blk->n; i++) if (blk->steps[i].id) names[k++] = blk->steps[i].id;
        hint = cairn__suggest(item->text, names, k);
        free(names);
    }
    if (hint)
        cairn__wf_error(c, item, "needs: unknown step '%s' (did you mean '%s'?)", item->text, hint);
    else
        cairn__wf_error(c, item, "needs: unknown step '%.60s'", item->text);
}

/* Resolve the explicit `needs` of step i; seen[] marks ids already listed. */
static void resolve_one(wf_ctx *c, wf_block *blk, int b, const ids *t, int i, int *seen) {
    const cairn_node *n = blk->needs[i];
    cairn_step *s = &blk->steps[i];
    const cairn_node *const *items = (const cairn_node *const *)&n;
    int count = 1;
    if (n->kind == CAIRN_NODE_SEQ) items = (const cairn_node *const *)n->values, count = n->count;
    else if (!cairn__want_text(c, n, "needs")) return;
    s->needs = cairn_malloc((size_t)(count ? count : 1) * sizeof *s->needs);
    for (int k = 0; k < count; k++) {
        const cairn_node *item = items[k];
        bool elsewhere;
        if (!cairn__want_text(c, item, "needs")) continue;
        int j = find(t, item->text, b, &elsewhere);
        if (j < 0) unknown_need(c, blk, item, elsewhere);
        else if (j == i) cairn__wf_error(c, item, "needs: step '%s' cannot need itself", item->text);
        else if (seen[j] == i + 1) cairn__wf_error(c, item, "needs: '%s' is listed twice", item->text);
        else seen[j] = i + 1, s->needs[s->n_needs++] = j;
    }
}

static void resolve_block(wf_ctx *c, int b, const ids *t) {
    wf_block *blk = &c->blocks[b];
    int *seen = cairn_calloc((size_t)blk->n + 1, sizeof *seen);
    for (int i = 0; i < blk->n; i++) {
        cairn_step *s = &blk->steps[i];
        if (blk->needs[i]) {
            resolve_one(c, blk, b, t, i, seen);
        } else if (i > 0 && b == BLOCK_STEPS) {
            s->needs = cairn_malloc(sizeof *s->needs);
            s->needs[s->n_needs++] = i - 1;
        }
    }
    free(seen);
}

/* ---- cycles --------------------------------------------------------------- */

static const char *label(const wf_block *blk, int i, char *buf, size_t size) {
    if (blk->steps[i].id) return blk->steps[i].id;
    snprintf(buf, size, "(step %d)", i + 1);
    return buf;
}

/* Where step v names step w in its needs (the step itself for the implicit one). */
static const cairn_node *edge_at(const wf_block *blk, int v, int w) {
    const cairn_node *n = blk->needs[v];
    if (n == NULL || blk->steps[w].id == NULL) return blk->nodes[v];
    if (n->kind != CAIRN_NODE_SEQ) return n;
    for (int k = 0; k < n->count; k++)
        if (strcmp(n->values[k]->text, blk->steps[w].id) == 0) return n->values[k];
    return n;
}

static void report_cycle(wf_ctx *c, const wf_block *blk, const int *path, int from, int top) {
    cairn_buf b = CAIRN_BUF_INIT;
    char tmp[32];
    for (int k = from; k <= top; k++) {
        if (k - from == CYCLE_SHOWN && top - k > 1) {
            cairn_buf_printf(&b, "... -> ");
            k = top;
        }
        cairn_buf_printf(&b, "%s -> ", label(blk, path[k], tmp, sizeof tmp));
    }
    cairn_buf_puts(&b, label(blk, path[from], tmp, sizeof tmp));
    bool implicit = false;      /* a step without needs waits for the one before it */
    for (int k = from; k <= top; k++) implicit |= blk->needs[path[k]] == NULL;
    cairn__wf_error(c, edge_at(blk, path[top], path[from]),
                    "needs: dependency cycle %s (each step needs the next%s)", b.data,
                    implicit ? "; a step without 'needs' needs the step listed before it" : "");
    cairn_buf_free(&b);
}

/* Depth-first search with an explicit stack: state 1 = on the path, 2 = done. */
static void find_cycles(wf_ctx *c, const wf_block *blk) {
    int n = blk->n;
    int *state = cairn_calloc((size_t)n + 1, sizeof *state);
    int *pos = cairn_calloc((size_t)n + 1, sizeof *pos);       /* index on the path */
    int *path = cairn_malloc(((size_t)n + 1) * sizeof *path);
    int *next = cairn_calloc((size_t)n + 1, sizeof *next);     /* next edge to follow */
    for (int root = 0; root < n; root++) {
        if (state[root]) continue;
        int top = 0;
        path[0] = root, state[root] = 1, pos[root] = 0;
        while (top >= 0) {
            int v = path[top];
            const cairn_step *s = &blk->steps[v];
            if (next[v] == s->n_needs) {
                state[v] = 2, top--;
                continue;
            }
            int w = s->needs[next[v]++];
            if (state[w] == 1) report_cycle(c, blk, path, pos[w], top);
            else if (state[w] == 0) path[++top] = w, state[w] = 1, pos[w] = top;
        }
    }
    free(state), free(pos), free(path), free(next);
}

void cairn__resolve_needs(wf_ctx *c) {
    ids t = sort_ids(c);
    report_duplicates(c, &t);
    resolve_block(c, BLOCK_STEPS, &t);
    resolve_block(c, BLOCK_ON_FAILURE, &t);
    find_cycles(c, &c->blocks[BLOCK_STEPS]);
    free(t.refs);
}
