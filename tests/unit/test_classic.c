/*
 * The classic model on the bundled data: quality bars on the held-out split,
 * determinism, and golden predictions (tests/unit/golden_questions.tsv) so
 * that any drift in normalisation, features or training is caught.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>

#include "base/cml_alloc.h"
#include "model/model_file.h"
#include "learn/trainer.h"
#include "unit.h"

static cml_model *train_classic(size_t folds, cml_train_report *rep) {
    cml_dataset *ds = unit_corpus(unit_light() ? 600 : 0);
    cml_train_options o;
    cml_diag d = {{0}};
    cml_model *m = NULL;
    ck_assert_ptr_nonnull(ds);
    cml_train_options_init(&o, CML_MODEL_CLASSIC);
    o.cv_folds = folds;
    cml_err err = cml_train(ds, &o, &m, rep, &d);
    ck_assert_msg(err == CML_OK, "training failed: %s", d.msg);
    cml_dataset_free(ds);
    return m;
}

START_TEST(test_quality_bars) {
    if (unit_light())
        return; /* measured by the full run */
    cml_train_report rep;
    cml_model *m = train_classic(5, &rep);
    const cml_metrics *h = &rep.members[rep.n_members].holdout;
    ck_assert_uint_eq(rep.n_members, 1);
    ck_assert_msg(h->f1_macro >= 0.90, "held-out macro F1 %.4f", h->f1_macro);
    for (size_t c = 0; c < h->n_labels; c++)
        ck_assert_msg(h->per_class[c].recall >= 0.85, "recall of %s %.4f", m->labels[c],
                      h->per_class[c].recall);
    ck_assert(h->roc_auc >= 0.95);
    ck_assert_uint_gt(rep.members[0].cv.n, 3000); /* CV ran on the training split only */
    cml_dataset *all = unit_corpus(0);
    ck_assert_uint_eq(rep.members[0].cv.n + h->n, all->n); /* every row in exactly one split */
    cml_dataset_free(all);
    cml_train_report_release(&rep);
    cml_model_release(m);
}
END_TEST

START_TEST(test_deterministic) {
    cml_model *a = train_classic(0, NULL), *b = train_classic(0, NULL);
    static const char *texts[] = {"What do you think will happen?", "is it red", "huh?",
                                  "tell me about your tower", "which one is bigger and why"};
    cml_feature_scratch *s = cml_feature_scratch_new();
    /* Same data and seed: same features and the same probabilities, bit for bit. */
    ck_assert_str_eq(a->data_sha256, b->data_sha256);
    ck_assert_uint_eq(cml_featurizer_n_cols(a->features), cml_featurizer_n_cols(b->features));
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        cml_prediction pa, pb;
        ck_assert_int_eq(cml_model_predict(a, s, texts[i], strlen(texts[i]), &pa), CML_OK);
        ck_assert_int_eq(cml_model_predict(b, s, texts[i], strlen(texts[i]), &pb), CML_OK);
        ck_assert_mem_eq(pa.probs, pb.probs, a->n_labels * sizeof(double));
    }
    cml_feature_scratch_free(s);
    cml_model_release(a);
    cml_model_release(b);
}
END_TEST

START_TEST(test_golden_predictions) {
    if (unit_light())
        return; /* the golden values belong to the model of the whole corpus */
    char path[1024];
    const char *top = getenv("CML_TOP_SRCDIR");
    snprintf(path, sizeof path, "%s/tests/unit/golden_questions.tsv", top ? top : ".");
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    cml_model *m = train_classic(0, NULL);
    cml_feature_scratch *s = cml_feature_scratch_new();
    char line[1024];
    int checked = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char label[16], *text;
        double p_oeq;
        ck_assert_int_eq(sscanf(line, "%15s %lf", label, &p_oeq), 2);
        text = strchr(strchr(line, '\t') + 1, '\t') + 1;
        text[strcspn(text, "\n")] = '\0';
        cml_prediction p;
        ck_assert_int_eq(cml_model_predict(m, s, text, strlen(text), &p), CML_OK);
        ck_assert_msg(strcmp(m->labels[p.label], label) == 0, "'%s': %s, golden %s", text,
                      m->labels[p.label], label);
        ck_assert_msg(fabs(p.probs[1] - p_oeq) < 0.02, "'%s': P(OEQ) %.3f, golden %.3f", text,
                      p.probs[1], p_oeq);
        checked++;
    }
    fclose(f);
    ck_assert_int_ge(checked, 30);
    cml_feature_scratch_free(s);
    cml_model_release(m);
}
END_TEST

START_TEST(test_unusable_data) {
    cml_dataset *ds = unit_corpus(15);
    cml_train_options o;
    cml_diag d;
    cml_model *m;
    cml_train_options_init(&o, CML_MODEL_CLASSIC);
    ck_assert_int_eq(cml_train(ds, &o, &m, NULL, &d), CML_ERR_DATA);
    ck_assert_ptr_nonnull(strstr(d.msg, "at least"));
    cml_dataset_free(ds);
}
END_TEST

int main(void) {
    Suite *s = suite_create("classic");
    TCase *tc = tcase_create("classic");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_quality_bars);
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_golden_predictions);
    tcase_add_test(tc, test_unusable_data);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
