/* The local model store (model/local_store.c). */
#include "config.h"

#include "base/cml_alloc.h"
#include "model/local_store.h"
#include "model/model_file.h"
#include "learn/trainer.h"
#include "state_fixture.h"

/* --- local store -------------------------------------------------------------- */

static cml_model *trained; /* a tiny classic model, trained once (unchecked fixture) */

static void train_once(void) {
    cml_dataset *ds = unit_corpus(200);
    cml_train_options o;
    cml_diag d = {{0}};
    ck_assert_ptr_nonnull(ds);
    cml_train_options_init(&o, CML_MODEL_CLASSIC);
    o.cv_folds = 0;
    o.n_threads = 1;
    ck_assert_msg(cml_train(ds, &o, &trained, NULL, &d) == CML_OK, "training: %s", d.msg);
    cml_dataset_free(ds);
}

static void release_trained(void) {
    cml_model_release(trained);
    trained = NULL;
}

START_TEST(test_version_valid) {
    static const char *good[] = {"20261126T053012.123Z", "v1", "a-b_c.d", "0",
                                 "123456789012345678901234567890123456789"};
    static const char *bad[] = {"",     ".hidden", "a/b",
                                "../x", "a b",     "a\nb",
                                "v1*",  "é",       "1234567890123456789012345678901234567890",
                                NULL};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(cml_version_valid(good[i]), "'%s' refused", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!cml_version_valid(bad[i]), "'%s' accepted", bad[i] ? bad[i] : "(null)");
}
END_TEST

START_TEST(test_store_path) {
    char buf[128];
    cml_local_store_path("/var/lib/x", "classic", "v1", buf, sizeof buf);
    ck_assert_str_eq(buf, "/var/lib/x/classic_v1.model");
    char small[12];
    cml_local_store_path("/var/lib/x", "classic", "v1", small, sizeof small);
    ck_assert_str_eq(small, "/var/lib/x/");
}
END_TEST

START_TEST(test_save_and_latest_pointer) {
    char saved[40], v[CML_VERSION_MAX], link[256], target[256];
    cml_diag d = {{0}};
    snprintf(saved, sizeof saved, "%s", trained->version);
    snprintf(trained->version, sizeof trained->version, "%s", "20260101T000000.000Z");
    cml_err err = cml_local_store_save(cache, trained, true, &d);
    snprintf(trained->version, sizeof trained->version, "%s", "20260202T000000.000Z");
    if (err == CML_OK)
        err = cml_local_store_save(cache, trained, false, &d);
    snprintf(trained->version, sizeof trained->version, "%s", saved);
    ck_assert_msg(err == CML_OK, "save: %s", d.msg);
    ck_assert(exists(cache, "classic_20260101T000000.000Z.model"));
    ck_assert(exists(cache, "classic_20260202T000000.000Z.model"));
    /* Saved without make_latest: the pointer stays. */
    ck_assert_int_eq(cml_local_store_latest(cache, "classic", v), CML_OK);
    ck_assert_str_eq(v, "20260101T000000.000Z");
    ck_assert_int_eq(cml_local_store_point_latest(cache, "classic", "20260202T000000.000Z", &d),
                     CML_OK);
    ck_assert_int_eq(cml_local_store_latest(cache, "classic", v), CML_OK);
    ck_assert_str_eq(v, "20260202T000000.000Z");
    /* A relative link, so the directory can move. */
    snprintf(link, sizeof link, "%s/classic_latest.model", cache);
    ssize_t n = readlink(link, target, sizeof target - 1);
    ck_assert_int_gt(n, 0);
    target[n] = '\0';
    ck_assert_str_eq(target, "classic_20260202T000000.000Z.model");
    /* The file holds the version it is named after. */
    char path[256];
    cml_model *back = NULL;
    cml_local_store_path(cache, "classic", "20260101T000000.000Z", path, sizeof path);
    ck_assert_int_eq(cml_model_load(path, &back, &d), CML_OK);
    ck_assert_str_eq(back->version, "20260101T000000.000Z");
    cml_model_release(back);
    ck_assert_int_eq(cml_local_store_latest(cache, "ensemble", v), CML_ERR_NOT_FOUND);
}
END_TEST

START_TEST(test_save_refuses_bad_version) {
    char saved[40];
    cml_diag d = {{0}};
    snprintf(saved, sizeof saved, "%s", trained->version);
    mkdir(cache, 0755);
    snprintf(trained->version, sizeof trained->version, "%s", "bad version");
    cml_err err = cml_local_store_save(cache, trained, true, &d);
    snprintf(trained->version, sizeof trained->version, "%s", saved);
    ck_assert_int_eq(err, CML_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(d.msg, "'bad version' is not valid"));
    ck_assert(!exists(cache, "classic_bad version.model"));
    ck_assert(!exists(cache, "classic_latest.model"));
}
END_TEST

START_TEST(test_list_newest_first_and_only_versions) {
    char(*v)[CML_VERSION_MAX] = NULL;
    size_t n = 99;
    ck_assert_int_eq(cml_local_store_list(cache, "classic", &v, &n), CML_OK); /* no dir yet */
    ck_assert_uint_eq(n, 0);
    cml_free(v);
    static const char *files[] = {"classic_20260102T000000.000Z.model",
                                  "classic_20260301T000000.000Z.model",
                                  "classic_20260201T000000.000Z.model",
                                  "ensemble_20260401T000000.000Z.model",
                                  "classical_20260501T000000.000Z.model",
                                  "classic_.model",
                                  "classic_bad name.model",
                                  "classic_20260601T000000.000Z.model.tmp.123",
                                  ".classic_latest.model.tmp.1",
                                  "classic_20260701T000000.000Z.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        touch(cache, files[i]);
    char link[256];
    snprintf(link, sizeof link, "%s/classic_latest.model", cache);
    ck_assert_int_eq(symlink("classic_20260301T000000.000Z.model", link), 0);
    ck_assert_int_eq(cml_local_store_list(cache, "classic", &v, &n), CML_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(v[0], "20260301T000000.000Z");
    ck_assert_str_eq(v[1], "20260201T000000.000Z");
    ck_assert_str_eq(v[2], "20260102T000000.000Z");
    cml_free(v);
    ck_assert_int_eq(cml_local_store_list(cache, "ensemble", &v, &n), CML_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(v[0], "20260401T000000.000Z");
    cml_free(v);
}
END_TEST

START_TEST(test_latest_pointer_must_name_its_type) {
    char v[CML_VERSION_MAX], link[256];
    mkdir(cache, 0755);
    snprintf(link, sizeof link, "%s/classic_latest.model", cache);
    ck_assert_int_eq(cml_local_store_latest(cache, "classic", v), CML_ERR_NOT_FOUND);
    ck_assert_int_eq(symlink("ensemble_v1.model", link), 0);
    ck_assert_int_eq(cml_local_store_latest(cache, "classic", v), CML_ERR_NOT_FOUND);
    unlink(link);
    ck_assert_int_eq(symlink("foreign_v1.model", link), 0); /* same length as "classic" */
    ck_assert_int_eq(cml_local_store_latest(cache, "classic", v), CML_ERR_NOT_FOUND);
    unlink(link);
    ck_assert_int_eq(symlink("classic_v 1.model", link), 0);
    ck_assert_int_eq(cml_local_store_latest(cache, "classic", v), CML_ERR_NOT_FOUND);
    unlink(link);
    ck_assert_int_eq(symlink("classic_v1.txt", link), 0);
    ck_assert_int_eq(cml_local_store_latest(cache, "classic", v), CML_ERR_NOT_FOUND);
    unlink(link);
    touch(cache, "classic_latest.model"); /* a plain file is no pointer */
    ck_assert_int_eq(cml_local_store_latest(cache, "classic", v), CML_ERR_NOT_FOUND);
    unlink(link);
    ck_assert_int_eq(symlink("/elsewhere/classic_v2.model", link), 0);
    ck_assert_int_eq(cml_local_store_latest(cache, "classic", v), CML_OK);
    ck_assert_str_eq(v, "v2");
}
END_TEST

START_TEST(test_remove_version) {
    touch(cache, "classic_v1.model");
    touch(cache, "classic_v2.model");
    ck_assert_int_eq(cml_local_store_remove(cache, "classic", "v1"), CML_OK);
    ck_assert(!exists(cache, "classic_v1.model"));
    ck_assert(exists(cache, "classic_v2.model"));
    ck_assert_int_eq(cml_local_store_remove(cache, "classic", "v1"), CML_OK); /* already gone */
    /* A version that would walk out of its name is refused, whatever exists there. */
    char odd[192];
    snprintf(odd, sizeof odd, "%s/classic_..", cache);
    ck_assert_int_eq(mkdir(odd, 0755), 0);
    touch(odd, "x.model");
    ck_assert_int_eq(cml_local_store_remove(cache, "classic", "../x"), CML_ERR_INVALID);
    ck_assert(exists(odd, "x.model"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("local_store");
    TCase *store = tcase_create("local_store");
    tcase_set_timeout(store, 120);
    tcase_add_unchecked_fixture(store, train_once, release_trained);
    tcase_add_checked_fixture(store, setup, teardown);
    tcase_add_test(store, test_version_valid);
    tcase_add_test(store, test_store_path);
    tcase_add_test(store, test_save_and_latest_pointer);
    tcase_add_test(store, test_save_refuses_bad_version);
    tcase_add_test(store, test_list_newest_first_and_only_versions);
    tcase_add_test(store, test_latest_pointer_must_name_its_type);
    tcase_add_test(store, test_remove_version);
    suite_add_tcase(s, store);
    return unit_run(s);
}
