/* Word tables (base/word_table.c). */
#include "config.h"

#include "unit.h"
#include "base/word_table.h"

START_TEST(test_word_table) {
    cml_word_slot slots[8] = {0};
    cml_word_table t = {slots, 8, 0};
    ck_assert_int_eq(cml_word_table_add(&t, "gonna", 0, "going to"), 0);
    ck_assert_int_eq(cml_word_table_add(&t, "what", 1, NULL), 0);
    ck_assert_int_eq(cml_word_table_add(&t, "what", 4, NULL), 0); /* bits merge */
    ck_assert_int_eq(cml_word_table_add_n(&t, "how many", 3, 2, NULL), 0);
    ck_assert_uint_eq(t.n_words, 3);
    ck_assert_uint_eq(cml_word_table_bits(&t, "what", 4), 5);
    ck_assert_uint_eq(cml_word_table_bits(&t, "how", 3), 2);
    ck_assert_str_eq(cml_word_table_find(&t, "gonna", 5)->text, "going to");
    ck_assert_ptr_null(cml_word_table_find(&t, "gonn", 4));     /* a prefix is another word */
    ck_assert_ptr_nonnull(cml_word_table_find(&t, "whatx", 4)); /* the first 4 bytes */
    ck_assert_uint_eq(cml_word_table_bits(&t, "why", 3), 0);
    /* At most half full, so a miss always ends at an empty slot. */
    ck_assert_int_eq(cml_word_table_add(&t, "four", 0, NULL), 0);
    ck_assert_int_eq(cml_word_table_add(&t, "five", 0, NULL), -1);
    ck_assert_ptr_null(cml_word_table_find(&t, "five", 4));
    ck_assert_int_eq(cml_word_table_add(&t, "four", 8, NULL), 0); /* an update still fits */
}
END_TEST

int main(void) {
    Suite *s = suite_create("word_table");
    TCase *tc = tcase_create("word_table");
    tcase_add_test(tc, test_word_table);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
