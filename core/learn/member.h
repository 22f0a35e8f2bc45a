/*
 * A member is one learner of a model (the classic model has one, the
 * ensemble several). Each kind implements these operations over the shared
 * sparse features; the model file stores each member's payload.
 */
#ifndef CML_MEMBER_H
#define CML_MEMBER_H

#include <stddef.h>
#include <stdint.h>

#include "base/byte_buffer.h"
#include "base/cml_error.h"
#include "learn/calibration.h"
#include "text/text_features.h"

#define CML_MAX_LABELS 16
#define CML_MAX_MEMBERS 8

typedef enum cml_member_kind {
    CML_MEMBER_LOGREG = 1,
    CML_MEMBER_LINEAR_SVM = 2,
    CML_MEMBER_BOOSTED_TREES = 3,
    CML_MEMBER_RANDOM_FOREST = 4,
    CML_MEMBER_MLP = 5,
    CML_MEMBER_LOGREG_WORDS = 6, /* logistic regression on the question-form and word columns */
    CML_MEMBER_LOGREG_CHARS =
        7, /* logistic regression on the question-form and character columns */
    CML_MEMBER__MAX
} cml_member_kind;

/* Training settings; a member reads the ones it knows. Zero means "default". */
typedef struct cml_member_params {
    double C;             /* linear: inverse regularisation */
    int n_trees;          /* trees: rounds (boosting) or trees (forest) */
    int max_depth;        /* trees */
    double learning_rate; /* boosting */
    double subsample;     /* trees: row sampling */
    double colsample;     /* trees: column sampling */
    int hidden;           /* mlp: hidden units */
    int epochs;           /* mlp */
    int n_threads;        /* training threads */
    uint64_t seed;
    /*
     * Two labels, members with set_calibration: skip the member's own calibration folds and
     * answer the uncalibrated sigmoid of the decision value; the trainer then calibrates on
     * the out-of-fold decisions of its cross-validation (one fit per fold instead of six).
     */
    bool calibrate_later;
} cml_member_params;

/* Training input: features, class index per row and balanced class weights. */
typedef struct cml_train_set {
    const cml_csr *X;
    const int *y;
    size_t n_labels;
    const double *class_weight;  /* n_labels weights, balanced for imbalance */
    const uint8_t *column_space; /* X->n_cols cml_column_space values; NULL when unknown */
} cml_train_set;

typedef struct cml_member_ops {
    cml_member_kind kind;
    const char *name; /* stable name used in files and the API */
    /* Trains a new state (owned by the caller, released with free_state). */
    cml_err (*train)(const cml_train_set *ts, const cml_member_params *p, void **state,
                     cml_diag *diag);
    /*
     * Calibrated probabilities of one row into probs[0..n_labels). Safe to call
     * from many threads at once on one state.
     */
    cml_err (*predict)(const void *state, const cml_sparse *x, double *probs);
    /* Appends the payload to out. */
    cml_err (*serialize)(const void *state, cml_buf *out);
    /* A new state from a payload; refuses anything inconsistent with n_labels/n_cols. */
    cml_err (*deserialize)(const uint8_t *p, size_t len, size_t n_labels, size_t n_cols,
                           void **state, cml_diag *diag);
    /* Accepts NULL. */
    void (*free_state)(void *state);
    /* Bytes the state holds (for /metrics). */
    size_t (*state_bytes)(const void *state);
    /*
     * Members whose probability is a sigmoid of one decision value (two labels): replaces the
     * calibration of a state trained with calibrate_later. NULL for members with their own
     * probabilities.
     */
    void (*set_calibration)(void *state, cml_platt platt);
} cml_member_ops;

/* The ops of a kind compiled into this build, or NULL. */
const cml_member_ops *cml_member_ops_by_kind(cml_member_kind kind);
const cml_member_ops *cml_member_ops_by_name(const char *name);

extern const cml_member_ops cml_member_logreg;
extern const cml_member_ops cml_member_linear_svm;
extern const cml_member_ops cml_member_logreg_words;
extern const cml_member_ops cml_member_logreg_chars;

#endif
