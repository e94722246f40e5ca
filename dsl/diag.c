/*
 * diag.c - collect load-time diagnostics and render them with a caret.
 *
 * An exact duplicate of a kept diagnostic is not added twice: a default that
 * is copied into many steps (defaults.retry.until) may otherwise report the
 * same faulty expression once per step.
 */
#include "dsl/diag.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

static bool diag_seen(const cairn_diags *d, const char *file, int line, int col,
                      const char *msg) {
    for (int i = 0; i < d->count; i++) {
        const cairn_diag *x = &d->items[i];
        if (x->line == line && x->col == col && strcmp(x->msg, msg) == 0 &&
            strcmp(x->file, file) == 0)
            return true;
    }
    return false;
}

void cairn_diags_add(cairn_diags *d, const char *file, int line, int col,
                     const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *msg = cairn_malloc(n > 0 ? (size_t)n + 1 : 1);
    va_start(ap, fmt);
    vsnprintf(msg, n > 0 ? (size_t)n + 1 : 1, fmt, ap);
    va_end(ap);
    if (file == NULL) file = "";
    if (diag_seen(d, file, line, col, msg)) {
        free(msg);
        return;
    }
    if (d->count >= CAIRN_DIAGS_MAX) {
        d->dropped++;
        free(msg);
        return;
    }
    if (d->count == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->items = cairn_realloc(d->items, (size_t)d->cap * sizeof *d->items);
    }
    d->items[d->count++] = (cairn_diag){cairn_strdup(file), line, col, msg};
}

int cairn_diags_count(const cairn_diags *d) { return d ? d->count + d->dropped : 0; }

static bool diag_before(const cairn_diag *a, const cairn_diag *b) {
    return a->line < b->line || (a->line == b->line && a->col < b->col);
}

/* Insertion sort: stable, and the list holds at most CAIRN_DIAGS_MAX. */
void cairn_diags_sort(cairn_diags *d, int from) {
    for (int i = from + 1; i < d->count; i++) {
        cairn_diag x = d->items[i];
        int j = i;
        for (; j > from && diag_before(&x, &d->items[j - 1]); j--) d->items[j] = d->items[j - 1];
        d->items[j] = x;
    }
}

/* Offsets of the start of every line of src, for quick access by number. */
static size_t *line_starts(const char *src, size_t len, int *nlines) {
    int n = 1;
    for (size_t i = 0; i < len; i++) n += src[i] == '\n';
    size_t *starts = cairn_malloc((size_t)n * sizeof *starts);
    int k = 0;
    starts[k++] = 0;
    for (size_t i = 0; i < len; i++)
        if (src[i] == '\n') starts[k++] = i + 1;
    *nlines = n;
    return starts;
}

/* The byte offset of character column col (1-based) in line, or len. */
static size_t column_offset(const char *line, size_t len, int col) {
    int c = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)line[i] & 0xC0) != 0x80 && ++c == col) return i;
    return len;
}

/* The source line, then a caret under column col (counted in characters;
 * tabs are repeated so the caret lines up in a terminal).  A line longer
 * than CAIRN_DIAG_LINE_MAX bytes is shown as a window of that many bytes
 * around the column, its cut ends marked "...". */
static void print_caret(FILE *out, const char *line, size_t len, int col) {
    if (len > 0 && line[len - 1] == '\r') len--;
    size_t at = column_offset(line, len, col), from = 0, to = len;
    if (len > CAIRN_DIAG_LINE_MAX) {
        from = at > CAIRN_DIAG_LINE_MAX / 2 ? at - CAIRN_DIAG_LINE_MAX / 2 : 0;
        while (from > 0 && ((unsigned char)line[from] & 0xC0) == 0x80) from--;
        to = from + CAIRN_DIAG_LINE_MAX < len ? from + CAIRN_DIAG_LINE_MAX : len;
        while (to < len && ((unsigned char)line[to] & 0xC0) == 0x80) to--;
    }
    const char *pre = from > 0 ? "..." : "", *post = to < len ? "..." : "";
    fprintf(out, "  %s%.*s%s\n  %s", pre, (int)(to - from), line + from, post,
            from > 0 ? "   " : "");
    for (size_t i = from; i < at && i < to; i++) {
        unsigned char ch = (unsigned char)line[i];
        if ((ch & 0xC0) == 0x80) continue;      /* UTF-8 continuation byte */
        fputc(ch == '\t' ? '\t' : ' ', out);
    }
    if (at == len) {                            /* a column past the end: just after it */
        int c = 1;
        for (size_t i = 0; i < len; i++) c += ((unsigned char)line[i] & 0xC0) != 0x80;
        if (c < col && to == len) fputc(' ', out);
    }
    fputs("^\n", out);
}

static void print_one(const cairn_diag *x, FILE *out, const char *word, const char *src,
                      size_t len, const size_t *starts, int nlines) {
    if (x->line <= 0) {
        fprintf(out, "%s: %s: %s\n", x->file, word, x->msg);
        return;
    }
    fprintf(out, "%s:%d:%d: %s: %s\n", x->file, x->line, x->col, word, x->msg);
    if (src == NULL || x->line > nlines) return;
    size_t a = starts[x->line - 1];
    size_t b = x->line < nlines ? starts[x->line] - 1 : len;
    print_caret(out, src + a, b - a, x->col);
}

/* The one source cairn_diags_print is given, whatever the file. */
typedef struct one_source {
    const char *src;
    size_t len;
} one_source;

static const char *the_source(void *ud, const char *file, size_t *len) {
    (void)file;
    one_source *o = ud;
    *len = o->len;
    return o->src;
}

void cairn_diags_print(const cairn_diags *d, FILE *out, const char *src, size_t len) {
    one_source o = {src, len};
    cairn_diags_print_each(d, out, "error", the_source, &o);
}

void cairn_diags_print_each(const cairn_diags *d, FILE *out, const char *word,
                            cairn_diag_source source, void *ud) {
    if (d == NULL) return;
    const char *file = NULL, *src = NULL;
    size_t len = 0, *starts = NULL;
    int nlines = 0;
    for (int i = 0; i < d->count; i++) {
        const cairn_diag *x = &d->items[i];
        if (file == NULL || strcmp(file, x->file) != 0) {   /* lines of another file */
            free(starts);
            file = x->file;
            src = source(ud, file, &len);
            starts = src ? line_starts(src, len, &nlines) : NULL;
        }
        print_one(x, out, word, src, len, starts, nlines);
    }
    if (d->dropped)
        fprintf(out, "... and %d more %s%s\n", d->dropped, word, d->dropped == 1 ? "" : "s");
    free(starts);
}

int cairn_diags_to_err(const cairn_diags *d, cairn_err *err) {
    if (d == NULL || d->count == 0) return 0;
    const cairn_diag *x = &d->items[0];
    return cairn_err_at(err, CAIRN_ESYNTAX, x->file, x->line, x->col, "%s", x->msg);
}

void cairn_diags_free(cairn_diags *d) {
    if (d == NULL) return;
    for (int i = 0; i < d->count; i++) {
        free(d->items[i].file);
        free(d->items[i].msg);
    }
    free(d->items);
    *d = (cairn_diags)CAIRN_DIAGS_INIT;
}
