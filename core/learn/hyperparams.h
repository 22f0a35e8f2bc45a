/*
 * The documented, validated subset of training settings an operator may
 * change (retrain's "hyperparameters", the CLI's --param KEY=VALUE). One
 * table: name, bounds, where it goes in cml_train_options.
 */
#ifndef CML_HYPERPARAMS_H
#define CML_HYPERPARAMS_H

#include <stddef.h>

#include "base/cml_error.h"
#include "learn/trainer.h"

typedef struct cml_hyperparam {
    const char *name; /* "seed", "cv_folds", "logistic_regression.C", ... */
    double min, max;
    int integer; /* 1 when only whole numbers are accepted */
    const char *help;
} cml_hyperparam;

extern const cml_hyperparam cml_hyperparams[];
extern const size_t cml_n_hyperparams;

/* Sets one setting from its text value; CML_ERR_INVALID naming the key when unknown or out of
 * bounds. */
cml_err cml_hyperparam_set(cml_train_options *o, const char *name, const char *value,
                           cml_diag *diag);

#endif
