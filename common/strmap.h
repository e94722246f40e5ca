/*
 * strmap.h - a hash map from strings to 64-bit integers.
 *
 * Open addressing with linear probing (FNV-1a); removal shifts the entries
 * after a hole back, so lookups never meet tombstones and a map whose keys
 * come and go stays as fast as a fresh one.  The table doubles when it is
 * half full; it does not shrink (cairn_strmap_clear empties it).
 *
 * Memory: the map copies each key and owns the copies; values are plain
 * integers.  Not thread-safe: one thread uses a map at a time.
 */
#ifndef CAIRN_STRMAP_H
#define CAIRN_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cairn_strmap cairn_strmap;

cairn_strmap *cairn_strmap_new(void);
void cairn_strmap_free(cairn_strmap *m);                 /* NULL is allowed */

/* True, with *value set, when key is in the map. */
bool cairn_strmap_get(const cairn_strmap *m, const char *key, int64_t *value);
/* Where key's value is kept, to read or change in place; NULL when key is
 * not in the map.  Valid until the map next changes (put, remove, clear). */
int64_t *cairn_strmap_ref(cairn_strmap *m, const char *key);
/* Insert key, or replace its value. */
void cairn_strmap_put(cairn_strmap *m, const char *key, int64_t value);
/* Remove key; false when it was not there. */
bool cairn_strmap_remove(cairn_strmap *m, const char *key);
void cairn_strmap_clear(cairn_strmap *m);
size_t cairn_strmap_count(const cairn_strmap *m);

#endif
