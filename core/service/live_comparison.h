/*
 * The live comparison of the model types: shadow scoring of classify answers by the other
 * type, every resident version scoring the feedback items (on arrival and, off the request
 * path, over the stored ones), and the figures the comparison and its history show.
 */
#ifndef CML_LIVE_COMPARISON_H
#define CML_LIVE_COMPARISON_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "model/model.h"

struct service;

/* One type's accuracy on the human labels, scored by its resident version. */
typedef struct service_feedback_side {
    bool present; /* a version of the type is resident */
    char version[40];
    size_t n, correct, n_labels;
    double accuracy, ci_lo, ci_hi, f1_macro; /* NAN when n is 0 */
    char labels[4][16];
    double recall[4]; /* NAN for a label no item has */
} service_feedback_side;

/* Starts the thread that flushes shadow counts and scores stored feedback (every second). */
cml_err service_live_start(struct service *svc, cml_diag *diag);
/* Stops it after a last flush; accepts a service whose thread never started. */
void service_live_stop(struct service *svc);

/* True for the share SHADOW_SAMPLE of the calls (per-thread generator). */
bool service_shadow_sampled(const struct service *svc);

/*
 * Counts an answer of model `answered` (prediction p of text) and, when shadow is true,
 * scores text with the resident version of the other type and counts the pair. Runs after the
 * answer was sent; s is the calling thread's feature scratch.
 */
void service_shadow_score(struct service *svc, const cml_model *answered, const cml_prediction *p,
                          const char *text, bool shadow, cml_feature_scratch *s);

/*
 * After an answer was sent: counts it and, for the share SHADOW_SAMPLE, queues text for the
 * live thread, which scores it with the other type at the lowest CPU priority. A full queue
 * (a saturated machine) counts the answer as not shadow-scored and the skip in
 * cultivate_ml_shadow_skipped_total. Copies what it keeps.
 */
void service_shadow_submit(struct service *svc, const cml_model *answered, const cml_prediction *p,
                           const char *text);

/* Scores stored feedback item id with every resident version (after the answer was sent). */
void service_feedback_score(struct service *svc, int64_t id, const char *text,
                            cml_feature_scratch *s);

/* Scores up to limit stored items not yet scored by each resident version; items scored. */
size_t service_feedback_backfill(struct service *svc, size_t limit, cml_feature_scratch *s);

/* The type's figures on the feedback (its resident version). */
void service_feedback_side_of(struct service *svc, cml_model_type t, service_feedback_side *out);

/* The comparison's `live` object; owned by the caller; NULL on failure. */
json_object *service_live_json(struct service *svc, const service_feedback_side fb[]);

/*
 * The daily rows of the last `days` days (today included) for model_type (NULL: both),
 * oldest first, as a JSON array owned by the caller.
 */
cml_err service_live_history(struct service *svc, int days, const char *model_type,
                             json_object **out);

/* Shadow counts and feedback accuracy in Prometheus text format. */
void service_live_metrics(struct service *svc, FILE *out);

#endif
