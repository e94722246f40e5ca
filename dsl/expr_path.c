/*
 * expr_path.c - plain paths (`.inputs.host`, `.steps.build.output.rows[0]`)
 * evaluated without jq.
 *
 * Most expressions in runbooks are plain paths.  They cannot hold a syntax
 * error, so they need no jq_compile (which costs microseconds per bytecode
 * instruction in libjq 1.6), and walking the document directly is several
 * times faster than starting the jq interpreter.  The grammar accepted here is
 * a subset of jq's, with jq's meaning:
 *     path    := "." | ("." ident | "." "[" index "]" | "[" index "]")+ ...
 *     ident   := [A-Za-z_][A-Za-z0-9_]*
 *     index   := digits | '"' chars without '"' or '\' '"'
 * Indexing null gives null; a missing key or an index past the end gives
 * null; indexing any other kind is the error jq gives ("Cannot index number
 * with string \"a\"").  Anything else goes to jq.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "dsl/expr_int.h"

static size_t skip_blank(const char *s, size_t i, size_t n) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

/* One bracketed index at s[i] == '['; appends it to *path; returns the
 * offset after ']' or 0 when it is not a plain index. */
static size_t parse_index(const char *s, size_t i, size_t n, jv *path) {
    size_t j = i + 1;
    if (j < n && s[j] == '"') {
        size_t start = ++j;
        while (j < n && s[j] != '"' && s[j] != '\\') j++;
        if (j >= n || s[j] != '"' || j + 1 >= n || s[j + 1] != ']') return 0;
        *path = jv_array_append(*path, jv_string_sized(s + start, (int)(j - start)));
        return j + 2;
    }
    size_t start = j;
    while (j < n && isdigit((unsigned char)s[j]) && j - start < 9) j++;
    if (j == start || j >= n || s[j] != ']') return 0;
    *path = jv_array_append(*path, jv_number(atoi(s + start)));
    return j + 1;
}

jv cairn__exprpath_parse(const char *s, size_t n) {
    size_t i = skip_blank(s, 0, n), end = n;
    while (end > i && strchr(" \t\r\n", s[end - 1])) end--;
    if (i >= end || s[i] != '.') return jv_invalid();
    jv path = jv_array();
    if (end - i == 1) return path;                      /* "." */
    while (i < end) {
        if (s[i] == '[') {
            size_t next = parse_index(s, i, end, &path);
            if (next == 0) break;
            i = next;
            continue;
        }
        if (s[i] != '.') break;
        i++;
        if (i < end && s[i] == '[') continue;           /* .["key"] and .[0] */
        size_t start = i;
        while (i < end && (isalnum((unsigned char)s[i]) || s[i] == '_')) i++;
        if (i == start || isdigit((unsigned char)s[start])) break;
        path = jv_array_append(path, jv_string_sized(s + start, (int)(i - start)));
    }
    if (i == end && jv_array_length(jv_copy(path)) > 0) return path;
    jv_free(path);
    return jv_invalid();
}

static const char *kind_name(jv v) {
    return jv_kind_name(jv_get_kind(v));
}

int cairn__exprpath_eval(jv path, jv doc, jv *out, char *why, size_t why_len) {
    jv cur = jv_copy(doc);
    int n = jv_array_length(jv_copy(path));
    for (int k = 0; k < n; k++) {
        jv key = jv_array_get(jv_copy(path), k);
        jv_kind ck = jv_get_kind(cur), kk = jv_get_kind(key);
        if (ck == JV_KIND_NULL) {
            jv_free(key);
            continue;
        }
        if (ck == JV_KIND_OBJECT && kk == JV_KIND_STRING) {
            jv next = jv_object_get(cur, key);
            cur = jv_is_valid(next) ? next : jv_null();
        } else if (ck == JV_KIND_ARRAY && kk == JV_KIND_NUMBER) {
            jv next = jv_array_get(cur, (int)jv_number_value(key));
            jv_free(key);
            cur = jv_is_valid(next) ? next : jv_null();
        } else {
            if (kk == JV_KIND_STRING)
                snprintf(why, why_len, "Cannot index %s with string \"%s\"", kind_name(cur),
                         jv_string_value(key));
            else
                snprintf(why, why_len, "Cannot index %s with number", kind_name(cur));
            jv_free(key);
            jv_free(cur);
            return -1;
        }
    }
    *out = cur;
    return 0;
}
