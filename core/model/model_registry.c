#include "config.h"

#include "model/model_registry.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/cml_alloc.h"
#include "model/local_store.h"
#include "model/model_file.h"

typedef struct slot {
    cml_model *model;
    int64_t loaded_at;
    double warmup_ms;
    uint64_t loads, failures;
} slot;

struct cml_registry {
    char *dir;
    pthread_mutex_t lock;         /* guards the pointers only; never held while loading */
    slot slots[CML_MODEL__COUNT]; /* indexed by cml_model_type */
};

cml_registry *cml_registry_new(const char *store_dir) {
    cml_registry *r = cml_calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->dir = cml_strdup(store_dir);
    if (r->dir == NULL) {
        cml_free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

void cml_registry_free(cml_registry *r) {
    if (r == NULL)
        return;
    for (size_t i = 0; i < CML_MODEL__COUNT; i++)
        cml_model_release(r->slots[i].model);
    pthread_mutex_destroy(&r->lock);
    cml_free(r->dir);
    cml_free(r);
}

static double ms_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

cml_err cml_model_warm_up(const cml_model *m, double *ms, cml_diag *diag) {
    static const char *probe = "What do you think will happen if we add more water?";
    struct timespec t0;
    cml_prediction p;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cml_feature_scratch *s = cml_feature_scratch_new();
    if (s == NULL)
        return CML_ERR_NOMEM;
    cml_err err = cml_model_predict(m, s, probe, strlen(probe), &p);
    cml_feature_scratch_free(s);
    if (err != CML_OK)
        return cml_diag_set(diag, err, "warm-up prediction failed: %s", cml_strerror(err));
    double sum = 0;
    for (size_t c = 0; c < m->n_labels; c++) {
        if (!isfinite(p.probs[c]) || p.probs[c] < 0 || p.probs[c] > 1)
            return cml_diag_set(diag, CML_ERR_FORMAT, "warm-up prediction gave a bad probability");
        sum += p.probs[c];
    }
    if (fabs(sum - 1.0) > 1e-6)
        return cml_diag_set(diag, CML_ERR_FORMAT, "warm-up probabilities do not sum to one");
    if (ms)
        *ms = ms_since(&t0);
    return CML_OK;
}

cml_err cml_registry_install(cml_registry *r, cml_model *m, cml_diag *diag) {
    double ms = 0;
    slot *s = &r->slots[m->type];
    cml_err err = cml_model_warm_up(m, &ms, diag);
    if (err != CML_OK)
        return err;
    cml_model_retain(m);
    pthread_mutex_lock(&r->lock);
    cml_model *old = s->model;
    s->model = m;
    s->loaded_at = (int64_t)time(NULL);
    s->warmup_ms = ms;
    s->loads++;
    pthread_mutex_unlock(&r->lock);
    cml_model_release(old); /* freed now, or by the last request still using it */
    return CML_OK;
}

cml_err cml_registry_load(cml_registry *r, cml_model_type type, const char *version,
                          cml_diag *diag) {
    char path[4096];
    cml_model *m = NULL;
    const char *name = cml_model_type_name(type);
    if (name == NULL || !cml_version_valid(version))
        return cml_diag_set(diag, CML_ERR_INVALID, "no such model type or version");
    cml_local_store_path(r->dir, name, version, path, sizeof path);
    cml_err err = cml_model_load(path, &m, diag);
    if (err == CML_OK && m->type != type)
        err = cml_diag_set(diag, CML_ERR_FORMAT, "%s_%s.model holds a %s model", name, version,
                           cml_model_type_name(m->type));
    if (err == CML_OK)
        err = cml_registry_install(r, m, diag);
    if (err != CML_OK) {
        pthread_mutex_lock(&r->lock);
        r->slots[type].failures++;
        pthread_mutex_unlock(&r->lock);
    }
    cml_model_release(m);
    return err;
}

cml_model *cml_registry_acquire(cml_registry *r, cml_model_type type) {
    if ((unsigned)type >= CML_MODEL__COUNT)
        return NULL;
    pthread_mutex_lock(&r->lock);
    cml_model *m = cml_model_retain(r->slots[type].model);
    pthread_mutex_unlock(&r->lock);
    return m;
}

void cml_registry_info(cml_registry *r, cml_model_type type, cml_slot_info *out) {
    memset(out, 0, sizeof(*out));
    if ((unsigned)type >= CML_MODEL__COUNT)
        return;
    pthread_mutex_lock(&r->lock);
    slot *s = &r->slots[type];
    if (s->model) {
        out->loaded = true;
        snprintf(out->version, sizeof out->version, "%s", s->model->version);
        out->bytes = cml_model_bytes(s->model);
    }
    out->loaded_at = s->loaded_at;
    out->warmup_ms = s->warmup_ms;
    out->loads = s->loads;
    out->failures = s->failures;
    pthread_mutex_unlock(&r->lock);
}
