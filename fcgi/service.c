#include "config.h"

#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "base/cml_alloc.h"
#include "learn/dataset.h"
#include "model/local_store.h"
#include "model/model_catalog.h"
#include "model/model_file.h"
#include "ops/service_log.h"
#include "ops/prom.h"
#include "storage_sync.h"
#include "learn/trainer.h"

static const cml_model_type all_types[] = {CML_MODEL_ENSEMBLE, CML_MODEL_CLASSIC};

bool service_type_available(cml_model_type t) {
    const cml_member_ops *ops[CML_MAX_MEMBERS];
    return cml_model_type_members(t, ops, CML_MAX_MEMBERS) > 0;
}

void service_record_model(service *svc, const cml_model *m, bool local, bool blob) {
    cml_catalog_record(svc->state, m, local, blob);
}

static bool process_alive(int64_t pid) { return kill((pid_t)pid, 0) == 0 || errno == EPERM; }

/* Trains a model of type t on the configured data and stores it as the latest version. */
static cml_err train_default(service *svc, cml_model_type t, cml_diag *diag) {
    cml_dataset *ds = NULL;
    cml_model *m = NULL;
    cml_train_options o;
    const char *name = cml_model_type_name(t);
    cml_log(CML_LOG_INFO, "training_default_model", "model", name, "data", svc->cfg.training_data,
            NULL);
    cml_err err = cml_csv_read_file(svc->cfg.training_data, NULL, &ds, diag);
    if (err != CML_OK)
        goto done;
    cml_train_options_init(&o, t);
    if ((err = cml_train(ds, &o, &m, NULL, diag)) != CML_OK)
        goto done;
    if ((err = cml_local_store_save(svc->cfg.model_cache_dir, m, false, diag)) != CML_OK ||
        (err = cml_catalog_publish(svc->state, svc->cfg.model_cache_dir, m, NULL,
                                   (size_t)svc->cfg.retain_versions, diag)) != CML_OK)
        goto done;
    cml_log(CML_LOG_INFO, "trained_default_model", "model", name, "version", m->version, NULL);
done:
    cml_model_release(m);
    cml_dataset_free(ds);
    return err;
}

/* Makes sure every available type has a latest version in the local store. */
static cml_err ensure_models(service *svc, cml_diag *diag) {
    char lock_path[4096], v[CML_VERSION_MAX];
    snprintf(lock_path, sizeof lock_path, "%s/bootstrap.lock", svc->cfg.state_dir);
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return cml_diag_set(diag, CML_ERR_IO, "cannot open %s: %s", lock_path, strerror(errno));
    /* Workers starting together: one trains, the others wait and then find the model. */
    flock(fd, LOCK_EX);
    cml_err err = CML_OK;
    for (size_t i = 0; i < 2 && err == CML_OK; i++) {
        cml_model_type t = all_types[i];
        if (!service_type_available(t))
            continue;
        if (cml_local_store_latest(svc->cfg.model_cache_dir, cml_model_type_name(t), v) == CML_OK)
            continue;
        err = train_default(svc, t, diag);
    }
    flock(fd, LOCK_UN);
    close(fd);
    return err;
}

/* Registers every version present in the local store that the shared state does not know. */
static void reconcile_store(service *svc) {
    for (size_t i = 0; i < 2; i++) {
        const char *name = cml_model_type_name(all_types[i]);
        char(*versions)[CML_VERSION_MAX] = NULL;
        size_t n = 0;
        cml_model_record *known = NULL;
        size_t nk = 0;
        if (cml_local_store_list(svc->cfg.model_cache_dir, name, &versions, &n) != CML_OK)
            continue;
        cml_state_list_models(svc->state, name, &known, &nk);
        for (size_t k = 0; k < n; k++) {
            bool found = false;
            for (size_t j = 0; j < nk && !found; j++)
                found = strcmp(known[j].version, versions[k]) == 0 && known[j].local;
            if (found)
                continue;
            char path[4096];
            cml_model *m = NULL;
            cml_diag d;
            cml_local_store_path(svc->cfg.model_cache_dir, name, versions[k], path, sizeof path);
            if (cml_model_load(path, &m, &d) == CML_OK)
                service_record_model(svc, m, true, false);
            cml_model_release(m);
        }
        cml_model_records_free(known, nk);
        cml_free(versions);
    }
}

/* The version a type should run: the pinned one, else the local latest. */
static bool desired_version(service *svc, const cml_selection *sel, cml_model_type t,
                            char out[CML_VERSION_MAX]) {
    const char *pinned = t == CML_MODEL_CLASSIC ? sel->classic_version : sel->ensemble_version;
    if (pinned[0]) {
        snprintf(out, CML_VERSION_MAX, "%s", pinned);
        return true;
    }
    return cml_local_store_latest(svc->cfg.model_cache_dir, cml_model_type_name(t), out) == CML_OK;
}

/* Loads what the stored selection names into this process. Caller holds sync_lock. */
static cml_err apply_locked(service *svc, cml_diag *diag) {
    cml_selection sel;
    uint64_t gen = cml_state_generation(svc->state);
    cml_err err = cml_state_get_selection(svc->state, &sel);
    if (err != CML_OK)
        return cml_diag_set(diag, err, "cannot read the model selection");
    cml_err first = CML_OK;
    for (size_t i = 0; i < 2; i++) {
        cml_model_type t = all_types[i];
        char want[CML_VERSION_MAX];
        cml_slot_info info;
        if (!service_type_available(t) || !desired_version(svc, &sel, t, want))
            continue;
        cml_registry_info(svc->registry, t, &info);
        if (info.loaded && strcmp(info.version, want) == 0)
            continue;
        cml_diag d = {{0}};
        err = cml_registry_load(svc->registry, t, want, &d);
        cml_prom_inc(err == CML_OK ? CML_M_MODEL_LOADS : CML_M_MODEL_LOAD_FAILURES, 1);
        cml_log(err == CML_OK ? CML_LOG_INFO : CML_LOG_ERROR,
                err == CML_OK ? "model_loaded" : "model_load_failed", "model",
                cml_model_type_name(t), "version", want, "reason", err == CML_OK ? "" : d.msg,
                NULL);
        if (err != CML_OK && first == CML_OK) {
            first = err;
            if (diag)
                *diag = d;
        }
    }
    cml_model_type active;
    if (cml_model_type_parse(sel.active_type, &active) == CML_OK)
        atomic_store(&svc->active_type, (int)active);
    atomic_store(&svc->seen_generation, gen);
    size_t bytes = 0;
    for (size_t i = 0; i < 2; i++) {
        cml_slot_info info;
        cml_registry_info(svc->registry, all_types[i], &info);
        bytes += info.bytes;
    }
    cml_prom_set_process(bytes, cml_alloc_in_use());
    return first;
}

cml_err service_apply_selection(service *svc, cml_diag *diag) {
    pthread_mutex_lock(&svc->sync_lock);
    cml_err err = apply_locked(svc, diag);
    pthread_mutex_unlock(&svc->sync_lock);
    return err;
}

void service_sync(service *svc) {
    uint64_t gen = cml_state_generation(svc->state);
    if (gen == atomic_load_explicit(&svc->seen_generation, memory_order_acquire))
        return;
    pthread_mutex_lock(&svc->sync_lock);
    /* Another thread may have applied it while this one waited. */
    if (cml_state_generation(svc->state) != atomic_load(&svc->seen_generation))
        apply_locked(svc, NULL);
    pthread_mutex_unlock(&svc->sync_lock);
}

static void parse_cors(service *svc) {
    const char *s = svc->cfg.cors_allowed_origins;
    size_t o = 0;
    svc->cors[0] = '\0';
    svc->cors_any = false;
    while (*s) {
        while (*s == ' ' || *s == ',')
            s++;
        size_t n = strcspn(s, ", ");
        if (n == 1 && *s == '*')
            svc->cors_any = true;
        else if (n > 0 && o + n + 3 < sizeof svc->cors)
            o += (size_t)snprintf(svc->cors + o, sizeof svc->cors - o, ",%.*s", (int)n, s);
        s += n;
    }
    if (o > 0)
        snprintf(svc->cors + o, sizeof svc->cors - o, ",");
}

cml_err service_start(service *svc, cml_diag *diag) {
    char path[4096];
    cml_err err;
    pthread_mutex_init(&svc->sync_lock, NULL);
    svc->started_at = (int64_t)time(NULL);
    parse_cors(svc);
    if (svc->cfg.api_key[0]) {
        unsigned int len = 0;
        svc->have_api_key = EVP_Digest(svc->cfg.api_key, strlen(svc->cfg.api_key),
                                       svc->api_key_sha256, &len, EVP_sha256(), NULL) == 1;
    }
    if ((err = cml_state_open(svc->cfg.state_dir, &svc->state, diag)) != CML_OK)
        return err;
    snprintf(path, sizeof path, "%s/metrics", svc->cfg.state_dir);
    if ((err = cml_prom_open(path, diag)) != CML_OK)
        return err;
    svc->registry = cml_registry_new(svc->cfg.model_cache_dir);
    if (svc->registry == NULL)
        return CML_ERR_NOMEM;
    cml_model_type wanted;
    if (cml_model_type_parse(svc->cfg.model_type, &wanted) != CML_OK ||
        !service_type_available(wanted))
        return cml_diag_set(
            diag, CML_ERR_CONFIG,
            "model_type: this build cannot serve '%s' (built without XGBoost or FANN)",
            svc->cfg.model_type);
    cml_state_jobs_reap(svc->state, process_alive);
    if ((err = storage_open(svc, diag)) != CML_OK)
        return err;
    storage_pull_models(svc); /* what the blob store has, the cache gets first */
    if ((err = ensure_models(svc, diag)) != CML_OK)
        return err;
    reconcile_store(svc);
    cml_selection sel;
    if ((err = cml_state_init_selection(svc->state, svc->cfg.model_type, &sel)) != CML_OK)
        return cml_diag_set(diag, err, "cannot initialise the model selection");
    storage_publish_and_adopt(svc); /* models trained here; the fleet's selection */
    cml_diag d = {{0}};
    if (service_apply_selection(svc, &d) != CML_OK)
        cml_log(CML_LOG_ERROR, "start_degraded", "reason", d.msg, NULL);
    storage_start_thread(svc);
    return CML_OK;
}

void service_stop(service *svc) {
    storage_stop_thread(svc);
    cml_registry_free(svc->registry);
    cml_state_close(svc->state);
    cml_prom_close();
    cml_config_release(&svc->cfg);
    pthread_mutex_destroy(&svc->sync_lock);
}

/* --- handler helpers -------------------------------------------------------- */

json_object *handler_json_body(http_req *r, bool body_required) {
    if (r->body == NULL || r->body_len == 0) {
        if (!body_required)
            return NULL;
        http_send_error(r, 400, "missing_body", "The request needs a JSON body.", NULL);
        return NULL;
    }
    if (!http_content_type_is(r, "application/json")) {
        http_send_error(r, 415, "unsupported_media_type", "Send the body as application/json.",
                        NULL);
        return NULL;
    }
    if (!cml_utf8_valid(r->body, r->body_len)) {
        http_send_error(r, 400, "invalid_utf8", "The body is not valid UTF-8.", NULL);
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(64);
    json_object *o = NULL;
    if (tok != NULL) {
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, r->body, (int)r->body_len);
        enum json_tokener_error e = json_tokener_get_error(tok);
        if (e != json_tokener_success || (size_t)json_tokener_get_parse_end(tok) != r->body_len) {
            json_object_put(o);
            o = NULL;
        }
        json_tokener_free(tok);
    }
    if (o == NULL) {
        http_send_error(r, 400, "malformed_json", "The body is not well-formed JSON.", NULL);
        return NULL;
    }
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        http_send_error(r, 400, "malformed_json", "The body must be a JSON object.", NULL);
        return NULL;
    }
    return o;
}

const char *handler_string_field(http_req *r, json_object *o, const char *key, bool *bad) {
    json_object *v;
    if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
        json_object_is_type(v, json_type_null))
        return NULL;
    if (!json_object_is_type(v, json_type_string)) {
        char detail[128];
        snprintf(detail, sizeof detail, "Field '%s' must be a string.", key);
        http_send_error(r, 400, "wrong_type", detail, NULL);
        *bad = true;
        return NULL;
    }
    return json_object_get_string(v);
}

bool handler_text_ok(http_req *r, const service *svc, const char *text, const char *field) {
    char detail[160];
    if (text == NULL) {
        snprintf(detail, sizeof detail, "Field '%s' is required.", field);
        http_send_error(r, 400, "missing_field", detail, NULL);
        return false;
    }
    const char *a = text, *e = text + strlen(text);
    while (a < e && (*a == ' ' || *a == '\t' || *a == '\n' || *a == '\r'))
        a++;
    while (e > a && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        e--;
    long long chars = 0;
    for (const char *p = a; p < e; p++)
        chars += ((unsigned char)*p & 0xC0) != 0x80;
    if (!cml_utf8_valid(text, strlen(text))) {
        http_send_error(r, 400, "invalid_utf8", "The text is not valid UTF-8.", NULL);
        return false;
    }
    if (chars < 1 || chars > svc->cfg.max_text_chars) {
        snprintf(detail, sizeof detail, "Field '%s' must hold 1 to %lld characters after trimming.",
                 field, (long long)svc->cfg.max_text_chars);
        http_send_error(r, 400, "invalid_text", detail, NULL);
        return false;
    }
    return true;
}

cml_model *handler_model(http_req *r, service *svc, cml_model_type type) {
    cml_model *m = cml_registry_acquire(svc->registry, type);
    if (m == NULL) {
        char detail[160];
        snprintf(detail, sizeof detail, "The %s model is not loaded; try again later.",
                 cml_model_type_name(type) ? cml_model_type_name(type) : "requested");
        http_send_error(r, 503, "model_unavailable", detail, "Retry-After: 5");
    }
    return m;
}

json_object *handler_probabilities(const cml_model *m, const double *probs) {
    json_object *o = json_object_new_object();
    for (size_t c = 0; c < m->n_labels; c++)
        json_object_object_add(o, m->labels[c], json_object_new_double(probs[c]));
    return o;
}

const char *handler_iso_time(int64_t t, char *buf, size_t cap) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

json_object *handler_model_metrics(const cml_model *m, const char *which) {
    if (m->metrics_json == NULL)
        return NULL;
    json_object *all = json_tokener_parse(m->metrics_json), *part = NULL;
    if (all && json_object_object_get_ex(all, which, &part))
        part = json_object_get(part);
    json_object_put(all);
    return part;
}
