/*
 * suggest.c - reporting for the workflow checker: did-you-mean, unknown keys,
 * and the small "read this node as X or say what was expected" helpers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "dsl/workflow_int.h"

#define SUGGEST_MAX_LEN 64     /* longer words get no suggestion */
#define GOT_MAX 60             /* characters of a bad value quoted in a message */

void cairn__wf_error(wf_ctx *c, const cairn_node *at, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cairn_diags_add(c->diags, c->file, at ? at->line : 0, at ? at->col : 0, "%s", msg);
}

/* Optimal string alignment distance (Levenshtein plus adjacent swaps). */
static int distance(const char *a, const char *b) {
    int n = (int)strlen(a), m = (int)strlen(b);
    int d[SUGGEST_MAX_LEN + 1][SUGGEST_MAX_LEN + 1];
    for (int i = 0; i <= n; i++) d[i][0] = i;
    for (int j = 0; j <= m; j++) d[0][j] = j;
    for (int i = 1; i <= n; i++) {
        for (int j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[n][m];
}

const char *cairn__suggest(const char *word, const char *const *cands, int n) {
    size_t len = strlen(word);
    if (len == 0 || len > SUGGEST_MAX_LEN) return NULL;
    int limit = len < 4 ? 1 : (int)(len + 2) / 4;   /* 1 typo per ~4 letters */
    if (limit > 3) limit = 3;
    const char *best = NULL;
    int best_d = limit + 1;
    for (int i = 0; n >= 0 ? i < n : cands[i] != NULL; i++) {
        size_t cl = strlen(cands[i]);
        if (cl > SUGGEST_MAX_LEN || (cl > len ? cl - len : len - cl) > (size_t)limit) continue;
        int d = distance(word, cands[i]);
        if (d < best_d && d < (int)cl) best = cands[i], best_d = d;
    }
    return best;
}

const char *cairn_workflow_suggest_step(const cairn_workflow *wf, const char *id) {
    const char **ids = cairn_calloc((size_t)wf->n_steps + 1, sizeof *ids);
    for (int i = 0; i < wf->n_steps; i++) ids[i] = wf->steps[i].id;
    const char *hint = cairn__suggest(id, ids, wf->n_steps);
    free(ids);
    return hint;
}

static bool listed(const char *const *list, const char *s) {
    for (; list && *list; list++)
        if (strcmp(*list, s) == 0) return true;
    return false;
}

static void unknown_key(wf_ctx *c, const cairn_node *key, const char *const *allowed,
                        const char *what) {
    const char *hint = cairn__suggest(key->text, allowed, -1);
    if (hint) {
        cairn__wf_error(c, key, "unknown key '%s' in %s (did you mean '%s'?)", key->text, what, hint);
        return;
    }
    cairn_buf b = CAIRN_BUF_INIT;
    for (int i = 0; allowed[i]; i++) cairn_buf_printf(&b, "%s%s", i ? ", " : "", allowed[i]);
    cairn__wf_error(c, key, "unknown key '%.*s' in %s; expected one of: %s", GOT_MAX, key->text,
                    what, b.data);
    cairn_buf_free(&b);
}

void cairn__check_keys(wf_ctx *c, const cairn_node *map, const char *const *allowed,
                       const char *what, const char *const *refused, const char *why) {
    for (int i = 0; i < map->count; i++) {
        const cairn_node *key = map->keys[i];
        if (listed(allowed, key->text)) continue;
        if (listed(refused, key->text))
            cairn__wf_error(c, key, "'%s' is not allowed in %s: %s", key->text, what, why);
        else
            unknown_key(c, key, allowed, what);
    }
}

/* ---- reading nodes -------------------------------------------------------- */

bool cairn__is_plain(const cairn_node *n) {
    return n && n->kind == CAIRN_NODE_SCALAR && !n->quoted;
}

bool cairn__is_null(const cairn_node *n) {
    return n == NULL || (cairn__is_plain(n) && strcmp(cairn_node_kind_name(n), "null") == 0);
}

bool cairn__has_expr(const cairn_node *n) {
    return n && n->kind == CAIRN_NODE_SCALAR && strstr(n->text, "${{") != NULL;
}

/* "a map", or the scalar itself quoted: what a message says it got. */
static const char *got(const cairn_node *n, char *buf, size_t size) {
    if (n->kind != CAIRN_NODE_SCALAR || cairn__is_null(n)) return cairn_node_kind_name(n);
    snprintf(buf, size, "'%.*s%s'", GOT_MAX, n->text, n->len > GOT_MAX ? "..." : "");
    return buf;
}

bool cairn__expected(wf_ctx *c, const cairn_node *n, const char *what, const char *want) {
    char buf[GOT_MAX + 8];
    cairn__wf_error(c, n, "%s: expected %s, got %s", what, want, got(n, buf, sizeof buf));
    return false;
}

bool cairn__want_map(wf_ctx *c, const cairn_node *n, const char *what) {
    return n->kind == CAIRN_NODE_MAP || cairn__expected(c, n, what, "a map");
}

bool cairn__want_seq(wf_ctx *c, const cairn_node *n, const char *what) {
    return n->kind == CAIRN_NODE_SEQ || cairn__expected(c, n, what, "a list");
}

bool cairn__want_text(wf_ctx *c, const cairn_node *n, const char *what) {
    return (n->kind == CAIRN_NODE_SCALAR && !cairn__is_null(n)) || cairn__expected(c, n, what, "a string");
}

bool cairn__want_bool(wf_ctx *c, const cairn_node *n, const char *what, bool *out) {
    if (cairn__is_plain(n) && strcmp(cairn_node_kind_name(n), "a boolean") == 0) {
        *out = (n->text[0] | 0x20) == 't';
        return true;
    }
    return cairn__expected(c, n, what, "true or false");
}

bool cairn__want_count(wf_ctx *c, const cairn_node *n, const char *what, int max, int *out) {
    if (cairn__is_plain(n) && n->len > 0 && n->len <= 9 && strspn(n->text, "0123456789") == n->len) {
        long v = strtol(n->text, NULL, 10);
        if (v >= 1 && v <= max) {
            *out = (int)v;
            return true;
        }
    }
    char want[64];
    snprintf(want, sizeof want, "a whole number from 1 to %d", max);
    return cairn__expected(c, n, what, want);
}

bool cairn__want_duration(wf_ctx *c, const cairn_node *n, const char *what, bool zero_ok,
                          int64_t *out) {
    if (n->kind == CAIRN_NODE_SCALAR && cairn_duration_parse(n->text, out) == 0 &&
        (zero_ok || *out > 0))
        return true;
    return cairn__expected(c, n, what, zero_ok ? "a duration such as 250ms, 30s, 5m or 1h30m"
                                        : "a positive duration such as 30s, 5m or 1h30m");
}

pcre2_code *cairn__compile_pattern(wf_ctx *c, const cairn_node *n, const char *what) {
    if (!cairn__want_text(c, n, what)) return NULL;
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)n->text, n->len, CAIRN_PCRE2_OPTIONS, &code,
                                   &off, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        cairn__wf_error(c, n, "%s: invalid PCRE2 pattern at offset %zu: %s", what, (size_t)off,
                        (const char *)msg);
    }
    return re;
}

cairn_tmpl *cairn__expr_field(wf_ctx *c, const cairn_node *n, const char *what, int allow) {
    cairn_exprset *set = c->wf->exprs;
    if (cairn__has_expr(n))
        return cairn_tmpl_from_string(n->text, n->line, n->text_col ? n->text_col : n->col,
                                      set, c->file, c->diags);
    bool is_bool = cairn__is_plain(n) && strcmp(cairn_node_kind_name(n), "a boolean") == 0;
    if (((allow & EXPR_OR_BOOL) && is_bool) || ((allow & EXPR_OR_LIST) && n->kind == CAIRN_NODE_SEQ))
        return cairn_tmpl_new(n, set, c->file, c->diags);
    cairn__expected(c, n, what, allow & EXPR_OR_BOOL ? "an expression ${{ ... }} or true/false"
                         : allow & EXPR_OR_LIST ? "an expression ${{ ... }} or a list"
                         : "an expression ${{ ... }}");
    return NULL;
}

bool cairn__name_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > CAIRN_ID_MAX || (s[0] >= '0' && s[0] <= '9') || s[0] == '-') return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}
