/*
 * tmpl.c - value templates: YAML trees whose strings may hold `${{ }}`.
 *
 * A template mirrors its node: a subtree without `${{` anywhere is one jv
 * constant; a map or list with expressions below keeps a constant "base"
 * (with null where a child is dynamic, so keys keep their order) and renders
 * only its dynamic children into a copy of it.  A string is a list of parts,
 * literal text and expressions; a string that is exactly one expression is
 * "whole" and renders to the expression's value, JSON type kept.
 */
#include "dsl/expr_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

typedef enum { T_CONST, T_STRING, T_MAP, T_SEQ } tmpl_kind;

typedef struct tmpl_part {
    char *text;          /* literal text, or NULL for an expression */
    size_t len;
    int expr;            /* index in the set */
} tmpl_part;

typedef struct tmpl_kid {
    jv key;              /* T_MAP: the key (a string) */
    int index;           /* T_SEQ: the position */
    cairn_tmpl *t;
} tmpl_kid;

struct cairn_tmpl {
    tmpl_kind kind;
    jv value;            /* T_CONST: the value; T_MAP, T_SEQ: the base */
    cairn_splice_mode mode;
    bool whole;
    tmpl_part *parts;
    int nparts;
    tmpl_kid *kids;
    int nkids;
};

static const char OPEN[] = "${{";

static cairn_tmpl *tmpl_alloc(tmpl_kind kind, jv value) {
    cairn_tmpl *t = cairn_calloc(1, sizeof *t);
    t->kind = kind;
    t->value = value;
    return t;
}

void cairn_tmpl_free(cairn_tmpl *t) {
    if (t == NULL) return;
    jv_free(t->value);
    for (int i = 0; i < t->nparts; i++) free(t->parts[i].text);
    free(t->parts);
    for (int i = 0; i < t->nkids; i++) {
        jv_free(t->kids[i].key);
        cairn_tmpl_free(t->kids[i].t);
    }
    free(t->kids);
    free(t);
}

/* ---- strings ---------------------------------------------------------------- */

static bool has_open(const char *s, size_t len) { return memmem(s, len, OPEN, 3) != NULL; }

typedef struct str_src {
    const char *s;
    size_t len;
    int line, col;       /* of the string */
    int col0;            /* column of byte 0 of the text, or 0 when unknown */
    const char *file;
    cairn_exprset *set;
    cairn_diags *diags;
} str_src;

/* Best effort: the column of byte off when the text is on one line and its
 * first byte's column is known; else the string's own position. */
static void pos_of(const str_src *src, size_t off, int *line, int *col) {
    *line = src->line;
    *col = src->col;
    if (src->col0 > 0 && memchr(src->s, '\n', src->len) == NULL) *col = src->col0 + (int)off;
}

static void add_part(cairn_tmpl *t, const char *text, size_t len, int expr) {
    if (text && len == 0) return;
    t->parts = cairn_realloc(t->parts, (size_t)(t->nparts + 1) * sizeof *t->parts);
    t->parts[t->nparts++] = (tmpl_part){text ? cairn_strndup(text, len) : NULL, len, expr};
}

static void trim(const char **s, size_t *len) {
    while (*len && strchr(" \t\r\n", (*s)[0])) (*s)++, (*len)--;
    while (*len && strchr(" \t\r\n", (*s)[*len - 1])) (*len)--;
}

/* Parse the expression whose `${{` is at off; returns the offset just after
 * its `}}`, or 0 after reporting a diagnostic. */
static size_t parse_expr(const str_src *src, cairn_tmpl *t, size_t off) {
    int line, col;
    pos_of(src, off, &line, &col);
    const char *body = src->s + off + 3;
    long end = cairn__exprlex_close(body, src->len - off - 3);
    if (end < 0) {
        cairn_diags_add(src->diags, src->file, line, col,
                        "unterminated expression: `${{` without its closing `}}`");
        return 0;
    }
    const char *prog = body;
    size_t plen = (size_t)end;
    trim(&prog, &plen);
    char *text = cairn_strndup(prog, plen);
    int idx = cairn_exprset_add(src->set, text, src->file, line, col);
    free(text);
    if (idx < 0) {
        cairn_diags_add(src->diags, src->file, line, col,
                        "too many expressions in one workflow (the limit is %d)", CAIRN_EXPR_MAX);
        return 0;
    }
    add_part(t, NULL, 0, idx);
    return off + 3 + (size_t)end + 2;
}

static cairn_tmpl *tmpl_string(const str_src *src, cairn_splice_mode mode) {
    cairn_tmpl *t = tmpl_alloc(T_STRING, jv_invalid());
    t->mode = mode;
    size_t at = 0;
    for (;;) {
        const char *open = memmem(src->s + at, src->len - at, OPEN, 3);
        if (open == NULL) break;
        size_t off = (size_t)(open - src->s);
        add_part(t, src->s + at, off - at, -1);
        size_t next = parse_expr(src, t, off);
        if (next == 0) {                 /* reported: keep the text as it is */
            cairn_tmpl_free(t);
            return tmpl_alloc(T_CONST, jv_string_sized(src->s, (int)src->len));
        }
        at = next;
    }
    add_part(t, src->s + at, src->len - at, -1);
    t->whole = t->nparts == 1 && t->parts[0].text == NULL;
    return t;
}

cairn_tmpl *cairn_tmpl_from_string(const char *s, int line, int col, cairn_exprset *set,
                                   cairn_splice_mode mode, const char *file,
                                   cairn_diags *diags) {
    size_t len = strlen(s);
    if (!has_open(s, len)) return tmpl_alloc(T_CONST, jv_string_sized(s, (int)len));
    str_src src = {s, len, line, col, col, file, set, diags};
    return tmpl_string(&src, mode);
}

/* ---- trees ------------------------------------------------------------------ */

static bool node_has_expr(const cairn_node *n) {
    if (n->kind == CAIRN_NODE_SCALAR) return n->text && has_open(n->text, n->len);
    for (int i = 0; i < n->count; i++)
        if (node_has_expr(n->values[i])) return true;
    return false;
}

static void add_kid(cairn_tmpl *t, jv key, int index, cairn_tmpl *kid) {
    t->kids = cairn_realloc(t->kids, (size_t)(t->nkids + 1) * sizeof *t->kids);
    t->kids[t->nkids++] = (tmpl_kid){key, index, kid};
}

static cairn_tmpl *tmpl_dynamic(const cairn_node *n, cairn_exprset *set, cairn_splice_mode mode,
                                const char *file, cairn_diags *diags);

static cairn_tmpl *tmpl_children(const cairn_node *n, cairn_exprset *set, cairn_splice_mode mode,
                                 const char *file, cairn_diags *diags) {
    bool map = n->kind == CAIRN_NODE_MAP;
    cairn_tmpl *t = tmpl_alloc(map ? T_MAP : T_SEQ, map ? jv_object() : jv_array());
    for (int i = 0; i < n->count; i++) {
        const cairn_node *v = n->values[i];
        jv key = map ? jv_string_sized(n->keys[i]->text, (int)n->keys[i]->len) : jv_invalid();
        jv value = jv_null();
        if (node_has_expr(v))
            add_kid(t, map ? jv_copy(key) : jv_invalid(), i,
                    tmpl_dynamic(v, set, mode, file, diags));
        else value = cairn_node_to_jv(v);
        t->value = map ? jv_object_set(t->value, key, value) : jv_array_set(t->value, i, value);
    }
    return t;
}

/* The template of n, which holds at least one `${{`. */
static cairn_tmpl *tmpl_dynamic(const cairn_node *n, cairn_exprset *set, cairn_splice_mode mode,
                                const char *file, cairn_diags *diags) {
    if (n->kind != CAIRN_NODE_SCALAR) return tmpl_children(n, set, mode, file, diags);
    /* Where the text starts: a plain scalar at the node, a quoted one a byte
     * after its quote.  Block scalars start on the next line: their text has
     * a newline, and pos_of then keeps the node's position. */
    str_src src = {n->text, n->len, n->line, n->col, n->col + (n->quoted ? 1 : 0),
                   file, set, diags};
    return tmpl_string(&src, mode);
}

cairn_tmpl *cairn_tmpl_new(const cairn_node *node, cairn_exprset *set, cairn_splice_mode mode,
                           const char *file, cairn_diags *diags) {
    if (node == NULL) return tmpl_alloc(T_CONST, jv_null());
    if (!node_has_expr(node)) return tmpl_alloc(T_CONST, cairn_node_to_jv(node));
    return tmpl_dynamic(node, set, mode, file, diags);
}

static bool listed(const cairn_node *key, const char *const *keys) {
    for (; keys && *keys; keys++)
        if (strlen(*keys) == key->len && memcmp(*keys, key->text, key->len) == 0) return true;
    return false;
}

cairn_tmpl *cairn_tmpl_new_fields(const cairn_node *map, const char *const *shell_keys,
                                  cairn_exprset *set, const char *file, cairn_diags *diags) {
    if (map == NULL || map->kind != CAIRN_NODE_MAP || !node_has_expr(map))
        return cairn_tmpl_new(map, set, CAIRN_SPLICE_TEXT, file, diags);
    cairn_tmpl *t = tmpl_alloc(T_MAP, jv_object());
    for (int i = 0; i < map->count; i++) {
        const cairn_node *v = map->values[i];
        jv key = jv_string_sized(map->keys[i]->text, (int)map->keys[i]->len);
        jv value = jv_null();
        cairn_splice_mode mode = listed(map->keys[i], shell_keys) ? CAIRN_SPLICE_SHELL
                                                                  : CAIRN_SPLICE_TEXT;
        if (node_has_expr(v)) add_kid(t, jv_copy(key), i, tmpl_dynamic(v, set, mode, file, diags));
        else value = cairn_node_to_jv(v);
        t->value = jv_object_set(t->value, key, value);
    }
    return t;
}

bool cairn_tmpl_is_const(const cairn_tmpl *t) { return t == NULL || t->kind == T_CONST; }

jv cairn_tmpl_const_value(const cairn_tmpl *t) {
    if (t == NULL) return jv_null();
    return t->kind == T_CONST ? jv_copy(t->value) : jv_invalid();
}

bool cairn_tmpl_reads(const cairn_tmpl *t, const cairn_exprset *set, const char *key) {
    if (t == NULL) return false;
    for (int i = 0; i < t->nparts; i++)
        if (t->parts[i].text == NULL && cairn_exprset_reads(set, t->parts[i].expr, key)) return true;
    for (int i = 0; i < t->nkids; i++)
        if (cairn_tmpl_reads(t->kids[i].t, set, key)) return true;
    return false;
}

/* ---- rendering ----------------------------------------------------------- */

/* Evaluate part expression idx; a failure names the expression's place. */
static int eval_at(cairn_exprset *set, int idx, jv doc, jv *out, cairn_err *err) {
    cairn_err local;
    int rc = cairn_exprset_eval(set, idx, doc, out, &local);
    if (rc == 0) return 0;
    if (rc != CAIRN_EEXPR) return cairn_err_set(err, rc, "%s", local.msg);
    const char *file;
    int line, col;
    cairn__exprset_pos(set, idx, &file, &line, &col);
    return cairn_err_set(err, rc, "expression at %s:%d:%d: %s", file, line, col, local.msg);
}

/* Append v (consumed) to b: strings raw, other values as compact JSON; in
 * shell mode single-quoted, so that the shell reads it as one word of data. */
static int splice(cairn_buf *b, jv v, cairn_splice_mode mode, cairn_err *err) {
    if (jv_get_kind(v) != JV_KIND_STRING) v = jv_dump_string(v, 0);
    const char *s = jv_string_value(v);
    size_t len = (size_t)jv_string_length_bytes(jv_copy(v));
    int rc = 0;
    if (mode != CAIRN_SPLICE_SHELL) {
        cairn_buf_append(b, s, len);
    } else if (memchr(s, '\0', len)) {
        rc = cairn_err_set(err, CAIRN_EEXPR, "a value spliced into a shell command holds a NUL "
                           "byte, which a command line cannot carry");
    } else {
        char *q = cairn_shell_quote(s, len);
        cairn_buf_puts(b, q);
        free(q);
    }
    jv_free(v);
    return rc;
}

static int render_string(const cairn_tmpl *t, cairn_exprset *set, jv doc, jv *out,
                         cairn_err *err) {
    if (t->whole) return eval_at(set, t->parts[0].expr, doc, out, err);
    cairn_buf b = CAIRN_BUF_INIT;
    int rc = 0;
    for (int i = 0; rc == 0 && i < t->nparts; i++) {
        const tmpl_part *p = &t->parts[i];
        jv v;
        if (p->text) cairn_buf_append(&b, p->text, p->len);
        else if ((rc = eval_at(set, p->expr, doc, &v, err)) == 0) rc = splice(&b, v, t->mode, err);
    }
    if (rc == 0) *out = jv_string_sized(b.data ? b.data : "", (int)b.len);
    cairn_buf_free(&b);
    return rc;
}

int cairn_tmpl_render(const cairn_tmpl *t, cairn_exprset *set, jv doc, jv *out,
                      cairn_err *err) {
    *out = jv_invalid();
    if (t == NULL) {
        *out = jv_null();
        return 0;
    }
    switch (t->kind) {
    case T_CONST:
        *out = jv_copy(t->value);
        return 0;
    case T_STRING:
        return render_string(t, set, doc, out, err);
    default:
        break;
    }
    jv v = jv_copy(t->value);
    for (int i = 0; i < t->nkids; i++) {
        const tmpl_kid *k = &t->kids[i];
        jv kv;
        int rc = cairn_tmpl_render(k->t, set, doc, &kv, err);
        if (rc) {
            jv_free(v);
            return rc;
        }
        v = t->kind == T_MAP ? jv_object_set(v, jv_copy(k->key), kv)
                             : jv_array_set(v, k->index, kv);
    }
    *out = v;
    return 0;
}

/* ---- shell quoting and truth ---------------------------------------------- */

char *cairn_shell_quote(const char *s, size_t len) {
    cairn_buf b = CAIRN_BUF_INIT;
    cairn_buf_putc(&b, '\'');
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\'') cairn_buf_puts(&b, "'\"'\"'");   /* close, a quoted ', reopen */
        else cairn_buf_putc(&b, s[i]);
    }
    cairn_buf_putc(&b, '\'');
    return cairn_buf_detach(&b);
}

bool cairn_truthy(jv v) {
    jv_kind k = jv_get_kind(v);
    return k != JV_KIND_INVALID && k != JV_KIND_NULL && k != JV_KIND_FALSE;
}
