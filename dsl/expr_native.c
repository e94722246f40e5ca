/*
 * expr_native.c - a small, common subset of jq, parsed and evaluated
 * without jq.
 *
 * jq_compile costs about 20 ms plus microseconds per bytecode instruction
 * (see expr.c), while most runbook expressions are plain paths or one
 * operator over them (`.steps.s1.output.n + 1`, `.a == "x" and .b`).  Such
 * a text is parsed here into a small tree at load; it needs no jq_compile,
 * and walking the tree is faster than starting the jq interpreter.  The
 * meaning is jq 1.6's as built into the libjq Cairn links with, and
 * tests/unit/test_expr.c checks it against that libjq expression by
 * expression, so a drift fails the tests.
 *
 * The subset, by jq 1.6's grammar (src/parser.y), loosest binding first:
 *
 *     exp      := exp "//" exp              right associative
 *               | exp "or" exp | exp "and" exp                      left
 *               | exp cmp exp               cmp: == != < <= > >=, non-associative
 *               | exp ("+" | "-") exp | exp ("*" | "/" | "%") exp    left
 *               | "(" exp ")" | path | number | string | true | false | null
 *     path     := "." | ("." ident | "." "[" index "]" | "[" index "]")+
 *                 without blanks inside; ident [A-Za-z_][A-Za-z0-9_]*;
 *                 index: up to 9 digits, or a string without backslashes
 *     number   := jq's literal ([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?
 *     string   := "..." without interpolation; escapes converted as jq's lexer
 *                 does (each run of escapes through jq's JSON parser)
 *
 * Tokens are cut as jq's lexer cuts them (longest match: `.a-1` is `.a - 1`,
 * `1and 2` is `1 and 2`, `//=` is not `//`); blanks are space, tab and
 * newline only (jq 1.6 refuses a carriage return).  Anything else (a comment,
 * a pipe, a unary minus, a function, a variable, `.a.[0]`, `.a [0]`, `1 < 2 <
 * 3`...) is declined: cairn__exprnative_parse returns NULL and the text is
 * compiled by jq as before, with jq's own diagnostics.  Every text accepted
 * here is valid jq 1.6.
 *
 * What jq does, and this file does the same:
 *   - Constants are folded at parse time as jq's parser folds them (both
 *     operands constant: `null + x` is x, number op number for + - * /).  A
 *     fold that gives a non-finite number is declined: jq refuses it ("Division
 *     by zero?") or keeps a NaN, and either is jq's business.
 *   - A binary operator evaluates its right operand first: when both fail,
 *     jq reports the right one's error.
 *   - `and` and `or` give booleans and skip the right operand when the left
 *     decides; `a // b` is a when a is neither false nor null, else b.  An
 *     error in a is not swallowed: libjq 1.6 reports it (checked).
 *   - + - * / % over kinds jq defines natively; comparisons through jv_equal
 *     and jv_cmp, as jq's builtins do; jq's own messages for the rest.
 *   - Operand kinds whose result is more than a line of jq's C (array minus
 *     array, string times number, object times object, string divided by
 *     string, % of huge or non-finite numbers) are deferred: evaluation
 *     returns jv_invalid() without a message, and the caller has jq evaluate
 *     the whole text (expr.c compiles it then, once).
 *
 * Limits: CAIRN_EXPR_NATIVE_NODES nodes and CAIRN_EXPR_NATIVE_DEPTH nested
 * levels per text, so that parsing and evaluating recurse boundedly; a larger
 * text is declined.  Evaluation visits each node once, so its time is
 * bounded by the text and the document; what could grow memory is `+` of
 * strings, arrays or objects (127 of them over one large output), so a
 * concatenation larger than CAIRN_EXPR_NATIVE_CONCAT_MAX (bytes, 16 a
 * value) is deferred to jq, which evaluates it under the set's bounds.
 */
#include "dsl/expr_int.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

#define CAIRN_EXPR_NATIVE_NODES 256
#define CAIRN_EXPR_NATIVE_DEPTH 64
#define CAIRN_EXPR_NATIVE_CONCAT_MAX (1 << 20)

/* ---- the tree ------------------------------------------------------------ */

typedef enum {
    N_CONST, N_PATH,                     /* leaves: the value; the array of keys */
    N_ALT, N_OR, N_AND,
    N_EQ, N_NE, N_LT, N_LE, N_GT, N_GE,
    N_ADD, N_SUB, N_MUL, N_DIV, N_MOD
} nat_op;

typedef struct nat_node {
    nat_op op;
    jv v;                                /* N_CONST, N_PATH; else invalid */
    int a, b;                            /* operands (node indices) */
} nat_node;

struct cairn_exprnative {
    nat_node *nodes;
    int n, cap, root;
};

void cairn__exprnative_free(cairn_exprnative *e) {
    if (e == NULL) return;
    for (int i = 0; i < e->n; i++) jv_free(e->nodes[i].v);
    free(e->nodes);
    free(e);
}

/* ---- tokens, cut as jq 1.6's lexer cuts them ------------------------------ */

typedef enum { T_END, T_BAD, T_OP, T_OPEN, T_CLOSE, T_CONST, T_PATH } tok_kind;

typedef struct parser {
    const char *s;
    size_t n, i;                         /* text, its length, the next byte */
    tok_kind tok;                        /* the current token */
    nat_op op;                           /* its operator (T_OP) */
    jv v;                                /* its value (T_CONST, T_PATH), owned */
    cairn_exprnative *e;
    int depth;
} parser;

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_ident_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_ident(char c) { return is_ident_start(c) || is_digit(c); }
static bool is_alnum(char c) { return is_ident(c) && c != '_'; }

static size_t skip_digits(const char *s, size_t i, size_t n) {
    while (i < n && is_digit(s[i])) i++;
    return i;
}

/* The end of jq's number literal at s[i], or i when none starts there. */
static size_t scan_number(const char *s, size_t i, size_t n) {
    size_t j;
    if (i < n && is_digit(s[i])) {
        j = skip_digits(s, i, n);
        if (j < n && s[j] == '.') j = skip_digits(s, j + 1, n);
    } else if (i + 1 < n && s[i] == '.' && is_digit(s[i + 1])) {
        j = skip_digits(s, i + 1, n);
    } else {
        return i;
    }
    if (j < n && (s[j] == 'e' || s[j] == 'E')) {
        size_t k = j + 1;
        if (k < n && (s[k] == '+' || s[k] == '-')) k++;
        size_t end = skip_digits(s, k, n);
        if (end > k) j = end;
    }
    return j;
}

/* jq's lexer hands number literals and runs of escapes to its JSON parser;
 * so does this.  Returns the value, or invalid when it is not of kind. */
static jv parse_json(const char *text, size_t len, jv_kind kind) {
    jv v = jv_parse_sized(text, (int)len);
    if (jv_get_kind(v) == kind) return v;
    jv_free(v);
    return jv_invalid();
}

static tok_kind lex_number(parser *p, size_t end) {
    p->v = parse_json(p->s + p->i, end - p->i, JV_KIND_NUMBER);
    p->i = end;
    if (jv_is_valid(p->v) && isfinite(jv_number_value(p->v))) return T_CONST;
    return T_BAD;                        /* 1e1000: leave infinities to jq */
}

/* The end of a run of escapes at s[i] == '\\', as jq's lexer matches it:
 * (\\[^u(]|\\u[a-zA-Z0-9]{0,4})+.  Stops before `\(`. */
static size_t scan_escapes(const char *s, size_t i, size_t n) {
    while (i + 1 < n && s[i] == '\\' && s[i + 1] != '(') {
        i += 2;
        if (s[i - 1] != 'u') continue;
        for (int k = 0; k < 4 && i < n && is_alnum(s[i]); k++) i++;
    }
    return i;
}

/* One piece of a string literal at s[i]: raw bytes up to a quote or a
 * backslash, or a run of escapes; *end receives where it stops. */
static jv string_piece(const char *s, size_t i, size_t n, size_t *end) {
    size_t j = i;
    if (s[i] != '\\') {
        while (j < n && s[j] != '"' && s[j] != '\\') j++;
        *end = j;
        return jv_string_sized(s + i, (int)(j - i));
    }
    j = scan_escapes(s, i, n);
    *end = j;
    if (j == i) return jv_invalid();     /* `\(`: an interpolation */
    char *quoted = cairn_sprintf("\"%.*s\"", (int)(j - i), s + i);
    jv v = parse_json(quoted, j - i + 2, JV_KIND_STRING);
    free(quoted);
    return v;
}

/* A string literal at s[i] == '"'.  jq concatenates its pieces at parse
 * time (a constant fold of "" + piece + ...), so this does too. */
static tok_kind lex_string(parser *p) {
    size_t i = p->i + 1;
    jv str = jv_string("");
    while (i < p->n && p->s[i] != '"') {
        jv piece = string_piece(p->s, i, p->n, &i);
        if (!jv_is_valid(piece)) {
            jv_free(str);
            return T_BAD;
        }
        str = jv_string_concat(str, piece);
    }
    if (i >= p->n) {
        jv_free(str);
        return T_BAD;
    }
    p->i = i + 1;
    p->v = str;
    return T_CONST;
}

/* One "[...]" index of a path at s[i] == '['; appends it to *path and
 * returns the offset after ']', or 0 when it is not a plain index. */
static size_t path_index(const char *s, size_t i, size_t n, jv *path) {
    size_t j = i + 1;
    if (j < n && s[j] == '"') {
        size_t start = ++j;
        while (j < n && s[j] != '"' && s[j] != '\\') j++;
        if (j + 1 >= n || s[j] != '"' || s[j + 1] != ']') return 0;
        *path = jv_array_append(*path, jv_string_sized(s + start, (int)(j - start)));
        return j + 2;
    }
    size_t end = skip_digits(s, j, n);
    if (end == j || end - j > 9 || end >= n || s[end] != ']') return 0;
    *path = jv_array_append(*path, jv_number(atoi(s + j)));
    return end + 1;
}

/* Whether jq 1.6's lexer reads the '.' at s[i] as the start of a number
 * rather than a field: its number rule matches `.e3` and `.E+1` too, and
 * wins where it is at least as long as the field (`.e3`, `.e+3`; not
 * `.e3x`), leaving an invalid literal: a compile error, for jq to report. */
static bool dot_exponent(const char *s, size_t i, size_t n) {
    size_t j = i + 1;
    if (j >= n || (s[j] != 'e' && s[j] != 'E')) return false;
    bool sign = ++j < n && (s[j] == '+' || s[j] == '-');
    j += sign;
    if (j >= n || !is_digit(s[j])) return false;
    while (j < n && is_digit(s[j])) j++;
    return sign || j == n || !is_ident(s[j]);
}

/* The path at s[i] == '.' (not a number).  A '.' inside a path must start
 * a field: `.a.[0]` is a syntax error in jq 1.6 and `.a..b` another token. */
static tok_kind lex_path(parser *p) {
    const char *s = p->s;
    size_t i = p->i, n = p->n;
    jv path = jv_array();
    bool first = true;
    for (;;) {
        if (i < n && s[i] == '[') {
            i = path_index(s, i, n, &path);
            if (i == 0) break;
        } else if (i + 1 < n && s[i] == '.' && dot_exponent(s, i, n)) {
            break;
        } else if (i + 1 < n && s[i] == '.' && is_ident_start(s[i + 1])) {
            size_t start = ++i;
            while (i < n && is_ident(s[i])) i++;
            path = jv_array_append(path, jv_string_sized(s + start, (int)(i - start)));
        } else if (first && s[i] == '.' && (i + 1 == n || (s[i + 1] != '.' && s[i + 1] != '"'))) {
            i++;                         /* "." itself; an index may follow */
        } else if (i < n && s[i] == '.') {
            break;
        } else {
            p->i = i;
            p->v = path;
            return T_PATH;
        }
        first = false;
    }
    jv_free(path);
    return T_BAD;
}

/* A word: the keywords and constants of the subset; any other name (a
 * function, another keyword, a module path a::b) is declined. */
static tok_kind lex_word(parser *p) {
    size_t start = p->i, i = start;
    while (i < p->n && is_ident(p->s[i])) i++;
    p->i = i;
    if (i + 1 < p->n && p->s[i] == ':' && p->s[i + 1] == ':') return T_BAD;
    const char *w = p->s + start;
    size_t len = i - start;
#define WORD_IS(lit) (len == sizeof lit - 1 && memcmp(w, lit, len) == 0)
    tok_kind t = T_CONST;
    if (WORD_IS("and")) p->op = N_AND, t = T_OP;
    else if (WORD_IS("or")) p->op = N_OR, t = T_OP;
    else if (WORD_IS("true")) p->v = jv_true();
    else if (WORD_IS("false")) p->v = jv_false();
    else if (WORD_IS("null")) p->v = jv_null();
    else t = T_BAD;
#undef WORD_IS
    return t;
}

/* Punctuation.  An operator followed by '=' is an update (`+=`, `//=`),
 * a lone '=' an assignment, a lone '!' nothing: all declined. */
static tok_kind lex_punct(parser *p) {
    const char *s = p->s + p->i;
    size_t left = p->n - p->i;
    char c = s[0], c1 = left > 1 ? s[1] : '\0', c2 = left > 2 ? s[2] : '\0';
    size_t len = 1;
    tok_kind t = T_OP;
    switch (c) {
    case '(': t = T_OPEN; break;
    case ')': t = T_CLOSE; break;
    case '+': p->op = N_ADD; t = c1 == '=' ? T_BAD : T_OP; break;
    case '-': p->op = N_SUB; t = c1 == '=' ? T_BAD : T_OP; break;
    case '*': p->op = N_MUL; t = c1 == '=' ? T_BAD : T_OP; break;
    case '%': p->op = N_MOD; t = c1 == '=' ? T_BAD : T_OP; break;
    case '/':
        if (c1 == '/') len = 2;
        p->op = c1 == '/' ? N_ALT : N_DIV;
        t = (c1 == '=' || (c1 == '/' && c2 == '=')) ? T_BAD : T_OP;
        break;
    case '=': p->op = N_EQ; len = 2; t = c1 == '=' ? T_OP : T_BAD; break;
    case '!': p->op = N_NE; len = 2; t = c1 == '=' ? T_OP : T_BAD; break;
    case '<': p->op = c1 == '=' ? N_LE : N_LT; len = c1 == '=' ? 2 : 1; break;
    case '>': p->op = c1 == '=' ? N_GE : N_GT; len = c1 == '=' ? 2 : 1; break;
    default: t = T_BAD;
    }
    p->i += len;
    return t;
}

/* Move to the next token, dropping the current one's value unless a node
 * took it. */
static void next(parser *p) {
    jv_free(p->v);
    p->v = jv_invalid();
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n')) p->i++;
    if (p->i == p->n) {
        p->tok = T_END;
        return;
    }
    char c = p->s[p->i];
    size_t num = scan_number(p->s, p->i, p->n);
    if (num > p->i) p->tok = lex_number(p, num);
    else if (c == '.') p->tok = lex_path(p);
    else if (c == '"') p->tok = lex_string(p);
    else if (is_ident_start(c)) p->tok = lex_word(p);
    else p->tok = lex_punct(p);
}

/* ---- parsing, with jq's precedence and constant folding ------------------- */

/* jq 1.6's precedence levels, loosest first. */
enum { L_ALT, L_OR, L_AND, L_CMP, L_ADD, L_MUL };

static int level_of(nat_op op) {
    switch (op) {
    case N_ALT: return L_ALT;
    case N_OR: return L_OR;
    case N_AND: return L_AND;
    case N_ADD: case N_SUB: return L_ADD;
    case N_MUL: case N_DIV: case N_MOD: return L_MUL;
    default: return L_CMP;
    }
}

/* A new node (taking v); -1 past the node limit. */
static int add_node(parser *p, nat_op op, jv v, int a, int b) {
    cairn_exprnative *e = p->e;
    if (e->n == CAIRN_EXPR_NATIVE_NODES) {
        jv_free(v);
        return -1;
    }
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 4;
        e->nodes = cairn_realloc(e->nodes, (size_t)e->cap * sizeof *e->nodes);
    }
    e->nodes[e->n] = (nat_node){.op = op, .v = v, .a = a, .b = b};
    return e->n++;
}

/* x op y for + - * /, in doubles as jq computes them (folded or not). */
static double arith(nat_op op, double x, double y) {
    return op == N_ADD ? x + y : op == N_SUB ? x - y : op == N_MUL ? x * y : x / y;
}

static jv_kind const_kind(const parser *p, int k) {
    const nat_node *x = &p->e->nodes[k];
    return x->op == N_CONST ? jv_get_kind(x->v) : JV_KIND_INVALID;
}

/* a op b, folded where jq's parser folds it (constant_fold in parser.y):
 * both operands constant, and `+` with a null, or + - * / of two numbers.
 * Returns the node, or -1 to decline. */
static int binop(parser *p, nat_op op, int a, int b) {
    jv_kind ka = const_kind(p, a), kb = const_kind(p, b);
    bool consts = ka != JV_KIND_INVALID && kb != JV_KIND_INVALID;
    if (consts && op == N_ADD && ka == JV_KIND_NULL) return b;
    if (consts && op == N_ADD && kb == JV_KIND_NULL) return a;
    bool folds = op == N_ADD || op == N_SUB || op == N_MUL || op == N_DIV;
    if (!consts || !folds || ka != JV_KIND_NUMBER || kb != JV_KIND_NUMBER)
        return add_node(p, op, jv_invalid(), a, b);
    double r = arith(op, jv_number_value(p->e->nodes[a].v), jv_number_value(p->e->nodes[b].v));
    return isfinite(r) ? add_node(p, N_CONST, jv_number(r), -1, -1) : -1;
}

static int parse_exp(parser *p, int min_level);

static int parse_primary(parser *p) {
    int k = -1;
    if (p->tok == T_CONST || p->tok == T_PATH) {
        k = add_node(p, p->tok == T_CONST ? N_CONST : N_PATH, p->v, -1, -1);
        p->v = jv_invalid();
        next(p);
    } else if (p->tok == T_OPEN) {
        next(p);
        k = parse_exp(p, L_ALT);
        if (k >= 0 && p->tok != T_CLOSE) k = -1;
        if (k >= 0) next(p);
    }
    return k;
}

/* Operators of level min_level and tighter, by precedence climbing: `//` is
 * right associative, comparisons do not associate (`1 < 2 < 3` is a jq
 * syntax error), the rest associate to the left. */
static int parse_exp(parser *p, int min_level) {
    if (++p->depth > CAIRN_EXPR_NATIVE_DEPTH) return -1;
    int lhs = parse_primary(p), last = -1;
    while (lhs >= 0 && p->tok == T_OP && level_of(p->op) >= min_level) {
        nat_op op = p->op;
        int level = level_of(op);
        if (level == L_CMP && last == L_CMP) return -1;    /* -1 ends the whole parse */
        next(p);
        int rhs = parse_exp(p, op == N_ALT ? level : level + 1);
        lhs = rhs < 0 ? -1 : binop(p, op, lhs, rhs);
        last = level;
    }
    p->depth--;
    return lhs;
}

cairn_exprnative *cairn__exprnative_parse(const char *text, size_t len) {
    parser p = {.s = text, .n = len, .v = jv_invalid(), .e = cairn_calloc(1, sizeof *p.e)};
    next(&p);
    p.e->root = parse_exp(&p, L_ALT);
    bool ok = p.e->root >= 0 && p.tok == T_END;
    jv_free(p.v);
    if (ok) return p.e;
    cairn__exprnative_free(p.e);
    return NULL;
}

/* ---- evaluation ------------------------------------------------------------ */

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
    if (!(fabs(x) <= limit && fabs(y) <= limit)) return defer(a, b);
    intmax_t ix = (intmax_t)x, iy = (intmax_t)y;
    if (iy == 0)
        return type_error2(a, b, "cannot be divided (remainder) because the divisor is zero");
    jv_free(a);
    jv_free(b);
    return jv_number((double)(ix % iy));
}

/* Operator op over a and b (both consumed), as jq's builtin for it. */
static jv apply(nat_op op, jv a, jv b) {
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

static bool truthy(jv v) {
    jv_kind k = jv_get_kind(v);
    return k != JV_KIND_FALSE && k != JV_KIND_NULL;
}

static jv eval(const cairn_exprnative *e, int k, cairn_doc *doc);

/* Indexing as jq's INDEX instruction does it, through jv_get; the prefix
 * the document resolves itself (cairn_doc.path) is taken as it gives it. */
static jv eval_path(jv path, cairn_doc *doc) {
    int used = 0;
    jv cur = doc->path ? doc->path(doc, path, &used) : jv_invalid();
    if (!jv_is_valid(cur)) {
        jv_free(cur);
        cur = jv_copy(doc->whole(doc));
        used = 0;
    }
    int n = jv_array_length(jv_copy(path));
    for (int i = used; i < n && jv_is_valid(cur); i++)
        cur = jv_get(cur, jv_array_get(jv_copy(path), i));
    return cur;
}

/* and, or, //: the left operand first; the right only when it decides. */
static jv eval_logic(const cairn_exprnative *e, const nat_node *x, cairn_doc *doc) {
    jv l = eval(e, x->a, doc);
    if (!jv_is_valid(l)) return l;
    bool t = truthy(l);
    if (x->op == N_ALT && t) return l;
    jv_free(l);
    if (x->op == N_AND && !t) return jv_false();
    if (x->op == N_OR && t) return jv_true();
    jv r = eval(e, x->b, doc);
    if (x->op == N_ALT || !jv_is_valid(r)) return r;
    t = truthy(r);
    jv_free(r);
    return jv_bool(t);
}

static jv eval(const cairn_exprnative *e, int k, cairn_doc *doc) {
    const nat_node *x = &e->nodes[k];
    switch (x->op) {
    case N_CONST: return jv_copy(x->v);
    case N_PATH: return eval_path(x->v, doc);
    case N_ALT: case N_OR: case N_AND: return eval_logic(e, x, doc);
    default: break;
    }
    jv r = eval(e, x->b, doc);            /* jq evaluates the right operand first */
    if (!jv_is_valid(r)) return r;
    jv l = eval(e, x->a, doc);
    if (!jv_is_valid(l)) {
        jv_free(r);
        return l;
    }
    return apply(x->op, l, r);
}

jv cairn__exprnative_eval_doc(const cairn_exprnative *e, cairn_doc *doc) {
    return eval(e, e->root, doc);
}

static jv jvdoc_whole(cairn_doc *d) { return ((cairn__jvdoc *)d)->v; }

cairn_doc *cairn__jvdoc_init(cairn__jvdoc *jd, jv v) {
    jd->d = (cairn_doc){jvdoc_whole, NULL};
    jd->v = v;
    return &jd->d;
}

jv cairn__exprnative_eval(const cairn_exprnative *e, jv doc) {
    cairn__jvdoc jd;
    return eval(e, e->root, cairn__jvdoc_init(&jd, doc));
}

bool cairn__exprnative_reads(const cairn_exprnative *e, const char *key) {
    for (int i = 0; i < e->n; i++) {
        if (e->nodes[i].op != N_PATH) continue;
        jv first = jv_array_get(jv_copy(e->nodes[i].v), 0);   /* `.` alone: invalid */
        bool reads = jv_get_kind(first) != JV_KIND_STRING || strcmp(jv_string_value(first), key) == 0;
        jv_free(first);
        if (reads) return true;
    }
    return false;
}
