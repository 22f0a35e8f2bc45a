#include "config.h"

#include "base/u64_map.h"

#include "base/cml_alloc.h"

cml_err cml_u64_map_init(cml_u64_map *m, size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2)
        cap *= 2;
    m->keys = cml_calloc(cap, sizeof(uint64_t));
    m->vals = cml_calloc(cap, sizeof(int32_t));
    m->cap = cap;
    m->n = 0;
    if (m->keys == NULL || m->vals == NULL) {
        cml_u64_map_release(m);
        return CML_ERR_NOMEM;
    }
    return CML_OK;
}

void cml_u64_map_release(cml_u64_map *m) {
    if (m == NULL)
        return;
    cml_free(m->keys);
    cml_free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->n = 0;
}

static size_t slot_of(const cml_u64_map *m, uint64_t key) {
    size_t mask = m->cap - 1;
    size_t i = (size_t)(key * 0x9E3779B97F4A7C15ull >> 20) & mask;
    while (m->keys[i] != 0 && m->keys[i] != key)
        i = (i + 1) & mask;
    return i;
}

static cml_err grow(cml_u64_map *m) {
    cml_u64_map bigger;
    if (cml_u64_map_init(&bigger, m->cap) != CML_OK)
        return CML_ERR_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] == 0)
            continue;
        size_t s = slot_of(&bigger, m->keys[i]);
        bigger.keys[s] = m->keys[i];
        bigger.vals[s] = m->vals[i];
        bigger.n++;
    }
    cml_u64_map_release(m);
    *m = bigger;
    return CML_OK;
}

int32_t *cml_u64_map_upsert(cml_u64_map *m, uint64_t key, int32_t init) {
    if ((m->n + 1) * 2 > m->cap && grow(m) != CML_OK)
        return NULL;
    size_t s = slot_of(m, key);
    if (m->keys[s] == 0) {
        m->keys[s] = key;
        m->vals[s] = init;
        m->n++;
    }
    return &m->vals[s];
}
