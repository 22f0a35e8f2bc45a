/*
 * The C half of the blob model store's Azurite test (test_blob_store_azurite.sh starts
 * Azurite, trains a small classic model and runs these modes):
 *
 *   store CONN WORKDIR MODEL    publish, upload, ensure-local (downloaded / not modified with
 *                               the remembered ETag, asserted on the client's counters /
 *                               present), conditional pointer moves, list, delete, fetch a
 *                               version, active.json, prune, training data
 *   corrupt CONN WORKDIR MODEL  garbage, hash mismatches, missing hash, wrong version or type,
 *                               a truncated file: every download refused, the local store
 *                               untouched
 *   race CONN WORKDIR MODEL     two instances (two store handles, two local stores) racing
 *                               publish_if_absent on an empty container, several rounds:
 *                               exactly one wins, the other adopts the winner's version
 *   ensure CONN CONTAINER TYPE DIR VERSION
 *                               ensure-local of a model someone else (the SDK) published
 *   derive MODEL DIR VERSION    writes DIR/TYPE_VERSION.model: MODEL under another version
 *
 * Each mode ends with a line "MODE: N passed, M failed" and exits non-zero on failure.
 */
#include "config.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "azure/blob_store.h"
#include "base/cml_alloc.h"
#include "model/local_store.h"
#include "model/model_file.h"
#include "base/sha256.h"
#include "base/file_io.h"

static int passed, failed;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned refused_lines;

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

#define CHECK_ERR(call, want, d)                                                                   \
    do {                                                                                           \
        cml_err e_ = (call);                                                                       \
        CHECK(e_ == (want), "%s -> %s (want %s): %s", #call, cml_strerror(e_), cml_strerror(want), \
              (d).msg);                                                                            \
    } while (0)

#define CHECK_OK(call, d) CHECK_ERR(call, CML_OK, d)

static void log_stderr(void *ctx, const char *line) {
    (void)ctx;
    pthread_mutex_lock(&log_lock);
    if (strstr(line, "refused") != NULL)
        refused_lines++;
    fprintf(stderr, "  log: %s\n", line);
    pthread_mutex_unlock(&log_lock);
}

static cml_blob_store *open_store(const char *conn, const char *container) {
    cml_blob_store_options o;
    cml_blob_store_options_init(&o);
    o.connection_string = conn;
    o.container = container;
    o.client.max_retries = 2;
    o.client.connect_timeout_ms = 5000;
    o.client.timeout_ms = 60000;
    o.client.log = log_stderr;
    cml_blob_store *s = NULL;
    cml_diag d = {{0}};
    cml_err err = cml_blob_store_open(&o, &s, &d);
    CHECK(err == CML_OK, "open %s: %s: %s", container, cml_strerror(err), d.msg);
    return s;
}

static void snap(cml_blob_store *s, cml_blob_stats_snapshot *out) {
    cml_blob_stats_read(cml_blob_store_stats(s), out);
}

static uint8_t *slurp(const char *path, size_t *n) {
    uint8_t *buf = NULL;
    cml_diag d;
    *n = 0;
    if (cml_read_file(path, (size_t)1 << 30, &buf, n, &d) != CML_OK)
        return NULL;
    return buf;
}

static bool same_file(const char *a, const char *b) {
    size_t na, nb;
    uint8_t *pa = slurp(a, &na), *pb = slurp(b, &nb);
    bool same = pa != NULL && pb != NULL && na == nb && memcmp(pa, pb, na) == 0;
    cml_free(pa);
    cml_free(pb);
    return same;
}

static void file_sha(const char *path, char hex[65]) {
    size_t n;
    uint8_t *p = slurp(path, &n);
    hex[0] = '\0';
    if (p != NULL)
        cml_sha256_hex(p, n, hex);
    cml_free(p);
}

/* Entries of dir other than . and ..; -1 when dir does not exist. */
static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    if (d == NULL)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* Writes dir/TYPE_VERSION.model: the model at src under another version (latest too). */
static bool derive(const char *src, const char *dir, const char *version, bool make_latest,
                   char *out, size_t cap) {
    cml_model *m = NULL;
    cml_diag d = {{0}};
    if (cml_model_load(src, &m, &d) != CML_OK) {
        fprintf(stderr, "derive: %s: %s\n", src, d.msg);
        return false;
    }
    snprintf(m->version, sizeof m->version, "%s", version);
    cml_err err = cml_local_store_save(dir, m, make_latest, &d);
    if (err == CML_OK && out != NULL)
        cml_local_store_path(dir, cml_model_type_name(m->type), version, out, cap);
    if (err != CML_OK)
        fprintf(stderr, "derive: %s\n", d.msg);
    cml_model_release(m);
    return err == CML_OK;
}

static bool latest_is(const char *dir, const char *type, const char *want) {
    char v[CML_VERSION_MAX];
    return cml_local_store_latest(dir, type, v) == CML_OK && strcmp(v, want) == 0;
}

#define V1 "20260101T000001Z"
#define V2 "20260101T000002Z"
#define V3 "20260101T000003Z"
#define V4 "20260101T000004Z"

static bool pin_classic_v1(void *ctx, cml_selection *sel, bool exists) {
    (void)ctx;
    if (!exists)
        return false;
    snprintf(sel->classic_version, sizeof sel->classic_version, "%s", V1);
    return true;
}

static int mode_store(const char *conn, const char *work, const char *model) {
    cml_diag d = {{0}};
    cml_blob_publish_result r;
    cml_blob_sync_result sr = {0};
    cml_blob_stats_snapshot a, b;
    char src[512], p1[600], p2[600], p3[600], p4[600], dir_a[600], dir_b[600];
    char etag1[CML_BLOB_ETAG_MAX], etag2[CML_BLOB_ETAG_MAX];
    snprintf(src, sizeof src, "%s/store-src", work);
    snprintf(dir_a, sizeof dir_a, "%s/store-a", work);
    snprintf(dir_b, sizeof dir_b, "%s/store-b", work);
    CHECK(derive(model, src, V1, false, p1, sizeof p1), "derive V1");
    CHECK(derive(model, src, V2, false, p2, sizeof p2), "derive V2");
    CHECK(derive(model, src, V3, false, p3, sizeof p3), "derive V3");
    CHECK(derive(model, src, V4, false, p4, sizeof p4), "derive V4");
    cml_blob_store *s = open_store(conn, "store-a");
    if (s == NULL)
        return 1;

    /* An empty store. */
    CHECK_OK(cml_blob_store_ensure_local(s, CML_MODEL_CLASSIC, dir_a, NULL, &sr, &d), d);
    CHECK(sr.status == CML_BLOB_SYNC_NO_MODEL, "empty store: %s",
          cml_blob_sync_status_name(sr.status));
    CHECK(count_entries(dir_a) == -1, "nothing created for an empty store");
    cml_blob_version *v = NULL;
    size_t n = 99;
    char latest[CML_VERSION_MAX] = "x";
    CHECK_OK(cml_blob_store_list_versions(s, CML_MODEL_CLASSIC, true, &v, &n, latest, &d), d);
    CHECK(n == 0 && v == NULL && latest[0] == '\0', "no versions listed (%zu)", n);

    /* Publish V1: version blob, then the pointer (created). */
    CHECK_OK(cml_blob_store_publish(s, p1, NULL, &r, &d), d);
    CHECK(r.pointer_moved && !r.version_existed && !r.adopted, "V1 published");
    CHECK(strcmp(r.version, V1) == 0 && r.type == CML_MODEL_CLASSIC, "published %s", r.version);
    CHECK(r.pointer_etag[0] != '\0', "pointer ETag returned");
    snprintf(etag1, sizeof etag1, "%s", r.pointer_etag);
    char want_sha[65];
    file_sha(p1, want_sha);
    CHECK(strcmp(r.sha256, want_sha) == 0, "published sha256");
    CHECK_OK(cml_blob_store_upload_version(s, p1, &r, &d), d);
    CHECK(r.version_existed && !r.pointer_moved, "re-upload of the same version is success");
    /* Publishing what the pointer already names writes nothing. */
    CHECK_OK(cml_blob_store_publish(s, p1, NULL, &r, &d), d);
    CHECK(r.pointer_moved && strcmp(r.pointer_etag, etag1) == 0, "pointer left as it was");

    /* ensure-local into an empty directory downloads and verifies. */
    snap(s, &a);
    CHECK_OK(cml_blob_store_ensure_local(s, CML_MODEL_CLASSIC, dir_a, NULL, &sr, &d), d);
    snap(s, &b);
    CHECK(sr.status == CML_BLOB_SYNC_DOWNLOADED, "downloaded: %s",
          cml_blob_sync_status_name(sr.status));
    CHECK(strcmp(sr.version, V1) == 0 && strcmp(sr.sha256, want_sha) == 0, "version %s",
          sr.version);
    CHECK(strcmp(sr.etag, etag1) == 0, "ETag to remember is the pointer's");
    CHECK(sr.model != NULL && strcmp(sr.model->version, V1) == 0, "the verified model returned");
    CHECK(same_file(sr.path, p1), "local file %s equals the published one", sr.path);
    CHECK(latest_is(dir_a, "classic", V1), "local latest points at V1");
    CHECK(b.bytes_down - a.bytes_down >= sr.bytes, "body downloaded");
    CHECK(count_entries(dir_a) == 2, "only the model and the latest link (%d)",
          count_entries(dir_a));
    cml_blob_sync_result_release(&sr);

    /* With the remembered ETag: one request, no body. */
    snap(s, &a);
    CHECK_OK(cml_blob_store_ensure_local(s, CML_MODEL_CLASSIC, dir_a, etag1, &sr, &d), d);
    snap(s, &b);
    CHECK(sr.status == CML_BLOB_SYNC_NOT_MODIFIED, "not modified: %s",
          cml_blob_sync_status_name(sr.status));
    CHECK(b.requests - a.requests == 1, "one request (%llu)",
          (unsigned long long)(b.requests - a.requests));
    CHECK(b.bytes_down == a.bytes_down, "no bytes downloaded (%llu)",
          (unsigned long long)(b.bytes_down - a.bytes_down));
    CHECK(sr.model == NULL && strcmp(sr.etag, etag1) == 0, "same ETag, no model");
    cml_blob_sync_result_release(&sr);

    /* Without it (a restart): the local copy is recognised by its hash. */
    snap(s, &a);
    CHECK_OK(cml_blob_store_ensure_local(s, CML_MODEL_CLASSIC, dir_a, NULL, &sr, &d), d);
    snap(s, &b);
    CHECK(sr.status == CML_BLOB_SYNC_PRESENT, "present: %s", cml_blob_sync_status_name(sr.status));
    CHECK(b.bytes_down == a.bytes_down && b.requests - a.requests == 1, "HEAD only");
    cml_blob_sync_result_release(&sr);

    /* Conditional pointer moves: V2 over etag1 wins; V3 over the stale etag1 loses. */
    CHECK_OK(cml_blob_store_publish(s, p2, etag1, &r, &d), d);
    CHECK(r.pointer_moved && strcmp(r.pointer_etag, etag1) != 0, "V2 moved the pointer");
    snprintf(etag2, sizeof etag2, "%s", r.pointer_etag);
    CHECK_ERR(cml_blob_store_publish(s, p3, etag1, &r, &d), CML_ERR_CONFLICT, d);
    CHECK(!r.pointer_moved, "V3 did not move the pointer");

    /* The next sync with the old ETag downloads V2. */
    CHECK_OK(cml_blob_store_ensure_local(s, CML_MODEL_CLASSIC, dir_a, etag1, &sr, &d), d);
    CHECK(sr.status == CML_BLOB_SYNC_DOWNLOADED && strcmp(sr.version, V2) == 0,
          "downloaded V2: %s %s", cml_blob_sync_status_name(sr.status), sr.version);
    CHECK(strcmp(sr.etag, etag2) == 0, "new ETag");
    CHECK(latest_is(dir_a, "classic", V2), "local latest points at V2");
    cml_blob_sync_result_release(&sr);

    /* Listing: newest first, sizes and hashes, the pointer's version flagged. */
    CHECK_OK(cml_blob_store_list_versions(s, CML_MODEL_CLASSIC, true, &v, &n, latest, &d), d);
    CHECK(n == 3, "three versions (%zu)", n);
    CHECK(strcmp(latest, V2) == 0, "latest %s", latest);
    if (n == 3) {
        const char *order[3] = {V3, V2, V1}, *paths[3] = {p3, p2, p1};
        for (size_t i = 0; i < 3; i++) {
            char h[65];
            struct stat st;
            file_sha(paths[i], h);
            stat(paths[i], &st);
            CHECK(strcmp(v[i].version, order[i]) == 0, "order %zu: %s", i, v[i].version);
            CHECK(strcmp(v[i].sha256, h) == 0, "sha256 of %s", v[i].version);
            CHECK(v[i].bytes == (uint64_t)st.st_size, "size of %s", v[i].version);
            CHECK(v[i].latest == (i == 1), "latest flag of %s", v[i].version);
            CHECK(v[i].etag[0] == '"' && v[i].last_modified[0] != '\0', "etag and date");
        }
    }
    cml_free(v);
    v = NULL;
    CHECK_OK(cml_blob_store_list_versions(s, CML_MODEL_ENSEMBLE, false, &v, &n, latest, &d), d);
    CHECK(n == 0 && latest[0] == '\0', "no ensemble versions");

    /* Deletion never takes the pointer's version. */
    CHECK_ERR(cml_blob_store_delete_version(s, CML_MODEL_CLASSIC, V2, &d), CML_ERR_CONFLICT, d);
    CHECK_OK(cml_blob_store_delete_version(s, CML_MODEL_CLASSIC, V3, &d), d);
    CHECK_ERR(cml_blob_store_delete_version(s, CML_MODEL_CLASSIC, V3, &d), CML_ERR_NOT_FOUND, d);

    /* One version, without moving the local latest. */
    CHECK_OK(cml_blob_store_fetch_version(s, CML_MODEL_CLASSIC, V1, dir_b, false, &sr, &d), d);
    CHECK(sr.status == CML_BLOB_SYNC_DOWNLOADED && strcmp(sr.version, V1) == 0, "fetched V1");
    CHECK(same_file(sr.path, p1), "fetched file equals V1");
    CHECK(count_entries(dir_b) == 1, "no latest link made (%d)", count_entries(dir_b));
    cml_blob_sync_result_release(&sr);
    CHECK_OK(cml_blob_store_fetch_version(s, CML_MODEL_CLASSIC, V1, dir_b, false, &sr, &d), d);
    CHECK(sr.status == CML_BLOB_SYNC_PRESENT, "V1 present");
    cml_blob_sync_result_release(&sr);
    CHECK_ERR(cml_blob_store_fetch_version(s, CML_MODEL_CLASSIC, V3, dir_b, false, &sr, &d),
              CML_ERR_NOT_FOUND, d);
    CHECK_ERR(cml_blob_store_fetch_version(s, CML_MODEL_ENSEMBLE, V1, dir_b, false, &sr, &d),
              CML_ERR_NOT_FOUND, d);

    /* active.json: create-only, conditional reads and writes, read-modify-write. */
    cml_selection sel = {0}, got = {0};
    char ea[CML_BLOB_ETAG_MAX], eb[CML_BLOB_ETAG_MAX], ec[CML_BLOB_ETAG_MAX];
    bool nm = true;
    CHECK_ERR(cml_blob_store_read_active(s, NULL, &got, ea, &nm, &d), CML_ERR_NOT_FOUND, d);
    CHECK_OK(cml_blob_store_follow_latest(s, CML_MODEL_CLASSIC, &d), d);
    CHECK_ERR(cml_blob_store_read_active(s, NULL, &got, ea, &nm, &d), CML_ERR_NOT_FOUND, d);
    snprintf(sel.active_type, sizeof sel.active_type, "ensemble");
    sel.updated_at = 1795671012;
    CHECK_OK(cml_blob_store_write_active(s, &sel, NULL, ea, &d), d);
    CHECK_ERR(cml_blob_store_write_active(s, &sel, NULL, eb, &d), CML_ERR_CONFLICT, d);
    snap(s, &a);
    CHECK_OK(cml_blob_store_read_active(s, ea, &got, eb, &nm, &d), d);
    snap(s, &b);
    CHECK(nm && b.bytes_down == a.bytes_down && b.requests - a.requests == 1,
          "conditional read: not modified, no body");
    CHECK_OK(cml_blob_store_read_active(s, NULL, &got, eb, &nm, &d), d);
    CHECK(!nm && strcmp(got.active_type, "ensemble") == 0 && got.updated_at == 1795671012 &&
              strcmp(eb, ea) == 0,
          "read back");
    sel = got;
    snprintf(sel.classic_version, sizeof sel.classic_version, "%s", V1);
    CHECK_OK(cml_blob_store_write_active(s, &sel, ea, ec, &d), d);
    CHECK_ERR(cml_blob_store_write_active(s, &sel, ea, eb, &d), CML_ERR_CONFLICT, d);
    CHECK_OK(cml_blob_store_read_active(s, ea, &got, eb, &nm, &d), d);
    CHECK(!nm && strcmp(got.classic_version, V1) == 0 && strcmp(eb, ec) == 0, "pin read back");
    /* Pinned versions are not deleted. */
    CHECK_ERR(cml_blob_store_delete_version(s, CML_MODEL_CLASSIC, V1, &d), CML_ERR_CONFLICT, d);
    CHECK_OK(cml_blob_store_follow_latest(s, CML_MODEL_CLASSIC, &d), d);
    CHECK_OK(cml_blob_store_read_active(s, NULL, &got, eb, &nm, &d), d);
    CHECK(strcmp(got.classic_version, "") == 0 && strcmp(got.active_type, "ensemble") == 0 &&
              got.updated_at > 1795671012,
          "unpinned by follow_latest");
    CHECK_OK(cml_blob_store_update_active(s, pin_classic_v1, NULL, &got, ec, &d), d);
    CHECK(strcmp(got.classic_version, V1) == 0 && strcmp(ec, eb) != 0, "update_active pinned V1");
    /* A corrupt active.json is reported, not taken. */
    cml_blob_put_options po = {.content_type = "application/json"};
    const char *junk = "{\"active_type\":\"both\"}";
    CHECK_OK(cml_blob_put(cml_blob_store_client(s), "store-a", CML_BLOB_STORE_ACTIVE, junk,
                          strlen(junk), &po, NULL, &d),
             d);
    CHECK_ERR(cml_blob_store_read_active(s, NULL, &got, eb, &nm, &d), CML_ERR_FORMAT, d);
    CHECK(strcmp(got.classic_version, V1) == 0, "selection kept on a bad read");
    CHECK_OK(cml_blob_store_write_active(s, &got, eb, ec, &d), d);

    /* Retention: keeps the newest, the pointer's and the pinned versions. */
    CHECK_OK(cml_blob_store_upload_version(s, p4, &r, &d), d);
    size_t deleted = 99;
    CHECK_OK(cml_blob_store_prune(s, CML_MODEL_CLASSIC, 1, &deleted, &d), d);
    CHECK(deleted == 0, "nothing pruned while V1 is pinned (%zu)", deleted);
    CHECK_OK(cml_blob_store_follow_latest(s, CML_MODEL_CLASSIC, &d), d);
    CHECK_OK(cml_blob_store_prune(s, CML_MODEL_CLASSIC, 1, &deleted, &d), d);
    CHECK(deleted == 1, "V1 pruned (%zu)", deleted);
    CHECK_OK(cml_blob_store_list_versions(s, CML_MODEL_CLASSIC, false, &v, &n, latest, &d), d);
    CHECK(n == 2 && strcmp(v[0].version, V4) == 0 && strcmp(v[1].version, V2) == 0 && v[1].latest,
          "V4 and V2 left (%zu)", n);
    cml_free(v);
    v = NULL;

    /* Training data. */
    char csv[600], csv2[600], h1[65], h2[65];
    size_t rows = 0;
    snprintf(csv, sizeof csv, "%s/train.csv", work);
    snprintf(csv2, sizeof csv2, "%s/train-back.csv", work);
    FILE *f = fopen(csv, "w");
    if (f != NULL) {
        fputs("text,label\n", f);
        for (int i = 0; i < 300; i++)
            fprintf(f, "\"What do you think happens next, number %d?\",OEQ\n", i);
        fclose(f);
    }
    CHECK_ERR(cml_blob_store_get_training_data(s, csv2, h2, &rows, &d), CML_ERR_NOT_FOUND, d);
    CHECK(count_entries(work) >= 0 && access(csv2, F_OK) != 0, "nothing written");
    CHECK_OK(cml_blob_store_put_training_data(s, csv, 300, h1, &d), d);
    CHECK_OK(cml_blob_store_get_training_data(s, csv2, h2, &rows, &d), d);
    CHECK(same_file(csv, csv2) && strcmp(h1, h2) == 0 && rows == 300, "training data round trip");
    file_sha(csv, h2);
    CHECK(strcmp(h1, h2) == 0, "its sha256");

    cml_blob_store_free(s);
    printf("store: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

/* ---- corrupt downloads ------------------------------------------------------------------------
 */

/* Puts the classic pointer (and optionally the version blob) unconditionally. */
static void put_raw(cml_blob_store *s, const char *name, const void *data, size_t len,
                    const char *sha, const char *version, const char *type) {
    cml_blob_meta meta[3];
    size_t k = 0;
    if (sha != NULL)
        meta[k++] = (cml_blob_meta){.name = "sha256", .value = (char *)sha};
    if (version != NULL)
        meta[k++] = (cml_blob_meta){.name = "version", .value = (char *)version};
    if (type != NULL)
        meta[k++] = (cml_blob_meta){.name = "model_type", .value = (char *)type};
    cml_blob_put_options po = {.meta = meta, .n_meta = k};
    cml_diag d = {{0}};
    CHECK_OK(cml_blob_put(cml_blob_store_client(s), cml_blob_store_container(s), name, data, len,
                          &po, NULL, &d),
             d);
}

static int mode_corrupt(const char *conn, const char *work, const char *model) {
    cml_diag d = {{0}};
    cml_blob_sync_result sr = {0};
    char dir[600], good_sha[65], garbage_sha[65], other_sha[65];
    size_t len = 0;
    snprintf(dir, sizeof dir, "%s/corrupt-local", work);
    uint8_t *good = slurp(model, &len);
    CHECK(good != NULL && len > 100, "read %s", model);
    if (good == NULL)
        return 1;
    cml_model *m = NULL;
    CHECK_OK(cml_model_deserialize(good, len, &m, &d), d);
    if (m == NULL)
        return 1;
    char version[CML_VERSION_MAX];
    snprintf(version, sizeof version, "%s", m->version);
    cml_model_release(m);
    cml_sha256_hex(good, len, good_sha);
    uint8_t garbage[4096];
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (uint8_t)(i * 7 + 3);
    cml_sha256_hex(garbage, sizeof garbage, garbage_sha);
    cml_sha256_hex("other", 5, other_sha);
    cml_blob_store *s = open_store(conn, "corrupt");
    if (s == NULL)
        return 1;
    const char *ptr = cml_blob_store_pointer(s, CML_MODEL_CLASSIC);
    char vname[128];
    cml_blob_store_version_name(CML_MODEL_CLASSIC, "20260101T000009Z", vname, sizeof vname);
    unsigned refused_before = refused_lines;

    struct {
        const char *what;
        const void *data;
        size_t len;
        const char *sha, *version;
        cml_err want;
    } cases[] = {
        {"garbage with a matching sha256", garbage, sizeof garbage, garbage_sha, "20260101T000009Z",
         CML_ERR_FORMAT},
        {"a model whose sha256 metadata differs", good, len, other_sha, version, CML_ERR_CHECKSUM},
        {"a model without sha256 metadata", good, len, NULL, version, CML_ERR_CHECKSUM},
        {"a model under another version's metadata", good, len, good_sha, "20260101T000008Z",
         CML_ERR_INVALID},
        {"a truncated model with a matching sha256", good, len - 1, NULL, version,
         CML_ERR_CHECKSUM},
    };
    char trunc_sha[65];
    cml_sha256_hex(good, len - 1, trunc_sha);
    cases[4].sha = trunc_sha;
    cases[4].want = CML_ERR_CHECKSUM; /* the model file's own SHA-256 (or format) refuses it */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        put_raw(s, ptr, cases[i].data, cases[i].len, cases[i].sha, cases[i].version, "classic");
        cml_err e = cml_blob_store_ensure_local(s, CML_MODEL_CLASSIC, dir, NULL, &sr, &d);
        bool refused = e != CML_OK;
        CHECK(refused, "%s: accepted", cases[i].what);
        if (i != 4)
            CHECK(e == cases[i].want, "%s: %s (want %s): %s", cases[i].what, cml_strerror(e),
                  cml_strerror(cases[i].want), d.msg);
        else
            CHECK(e == CML_ERR_CHECKSUM || e == CML_ERR_FORMAT, "%s: %s: %s", cases[i].what,
                  cml_strerror(e), d.msg);
        CHECK(sr.model == NULL && sr.status == 0, "%s: empty result", cases[i].what);
        CHECK(count_entries(dir) <= 0, "%s: the local store got %d entries", cases[i].what,
              count_entries(dir));
        printf("refused %s: %s\n", cases[i].what, d.msg);
        cml_blob_sync_result_release(&sr);
    }
    CHECK(refused_lines > refused_before, "refusals logged");

    /* A version blob of garbage, fetched by version. */
    put_raw(s, vname, garbage, sizeof garbage, garbage_sha, "20260101T000009Z", "classic");
    CHECK_ERR(
        cml_blob_store_fetch_version(s, CML_MODEL_CLASSIC, "20260101T000009Z", dir, true, &sr, &d),
        CML_ERR_FORMAT, d);
    CHECK(count_entries(dir) <= 0, "fetch: nothing written");

    /* An ensemble pointer holding a classic model. */
    put_raw(s, cml_blob_store_pointer(s, CML_MODEL_ENSEMBLE), good, len, good_sha, version,
            "ensemble");
    CHECK_ERR(cml_blob_store_ensure_local(s, CML_MODEL_ENSEMBLE, dir, NULL, &sr, &d),
              CML_ERR_INVALID, d);
    CHECK(count_entries(dir) <= 0, "wrong type: nothing written");

    /* A model that is good after all is accepted (the same directory, still empty). */
    put_raw(s, ptr, good, len, good_sha, version, "classic");
    CHECK_OK(cml_blob_store_ensure_local(s, CML_MODEL_CLASSIC, dir, NULL, &sr, &d), d);
    CHECK(sr.status == CML_BLOB_SYNC_DOWNLOADED && strcmp(sr.version, version) == 0,
          "the good model is taken");
    cml_blob_sync_result_release(&sr);
    /* A local file that differs from the store is replaced by the store's. */
    char local[700];
    cml_local_store_path(dir, "classic", version, local, sizeof local);
    FILE *f = fopen(local, "ab");
    if (f != NULL) {
        fputc('x', f);
        fclose(f);
    }
    CHECK_OK(cml_blob_store_ensure_local(s, CML_MODEL_CLASSIC, dir, NULL, &sr, &d), d);
    CHECK(sr.status == CML_BLOB_SYNC_DOWNLOADED, "a damaged local copy is downloaded again");
    cml_blob_sync_result_release(&sr);
    char h[65];
    file_sha(local, h);
    CHECK(strcmp(h, good_sha) == 0, "local copy repaired");

    /* A pointer without version metadata (a hand upload): identified by its content. */
    char dir2[700];
    snprintf(dir2, sizeof dir2, "%s/corrupt-noversion", work);
    put_raw(s, ptr, good, len, good_sha, NULL, NULL);
    CHECK_OK(cml_blob_store_ensure_local(s, CML_MODEL_CLASSIC, dir2, NULL, &sr, &d), d);
    CHECK(sr.status == CML_BLOB_SYNC_DOWNLOADED && strcmp(sr.version, version) == 0,
          "no version metadata: downloaded as %s", sr.version);
    CHECK(latest_is(dir2, "classic", version), "and linked as the latest");
    char etag[CML_BLOB_ETAG_MAX];
    snprintf(etag, sizeof etag, "%s", sr.etag);
    cml_blob_sync_result_release(&sr);
    CHECK_OK(cml_blob_store_ensure_local(s, CML_MODEL_CLASSIC, dir2, etag, &sr, &d), d);
    CHECK(sr.status == CML_BLOB_SYNC_NOT_MODIFIED, "then not modified");
    cml_blob_sync_result_release(&sr);

    cml_free(good);
    cml_blob_store_free(s);
    printf("corrupt: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

/* ---- two instances racing on an empty store ----------------------------------------------------
 */

typedef struct racer {
    cml_blob_store *store;
    char dir[600];
    char version[CML_VERSION_MAX];
    pthread_barrier_t *start;
    cml_err err;
    cml_diag diag;
    cml_blob_publish_result res;
} racer;

static void *race_main(void *arg) {
    racer *r = arg;
    pthread_barrier_wait(r->start);
    r->err = cml_blob_store_publish_if_absent(r->store, CML_MODEL_CLASSIC, r->dir, NULL, &r->res,
                                              &r->diag);
    return NULL;
}

static int mode_race(const char *conn, const char *work, const char *model) {
    const int rounds = 6;
    int wins_a = 0, wins_b = 0, lost_writes = 0;
    for (int round = 0; round < rounds; round++) {
        char container[32];
        snprintf(container, sizeof container, "race-%ld-%d", (long)getpid(), round);
        racer r[2];
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, 2);
        memset(r, 0, sizeof r);
        for (int i = 0; i < 2; i++) {
            r[i].store = open_store(conn, container);
            r[i].start = &start;
            snprintf(r[i].dir, sizeof r[i].dir, "%s/race-%d-%c", work, round, 'a' + i);
            snprintf(r[i].version, sizeof r[i].version, "20260201T0000%02dZ", round * 2 + i);
            CHECK(derive(model, r[i].dir, r[i].version, true, NULL, 0), "derive %s", r[i].version);
        }
        if (r[0].store == NULL || r[1].store == NULL)
            return 1;
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&th[i], NULL, race_main, &r[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&start);
        CHECK(r[0].err == CML_OK && r[1].err == CML_OK, "round %d: %s / %s", round, r[0].diag.msg,
              r[1].diag.msg);
        int winners = 0, w = -1;
        for (int i = 0; i < 2; i++)
            if (!r[i].res.adopted && strcmp(r[i].res.version, r[i].version) == 0) {
                winners++;
                w = i;
            }
        CHECK(winners == 1, "round %d: exactly one winner (%d)", round, winners);
        if (winners != 1)
            continue;
        int l = 1 - w;
        cml_blob_stats_snapshot st;
        snap(r[l].store, &st);
        lost_writes += st.failures[CML_BLOB_FAIL_CONFLICT] > 0;
        wins_a += w == 0;
        wins_b += w == 1;
        CHECK(r[l].res.adopted && strcmp(r[l].res.version, r[w].version) == 0,
              "round %d: the loser adopted %s (has %s)", round, r[w].version, r[l].res.version);
        CHECK(latest_is(r[w].dir, "classic", r[w].version) &&
                  latest_is(r[l].dir, "classic", r[w].version),
              "round %d: both local stores point at the winner", round);
        char wp[700], lp[700];
        cml_local_store_path(r[w].dir, "classic", r[w].version, wp, sizeof wp);
        cml_local_store_path(r[l].dir, "classic", r[w].version, lp, sizeof lp);
        CHECK(same_file(wp, lp), "round %d: the loser holds the winner's file", round);
        /* Both remember the pointer's current ETag: a sync of either is not-modified. */
        for (int i = 0; i < 2; i++) {
            cml_blob_sync_result sr = {0};
            cml_diag d = {{0}};
            CHECK_OK(cml_blob_store_ensure_local(r[i].store, CML_MODEL_CLASSIC, r[i].dir,
                                                 r[i].res.pointer_etag, &sr, &d),
                     d);
            CHECK(sr.status == CML_BLOB_SYNC_NOT_MODIFIED, "round %d: instance %d in sync: %s",
                  round, i, cml_blob_sync_status_name(sr.status));
            cml_blob_sync_result_release(&sr);
        }
        /* A third instance starting later adopts it as well. */
        if (round == 0) {
            char dir3[600];
            cml_blob_publish_result r3;
            cml_diag d = {{0}};
            snprintf(dir3, sizeof dir3, "%s/race-late", work);
            CHECK(derive(model, dir3, "20260301T000000Z", true, NULL, 0), "derive late");
            CHECK_OK(cml_blob_store_publish_if_absent(r[0].store, CML_MODEL_CLASSIC, dir3, NULL,
                                                      &r3, &d),
                     d);
            CHECK(r3.adopted && strcmp(r3.version, r[w].version) == 0, "late instance adopted");
        }
        for (int i = 0; i < 2; i++)
            cml_blob_store_free(r[i].store);
    }
    printf("race: instance a won %d, instance b won %d of %d rounds; the loser lost the "
           "conditional create (409/412) in %d rounds, found the pointer in the others\n",
           wins_a, wins_b, rounds, lost_writes);
    CHECK(lost_writes >= 1, "the lost conditional create was exercised");
    printf("race: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

/* ---- a model published by someone else ----------------------------------------------------------
 */

static int mode_ensure(const char *conn, const char *container, const char *type_name,
                       const char *dir, const char *version) {
    cml_diag d = {{0}};
    cml_blob_sync_result sr = {0};
    cml_model_type type;
    CHECK(cml_model_type_parse(type_name, &type) == CML_OK, "type %s", type_name);
    cml_blob_store *s = open_store(conn, container);
    if (s == NULL)
        return 1;
    CHECK_OK(cml_blob_store_ensure_local(s, type, dir, NULL, &sr, &d), d);
    CHECK(sr.status == CML_BLOB_SYNC_DOWNLOADED && strcmp(sr.version, version) == 0,
          "downloaded %s: %s %s", version, cml_blob_sync_status_name(sr.status), sr.version);
    CHECK(sr.model != NULL && sr.model->type == type, "verified model");
    CHECK(latest_is(dir, type_name, version), "local latest points at %s", version);
    char etag[CML_BLOB_ETAG_MAX];
    snprintf(etag, sizeof etag, "%s", sr.etag);
    cml_blob_sync_result_release(&sr);
    CHECK_OK(cml_blob_store_ensure_local(s, type, dir, etag, &sr, &d), d);
    CHECK(sr.status == CML_BLOB_SYNC_NOT_MODIFIED, "then not modified");
    cml_blob_sync_result_release(&sr);
    cml_blob_version *v = NULL;
    size_t n = 0;
    char latest[CML_VERSION_MAX];
    CHECK_OK(cml_blob_store_list_versions(s, type, true, &v, &n, latest, &d), d);
    CHECK(n == 1 && v[0].latest && strcmp(v[0].version, version) == 0 && v[0].sha256[0],
          "listed with its hash");
    cml_free(v);
    cml_blob_store_free(s);
    printf("ensure: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s store|corrupt|race|ensure|derive ARGS...\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    if (strcmp(mode, "derive") == 0 && argc == 5)
        return derive(argv[2], argv[3], argv[4], false, NULL, 0) ? 0 : 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = 2;
    if (strcmp(mode, "store") == 0 && argc == 5)
        rc = mode_store(argv[2], argv[3], argv[4]);
    else if (strcmp(mode, "corrupt") == 0 && argc == 5)
        rc = mode_corrupt(argv[2], argv[3], argv[4]);
    else if (strcmp(mode, "race") == 0 && argc == 5)
        rc = mode_race(argv[2], argv[3], argv[4]);
    else if (strcmp(mode, "ensure") == 0 && argc == 7)
        rc = mode_ensure(argv[2], argv[3], argv[4], argv[5], argv[6]);
    else
        fprintf(stderr, "%s: bad mode or arguments\n", argv[0]);
    curl_global_cleanup();
    return rc;
}
