/* The question-form features, the featurizer and its scratch (text/text_features.c). */
#include "config.h"

#include "text/text_features.h"
#include "unit.h"

START_TEST(test_focus_is_the_question) {
    cml_normalized n = {0};
    const char *t =
        "Wow, look at that tower. You used so many blocks! How did you make it stand up? Nice.";
    ck_assert_int_eq(cml_normalize(t, strlen(t), &n), CML_OK);
    ck_assert_uint_eq(n.n_sentences, 4);
    ck_assert_str_eq(cml_token_str(&n, n.sentences[n.focus].first), "how");
    cml_normalized_release(&n);
    /* Without punctuation the question opener decides. */
    const char *u = "you used lots of blue. tell me about it";
    ck_assert_int_eq(cml_normalize(u, strlen(u), &n), CML_OK);
    ck_assert_str_eq(cml_token_str(&n, n.sentences[n.focus].first), "tell");
    cml_normalized_release(&n);
}
END_TEST

static int hand_index(const char *name) {
    for (int i = 0; i < CML_HAND_FEATURES; i++)
        if (strcmp(cml_hand_feature_names[i], name) == 0)
            return i;
    return -1;
}

static float hand(cml_feature_scratch *s, const char *text, const char *name) {
    float h[CML_HAND_FEATURES];
    ck_assert_int_eq(cml_hand_features(s, text, strlen(text), h), CML_OK);
    int i = hand_index(name);
    ck_assert_int_ge(i, 0);
    return h[i];
}

START_TEST(test_hand_features) {
    cml_feature_scratch *s = cml_feature_scratch_new();
    ck_assert_float_eq(hand(s, "How many apples are left?", "how_many_much"), 1);
    ck_assert_float_eq(hand(s, "What colour is it?", "what_color_shape"), 1);
    ck_assert_float_eq(hand(s, "Do you want milk or water?", "focus_has_or"), 1);
    ck_assert_float_eq(hand(s, "That's big, isn't it?", "tag_question"), 1);
    ck_assert_float_eq(hand(s, "You like it, right?", "tag_question"), 1);
    ck_assert_float_eq(hand(s, "Is it big?", "tag_question"), 0);
    ck_assert_float_eq(hand(s, "can you tell me how you built it", "can_you_invitation"), 1);
    ck_assert_float_eq(hand(s, "can you put it away", "can_you_invitation"), 0);
    ck_assert_float_eq(hand(s, "I wonder why the ice melted", "i_wonder_lets_think"), 1);
    ck_assert_float_eq(hand(s, "what do ya think will happen", "what_do_you_think"), 1);
    ck_assert_float_eq(hand(s, "how did you do that", "how_process"), 1);
    ck_assert_float_eq(hand(s, "how old are you", "how_adjective"), 1);
    ck_assert_float_eq(hand(s, "why don't you sit down", "why_dont_you"), 1);
    ck_assert_float_eq(hand(s, "Nice. Is it heavy", "focus_opens_aux"), 1);
    ck_assert_float_eq(hand(s, "huh?", "very_short"), 1);
    cml_feature_scratch_free(s);
    cml_feature_scratch_free(NULL);
}
END_TEST

START_TEST(test_features_same_path_for_training_and_serving) {
    cml_dataset *ds = unit_corpus(300);
    cml_featurizer *f;
    cml_csr X;
    ck_assert_ptr_nonnull(ds);
    ck_assert_int_eq(cml_featurizer_fit(ds, NULL, &f), CML_OK);
    ck_assert_int_eq(cml_features_matrix(f, ds, &X), CML_OK);
    cml_feature_scratch *s = cml_feature_scratch_new();
    for (size_t r = 0; r < ds->n; r += 37) {
        cml_sparse x;
        ck_assert_int_eq(cml_features_extract(f, s, ds->texts[r], strlen(ds->texts[r]), &x),
                         CML_OK);
        ck_assert_int_eq(x.n, (int)(X.indptr[r + 1] - X.indptr[r]));
        /* Same (column, value) set; the matrix row is sorted, the extraction is not. */
        for (int i = 0; i < x.n; i++) {
            bool found = false;
            for (size_t k = X.indptr[r]; k < X.indptr[r + 1]; k++)
                if (X.indices[k] == x.idx[i] && X.values[k] == x.val[i])
                    found = true;
            ck_assert_msg(found, "row %zu column %d differs", r, x.idx[i]);
        }
    }
    /* Sorted, unique, in range. */
    for (size_t r = 0; r < X.n_rows; r++)
        for (size_t k = X.indptr[r] + 1; k < X.indptr[r + 1]; k++)
            ck_assert_int_lt(X.indices[k - 1], X.indices[k]);
    ck_assert_int_lt(X.indices[X.indptr[X.n_rows] - 1], (int)X.n_cols);
    cml_feature_scratch_free(s);
    cml_csr_free(&X);
    cml_featurizer_free(f);
    cml_dataset_free(ds);
}
END_TEST

START_TEST(test_featurizer_round_trip_and_corruption) {
    cml_dataset *ds = unit_corpus(200);
    cml_featurizer *f, *g;
    uint8_t *buf;
    size_t len;
    cml_diag d;
    ck_assert_int_eq(cml_featurizer_fit(ds, NULL, &f), CML_OK);
    ck_assert_int_eq(cml_featurizer_serialize(f, &buf, &len), CML_OK);
    ck_assert_int_eq(cml_featurizer_deserialize(buf, len, &g, &d), CML_OK);
    ck_assert_uint_eq(cml_featurizer_n_cols(f), cml_featurizer_n_cols(g));
    cml_feature_scratch *s = cml_feature_scratch_new();
    cml_sparse a, b;
    const char *t = "what do you think will happen next?";
    ck_assert_int_eq(cml_features_extract(f, s, t, strlen(t), &a), CML_OK);
    int n = a.n;
    float first = a.val[n - 1];
    ck_assert_int_eq(cml_features_extract(g, s, t, strlen(t), &b), CML_OK);
    ck_assert_int_eq(b.n, n);
    ck_assert(b.val[n - 1] == first);
    cml_featurizer_free(g);
    /* Truncated: refused. */
    ck_assert_int_ne(cml_featurizer_deserialize(buf, len - 5, &g, &d), CML_OK);
    ck_assert_ptr_null(g);
    cml_feature_scratch_free(s);
    cml_featurizer_free(f);
    free(buf);
    cml_dataset_free(ds);
}
END_TEST

START_TEST(test_long_text) {
    /* A 10,000-character utterance extracts without trouble. */
    char *t = malloc(10001);
    for (int i = 0; i < 10000; i++)
        t[i] = "why is the sky blue? "[i % 21];
    t[10000] = '\0';
    cml_dataset *ds = unit_corpus(100);
    cml_featurizer *f;
    ck_assert_int_eq(cml_featurizer_fit(ds, NULL, &f), CML_OK);
    cml_feature_scratch *s = cml_feature_scratch_new();
    cml_sparse x;
    ck_assert_int_eq(cml_features_extract(f, s, t, 10000, &x), CML_OK);
    ck_assert_int_gt(x.n, 0);
    cml_feature_scratch_free(s);
    cml_featurizer_free(f);
    cml_dataset_free(ds);
    free(t);
}
END_TEST

/* Two extractions of text: one through s (warm caches), one through a new scratch (cold). */
static void expect_same_as_cold(const cml_featurizer *f, cml_feature_scratch *s, const char *text) {
    cml_feature_scratch *cold = cml_feature_scratch_new();
    cml_sparse a, b;
    ck_assert_int_eq(cml_features_extract(f, s, text, strlen(text), &a), CML_OK);
    ck_assert_int_eq(cml_features_extract(f, cold, text, strlen(text), &b), CML_OK);
    ck_assert_int_eq(a.n, b.n);
    for (int i = 0; i < a.n; i++) {
        ck_assert_int_eq(a.idx[i], b.idx[i]);
        ck_assert_msg(a.val[i] == b.val[i], "\"%s\": column %d differs", text, a.idx[i]);
    }
    cml_feature_scratch_free(cold);
}

START_TEST(test_scratch_shared_by_featurizers) {
    /* One scratch serves models with different vocabularies (classic and ensemble in one
       worker, or a model swapped for a retrained one): what it cached for one never leaks
       into another's features, even when the new featurizer reuses the old one's memory. */
    cml_dataset *small = unit_corpus(150), *large = unit_corpus(900);
    cml_featurizer *f, *g;
    cml_feature_scratch *s = cml_feature_scratch_new();
    const char *texts[] = {"what do you think will happen next?", "is the tower tall?",
                           "tell me about your drawing", "which one is heavier, the rock?"};
    ck_assert_int_eq(cml_featurizer_fit(small, NULL, &f), CML_OK);
    ck_assert_int_eq(cml_featurizer_fit(large, NULL, &g), CML_OK);
    ck_assert_uint_ne(cml_featurizer_n_cols(f), cml_featurizer_n_cols(g));
    for (size_t round = 0; round < 2; round++)
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
            expect_same_as_cold(f, s, texts[i]);
            expect_same_as_cold(g, s, texts[i]);
        }
    for (int i = 0; i < 3; i++) {
        cml_featurizer_free(f);
        ck_assert_int_eq(cml_featurizer_fit(i % 2 ? small : large, NULL, &f), CML_OK);
        expect_same_as_cold(f, s, texts[0]);
    }
    cml_feature_scratch_free(s);
    cml_featurizer_free(f);
    cml_featurizer_free(g);
    cml_dataset_free(small);
    cml_dataset_free(large);
}
END_TEST

START_TEST(test_scratch_caches_fill_and_recycle) {
    /* Every word of the corpus through one scratch, twice: more words than the caches hold,
       so entries are replaced and the position pool starts over; answers stay those of a cold
       scratch. */
    cml_dataset *ds = unit_corpus(0);
    cml_featurizer *f;
    ck_assert_int_eq(cml_featurizer_fit(ds, NULL, &f), CML_OK);
    cml_feature_scratch *s = cml_feature_scratch_new();
    cml_sparse x;
    for (int pass = 0; pass < 2; pass++)
        for (size_t r = 0; r < ds->n; r++)
            ck_assert_int_eq(cml_features_extract(f, s, ds->texts[r], strlen(ds->texts[r]), &x),
                             CML_OK);
    for (size_t r = 0; r < ds->n; r += 97)
        expect_same_as_cold(f, s, ds->texts[r]);
    cml_feature_scratch_free(s);
    cml_featurizer_free(f);
    cml_dataset_free(ds);
}
END_TEST

int main(void) {
    Suite *s = suite_create("text_features");
    TCase *tf = tcase_create("features");
    tcase_set_timeout(tf, 60);
    tcase_add_test(tf, test_focus_is_the_question);
    tcase_add_test(tf, test_hand_features);
    tcase_add_test(tf, test_features_same_path_for_training_and_serving);
    tcase_add_test(tf, test_featurizer_round_trip_and_corruption);
    tcase_add_test(tf, test_long_text);
    tcase_add_test(tf, test_scratch_shared_by_featurizers);
    tcase_add_test(tf, test_scratch_caches_fill_and_recycle);
    suite_add_tcase(s, tf);
    return unit_run(s);
}
