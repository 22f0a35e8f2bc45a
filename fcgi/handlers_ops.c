/* Operations: health, readiness and Prometheus metrics. */
#include "config.h"

#include "base/cml_alloc.h"
#include "base/file_io.h"
#include "handlers.h"
#include "response.h"
#include "ops/prom.h"
#include "ops/service_log.h"

static json_object *slot_json(service *svc, cml_model_type t, bool *loaded) {
    char ts[32];
    cml_slot_info info;
    cml_registry_info(svc->registry, t, &info);
    *loaded = info.loaded;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "loaded", json_object_new_boolean(info.loaded));
    json_object_object_add(o, "available_in_build",
                           json_object_new_boolean(service_type_available(t)));
    json_object_object_add(o, "version", info.loaded ? json_object_new_string(info.version) : NULL);
    json_object_object_add(
        o, "loaded_at",
        info.loaded ? json_object_new_string(response_iso_time(info.loaded_at, ts, sizeof ts))
                    : NULL);
    return o;
}

handler_result handle_health(service *svc, http_req *r, const route_args *args) {
    (void)args;
    char ts[32];
    bool e_loaded, c_loaded;
    cml_model_type active = (cml_model_type)atomic_load(&svc->active_type);
    json_object *models = json_object_new_object();
    json_object_object_add(models, "ensemble", slot_json(svc, CML_MODEL_ENSEMBLE, &e_loaded));
    json_object_object_add(models, "classic", slot_json(svc, CML_MODEL_CLASSIC, &c_loaded));
    bool active_ok = active == CML_MODEL_ENSEMBLE ? e_loaded : c_loaded;
    bool reachable;
    int64_t last;
    char storage_error[256];
    storage_status(&svc->storage, &reachable, &last, storage_error, sizeof storage_error);
    bool missing = (service_type_available(CML_MODEL_ENSEMBLE) && !e_loaded) || !c_loaded;
    bool state_ok = cml_state_reachable(svc->state);
    const char *status = !active_ok                             ? "unhealthy"
                         : (!reachable || missing || !state_ok) ? "degraded"
                                                                : "healthy";
    cml_job job;
    service_reap_jobs(svc);
    bool training =
        cml_state_job_latest(svc->state, &job) == CML_OK && job.status == CML_JOB_RUNNING;

    json_object *o = json_object_new_object(), *storage = json_object_new_object(),
                *tr = json_object_new_object(), *state = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string(status));
    json_object_object_add(o, "service", json_object_new_string("cultivate-ml-api"));
    json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
    json_object_object_add(o, "active_model", json_object_new_string(cml_model_type_name(active)));
    json_object_object_add(o, "models", models);
    json_object_object_add(storage, "backend",
                           json_object_new_string(svc->cfg.use_azure_storage ? "azure" : "local"));
    json_object_object_add(storage, "reachable", json_object_new_boolean(reachable));
    json_object_object_add(storage, "last_sync",
                           last ? json_object_new_string(response_iso_time(last, ts, sizeof ts))
                                : NULL);
    if (!reachable && storage_error[0])
        json_object_object_add(storage, "error", json_object_new_string(storage_error));
    json_object_object_add(o, "storage", storage);
    json_object_object_add(state, "backend",
                           json_object_new_string(cml_state_backend_name(svc->state)));
    json_object_object_add(state, "reachable", json_object_new_boolean(state_ok));
    json_object_object_add(o, "state", state);
    json_object_object_add(tr, "is_training", json_object_new_boolean(training));
    json_object_object_add(o, "training", tr);
    json_object_object_add(o, "uptime_s",
                           json_object_new_int64((int64_t)time(NULL) - svc->started_at));
    if (!active_ok)
        json_object_object_add(o, "reason",
                               json_object_new_string("the active model is not loaded"));
    else if (missing)
        json_object_object_add(o, "reason", json_object_new_string("a model is not loaded"));
    else if (!reachable)
        json_object_object_add(o, "reason", json_object_new_string("blob storage is unreachable"));
    else if (!state_ok)
        json_object_object_add(o, "reason",
                               json_object_new_string("the state database is unreachable"));
    http_send_json(r, active_ok ? HTTP_OK : HTTP_SERVICE_UNAVAILABLE, o);
    return HANDLER_DONE;
}

handler_result handle_ready(service *svc, http_req *r, const route_args *args) {
    (void)args;
    cml_model_type active = (cml_model_type)atomic_load(&svc->active_type);
    cml_slot_info info;
    cml_registry_info(svc->registry, active, &info);
    /* A slot is only filled after its warm-up prediction answered. */
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ready", json_object_new_boolean(info.loaded));
    json_object_object_add(o, "model_type", json_object_new_string(cml_model_type_name(active)));
    if (!info.loaded) {
        json_object_put(o);
        http_send_api_error(r, API_ERR_NOT_READY);
        return HANDLER_DONE;
    }
    http_send_json(r, HTTP_OK, o);
    return HANDLER_DONE;
}

handler_result handle_metrics(service *svc, http_req *r, const route_args *args) {
    (void)args;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (out == NULL)
        return HANDLER_FAULT;
    size_t bytes = 0;
    for (int t = CML_MODEL_CLASSIC; t < CML_MODEL__COUNT; t++) {
        cml_slot_info info;
        cml_registry_info(svc->registry, (cml_model_type)t, &info);
        bytes += info.bytes;
    }
    cml_prom_set_process(bytes, cml_alloc_in_use());
    cml_prom_write(out);
    cml_config_metrics(&svc->cfg, out);
    service_live_metrics(svc, out);
    fprintf(out,
            "# HELP cultivate_ml_uptime_seconds Seconds since this worker started.\n"
            "# TYPE cultivate_ml_uptime_seconds gauge\ncultivate_ml_uptime_seconds %lld\n",
            (long long)(time(NULL) - svc->started_at));
    fclose(out);
    http_send_raw(r, HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", buf, len, NULL);
    free(buf);
    return HANDLER_DONE;
}

/*
 * GET /api/openapi.json: the OpenAPI document, converted from docs/openapi.yaml at build time
 * and installed; read on each request (it is small), so an upgrade needs no restart.
 */
handler_result handle_openapi(service *svc, http_req *r, const route_args *args) {
    (void)args;
    uint8_t *doc = NULL;
    size_t len = 0;
    cml_diag d = {{0}};
    if (cml_read_file(svc->cfg.openapi_document, 16u << 20, &doc, &len, &d) != CML_OK) {
        cml_log(CML_LOG_ERROR, "openapi_unreadable", "reason", d.msg, NULL);
        http_send_api_error(r, API_ERR_INTERNAL);
        return HANDLER_DONE;
    }
    http_send_raw(r, HTTP_OK, "application/json", (const char *)doc, len, NULL);
    cml_free(doc);
    return HANDLER_DONE;
}
