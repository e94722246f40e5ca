/*
 * tmpl.c - value templates: YAML trees whose strings may hold `${{ }}`.
 *
 * A template mirrors its node: a subtree without `${{` anywhere is one jv
 * constant; a map or list with expressions below keeps a constant "base"
 * (with null where a child is dynamic, so keys keep their order) and renders
 * only its dynamic children into a copy of it.  A string is a list of parts,
 * literal text and expressions; a string that is exactly one expression is
 * "whole" and renders to the expression's value, JSON type kept.
 *
 * A shell field of a `with` map (shell's `run`, ssh's `command`) that
 * splices values is a T_SHELL: its text is the script rewritten at load time
 * (shlex.h), each splice replaced by a reference to CAIRN_V<n>, and its parts
 * are the expressions alone.  The map renders the script in the field and
 * the values into its `env` field, CAIRN_V<n> = the value as text: the
 * values reach the script as environment variables and never as shell text.
 */
#include "dsl/expr_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/mem.h"
#include "dsl/shlex.h"

typedef enum { T_CONST, T_STRING, T_SHELL, T_MAP, T_SEQ } tmpl_kind;

typedef struct tmpl_part {
    char *text;          /* literal text, or NULL for an expression */
    size_t len;
    int expr;            /* index in the set */
    size_t src_off;      /* where the part starts in the author's string */
} tmpl_part;

typedef struct tmpl_kid {
    jv key;              /* T_MAP: the key (a string) */
    int index;           /* T_SEQ: the position */
    cairn_tmpl *t;
} tmpl_kid;

/* A small T_MAP (at most TMPL_MEMBERS_MAX members and kids, no shell
 * field) renders without its base: made fresh, one jv_object_set a member
 * in the base's order (so its keys keep their order), which costs less
 * than unsharing a copy of the base and setting into it; and its canonical
 * text (json.h) is written from texts made at load, only the dynamic
 * members' values being written per render. */
#define TMPL_MEMBERS_MAX 8

/* A small map's last render whose dynamic values were all scalars.
 * Rendered again with the same values (same_scalar), the map is the same
 * value: its object and text are given again rather than made anew (the
 * runs of one workflow render each step's `with` alike, over and over).
 * A jv never changes, so a shared object is invisible to its readers. */
#define TMPL_KEEP_TEXT_MAX 4096   /* bytes of text: a larger render is not kept */

typedef struct tmpl_last {
    jv kv[TMPL_MEMBERS_MAX];     /* the dynamic values, by kid */
    jv value;                    /* the map; invalid: none kept */
    char *text;                  /* its canonical text */
    size_t len;
} tmpl_last;

typedef struct tmpl_member {
    jv key;
    jv value;            /* a constant member's value; invalid when dynamic */
    int kid;             /* a dynamic member's kid (the last of its key), else -1 */
    char *text;          /* "key": and a constant member's value, canonical */
    size_t len;
} tmpl_member;

struct cairn_tmpl {
    tmpl_kind kind;
    jv value;            /* T_CONST: the value; T_MAP, T_SEQ: the base;
                            T_SHELL: the rewritten script */
    bool whole;
    int var0;            /* T_SHELL: part i's value is CAIRN_V<var0 + i + 1> */
    tmpl_part *parts;
    int nparts;
    tmpl_kid *kids;
    int nkids;
    tmpl_member *mem;    /* a small T_MAP's members, in the base's order, or NULL */
    int nmem;
    int *sorted;         /* mem's indexes in canonical key order */
    tmpl_last *last;     /* a small map with kids: its last render, or none */
};

static void last_clear(tmpl_last *c, int nkids) {
    if (!jv_is_valid(c->value)) return;
    for (int j = 0; j < nkids; j++) jv_free(c->kv[j]);
    jv_free(c->value);
    c->value = jv_invalid();
    free(c->text);
    c->text = NULL;
}

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
    for (int i = 0; i < t->nmem; i++) {
        jv_free(t->mem[i].key);
        jv_free(t->mem[i].value);
        free(t->mem[i].text);
    }
    free(t->mem);
    free(t->sorted);
    if (t->last) last_clear(t->last, t->nkids);
    free(t->last);
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

static void add_part(cairn_tmpl *t, const char *text, size_t len, int expr, size_t src_off) {
    if (text && len == 0) return;
    t->parts = cairn_realloc(t->parts, (size_t)(t->nparts + 1) * sizeof *t->parts);
    t->parts[t->nparts++] =
        (tmpl_part){text ? cairn_strndup(text, len) : NULL, len, expr, src_off};
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
    add_part(t, NULL, 0, idx, off);
    return off + 3 + (size_t)end + 2;
}

static cairn_tmpl *tmpl_string(const str_src *src) {
    cairn_tmpl *t = tmpl_alloc(T_STRING, jv_invalid());
    size_t at = 0;
    for (;;) {
        const char *open = memmem(src->s + at, src->len - at, OPEN, 3);
        if (open == NULL) break;
        size_t off = (size_t)(open - src->s);
        add_part(t, src->s + at, off - at, -1, at);
        size_t next = parse_expr(src, t, off);
        if (next == 0) {                 /* reported: keep the text as it is */
            cairn_tmpl_free(t);
            return tmpl_alloc(T_CONST, jv_string_sized(src->s, (int)src->len));
        }
        at = next;
    }
    add_part(t, src->s + at, src->len - at, -1, at);
    t->whole = t->nparts == 1 && t->parts[0].text == NULL;
    return t;
}

cairn_tmpl *cairn_tmpl_from_string(const char *s, int line, int col, cairn_exprset *set,
                                   const char *file, cairn_diags *diags) {
    size_t len = strlen(s);
    if (!has_open(s, len)) return tmpl_alloc(T_CONST, jv_string_sized(s, (int)len));
    str_src src = {s, len, line, col, col, file, set, diags};
    return tmpl_string(&src);
}

/* ---- shell fields ------------------------------------------------------------ */

/* Where literal offset off (in the parts' text, splices cut out) stands in
 * the author's string: a splice's offset maps to its `${{`. */
static size_t source_offset(const cairn_tmpl *t, size_t off, size_t src_len) {
    size_t lit = 0;
    for (int i = 0; i < t->nparts; i++) {
        const tmpl_part *p = &t->parts[i];
        if (p->text == NULL && off == lit) return p->src_off;
        if (p->text && off < lit + p->len) return p->src_off + (off - lit);
        if (p->text) lit += p->len;
    }
    return src_len;
}

static void shell_error(const str_src *src, const cairn_tmpl *t, const cairn_shlex_err *e) {
    size_t at = source_offset(t, e->offset, src->len);
    int line, col, sline = 1, scol = 1;
    pos_of(src, at, &line, &col);
    for (size_t i = 0; i < at; i++, scol++)
        if (src->s[i] == '\n') sline++, scol = 0;
    cairn_diags_add(src->diags, src->file, line, col, "in the script at its line %d, column "
                    "%d: %s", sline, scol, e->why);
}

/* t (a T_STRING of parts) becomes a T_SHELL: the script with each splice
 * replaced by a reference to its variable, and the expressions alone. */
static void rewrite_shell(cairn_tmpl *t, const cairn_shctx *ctx, int var0) {
    cairn_buf script = CAIRN_BUF_INIT;
    int k = 0;
    for (int i = 0; i < t->nparts; i++) {
        tmpl_part *p = &t->parts[i];
        if (p->text) {
            cairn_buf_append(&script, p->text, p->len);
            free(p->text);
            continue;
        }
        char name[32];
        snprintf(name, sizeof name, "CAIRN_V%d", var0 + k + 1);
        cairn_shlex_reference(&script, ctx[k], name);
        t->parts[k++] = *p;
    }
    t->nparts = k;
    t->kind = T_SHELL;
    t->var0 = var0;
    t->value = jv_string_sized(script.data ? script.data : "", (int)script.len);
    cairn_buf_free(&script);
}

/* The template of a shell field's string, which holds at least one `${{`;
 * *nvars counts the variables of the whole `with`. */
static cairn_tmpl *tmpl_shell(const str_src *src, int *nvars) {
    cairn_tmpl *t = tmpl_string(src);
    if (t->kind != T_STRING || t->whole) return t;      /* reported, or the whole script */
    cairn_buf lit = CAIRN_BUF_INIT;
    size_t *marks = cairn_calloc((size_t)t->nparts, sizeof *marks);
    cairn_shctx *ctx = cairn_calloc((size_t)t->nparts, sizeof *ctx);
    int n = 0;
    for (int i = 0; i < t->nparts; i++) {
        if (t->parts[i].text) cairn_buf_append(&lit, t->parts[i].text, t->parts[i].len);
        else marks[n++] = lit.len;
    }
    cairn_shlex_err err;
    if (cairn_shlex_place(lit.data ? lit.data : "", lit.len, marks, n, ctx, &err) != 0)
        shell_error(src, t, &err);
    else {
        rewrite_shell(t, ctx, *nvars);
        *nvars += n;
    }
    cairn_buf_free(&lit);
    free(marks);
    free(ctx);
    return t;
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

static cairn_tmpl *tmpl_dynamic(const cairn_node *n, cairn_exprset *set, const char *file,
                                cairn_diags *diags);

static int last_kid(const cairn_tmpl *t, jv key) {
    for (int j = t->nkids - 1; j >= 0; j--)
        if (jv_equal(jv_copy(t->kids[j].key), jv_copy(key))) return j;
    return -1;
}

static const char *key_text(jv key, size_t *len) {
    *len = (size_t)jv_string_length_bytes(jv_copy(key));
    return jv_string_value(key);
}

/* A small T_MAP's members and their canonical order (see tmpl_member). */
static void plan_members(cairn_tmpl *t) {
    int n = jv_object_length(jv_copy(t->value));
    if (n > TMPL_MEMBERS_MAX || t->nkids > TMPL_MEMBERS_MAX) return;
    for (int j = 0; j < t->nkids; j++)
        if (t->kids[j].t->kind == T_SHELL) return;
    if (t->nkids > 0) {
        t->last = cairn_calloc(1, sizeof *t->last);
        t->last->value = jv_invalid();
    }
    t->mem = cairn_calloc((size_t)(n > 0 ? n : 1), sizeof *t->mem);
    t->sorted = cairn_calloc((size_t)(n > 0 ? n : 1), sizeof *t->sorted);
    jv_object_foreach(t->value, k, v) {
        tmpl_member *m = &t->mem[t->nmem];
        m->key = k;
        m->kid = last_kid(t, k);
        m->value = m->kid < 0 ? v : (jv_free(v), jv_invalid());
        cairn_buf b = CAIRN_BUF_INIT;
        size_t len;
        const char *s = key_text(k, &len);
        cairn_json_write_string(&b, s, len);
        cairn_buf_putc(&b, ':');
        if (m->kid < 0) cairn_json_write(&b, m->value);
        m->len = b.len;
        m->text = cairn_buf_detach(&b);
        int at = t->nmem++;   /* insertion sort: a handful of keys */
        for (; at > 0; at--) {
            size_t plen;
            const char *p = key_text(t->mem[t->sorted[at - 1]].key, &plen);
            if (cairn_json_key_cmp(p, plen, s, len) <= 0) break;
            t->sorted[at] = t->sorted[at - 1];
        }
        t->sorted[at] = (int)(m - t->mem);
    }
}

static cairn_tmpl *tmpl_children(const cairn_node *n, cairn_exprset *set, const char *file,
                                 cairn_diags *diags) {
    bool map = n->kind == CAIRN_NODE_MAP;
    cairn_tmpl *t = tmpl_alloc(map ? T_MAP : T_SEQ, map ? jv_object() : jv_array());
    for (int i = 0; i < n->count; i++) {
        const cairn_node *v = n->values[i];
        jv key = map ? jv_string_sized(n->keys[i]->text, (int)n->keys[i]->len) : jv_invalid();
        jv value = jv_null();
        if (node_has_expr(v))
            add_kid(t, map ? jv_copy(key) : jv_invalid(), i,
                    tmpl_dynamic(v, set, file, diags));
        else value = cairn_node_to_jv(v);
        t->value = map ? jv_object_set(t->value, key, value) : jv_array_set(t->value, i, value);
    }
    if (map) plan_members(t);
    return t;
}

/* A scalar's text, and where its first byte stands when the text is the
 * source byte for byte (yaml.h); elsewhere pos_of keeps the node's place. */
static str_src scalar_src(const cairn_node *n, cairn_exprset *set, const char *file,
                          cairn_diags *diags) {
    return (str_src){n->text, n->len, n->line, n->col, n->text_col, file, set, diags};
}

/* The template of n, which holds at least one `${{`. */
static cairn_tmpl *tmpl_dynamic(const cairn_node *n, cairn_exprset *set, const char *file,
                                cairn_diags *diags) {
    if (n->kind != CAIRN_NODE_SCALAR) return tmpl_children(n, set, file, diags);
    str_src src = scalar_src(n, set, file, diags);
    return tmpl_string(&src);
}

cairn_tmpl *cairn_tmpl_new(const cairn_node *node, cairn_exprset *set, const char *file,
                           cairn_diags *diags) {
    if (node == NULL) return tmpl_alloc(T_CONST, jv_null());
    if (!node_has_expr(node)) return tmpl_alloc(T_CONST, cairn_node_to_jv(node));
    return tmpl_dynamic(node, set, file, diags);
}

static bool listed(const cairn_node *key, const char *const *keys) {
    for (; keys && *keys; keys++)
        if (strlen(*keys) == key->len && memcmp(*keys, key->text, key->len) == 0) return true;
    return false;
}

cairn_tmpl *cairn_tmpl_new_fields(const cairn_node *map, const char *const *shell_keys,
                                  cairn_exprset *set, const char *file, cairn_diags *diags) {
    if (map == NULL || map->kind != CAIRN_NODE_MAP || !node_has_expr(map))
        return cairn_tmpl_new(map, set, file, diags);
    cairn_tmpl *t = tmpl_alloc(T_MAP, jv_object());
    int nvars = 0;
    for (int i = 0; i < map->count; i++) {
        const cairn_node *v = map->values[i];
        jv key = jv_string_sized(map->keys[i]->text, (int)map->keys[i]->len);
        jv value = jv_null();
        if (node_has_expr(v) && v->kind == CAIRN_NODE_SCALAR && listed(map->keys[i], shell_keys)) {
            str_src src = scalar_src(v, set, file, diags);
            add_kid(t, jv_copy(key), i, tmpl_shell(&src, &nvars));
        } else if (node_has_expr(v))
            add_kid(t, jv_copy(key), i, tmpl_dynamic(v, set, file, diags));
        else value = cairn_node_to_jv(v);
        t->value = jv_object_set(t->value, key, value);
    }
    plan_members(t);
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

void cairn_tmpl_each_expr(const cairn_tmpl *t, void (*cb)(void *ctx, int idx), void *ctx) {
    if (t == NULL) return;
    for (int i = 0; i < t->nparts; i++)
        if (t->parts[i].text == NULL) cb(ctx, t->parts[i].expr);
    for (int i = 0; i < t->nkids; i++) cairn_tmpl_each_expr(t->kids[i].t, cb, ctx);
}

/* ---- rendering ----------------------------------------------------------- */

/* Evaluate part expression idx; a failure names the expression's place. */
static int eval_at(cairn_exprset *set, int idx, cairn_doc *doc, jv *out, cairn_err *err) {
    cairn_err local;
    int rc = cairn_exprset_eval_doc(set, idx, doc, out, &local);
    if (rc == 0) return 0;
    if (rc != CAIRN_EEXPR) return cairn_err_set(err, rc, "%s", local.msg);
    const char *file;
    int line, col;
    cairn_exprset_pos(set, idx, &file, &line, &col);
    return cairn_err_set(err, rc, "expression at %s:%d:%d: %s", file, line, col, local.msg);
}

/* v (consumed) as text: strings raw, other values as compact JSON. */
static jv as_text(jv v) {
    return jv_get_kind(v) == JV_KIND_STRING ? v : jv_dump_string(v, 0);
}

static int render_string(const cairn_tmpl *t, cairn_exprset *set, cairn_doc *doc, jv *out,
                         cairn_err *err) {
    if (t->whole) return eval_at(set, t->parts[0].expr, doc, out, err);
    cairn_buf b = CAIRN_BUF_INIT;
    int rc = 0;
    for (int i = 0; rc == 0 && i < t->nparts; i++) {
        const tmpl_part *p = &t->parts[i];
        jv v;
        if (p->text) cairn_buf_append(&b, p->text, p->len);
        else if ((rc = eval_at(set, p->expr, doc, &v, err)) == 0) {
            v = as_text(v);
            cairn_buf_append(&b, jv_string_value(v), (size_t)jv_string_length_bytes(jv_copy(v)));
            jv_free(v);
        }
    }
    if (rc == 0) *out = jv_string_sized(b.data ? b.data : "", (int)b.len);
    cairn_buf_free(&b);
    return rc;
}

/* A T_SHELL's values into *vars (an object, created when invalid):
 * CAIRN_V<n> = the value as text.  An environment variable cannot hold a NUL
 * byte, so a value with one is an error rather than a truncated value. */
static int render_vars(const cairn_tmpl *t, cairn_exprset *set, cairn_doc *doc, jv *vars,
                       cairn_err *err) {
    if (!jv_is_valid(*vars)) *vars = jv_object();
    for (int i = 0; i < t->nparts; i++) {
        jv v;
        int rc = eval_at(set, t->parts[i].expr, doc, &v, err);
        if (rc) return rc;
        v = as_text(v);
        if (memchr(jv_string_value(v), '\0', (size_t)jv_string_length_bytes(jv_copy(v)))) {
            jv_free(v);
            return cairn_err_set(err, CAIRN_EEXPR, "a value spliced into a shell script holds "
                                 "a NUL byte, which an environment variable cannot carry");
        }
        char name[32];
        snprintf(name, sizeof name, "CAIRN_V%d", t->var0 + i + 1);
        *vars = jv_object_set(*vars, jv_string(name), v);
    }
    return 0;
}

/* The map's `env` with vars (consumed) set in it, the spliced values winning
 * over the author's entries of the same name.  An `env` that is not a map is
 * left for the action to refuse (the step then fails before it runs). */
static jv with_vars(jv map, jv vars) {
    jv env = jv_object_get(jv_copy(map), jv_string("env"));
    jv_kind k = jv_get_kind(env);
    if (k == JV_KIND_INVALID || k == JV_KIND_NULL) {
        jv_free(env);
        env = jv_object();
    } else if (k != JV_KIND_OBJECT) {
        jv_free(env);
        jv_free(vars);
        return map;
    }
    return jv_object_set(map, jv_string("env"), jv_object_merge(env, vars));
}

static int render_kids(const cairn_tmpl *t, cairn_exprset *set, cairn_doc *doc, jv *out,
                       cairn_err *err) {
    jv v = jv_copy(t->value), vars = jv_invalid();
    int rc = 0;
    for (int i = 0; rc == 0 && i < t->nkids; i++) {
        const tmpl_kid *k = &t->kids[i];
        jv kv = jv_invalid();
        if (k->t->kind == T_SHELL) {
            rc = render_vars(k->t, set, doc, &vars, err);
            kv = jv_copy(k->t->value);
        } else
            rc = cairn_tmpl_render_doc(k->t, set, doc, &kv, err);
        if (rc) jv_free(kv);
        else v = t->kind == T_MAP ? jv_object_set(v, jv_copy(k->key), kv)
                                  : jv_array_set(v, k->index, kv);
    }
    if (rc) {
        jv_free(v);
        jv_free(vars);
        return rc;
    }
    *out = jv_is_valid(vars) ? with_vars(v, vars) : v;
    return 0;
}

/* The canonical text of a small map whose dynamic values are kv. */
static void write_members(const cairn_tmpl *t, const jv *kv, cairn_buf *text) {
    cairn_buf_putc(text, '{');
    for (int i = 0; i < t->nmem; i++) {
        const tmpl_member *m = &t->mem[t->sorted[i]];
        if (i) cairn_buf_putc(text, ',');
        cairn_buf_append(text, m->text, m->len);
        if (m->kid >= 0) cairn_json_write(text, kv[m->kid]);
    }
    cairn_buf_putc(text, '}');
}

/* Whether a and b (borrowed) are one scalar as far as any reader can tell:
 * null, a boolean, a number bit for bit (-0 is not 0), or a string byte
 * for byte.  Arrays and objects never are (a key order may differ). */
static bool same_scalar(jv a, jv b) {
    jv_kind k = jv_get_kind(a);
    if (k != jv_get_kind(b)) return false;
    switch (k) {
    case JV_KIND_NULL: case JV_KIND_TRUE: case JV_KIND_FALSE: return true;
    case JV_KIND_NUMBER: {
        double x = jv_number_value(a), y = jv_number_value(b);
        return memcmp(&x, &y, sizeof x) == 0;
    }
    case JV_KIND_STRING: return jv_equal(jv_copy(a), jv_copy(b));
    default: return false;
    }
}

static bool scalar(jv v) {
    jv_kind k = jv_get_kind(v);
    return k != JV_KIND_ARRAY && k != JV_KIND_OBJECT && k != JV_KIND_INVALID;
}

/* Whether the last render kept in t->last had these dynamic values. */
static bool last_matches(const cairn_tmpl *t, const jv *kv) {
    const tmpl_last *c = t->last;
    if (c == NULL || !jv_is_valid(c->value)) return false;
    for (int j = 0; j < t->nkids; j++)
        if (!same_scalar(kv[j], c->kv[j])) return false;
    return true;
}

/* Keep the map o (borrowed) rendered from kv as t's last render, when every
 * dynamic value is a scalar (see tmpl_last) and its text is at most
 * TMPL_KEEP_TEXT_MAX bytes; false when not kept. */
static bool keep_last(const cairn_tmpl *t, const jv *kv, jv o) {
    tmpl_last *c = t->last;
    if (c == NULL) return false;
    for (int j = 0; j < t->nkids; j++)
        if (!scalar(kv[j])) return false;
    cairn_buf b = CAIRN_BUF_INIT;
    write_members(t, kv, &b);
    if (b.len > TMPL_KEEP_TEXT_MAX) {   /* a large value is not held past its runs */
        cairn_buf_free(&b);
        return false;
    }
    last_clear(c, t->nkids);
    for (int j = 0; j < t->nkids; j++) c->kv[j] = jv_copy(kv[j]);
    c->value = jv_copy(o);
    c->len = b.len;
    c->text = cairn_buf_detach(&b);
    return true;
}

/* A small map (t->mem): its kids rendered in order as render_kids renders
 * them, then the map given again when its dynamic values are the last
 * render's, else made fresh in the base's order; with text, its canonical
 * text appended. */
static int render_members(const cairn_tmpl *t, cairn_exprset *set, cairn_doc *doc, jv *out,
                          cairn_buf *text, cairn_err *err) {
    jv kv[TMPL_MEMBERS_MAX];
    int rc = 0, n = 0;
    while (n < t->nkids && (rc = cairn_tmpl_render_doc(t->kids[n].t, set, doc, &kv[n], err)) == 0)
        n++;
    if (rc) {
        for (int j = 0; j <= n; j++) jv_free(kv[j]);   /* kv[n]: the failed kid's */
        return rc;
    }
    if (!last_matches(t, kv)) {
        jv o = jv_object();
        for (int i = 0; i < t->nmem; i++) {
            const tmpl_member *m = &t->mem[i];
            o = jv_object_set(o, jv_copy(m->key), jv_copy(m->kid < 0 ? m->value : kv[m->kid]));
        }
        if (!keep_last(t, kv, o)) {   /* a value is an array, an object or large */
            if (text) write_members(t, kv, text);
            for (int j = 0; j < t->nkids; j++) jv_free(kv[j]);
            *out = o;
            return 0;
        }
        jv_free(o);   /* t->last holds it */
    }
    for (int j = 0; j < t->nkids; j++) jv_free(kv[j]);
    *out = jv_copy(t->last->value);
    if (text) cairn_buf_append(text, t->last->text, t->last->len);
    return 0;
}

int cairn_tmpl_render_text(const cairn_tmpl *t, cairn_exprset *set, cairn_doc *doc, jv *out,
                           cairn_buf *text, cairn_err *err) {
    if (t && t->mem) {
        *out = jv_invalid();
        return render_members(t, set, doc, out, text, err);
    }
    int rc = cairn_tmpl_render_doc(t, set, doc, out, err);
    if (rc == 0) cairn_json_write(text, *out);
    return rc;
}

int cairn_tmpl_render_doc(const cairn_tmpl *t, cairn_exprset *set, cairn_doc *doc, jv *out,
                          cairn_err *err) {
    *out = jv_invalid();
    if (t == NULL) {
        *out = jv_null();
        return 0;
    }
    switch (t->kind) {
    case T_CONST:
    case T_SHELL:                      /* its values are the map's to render */
        *out = jv_copy(t->value);
        return 0;
    case T_STRING:
        return render_string(t, set, doc, out, err);
    default:
        return t->mem ? render_members(t, set, doc, out, NULL, err)
                      : render_kids(t, set, doc, out, err);
    }
}

int cairn_tmpl_render(const cairn_tmpl *t, cairn_exprset *set, jv doc, jv *out,
                      cairn_err *err) {
    cairn__jvdoc jd;
    return cairn_tmpl_render_doc(t, set, cairn__jvdoc_init(&jd, doc), out, err);
}

/* ---- truth ---------------------------------------------------------------- */

bool cairn_truthy(jv v) {
    jv_kind k = jv_get_kind(v);
    return k != JV_KIND_INVALID && k != JV_KIND_NULL && k != JV_KIND_FALSE;
}
