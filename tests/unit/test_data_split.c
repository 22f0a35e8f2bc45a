/* The stratified split and folds (learn/data_split.c). */
#include "config.h"

#include <math.h>

#include "learn/data_split.h"
#include "unit.h"

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

int main(void) {
    Suite *s = suite_create("data_split");
    TCase *tc = tcase_create("data_split");
    tcase_add_test(tc, test_stratified_split);
    tcase_add_test(tc, test_stratified_folds);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
