/*
 * idlist.c - ascending ids as LEB128 deltas.
 */
#include "common/idlist.h"

void cairn_idlist_put(cairn_buf *b, int64_t prev, int64_t id) {
    uint64_t d = (uint64_t)(id - prev);
    unsigned char out[10];
    size_t n = 0;
    do {
        out[n] = (unsigned char)(d & 0x7f);
        d >>= 7;
        if (d) out[n] |= 0x80;
        n++;
    } while (d);
    cairn_buf_append(b, out, n);
}

int cairn_idlist_next(const unsigned char *p, size_t n, size_t *pos, int64_t prev, int64_t *id) {
    uint64_t d = 0;
    for (int shift = 0; *pos < n && shift < 64; shift += 7) {
        unsigned char c = p[(*pos)++];
        d |= (uint64_t)(c & 0x7f) << shift;
        if ((c & 0x80) == 0) {
            if (d == 0 || d > (uint64_t)INT64_MAX - (uint64_t)prev) return -1;
            *id = prev + (int64_t)d;
            return 0;
        }
    }
    return -1;
}

long cairn_idlist_count(const unsigned char *p, size_t n) {
    size_t pos = 0;
    int64_t id = 0;
    long count = 0;
    while (pos < n) {
        if (cairn_idlist_next(p, n, &pos, id, &id) != 0) return -1;
        count++;
    }
    return count;
}
