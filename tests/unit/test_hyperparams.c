/* The validated training settings (learn/hyperparams.c): names, bounds, types. */
#include "config.h"

#include "learn/hyperparams.h"
#include "unit.h"

/* Where each setting lands, read back as a number; fails for a key this test does not know. */
static double field(const cml_train_options *o, const char *name) {
    if (!strcmp(name, "seed"))
        return (double)o->seed;
    if (!strcmp(name, "cv_folds"))
        return (double)o->cv_folds;
    if (!strcmp(name, "test_fraction"))
        return o->test_frac;
    if (!strcmp(name, "all_candidates"))
        return o->all_candidates;
    if (!strcmp(name, "logistic_regression.C"))
        return o->params[CML_MEMBER_LOGREG].C;
    if (!strcmp(name, "linear_svm.C"))
        return o->params[CML_MEMBER_LINEAR_SVM].C;
    if (!strcmp(name, "boosted_trees.n_estimators"))
        return o->params[CML_MEMBER_BOOSTED_TREES].n_trees;
    if (!strcmp(name, "boosted_trees.max_depth"))
        return o->params[CML_MEMBER_BOOSTED_TREES].max_depth;
    if (!strcmp(name, "boosted_trees.learning_rate"))
        return o->params[CML_MEMBER_BOOSTED_TREES].learning_rate;
    if (!strcmp(name, "random_forest.n_estimators"))
        return o->params[CML_MEMBER_RANDOM_FOREST].n_trees;
    if (!strcmp(name, "random_forest.max_depth"))
        return o->params[CML_MEMBER_RANDOM_FOREST].max_depth;
    if (!strcmp(name, "mlp.hidden_units"))
        return o->params[CML_MEMBER_MLP].hidden;
    if (!strcmp(name, "mlp.epochs"))
        return o->params[CML_MEMBER_MLP].epochs;
    ck_abort_msg("hyperparameter %s has no test", name);
    return NAN;
}

static void fmt(char *buf, size_t cap, double v) { snprintf(buf, cap, "%.17g", v); }

START_TEST(test_hyperparam_sets_its_field) {
    const cml_hyperparam *h = &cml_hyperparams[_i];
    cml_train_options o, fresh;
    cml_diag d = {{0}};
    char text[64];
    double mid = h->integer ? floor((h->min + h->max) / 2) : (h->min + h->max) / 2;
    if (!strcmp(h->name, "cv_folds"))
        mid = 7;
    const double values[] = {h->min, h->max, mid};
    for (int k = 0; k < 3; k++) {
        if (!strcmp(h->name, "cv_folds") && values[k] == 1)
            continue;
        cml_train_options_init(&o, CML_MODEL_ENSEMBLE);
        memcpy(&fresh, &o, sizeof o);
        fmt(text, sizeof text, values[k]);
        ck_assert_msg(cml_hyperparam_set(&o, h->name, text, &d) == CML_OK, "%s=%s: %s", h->name,
                      text, d.msg);
        ck_assert_msg(field(&o, h->name) == values[k], "%s=%s gave %g", h->name, text,
                      field(&o, h->name));
        /* Nothing else changed. */
        if (!strcmp(h->name, "seed"))
            fresh.seed = o.seed;
        else if (!strcmp(h->name, "cv_folds"))
            fresh.cv_folds = o.cv_folds;
        else if (!strcmp(h->name, "test_fraction"))
            fresh.test_frac = o.test_frac;
        else if (!strcmp(h->name, "all_candidates"))
            fresh.all_candidates = o.all_candidates;
        else
            memcpy(fresh.params, o.params, sizeof o.params);
        /* Setting the forest or the network asks for it to be tried. */
        bool extra = !strncmp(h->name, "random_forest.", 14) || !strncmp(h->name, "mlp.", 4);
        ck_assert_msg(o.all_candidates ==
                          (extra || (!strcmp(h->name, "all_candidates") && values[k] != 0)),
                      "%s=%s: all_candidates %d", h->name, text, o.all_candidates);
        if (extra)
            fresh.all_candidates = true;
        ck_assert_msg(memcmp(&fresh, &o, sizeof o) == 0, "%s changed more than its field", h->name);
    }
    ck_assert(h->help != NULL && h->help[0] != '\0');
}
END_TEST

START_TEST(test_hyperparam_table_complete) {
    static const char *names[] = {"seed",
                                  "cv_folds",
                                  "test_fraction",
                                  "all_candidates",
                                  "logistic_regression.C",
                                  "linear_svm.C",
                                  "boosted_trees.n_estimators",
                                  "boosted_trees.max_depth",
                                  "boosted_trees.learning_rate",
                                  "random_forest.n_estimators",
                                  "random_forest.max_depth",
                                  "mlp.hidden_units",
                                  "mlp.epochs"};
    ck_assert_uint_eq(cml_n_hyperparams, sizeof names / sizeof names[0]);
    for (size_t i = 0; i < cml_n_hyperparams; i++) {
        ck_assert_str_eq(cml_hyperparams[i].name, names[i]);
        ck_assert(cml_hyperparams[i].min < cml_hyperparams[i].max);
    }
}
END_TEST

START_TEST(test_hyperparam_bounds) {
    const cml_hyperparam *h = &cml_hyperparams[_i];
    double below = h->integer ? h->min - 1 : (h->min > 0 ? h->min / 2 : h->min - 1);
    double above = h->integer ? h->max + 1 : h->max * 2;
    const double values[] = {below, above};
    for (int k = 0; k < 2; k++) {
        cml_train_options o, fresh;
        cml_diag d = {{0}};
        char text[64], want[160];
        cml_train_options_init(&o, CML_MODEL_ENSEMBLE);
        memcpy(&fresh, &o, sizeof o);
        fmt(text, sizeof text, values[k]);
        ck_assert_int_eq(cml_hyperparam_set(&o, h->name, text, &d), CML_ERR_INVALID);
        snprintf(want, sizeof want, "hyperparameter '%s': %s is outside %g..%g", h->name, text,
                 h->min, h->max);
        ck_assert_msg(strstr(d.msg, want) != NULL, "'%s' lacks '%s'", d.msg, want);
        ck_assert_msg(memcmp(&fresh, &o, sizeof o) == 0, "%s=%s changed the options", h->name,
                      text);
    }
}
END_TEST

START_TEST(test_hyperparam_whole_numbers) {
    const cml_hyperparam *h = &cml_hyperparams[_i];
    cml_train_options o;
    cml_diag d = {{0}};
    char text[64];
    double v = h->min + (h->integer ? 2.5 : (h->max - h->min) / 3);
    cml_train_options_init(&o, CML_MODEL_ENSEMBLE);
    fmt(text, sizeof text, v);
    cml_err err = cml_hyperparam_set(&o, h->name, text, &d);
    if (h->integer) {
        ck_assert_msg(err == CML_ERR_INVALID, "%s accepted %s", h->name, text);
        ck_assert_msg(strstr(d.msg, "(whole numbers)") != NULL, "%s", d.msg);
        ck_assert_ptr_nonnull(strstr(d.msg, h->name));
    } else {
        ck_assert_msg(err == CML_OK, "%s refused %s: %s", h->name, text, d.msg);
        ck_assert(field(&o, h->name) == v);
    }
}
END_TEST

START_TEST(test_hyperparam_not_a_number) {
    static const char *bad[] = {"", "abc", "5x", "1,5", "nan", "inf", "-inf", "1e999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cml_train_options o;
        cml_diag d = {{0}};
        char want[128];
        cml_train_options_init(&o, CML_MODEL_CLASSIC);
        ck_assert_int_eq(cml_hyperparam_set(&o, "logistic_regression.C", bad[i], &d),
                         CML_ERR_INVALID);
        snprintf(want, sizeof want, "hyperparameter 'logistic_regression.C': '%s' is not a number",
                 bad[i]);
        ck_assert_msg(strstr(d.msg, want) != NULL, "'%s' lacks '%s'", d.msg, want);
    }
}
END_TEST

START_TEST(test_hyperparam_unknown_key) {
    static const char *bad[] = {"colour", "Seed", "logistic_regression", "mlp.epochs ", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cml_train_options o, fresh;
        cml_diag d = {{0}};
        char want[128];
        cml_train_options_init(&o, CML_MODEL_CLASSIC);
        memcpy(&fresh, &o, sizeof o);
        ck_assert_int_eq(cml_hyperparam_set(&o, bad[i], "1", &d), CML_ERR_INVALID);
        snprintf(want, sizeof want, "unknown hyperparameter '%s'", bad[i]);
        ck_assert_msg(strstr(d.msg, want) != NULL, "'%s' lacks '%s'", d.msg, want);
        ck_assert(memcmp(&fresh, &o, sizeof o) == 0);
    }
}
END_TEST

START_TEST(test_hyperparam_cv_folds_one_refused) {
    cml_train_options o;
    cml_diag d = {{0}};
    cml_train_options_init(&o, CML_MODEL_CLASSIC);
    ck_assert_int_eq(cml_hyperparam_set(&o, "cv_folds", "1", &d), CML_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(d.msg, "'cv_folds': 1 is not allowed"));
    ck_assert_uint_eq(o.cv_folds, 5);
    ck_assert_int_eq(cml_hyperparam_set(&o, "cv_folds", "0", &d), CML_OK);
    ck_assert_uint_eq(o.cv_folds, 0);
    ck_assert_int_eq(cml_hyperparam_set(&o, "cv_folds", "2", &d), CML_OK);
    ck_assert_uint_eq(o.cv_folds, 2);
}
END_TEST

START_TEST(test_hyperparam_seed_full_range) {
    cml_train_options o;
    cml_diag d = {{0}};
    cml_train_options_init(&o, CML_MODEL_CLASSIC);
    ck_assert_int_eq(cml_hyperparam_set(&o, "seed", "4294967295", &d), CML_OK);
    ck_assert_uint_eq(o.seed, 4294967295ull);
    ck_assert_int_eq(cml_hyperparam_set(&o, "seed", "4294967296", &d), CML_ERR_INVALID);
    ck_assert_uint_eq(o.seed, 4294967295ull);
    ck_assert_int_eq(cml_hyperparam_set(&o, "seed", "0", &d), CML_OK);
    ck_assert_uint_eq(o.seed, 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("hyperparams");
    TCase *h = tcase_create("hyperparams");
    tcase_add_test(h, test_hyperparam_table_complete);
    tcase_add_loop_test(h, test_hyperparam_sets_its_field, 0, (int)cml_n_hyperparams);
    tcase_add_loop_test(h, test_hyperparam_bounds, 0, (int)cml_n_hyperparams);
    tcase_add_loop_test(h, test_hyperparam_whole_numbers, 0, (int)cml_n_hyperparams);
    tcase_add_test(h, test_hyperparam_not_a_number);
    tcase_add_test(h, test_hyperparam_unknown_key);
    tcase_add_test(h, test_hyperparam_cv_folds_one_refused);
    tcase_add_test(h, test_hyperparam_seed_full_range);
    suite_add_tcase(s, h);
    return unit_run(s);
}
