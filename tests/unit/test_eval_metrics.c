/* Evaluation metrics (learn/eval_metrics.c) against hand-computed values. */
#include "config.h"

#include <math.h>

#include "learn/eval_metrics.h"
#include "unit.h"

START_TEST(test_binary_metrics) {
    int truth[] = {1, 1, 0, 0};
    double probs[] = {0.1, 0.9, 0.6, 0.4, 0.65, 0.35, 0.9, 0.1};
    cml_metrics m;
    ck_assert_int_eq(cml_eval_compute(truth, probs, 4, 2, &m), CML_OK);
    ck_assert_double_eq_tol(m.accuracy, 0.75, 1e-12);
    ck_assert_double_eq_tol(m.roc_auc, 1.0, 1e-12);
    ck_assert_double_eq_tol(m.mcc, 2.0 / sqrt(12.0), 1e-12);
    ck_assert_double_eq_tol(m.log_loss, -(log(0.9) + log(0.4) + log(0.65) + log(0.9)) / 4, 1e-12);
    ck_assert_double_eq_tol(m.per_class[1].precision, 1.0, 1e-12);
    ck_assert_double_eq_tol(m.per_class[1].recall, 0.5, 1e-12);
    ck_assert_double_eq_tol(m.per_class[0].precision, 2.0 / 3.0, 1e-12);
    ck_assert_double_eq_tol(m.f1_macro, (2.0 / 3.0 + 0.8) / 2, 1e-12);
    ck_assert_uint_eq(m.confusion[1 * 2 + 0], 1); /* actual 1 predicted 0 */
    ck_assert_uint_eq(m.confusion[0 * 2 + 0], 2);
    ck_assert_uint_eq(m.per_class[0].support, 2);
    cml_eval_release(&m);
}
END_TEST

START_TEST(test_multiclass_metrics) {
    int truth[] = {0, 1, 2, 2};
    double probs[] = {0.8, 0.1, 0.1, 0.1, 0.8, 0.1, 0.1, 0.1, 0.8, 0.5, 0.2, 0.3};
    cml_metrics m;
    ck_assert_int_eq(cml_eval_compute(truth, probs, 4, 3, &m), CML_OK);
    ck_assert_double_eq_tol(m.accuracy, 0.75, 1e-12);
    ck_assert_uint_eq(m.confusion[2 * 3 + 0], 1);
    /* Gorodkin MCC: c=3, s=4, p=(2,1,1), t=(1,1,2): (12-(2+1+2))/sqrt((16-6)(16-6)) = 0.7 */
    ck_assert_double_eq_tol(m.mcc, 0.7, 1e-12);
    ck_assert(m.roc_auc > 0.8 && m.roc_auc <= 1.0);
    cml_eval_release(&m);
}
END_TEST

START_TEST(test_auc_ties_and_degenerate) {
    double s[] = {0.5, 0.5};
    int p[] = {1, 0};
    ck_assert_double_eq_tol(cml_eval_roc_auc(s, p, 2), 0.5, 1e-12);
    int all[] = {1, 1};
    ck_assert(isnan(cml_eval_roc_auc(s, all, 2)));
}
END_TEST

/* Wilson intervals against published values (Newcombe 1998, table I) and the edges. */
START_TEST(test_wilson_interval) {
    double lo, hi;
    cml_eval_wilson(81, 263, 1.959963984540054, &lo, &hi);
    ck_assert_double_eq_tol(lo, 0.2553, 5e-5);
    ck_assert_double_eq_tol(hi, 0.3662, 5e-5);
    cml_eval_wilson(15, 148, 1.959963984540054, &lo, &hi);
    ck_assert_double_eq_tol(lo, 0.0624, 5e-5);
    ck_assert_double_eq_tol(hi, 0.1605, 5e-5);
    cml_eval_wilson(0, 20, 1.959963984540054, &lo, &hi);
    ck_assert_double_eq_tol(lo, 0.0, 1e-12);
    ck_assert_double_eq_tol(hi, 0.1611, 5e-5);
    cml_eval_wilson(5, 5, 1.959963984540054, &lo, &hi);
    ck_assert_double_eq_tol(lo, 0.5655, 5e-5);
    ck_assert_double_eq_tol(hi, 1.0, 1e-12);
    cml_eval_wilson(0, 0, 1.96, &lo, &hi);
    ck_assert(isnan(lo) && isnan(hi));
}
END_TEST

/* Hard-label scores from a confusion matrix equal cml_eval_compute's on the same labels. */
START_TEST(test_label_scores) {
    /* rows actual, columns predicted: 0 -> (3 right, 1 wrong), 1 -> (2 wrong, 4 right) */
    size_t conf[] = {3, 1, 2, 4};
    cml_label_scores sc;
    cml_eval_label_scores(conf, 2, &sc);
    ck_assert_uint_eq(sc.n, 10);
    ck_assert_uint_eq(sc.correct, 7);
    ck_assert_double_eq_tol(sc.accuracy, 0.7, 1e-12);
    ck_assert_double_eq_tol(sc.recall[0], 0.75, 1e-12);
    ck_assert_double_eq_tol(sc.recall[1], 4.0 / 6.0, 1e-12);
    /* F1 of 0: 2*3/(4+5); of 1: 2*4/(6+5) */
    ck_assert_double_eq_tol(sc.f1_macro, (6.0 / 9.0 + 8.0 / 11.0) / 2, 1e-12);
    int truth[] = {0, 0, 0, 0, 1, 1, 1, 1, 1, 1};
    double probs[] = {1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0, 1};
    cml_metrics m;
    ck_assert_int_eq(cml_eval_compute(truth, probs, 10, 2, &m), CML_OK);
    ck_assert_double_eq_tol(m.f1_macro, sc.f1_macro, 1e-12);
    ck_assert_double_eq_tol(m.accuracy, sc.accuracy, 1e-12);
    cml_eval_release(&m);
    /* A label no item has: no recall, and left out of the mean when never predicted either. */
    size_t one[] = {5, 0, 0, 0};
    cml_eval_label_scores(one, 2, &sc);
    ck_assert(isnan(sc.recall[1]));
    ck_assert_double_eq_tol(sc.f1_macro, 1.0, 1e-12);
    size_t none[] = {0, 0, 0, 0};
    cml_eval_label_scores(none, 2, &sc);
    ck_assert(isnan(sc.accuracy) && isnan(sc.f1_macro));
}
END_TEST

int main(void) {
    Suite *s = suite_create("eval_metrics");
    TCase *tc = tcase_create("eval_metrics");
    tcase_add_test(tc, test_binary_metrics);
    tcase_add_test(tc, test_multiclass_metrics);
    tcase_add_test(tc, test_auc_ties_and_degenerate);
    tcase_add_test(tc, test_wilson_interval);
    tcase_add_test(tc, test_label_scores);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
