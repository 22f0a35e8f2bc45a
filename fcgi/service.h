/*
 * The service of one worker process: configuration, shared state, resident
 * models and the selection they follow. Handlers get it with every request.
 */
#ifndef CML_SERVICE_H
#define CML_SERVICE_H

#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "http.h"
#include "model/model.h"
#include "model/model_registry.h"
#include "ops/service_config.h"
#include "state/shared_state.h"

typedef struct service {
    cml_config cfg;
    cml_state *state;
    cml_registry *registry;
    pthread_mutex_t sync_lock; /* one thread applies a new selection */
    _Atomic uint64_t seen_generation;
    _Atomic int active_type; /* cml_model_type */
    int64_t started_at;
    unsigned char api_key_sha256[32];
    bool have_api_key;
    char cors[1024]; /* ",origin1,origin2," for matching, or "" */
    bool cors_any;
} service;

/* Loads models (training the defaults when none exists) and applies the stored selection. */
cml_err service_start(service *svc, cml_diag *diag);
void service_stop(service *svc);

/*
 * Applies a selection change made by any worker (one atomic load when nothing
 * changed). Called at the start of every request.
 */
void service_sync(service *svc);

/* Forces a re-read of the selection and reload of what it names; for select and rollback. */
cml_err service_apply_selection(service *svc, cml_diag *diag);

/* The model types this build can serve. */
bool service_type_available(cml_model_type t);

/* Records a model file of the local store in the shared state (metrics, size, hash). */
void service_record_model(service *svc, const cml_model *m, bool local, bool blob);

/* --- helpers shared by the handlers ---------------------------------------- */

/* Parses the body as a JSON object (valid UTF-8); on failure answers 400/415 and returns NULL. */
json_object *handler_json_body(http_req *r, bool body_required);

/* A string field: NULL when absent; answers 400 and sets *bad when present but not a string. */
const char *handler_string_field(http_req *r, json_object *o, const char *key, bool *bad);

/* Validates a text to classify: 1..max characters after trimming; answers 400 when not. */
bool handler_text_ok(http_req *r, const service *svc, const char *text, const char *field);

/* Acquires the model of a type, answering 503 (with Retry-After) when it is not loaded. */
cml_model *handler_model(http_req *r, service *svc, cml_model_type type);

/* Probabilities of a prediction as {label: p}. */
json_object *handler_probabilities(const cml_model *m, const double *probs);

/* ISO 8601 UTC time of a Unix timestamp into buf. */
const char *handler_iso_time(int64_t t, char *buf, size_t cap);

/* The metrics object of a model's held-out split from its metrics JSON (new reference or NULL). */
json_object *handler_model_metrics(const cml_model *m, const char *which);

#endif
