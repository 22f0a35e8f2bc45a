/* Request parsing shared by the handlers; each answers the error itself when the request is bad. */
#ifndef CML_REQUEST_H
#define CML_REQUEST_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "http.h"
#include "service/service.h"

/* Parses the body as a JSON object (valid UTF-8); on failure answers 400/415 and returns NULL. */
json_object *request_json_body(http_req *r, bool body_required);

/*
 * Checks every value of a parsed body (text[0..len) its source): no string with a NUL, no
 * non-finite number, no integer beyond 2^53-1; answers 400 naming the field when one is.
 */
bool request_json_values_ok(http_req *r, json_object *o, const char *text, size_t len);

/* A string field: NULL when absent; answers 400 and sets *bad when present but not a string. */
const char *request_string_field(http_req *r, json_object *o, const char *key, bool *bad);

/* An optional boolean field (absent or null leaves *out); answers 400 when of another type. */
bool request_bool_field(http_req *r, json_object *body, const char *key, bool *out);

/* An optional number in [min, max] (absent or null leaves *out); answers 400 when not. */
bool request_number_field(http_req *r, json_object *body, const char *key, double min, double max,
                          double *out);

/* An optional integer in [min, max]; sets *present when given; answers 400 when not. */
bool request_int_field(http_req *r, json_object *body, const char *key, int64_t min, int64_t max,
                       int64_t *out, bool *present);

/* Validates a text to classify: 1..max characters after trimming; answers 400 when not. */
bool request_text_ok(http_req *r, const service *svc, const char *text, const char *field);

/* Acquires the model of a type, answering 503 (with Retry-After) when it is not loaded. */
cml_model *request_model(http_req *r, service *svc, cml_model_type type);

#endif
