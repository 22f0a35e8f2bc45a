/*
 * A trained model: its features, members and combination, with the facts
 * kept about it (version, training data hash, metrics). Shared between
 * threads by reference count: whoever holds a reference may predict.
 */
#ifndef CML_MODEL_H
#define CML_MODEL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/cml_error.h"
#include "learn/dataset.h"
#include "learn/dense_logreg.h"
#include "learn/member.h"
#include "learn/question_detector.h"
#include "text/text_features.h"
#include "text/utterance.h"

typedef enum cml_model_type {
    CML_MODEL_CLASSIC = 1,
    CML_MODEL_ENSEMBLE = 2,
    CML_MODEL__COUNT /* arrays indexed by type; loops run from CML_MODEL_CLASSIC below it */
} cml_model_type;

/* "classic" / "ensemble"; NULL for other values. */
const char *cml_model_type_name(cml_model_type t);
/* CML_ERR_INVALID for an unknown name. */
cml_err cml_model_type_parse(const char *name, cml_model_type *out);

typedef struct cml_model_member {
    const cml_member_ops *ops;
    void *state;
    double weight; /* soft-voting weight, weights sum to 1 */
} cml_model_member;

/* How the members' probabilities become the model's (stored in the model file). */
typedef enum cml_combination {
    CML_COMBINE_VOTING = 0,   /* weighted soft voting (the weights of cml_model_member) */
    CML_COMBINE_STACKING = 1, /* a logistic regression on the members' logits (two labels) */
    CML_COMBINE__MAX
} cml_combination;

/* "weighted_voting" / "stacking"; NULL for other values. */
const char *cml_combination_name(cml_combination c);

/*
 * Inputs of the utterance combiner, computed from the probabilities of the
 * whole text and of each question found in it (two labels: class 1's).
 */
typedef enum cml_utterance_input {
    CML_UTT_WHOLE,          /* logit of the whole text */
    CML_UTT_MAX_QUESTION,   /* logit of the most class-1 question */
    CML_UTT_MIN_QUESTION,   /* logit of the least class-1 question */
    CML_UTT_LAST_QUESTION,  /* logit of the last question */
    CML_UTT_FIRST_QUESTION, /* logit of the first question */
    CML_UTT_N_QUESTIONS,    /* questions found, capped at 4, over 4 */
    CML_UTT_OTHER_SHARE,    /* share of the sentences that are not questions */
    CML_UTT_NO_QUESTION,    /* 1 when no sentence is a question */
    CML_UTT__MAX
} cml_utterance_input;

/* Names of the inputs, for the model file and train's table. */
extern const char *const cml_utterance_input_names[CML_UTT__MAX];

typedef struct cml_model {
    atomic_int refs;
    cml_model_type type;
    char version[40];     /* UTC timestamp, e.g. 20261126T053012Z */
    int64_t created_at;   /* Unix seconds */
    char data_sha256[65]; /* of the training data (texts and labels) */
    uint32_t n_train, n_test;
    double training_time_s;
    size_t n_labels;
    char *labels[CML_MAX_LABELS]; /* owned */
    cml_featurizer *features;     /* owned */
    size_t n_members;
    cml_model_member members[CML_MAX_MEMBERS]; /* states owned */
    cml_combination combination;
    cml_dense_logreg stacker;   /* CML_COMBINE_STACKING: inputs are the members' logits */
    cml_detector *detector;     /* owned; finds the questions of a text, NULL: word order rules */
    bool utterance_fitted;      /* texts of several sentences go through the combiner below */
    cml_dense_logreg utterance; /* inputs: cml_utterance_input */
    char *metrics_json;         /* owned JSON object text: held-out and CV metrics per member */
    cml_dataset *holdout;       /* owned held-out split, for evaluation without data; may be NULL */
    char file_sha256[65];       /* of the file it was loaded from or saved to, else "" */
    size_t file_bytes;
} cml_model;

typedef struct cml_member_vote {
    int label;
    double probs[CML_MAX_LABELS];
    double confidence;
} cml_member_vote;

/* One question found in a text of several sentences, with its own prediction. */
typedef struct cml_question_vote {
    uint32_t start, end; /* bytes of the text */
    int label;
    double confidence;
} cml_question_vote;

typedef struct cml_prediction {
    int label; /* index into model->labels */
    double probs[CML_MAX_LABELS];
    double confidence; /* probability of the chosen label */
    size_t n_members;
    cml_member_vote members[CML_MAX_MEMBERS];
    size_t agree;       /* members whose own label equals the final one */
    size_t n_sentences; /* sentences of the text (utterance analysis) */
    size_t n_questions; /* questions[] filled when n_sentences > 1 */
    cml_question_vote questions[CML_UTTERANCE_MAX_PARTS];
} cml_prediction;

/* A new empty model with one reference; NULL on OOM. */
cml_model *cml_model_new(cml_model_type type);
/* Adds a reference; returns m. Accepts NULL. */
cml_model *cml_model_retain(cml_model *m);
/* Drops a reference, freeing the model with the last one. Accepts NULL. */
void cml_model_release(cml_model *m);

/*
 * Classifies text with the scratch of the calling thread. A text of several
 * sentences is also split into its questions, each classified, and the
 * model's utterance combiner (when fitted) gives the text's label from them.
 */
cml_err cml_model_predict(const cml_model *m, cml_feature_scratch *s, const char *text, size_t len,
                          cml_prediction *out);

/*
 * Classifies texts[0..n) in order (a batch), calling each(ctx, i, prediction) for every
 * text; stops at the first failure and returns it. The prediction is the callee's scratch,
 * valid only during the call.
 */
cml_err cml_model_predict_each(const cml_model *m, cml_feature_scratch *s, const char *const *texts,
                               size_t n, void (*each)(void *ctx, size_t i, const cml_prediction *p),
                               void *ctx);

/* Combined probabilities of member probabilities (n_members x n_labels) by the weights. */
void cml_model_combine(const cml_model *m, const double *member_probs, double *out);

/*
 * The sentences of text and which are questions: by the model's question detector when it
 * has one (a text of several sentences), else by utterance.h's word-order rules. Training and
 * serving both call it.
 */
void cml_model_find_questions(const cml_model *m, cml_feature_scratch *s, const char *text,
                              size_t len, cml_utterance *u);

/*
 * Whether one sentence is a question: the detector's answer when the model has one, else
 * rule (utterance.h's word-order rules for that sentence).
 */
bool cml_model_is_question(const cml_model *m, cml_feature_scratch *s, const char *text, size_t len,
                           bool rule);

/* Utterance combiner inputs of a text from its own and its questions' class-1 probabilities. */
void cml_utterance_inputs(const cml_utterance *u, double p_whole, const double *p_questions,
                          double *x);

/* Voting strategy name for the API: "soft_weighted" or "single". */
const char *cml_model_voting(const cml_model *m);

/* Bytes the model holds in memory (members and features), approximately. */
size_t cml_model_bytes(const cml_model *m);

#endif
