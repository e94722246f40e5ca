/*
 * graph.c - the step graph as Graphviz dot or Mermaid text.
 *
 * Nodes are named by block: s_<id> for steps, c_<id> for the compensate body
 * of step <id>, f_<id> for on_failure steps (ids are [a-z][a-z0-9_]*, so the
 * prefixes cannot collide).  An edge runs from a needed step to the step
 * that needs it.  Compensation and on_failure are drawn dashed.  The output
 * depends only on the workflow, in list order.
 */
#include <string.h>

#include "dsl/workflow_int.h"

typedef struct graph_fmt {
    void (*begin)(FILE *out, const cairn_workflow *wf);
    void (*node)(FILE *out, char kind, const cairn_step *s, const char *id);
    void (*edge)(FILE *out, char from_kind, const char *from, char to_kind, const char *to,
                 const char *label, bool dashed);
    void (*cluster)(FILE *out, bool open);
    void (*end)(FILE *out);
} graph_fmt;

/* ---- dot ------------------------------------------------------------------ */

static void dot_begin(FILE *out, const cairn_workflow *wf) {
    fprintf(out, "digraph \"%s\" {\n  rankdir=TB;\n  node [shape=box, fontname=\"sans-serif\"];\n",
            wf->name);
}

static void dot_node(FILE *out, char kind, const cairn_step *s, const char *id) {
    fprintf(out, "  %c_%s [label=\"%s%s\\n%s\"%s];\n", kind, id, kind == 'c' ? "undo " : "", id,
            s->uses, kind == 'c' ? ", style=dashed" : "");
}

static void dot_edge(FILE *out, char fk, const char *from, char tk, const char *to,
                     const char *label, bool dashed) {
    fprintf(out, "  %c_%s -> %c_%s", fk, from, tk, to);
    if (label || dashed)
        fprintf(out, " [%s%s%s%s]", dashed ? "style=dashed" : "", label && dashed ? ", " : "",
                label ? "label=" : "", label ? label : "");
    fputs(";\n", out);
}

static void dot_cluster(FILE *out, bool open) {
    fputs(open ? "  subgraph cluster_on_failure {\n  label=\"on_failure\";\n  style=dashed;\n"
               : "  }\n", out);
}

static void dot_end(FILE *out) { fputs("}\n", out); }

/* ---- mermaid -------------------------------------------------------------- */

static void mm_begin(FILE *out, const cairn_workflow *wf) {
    (void)wf;
    fputs("flowchart TD\n", out);
}

static void mm_node(FILE *out, char kind, const cairn_step *s, const char *id) {
    if (kind == 'c')
        fprintf(out, "  c_%s[/\"undo %s<br/>%s\"/]\n", id, id, s->uses);
    else
        fprintf(out, "  %c_%s[\"%s<br/>%s\"]\n", kind, id, id, s->uses);
}

static void mm_edge(FILE *out, char fk, const char *from, char tk, const char *to,
                    const char *label, bool dashed) {
    fprintf(out, "  %c_%s %s%s%s%s %c_%s\n", fk, from, dashed ? "-.->" : "-->",
            label ? "|" : "", label ? label : "", label ? "|" : "", tk, to);
}

static void mm_cluster(FILE *out, bool open) {
    fputs(open ? "  subgraph on_failure\n" : "  end\n", out);
}

static void mm_end(FILE *out) { (void)out; }

static const graph_fmt dot = {dot_begin, dot_node, dot_edge, dot_cluster, dot_end};
static const graph_fmt mermaid = {mm_begin, mm_node, mm_edge, mm_cluster, mm_end};

/* ---- the walk ------------------------------------------------------------- */

static void draw(const graph_fmt *g, const cairn_workflow *wf, FILE *out) {
    g->begin(out, wf);
    for (int i = 0; i < wf->n_steps; i++) {
        const cairn_step *s = &wf->steps[i];
        g->node(out, 's', s, s->id);
        if (s->compensate) g->node(out, 'c', s->compensate, s->id);
    }
    for (int i = 0; i < wf->n_steps; i++) {
        const cairn_step *s = &wf->steps[i];
        for (int k = 0; k < s->n_needs; k++)
            g->edge(out, 's', wf->steps[s->needs[k]].id, 's', s->id, NULL, false);
        if (s->compensate) g->edge(out, 's', s->id, 'c', s->id, "compensate", true);
    }
    if (wf->n_on_failure == 0) {
        g->end(out);
        return;
    }
    g->cluster(out, true);
    for (int i = 0; i < wf->n_on_failure; i++) g->node(out, 'f', &wf->on_failure[i], wf->on_failure[i].id);
    for (int i = 1; i < wf->n_on_failure; i++)
        g->edge(out, 'f', wf->on_failure[i - 1].id, 'f', wf->on_failure[i].id, NULL, true);
    g->cluster(out, false);
    g->end(out);
}

int cairn_workflow_graph(const cairn_workflow *wf, const char *format, FILE *out) {
    if (strcmp(format, "dot") == 0) draw(&dot, wf, out);
    else if (strcmp(format, "mermaid") == 0) draw(&mermaid, wf, out);
    else return CAIRN_EINVAL;
    return 0;
}
