/*
 * Blob model store, the parts that need no server: blob names of versions and
 * pointers, active.json formatting and parsing (and its rejection of bad
 * input), option checks at open, and the refusals made before any request
 * (a file that is not a model, a missing local version, an unreachable
 * endpoint leaving the local store untouched). tests/integration/
 * test_blob_store_azurite.sh covers the rest against Azurite.
 */
#include "config.h"

#include <curl/curl.h>
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "azure/blob_store.h"
#include "base/cml_alloc.h"
#include "unit.h"

#define DEV_CONN                                                                                   \
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" CML_AZ_DEV_KEY        \
    ";BlobEndpoint=http://127.0.0.1:1/devstoreaccount1"

/* ---- names --------------------------------------------------------------------------- */

START_TEST(test_version_names) {
    char buf[128];
    ck_assert_int_eq(
        cml_blob_store_version_name(CML_MODEL_CLASSIC, "20261126T053012Z", buf, sizeof buf),
        CML_OK);
    ck_assert_str_eq(buf, "classic/20261126T053012Z.model");
    ck_assert_int_eq(cml_blob_store_version_name(CML_MODEL_ENSEMBLE, "v1.2_rc-3", buf, sizeof buf),
                     CML_OK);
    ck_assert_str_eq(buf, "ensemble/v1.2_rc-3.model");
    const char *bad[] = {
        "", "../x", "a/b", ".hidden", "v 1", "v\n", "0123456789012345678901234567890123456789"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(cml_blob_store_version_name(CML_MODEL_CLASSIC, bad[i], buf, sizeof buf),
                         CML_ERR_INVALID);
        ck_assert_str_eq(buf, "");
    }
    ck_assert_int_eq(cml_blob_store_version_name(CML_MODEL_CLASSIC, NULL, buf, sizeof buf),
                     CML_ERR_INVALID);
    ck_assert_int_eq(cml_blob_store_version_name((cml_model_type)0, "v1", buf, sizeof buf),
                     CML_ERR_INVALID);
    ck_assert_int_eq(cml_blob_store_version_name((cml_model_type)3, "v1", buf, sizeof buf),
                     CML_ERR_INVALID);
    ck_assert_int_eq(cml_blob_store_version_name(CML_MODEL_CLASSIC, "v1", buf, 10), CML_ERR_NOMEM);
    ck_assert_str_eq(buf, "");

    cml_model_type t = 0;
    char v[CML_VERSION_MAX];
    ck_assert(cml_blob_store_parse_version_name("classic/20261126T053012Z.model", &t, v));
    ck_assert_int_eq(t, CML_MODEL_CLASSIC);
    ck_assert_str_eq(v, "20261126T053012Z");
    ck_assert(cml_blob_store_parse_version_name("ensemble/v1.model", &t, v));
    ck_assert_int_eq(t, CML_MODEL_ENSEMBLE);
    ck_assert_str_eq(v, "v1");
    ck_assert(cml_blob_store_parse_version_name("ensemble/v2.model", NULL, NULL));
    const char *not_versions[] = {
        "classic/.model",   "classic/latest.model",
        "classic/v1.bin",   "classic/a/b.model",
        "classic/.x.model", "other/v1.model",
        "/v1.model",        "classic_latest.model",
        "classic/",         "classic/v1.model.tmp",
        "Classic/v1.model", "classic/0123456789012345678901234567890123456789.model",
        "active.json",      ""};
    for (size_t i = 0; i < sizeof not_versions / sizeof not_versions[0]; i++)
        ck_assert_msg(!cml_blob_store_parse_version_name(not_versions[i], &t, v), "%s",
                      not_versions[i]);
    ck_assert(!cml_blob_store_parse_version_name(NULL, &t, v));

    /* Every valid name parses back to what made it. */
    const char *versions[] = {"20261126T053012Z", "a", "1.0", "x-y_z"};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        ck_assert_int_eq(
            cml_blob_store_version_name(CML_MODEL_ENSEMBLE, versions[i], buf, sizeof buf), CML_OK);
        ck_assert(cml_blob_store_parse_version_name(buf, &t, v));
        ck_assert_int_eq(t, CML_MODEL_ENSEMBLE);
        ck_assert_str_eq(v, versions[i]);
    }
}
END_TEST

START_TEST(test_pointer_names) {
    ck_assert(cml_blob_store_pointer_name_ok(CML_BLOB_STORE_ENSEMBLE_POINTER));
    ck_assert(cml_blob_store_pointer_name_ok(CML_BLOB_STORE_CLASSIC_POINTER));
    ck_assert(cml_blob_store_pointer_name_ok("pointers/ensemble_latest.model"));
    ck_assert(cml_blob_store_pointer_name_ok("classic-latest"));
    char longname[1100];
    memset(longname, 'a', 1025);
    longname[1025] = '\0';
    const char *bad[] = {"",
                         "active.json",
                         "training_data.csv",
                         "classic/latest.model",
                         "ensemble/x",
                         "a/../b",
                         "./a",
                         "x.",
                         "x/",
                         "tab\there",
                         longname};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!cml_blob_store_pointer_name_ok(bad[i]), "%.40s", bad[i]);
    ck_assert(!cml_blob_store_pointer_name_ok(NULL));
}
END_TEST

/* ---- active.json ------------------------------------------------------------------------- */

START_TEST(test_active_format_and_parse) {
    cml_selection sel = {.active_type = "ensemble",
                         .classic_version = "20261120T010203Z",
                         .ensemble_version = "",
                         .updated_at = 1795671012,
                         .generation = 7};
    char *text = NULL;
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_blob_active_format(&sel, &text, &d), CML_OK);
    ck_assert_str_eq(text, "{\"active_type\":\"ensemble\",\"classic_version\":\"20261120T010203Z\","
                           "\"ensemble_version\":\"\",\"updated_at\":\"2026-11-26T05:30:12Z\"}");
    cml_selection back;
    memset(&back, 0xff, sizeof back);
    ck_assert_int_eq(cml_blob_active_parse(text, strlen(text), &back, &d), CML_OK);
    ck_assert_str_eq(back.active_type, "ensemble");
    ck_assert_str_eq(back.classic_version, "20261120T010203Z");
    ck_assert_str_eq(back.ensemble_version, "");
    ck_assert_int_eq(back.updated_at, 1795671012);
    ck_assert_uint_eq(back.generation, 0);
    cml_free(text);

    /* Variants a person or another tool may write. */
    struct {
        const char *json;
        const char *type, *classic, *ensemble;
        int64_t at;
    } ok[] = {
        {"{\"active_type\":\"classic\"}", "classic", "", "", 0},
        {" \n{ \"active_type\" : \"classic\", \"updated_at\": 1700000000 }\r\n ", "classic", "", "",
         1700000000},
        {"{\"active_type\":\"ensemble\",\"classic_version\":null,\"ensemble_version\":\"v2\","
         "\"updated_at\":\"2026-11-26T05:30:12.123456+00:00\",\"comment\":[1,{\"x\":2}]}",
         "ensemble", "", "v2", 1795671012},
        {"{\"active_type\":\"ensemble\",\"updated_at\":\"2026-11-26T05:30:12\"}", "ensemble", "",
         "", 1795671012},
        {"{\"active_type\":\"classic\",\"updated_at\":null}", "classic", "", "", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ck_assert_msg(cml_blob_active_parse(ok[i].json, strlen(ok[i].json), &back, &d) == CML_OK,
                      "%s: %s", ok[i].json, d.msg);
        ck_assert_str_eq(back.active_type, ok[i].type);
        ck_assert_str_eq(back.classic_version, ok[i].classic);
        ck_assert_str_eq(back.ensemble_version, ok[i].ensemble);
        ck_assert_int_eq(back.updated_at, ok[i].at);
    }
}
END_TEST

START_TEST(test_active_rejects_bad_input) {
    static char big[CML_BLOB_ACTIVE_MAX_BYTES + 64];
    memset(big, ' ', sizeof big - 1);
    memcpy(big, "{\"active_type\":\"classic\"}", 25);
    big[sizeof big - 1] = '\0';
    const char *bad[] = {
        "",
        "{",
        "[]",
        "null",
        "\"classic\"",
        "{}",
        "{\"active_type\":\"bogus\"}",
        "{\"active_type\":\"CLASSIC\"}",
        "{\"active_type\":1}",
        "{\"active_type\":null}",
        "{\"classic_version\":\"v1\"}",
        "{\"active_type\":\"classic\",\"classic_version\":\"../../etc/passwd\"}",
        "{\"active_type\":\"classic\",\"classic_version\":5}",
        "{\"active_type\":\"classic\",\"ensemble_version\":\"a/b\"}",
        "{\"active_type\":\"classic\",\"ensemble_version\":"
        "\"0123456789012345678901234567890123456789\"}",
        "{\"active_type\":\"classic\",\"updated_at\":-1}",
        "{\"active_type\":\"classic\",\"updated_at\":1.5}",
        "{\"active_type\":\"classic\",\"updated_at\":\"yesterday\"}",
        "{\"active_type\":\"classic\",\"updated_at\":\"2026-13-01T00:00:00Z\"}",
        "{\"active_type\":\"classic\",\"updated_at\":\"2026-11-26T05:30:12+02:00\"}",
        "{\"active_type\":\"classic\",\"updated_at\":true}",
        "{\"active_type\":\"classic\"} x",
        "{\"active_type\":\"classic\"}{\"active_type\":\"classic\"}",
        "{'active_type':'classic'}",
        "{\"active_type\":\"classic\",}",
        "{\"active_type\":\"cl\xff\xfe\"}",
        big,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cml_selection out;
        cml_diag d = {{0}};
        memset(&out, 0x5a, sizeof out);
        ck_assert_msg(cml_blob_active_parse(bad[i], strlen(bad[i]), &out, &d) == CML_ERR_FORMAT,
                      "accepted %.80s", bad[i]);
        ck_assert_msg(d.msg[0] != '\0', "no reason for %.80s", bad[i]);
        ck_assert_str_eq(out.active_type, "");
        ck_assert_int_eq(out.updated_at, 0);
    }
    /* A NUL inside the text. */
    const char nul[] = "{\"active_type\":\"classic\"}\0 ";
    cml_selection out;
    ck_assert_int_eq(cml_blob_active_parse(nul, sizeof nul - 1, &out, NULL), CML_ERR_FORMAT);
    ck_assert_int_eq(cml_blob_active_parse(NULL, 0, &out, NULL), CML_ERR_FORMAT);

    /* Formatting refuses what would not parse back. */
    char *text = NULL;
    cml_selection s1 = {.active_type = "both"};
    ck_assert_int_eq(cml_blob_active_format(&s1, &text, NULL), CML_ERR_INVALID);
    ck_assert_ptr_null(text);
    cml_selection s2 = {.active_type = "classic", .classic_version = "../x"};
    ck_assert_int_eq(cml_blob_active_format(&s2, &text, NULL), CML_ERR_INVALID);
    cml_selection s3 = {.active_type = "classic", .updated_at = -5};
    ck_assert_int_eq(cml_blob_active_format(&s3, &text, NULL), CML_ERR_INVALID);
    ck_assert_int_eq(cml_blob_active_format(NULL, &text, NULL), CML_ERR_INVALID);
    ck_assert_ptr_null(text);
}
END_TEST

/* ---- opening and refusals before any request ----------------------------------------------------
 */

static cml_blob_store *open_offline(const char *container, const char *ens, const char *cla,
                                    cml_err want) {
    cml_blob_store_options o;
    cml_blob_store_options_init(&o);
    o.connection_string = DEV_CONN;
    o.container = container;
    o.ensemble_pointer = ens;
    o.classic_pointer = cla;
    o.create_container = false; /* no request at open */
    o.client.max_retries = 0;
    o.client.connect_timeout_ms = 2000;
    cml_blob_store *s = NULL;
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_blob_store_open(&o, &s, &d), want);
    ck_assert(want == CML_OK ? s != NULL : s == NULL);
    ck_assert_ptr_null(strstr(d.msg, CML_AZ_DEV_KEY));
    return s;
}

START_TEST(test_open_options) {
    cml_blob_store_options o;
    cml_blob_store_options_init(&o);
    ck_assert(o.create_container);
    ck_assert_ptr_null(o.container);
    ck_assert_uint_eq(o.client.max_retries, 4);

    cml_blob_store *s = open_offline(NULL, NULL, NULL, CML_OK);
    ck_assert_str_eq(cml_blob_store_container(s), "ml-models");
    ck_assert_str_eq(cml_blob_store_pointer(s, CML_MODEL_ENSEMBLE), "ensemble_latest.model");
    ck_assert_str_eq(cml_blob_store_pointer(s, CML_MODEL_CLASSIC), "classic_latest.model");
    ck_assert_ptr_null(cml_blob_store_pointer(s, (cml_model_type)0));
    ck_assert_ptr_nonnull(cml_blob_store_client(s));
    ck_assert_ptr_nonnull(cml_blob_store_stats(s));
    cml_blob_store_free(s);

    s = open_offline("models-2", "p/ens", "p/cla", CML_OK);
    ck_assert_str_eq(cml_blob_store_container(s), "models-2");
    ck_assert_str_eq(cml_blob_store_pointer(s, CML_MODEL_ENSEMBLE), "p/ens");
    ck_assert_str_eq(cml_blob_store_pointer(s, CML_MODEL_CLASSIC), "p/cla");
    cml_blob_store_free(s);

    open_offline("ML_Models", NULL, NULL, CML_ERR_CONFIG);
    open_offline("a--b", NULL, NULL, CML_ERR_CONFIG);
    open_offline(NULL, "same", "same", CML_ERR_CONFIG);
    open_offline(NULL, "classic/1.model", NULL, CML_ERR_CONFIG);
    open_offline(NULL, NULL, "active.json", CML_ERR_CONFIG);
    open_offline(NULL, "", NULL, CML_ERR_CONFIG);

    /* No or a bad connection string; the key never shows in the reason. */
    cml_blob_store_options_init(&o);
    cml_blob_store *t = NULL;
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_blob_store_open(&o, &t, &d), CML_ERR_CONFIG);
    o.connection_string = "AccountName=x;AccountKey=" CML_AZ_DEV_KEY ";Bogus=1";
    ck_assert_int_eq(cml_blob_store_open(&o, &t, &d), CML_ERR_CONFIG);
    ck_assert_ptr_null(t);
    ck_assert_ptr_null(strstr(d.msg, CML_AZ_DEV_KEY));
    ck_assert_ptr_null(strstr(d.msg, "Eby8vdM02x"));
    ck_assert_int_eq(cml_blob_store_open(NULL, &t, &d), CML_ERR_CONFIG);
    cml_blob_store_free(NULL);
    cml_blob_sync_result_release(NULL);
}
END_TEST

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    if (d == NULL)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

START_TEST(test_refusals_without_server) {
    char dir[] = "/tmp/cml-blob-store-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    cml_blob_store *s = open_offline(NULL, NULL, NULL, CML_OK);
    cml_blob_stats_snapshot st;
    cml_diag d = {{0}};
    char path[512];

    /* Not a model file: refused before any request. */
    snprintf(path, sizeof path, "%s/garbage.model", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("CMLMODEL but not really a model file", f);
    fclose(f);
    cml_blob_publish_result r;
    ck_assert_int_eq(cml_blob_store_upload_version(s, path, &r, &d), CML_ERR_FORMAT);
    ck_assert_int_eq(cml_blob_store_publish(s, path, NULL, &r, &d), CML_ERR_FORMAT);
    snprintf(path, sizeof path, "%s/missing.model", dir);
    ck_assert_int_eq(cml_blob_store_upload_version(s, path, &r, &d), CML_ERR_NOT_FOUND);
    /* No local version to publish. */
    ck_assert_int_eq(cml_blob_store_publish_if_absent(s, CML_MODEL_CLASSIC, dir, NULL, &r, &d),
                     CML_ERR_NOT_FOUND);
    cml_blob_stats_read(cml_blob_store_stats(s), &st);
    ck_assert_uint_eq(st.requests, 0);
    unlink(path);
    snprintf(path, sizeof path, "%s/garbage.model", dir);
    unlink(path);

    /* Bad arguments. */
    cml_blob_sync_result sr;
    ck_assert_int_eq(
        cml_blob_store_fetch_version(s, CML_MODEL_CLASSIC, "../x", dir, false, &sr, &d),
        CML_ERR_INVALID);
    ck_assert_int_eq(cml_blob_store_ensure_local(s, (cml_model_type)9, dir, NULL, &sr, &d),
                     CML_ERR_INVALID);
    ck_assert_int_eq(cml_blob_store_delete_version(s, CML_MODEL_CLASSIC, "", &d), CML_ERR_INVALID);
    cml_selection bad = {.active_type = "x"};
    ck_assert_int_eq(cml_blob_store_write_active(s, &bad, NULL, NULL, &d), CML_ERR_INVALID);
    cml_blob_stats_read(cml_blob_store_stats(s), &st);
    ck_assert_uint_eq(st.requests, 0);

    /* Nothing listens on port 1: a storage error, and the local store stays empty. */
    char sub[600];
    snprintf(sub, sizeof sub, "%s/store", dir);
    ck_assert_int_eq(cml_blob_store_ensure_local(s, CML_MODEL_ENSEMBLE, sub, NULL, &sr, &d),
                     CML_ERR_STORAGE);
    ck_assert_ptr_null(sr.model);
    ck_assert_str_eq(sr.version, "");
    ck_assert_int_eq(count_entries(dir), 0);
    cml_blob_sync_result_release(&sr);
    cml_blob_stats_read(cml_blob_store_stats(s), &st);
    ck_assert_uint_ge(st.requests, 1);
    ck_assert_uint_ge(st.failures[CML_BLOB_FAIL_CONNECT], 1);

    ck_assert_str_eq(cml_blob_sync_status_name(CML_BLOB_SYNC_NOT_MODIFIED), "not_modified");
    ck_assert_str_eq(cml_blob_sync_status_name(CML_BLOB_SYNC_DOWNLOADED), "downloaded");
    ck_assert_str_eq(cml_blob_sync_status_name(CML_BLOB_SYNC_PRESENT), "present");
    ck_assert_str_eq(cml_blob_sync_status_name(CML_BLOB_SYNC_NO_MODEL), "no_model");
    ck_assert_str_eq(cml_blob_sync_status_name((cml_blob_sync_status)0), "unknown");
    cml_blob_store_free(s);
    rmdir(dir);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("blob_store");
    TCase *names = tcase_create("names");
    tcase_add_test(names, test_version_names);
    tcase_add_test(names, test_pointer_names);
    suite_add_tcase(s, names);
    TCase *active = tcase_create("active_json");
    tcase_add_test(active, test_active_format_and_parse);
    tcase_add_test(active, test_active_rejects_bad_input);
    suite_add_tcase(s, active);
    TCase *open = tcase_create("open");
    tcase_set_timeout(open, 30);
    tcase_add_test(open, test_open_options);
    tcase_add_test(open, test_refusals_without_server);
    suite_add_tcase(s, open);
    int rc = unit_run(s);
    curl_global_cleanup();
    return rc;
}
