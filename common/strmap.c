/*
 * strmap.c - string to integer map: open addressing, backward-shift removal.
 */
#include "common/strmap.h"

#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

typedef struct {
    char *key;          /* NULL: an empty slot */
    int64_t value;
} slot;

struct cairn_strmap {
    slot *slots;
    size_t cap;         /* a power of two, or 0 before the first put */
    size_t count;
};

static size_t hash_key(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The slot holding key, or the empty slot where it would go. */
static slot *find(const cairn_strmap *m, const char *key) {
    size_t mask = m->cap - 1;
    for (size_t i = hash_key(key) & mask;; i = (i + 1) & mask)
        if (m->slots[i].key == NULL || strcmp(m->slots[i].key, key) == 0) return &m->slots[i];
}

static void grow(cairn_strmap *m) {
    slot *old = m->slots;
    size_t old_cap = m->cap;
    m->cap = old_cap ? old_cap * 2 : 16;
    m->slots = cairn_calloc(m->cap, sizeof *m->slots);
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key) *find(m, old[i].key) = old[i];
    free(old);
}

cairn_strmap *cairn_strmap_new(void) { return cairn_calloc(1, sizeof(cairn_strmap)); }

void cairn_strmap_clear(cairn_strmap *m) {
    for (size_t i = 0; i < m->cap; i++) {
        free(m->slots[i].key);
        m->slots[i].key = NULL;
    }
    m->count = 0;
}

void cairn_strmap_free(cairn_strmap *m) {
    if (m == NULL) return;
    cairn_strmap_clear(m);
    free(m->slots);
    free(m);
}

bool cairn_strmap_get(const cairn_strmap *m, const char *key, int64_t *value) {
    if (m->count == 0) return false;
    const slot *s = find(m, key);
    if (s->key == NULL) return false;
    *value = s->value;
    return true;
}

int64_t *cairn_strmap_ref(cairn_strmap *m, const char *key) {
    if (m->count == 0) return NULL;
    slot *s = find(m, key);
    return s->key ? &s->value : NULL;
}

void cairn_strmap_put(cairn_strmap *m, const char *key, int64_t value) {
    if (2 * (m->count + 1) > m->cap) grow(m);
    slot *s = find(m, key);
    if (s->key == NULL) {
        s->key = cairn_strdup(key);
        m->count++;
    }
    s->value = value;
}

bool cairn_strmap_remove(cairn_strmap *m, const char *key) {
    if (m->count == 0) return false;
    slot *s = find(m, key);
    if (s->key == NULL) return false;
    free(s->key);
    s->key = NULL;
    m->count--;
    /* Move back each later entry of the probe run that may now sit nearer
     * its home: one whose home lies cyclically outside (hole, j]. */
    size_t mask = m->cap - 1, hole = (size_t)(s - m->slots);
    for (size_t j = (hole + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = hash_key(m->slots[j].key) & mask;
        bool stays = hole < j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (stays) continue;
        m->slots[hole] = m->slots[j];
        m->slots[j].key = NULL;
        hole = j;
    }
    return true;
}

size_t cairn_strmap_count(const cairn_strmap *m) { return m->count; }
