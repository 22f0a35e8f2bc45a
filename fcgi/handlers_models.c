/* Model management: select (and roll back), the current model, the versions known. */
#include "config.h"

#include <string.h>

#include "handlers.h"
#include "request.h"
#include "response.h"

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
                           json_object_new_string(response_iso_time(m->created_at, ts, sizeof ts)));
    json_object_object_add(o, "n_train", json_object_new_int64(m->n_train));
    json_object_object_add(o, "metrics", response_model_metrics(m, "holdout"));
    return o;
}

handler_result handle_select(service *svc, http_req *r, const route_args *args) {
    (void)args;
    bool bad = false;
    json_object *body = request_json_body(r, true);
    if (body == NULL)
        return HANDLER_DONE;
    const char *type_name = request_string_field(r, body, "model_type", &bad);
    const char *version = bad ? NULL : request_string_field(r, body, "version", &bad);
    cml_model_type type;
    if (bad)
        goto done;
    if (type_name == NULL || cml_model_type_parse(type_name, &type) != CML_OK) {
        http_send_api_error(r, API_ERR_UNKNOWN_MODEL_TYPE);
        goto done;
    }
    service_selection sel;
    cml_diag d = {{0}};
    switch (service_select(svc, type, version, &sel, &d)) {
    case CML_OK:
        break;
    case CML_ERR_UNSUPPORTED:
        http_send_api_error(r, API_ERR_BUILD_CANNOT_SERVE);
        goto done;
    case CML_ERR_STORAGE:
        http_send_api_error(r, API_ERR_VERSION_NOT_FETCHED);
        goto done;
    case CML_ERR_NOT_FOUND:
        if (version != NULL)
            http_send_api_error(r, API_ERR_UNKNOWN_VERSION);
        else
            http_send_api_error(r, API_ERR_NO_MODEL_STORED);
        goto done;
    case CML_ERR_FORMAT:
        http_send_api_error(r, API_ERR_SELECT_LOAD_FAILED);
        goto done;
    case CML_ERR_IO:
        http_send_api_error(r, API_ERR_SELECTION_NOT_STORED);
        goto done;
    case CML_ERR_UNAVAILABLE:
        http_send_api_error(r, API_ERR_STATE_UNAVAILABLE);
        goto done;
    default:
        http_send_api_error(r, API_ERR_SELECTED_NOT_LOADED);
        goto done;
    }
    cml_model *m = sel.model;
    r->model = cml_model_type_name(type);
    snprintf(r->version, sizeof r->version, "%s", m->version);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "success", json_object_new_boolean(1));
    json_object_object_add(o, "current_model", json_object_new_string(type_name));
    json_object_object_add(o, "previous_model",
                           json_object_new_string(cml_model_type_name(sel.previous)));
    json_object_object_add(o, "version", json_object_new_string(m->version));
    json_object_object_add(o, "pinned", json_object_new_boolean(version != NULL));
    json_object_object_add(o, "switch_time_ms", json_object_new_double(sel.switch_ms));
    json_object_object_add(o, "model_info", model_info(m));
    json_object_object_add(o, "performance_metrics", response_model_metrics(m, "holdout"));
    http_send_json(r, HTTP_OK, o);
    cml_model_release(m);
done:
    json_object_put(body);
    return HANDLER_DONE;
}

handler_result handle_current(service *svc, http_req *r, const route_args *args) {
    (void)args;
    char ts[32];
    cml_model_type type = (cml_model_type)atomic_load(&svc->active_type);
    cml_slot_info info;
    cml_registry_info(svc->registry, type, &info);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "model_type", json_object_new_string(cml_model_type_name(type)));
    json_object_object_add(o, "version", info.loaded ? json_object_new_string(info.version) : NULL);
    json_object_object_add(
        o, "loaded_at",
        info.loaded ? json_object_new_string(response_iso_time(info.loaded_at, ts, sizeof ts))
                    : NULL);
    json_object_object_add(o, "loaded", json_object_new_boolean(info.loaded));
    http_send_json(r, HTTP_OK, o);
    return HANDLER_DONE;
}

handler_result handle_models(service *svc, http_req *r, const route_args *args) {
    (void)args;
    char ts[32];
    cml_model_record *recs = NULL;
    size_t n = 0;
    cml_err err = cml_state_list_models(svc->state, NULL, &recs, &n);
    if (err != CML_OK) {
        http_send_api_error(r, state_api_error(err, API_ERR_MODEL_LIST_UNREADABLE));
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
            json_object_new_string(response_iso_time(recs[i].created_at, ts, sizeof ts)));
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
    http_send_json(r, HTTP_OK, o);
    return HANDLER_DONE;
}
