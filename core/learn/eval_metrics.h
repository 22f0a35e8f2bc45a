/* Classification metrics over predicted probabilities. */
#ifndef CML_EVAL_METRICS_H
#define CML_EVAL_METRICS_H

#include <stddef.h>

#include "base/cml_error.h"

typedef struct cml_class_report {
    double precision, recall, f1;
    size_t support;
} cml_class_report;

typedef struct cml_metrics {
    size_t n, n_labels;
    double accuracy, precision_macro, recall_macro, f1_macro, mcc, log_loss;
    double roc_auc; /* binary: AUC of label 1; more labels: macro one-vs-rest; NAN if undefined */
    size_t *confusion;           /* n_labels * n_labels, rows actual, columns predicted; owned */
    cml_class_report *per_class; /* n_labels, owned */
} cml_metrics;

/*
 * Scores n predictions: truth[i] in [0, n_labels), probs row-major n x n_labels.
 * The predicted label is the arg-max. Fills *m; release with cml_eval_release.
 */
cml_err cml_eval_compute(const int *truth, const double *probs, size_t n, size_t n_labels,
                         cml_metrics *m);
void cml_eval_release(cml_metrics *m);

/* Area under the ROC curve of scores for a binary truth (ties averaged); NAN if one class. */
double cml_eval_roc_auc(const double *score, const int *positive, size_t n);

/*
 * The Wilson score interval of k successes in n trials at normal quantile z (1.959964 for
 * 95 %): *lo and *hi in 0..1; both NAN when n is 0.
 */
void cml_eval_wilson(size_t k, size_t n, double z, double *lo, double *hi);

/* Hard-label scores from a confusion matrix (rows actual, columns predicted). */
typedef struct cml_label_scores {
    size_t n, correct;
    double accuracy;   /* NAN when n is 0 */
    double f1_macro;   /* mean over labels with support or predictions; NAN when n is 0 */
    double recall[16]; /* per label; NAN for a label without support */
} cml_label_scores;

/* Scores a n_labels x n_labels confusion matrix (n_labels <= 16) into *out. */
void cml_eval_label_scores(const size_t *confusion, size_t n_labels, cml_label_scores *out);

#endif
