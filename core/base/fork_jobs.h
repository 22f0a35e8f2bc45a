/*
 * Independent jobs run by forked worker processes, for training on several cores with
 * learners that are not thread-safe (liblinear and FANN draw on the C library's rand()).
 * Jobs write their results into memory from cml_shared_alloc, which parent and children see
 * alike; everything else a child changes stays in the child.
 */
#ifndef CML_FORK_JOBS_H
#define CML_FORK_JOBS_H

#include <stddef.h>

#include "base/cml_error.h"

/* Zeroed memory shared with children forked later; NULL on failure. Released with cml_shared_free.
 */
void *cml_shared_alloc(size_t bytes);
/* Accepts NULL. bytes must be what was allocated. */
void cml_shared_free(void *p, size_t bytes);

/* One job; runs in a child (or in the caller when there is one worker). */
typedef cml_err (*cml_job_fn)(void *ctx, size_t job, cml_diag *diag);
/* Called in the caller as jobs finish, with how many have. */
typedef void (*cml_jobs_progress_fn)(void *ctx, size_t done);

/*
 * Runs jobs 0..n_jobs-1 on up to n_workers forked children, each taking the next job in
 * order; n_workers <= 1 runs them in the caller. Returns CML_OK when every job did, else the
 * first failure's error with its message in diag (a child that died names its signal). A
 * child dies with its parent. cleanup, when set, runs in each child before it exits.
 */
cml_err cml_fork_jobs(size_t n_jobs, size_t n_workers, cml_job_fn job, void (*cleanup)(void *ctx),
                      cml_jobs_progress_fn progress, void *ctx, cml_diag *diag);

#endif
