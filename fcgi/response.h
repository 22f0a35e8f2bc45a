/* Pieces of answers shared by the handlers. */
#ifndef CML_RESPONSE_H
#define CML_RESPONSE_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

/* Probabilities of a prediction as {label: p}. */
json_object *response_probabilities(const cml_model *m, const double *probs);

/* ISO 8601 UTC time of a Unix timestamp into buf. */
const char *response_iso_time(int64_t t, char *buf, size_t cap);

/* The metrics object of a model's held-out split from its metrics JSON (new reference or NULL). */
json_object *response_model_metrics(const cml_model *m, const char *which);

#endif
