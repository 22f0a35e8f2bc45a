/*
 * The model registry: loading from the local store with a warm-up, swaps
 * that leave acquired models valid until released, failed loads that change
 * nothing, and the slot information.
 */
#include "config.h"

#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cml_alloc.h"
#include "model/local_store.h"
#include "model/model_file.h"
#include "model/model_registry.h"
#include "learn/trainer.h"
#include "unit.h"

#define V1 "20260101T000000.000Z"
#define V2 "20260202T000000.000Z"

static char store[64];
static cml_model *trained; /* version V2, also saved as V1 and V2 in the store */

static int remove_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* Trains one tiny classic model and saves it as two versions (once, in the runner). */
static void shared_setup(void) {
    cml_dataset *ds = unit_corpus(200);
    cml_train_options o;
    cml_diag d = {{0}};
    ck_assert_ptr_nonnull(ds);
    cml_train_options_init(&o, CML_MODEL_CLASSIC);
    o.cv_folds = 0;
    o.n_threads = 1;
    ck_assert_msg(cml_train(ds, &o, &trained, NULL, &d) == CML_OK, "training: %s", d.msg);
    cml_dataset_free(ds);
    snprintf(store, sizeof store, "/tmp/cml-registry-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(store));
    snprintf(trained->version, sizeof trained->version, "%s", V1);
    ck_assert_msg(cml_local_store_save(store, trained, false, &d) == CML_OK, "%s", d.msg);
    snprintf(trained->version, sizeof trained->version, "%s", V2);
    ck_assert_msg(cml_local_store_save(store, trained, true, &d) == CML_OK, "%s", d.msg);
}

static void shared_teardown(void) {
    cml_model_release(trained);
    trained = NULL;
    nftw(store, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int refs_of(cml_model *m) { return atomic_load(&m->refs); }

static double prob_sum(const cml_model *m) {
    static const char *text = "why is the sky blue";
    cml_feature_scratch *s = cml_feature_scratch_new();
    cml_prediction p;
    ck_assert_int_eq(cml_model_predict(m, s, text, strlen(text), &p), CML_OK);
    cml_feature_scratch_free(s);
    double sum = 0;
    for (size_t c = 0; c < m->n_labels; c++)
        sum += p.probs[c];
    return sum;
}

static void load_ok(cml_registry *r, cml_model_type type, const char *version) {
    cml_diag d = {{0}};
    ck_assert_msg(cml_registry_load(r, type, version, &d) == CML_OK, "load %s: %s", version, d.msg);
}

START_TEST(test_empty_registry) {
    cml_registry *r = cml_registry_new(store);
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_null(cml_registry_acquire(r, CML_MODEL_CLASSIC));
    ck_assert_ptr_null(cml_registry_acquire(r, CML_MODEL_ENSEMBLE));
    ck_assert_ptr_null(cml_registry_acquire(r, (cml_model_type)0));
    ck_assert_ptr_null(cml_registry_acquire(r, (cml_model_type)7));
    cml_slot_info info;
    memset(&info, 0xff, sizeof info);
    cml_registry_info(r, CML_MODEL_CLASSIC, &info);
    ck_assert(!info.loaded);
    ck_assert_str_eq(info.version, "");
    ck_assert_uint_eq(info.loads, 0);
    ck_assert_uint_eq(info.failures, 0);
    ck_assert_uint_eq(info.bytes, 0);
    memset(&info, 0xff, sizeof info);
    cml_registry_info(r, (cml_model_type)9, &info);
    ck_assert(!info.loaded);
    cml_registry_free(r);
    cml_registry_free(NULL);
}
END_TEST

START_TEST(test_load_fills_slot) {
    cml_registry *r = cml_registry_new(store);
    int64_t t0 = (int64_t)time(NULL);
    load_ok(r, CML_MODEL_CLASSIC, V1);
    cml_slot_info info;
    cml_registry_info(r, CML_MODEL_CLASSIC, &info);
    ck_assert(info.loaded);
    ck_assert_str_eq(info.version, V1);
    ck_assert_uint_eq(info.loads, 1);
    ck_assert_uint_eq(info.failures, 0);
    ck_assert_uint_gt(info.bytes, 0);
    ck_assert_int_ge(info.loaded_at, t0);
    ck_assert_int_le(info.loaded_at, (int64_t)time(NULL));
    ck_assert(info.warmup_ms >= 0 && isfinite(info.warmup_ms));
    cml_model *m = cml_registry_acquire(r, CML_MODEL_CLASSIC);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(m->version, V1);
    ck_assert_int_eq(m->type, CML_MODEL_CLASSIC);
    ck_assert_int_eq(refs_of(m), 2); /* the slot's and ours */
    cml_model_release(m);
    /* The other slot is untouched. */
    cml_registry_info(r, CML_MODEL_ENSEMBLE, &info);
    ck_assert(!info.loaded);
    ck_assert_uint_eq(info.loads, 0);
    ck_assert_ptr_null(cml_registry_acquire(r, CML_MODEL_ENSEMBLE));
    cml_registry_free(r);
}
END_TEST

START_TEST(test_acquired_model_survives_swap) {
    cml_registry *r = cml_registry_new(store);
    load_ok(r, CML_MODEL_CLASSIC, V1);
    cml_model *old = cml_registry_acquire(r, CML_MODEL_CLASSIC);
    ck_assert_ptr_nonnull(old);
    load_ok(r, CML_MODEL_CLASSIC, V2);
    /* The registry let go of V1; our reference keeps it whole and usable. */
    ck_assert_int_eq(refs_of(old), 1);
    ck_assert_str_eq(old->version, V1);
    ck_assert_double_eq_tol(prob_sum(old), 1.0, 1e-9);
    cml_model *now = cml_registry_acquire(r, CML_MODEL_CLASSIC);
    ck_assert_ptr_nonnull(now);
    ck_assert_ptr_ne(now, old);
    ck_assert_str_eq(now->version, V2);
    cml_slot_info info;
    cml_registry_info(r, CML_MODEL_CLASSIC, &info);
    ck_assert_str_eq(info.version, V2);
    ck_assert_uint_eq(info.loads, 2);
    cml_model_release(now);
    /* The registry goes first; the model we hold still answers. */
    cml_registry_free(r);
    ck_assert_double_eq_tol(prob_sum(old), 1.0, 1e-9);
    cml_model_release(old);
}
END_TEST

static void expect_unchanged(cml_registry *r, uint64_t failures) {
    cml_slot_info info;
    cml_registry_info(r, CML_MODEL_CLASSIC, &info);
    ck_assert(info.loaded);
    ck_assert_str_eq(info.version, V1);
    ck_assert_uint_eq(info.loads, 1);
    ck_assert_uint_eq(info.failures, failures);
    cml_model *m = cml_registry_acquire(r, CML_MODEL_CLASSIC);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(m->version, V1);
    cml_model_release(m);
}

START_TEST(test_missing_version_changes_nothing) {
    cml_registry *r = cml_registry_new(store);
    cml_diag d = {{0}};
    load_ok(r, CML_MODEL_CLASSIC, V1);
    ck_assert_int_eq(cml_registry_load(r, CML_MODEL_CLASSIC, "20990101T000000.000Z", &d),
                     CML_ERR_NOT_FOUND);
    expect_unchanged(r, 1);
    cml_registry_free(r);
}
END_TEST

START_TEST(test_corrupt_file_changes_nothing) {
    cml_registry *r = cml_registry_new(store);
    cml_diag d = {{0}};
    char path[256];
    load_ok(r, CML_MODEL_CLASSIC, V1);
    cml_local_store_path(store, "classic", "garbage", path, sizeof path);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("this is not a model file, not even close to one\n", f);
    fclose(f);
    cml_err err = cml_registry_load(r, CML_MODEL_CLASSIC, "garbage", &d);
    unlink(path);
    ck_assert_int_eq(err, CML_ERR_FORMAT);
    ck_assert_str_ne(d.msg, "");
    expect_unchanged(r, 1);
    cml_registry_free(r);
}
END_TEST

START_TEST(test_file_of_other_type_refused) {
    cml_registry *r = cml_registry_new(store);
    cml_diag d = {{0}};
    char from[256], to[256];
    cml_local_store_path(store, "classic", V1, from, sizeof from);
    cml_local_store_path(store, "ensemble", V1, to, sizeof to);
    ck_assert_int_eq(link(from, to), 0);
    cml_err err = cml_registry_load(r, CML_MODEL_ENSEMBLE, V1, &d);
    unlink(to);
    ck_assert_int_eq(err, CML_ERR_FORMAT);
    ck_assert_msg(strstr(d.msg, "holds a classic model") != NULL, "%s", d.msg);
    cml_slot_info info;
    cml_registry_info(r, CML_MODEL_ENSEMBLE, &info);
    ck_assert(!info.loaded);
    ck_assert_uint_eq(info.loads, 0);
    ck_assert_uint_eq(info.failures, 1);
    ck_assert_ptr_null(cml_registry_acquire(r, CML_MODEL_ENSEMBLE));
    cml_registry_free(r);
}
END_TEST

START_TEST(test_bad_type_or_version_refused) {
    cml_registry *r = cml_registry_new(store);
    cml_diag d = {{0}};
    load_ok(r, CML_MODEL_CLASSIC, V1);
    ck_assert_int_eq(cml_registry_load(r, CML_MODEL_CLASSIC, "../" V1, &d), CML_ERR_INVALID);
    ck_assert_int_eq(cml_registry_load(r, CML_MODEL_CLASSIC, "", &d), CML_ERR_INVALID);
    ck_assert_int_eq(cml_registry_load(r, (cml_model_type)0, V1, &d), CML_ERR_INVALID);
    ck_assert_int_eq(cml_registry_load(r, (cml_model_type)5, V1, &d), CML_ERR_INVALID);
    cml_slot_info info;
    cml_registry_info(r, CML_MODEL_CLASSIC, &info);
    ck_assert_str_eq(info.version, V1);
    ck_assert_uint_eq(info.loads, 1);
    cml_registry_free(r);
}
END_TEST

START_TEST(test_install_takes_reference) {
    cml_registry *r = cml_registry_new(store);
    cml_diag d = {{0}};
    int refs = refs_of(trained);
    ck_assert_int_eq(cml_registry_install(r, trained, &d), CML_OK);
    ck_assert_int_eq(refs_of(trained), refs + 1);
    cml_model *m = cml_registry_acquire(r, CML_MODEL_CLASSIC);
    ck_assert_ptr_eq(m, trained);
    cml_model_release(m);
    cml_slot_info info;
    cml_registry_info(r, CML_MODEL_CLASSIC, &info);
    ck_assert(info.loaded);
    ck_assert_str_eq(info.version, V2);
    ck_assert_uint_eq(info.loads, 1);
    /* Swapped out: the registry's reference goes. */
    load_ok(r, CML_MODEL_CLASSIC, V1);
    ck_assert_int_eq(refs_of(trained), refs);
    ck_assert_int_eq(cml_registry_install(r, trained, &d), CML_OK);
    cml_registry_free(r);
    ck_assert_int_eq(refs_of(trained), refs);
}
END_TEST

/* Member predictions that a warm-up must refuse. */
static cml_err predict_fails(const void *state, const cml_sparse *x, double *probs) {
    (void)state;
    (void)x;
    (void)probs;
    return CML_ERR_INTERNAL;
}

static size_t fake_labels;

static cml_err predict_nan(const void *state, const cml_sparse *x, double *probs) {
    (void)state;
    (void)x;
    for (size_t c = 0; c < fake_labels; c++)
        probs[c] = NAN;
    return CML_OK;
}

static cml_err predict_no_distribution(const void *state, const cml_sparse *x, double *probs) {
    (void)state;
    (void)x;
    for (size_t c = 0; c < fake_labels; c++)
        probs[c] = 0.9;
    return CML_OK;
}

static cml_err predict_out_of_range(const void *state, const cml_sparse *x, double *probs) {
    (void)state;
    (void)x;
    for (size_t c = 0; c < fake_labels; c++)
        probs[c] = c == 0 ? 1.5 : -0.5 / (double)(fake_labels - 1);
    return CML_OK;
}

static const struct {
    cml_err (*predict)(const void *, const cml_sparse *, double *);
    cml_err want;
} broken[] = {
    {predict_fails, CML_ERR_INTERNAL},
    {predict_nan, CML_ERR_FORMAT},
    {predict_no_distribution, CML_ERR_FORMAT},
    {predict_out_of_range, CML_ERR_FORMAT},
};

START_TEST(test_install_refuses_model_that_cannot_answer) {
    cml_registry *r = cml_registry_new(store);
    cml_diag d = {{0}};
    load_ok(r, CML_MODEL_CLASSIC, V1);
    int refs = refs_of(trained);
    cml_member_ops ops = *trained->members[0].ops;
    const cml_member_ops *real = trained->members[0].ops;
    ops.predict = broken[_i].predict;
    fake_labels = trained->n_labels;
    trained->members[0].ops = &ops;
    double ms = -1;
    cml_err warm = cml_model_warm_up(trained, &ms, NULL);
    cml_err err = cml_registry_install(r, trained, &d);
    trained->members[0].ops = real;
    ck_assert_int_eq(warm, broken[_i].want);
    ck_assert_int_eq(err, broken[_i].want);
    ck_assert_str_ne(d.msg, "");
    ck_assert_int_eq(refs_of(trained), refs);
    expect_unchanged(r, 0);
    cml_registry_free(r);
}
END_TEST

START_TEST(test_warm_up) {
    cml_diag d = {{0}};
    double ms = -1;
    ck_assert_int_eq(cml_model_warm_up(trained, &ms, &d), CML_OK);
    ck_assert(ms >= 0 && isfinite(ms));
    ck_assert_int_eq(cml_model_warm_up(trained, NULL, NULL), CML_OK);
}
END_TEST

typedef struct reader {
    cml_registry *r;
    int rounds, bad;
} reader;

static void *read_loop(void *arg) {
    reader *rd = arg;
    cml_feature_scratch *s = cml_feature_scratch_new();
    static const char *text = "what happens next?";
    for (int i = 0; i < rd->rounds; i++) {
        cml_model *m = cml_registry_acquire(rd->r, CML_MODEL_CLASSIC);
        cml_prediction p;
        if (m == NULL || (strcmp(m->version, V1) != 0 && strcmp(m->version, V2) != 0) ||
            cml_model_predict(m, s, text, strlen(text), &p) != CML_OK || !isfinite(p.confidence))
            rd->bad++;
        cml_model_release(m);
    }
    cml_feature_scratch_free(s);
    return NULL;
}

START_TEST(test_swaps_under_concurrent_readers) {
    cml_registry *r = cml_registry_new(store);
    load_ok(r, CML_MODEL_CLASSIC, V1);
    int rounds = unit_light() ? 60 : 400, swaps = unit_light() ? 6 : 30;
    reader rd[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        rd[i] = (reader){.r = r, .rounds = rounds, .bad = 0};
        ck_assert_int_eq(pthread_create(&t[i], NULL, read_loop, &rd[i]), 0);
    }
    for (int k = 0; k < swaps; k++)
        load_ok(r, CML_MODEL_CLASSIC, k % 2 ? V1 : V2);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(rd[i].bad, 0);
    }
    cml_slot_info info;
    cml_registry_info(r, CML_MODEL_CLASSIC, &info);
    ck_assert_uint_eq(info.loads, (uint64_t)swaps + 1);
    cml_model *m = cml_registry_acquire(r, CML_MODEL_CLASSIC);
    ck_assert_int_eq(refs_of(m), 2);
    cml_model_release(m);
    cml_registry_free(r);
}
END_TEST

int main(void) {
    if (getenv("CML_TEST_DATA") == NULL) {
        fprintf(stderr, "CML_TEST_DATA is not set: skipping\n");
        return 77;
    }
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("registry");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, shared_setup, shared_teardown);
    tcase_add_test(tc, test_empty_registry);
    tcase_add_test(tc, test_load_fills_slot);
    tcase_add_test(tc, test_acquired_model_survives_swap);
    tcase_add_test(tc, test_missing_version_changes_nothing);
    tcase_add_test(tc, test_corrupt_file_changes_nothing);
    tcase_add_test(tc, test_file_of_other_type_refused);
    tcase_add_test(tc, test_bad_type_or_version_refused);
    tcase_add_test(tc, test_install_takes_reference);
    tcase_add_loop_test(tc, test_install_refuses_model_that_cannot_answer, 0,
                        (int)(sizeof broken / sizeof broken[0]));
    tcase_add_test(tc, test_warm_up);
    tcase_add_test(tc, test_swaps_under_concurrent_readers);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
