/*
 * wfset.c - workflows loaded together, and the rules over the set (wfset.h).
 */
#include "dsl/wfset.h"

#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "dsl/workflow_int.h"

typedef struct wf_entry {
    char *path;                        /* as given or globbed: what messages say */
    char *real;                        /* realpath, or NULL */
    bool named;
    bool needed;                       /* cairn_wfset_check */
    bool taken;
    bool blamed;                       /* not loaded, and a needed one names it */
    cairn_workflow *wf;                /* NULL: it did not load */
    char *src;                         /* the text read (NULL when unreadable) */
    size_t len;
    cairn_diags diags;                 /* why it did not load */
    char *sniffed;                     /* not loaded: its `name:`, when the YAML reads */
    bool foreign;                      /* not loaded: YAML, but no `cairn:` key at its top */
} wf_entry;

struct cairn_wfset {
    cairn_action_lookup lookup;
    wf_entry *items;
    int n;
};

cairn_wfset *cairn_wfset_new(cairn_action_lookup lookup) {
    cairn_wfset *s = cairn_calloc(1, sizeof *s);
    s->lookup = lookup;
    return s;
}

static void entry_free(wf_entry *e) {
    free(e->path);
    free(e->real);
    if (!e->taken) cairn_workflow_free(e->wf);
    free(e->src);
    cairn_diags_free(&e->diags);
    free(e->sniffed);
}

void cairn_wfset_free(cairn_wfset *s) {
    if (s == NULL) return;
    for (int i = 0; i < s->n; i++) entry_free(&s->items[i]);
    free(s->items);
    free(s);
}

/* A file that does not load, if its YAML reads: its `name:` (a step that
 * names it can be told why it is missing), and whether it is some other
 * YAML (no `cairn:` key: a compose file, a CI file), which is no concern
 * of the set. */
static void sniff(wf_entry *e) {
    cairn_diags d = CAIRN_DIAGS_INIT;
    cairn_yaml_doc *doc = NULL;
    if (e->src && cairn_yaml_parse(e->path, e->src, e->len, &doc, &d) == 0) {
        const cairn_node *root = cairn_yaml_root(doc);
        const cairn_node *v = root->kind == CAIRN_NODE_MAP ? cairn_node_get(root, "name") : NULL;
        if (v && v->kind == CAIRN_NODE_SCALAR) e->sniffed = cairn_strdup(v->text);
        e->foreign = root->kind != CAIRN_NODE_MAP || cairn_node_get(root, "cairn") == NULL;
    }
    cairn_yaml_free(doc);
    cairn_diags_free(&d);
}

/* Read and load path into a new entry; its errors go to e->diags. */
static wf_entry *load(cairn_wfset *s, const char *path, bool named) {
    s->items = cairn_realloc(s->items, (size_t)(s->n + 1) * sizeof *s->items);
    wf_entry *e = &s->items[s->n++];
    char real[PATH_MAX];
    cairn_buf b = CAIRN_BUF_INIT;
    *e = (wf_entry){.path = cairn_strdup(path), .named = named, .diags = CAIRN_DIAGS_INIT};
    e->real = realpath(path, real) ? cairn_strdup(real) : NULL;
    if (cairn__read_source(path, &b, &e->diags) == 0) {
        e->len = b.len;
        e->src = cairn_strndup(b.data ? b.data : "", b.len);
        cairn_workflow_load(path, e->src, e->len, s->lookup, &e->wf, &e->diags);
    }
    cairn_buf_free(&b);
    if (e->wf == NULL) sniff(e);
    return e;
}

const cairn_workflow *cairn_wfset_add(cairn_wfset *s, const char *path, cairn_diags *diags) {
    wf_entry *e = load(s, path, true);
    for (int i = 0; i < e->diags.count; i++) {
        const cairn_diag *x = &e->diags.items[i];
        cairn_diags_add(diags, x->file, x->line, x->col, "%s", x->msg);
    }
    diags->dropped += e->diags.dropped;
    return e->wf;
}

static bool holds(const cairn_wfset *s, const char *real) {
    for (int i = 0; i < s->n; i++)
        if (s->items[i].real && strcmp(s->items[i].real, real) == 0) return true;
    return false;
}

void cairn_wfset_add_siblings(cairn_wfset *s, const char *path) {
    char *copy = cairn_strdup(path), real[PATH_MAX];
    const char *dir = dirname(copy);
    const char *const patterns[] = {"%s/*.yaml", "%s/*.yml"};
    bool here = strchr(path, '/') == NULL;   /* "b.yaml" beside "a.yaml", not "./b.yaml" */
    for (size_t p = 0; p < sizeof patterns / sizeof patterns[0]; p++) {
        char *pattern = here ? cairn_strdup(patterns[p] + 3) : cairn_sprintf(patterns[p], dir);
        glob_t g;
        if (glob(pattern, 0, NULL, &g) == 0) {
            for (size_t i = 0; i < g.gl_pathc; i++) {
                if (realpath(g.gl_pathv[i], real) && holds(s, real)) continue;
                wf_entry *e = load(s, g.gl_pathv[i], false);
                if (e->foreign) entry_free(&s->items[--s->n]);   /* not a workflow */
            }
            globfree(&g);
        }
        free(pattern);
    }
    free(copy);
}

/* ---- the rules ------------------------------------------------------------ */

static const char *name_of(const wf_entry *e) { return e->wf ? e->wf->name : NULL; }

/* Mark needed every loaded workflow that a needed one starts, until none is
 * added. */
static void mark_needed(cairn_wfset *s) {
    for (int i = 0; i < s->n; i++) s->items[i].needed = s->items[i].named && s->items[i].wf;
    for (bool more = true; more;) {
        more = false;
        for (int i = 0; i < s->n; i++) {
            const cairn_workflow *wf = s->items[i].wf;
            for (int k = 0; s->items[i].needed && k < wf->n_children; k++)
                for (int j = 0; j < s->n; j++) {
                    const char *n = name_of(&s->items[j]);
                    if (n && !s->items[j].needed && strcmp(n, wf->children[k].name) == 0)
                        s->items[j].needed = more = true;
                }
        }
    }
}

/* A loaded workflow of name (or NULL), and of those that did not load one
 * that gives that name (*failed, or NULL). */
static const wf_entry *find(const cairn_wfset *s, const char *name, wf_entry **failed) {
    const wf_entry *found = NULL;
    *failed = NULL;
    for (int i = 0; i < s->n; i++) {
        wf_entry *e = &s->items[i];
        if (name_of(e) && strcmp(name_of(e), name) == 0 && !found) found = e;
        if (!e->wf && e->sniffed && strcmp(e->sniffed, name) == 0 && !*failed) *failed = e;
    }
    return found;
}

static void missing_child(const cairn_wfset *s, const wf_entry *e, const cairn_name_ref *ref,
                          cairn_diags *errors) {
    wf_entry *failed;
    if (find(s, ref->name, &failed)) return;
    if (failed && !failed->blamed) {
        failed->blamed = true;
        cairn_diags_add(errors, e->path, ref->line, ref->col, "with.name: workflow '%s' is in "
                        "%s, which does not load (its errors follow)", ref->name, failed->path);
        for (int i = 0; i < failed->diags.count; i++) {
            const cairn_diag *x = &failed->diags.items[i];
            cairn_diags_add(errors, x->file, x->line, x->col, "%s", x->msg);
        }
        return;
    }
    if (failed) {
        cairn_diags_add(errors, e->path, ref->line, ref->col, "with.name: workflow '%s' is in "
                        "%s, which does not load", ref->name, failed->path);
        return;
    }
    const char **names = cairn_calloc((size_t)s->n + 1, sizeof *names);
    int n = 0;
    for (int i = 0; i < s->n; i++)
        if (name_of(&s->items[i])) names[n++] = name_of(&s->items[i]);
    const char *hint = cairn__suggest(ref->name, names, n);
    char tail[CAIRN_ID_MAX + 32] = "";
    if (hint) snprintf(tail, sizeof tail, " (did you mean '%s'?)", hint);
    cairn_diags_add(errors, e->path, ref->line, ref->col, "with.name: no workflow named '%.*s' "
                    "is loaded (the files named and the .yaml/.yml files beside them)%s",
                    CAIRN_ID_MAX, ref->name, tail);
    free(names);
}

/* Whether a needed workflow starts a child of that name. */
static bool started(const cairn_wfset *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        for (int k = 0; s->items[i].needed && k < s->items[i].wf->n_children; k++)
            if (strcmp(s->items[i].wf->children[k].name, name) == 0) return true;
    return false;
}

/* Two loaded workflows of one name: reported at the one that is named (or
 * needed), naming the other file. */
static void duplicates(const cairn_wfset *s, cairn_diags *errors, cairn_diags *warnings) {
    for (int j = 0; j < s->n; j++)
        for (int i = 0; i < j; i++) {
            const wf_entry *a = &s->items[i], *b = &s->items[j];
            if (!name_of(a) || !name_of(b) || strcmp(name_of(a), name_of(b)) != 0) continue;
            bool error = (a->named && b->named) || started(s, name_of(a));
            const wf_entry *at = b->named || (b->needed && !a->named) ? b : a;
            const wf_entry *other = at == a ? b : a;
            cairn_diags_add(error ? errors : warnings, at->path, at->wf->name_line,
                            at->wf->name_col, "name: '%s' is also the name of %s: a child run "
                            "of that name could start either", name_of(at), other->path);
        }
}

int cairn_wfset_check(cairn_wfset *s, cairn_diags *errors, cairn_diags *warnings) {
    int before = cairn_diags_count(errors);
    mark_needed(s);
    for (int i = 0; i < s->n; i++) {
        const wf_entry *e = &s->items[i];
        for (int k = 0; e->needed && k < e->wf->n_children; k++)
            missing_child(s, e, &e->wf->children[k], errors);
    }
    duplicates(s, errors, warnings);
    for (int i = 0; i < s->n; i++) {
        const wf_entry *e = &s->items[i];
        const cairn_diag *x = e->diags.count ? &e->diags.items[0] : NULL;
        if (!e->named && !e->wf && !e->blamed && x)
            cairn_diags_add(warnings, x->file, x->line, x->col, "not loaded, so no child run "
                            "can start it: %s", x->msg);
    }
    return cairn_diags_count(errors) == before ? 0 : CAIRN_ESYNTAX;
}

const char *cairn_wfset_source(void *set, const char *file, size_t *len) {
    const cairn_wfset *s = set;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->items[i].path, file) == 0) {
            *len = s->items[i].len;
            return s->items[i].src;
        }
    return NULL;
}

/* ---- handing the workflows over ------------------------------------------ */

int cairn_wfset_count(const cairn_wfset *s) {
    int n = 0;
    for (int i = 0; i < s->n; i++) n += s->items[i].wf != NULL;
    return n;
}

/* The entry of the i-th loaded workflow: those beside first, then the named. */
static wf_entry *nth(const cairn_wfset *s, int i) {
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < s->n; k++)
            if (s->items[k].wf && s->items[k].named == (pass == 1) && i-- == 0)
                return &s->items[k];
    return NULL;
}

const cairn_workflow *cairn_wfset_get(const cairn_wfset *s, int i) {
    wf_entry *e = nth(s, i);
    return e && !e->taken ? e->wf : NULL;
}

bool cairn_wfset_needed(const cairn_wfset *s, int i) {
    wf_entry *e = nth(s, i);
    return e && e->needed;
}

cairn_workflow *cairn_wfset_take(cairn_wfset *s, int i) {
    wf_entry *e = nth(s, i);
    if (e == NULL || e->taken) return NULL;
    e->taken = true;
    return e->wf;
}
