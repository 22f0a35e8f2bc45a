#include "config.h"

#include "learn/data_split.h"

#include <math.h>

#include "base/cml_alloc.h"

void cml_shuffle(size_t *a, size_t n, cml_rng *r) {
    for (size_t i = n; i > 1; i--) {
        size_t j = cml_rng_below(r, i);
        size_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

/* Rows grouped by label, each group shuffled; caller frees *order. */
static cml_err grouped_order(const int *y, size_t n, size_t n_labels, uint64_t seed, size_t **order,
                             size_t *starts) {
    size_t *o = cml_malloc((n ? n : 1) * sizeof(size_t));
    if (o == NULL)
        return CML_ERR_NOMEM;
    cml_rng rng = {.state = seed};
    size_t pos = 0;
    for (size_t c = 0; c < n_labels; c++) {
        starts[c] = pos;
        for (size_t i = 0; i < n; i++)
            if ((size_t)y[i] == c)
                o[pos++] = i;
        cml_shuffle(o + starts[c], pos - starts[c], &rng);
    }
    starts[n_labels] = pos;
    if (pos != n) {
        cml_free(o);
        return CML_ERR_INVALID;
    }
    *order = o;
    return CML_OK;
}

cml_err cml_stratified_folds(const int *y, size_t n, size_t n_labels, size_t k, uint64_t seed,
                             size_t *fold_of) {
    size_t starts[65];
    size_t *order = NULL;
    if (k < 2 || n_labels == 0 || n_labels > 64)
        return CML_ERR_INVALID;
    cml_err err = grouped_order(y, n, n_labels, seed, &order, starts);
    if (err != CML_OK)
        return err;
    /* Deal each label's rows round-robin, continuing the count across labels. */
    size_t next = 0;
    for (size_t c = 0; c < n_labels; c++)
        for (size_t i = starts[c]; i < starts[c + 1]; i++)
            fold_of[order[i]] = next++ % k;
    cml_free(order);
    return CML_OK;
}

cml_err cml_stratified_split(const int *y, size_t n, size_t n_labels, double test_frac,
                             uint64_t seed, size_t *train, size_t *n_train, size_t *test,
                             size_t *n_test) {
    size_t starts[65];
    size_t *order = NULL;
    if (!(test_frac > 0 && test_frac < 1) || n_labels == 0 || n_labels > 64)
        return CML_ERR_INVALID;
    cml_err err = grouped_order(y, n, n_labels, seed, &order, starts);
    if (err != CML_OK)
        return err;
    *n_train = *n_test = 0;
    for (size_t c = 0; c < n_labels; c++) {
        size_t count = starts[c + 1] - starts[c];
        size_t nt = (size_t)llround(test_frac * (double)count);
        if (nt >= count && count > 0)
            nt = count - 1;
        for (size_t i = 0; i < count; i++) {
            size_t row = order[starts[c] + i];
            if (i < nt)
                test[(*n_test)++] = row;
            else
                train[(*n_train)++] = row;
        }
    }
    cml_free(order);
    return CML_OK;
}
