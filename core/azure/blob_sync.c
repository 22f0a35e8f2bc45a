/* Syncing into this instance: a type's latest or one version into the local store, and active.json.
 */
#include "config.h"

#include "azure/blob_store_internal.h"

#include <ctype.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/cml_alloc.h"
#include "model/model_file.h"
#include "base/sha256.h"

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
        if (!bs_sha_hex_ok(sha)) {
            err = cml_diag_set(diag, CML_ERR_CHECKSUM, "%s: no valid sha256 metadata", what);
            bs_store_log(s, "blob store: refused %s: no valid sha256 metadata", what);
            goto done;
        }
        if (v != NULL &&
            (!cml_version_valid(v) || (want_version != NULL && strcmp(v, want_version) != 0))) {
            err = cml_diag_set(diag, CML_ERR_INVALID, "%s: version metadata '%.40s' is wrong", what,
                               v);
            bs_store_log(s, "blob store: refused %s", diag->msg);
            goto done;
        }
        const char *ver = v != NULL ? v : want_version;
        bs_copy_str(res->etag, sizeof res->etag, p.etag);
        bs_copy_str(res->sha256, sizeof res->sha256, sha);
        for (char *c = res->sha256; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        res->bytes = p.length;
        if (ver != NULL) {
            bs_copy_str(res->version, sizeof res->version, ver);
            cml_local_store_path(dir, tn, ver, res->path, sizeof res->path);
        }
        /* Unchanged since the caller's last look (and its file still there, when known). */
        if (etag != NULL && strcmp(etag, p.etag) == 0 &&
            (ver == NULL || access(res->path, F_OK) == 0)) {
            res->status = CML_BLOB_SYNC_NOT_MODIFIED;
            goto done;
        }
        if (ver != NULL) {
            if (bs_local_has(res->path, sha)) {
                if (make_latest && (err = bs_point_local(dir, type, ver, diag)) != CML_OK)
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
            bs_store_log(s, "blob store: refused %s: content does not match its sha256", what);
        if (err != CML_OK)
            goto done;
        err = verify_download(data, len, sha, type, ver, what, &m, diag);
        if (err != CML_OK) {
            bs_store_log(s, "blob store: refused %s", diag->msg);
            goto done;
        }
        bs_copy_str(res->version, sizeof res->version, m->version);
        cml_local_store_path(dir, tn, m->version, res->path, sizeof res->path);
        err = bs_write_local(dir, res->path, data, len, diag);
        if (err != CML_OK)
            goto done;
        if (make_latest && (err = bs_point_local(dir, type, m->version, diag)) != CML_OK)
            goto done;
        bs_copy_str(m->file_sha256, sizeof m->file_sha256, res->sha256);
        m->file_bytes = len;
        res->bytes = len;
        res->model = m;
        m = NULL;
        res->status = CML_BLOB_SYNC_DOWNLOADED;
        bs_store_log(s, "blob store: downloaded %s (%s %s, %zu bytes)", what, tn, res->version,
                     len);
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
    if (s == NULL || dir == NULL || !bs_type_known(type))
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
        bs_copy_str(etag, CML_BLOB_ETAG_MAX, p.etag);
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
        bs_copy_str(etag_out, CML_BLOB_ETAG_MAX, p.etag);
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
                bs_copy_str(etag_out, CML_BLOB_ETAG_MAX, exists ? etag : "");
            return CML_OK;
        }
        sel.generation = 0;
        err = cml_blob_store_write_active(s, &sel, exists ? etag : NULL, new_etag, diag);
        if (err == CML_OK) {
            if (out != NULL)
                *out = sel;
            if (etag_out != NULL)
                bs_copy_str(etag_out, CML_BLOB_ETAG_MAX, new_etag);
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
    if (!bs_type_known(type))
        return cml_diag_set(diag, CML_ERR_INVALID, "follow_latest: unknown model type");
    return cml_blob_store_update_active(s, follow_latest_edit, &type, NULL, NULL, diag);
}
