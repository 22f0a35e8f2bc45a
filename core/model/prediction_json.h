/* JSON forms of a prediction that the CLI and the service print alike. */
#ifndef CML_PREDICTION_JSON_H
#define CML_PREDICTION_JSON_H

#include <json-c/json.h>

#include "model/model.h"

/*
 * The questions found in text, [{text, start, end, classification,
 * confidence}] with character (not byte) offsets into text, or NULL when the
 * text is one sentence (the field is then left out). The caller owns the
 * returned object (json_object_put).
 */
json_object *cml_prediction_questions_json(const cml_model *m, const cml_prediction *p,
                                           const char *text);

#endif
