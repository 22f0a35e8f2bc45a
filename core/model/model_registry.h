/*
 * The models resident in one process, one slot per type. A swap loads and
 * warms up the new model first, then switches under a short lock; requests
 * in flight keep the reference they took and finish on the model they
 * started with; the old model is freed when its last reference is dropped.
 */
#ifndef CML_MODEL_REGISTRY_H
#define CML_MODEL_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "base/cml_error.h"
#include "model/model.h"

typedef struct cml_registry cml_registry;

/* A new registry over the local store dir (copied); caller frees. NULL on OOM. */
cml_registry *cml_registry_new(const char *store_dir);
/* Releases every resident model; accepts NULL. */
void cml_registry_free(cml_registry *r);

/* Loads TYPE_VERSION from the store, warms it up and swaps it in. On failure nothing changes. */
cml_err cml_registry_load(cml_registry *r, cml_model_type type, const char *version,
                          cml_diag *diag);
/* Swaps in an already loaded model (warmed up here); takes a new reference to m. */
cml_err cml_registry_install(cml_registry *r, cml_model *m, cml_diag *diag);

/* A new reference to the resident model of a type (release it), or NULL when none is loaded. */
cml_model *cml_registry_acquire(cml_registry *r, cml_model_type type);

typedef struct cml_slot_info {
    bool loaded;
    char version[40];
    int64_t loaded_at; /* Unix seconds */
    double warmup_ms;
    uint64_t loads, failures;
    size_t bytes;
} cml_slot_info;

void cml_registry_info(cml_registry *r, cml_model_type type, cml_slot_info *out);

/* Runs one prediction and checks its probabilities; CML_OK when the model can answer. */
cml_err cml_model_warm_up(const cml_model *m, double *ms, cml_diag *diag);

#endif
