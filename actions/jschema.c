/*
 * jschema.c - the JSON Schema subset of jschema.h: compile (check the schema,
 * compile its patterns) and check values against it.
 *
 * Both walks carry the JSON path they stand at in a cairn_buf ("$", then
 * ".name", "[\"odd key\"]", "[3]"), pushed before a step down and cut back
 * after, so every message can say where it applies.
 */
#include "actions/jschema.h"
#include "common/mem.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct js_pattern {
    char *src;
    pcre2_code *code;
} js_pattern;

struct cairn_jschema {
    jv root;
    js_pattern *pats;
    int n_pats, cap_pats;
};

/* ---- paths and messages ------------------------------------------------- */

static bool ident_char(char ch, bool first) {
    bool letter = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
    return letter || ch == '_' || ch == '$' || (!first && ch >= '0' && ch <= '9');
}

/* Keys shown as ".key" rather than ["key"]. */
static bool is_ident(const char *s) {
    for (const char *p = s; *p; p++)
        if (!ident_char(*p, p == s)) return false;
    return *s != '\0';
}

/* Append a key to path p; returns the length to cut back to. */
static size_t path_key(cairn_buf *p, const char *key) {
    size_t mark = p->len;
    if (is_ident(key)) {
        cairn_buf_printf(p, ".%s", key);
    } else {
        jv q = jv_dump_string(jv_string(key), 0);
        cairn_buf_printf(p, "[%s]", jv_string_value(q));
        jv_free(q);
    }
    return mark;
}

static size_t path_index(cairn_buf *p, int i) {
    size_t mark = p->len;
    cairn_buf_printf(p, "[%d]", i);
    return mark;
}

static void path_cut(cairn_buf *p, size_t mark) {
    p->len = mark;
    p->data[mark] = '\0';
}

/* v (borrowed) as compact JSON in out, cut to CAIRN_JSCHEMA_SHOW_MAX bytes
 * on a character boundary with "..." marking the cut. */
static void show(jv v, char *out, size_t outlen) {
    jv s = jv_dump_string(jv_copy(v), 0);
    const char *t = jv_string_value(s);
    size_t n = strlen(t), max = CAIRN_JSCHEMA_SHOW_MAX < outlen - 4 ? CAIRN_JSCHEMA_SHOW_MAX
                                                                      : outlen - 4;
    if (n <= max) {
        snprintf(out, outlen, "%s", t);
    } else {
        while (max > 0 && ((unsigned char)t[max] & 0xC0) == 0x80) max--;
        snprintf(out, outlen, "%.*s...", (int)max, t);
    }
    jv_free(s);
}

static const char *kind_name(jv v) {
    switch (jv_get_kind(v)) {
    case JV_KIND_NULL: return "null";
    case JV_KIND_TRUE:
    case JV_KIND_FALSE: return "boolean";
    case JV_KIND_NUMBER: return "number";
    case JV_KIND_STRING: return "string";
    case JV_KIND_ARRAY: return "array";
    case JV_KIND_OBJECT: return "object";
    default: return "nothing";
    }
}

/* schema[name] (a copy), or jv_invalid() when absent. */
static jv kw(jv schema, const char *name) {
    if (jv_get_kind(schema) != JV_KIND_OBJECT) return jv_invalid();
    return jv_object_get(jv_copy(schema), jv_string(name));
}

static bool is_integer(double d) { return isfinite(d) && floor(d) == d; }

/* ---- JSON pointers inside the schema ------------------------------------ */

/* How many steps below a keyword lead to a subschema: 1 for a schema-valued
 * keyword, 2 for a map or a list of schemas, 0 for anything else. */
static int sub_steps(const char *keyword) {
    static const char *const one[] = {"items", "additionalProperties", "not"};
    static const char *const two[] = {"properties", "$defs", "definitions",
                                      "anyOf", "oneOf", "allOf"};
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++)
        if (strcmp(keyword, one[i]) == 0) return 1;
    for (size_t i = 0; i < sizeof two / sizeof two[0]; i++)
        if (strcmp(keyword, two[i]) == 0) return 2;
    return 0;
}

/* One pointer token, unescaped (~1 is '/', ~0 is '~'), from *p up to the next
 * '/'; advances *p.  Caller frees. */
static char *pointer_token(const char **p) {
    cairn_buf b = CAIRN_BUF_INIT;
    cairn_buf_puts(&b, "");
    for (; **p && **p != '/'; (*p)++) {
        if ((*p)[0] == '~' && ((*p)[1] == '0' || (*p)[1] == '1')) {
            cairn_buf_putc(&b, (*p)[1] == '0' ? '~' : '/');
            (*p)++;
        } else {
            cairn_buf_putc(&b, **p);
        }
    }
    return cairn_buf_detach(&b);
}

/* One step down from node by token: an object key or an array index. */
static jv step_down(jv node, const char *tok) {
    if (jv_get_kind(node) == JV_KIND_OBJECT)
        return jv_object_get(node, jv_string(tok));
    char *end = NULL;
    long i = strtol(tok, &end, 10);
    if (jv_get_kind(node) == JV_KIND_ARRAY && *tok && *end == '\0' && i >= 0 &&
        i < jv_array_length(jv_copy(node)))
        return jv_array_get(node, (int)i);
    jv_free(node);
    return jv_invalid();
}

/* Resolve ref ("#" or "#/a/b") in root.  It must lead through schema
 * positions only (so the compile walk has checked the target); returns the
 * target (a copy) or jv_invalid(). */
static jv resolve_ref(jv root, const char *ref) {
    if (strcmp(ref, "#") == 0) return jv_copy(root);
    if (strncmp(ref, "#/", 2) != 0) return jv_invalid();
    jv node = jv_copy(root);
    const char *p = ref + 1;
    int pending = 0;                   /* steps left inside a keyword's container */
    while (*p == '/' && jv_is_valid(node)) {
        p++;
        char *tok = pointer_token(&p);
        if (pending == 0 && (pending = sub_steps(tok)) == 0) {
            jv_free(node);
            node = jv_invalid();
        } else {
            node = step_down(node, tok);
            pending--;
        }
        free(tok);
    }
    jv_kind k = jv_get_kind(node);
    if (*p || pending || !(k == JV_KIND_OBJECT || k == JV_KIND_TRUE || k == JV_KIND_FALSE)) {
        jv_free(node);
        return jv_invalid();
    }
    return node;
}

/* ---- compiling: checking the schema itself ------------------------------ */

typedef struct js_compile {
    cairn_jschema *s;
    cairn_buf path;
    cairn_err *err;
} js_compile;

typedef int (*js_keyword_fn)(js_compile *c, jv v, int depth);

static int compile_node(js_compile *c, jv node, int depth);

static int bad(js_compile *c, const char *what, jv v) {
    return cairn_err_set(c->err, CAIRN_ESYNTAX, "schema %s: expected %s, got %s", c->path.data,
                         what, kind_name(v));
}

static int kw_any(js_compile *c, jv v, int depth) {
    (void)c, (void)v, (void)depth;
    return 0;
}

static int kw_number(js_compile *c, jv v, int depth) {
    (void)depth;
    if (jv_get_kind(v) != JV_KIND_NUMBER || !isfinite(jv_number_value(v)))
        return bad(c, "a number", v);
    return 0;
}

static int kw_count(js_compile *c, jv v, int depth) {
    (void)depth;
    if (jv_get_kind(v) != JV_KIND_NUMBER || !is_integer(jv_number_value(v)) ||
        jv_number_value(v) < 0)
        return bad(c, "a whole number of 0 or more", v);
    return 0;
}

static bool type_name_ok(jv t) {
    static const char *const names[] = {"null", "boolean", "object", "array",
                                        "number", "string", "integer"};
    if (jv_get_kind(t) != JV_KIND_STRING) return false;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(jv_string_value(t), names[i]) == 0) return true;
    return false;
}

static int kw_type(js_compile *c, jv v, int depth) {
    const char *want = "a type name (null, boolean, object, array, number, string, integer) "
                       "or a non-empty list of them";
    (void)depth;
    if (jv_get_kind(v) == JV_KIND_STRING)
        return type_name_ok(v) ? 0 : cairn_err_set(c->err, CAIRN_ESYNTAX,
                                                   "schema %s: unknown type \"%s\"",
                                                   c->path.data, jv_string_value(v));
    if (jv_get_kind(v) != JV_KIND_ARRAY || jv_array_length(jv_copy(v)) == 0)
        return bad(c, want, v);
    int rc = 0;
    jv_array_foreach(v, i, t) {
        if (rc == 0 && !type_name_ok(t)) {
            size_t mark = path_index(&c->path, i);
            rc = jv_get_kind(t) == JV_KIND_STRING
                     ? cairn_err_set(c->err, CAIRN_ESYNTAX, "schema %s: unknown type \"%s\"",
                                     c->path.data, jv_string_value(t))
                     : bad(c, "a type name", t);
            path_cut(&c->path, mark);
        }
        jv_free(t);
    }
    return rc;
}

static int kw_string_list(js_compile *c, jv v, int depth) {
    (void)depth;
    if (jv_get_kind(v) != JV_KIND_ARRAY) return bad(c, "a list of strings", v);
    int rc = 0;
    jv_array_foreach(v, i, s) {
        if (rc == 0 && jv_get_kind(s) != JV_KIND_STRING) {
            size_t mark = path_index(&c->path, i);
            rc = bad(c, "a string", s);
            path_cut(&c->path, mark);
        }
        jv_free(s);
    }
    return rc;
}

static int kw_array(js_compile *c, jv v, int depth) {
    (void)depth;
    return jv_get_kind(v) == JV_KIND_ARRAY ? 0 : bad(c, "a list", v);
}

static int kw_schema(js_compile *c, jv v, int depth) {
    if (jv_get_kind(v) == JV_KIND_ARRAY)
        return cairn_err_set(c->err, CAIRN_ESYNTAX, "schema %s: a list of schemas (tuple "
                             "form) is not supported; give one schema", c->path.data);
    return compile_node(c, v, depth + 1);
}

static int kw_schema_map(js_compile *c, jv v, int depth) {
    if (jv_get_kind(v) != JV_KIND_OBJECT) return bad(c, "a map of schemas", v);
    int rc = 0;
    jv_object_foreach(v, k, sub) {
        if (rc == 0) {
            size_t mark = path_key(&c->path, jv_string_value(k));
            rc = compile_node(c, sub, depth + 1);
            path_cut(&c->path, mark);
        }
        jv_free(k);
        jv_free(sub);
    }
    return rc;
}

static int kw_schema_list(js_compile *c, jv v, int depth) {
    if (jv_get_kind(v) != JV_KIND_ARRAY || jv_array_length(jv_copy(v)) == 0)
        return bad(c, "a non-empty list of schemas", v);
    int rc = 0;
    jv_array_foreach(v, i, sub) {
        if (rc == 0) {
            size_t mark = path_index(&c->path, i);
            rc = compile_node(c, sub, depth + 1);
            path_cut(&c->path, mark);
        }
        jv_free(sub);
    }
    return rc;
}

static const js_pattern *find_pattern(const cairn_jschema *s, const char *src) {
    for (int i = 0; i < s->n_pats; i++)
        if (strcmp(s->pats[i].src, src) == 0) return &s->pats[i];
    return NULL;
}

static int kw_pattern(js_compile *c, jv v, int depth) {
    (void)depth;
    if (jv_get_kind(v) != JV_KIND_STRING) return bad(c, "a string (a PCRE2 pattern)", v);
    const char *src = jv_string_value(v);
    if (find_pattern(c->s, src)) return 0;
    int code = 0;
    PCRE2_SIZE off = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code,
                                   &off, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return cairn_err_set(c->err, CAIRN_ESYNTAX, "schema %s: bad pattern at offset %zu: %s",
                             c->path.data, (size_t)off, (const char *)msg);
    }
    cairn_jschema *s = c->s;
    if (s->n_pats == s->cap_pats) {
        s->cap_pats = s->cap_pats ? 2 * s->cap_pats : 8;
        s->pats = cairn_realloc(s->pats, (size_t)s->cap_pats * sizeof *s->pats);
    }
    s->pats[s->n_pats++] = (js_pattern){cairn_strdup(src), re};
    return 0;
}

static int kw_ref(js_compile *c, jv v, int depth) {
    (void)depth;
    if (jv_get_kind(v) != JV_KIND_STRING) return bad(c, "a string", v);
    jv target = resolve_ref(c->s->root, jv_string_value(v));
    int rc = 0;
    if (!jv_is_valid(target))
        rc = cairn_err_set(c->err, CAIRN_ESYNTAX, "schema %s: \"%s\" does not lead to a schema "
                           "in this document (only local references such as "
                           "\"#/$defs/name\" are supported)", c->path.data, jv_string_value(v));
    jv_free(target);
    return rc;
}

static const struct {
    const char *name;
    js_keyword_fn fn;
} js_keywords[] = {
    {"type", kw_type}, {"properties", kw_schema_map}, {"required", kw_string_list},
    {"additionalProperties", kw_schema}, {"items", kw_schema}, {"enum", kw_array},
    {"const", kw_any}, {"minimum", kw_number}, {"maximum", kw_number},
    {"exclusiveMinimum", kw_number}, {"exclusiveMaximum", kw_number},
    {"minLength", kw_count}, {"maxLength", kw_count}, {"minItems", kw_count},
    {"maxItems", kw_count}, {"pattern", kw_pattern}, {"anyOf", kw_schema_list},
    {"oneOf", kw_schema_list}, {"allOf", kw_schema_list}, {"not", kw_schema},
    {"$ref", kw_ref}, {"$defs", kw_schema_map}, {"definitions", kw_schema_map},
    /* annotations: accepted, never checked */
    {"title", kw_any}, {"description", kw_any}, {"default", kw_any}, {"examples", kw_any},
    {"$schema", kw_any}, {"$id", kw_any}, {"$comment", kw_any}, {"format", kw_any},
    {"deprecated", kw_any}, {"readOnly", kw_any}, {"writeOnly", kw_any},
    {"contentMediaType", kw_any}, {"contentEncoding", kw_any},
};

static int compile_keyword(js_compile *c, const char *name, jv v, int depth) {
    size_t mark = path_key(&c->path, name);
    int rc = -1;
    for (size_t i = 0; rc == -1 && i < sizeof js_keywords / sizeof js_keywords[0]; i++)
        if (strcmp(js_keywords[i].name, name) == 0) rc = js_keywords[i].fn(c, v, depth);
    if (rc == -1)
        rc = cairn_err_set(c->err, CAIRN_ESYNTAX, "schema %s: keyword \"%s\" is not supported",
                           c->path.data, name);
    path_cut(&c->path, mark);
    return rc;
}

static int compile_node(js_compile *c, jv node, int depth) {
    jv_kind k = jv_get_kind(node);
    if (k == JV_KIND_TRUE || k == JV_KIND_FALSE) return 0;
    if (k != JV_KIND_OBJECT) return bad(c, "a schema (an object or a boolean)", node);
    if (depth > CAIRN_JSCHEMA_DEPTH_MAX)
        return cairn_err_set(c->err, CAIRN_ESYNTAX, "schema %s: nested deeper than %d levels",
                             c->path.data, CAIRN_JSCHEMA_DEPTH_MAX);
    int rc = 0;
    jv_object_foreach(node, name, v) {
        if (rc == 0) rc = compile_keyword(c, jv_string_value(name), v, depth);
        jv_free(name);
        jv_free(v);
    }
    return rc;
}

int cairn_jschema_new(jv schema, cairn_jschema **out, cairn_err *err) {
    cairn_jschema *s = cairn_calloc(1, sizeof *s);
    s->root = jv_copy(schema);
    js_compile c = {s, CAIRN_BUF_INIT, err};
    cairn_buf_puts(&c.path, "$");
    int rc = compile_node(&c, s->root, 0);
    cairn_buf_free(&c.path);
    if (rc != 0) {
        cairn_jschema_free(s);
        return CAIRN_ESYNTAX;
    }
    *out = s;
    return 0;
}

void cairn_jschema_free(cairn_jschema *s) {
    if (s == NULL) return;
    for (int i = 0; i < s->n_pats; i++) {
        free(s->pats[i].src);
        pcre2_code_free(s->pats[i].code);
    }
    free(s->pats);
    jv_free(s->root);
    free(s);
}

/* ---- checking a value ----------------------------------------------------- */

typedef struct js_check {
    const cairn_jschema *s;
    cairn_buf path;
} js_check;

static int check_node(js_check *c, jv schema, jv value, int depth, cairn_err *e);

static int mismatch(js_check *c, cairn_err *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record "<path>: <message>" in e; returns CAIRN_EINVAL. */
static int mismatch(js_check *c, cairn_err *e, const char *fmt, ...) {
    char what[CAIRN_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return cairn_err_set(e, CAIRN_EINVAL, "%s: %s", c->path.data, what);
}

static bool type_is(const char *t, jv v) {
    jv_kind k = jv_get_kind(v);
    if (strcmp(t, "integer") == 0) return k == JV_KIND_NUMBER && is_integer(jv_number_value(v));
    if (strcmp(t, "boolean") == 0) return k == JV_KIND_TRUE || k == JV_KIND_FALSE;
    return strcmp(t, kind_name(v)) == 0;
}

/* "number 2.5", "string \"x\"", or just "object" / "array". */
static void describe(jv v, char *out, size_t outlen) {
    jv_kind k = jv_get_kind(v);
    if (k == JV_KIND_OBJECT || k == JV_KIND_ARRAY || k == JV_KIND_NULL) {
        snprintf(out, outlen, "%s", kind_name(v));
        return;
    }
    char shown[CAIRN_JSCHEMA_SHOW_MAX + 8];
    show(v, shown, sizeof shown);
    snprintf(out, outlen, "%s %s", kind_name(v), shown);
}

static int check_type(js_check *c, jv schema, jv value, cairn_err *e) {
    jv t = kw(schema, "type");
    bool ok = !jv_is_valid(t);
    cairn_buf want = CAIRN_BUF_INIT;
    if (jv_get_kind(t) == JV_KIND_STRING) {
        ok = type_is(jv_string_value(t), value);
        cairn_buf_puts(&want, jv_string_value(t));
    } else if (jv_get_kind(t) == JV_KIND_ARRAY) {
        jv_array_foreach(t, i, name) {
            ok = ok || type_is(jv_string_value(name), value);
            cairn_buf_printf(&want, "%s%s", i ? " or " : "", jv_string_value(name));
            jv_free(name);
        }
    }
    jv_free(t);
    int rc = 0;
    if (!ok) {
        char got[CAIRN_JSCHEMA_SHOW_MAX + 32];
        describe(value, got, sizeof got);
        rc = mismatch(c, e, "expected %s, got %s", want.data, got);
    }
    cairn_buf_free(&want);
    return rc;
}

static int check_const_enum(js_check *c, jv schema, jv value, cairn_err *e) {
    jv k = kw(schema, "const"), en = kw(schema, "enum");
    char shown[CAIRN_JSCHEMA_SHOW_MAX + 8];
    int rc = 0;
    if (jv_is_valid(k) && !jv_equal(jv_copy(k), jv_copy(value))) {
        show(k, shown, sizeof shown);
        rc = mismatch(c, e, "expected %s", shown);
    }
    if (rc == 0 && jv_get_kind(en) == JV_KIND_ARRAY) {
        bool found = false;
        jv_array_foreach(en, i, x) {
            found = found || jv_equal(jv_copy(x), jv_copy(value));
            jv_free(x);
            (void)i;
        }
        show(en, shown, sizeof shown);
        if (!found) rc = mismatch(c, e, "expected one of %s", shown);
    }
    jv_free(k);
    jv_free(en);
    return rc;
}

/* One numeric bound: below (sign < 0) or above (sign > 0) lim fails; equal
 * fails too when strict (the exclusive forms). */
static int check_bound(js_check *c, jv schema, jv value, const char *name, int sign,
                       bool strict, const char *what, cairn_err *e) {
    jv b = kw(schema, name);
    int rc = 0;
    if (jv_get_kind(b) == JV_KIND_NUMBER) {
        double v = jv_number_value(value), lim = jv_number_value(b);
        bool fails = sign < 0 ? (strict ? v <= lim : v < lim) : (strict ? v >= lim : v > lim);
        if (fails) {
            char vs[64], ls[64];
            show(value, vs, sizeof vs);
            show(b, ls, sizeof ls);
            rc = mismatch(c, e, "%s is %s %s", vs, what, ls);
        }
    }
    jv_free(b);
    return rc;
}

static int check_number(js_check *c, jv schema, jv value, cairn_err *e) {
    if (jv_get_kind(value) != JV_KIND_NUMBER) return 0;
    if (check_bound(c, schema, value, "minimum", -1, false, "less than the minimum", e) ||
        check_bound(c, schema, value, "maximum", 1, false, "greater than the maximum", e) ||
        check_bound(c, schema, value, "exclusiveMinimum", -1, true,
                    "not greater than the exclusive minimum", e) ||
        check_bound(c, schema, value, "exclusiveMaximum", 1, true,
                    "not less than the exclusive maximum", e))
        return -1;
    return 0;
}

/* A count keyword (minLength...) as a number, or -1 when absent. */
static double count_kw(jv schema, const char *name) {
    jv v = kw(schema, name);
    double d = jv_get_kind(v) == JV_KIND_NUMBER ? jv_number_value(v) : -1;
    jv_free(v);
    return d;
}

static int check_count(js_check *c, jv schema, double n, const char *unit, cairn_err *e,
                       const char *min_kw, const char *max_kw) {
    double lo = count_kw(schema, min_kw), hi = count_kw(schema, max_kw);
    if (lo >= 0 && n < lo)
        return mismatch(c, e, "expected at least %.0f %s, got %.0f", lo, unit, n);
    if (hi >= 0 && n > hi)
        return mismatch(c, e, "expected at most %.0f %s, got %.0f", hi, unit, n);
    return 0;
}

static size_t utf8_chars(const char *s, size_t n) {
    size_t chars = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) chars++;
    return chars;
}

static int check_pattern(js_check *c, jv schema, jv value, cairn_err *e) {
    jv p = kw(schema, "pattern");
    int rc = 0;
    if (jv_get_kind(p) == JV_KIND_STRING) {
        const js_pattern *pat = find_pattern(c->s, jv_string_value(p));
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(pat->code, NULL);
        int m = pcre2_match(pat->code, (PCRE2_SPTR)jv_string_value(value),
                            (PCRE2_SIZE)jv_string_length_bytes(jv_copy(value)), 0, 0, md, NULL);
        pcre2_match_data_free(md);
        if (m < 0) {
            char shown[CAIRN_JSCHEMA_SHOW_MAX + 8];
            show(value, shown, sizeof shown);
            rc = mismatch(c, e, "%s does not match the pattern %s", shown, pat->src);
        }
    }
    jv_free(p);
    return rc;
}

static int check_string(js_check *c, jv schema, jv value, cairn_err *e) {
    if (jv_get_kind(value) != JV_KIND_STRING) return 0;
    size_t n = utf8_chars(jv_string_value(value), (size_t)jv_string_length_bytes(jv_copy(value)));
    if (check_count(c, schema, (double)n, "characters", e, "minLength", "maxLength")) return -1;
    return check_pattern(c, schema, value, e);
}

static int check_array(js_check *c, jv schema, jv value, int depth, cairn_err *e) {
    if (jv_get_kind(value) != JV_KIND_ARRAY) return 0;
    int n = jv_array_length(jv_copy(value)), rc;
    if ((rc = check_count(c, schema, n, "items", e, "minItems", "maxItems")) != 0) return rc;
    jv items = kw(schema, "items");
    for (int i = 0; rc == 0 && jv_is_valid(items) && i < n; i++) {
        size_t mark = path_index(&c->path, i);
        jv x = jv_array_get(jv_copy(value), i);
        rc = check_node(c, items, x, depth + 1, e);
        jv_free(x);
        path_cut(&c->path, mark);
    }
    jv_free(items);
    return rc;
}

static int check_required(js_check *c, jv schema, jv value, cairn_err *e) {
    jv req = kw(schema, "required");
    int rc = 0;
    if (jv_get_kind(req) == JV_KIND_ARRAY) {
        jv_array_foreach(req, i, name) {
            (void)i;
            if (rc == 0 && !jv_object_has(jv_copy(value), jv_copy(name)))
                rc = mismatch(c, e, "missing required property \"%s\"", jv_string_value(name));
            jv_free(name);
        }
    }
    jv_free(req);
    return rc;
}

/* One property of the object: its schema under properties, else
 * additionalProperties. */
static int check_property(js_check *c, jv props, jv extra, jv key, jv v, int depth,
                          cairn_err *e) {
    jv sub = jv_get_kind(props) == JV_KIND_OBJECT ? jv_object_get(jv_copy(props), jv_copy(key))
                                                   : jv_invalid();
    int rc = 0;
    if (!jv_is_valid(sub) && jv_get_kind(extra) == JV_KIND_FALSE) {
        rc = mismatch(c, e, "property \"%s\" is not allowed (additionalProperties is false)",
                      jv_string_value(key));
    } else if (jv_is_valid(sub) || jv_is_valid(extra)) {
        size_t mark = path_key(&c->path, jv_string_value(key));
        rc = check_node(c, jv_is_valid(sub) ? sub : extra, v, depth + 1, e);
        path_cut(&c->path, mark);
    }
    jv_free(sub);
    return rc;
}

static int check_object(js_check *c, jv schema, jv value, int depth, cairn_err *e) {
    if (jv_get_kind(value) != JV_KIND_OBJECT) return 0;
    int rc = check_required(c, schema, value, e);
    jv props = kw(schema, "properties"), extra = kw(schema, "additionalProperties");
    jv keys = jv_keys(jv_copy(value));  /* sorted: the first error is always the same */
    jv_array_foreach(keys, i, key) {
        (void)i;
        if (rc == 0) {
            jv v = jv_object_get(jv_copy(value), jv_copy(key));
            rc = check_property(c, props, extra, key, v, depth, e);
            jv_free(v);
        }
        jv_free(key);
    }
    jv_free(keys);
    jv_free(props);
    jv_free(extra);
    return rc;
}

/* How many alternatives of list value matches; the messages of those that
 * do not go into why ("[0] ...; [1] ..."). */
static int count_matches(js_check *c, jv list, jv value, int depth, cairn_buf *why,
                         int *first, int *second) {
    int n = 0;
    jv_array_foreach(list, i, sub) {
        cairn_err sub_e;
        cairn_err_clear(&sub_e);
        if (check_node(c, sub, value, depth + 1, &sub_e) == 0) {
            if (n == 0) *first = i;
            else if (n == 1) *second = i;
            n++;
        } else {
            cairn_buf_printf(why, "%s[%d] %s", why->len ? "; " : "", i, sub_e.msg);
        }
        jv_free(sub);
    }
    return n;
}

static int check_alternatives(js_check *c, jv schema, jv value, const char *name, int depth,
                              cairn_err *e) {
    jv list = kw(schema, name);
    int rc = 0, first = -1, second = -1;
    if (jv_get_kind(list) == JV_KIND_ARRAY) {
        cairn_buf why = CAIRN_BUF_INIT;
        cairn_buf_puts(&why, "");
        int n = count_matches(c, list, value, depth, &why, &first, &second);
        if (n == 0)
            rc = cairn_err_set(e, CAIRN_EINVAL, "%s: matches none of the %s alternatives: %s",
                               c->path.data, name, why.data);
        else if (n > 1 && strcmp(name, "oneOf") == 0)
            rc = cairn_err_set(e, CAIRN_EINVAL, "%s: matches %d of the oneOf alternatives "
                               "([%d] and [%d]), expected exactly one", c->path.data, n, first,
                               second);
        cairn_buf_free(&why);
    }
    jv_free(list);
    return rc;
}

static int check_all_of(js_check *c, jv schema, jv value, int depth, cairn_err *e) {
    jv list = kw(schema, "allOf");
    int rc = 0;
    if (jv_get_kind(list) == JV_KIND_ARRAY) {
        jv_array_foreach(list, i, sub) {
            (void)i;
            if (rc == 0) rc = check_node(c, sub, value, depth + 1, e);
            jv_free(sub);
        }
    }
    jv_free(list);
    return rc;
}

static int check_not_ref(js_check *c, jv schema, jv value, int depth, cairn_err *e) {
    jv not = kw(schema, "not"), ref = kw(schema, "$ref");
    int rc = 0;
    if (jv_is_valid(not)) {
        cairn_err sub_e;
        cairn_err_clear(&sub_e);
        if (check_node(c, not, value, depth + 1, &sub_e) == 0)
            rc = mismatch(c, e, "matches the schema under \"not\", which it must not");
    }
    if (rc == 0 && jv_get_kind(ref) == JV_KIND_STRING) {
        jv target = resolve_ref(c->s->root, jv_string_value(ref));
        rc = check_node(c, target, value, depth + 1, e);
        jv_free(target);
    }
    jv_free(not);
    jv_free(ref);
    return rc;
}

static int check_node(js_check *c, jv schema, jv value, int depth, cairn_err *e) {
    jv_kind k = jv_get_kind(schema);
    if (k == JV_KIND_TRUE) return 0;
    if (k == JV_KIND_FALSE) return mismatch(c, e, "no value is allowed here (the schema is false)");
    if (depth > CAIRN_JSCHEMA_DEPTH_MAX)
        return cairn_err_set(e, CAIRN_ELIMIT, "%s: nested deeper than %d levels", c->path.data,
                             CAIRN_JSCHEMA_DEPTH_MAX);
    if (check_type(c, schema, value, e) || check_const_enum(c, schema, value, e) ||
        check_number(c, schema, value, e) || check_string(c, schema, value, e) ||
        check_array(c, schema, value, depth, e) || check_object(c, schema, value, depth, e) ||
        check_all_of(c, schema, value, depth, e) ||
        check_alternatives(c, schema, value, "anyOf", depth, e) ||
        check_alternatives(c, schema, value, "oneOf", depth, e) ||
        check_not_ref(c, schema, value, depth, e))
        return e->code ? e->code : CAIRN_EINVAL;
    return 0;
}

int cairn_jschema_check(const cairn_jschema *s, jv value, cairn_err *err) {
    js_check c = {s, CAIRN_BUF_INIT};
    cairn_err local;
    cairn_err_clear(&local);
    cairn_buf_puts(&c.path, "$");
    int rc = check_node(&c, s->root, value, 0, &local);
    cairn_buf_free(&c.path);
    if (rc != 0 && err) *err = local;
    return rc;
}
