/* Publishing a model: its version blob, then the pointer, race-safe between instances. */
#include "config.h"

#include "azure/blob_store_internal.h"

#include <string.h>

#include "base/cml_alloc.h"

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
        bs_copy_str(etag_out, CML_BLOB_ETAG_MAX, p.etag);
    } else if (err == CML_ERR_CONFLICT) {
        cml_diag d2 = {{0}};
        if (cml_blob_head(s->client, s->container, pointer, &p, &d2) == CML_OK) {
            const char *v = cml_blob_props_meta(&p, CML_BLOB_META_VERSION);
            const char *h = cml_blob_props_meta(&p, CML_BLOB_META_SHA256);
            if (v != NULL && h != NULL && strcmp(v, m->version) == 0 && strcasecmp(h, sha) == 0) {
                bs_copy_str(etag_out, CML_BLOB_ETAG_MAX, p.etag);
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
    bs_copy_str(res->version, sizeof res->version, m->version);
    bs_copy_str(res->sha256, sizeof res->sha256, sha);
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
    err = bs_read_model_file(path, &buf, &len, &m, sha, diag);
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
    err = bs_read_model_file(path, &buf, &len, &m, sha, diag);
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
                bs_copy_str(res->pointer_etag, sizeof res->pointer_etag, p.etag);
                res->pointer_moved = true;
                goto done;
            }
            if_match = p.etag;
        }
    }
    err = put_pointer(s, buf, len, m, sha, if_match, if_none, res->pointer_etag, diag);
    if (err == CML_OK) {
        res->pointer_moved = true;
        bs_store_log(s, "blob store: %s now names %s %s", pointer, cml_model_type_name(m->type),
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
    if (s == NULL || dir == NULL || !bs_type_known(type)) {
        err = cml_diag_set(diag, CML_ERR_INVALID, "publish_if_absent: bad arguments");
        goto done;
    }
    const char *tn = cml_model_type_name(type);
    if (version != NULL) {
        if (!cml_version_valid(version)) {
            err = cml_diag_set(diag, CML_ERR_INVALID, "invalid version '%.40s'", version);
            goto done;
        }
        bs_copy_str(ours, sizeof ours, version);
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
                err = bs_read_model_file(path, &buf, &len, &m, sha, diag);
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
                bs_store_log(s, "blob store: created %s naming %s %s", s->pointer[type], tn, ours);
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
        bs_copy_str(res->version, sizeof res->version, sr.version);
        bs_copy_str(res->sha256, sizeof res->sha256, sr.sha256);
        bs_copy_str(res->pointer_etag, sizeof res->pointer_etag, sr.etag);
        res->bytes = sr.bytes;
        res->adopted = strcmp(sr.version, ours) != 0;
        res->pointer_moved = !res->adopted;
        if (res->adopted)
            bs_store_log(s, "blob store: %s already names %s %s: adopted", s->pointer[type], tn,
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
