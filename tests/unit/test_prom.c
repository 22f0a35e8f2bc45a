/* The shared-memory metrics (ops/prom.c) and their Prometheus text. */
#include "config.h"

#include <sys/wait.h>

#include "ops/prom.h"
#include "unit.h"

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

int main(void) {
    Suite *s = suite_create("prom");
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
    return unit_run(s);
}
