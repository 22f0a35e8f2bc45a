/* The cultivate-ml command line, run as a user would: exit codes, files, output (integration). */
#include "config.h"

#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "suite_main.h"

/* The bundled corpus (make check sets CML_TEST_DATA). */
static const char *data_path(void) {
    const char *p = getenv("CML_TEST_DATA");
    return p && *p ? p : "data/questions.csv";
}

static char workdir[64];

/* Runs a shell command line with the CLI as $CLI; returns the exit status, output in *out. */
static int run(const char *args, char *out, size_t cap) {
    char cmd[4096];
    const char *bin = getenv("CML_TOP_BUILDDIR");
    snprintf(cmd, sizeof cmd, "cd %s && %s/cultivate-ml %s 2>&1", workdir, bin ? bin : ".", args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void setup(void) {
    snprintf(workdir, sizeof workdir, "/tmp/cml-cli-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(workdir));
    /* A small training file: the first 300 rows of the corpus. */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "head -n 301 '%s' > %s/small.csv", data_path(), workdir);
    ck_assert_int_eq(system(cmd), 0);
}

static void teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", workdir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_help_and_usage_errors) {
    char out[8192];
    ck_assert_int_eq(run("--help", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "Usage: cultivate-ml"));
    ck_assert_int_eq(run("--version", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, PACKAGE_VERSION));
    ck_assert_int_eq(run("", out, sizeof out), 2);
    ck_assert_int_eq(run("frobnicate", out, sizeof out), 2);
    ck_assert_int_eq(run("train --model bogus", out, sizeof out), 2);
    ck_assert_int_eq(run("train --model classic --folds 1", out, sizeof out), 2);
    ck_assert_int_eq(run("evaluate --model x.model", out, sizeof out), 2);
}
END_TEST

START_TEST(test_train_classify_evaluate_info) {
    char out[65536];
    ck_assert_int_eq(
        run("train --model classic --data small.csv --out models --folds 3", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "held-out"));
    ck_assert_ptr_nonnull(strstr(out, "wrote models/classic_"));
    struct stat st;
    char latest[1024];
    snprintf(latest, sizeof latest, "%s/models/classic_latest.model", workdir);
    ck_assert_int_eq(lstat(latest, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));

    ck_assert_int_eq(run("classify --model models/classic_latest.model 'Why do you think it sank?' "
                         "'is it red'",
                         out, sizeof out),
                     0);
    ck_assert_ptr_nonnull(strstr(out, "OEQ\t"));
    ck_assert_ptr_nonnull(strstr(out, "CEQ\t"));
    ck_assert_int_eq(
        run("classify --json --model models/classic_latest.model < small.csv | head -n 2", out,
            sizeof out),
        0);
    ck_assert_ptr_nonnull(strstr(out, "\"classification\""));

    ck_assert_int_eq(run("evaluate --json --model models/classic_latest.model --data small.csv",
                         out, sizeof out),
                     0);
    ck_assert_ptr_nonnull(strstr(out, "\"f1_macro\""));
    ck_assert_int_eq(run("info models/classic_latest.model", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "logistic_regression"));

    /* A damaged model file: a clear message and exit status 1. */
    ck_assert_int_eq(system("true"), 0);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd %s && cp -L models/classic_latest.model bad.model && "
             "printf 'X' | dd of=bad.model bs=1 seek=200 conv=notrunc 2>/dev/null",
             workdir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(run("info bad.model", out, sizeof out), 1);
    ck_assert_ptr_nonnull(strstr(out, "checksum"));
}
END_TEST

START_TEST(test_bad_data_exit_status) {
    char out[4096], cmd[1024];
    snprintf(cmd, sizeof cmd, "cd %s && printf 'text,label\\n\"broken,OEQ\\n' > bad.csv", workdir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(run("train --model classic --data bad.csv --out m", out, sizeof out), 1);
    ck_assert_ptr_nonnull(strstr(out, "line 2"));
    ck_assert_int_eq(run("train --model classic --data missing.csv", out, sizeof out), 1);
}
END_TEST

static Suite *cli_suite(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_help_and_usage_errors);
    tcase_add_test(tc, test_train_classify_evaluate_info);
    tcase_add_test(tc, test_bad_data_exit_status);
    suite_add_tcase(s, tc);
    return s;
}

const char *const integration_program = "test_cli";
const integration_suite integration_suites[] = {{"cli", cli_suite}};
const size_t integration_n_suites = 1;
