/*
 * mem.h - allocation that never returns NULL, and a growable byte buffer.
 *
 * Cairn's out-of-memory policy is chosen here, once: an allocation failure
 * prints a message and aborts (as Redis does).  A workflow engine that cannot
 * allocate cannot journal either; the write-ahead journal makes the abort safe,
 * since the next start resumes every run where its journal stands.
 *
 * cairn_buf owns its bytes; data is always NUL-terminated (len excludes it).
 */
#ifndef CAIRN_MEM_H
#define CAIRN_MEM_H

#include <stddef.h>

void *cairn_malloc(size_t n);
void *cairn_calloc(size_t n, size_t size);
void *cairn_realloc(void *p, size_t n);
char *cairn_strdup(const char *s);
char *cairn_strndup(const char *s, size_t n);
/* printf into a new string owned by the caller. */
char *cairn_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

typedef struct cairn_buf {
    char *data;
    size_t len, cap;
} cairn_buf;

#define CAIRN_BUF_INIT {NULL, 0, 0}

/* Make room for extra more bytes (and the NUL) without writing them. */
void cairn_buf_reserve(cairn_buf *b, size_t extra);
void cairn_buf_append(cairn_buf *b, const void *p, size_t n);
void cairn_buf_puts(cairn_buf *b, const char *s);
void cairn_buf_putc_slow(cairn_buf *b, char c);
/* One byte: inline while it fits, as event texts are written a byte at a time. */
static inline void cairn_buf_putc(cairn_buf *b, char c) {
    if (b->len + 2 > b->cap) {
        cairn_buf_putc_slow(b, c);
        return;
    }
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}
/* Append v in decimal, as "%lld" writes it, without printf's cost. */
void cairn_buf_put_ll(cairn_buf *b, long long v);
void cairn_buf_printf(cairn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cairn_buf_reset(cairn_buf *b);       /* len = 0, keeps the memory */
char *cairn_buf_detach(cairn_buf *b);     /* caller owns the string; b is emptied */
void cairn_buf_free(cairn_buf *b);        /* NULL is allowed */

#endif
