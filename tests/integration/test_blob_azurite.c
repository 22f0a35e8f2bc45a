/*
 * The C half of the Azurite integration test (tests/integration/test_blob_azurite.sh
 * starts Azurite and runs these modes):
 *
 *   roundtrip CONN WORKDIR    every operation, block uploads, conditional requests; leaves
 *                             interop/from-c.bin (and WORKDIR/from-c.bin) for the SDK to read
 *   download CONN CONTAINER NAME FILE
 *                             downloads a blob the SDK wrote and compares it with FILE
 *   smoke CONN WORKDIR        create container, put, head, list, get, delete (SAS, dev storage)
 *   mi-smoke CONN WORKDIR     smoke with a managed identity (IDENTITY_ENDPOINT) over https,
 *                             CA from CML_TEST_CA
 *   tls-reject CONN           an https endpoint whose certificate is not trusted must fail
 *
 * Each mode ends with a line "MODE: N passed, M failed" and exits non-zero on failure.
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "azure/blob_client.h"
#include "base/cml_alloc.h"
#include "model/model_file.h"
#include "base/sha256.h"
#include "base/file_io.h"

static int passed, failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            passed++;                                                                              \
        } else {                                                                                   \
            failed++;                                                                              \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#define CHECK_OK(call, d)                                                                          \
    do {                                                                                           \
        cml_err e_ = (call);                                                                       \
        CHECK(e_ == CML_OK, "%s -> %s: %s", #call, cml_strerror(e_), (d).msg);                     \
    } while (0)

static void log_stderr(void *ctx, const char *line) {
    (void)ctx;
    fprintf(stderr, "  log: %s\n", line);
}

/* Deterministic pseudo-random bytes (xorshift) so both sides can regenerate them. */
static uint8_t *make_bytes(size_t n, uint32_t seed) {
    uint8_t *p = cml_malloc(n ? n : 1);
    uint32_t x = seed ? seed : 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
    return p;
}

static int write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t w = fwrite(p, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static uint8_t *slurp(const char *path, size_t *n) {
    uint8_t *buf = NULL;
    cml_diag d;
    if (cml_read_file(path, (size_t)1 << 30, &buf, n, &d) != CML_OK)
        return NULL;
    return buf;
}

static bool file_equals(const char *path, const void *p, size_t n) {
    size_t got = 0;
    uint8_t *buf = slurp(path, &got);
    bool same = buf != NULL && got == n && memcmp(buf, p, n) == 0;
    cml_free(buf);
    return same;
}

static cml_blob_client *client(const char *conn, size_t single_put_max, size_t block_size,
                               unsigned page) {
    cml_blob_options o;
    cml_blob_options_init(&o);
    o.single_put_max = single_put_max;
    o.block_size = block_size;
    o.list_page_size = page;
    o.max_retries = 2;
    o.connect_timeout_ms = 5000;
    o.timeout_ms = 60000;
    o.log = log_stderr;
    cml_blob_client *c = NULL;
    cml_diag d = {{0}};
    cml_err err = cml_blob_client_from_string(conn, &o, &c, &d);
    CHECK(err == CML_OK, "client: %s", d.msg);
    return c;
}

#define SMALL_MAX ((size_t)64 << 10)
#define BLOCK ((size_t)16 << 10)

static int mode_roundtrip(const char *conn, const char *work) {
    cml_diag d = {{0}};
    cml_blob_props p = {0}, p2 = {0};
    cml_blob_list l = {0};
    char path[512], path2[512];
    const char *ct = "ml-models";
    cml_blob_client *c = client(conn, SMALL_MAX, BLOCK, 2);
    if (c == NULL)
        return 1;

    /* Containers: created once, then found. */
    bool created = false;
    CHECK_OK(cml_blob_create_container(c, ct, &created, &d), d);
    CHECK(created, "first create_container should create");
    CHECK_OK(cml_blob_create_container(c, ct, &created, &d), d);
    CHECK(!created, "second create_container should find it");

    /* A small blob with metadata: single Put Blob. */
    const char small[] = "hello, early years educators";
    char small_sha[65];
    cml_sha256_hex(small, strlen(small), small_sha);
    cml_blob_meta meta[] = {{"trainer", "linear"}, {"version", "v1"}};
    cml_blob_put_options po = {.add_sha256 = true, .meta = meta, .n_meta = 2};
    CHECK_OK(cml_blob_put(c, ct, "models/small.bin", small, strlen(small), &po, &p, &d), d);
    CHECK(p.etag[0] != '\0', "put returns an ETag");
    char etag1[128];
    snprintf(etag1, sizeof(etag1), "%s", p.etag);
    CHECK_OK(cml_blob_head(c, ct, "models/small.bin", &p2, &d), d);
    CHECK(strcmp(p2.etag, etag1) == 0, "head ETag %s vs put %s", p2.etag, etag1);
    CHECK(p2.length == strlen(small), "head length %llu", (unsigned long long)p2.length);
    const char *m = cml_blob_props_meta(&p2, "sha256");
    CHECK(m != NULL && strcmp(m, small_sha) == 0, "sha256 metadata %s", m ? m : "(none)");
    m = cml_blob_props_meta(&p2, "trainer");
    CHECK(m != NULL && strcmp(m, "linear") == 0, "trainer metadata");
    CHECK(strcmp(p2.content_type, "application/octet-stream") == 0, "content type %s",
          p2.content_type);

    /* Download to a file and to memory. */
    snprintf(path, sizeof(path), "%s/small.bin", work);
    cml_blob_get_options go = {.verify_sha256 = true};
    CHECK_OK(cml_blob_get_file(c, ct, "models/small.bin", path, &go, &p, &d), d);
    CHECK(file_equals(path, small, strlen(small)), "downloaded file content");
    CHECK(strcmp(p.etag, etag1) == 0, "get ETag");
    uint8_t *data = NULL;
    size_t len = 0;
    CHECK_OK(cml_blob_get(c, ct, "models/small.bin", 1 << 20, &go, &data, &len, &p, &d), d);
    CHECK(len == strlen(small) && data && memcmp(data, small, len) == 0, "in-memory get");
    cml_free(data);
    CHECK(cml_blob_get(c, ct, "models/small.bin", 4, NULL, &data, &len, NULL, &d) != CML_OK,
          "a blob above the memory limit is refused");

    /* Conditional GET: the same ETag is "not modified" and writes nothing. */
    snprintf(path2, sizeof(path2), "%s/not-modified.bin", work);
    cml_blob_get_options nm = {.if_none_match = etag1};
    CHECK_OK(cml_blob_get_file(c, ct, "models/small.bin", path2, &nm, &p, &d), d);
    CHECK(p.not_modified, "If-None-Match with the current ETag gives not_modified");
    CHECK(access(path2, F_OK) != 0, "nothing written when not modified");

    /* Names that need encoding sign and round-trip. */
    const char *odd = "models/with space/caf\xC3\xA9 +%&=.bin";
    CHECK_OK(cml_blob_put(c, ct, odd, "x", 1, NULL, NULL, &d), d);
    CHECK_OK(cml_blob_head(c, ct, odd, &p, &d), d);
    CHECK(p.length == 1, "odd name length");

    /* Block upload from memory (above the single-put threshold). */
    size_t big_n = 5 * BLOCK + 123;
    uint8_t *big = make_bytes(big_n, 7);
    char big_sha[65];
    cml_sha256_hex(big, big_n, big_sha);
    cml_blob_stats_snapshot s0, s1;
    cml_blob_stats_read(cml_blob_client_stats(c), &s0);
    po = (cml_blob_put_options){.add_sha256 = true};
    CHECK_OK(cml_blob_put(c, ct, "models/big-mem.bin", big, big_n, &po, &p, &d), d);
    cml_blob_stats_read(cml_blob_client_stats(c), &s1);
    CHECK(s1.requests - s0.requests == 7, "6 Put Block + 1 Put Block List, got %llu requests",
          (unsigned long long)(s1.requests - s0.requests));
    snprintf(path, sizeof(path), "%s/big-mem.bin", work);
    CHECK_OK(cml_blob_get_file(c, ct, "models/big-mem.bin", path, &go, &p, &d), d);
    CHECK(file_equals(path, big, big_n), "block-uploaded blob downloads identical");
    CHECK(p.length == big_n, "length %llu", (unsigned long long)p.length);
    m = cml_blob_props_meta(&p, "sha256");
    CHECK(m != NULL && strcmp(m, big_sha) == 0, "block upload carries sha256");

    /* Block upload from a file, larger than the threshold. */
    size_t file_n = 12 * BLOCK + 1;
    uint8_t *fbytes = make_bytes(file_n, 11);
    snprintf(path, sizeof(path), "%s/upload.bin", work);
    CHECK(write_file(path, fbytes, file_n) == 0, "write upload file");
    char file_sha[65];
    cml_sha256_hex(fbytes, file_n, file_sha);
    cml_blob_stats_read(cml_blob_client_stats(c), &s0);
    CHECK_OK(cml_blob_put_file(c, ct, "models/big-file.bin", path, &po, &p, &d), d);
    cml_blob_stats_read(cml_blob_client_stats(c), &s1);
    CHECK(s1.requests - s0.requests == 14, "13 blocks + list, got %llu",
          (unsigned long long)(s1.requests - s0.requests));
    char big_etag[128];
    snprintf(big_etag, sizeof(big_etag), "%s", p.etag);
    snprintf(path2, sizeof(path2), "%s/big-file.out", work);
    CHECK_OK(cml_blob_get_file(c, ct, "models/big-file.bin", path2, &go, &p, &d), d);
    CHECK(file_equals(path2, fbytes, file_n), "file round trip");
    m = cml_blob_props_meta(&p, "sha256");
    CHECK(m != NULL && strcmp(m, file_sha) == 0, "file upload sha256 metadata");
    CHECK(strcmp(p.etag, big_etag) == 0, "ETag of the committed block list");

    /* Conditional writes. */
    po = (cml_blob_put_options){.if_none_match_any = true};
    cml_err e = cml_blob_put(c, ct, "models/small.bin", "z", 1, &po, NULL, &d);
    CHECK(e == CML_ERR_CONFLICT, "If-None-Match:* on an existing blob: %s", cml_strerror(e));
    e = cml_blob_put(c, ct, "models/big-mem.bin", big, big_n, &po, NULL, &d);
    CHECK(e == CML_ERR_CONFLICT, "block upload If-None-Match:* on an existing blob: %s",
          cml_strerror(e));
    e = cml_blob_put_file(c, ct, "models/big-file.bin", path, &po, NULL, &d);
    CHECK(e == CML_ERR_CONFLICT, "file upload If-None-Match:* on an existing blob: %s",
          cml_strerror(e));
    CHECK_OK(cml_blob_put(c, ct, "models/new.bin", "n", 1, &po, NULL, &d), d);
    CHECK_OK(cml_blob_put(c, ct, "models/new-big.bin", big, big_n, &po, NULL, &d), d);
    /* Overwrite small.bin: etag1 becomes stale. */
    cml_blob_put_options cur = {.if_match = etag1};
    CHECK_OK(cml_blob_put(c, ct, "models/small.bin", "v2", 2, &cur, &p, &d), d);
    char etag2[128];
    snprintf(etag2, sizeof(etag2), "%s", p.etag);
    CHECK(strcmp(etag1, etag2) != 0, "a write changes the ETag");
    cml_blob_put_options stale = {.if_match = etag1};
    e = cml_blob_put(c, ct, "models/small.bin", "v3", 2, &stale, NULL, &d);
    CHECK(e == CML_ERR_CONFLICT, "If-Match with a stale ETag: %s", cml_strerror(e));
    e = cml_blob_put(c, ct, "models/small.bin", big, big_n, &stale, NULL, &d);
    CHECK(e == CML_ERR_CONFLICT, "block upload If-Match stale: %s", cml_strerror(e));
    cml_blob_get_options gstale = {.if_match = etag1};
    snprintf(path2, sizeof(path2), "%s/stale.bin", work);
    e = cml_blob_get_file(c, ct, "models/small.bin", path2, &gstale, NULL, &d);
    CHECK(e == CML_ERR_CONFLICT, "GET If-Match stale: %s", cml_strerror(e));
    CHECK(access(path2, F_OK) != 0, "no file after a failed GET");
    e = cml_blob_delete(c, ct, "models/small.bin", etag1, &d);
    CHECK(e == CML_ERR_CONFLICT, "DELETE If-Match stale: %s", cml_strerror(e));
    CHECK_OK(cml_blob_get(c, ct, "models/small.bin", 100, NULL, &data, &len, NULL, &d), d);
    CHECK(len == 2 && data && memcmp(data, "v2", 2) == 0, "content after failed writes is v2");
    cml_free(data);

    /* Listing across pages (page size 2) with a prefix. */
    CHECK_OK(cml_blob_list_blobs(c, ct, "models/", &l, &d), d);
    const char *want[] = {"models/big-file.bin", "models/big-mem.bin", "models/new-big.bin",
                          "models/new.bin",      "models/small.bin",   odd};
    CHECK(l.n == 6, "listed %zu blobs", l.n);
    for (size_t i = 0; i < l.n && i < 6; i++) {
        bool found = false;
        for (size_t k = 0; k < 6; k++)
            found = found || strcmp(l.items[i].name, want[k]) == 0;
        CHECK(found, "unexpected name %s", l.items[i].name);
        if (strcmp(l.items[i].name, "models/big-file.bin") == 0) {
            CHECK(l.items[i].length == file_n, "listed length");
            CHECK(strcmp(l.items[i].etag, big_etag) == 0, "listed etag %s vs %s", l.items[i].etag,
                  big_etag);
            CHECK(l.items[i].last_modified[0] != '\0', "listed last-modified");
        }
        if (i > 0)
            CHECK(strcmp(l.items[i - 1].name, l.items[i].name) < 0, "listing is sorted");
    }
    cml_blob_list_release(&l);
    CHECK_OK(cml_blob_list_blobs(c, ct, "models/with space/", &l, &d), d);
    CHECK(l.n == 1 && strcmp(l.items[0].name, odd) == 0, "prefix with a space");
    cml_blob_list_release(&l);
    CHECK_OK(cml_blob_list_blobs(c, ct, "nothing-here/", &l, &d), d);
    CHECK(l.n == 0, "empty listing");
    cml_blob_list_release(&l);

    /* Deletion and 404s; a failed download leaves an existing file alone. */
    CHECK_OK(cml_blob_delete(c, ct, "models/small.bin", etag2, &d), d);
    e = cml_blob_head(c, ct, "models/small.bin", &p, &d);
    CHECK(e == CML_ERR_NOT_FOUND, "head after delete: %s", cml_strerror(e));
    snprintf(path, sizeof(path), "%s/small.bin", work);
    e = cml_blob_get_file(c, ct, "models/small.bin", path, NULL, NULL, &d);
    CHECK(e == CML_ERR_NOT_FOUND, "get after delete: %s", cml_strerror(e));
    CHECK(file_equals(path, small, strlen(small)), "target untouched by a failed download");
    e = cml_blob_delete(c, ct, "models/small.bin", NULL, &d);
    CHECK(e == CML_ERR_NOT_FOUND, "delete twice: %s", cml_strerror(e));
    e = cml_blob_list_blobs(c, "no-such-container", NULL, &l, &d);
    CHECK(e == CML_ERR_NOT_FOUND, "list a missing container: %s", cml_strerror(e));
    cml_blob_list_release(&l);

    /* A wrong key: 403, reported without the key. */
    const char *wrong_key = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtl";
    char bad_conn[1024];
    const char *ep = strstr(conn, "BlobEndpoint=");
    snprintf(bad_conn, sizeof(bad_conn), "AccountName=devstoreaccount1;AccountKey=%s;%.*s",
             wrong_key, ep ? (int)strcspn(ep, ";") : 0, ep ? ep : "");
    cml_blob_client *bad = client(bad_conn, 0, 0, 0);
    if (bad != NULL) {
        e = cml_blob_head(bad, ct, "models/new.bin", &p, &d);
        CHECK(e == CML_ERR_STORAGE, "wrong key: %s", cml_strerror(e));
        CHECK(strstr(d.msg, "403") != NULL, "wrong key message: %s", d.msg);
        CHECK(strstr(d.msg, wrong_key) == NULL, "message shows the key");
        cml_blob_stats_snapshot bs;
        cml_blob_stats_read(cml_blob_client_stats(bad), &bs);
        CHECK(bs.failures[CML_BLOB_FAIL_AUTH] == 1 && bs.retries == 0, "auth failure counted");
        cml_blob_client_free(bad);
    }

    /* Counters: conflicts and not-founds counted, nothing retried against a healthy Azurite. */
    cml_blob_stats_read(cml_blob_client_stats(c), &s1);
    CHECK(s1.retries == 0, "no retries, got %llu", (unsigned long long)s1.retries);
    /* 409 and three 412s; the block uploads' pre-checks fail before sending anything. */
    CHECK(s1.failures[CML_BLOB_FAIL_CONFLICT] == 4, "conflicts counted: %llu",
          (unsigned long long)s1.failures[CML_BLOB_FAIL_CONFLICT]);
    CHECK(s1.failures[CML_BLOB_FAIL_NOT_FOUND] >= 3, "not-founds counted");
    CHECK(s1.bytes_up > big_n + file_n && s1.bytes_down > big_n + file_n, "bytes counted");

    /* For the SDK: a block-uploaded blob with sha256 metadata, in its own container. */
    CHECK_OK(cml_blob_create_container(c, "interop", NULL, &d), d);
    size_t inter_n = 9 * BLOCK + 77;
    uint8_t *inter = make_bytes(inter_n, 2026);
    snprintf(path, sizeof(path), "%s/from-c.bin", work);
    CHECK(write_file(path, inter, inter_n) == 0, "write interop file");
    po =
        (cml_blob_put_options){.add_sha256 = true, .content_type = "application/x-cultivate-model"};
    CHECK_OK(cml_blob_put_file(c, "interop", "from-c/model.bin", path, &po, NULL, &d), d);
    po = (cml_blob_put_options){.add_sha256 = true};
    CHECK_OK(cml_blob_put(c, "interop", "from-c/small.json", "{\"a\":1}", 7, &po, NULL, &d), d);

    cml_free(inter);
    cml_free(big);
    cml_free(fbytes);
    cml_blob_props_release(&p);
    cml_blob_props_release(&p2);
    cml_blob_client_free(c);
    return 0;
}

static int mode_download(const char *conn, const char *container, const char *name,
                         const char *expect_path, const char *work) {
    cml_diag d = {{0}};
    cml_blob_props p = {0};
    char path[512];
    cml_blob_client *c = client(conn, SMALL_MAX, BLOCK, 0);
    if (c == NULL)
        return 1;
    size_t n = 0;
    uint8_t *want = slurp(expect_path, &n);
    CHECK(want != NULL, "read %s", expect_path);
    snprintf(path, sizeof(path), "%s/from-sdk.out", work);
    cml_blob_get_options go = {.verify_sha256 = true};
    CHECK_OK(cml_blob_get_file(c, container, name, path, &go, &p, &d), d);
    CHECK(want != NULL && file_equals(path, want, n), "SDK-uploaded bytes match");
    char sha[65];
    if (want != NULL) {
        cml_sha256_hex(want, n, sha);
        const char *m = cml_blob_props_meta(&p, "sha256");
        CHECK(m != NULL && strcmp(m, sha) == 0, "SDK metadata sha256 visible: %s",
              m ? m : "(none)");
    }
    CHECK(p.length == n, "length %llu vs %zu", (unsigned long long)p.length, n);
    cml_blob_list l = {0};
    CHECK_OK(cml_blob_list_blobs(c, container, name, &l, &d), d);
    CHECK(l.n == 1 && strcmp(l.items[0].name, name) == 0 && l.items[0].length == n,
          "listing shows the SDK blob");
    cml_blob_list_release(&l);
    cml_free(want);
    cml_blob_props_release(&p);
    cml_blob_client_free(c);
    return 0;
}

/* Create, put, head, list, get, delete through whatever credential conn/opts carry. */
static void smoke(cml_blob_client *c, const char *work, const char *container) {
    cml_diag d = {{0}};
    cml_blob_props p = {0};
    cml_blob_list l = {0};
    char path[512];
    CHECK_OK(cml_blob_create_container(c, container, NULL, &d), d);
    size_t n = 3 * BLOCK + 5;
    uint8_t *bytes = make_bytes(n, 99);
    cml_blob_put_options po = {.add_sha256 = true, .if_none_match_any = true};
    CHECK_OK(cml_blob_put(c, container, "smoke/a b.bin", bytes, n, &po, &p, &d), d);
    CHECK_OK(cml_blob_head(c, container, "smoke/a b.bin", &p, &d), d);
    CHECK(p.length == n, "smoke length");
    CHECK_OK(cml_blob_list_blobs(c, container, "smoke/", &l, &d), d);
    CHECK(l.n == 1, "smoke list %zu", l.n);
    cml_blob_list_release(&l);
    snprintf(path, sizeof(path), "%s/smoke-%s.bin", work, container);
    cml_blob_get_options go = {.verify_sha256 = true};
    CHECK_OK(cml_blob_get_file(c, container, "smoke/a b.bin", path, &go, &p, &d), d);
    CHECK(file_equals(path, bytes, n), "smoke content");
    cml_err e = cml_blob_put(c, container, "smoke/a b.bin", "x", 1, &po, NULL, &d);
    CHECK(e == CML_ERR_CONFLICT, "smoke conditional: %s", cml_strerror(e));
    CHECK_OK(cml_blob_delete(c, container, "smoke/a b.bin", NULL, &d), d);
    e = cml_blob_head(c, container, "smoke/a b.bin", &p, &d);
    CHECK(e == CML_ERR_NOT_FOUND, "smoke deleted: %s", cml_strerror(e));
    cml_free(bytes);
    cml_blob_props_release(&p);
}

static int mode_smoke(const char *conn, const char *work, bool managed_identity) {
    cml_blob_options o;
    cml_blob_options_init(&o);
    o.single_put_max = SMALL_MAX;
    o.block_size = BLOCK;
    o.max_retries = 2;
    o.log = log_stderr;
    o.use_managed_identity = managed_identity;
    o.ca_path = getenv("CML_TEST_CA");
    cml_blob_client *c = NULL;
    cml_diag d = {{0}};
    cml_err err = cml_blob_client_from_string(conn, &o, &c, &d);
    CHECK(err == CML_OK, "client: %s", d.msg);
    if (c == NULL)
        return 1;
    smoke(c, work, managed_identity ? "mi-smoke" : "smoke");
    cml_blob_stats_snapshot s;
    cml_blob_stats_read(cml_blob_client_stats(c), &s);
    CHECK(s.failures[CML_BLOB_FAIL_AUTH] == 0, "no auth failures");
    cml_blob_client_free(c);
    return 0;
}

static int mode_tls_reject(const char *conn) {
    cml_blob_options o;
    cml_blob_options_init(&o);
    o.max_retries = 3;
    o.log = log_stderr;
    cml_blob_client *c = NULL;
    cml_diag d = {{0}};
    cml_err err = cml_blob_client_from_string(conn, &o, &c, &d);
    CHECK(err == CML_OK, "client: %s", d.msg);
    if (c == NULL)
        return 1;
    bool created = false;
    err = cml_blob_create_container(c, "tls-check", &created, &d);
    CHECK(err == CML_ERR_STORAGE, "untrusted certificate refused: %s (%s)", cml_strerror(err),
          d.msg);
    cml_blob_stats_snapshot s;
    cml_blob_stats_read(cml_blob_client_stats(c), &s);
    CHECK(s.failures[CML_BLOB_FAIL_TLS] == 1 && s.requests == 1,
          "one TLS failure, not retried (requests %llu)", (unsigned long long)s.requests);
    cml_blob_client_free(c);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODE CONN [ARGS...]\n", argv[0]);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *mode = argv[1], *conn = argv[2];
    int rc = 2;
    if (strcmp(mode, "roundtrip") == 0 && argc == 4)
        rc = mode_roundtrip(conn, argv[3]);
    else if (strcmp(mode, "download") == 0 && argc == 7)
        rc = mode_download(conn, argv[3], argv[4], argv[5], argv[6]);
    else if (strcmp(mode, "smoke") == 0 && argc == 4)
        rc = mode_smoke(conn, argv[3], false);
    else if (strcmp(mode, "mi-smoke") == 0 && argc == 4)
        rc = mode_smoke(conn, argv[3], true);
    else if (strcmp(mode, "tls-reject") == 0 && argc == 3)
        rc = mode_tls_reject(conn);
    else
        fprintf(stderr, "unknown mode or wrong arguments: %s\n", mode);
    curl_global_cleanup();
    if (rc == 2)
        return 2;
    printf("%s: %d passed, %d failed\n", mode, passed, failed);
    return failed == 0 && rc == 0 ? 0 : 1;
}
