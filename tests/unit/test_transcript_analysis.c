/* Transcript analysis: turns across cues, speakers, limits, and the summary's JSON. */
#include "config.h"

#include <math.h>

#include "learn/trainer.h"
#include "model/transcript_analysis.h"
#include "unit.h"

static cml_model *model;

static void setup_model(void) {
    if (model != NULL)
        return;
    cml_dataset *ds = unit_corpus(unit_light() ? 800 : 3000);
    ck_assert_ptr_nonnull(ds);
    cml_train_options o;
    cml_train_options_init(&o, CML_MODEL_CLASSIC);
    o.cv_folds = 0;
    cml_diag d = {{0}};
    ck_assert_msg(cml_train(ds, &o, &model, NULL, &d) == CML_OK, "%s", d.msg);
    cml_dataset_free(ds);
}

static cml_transcript *vtt(const char *text) {
    cml_transcript *t = NULL;
    cml_diag d = {{0}};
    ck_assert_msg(cml_transcript_parse(text, strlen(text), CML_TRANSCRIPT_VTT, NULL, &t, &d) ==
                      CML_OK,
                  "%s", d.msg);
    return t;
}

static const char lesson[] = "WEBVTT\n\n"
                             "00:01.000 --> 00:02.000\n<v T>Look at the ramp. Why does the car\n\n"
                             "00:02.000 --> 00:03.000\n<v T>go so fast?\n\n"
                             "00:03.000 --> 00:04.000\n<v K>Because it's steep\n\n"
                             "00:04.000 --> 00:05.000\n<v T>Is it steep? What colour is it?\n";

START_TEST(test_questions_across_cues) {
    setup_model();
    cml_transcript *t = vtt(lesson);
    cml_feature_scratch *s = cml_feature_scratch_new();
    cml_analysis *a = NULL;
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_transcript_analyze(model, s, t, NULL, &a, &d), CML_OK);
    ck_assert_uint_eq(a->n, 3);
    ck_assert_str_eq(a->questions[0].text, "Why does the car go so fast?");
    ck_assert_double_eq_tol(a->questions[0].start_s, 1.0, 1e-9);
    ck_assert_double_eq_tol(a->questions[0].end_s, 3.0, 1e-9);
    ck_assert_str_eq(a->questions[0].speaker, "T");
    ck_assert_str_eq(a->questions[1].text, "Is it steep?");
    ck_assert_str_eq(a->questions[2].text, "What colour is it?");
    ck_assert_str_eq(model->labels[a->questions[2].label], "CEQ");

    json_object *j = cml_analysis_json(model, t, a), *v;
    ck_assert(json_object_object_get_ex(j, "summary", &v));
    json_object *n;
    ck_assert(json_object_object_get_ex(v, "questions", &n) && json_object_get_int(n) == 3);
    ck_assert(json_object_object_get_ex(v, "duration_s", &n) &&
              fabs(json_object_get_double(n) - 4.0) < 1e-9);
    json_object_put(j);
    cml_analysis_free(a);

    /* One speaker only; then a limit on the number of questions. */
    const char *only[] = {"K"};
    cml_analysis_options o = {.speakers = only, .n_speakers = 1};
    ck_assert_int_eq(cml_transcript_analyze(model, s, t, &o, &a, &d), CML_OK);
    ck_assert_uint_eq(a->n, 0);
    cml_analysis_free(a);
    cml_analysis_options lim = {.max_questions = 2};
    ck_assert_int_eq(cml_transcript_analyze(model, s, t, &lim, &a, &d), CML_ERR_DATA);
    ck_assert_ptr_null(a);
    ck_assert_ptr_nonnull(strstr(d.msg, "more than 2 questions"));
    cml_analysis_free(NULL);
    cml_feature_scratch_free(s);
    cml_transcript_free(t);
}
END_TEST

int main(void) {
    Suite *s = suite_create("transcript_analysis");
    TCase *tc = tcase_create("analyze");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_questions_across_cues);
    suite_add_tcase(s, tc);
    int rc = unit_run(s);
    cml_model_release(model);
    return rc;
}
