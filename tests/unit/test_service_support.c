/*
 * What the service is made of besides its handlers: the shared-memory
 * metrics and their Prometheus text, the log line formats, and the
 * validated training settings (hyperparameters).
 */
#include "config.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cml_alloc.h"
#include "learn/hyperparams.h"
#include "ops/service_log.h"
#include "ops/prom.h"
#include "unit.h"

/* --- metrics ------------------------------------------------------------------ */

static char map_path[64];

static void metrics_setup(void) {
    snprintf(map_path, sizeof map_path, "/tmp/cml-metrics-XXXXXX");
    int fd = mkstemp(map_path);
    ck_assert_int_ge(fd, 0);
    close(fd);
}

static void metrics_teardown(void) {
    cml_prom_close();
    unlink(map_path);
}

static void open_map(void) {
    cml_diag d = {{0}};
    ck_assert_msg(cml_prom_open(map_path, &d) == CML_OK, "%s", d.msg);
}

/* The Prometheus text as it stands; caller frees. */
static char *scrape(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    cml_prom_write(f);
    fclose(f);
    return buf;
}

static void expect_line(const char *text, const char *line) {
    char want[512];
    snprintf(want, sizeof want, "\n%s\n", line);
    ck_assert_msg(strstr(text, want) != NULL, "no line '%s' in: %.200s...", line, text);
}

static size_t count(const char *text, const char *what) {
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

START_TEST(test_metrics_counters) {
    open_map();
    cml_prom_inc(CML_M_MODEL_LOADS, 3);
    cml_prom_inc(CML_M_BLOB_RETRIES, 1);
    cml_prom_inc(CML_M_BLOB_RETRIES, 2);
    cml_prom_inc(CML_M__COUNT, 5); /* out of range: ignored */
    char *t = scrape();
    expect_line(t, "# TYPE cultivate_ml_model_loads_total counter");
    expect_line(t, "cultivate_ml_model_loads_total 3");
    expect_line(t, "cultivate_ml_blob_retries_total 3");
    expect_line(t, "cultivate_ml_training_jobs_failed_total 0");
    expect_line(t, "cultivate_ml_metric_series_dropped_total 0");
    free(t);
}
END_TEST

START_TEST(test_metrics_two_maps_share_counts) {
    open_map();
    cml_prom_inc(CML_M_TRAINING_STARTED, 2);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* Another worker: its own map of the same file. */
        cml_prom_close();
        int ok = cml_prom_open(map_path, NULL) == CML_OK;
        cml_prom_inc(CML_M_TRAINING_STARTED, 5);
        cml_prom_request("/classify", "classic", "v1", 200, 0.001);
        cml_prom_close();
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char *t = scrape();
    expect_line(t, "cultivate_ml_training_jobs_started_total 7");
    expect_line(t, "cultivate_ml_requests_total{route=\"/classify\",model=\"classic\","
                   "version=\"v1\",status=\"200\"} 1");
    free(t);
    /* A second map in this process (a restarted worker) finds the same counts. */
    cml_prom_close();
    open_map();
    t = scrape();
    expect_line(t, "cultivate_ml_training_jobs_started_total 7");
    free(t);
}
END_TEST

START_TEST(test_metrics_foreign_file_reset) {
    FILE *f = fopen(map_path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 1000; i++)
        fputs("garbage ", f);
    fclose(f);
    open_map();
    char *t = scrape();
    expect_line(t, "cultivate_ml_model_loads_total 0");
    ck_assert_uint_eq(count(t, "cultivate_ml_requests_total{"), 0);
    free(t);
}
END_TEST

START_TEST(test_metrics_request_series_and_histogram) {
    open_map();
    cml_prom_request("/classify", "classic", "v1", 200, 0.003);
    cml_prom_request("/classify", "classic", "v1", 200, 0.004);
    cml_prom_request("/classify", "classic", "v1", 503, 3.0);
    cml_prom_request("/health", NULL, NULL, 200, 0.00005);
    char *t = scrape();
    expect_line(t, "# TYPE cultivate_ml_requests_total counter");
    expect_line(t, "cultivate_ml_requests_total{route=\"/classify\",model=\"classic\","
                   "version=\"v1\",status=\"200\"} 2");
    expect_line(t, "cultivate_ml_requests_total{route=\"/classify\",model=\"classic\","
                   "version=\"v1\",status=\"503\"} 1");
    expect_line(t, "cultivate_ml_requests_total{route=\"/health\",model=\"\",version=\"\","
                   "status=\"200\"} 1");
    ck_assert_uint_eq(count(t, "cultivate_ml_requests_total{"), 3);
    expect_line(t, "# TYPE cultivate_ml_request_duration_seconds histogram");
    /* Cumulative buckets: 3 ms and 4 ms fall in le=0.005 and above; 3 s only in +Inf. */
    expect_line(t, "cultivate_ml_request_duration_seconds_bucket{route=\"/classify\",le=\"0.0025\"}"
                   " 0");
    expect_line(t, "cultivate_ml_request_duration_seconds_bucket{route=\"/classify\",le=\"0.005\"}"
                   " 2");
    expect_line(t, "cultivate_ml_request_duration_seconds_bucket{route=\"/classify\",le=\"2.5\"}"
                   " 2");
    expect_line(t, "cultivate_ml_request_duration_seconds_bucket{route=\"/classify\",le=\"+Inf\"}"
                   " 3");
    expect_line(t, "cultivate_ml_request_duration_seconds_count{route=\"/classify\"} 3");
    const char *sum =
        strstr(t, "\ncultivate_ml_request_duration_seconds_sum{route=\"/classify\"} ");
    ck_assert_ptr_nonnull(sum);
    ck_assert_double_eq_tol(strtod(strchr(sum, '}') + 1, NULL), 3.007, 2e-6);
    expect_line(t, "cultivate_ml_request_duration_seconds_bucket{route=\"/health\",le=\"0.0001\"}"
                   " 1");
    ck_assert_uint_eq(count(t, "le=\"+Inf\""), 2);
    free(t);
}
END_TEST

START_TEST(test_metrics_label_escaping) {
    open_map();
    cml_prom_request("/a\"b\\c", "classic", "v\"1", 404, 0.01);
    char *t = scrape();
    expect_line(t, "cultivate_ml_requests_total{route=\"/a\\\"b\\\\c\",model=\"classic\","
                   "version=\"v\\\"1\",status=\"404\"} 1");
    expect_line(t, "cultivate_ml_request_duration_seconds_count{route=\"/a\\\"b\\\\c\"} 1");
    free(t);
}
END_TEST

START_TEST(test_metrics_full_table_counts_drops) {
    open_map();
    /* 1024 series fit; the rest are dropped and counted, never blocking. */
    for (int i = 0; i < 1100; i++) {
        char version[16];
        snprintf(version, sizeof version, "v%d", i);
        cml_prom_request("/classify", "classic", version, 200, 0.001);
    }
    cml_prom_request("/classify", "classic", "v0", 200, 0.001); /* known: still counted */
    char *t = scrape();
    ck_assert_uint_eq(count(t, "cultivate_ml_requests_total{"), 1024);
    expect_line(t, "cultivate_ml_metric_series_dropped_total 76");
    expect_line(t, "cultivate_ml_requests_total{route=\"/classify\",model=\"classic\","
                   "version=\"v0\",status=\"200\"} 2");
    /* The route's histogram saw every request. */
    expect_line(t, "cultivate_ml_request_duration_seconds_count{route=\"/classify\"} 1101");
    free(t);
}
END_TEST

START_TEST(test_metrics_process_gauges) {
    open_map();
    cml_prom_set_process(1234, 5678);
    cml_prom_set_process(4321, 8765); /* updates this process's slot */
    char *t = scrape();
    char line[128];
    snprintf(line, sizeof line, "cultivate_ml_resident_model_bytes{pid=\"%ld\"} 4321",
             (long)getpid());
    expect_line(t, line);
    snprintf(line, sizeof line, "cultivate_ml_allocated_bytes{pid=\"%ld\"} 8765", (long)getpid());
    expect_line(t, line);
    ck_assert_uint_eq(count(t, "cultivate_ml_resident_model_bytes{"), 1);
    free(t);
}
END_TEST

START_TEST(test_metrics_without_map_do_nothing) {
    cml_prom_close();
    cml_prom_inc(CML_M_MODEL_LOADS, 1);
    cml_prom_request("/classify", "classic", "v1", 200, 0.1);
    cml_prom_set_process(1, 1);
    char *t = scrape();
    ck_assert_str_eq(t, "");
    free(t);
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_prom_open("/nonexistent-dir/metrics", &d), CML_ERR_IO);
    ck_assert_ptr_nonnull(strstr(d.msg, "/nonexistent-dir/metrics"));
}
END_TEST

/* --- log ---------------------------------------------------------------------- */

static char log_path[64];
static int saved_stderr = -1;

/* Sends stderr (fd 2) to a temporary file until end_capture. */
static void begin_capture(void) {
    snprintf(log_path, sizeof log_path, "/tmp/cml-log-XXXXXX");
    int fd = mkstemp(log_path);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    ck_assert_int_ge(saved_stderr, 0);
    ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
}

/* Restores stderr and returns what was written (caller frees). */
static char *end_capture(size_t *len_out) {
    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    saved_stderr = -1;
    FILE *f = fopen(log_path, "rb");
    ck_assert_ptr_nonnull(f);
    static char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    unlink(log_path);
    buf[n] = '\0';
    if (len_out)
        *len_out = n;
    char *out = malloc(n + 1);
    memcpy(out, buf, n + 1);
    return out;
}

static void log_teardown(void) {
    if (saved_stderr >= 0) {
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        saved_stderr = -1;
        unlink(log_path);
    }
    cml_log_configure(CML_LOG_INFO, CML_LOG_LOGFMT);
}

/* What follows the timestamp field, or fails when the line does not start with one. */
static const char *after_ts(const char *line, bool json) {
    const char *p = line + (json ? strlen("{\"ts\":\"") : strlen("ts="));
    ck_assert_msg(strncmp(line, json ? "{\"ts\":\"" : "ts=", json ? 7 : 3) == 0, "%s", line);
    /* 2026-11-26T06:58:13.232Z */
    ck_assert_msg(strlen(p) > 24 && p[4] == '-' && p[10] == 'T' && p[19] == '.' && p[23] == 'Z',
                  "timestamp in %s", line);
    return p + 24;
}

START_TEST(test_log_logfmt_line) {
    cml_log_configure(CML_LOG_INFO, CML_LOG_LOGFMT);
    begin_capture();
    cml_log(CML_LOG_INFO, "model_loaded", "model", "classic", "version", "v1", NULL);
    char *out = end_capture(NULL);
    char want[256];
    snprintf(want, sizeof want, " level=info event=model_loaded pid=%ld model=classic version=v1\n",
             (long)getpid());
    ck_assert_str_eq(after_ts(out, false), want);
    free(out);
}
END_TEST

static const struct {
    const char *value, *logfmt;
} quoting[] = {
    {"plain", "plain"},
    {"two words", "\"two words\""},
    {"say \"hi\"", "\"say \\\"hi\\\"\""},
    {"line\nbreak", "\"line\\u000abreak\""},
    {"cr\rhere", "\"cr\\u000dhere\""},
    {"tab\there", "\"tab\\u0009here\""},
    {"back\\slash", "\"back\\\\slash\""},
    {"a=b", "\"a=b\""},
    {"", "\"\""},
    {"bell\x07", "bell\\u0007"},
    {"esc\x1b[0m", "esc\\u001b[0m"},
    {"caf\xc3\xa9", "caf\xc3\xa9"},
};

START_TEST(test_log_logfmt_escaping) {
    cml_log_configure(CML_LOG_INFO, CML_LOG_LOGFMT);
    begin_capture();
    cml_log(CML_LOG_WARN, "e", "k", quoting[_i].value, NULL);
    size_t len;
    char *out = end_capture(&len);
    char want[256];
    snprintf(want, sizeof want, " level=warn event=e pid=%ld k=%s\n", (long)getpid(),
             quoting[_i].logfmt);
    ck_assert_str_eq(after_ts(out, false), want);
    ck_assert_uint_eq(strlen(out), len); /* no NUL byte */
    free(out);
}
END_TEST

START_TEST(test_log_json_round_trip) {
    cml_log_configure(CML_LOG_INFO, CML_LOG_JSON);
    begin_capture();
    cml_log(CML_LOG_ERROR, "job \"failed\"", "error", "line1\nline2\t\"quoted\" \\ end", "empty",
            "", "missing", NULL, "utf8", "caf\xc3\xa9", NULL);
    size_t len;
    char *out = end_capture(&len);
    ck_assert_uint_gt(len, 2);
    ck_assert_int_eq(out[len - 1], '\n');
    ck_assert_ptr_eq(strchr(out, '\n'), out + len - 1); /* one line */
    after_ts(out, true);
    json_object *o = json_tokener_parse(out);
    ck_assert_msg(o != NULL, "not JSON: %s", out);
    json_object *v;
    char pid[16];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    ck_assert(json_object_object_get_ex(o, "level", &v));
    ck_assert_str_eq(json_object_get_string(v), "error");
    ck_assert(json_object_object_get_ex(o, "event", &v));
    ck_assert_str_eq(json_object_get_string(v), "job \"failed\"");
    ck_assert(json_object_object_get_ex(o, "pid", &v));
    ck_assert_str_eq(json_object_get_string(v), pid);
    ck_assert(json_object_object_get_ex(o, "error", &v));
    ck_assert_str_eq(json_object_get_string(v), "line1\nline2\t\"quoted\" \\ end");
    ck_assert(json_object_object_get_ex(o, "empty", &v));
    ck_assert_str_eq(json_object_get_string(v), "");
    ck_assert(json_object_object_get_ex(o, "missing", &v));
    ck_assert_str_eq(json_object_get_string(v), "");
    ck_assert(json_object_object_get_ex(o, "utf8", &v));
    ck_assert_str_eq(json_object_get_string(v), "caf\xc3\xa9");
    ck_assert(json_object_object_get_ex(o, "ts", &v));
    json_object_put(o);
    free(out);
}
END_TEST

/* Fields after one that filled the line are dropped; the line stays well-formed. */
START_TEST(test_log_field_after_long_value) {
    static char big[6000];
    memset(big, 'x', sizeof big - 1);
    cml_log_configure(CML_LOG_INFO, _i ? CML_LOG_JSON : CML_LOG_LOGFMT);
    begin_capture();
    cml_log(CML_LOG_INFO, "big", "value", big, "after", "x", NULL);
    size_t len;
    char *out = end_capture(&len);
    ck_assert_uint_le(len, 4096);
    ck_assert_int_eq(out[len - 1], '\n');
    ck_assert_msg(strlen(out) == len, "NUL byte at %zu of %zu: ...%s", strlen(out), len,
                  out + strlen(out) - 20);
    if (_i) {
        json_object *o = json_tokener_parse(out);
        ck_assert_msg(o != NULL, "not JSON: ...%s", out + len - 30);
        json_object_put(o);
    }
    free(out);
}
END_TEST

START_TEST(test_log_level_threshold) {
    cml_log_configure(CML_LOG_WARN, CML_LOG_LOGFMT);
    ck_assert(!cml_log_enabled(CML_LOG_DEBUG));
    ck_assert(!cml_log_enabled(CML_LOG_INFO));
    ck_assert(cml_log_enabled(CML_LOG_WARN));
    ck_assert(cml_log_enabled(CML_LOG_ERROR));
    begin_capture();
    cml_log(CML_LOG_DEBUG, "d", NULL);
    cml_log(CML_LOG_INFO, "i", NULL);
    cml_log(CML_LOG_WARN, "w", NULL);
    cml_log(CML_LOG_ERROR, "e", NULL);
    char *out = end_capture(NULL);
    ck_assert_uint_eq(count(out, "\n"), 2);
    ck_assert_ptr_nonnull(strstr(out, " level=warn event=w "));
    ck_assert_ptr_nonnull(strstr(out, " level=error event=e "));
    ck_assert_ptr_null(strstr(out, "event=i"));
    free(out);
    cml_log_configure(CML_LOG_DEBUG, CML_LOG_LOGFMT);
    ck_assert(cml_log_enabled(CML_LOG_DEBUG));
    begin_capture();
    cml_log(CML_LOG_DEBUG, "d", NULL);
    out = end_capture(NULL);
    ck_assert_ptr_nonnull(strstr(out, " level=debug event=d "));
    free(out);
    cml_log_configure(CML_LOG_ERROR, CML_LOG_LOGFMT);
    ck_assert(!cml_log_enabled(CML_LOG_WARN));
    ck_assert(cml_log_enabled(CML_LOG_ERROR));
}
END_TEST

START_TEST(test_log_long_value_truncated) {
    static char big[6000];
    memset(big, 'x', sizeof big - 1);
    cml_log_configure(CML_LOG_INFO, CML_LOG_JSON);
    begin_capture();
    cml_log(CML_LOG_INFO, "big", "value", big, NULL);
    size_t len;
    char *out = end_capture(&len);
    ck_assert_uint_le(len, 4096);
    ck_assert_int_eq(out[len - 1], '\n');
    ck_assert_uint_eq(strlen(out), len);
    json_object *o = json_tokener_parse(out);
    ck_assert_msg(o != NULL, "not JSON: %.80s...", out);
    json_object *v;
    ck_assert(json_object_object_get_ex(o, "value", &v));
    ck_assert_uint_gt(strlen(json_object_get_string(v)), 3000);
    json_object_put(o);
    free(out);
}
END_TEST

/* --- hyperparameters ------------------------------------------------------------ */

/* Where each setting lands, read back as a number; fails for a key this test does not know. */
static double field(const cml_train_options *o, const char *name) {
    if (!strcmp(name, "seed"))
        return (double)o->seed;
    if (!strcmp(name, "cv_folds"))
        return (double)o->cv_folds;
    if (!strcmp(name, "test_fraction"))
        return o->test_frac;
    if (!strcmp(name, "logistic_regression.C"))
        return o->params[CML_MEMBER_LOGREG].C;
    if (!strcmp(name, "linear_svm.C"))
        return o->params[CML_MEMBER_LINEAR_SVM].C;
    if (!strcmp(name, "boosted_trees.n_estimators"))
        return o->params[CML_MEMBER_BOOSTED_TREES].n_trees;
    if (!strcmp(name, "boosted_trees.max_depth"))
        return o->params[CML_MEMBER_BOOSTED_TREES].max_depth;
    if (!strcmp(name, "boosted_trees.learning_rate"))
        return o->params[CML_MEMBER_BOOSTED_TREES].learning_rate;
    if (!strcmp(name, "random_forest.n_estimators"))
        return o->params[CML_MEMBER_RANDOM_FOREST].n_trees;
    if (!strcmp(name, "random_forest.max_depth"))
        return o->params[CML_MEMBER_RANDOM_FOREST].max_depth;
    if (!strcmp(name, "mlp.hidden_units"))
        return o->params[CML_MEMBER_MLP].hidden;
    if (!strcmp(name, "mlp.epochs"))
        return o->params[CML_MEMBER_MLP].epochs;
    ck_abort_msg("hyperparameter %s has no test", name);
    return NAN;
}

static void fmt(char *buf, size_t cap, double v) { snprintf(buf, cap, "%.17g", v); }

START_TEST(test_hyperparam_sets_its_field) {
    const cml_hyperparam *h = &cml_hyperparams[_i];
    cml_train_options o, fresh;
    cml_diag d = {{0}};
    char text[64];
    double mid = h->integer ? floor((h->min + h->max) / 2) : (h->min + h->max) / 2;
    if (!strcmp(h->name, "cv_folds"))
        mid = 7;
    const double values[] = {h->min, h->max, mid};
    for (int k = 0; k < 3; k++) {
        if (!strcmp(h->name, "cv_folds") && values[k] == 1)
            continue;
        cml_train_options_init(&o, CML_MODEL_ENSEMBLE);
        memcpy(&fresh, &o, sizeof o);
        fmt(text, sizeof text, values[k]);
        ck_assert_msg(cml_hyperparam_set(&o, h->name, text, &d) == CML_OK, "%s=%s: %s", h->name,
                      text, d.msg);
        ck_assert_msg(field(&o, h->name) == values[k], "%s=%s gave %g", h->name, text,
                      field(&o, h->name));
        /* Nothing else changed. */
        if (!strcmp(h->name, "seed"))
            fresh.seed = o.seed;
        else if (!strcmp(h->name, "cv_folds"))
            fresh.cv_folds = o.cv_folds;
        else if (!strcmp(h->name, "test_fraction"))
            fresh.test_frac = o.test_frac;
        else
            memcpy(fresh.params, o.params, sizeof o.params);
        ck_assert_msg(memcmp(&fresh, &o, sizeof o) == 0, "%s changed more than its field", h->name);
    }
    ck_assert(h->help != NULL && h->help[0] != '\0');
}
END_TEST

START_TEST(test_hyperparam_table_complete) {
    static const char *names[] = {"seed",
                                  "cv_folds",
                                  "test_fraction",
                                  "logistic_regression.C",
                                  "linear_svm.C",
                                  "boosted_trees.n_estimators",
                                  "boosted_trees.max_depth",
                                  "boosted_trees.learning_rate",
                                  "random_forest.n_estimators",
                                  "random_forest.max_depth",
                                  "mlp.hidden_units",
                                  "mlp.epochs"};
    ck_assert_uint_eq(cml_n_hyperparams, sizeof names / sizeof names[0]);
    for (size_t i = 0; i < cml_n_hyperparams; i++) {
        ck_assert_str_eq(cml_hyperparams[i].name, names[i]);
        ck_assert(cml_hyperparams[i].min < cml_hyperparams[i].max);
    }
}
END_TEST

START_TEST(test_hyperparam_bounds) {
    const cml_hyperparam *h = &cml_hyperparams[_i];
    double below = h->integer ? h->min - 1 : (h->min > 0 ? h->min / 2 : h->min - 1);
    double above = h->integer ? h->max + 1 : h->max * 2;
    const double values[] = {below, above};
    for (int k = 0; k < 2; k++) {
        cml_train_options o, fresh;
        cml_diag d = {{0}};
        char text[64], want[160];
        cml_train_options_init(&o, CML_MODEL_ENSEMBLE);
        memcpy(&fresh, &o, sizeof o);
        fmt(text, sizeof text, values[k]);
        ck_assert_int_eq(cml_hyperparam_set(&o, h->name, text, &d), CML_ERR_INVALID);
        snprintf(want, sizeof want, "hyperparameter '%s': %s is outside %g..%g", h->name, text,
                 h->min, h->max);
        ck_assert_msg(strstr(d.msg, want) != NULL, "'%s' lacks '%s'", d.msg, want);
        ck_assert_msg(memcmp(&fresh, &o, sizeof o) == 0, "%s=%s changed the options", h->name,
                      text);
    }
}
END_TEST

START_TEST(test_hyperparam_whole_numbers) {
    const cml_hyperparam *h = &cml_hyperparams[_i];
    cml_train_options o;
    cml_diag d = {{0}};
    char text[64];
    double v = h->min + (h->integer ? 2.5 : (h->max - h->min) / 3);
    cml_train_options_init(&o, CML_MODEL_ENSEMBLE);
    fmt(text, sizeof text, v);
    cml_err err = cml_hyperparam_set(&o, h->name, text, &d);
    if (h->integer) {
        ck_assert_msg(err == CML_ERR_INVALID, "%s accepted %s", h->name, text);
        ck_assert_msg(strstr(d.msg, "(whole numbers)") != NULL, "%s", d.msg);
        ck_assert_ptr_nonnull(strstr(d.msg, h->name));
    } else {
        ck_assert_msg(err == CML_OK, "%s refused %s: %s", h->name, text, d.msg);
        ck_assert(field(&o, h->name) == v);
    }
}
END_TEST

START_TEST(test_hyperparam_not_a_number) {
    static const char *bad[] = {"", "abc", "5x", "1,5", "nan", "inf", "-inf", "1e999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cml_train_options o;
        cml_diag d = {{0}};
        char want[128];
        cml_train_options_init(&o, CML_MODEL_CLASSIC);
        ck_assert_int_eq(cml_hyperparam_set(&o, "logistic_regression.C", bad[i], &d),
                         CML_ERR_INVALID);
        snprintf(want, sizeof want, "hyperparameter 'logistic_regression.C': '%s' is not a number",
                 bad[i]);
        ck_assert_msg(strstr(d.msg, want) != NULL, "'%s' lacks '%s'", d.msg, want);
    }
}
END_TEST

START_TEST(test_hyperparam_unknown_key) {
    static const char *bad[] = {"colour", "Seed", "logistic_regression", "mlp.epochs ", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cml_train_options o, fresh;
        cml_diag d = {{0}};
        char want[128];
        cml_train_options_init(&o, CML_MODEL_CLASSIC);
        memcpy(&fresh, &o, sizeof o);
        ck_assert_int_eq(cml_hyperparam_set(&o, bad[i], "1", &d), CML_ERR_INVALID);
        snprintf(want, sizeof want, "unknown hyperparameter '%s'", bad[i]);
        ck_assert_msg(strstr(d.msg, want) != NULL, "'%s' lacks '%s'", d.msg, want);
        ck_assert(memcmp(&fresh, &o, sizeof o) == 0);
    }
}
END_TEST

START_TEST(test_hyperparam_cv_folds_one_refused) {
    cml_train_options o;
    cml_diag d = {{0}};
    cml_train_options_init(&o, CML_MODEL_CLASSIC);
    ck_assert_int_eq(cml_hyperparam_set(&o, "cv_folds", "1", &d), CML_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(d.msg, "'cv_folds': 1 is not allowed"));
    ck_assert_uint_eq(o.cv_folds, 5);
    ck_assert_int_eq(cml_hyperparam_set(&o, "cv_folds", "0", &d), CML_OK);
    ck_assert_uint_eq(o.cv_folds, 0);
    ck_assert_int_eq(cml_hyperparam_set(&o, "cv_folds", "2", &d), CML_OK);
    ck_assert_uint_eq(o.cv_folds, 2);
}
END_TEST

START_TEST(test_hyperparam_seed_full_range) {
    cml_train_options o;
    cml_diag d = {{0}};
    cml_train_options_init(&o, CML_MODEL_CLASSIC);
    ck_assert_int_eq(cml_hyperparam_set(&o, "seed", "4294967295", &d), CML_OK);
    ck_assert_uint_eq(o.seed, 4294967295ull);
    ck_assert_int_eq(cml_hyperparam_set(&o, "seed", "4294967296", &d), CML_ERR_INVALID);
    ck_assert_uint_eq(o.seed, 4294967295ull);
    ck_assert_int_eq(cml_hyperparam_set(&o, "seed", "0", &d), CML_OK);
    ck_assert_uint_eq(o.seed, 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("service_support");
    TCase *m = tcase_create("metrics");
    tcase_add_checked_fixture(m, metrics_setup, metrics_teardown);
    tcase_add_test(m, test_metrics_counters);
    tcase_add_test(m, test_metrics_two_maps_share_counts);
    tcase_add_test(m, test_metrics_foreign_file_reset);
    tcase_add_test(m, test_metrics_request_series_and_histogram);
    tcase_add_test(m, test_metrics_label_escaping);
    tcase_add_test(m, test_metrics_full_table_counts_drops);
    tcase_add_test(m, test_metrics_process_gauges);
    tcase_add_test(m, test_metrics_without_map_do_nothing);
    suite_add_tcase(s, m);

    TCase *l = tcase_create("log");
    tcase_add_checked_fixture(l, NULL, log_teardown);
    tcase_add_test(l, test_log_logfmt_line);
    tcase_add_loop_test(l, test_log_logfmt_escaping, 0, (int)(sizeof quoting / sizeof quoting[0]));
    tcase_add_test(l, test_log_json_round_trip);
    tcase_add_test(l, test_log_level_threshold);
    tcase_add_test(l, test_log_long_value_truncated);
    tcase_add_loop_test(l, test_log_field_after_long_value, 0, 2);
    suite_add_tcase(s, l);

    TCase *h = tcase_create("hyperparams");
    tcase_add_test(h, test_hyperparam_table_complete);
    tcase_add_loop_test(h, test_hyperparam_sets_its_field, 0, (int)cml_n_hyperparams);
    tcase_add_loop_test(h, test_hyperparam_bounds, 0, (int)cml_n_hyperparams);
    tcase_add_loop_test(h, test_hyperparam_whole_numbers, 0, (int)cml_n_hyperparams);
    tcase_add_test(h, test_hyperparam_not_a_number);
    tcase_add_test(h, test_hyperparam_unknown_key);
    tcase_add_test(h, test_hyperparam_cv_folds_one_refused);
    tcase_add_test(h, test_hyperparam_seed_full_range);
    suite_add_tcase(s, h);
    return unit_run(s);
}
