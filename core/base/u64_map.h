/* Open-addressing hash map from non-zero 64-bit keys (already hashes) to 32-bit values. */
#ifndef CML_U64_MAP_H
#define CML_U64_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "base/cml_error.h"

typedef struct cml_u64_map {
    uint64_t *keys; /* 0 = empty slot */
    int32_t *vals;
    size_t cap; /* power of two */
    size_t n;
} cml_u64_map;

/* An empty map sized for about `expected` keys; release with cml_u64_map_release. */
cml_err cml_u64_map_init(cml_u64_map *m, size_t expected);
void cml_u64_map_release(cml_u64_map *m);
/* Pointer to the value of key, inserting it with value `init` when absent; NULL on OOM. */
int32_t *cml_u64_map_upsert(cml_u64_map *m, uint64_t key, int32_t init);
/* Value of key, or `missing`. */
static inline int32_t cml_u64_map_get(const cml_u64_map *m, uint64_t key, int32_t missing) {
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)(key * 0x9E3779B97F4A7C15ull >> 20) & mask;; i = (i + 1) & mask) {
        if (m->keys[i] == key)
            return m->vals[i];
        if (m->keys[i] == 0)
            return missing;
    }
}
/* Keys never 0: maps a raw hash into the key space. */
static inline uint64_t cml_u64_map_key(uint64_t h) { return h ? h : 0x5bd1e995ull; }

#endif
