/* Retraining, job status, evaluation, history and the ensemble/classic comparison. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "base/cml_alloc.h"
#include "base/parse_number.h"
#include "learn/hyperparams.h"
#include "handlers.h"
#include "request.h"
#include "response.h"

#define MAX_JOB_PARAMS 24

/* Flattens hyperparameters ({"k": v} or {"member": {"k": v}}) into KEY=VALUE strings, validated. */
static bool collect_params(http_req *r, json_object *hp, cml_model_type type, char **out,
                           size_t *n) {
    cml_train_options scratch;
    cml_diag d = {{0}};
    cml_train_options_init(&scratch, type);
    *n = 0;
    json_object_object_foreach(hp, key, val) {
        json_object *items = val;
        bool nested = json_object_is_type(val, json_type_object);
        json_object *single = NULL;
        if (!nested) {
            single = json_object_new_object();
            json_object_object_add(single, "", json_object_get(val));
            items = single;
        }
        json_object_object_foreach(items, sub, v) {
            char name[160], value[64];
            snprintf(name, sizeof name, "%s%s%s", key, nested ? "." : "", nested ? sub : "");
            if (!(json_object_is_type(v, json_type_int) ||
                  json_object_is_type(v, json_type_double))) {
                snprintf(d.msg, sizeof d.msg, "hyperparameter '%s' must be a number", name);
                goto bad;
            }
            snprintf(value, sizeof value, "%.17g", json_object_get_double(v));
            if (cml_hyperparam_set(&scratch, name, value, &d) != CML_OK || *n >= MAX_JOB_PARAMS)
                goto bad;
            size_t len = strlen(name) + strlen(value) + 2;
            out[*n] = cml_malloc(len);
            if (out[*n] == NULL)
                goto bad;
            snprintf(out[(*n)++], len, "%s=%s", name, value);
        }
        json_object_put(single);
        continue;
    bad:
        json_object_put(single);
        for (size_t i = 0; i < *n; i++)
            cml_free(out[i]);
        *n = 0;
        http_send_api_error(r, API_ERR_INVALID_HYPERPARAMETER,
                            d.msg[0] ? d.msg : "too many hyperparameters");
        return false;
    }
    return true;
}

handler_result handle_retrain(service *svc, http_req *r, const route_args *args) {
    (void)args;
    bool bad = false, use_azure = false, include_feedback = false;
    json_object *body = NULL, *hp = NULL;
    const char *csv = NULL;
    size_t csv_len = 0;
    char type_name[16] = "";
    char *params[MAX_JOB_PARAMS];
    size_t n_params = 0;
    cml_dataset *ds = NULL;
    cml_diag d = {{0}};

    if (http_content_type_is(r, "text/csv")) {
        if (!http_query_param(r, "model_type", type_name, sizeof type_name)) {
            http_send_api_error(r, API_ERR_CSV_NEEDS_MODEL_TYPE);
            goto done;
        }
        if (r->body == NULL || r->body_len == 0) {
            http_send_api_error(r, API_ERR_EMPTY_CSV);
            goto done;
        }
        csv = r->body;
        csv_len = r->body_len;
    } else {
        if ((body = request_json_body(r, true)) == NULL)
            goto done;
        const char *t = request_string_field(r, body, "model_type", &bad);
        csv = bad ? NULL : request_string_field(r, body, "data", &bad);
        if (bad)
            goto done;
        snprintf(type_name, sizeof type_name, "%s", t ? t : "");
        csv_len = csv ? strlen(csv) : 0;
        if (!request_bool_field(r, body, "use_azure", &use_azure) ||
            !request_bool_field(r, body, "include_feedback", &include_feedback))
            goto done;
        if (json_object_object_get_ex(body, "hyperparameters", &hp) &&
            !json_object_is_type(hp, json_type_null) &&
            !json_object_is_type(hp, json_type_object)) {
            http_send_api_error(r, API_ERR_NOT_AN_OBJECT_FIELD, "hyperparameters");
            goto done;
        }
    }
    cml_model_type type;
    if (cml_model_type_parse(type_name, &type) != CML_OK) {
        http_send_api_error(r, API_ERR_UNKNOWN_MODEL_TYPE);
        goto done;
    }
    if (!service_type_available(type)) {
        http_send_api_error(r, API_ERR_BUILD_CANNOT_TRAIN);
        goto done;
    }
    if (hp && json_object_is_type(hp, json_type_object) &&
        !collect_params(r, hp, type, params, &n_params))
        goto done;

    service_retrain_data req = {.type = type,
                                .csv = csv,
                                .csv_len = csv_len,
                                .use_azure = use_azure,
                                .include_feedback = include_feedback,
                                .params = params,
                                .n_params = n_params};
    switch (service_retrain_data_load(svc, &req, &ds, &d)) {
    case CML_OK:
        break;
    case CML_ERR_CONFIG:
        http_send_api_error(r, API_ERR_STORAGE_DISABLED);
        goto done;
    case CML_ERR_NOT_FOUND:
        http_send_api_error(r, API_ERR_NO_TRAINING_DATA);
        goto done;
    case CML_ERR_STORAGE:
        http_send_api_error(r, API_ERR_STORAGE_UNREACHABLE);
        goto done;
    case CML_ERR_IO:
        http_send_api_error(r, API_ERR_FEEDBACK_UNREADABLE);
        goto done;
    case CML_ERR_UNAVAILABLE:
        http_send_api_error(r, API_ERR_STATE_UNAVAILABLE);
        goto done;
    default:
        http_send_api_error(r, API_ERR_BAD_TRAINING_DATA, d.msg);
        goto done;
    }
    service_retrain_job job;
    switch (service_start_retrain(svc, &req, ds, &job, &d)) {
    case CML_OK:
        break;
    case CML_ERR_IO:
        http_send_api_error(r, API_ERR_JOB_DATA_NOT_WRITTEN);
        goto done;
    case CML_ERR_CONFLICT:
        http_send_api_error(r, API_ERR_TRAINING_IN_PROGRESS);
        goto done;
    case CML_ERR_UNAVAILABLE:
        http_send_api_error(r, API_ERR_STATE_UNAVAILABLE);
        goto done;
    default:
        http_send_api_error(r, API_ERR_TRAINING_NOT_STARTED);
        goto done;
    }
    json_object *o = json_object_new_object();
    char msg[160];
    snprintf(msg, sizeof msg, "Training a %s model on %zu rows.", type_name, ds->n);
    json_object_object_add(o, "task_id", json_object_new_string(job.task_id));
    json_object_object_add(o, "status", json_object_new_string("started"));
    json_object_object_add(o, "message", json_object_new_string(msg));
    json_object_object_add(o, "estimated_time", json_object_new_double(job.estimated_s));
    json_object_object_add(o, "n_rows", json_object_new_int64((int64_t)ds->n));
    http_send_json(r, HTTP_ACCEPTED, o);
done:
    for (size_t i = 0; i < n_params; i++)
        cml_free(params[i]);
    cml_dataset_free(ds);
    json_object_put(body);
    return HANDLER_DONE;
}

static json_object *job_json(const cml_job *j) {
    char ts[32];
    json_object *o = json_object_new_object();
    bool running = j->status == CML_JOB_RUNNING;
    json_object_object_add(o, "is_training", json_object_new_boolean(running));
    json_object_object_add(o, "task_id", json_object_new_string(j->task_id));
    json_object_object_add(o, "model_type", json_object_new_string(j->model_type));
    json_object_object_add(o, "status", json_object_new_string(cml_job_status_name(j->status)));
    json_object_object_add(o, "progress", json_object_new_double(j->progress));
    json_object_object_add(o, "current_task", json_object_new_string(j->current_task));
    json_object_object_add(o, "start_time",
                           json_object_new_string(response_iso_time(j->start_time, ts, sizeof ts)));
    json_object_object_add(
        o, "finished_at",
        j->finished_at ? json_object_new_string(response_iso_time(j->finished_at, ts, sizeof ts))
                       : NULL);
    json_object_object_add(o, "error", j->error[0] ? json_object_new_string(j->error) : NULL);
    json_object_object_add(o, "version", j->version[0] ? json_object_new_string(j->version) : NULL);
    return o;
}

handler_result handle_training_status(service *svc, http_req *r, const route_args *args) {
    const char *task_id = args->param;
    cml_job job;
    service_reap_jobs(svc); /* the status follows the trainer, whoever started it */
    cml_err err = task_id ? cml_state_job_get(svc->state, task_id, &job)
                          : cml_state_job_latest(svc->state, &job);
    if (err == CML_ERR_NOT_FOUND && task_id) {
        http_send_api_error(r, API_ERR_UNKNOWN_TASK);
        return HANDLER_DONE;
    }
    if (err == CML_ERR_NOT_FOUND) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "is_training", json_object_new_boolean(0));
        json_object_object_add(o, "task_id", NULL);
        json_object_object_add(o, "model_type", NULL);
        json_object_object_add(o, "status", json_object_new_string("idle"));
        json_object_object_add(o, "progress", json_object_new_double(0));
        json_object_object_add(o, "current_task", NULL);
        json_object_object_add(o, "start_time", NULL);
        json_object_object_add(o, "finished_at", NULL);
        json_object_object_add(o, "error", NULL);
        http_send_json(r, HTTP_OK, o);
        return HANDLER_DONE;
    }
    if (err != CML_OK)
        return HANDLER_FAULT;
    http_send_json(r, HTTP_OK, job_json(&job));
    return HANDLER_DONE;
}

/* The metrics object of the API from computed metrics. */
static json_object *metrics_json(const cml_metrics *m) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "accuracy", json_object_new_double(m->accuracy));
    json_object_object_add(o, "precision_macro", json_object_new_double(m->precision_macro));
    json_object_object_add(o, "recall_macro", json_object_new_double(m->recall_macro));
    json_object_object_add(o, "f1_macro", json_object_new_double(m->f1_macro));
    json_object_object_add(o, "mcc", json_object_new_double(m->mcc));
    json_object_object_add(o, "log_loss", json_object_new_double(m->log_loss));
    if (isfinite(m->roc_auc))
        json_object_object_add(o, "roc_auc", json_object_new_double(m->roc_auc));
    return o;
}

handler_result handle_evaluate(service *svc, http_req *r, const route_args *args) {
    (void)args;
    bool bad = false;
    cml_model *m = NULL;
    cml_metrics met = {0};
    cml_diag d = {{0}};
    json_object *body = request_json_body(r, false);
    if (r->answered)
        return HANDLER_DONE;
    const char *type_name = request_string_field(r, body, "model_type", &bad);
    const char *version = bad ? NULL : request_string_field(r, body, "version", &bad);
    const char *csv = bad ? NULL : request_string_field(r, body, "data", &bad);
    if (bad)
        goto done;
    cml_model_type type = (cml_model_type)atomic_load(&svc->active_type);
    if (type_name && cml_model_type_parse(type_name, &type) != CML_OK) {
        http_send_api_error(r, API_ERR_UNKNOWN_MODEL_TYPE);
        goto done;
    }
    if (version) {
        cml_err err = service_load_version(svc, type, version, &m, &d);
        if (err != CML_OK) {
            http_send_api_error(r, err == CML_ERR_NOT_FOUND ? API_ERR_UNKNOWN_VERSION
                                                            : API_ERR_VERSION_LOAD_FAILED);
            goto done;
        }
    } else if ((m = request_model(r, svc, type)) == NULL) {
        goto done;
    }
    switch (service_evaluate(m, csv, &met, &d)) {
    case CML_OK:
        break;
    case CML_ERR_CSV:
        http_send_api_error(r, API_ERR_BAD_EVALUATION_DATA, d.msg);
        goto done;
    case CML_ERR_NOT_FOUND:
        http_send_api_error(r, API_ERR_NO_HOLDOUT);
        goto done;
    default:
        http_send_api_error(r, API_ERR_UNSCORABLE_DATA, d.msg);
        goto done;
    }
    r->model = cml_model_type_name(m->type);
    snprintf(r->version, sizeof r->version, "%s", m->version);
    char ts[32];
    json_object *o = json_object_new_object(), *labels = json_object_new_array(),
                *cm = json_object_new_array(), *rep = json_object_new_object();
    for (size_t c = 0; c < m->n_labels; c++) {
        json_object_array_add(labels, json_object_new_string(m->labels[c]));
        json_object *row = json_object_new_array();
        for (size_t k = 0; k < m->n_labels; k++)
            json_object_array_add(
                row, json_object_new_int64((int64_t)met.confusion[c * m->n_labels + k]));
        json_object_array_add(cm, row);
        json_object *cr = json_object_new_object();
        json_object_object_add(cr, "precision", json_object_new_double(met.per_class[c].precision));
        json_object_object_add(cr, "recall", json_object_new_double(met.per_class[c].recall));
        json_object_object_add(cr, "f1", json_object_new_double(met.per_class[c].f1));
        json_object_object_add(cr, "support",
                               json_object_new_int64((int64_t)met.per_class[c].support));
        json_object_object_add(rep, m->labels[c], cr);
    }
    json_object *mj = metrics_json(&met);
    json_object_object_add(o, "model_type", json_object_new_string(cml_model_type_name(m->type)));
    json_object_object_add(o, "model_version", json_object_new_string(m->version));
    json_object_object_add(o, "n", json_object_new_int64((int64_t)met.n));
    json_object_object_add(o, "data", json_object_new_string(csv ? "uploaded" : "holdout"));
    json_object_object_add(o, "metrics", mj);
    json_object_object_add(o, "labels", labels);
    json_object_object_add(o, "confusion_matrix", cm);
    json_object_object_add(o, "classification_report", rep);
    json_object_object_add(o, "loss", json_object_new_double(met.log_loss));
    json_object_object_add(o, "timestamp",
                           json_object_new_string(response_iso_time(time(NULL), ts, sizeof ts)));
    cml_state_add_evaluation(svc->state, cml_model_type_name(m->type), m->version, (int64_t)met.n,
                             json_object_to_json_string_ext(mj, JSON_C_TO_STRING_PLAIN));
    http_send_json(r, HTTP_OK, o);
done:
    cml_eval_release(&met);
    cml_model_release(m);
    json_object_put(body);
    return HANDLER_DONE;
}

handler_result handle_history(service *svc, http_req *r, const route_args *args) {
    (void)args;
    char buf[64], ts[32];
    long long limit = 10;
    const char *type = NULL;
    if (http_query_param(r, "limit", buf, sizeof buf)) {
        if (!cml_parse_int(buf, 1, 10000, &limit)) {
            http_send_api_error(r, API_ERR_INVALID_LIMIT);
            return HANDLER_DONE;
        }
    }
    char tbuf[16];
    cml_model_type t;
    if (http_query_param(r, "model_type", tbuf, sizeof tbuf) && tbuf[0]) {
        if (cml_model_type_parse(tbuf, &t) != CML_OK) {
            http_send_api_error(r, API_ERR_UNKNOWN_MODEL_TYPE);
            return HANDLER_DONE;
        }
        type = tbuf;
    }
    cml_history_entry *h = NULL;
    size_t n = 0;
    if (cml_state_list_history(svc->state, type, (size_t)limit, &h, &n) != CML_OK)
        return HANDLER_FAULT;
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_new_object(), *metrics = NULL;
        json_object *all = h[i].metrics_json ? json_tokener_parse(h[i].metrics_json) : NULL;
        if (all && json_object_object_get_ex(all, "holdout", &metrics))
            metrics = json_object_get(metrics);
        json_object_put(all);
        json_object_object_add(o, "task_id",
                               h[i].task_id[0] ? json_object_new_string(h[i].task_id) : NULL);
        json_object_object_add(o, "model_type", json_object_new_string(h[i].model_type));
        json_object_object_add(o, "version", json_object_new_string(h[i].version));
        json_object_object_add(
            o, "timestamp",
            json_object_new_string(response_iso_time(h[i].timestamp, ts, sizeof ts)));
        json_object_object_add(o, "metrics", metrics);
        json_object_object_add(o, "training_time", json_object_new_double(h[i].training_time));
        json_object_object_add(o, "n_train", json_object_new_int64(h[i].n_train));
        json_object_object_add(o, "n_test", json_object_new_int64(h[i].n_test));
        json_object_array_add(a, o);
    }
    cml_history_free(h, n);
    http_send_json(r, HTTP_OK, a);
    return HANDLER_DONE;
}

static json_object *side_json(const service_side *s) {
    char ts[32];
    if (!s->present)
        return NULL;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "accuracy", json_object_new_double(s->acc));
    json_object_object_add(o, "f1_score", json_object_new_double(s->f1));
    json_object_object_add(o, "training_time", json_object_new_double(s->train_s));
    json_object_object_add(o, "timestamp",
                           json_object_new_string(response_iso_time(s->ts, ts, sizeof ts)));
    json_object_object_add(o, "version", json_object_new_string(s->version));
    if (isfinite(s->latency_ms))
        json_object_object_add(o, "latency_ms", json_object_new_double(s->latency_ms));
    return o;
}

handler_result handle_comparison(service *svc, http_req *r, const route_args *args) {
    (void)args;
    service_comparison cmp;
    service_compare(svc, &cmp);
    json_object *o = json_object_new_object(), *rec = NULL;
    json_object_object_add(o, "ensemble", side_json(&cmp.side[CML_MODEL_ENSEMBLE]));
    json_object_object_add(o, "classic", side_json(&cmp.side[CML_MODEL_CLASSIC]));
    if (cmp.recommended) {
        rec = json_object_new_object();
        json_object_object_add(rec, "model", json_object_new_string(cml_model_type_name(cmp.pick)));
        json_object_object_add(rec, "reason", json_object_new_string(cmp.reason));
        json_object_object_add(rec, "evidence", json_object_new_string(cmp.evidence));
    }
    json_object_object_add(o, "recommendation", rec);
    json_object *live = service_live_json(svc, cmp.fb);
    if (live == NULL) {
        json_object_put(o);
        return HANDLER_FAULT;
    }
    json_object_object_add(o, "live", live);
    http_send_json(r, HTTP_OK, o);
    return HANDLER_DONE;
}

handler_result handle_live_history(service *svc, http_req *r, const route_args *args) {
    (void)args;
    char buf[64], tbuf[16];
    long long days = 30;
    const char *type = NULL;
    cml_model_type t;
    if (http_query_param(r, "days", buf, sizeof buf) && !cml_parse_int(buf, 1, 366, &days)) {
        http_send_api_error(r, API_ERR_INVALID_DAYS);
        return HANDLER_DONE;
    }
    if (http_query_param(r, "model_type", tbuf, sizeof tbuf) && tbuf[0]) {
        if (cml_model_type_parse(tbuf, &t) != CML_OK) {
            http_send_api_error(r, API_ERR_UNKNOWN_MODEL_TYPE);
            return HANDLER_DONE;
        }
        type = tbuf;
    }
    json_object *rows = NULL;
    if (service_live_history(svc, (int)days, type, &rows) != CML_OK)
        return HANDLER_FAULT;
    http_send_json(r, HTTP_OK, rows);
    return HANDLER_DONE;
}
