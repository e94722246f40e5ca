/*
 * expr_natfn.c - the operators and builtins of the native subset of jq
 * (expr_native.c parses it, expr_nateval.c evaluates it), each a function
 * of its operands as jq 1.6 defines it, in C (builtin.c) or in jq
 * (builtin.jq: join, add, any, all, first, last, ascii_downcase, unique...),
 * its messages included.
 *
 * What jq does, and this file does the same: + - * / % over the kinds jq
 * defines natively; comparisons through jv_equal and jv_cmp; jq's own
 * messages for the rest.  Operand kinds whose result is more than a line of
 * jq's C (array minus array, string times number, object times object,
 * string divided by string, % of huge or non-finite numbers) are deferred:
 * the result is jv_invalid() without a message, and the caller has jq
 * evaluate the whole text.  `+` of strings, arrays or objects larger than
 * CAIRN_EXPR_NATIVE_CONCAT_MAX (bytes, 16 a value) is deferred the same
 * way, so that jq evaluates it under the set's bounds.
 */
#include "dsl/expr_native_int.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

#define CAIRN_EXPR_NATIVE_CONCAT_MAX (1 << 20)

/* ---- operators ------------------------------------------------------------ */

static double arith(nat_op op, double x, double y) {
    return op == N_ADD ? x + y : op == N_SUB ? x - y : op == N_MUL ? x * y : x / y;
}

/* Deferred to jq: invalid without a message. */
static jv defer(jv a, jv b) {
    jv_free(a);
    jv_free(b);
    return jv_invalid();
}

/* jq's message for operands an operator does not take (type_error2 in jq's
 * builtin.c: each value as jv_dump_string_trunc shows it in 15 bytes). */
static jv type_error2(jv a, jv b, const char *what) {
    char ta[15], tb[15];
    jv msg = jv_string_fmt("%s (%s) and %s (%s) %s", jv_kind_name(jv_get_kind(a)),
                           jv_dump_string_trunc(jv_copy(a), ta, sizeof ta),
                           jv_kind_name(jv_get_kind(b)),
                           jv_dump_string_trunc(jv_copy(b), tb, sizeof tb), what);
    jv_free(a);
    jv_free(b);
    return jv_invalid_with_msg(msg);
}

static bool both(jv a, jv b, jv_kind k) { return jv_get_kind(a) == k && jv_get_kind(b) == k; }

static jv number_op(nat_op op, jv a, jv b) {
    double x = jv_number_value(a), y = jv_number_value(b);
    jv_free(a);
    jv_free(b);
    return jv_number(arith(op, x, y));
}

/* Whether a + b (both strings, arrays or objects) makes more than
 * CAIRN_EXPR_NATIVE_CONCAT_MAX bytes, counting 16 a value. */
static bool concat_too_big(jv a, jv b) {
    jv_kind k = jv_get_kind(a);
    int64_t n = k == JV_KIND_STRING
                    ? (int64_t)jv_string_length_bytes(jv_copy(a)) + jv_string_length_bytes(jv_copy(b))
                : k == JV_KIND_ARRAY
                    ? 16 * ((int64_t)jv_array_length(jv_copy(a)) + jv_array_length(jv_copy(b)))
                    : 16 * ((int64_t)jv_object_length(jv_copy(a)) + jv_object_length(jv_copy(b)));
    return n > CAIRN_EXPR_NATIVE_CONCAT_MAX;
}

/* f_plus: null is the identity; numbers add; strings, arrays and objects
 * concatenate or merge (a large result is left to jq, see Limits). */
static jv plus(jv a, jv b) {
    if (jv_get_kind(a) == JV_KIND_NULL) {
        jv_free(a);
        return b;
    }
    if (jv_get_kind(b) == JV_KIND_NULL) {
        jv_free(b);
        return a;
    }
    if (both(a, b, JV_KIND_NUMBER)) return number_op(N_ADD, a, b);
    if ((both(a, b, JV_KIND_STRING) || both(a, b, JV_KIND_ARRAY) || both(a, b, JV_KIND_OBJECT)) &&
        concat_too_big(a, b))
        return defer(a, b);
    if (both(a, b, JV_KIND_STRING)) return jv_string_concat(a, b);
    if (both(a, b, JV_KIND_ARRAY)) return jv_array_concat(a, b);
    if (both(a, b, JV_KIND_OBJECT)) return jv_object_merge(a, b);
    return type_error2(a, b, "cannot be added");
}

/* f_minus, f_multiply, f_divide: numbers here; the other kinds they take
 * (array - array, string * number, object * object, string / string) go to
 * jq; the rest is jq's error. */
static jv minus_times_divide(nat_op op, jv a, jv b) {
    jv_kind ka = jv_get_kind(a), kb = jv_get_kind(b);
    if (ka == JV_KIND_NUMBER && kb == JV_KIND_NUMBER) {
        if (op == N_DIV && jv_number_value(b) == 0.0)
            return type_error2(a, b, "cannot be divided because the divisor is zero");
        return number_op(op, a, b);
    }
    if (op == N_SUB && ka == JV_KIND_ARRAY && kb == JV_KIND_ARRAY) return defer(a, b);
    if (op == N_MUL && ((ka == JV_KIND_STRING && kb == JV_KIND_NUMBER) ||
                        (ka == JV_KIND_NUMBER && kb == JV_KIND_STRING) ||
                        (ka == JV_KIND_OBJECT && kb == JV_KIND_OBJECT)))
        return defer(a, b);
    if (op == N_DIV && ka == JV_KIND_STRING && kb == JV_KIND_STRING) return defer(a, b);
    return type_error2(a, b, op == N_SUB ? "cannot be subtracted"
                             : op == N_MUL ? "cannot be multiplied" : "cannot be divided");
}

/* f_mod: the operands truncated to intmax_t.  Only numbers whose truncation
 * C defines and whose remainder cannot overflow are done here; the messages
 * are those of the libjq Cairn links with (Debian's, with "(remainder)"). */
static jv modulo(jv a, jv b) {
    if (!both(a, b, JV_KIND_NUMBER)) return type_error2(a, b, "cannot be divided (remainder)");
    double x = jv_number_value(a), y = jv_number_value(b);
    const double limit = 9007199254740992.0;            /* 2^53 */
    /* A divisor that truncates to -1 leaves no remainder.  Answered here for
     * any dividend: libjq 1.6 computes (intmax_t)x % -1, and a dividend past
     * 2^63 (1e300 from an alert's payload) truncates to INTMAX_MIN, whose
     * remainder by -1 traps (SIGFPE) and would kill the engine. */
    if (y <= -1 && y > -2) {
        jv_free(a);
        jv_free(b);
        return jv_number(0);
    }
    if (!(fabs(x) <= limit && fabs(y) <= limit)) return defer(a, b);
    intmax_t ix = (intmax_t)x, iy = (intmax_t)y;
    if (iy == 0)
        return type_error2(a, b, "cannot be divided (remainder) because the divisor is zero");
    jv_free(a);
    jv_free(b);
    return jv_number((double)(ix % iy));
}

/* Operator op over a and b (both consumed), as jq's builtin for it. */
jv cairn__nat_apply(nat_op op, jv a, jv b) {
    switch (op) {
    case N_EQ: return jv_bool(jv_equal(a, b));
    case N_NE: return jv_bool(!jv_equal(a, b));
    case N_LT: return jv_bool(jv_cmp(a, b) < 0);
    case N_LE: return jv_bool(jv_cmp(a, b) <= 0);
    case N_GT: return jv_bool(jv_cmp(a, b) > 0);
    case N_GE: return jv_bool(jv_cmp(a, b) >= 0);
    case N_ADD: return plus(a, b);
    case N_MOD: return modulo(a, b);
    default: return minus_times_divide(op, a, b);
    }
}

bool cairn__nat_truthy(jv v) {
    jv_kind k = jv_get_kind(v);
    return k != JV_KIND_FALSE && k != JV_KIND_NULL;
}


/* jq's message for an input a builtin does not take (type_error in jq's
 * builtin.c). */
jv cairn__nat_type_error(jv a, const char *what) {
    char ta[15];
    jv msg = jv_string_fmt("%s (%s) %s", jv_kind_name(jv_get_kind(a)),
                           jv_dump_string_trunc(jv_copy(a), ta, sizeof ta), what);
    jv_free(a);
    return jv_invalid_with_msg(msg);
}

/* ---- the builtins ------------------------------------------------------------ */

/* "Cannot iterate over ..." for what `.[]` cannot iterate; v consumed. */
static jv iterate_error(jv v) {
    char buf[15];
    jv msg = jv_string_fmt("Cannot iterate over %s (%s)", jv_kind_name(jv_get_kind(v)),
                           jv_dump_string_trunc(jv_copy(v), buf, sizeof buf));
    jv_free(v);
    return jv_invalid_with_msg(msg);
}

/* The values of an array or object (borrowed) in jq's order of `.[]`, as an
 * array; an error for any other kind. */
jv cairn__nat_values(jv v) {
    jv_kind k = jv_get_kind(v);
    if (k == JV_KIND_ARRAY) return jv_copy(v);
    if (k != JV_KIND_OBJECT) return iterate_error(jv_copy(v));
    jv out = jv_array();
    jv_object_foreach(v, key, x) {
        jv_free(key);
        out = jv_array_append(out, x);
    }
    return out;
}

static jv fn_length(jv in) {
    switch (jv_get_kind(in)) {
    case JV_KIND_ARRAY: return jv_number(jv_array_length(in));
    case JV_KIND_OBJECT: return jv_number(jv_object_length(in));
    case JV_KIND_STRING: return jv_number(jv_string_length_codepoints(in));
    case JV_KIND_NUMBER: {
        double x = fabs(jv_number_value(in));
        jv_free(in);
        return jv_number(x);
    }
    case JV_KIND_NULL: return jv_number(0);
    default: return cairn__nat_type_error(in, "has no length");
    }
}

static jv fn_not(jv in) {
    bool t = cairn__nat_truthy(in);
    jv_free(in);
    return jv_bool(!t);
}

static jv fn_keys(jv in) {
    jv_kind k = jv_get_kind(in);
    if (k == JV_KIND_OBJECT || k == JV_KIND_ARRAY) return jv_keys(in);
    return cairn__nat_type_error(in, "has no keys");
}

static jv fn_tostring(jv in) {
    if (jv_get_kind(in) == JV_KIND_STRING) return in;
    return jv_dump_string(in, 0);
}

static jv fn_tojson(jv in) { return jv_dump_string(in, 0); }

static jv fn_type(jv in) {
    jv t = jv_string(jv_kind_name(jv_get_kind(in)));
    jv_free(in);
    return t;
}

static jv fn_tonumber(jv in) {
    if (jv_get_kind(in) == JV_KIND_NUMBER) return in;
    if (jv_get_kind(in) == JV_KIND_STRING) {
        jv parsed = jv_parse(jv_string_value(in));
        if (!jv_is_valid(parsed) || jv_get_kind(parsed) == JV_KIND_NUMBER) {
            jv_free(in);
            return parsed;
        }
        jv_free(parsed);
    }
    return cairn__nat_type_error(in, "cannot be parsed as a number");
}

/* explode | map(ASCII letters moved by delta) | implode. */
static jv ascii_case(jv in, char from, char to, int delta) {
    if (jv_get_kind(in) != JV_KIND_STRING) {
        jv_free(in);
        return jv_invalid_with_msg(jv_string("explode input must be a string"));
    }
    int len = jv_string_length_bytes(jv_copy(in));
    char *s = cairn_malloc((size_t)len + 1);
    memcpy(s, jv_string_value(in), (size_t)len);
    for (int i = 0; i < len; i++)
        if (s[i] >= from && s[i] <= to) s[i] = (char)(s[i] + delta);
    jv out = jv_string_sized(s, len);
    free(s);
    jv_free(in);
    return out;
}

static jv fn_downcase(jv in) { return ascii_case(in, 'A', 'Z', 32); }
static jv fn_upcase(jv in) { return ascii_case(in, 'a', 'z', -32); }

static jv fn_first(jv in) { return jv_get(in, jv_number(0)); }
static jv fn_last(jv in) { return jv_get(in, jv_number(-1)); }

static jv fn_sort(jv in) {
    if (jv_get_kind(in) != JV_KIND_ARRAY) return cairn__nat_type_error(in, "cannot be sorted, as it is not an array");
    return jv_sort(in, jv_copy(in));
}

/* group_by(.) | map(.[0]): map([.]) first (so .[] errors), then the
 * grouping, which takes arrays only. */
static jv fn_unique(jv in) {
    jv vals = cairn__nat_values(in);
    if (!jv_is_valid(vals)) {
        jv_free(in);
        return vals;
    }
    jv keys = jv_array();
    int n = jv_array_length(jv_copy(vals));
    for (int i = 0; i < n; i++) keys = jv_array_append(keys, JV_ARRAY(jv_array_get(jv_copy(vals), i)));
    jv_free(vals);
    if (jv_get_kind(in) != JV_KIND_ARRAY) {
        jv msg = type_error2(in, keys, "cannot be sorted, as they are not both arrays");
        return msg;
    }
    jv groups = jv_group(in, keys), out = jv_array();
    n = jv_array_length(jv_copy(groups));
    for (int i = 0; i < n; i++) out = jv_array_append(out, jv_array_get(jv_array_get(jv_copy(groups), i), 0));
    jv_free(groups);
    return out;
}

/* reduce .[] as $x (null; . + $x) */
static jv fn_add(jv in) {
    jv vals = cairn__nat_values(in);
    jv_free(in);
    if (!jv_is_valid(vals)) return vals;
    jv acc = jv_null();
    int n = jv_array_length(jv_copy(vals));
    for (int i = 0; i < n && jv_is_valid(acc); i++) acc = plus(acc, jv_array_get(jv_copy(vals), i));
    jv_free(vals);
    return acc;
}

/* any, all: whether some (every) value of .[] is truthy. */
static jv any_all(jv in, bool all) {
    jv vals = cairn__nat_values(in);
    jv_free(in);
    if (!jv_is_valid(vals)) return vals;
    bool found = false;
    int n = jv_array_length(jv_copy(vals));
    for (int i = 0; i < n && !found; i++) {
        jv x = jv_array_get(jv_copy(vals), i);
        found = cairn__nat_truthy(x) != all;
        jv_free(x);
    }
    jv_free(vals);
    return jv_bool(found != all);
}

static jv fn_any(jv in) { return any_all(in, false); }
static jv fn_all(jv in) { return any_all(in, true); }

/* jv_has is f_has: null has nothing, objects strings, arrays numbers. */
static jv fn_has(jv in, jv key) { return jv_has(in, key); }

/* Whether s starts (at_end: ends) with t, both strings, borrowed. */
static bool affix(jv s, jv t, bool at_end) {
    int ls = jv_string_length_bytes(jv_copy(s)), lt = jv_string_length_bytes(jv_copy(t));
    if (lt > ls) return false;
    return memcmp(jv_string_value(s) + (at_end ? ls - lt : 0), jv_string_value(t), (size_t)lt) == 0;
}

static jv starts_ends(jv in, jv t, bool at_end) {
    if (!both(in, t, JV_KIND_STRING)) {
        jv_free(in);
        jv_free(t);
        return jv_invalid_with_msg(jv_string(at_end ? "endswith() requires string inputs"
                                                    : "startswith() requires string inputs"));
    }
    bool r = affix(in, t, at_end);
    jv_free(in);
    jv_free(t);
    return jv_bool(r);
}

static jv fn_startswith(jv in, jv t) { return starts_ends(in, t, false); }
static jv fn_endswith(jv in, jv t) { return starts_ends(in, t, true); }

/* ltrimstr, rtrimstr: the input without the affix, or unchanged. */
static jv trim(jv in, jv t, bool at_end) {
    if (!both(in, t, JV_KIND_STRING) || !affix(in, t, at_end)) {
        jv_free(t);
        return in;
    }
    int ls = jv_string_length_bytes(jv_copy(in)), lt = jv_string_length_bytes(t);
    jv out = jv_string_sized(jv_string_value(in) + (at_end ? 0 : lt), ls - lt);
    jv_free(in);
    return out;
}

static jv fn_ltrimstr(jv in, jv t) { return trim(in, t, false); }
static jv fn_rtrimstr(jv in, jv t) { return trim(in, t, true); }

static jv fn_split(jv in, jv sep) {
    if (!both(in, sep, JV_KIND_STRING)) {
        jv_free(in);
        jv_free(sep);
        return jv_invalid_with_msg(jv_string("split input and separator must be strings"));
    }
    return jv_string_split(in, sep);
}

static jv fn_contains(jv in, jv x) {
    if (jv_get_kind(in) == jv_get_kind(x)) return jv_bool(jv_contains(in, x));
    return type_error2(in, x, "cannot have their containment checked");
}

/* reduce .[] as $i (null; (if .==null then "" else .+$x end) +
 *   ($i | if type=="boolean" or type=="number" then tostring else .//"" end)) // "" */
static jv fn_join(jv in, jv sep) {
    jv vals = cairn__nat_values(in);
    jv_free(in);
    if (!jv_is_valid(vals)) {
        jv_free(sep);
        return vals;
    }
    jv acc = jv_null();
    int n = jv_array_length(jv_copy(vals));
    for (int i = 0; i < n && jv_is_valid(acc); i++) {
        jv x = jv_array_get(jv_copy(vals), i);
        jv_kind k = jv_get_kind(x);
        if (k == JV_KIND_TRUE || k == JV_KIND_FALSE || k == JV_KIND_NUMBER) x = jv_dump_string(x, 0);
        else if (!cairn__nat_truthy(x)) jv_free(x), x = jv_string("");
        jv left = jv_get_kind(acc) == JV_KIND_NULL ? (jv_free(acc), jv_string("")) : plus(acc, jv_copy(sep));
        acc = jv_is_valid(left) ? plus(left, x) : (jv_free(x), left);
    }
    jv_free(vals);
    jv_free(sep);
    if (jv_is_valid(acc) && !cairn__nat_truthy(acc)) {
        jv_free(acc);
        return jv_string("");
    }
    return acc;
}

/* ---- the table ---------------------------------------------------------------- */

static const nat_fn FNS[] = {
    {"length", 0, fn_length, NULL, NG_NONE, false, false},
    {"not", 0, fn_not, NULL, NG_NONE, false, false},
    {"keys", 0, fn_keys, NULL, NG_NONE, false, true},
    {"tostring", 0, fn_tostring, NULL, NG_NONE, true, false},
    {"tojson", 0, fn_tojson, NULL, NG_NONE, true, false},
    {"tonumber", 0, fn_tonumber, NULL, NG_NONE, false, false},
    {"type", 0, fn_type, NULL, NG_NONE, false, false},
    {"ascii_downcase", 0, fn_downcase, NULL, NG_NONE, false, false},
    {"ascii_upcase", 0, fn_upcase, NULL, NG_NONE, false, false},
    {"first", 0, fn_first, NULL, NG_NONE, false, false},
    {"last", 0, fn_last, NULL, NG_NONE, false, false},
    {"sort", 0, fn_sort, NULL, NG_NONE, true, true},
    {"unique", 0, fn_unique, NULL, NG_NONE, true, true},
    {"add", 0, fn_add, NULL, NG_NONE, false, true},
    {"any", 0, fn_any, NULL, NG_NONE, false, false},
    {"all", 0, fn_all, NULL, NG_NONE, false, false},
    {"has", 1, NULL, fn_has, NG_NONE, false, false},
    {"startswith", 1, NULL, fn_startswith, NG_NONE, false, false},
    {"endswith", 1, NULL, fn_endswith, NG_NONE, false, false},
    {"ltrimstr", 1, NULL, fn_ltrimstr, NG_NONE, false, false},
    {"rtrimstr", 1, NULL, fn_rtrimstr, NG_NONE, false, false},
    {"split", 1, NULL, fn_split, NG_NONE, false, true},
    {"contains", 1, NULL, fn_contains, NG_NONE, true, false},
    {"join", 1, NULL, fn_join, NG_NONE, false, false},
    {"empty", 0, NULL, NULL, NG_EMPTY, false, false},
    {"values", 0, NULL, NULL, NG_VALUES, false, false},
    {"select", 1, NULL, NULL, NG_SELECT, false, false},
    {"map", 1, NULL, NULL, NG_MAP, false, true},
};

int cairn__natfn_find(const char *name, size_t len, int nargs) {
    for (int i = 0; i < (int)(sizeof FNS / sizeof FNS[0]); i++)
        if (FNS[i].nargs == nargs && strlen(FNS[i].name) == len && memcmp(FNS[i].name, name, len) == 0)
            return i;
    return -1;
}

const nat_fn *cairn__natfn(int fn) { return &FNS[fn]; }

