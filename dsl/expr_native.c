/*
 * expr_native.c - a common subset of jq, parsed without jq (evaluated by
 * expr_nateval.c).
 *
 * jq_compile costs about 20 ms plus ~0.75 M instructions per program (see
 * expr.c), while most runbook expressions are paths, one operator over them,
 * or a short pipeline of common builtins (`.steps.s1.output.n | . + 1`,
 * `.x | split(",") | map(select(length > 0))`).  Such a text is parsed here
 * into a small tree at load; it needs no jq_compile.  The meaning is jq
 * 1.6's as built into the libjq Cairn links with: tests/unit/test_expr.c and
 * tests/unit/test_expr_diff.c check it against that libjq over generated
 * texts and documents, and tests/fuzz/fuzz_expr.c does the same.
 *
 * The subset, by jq 1.6's grammar (src/parser.y), loosest binding first:
 *
 *     exp      := exp "|" exp                 right associative
 *               | exp "," exp                 left
 *               | exp "//" exp                right
 *               | exp "or" exp | exp "and" exp                       left
 *               | exp cmp exp                 cmp: == != < <= > >=, non-associative
 *               | exp ("+" | "-") exp | exp ("*" | "/" | "%") exp     left
 *               | "-" exp                     binds * / % into its operand
 *               | "if" exp "then" exp ("elif" exp "then" exp)* "else" exp "end"
 *               | term
 *     term     := primary postfix*
 *     primary  := path | number | string | true | false | null
 *               | "(" exp ")" | "[" exp "]" | "[" "]" | "{" pairs "}"
 *               | builtin | builtin "(" exp ")"      (the table in expr_nateval.c)
 *     postfix  := "." ident ("." ident | "[" ... "]")*  |  "[" exp "]"  |  "[" "]"
 *                 without a blank before it
 *     pairs    := (pair ("," pair)*)?
 *     pair     := ident (":" objval)? | string ":" objval | "(" exp ")" ":" objval
 *     objval   := term ("|" objval)?
 *     path     := "." | ("." ident | "." "[" index "]" | "[" index "]")+
 *                 without blanks inside; ident [A-Za-z_][A-Za-z0-9_]*;
 *                 index: up to 9 digits, or a string without backslashes
 *     number   := jq's literal ([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?
 *     string   := "..." with escapes converted as jq's lexer does (each run of
 *                 escapes through jq's JSON parser) and \( exp ) interpolations
 *
 * Tokens are cut as jq's lexer cuts them (longest match: `.a-1` is `.a - 1`,
 * `1and 2` is `1 and 2`, `//=` is not `//`); blanks are space, tab and
 * newline only (jq 1.6 refuses a carriage return).  Anything else (a comment,
 * a variable, `as`, reduce, def, try, `?`, `..`, a slice, a format, a
 * function outside the table or with another number of arguments, an object
 * key that is a constant but not a string, `.a.[0]`, `.a [0]`, `1 < 2 <
 * 3`...) is declined: cairn__exprnative_parse returns NULL and the text is
 * compiled by jq as before, with jq's own diagnostics.  Every text accepted
 * here is valid jq 1.6, and means the same.
 *
 * Constants are folded at parse time as jq's parser folds them (both
 * operands constant: `null + x` is x, number op number for + - * /); a fold
 * that gives a non-finite number is declined: jq refuses it ("Division by
 * zero?") or keeps a NaN, and either is jq's business.  Adjacent pieces of
 * one string are joined, which no evaluation can tell apart.
 *
 * Limits: CAIRN_EXPR_NATIVE_NODES nodes and CAIRN_EXPR_NATIVE_DEPTH nested
 * levels per text, so that parsing and evaluating recurse boundedly; a larger
 * text is declined.
 */
#include "dsl/expr_native_int.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

#define CAIRN_EXPR_NATIVE_NODES 256
#define CAIRN_EXPR_NATIVE_DEPTH 64

void cairn__exprnative_free(cairn_exprnative *e) {
    if (e == NULL) return;
    for (int i = 0; i < e->n; i++) {
        jv_free(e->nodes[i].v);
        for (int k = 0; k < e->nodes[i].nkeys; k++) jv_free(e->nodes[i].keyv[k]);
        free(e->nodes[i].keyv);
        free(e->nodes[i].keys);
    }
    free(e->nodes);
    free(e);
}

/* ---- tokens, cut as jq 1.6's lexer cuts them ------------------------------ */

typedef enum {
    T_END, T_BAD, T_OP, T_OPEN, T_CLOSE, T_LBRACK, T_RBRACK, T_LBRACE, T_RBRACE, T_COLON,
    T_CONST, T_PATH, T_STR, T_WORD
} tok_kind;

typedef struct parser {
    const char *s;
    size_t n, i;                         /* text, its length, the next byte */
    tok_kind tok;                        /* the current token */
    size_t start;                        /* where it starts (T_WORD, T_STR) */
    bool blank;                          /* blanks came before it */
    bool field;                          /* T_PATH: it starts with ".ident" */
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
 * a field: `.a.[0]` is a syntax error in jq 1.6 and `.a..b` another token.
 * An index other than a plain one ends the path there: the parser reads it
 * as a postfix. */
static tok_kind lex_path(parser *p) {
    const char *s = p->s;
    size_t i = p->i, n = p->n;
    jv path = jv_array();
    bool first = true;
    p->field = i + 1 < n && is_ident_start(s[i + 1]);
    for (;;) {
        if (i < n && s[i] == '[') {
            size_t j = path_index(s, i, n, &path);
            if (j == 0) break;
            i = j;
        } else if (i + 1 < n && s[i] == '.' && dot_exponent(s, i, n)) {
            jv_free(path);
            return T_BAD;
        } else if (i + 1 < n && s[i] == '.' && is_ident_start(s[i + 1])) {
            size_t start = ++i;
            while (i < n && is_ident(s[i])) i++;
            path = jv_array_append(path, jv_string_sized(s + start, (int)(i - start)));
        } else if (first && s[i] == '.' && (i + 1 == n || (s[i + 1] != '.' && s[i + 1] != '"'))) {
            i++;                         /* "." itself; an index may follow */
        } else if (i < n && s[i] == '.') {
            jv_free(path);
            return T_BAD;
        } else {
            break;
        }
        first = false;
    }
    p->i = i;
    p->v = path;
    return T_PATH;
}

/* A word: the constants and operators among jq's words are tokens of their
 * own; any other name (a builtin, a keyword) is a T_WORD for the parser; a
 * module path a::b is declined. */
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
    else t = T_WORD;
#undef WORD_IS
    return t;
}

/* Punctuation.  An operator followed by '=' is an update (`+=`, `//=`,
 * `|=`), a lone '=' an assignment, a lone '!' nothing: all declined. */
static tok_kind lex_punct(parser *p) {
    const char *s = p->s + p->i;
    size_t left = p->n - p->i;
    char c = s[0], c1 = left > 1 ? s[1] : '\0', c2 = left > 2 ? s[2] : '\0';
    size_t len = 1;
    tok_kind t = T_OP;
    switch (c) {
    case '(': t = T_OPEN; break;
    case ')': t = T_CLOSE; break;
    case '[': t = T_LBRACK; break;
    case ']': t = T_RBRACK; break;
    case '{': t = T_LBRACE; break;
    case '}': t = T_RBRACE; break;
    case ':': t = T_COLON; break;
    case ',': p->op = N_COMMA; break;
    case '|': p->op = N_PIPE; t = c1 == '=' ? T_BAD : T_OP; break;
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
 * took it.  A string is left for the parser to read (its interpolations are
 * expressions): the token is T_STR with p->i at its quote. */
static void next(parser *p) {
    jv_free(p->v);
    p->v = jv_invalid();
    size_t from = p->i;
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n')) p->i++;
    p->blank = p->i > from;
    p->start = p->i;
    if (p->i == p->n) {
        p->tok = T_END;
        return;
    }
    char c = p->s[p->i];
    size_t num = scan_number(p->s, p->i, p->n);
    if (num > p->i) p->tok = lex_number(p, num);
    else if (c == '.') p->tok = lex_path(p);
    else if (c == '"') p->tok = T_STR;
    else if (is_ident_start(c)) p->tok = lex_word(p);
    else p->tok = lex_punct(p);
}

/* Whether the current token is the word w. */
static bool word_is(const parser *p, const char *w) {
    size_t len = strlen(w);
    return p->tok == T_WORD && p->i - p->start == len && memcmp(p->s + p->start, w, len) == 0;
}

/* Whether the current word is one of jq's keywords (declined as a key). */
static bool is_keyword(const parser *p) {
    static const char *const words[] = {"def", "if", "then", "elif", "else", "end", "as",
                                        "reduce", "foreach", "try", "catch", "label",
                                        "import", "include", "__loc__"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (word_is(p, words[i])) return true;
    return false;
}

/* ---- parsing, with jq's precedence and constant folding ------------------- */

/* jq 1.6's precedence levels, loosest first. */
enum { L_PIPE, L_COMMA, L_ALT, L_OR, L_AND, L_CMP, L_ADD, L_MUL };

static int level_of(nat_op op) {
    switch (op) {
    case N_PIPE: return L_PIPE;
    case N_COMMA: return L_COMMA;
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
    e->nodes[e->n] = (nat_node){.op = op, .v = v, .a = a, .b = b, .c = -1, .fn = -1};
    if (op == N_ARRAY || op == N_OBJECT) e->builds = true;
    return e->n++;
}

/* x op y for + - * /, in doubles as jq computes them. */
static double arith(nat_op op, double x, double y) {
    return op == N_ADD ? x + y : op == N_SUB ? x - y : op == N_MUL ? x * y : x / y;
}

static jv_kind const_kind(const parser *p, int k) {
    const nat_node *x = &p->e->nodes[k];
    return x->op == N_CONST ? jv_get_kind(x->v) : JV_KIND_INVALID;
}

/* a op b, folded where jq's parser folds it (constant_fold in parser.y):
 * both operands constant, and `+` with a null, or + - * / of two numbers;
 * and two constant strings joined (pieces of one string literal).  Returns
 * the node, or -1 to decline. */
static int binop(parser *p, nat_op op, int a, int b) {
    if (a < 0 || b < 0) return -1;
    jv_kind ka = const_kind(p, a), kb = const_kind(p, b);
    bool consts = ka != JV_KIND_INVALID && kb != JV_KIND_INVALID;
    if (consts && op == N_ADD && ka == JV_KIND_NULL) return b;
    if (consts && op == N_ADD && kb == JV_KIND_NULL) return a;
    if (consts && op == N_ADD && ka == JV_KIND_STRING && kb == JV_KIND_STRING)
        return add_node(p, N_CONST,
                        jv_string_concat(jv_copy(p->e->nodes[a].v), jv_copy(p->e->nodes[b].v)),
                        -1, -1);
    bool folds = op == N_ADD || op == N_SUB || op == N_MUL || op == N_DIV;
    if (!consts || !folds || ka != JV_KIND_NUMBER || kb != JV_KIND_NUMBER)
        return add_node(p, op, jv_invalid(), a, b);
    double r = arith(op, jv_number_value(p->e->nodes[a].v), jv_number_value(p->e->nodes[b].v));
    return isfinite(r) ? add_node(p, N_CONST, jv_number(r), -1, -1) : -1;
}

static int parse_exp(parser *p, int min_level);
static int parse_term(parser *p);

/* Expect token t and move past it; false (decline) otherwise. */
static bool expect(parser *p, tok_kind t) {
    if (p->tok != t) return false;
    next(p);
    return true;
}

/* A string literal at p->i == '"' (the current token T_STR), as jq builds
 * it: "" + piece + (interpolation | tostring) + ..., left to right. */
static int parse_string(parser *p) {
    const char *s = p->s;
    size_t i = p->i + 1, n = p->n;
    int k = add_node(p, N_CONST, jv_string(""), -1, -1);
    while (k >= 0 && i < n && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < n && s[i + 1] == '(') {
            p->i = i + 2;
            next(p);
            int x = parse_exp(p, L_PIPE);
            if (x < 0 || p->tok != T_CLOSE) return -1;
            int str = add_node(p, N_CALL, jv_invalid(), -1, -1);
            if (str < 0) return -1;
            p->e->nodes[str].fn = cairn__natfn_find("tostring", 8, 0);
            k = binop(p, N_ADD, k, add_node(p, N_PIPE, jv_invalid(), x, str));
            i = p->i;                    /* just past the ')' */
            continue;
        }
        jv piece = string_piece(s, i, n, &i);
        if (!jv_is_valid(piece)) return -1;
        k = binop(p, N_ADD, k, add_node(p, N_CONST, piece, -1, -1));
    }
    if (k < 0 || i >= n) return -1;
    p->i = i + 1;
    next(p);
    return k;
}

/* An object's value: a term, or terms joined by `|` (ExpD in parser.y). */
static int parse_objval(parser *p) {
    int k = parse_term(p);
    if (k < 0 || p->tok != T_OP || p->op != N_PIPE) return k;
    next(p);
    return add_node(p, N_PIPE, jv_invalid(), k, parse_objval(p));
}

/* One key of an object.  A constant key that is not a string is a
 * compile error in jq (check_object_key in parser.y), and jq builds `[]`,
 * `[1, 2]`, `{}` and `{a: 1}` as constants: such keys are declined. */
static int parse_key(parser *p) {
    if (p->tok == T_STR) return parse_string(p);
    if (p->tok != T_OPEN) return -1;
    next(p);
    int k = parse_exp(p, L_PIPE);
    if (k < 0 || !expect(p, T_CLOSE)) return -1;
    nat_op op = p->e->nodes[k].op;
    if (op == N_ARRAY || op == N_OBJECT) return -1;
    jv_kind kind = const_kind(p, k);
    return kind == JV_KIND_INVALID || kind == JV_KIND_STRING ? k : -1;
}

/* ident, ident ":" objval, key ":" objval. */
static int parse_pair(parser *p) {
    int key, val;
    if (p->tok == T_WORD && !is_keyword(p)) {
        jv name = jv_string_sized(p->s + p->start, (int)(p->i - p->start));
        next(p);
        if (p->tok != T_COLON) {         /* {a}: {a: .a} */
            key = add_node(p, N_CONST, jv_copy(name), -1, -1);
            val = add_node(p, N_PATH, JV_ARRAY(name), -1, -1);
            return add_node(p, N_PAIR, jv_invalid(), key, val);
        }
        key = add_node(p, N_CONST, name, -1, -1);
    } else {
        key = parse_key(p);
        if (key < 0 || p->tok != T_COLON) return -1;
    }
    next(p);
    val = parse_objval(p);
    return key < 0 || val < 0 ? -1 : add_node(p, N_PAIR, jv_invalid(), key, val);
}

/* "{" pairs "}", the '{' current. */
static int parse_object(parser *p) {
    next(p);
    int obj = add_node(p, N_OBJECT, jv_invalid(), -1, -1), last = -1;
    while (obj >= 0 && p->tok != T_RBRACE) {
        if (last >= 0 && !(p->tok == T_OP && p->op == N_COMMA)) return -1;
        if (last >= 0) next(p);
        int pair = parse_pair(p);
        if (pair < 0) return -1;
        if (last < 0) p->e->nodes[obj].a = pair;
        else p->e->nodes[last].c = pair;
        last = pair;
    }
    if (obj >= 0) next(p);
    return obj;
}

/* A builtin's name, its argument if it takes one. */
static int parse_call(parser *p) {
    const char *name = p->s + p->start;
    size_t len = p->i - p->start;
    bool args = p->i < p->n && p->s[p->i] == '(';
    int fn = cairn__natfn_find(name, len, args ? 1 : 0), a = -1;
    if (fn < 0) return -1;
    next(p);
    if (args) {
        next(p);
        a = parse_exp(p, L_PIPE);
        if (a < 0 || !expect(p, T_CLOSE)) return -1;
    }
    int k = add_node(p, N_CALL, jv_invalid(), a, -1);
    if (k >= 0) p->e->nodes[k].fn = fn;
    if (k >= 0 && cairn__natfn(fn)->builds) p->e->builds = true;
    return k;
}

static int parse_primary(parser *p) {
    int k = -1;
    switch (p->tok) {
    case T_CONST:
    case T_PATH:
        k = add_node(p, p->tok == T_CONST ? N_CONST : N_PATH, p->v, -1, -1);
        p->v = jv_invalid();
        next(p);
        return k;
    case T_STR: return parse_string(p);
    case T_OPEN:
        next(p);
        k = parse_exp(p, L_PIPE);
        return k >= 0 && expect(p, T_CLOSE) ? k : -1;
    case T_LBRACK:
        next(p);
        if (p->tok != T_RBRACK && (k = parse_exp(p, L_PIPE)) < 0) return -1;
        if (!expect(p, T_RBRACK)) return -1;
        return add_node(p, N_ARRAY, jv_invalid(), k, -1);
    case T_LBRACE: return parse_object(p);
    case T_WORD: return parse_call(p);
    default: return -1;
    }
}

/* Whether node k is `.` itself: a postfix on it indexes the input. */
static bool is_dot(const parser *p, int k) {
    const nat_node *x = &p->e->nodes[k];
    return x->op == N_PATH && x->a < 0 && jv_array_length(jv_copy(x->v)) == 0;
}

/* A primary and its postfixes: .field chains, [exp], [].  jq allows a
 * blank before them; declining it keeps `.a [0]` apart from `.a, [0]`-like
 * misreadings at no cost. */
static int parse_term(parser *p) {
    bool number = p->tok == T_CONST && jv_get_kind(p->v) == JV_KIND_NUMBER;
    int k = parse_primary(p);
    while (k >= 0 && !p->blank) {
        int base = is_dot(p, k) ? -1 : k;
        if (p->tok == T_PATH && p->field && !number) {   /* jq 1.6 refuses `1.5.a` */
            k = add_node(p, N_PATH, p->v, base, -1);
            p->v = jv_invalid();
            next(p);
        } else if (p->tok == T_LBRACK) {
            next(p);
            if (p->tok == T_RBRACK) {
                next(p);
                k = add_node(p, N_EACH, jv_invalid(), base, -1);
                number = false;
                continue;
            }
            int key = parse_exp(p, L_PIPE);
            if (key < 0 || !expect(p, T_RBRACK)) return -1;
            k = add_node(p, N_INDEX, jv_invalid(), base, key);
            number = false;
        } else {
            break;
        }
    }
    return k;
}

/* "if" exp "then" exp ("elif" ... | "else" exp) "end", the "if" or "elif"
 * current.  jq 1.6 has no if without else. */
static int parse_if(parser *p) {
    if (++p->depth > CAIRN_EXPR_NATIVE_DEPTH) return -1;
    next(p);
    int cond = parse_exp(p, L_PIPE);
    if (cond < 0 || !word_is(p, "then")) return -1;
    next(p);
    int then = parse_exp(p, L_PIPE), other = -1;
    if (then < 0) return -1;
    if (word_is(p, "elif")) {
        other = parse_if(p);
    } else if (word_is(p, "else")) {
        next(p);
        other = parse_exp(p, L_PIPE);
        if (other < 0 || !word_is(p, "end")) return -1;
        next(p);
    }
    if (other < 0) return -1;
    p->depth--;
    int k = add_node(p, N_IF, jv_invalid(), cond, then);
    if (k >= 0) p->e->nodes[k].c = other;
    return k;
}

/* An operand: a term, an if, or a unary minus, which in jq 1.6 takes the
 * precedence of the binary one: `-a * b` is -(a * b), `-a + b` (-a) + b. */
static int parse_operand(parser *p) {
    if (word_is(p, "if")) return parse_if(p);
    if (p->tok == T_OP && p->op == N_SUB) {
        next(p);
        int a = parse_exp(p, L_MUL);
        return a < 0 ? -1 : add_node(p, N_NEG, jv_invalid(), a, -1);
    }
    return parse_term(p);
}

/* Operators of level min_level and tighter, by precedence climbing: `|`
 * and `//` are right associative, comparisons do not associate (`1 < 2 <
 * 3` is a jq syntax error), the rest associate to the left. */
static int parse_exp(parser *p, int min_level) {
    if (++p->depth > CAIRN_EXPR_NATIVE_DEPTH) return -1;
    int lhs = parse_operand(p), last = -1;
    while (lhs >= 0 && p->tok == T_OP && level_of(p->op) >= min_level) {
        nat_op op = p->op;
        int level = level_of(op);
        if (level == L_CMP && last == L_CMP) return -1;    /* -1 ends the whole parse */
        next(p);
        bool right = op == N_ALT || op == N_PIPE;
        int rhs = parse_exp(p, right ? level : level + 1);
        lhs = rhs < 0 ? -1 : binop(p, op, lhs, rhs);
        last = level;
    }
    p->depth--;
    return lhs;
}

cairn_exprnative *cairn__exprnative_parse(const char *text, size_t len) {
    parser p = {.s = text, .n = len, .v = jv_invalid(), .e = cairn_calloc(1, sizeof *p.e)};
    next(&p);
    p.e->root = parse_exp(&p, L_PIPE);
    bool ok = p.e->root >= 0 && p.tok == T_END;
    jv_free(p.v);
    if (ok) cairn__natfn_prepare(p.e);
    if (ok) return p.e;
    cairn__exprnative_free(p.e);
    return NULL;
}

/* ---- a plain jv as a document ------------------------------------------------ */

static jv jvdoc_whole(cairn_doc *d) { return ((cairn__jvdoc *)d)->v; }

cairn_doc *cairn__jvdoc_init(cairn__jvdoc *jd, jv v) {
    jd->d = (cairn_doc){jvdoc_whole, NULL};
    jd->v = v;
    return &jd->d;
}
