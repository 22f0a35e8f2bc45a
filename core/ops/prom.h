/*
 * Service metrics shared by every worker process of an instance: a memory
 * map of atomic counters, so /metrics answers the same whichever worker
 * serves it. Series slots are claimed lock-free; a full table drops new
 * series (counted) rather than blocking a request.
 */
#ifndef CML_PROM_H
#define CML_PROM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/cml_error.h"

typedef enum cml_counter {
    CML_M_MODEL_LOADS,
    CML_M_MODEL_LOAD_FAILURES,
    CML_M_TRAINING_STARTED,
    CML_M_TRAINING_COMPLETED,
    CML_M_TRAINING_FAILED,
    CML_M_BLOB_OPERATIONS,
    CML_M_BLOB_FAILURES,
    CML_M_BLOB_RETRIES,
    CML_M_SERIES_DROPPED,
    CML_M__COUNT
} cml_counter;

/* Maps (creating) path; call once per process before threads start. */
cml_err cml_prom_open(const char *path, cml_diag *diag);
void cml_prom_close(void);

void cml_prom_inc(cml_counter c, uint64_t by);
/* One finished request. */
void cml_prom_request(const char *route, const char *model, const char *version, int status,
                      double seconds);
/* This process's resident model and allocation bytes (a gauge per process). */
void cml_prom_set_process(size_t model_bytes, size_t alloc_bytes);
/* Everything in Prometheus text format. */
void cml_prom_write(FILE *out);

#endif
