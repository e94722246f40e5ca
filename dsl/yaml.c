/*
 * yaml.c - libyaml's event stream to a tree of positioned nodes.
 *
 * The tree is built without recursion: an explicit stack of open collections,
 * at most CAIRN_YAML_MAX_DEPTH deep, collects each collection's children until
 * its end event.  libyaml's own parser keeps its state in heap stacks too, so
 * a file nested 10,000 deep is refused at level 65 without deep C frames.
 *
 * Budget: every node counts 1 and an alias counts the expanded size of its
 * anchored node (kept with the anchor), so "billion laughs" is refused after
 * a few hundred events, having allocated only what it really wrote.  An
 * alias also carries its anchor's collection height into the depth check.
 *
 * Nodes live in chunks owned by the document; an alias points at the
 * anchored node itself, so the tree may share subtrees and is freed chunk by
 * chunk, never by walking it.
 */
#include "dsl/yaml.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/mem.h"

#define NODE_CHUNK 256

typedef struct chunk {
    struct chunk *next;
    int used;
    cairn_node nodes[NODE_CHUNK];
} chunk;

struct cairn_yaml_doc {
    chunk *chunks;
    cairn_node *root;
};

typedef struct frame {
    cairn_node *node;
    cairn_node **kids;
    int n, cap;
    char *anchor;              /* owned, or NULL */
    int64_t start;             /* budget used before this node */
    int height;                /* largest collection height among the kids */
} frame;

typedef struct anchor {
    char *name;                /* NULL: empty slot */
    cairn_node *node;
    int64_t size;              /* expanded node count */
    int height;                /* collection height (0 for a scalar) */
} anchor;

typedef struct builder {
    const char *file;
    cairn_diags *diags;
    cairn_yaml_doc *doc;
    frame stack[CAIRN_YAML_MAX_DEPTH];
    int depth;
    anchor *anchors;
    int n_anchors, cap_anchors;   /* open addressing, cap a power of two */
    int64_t used;                 /* node budget spent */
    int rc;                       /* first error code, 0 while all is well */
    bool fatal;                   /* stop reading events */
    int ndocs;
} builder;

/* ---- errors --------------------------------------------------------------- */

static void fail_at(builder *b, int rc, bool fatal, int line, int col, const char *msg) {
    cairn_diags_add(b->diags, b->file, line, col, "%s", msg);
    if (b->rc == 0 || rc == CAIRN_ELIMIT) b->rc = rc;
    b->fatal |= fatal;
}

static void fail_mark(builder *b, int rc, bool fatal, yaml_mark_t m, const char *msg) {
    fail_at(b, rc, fatal, (int)m.line + 1, (int)m.column + 1, msg);
}

/* ---- nodes ---------------------------------------------------------------- */

static cairn_node *node_new(cairn_yaml_doc *doc, cairn_node_kind kind, yaml_mark_t m) {
    if (doc->chunks == NULL || doc->chunks->used == NODE_CHUNK) {
        chunk *c = cairn_calloc(1, sizeof *c);
        c->next = doc->chunks;
        doc->chunks = c;
    }
    cairn_node *n = &doc->chunks->nodes[doc->chunks->used++];
    n->kind = kind;
    n->line = (int)m.line + 1;
    n->col = (int)m.column + 1;
    return n;
}

void cairn_yaml_free(cairn_yaml_doc *doc) {
    if (doc == NULL) return;
    for (chunk *c = doc->chunks, *next; c; c = next) {
        next = c->next;
        for (int i = 0; i < c->used; i++) {
            free(c->nodes[i].text);
            free(c->nodes[i].keys);
            free(c->nodes[i].values);
        }
        free(c);
    }
    free(doc);
}

const cairn_node *cairn_yaml_root(const cairn_yaml_doc *doc) { return doc ? doc->root : NULL; }

/* ---- anchors: a small open-addressing table (FNV-1a) ---------------------- */

static uint32_t hash_str(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static anchor *anchor_slot(anchor *tab, int cap, const char *name) {
    for (uint32_t i = hash_str(name) & (uint32_t)(cap - 1);; i = (i + 1) & (uint32_t)(cap - 1))
        if (tab[i].name == NULL || strcmp(tab[i].name, name) == 0) return &tab[i];
}

static void anchors_grow(builder *b) {
    int cap = b->cap_anchors ? b->cap_anchors * 2 : 16;
    anchor *tab = cairn_calloc((size_t)cap, sizeof *tab);
    for (int i = 0; i < b->cap_anchors; i++)
        if (b->anchors[i].name) *anchor_slot(tab, cap, b->anchors[i].name) = b->anchors[i];
    free(b->anchors);
    b->anchors = tab;
    b->cap_anchors = cap;
}

/* Define (or redefine: YAML lets a later anchor of the same name win). */
static void anchor_set(builder *b, char *name, cairn_node *node, int64_t size, int height) {
    if (2 * (b->n_anchors + 1) > b->cap_anchors) anchors_grow(b);
    anchor *a = anchor_slot(b->anchors, b->cap_anchors, name);
    if (a->name) free(a->name); else b->n_anchors++;
    *a = (anchor){name, node, size, height};
}

static const anchor *anchor_get(const builder *b, const char *name) {
    if (b->cap_anchors == 0) return NULL;
    const anchor *a = anchor_slot(b->anchors, b->cap_anchors, name);
    return a->name ? a : NULL;
}

/* ---- building ------------------------------------------------------------- */

static bool spend(builder *b, int64_t n, yaml_mark_t m) {
    b->used += n;
    if (b->used <= CAIRN_YAML_MAX_NODES) return true;
    char msg[160];
    snprintf(msg, sizeof msg, "too many YAML nodes: more than %d (an alias counts as "
             "the size of what it repeats)", CAIRN_YAML_MAX_NODES);
    fail_mark(b, CAIRN_ELIMIT, true, m, msg);
    return false;
}

/* A finished node goes to the open collection, or becomes the root. */
static void emit(builder *b, cairn_node *n, int height) {
    if (b->depth == 0) {
        b->doc->root = n;
        return;
    }
    frame *f = &b->stack[b->depth - 1];
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 8;
        f->kids = cairn_realloc(f->kids, (size_t)f->cap * sizeof *f->kids);
    }
    f->kids[f->n++] = n;
    if (height > f->height) f->height = height;
}

static bool tag_ok(builder *b, const yaml_char_t *tag, const char *want, yaml_mark_t m) {
    if (tag == NULL || strcmp((const char *)tag, "!") == 0 ||
        strcmp((const char *)tag, want) == 0)
        return true;
    char msg[300];
    snprintf(msg, sizeof msg, "unsupported YAML tag '%.200s'", (const char *)tag);
    fail_mark(b, CAIRN_ESYNTAX, false, m, msg);
    return false;
}

/* The column of the text's first byte when its bytes stand in the source
 * one for one on the scalar's line (plain, or quoted without escapes);
 * else 0.  Block scalars and folded or escaped text are 0. */
static int text_column(const yaml_event_t *ev) {
    yaml_scalar_style_t st = ev->data.scalar.style;
    const yaml_mark_t *a = &ev->start_mark, *z = &ev->end_mark;
    size_t quotes = st == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                    st == YAML_DOUBLE_QUOTED_SCALAR_STYLE ? 2 : 0;
    if ((st != YAML_PLAIN_SCALAR_STYLE && quotes == 0) || a->line != z->line ||
        z->index - a->index != ev->data.scalar.length + quotes)
        return 0;
    return (int)a->column + 1 + (quotes ? 1 : 0);
}

static void on_scalar(builder *b, yaml_event_t *ev) {
    yaml_mark_t m = ev->start_mark;
    if (!spend(b, 1, m)) return;
    tag_ok(b, ev->data.scalar.tag, "tag:yaml.org,2002:str", m);
    cairn_node *n = node_new(b->doc, CAIRN_NODE_SCALAR, m);
    n->len = ev->data.scalar.length;
    n->text = cairn_strndup((const char *)ev->data.scalar.value, n->len);
    n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || ev->data.scalar.tag;
    n->text_col = text_column(ev);
    if (memchr(n->text, '\0', n->len))
        fail_mark(b, CAIRN_ESYNTAX, false, m, "a string may not hold a NUL character");
    if (ev->data.scalar.anchor)
        anchor_set(b, cairn_strdup((const char *)ev->data.scalar.anchor), n, 1, 0);
    emit(b, n, 0);
}

static void on_alias(builder *b, yaml_event_t *ev) {
    const char *name = (const char *)ev->data.alias.anchor;
    const anchor *a = anchor_get(b, name);
    char msg[300];
    if (a == NULL) {
        snprintf(msg, sizeof msg, "undefined alias '*%.200s' (an alias must follow the "
                 "whole node its anchor names)", name);
        fail_mark(b, CAIRN_ESYNTAX, true, ev->start_mark, msg);
        return;
    }
    if (b->depth + a->height > CAIRN_YAML_MAX_DEPTH) {
        snprintf(msg, sizeof msg, "YAML nested deeper than %d levels", CAIRN_YAML_MAX_DEPTH);
        fail_mark(b, CAIRN_ELIMIT, true, ev->start_mark, msg);
        return;
    }
    if (spend(b, a->size, ev->start_mark)) emit(b, a->node, a->height);
}

static void on_start(builder *b, yaml_event_t *ev, cairn_node_kind kind) {
    yaml_mark_t m = ev->start_mark;
    bool map = kind == CAIRN_NODE_MAP;
    if (b->depth == CAIRN_YAML_MAX_DEPTH) {
        char msg[80];
        snprintf(msg, sizeof msg, "YAML nested deeper than %d levels", CAIRN_YAML_MAX_DEPTH);
        fail_mark(b, CAIRN_ELIMIT, true, m, msg);
        return;
    }
    if (!spend(b, 1, m)) return;
    const yaml_char_t *tag = map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
    const yaml_char_t *anc = map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
    tag_ok(b, tag, map ? "tag:yaml.org,2002:map" : "tag:yaml.org,2002:seq", m);
    b->stack[b->depth++] = (frame){
        .node = node_new(b->doc, kind, m),
        .anchor = anc ? cairn_strdup((const char *)anc) : NULL,
        .start = b->used - 1,
    };
}

/* Duplicate keys: pairwise for small maps, sorted for large ones, so a map
 * of many keys costs n log n. */
static int key_cmp(const void *a, const void *b) {
    const cairn_node *x = *(cairn_node *const *)a, *y = *(cairn_node *const *)b;
    int c = strcmp(x->text, y->text);
    if (c) return c;
    return x->line != y->line ? (x->line < y->line ? -1 : 1) : (x->col > y->col) - (x->col < y->col);
}

static void report_dup(builder *b, const cairn_node *first, const cairn_node *dup) {
    cairn_diags_add(b->diags, b->file, dup->line, dup->col,
                    "duplicate key '%s' (first at %d:%d)", dup->text, first->line, first->col);
    if (b->rc == 0) b->rc = CAIRN_ESYNTAX;
}

static void check_dups(builder *b, cairn_node **keys, int n) {
    if (n < 2) return;
    cairn_node **k = cairn_malloc((size_t)n * sizeof *k);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (keys[i]->kind == CAIRN_NODE_SCALAR) k[m++] = keys[i];
    qsort(k, (size_t)m, sizeof *k, key_cmp);
    for (int i = 1, first = 0; i < m; i++) {
        if (strcmp(k[i]->text, k[first]->text) == 0) report_dup(b, k[first], k[i]);
        else first = i;
    }
    free(k);
}

static void finish_map(builder *b, frame *f) {
    cairn_node *n = f->node;
    n->count = f->n / 2;
    n->keys = cairn_malloc((size_t)(n->count ? n->count : 1) * sizeof *n->keys);
    n->values = cairn_malloc((size_t)(n->count ? n->count : 1) * sizeof *n->values);
    for (int i = 0; i < n->count; i++) {
        n->keys[i] = f->kids[2 * i];
        n->values[i] = f->kids[2 * i + 1];
        if (n->keys[i]->kind != CAIRN_NODE_SCALAR) {
            cairn_diags_add(b->diags, b->file, n->keys[i]->line, n->keys[i]->col,
                            "a map key must be a plain string, not %s",
                            cairn_node_kind_name(n->keys[i]));
            if (b->rc == 0) b->rc = CAIRN_ESYNTAX;
        }
    }
    check_dups(b, n->keys, n->count);
    free(f->kids);
}

static void on_end(builder *b) {
    frame *f = &b->stack[--b->depth];
    if (f->node->kind == CAIRN_NODE_MAP) {
        finish_map(b, f);
    } else {
        f->node->count = f->n;
        f->node->values = f->kids;
    }
    int height = f->height + 1;
    if (f->anchor) anchor_set(b, f->anchor, f->node, b->used - f->start, height);
    emit(b, f->node, height);
}

static void on_document(builder *b, yaml_event_t *ev) {
    if (++b->ndocs > 1)
        fail_mark(b, CAIRN_ESYNTAX, true, ev->start_mark,
                  "a workflow file holds one YAML document; a second one starts here");
}

static void on_event(builder *b, yaml_event_t *ev) {
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT: on_document(b, ev); break;
    case YAML_SCALAR_EVENT: on_scalar(b, ev); break;
    case YAML_ALIAS_EVENT: on_alias(b, ev); break;
    case YAML_SEQUENCE_START_EVENT: on_start(b, ev, CAIRN_NODE_SEQ); break;
    case YAML_MAPPING_START_EVENT: on_start(b, ev, CAIRN_NODE_MAP); break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: on_end(b); break;
    default: break;
    }
}

/* ---- the input as a whole ------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (RFC 3629), or 0. */
static int utf8_len(const unsigned char *s, size_t left) {
    unsigned c = s[0];
    int n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
          : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (n == 0 || (size_t)n > left) return 0;
    unsigned lo = 0x80, hi = 0xBF;          /* range of the second byte */
    if (c == 0xE0) lo = 0xA0;
    else if (c == 0xED) hi = 0x9F;          /* no UTF-16 surrogates */
    else if (c == 0xF0) lo = 0x90;
    else if (c == 0xF4) hi = 0x8F;          /* nothing past U+10FFFF */
    if (n > 1 && (s[1] < lo || s[1] > hi)) return 0;
    for (int i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return n;
}

/* Refuse a NUL byte or invalid UTF-8 with its position (libyaml would stop
 * too, but with a byte offset and no line). */
static bool check_text(builder *b, const char *src, size_t len) {
    int line = 1, col = 1;
    for (size_t i = 0; i < len;) {
        const unsigned char *s = (const unsigned char *)src + i;
        int n = *s ? utf8_len(s, len - i) : 0;
        if (n == 0) {
            char msg[120];
            if (*s == 0) snprintf(msg, sizeof msg, "NUL byte in the file; a workflow is UTF-8 text");
            else snprintf(msg, sizeof msg, "invalid UTF-8 (byte 0x%02x); a workflow is UTF-8 text", *s);
            fail_at(b, CAIRN_ESYNTAX, true, line, col, msg);
            return false;
        }
        if (*s == '\n') line++, col = 1;
        else col++;
        i += (size_t)n;
    }
    return true;
}

static void parser_error(builder *b, const yaml_parser_t *p, const char *src) {
    char msg[400];
    yaml_mark_t m = p->problem_mark;
    if (p->error == YAML_READER_ERROR) {
        /* the reader gives a byte offset: find its line and column */
        m.line = m.column = 0;
        for (size_t i = 0; i < p->problem_offset; i++) {
            if (src[i] == '\n') m.line++, m.column = 0;
            else if (((unsigned char)src[i] & 0xC0) != 0x80) m.column++;
        }
    }
    if (p->context)
        snprintf(msg, sizeof msg, "invalid YAML: %s (%s at %d:%d)", p->problem ? p->problem : "error",
                 p->context, (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
    else
        snprintf(msg, sizeof msg, "invalid YAML: %s", p->problem ? p->problem : "parse error");
    fail_mark(b, CAIRN_ESYNTAX, true, m, msg);
}

static void run_parser(builder *b, const char *src, size_t len) {
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)src, len);
    yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
    for (bool done = false; !done && !b->fatal;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            parser_error(b, &p, src);
            break;
        }
        on_event(b, &ev);
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
}

static void builder_free(builder *b) {
    for (int i = 0; i < b->depth; i++) {
        free(b->stack[i].kids);
        free(b->stack[i].anchor);
    }
    for (int i = 0; i < b->cap_anchors; i++) free(b->anchors[i].name);
    free(b->anchors);
}

int cairn_yaml_parse(const char *file, const char *src, size_t len,
                     cairn_yaml_doc **doc, cairn_diags *diags) {
    builder b = {.file = file ? file : "<input>", .diags = diags};
    int first = diags->count;
    *doc = NULL;
    if (len > CAIRN_YAML_MAX_BYTES) {
        char msg[120];
        snprintf(msg, sizeof msg, "file too large: %zu bytes (the limit is %u)",
                 len, CAIRN_YAML_MAX_BYTES);
        fail_at(&b, CAIRN_ELIMIT, true, 0, 0, msg);
        return b.rc;
    }
    b.doc = cairn_calloc(1, sizeof *b.doc);
    if (check_text(&b, src, len)) run_parser(&b, src, len);
    if (b.rc == 0 && b.doc->root == NULL) {  /* an empty file: one null */
        b.doc->root = node_new(b.doc, CAIRN_NODE_SCALAR, (yaml_mark_t){0, 0, 0});
        b.doc->root->text = cairn_strdup("");
    }
    builder_free(&b);
    cairn_diags_sort(diags, first);      /* inner maps finish first: restore file order */
    if (b.rc != 0) {
        cairn_yaml_free(b.doc);
        return b.rc;
    }
    *doc = b.doc;
    return 0;
}
