/* How members combine: weighted voting or stacking, pruning, and the small logistic regression. */
#include "config.h"

#include <math.h>

#include "learn/combination.h"
#include "learn/dense_logreg.h"
#include "unit.h"

#define N 600

static uint64_t rng = 88172645463325252ull;
static double uniform(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static int y[N];
static double probs[4 * N * 2];

/* Member k's P(label 1) of row i set to p. */
static void set_p(size_t k, size_t i, double p) {
    probs[(k * N + i) * 2 + 1] = p;
    probs[(k * N + i) * 2] = 1.0 - p;
}

/* A noisy but informative member: P(truth) around 0.5 + signal, wrong about a quarter of the time.
 */
static double informative(int truth, double signal) {
    double p = 0.5 + signal * (2.0 * uniform() - 0.5);
    p = p > 0.98 ? 0.98 : p < 0.02 ? 0.02 : p;
    return truth ? p : 1.0 - p;
}

START_TEST(test_logreg_learns_a_direction) {
    double x[N];
    for (size_t i = 0; i < N; i++) {
        y[i] = (int)(i % 2);
        x[i] = (y[i] ? 1.0 : -1.0) + (uniform() - 0.5);
    }
    cml_dense_logreg lr;
    ck_assert_int_eq(cml_dense_logreg_fit(x, y, N, 1, 1.0, &lr), CML_OK);
    ck_assert_uint_eq(lr.n_inputs, 1);
    ck_assert(lr.coef[0] > 0);
    double hi = 2.0, lo = -2.0;
    ck_assert(cml_dense_logreg_apply(&lr, &hi) > 0.9);
    ck_assert(cml_dense_logreg_apply(&lr, &lo) < 0.1);
    for (size_t i = 0; i < N; i++)
        y[i] = 1;
    ck_assert_int_eq(cml_dense_logreg_fit(x, y, N, 1, 1.0, &lr), CML_ERR_DATA);
}
END_TEST

START_TEST(test_duplicate_member_is_dropped) {
    for (size_t i = 0; i < N; i++) {
        y[i] = uniform() < 0.5;
        double a = informative(y[i], 0.3);
        set_p(0, i, a);
        set_p(1, i, a); /* an exact copy of member 0 adds nothing */
        set_p(2, i, informative(y[i], 0.3));
    }
    cml_oof o = {.n = N, .n_members = 3, .n_labels = 2, .probs = probs, .y = y};
    cml_combiner_fit fit;
    ck_assert_int_eq(cml_combiner_choose(&o, 7, true, &fit), CML_OK);
    ck_assert_uint_eq(fit.n_use, 2);
    ck_assert_uint_eq(fit.use[1], 2); /* the independent member stays */
    ck_assert_int_eq(cml_combiner_choose(&o, 7, false, &fit), CML_OK);
    ck_assert_uint_eq(fit.n_use, 3);
}
END_TEST

START_TEST(test_stacking_wins_when_a_member_is_inverted) {
    /* Member 1 is informative but backwards: voting cannot use it (weights are >= 0). */
    for (size_t i = 0; i < N; i++) {
        y[i] = uniform() < 0.5;
        set_p(0, i, informative(y[i], 0.15));
        set_p(1, i, informative(!y[i], 0.4));
    }
    cml_oof o = {.n = N, .n_members = 2, .n_labels = 2, .probs = probs, .y = y};
    cml_combiner_fit fit;
    ck_assert_int_eq(cml_combiner_choose(&o, 7, false, &fit), CML_OK);
    ck_assert(fit.reports[CML_COMBINE_VOTING].tried && fit.reports[CML_COMBINE_STACKING].tried);
    ck_assert_int_eq(fit.combination, CML_COMBINE_STACKING);
    ck_assert(fit.reports[CML_COMBINE_STACKING].log_loss <
              fit.reports[CML_COMBINE_VOTING].log_loss);
    ck_assert(fit.stacker.coef[1] < 0);
    double row[4], out[2];
    row[0] = 0.4, row[1] = 0.6, row[2] = 0.95, row[3] = 0.05; /* member 1 says "label 0" */
    cml_combiner_apply(&fit, 2, row, out);
    ck_assert(out[1] > 0.5);
    ck_assert_double_eq_tol(out[0] + out[1], 1.0, 1e-12);
}
END_TEST

START_TEST(test_voting_weights_sum_to_one) {
    for (size_t i = 0; i < N; i++) {
        y[i] = uniform() < 0.5;
        set_p(0, i, informative(y[i], 0.35));
        set_p(1, i, 0.5); /* no information */
    }
    cml_oof o = {.n = N, .n_members = 2, .n_labels = 2, .probs = probs, .y = y};
    cml_combiner_fit fit;
    ck_assert_int_eq(cml_combiner_choose(&o, 7, false, &fit), CML_OK);
    if (fit.combination == CML_COMBINE_VOTING) {
        ck_assert_double_eq_tol(fit.weights[0] + fit.weights[1], 1.0, 1e-9);
        ck_assert(fit.weights[0] > fit.weights[1]);
    }
    ck_assert(fit.reports[CML_COMBINE_VOTING].f1_macro > 0.7);
}
END_TEST

int main(void) {
    Suite *s = suite_create("combination");
    TCase *tc = tcase_create("combine");
    tcase_add_test(tc, test_logreg_learns_a_direction);
    tcase_add_test(tc, test_duplicate_member_is_dropped);
    tcase_add_test(tc, test_stacking_wins_when_a_member_is_inverted);
    tcase_add_test(tc, test_voting_weights_sum_to_one);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
