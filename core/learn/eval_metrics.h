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

#endif
