#include "mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n) {
    fprintf(stderr, "cairn: out of memory (allocating %zu bytes)\n", n);
    abort();
}

void *cairn_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (p == NULL) oom(n);
    return p;
}

/* glibc's calloc never takes a block from the thread's cache (tcache), so a
 * small one costs a trip through the arena: a small block is taken with
 * malloc and zeroed here.  A large one keeps calloc, which may get zeroed
 * pages from the system without writing them. */
#define SMALL_CALLOC 1024

void *cairn_calloc(size_t n, size_t size) {
    if (n != 0 && size != 0 && size <= SMALL_CALLOC / n) {
        void *p = cairn_malloc(n * size);
        return memset(p, 0, n * size);
    }
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL) oom(n * size);
    return p;
}

void *cairn_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) oom(n);
    return q;
}

char *cairn_strndup(const char *s, size_t n) {
    char *p = cairn_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *cairn_strdup(const char *s) {
    return s ? cairn_strndup(s, strlen(s)) : NULL;
}

char *cairn_sprintf(const char *fmt, ...) {
    cairn_buf b = CAIRN_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n < sizeof small) return cairn_strndup(small, (size_t)n);
    b.data = cairn_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b.data, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return b.data;
}

void cairn_buf_reserve(cairn_buf *b, size_t extra) {
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    b->data = cairn_realloc(b->data, cap);
    b->cap = cap;
}

void cairn_buf_append(cairn_buf *b, const void *p, size_t n) {
    cairn_buf_reserve(b, n);
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void cairn_buf_puts(cairn_buf *b, const char *s) { cairn_buf_append(b, s, strlen(s)); }

void cairn_buf_putc_slow(cairn_buf *b, char c) { cairn_buf_append(b, &c, 1); }

void cairn_buf_printf(cairn_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0) return;
    cairn_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void cairn_buf_put_ll(cairn_buf *b, long long v) {
    char num[24], *p = num + sizeof num;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    cairn_buf_append(b, p, (size_t)(num + sizeof num - p));
}

void cairn_buf_reset(cairn_buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

char *cairn_buf_detach(cairn_buf *b) {
    char *s = b->data ? b->data : cairn_strdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}

void cairn_buf_free(cairn_buf *b) {
    if (b == NULL) return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
