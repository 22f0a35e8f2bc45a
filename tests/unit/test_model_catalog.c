/* The model catalog (model/model_catalog.c). */
#include "config.h"

#include "base/cml_alloc.h"
#include "model/local_store.h"
#include "model/model_catalog.h"
#include "state_fixture.h"

/* --- catalog ------------------------------------------------------------------ */

/* A model with only the facts the catalog keeps (no members): enough to record and publish. */
static cml_model *fake_model(cml_model_type type, const char *version) {
    cml_model *m = cml_model_new(type);
    ck_assert_ptr_nonnull(m);
    snprintf(m->version, sizeof m->version, "%s", version);
    m->created_at = 1700000123;
    m->file_bytes = 4567;
    snprintf(m->file_sha256, sizeof m->file_sha256, "%064d", 7);
    m->metrics_json = cml_strdup("{\"f1_macro\":0.93}");
    m->training_time_s = 2.5;
    m->n_train = 80;
    m->n_test = 20;
    return m;
}

static bool has_record(cml_state *st, const char *type, const char *version) {
    cml_model_record *out;
    size_t n;
    bool found = false;
    ck_assert_int_eq(cml_state_list_models(st, type, &out, &n), CML_OK);
    for (size_t i = 0; i < n; i++)
        found |= strcmp(out[i].version, version) == 0;
    cml_model_records_free(out, n);
    return found;
}

START_TEST(test_catalog_record) {
    cml_state *st = open_state();
    cml_model *m = fake_model(CML_MODEL_ENSEMBLE, "e1");
    ck_assert_int_eq(cml_catalog_record(st, m, false, true), CML_OK);
    cml_model_record *out;
    size_t n;
    ck_assert_int_eq(cml_state_list_models(st, "ensemble", &out, &n), CML_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(out[0].version, "e1");
    ck_assert_int_eq(out[0].created_at, 1700000123);
    ck_assert_int_eq(out[0].size_bytes, 4567);
    ck_assert_str_eq(out[0].sha256, m->file_sha256);
    ck_assert_str_eq(out[0].metrics_json, "{\"f1_macro\":0.93}");
    ck_assert(!out[0].local && out[0].blob);
    cml_model_records_free(out, n);
    cml_model_release(m);
    cml_state_close(st);
}
END_TEST

START_TEST(test_catalog_history) {
    cml_state *st = open_state();
    cml_model *m = fake_model(CML_MODEL_CLASSIC, "c1");
    ck_assert_int_eq(cml_catalog_add_history(st, m, "task-1"), CML_OK);
    ck_assert_int_eq(cml_catalog_add_history(st, m, NULL), CML_OK);
    cml_history_entry *e;
    size_t n;
    ck_assert_int_eq(cml_state_list_history(st, "classic", 0, &e, &n), CML_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(e[0].task_id, "task-1");
    ck_assert_str_eq(e[1].task_id, "");
    ck_assert_str_eq(e[0].version, "c1");
    ck_assert_int_eq(e[0].timestamp, 1700000123);
    ck_assert_double_eq(e[0].training_time, 2.5);
    ck_assert_int_eq(e[0].n_train, 80);
    ck_assert_int_eq(e[0].n_test, 20);
    ck_assert_str_eq(e[0].metrics_json, "{\"f1_macro\":0.93}");
    cml_history_free(e, n);
    cml_model_release(m);
    cml_state_close(st);
}
END_TEST

START_TEST(test_publish_moves_latest_and_clears_pin) {
    cml_state *st = open_state();
    cml_diag d = {{0}};
    char v[CML_VERSION_MAX];
    touch(cache, "classic_v1.model");
    touch(cache, "classic_v2.model");
    ck_assert_int_eq(cml_local_store_point_latest(cache, "classic", "v1", &d), CML_OK);
    set_sel(st, "classic", "v1", "e1");
    uint64_t gen = cml_state_generation(st);
    cml_model *m = fake_model(CML_MODEL_CLASSIC, "v2");
    ck_assert_msg(cml_catalog_publish(st, cache, m, "task-9", 5, &d) == CML_OK, "%s", d.msg);
    ck_assert_int_eq(cml_local_store_latest(cache, "classic", v), CML_OK);
    ck_assert_str_eq(v, "v2");
    cml_selection sel;
    ck_assert_int_eq(cml_state_get_selection(st, &sel), CML_OK);
    ck_assert_str_eq(sel.active_type, "classic");
    ck_assert_str_eq(sel.classic_version, ""); /* the pin of the published type is gone */
    ck_assert_str_eq(sel.ensemble_version, "e1");
    ck_assert_uint_gt(cml_state_generation(st), gen);
    ck_assert(has_record(st, "classic", "v2"));
    cml_history_entry *e;
    size_t n;
    ck_assert_int_eq(cml_state_list_history(st, "classic", 0, &e, &n), CML_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(e[0].task_id, "task-9");
    ck_assert_str_eq(e[0].version, "v2");
    cml_history_free(e, n);
    cml_model_release(m);
    cml_state_close(st);
}
END_TEST

START_TEST(test_publish_before_any_selection) {
    cml_state *st = open_state();
    cml_diag d = {{0}};
    char v[CML_VERSION_MAX];
    touch(cache, "ensemble_e1.model");
    cml_model *m = fake_model(CML_MODEL_ENSEMBLE, "e1");
    ck_assert_msg(cml_catalog_publish(st, cache, m, NULL, 3, &d) == CML_OK, "%s", d.msg);
    ck_assert_int_eq(cml_local_store_latest(cache, "ensemble", v), CML_OK);
    ck_assert_str_eq(v, "e1");
    cml_selection sel;
    ck_assert_int_eq(cml_state_get_selection(st, &sel), CML_ERR_NOT_FOUND);
    cml_model_release(m);
    cml_state_close(st);
}
END_TEST

START_TEST(test_publish_retention_spares_previous_pin) {
    cml_state *st = open_state();
    cml_diag d = {{0}};
    static const char *old[] = {"v1", "v2", "v3", "v4"};
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "classic_%s.model", old[i]);
        touch(cache, name);
        cml_model *o = fake_model(CML_MODEL_CLASSIC, old[i]);
        ck_assert_int_eq(cml_catalog_record(st, o, true, false), CML_OK);
        cml_model_release(o);
    }
    touch(cache, "ensemble_v0.model");
    set_sel(st, "classic", "v1", ""); /* rolled back to v1 */
    touch(cache, "classic_v5.model");
    cml_model *m = fake_model(CML_MODEL_CLASSIC, "v5");
    ck_assert_msg(cml_catalog_publish(st, cache, m, NULL, 2, &d) == CML_OK, "%s", d.msg);
    /* The newest two, and v1 that served until now. */
    ck_assert(exists(cache, "classic_v5.model"));
    ck_assert(exists(cache, "classic_v4.model"));
    ck_assert(exists(cache, "classic_v1.model"));
    ck_assert(!exists(cache, "classic_v3.model"));
    ck_assert(!exists(cache, "classic_v2.model"));
    ck_assert(exists(cache, "ensemble_v0.model"));
    ck_assert(has_record(st, "classic", "v5"));
    ck_assert(has_record(st, "classic", "v1"));
    ck_assert(!has_record(st, "classic", "v3"));
    ck_assert(!has_record(st, "classic", "v2"));
    cml_model_release(m);
    cml_state_close(st);
}
END_TEST

START_TEST(test_prune_spares_pinned_and_latest) {
    cml_state *st = open_state();
    cml_diag d = {{0}};
    for (int i = 1; i <= 6; i++) {
        char name[64], v[8];
        snprintf(v, sizeof v, "v%d", i);
        snprintf(name, sizeof name, "classic_%s.model", v);
        touch(cache, name);
        cml_model *o = fake_model(CML_MODEL_CLASSIC, v);
        ck_assert_int_eq(cml_catalog_record(st, o, true, false), CML_OK);
        cml_model_release(o);
    }
    touch(cache, "ensemble_v1.model");
    ck_assert_int_eq(cml_local_store_point_latest(cache, "classic", "v2", &d), CML_OK);
    set_sel(st, "ensemble", "v1", "v9");
    ck_assert_int_eq(cml_catalog_prune(st, cache, CML_MODEL_CLASSIC, 2), CML_OK);
    static const struct {
        const char *v;
        bool kept;
    } want[] = {{"v6", true},  {"v5", true}, {"v4", false},
                {"v3", false}, {"v2", true}, {"v1", true}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "classic_%s.model", want[i].v);
        ck_assert_msg(exists(cache, name) == want[i].kept, "%s %s", name,
                      want[i].kept ? "removed" : "kept");
        ck_assert_msg(has_record(st, "classic", want[i].v) == want[i].kept, "record of %s",
                      want[i].v);
    }
    ck_assert(exists(cache, "ensemble_v1.model"));
    /* Keeping none still keeps the pinned and the latest. */
    ck_assert_int_eq(cml_catalog_prune(st, cache, CML_MODEL_CLASSIC, 0), CML_OK);
    ck_assert(!exists(cache, "classic_v6.model"));
    ck_assert(!exists(cache, "classic_v5.model"));
    ck_assert(exists(cache, "classic_v2.model"));
    ck_assert(exists(cache, "classic_v1.model"));
    cml_state_close(st);
}
END_TEST

int main(void) {
    Suite *s = suite_create("model_catalog");
    TCase *cat = tcase_create("catalog");
    tcase_add_checked_fixture(cat, setup, teardown);
    tcase_add_test(cat, test_catalog_record);
    tcase_add_test(cat, test_catalog_history);
    tcase_add_test(cat, test_publish_moves_latest_and_clears_pin);
    tcase_add_test(cat, test_publish_before_any_selection);
    tcase_add_test(cat, test_publish_retention_spares_previous_pin);
    tcase_add_test(cat, test_prune_spares_pinned_and_latest);
    suite_add_tcase(s, cat);
    return unit_run(s);
}
