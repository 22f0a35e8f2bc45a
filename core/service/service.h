/*
 * The service of one worker process: configuration, shared state, resident
 * models and the selection they follow, and the operations on them that the
 * HTTP handlers call (select or roll back, start a retrain). Knows nothing of
 * HTTP: every operation returns a cml_err the caller maps to an answer.
 */
#ifndef CML_SERVICE_H
#define CML_SERVICE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "build_types.h"
#include "learn/dataset.h"
#include "learn/eval_metrics.h"
#include "model/model.h"
#include "model/local_store.h"
#include "model/model_registry.h"
#include "ops/service_config.h"
#include "state/shared_state.h"
#include "live_comparison.h"
#include "storage_sync.h"

/* Versions other than the resident ones that one process keeps loaded (service_model_version). */
#define SERVICE_VERSION_CACHE 2
/* A generation no state reaches: the selection was not read (the database was down). */
#define SERVICE_GENERATION_UNSEEN UINT64_MAX

typedef struct service {
    cml_config cfg;
    cml_state *state;
    cml_registry *registry;
    storage_ctx storage;              /* what the blob storage side sees of this service */
    pthread_mutex_t sync_lock;        /* one thread applies a new selection */
    _Atomic uint64_t seen_generation; /* SERVICE_GENERATION_UNSEEN: apply at the next request */
    _Atomic int active_type;          /* cml_model_type */
    int64_t started_at;
    /* The live comparison's thread (live_comparison.c). */
    pthread_t live_thread;
    bool live_running, live_stop;
    pthread_mutex_t live_lock;
    pthread_cond_t live_cond;
    pthread_mutex_t versions_lock;              /* guards versions */
    cml_model *versions[SERVICE_VERSION_CACHE]; /* loaded on demand, most recent first */
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

/* Records a model file of the local store in the shared state (metrics, size, hash). */
void service_record_model(service *svc, const cml_model *m, bool local, bool blob);

/* --- selection and rollback ---------------------------------------------------- */

typedef struct service_selection {
    cml_model *model;        /* the selected model, a reference the caller releases */
    cml_model_type previous; /* the active type before */
    double switch_ms;        /* load, store and apply */
} service_selection;

/*
 * Makes type the active type of every worker, following its latest version
 * (version NULL) or pinned to version (a rollback; a version only blob
 * storage holds is fetched first). The model is loaded and warmed up in this
 * process before the selection is stored: a model that cannot answer is never
 * selected. Errors: CML_ERR_UNSUPPORTED (this build cannot serve type),
 * CML_ERR_STORAGE (the version is not cached and blob storage did not provide
 * it), CML_ERR_NOT_FOUND (no such version; with version NULL, no model of the
 * type stored yet), CML_ERR_FORMAT (the model could not be loaded; the
 * selection is unchanged), CML_ERR_IO (the selection could not be stored),
 * CML_ERR_INTERNAL (stored, but the model is not resident afterwards).
 */
/* Makes sure version (valid) of type is in the model cache, fetching it from blob storage when
 * only the store holds it: CML_OK when it is there, CML_ERR_NOT_FOUND when neither has it, or
 * the fetch's error. */
cml_err service_cache_version(service *svc, cml_model_type type, const char *version,
                              cml_diag *diag);
cml_err service_select(service *svc, cml_model_type type, const char *version,
                       service_selection *out, cml_diag *diag);

/* --- retraining ------------------------------------------------------------------ */

typedef struct service_retrain_data {
    cml_model_type type;
    const char *csv; /* uploaded text,label CSV, or NULL */
    size_t csv_len;
    bool use_azure;        /* no csv: blob storage's training_data.csv instead of the bundled set */
    bool include_feedback; /* add the stored corrections */
    char *const *params;   /* validated KEY=VALUE hyperparameters */
    size_t n_params;
} service_retrain_data;

/*
 * The data of a retrain: uploaded, else blob storage's training_data.csv, else
 * the bundled set, with the stored feedback when asked, checked to be
 * trainable with the given hyperparameters. *ds is the caller's.
 * Errors: CML_ERR_CONFIG (use_azure on an instance without blob storage),
 * CML_ERR_NOT_FOUND (blob storage holds no training data), CML_ERR_STORAGE
 * (blob storage unreachable), CML_ERR_DATA (unusable data; diag says why),
 * CML_ERR_IO (the stored feedback could not be read).
 */
cml_err service_retrain_data_load(service *svc, const service_retrain_data *req, cml_dataset **ds,
                                  cml_diag *diag);

typedef struct service_retrain_job {
    char task_id[40];
    double estimated_s; /* from the last training of the type, scaled to the rows */
} service_retrain_job;

/*
 * Starts a training job on ds (a copy written for the job) in its own process.
 * Errors: CML_ERR_IO (the job's data could not be written), CML_ERR_CONFLICT
 * (a job is already running), CML_ERR_TRAIN (the trainer could not be started).
 */
cml_err service_start_retrain(service *svc, const service_retrain_data *req, const cml_dataset *ds,
                              service_retrain_job *out, cml_diag *diag);

/* Fails running jobs whose trainer is gone or stopped renewing its lease (any worker may). */
void service_reap_jobs(service *svc);

/* --- comparison ------------------------------------------------------------------ */

/* One type's figures: its history entry of the running version (else the newest). */
typedef struct service_side {
    bool present;                        /* a history entry with held-out metrics exists */
    double f1, acc, train_s, latency_ms; /* latency: mean over a probe set, NAN when not resident */
    char version[40];
    int64_t ts;
} service_side;

typedef struct service_comparison {
    service_side side[CML_MODEL__COUNT];        /* indexed by cml_model_type */
    service_feedback_side fb[CML_MODEL__COUNT]; /* accuracy on the human labels */
    bool recommended;                           /* both sides present */
    cml_model_type pick;                        /* quality first, latency between equals */
    const char *evidence;                       /* "feedback" or "held_out" */
    char reason[320];
} service_comparison;

/*
 * Compares the types (probing the resident models' latency): on the feedback once both have
 * cfg.comparison_min_feedback scored items, else on the held-out metrics.
 */
void service_compare(service *svc, service_comparison *out);

/* --- evaluation ------------------------------------------------------------------ */

/*
 * Loads version of type from the local store (a version not resident here).
 * Errors: CML_ERR_NOT_FOUND (no such version), CML_ERR_FORMAT (it could not be loaded).
 */
cml_err service_load_version(service *svc, cml_model_type type, const char *version,
                             cml_model **out, cml_diag *diag);

/*
 * Scores m on an uploaded text,label CSV (csv, or NULL for the model's held-out split) into
 * *out (released with cml_eval_release). Errors: CML_ERR_CSV (the CSV is unusable),
 * CML_ERR_NOT_FOUND (no CSV and no held-out split), CML_ERR_DATA (m cannot score the data).
 */
cml_err service_evaluate(const cml_model *m, const char *csv, cml_metrics *out, cml_diag *diag);

/* --- models by version (the Open Inference Protocol routes) ------------------------ */

/* Versions of a type that the local store holds, newest first; *out is the caller's (cml_free). */
cml_err service_versions(service *svc, cml_model_type type, char (**out)[CML_VERSION_MAX],
                         size_t *n);

/*
 * A reference (the caller releases it) to version of type: the resident model when it is
 * that version, else the version loaded from the local store on demand, warmed up, and
 * kept in this process's cache of SERVICE_VERSION_CACHE versions (the least recently used
 * one dropped; requests holding it finish on it). A version only blob storage holds is not
 * fetched. Errors: CML_ERR_UNSUPPORTED (this build cannot serve type), CML_ERR_NOT_FOUND
 * (the store holds no such version), CML_ERR_FORMAT (it could not be loaded or did not
 * answer its warm-up).
 */
cml_err service_model_version(service *svc, cml_model_type type, const char *version,
                              cml_model **out, cml_diag *diag);

/* Drops the versions loaded on demand (service_stop calls it). */
void service_versions_release(service *svc);

#endif
