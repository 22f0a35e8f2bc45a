/*
 * The service's side of blob storage (USE_AZURE_STORAGE=true): at start-up it
 * downloads what the local cache lacks, publishes models trained here when the
 * store has none (race-safe between instances), and takes the fleet's
 * selection from active.json. Afterwards one worker per instance (whichever
 * holds the state directory's sync lock) checks the pointers and active.json
 * every MODEL_SYNC_INTERVAL seconds with conditional requests, brings new
 * versions into the cache and tells the other workers through the shared
 * state. No request ever waits on storage; when it is unreachable the service
 * serves from the cache and /api/health says degraded, with the reason.
 */
#ifndef CML_STORAGE_SYNC_H
#define CML_STORAGE_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/cml_error.h"
#include "model/model.h"
#include "ops/service_config.h"
#include "state/shared_state.h"

/* What storage sync needs of the service: its configuration and its shared state. */
typedef struct storage_ctx {
    const cml_config *cfg;
    cml_state *state;
} storage_ctx;

/* Opens the store (a bad connection string is fatal; an unreachable store is not). */
cml_err storage_open(const storage_ctx *ctx, cml_diag *diag);

/* Start-up, before local training: downloads each type's latest model the cache lacks. */
void storage_pull_models(const storage_ctx *ctx);

/* Start-up, after local training: publishes types the store lacks; adopts the fleet's selection. */
void storage_publish_and_adopt(const storage_ctx *ctx);

/* Starts and stops the background sync thread of this worker. */
void storage_start_thread(const storage_ctx *ctx);
void storage_stop_thread(const storage_ctx *ctx);

/* Writes this instance's selection to active.json now (best effort; the sync retries). */
void storage_push_selection(const storage_ctx *ctx);

/* Brings one version from the blob store into the cache (a rollback to a version not here). */
cml_err storage_fetch_version(const storage_ctx *ctx, cml_model_type type, const char *version,
                              cml_diag *diag);

/* Downloads training_data.csv to path for a retrain with use_azure. */
cml_err storage_fetch_training_data(const storage_ctx *ctx, const char *path, cml_diag *diag);

/* The store's status for /api/health: reachable, last successful sync, reason when not. */
void storage_status(const storage_ctx *ctx, bool *reachable, int64_t *last_sync, char *reason,
                    size_t cap);

#endif
