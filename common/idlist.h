/*
 * idlist.h - ascending 64-bit ids packed as varint deltas.
 *
 * Each id is written as its difference from the one before (the first from
 * 0) in LEB128: 7 bits a byte, low bits first, the high bit set on every
 * byte but the last.  Ids a few apart take one byte each, which is what the
 * journal's event index stores: the ids of one run's events in a stretch of
 * the journal.
 *
 * Memory: cairn_idlist_put appends to a caller's cairn_buf.
 */
#ifndef CAIRN_IDLIST_H
#define CAIRN_IDLIST_H

#include <stddef.h>
#include <stdint.h>

#include "common/mem.h"

/* Append id, which must be greater than prev (the list's last id, or 0). */
void cairn_idlist_put(cairn_buf *b, int64_t prev, int64_t id);

/* Decode the next id from p[*pos..n) after prev: 0 and *id set, *pos moved;
 * -1 at the end of the list or on bytes that are not a list. */
int cairn_idlist_next(const unsigned char *p, size_t n, size_t *pos, int64_t prev, int64_t *id);

/* How many ids the list p[0..n) holds; -1 when the bytes are not a list. */
long cairn_idlist_count(const unsigned char *p, size_t n);

#endif
