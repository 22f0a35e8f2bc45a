#include "config.h"

#include "learn/hyperparams.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const cml_hyperparam cml_hyperparams[] = {
    {"seed", 0, 4294967295.0, 1, "seed of the split, folds and learners"},
    {"cv_folds", 0, 20, 1, "cross-validation folds on the training split (0 = none)"},
    {"test_fraction", 0.05, 0.5, 0, "share of rows held out for the reported metrics"},
    {"all_candidates", 0, 1, 1,
     "1: the ensemble also tries the word-view regression, the forest and the network"},
    {"logistic_regression.C", 1e-4, 1e4, 0, "inverse regularisation strength"},
    {"linear_svm.C", 1e-4, 1e4, 0, "inverse regularisation strength"},
    {"boosted_trees.n_estimators", 10, 2000, 1, "boosting rounds"},
    {"boosted_trees.max_depth", 1, 16, 1, "tree depth"},
    {"boosted_trees.learning_rate", 0.001, 1, 0, "shrinkage"},
    {"random_forest.n_estimators", 10, 2000, 1, "trees"},
    {"random_forest.max_depth", 1, 32, 1, "tree depth"},
    {"mlp.hidden_units", 4, 512, 1, "hidden units"},
    {"mlp.epochs", 1, 2000, 1, "training epochs"},
};
const size_t cml_n_hyperparams = sizeof(cml_hyperparams) / sizeof(cml_hyperparams[0]);

cml_err cml_hyperparam_set(cml_train_options *o, const char *name, const char *value,
                           cml_diag *diag) {
    const cml_hyperparam *h = NULL;
    for (size_t i = 0; i < cml_n_hyperparams; i++)
        if (strcmp(cml_hyperparams[i].name, name) == 0)
            h = &cml_hyperparams[i];
    if (h == NULL)
        return cml_diag_set(diag, CML_ERR_INVALID, "unknown hyperparameter '%s'", name);
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || !isfinite(v))
        return cml_diag_set(diag, CML_ERR_INVALID, "hyperparameter '%s': '%s' is not a number",
                            name, value);
    if (v < h->min || v > h->max || (h->integer && v != floor(v)))
        return cml_diag_set(diag, CML_ERR_INVALID, "hyperparameter '%s': %s is outside %g..%g%s",
                            name, value, h->min, h->max, h->integer ? " (whole numbers)" : "");
    if (!strcmp(name, "seed"))
        o->seed = (uint64_t)v;
    else if (!strcmp(name, "cv_folds")) {
        if (v == 1)
            return cml_diag_set(diag, CML_ERR_INVALID,
                                "hyperparameter 'cv_folds': 1 is not allowed");
        o->cv_folds = (size_t)v;
    } else if (!strcmp(name, "test_fraction"))
        o->test_frac = v;
    else if (!strcmp(name, "all_candidates"))
        o->all_candidates = v != 0;
    else if (!strcmp(name, "logistic_regression.C"))
        o->params[CML_MEMBER_LOGREG].C = v;
    else if (!strcmp(name, "linear_svm.C"))
        o->params[CML_MEMBER_LINEAR_SVM].C = v;
    else if (!strcmp(name, "boosted_trees.n_estimators"))
        o->params[CML_MEMBER_BOOSTED_TREES].n_trees = (int)v;
    else if (!strcmp(name, "boosted_trees.max_depth"))
        o->params[CML_MEMBER_BOOSTED_TREES].max_depth = (int)v;
    else if (!strcmp(name, "boosted_trees.learning_rate"))
        o->params[CML_MEMBER_BOOSTED_TREES].learning_rate = v;
    else if (!strcmp(name, "random_forest.n_estimators"))
        o->params[CML_MEMBER_RANDOM_FOREST].n_trees = (int)v;
    else if (!strcmp(name, "random_forest.max_depth"))
        o->params[CML_MEMBER_RANDOM_FOREST].max_depth = (int)v;
    else if (!strcmp(name, "mlp.hidden_units"))
        o->params[CML_MEMBER_MLP].hidden = (int)v;
    else if (!strcmp(name, "mlp.epochs"))
        o->params[CML_MEMBER_MLP].epochs = (int)v;
    /* A setting of a member tried only on request is that request. */
    if (!strncmp(name, "random_forest.", 14) || !strncmp(name, "mlp.", 4))
        o->all_candidates = true;
    return CML_OK;
}
