/*
 * Features of a question: explicit question-form features (fixed columns)
 * followed by TF-IDF weighted hashed n-grams (stemmed words of the whole text,
 * words of the focus sentence, character n-grams inside word boundaries).
 * The vocabulary and IDF weights are learned by cml_featurizer_fit; training
 * and serving go through cml_features_extract, so there is no skew.
 */
#ifndef CML_TEXT_FEATURES_H
#define CML_TEXT_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "base/cml_error.h"
#include "learn/dataset.h"
#include "text/text_normalize.h"

/* A sparse row: n (column, value) pairs sorted by column. */
typedef struct cml_sparse {
    int n;
    int *idx;
    float *val;
} cml_sparse;

/* Rows of a sparse matrix in CSR form; all arrays owned. */
typedef struct cml_csr {
    size_t n_rows, n_cols;
    size_t *indptr; /* n_rows + 1 */
    int *indices;
    float *values;
} cml_csr;

void cml_csr_free(cml_csr *m);

/* Settings stored with the model; changing them changes the features. */
typedef struct cml_feature_config {
    uint32_t min_df_words; /* a word n-gram needs this many training documents */
    uint32_t min_df_chars;
    uint32_t char_min, char_max; /* character n-gram lengths */
    float weight_words, weight_focus, weight_chars, weight_hand;
} cml_feature_config;

extern const cml_feature_config cml_feature_config_default;

/* Number of explicit question-form columns (always columns 0..n-1). */
#define CML_HAND_FEATURES 24
/* Their names, for explanations and tests. */
extern const char *const cml_hand_feature_names[CML_HAND_FEATURES];

typedef struct cml_featurizer cml_featurizer;

/* Per-thread scratch for extraction: normaliser buffers, stemmer, accumulators. */
typedef struct cml_feature_scratch cml_feature_scratch;

/* Returns a new scratch the caller frees, or NULL on OOM. */
cml_feature_scratch *cml_feature_scratch_new(void);
void cml_feature_scratch_free(cml_feature_scratch *s);

/* Learns vocabulary and IDF from ds; *out is new and owned by the caller. */
cml_err cml_featurizer_fit(const cml_dataset *ds, const cml_feature_config *cfg,
                           cml_featurizer **out);
void cml_featurizer_free(cml_featurizer *f);
size_t cml_featurizer_n_cols(const cml_featurizer *f);

/*
 * Features of one text into out, whose arrays belong to the scratch and stay
 * valid until its next use.
 */
cml_err cml_features_extract(const cml_featurizer *f, cml_feature_scratch *s, const char *text,
                             size_t len, cml_sparse *out);

/* Features of every row of ds as a new CSR matrix (*out owned by the caller). */
cml_err cml_features_matrix(const cml_featurizer *f, const cml_dataset *ds, cml_csr *out);

/* Serialisation: the caller owns *buf (cml_free). */
cml_err cml_featurizer_serialize(const cml_featurizer *f, uint8_t **buf, size_t *len);
cml_err cml_featurizer_deserialize(const uint8_t *buf, size_t len, cml_featurizer **out,
                                   cml_diag *diag);
const cml_feature_config *cml_featurizer_config(const cml_featurizer *f);

/* What a column holds, for members that learn from one view of the features. */
typedef enum cml_column_space {
    CML_SPACE_HAND,  /* the question-form columns */
    CML_SPACE_WORDS, /* word n-grams of the whole text */
    CML_SPACE_FOCUS, /* word n-grams of the focus sentence */
    CML_SPACE_CHARS, /* character n-grams */
    CML_SPACE__MAX
} cml_column_space;

/* The space of every column into out, which holds cml_featurizer_n_cols(f) bytes. */
void cml_featurizer_column_spaces(const cml_featurizer *f, uint8_t *out);

/* The hand features of text, for tests: out must hold CML_HAND_FEATURES floats. */
cml_err cml_hand_features(cml_feature_scratch *s, const char *text, size_t len, float *out);

#endif
