/* Seeded, stratified hold-out splits and k-fold assignments. */
#ifndef CML_DATA_SPLIT_H
#define CML_DATA_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "base/cml_error.h"

/* splitmix64: small, seedable, the same on every platform. */
typedef struct cml_rng {
    uint64_t state;
} cml_rng;

static inline uint64_t cml_rng_next(cml_rng *r) {
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* Uniform in [0, n). */
static inline size_t cml_rng_below(cml_rng *r, size_t n) { return (size_t)(cml_rng_next(r) % n); }
void cml_shuffle(size_t *a, size_t n, cml_rng *r);

/*
 * Assigns each of n rows (labels y in [0, n_labels)) to one of k folds so
 * that every fold has each label in proportion. fold_of has n entries.
 */
cml_err cml_stratified_folds(const int *y, size_t n, size_t n_labels, size_t k, uint64_t seed,
                             size_t *fold_of);

/*
 * Stratified hold-out: fills train[] and test[] (each n long) with row
 * indices; test gets round(test_frac * count) rows of each label.
 */
cml_err cml_stratified_split(const int *y, size_t n, size_t n_labels, double test_frac,
                             uint64_t seed, size_t *train, size_t *n_train, size_t *test,
                             size_t *n_test);

#endif
