/*
 * The question detector: a learned answer to "is this sentence a teacher's
 * question or invitation?", for finding the questions of a clip or a lesson
 * transcript. A logistic regression (liblinear, Platt-calibrated) on the
 * project's text features, fitted on the question corpus's single questions
 * (positives) and the bundled classroom non-questions (negatives): statements,
 * instructions, praise, children's replies, songs and counting.
 */
#ifndef CML_QUESTION_DETECTOR_H
#define CML_QUESTION_DETECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "base/byte_buffer.h"
#include "base/cml_error.h"
#include "learn/dataset.h"
#include "learn/eval_metrics.h"
#include "text/text_features.h"

typedef struct cml_detector cml_detector;

/* Held-out figures of a trained detector (question = the positive class). */
typedef struct cml_detector_report {
    size_t n_train, n_test;
    double precision, recall, f1;
} cml_detector_report;

/*
 * Trains on questions (their single questions: rows of one sentence) against non_questions,
 * holding out a stratified 20 % (seed) for the report; the detector returned is fitted on the
 * training part only, so the report is honest. *out is new (cml_detector_free).
 */
cml_err cml_detector_train(const cml_dataset *questions, const cml_dataset *non_questions,
                           uint64_t seed, cml_detector **out, cml_detector_report *report,
                           cml_diag *diag);

/* P(question) of text[0..len) with the calling thread's scratch; NAN on failure. */
double cml_detector_score(const cml_detector *d, cml_feature_scratch *s, const char *text,
                          size_t len);

/* Appends the detector to out (featurizer and member payload). */
cml_err cml_detector_serialize(const cml_detector *d, cml_buf *out);

/* A new detector from a payload written by cml_detector_serialize. */
cml_err cml_detector_deserialize(const uint8_t *p, size_t len, cml_detector **out, cml_diag *diag);

/* Accepts NULL. */
void cml_detector_free(cml_detector *d);

#endif
