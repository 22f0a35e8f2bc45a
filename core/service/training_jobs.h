/*
 * Training jobs run in their own process: the worker forks and immediately
 * execs the cultivate-ml trainer (never a bare fork: XGBoost's OpenMP pool
 * does not survive one), at lower priority, with CPU-time and address-space
 * limits. A watcher thread enforces the wall-clock limit and marks a job that
 * died without reporting as failed, cleaning any temporary file it left.
 */
#ifndef CML_TRAINING_JOBS_H
#define CML_TRAINING_JOBS_H

#include <stddef.h>
#include <sys/types.h>

#include "service.h"

/*
 * Starts the trainer for a job already recorded as running: data_path is a
 * CSV the job owns (removed when it ends); params are KEY=VALUE strings.
 */
cml_err training_job_spawn(service *svc, const char *task_id, const char *model_type,
                           const char *data_path, char *const *params, size_t n_params,
                           cml_diag *diag);

/* Removes temporary files a dead process left in the model cache. */
void training_job_clean_cache(const char *cache_dir, pid_t pid);

#endif
