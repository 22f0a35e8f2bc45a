/* Models by version for the Open Inference Protocol: resident, else loaded on demand and cached. */
#include "config.h"

#include <string.h>

#include "ops/prom.h"
#include "ops/service_log.h"
#include "service.h"

cml_err service_versions(service *svc, cml_model_type type, char (**out)[CML_VERSION_MAX],
                         size_t *n) {
    *out = NULL;
    *n = 0;
    if (cml_model_type_name(type) == NULL)
        return CML_ERR_INVALID;
    return cml_local_store_list(svc->cfg.model_cache_dir, cml_model_type_name(type), out, n);
}

/* The cached model of type and version moved to the front, with a new reference; or NULL. */
static cml_model *cache_take(service *svc, cml_model_type type, const char *version) {
    cml_model *hit = NULL;
    pthread_mutex_lock(&svc->versions_lock);
    for (size_t i = 0; i < SERVICE_VERSION_CACHE && hit == NULL; i++) {
        cml_model *m = svc->versions[i];
        if (m == NULL || m->type != type || strcmp(m->version, version) != 0)
            continue;
        memmove(&svc->versions[1], &svc->versions[0], i * sizeof svc->versions[0]);
        svc->versions[0] = m;
        hit = cml_model_retain(m);
    }
    pthread_mutex_unlock(&svc->versions_lock);
    return hit;
}

/* Puts m (a new reference) at the front, dropping the least recently used version. */
static void cache_put(service *svc, cml_model *m) {
    pthread_mutex_lock(&svc->versions_lock);
    cml_model *dropped = svc->versions[SERVICE_VERSION_CACHE - 1];
    memmove(&svc->versions[1], &svc->versions[0],
            (SERVICE_VERSION_CACHE - 1) * sizeof svc->versions[0]);
    svc->versions[0] = cml_model_retain(m);
    pthread_mutex_unlock(&svc->versions_lock);
    cml_model_release(dropped);
}

cml_err service_model_version(service *svc, cml_model_type type, const char *version,
                              cml_model **out, cml_diag *diag) {
    *out = NULL;
    if (cml_model_type_name(type) == NULL || !service_type_available(type))
        return cml_diag_set(diag, CML_ERR_UNSUPPORTED, "this build cannot serve that model");
    cml_model *m = cml_registry_acquire(svc->registry, type);
    if (m != NULL && strcmp(m->version, version) == 0) {
        *out = m;
        return CML_OK;
    }
    cml_model_release(m);
    if ((*out = cache_take(svc, type, version)) != NULL)
        return CML_OK;
    /* Two threads asking for the same version at once may both load it; the cache keeps
       both for a while, which costs memory briefly, never a wrong answer. */
    cml_err err = service_load_version(svc, type, version, &m, diag);
    if (err != CML_OK)
        return err;
    double ms = 0;
    cml_diag d = {{0}};
    if (cml_model_warm_up(m, &ms, &d) != CML_OK) {
        cml_model_release(m);
        cml_prom_inc(CML_M_MODEL_LOAD_FAILURES, 1);
        return cml_diag_set(diag, CML_ERR_FORMAT, "%s", d.msg);
    }
    cml_prom_inc(CML_M_MODEL_LOADS, 1);
    cml_log(CML_LOG_INFO, "version_loaded_on_demand", "model", cml_model_type_name(type), "version",
            version, NULL);
    cache_put(svc, m);
    *out = m;
    return CML_OK;
}

void service_versions_release(service *svc) {
    pthread_mutex_lock(&svc->versions_lock);
    for (size_t i = 0; i < SERVICE_VERSION_CACHE; i++) {
        cml_model_release(svc->versions[i]);
        svc->versions[i] = NULL;
    }
    pthread_mutex_unlock(&svc->versions_lock);
}
