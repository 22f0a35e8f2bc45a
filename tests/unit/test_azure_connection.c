/*
 * Connection strings (azure/azure_connection.c): every rejection, and no secret in
 * any message; SAS handling.
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

/* ---- connection strings ----------------------------------------------------------------- */

static cml_az_conn *parse_ok(const char *s) {
    cml_az_conn *c = NULL;
    cml_diag d = {{0}};
    cml_err err = cml_az_conn_parse(s, &c, &d);
    ck_assert_msg(err == CML_OK, "parse failed: %s", d.msg);
    return c;
}

START_TEST(test_conn_standard) {
    cml_az_conn *c =
        parse_ok("DefaultEndpointsProtocol=https;AccountName=myaccount;AccountKey=" TEST_KEY
                 ";EndpointSuffix=core.windows.net");
    ck_assert_str_eq(c->account, "myaccount");
    ck_assert_str_eq(c->origin, "https://myaccount.blob.core.windows.net");
    ck_assert_str_eq(c->base_path, "");
    ck_assert(!c->path_style && c->https && !c->dev_storage);
    ck_assert_int_eq(c->cred, CML_AZ_CRED_SHARED_KEY);
    ck_assert_uint_eq(c->key_len, 67);
    cml_az_conn_free(c);
    /* Keys are case-insensitive, blanks and empty segments ignored, suffix defaulted. */
    c = parse_ok(" accountname = myaccount ; ACCOUNTKEY=" TEST_KEY ";;");
    ck_assert_str_eq(c->origin, "https://myaccount.blob.core.windows.net");
    cml_az_conn *d = cml_az_conn_dup(c);
    ck_assert_mem_eq(d->key, c->key, c->key_len);
    char *ep = cml_az_conn_endpoint(d);
    ck_assert_str_eq(ep, "https://myaccount.blob.core.windows.net");
    cml_free(ep);
    cml_az_conn_free(d);
    cml_az_conn_free(c);
    c = parse_ok("DefaultEndpointsProtocol=http;AccountName=abc;AccountKey=" TEST_KEY
                 ";EndpointSuffix=core.chinacloudapi.cn");
    ck_assert_str_eq(c->origin, "http://abc.blob.core.chinacloudapi.cn");
    cml_az_conn_free(c);
    /* No credential: anonymous, for a managed identity. */
    c = parse_ok("AccountName=myaccount");
    ck_assert_int_eq(c->cred, CML_AZ_CRED_NONE);
    cml_az_conn_free(c);
    cml_az_conn_free(NULL);
}
END_TEST

START_TEST(test_conn_dev_storage) {
    cml_az_conn *c = parse_ok("UseDevelopmentStorage=true");
    ck_assert_str_eq(c->account, "devstoreaccount1");
    ck_assert_str_eq(c->origin, "http://127.0.0.1:10000");
    ck_assert_str_eq(c->base_path, "/devstoreaccount1");
    ck_assert(c->path_style && c->dev_storage && !c->https);
    ck_assert_int_eq(c->cred, CML_AZ_CRED_SHARED_KEY);
    ck_assert_uint_eq(c->key_len, 64);
    cml_az_conn_free(c);
    c = parse_ok("UseDevelopmentStorage=True;DevelopmentStorageProxyUri=http://myproxy");
    ck_assert_str_eq(c->origin, "http://myproxy:10000");
    ck_assert_str_eq(c->base_path, "/devstoreaccount1");
    cml_az_conn_free(c);
    c = parse_ok(
        "UseDevelopmentStorage=true;BlobEndpoint=http://127.0.0.1:45678/devstoreaccount1/");
    ck_assert_str_eq(c->origin, "http://127.0.0.1:45678");
    ck_assert_str_eq(c->base_path, "/devstoreaccount1");
    cml_az_conn_free(c);
}
END_TEST

START_TEST(test_conn_endpoints) {
    /* The form Azurite documents, with an explicit path-style endpoint. */
    cml_az_conn *c =
        parse_ok("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                 "AccountKey=" DEV_KEY ";BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;");
    ck_assert(c->path_style);
    ck_assert_str_eq(c->origin, "http://127.0.0.1:10000");
    ck_assert_str_eq(c->base_path, "/devstoreaccount1");
    cml_az_conn_free(c);
    /* IP or localhost without a path: the account is appended. */
    c = parse_ok("AccountName=devstoreaccount1;AccountKey=" DEV_KEY
                 ";BlobEndpoint=http://localhost:10000");
    ck_assert(c->path_style);
    ck_assert_str_eq(c->base_path, "/devstoreaccount1");
    cml_az_conn_free(c);
    c = parse_ok("AccountName=acct1;AccountKey=" DEV_KEY ";BlobEndpoint=http://[::1]:10000");
    ck_assert_str_eq(c->origin, "http://[::1]:10000");
    ck_assert_str_eq(c->base_path, "/acct1");
    cml_az_conn_free(c);
    /* What the portal gives for a SAS: every service endpoint and the token. */
    c = parse_ok("BlobEndpoint=https://myaccount.blob.core.windows.net/;"
                 "QueueEndpoint=https://myaccount.queue.core.windows.net/;"
                 "FileEndpoint=https://myaccount.file.core.windows.net/;"
                 "TableEndpoint=https://myaccount.table.core.windows.net/;"
                 "SharedAccessSignature=?sv=2021-08-06&ss=b&srt=sco&sp=rwdlac&se=2030-01-01T00%"
                 "3A00%3A00Z&sig=" TEST_SIG "%3D");
    ck_assert(!c->path_style && c->https);
    ck_assert_str_eq(c->account, "myaccount");
    ck_assert_str_eq(c->origin, "https://myaccount.blob.core.windows.net");
    ck_assert_int_eq(c->cred, CML_AZ_CRED_SAS);
    ck_assert(strncmp(c->sas, "sv=2021-08-06&", 14) == 0);
    cml_az_conn_free(c);
    /* A custom domain: the account comes from AccountName. */
    c = parse_ok(
        "BlobEndpoint=https://models.example.org;AccountName=myaccount;AccountKey=" TEST_KEY);
    ck_assert_str_eq(c->account, "myaccount");
    ck_assert_str_eq(c->base_path, "");
    cml_az_conn_free(c);
}
END_TEST

/* Parses s expecting CML_ERR_CONFIG with a message containing want and no secret. */
static void reject(const char *s, const char *want) {
    cml_az_conn *c = NULL;
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_az_conn_parse(s, &c, &d), CML_ERR_CONFIG);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(d.msg, want) != NULL, "'%s' -> '%s' lacks '%s'", s ? s : "(null)", d.msg,
                  want);
    ck_assert_msg(strstr(d.msg, TEST_KEY) == NULL && strstr(d.msg, "c2VjcmV0") == NULL &&
                      strstr(d.msg, DEV_KEY) == NULL && strstr(d.msg, TEST_SIG) == NULL &&
                      strstr(d.msg, "Eby8") == NULL,
                  "message shows a secret: %s", d.msg);
}

START_TEST(test_conn_rejections) {
    reject(NULL, "empty");
    reject("", "empty");
    reject(" ; ;", "empty");
    reject("AccountName=myaccount;Foo=bar", "unknown key 'Foo'");
    /* A key name that may be a pasted secret is not echoed. */
    reject("AccountName=myaccount;c2VjcmV0LWtleS1m+b3It=x", "unknown key in segment 2");
    reject("AccountName=myaccount;" TEST_KEY, "segment 2");
    reject("AccountName=myaccount;c2VjcmV0", "segment 2 is not Key=Value");
    reject("AccountKey=" TEST_KEY, "AccountName is missing");
    reject("AccountKey=" TEST_KEY ";EndpointSuffix=core.windows.net", "AccountName");
    reject("DefaultEndpointsProtocol=https", "AccountName is missing");
    reject("AccountName=myaccount;AccountKey=c2VjcmV0*LWtleS1m", "AccountKey is not valid base64");
    reject("AccountName=myaccount;AccountKey=c2VjcmV0LWtleS1", "AccountKey is not valid base64");
    reject("AccountName=myaccount;AccountKey=", "AccountKey is empty");
    reject("AccountName=myaccount;AccountName=other", "AccountName is given twice");
    reject("AccountName=My_Account;AccountKey=" TEST_KEY, "AccountName must be");
    reject("AccountName=ab;AccountKey=" TEST_KEY, "AccountName must be");
    reject("DefaultEndpointsProtocol=ftp;AccountName=myaccount;AccountKey=" TEST_KEY,
           "DefaultEndpointsProtocol must be");
    reject("AccountName=myaccount;AccountKey=" TEST_KEY ";EndpointSuffix=core windows",
           "EndpointSuffix");
    /* Conflicting endpoints and credentials. */
    reject("AccountName=myaccount;AccountKey=" TEST_KEY
           ";BlobEndpoint=https://myaccount.blob.core.windows.net;EndpointSuffix=core.windows.net",
           "BlobEndpoint conflicts with EndpointSuffix");
    reject("AccountName=myaccount;AccountKey=" TEST_KEY
           ";BlobEndpoint=https://other.blob.core.windows.net",
           "AccountName conflicts with the account in the host of BlobEndpoint");
    reject("AccountName=myaccount;AccountKey=" TEST_KEY
           ";BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1",
           "AccountName conflicts with the account in the path of BlobEndpoint");
    reject("DefaultEndpointsProtocol=http;AccountName=myaccount;AccountKey=" TEST_KEY
           ";BlobEndpoint=https://myaccount.blob.core.windows.net",
           "DefaultEndpointsProtocol conflicts with the scheme of BlobEndpoint");
    reject("UseDevelopmentStorage=true;AccountName=devstoreaccount1",
           "AccountName conflicts with UseDevelopmentStorage=true");
    reject("UseDevelopmentStorage=true;AccountKey=" TEST_KEY,
           "AccountKey conflicts with UseDevelopmentStorage=true");
    reject("UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://p;BlobEndpoint=http://"
           "127.0.0.1:1/devstoreaccount1",
           "BlobEndpoint conflicts with DevelopmentStorageProxyUri");
    reject("UseDevelopmentStorage=true;BlobEndpoint=http://127.0.0.1:1/otheraccount",
           "must be devstoreaccount1");
    reject("UseDevelopmentStorage=false", "UseDevelopmentStorage must be true");
    reject("DevelopmentStorageProxyUri=http://p", "needs UseDevelopmentStorage=true");
    reject("AccountName=myaccount;AccountKey=" TEST_KEY ";SharedAccessSignature=sv=1&sig=" TEST_SIG,
           "AccountKey conflicts with SharedAccessSignature");
    /* Malformed endpoints. */
    reject("BlobEndpoint=ftp://x.blob.core.windows.net;SharedAccessSignature=sig=" TEST_SIG,
           "BlobEndpoint must be");
    reject("BlobEndpoint=https://myaccount.blob.core.windows.net?sv=1&sig=" TEST_SIG,
           "BlobEndpoint must be");
    reject("BlobEndpoint=https://user:" TEST_SIG "@myaccount.blob.core.windows.net",
           "BlobEndpoint must be");
    reject("BlobEndpoint=https://myaccount.blob.core.windows.net:99999;SharedAccessSignature=sig=x",
           "BlobEndpoint must be");
    reject("BlobEndpoint=http://127.0.0.1:10000/a/b;AccountName=abc", "BlobEndpoint: the path");
    reject("BlobEndpoint=http://127.0.0.1:10000;SharedAccessSignature=sig=" TEST_SIG,
           "path-style endpoint");
    /* Bad SAS tokens. */
    reject("BlobEndpoint=https://myaccount.blob.core.windows.net;SharedAccessSignature=sv=2021",
           "no sig parameter");
    reject("BlobEndpoint=https://"
           "myaccount.blob.core.windows.net;SharedAccessSignature=sv=1&sig=" TEST_SIG " x",
           "SharedAccessSignature contains");
}
END_TEST

/* ---- SAS ------------------------------------------------------------------------------------ */

START_TEST(test_sas) {
    char *t = NULL;
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_az_sas_normalize("?sv=2021-08-06&sp=r&sig=ab%2Bc%3D", &t, &d), CML_OK);
    ck_assert_str_eq(t, "sv=2021-08-06&sp=r&sig=ab%2Bc%3D");
    char *u = cml_az_url_with_sas("http://h/a/b", t);
    ck_assert_str_eq(u, "http://h/a/b?sv=2021-08-06&sp=r&sig=ab%2Bc%3D");
    cml_free(u);
    u = cml_az_url_with_sas("http://h/a?comp=list", t);
    ck_assert_str_eq(u, "http://h/a?comp=list&sv=2021-08-06&sp=r&sig=ab%2Bc%3D");
    cml_free(u);
    u = cml_az_url_with_sas("http://h/a?", "?x=1");
    ck_assert_str_eq(u, "http://h/a?x=1");
    cml_free(u);
    u = cml_az_url_with_sas("http://h/a", NULL);
    ck_assert_str_eq(u, "http://h/a");
    cml_free(u);
    cml_free(t);
    ck_assert_int_eq(cml_az_sas_normalize("sv=1&sig=", &t, &d), CML_ERR_CONFIG);
    ck_assert_int_eq(cml_az_sas_normalize("?", &t, &d), CML_ERR_CONFIG);
    ck_assert_int_eq(cml_az_sas_normalize("sv=1&sig=a#b", &t, &d), CML_ERR_CONFIG);
    ck_assert_ptr_null(strstr(d.msg, "a#b"));
    /* Redaction for logs. */
    char *r = cml_az_redact("https://h/c/b?sv=1&sig=" TEST_SIG "%3D&se=2030");
    ck_assert_str_eq(r, "https://h/c/b?sv=1&sig=REDACTED&se=2030");
    cml_free(r);
    r = cml_az_redact("SIG=" TEST_SIG "&x=1");
    ck_assert_str_eq(r, "SIG=REDACTED&x=1");
    cml_free(r);
    r = cml_az_redact("/a/b?comp=list&prefix=sig%3D");
    ck_assert_str_eq(r, "/a/b?comp=list&prefix=sig%3D");
    cml_free(r);
}
END_TEST

int main(void) {
    Suite *s = suite_create("azure_connection");
    TCase *cs = tcase_create("connection_string");
    tcase_add_test(cs, test_conn_standard);
    tcase_add_test(cs, test_conn_dev_storage);
    tcase_add_test(cs, test_conn_endpoints);
    tcase_add_test(cs, test_conn_rejections);
    tcase_add_test(cs, test_sas);
    suite_add_tcase(s, cs);
    return unit_run(s);
}
