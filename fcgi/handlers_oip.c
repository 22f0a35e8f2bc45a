/*
 * The Open Inference Protocol (KServe v2 REST): health, server and model metadata, model
 * readiness and inference. The router answers errors on these paths as {"error": ...}.
 * {name} is a model type; {v} a version of the model store, loaded on demand when it is
 * not the resident one (service_model_version).
 */
#include "config.h"

#include <string.h>

#include "base/cml_alloc.h"
#include "base/parse_number.h"
#include "handlers.h"
#include "model/oip_tensor.h"
#include "request.h"

static json_object *ready_json(const char *name, const char *version, bool ready) {
    json_object *o = json_object_new_object();
    if (name != NULL)
        json_object_object_add(o, "name", json_object_new_string(name));
    if (version != NULL)
        json_object_object_add(o, "version", json_object_new_string(version));
    json_object_object_add(o, "ready", json_object_new_boolean(ready));
    return o;
}

/* The model type of {name}; answers 404 when it is none. */
static bool model_type(http_req *r, const route_args *args, cml_model_type *type) {
    if (args->param == NULL || cml_model_type_parse(args->param, type) != CML_OK) {
        http_send_api_error(r, API_ERR_OIP_UNKNOWN_MODEL, args->param ? args->param : "");
        return false;
    }
    return true;
}

/*
 * The model the route names: {v} of {name}, else the resident model of {name}. Answers the
 * error (404 unknown version, 503 not loaded or not loadable) and returns NULL when none.
 */
static cml_model *route_model(service *svc, http_req *r, const route_args *args,
                              cml_model_type type) {
    if (!service_type_available(type)) {
        http_send_api_error(r, API_ERR_BUILD_CANNOT_SERVE);
        return NULL;
    }
    if (args->param2 == NULL)
        return request_model(r, svc, type);
    cml_model *m = NULL;
    cml_diag d = {{0}};
    switch (service_model_version(svc, type, args->param2, &m, &d)) {
    case CML_OK:
        return m;
    case CML_ERR_NOT_FOUND:
        http_send_api_error(r, API_ERR_OIP_UNKNOWN_VERSION, cml_model_type_name(type),
                            args->param2);
        return NULL;
    case CML_ERR_UNSUPPORTED:
        http_send_api_error(r, API_ERR_BUILD_CANNOT_SERVE);
        return NULL;
    default:
        http_send_api_error(r, API_ERR_VERSION_LOAD_FAILED);
        return NULL;
    }
}

handler_result handle_oip_live(service *svc, http_req *r, const route_args *args) {
    (void)svc, (void)args;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "live", json_object_new_boolean(1));
    http_send_json(r, HTTP_OK, o);
    return HANDLER_DONE;
}

handler_result handle_oip_server_ready(service *svc, http_req *r, const route_args *args) {
    (void)args;
    /* Ready when every model this build serves has answered its warm-up (a slot is filled
       only after that); the protocol answers "not ready" with a 4xx. */
    bool ready = true;
    for (int t = CML_MODEL_CLASSIC; t < CML_MODEL__COUNT; t++) {
        cml_slot_info info;
        if (!service_type_available((cml_model_type)t))
            continue;
        cml_registry_info(svc->registry, (cml_model_type)t, &info);
        ready = ready && info.loaded;
    }
    http_send_json(r, ready ? HTTP_OK : HTTP_BAD_REQUEST, ready_json(NULL, NULL, ready));
    return HANDLER_DONE;
}

handler_result handle_oip_server_metadata(service *svc, http_req *r, const route_args *args) {
    (void)svc, (void)args;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(PACKAGE_NAME));
    json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
    /* Binary tensor input is read, but answers are always JSON: no extension is claimed. */
    json_object_object_add(o, "extensions", json_object_new_array());
    http_send_json(r, HTTP_OK, o);
    return HANDLER_DONE;
}

handler_result handle_oip_model_metadata(service *svc, http_req *r, const route_args *args) {
    cml_model_type type;
    if (!model_type(r, args, &type))
        return HANDLER_DONE;
    cml_model *m = route_model(svc, r, args, type);
    if (m == NULL)
        return HANDLER_DONE;
    char(*versions)[CML_VERSION_MAX] = NULL;
    size_t n = 0;
    if (service_versions(svc, type, &versions, &n) != CML_OK) {
        http_send_api_error(r, API_ERR_MODEL_LIST_UNREADABLE);
    } else {
        handlers_note_model(r, m);
        http_send_json(
            r, HTTP_OK,
            cml_oip_model_metadata(m, versions ? versions[0] : NULL, CML_VERSION_MAX, n));
    }
    cml_free(versions);
    cml_model_release(m);
    return HANDLER_DONE;
}

handler_result handle_oip_model_ready(service *svc, http_req *r, const route_args *args) {
    cml_model_type type;
    if (!model_type(r, args, &type))
        return HANDLER_DONE;
    const char *name = cml_model_type_name(type);
    cml_model *m = NULL;
    if (args->param2 == NULL) {
        m = cml_registry_acquire(svc->registry, type);
    } else {
        /* A stored version is ready once it is loaded here and answered its warm-up. */
        cml_diag d = {{0}};
        cml_err err = service_model_version(svc, type, args->param2, &m, &d);
        if (err == CML_ERR_NOT_FOUND) {
            http_send_api_error(r, API_ERR_OIP_UNKNOWN_VERSION, name, args->param2);
            return HANDLER_DONE;
        }
    }
    http_send_json(r, m ? HTTP_OK : HTTP_BAD_REQUEST,
                   ready_json(name, m ? m->version : args->param2, m != NULL));
    cml_model_release(m);
    return HANDLER_DONE;
}

/* What the predictions of an inference request are collected into. */
typedef struct infer_ctx {
    size_t n_labels;
    int *labels;
    double *probs;
} infer_ctx;

static void infer_result(void *ctx, size_t i, const cml_prediction *p) {
    infer_ctx *c = ctx;
    c->labels[i] = p->label;
    memcpy(c->probs + i * c->n_labels, p->probs, c->n_labels * sizeof *c->probs);
}

/* The JSON header's length: Inference-Header-Content-Length (binary data after it), else all. */
static bool header_length(http_req *r, size_t *json_len) {
    const char *h = http_header(r, "INFERENCE_HEADER_CONTENT_LENGTH");
    long long v = 0;
    *json_len = r->body_len;
    if (h == NULL)
        return true;
    if (!cml_parse_int(h, 0, (long long)r->body_len, &v)) {
        http_send_api_error(r, API_ERR_OIP_INVALID_REQUEST,
                            "Inference-Header-Content-Length must be a byte count within the body");
        return false;
    }
    *json_len = (size_t)v;
    return true;
}

handler_result handle_oip_infer(service *svc, http_req *r, const route_args *args) {
    cml_model_type type;
    cml_oip_infer req = {0};
    size_t json_len = 0;
    cml_diag d = {{0}};
    if (!model_type(r, args, &type))
        return HANDLER_DONE;
    /* tritonclient sends no Content-Type; binary tensor data comes as application/octet-stream. */
    if (r->content_type[0] && !http_content_type_is(r, "application/json") &&
        !http_content_type_is(r, "application/octet-stream")) {
        http_send_api_error(r, API_ERR_UNSUPPORTED_MEDIA_TYPE);
        return HANDLER_DONE;
    }
    if (r->body == NULL || r->body_len == 0) {
        http_send_api_error(r, API_ERR_MISSING_BODY);
        return HANDLER_DONE;
    }
    if (!header_length(r, &json_len))
        return HANDLER_DONE;
    cml_err err =
        cml_oip_parse_infer(r->body, r->body_len, json_len, (size_t)svc->cfg.max_batch, &req, &d);
    if (err == CML_ERR_NOMEM)
        return HANDLER_FAULT;
    if (err != CML_OK) {
        http_send_api_error(r, API_ERR_OIP_INVALID_REQUEST, d.msg);
        return HANDLER_DONE;
    }
    /* The same strict values as every JSON body: no NUL cutting the id, no NaN parameter. */
    bool ok = request_json_values_ok(r, req.root, r->body, json_len);
    for (size_t i = 0; ok && i < req.n; i++) {
        char field[48];
        snprintf(field, sizeof field, "%s[%zu]", CML_OIP_INPUT, i);
        ok = request_text_ok(r, svc, req.texts[i], field);
    }
    cml_model *m = ok ? route_model(svc, r, args, type) : NULL;
    infer_ctx ctx = {0};
    if (m != NULL) {
        ctx.n_labels = m->n_labels;
        ctx.labels = cml_calloc(req.n, sizeof *ctx.labels);
        ctx.probs = cml_calloc(req.n * m->n_labels, sizeof *ctx.probs);
        cml_feature_scratch *s = handlers_scratch();
        if (ctx.labels == NULL || ctx.probs == NULL || s == NULL ||
            cml_model_predict_each(m, s, req.texts, req.n, infer_result, &ctx) != CML_OK) {
            http_send_api_error(r, API_ERR_PREDICTION_FAILED);
        } else {
            handlers_note_model(r, m);
            http_send_json(r, HTTP_OK, cml_oip_infer_response(m, &req, ctx.labels, ctx.probs));
        }
    }
    cml_free(ctx.labels);
    cml_free(ctx.probs);
    cml_model_release(m);
    cml_oip_infer_release(&req);
    return HANDLER_DONE;
}
