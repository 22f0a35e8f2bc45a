/* Metrics against hand-computed values; stratified split and folds; Platt scaling. */
#include "config.h"

#include <math.h>

#include "learn/calibration.h"
#include "learn/data_split.h"
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

START_TEST(test_stratified_split) {
    enum { N = 1000 };
    int y[N];
    for (int i = 0; i < N; i++)
        y[i] = i % 10 < 3; /* 30 % label 1 */
    size_t tr[N], te[N], ntr, nte, tr2[N], te2[N], ntr2, nte2;
    ck_assert_int_eq(cml_stratified_split(y, N, 2, 0.2, 7, tr, &ntr, te, &nte), CML_OK);
    ck_assert_uint_eq(ntr + nte, N);
    ck_assert_uint_eq(nte, 200);
    size_t ones = 0;
    char seen[N] = {0};
    for (size_t i = 0; i < nte; i++) {
        ones += (size_t)y[te[i]];
        seen[te[i]]++;
    }
    for (size_t i = 0; i < ntr; i++)
        seen[tr[i]]++;
    ck_assert_uint_eq(ones, 60);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(seen[i], 1);
    /* Same seed, same split; another seed, another split. */
    cml_stratified_split(y, N, 2, 0.2, 7, tr2, &ntr2, te2, &nte2);
    ck_assert_mem_eq(te, te2, nte * sizeof(size_t));
    cml_stratified_split(y, N, 2, 0.2, 8, tr2, &ntr2, te2, &nte2);
    ck_assert(memcmp(te, te2, nte * sizeof(size_t)) != 0);
}
END_TEST

START_TEST(test_stratified_folds) {
    enum { N = 103 };
    int y[N];
    size_t fold[N], per[5][2] = {{0}};
    for (int i = 0; i < N; i++)
        y[i] = i % 3 == 0;
    ck_assert_int_eq(cml_stratified_folds(y, N, 2, 5, 1, fold), CML_OK);
    for (int i = 0; i < N; i++) {
        ck_assert_uint_lt(fold[i], 5);
        per[fold[i]][y[i]]++;
    }
    for (int f = 0; f < 5; f++)
        for (int c = 0; c < 2; c++)
            ck_assert_msg(per[f][c] >= (c ? 6 : 13) && per[f][c] <= (c ? 7 : 14),
                          "fold %d label %d has %zu", f, c, per[f][c]);
    ck_assert_int_eq(cml_stratified_folds(y, N, 2, 1, 1, fold), CML_ERR_INVALID);
}
END_TEST

START_TEST(test_platt) {
    /* Decision values that separate well give a steep, correctly oriented sigmoid. */
    double dec[200];
    bool pos[200];
    for (int i = 0; i < 200; i++) {
        pos[i] = i % 2;
        dec[i] = (pos[i] ? 1.0 : -1.0) + ((i * 37) % 11 - 5) / 10.0;
    }
    cml_platt p = cml_platt_fit(dec, pos, 200);
    ck_assert(p.a < 0);
    ck_assert(cml_platt_apply(p, 2.0) > 0.9);
    ck_assert(cml_platt_apply(p, -2.0) < 0.1);
    /* One class only: the fallback, never NaN. */
    bool none[3] = {false, false, false};
    cml_platt f = cml_platt_fit(dec, none, 3);
    ck_assert_double_eq(f.a, -1.0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, test_binary_metrics);
    tcase_add_test(tc, test_multiclass_metrics);
    tcase_add_test(tc, test_auc_ties_and_degenerate);
    tcase_add_test(tc, test_stratified_split);
    tcase_add_test(tc, test_stratified_folds);
    tcase_add_test(tc, test_platt);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
