/* Selection and rollback: make a type (optionally a pinned version) the one every worker serves. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "model/local_store.h"
#include "ops/prom.h"
#include "ops/service_log.h"
#include "service.h"

/* The version to select into want: the pinned one (fetched from blob storage when only it
   holds it), else the local latest. */
static cml_err version_to_select(service *svc, cml_model_type type, const char *version,
                                 char want[CML_VERSION_MAX], cml_diag *diag) {
    const char *type_name = cml_model_type_name(type);
    if (version == NULL) {
        if (cml_local_store_latest(svc->cfg.model_cache_dir, type_name, want) != CML_OK)
            return cml_diag_set(diag, CML_ERR_NOT_FOUND, "no %s model is stored yet", type_name);
        return CML_OK;
    }
    cml_diag fd = {{0}};
    cml_err err = cml_version_valid(version) ? service_cache_version(svc, type, version, &fd)
                                             : CML_ERR_NOT_FOUND;
    if (err == CML_ERR_NOT_FOUND)
        return cml_diag_set(diag, CML_ERR_NOT_FOUND, "no %s model has version %s", type_name,
                            version);
    if (err != CML_OK)
        return cml_diag_set(diag, CML_ERR_STORAGE, "%s", fd.msg);
    snprintf(want, CML_VERSION_MAX, "%s", version);
    return CML_OK;
}

cml_err service_select(service *svc, cml_model_type type, const char *version,
                       service_selection *out, cml_diag *diag) {
    const char *type_name = cml_model_type_name(type);
    char want[CML_VERSION_MAX];
    memset(out, 0, sizeof(*out));
    if (type_name == NULL || !service_type_available(type))
        return cml_diag_set(diag, CML_ERR_UNSUPPORTED,
                            "this build cannot serve the ensemble (built without XGBoost or FANN)");
    cml_err err = version_to_select(svc, type, version, want, diag);
    if (err != CML_OK)
        return err;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    out->previous = (cml_model_type)atomic_load(&svc->active_type);
    /* Load and warm up in this process first: a model that cannot answer is never selected. */
    cml_slot_info info;
    cml_registry_info(svc->registry, type, &info);
    if (!info.loaded || strcmp(info.version, want) != 0) {
        cml_diag d = {{0}};
        err = cml_registry_load(svc->registry, type, want, &d);
        cml_prom_inc(err == CML_OK ? CML_M_MODEL_LOADS : CML_M_MODEL_LOAD_FAILURES, 1);
        if (err != CML_OK) {
            cml_log(CML_LOG_ERROR, "select_failed", "model", type_name, "version", want, "reason",
                    d.msg, NULL);
            return cml_diag_set(diag, CML_ERR_FORMAT, "%s", d.msg);
        }
    }
    cml_selection sel;
    if (cml_state_get_selection(svc->state, &sel) != CML_OK)
        memset(&sel, 0, sizeof sel);
    snprintf(sel.active_type, sizeof sel.active_type, "%s", type_name);
    char *pin = type == CML_MODEL_CLASSIC ? sel.classic_version : sel.ensemble_version;
    snprintf(pin, sizeof sel.classic_version, "%s", version ? version : "");
    err = cml_state_set_selection(svc->state, &sel);
    if (err != CML_OK)
        return cml_diag_set(diag, err == CML_ERR_UNAVAILABLE ? err : CML_ERR_IO,
                            "the selection could not be stored");
    service_apply_selection(svc, NULL);
    storage_push_selection(&svc->storage); /* the other instances follow within the interval */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    out->model = cml_registry_acquire(svc->registry, type);
    if (out->model == NULL)
        return cml_diag_set(diag, CML_ERR_INTERNAL, "the selected model is not loaded");
    out->switch_ms =
        (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    cml_log(CML_LOG_INFO, "model_selected", "model", type_name, "version", out->model->version,
            "pinned", version ? "true" : "false", NULL);
    return CML_OK;
}
