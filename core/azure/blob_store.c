/* The blob model store (see blob_store.h). */
#include "config.h"

#include "azure/blob_store.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cml_alloc.h"
#include "model/model_file.h"
#include "base/sha256.h"
#include "base/file_io.h"

/* Attempts of loops that restart when a blob moves under them. */
#define SYNC_ATTEMPTS 3
#define ACTIVE_ATTEMPTS 5
#define PUBLISH_ATTEMPTS 3
/* Largest training data file uploaded or hashed. */
#define TRAINING_DATA_MAX ((size_t)2 << 30)

struct cml_blob_store {
    cml_blob_client *client;         /* owned */
    char *container;                 /* owned */
    char *pointer[CML_MODEL__COUNT]; /* owned, indexed by cml_model_type */
    cml_blob_log_fn log;             /* the client's log callback, for the store's own lines */
    void *log_ctx;
};

/* ---- small helpers ------------------------------------------------------------------ */

static void copy_str(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src ? src : "");
}

static void store_log(const cml_blob_store *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void store_log(const cml_blob_store *s, const char *fmt, ...) {
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

static bool type_known(cml_model_type t) {
    return t == CML_MODEL_CLASSIC || t == CML_MODEL_ENSEMBLE;
}

/* True for 64 hex digits. */
static bool sha_hex_ok(const char *s) {
    size_t n = 0;
    if (s == NULL)
        return false;
    for (; s[n]; n++)
        if (!isxdigit((unsigned char)s[n]))
            return false;
    return n == 64;
}

static bool blob_name_ok(const char *s) {
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

/* ---- names ------------------------------------------------------------------------------ */

cml_err cml_blob_store_version_name(cml_model_type type, const char *version, char *buf,
                                    size_t cap) {
    if (buf != NULL && cap > 0)
        buf[0] = '\0';
    if (!type_known(type) || !cml_version_valid(version) || buf == NULL)
        return CML_ERR_INVALID;
    int n = snprintf(buf, cap, "%s/%s.model", cml_model_type_name(type), version);
    if (n < 0 || (size_t)n >= cap) {
        buf[0] = '\0';
        return CML_ERR_NOMEM;
    }
    return CML_OK;
}

bool cml_blob_store_parse_version_name(const char *name, cml_model_type *type,
                                       char version[CML_VERSION_MAX]) {
    if (name == NULL)
        return false;
    const char *slash = strchr(name, '/');
    if (slash == NULL)
        return false;
    char tname[16];
    size_t tl = (size_t)(slash - name);
    if (tl == 0 || tl >= sizeof tname)
        return false;
    memcpy(tname, name, tl);
    tname[tl] = '\0';
    cml_model_type t;
    if (cml_model_type_parse(tname, &t) != CML_OK)
        return false;
    const char *v = slash + 1;
    size_t vl = strlen(v);
    if (vl <= 6 || strcmp(v + vl - 6, ".model") != 0 || vl - 6 >= CML_VERSION_MAX)
        return false;
    char ver[CML_VERSION_MAX];
    memcpy(ver, v, vl - 6);
    ver[vl - 6] = '\0';
    if (!cml_version_valid(ver) || strcmp(ver, "latest") == 0)
        return false;
    if (type != NULL)
        *type = t;
    if (version != NULL)
        memcpy(version, ver, CML_VERSION_MAX);
    return true;
}

bool cml_blob_store_pointer_name_ok(const char *name) {
    if (!blob_name_ok(name))
        return false;
    if (strcmp(name, CML_BLOB_STORE_ACTIVE) == 0 || strcmp(name, CML_BLOB_STORE_TRAINING_DATA) == 0)
        return false;
    if (strncmp(name, "classic/", 8) == 0 || strncmp(name, "ensemble/", 9) == 0)
        return false;
    return true;
}

/* ---- active.json ------------------------------------------------------------------------ */

/* The value of n decimal digits (already checked to be digits). */
static int digits(const char *s, int n) {
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* ISO 8601 UTC ("2026-11-26T05:30:12Z", optional fraction, Z / +00:00 / nothing). */
static bool parse_iso_utc(const char *s, int64_t *out) {
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (strlen(s) < 19 || !isdigit((unsigned char)s[0]) || s[4] != '-' || s[7] != '-' ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
        return false;
    for (size_t i = 0; i < 19; i++)
        if (i != 4 && i != 7 && i != 10 && i != 13 && i != 16 && !isdigit((unsigned char)s[i]))
            return false;
    tm.tm_year = digits(s, 4) - 1900;
    tm.tm_mon = digits(s + 5, 2) - 1;
    tm.tm_mday = digits(s + 8, 2);
    tm.tm_hour = digits(s + 11, 2);
    tm.tm_min = digits(s + 14, 2);
    tm.tm_sec = digits(s + 17, 2);
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return false;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'Z' || *p == 'z')
        p++;
    else if (strncmp(p, "+00:00", 6) == 0)
        p += 6;
    if (*p != '\0')
        return false;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || t < 0)
        return false;
    *out = (int64_t)t;
    return true;
}

/* A version field: absent or null -> "", else a string "" or a valid version. */
static bool parse_version_field(json_object *root, const char *key, char out[40]) {
    json_object *v;
    out[0] = '\0';
    if (!json_object_object_get_ex(root, key, &v) || v == NULL)
        return true;
    if (!json_object_is_type(v, json_type_string))
        return false;
    const char *s = json_object_get_string(v);
    if (s[0] != '\0' && !cml_version_valid(s))
        return false;
    copy_str(out, 40, s);
    return true;
}

cml_err cml_blob_active_parse(const char *text, size_t len, cml_selection *out, cml_diag *diag) {
    cml_err err = CML_OK;
    json_tokener *tok = NULL;
    json_object *root = NULL, *v = NULL;
    memset(out, 0, sizeof(*out));
    if (text == NULL || len == 0) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "active.json is empty");
        goto done;
    }
    if (len > CML_BLOB_ACTIVE_MAX_BYTES) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "active.json is larger than %zu bytes",
                           CML_BLOB_ACTIVE_MAX_BYTES);
        goto done;
    }
    if (memchr(text, '\0', len) != NULL) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "active.json contains a NUL byte");
        goto done;
    }
    tok = json_tokener_new();
    if (tok == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    root = json_tokener_parse_ex(tok, text, (int)len);
    if (root == NULL || json_tokener_get_error(tok) != json_tokener_success) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "active.json is not valid JSON: %s",
                           json_tokener_error_desc(json_tokener_get_error(tok)));
        goto done;
    }
    for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
        if (!isspace((unsigned char)text[i])) {
            err = cml_diag_set(diag, CML_ERR_FORMAT, "active.json has data after the object");
            goto done;
        }
    if (!json_object_is_type(root, json_type_object)) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "active.json is not a JSON object");
        goto done;
    }
    cml_model_type t;
    if (!json_object_object_get_ex(root, "active_type", &v) ||
        !json_object_is_type(v, json_type_string) ||
        cml_model_type_parse(json_object_get_string(v), &t) != CML_OK) {
        err = cml_diag_set(diag, CML_ERR_FORMAT,
                           "active.json: active_type must be \"classic\" or \"ensemble\"");
        goto done;
    }
    copy_str(out->active_type, sizeof out->active_type, cml_model_type_name(t));
    if (!parse_version_field(root, "classic_version", out->classic_version)) {
        err = cml_diag_set(diag, CML_ERR_FORMAT,
                           "active.json: classic_version must be \"\" or a valid version");
        goto done;
    }
    if (!parse_version_field(root, "ensemble_version", out->ensemble_version)) {
        err = cml_diag_set(diag, CML_ERR_FORMAT,
                           "active.json: ensemble_version must be \"\" or a valid version");
        goto done;
    }
    if (json_object_object_get_ex(root, "updated_at", &v) && v != NULL) {
        int64_t at = -1;
        if (json_object_is_type(v, json_type_int)) {
            errno = 0;
            at = json_object_get_int64(v);
            if (errno != 0)
                at = -1;
        } else if (json_object_is_type(v, json_type_string)) {
            if (!parse_iso_utc(json_object_get_string(v), &at))
                at = -1;
        }
        if (at < 0) {
            err = cml_diag_set(diag, CML_ERR_FORMAT,
                               "active.json: updated_at must be Unix seconds or an ISO 8601 "
                               "UTC time");
            goto done;
        }
        out->updated_at = at;
    }
done:
    if (err != CML_OK)
        memset(out, 0, sizeof(*out));
    json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    return err;
}

static bool selection_valid(const cml_selection *sel, cml_diag *diag) {
    cml_model_type t;
    if (sel == NULL || memchr(sel->active_type, '\0', sizeof sel->active_type) == NULL ||
        cml_model_type_parse(sel->active_type, &t) != CML_OK) {
        cml_diag_set(diag, CML_ERR_INVALID, "selection: active_type must be classic or ensemble");
        return false;
    }
    for (cml_model_type m = CML_MODEL_CLASSIC; m < CML_MODEL__COUNT; m++) {
        const char *v = m == CML_MODEL_CLASSIC ? sel->classic_version : sel->ensemble_version;
        if (memchr(v, '\0', 40) == NULL || (v[0] != '\0' && !cml_version_valid(v))) {
            cml_diag_set(diag, CML_ERR_INVALID, "selection: invalid %s version",
                         cml_model_type_name(m));
            return false;
        }
    }
    if (sel->updated_at < 0) {
        cml_diag_set(diag, CML_ERR_INVALID, "selection: negative updated_at");
        return false;
    }
    return true;
}

cml_err cml_blob_active_format(const cml_selection *sel, char **out, cml_diag *diag) {
    cml_err err = CML_OK;
    json_object *o = NULL;
    *out = NULL;
    if (!selection_valid(sel, diag))
        return CML_ERR_INVALID;
    char when[32];
    time_t t = (time_t)sel->updated_at;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return cml_diag_set(diag, CML_ERR_INVALID, "selection: updated_at out of range");
    o = json_object_new_object();
    if (o == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    json_object_object_add(o, "active_type", json_object_new_string(sel->active_type));
    json_object_object_add(o, "classic_version", json_object_new_string(sel->classic_version));
    json_object_object_add(o, "ensemble_version", json_object_new_string(sel->ensemble_version));
    json_object_object_add(o, "updated_at", json_object_new_string(when));
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    *out = text ? cml_strdup(text) : NULL;
    if (*out == NULL)
        err = CML_ERR_NOMEM;
done:
    json_object_put(o);
    return err;
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
            store_log(s, "blob store: created container %s", s->container);
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
    return s != NULL && type_known(type) ? s->pointer[type] : NULL;
}

/* ---- local files ------------------------------------------------------------------------- */

/* Writes buf to path (inside dir, created when missing) through a temporary file and rename. */
static cml_err write_local(const char *dir, const char *path, const void *buf, size_t len,
                           cml_diag *diag) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return cml_diag_set(diag, CML_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    return cml_write_file_atomic(path, buf, len, diag);
}

/* True when path is a file whose SHA-256 is sha (hex). */
static bool local_has(const char *path, const char *sha) {
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
static cml_err point_local(const char *dir, cml_model_type type, const char *version,
                           cml_diag *diag) {
    char cur[CML_VERSION_MAX];
    const char *tn = cml_model_type_name(type);
    if (cml_local_store_latest(dir, tn, cur) == CML_OK && strcmp(cur, version) == 0)
        return CML_OK;
    return cml_local_store_point_latest(dir, tn, version, diag);
}

/* Reads a model file whole and checks it deserialises; *m has one reference. */
static cml_err read_model_file(const char *path, uint8_t **buf, size_t *len, cml_model **m,
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
    if (!type_known((*m)->type) || !cml_version_valid((*m)->version)) {
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

/* ---- publishing ------------------------------------------------------------------------------ */

static void model_meta(const cml_model *m, cml_blob_meta meta[2]) {
    meta[0] = (cml_blob_meta){.name = CML_BLOB_META_VERSION, .value = (char *)m->version};
    meta[1] = (cml_blob_meta){.name = CML_BLOB_META_MODEL_TYPE,
                              .value = (char *)cml_model_type_name(m->type)};
}

/* Puts TYPE/VERSION.model (If-None-Match: *); an identical existing blob is success. */
static cml_err put_version(cml_blob_store *s, const uint8_t *buf, size_t len, const cml_model *m,
                           const char *sha, bool *existed, cml_diag *diag) {
    char name[128];
    cml_blob_meta meta[2];
    cml_blob_props p = {0};
    *existed = false;
    cml_err err = cml_blob_store_version_name(m->type, m->version, name, sizeof name);
    if (err != CML_OK)
        return cml_diag_set(diag, err, "model version '%s' cannot name a blob", m->version);
    model_meta(m, meta);
    cml_blob_put_options po = {.content_type = CML_BLOB_MODEL_CONTENT_TYPE,
                               .if_none_match_any = true,
                               .add_sha256 = true,
                               .meta = meta,
                               .n_meta = 2};
    err = cml_blob_put(s->client, s->container, name, buf, len, &po, NULL, diag);
    if (err == CML_ERR_CONFLICT) {
        /* Already there: the same content is success (a retry, or another instance). */
        err = cml_blob_head(s->client, s->container, name, &p, diag);
        if (err == CML_OK) {
            const char *have = cml_blob_props_meta(&p, CML_BLOB_META_SHA256);
            if (have != NULL && strcasecmp(have, sha) == 0) {
                *existed = true;
            } else {
                err = cml_diag_set(diag, CML_ERR_CONFLICT,
                                   "%s/%s exists with other content (versions are immutable)",
                                   s->container, name);
            }
        }
    }
    cml_blob_props_release(&p);
    return err;
}

/*
 * Writes the pointer of m's type as a copy of buf, conditionally (if_match,
 * or If-None-Match: * when if_none). A lost condition is success when the
 * pointer names this very version and content (a retried request that had
 * succeeded). etag_out gets the pointer's ETag.
 */
static cml_err put_pointer(cml_blob_store *s, const uint8_t *buf, size_t len, const cml_model *m,
                           const char *sha, const char *if_match, bool if_none,
                           char etag_out[CML_BLOB_ETAG_MAX], cml_diag *diag) {
    cml_blob_meta meta[2];
    cml_blob_props p = {0};
    const char *pointer = s->pointer[m->type];
    model_meta(m, meta);
    cml_blob_put_options po = {.content_type = CML_BLOB_MODEL_CONTENT_TYPE,
                               .if_match = if_match,
                               .if_none_match_any = if_none,
                               .add_sha256 = true,
                               .meta = meta,
                               .n_meta = 2};
    cml_err err = cml_blob_put(s->client, s->container, pointer, buf, len, &po, &p, diag);
    if (err == CML_OK) {
        copy_str(etag_out, CML_BLOB_ETAG_MAX, p.etag);
    } else if (err == CML_ERR_CONFLICT) {
        cml_diag d2 = {{0}};
        if (cml_blob_head(s->client, s->container, pointer, &p, &d2) == CML_OK) {
            const char *v = cml_blob_props_meta(&p, CML_BLOB_META_VERSION);
            const char *h = cml_blob_props_meta(&p, CML_BLOB_META_SHA256);
            if (v != NULL && h != NULL && strcmp(v, m->version) == 0 && strcasecmp(h, sha) == 0) {
                copy_str(etag_out, CML_BLOB_ETAG_MAX, p.etag);
                err = CML_OK;
            }
        }
        if (err != CML_OK)
            cml_diag_set(diag, CML_ERR_CONFLICT,
                         "%s/%s was moved by someone else (conditional write lost)", s->container,
                         pointer);
    }
    cml_blob_props_release(&p);
    return err;
}

static void publish_result_fill(cml_blob_publish_result *res, const cml_model *m, const char *sha,
                                size_t len) {
    res->type = m->type;
    copy_str(res->version, sizeof res->version, m->version);
    copy_str(res->sha256, sizeof res->sha256, sha);
    res->bytes = len;
}

cml_err cml_blob_store_upload_version(cml_blob_store *s, const char *path,
                                      cml_blob_publish_result *res, cml_diag *diag) {
    cml_err err = CML_OK;
    uint8_t *buf = NULL;
    size_t len = 0;
    cml_model *m = NULL;
    char sha[65];
    cml_blob_publish_result local;
    if (res == NULL)
        res = &local;
    memset(res, 0, sizeof(*res));
    if (s == NULL || path == NULL) {
        err = cml_diag_set(diag, CML_ERR_INVALID, "upload: no store or no file");
        goto done;
    }
    err = read_model_file(path, &buf, &len, &m, sha, diag);
    if (err != CML_OK)
        goto done;
    publish_result_fill(res, m, sha, len);
    err = put_version(s, buf, len, m, sha, &res->version_existed, diag);
done:
    cml_model_release(m);
    cml_free(buf);
    return err;
}

cml_err cml_blob_store_publish(cml_blob_store *s, const char *path, const char *pointer_etag,
                               cml_blob_publish_result *res, cml_diag *diag) {
    cml_err err = CML_OK;
    uint8_t *buf = NULL;
    size_t len = 0;
    cml_model *m = NULL;
    char sha[65];
    cml_blob_props p = {0};
    cml_blob_publish_result local;
    if (res == NULL)
        res = &local;
    memset(res, 0, sizeof(*res));
    if (s == NULL || path == NULL) {
        err = cml_diag_set(diag, CML_ERR_INVALID, "publish: no store or no file");
        goto done;
    }
    err = read_model_file(path, &buf, &len, &m, sha, diag);
    if (err != CML_OK)
        goto done;
    publish_result_fill(res, m, sha, len);
    err = put_version(s, buf, len, m, sha, &res->version_existed, diag);
    if (err != CML_OK)
        goto done;
    const char *pointer = s->pointer[m->type];
    const char *if_match = pointer_etag;
    bool if_none = false;
    if (pointer_etag == NULL) {
        err = cml_blob_head(s->client, s->container, pointer, &p, diag);
        if (err == CML_ERR_NOT_FOUND) {
            if_none = true;
            err = CML_OK;
        } else if (err != CML_OK) {
            goto done;
        } else {
            const char *v = cml_blob_props_meta(&p, CML_BLOB_META_VERSION);
            const char *h = cml_blob_props_meta(&p, CML_BLOB_META_SHA256);
            if (v != NULL && h != NULL && strcmp(v, m->version) == 0 && strcasecmp(h, sha) == 0) {
                copy_str(res->pointer_etag, sizeof res->pointer_etag, p.etag);
                res->pointer_moved = true;
                goto done;
            }
            if_match = p.etag;
        }
    }
    err = put_pointer(s, buf, len, m, sha, if_match, if_none, res->pointer_etag, diag);
    if (err == CML_OK) {
        res->pointer_moved = true;
        store_log(s, "blob store: %s now names %s %s", pointer, cml_model_type_name(m->type),
                  m->version);
    }
done:
    cml_blob_props_release(&p);
    cml_model_release(m);
    cml_free(buf);
    return err;
}

cml_err cml_blob_store_publish_if_absent(cml_blob_store *s, cml_model_type type, const char *dir,
                                         const char *version, cml_blob_publish_result *res,
                                         cml_diag *diag) {
    cml_err err = CML_OK;
    uint8_t *buf = NULL;
    size_t len = 0;
    cml_model *m = NULL;
    char sha[65] = "", ours[CML_VERSION_MAX] = "", path[4096];
    cml_blob_props p = {0};
    cml_blob_sync_result sr = {0};
    cml_blob_publish_result local;
    if (res == NULL)
        res = &local;
    memset(res, 0, sizeof(*res));
    res->type = type;
    if (s == NULL || dir == NULL || !type_known(type)) {
        err = cml_diag_set(diag, CML_ERR_INVALID, "publish_if_absent: bad arguments");
        goto done;
    }
    const char *tn = cml_model_type_name(type);
    if (version != NULL) {
        if (!cml_version_valid(version)) {
            err = cml_diag_set(diag, CML_ERR_INVALID, "invalid version '%.40s'", version);
            goto done;
        }
        copy_str(ours, sizeof ours, version);
    } else if (cml_local_store_latest(dir, tn, ours) != CML_OK) {
        err = cml_diag_set(diag, CML_ERR_NOT_FOUND, "%s has no %s_latest.model", dir, tn);
        goto done;
    }
    for (int attempt = 0; attempt < PUBLISH_ATTEMPTS; attempt++) {
        cml_blob_sync_result_release(&sr);
        err = cml_blob_head(s->client, s->container, s->pointer[type], &p, diag);
        if (err == CML_ERR_NOT_FOUND) {
            if (m == NULL) {
                cml_local_store_path(dir, tn, ours, path, sizeof path);
                err = read_model_file(path, &buf, &len, &m, sha, diag);
                if (err != CML_OK)
                    goto done;
                if (m->type != type || strcmp(m->version, ours) != 0) {
                    err = cml_diag_set(diag, CML_ERR_INVALID, "%s holds %s %s, not %s %s", path,
                                       cml_model_type_name(m->type), m->version, tn, ours);
                    goto done;
                }
                publish_result_fill(res, m, sha, len);
                err = put_version(s, buf, len, m, sha, &res->version_existed, diag);
                if (err != CML_OK)
                    goto done;
            }
            err = put_pointer(s, buf, len, m, sha, NULL, true, res->pointer_etag, diag);
            if (err == CML_OK) {
                res->pointer_moved = true;
                store_log(s, "blob store: created %s naming %s %s", s->pointer[type], tn, ours);
                goto done;
            }
            if (err != CML_ERR_CONFLICT)
                goto done;
            /* Another instance created it first: adopt its version. */
        } else if (err != CML_OK) {
            goto done;
        }
        err = cml_blob_store_ensure_local(s, type, dir, NULL, &sr, diag);
        if (err != CML_OK)
            goto done;
        if (sr.status == CML_BLOB_SYNC_NO_MODEL)
            continue; /* deleted meanwhile: try to create it again */
        res->type = type;
        copy_str(res->version, sizeof res->version, sr.version);
        copy_str(res->sha256, sizeof res->sha256, sr.sha256);
        copy_str(res->pointer_etag, sizeof res->pointer_etag, sr.etag);
        res->bytes = sr.bytes;
        res->adopted = strcmp(sr.version, ours) != 0;
        res->pointer_moved = !res->adopted;
        if (res->adopted)
            store_log(s, "blob store: %s already names %s %s: adopted", s->pointer[type], tn,
                      sr.version);
        goto done;
    }
    err = cml_diag_set(diag, CML_ERR_CONFLICT, "%s keeps changing", s->pointer[type]);
done:
    cml_blob_sync_result_release(&sr);
    cml_blob_props_release(&p);
    cml_model_release(m);
    cml_free(buf);
    return err;
}

/* ---- syncing --------------------------------------------------------------------------------- */

const char *cml_blob_sync_status_name(cml_blob_sync_status st) {
    switch (st) {
    case CML_BLOB_SYNC_NOT_MODIFIED:
        return "not_modified";
    case CML_BLOB_SYNC_PRESENT:
        return "present";
    case CML_BLOB_SYNC_DOWNLOADED:
        return "downloaded";
    case CML_BLOB_SYNC_NO_MODEL:
        return "no_model";
    }
    return "unknown";
}

void cml_blob_sync_result_release(cml_blob_sync_result *res) {
    if (res == NULL)
        return;
    cml_model_release(res->model);
    memset(res, 0, sizeof(*res));
}

/*
 * Verifies a downloaded model: its hash against want_sha, then it must
 * deserialise as a model of the type and (when known) the version.
 */
static cml_err verify_download(const uint8_t *buf, size_t len, const char *want_sha,
                               cml_model_type type, const char *want_version, const char *what,
                               cml_model **out, cml_diag *diag) {
    char hex[65];
    cml_model *m = NULL;
    *out = NULL;
    cml_sha256_hex(buf, len, hex);
    if (strcasecmp(hex, want_sha) != 0)
        return cml_diag_set(diag, CML_ERR_CHECKSUM, "%s: content does not match its sha256", what);
    cml_diag d2 = {{0}};
    cml_err err = cml_model_deserialize(buf, len, &m, &d2);
    if (err != CML_OK)
        return cml_diag_set(diag, err, "%s: not a valid model file: %s", what, d2.msg);
    if (m->type != type) {
        err = cml_diag_set(diag, CML_ERR_INVALID, "%s: holds a %s model, not %s", what,
                           cml_model_type_name(m->type) ? cml_model_type_name(m->type) : "?",
                           cml_model_type_name(type));
    } else if (!cml_version_valid(m->version)) {
        err = cml_diag_set(diag, CML_ERR_INVALID, "%s: the model has an invalid version", what);
    } else if (want_version != NULL && strcmp(m->version, want_version) != 0) {
        err = cml_diag_set(diag, CML_ERR_INVALID, "%s: holds version %s, its metadata says %s",
                           what, m->version, want_version);
    }
    if (err != CML_OK) {
        cml_model_release(m);
        return err;
    }
    *out = m;
    return CML_OK;
}

/*
 * The common body of ensure_local (blob = the pointer, want_version NULL) and
 * fetch_version (blob = TYPE/VERSION.model). diag is not NULL.
 */
static cml_err sync_blob(cml_blob_store *s, cml_model_type type, const char *blob,
                         const char *want_version, const char *dir, const char *etag,
                         bool make_latest, cml_blob_sync_result *res, cml_diag *diag) {
    cml_err err = CML_OK;
    cml_blob_props p = {0}, gp = {0};
    uint8_t *data = NULL;
    size_t len = 0;
    cml_model *m = NULL;
    char what[1200];
    const char *tn = cml_model_type_name(type);
    snprintf(what, sizeof what, "%s/%s", s->container, blob);
    for (int attempt = 0;; attempt++) {
        memset(res, 0, sizeof(*res));
        res->type = type;
        cml_blob_props_release(&p);
        cml_blob_props_release(&gp);
        cml_free(data);
        data = NULL;
        err = cml_blob_head(s->client, s->container, blob, &p, diag);
        if (err == CML_ERR_NOT_FOUND && want_version == NULL) {
            res->status = CML_BLOB_SYNC_NO_MODEL;
            err = CML_OK;
            goto done;
        }
        if (err == CML_ERR_NOT_FOUND) {
            err = cml_diag_set(diag, CML_ERR_NOT_FOUND, "%s: no such version in the store", what);
            goto done;
        }
        if (err != CML_OK)
            goto done;
        const char *v = cml_blob_props_meta(&p, CML_BLOB_META_VERSION);
        const char *sha = cml_blob_props_meta(&p, CML_BLOB_META_SHA256);
        if (!sha_hex_ok(sha)) {
            err = cml_diag_set(diag, CML_ERR_CHECKSUM, "%s: no valid sha256 metadata", what);
            store_log(s, "blob store: refused %s: no valid sha256 metadata", what);
            goto done;
        }
        if (v != NULL &&
            (!cml_version_valid(v) || (want_version != NULL && strcmp(v, want_version) != 0))) {
            err = cml_diag_set(diag, CML_ERR_INVALID, "%s: version metadata '%.40s' is wrong", what,
                               v);
            store_log(s, "blob store: refused %s", diag->msg);
            goto done;
        }
        const char *ver = v != NULL ? v : want_version;
        copy_str(res->etag, sizeof res->etag, p.etag);
        copy_str(res->sha256, sizeof res->sha256, sha);
        for (char *c = res->sha256; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        res->bytes = p.length;
        if (ver != NULL) {
            copy_str(res->version, sizeof res->version, ver);
            cml_local_store_path(dir, tn, ver, res->path, sizeof res->path);
        }
        /* Unchanged since the caller's last look (and its file still there, when known). */
        if (etag != NULL && strcmp(etag, p.etag) == 0 &&
            (ver == NULL || access(res->path, F_OK) == 0)) {
            res->status = CML_BLOB_SYNC_NOT_MODIFIED;
            goto done;
        }
        if (ver != NULL) {
            if (local_has(res->path, sha)) {
                if (make_latest && (err = point_local(dir, type, ver, diag)) != CML_OK)
                    goto done;
                res->status = CML_BLOB_SYNC_PRESENT;
                goto done;
            }
        }
        if (p.length > CML_MODEL_MAX_FILE_BYTES) {
            err = cml_diag_set(diag, CML_ERR_FORMAT, "%s: %llu bytes is too large for a model",
                               what, (unsigned long long)p.length);
            goto done;
        }
        cml_blob_get_options go = {.if_match = p.etag, .verify_sha256 = true};
        err = cml_blob_get(s->client, s->container, blob, CML_MODEL_MAX_FILE_BYTES, &go, &data,
                           &len, &gp, diag);
        if ((err == CML_ERR_CONFLICT || err == CML_ERR_NOT_FOUND) && attempt + 1 < SYNC_ATTEMPTS)
            continue; /* moved or removed between the HEAD and the GET: look again */
        if (err == CML_ERR_CONFLICT) {
            err = cml_diag_set(diag, CML_ERR_CONFLICT, "%s keeps changing", what);
            goto done;
        }
        if (err == CML_ERR_CHECKSUM)
            store_log(s, "blob store: refused %s: content does not match its sha256", what);
        if (err != CML_OK)
            goto done;
        err = verify_download(data, len, sha, type, ver, what, &m, diag);
        if (err != CML_OK) {
            store_log(s, "blob store: refused %s", diag->msg);
            goto done;
        }
        copy_str(res->version, sizeof res->version, m->version);
        cml_local_store_path(dir, tn, m->version, res->path, sizeof res->path);
        err = write_local(dir, res->path, data, len, diag);
        if (err != CML_OK)
            goto done;
        if (make_latest && (err = point_local(dir, type, m->version, diag)) != CML_OK)
            goto done;
        copy_str(m->file_sha256, sizeof m->file_sha256, res->sha256);
        m->file_bytes = len;
        res->bytes = len;
        res->model = m;
        m = NULL;
        res->status = CML_BLOB_SYNC_DOWNLOADED;
        store_log(s, "blob store: downloaded %s (%s %s, %zu bytes)", what, tn, res->version, len);
        goto done;
    }
done:
    if (err != CML_OK) {
        cml_model_release(res->model);
        memset(res, 0, sizeof(*res));
        res->type = type;
    }
    cml_model_release(m);
    cml_free(data);
    cml_blob_props_release(&p);
    cml_blob_props_release(&gp);
    return err;
}

cml_err cml_blob_store_ensure_local(cml_blob_store *s, cml_model_type type, const char *dir,
                                    const char *etag, cml_blob_sync_result *res, cml_diag *diag) {
    cml_diag local;
    if (diag == NULL)
        diag = &local; /* sync_blob logs the reason of a refusal */
    if (res == NULL)
        return cml_diag_set(diag, CML_ERR_INVALID, "ensure_local: no result");
    memset(res, 0, sizeof(*res));
    if (s == NULL || dir == NULL || !type_known(type))
        return cml_diag_set(diag, CML_ERR_INVALID, "ensure_local: bad arguments");
    return sync_blob(s, type, s->pointer[type], NULL, dir, etag, true, res, diag);
}

cml_err cml_blob_store_fetch_version(cml_blob_store *s, cml_model_type type, const char *version,
                                     const char *dir, bool make_latest, cml_blob_sync_result *res,
                                     cml_diag *diag) {
    char name[128];
    cml_diag local;
    if (diag == NULL)
        diag = &local;
    if (res == NULL)
        return cml_diag_set(diag, CML_ERR_INVALID, "fetch_version: no result");
    memset(res, 0, sizeof(*res));
    if (s == NULL || dir == NULL)
        return cml_diag_set(diag, CML_ERR_INVALID, "fetch_version: bad arguments");
    if (cml_blob_store_version_name(type, version, name, sizeof name) != CML_OK)
        return cml_diag_set(diag, CML_ERR_INVALID, "fetch_version: invalid type or version");
    return sync_blob(s, type, name, version, dir, NULL, make_latest, res, diag);
}

/* ---- active.json ---------------------------------------------------------------------------- */

cml_err cml_blob_store_read_active(cml_blob_store *s, const char *if_none_match, cml_selection *sel,
                                   char etag[CML_BLOB_ETAG_MAX], bool *not_modified,
                                   cml_diag *diag) {
    cml_err err = CML_OK;
    uint8_t *data = NULL;
    size_t len = 0;
    cml_blob_props p = {0};
    if (not_modified != NULL)
        *not_modified = false;
    if (s == NULL || sel == NULL)
        return cml_diag_set(diag, CML_ERR_INVALID, "read_active: bad arguments");
    cml_blob_get_options go = {.if_none_match = if_none_match, .verify_sha256 = true};
    err = cml_blob_get(s->client, s->container, CML_BLOB_STORE_ACTIVE, CML_BLOB_ACTIVE_MAX_BYTES,
                       &go, &data, &len, &p, diag);
    if (err != CML_OK)
        goto done;
    if (p.not_modified) {
        if (not_modified != NULL)
            *not_modified = true;
        goto done;
    }
    if (etag != NULL)
        copy_str(etag, CML_BLOB_ETAG_MAX, p.etag);
    cml_selection parsed;
    err = cml_blob_active_parse((const char *)data, len, &parsed, diag);
    if (err == CML_OK)
        *sel = parsed;
done:
    cml_blob_props_release(&p);
    cml_free(data);
    return err;
}

cml_err cml_blob_store_write_active(cml_blob_store *s, const cml_selection *sel,
                                    const char *if_match, char etag_out[CML_BLOB_ETAG_MAX],
                                    cml_diag *diag) {
    cml_err err = CML_OK;
    char *text = NULL;
    cml_blob_props p = {0};
    if (s == NULL)
        return cml_diag_set(diag, CML_ERR_INVALID, "write_active: no store");
    err = cml_blob_active_format(sel, &text, diag);
    if (err != CML_OK)
        goto done;
    cml_blob_put_options po = {.content_type = "application/json",
                               .if_match = if_match,
                               .if_none_match_any = if_match == NULL,
                               .add_sha256 = true};
    err = cml_blob_put(s->client, s->container, CML_BLOB_STORE_ACTIVE, text, strlen(text), &po, &p,
                       diag);
    if (err == CML_OK && etag_out != NULL)
        copy_str(etag_out, CML_BLOB_ETAG_MAX, p.etag);
    if (err == CML_ERR_CONFLICT)
        cml_diag_set(diag, CML_ERR_CONFLICT, "%s/%s was changed by someone else", s->container,
                     CML_BLOB_STORE_ACTIVE);
done:
    cml_blob_props_release(&p);
    cml_free(text);
    return err;
}

cml_err cml_blob_store_update_active(cml_blob_store *s, cml_blob_active_edit_fn edit, void *ctx,
                                     cml_selection *out, char etag_out[CML_BLOB_ETAG_MAX],
                                     cml_diag *diag) {
    cml_err err = CML_OK;
    if (s == NULL || edit == NULL)
        return cml_diag_set(diag, CML_ERR_INVALID, "update_active: bad arguments");
    for (int attempt = 0; attempt < ACTIVE_ATTEMPTS; attempt++) {
        cml_selection sel, cur;
        char etag[CML_BLOB_ETAG_MAX] = "", new_etag[CML_BLOB_ETAG_MAX] = "";
        memset(&cur, 0, sizeof cur);
        err = cml_blob_store_read_active(s, NULL, &cur, etag, NULL, diag);
        bool exists = err == CML_OK;
        if (err != CML_OK && err != CML_ERR_NOT_FOUND)
            return err;
        sel = cur;
        if (!edit(ctx, &sel, exists)) {
            if (out != NULL)
                *out = cur;
            if (etag_out != NULL)
                copy_str(etag_out, CML_BLOB_ETAG_MAX, exists ? etag : "");
            return CML_OK;
        }
        sel.generation = 0;
        err = cml_blob_store_write_active(s, &sel, exists ? etag : NULL, new_etag, diag);
        if (err == CML_OK) {
            if (out != NULL)
                *out = sel;
            if (etag_out != NULL)
                copy_str(etag_out, CML_BLOB_ETAG_MAX, new_etag);
            return CML_OK;
        }
        if (err != CML_ERR_CONFLICT)
            return err;
    }
    return cml_diag_set(diag, CML_ERR_CONFLICT, "%s keeps changing", CML_BLOB_STORE_ACTIVE);
}

static bool follow_latest_edit(void *ctx, cml_selection *sel, bool exists) {
    cml_model_type type = *(const cml_model_type *)ctx;
    char *pin = type == CML_MODEL_CLASSIC ? sel->classic_version : sel->ensemble_version;
    if (!exists || pin[0] == '\0')
        return false;
    pin[0] = '\0';
    sel->updated_at = (int64_t)time(NULL);
    return true;
}

cml_err cml_blob_store_follow_latest(cml_blob_store *s, cml_model_type type, cml_diag *diag) {
    if (!type_known(type))
        return cml_diag_set(diag, CML_ERR_INVALID, "follow_latest: unknown model type");
    return cml_blob_store_update_active(s, follow_latest_edit, &type, NULL, NULL, diag);
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
    if (s == NULL || !type_known(type))
        return cml_diag_set(diag, CML_ERR_INVALID, "list_versions: bad arguments");
    snprintf(prefix, sizeof prefix, "%s/", cml_model_type_name(type));
    err = cml_blob_list_blobs(s->client, s->container, prefix, &l, diag);
    if (err != CML_OK)
        goto done;
    err = cml_blob_head(s->client, s->container, s->pointer[type], &p, diag);
    if (err == CML_OK) {
        const char *pv = cml_blob_props_meta(&p, CML_BLOB_META_VERSION);
        const char *ph = cml_blob_props_meta(&p, CML_BLOB_META_SHA256);
        copy_str(ptr_version, sizeof ptr_version, pv && cml_version_valid(pv) ? pv : "");
        copy_str(ptr_sha, sizeof ptr_sha, ph && sha_hex_ok(ph) ? ph : "");
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
        copy_str(e->etag, sizeof e->etag, l.items[i].etag);
        copy_str(e->last_modified, sizeof e->last_modified, l.items[i].last_modified);
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
            copy_str(e->sha256, sizeof e->sha256, h && sha_hex_ok(h) ? h : "");
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
        copy_str(latest, CML_VERSION_MAX, ptr_version);
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
    copy_str(pin, CML_VERSION_MAX,
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
        store_log(s, "blob store: deleted %s/%s", s->container, name);
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
        copy_str(sha256_out, 65, hex);
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
    if (!sha_hex_ok(sha)) {
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
        copy_str(sha256_out, 65, sha);
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
