/*
 * Training: stratified hold-out split, stratified k-fold cross-validation on
 * the training split (out-of-fold predictions fit the ensemble's weights),
 * the final fit on the training split, and honest held-out metrics.
 */
#ifndef CML_TRAINER_H
#define CML_TRAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/cml_error.h"
#include "learn/combination.h"
#include "learn/dataset.h"
#include "learn/eval_metrics.h"
#include "model/model.h"

#define CML_MIN_TRAIN_ROWS 20

typedef void (*cml_progress_fn)(void *ctx, double fraction, const char *step);

typedef struct cml_train_options {
    cml_model_type type;
    uint64_t seed;         /* split, folds and learners; default 42 */
    double test_frac;      /* held-out share; default 0.2 */
    size_t cv_folds;       /* 0 = no cross-validation (the ensemble then votes equally) */
    int n_threads;         /* learners that can use threads; default 2 */
    bool keep_all_members; /* never drop a member that adds nothing (tests of every member) */
    /* The ensemble also tries the members that added nothing in every run measured (the
     * roster's "extra" ones); keep_all_members implies it. */
    bool all_candidates;
    /* Classroom non-questions: when set, a question detector is trained (borrowed). */
    const cml_dataset *non_questions;
    /* Per-member settings, indexed by cml_member_kind; zero fields keep defaults. */
    cml_member_params params[CML_MEMBER__MAX];
    cml_progress_fn progress;
    void *progress_ctx;
} cml_train_options;

void cml_train_options_init(cml_train_options *o, cml_model_type type);

/* Metrics of one member (or of the combination) on CV and the held-out split. */
typedef struct cml_member_report {
    const char *name; /* static */
    cml_metrics cv;   /* n == 0 when no CV ran */
    cml_metrics holdout;
    double weight;
    double train_seconds;
} cml_member_report;

typedef struct cml_train_report {
    size_t n_members;
    cml_member_report members[CML_MAX_MEMBERS + 1]; /* the last one is the combination */
    /* Members left out because the combination did as well without them (cv only). */
    size_t n_dropped;
    cml_member_report dropped[CML_MAX_MEMBERS];
    /* Members of the build not tried (without all_candidates); names are static. */
    size_t n_untried;
    const char *untried[CML_MAX_MEMBERS];
    cml_combination_report combinations[CML_COMBINE__MAX];
    cml_combination combination; /* the winner, kept in the model */
    size_t utterance_rows;       /* training rows of several sentences the combiner fitted on */
    bool has_detector;
    cml_detector_report detector; /* its held-out figures */
    double seconds;
} cml_train_report;

void cml_train_report_release(cml_train_report *r);

/* The member kinds a model type can hold in this build, in order; returns how many. */
size_t cml_model_type_members(cml_model_type type, const cml_member_ops **ops, size_t cap);

/*
 * The members a training of o tries: every one of cml_model_type_members with
 * all_candidates (or keep_all_members), else those not marked extra. Returns how many; the
 * others' ops go to untried (may be NULL), *n_untried their count.
 */
size_t cml_train_candidates(const cml_train_options *o, const cml_member_ops **ops,
                            const cml_member_ops **untried, size_t *n_untried, size_t cap);

/* Whether ds can train a model of o->type (rows, labels, rows per label, build support). */
cml_err cml_train_check(const cml_dataset *ds, const cml_train_options *o, cml_diag *diag);

/*
 * Trains a model of o->type on ds. *out is a new model (one reference) whose
 * metrics_json and holdout are filled; report (may be NULL) gets the tables.
 */
cml_err cml_train(const cml_dataset *ds, const cml_train_options *o, cml_model **out,
                  cml_train_report *report, cml_diag *diag);

/* SHA-256 (hex) of the texts and labels of ds in order. */
void cml_dataset_sha256(const cml_dataset *ds, char hex[65]);

/* Metrics as a JSON object text (caller frees with cml_free). */
char *cml_metrics_to_json(const cml_metrics *m, char *const *labels);

/* Scores a model on a dataset whose labels are mapped onto the model's by name. */
cml_err cml_model_evaluate(const cml_model *m, const cml_dataset *ds, cml_metrics *out,
                           cml_diag *diag);

#endif
