/*
 * A lesson transcript's questions and its summary: the turns of a speaker
 * (consecutive cues joined while a sentence runs on, so a question spanning
 * two cues is one question), their sentences, which are questions (the
 * model's question detector), and each question's label. The CLI's analyze
 * command and the transcript route print the same JSON.
 */
#ifndef CML_TRANSCRIPT_ANALYSIS_H
#define CML_TRANSCRIPT_ANALYSIS_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "model/model.h"
#include "text/transcript.h"

typedef struct cml_analysis_options {
    const char *const *speakers; /* analyse only these speakers' turns (borrowed); NULL: all */
    size_t n_speakers;
    double min_confidence; /* leave out questions classified with less confidence */
    size_t max_questions;  /* refuse a transcript with more (CML_ERR_DATA); 0: no limit */
} cml_analysis_options;

typedef struct cml_found_question {
    double start_s, end_s; /* of the cues it spans; NAN for plain text */
    const char *speaker;   /* borrowed from the transcript; NULL when unnamed */
    char *text;            /* owned */
    int label;             /* index into the model's labels */
    double confidence;
} cml_found_question;

typedef struct cml_analysis {
    size_t n;
    cml_found_question *questions; /* owned, in transcript order */
} cml_analysis;

/* Finds and classifies the questions of t; *out is new (cml_analysis_free). */
cml_err cml_transcript_analyze(const cml_model *m, cml_feature_scratch *s, const cml_transcript *t,
                               const cml_analysis_options *o, cml_analysis **out, cml_diag *diag);

/* Accepts NULL. */
void cml_analysis_free(cml_analysis *a);

/*
 * {model_type, model_version, questions: [...], summary: {...}} as the API
 * contract gives it; the caller owns the object (json_object_put).
 */
json_object *cml_analysis_json(const cml_model *m, const cml_transcript *t, const cml_analysis *a);

#endif
