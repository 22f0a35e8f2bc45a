#include "config.h"

#include "model/model_catalog.h"

#include <stdio.h>
#include <string.h>

#include "base/cml_alloc.h"
#include "model/local_store.h"

cml_err cml_catalog_record(cml_state *st, const cml_model *m, bool local, bool blob) {
    cml_model_record rec;
    memset(&rec, 0, sizeof rec);
    snprintf(rec.model_type, sizeof rec.model_type, "%s", cml_model_type_name(m->type));
    snprintf(rec.version, sizeof rec.version, "%s", m->version);
    rec.created_at = m->created_at;
    rec.size_bytes = (int64_t)m->file_bytes;
    snprintf(rec.sha256, sizeof rec.sha256, "%s", m->file_sha256);
    rec.metrics_json = m->metrics_json;
    rec.local = local;
    rec.blob = blob;
    return cml_state_upsert_model(st, &rec);
}

cml_err cml_catalog_add_history(cml_state *st, const cml_model *m, const char *task_id) {
    cml_history_entry h;
    memset(&h, 0, sizeof h);
    snprintf(h.task_id, sizeof h.task_id, "%s", task_id ? task_id : "");
    snprintf(h.model_type, sizeof h.model_type, "%s", cml_model_type_name(m->type));
    snprintf(h.version, sizeof h.version, "%s", m->version);
    h.timestamp = m->created_at;
    h.metrics_json = m->metrics_json;
    h.training_time = m->training_time_s;
    h.n_train = m->n_train;
    h.n_test = m->n_test;
    return cml_state_add_history(st, &h);
}

/* Prunes as cml_catalog_prune, sparing `spare` too (NULL or "": nothing more). */
static cml_err prune_sparing(cml_state *st, const char *cache_dir, cml_model_type type,
                             size_t retain, const char *spare) {
    const char *name = cml_model_type_name(type);
    char(*versions)[CML_VERSION_MAX] = NULL, latest[CML_VERSION_MAX] = "";
    size_t n = 0;
    cml_selection sel;
    const char *pinned = "";
    if (cml_state_get_selection(st, &sel) == CML_OK)
        pinned = type == CML_MODEL_CLASSIC ? sel.classic_version : sel.ensemble_version;
    cml_local_store_latest(cache_dir, name, latest);
    cml_err err = cml_local_store_list(cache_dir, name, &versions, &n);
    if (err != CML_OK)
        return err;
    /* Newest first: everything past `retain` goes, but never the pinned or latest version. */
    for (size_t i = retain; i < n; i++) {
        if (!strcmp(versions[i], pinned) || !strcmp(versions[i], latest) ||
            (spare && !strcmp(versions[i], spare)))
            continue;
        cml_local_store_remove(cache_dir, name, versions[i]);
        cml_state_delete_model(st, name, versions[i]);
    }
    cml_free(versions);
    return CML_OK;
}

cml_err cml_catalog_prune(cml_state *st, const char *cache_dir, cml_model_type type,
                          size_t retain) {
    return prune_sparing(st, cache_dir, type, retain, NULL);
}

cml_err cml_catalog_publish(cml_state *st, const char *cache_dir, const cml_model *m,
                            const char *task_id, size_t retain, cml_diag *diag) {
    const char *name = cml_model_type_name(m->type);
    cml_err err = cml_catalog_record(st, m, true, false);
    if (err == CML_OK)
        err = cml_catalog_add_history(st, m, task_id);
    if (err != CML_OK)
        return cml_diag_set(diag, err, "cannot record the new model in the shared state");
    if ((err = cml_local_store_point_latest(cache_dir, name, m->version, diag)) != CML_OK)
        return err;
    cml_selection sel;
    /* The version pinned until now (a rollback) served until this moment: it stays in the cache
     * through this prune, so that the admin can roll back to it again. */
    char was_pinned[CML_VERSION_MAX] = "";
    if (cml_state_get_selection(st, &sel) == CML_OK) {
        char *pin = m->type == CML_MODEL_CLASSIC ? sel.classic_version : sel.ensemble_version;
        snprintf(was_pinned, sizeof was_pinned, "%s", pin);
        pin[0] = '\0';
        err = cml_state_set_selection(st, &sel);
    } else {
        err = cml_state_touch(st);
        if (err == CML_ERR_NOT_FOUND)
            err = CML_OK; /* no selection yet: the first start sets it */
    }
    if (err != CML_OK)
        return cml_diag_set(diag, err, "cannot publish the new model to the workers");
    return prune_sparing(st, cache_dir, m->type, retain, was_pinned);
}
