/*
 * expr_lex.c - the lexical facts about jq programs that Cairn relies on.
 *
 * The scanner mirrors the start conditions of jq 1.6's lexer (src/lexer.l):
 * code, where `#` starts a comment to the end of the line and (, [, { open a
 * bracket that only its partner may close; strings, where a backslash escapes
 * the next byte except in `\(`, which opens an interpolation (code again,
 * closed by its `)`).  Agreeing with jq on these rules is what makes the
 * isolation check of cairn__exprlex_check sound.
 */
#include "dsl/expr_int.h"

#include <stdbool.h>
#include <string.h>

#define LEX_STRING '"'
#define LEX_INTERP 'I'

typedef struct lexer {
    const char *p;
    size_t len, i;
    char stack[CAIRN_EXPR_MAX_NEST];
    int depth;
} lexer;

static char lex_top(const lexer *lx) { return lx->depth ? lx->stack[lx->depth - 1] : 0; }

static bool lex_push(lexer *lx, char c) {
    if (lx->depth == CAIRN_EXPR_MAX_NEST) return false;
    lx->stack[lx->depth++] = c;
    return true;
}

/* The opener that a closing byte c pairs with ("(" also for interpolations). */
static char opener_of(char c) { return c == ')' ? '(' : c == ']' ? '[' : '{'; }

/* Skip blanks and comments from lx->i. */
static void skip_blanks(lexer *lx) {
    while (lx->i < lx->len) {
        char c = lx->p[lx->i];
        if (c == '#') {
            while (lx->i < lx->len && lx->p[lx->i] != '\n') lx->i++;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            lx->i++;
        } else {
            break;
        }
    }
}

/* Names an expression may not use, as a call or a variable: each reads
 * the clock, the time zone, the environment, input or the host's files, or
 * writes to stderr or stops the program.  mktime, gmtime, strftime and
 * strptime compute from their input and stay. */
#define NOT_AVAILABLE " is not available in expressions: "
#define REPLAY "; an expression reads only its document, so that a run replays the same"
static const struct { const char *name, *msg; } refused_names[] = {
    {"now", "now" NOT_AVAILABLE "it reads the clock" REPLAY},
    {"localtime", "localtime" NOT_AVAILABLE "it reads the time zone" REPLAY},
    {"strflocaltime", "strflocaltime" NOT_AVAILABLE "it reads the time zone" REPLAY},
    {"env", "env" NOT_AVAILABLE "use .env, the workflow's env map"},
    {"input", "input" NOT_AVAILABLE "it reads input" REPLAY},
    {"inputs", "inputs" NOT_AVAILABLE "it reads input" REPLAY},
    {"input_filename", "input_filename" NOT_AVAILABLE "it reads input" REPLAY},
    {"input_line_number", "input_line_number" NOT_AVAILABLE "it reads input" REPLAY},
    {"debug", "debug" NOT_AVAILABLE "it writes to stderr" REPLAY},
    {"stderr", "stderr" NOT_AVAILABLE "it writes to stderr" REPLAY},
    {"halt", "halt" NOT_AVAILABLE "it stops the engine's evaluator"},
    {"halt_error", "halt_error" NOT_AVAILABLE "it stops the engine's evaluator; use error"},
    {"get_search_list", "get_search_list" NOT_AVAILABLE "it reads the host's files" REPLAY},
    {"get_prog_origin", "get_prog_origin" NOT_AVAILABLE "it reads the host's files" REPLAY},
    {"get_jq_origin", "get_jq_origin" NOT_AVAILABLE "it reads the host's files" REPLAY},
    {"modulemeta", "modulemeta" NOT_AVAILABLE "it reads the host's files" REPLAY},
    {"import", "import" NOT_AVAILABLE "modules are files of the host" REPLAY},
    {"include", "include" NOT_AVAILABLE "modules are files of the host" REPLAY},
};
static const struct { const char *name, *msg; } refused_vars[] = {
    {"ENV", "$ENV" NOT_AVAILABLE "use .env, the workflow's env map"},
    {"__loc__", "$__loc__" NOT_AVAILABLE "it names a place in the engine's compiled program"},
};

static bool is_name_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_byte(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

/* From lx->i, the end of jq's IDENT: ([a-zA-Z_][a-zA-Z_0-9]*::)*[a-zA-Z_][a-zA-Z_0-9]*. */
static size_t name_end(const lexer *lx, size_t i) {
    for (;;) {
        while (i < lx->len && is_name_byte(lx->p[i])) i++;
        if (i + 2 < lx->len && lx->p[i] == ':' && lx->p[i + 1] == ':' &&
            is_name_start(lx->p[i + 2]))
            i += 2;
        else
            return i;
    }
}

static bool same_name(const lexer *lx, size_t start, size_t end, const char *name) {
    return strlen(name) == end - start && memcmp(lx->p + start, name, end - start) == 0;
}

/* At a `$` in code: the variable's name, skipped; the refusal when it is
 * one of refused_vars.  jq 1.6 lexes `$` and the name as two tokens, so
 * `$ ENV` and `$#...\nENV` name $ENV too. */
static const char *lex_variable(lexer *lx) {
    lx->i++;
    skip_blanks(lx);
    size_t start = lx->i, end = name_end(lx, start);
    lx->i = end > start ? end - 1 : start - 1;
    for (size_t k = 0; k < sizeof refused_vars / sizeof refused_vars[0]; k++)
        if (same_name(lx, start, end, refused_vars[k].name)) return refused_vars[k].msg;
    return NULL;
}

/* At the first byte of a name in code: skipped; the refusal when it is one
 * of refused_names used as a call.  A name right after `.` is a field
 * (`.now`), after `@` a format, and right after `{` or `,` in an object a
 * key (`{now: 1}`, `{now}`: jq reads the value after the `:`, or `.now`). */
static const char *lex_name(lexer *lx, char before) {
    size_t start = lx->i, end = name_end(lx, start);
    lx->i = end - 1;
    char raw = start > 0 ? lx->p[start - 1] : 0;
    if (raw == '.' || raw == '@' || (raw >= '0' && raw <= '9')) return NULL;
    if (lex_top(lx) == '{' && (before == '{' || before == ',')) return NULL;
    for (size_t k = 0; k < sizeof refused_names / sizeof refused_names[0]; k++)
        if (same_name(lx, start, end, refused_names[k].name)) return refused_names[k].msg;
    return NULL;
}

/* One byte inside a string literal. */
static const char *lex_string_byte(lexer *lx) {
    char c = lx->p[lx->i];
    if (c == '"') {
        lx->depth--;
    } else if (c == '\\' && lx->i + 1 < lx->len) {
        lx->i++;
        if (lx->p[lx->i] == '(' && !lex_push(lx, LEX_INTERP)) return "expression nested too deeply";
    }
    return NULL;
}

/* One token start in code; before is the last byte of the token before it
 * (0 at the start). */
static const char *lex_code_byte(lexer *lx, char before) {
    char c = lx->p[lx->i];
    switch (c) {
    case '#':
        while (lx->i + 1 < lx->len && lx->p[lx->i + 1] != '\n') lx->i++;
        return NULL;
    case '"': case '(': case '[': case '{':
        return lex_push(lx, c) ? NULL : "expression nested too deeply";
    case ')': case ']': case '}': {
        char top = lex_top(lx);
        bool ok = top == opener_of(c) || (c == ')' && top == LEX_INTERP);
        if (!ok) {
            if (c == ')') return "syntax error: ')' without a matching '('";
            return c == ']' ? "syntax error: ']' without a matching '['"
                            : "syntax error: '}' without a matching '{'";
        }
        lx->depth--;
        return NULL;
    }
    case '$':
        return lex_variable(lx);
    default:
        return is_name_start(c) ? lex_name(lx, before) : NULL;
    }
}

const char *cairn__exprlex_check(const char *prog, size_t len) {
    lexer lx = {.p = prog, .len = len};
    char before = 0;
    for (lx.i = 0; lx.i < len; lx.i++) {
        bool code = lex_top(&lx) != LEX_STRING;
        char c = prog[lx.i];
        const char *msg = code ? lex_code_byte(&lx, before) : lex_string_byte(&lx);
        if (msg) return msg;
        if (!code) before = '"';
        else if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '#') before = prog[lx.i];
    }
    switch (lex_top(&lx)) {
    case 0: return NULL;
    case LEX_STRING: return "syntax error: unterminated string";
    case LEX_INTERP: return "syntax error: unterminated string interpolation \\(...)";
    case '(': return "syntax error: '(' is never closed";
    case '[': return "syntax error: '[' is never closed";
    default: return "syntax error: '{' is never closed";
    }
}

/* Finding the end of `${{ ... }}`: outside strings only `"` and `}}` matter
 * (braces of object literals do not nest, by design of the syntax: write
 * `{a: {b: 1} }` with a blank); inside strings the interpolations are
 * followed with their parentheses so that `"\(")")"` stays one string. */
long cairn__exprlex_close(const char *s, size_t len) {
    lexer lx = {.p = s, .len = len};
    for (lx.i = 0; lx.i < len; lx.i++) {
        char c = s[lx.i], top = lex_top(&lx);
        if (top == LEX_STRING) {
            if (lex_string_byte(&lx)) return -1;
        } else if (top == 0 && c == '}' && lx.i + 1 < len && s[lx.i + 1] == '}') {
            return (long)lx.i;
        } else if (c == '"' || (top != 0 && c == '(')) {
            if (!lex_push(&lx, c)) return -1;
        } else if (top != 0 && c == ')') {
            lx.depth--;
        }
    }
    return -1;
}

/* ---- paths read from the document's root -------------------------------- */

/* What the token before ends: an operand (a following `.name` is a field of
 * it, not a path from `.`) or not (start, operator, opener). */
typedef enum { PREV_NONE, PREV_TERM } prev_kind;

typedef struct ref_scan {
    lexer lx;
    bool rooted[CAIRN_EXPR_MAX_NEST + 1];  /* per depth: `.` still the document */
    prev_kind prev;
    char before;                       /* the last byte of the token before */
    const char *root;
    cairn_expr_ref_cb cb;
    void *ctx;
} ref_scan;

static bool rs_push(ref_scan *rs, char c) {
    bool r = rs->rooted[rs->lx.depth];
    if (!lex_push(&rs->lx, c)) return false;
    rs->rooted[rs->lx.depth] = r;
    rs->prev = PREV_NONE;
    return true;
}

static void rs_unroot(ref_scan *rs) { rs->rooted[rs->lx.depth] = false; }

/* After `.<root>`: the step or input name in `.NAME`, `."NAME"` or
 * `["NAME"]` (blanks allowed between tokens; a string with an escape is not
 * read).  Returns its length, *at its start; 0 when none. */
static size_t ref_name(const lexer *lx, size_t i, size_t *at) {
    lexer probe = *lx;
    probe.i = i;
    skip_blanks(&probe);
    i = probe.i;
    bool bracket = i < lx->len && lx->p[i] == '[';
    if (!bracket && !(i < lx->len && lx->p[i] == '.')) return 0;
    probe.i = i + 1;
    if (bracket) skip_blanks(&probe);
    i = probe.i;
    if (!bracket && i < lx->len && is_name_start(lx->p[i])) {
        *at = i;
        size_t end = i;
        while (end < lx->len && is_name_byte(lx->p[end])) end++;
        return end - i;
    }
    if (i >= lx->len || lx->p[i] != '"') return 0;
    size_t end = i + 1;
    while (end < lx->len && lx->p[end] != '"' && lx->p[end] != '\\') end++;
    if (end >= lx->len || lx->p[end] != '"' || end == i + 1) return 0;
    probe.i = end + 1;
    if (bracket) {
        skip_blanks(&probe);
        if (probe.i >= lx->len || lx->p[probe.i] != ']') return 0;
    }
    *at = i + 1;
    return end - i - 1;
}

/* At a `.` in code. */
static void rs_dot(ref_scan *rs) {
    lexer *lx = &rs->lx;
    size_t i = lx->i + 1;
    if (i < lx->len && lx->p[i] == '.') {                 /* `..`: recursion */
        rs_unroot(rs);
        lx->i = i;
    } else if (i < lx->len && lx->p[i] >= '0' && lx->p[i] <= '9') {
        while (i < lx->len && (is_name_byte(lx->p[i]) || lx->p[i] == '.')) i++;
        lx->i = i - 1;                                    /* `.5`: a number */
    } else if (i < lx->len && is_name_start(lx->p[i])) {
        size_t end = i;
        while (end < lx->len && is_name_byte(lx->p[end])) end++;
        size_t at = 0, n;
        if (rs->prev != PREV_TERM && rs->rooted[lx->depth] && same_name(lx, i, end, rs->root) &&
            (n = ref_name(lx, end, &at)) > 0)
            rs->cb(rs->ctx, lx->p + at, n);
        lx->i = end - 1;
    }
    rs->prev = PREV_TERM;
}

/* Keywords that hand their operands the input they were given. */
static bool keeps_input(const lexer *lx, size_t start, size_t end) {
    static const char *const kw[] = {"if", "then", "elif", "else", "end", "and", "or"};
    for (size_t k = 0; k < sizeof kw / sizeof kw[0]; k++)
        if (same_name(lx, start, end, kw[k])) return true;
    return false;
}

/* At a name in code: a keyword that keeps `.`, an object key, or anything
 * else (a call, reduce, def, try...), after which `.` may be another value. */
static void rs_name(ref_scan *rs) {
    lexer *lx = &rs->lx;
    size_t start = lx->i, end = name_end(lx, start);
    lx->i = end - 1;
    bool key = lex_top(lx) == '{' && (rs->before == '{' || rs->before == ',');
    if (keeps_input(lx, start, end)) {
        rs->prev = same_name(lx, start, end, "end") ? PREV_TERM : PREV_NONE;
        return;
    }
    if (!key) rs_unroot(rs);
    rs->prev = PREV_TERM;
}

/* At an operator byte: comparisons, arithmetic, `,`, `:` and `//` keep `.`;
 * `|`, assignments, `;`, `?//` and anything unknown may not. */
static void rs_operator(ref_scan *rs, char c) {
    lexer *lx = &rs->lx;
    char next = lx->i + 1 < lx->len ? lx->p[lx->i + 1] : 0;
    if (c == '?') {
        if (next == '/') rs_unroot(rs);
        else rs->prev = PREV_TERM;
        return;
    }
    size_t n = c == '/' && next == '/' ? 2 : 1;
    char after = lx->i + n < lx->len ? lx->p[lx->i + n] : 0;
    bool keeps;
    if (n == 1 && after == '=' && strchr("=!<>", c)) {
        keeps = true;                                     /* ==, !=, <=, >= */
        n = 2;
    } else if (after == '=') {
        keeps = false;                                    /* =, |=, +=, //=... */
        n++;
    } else {
        keeps = c != '=' && strchr(",:<>+-*/%", c) != NULL;
    }
    lx->i += n - 1;
    if (!keeps) rs_unroot(rs);
    rs->prev = PREV_NONE;
}

static void rs_code_byte(ref_scan *rs, char c) {
    lexer *lx = &rs->lx;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '#') {
        if (c == '#') lex_code_byte(lx, 0);
    } else if (c == '"' || c == '(' || c == '[' || c == '{') {
        rs_push(rs, c);
    } else if (c == ')' || c == ']' || c == '}') {
        lx->depth--;
        rs->prev = PREV_TERM;
    } else if (c == '.') {
        rs_dot(rs);
    } else if (c == '$') {
        lex_variable(lx);
        rs->prev = PREV_TERM;
    } else if (c == '@') {                                /* a format */
        rs_unroot(rs);
        lx->i = name_end(lx, lx->i + 1) - 1;
        rs->prev = PREV_TERM;
    } else if (is_name_start(c)) {
        rs_name(rs);
    } else if (c >= '0' && c <= '9') {
        while (lx->i + 1 < lx->len && (is_name_byte(lx->p[lx->i + 1]) || lx->p[lx->i + 1] == '.'))
            lx->i++;
        rs->prev = PREV_TERM;
    } else {
        rs_operator(rs, c);
    }
}

void cairn__exprlex_refs(const char *prog, size_t len, const char *root,
                         cairn_expr_ref_cb cb, void *ctx) {
    if (cairn__exprlex_check(prog, len) != NULL) return;
    ref_scan rs = {.lx = {.p = prog, .len = len}, .root = root, .cb = cb, .ctx = ctx};
    rs.rooted[0] = true;
    for (rs.lx.i = 0; rs.lx.i < len; rs.lx.i++) {
        char c = prog[rs.lx.i];
        if (lex_top(&rs.lx) == LEX_STRING) {
            bool closes = c == '"';
            if (c == '\\' && rs.lx.i + 1 < len && prog[rs.lx.i + 1] == '(') {
                rs.lx.i++;
                rs_push(&rs, LEX_INTERP);
            } else if (c == '\\') {
                rs.lx.i++;
            } else if (closes) {
                rs.lx.depth--;
                rs.prev = PREV_TERM;
            }
            continue;
        }
        rs_code_byte(&rs, c);
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '#') rs.before = c;
    }
}
