/* The configuration table: defaults, file, environment, validation messages, documentation. */
#include "config.h"

#include <stdio.h>
#include <unistd.h>

#include "ops/service_config.h"
#include "ops/service_log.h"
#include "unit.h"

static char path[64];

static void write_conf(const char *text) {
    snprintf(path, sizeof path, "/tmp/cml-conf-test.%ld", (long)getpid());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void clear_env(void) {
    for (size_t i = 0; i < cml_config_n_keys; i++)
        unsetenv(cml_config_keys[i].env);
}

START_TEST(test_defaults) {
    cml_config c;
    cml_diag d;
    clear_env();
    ck_assert_int_eq(cml_config_load(&c, NULL, true, &d), CML_OK);
    ck_assert_int_eq(c.max_batch, 1000);
    ck_assert_int_eq(c.max_text_chars, 10000);
    ck_assert_int_eq(c.max_body_bytes, 10485760);
    ck_assert_int_eq(c.model_sync_interval, 5);
    ck_assert(!c.use_azure_storage);
    ck_assert_str_eq(c.azure_container, "ml-models");
    ck_assert_str_eq(c.api_key, "");
    ck_assert_double_eq(c.shadow_sample, 1.0);
    ck_assert_int_eq(c.comparison_min_feedback, 30);
    cml_config_release(&c);
}
END_TEST

/* A fraction key: file, environment, dump and metrics. */
START_TEST(test_real_key) {
    cml_config c;
    cml_diag d;
    clear_env();
    write_conf("shadow_sample = 0.25\n");
    ck_assert_int_eq(cml_config_load(&c, path, false, &d), CML_OK);
    ck_assert_double_eq_tol(c.shadow_sample, 0.25, 1e-15);
    cml_config_release(&c);
    setenv("SHADOW_SAMPLE", "0", 1);
    ck_assert_int_eq(cml_config_load(&c, path, false, &d), CML_OK);
    ck_assert_double_eq(c.shadow_sample, 0.0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cml_config_dump(&c, f);
    cml_config_metrics(&c, f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "shadow_sample = 0\n"));
    ck_assert_ptr_nonnull(strstr(buf, "cultivate_ml_config{key=\"shadow_sample\"} 0\n"));
    free(buf);
    cml_config_release(&c);
    unsetenv("SHADOW_SAMPLE");
    unlink(path);
}
END_TEST

START_TEST(test_file_then_environment) {
    cml_config c;
    cml_diag d;
    clear_env();
    write_conf("# comment\nmax_batch = 50\nlog_level = \"debug\"\n\nthreads=4\n");
    setenv("FCGI_THREADS", "8", 1);
    ck_assert_int_eq(cml_config_load(&c, path, false, &d), CML_OK);
    ck_assert_int_eq(c.max_batch, 50);
    ck_assert_int_eq(c.log_level, CML_LOG_DEBUG);
    ck_assert_int_eq(c.threads, 8); /* the environment wins */
    cml_config_release(&c);
    unsetenv("FCGI_THREADS");
    unlink(path);
}
END_TEST

static const struct {
    const char *file, *env, *value, *want;
} bad[] = {
    {"max_batch = 0\n", NULL, NULL, "max_batch (config file line 1): 0 is outside 1..100000"},
    {"max_batch = lots\n", NULL, NULL,
     "max_batch (config file line 1): 'lots' is not a whole number"},
    {"colour = blue\n", NULL, NULL, "unknown key 'colour'"},
    {"just words\n", NULL, NULL, ":1: expected `key = value`"},
    {"", "MODEL_TYPE", "forest",
     "model_type (environment): 'forest' is not one of ensemble|classic"},
    {"", "USE_AZURE_STORAGE", "maybe",
     "use_azure_storage (environment): 'maybe' is not true or false"},
    {"", "USE_AZURE_STORAGE", "true", "azure_storage_connection_string: required"},
    {"", "API_KEY_FILE", "/nonexistent/key", "api_key_file: cannot read /nonexistent/key"},
    {"", "SHADOW_SAMPLE", "1.5", "shadow_sample (environment): 1.5 is outside 0..1"},
    {"", "SHADOW_SAMPLE", "half", "shadow_sample (environment): 'half' is not a number"},
    {"", "SHADOW_SAMPLE", "nan", "shadow_sample (environment): 'nan' is not a number"},
};

START_TEST(test_bad_values_name_the_key) {
    cml_config c;
    cml_diag d = {{0}};
    clear_env();
    unsetenv("IDENTITY_ENDPOINT");
    write_conf(bad[_i].file);
    if (bad[_i].env)
        setenv(bad[_i].env, bad[_i].value, 1);
    ck_assert_int_eq(cml_config_load(&c, path, false, &d), CML_ERR_CONFIG);
    ck_assert_msg(strstr(d.msg, bad[_i].want) != NULL, "'%s' lacks '%s'", d.msg, bad[_i].want);
    if (bad[_i].env)
        unsetenv(bad[_i].env);
    unlink(path);
}
END_TEST

START_TEST(test_secrets_masked_and_key_file) {
    cml_config c;
    cml_diag d;
    clear_env();
    write_conf("s3cret-key\n");
    setenv("API_KEY_FILE", path, 1);
    setenv("AZURE_STORAGE_CONNECTION_STRING", "AccountName=x;AccountKey=c2VjcmV0", 1);
    ck_assert_int_eq(cml_config_load(&c, NULL, true, &d), CML_OK);
    ck_assert_str_eq(c.api_key, "s3cret-key");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cml_config_dump(&c, f);
    cml_config_metrics(&c, f);
    fclose(f);
    ck_assert_ptr_null(strstr(buf, "s3cret"));
    ck_assert_ptr_null(strstr(buf, "c2VjcmV0"));
    ck_assert_ptr_nonnull(strstr(buf, "api_key = (set)"));
    ck_assert_ptr_nonnull(strstr(buf, "cultivate_ml_config{key=\"max_batch\"} 1000"));
    free(buf);
    cml_config_release(&c);
    unsetenv("API_KEY_FILE");
    unsetenv("AZURE_STORAGE_CONNECTION_STRING");
    unlink(path);
}
END_TEST

START_TEST(test_every_key_documented) {
    char man[1024];
    const char *top = getenv("CML_TOP_SRCDIR");
    snprintf(man, sizeof man, "%s/man/cultivate-ml.conf.5.in", top ? top : ".");
    FILE *f = fopen(man, "r");
    ck_assert_msg(f != NULL, "cannot open %s", man);
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    for (size_t i = 0; i < cml_config_n_keys; i++) {
        char want[160];
        snprintf(want, sizeof want, ".BR %s \" (\" %s )", cml_config_keys[i].name,
                 cml_config_keys[i].env);
        ck_assert_msg(strstr(text, want) != NULL, "%s is not documented in cultivate-ml.conf(5)",
                      cml_config_keys[i].name);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_real_key);
    tcase_add_test(tc, test_file_then_environment);
    tcase_add_loop_test(tc, test_bad_values_name_the_key, 0, (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(tc, test_secrets_masked_and_key_file);
    tcase_add_test(tc, test_every_key_documented);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
