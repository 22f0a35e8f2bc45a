/* The log lines (ops/service_log.c): logfmt and JSON, escaping, levels, long values. */
#include "config.h"

#include <json-c/json.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ops/service_log.h"
#include "unit.h"

/* How often what occurs in text. */
static size_t count(const char *text, const char *what) {
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

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

START_TEST(test_log_pid_after_fork) {
    /* The pid text is cached; a forked worker (the supervisor's) must log its own. */
    cml_log_configure(CML_LOG_INFO, CML_LOG_LOGFMT);
    begin_capture();
    cml_log(CML_LOG_INFO, "parent", NULL);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        cml_log(CML_LOG_INFO, "child", NULL);
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    char *out = end_capture(NULL);
    char want[64];
    snprintf(want, sizeof want, "event=parent pid=%ld\n", (long)getpid());
    ck_assert_msg(strstr(out, want) != NULL, "%s", out);
    snprintf(want, sizeof want, "event=child pid=%ld\n", (long)child);
    ck_assert_msg(strstr(out, want) != NULL, "%s", out);
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

int main(void) {
    Suite *s = suite_create("service_log");
    TCase *l = tcase_create("log");
    tcase_add_checked_fixture(l, NULL, log_teardown);
    tcase_add_test(l, test_log_logfmt_line);
    tcase_add_loop_test(l, test_log_logfmt_escaping, 0, (int)(sizeof quoting / sizeof quoting[0]));
    tcase_add_test(l, test_log_json_round_trip);
    tcase_add_test(l, test_log_pid_after_fork);
    tcase_add_test(l, test_log_level_threshold);
    tcase_add_test(l, test_log_long_value_truncated);
    tcase_add_loop_test(l, test_log_field_after_long_value, 0, 2);
    suite_add_tcase(s, l);
    return unit_run(s);
}
