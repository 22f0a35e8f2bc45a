/* The shared state (state/shared_state.c): selection and its generation, models, feedback, training
 * jobs, history, evaluations, status values. */
#include "config.h"

#include <pthread.h>
#include <time.h>

#include "base/cml_alloc.h"
#include "state_fixture.h"

/* --- selection and generation ----------------------------------------------- */

START_TEST(test_selection_absent_until_set) {
    cml_state *st = open_state();
    cml_selection sel;
    ck_assert_int_eq(cml_state_get_selection(st, &sel), CML_ERR_NOT_FOUND);
    ck_assert_int_eq(cml_state_touch(st), CML_ERR_NOT_FOUND);
    ck_assert_uint_eq(cml_state_generation(st), 0);
    cml_state_close(st);
}
END_TEST

START_TEST(test_set_selection_bumps_generation) {
    cml_state *st = open_state();
    cml_selection sel, got;
    memset(&sel, 0, sizeof sel);
    snprintf(sel.active_type, sizeof sel.active_type, "%s", "classic");
    snprintf(sel.classic_version, sizeof sel.classic_version, "%s", "v1");
    int64_t t0 = (int64_t)time(NULL);
    ck_assert_int_eq(cml_state_set_selection(st, &sel), CML_OK);
    ck_assert_uint_eq(sel.generation, 1);
    ck_assert_uint_eq(cml_state_generation(st), 1);
    ck_assert_int_eq(cml_state_get_selection(st, &got), CML_OK);
    ck_assert_str_eq(got.active_type, "classic");
    ck_assert_str_eq(got.classic_version, "v1");
    ck_assert_str_eq(got.ensemble_version, "");
    ck_assert_uint_eq(got.generation, 1);
    ck_assert_int_ge(got.updated_at, t0);
    ck_assert_int_le(got.updated_at, (int64_t)time(NULL));
    snprintf(sel.active_type, sizeof sel.active_type, "%s", "ensemble");
    ck_assert_int_eq(cml_state_set_selection(st, &sel), CML_OK);
    ck_assert_uint_eq(sel.generation, 2);
    ck_assert_uint_eq(cml_state_generation(st), 2);
    ck_assert_int_eq(cml_state_get_selection(st, &got), CML_OK);
    ck_assert_str_eq(got.active_type, "ensemble");
    cml_state_close(st);
}
END_TEST

START_TEST(test_generation_shared_between_handles) {
    /* Two handles on one directory stand for two worker processes. */
    cml_state *a = open_state(), *b = open_state();
    set_sel(a, "classic", "", "");
    ck_assert_uint_eq(cml_state_generation(b), 1);
    cml_selection got;
    ck_assert_int_eq(cml_state_get_selection(b, &got), CML_OK);
    ck_assert_str_eq(got.active_type, "classic");
    set_sel(b, "ensemble", "", "");
    ck_assert_uint_eq(cml_state_generation(a), 2);
    ck_assert_int_eq(cml_state_get_selection(a, &got), CML_OK);
    ck_assert_str_eq(got.active_type, "ensemble");
    cml_state_close(a);
    cml_state_close(b);
}
END_TEST

START_TEST(test_generation_never_goes_back) {
    cml_state *st = open_state();
    set_sel(st, "classic", "", "");
    set_sel(st, "classic", "", "");
    cml_state_close(st);
    st = open_state();
    ck_assert_uint_eq(cml_state_generation(st), 2);
    cml_state_close(st);
    /* Without the counter file (e.g. a new tmpfs), the stored generation still counts. */
    char path[256];
    snprintf(path, sizeof path, "%s/generation", state_dir);
    ck_assert_int_eq(unlink(path), 0);
    st = open_state();
    ck_assert_uint_eq(cml_state_generation(st), 0);
    cml_selection sel;
    memset(&sel, 0, sizeof sel);
    snprintf(sel.active_type, sizeof sel.active_type, "%s", "classic");
    ck_assert_int_eq(cml_state_set_selection(st, &sel), CML_OK);
    ck_assert_uint_eq(sel.generation, 3);
    ck_assert_uint_eq(cml_state_generation(st), 3);
    cml_state_close(st);
    /* Without the database (a new volume), the counter workers watch still counts. */
    static const char *files[] = {"state.sqlite3", "state.sqlite3-wal", "state.sqlite3-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", state_dir, files[i]);
        unlink(path);
    }
    st = open_state();
    ck_assert_int_eq(cml_state_get_selection(st, &sel), CML_ERR_NOT_FOUND);
    ck_assert_uint_eq(cml_state_generation(st), 3);
    memset(&sel, 0, sizeof sel);
    snprintf(sel.active_type, sizeof sel.active_type, "%s", "classic");
    ck_assert_int_eq(cml_state_set_selection(st, &sel), CML_OK);
    ck_assert_uint_eq(sel.generation, 4);
    ck_assert_uint_eq(cml_state_generation(st), 4);
    cml_state_close(st);
}
END_TEST

START_TEST(test_adopt_keeps_updated_at) {
    cml_state *st = open_state();
    cml_selection sel, got;
    memset(&sel, 0, sizeof sel);
    snprintf(sel.active_type, sizeof sel.active_type, "%s", "ensemble");
    snprintf(sel.ensemble_version, sizeof sel.ensemble_version, "%s", "e7");
    sel.updated_at = 1700000000;
    ck_assert_int_eq(cml_state_adopt_selection(st, &sel), CML_OK);
    ck_assert_uint_eq(cml_state_generation(st), 1);
    ck_assert_int_eq(cml_state_get_selection(st, &got), CML_OK);
    ck_assert_int_eq(got.updated_at, 1700000000);
    ck_assert_str_eq(got.ensemble_version, "e7");
    /* No time given: now. */
    sel.updated_at = 0;
    int64_t t0 = (int64_t)time(NULL);
    ck_assert_int_eq(cml_state_adopt_selection(st, &sel), CML_OK);
    ck_assert_int_eq(cml_state_get_selection(st, &got), CML_OK);
    ck_assert_int_ge(got.updated_at, t0);
    ck_assert_uint_eq(got.generation, 2);
    cml_state_close(st);
}
END_TEST

START_TEST(test_set_selection_takes_new_time) {
    cml_state *st = open_state();
    cml_selection sel;
    memset(&sel, 0, sizeof sel);
    snprintf(sel.active_type, sizeof sel.active_type, "%s", "classic");
    sel.updated_at = 1700000000;
    ck_assert_int_eq(cml_state_set_selection(st, &sel), CML_OK);
    ck_assert_int_gt(sel.updated_at, 1700000000);
    cml_state_close(st);
}
END_TEST

START_TEST(test_init_selection_only_first_time) {
    cml_state *st = open_state();
    cml_selection sel;
    ck_assert_int_eq(cml_state_init_selection(st, "classic", &sel), CML_OK);
    ck_assert_str_eq(sel.active_type, "classic");
    ck_assert_uint_eq(sel.generation, 1);
    set_sel(st, "classic", "v3", "");
    ck_assert_int_eq(cml_state_init_selection(st, "ensemble", &sel), CML_OK);
    ck_assert_str_eq(sel.active_type, "classic");
    ck_assert_str_eq(sel.classic_version, "v3");
    ck_assert_uint_eq(sel.generation, 2);
    ck_assert_uint_eq(cml_state_generation(st), 2); /* not bumped */
    cml_state_close(st);
}
END_TEST

START_TEST(test_touch_bumps_generation_only) {
    cml_state *st = open_state();
    set_sel(st, "ensemble", "c1", "e1");
    ck_assert_int_eq(cml_state_touch(st), CML_OK);
    ck_assert_uint_eq(cml_state_generation(st), 2);
    cml_selection got;
    ck_assert_int_eq(cml_state_get_selection(st, &got), CML_OK);
    ck_assert_str_eq(got.active_type, "ensemble");
    ck_assert_str_eq(got.classic_version, "c1");
    ck_assert_str_eq(got.ensemble_version, "e1");
    ck_assert_uint_eq(got.generation, 2);
    cml_state_close(st);
}
END_TEST

START_TEST(test_open_refuses_unusable_dir) {
    cml_state *st = (cml_state *)1;
    cml_diag d = {{0}};
    char bad[192];
    touch(tmp, "plain");
    snprintf(bad, sizeof bad, "%s/plain/state", tmp);
    ck_assert_int_eq(cml_state_open(bad, NULL, &st, &d), CML_ERR_IO);
    ck_assert_ptr_null(st);
    ck_assert_msg(strstr(d.msg, bad) != NULL, "'%s' does not name %s", d.msg, bad);
}
END_TEST

START_TEST(test_masked_url_hides_passwords) {
    static const struct {
        const char *url, *masked;
    } cases[] = {
        {"postgresql://cml:s3cret@db.example:5432/cml", "postgresql://cml:***@db.example:5432/cml"},
        {"postgres://cml:p%40ss@db/cml?sslmode=require",
         "postgres://cml:***@db/cml?sslmode=require"},
        {"postgresql://cml@db/cml", "postgresql://cml@db/cml"},
        {"postgresql://db/cml?user=cml&password=s3cret&sslmode=require",
         "postgresql://db/cml?user=cml&password=***&sslmode=require"},
        {"host=db user=cml password=s3cret dbname=cml", "host=db user=cml password=*** dbname=cml"},
        {"host=db password = 's3 cret' dbname=cml", "host=db password = *** dbname=cml"},
        {"", ""},
    };
    char out[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cml_state_masked_url(cases[i].url, out, sizeof out);
        ck_assert_msg(strcmp(out, cases[i].masked) == 0, "%s -> %s, not %s", cases[i].url, out,
                      cases[i].masked);
        ck_assert_ptr_null(strstr(out, "s3"));
    }
    cml_state_masked_url(NULL, out, sizeof out);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_bad_url_refused_without_its_password) {
    cml_state *st = (cml_state *)1;
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_state_open(state_dir, "postgresql://cml:s3cr%zzet@db/cml", &st, &d),
                     CML_ERR_CONFIG);
    ck_assert_ptr_null(st);
    ck_assert_msg(strstr(d.msg, "database_url") != NULL, "'%s' names no key", d.msg);
    ck_assert_msg(strstr(d.msg, "s3cr") == NULL && strstr(d.msg, "zzet") == NULL,
                  "'%s' shows the password", d.msg);
}
END_TEST

START_TEST(test_migrations_applied_once) {
    cml_state *st = open_state();
    int current = -1, latest = -1;
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_state_migrate(st, false, &current, &latest, &d), CML_OK);
    ck_assert_int_ge(latest, 2);
    ck_assert_int_eq(current, latest);
    ck_assert_int_eq(query_int("SELECT COUNT(*) FROM schema_migrations"), latest);
    cml_state_close(st);
    /* A second open (another instance) applies nothing again. */
    st = open_state();
    ck_assert_int_eq(cml_state_migrate(st, true, &current, &latest, &d), CML_OK);
    ck_assert_int_eq(current, latest);
    ck_assert_int_eq(query_int("SELECT COUNT(*) FROM schema_migrations"), latest);
    ck_assert_str_eq(cml_state_backend_name(st), on_postgres() ? "postgresql" : "sqlite");
    ck_assert(cml_state_reachable(st));
    cml_state_close(st);
}
END_TEST

/* Instances started together on a new database: each open migrates or finds it done. */
typedef struct open_result {
    cml_err err;
    cml_diag diag;
} open_result;

static void *open_and_close(void *arg) {
    cml_state *st = NULL;
    open_result *r = arg;
    r->err = cml_state_open(state_dir, test_database_url(), &st, &r->diag);
    cml_state_close(st);
    return NULL;
}

START_TEST(test_concurrent_opens_migrate_once) {
    enum { N_OPENS = 4 };
    pthread_t t[N_OPENS];
    open_result res[N_OPENS];
    memset(res, 0, sizeof res);
    mkdir(state_dir, 0755);
    for (int i = 0; i < N_OPENS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, open_and_close, &res[i]), 0);
    for (int i = 0; i < N_OPENS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N_OPENS; i++)
        ck_assert_msg(res[i].err == CML_OK, "open %d: %s: %s", i, cml_strerror(res[i].err),
                      res[i].diag.msg);
    cml_state *st = open_state();
    int current = 0, latest = 0;
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_state_migrate(st, false, &current, &latest, &d), CML_OK);
    ck_assert_int_eq(current, latest);
    ck_assert_int_eq(query_int("SELECT COUNT(*) FROM schema_migrations"), latest);
    cml_state_close(st);
}
END_TEST

START_TEST(test_selection_seen_by_other_instance) {
    /* Two state directories on one database stand for two instances of a fleet; with SQLite
     * there is no such fleet (each directory is its own database). */
    if (!on_postgres())
        return;
    char other_dir[192];
    snprintf(other_dir, sizeof other_dir, "%s/other", tmp);
    cml_state *a = open_state(), *b = NULL;
    cml_diag d = {{0}};
    ck_assert_msg(cml_state_open(other_dir, test_database_url(), &b, &d) == CML_OK, "%s", d.msg);
    uint64_t before = cml_state_generation(b);
    set_sel(a, "ensemble", "", "e9");
    /* The other instance's watcher brings the change within a second (LISTEN/NOTIFY). */
    for (int i = 0; i < 200 && cml_state_generation(b) == before; i++)
        usleep(5000);
    ck_assert_uint_gt(cml_state_generation(b), before);
    cml_selection got;
    ck_assert_int_eq(cml_state_get_selection(b, &got), CML_OK);
    ck_assert_str_eq(got.ensemble_version, "e9");
    cml_state_close(a);
    cml_state_close(b);
}
END_TEST

/* --- models ----------------------------------------------------------------- */

static cml_model_record record(const char *type, const char *version, int64_t size, char *metrics,
                               bool local, bool blob) {
    cml_model_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.model_type, sizeof r.model_type, "%s", type);
    snprintf(r.version, sizeof r.version, "%s", version);
    r.created_at = 1700000000 + size;
    r.size_bytes = size;
    snprintf(r.sha256, sizeof r.sha256, "%064d", (int)size);
    r.metrics_json = metrics;
    r.local = local;
    r.blob = blob;
    return r;
}

START_TEST(test_models_listed_newest_first) {
    cml_state *st = open_state();
    static const char *versions[] = {"20260102T000000.000Z", "20260301T000000.000Z",
                                     "20260201T000000.000Z"};
    for (int i = 0; i < 3; i++) {
        cml_model_record r = record("classic", versions[i], 10 + i, NULL, true, false);
        ck_assert_int_eq(cml_state_upsert_model(st, &r), CML_OK);
    }
    cml_model_record e = record("ensemble", "20260401T000000.000Z", 99, "{\"f1\":1}", false, true);
    ck_assert_int_eq(cml_state_upsert_model(st, &e), CML_OK);
    cml_model_record *out;
    size_t n;
    ck_assert_int_eq(cml_state_list_models(st, "classic", &out, &n), CML_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(out[0].version, "20260301T000000.000Z");
    ck_assert_str_eq(out[1].version, "20260201T000000.000Z");
    ck_assert_str_eq(out[2].version, "20260102T000000.000Z");
    ck_assert_int_eq(out[0].size_bytes, 11);
    ck_assert_int_eq(out[0].created_at, 1700000011);
    ck_assert(out[0].local && !out[0].blob);
    ck_assert_ptr_null(out[0].metrics_json);
    cml_model_records_free(out, n);
    ck_assert_int_eq(cml_state_list_models(st, NULL, &out, &n), CML_OK);
    ck_assert_uint_eq(n, 4);
    cml_model_records_free(out, n);
    ck_assert_int_eq(cml_state_list_models(st, "ensemble", &out, &n), CML_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(out[0].model_type, "ensemble");
    ck_assert_str_eq(out[0].metrics_json, "{\"f1\":1}");
    ck_assert_str_eq(out[0].sha256, e.sha256);
    ck_assert(!out[0].local && out[0].blob);
    cml_model_records_free(out, n);
    cml_state_close(st);
}
END_TEST

START_TEST(test_model_upsert_merges) {
    cml_state *st = open_state();
    cml_model_record r = record("classic", "v1", 10, "{\"a\":1}", true, false);
    ck_assert_int_eq(cml_state_upsert_model(st, &r), CML_OK);
    /* Seen in the blob store too, without metrics: both places, metrics kept. */
    r = record("classic", "v1", 12, NULL, false, true);
    ck_assert_int_eq(cml_state_upsert_model(st, &r), CML_OK);
    cml_model_record *out;
    size_t n;
    ck_assert_int_eq(cml_state_list_models(st, "classic", &out, &n), CML_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert(out[0].local && out[0].blob);
    ck_assert_str_eq(out[0].metrics_json, "{\"a\":1}");
    ck_assert_int_eq(out[0].size_bytes, 12);
    cml_model_records_free(out, n);
    cml_state_close(st);
}
END_TEST

START_TEST(test_model_delete) {
    cml_state *st = open_state();
    cml_model_record r = record("classic", "v1", 1, NULL, true, false);
    ck_assert_int_eq(cml_state_upsert_model(st, &r), CML_OK);
    r = record("classic", "v2", 2, NULL, true, false);
    ck_assert_int_eq(cml_state_upsert_model(st, &r), CML_OK);
    ck_assert_int_eq(cml_state_delete_model(st, "classic", "v1"), CML_OK);
    ck_assert_int_eq(cml_state_delete_model(st, "classic", "nope"), CML_OK);
    cml_model_record *out;
    size_t n;
    ck_assert_int_eq(cml_state_list_models(st, NULL, &out, &n), CML_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(out[0].version, "v2");
    cml_model_records_free(out, n);
    cml_state_close(st);
}
END_TEST

/* --- feedback --------------------------------------------------------------- */

static cml_feedback feedback(const char *text, const char *label) {
    cml_feedback fb;
    memset(&fb, 0, sizeof fb);
    fb.text = text;
    fb.correct_class = label;
    fb.confidence = NAN;
    return fb;
}

START_TEST(test_feedback_ids_and_total) {
    cml_state *st = open_state();
    int64_t id, total, last = 0;
    static const char *labels[] = {"b", "a", "b"};
    for (int i = 0; i < 3; i++) {
        cml_feedback fb = feedback("some text", labels[i]);
        ck_assert_int_eq(cml_state_add_feedback(st, &fb, &id, &total), CML_OK);
        ck_assert_int_gt(id, last);
        ck_assert_int_eq(total, i + 1);
        last = id;
    }
    cml_state_close(st);
}
END_TEST

typedef struct rows {
    char text[4][32], label[4][8];
    int n;
} rows;

static void collect(void *ctx, const char *text, const char *label) {
    rows *r = ctx;
    if (r->n < 4) {
        snprintf(r->text[r->n], sizeof r->text[0], "%s", text);
        snprintf(r->label[r->n], sizeof r->label[0], "%s", label);
    }
    r->n++;
}

START_TEST(test_feedback_each_oldest_first) {
    cml_state *st = open_state();
    int64_t id, total;
    static const char *texts[] = {"first", "second", "third"};
    static const char *labels[] = {"x", "y", "x"};
    for (int i = 0; i < 3; i++) {
        cml_feedback fb = feedback(texts[i], labels[i]);
        ck_assert_int_eq(cml_state_add_feedback(st, &fb, &id, &total), CML_OK);
    }
    rows r = {.n = 0};
    ck_assert_int_eq(cml_state_each_feedback(st, collect, &r), CML_OK);
    ck_assert_int_eq(r.n, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_str_eq(r.text[i], texts[i]);
        ck_assert_str_eq(r.label[i], labels[i]);
    }
    cml_state_close(st);
}
END_TEST

START_TEST(test_feedback_counts) {
    cml_state *st = open_state();
    char *json = NULL;
    ck_assert_int_eq(cml_state_feedback_counts(st, &json), CML_OK);
    ck_assert_str_eq(json, "{}");
    cml_free(json);
    int64_t id, total;
    static const char *labels[] = {"question", "not_question", "question"};
    for (int i = 0; i < 3; i++) {
        cml_feedback fb = feedback("t", labels[i]);
        ck_assert_int_eq(cml_state_add_feedback(st, &fb, &id, &total), CML_OK);
    }
    ck_assert_int_eq(cml_state_feedback_counts(st, &json), CML_OK);
    ck_assert_str_eq(json, "{\"not_question\":1,\"question\":2}");
    cml_free(json);
    cml_state_close(st);
}
END_TEST

START_TEST(test_feedback_optional_fields) {
    cml_state *st = open_state();
    int64_t id, total;
    cml_feedback fb = feedback("bare", "a");
    ck_assert_int_eq(cml_state_add_feedback(st, &fb, &id, &total), CML_OK);
    fb = feedback("full", "b");
    fb.predicted_class = "a";
    fb.confidence = 0.75;
    fb.error_type = "false_positive";
    fb.source = "api";
    fb.scenario_id = 42;
    fb.has_scenario = true;
    ck_assert_int_eq(cml_state_add_feedback(st, &fb, &id, &total), CML_OK);
    ck_assert_int_eq(query_int("SELECT COUNT(*) FROM feedback WHERE text = 'bare' AND confidence"
                               " IS NULL AND scenario_id IS NULL AND predicted_class IS NULL"
                               " AND error_type IS NULL AND source IS NULL"),
                     1);
    ck_assert_int_eq(query_int("SELECT COUNT(*) FROM feedback WHERE text = 'full' AND confidence"
                               " = 0.75 AND scenario_id = 42 AND predicted_class = 'a' AND"
                               " error_type = 'false_positive' AND source = 'api'"),
                     1);
    cml_state_close(st);
}
END_TEST

/* --- training jobs ------------------------------------------------------------ */

static cml_job job(const char *task_id, int64_t start_time, int64_t pid) {
    cml_job j;
    memset(&j, 0, sizeof j);
    snprintf(j.task_id, sizeof j.task_id, "%s", task_id);
    snprintf(j.model_type, sizeof j.model_type, "%s", "classic");
    snprintf(j.current_task, sizeof j.current_task, "%s", "queued");
    j.start_time = start_time;
    j.pid = pid;
    return j;
}

START_TEST(test_job_start_conflicts_while_running) {
    cml_state *st = open_state();
    int64_t now = (int64_t)time(NULL);
    cml_job a = job("task-a", now, 0), b = job("task-b", now + 1, 0), got;
    ck_assert_int_eq(cml_state_job_start(st, &a), CML_OK);
    ck_assert_int_eq(cml_state_job_start(st, &b), CML_ERR_CONFLICT);
    ck_assert_int_eq(cml_state_job_get(st, "task-b", &got), CML_ERR_NOT_FOUND);
    ck_assert_int_eq(cml_state_job_get(st, "task-a", &got), CML_OK);
    ck_assert_int_eq(got.status, CML_JOB_RUNNING);
    ck_assert_str_eq(got.model_type, "classic");
    ck_assert_str_eq(got.current_task, "queued");
    ck_assert_int_eq(got.start_time, now);
    ck_assert(got.progress == 0.0);
    /* Once it ended, another may start. */
    ck_assert_int_eq(cml_state_job_finish(st, "task-a", CML_JOB_FAILED, "stopped", NULL), CML_OK);
    ck_assert_int_eq(cml_state_job_start(st, &b), CML_OK);
    cml_state_close(st);
}
END_TEST

START_TEST(test_job_progress) {
    cml_state *st = open_state();
    cml_job a = job("task-a", (int64_t)time(NULL), 0), got;
    ck_assert_int_eq(cml_state_job_start(st, &a), CML_OK);
    ck_assert_int_eq(cml_state_job_progress(st, "task-a", 40.5, "fitting", 1234), CML_OK);
    ck_assert_int_eq(cml_state_job_get(st, "task-a", &got), CML_OK);
    ck_assert_double_eq(got.progress, 40.5);
    ck_assert_str_eq(got.current_task, "fitting");
    ck_assert_int_eq(got.pid, 1234);
    /* No pid given: the known one stays. */
    ck_assert_int_eq(cml_state_job_progress(st, "task-a", 60, "scoring", 0), CML_OK);
    ck_assert_int_eq(cml_state_job_get(st, "task-a", &got), CML_OK);
    ck_assert_double_eq(got.progress, 60);
    ck_assert_str_eq(got.current_task, "scoring");
    ck_assert_int_eq(got.pid, 1234);
    ck_assert_int_eq(cml_state_job_progress(st, "no-such-task", 10, "x", 0), CML_ERR_NOT_FOUND);
    cml_state_close(st);
}
END_TEST

START_TEST(test_job_finish_completed) {
    cml_state *st = open_state();
    cml_job a = job("task-a", (int64_t)time(NULL), 99), got;
    ck_assert_int_eq(cml_state_job_start(st, &a), CML_OK);
    ck_assert_int_eq(cml_state_job_progress(st, "task-a", 98, "publishing", 0), CML_OK);
    int64_t t0 = (int64_t)time(NULL);
    ck_assert_int_eq(
        cml_state_job_finish(st, "task-a", CML_JOB_COMPLETED, NULL, "20260101T000000.000Z"),
        CML_OK);
    ck_assert_int_eq(cml_state_job_get(st, "task-a", &got), CML_OK);
    ck_assert_int_eq(got.status, CML_JOB_COMPLETED);
    ck_assert_double_eq(got.progress, 100);
    ck_assert_str_eq(got.current_task, "done");
    ck_assert_str_eq(got.version, "20260101T000000.000Z");
    ck_assert_str_eq(got.error, "");
    ck_assert_int_ge(got.finished_at, t0);
    ck_assert_int_le(got.finished_at, (int64_t)time(NULL));
    /* An ended job takes no more updates. */
    ck_assert_int_eq(cml_state_job_progress(st, "task-a", 10, "again", 0), CML_ERR_NOT_FOUND);
    ck_assert_int_eq(cml_state_job_finish(st, "task-a", CML_JOB_FAILED, "late", NULL),
                     CML_ERR_NOT_FOUND);
    ck_assert_int_eq(cml_state_job_get(st, "task-a", &got), CML_OK);
    ck_assert_int_eq(got.status, CML_JOB_COMPLETED);
    ck_assert_double_eq(got.progress, 100);
    cml_state_close(st);
}
END_TEST

START_TEST(test_job_finish_failed_keeps_progress) {
    cml_state *st = open_state();
    cml_job a = job("task-a", (int64_t)time(NULL), 99), got;
    ck_assert_int_eq(cml_state_job_start(st, &a), CML_OK);
    ck_assert_int_eq(cml_state_job_progress(st, "task-a", 30, "fitting", 0), CML_OK);
    ck_assert_int_eq(cml_state_job_finish(st, "task-a", CML_JOB_FAILED, "out of memory", NULL),
                     CML_OK);
    ck_assert_int_eq(cml_state_job_get(st, "task-a", &got), CML_OK);
    ck_assert_int_eq(got.status, CML_JOB_FAILED);
    ck_assert_double_eq(got.progress, 30);
    ck_assert_str_eq(got.current_task, "fitting");
    ck_assert_str_eq(got.error, "out of memory");
    ck_assert_str_eq(got.version, "");
    cml_state_close(st);
}
END_TEST

START_TEST(test_job_latest) {
    cml_state *st = open_state();
    cml_job got;
    ck_assert_int_eq(cml_state_job_latest(st, &got), CML_ERR_NOT_FOUND);
    ck_assert_int_eq(cml_state_job_get(st, "task-a", &got), CML_ERR_NOT_FOUND);
    int64_t now = (int64_t)time(NULL);
    static const struct {
        const char *id;
        int64_t start;
    } jobs[] = {{"task-b", 100}, {"task-a", 50}, {"task-c", 100}};
    for (int i = 0; i < 3; i++) {
        cml_job j = job(jobs[i].id, now - 1000 + jobs[i].start, 0);
        ck_assert_int_eq(cml_state_job_start(st, &j), CML_OK);
        ck_assert_int_eq(cml_state_job_latest(st, &got), CML_OK);
        /* The latest start; on a tie, the one started last. */
        ck_assert_str_eq(got.task_id, i == 0 ? "task-b" : i == 1 ? "task-b" : "task-c");
        ck_assert_int_eq(cml_state_job_finish(st, jobs[i].id, CML_JOB_COMPLETED, NULL, "v"),
                         CML_OK);
    }
    cml_state_close(st);
}
END_TEST

static int alive_calls;
static int64_t alive_pid;
static bool alive_answer;

static bool alive(int64_t pid) {
    alive_calls++;
    alive_pid = pid;
    return alive_answer;
}

enum { NO_HEARTBEAT = -1000000 };

/* Starts one job `age` s ago, renews its lease to now + `lease` s (unless NO_HEARTBEAT), reaps
 * with alive() answering `answer`; got is its status afterwards. */
static void reap_one(int64_t age, int64_t pid, int64_t lease, bool answer, cml_job *got) {
    cml_state *st = open_state();
    int64_t now = (int64_t)time(NULL);
    cml_job a = job("task-a", now - age, pid);
    ck_assert_int_eq(cml_state_job_start(st, &a), CML_OK);
    if (lease != NO_HEARTBEAT)
        ck_assert_int_eq(cml_state_job_heartbeat(st, "task-a", now + lease), CML_OK);
    alive_calls = 0;
    alive_pid = 0;
    alive_answer = answer;
    ck_assert_int_eq(cml_state_jobs_reap(st, alive), CML_OK);
    ck_assert_int_eq(cml_state_job_get(st, "task-a", got), CML_OK);
    cml_state_close(st);
}

START_TEST(test_reap_job_of_dead_process) {
    cml_job got;
    /* Its lease still runs: a trainer known gone does not wait for it. */
    reap_one(5, 4242, CML_JOB_LEASE_S, false, &got);
    ck_assert_int_eq(alive_calls, 1);
    ck_assert_int_eq(alive_pid, 4242);
    ck_assert_int_eq(got.status, CML_JOB_FAILED);
    ck_assert_ptr_nonnull(strstr(got.error, "ended without reporting"));
    ck_assert_int_gt(got.finished_at, 0);
}
END_TEST

START_TEST(test_reap_spares_live_process_renewing_its_lease) {
    cml_job got;
    reap_one(5000, 4242, CML_JOB_LEASE_S, true, &got);
    ck_assert_int_eq(alive_calls, 1);
    ck_assert_int_eq(got.status, CML_JOB_RUNNING);
}
END_TEST

START_TEST(test_reap_expired_lease_of_live_pid) {
    /* The pid answers (a zombie nobody reaps, a reused pid, a trainer on another machine) but the
     * lease was last renewed 2 s ago for a moment already past: the job is failed. */
    cml_job got;
    reap_one(60, 4242, -2, true, &got);
    ck_assert_int_eq(alive_calls, 1);
    ck_assert_int_eq(got.status, CML_JOB_FAILED);
    ck_assert_ptr_nonnull(strstr(got.error, "lease"));
}
END_TEST

START_TEST(test_reap_first_lease_covers_the_trainer_start) {
    cml_job got;
    /* Never renewed, started CML_JOB_START_LEASE_S - 1 s ago, with a live pid: still running. */
    reap_one(CML_JOB_START_LEASE_S - 1, 4242, NO_HEARTBEAT, true, &got);
    ck_assert_int_eq(got.status, CML_JOB_RUNNING);
    teardown();
    setup();
    /* One past the first lease without a renewal: failed although its pid answers. */
    reap_one(CML_JOB_START_LEASE_S + 2, 4242, NO_HEARTBEAT, true, &got);
    ck_assert_int_eq(got.status, CML_JOB_FAILED);
}
END_TEST

START_TEST(test_reap_spares_job_just_started_without_pid) {
    cml_job got;
    reap_one(5, 0, NO_HEARTBEAT, false, &got);
    ck_assert_int_eq(alive_calls, 0);
    ck_assert_int_eq(got.status, CML_JOB_RUNNING);
}
END_TEST

START_TEST(test_reap_old_job_without_pid) {
    cml_job got;
    reap_one(120, 0, NO_HEARTBEAT, true, &got);
    ck_assert_int_eq(alive_calls, 0);
    ck_assert_int_eq(got.status, CML_JOB_FAILED);
}
END_TEST

START_TEST(test_heartbeat_of_ended_job_is_refused) {
    cml_state *st = open_state();
    int64_t now = (int64_t)time(NULL);
    cml_job a = job("task-a", now, 0);
    ck_assert_int_eq(cml_state_job_heartbeat(st, "task-a", now + 5), CML_ERR_NOT_FOUND);
    ck_assert_int_eq(cml_state_job_start(st, &a), CML_OK);
    ck_assert_int_eq(cml_state_job_heartbeat(st, "task-a", now + 5), CML_OK);
    ck_assert_int_eq(cml_state_job_finish(st, "task-a", CML_JOB_FAILED, "reaped", NULL), CML_OK);
    /* The trainer learns that its job ended without it. */
    ck_assert_int_eq(cml_state_job_heartbeat(st, "task-a", now + 6), CML_ERR_NOT_FOUND);
    cml_state_close(st);
}
END_TEST

START_TEST(test_state_without_lease_column_is_upgraded) {
    /* A state written before leases: its running job is reaped once its start is old. */
    char path[256];
    mkdir(state_dir, 0755);
    snprintf(path, sizeof path, "%s/state.sqlite3", state_dir);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(db,
                     "CREATE TABLE training_jobs (task_id TEXT PRIMARY KEY, model_type TEXT NOT "
                     "NULL, status TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0, current_task "
                     "TEXT, start_time INTEGER NOT NULL, finished_at INTEGER, error TEXT, version "
                     "TEXT, pid INTEGER);"
                     "INSERT INTO training_jobs (task_id, model_type, status, current_task,"
                     " start_time, pid) VALUES ('old', 'classic', 'running', 'fitting', 1000, 0);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    cml_state *st = open_state();
    cml_job got;
    ck_assert_int_eq(cml_state_jobs_reap(st, alive), CML_OK);
    ck_assert_int_eq(cml_state_job_get(st, "old", &got), CML_OK);
    ck_assert_int_eq(got.status, CML_JOB_FAILED);
    cml_job a = job("task-a", (int64_t)time(NULL), 0);
    ck_assert_int_eq(cml_state_job_start(st, &a), CML_OK);
    ck_assert_int_eq(cml_state_job_heartbeat(st, "task-a", (int64_t)time(NULL) + 5), CML_OK);
    cml_state_close(st);
}
END_TEST

/* --- history, evaluations, status ------------------------------------------- */

START_TEST(test_history_limit_type_and_order) {
    cml_state *st = open_state();
    /* c1 e1 c2 c3 e2 c4 c5, in that order. */
    static const char *order[] = {"c1", "e1", "c2", "c3", "e2", "c4", "c5"};
    for (int i = 0; i < 7; i++) {
        cml_history_entry h;
        memset(&h, 0, sizeof h);
        if (i != 0)
            snprintf(h.task_id, sizeof h.task_id, "task-%d", i);
        snprintf(h.model_type, sizeof h.model_type, "%s",
                 order[i][0] == 'c' ? "classic" : "ensemble");
        snprintf(h.version, sizeof h.version, "%s", order[i]);
        h.timestamp = 1700000000 + i;
        h.metrics_json = i == 0 ? NULL : "{\"f1\":0.9}";
        h.training_time = 1.5 * i;
        h.n_train = 100 + i;
        h.n_test = 20 + i;
        ck_assert_int_eq(cml_state_add_history(st, &h), CML_OK);
    }
    cml_history_entry *e;
    size_t n;
    ck_assert_int_eq(cml_state_list_history(st, "classic", 3, &e, &n), CML_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(e[0].version, "c3");
    ck_assert_str_eq(e[1].version, "c4");
    ck_assert_str_eq(e[2].version, "c5");
    ck_assert_str_eq(e[2].task_id, "task-6");
    ck_assert_int_eq(e[2].timestamp, 1700000006);
    ck_assert_double_eq(e[2].training_time, 9.0);
    ck_assert_int_eq(e[2].n_train, 106);
    ck_assert_int_eq(e[2].n_test, 26);
    ck_assert_str_eq(e[2].metrics_json, "{\"f1\":0.9}");
    cml_history_free(e, n);
    ck_assert_int_eq(cml_state_list_history(st, NULL, 0, &e, &n), CML_OK);
    ck_assert_uint_eq(n, 7);
    for (int i = 0; i < 7; i++)
        ck_assert_str_eq(e[i].version, order[i]);
    ck_assert_str_eq(e[0].task_id, ""); /* none given */
    ck_assert_ptr_null(e[0].metrics_json);
    cml_history_free(e, n);
    ck_assert_int_eq(cml_state_list_history(st, "ensemble", 0, &e, &n), CML_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(e[0].version, "e1");
    ck_assert_str_eq(e[1].version, "e2");
    cml_history_free(e, n);
    ck_assert_int_eq(cml_state_list_history(st, NULL, 2, &e, &n), CML_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(e[0].version, "c4");
    ck_assert_str_eq(e[1].version, "c5");
    cml_history_free(e, n);
    cml_state_close(st);
}
END_TEST

START_TEST(test_evaluation_stored) {
    cml_state *st = open_state();
    int64_t t0 = (int64_t)time(NULL);
    ck_assert_int_eq(cml_state_add_evaluation(st, "classic", "v9", 321, "{\"accuracy\":0.5}"),
                     CML_OK);
    ck_assert_int_eq(cml_state_add_evaluation(st, "ensemble", "e1", 7, NULL), CML_OK);
    ck_assert_int_eq(query_int("SELECT COUNT(*) FROM evaluations"), 2);
    ck_assert_int_eq(query_int("SELECT n FROM evaluations WHERE model_type = 'classic' AND"
                               " version = 'v9' AND metrics = '{\"accuracy\":0.5}'"),
                     321);
    ck_assert_int_ge(query_int("SELECT MIN(timestamp) FROM evaluations"), t0);
    ck_assert_int_eq(query_int("SELECT COUNT(*) FROM evaluations WHERE version = 'e1' AND"
                               " metrics IS NULL AND n = 7"),
                     1);
    cml_state_close(st);
}
END_TEST

START_TEST(test_status_values) {
    cml_state *st = open_state();
    char v[16];
    int64_t at = 0;
    ck_assert_int_eq(cml_state_get_status(st, "blob", v, sizeof v, &at), CML_ERR_NOT_FOUND);
    int64_t t0 = (int64_t)time(NULL);
    ck_assert_int_eq(cml_state_set_status(st, "blob", "reachable"), CML_OK);
    ck_assert_int_eq(cml_state_get_status(st, "blob", v, sizeof v, &at), CML_OK);
    ck_assert_str_eq(v, "reachable");
    ck_assert_int_ge(at, t0);
    ck_assert_int_eq(cml_state_set_status(st, "blob", "unreachable"), CML_OK);
    ck_assert_int_eq(cml_state_get_status(st, "blob", v, sizeof v, NULL), CML_OK);
    ck_assert_str_eq(v, "unreachable");
    /* A small buffer gets a terminated prefix. */
    char small[5];
    ck_assert_int_eq(cml_state_get_status(st, "blob", small, sizeof small, NULL), CML_OK);
    ck_assert_str_eq(small, "unre");
    ck_assert_int_eq(cml_state_get_status(st, "other", v, sizeof v, NULL), CML_ERR_NOT_FOUND);
    cml_state_close(st);
}
END_TEST

int main(void) {
    Suite *s = suite_create("shared_state");
    TCase *sel = tcase_create("selection");
    tcase_add_checked_fixture(sel, setup, teardown);
    tcase_add_test(sel, test_selection_absent_until_set);
    tcase_add_test(sel, test_set_selection_bumps_generation);
    tcase_add_test(sel, test_generation_shared_between_handles);
    if (!on_postgres()) /* removes SQLite's files */
        tcase_add_test(sel, test_generation_never_goes_back);
    tcase_add_test(sel, test_adopt_keeps_updated_at);
    tcase_add_test(sel, test_set_selection_takes_new_time);
    tcase_add_test(sel, test_init_selection_only_first_time);
    tcase_add_test(sel, test_touch_bumps_generation_only);
    tcase_add_test(sel, test_open_refuses_unusable_dir);
    tcase_add_test(sel, test_masked_url_hides_passwords);
    tcase_add_test(sel, test_bad_url_refused_without_its_password);
    tcase_add_test(sel, test_migrations_applied_once);
    tcase_add_test(sel, test_concurrent_opens_migrate_once);
    tcase_add_test(sel, test_selection_seen_by_other_instance);
    suite_add_tcase(s, sel);

    TCase *rec = tcase_create("records");
    tcase_add_checked_fixture(rec, setup, teardown);
    tcase_add_test(rec, test_models_listed_newest_first);
    tcase_add_test(rec, test_model_upsert_merges);
    tcase_add_test(rec, test_model_delete);
    tcase_add_test(rec, test_feedback_ids_and_total);
    tcase_add_test(rec, test_feedback_each_oldest_first);
    tcase_add_test(rec, test_feedback_counts);
    tcase_add_test(rec, test_feedback_optional_fields);
    tcase_add_test(rec, test_history_limit_type_and_order);
    tcase_add_test(rec, test_evaluation_stored);
    tcase_add_test(rec, test_status_values);
    suite_add_tcase(s, rec);

    TCase *jobs = tcase_create("jobs");
    tcase_add_checked_fixture(jobs, setup, teardown);
    tcase_add_test(jobs, test_job_start_conflicts_while_running);
    tcase_add_test(jobs, test_job_progress);
    tcase_add_test(jobs, test_job_finish_completed);
    tcase_add_test(jobs, test_job_finish_failed_keeps_progress);
    tcase_add_test(jobs, test_job_latest);
    tcase_add_test(jobs, test_reap_job_of_dead_process);
    tcase_add_test(jobs, test_reap_spares_live_process_renewing_its_lease);
    tcase_add_test(jobs, test_reap_expired_lease_of_live_pid);
    tcase_add_test(jobs, test_reap_first_lease_covers_the_trainer_start);
    tcase_add_test(jobs, test_reap_spares_job_just_started_without_pid);
    tcase_add_test(jobs, test_reap_old_job_without_pid);
    tcase_add_test(jobs, test_heartbeat_of_ended_job_is_refused);
    if (!on_postgres()) /* a SQLite file from before leases */
        tcase_add_test(jobs, test_state_without_lease_column_is_upgraded);
    suite_add_tcase(s, jobs);
    return unit_run(s);
}
