/*
 * diag.h - a list of load-time diagnostics, each at file:line:col.
 *
 * The loader reports every error it can find, not only the first.  Rendering
 * prints each as "file:line:col: error: message", then the source line and a
 * caret under the column (when the source is known).  The list owns its
 * strings; cairn_diags_free(NULL) does nothing.
 */
#ifndef CAIRN_DIAG_H
#define CAIRN_DIAG_H

#include <stddef.h>
#include <stdio.h>

#include "common/err.h"

#define CAIRN_DIAGS_MAX 200   /* more are counted but not kept */
#define CAIRN_DIAG_LINE_MAX 160   /* bytes of a long source line shown, around the caret */

typedef struct cairn_diag {
    char *file;
    int line, col;      /* 1-based */
    char *msg;
} cairn_diag;

typedef struct cairn_diags {
    cairn_diag *items;
    int count;          /* kept */
    int dropped;        /* past CAIRN_DIAGS_MAX */
    int cap;
} cairn_diags;

#define CAIRN_DIAGS_INIT {NULL, 0, 0, 0}

void cairn_diags_add(cairn_diags *d, const char *file, int line, int col,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int cairn_diags_count(const cairn_diags *d);   /* count + dropped */

/* Order the diagnostics from index `from` on by line and column (stable), so
 * that a file's errors read top to bottom whatever order they were found in. */
void cairn_diags_sort(cairn_diags *d, int from);

/* Print every diagnostic to out.  src/len (may be NULL) is the text of the file
 * the diagnostics name, for the source line and caret. */
void cairn_diags_print(const cairn_diags *d, FILE *out, const char *src, size_t len);

/* The text of the file a diagnostic names (borrowed; *len bytes), or NULL
 * when it is not known. */
typedef const char *(*cairn_diag_source)(void *ud, const char *file, size_t *len);

/* As cairn_diags_print, each diagnostic with the source of its own file,
 * and `word` ("error", "warning") after the position. */
void cairn_diags_print_each(const cairn_diags *d, FILE *out, const char *word,
                            cairn_diag_source source, void *ud);

/* Copy the first diagnostic into err (as CAIRN_ESYNTAX); returns CAIRN_ESYNTAX,
 * or 0 if there is none. */
int cairn_diags_to_err(const cairn_diags *d, cairn_err *err);

void cairn_diags_free(cairn_diags *d);

#endif
