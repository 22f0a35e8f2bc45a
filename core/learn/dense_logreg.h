/*
 * A small dense binary logistic regression on liblinear, for the model's
 * second-level learners: the stacker over member probabilities and the
 * utterance combiner over a clip's question probabilities. The weights are
 * kept in a plain struct so the model file stores them as numbers.
 */
#ifndef CML_DENSE_LOGREG_H
#define CML_DENSE_LOGREG_H

#include <stddef.h>
#include <stdint.h>

#include "base/cml_error.h"

#define CML_DENSE_LOGREG_MAX_INPUTS 16

typedef struct cml_dense_logreg {
    uint32_t n_inputs;
    double coef[CML_DENSE_LOGREG_MAX_INPUTS];
    double bias; /* P(class 1 | x) = 1 / (1 + exp(-(coef . x + bias))) */
} cml_dense_logreg;

/*
 * Fits on n rows of d inputs (X row-major), truths y in {0, 1}, balanced class
 * weights, L2 penalty 1/C. CML_ERR_DATA when a class is missing.
 */
cml_err cml_dense_logreg_fit(const double *X, const int *y, size_t n, size_t d, double C,
                             cml_dense_logreg *out);

/* P(class 1 | x) for x of out->n_inputs values. */
double cml_dense_logreg_apply(const cml_dense_logreg *lr, const double *x);

/* log(p / (1 - p)) with p kept inside [1e-6, 1 - 1e-6]: the inputs of both combiners. */
double cml_logit(double p);

#endif
