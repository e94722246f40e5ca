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

static bool is_ident_byte(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == ':';
}

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

/* At a `$` in code: is the variable named ENV?  jq 1.6 lexes `$` and the
 * name as two tokens, so `$ ENV` and `$#...\nENV` name it too. */
static bool names_env(lexer *lx) {
    lexer probe = *lx;
    probe.i++;
    skip_blanks(&probe);
    size_t start = probe.i;
    while (probe.i < probe.len && is_ident_byte(probe.p[probe.i])) probe.i++;
    return probe.i - start == 3 && memcmp(probe.p + start, "ENV", 3) == 0;
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

/* One token start in code. */
static const char *lex_code_byte(lexer *lx) {
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
        return names_env(lx) ? "$ENV is not available in expressions: use .env, the workflow's "
                               "env map"
                             : NULL;
    default:
        return NULL;
    }
}

const char *cairn__exprlex_check(const char *prog, size_t len) {
    lexer lx = {.p = prog, .len = len};
    for (lx.i = 0; lx.i < len; lx.i++) {
        const char *msg = lex_top(&lx) == LEX_STRING ? lex_string_byte(&lx) : lex_code_byte(&lx);
        if (msg) return msg;
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
