/*
 * Azure authentication (azure/azure_auth.c): base64 and URL encoding, Shared Key
 * signing against vectors computed with `openssl dgst -sha256 -mac HMAC`.
 */
#include "config.h"

#include "azure/azure_auth.h"
#include "azure/blob_client.h"
#include "base/cml_alloc.h"
#include "unit.h"

#define DEV_KEY CML_AZ_DEV_KEY
/* A made-up account key: 64 bytes, base64. */
#define TEST_KEY                                                                                   \
    "c2VjcmV0LWtleS1mb3ItdW5pdC10ZXN0cy1vbmx5LW5vdC1yZWFsLTAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YQ=="
#define TEST_SIG "SeCrEtSiGnAtUrE0123456789"

/* ---- encoders -------------------------------------------------------------------- */

START_TEST(test_base64) {
    char *e = cml_base64_encode("foobar", 6);
    ck_assert_str_eq(e, "Zm9vYmFy");
    cml_free(e);
    e = cml_base64_encode("fo", 2);
    ck_assert_str_eq(e, "Zm8=");
    cml_free(e);
    e = cml_base64_encode("f", 1);
    ck_assert_str_eq(e, "Zg==");
    cml_free(e);
    uint8_t *d = NULL;
    size_t n = 0;
    ck_assert_int_eq(cml_base64_decode("Zm9vYmE=", &d, &n), CML_OK);
    ck_assert_uint_eq(n, 5);
    ck_assert_mem_eq(d, "fooba", 5);
    cml_free(d);
    ck_assert_int_eq(cml_base64_decode(DEV_KEY, &d, &n), CML_OK);
    ck_assert_uint_eq(n, 64);
    cml_free(d);
    const char *bad[] = {"", "Zm9", "Zm9v*mFy", "Zm=vYmFy", "Zm9vYmF=Zm9v", "Zm9vYmFy ", "===="};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(cml_base64_decode(bad[i], &d, &n), CML_ERR_INVALID);
        ck_assert_ptr_null(d);
    }
}
END_TEST

START_TEST(test_url_encoding) {
    char *e = cml_url_encode("models/v 1+é.bin", true);
    ck_assert_str_eq(e, "models/v%201%2B%C3%A9.bin");
    cml_free(e);
    e = cml_url_encode("a/b=c", false);
    ck_assert_str_eq(e, "a%2Fb%3Dc");
    char *d = cml_url_decode(e);
    ck_assert_str_eq(d, "a/b=c");
    cml_free(e);
    cml_free(d);
    ck_assert_ptr_null(cml_url_decode("bad%2"));
    ck_assert_ptr_null(cml_url_decode("bad%zz"));
    ck_assert_ptr_null(cml_url_decode("nul%00"));
    char date[30];
    cml_az_http_date(784111777, date);
    ck_assert_str_eq(date, "Sun, 06 Nov 1994 08:49:37 GMT");
}
END_TEST

/* ---- Shared Key ---------------------------------------------------------------------- */

START_TEST(test_hmac_rfc4231) {
    /* RFC 4231 test case 2. */
    uint8_t mac[32];
    const char *msg = "what do ya want for nothing?";
    ck_assert_int_eq(cml_az_hmac_sha256((const uint8_t *)"Jefe", 4, msg, strlen(msg), mac), CML_OK);
    static const uint8_t want[32] = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e,
                                     0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
                                     0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83,
                                     0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
    ck_assert_mem_eq(mac, want, 32);
}
END_TEST

/*
 * Expected signatures computed independently:
 *   printf '%s' "$STS" | openssl dgst -sha256 -mac HMAC \
 *       -macopt hexkey:$(printf '%s' "$KEY" | base64 -d | xxd -p -c 256) -binary | base64
 */
START_TEST(test_string_to_sign_put_path_style) {
    cml_az_header h[] = {
        {"x-ms-version", "2021-08-06"},  {"X-MS-Date", "Mon, 02 Nov 2026 10:00:00 GMT"},
        {"x-ms-blob-type", "BlockBlob"}, {"Content-Type", "application/octet-stream"},
        {"content-length", "11"},        {"x-ms-meta-sha256", "  abc "},
        {"If-None-Match", "*"},          {"Accept", "ignored"},
    };
    char *sts = NULL;
    ck_assert_int_eq(cml_az_string_to_sign("PUT", "devstoreaccount1",
                                           "/devstoreaccount1/ml-models/models/v1.bin", NULL, h,
                                           sizeof(h) / sizeof(h[0]), &sts),
                     CML_OK);
    ck_assert_str_eq(sts, "PUT\n\n\n11\n\napplication/octet-stream\n\n\n\n*\n\n\n"
                          "x-ms-blob-type:BlockBlob\n"
                          "x-ms-date:Mon, 02 Nov 2026 10:00:00 GMT\n"
                          "x-ms-meta-sha256:abc\n"
                          "x-ms-version:2021-08-06\n"
                          "/devstoreaccount1/devstoreaccount1/ml-models/models/v1.bin");
    uint8_t *key = NULL;
    size_t key_len = 0;
    ck_assert_int_eq(cml_base64_decode(DEV_KEY, &key, &key_len), CML_OK);
    char *auth = NULL;
    ck_assert_int_eq(cml_az_shared_key_authorization("devstoreaccount1", key, key_len, sts, &auth),
                     CML_OK);
    ck_assert_str_eq(auth,
                     "SharedKey devstoreaccount1:Rk6iuFmjWOSGtzktYKh8lntoadMJkelK1bS3TK6ehh4=");
    cml_free(auth);
    cml_free(key);
    cml_free(sts);
}
END_TEST

START_TEST(test_string_to_sign_list_query) {
    cml_az_header h[] = {
        {"x-ms-date", "Mon, 02 Nov 2026 10:00:00 GMT"},
        {"x-ms-version", "2021-08-06"},
        {"Content-Length", "0"}, /* signed as the empty string */
    };
    char *sts = NULL;
    ck_assert_int_eq(
        cml_az_string_to_sign("GET", "myaccount", "/ml-models",
                              "restype=container&comp=list&prefix=models%2Fv&marker=m%201&"
                              "MaxResults=2",
                              h, 3, &sts),
        CML_OK);
    ck_assert_str_eq(sts,
                     "GET\n\n\n\n\n\n\n\n\n\n\n\n"
                     "x-ms-date:Mon, 02 Nov 2026 10:00:00 GMT\n"
                     "x-ms-version:2021-08-06\n"
                     "/myaccount/ml-models\n"
                     "comp:list\nmarker:m 1\nmaxresults:2\nprefix:models/v\nrestype:container");
    uint8_t *key = NULL;
    size_t key_len = 0;
    ck_assert_int_eq(cml_base64_decode(DEV_KEY, &key, &key_len), CML_OK);
    char *auth = NULL;
    ck_assert_int_eq(cml_az_shared_key_authorization("myaccount", key, key_len, sts, &auth),
                     CML_OK);
    ck_assert_str_eq(auth, "SharedKey myaccount:S8hfU/PqlY0Uik1uDSmxuK0NHarenhrMXRTAmJMXu5c=");
    cml_free(auth);
    cml_free(key);
    cml_free(sts);
    /* Repeated parameters: values sorted and joined with ','. */
    ck_assert_int_eq(cml_az_string_to_sign("GET", "a", "/c", "x=2&X=1&y", NULL, 0, &sts), CML_OK);
    ck_assert_str_eq(sts, "GET\n\n\n\n\n\n\n\n\n\n\n\n/a/c\nx:1,2\ny:");
    cml_free(sts);
    ck_assert_int_eq(cml_az_string_to_sign("GET", "a", "c", NULL, NULL, 0, &sts), CML_ERR_INVALID);
    ck_assert_int_eq(cml_az_string_to_sign("GET", "a", "/c", "x=%zz", NULL, 0, &sts),
                     CML_ERR_INVALID);
}
END_TEST

int main(void) {
    Suite *s = suite_create("azure_auth");
    TCase *enc = tcase_create("encoding");
    tcase_add_test(enc, test_base64);
    tcase_add_test(enc, test_url_encoding);
    suite_add_tcase(s, enc);
    TCase *sk = tcase_create("shared_key");
    tcase_add_test(sk, test_hmac_rfc4231);
    tcase_add_test(sk, test_string_to_sign_put_path_style);
    tcase_add_test(sk, test_string_to_sign_list_query);
    suite_add_tcase(s, sk);
    return unit_run(s);
}
