/*
 * yaml_value.c - reading parsed nodes: map look-ups, and nodes as JSON.
 *
 * Plain scalars are resolved with the YAML 1.2 core schema, not YAML 1.1's
 * (so `on`, `yes` and `no` stay strings, and `0777` is decimal).  Quoted,
 * literal and folded scalars are always strings.
 */
#include "dsl/yaml.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

typedef enum { PLAIN_NULL, PLAIN_TRUE, PLAIN_FALSE, PLAIN_NUMBER, PLAIN_STRING } plain_kind;

static bool is_one_of(const char *s, const char *const *words) {
    for (; *words; words++)
        if (strcmp(s, *words) == 0) return true;
    return false;
}

static bool all_digits(const char *s, int base) {
    if (*s == '\0') return false;
    for (; *s; s++) {
        int d = *s >= '0' && *s <= '9' ? *s - '0'
              : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
              : *s >= 'A' && *s <= 'F' ? *s - 'A' + 10 : 99;
        if (d >= base) return false;
    }
    return true;
}

static double digits_value(const char *s, int base) {
    double v = 0;
    for (; *s; s++) {
        int d = *s <= '9' ? *s - '0' : (*s | 0x20) - 'a' + 10;
        v = v * base + d;
    }
    return v;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?  (decimal integers too) */
static bool is_decimal(const char *s) {
    const char *p = s + (*s == '-' || *s == '+');
    size_t before = strspn(p, "0123456789");
    p += before;
    size_t after = 0;
    if (*p == '.') {
        after = strspn(p + 1, "0123456789");
        p += 1 + after;
    }
    if (before == 0 && after == 0) return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        p += *p == '-' || *p == '+';
        size_t exp = strspn(p, "0123456789");
        if (exp == 0) return false;
        p += exp;
    }
    return *p == '\0';
}

static plain_kind resolve_plain(const char *s, double *num) {
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    static const char *const infs[] = {".inf", ".Inf", ".INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    if (is_one_of(s, nulls)) return PLAIN_NULL;
    if (is_one_of(s, trues)) return PLAIN_TRUE;
    if (is_one_of(s, falses)) return PLAIN_FALSE;
    if (strncmp(s, "0o", 2) == 0 && all_digits(s + 2, 8)) *num = digits_value(s + 2, 8);
    else if (strncmp(s, "0x", 2) == 0 && all_digits(s + 2, 16)) *num = digits_value(s + 2, 16);
    else if (is_decimal(s)) *num = strtod(s, NULL);
    else if (is_one_of(s + (*s == '-' || *s == '+'), infs)) *num = *s == '-' ? -INFINITY : INFINITY;
    else if (is_one_of(s, nans)) *num = NAN;
    else return PLAIN_STRING;
    return PLAIN_NUMBER;
}

const cairn_node *cairn_node_key(const cairn_node *map, const char *key) {
    if (map == NULL || map->kind != CAIRN_NODE_MAP) return NULL;
    for (int i = 0; i < map->count; i++)
        if (map->keys[i]->kind == CAIRN_NODE_SCALAR && strcmp(map->keys[i]->text, key) == 0)
            return map->keys[i];
    return NULL;
}

const cairn_node *cairn_node_get(const cairn_node *map, const char *key) {
    if (map == NULL || map->kind != CAIRN_NODE_MAP) return NULL;
    for (int i = 0; i < map->count; i++)
        if (map->keys[i]->kind == CAIRN_NODE_SCALAR && strcmp(map->keys[i]->text, key) == 0)
            return map->values[i];
    return NULL;
}

static jv scalar_to_jv(const cairn_node *n) {
    if (n->quoted) return jv_string_sized(n->text, (int)n->len);
    double num = 0;
    switch (resolve_plain(n->text, &num)) {
    case PLAIN_NULL: return jv_null();
    case PLAIN_TRUE: return jv_true();
    case PLAIN_FALSE: return jv_false();
    case PLAIN_NUMBER: return jv_number(num);
    case PLAIN_STRING: break;
    }
    return jv_string_sized(n->text, (int)n->len);
}

/* Depth is bounded by CAIRN_YAML_MAX_DEPTH (aliases included) and size by
 * CAIRN_YAML_MAX_NODES, so plain recursion is safe here. */
jv cairn_node_to_jv(const cairn_node *n) {
    if (n == NULL) return jv_null();
    if (n->kind == CAIRN_NODE_SCALAR) return scalar_to_jv(n);
    if (n->kind == CAIRN_NODE_SEQ) {
        jv a = jv_array_sized(n->count);
        for (int i = 0; i < n->count; i++) a = jv_array_append(a, cairn_node_to_jv(n->values[i]));
        return a;
    }
    jv o = jv_object();
    for (int i = 0; i < n->count; i++)
        o = jv_object_set(o, jv_string_sized(n->keys[i]->text, (int)n->keys[i]->len),
                          cairn_node_to_jv(n->values[i]));
    return o;
}

const char *cairn_node_kind_name(const cairn_node *n) {
    if (n == NULL) return "nothing";
    if (n->kind == CAIRN_NODE_MAP) return "a map";
    if (n->kind == CAIRN_NODE_SEQ) return "a list";
    if (n->quoted) return "a string";
    double num;
    switch (resolve_plain(n->text, &num)) {
    case PLAIN_NULL: return "null";
    case PLAIN_TRUE:
    case PLAIN_FALSE: return "a boolean";
    case PLAIN_NUMBER: return "a number";
    case PLAIN_STRING: break;
    }
    return "a string";
}
