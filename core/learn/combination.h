/*
 * How an ensemble's members are combined, chosen on out-of-fold data of the
 * training split: weighted soft voting (weights minimising the log loss) or
 * stacking (a logistic regression on the members' logits), each scored by an
 * inner cross-validation over the out-of-fold rows so neither is judged on
 * rows it was fitted on. A member whose removal does not make the winner
 * worse adds nothing and is dropped. The utterance combiner (a clip's label
 * from its questions) is fitted here too, on out-of-fold probabilities.
 */
#ifndef CML_COMBINATION_H
#define CML_COMBINATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/cml_error.h"
#include "learn/dense_logreg.h"
#include "model/model.h"

/* How one way of combining the members scored on out-of-fold data (inner cross-validation). */
typedef struct cml_combination_report {
    bool tried;
    double log_loss, f1_macro;
} cml_combination_report;

/* Out-of-fold probabilities of the members: probs[(k * n + i) * n_labels + c]; borrowed. */
typedef struct cml_oof {
    size_t n, n_members, n_labels;
    const double *probs;
    const int *y;
} cml_oof;

typedef struct cml_combiner_fit {
    cml_combination combination;
    size_t n_use;
    size_t use[CML_MAX_MEMBERS];     /* kept members, ascending indices into the oof */
    double weights[CML_MAX_MEMBERS]; /* voting weight of each kept member (sum 1) */
    cml_dense_logreg stacker;        /* stacking: one input per kept member */
    cml_combination_report reports[CML_COMBINE__MAX];
} cml_combiner_fit;

/*
 * Scores both combinations by inner cross-validation (seeded), drops members
 * that add nothing when prune is set (two are always kept), and fits the
 * winner on every row. Stacking is tried with two labels and two members.
 */
cml_err cml_combiner_choose(const cml_oof *oof, uint64_t seed, bool prune, cml_combiner_fit *out);

/* Combined probabilities (n_labels) of member probabilities given for all oof members. */
void cml_combiner_apply(const cml_combiner_fit *fit, size_t n_labels, const double *member_probs,
                        double *out);

/*
 * Fits the utterance combiner on n texts of several sentences: inputs of
 * text i are x[i * CML_UTT__MAX ..], truths y. CML_ERR_DATA when too few rows
 * or a class is missing (the model then keeps the whole text's label).
 */
cml_err cml_utterance_fit(const double *x, const int *y, size_t n, cml_dense_logreg *out);

#endif
