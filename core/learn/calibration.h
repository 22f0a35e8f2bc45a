/* Platt scaling: maps a decision value to a probability with a fitted sigmoid. */
#ifndef CML_CALIBRATION_H
#define CML_CALIBRATION_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cml_platt {
    double a, b; /* P(positive | d) = 1 / (1 + exp(a * d + b)) */
} cml_platt;

/*
 * Fits a and b on n decision values and their truths (Lin, Lin and Weng's
 * Newton method with Platt's smoothed targets). Never fails: degenerate
 * input gives the uncalibrated sigmoid a = -1, b = 0.
 */
cml_platt cml_platt_fit(const double *dec, const bool *positive, size_t n);

double cml_platt_apply(cml_platt p, double dec);

#endif
