/*
 * shlex.c - placing splices in a shell script's quoting (shlex.h).
 *
 * One pass over the script with a stack of frames, one per open quote or
 * substitution.  At each byte the top frame decides what the byte means;
 * splices are placed as the pass reaches their offsets, from the whole
 * stack (a splice anywhere under backquotes, ${ } or arithmetic is refused,
 * however deep).  Here-documents are queued when their operator is read
 * and their bodies begin after the next newline of a plain frame, in
 * order, each as a frame of its own that ends at its delimiter line.
 */
#include "dsl/shlex.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef enum {
    F_TOP,        /* the script: plain */
    F_CMDSUB,     /* $( ): plain, ends at its ) */
    F_DQ,         /* " " and $" " */
    F_SQ,         /* ' ' */
    F_ANSI,       /* $' ' */
    F_BACKQ,      /* ` ` */
    F_PARAM,      /* ${ } */
    F_ARITH,      /* $(( )), (( )), $[ ] */
    F_DOC,        /* an unquoted here-document's body */
    F_DOC_Q       /* a quoted one */
} frame_kind;

typedef struct frame {
    frame_kind kind;
    int depth;    /* ( or { nesting inside the frame */
    char close;   /* F_ARITH: ')' or ']' */
} frame;

#define DELIM_MAX 256

typedef struct heredoc {
    char delim[DELIM_MAX];
    size_t dlen;
    bool quoted, strip_tabs;
} heredoc;

typedef struct lexer {
    const char *s;
    size_t len;
    const size_t *marks;
    int n, next;                        /* the next splice to place */
    cairn_shctx *ctx;
    frame stack[CAIRN_SHLEX_DEPTH_MAX];
    int top;
    bool word_start;                    /* a plain frame is at the start of a word */
    bool comment;                       /* a plain frame is in a comment */
    bool bol;                           /* a here-document is at the start of a line */
    heredoc docs[CAIRN_SHLEX_HEREDOCS_MAX];
    int ndocs, doc_at;                  /* queued, and the one whose body is read */
    cairn_shlex_err *err;
} lexer;

#define FAIL ((size_t)-1)

static size_t fail(lexer *L, size_t at, const char *why) {
    L->err->offset = at;
    snprintf(L->err->why, sizeof L->err->why, "%s", why);
    return FAIL;
}

static frame *top(lexer *L) { return &L->stack[L->top]; }

static size_t push(lexer *L, frame_kind kind, char close, size_t next) {
    if (L->top + 1 == CAIRN_SHLEX_DEPTH_MAX)
        return fail(L, next, "quotes and substitutions nest too deeply to be placed");
    L->stack[++L->top] = (frame){kind, 0, close};
    L->word_start = kind == F_CMDSUB;
    L->comment = false;
    return next;
}

static size_t pop(lexer *L, size_t next) {
    L->top--;
    L->word_start = false;
    return next;
}

/* Is a splice at offset at? */
static bool mark_at(const lexer *L, size_t at) {
    return L->next < L->n && L->marks[L->next] == at;
}

/* ---- placing splices -------------------------------------------------------- */

static const char *refused(frame_kind k) {
    switch (k) {
    case F_BACKQ:
        return "a value cannot be spliced inside backquotes, whose text the shell reads "
               "again: use $( ) instead";
    case F_PARAM:
        return "a value cannot be spliced inside ${ }: set a variable from it first";
    case F_ARITH:
        return "a value cannot be spliced into arithmetic ($(( )), (( )), $[ ]), which "
               "evaluates its text as an expression: assign it to a variable and check it "
               "first";
    case F_DOC_Q:
        return "a value cannot be spliced into a quoted here-document (<<'EOF'), where "
               "nothing is expanded: unquote the delimiter";
    default:
        return NULL;
    }
}

static int place(lexer *L, size_t at) {
    while (mark_at(L, at)) {
        for (int f = L->top; f >= 0; f--) {
            const char *why = refused(L->stack[f].kind);
            if (why) {
                fail(L, at, why);
                return -1;
            }
        }
        cairn_shctx c;
        switch (top(L)->kind) {
        case F_DQ: c = CAIRN_SHCTX_DQUOTE; break;
        case F_SQ: c = CAIRN_SHCTX_SQUOTE; break;
        case F_ANSI: c = CAIRN_SHCTX_ANSI; break;
        case F_DOC: c = CAIRN_SHCTX_HEREDOC; break;
        default: c = L->comment ? CAIRN_SHCTX_COMMENT : CAIRN_SHCTX_PLAIN; break;
        }
        L->ctx[L->next++] = c;
        L->word_start = false;
    }
    return 0;
}

/* ---- here-documents ------------------------------------------------------- */

/* The delimiter word after << or <<- at i; queues the document. */
static size_t heredoc_op(lexer *L, size_t i) {
    const char *s = L->s;
    heredoc d = {.strip_tabs = i < L->len && s[i] == '-'};
    if (d.strip_tabs) i++;
    while (i < L->len && (s[i] == ' ' || s[i] == '\t')) i++;
    size_t start = i;
    while (i < L->len && !strchr(" \t\n;&|<>()", s[i])) {
        char q = s[i];
        if (q == '\'' || q == '"') {
            d.quoted = true;
            for (i++; i < L->len && s[i] != q; i++)
                if (d.dlen < DELIM_MAX - 1) d.delim[d.dlen++] = s[i];
            i += i < L->len;
        } else if (q == '\\') {
            d.quoted = true;
            if (++i < L->len && d.dlen < DELIM_MAX - 1) d.delim[d.dlen++] = s[i];
            i += i < L->len;
        } else {
            if (d.dlen < DELIM_MAX - 1) d.delim[d.dlen++] = q;
            i++;
        }
    }
    if (L->next < L->n && L->marks[L->next] >= start && L->marks[L->next] <= i)
        return fail(L, L->marks[L->next], "a here-document's delimiter must be literal text, "
                                          "not a spliced value");
    if (i == start) return i;           /* no word: the shell reports it */
    if (L->ndocs == CAIRN_SHLEX_HEREDOCS_MAX)
        return fail(L, start, "too many here-documents opened on one line");
    L->docs[L->ndocs++] = d;
    L->word_start = true;
    return i;
}

static bool in_doc(const lexer *L) {
    for (int f = 0; f <= L->top; f++)
        if (L->stack[f].kind == F_DOC || L->stack[f].kind == F_DOC_Q) return true;
    return false;
}

/* A newline ends a command line: the next queued body begins after it. */
static size_t newline(lexer *L, size_t i) {
    L->comment = false;
    L->word_start = true;
    if (L->doc_at < L->ndocs && !in_doc(L)) {
        size_t r = push(L, L->docs[L->doc_at].quoted ? F_DOC_Q : F_DOC, 0, i + 1);
        L->bol = true;
        return r;
    }
    return i + 1;
}

/* At the start of a body's line: is it the delimiter?  Then the body ends
 * (and the next queued one begins) after it.  A line with a splice never
 * is. */
static size_t doc_line(lexer *L, size_t i) {
    const heredoc *d = &L->docs[L->doc_at];
    const char *nl = memchr(L->s + i, '\n', L->len - i);
    size_t end = nl ? (size_t)(nl - L->s) : L->len, from = i;
    L->bol = false;
    if (d->strip_tabs)
        while (from < end && L->s[from] == '\t') from++;
    bool splice = L->next < L->n && L->marks[L->next] <= end;
    if (splice || end - from != d->dlen || memcmp(L->s + from, d->delim, d->dlen) != 0)
        return i;
    pop(L, 0);
    if (++L->doc_at == L->ndocs) L->ndocs = L->doc_at = 0;
    else {
        push(L, L->docs[L->doc_at].quoted ? F_DOC_Q : F_DOC, 0, 0);
        L->bol = true;
    }
    L->word_start = true;
    return nl ? end + 1 : end;
}

/* ---- the frames ------------------------------------------------------------ */

/* `$` at i outside single quotes: what it opens. */
static size_t dollar(lexer *L, size_t i, bool quoted) {
    const char *s = L->s;
    if (mark_at(L, i + 1))
        return fail(L, i, "a `$` right before a spliced value would change it: remove it");
    char c = i + 1 < L->len ? s[i + 1] : '\0';
    if (c == '(' && i + 2 < L->len && s[i + 2] == '(') return push(L, F_ARITH, ')', i + 3);
    if (c == '(') return push(L, F_CMDSUB, 0, i + 2);
    if (c == '{') return push(L, F_PARAM, 0, i + 2);
    if (c == '[') return push(L, F_ARITH, ']', i + 2);
    if (!quoted && c == '\'') return push(L, F_ANSI, 0, i + 2);
    if (!quoted && c == '"') return push(L, F_DQ, 0, i + 2);
    L->word_start = false;
    return i + 1;
}

/* A backslash at i escapes what follows; a splice may not follow it. */
static size_t backslash(lexer *L, size_t i, size_t skip) {
    if (mark_at(L, i + 1))
        return fail(L, i, "a backslash right before a spliced value would escape it: "
                          "remove it");
    L->word_start = false;
    return i + skip;
}

static size_t step_plain(lexer *L, size_t i) {
    const char *s = L->s;
    char c = s[i], next = i + 1 < L->len ? s[i + 1] : '\0';
    frame *f = top(L);
    if (c == '\n') return newline(L, i);
    if (L->comment) return i + 1;
    switch (c) {
    case '\\': return backslash(L, i, next ? 2 : 1);
    case '\'': return push(L, F_SQ, 0, i + 1);
    case '"': return push(L, F_DQ, 0, i + 1);
    case '`': return push(L, F_BACKQ, 0, i + 1);
    case '$': return dollar(L, i, false);
    case '#':
        if (L->word_start) L->comment = true;
        return i + 1;
    case '(':
        if (L->word_start && next == '(') return push(L, F_ARITH, ')', i + 2);
        f->depth++;
        L->word_start = true;
        return i + 1;
    case ')':
        if (f->kind == F_CMDSUB && f->depth == 0) return pop(L, i + 1);
        if (f->depth > 0) f->depth--;
        L->word_start = true;
        return i + 1;
    case '<':
        if (next == '<' && i + 2 < L->len && s[i + 2] == '<') {
            L->word_start = true;
            return i + 3;                  /* a here-string: its word is plain */
        }
        if (next == '<') return heredoc_op(L, i + 2);
        L->word_start = true;
        return i + 1;
    case ' ': case '\t': case ';': case '&': case '|': case '>':
        L->word_start = true;
        return i + 1;
    default:
        L->word_start = false;
        return i + 1;
    }
}

static size_t step_dq(lexer *L, size_t i) {
    char c = L->s[i], next = i + 1 < L->len ? L->s[i + 1] : '\0';
    switch (c) {
    case '"': return pop(L, i + 1);
    case '\\': return backslash(L, i, next && strchr("$`\"\\\n", next) ? 2 : 1);
    case '$': return dollar(L, i, true);
    case '`': return push(L, F_BACKQ, 0, i + 1);
    default: return i + 1;
    }
}

static size_t step_doc(lexer *L, size_t i) {
    char c = L->s[i], next = i + 1 < L->len ? L->s[i + 1] : '\0';
    switch (c) {
    case '\n': L->bol = true; return i + 1;
    case '\\': return backslash(L, i, next && strchr("$`\\\n", next) ? 2 : 1);
    case '$': return dollar(L, i, true);
    case '`': return push(L, F_BACKQ, 0, i + 1);
    default: return i + 1;
    }
}

static size_t step_doc_quoted(lexer *L, size_t i) {
    if (L->s[i] == '\n') L->bol = true;
    return i + 1;
}

/* ${ } and arithmetic: nested quotes and substitutions are followed so that
 * the frame ends where the shell's does. */
static size_t step_nested(lexer *L, size_t i) {
    frame *f = top(L);
    char c = L->s[i], next = i + 1 < L->len ? L->s[i + 1] : '\0';
    switch (c) {
    case '\\': return i + (next ? 2 : 1);
    case '\'': return push(L, F_SQ, 0, i + 1);
    case '"': return push(L, F_DQ, 0, i + 1);
    case '`': return push(L, F_BACKQ, 0, i + 1);
    case '$': return dollar(L, i, false);
    case '{': case '(':
        f->depth++;
        return i + 1;
    case '}':
        if (f->kind == F_PARAM && f->depth == 0) return pop(L, i + 1);
        if (f->depth > 0) f->depth--;
        return i + 1;
    case ')':
        if (f->kind == F_ARITH && f->close == ')' && f->depth == 0 && next == ')')
            return pop(L, i + 2);
        if (f->depth > 0) f->depth--;
        return i + 1;
    case ']':
        if (f->kind == F_ARITH && f->close == ']' && f->depth == 0) return pop(L, i + 1);
        return i + 1;
    default:
        return i + 1;
    }
}

static size_t step(lexer *L, size_t i) {
    char c = L->s[i];
    frame_kind k = top(L)->kind;
    if ((k == F_DOC || k == F_DOC_Q) && L->bol) {
        size_t r = doc_line(L, i);     /* the delimiter line ends the body */
        if (r != i) return r;
    }
    switch (k) {
    case F_TOP: case F_CMDSUB: return step_plain(L, i);
    case F_DQ: return step_dq(L, i);
    case F_SQ: return c == '\'' ? pop(L, i + 1) : i + 1;
    case F_ANSI:
        if (c == '\\') return backslash(L, i, i + 1 < L->len ? 2 : 1);
        return c == '\'' ? pop(L, i + 1) : i + 1;
    case F_BACKQ:
        if (c == '\\') return i + (i + 1 < L->len ? 2 : 1);
        return c == '`' ? pop(L, i + 1) : i + 1;
    case F_DOC: return step_doc(L, i);
    case F_DOC_Q: return step_doc_quoted(L, i);
    default: return step_nested(L, i);
    }
}

int cairn_shlex_place(const char *script, size_t len, const size_t *marks, int n,
                      cairn_shctx *ctx, cairn_shlex_err *err) {
    lexer L = {.s = script, .len = len, .marks = marks, .n = n, .ctx = ctx, .err = err,
               .word_start = true};
    L.stack[0] = (frame){F_TOP, 0, 0};
    size_t i = 0;
    for (;;) {
        if (place(&L, i) != 0) return -1;
        if (i >= len) break;
        size_t j = step(&L, i);
        if (j == FAIL) return -1;
        if (L.next < n && marks[L.next] > i && marks[L.next] < j) {
            fail(&L, marks[L.next], "a spliced value would split a shell token here");
            return -1;
        }
        i = j;
    }
    return 0;
}

void cairn_shlex_reference(cairn_buf *b, cairn_shctx ctx, const char *name) {
    switch (ctx) {
    case CAIRN_SHCTX_PLAIN: cairn_buf_printf(b, "\"${%s}\"", name); break;
    case CAIRN_SHCTX_SQUOTE: cairn_buf_printf(b, "'\"${%s}\"'", name); break;
    case CAIRN_SHCTX_ANSI: cairn_buf_printf(b, "'\"${%s}\"$'", name); break;
    default: cairn_buf_printf(b, "${%s}", name); break;
    }
}
