/* Model management: select (and roll back), the current model, the versions known. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "model/local_store.h"
#include "router.h"
#include "ops/service_log.h"
#include "ops/prom.h"
#include "storage_sync.h"

static json_object *model_info(const cml_model *m) {
    char ts[32];
    json_object *o = json_object_new_object(), *members = json_object_new_array();
    for (size_t k = 0; k < m->n_members; k++)
        json_object_array_add(members, json_object_new_string(m->members[k].ops->name));
    json_object_object_add(o, "type", json_object_new_string(cml_model_type_name(m->type)));
    json_object_object_add(o, "version", json_object_new_string(m->version));
    json_object_object_add(o, "members", members);
    json_object_object_add(o, "voting_strategy", json_object_new_string(cml_model_voting(m)));
    json_object_object_add(o, "trained_at",
                           json_object_new_string(handler_iso_time(m->created_at, ts, sizeof ts)));
    json_object_object_add(o, "n_train", json_object_new_int64(m->n_train));
    json_object_object_add(o, "metrics", handler_model_metrics(m, "holdout"));
    return o;
}

handler_result handle_select(service *svc, http_req *r, const char *param) {
    (void)param;
    bool bad = false;
    json_object *body = handler_json_body(r, true);
    if (body == NULL)
        return HANDLER_DONE;
    const char *type_name = handler_string_field(r, body, "model_type", &bad);
    const char *version = bad ? NULL : handler_string_field(r, body, "version", &bad);
    cml_model_type type;
    if (bad)
        goto done;
    if (type_name == NULL || cml_model_type_parse(type_name, &type) != CML_OK) {
        http_send_error(r, 400, "unknown_model_type", "model_type must be ensemble or classic.",
                        NULL);
        goto done;
    }
    if (!service_type_available(type)) {
        http_send_error(r, 503, "model_unavailable",
                        "This build cannot serve the ensemble (built without XGBoost or FANN).",
                        "Retry-After: 3600");
        goto done;
    }
    char want[CML_VERSION_MAX], path[4096];
    struct stat st;
    if (version != NULL) {
        cml_local_store_path(svc->cfg.model_cache_dir, type_name, version, path, sizeof path);
        /* A version only the blob store holds is brought into the cache first. */
        if (cml_version_valid(version) && stat(path, &st) != 0) {
            cml_diag fd = {{0}};
            cml_err ferr = storage_fetch_version(svc, type, version, &fd);
            if (ferr != CML_OK && ferr != CML_ERR_NOT_FOUND) {
                http_send_error(
                    r, 503, "storage_unreachable",
                    "That version is not cached here and blob storage did not provide it.",
                    "Retry-After: 30");
                goto done;
            }
        }
        if (!cml_version_valid(version) || stat(path, &st) != 0) {
            http_send_error(r, 404, "unknown_version", "No model of that type has that version.",
                            NULL);
            goto done;
        }
        snprintf(want, sizeof want, "%s", version);
    } else if (cml_local_store_latest(svc->cfg.model_cache_dir, type_name, want) != CML_OK) {
        http_send_error(r, 503, "model_unavailable", "No model of that type is stored yet.",
                        "Retry-After: 30");
        goto done;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cml_model_type previous = (cml_model_type)atomic_load(&svc->active_type);
    /* Load and warm up in this process first: a model that cannot answer is never selected. */
    cml_slot_info info;
    cml_registry_info(svc->registry, type, &info);
    if (!info.loaded || strcmp(info.version, want) != 0) {
        cml_diag d = {{0}};
        cml_err err = cml_registry_load(svc->registry, type, want, &d);
        cml_prom_inc(err == CML_OK ? CML_M_MODEL_LOADS : CML_M_MODEL_LOAD_FAILURES, 1);
        if (err != CML_OK) {
            cml_log(CML_LOG_ERROR, "select_failed", "model", type_name, "version", want, "reason",
                    d.msg, NULL);
            http_send_error(r, 503, "model_load_failed",
                            "That model could not be loaded; the selection is unchanged.",
                            "Retry-After: 30");
            goto done;
        }
    }
    cml_selection sel;
    if (cml_state_get_selection(svc->state, &sel) != CML_OK)
        memset(&sel, 0, sizeof sel);
    snprintf(sel.active_type, sizeof sel.active_type, "%s", type_name);
    char *pin = type == CML_MODEL_CLASSIC ? sel.classic_version : sel.ensemble_version;
    snprintf(pin, sizeof sel.classic_version, "%s", version ? version : "");
    if (cml_state_set_selection(svc->state, &sel) != CML_OK) {
        http_send_error(r, 500, "storage_failed", "The selection could not be stored.", NULL);
        goto done;
    }
    service_apply_selection(svc, NULL);
    storage_push_selection(svc); /* the other instances follow within the sync interval */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cml_model *m = cml_registry_acquire(svc->registry, type);
    if (m == NULL) {
        http_send_error(r, 503, "model_unavailable", "The selected model is not loaded.",
                        "Retry-After: 5");
        goto done;
    }
    r->model = cml_model_type_name(type);
    snprintf(r->version, sizeof r->version, "%s", m->version);
    cml_log(CML_LOG_INFO, "model_selected", "model", type_name, "version", m->version, "pinned",
            version ? "true" : "false", NULL);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "success", json_object_new_boolean(1));
    json_object_object_add(o, "current_model", json_object_new_string(type_name));
    json_object_object_add(o, "previous_model",
                           json_object_new_string(cml_model_type_name(previous)));
    json_object_object_add(o, "version", json_object_new_string(m->version));
    json_object_object_add(o, "pinned", json_object_new_boolean(version != NULL));
    json_object_object_add(o, "switch_time_ms",
                           json_object_new_double((double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                                                  (double)(t1.tv_nsec - t0.tv_nsec) / 1e6));
    json_object_object_add(o, "model_info", model_info(m));
    json_object_object_add(o, "performance_metrics", handler_model_metrics(m, "holdout"));
    http_send_json(r, 200, o);
    cml_model_release(m);
done:
    json_object_put(body);
    return HANDLER_DONE;
}

handler_result handle_current(service *svc, http_req *r, const char *param) {
    (void)param;
    char ts[32];
    cml_model_type type = (cml_model_type)atomic_load(&svc->active_type);
    cml_slot_info info;
    cml_registry_info(svc->registry, type, &info);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "model_type", json_object_new_string(cml_model_type_name(type)));
    json_object_object_add(o, "version", info.loaded ? json_object_new_string(info.version) : NULL);
    json_object_object_add(
        o, "loaded_at",
        info.loaded ? json_object_new_string(handler_iso_time(info.loaded_at, ts, sizeof ts))
                    : NULL);
    json_object_object_add(o, "loaded", json_object_new_boolean(info.loaded));
    http_send_json(r, 200, o);
    return HANDLER_DONE;
}

handler_result handle_models(service *svc, http_req *r, const char *param) {
    (void)param;
    char ts[32];
    cml_model_record *recs = NULL;
    size_t n = 0;
    if (cml_state_list_models(svc->state, NULL, &recs, &n) != CML_OK) {
        http_send_error(r, 500, "storage_failed", "The model list could not be read.", NULL);
        return HANDLER_DONE;
    }
    cml_model_type active = (cml_model_type)atomic_load(&svc->active_type);
    cml_slot_info act;
    cml_registry_info(svc->registry, active, &act);
    json_object *o = json_object_new_object(), *a = json_object_new_object(),
                *list = json_object_new_array();
    json_object_object_add(a, "model_type", json_object_new_string(cml_model_type_name(active)));
    json_object_object_add(a, "version", act.loaded ? json_object_new_string(act.version) : NULL);
    for (size_t i = 0; i < n; i++) {
        cml_model_type t;
        cml_slot_info info = {0};
        if (cml_model_type_parse(recs[i].model_type, &t) == CML_OK)
            cml_registry_info(svc->registry, t, &info);
        json_object *m = json_object_new_object();
        json_object_object_add(m, "model_type", json_object_new_string(recs[i].model_type));
        json_object_object_add(m, "version", json_object_new_string(recs[i].version));
        json_object_object_add(
            m, "created_at",
            json_object_new_string(handler_iso_time(recs[i].created_at, ts, sizeof ts)));
        json_object_object_add(m, "size_bytes", json_object_new_int64(recs[i].size_bytes));
        json_object_object_add(m, "sha256", json_object_new_string(recs[i].sha256));
        json_object *metrics = NULL,
                    *all = recs[i].metrics_json ? json_tokener_parse(recs[i].metrics_json) : NULL;
        if (all && json_object_object_get_ex(all, "holdout", &metrics))
            metrics = json_object_get(metrics);
        json_object_put(all);
        json_object_object_add(m, "metrics", metrics);
        json_object_object_add(m, "location",
                               json_object_new_string(recs[i].local && recs[i].blob ? "both"
                                                      : recs[i].blob                ? "blob"
                                                                                    : "local"));
        json_object_object_add(
            m, "loaded",
            json_object_new_boolean(info.loaded && strcmp(info.version, recs[i].version) == 0));
        json_object_array_add(list, m);
    }
    json_object_object_add(o, "active", a);
    json_object_object_add(o, "models", list);
    cml_model_records_free(recs, n);
    http_send_json(r, 200, o);
    return HANDLER_DONE;
}
