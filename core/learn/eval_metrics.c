#include "config.h"

#include "learn/eval_metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/cml_alloc.h"

typedef struct scored {
    double s;
    int pos;
} scored;

static int cmp_scored(const void *a, const void *b) {
    double x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return (x > y) - (x < y);
}

double cml_eval_roc_auc(const double *score, const int *positive, size_t n) {
    scored *v = cml_malloc((n ? n : 1) * sizeof(scored));
    if (v == NULL)
        return NAN;
    size_t n_pos = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = (scored){score[i], positive[i] != 0};
        n_pos += v[i].pos;
    }
    size_t n_neg = n - n_pos;
    if (n_pos == 0 || n_neg == 0) {
        cml_free(v);
        return NAN;
    }
    qsort(v, n, sizeof(scored), cmp_scored);
    /* Mann-Whitney U with average ranks for ties. */
    double rank_sum = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && v[j].s == v[i].s)
            j++;
        double avg_rank = (double)(i + 1 + j) / 2.0;
        for (size_t k = i; k < j; k++)
            if (v[k].pos)
                rank_sum += avg_rank;
        i = j;
    }
    cml_free(v);
    return (rank_sum - (double)n_pos * (n_pos + 1) / 2.0) / ((double)n_pos * n_neg);
}

void cml_eval_release(cml_metrics *m) {
    if (m == NULL)
        return;
    cml_free(m->confusion);
    cml_free(m->per_class);
    m->confusion = NULL;
    m->per_class = NULL;
}

cml_err cml_eval_compute(const int *truth, const double *probs, size_t n, size_t n_labels,
                         cml_metrics *m) {
    memset(m, 0, sizeof(*m));
    if (n_labels < 2 || (n > 0 && (truth == NULL || probs == NULL)))
        return CML_ERR_INVALID;
    m->n = n;
    m->n_labels = n_labels;
    m->confusion = cml_calloc(n_labels * n_labels, sizeof(size_t));
    m->per_class = cml_calloc(n_labels, sizeof(cml_class_report));
    double *score = cml_malloc((n ? n : 1) * sizeof(double));
    int *pos = cml_malloc((n ? n : 1) * sizeof(int));
    if (m->confusion == NULL || m->per_class == NULL || score == NULL || pos == NULL) {
        cml_free(score);
        cml_free(pos);
        cml_eval_release(m);
        return CML_ERR_NOMEM;
    }
    const double eps = 1e-15;
    size_t correct = 0;
    double ll = 0;
    for (size_t i = 0; i < n; i++) {
        const double *p = probs + i * n_labels;
        size_t best = 0;
        for (size_t c = 1; c < n_labels; c++)
            if (p[c] > p[best])
                best = c;
        size_t t = (size_t)truth[i];
        if (t >= n_labels) {
            cml_free(score);
            cml_free(pos);
            cml_eval_release(m);
            return CML_ERR_INVALID;
        }
        m->confusion[t * n_labels + best]++;
        correct += best == t;
        double pt = p[t] < eps ? eps : p[t] > 1 - eps ? 1 - eps : p[t];
        ll -= log(pt);
    }
    m->accuracy = n ? (double)correct / n : NAN;
    m->log_loss = n ? ll / n : NAN;

    double sum_p = 0, sum_r = 0, sum_f = 0;
    for (size_t c = 0; c < n_labels; c++) {
        size_t tp = m->confusion[c * n_labels + c], pred = 0, actual = 0;
        for (size_t k = 0; k < n_labels; k++) {
            pred += m->confusion[k * n_labels + c];
            actual += m->confusion[c * n_labels + k];
        }
        cml_class_report *r = &m->per_class[c];
        r->support = actual;
        r->precision = pred ? (double)tp / pred : 0.0;
        r->recall = actual ? (double)tp / actual : 0.0;
        r->f1 = r->precision + r->recall > 0
                    ? 2 * r->precision * r->recall / (r->precision + r->recall)
                    : 0.0;
        sum_p += r->precision;
        sum_r += r->recall;
        sum_f += r->f1;
    }
    m->precision_macro = sum_p / n_labels;
    m->recall_macro = sum_r / n_labels;
    m->f1_macro = sum_f / n_labels;

    /* Multi-class MCC (Gorodkin); equals the usual formula for two labels. */
    double s = (double)n, c_ok = (double)correct, sum_pk_tk = 0, sum_pk2 = 0, sum_tk2 = 0;
    for (size_t k = 0; k < n_labels; k++) {
        double pk = 0, tk = 0;
        for (size_t j = 0; j < n_labels; j++) {
            pk += (double)m->confusion[j * n_labels + k];
            tk += (double)m->confusion[k * n_labels + j];
        }
        sum_pk_tk += pk * tk;
        sum_pk2 += pk * pk;
        sum_tk2 += tk * tk;
    }
    double denom = sqrt((s * s - sum_pk2) * (s * s - sum_tk2));
    m->mcc = denom > 0 ? (c_ok * s - sum_pk_tk) / denom : 0.0;

    /* ROC AUC: label 1 for two labels, else the macro mean over one-vs-rest. */
    double auc_sum = 0;
    size_t auc_n = 0;
    for (size_t c = (n_labels == 2 ? 1 : 0); c < n_labels; c++) {
        for (size_t i = 0; i < n; i++) {
            score[i] = probs[i * n_labels + c];
            pos[i] = (size_t)truth[i] == c;
        }
        double a = cml_eval_roc_auc(score, pos, n);
        if (!isnan(a)) {
            auc_sum += a;
            auc_n++;
        }
    }
    m->roc_auc = auc_n ? auc_sum / auc_n : NAN;
    cml_free(score);
    cml_free(pos);
    return CML_OK;
}

void cml_eval_wilson(size_t k, size_t n, double z, double *lo, double *hi) {
    if (n == 0 || k > n) {
        *lo = *hi = NAN;
        return;
    }
    double nn = (double)n, p = (double)k / nn, z2 = z * z;
    double centre = (p + z2 / (2 * nn)) / (1 + z2 / nn);
    double half = z / (1 + z2 / nn) * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn));
    *lo = fmax(0.0, centre - half);
    *hi = fmin(1.0, centre + half);
}

void cml_eval_label_scores(const size_t *confusion, size_t n_labels, cml_label_scores *out) {
    memset(out, 0, sizeof(*out));
    if (n_labels > 16)
        n_labels = 16;
    double f1_sum = 0;
    size_t f1_n = 0;
    for (size_t c = 0; c < 16; c++)
        out->recall[c] = NAN;
    for (size_t c = 0; c < n_labels; c++) {
        size_t tp = confusion[c * n_labels + c], actual = 0, predicted = 0;
        for (size_t j = 0; j < n_labels; j++) {
            actual += confusion[c * n_labels + j];
            predicted += confusion[j * n_labels + c];
        }
        out->n += actual;
        out->correct += tp;
        if (actual > 0)
            out->recall[c] = (double)tp / (double)actual;
        /* A label neither present nor predicted says nothing: left out of the mean. */
        if (actual + predicted > 0) {
            f1_sum += 2.0 * (double)tp / (double)(actual + predicted);
            f1_n++;
        }
    }
    out->accuracy = out->n ? (double)out->correct / (double)out->n : NAN;
    out->f1_macro = f1_n ? f1_sum / (double)f1_n : NAN;
}
