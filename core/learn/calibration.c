#include "config.h"

#include "learn/calibration.h"

#include <math.h>

#include "base/cml_alloc.h"

double cml_platt_apply(cml_platt p, double dec) {
    double f = p.a * dec + p.b;
    /* Stable in both tails. */
    return f >= 0 ? exp(-f) / (1.0 + exp(-f)) : 1.0 / (1.0 + exp(f));
}

cml_platt cml_platt_fit(const double *dec, const bool *positive, size_t n) {
    cml_platt fallback = {.a = -1.0, .b = 0.0};
    double prior1 = 0, prior0 = 0;
    for (size_t i = 0; i < n; i++)
        positive[i] ? prior1++ : prior0++;
    if (prior1 == 0 || prior0 == 0)
        return fallback;
    const int max_iter = 100;
    const double min_step = 1e-10, sigma = 1e-12, eps = 1e-5;
    double hi = (prior1 + 1.0) / (prior1 + 2.0), lo = 1.0 / (prior0 + 2.0);
    double a = 0.0, b = log((prior0 + 1.0) / (prior1 + 1.0)), fval = 0.0;
    for (size_t i = 0; i < n; i++) {
        double t = positive[i] ? hi : lo;
        double f = dec[i] * a + b;
        fval += f >= 0 ? t * f + log1p(exp(-f)) : (t - 1) * f + log1p(exp(f));
    }
    for (int iter = 0; iter < max_iter; iter++) {
        double h11 = sigma, h22 = sigma, h21 = 0, g1 = 0, g2 = 0;
        for (size_t i = 0; i < n; i++) {
            double t = positive[i] ? hi : lo;
            double f = dec[i] * a + b, p, q;
            if (f >= 0) {
                p = exp(-f) / (1.0 + exp(-f));
                q = 1.0 / (1.0 + exp(-f));
            } else {
                p = 1.0 / (1.0 + exp(f));
                q = exp(f) / (1.0 + exp(f));
            }
            double d2 = p * q;
            h11 += dec[i] * dec[i] * d2;
            h22 += d2;
            h21 += dec[i] * d2;
            double d1 = t - p;
            g1 += dec[i] * d1;
            g2 += d1;
        }
        if (fabs(g1) < eps && fabs(g2) < eps)
            break;
        double det = h11 * h22 - h21 * h21;
        double da = -(h22 * g1 - h21 * g2) / det, db = -(-h21 * g1 + h11 * g2) / det;
        double gd = g1 * da + g2 * db, step = 1.0;
        while (step >= min_step) {
            double na = a + step * da, nb = b + step * db, nf = 0.0;
            for (size_t i = 0; i < n; i++) {
                double t = positive[i] ? hi : lo;
                double f = dec[i] * na + nb;
                nf += f >= 0 ? t * f + log1p(exp(-f)) : (t - 1) * f + log1p(exp(f));
            }
            if (nf < fval + 0.0001 * step * gd) {
                a = na;
                b = nb;
                fval = nf;
                break;
            }
            step /= 2.0;
        }
        if (step < min_step)
            break;
    }
    if (!isfinite(a) || !isfinite(b))
        return fallback;
    return (cml_platt){.a = a, .b = b};
}
