/* The blob model store: opening it, the helpers its files share, listing, deleting and pruning
 * versions, training data. */
#include "config.h"

#include "azure/blob_store_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cml_alloc.h"
#include "model/model_file.h"
#include "base/sha256.h"
#include "base/file_io.h"

/* ---- small helpers ------------------------------------------------------------------ */

void bs_copy_str(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src ? src : "");
}

void bs_store_log(const cml_blob_store *s, const char *fmt, ...) {
    if (s == NULL || s->log == NULL)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->log(s->log_ctx, line);
}

/*
 * The client's log lines, forwarded to the caller's callback except those
 * about 404, 409 and 412 answers: the store expects them (first start,
 * immutable versions, conditional writes) and reports them by its results.
 */
static void client_log(void *ctx, const char *line) {
    const cml_blob_store *s = ctx;
    if (strstr(line, "[not_found]") != NULL || strstr(line, "[conflict]") != NULL)
        return;
    s->log(s->log_ctx, line);
}

bool bs_type_known(cml_model_type t) { return t == CML_MODEL_CLASSIC || t == CML_MODEL_ENSEMBLE; }

/* True for 64 hex digits. */
bool bs_sha_hex_ok(const char *s) {
    size_t n = 0;
    if (s == NULL)
        return false;
    for (; s[n]; n++)
        if (!isxdigit((unsigned char)s[n]))
            return false;
    return n == 64;
}

bool bs_blob_name_ok(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 1024 || s[n - 1] == '/' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
            return false;
    const char *seg = s;
    while (seg != NULL) {
        size_t len = strcspn(seg, "/");
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        seg = seg[len] ? seg + len + 1 : NULL;
    }
    return true;
}

/* ---- local files ------------------------------------------------------------------------- */

/* Writes buf to path (inside dir, created when missing) through a temporary file and rename. */
cml_err bs_write_local(const char *dir, const char *path, const void *buf, size_t len,
                       cml_diag *diag) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return cml_diag_set(diag, CML_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    return cml_write_file_atomic(path, buf, len, diag);
}

/* True when path is a file whose SHA-256 is sha (hex). */
bool bs_local_has(const char *path, const char *sha) {
    uint8_t *buf = NULL;
    size_t len = 0;
    char hex[65];
    if (cml_read_file(path, CML_MODEL_MAX_FILE_BYTES, &buf, &len, NULL) != CML_OK)
        return false;
    cml_sha256_hex(buf, len, hex);
    cml_free(buf);
    return strcasecmp(hex, sha) == 0;
}

/* Points dir/TYPE_latest.model at version unless it already does. */
cml_err bs_point_local(const char *dir, cml_model_type type, const char *version, cml_diag *diag) {
    char cur[CML_VERSION_MAX];
    const char *tn = cml_model_type_name(type);
    if (cml_local_store_latest(dir, tn, cur) == CML_OK && strcmp(cur, version) == 0)
        return CML_OK;
    return cml_local_store_point_latest(dir, tn, version, diag);
}

/* Reads a model file whole and checks it deserialises; *m has one reference. */
cml_err bs_read_model_file(const char *path, uint8_t **buf, size_t *len, cml_model **m,
                           char sha[65], cml_diag *diag) {
    cml_err err = cml_read_file(path, CML_MODEL_MAX_FILE_BYTES, buf, len, diag);
    if (err != CML_OK)
        return err;
    err = cml_model_deserialize(*buf, *len, m, diag);
    if (err != CML_OK) {
        cml_free(*buf);
        *buf = NULL;
        *len = 0;
        return err;
    }
    if (!bs_type_known((*m)->type) || !cml_version_valid((*m)->version)) {
        cml_model_release(*m);
        *m = NULL;
        cml_free(*buf);
        *buf = NULL;
        *len = 0;
        return cml_diag_set(diag, CML_ERR_FORMAT, "%s: model without a valid type or version",
                            path);
    }
    cml_sha256_hex(*buf, *len, sha);
    return CML_OK;
}

/* ---- opening ------------------------------------------------------------------------------ */

void cml_blob_store_options_init(cml_blob_store_options *opts) {
    memset(opts, 0, sizeof(*opts));
    opts->create_container = true;
    cml_blob_options_init(&opts->client);
}

void cml_blob_store_free(cml_blob_store *s) {
    if (s == NULL)
        return;
    cml_blob_client_free(s->client);
    cml_free(s->container);
    for (size_t i = 0; i < CML_MODEL__COUNT; i++)
        cml_free(s->pointer[i]);
    cml_free(s);
}

static bool container_name_ok(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n < 3 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!(islower(ch) || isdigit(ch) || ch == '-') || (ch == '-' && s[i + 1] == '-'))
            return false;
    }
    return true;
}

cml_err cml_blob_store_open(const cml_blob_store_options *opts, cml_blob_store **out,
                            cml_diag *diag) {
    cml_err err = CML_OK;
    cml_blob_store *s = NULL;
    *out = NULL;
    if (opts == NULL || opts->connection_string == NULL || opts->connection_string[0] == '\0') {
        err = cml_diag_set(diag, CML_ERR_CONFIG, "blob store: no connection string");
        goto done;
    }
    const char *container = opts->container ? opts->container : CML_BLOB_STORE_DEFAULT_CONTAINER;
    const char *ens =
        opts->ensemble_pointer ? opts->ensemble_pointer : CML_BLOB_STORE_ENSEMBLE_POINTER;
    const char *cla =
        opts->classic_pointer ? opts->classic_pointer : CML_BLOB_STORE_CLASSIC_POINTER;
    if (!container_name_ok(container)) {
        err = cml_diag_set(diag, CML_ERR_CONFIG,
                           "blob store: invalid container name '%.64s' (3 to 63 lower-case "
                           "letters, digits and single hyphens)",
                           container);
        goto done;
    }
    if (!cml_blob_store_pointer_name_ok(ens) || !cml_blob_store_pointer_name_ok(cla)) {
        err = cml_diag_set(diag, CML_ERR_CONFIG, "blob store: invalid %s pointer name",
                           cml_blob_store_pointer_name_ok(ens) ? "classic" : "ensemble");
        goto done;
    }
    if (strcmp(ens, cla) == 0) {
        err = cml_diag_set(diag, CML_ERR_CONFIG,
                           "blob store: the classic and ensemble pointers have the same name");
        goto done;
    }
    s = cml_calloc(1, sizeof(*s));
    if (s == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    s->container = cml_strdup(container);
    s->pointer[CML_MODEL_CLASSIC] = cml_strdup(cla);
    s->pointer[CML_MODEL_ENSEMBLE] = cml_strdup(ens);
    if (s->container == NULL || s->pointer[CML_MODEL_CLASSIC] == NULL ||
        s->pointer[CML_MODEL_ENSEMBLE] == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    s->log = opts->client.log;
    s->log_ctx = opts->client.log_ctx;
    cml_blob_options co = opts->client;
    co.log = s->log ? client_log : NULL;
    co.log_ctx = s;
    err = cml_blob_client_from_string(opts->connection_string, &co, &s->client, diag);
    if (err != CML_OK)
        goto done;
    if (opts->create_container) {
        bool created = false;
        err = cml_blob_create_container(s->client, s->container, &created, diag);
        if (err != CML_OK)
            goto done;
        if (created)
            bs_store_log(s, "blob store: created container %s", s->container);
    }
    *out = s;
    s = NULL;
done:
    cml_blob_store_free(s);
    return err;
}

cml_blob_client *cml_blob_store_client(cml_blob_store *s) { return s ? s->client : NULL; }

cml_blob_stats *cml_blob_store_stats(cml_blob_store *s) {
    return s ? cml_blob_client_stats(s->client) : NULL;
}

const char *cml_blob_store_container(const cml_blob_store *s) { return s ? s->container : NULL; }

const char *cml_blob_store_pointer(const cml_blob_store *s, cml_model_type type) {
    return s != NULL && bs_type_known(type) ? s->pointer[type] : NULL;
}

/* ---- versions ------------------------------------------------------------------------------- */

static int cmp_version_desc(const void *a, const void *b) {
    return -strcmp(((const cml_blob_version *)a)->version, ((const cml_blob_version *)b)->version);
}

cml_err cml_blob_store_list_versions(cml_blob_store *s, cml_model_type type, bool with_sha256,
                                     cml_blob_version **out, size_t *n,
                                     char latest[CML_VERSION_MAX], cml_diag *diag) {
    cml_err err = CML_OK;
    cml_blob_list l = {0};
    cml_blob_props p = {0};
    cml_blob_version *v = NULL;
    size_t k = 0;
    char prefix[32], ptr_version[CML_VERSION_MAX] = "", ptr_sha[65] = "";
    *out = NULL;
    *n = 0;
    if (latest != NULL)
        latest[0] = '\0';
    if (s == NULL || !bs_type_known(type))
        return cml_diag_set(diag, CML_ERR_INVALID, "list_versions: bad arguments");
    snprintf(prefix, sizeof prefix, "%s/", cml_model_type_name(type));
    err = cml_blob_list_blobs(s->client, s->container, prefix, &l, diag);
    if (err != CML_OK)
        goto done;
    err = cml_blob_head(s->client, s->container, s->pointer[type], &p, diag);
    if (err == CML_OK) {
        const char *pv = cml_blob_props_meta(&p, CML_BLOB_META_VERSION);
        const char *ph = cml_blob_props_meta(&p, CML_BLOB_META_SHA256);
        bs_copy_str(ptr_version, sizeof ptr_version, pv && cml_version_valid(pv) ? pv : "");
        bs_copy_str(ptr_sha, sizeof ptr_sha, ph && bs_sha_hex_ok(ph) ? ph : "");
    } else if (err != CML_ERR_NOT_FOUND) {
        goto done;
    }
    err = CML_OK;
    if (l.n > 0) {
        v = cml_calloc(l.n, sizeof(*v));
        if (v == NULL) {
            err = CML_ERR_NOMEM;
            goto done;
        }
    }
    for (size_t i = 0; i < l.n; i++) {
        cml_model_type t;
        cml_blob_version *e = &v[k];
        if (!cml_blob_store_parse_version_name(l.items[i].name, &t, e->version) || t != type)
            continue;
        e->bytes = l.items[i].length;
        bs_copy_str(e->etag, sizeof e->etag, l.items[i].etag);
        bs_copy_str(e->last_modified, sizeof e->last_modified, l.items[i].last_modified);
        if (with_sha256) {
            cml_blob_props vp = {0};
            cml_err e2 = cml_blob_head(s->client, s->container, l.items[i].name, &vp, diag);
            if (e2 == CML_ERR_NOT_FOUND) {
                cml_blob_props_release(&vp);
                continue; /* deleted since the listing */
            }
            if (e2 != CML_OK) {
                err = e2;
                cml_blob_props_release(&vp);
                goto done;
            }
            const char *h = cml_blob_props_meta(&vp, CML_BLOB_META_SHA256);
            bs_copy_str(e->sha256, sizeof e->sha256, h && bs_sha_hex_ok(h) ? h : "");
            cml_blob_props_release(&vp);
        }
        e->latest = ptr_version[0] != '\0' && strcmp(e->version, ptr_version) == 0;
        if (ptr_version[0] == '\0' && ptr_sha[0] != '\0' && e->sha256[0] != '\0')
            e->latest = strcasecmp(e->sha256, ptr_sha) == 0;
        k++;
    }
    if (k > 1)
        qsort(v, k, sizeof(*v), cmp_version_desc);
    if (latest != NULL)
        bs_copy_str(latest, CML_VERSION_MAX, ptr_version);
    *out = k ? v : NULL;
    *n = k;
    if (k)
        v = NULL;
done:
    cml_free(v);
    cml_blob_list_release(&l);
    cml_blob_props_release(&p);
    return err;
}

/* The version active.json pins for a type ("" when none or no active.json). */
static cml_err pinned_version(cml_blob_store *s, cml_model_type type, char pin[CML_VERSION_MAX],
                              cml_diag *diag) {
    cml_selection sel;
    pin[0] = '\0';
    cml_err err = cml_blob_store_read_active(s, NULL, &sel, NULL, NULL, diag);
    if (err == CML_ERR_NOT_FOUND)
        return CML_OK;
    if (err != CML_OK)
        return err;
    bs_copy_str(pin, CML_VERSION_MAX,
                type == CML_MODEL_CLASSIC ? sel.classic_version : sel.ensemble_version);
    return CML_OK;
}

cml_err cml_blob_store_delete_version(cml_blob_store *s, cml_model_type type, const char *version,
                                      cml_diag *diag) {
    cml_err err = CML_OK;
    cml_blob_props p = {0}, vp = {0};
    char name[128], pin[CML_VERSION_MAX];
    if (s == NULL || cml_blob_store_version_name(type, version, name, sizeof name) != CML_OK)
        return cml_diag_set(diag, CML_ERR_INVALID, "delete_version: invalid type or version");
    err = cml_blob_head(s->client, s->container, name, &vp, diag);
    if (err != CML_OK)
        goto done;
    err = cml_blob_head(s->client, s->container, s->pointer[type], &p, diag);
    if (err == CML_OK) {
        const char *pv = cml_blob_props_meta(&p, CML_BLOB_META_VERSION);
        const char *ph = cml_blob_props_meta(&p, CML_BLOB_META_SHA256);
        const char *vh = cml_blob_props_meta(&vp, CML_BLOB_META_SHA256);
        if ((pv != NULL && strcmp(pv, version) == 0) ||
            (pv == NULL && ph != NULL && vh != NULL && strcasecmp(ph, vh) == 0)) {
            err = cml_diag_set(diag, CML_ERR_CONFLICT, "%s names %s %s: not deleted",
                               s->pointer[type], cml_model_type_name(type), version);
            goto done;
        }
    } else if (err != CML_ERR_NOT_FOUND) {
        goto done;
    }
    err = pinned_version(s, type, pin, diag);
    if (err != CML_OK)
        goto done;
    if (strcmp(pin, version) == 0) {
        err = cml_diag_set(diag, CML_ERR_CONFLICT, "%s pins %s %s: not deleted",
                           CML_BLOB_STORE_ACTIVE, cml_model_type_name(type), version);
        goto done;
    }
    err = cml_blob_delete(s->client, s->container, name, NULL, diag);
    if (err == CML_OK)
        bs_store_log(s, "blob store: deleted %s/%s", s->container, name);
done:
    cml_blob_props_release(&p);
    cml_blob_props_release(&vp);
    return err;
}

cml_err cml_blob_store_prune(cml_blob_store *s, cml_model_type type, size_t retain, size_t *deleted,
                             cml_diag *diag) {
    cml_blob_version *v = NULL;
    size_t n = 0, gone = 0;
    char latest[CML_VERSION_MAX], pin[CML_VERSION_MAX];
    if (deleted != NULL)
        *deleted = 0;
    if (retain < 1)
        retain = 1;
    cml_err err = cml_blob_store_list_versions(s, type, false, &v, &n, latest, diag);
    if (err == CML_OK)
        err = pinned_version(s, type, pin, diag);
    for (size_t i = retain; err == CML_OK && i < n; i++) {
        if (v[i].latest || strcmp(v[i].version, latest) == 0 || strcmp(v[i].version, pin) == 0)
            continue;
        cml_diag d2 = {{0}};
        cml_err e2 = cml_blob_store_delete_version(s, type, v[i].version, &d2);
        if (e2 == CML_OK)
            gone++;
        else if (e2 != CML_ERR_NOT_FOUND && e2 != CML_ERR_CONFLICT) {
            err = e2;
            if (diag != NULL)
                *diag = d2;
        }
    }
    if (deleted != NULL)
        *deleted = gone;
    cml_free(v);
    return err;
}

/* ---- training data -------------------------------------------------------------------------- */

/* Streams the SHA-256 of a file into hex[65]. */
static cml_err file_sha256(const char *path, char hex[65], cml_diag *diag) {
    cml_err err = CML_OK;
    uint8_t buf[65536];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = cml_diag_set(diag, errno == ENOENT ? CML_ERR_NOT_FOUND : CML_ERR_IO,
                           "cannot open %s: %s", path, strerror(errno));
        goto done;
    }
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = cml_diag_set(diag, CML_ERR_IO, "cannot read %s: %s", path, strerror(errno));
            goto done;
        }
        if (r == 0)
            break;
        EVP_DigestUpdate(ctx, buf, (size_t)r);
    }
    if (EVP_DigestFinal_ex(ctx, md, &md_len) != 1 || md_len != 32) {
        err = CML_ERR_INTERNAL;
        goto done;
    }
    for (unsigned i = 0; i < md_len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
done:
    if (fd >= 0)
        close(fd);
    EVP_MD_CTX_free(ctx);
    return err;
}

cml_err cml_blob_store_put_training_data(cml_blob_store *s, const char *path, size_t rows,
                                         char sha256_out[65], cml_diag *diag) {
    char hex[65], rows_text[32];
    if (sha256_out != NULL)
        sha256_out[0] = '\0';
    if (s == NULL || path == NULL)
        return cml_diag_set(diag, CML_ERR_INVALID, "put_training_data: bad arguments");
    cml_err err = file_sha256(path, hex, diag);
    if (err != CML_OK)
        return err;
    snprintf(rows_text, sizeof rows_text, "%zu", rows);
    cml_blob_meta meta[1] = {{.name = CML_BLOB_META_ROWS, .value = rows_text}};
    cml_blob_put_options po = {
        .content_type = "text/csv", .add_sha256 = true, .meta = meta, .n_meta = 1};
    err = cml_blob_put_file(s->client, s->container, CML_BLOB_STORE_TRAINING_DATA, path, &po, NULL,
                            diag);
    if (err == CML_OK && sha256_out != NULL)
        bs_copy_str(sha256_out, 65, hex);
    return err;
}

cml_err cml_blob_store_get_training_data(cml_blob_store *s, const char *path, char sha256_out[65],
                                         size_t *rows, cml_diag *diag) {
    cml_err err = CML_OK;
    cml_blob_props p = {0}, gp = {0};
    if (sha256_out != NULL)
        sha256_out[0] = '\0';
    if (rows != NULL)
        *rows = 0;
    if (s == NULL || path == NULL)
        return cml_diag_set(diag, CML_ERR_INVALID, "get_training_data: bad arguments");
    err = cml_blob_head(s->client, s->container, CML_BLOB_STORE_TRAINING_DATA, &p, diag);
    if (err != CML_OK)
        goto done;
    const char *sha = cml_blob_props_meta(&p, CML_BLOB_META_SHA256);
    if (!bs_sha_hex_ok(sha)) {
        err = cml_diag_set(diag, CML_ERR_CHECKSUM, "%s/%s: no valid sha256 metadata", s->container,
                           CML_BLOB_STORE_TRAINING_DATA);
        goto done;
    }
    cml_blob_get_options go = {.if_match = p.etag, .verify_sha256 = true};
    err = cml_blob_get_file(s->client, s->container, CML_BLOB_STORE_TRAINING_DATA, path, &go, &gp,
                            diag);
    if (err != CML_OK)
        goto done;
    if (sha256_out != NULL)
        bs_copy_str(sha256_out, 65, sha);
    const char *r = cml_blob_props_meta(&gp, CML_BLOB_META_ROWS);
    if (rows != NULL && r != NULL) {
        char *end;
        unsigned long long x = strtoull(r, &end, 10);
        if (*end == '\0' && r[0] != '-')
            *rows = (size_t)x;
    }
done:
    cml_blob_props_release(&p);
    cml_blob_props_release(&gp);
    return err;
}
