/*
 * Shared helpers of the non-linear members (trees, forest, network), which
 * work on a few hundred columns instead of the whole sparse vocabulary:
 *
 * - column selection: the hand-feature columns 0..CML_HAND_FEATURES-1 plus
 *   the top-k term columns by chi-square of presence against the label on
 *   the training rows (class-weighted). A selection maps a full sparse row to
 *   the member's own columns (0..n_sel-1) at prediction time.
 * - payload sealing: a member payload ends with the SHA-256 of its body, so
 *   a damaged payload is refused before any library parses it.
 */
#ifndef CML_FEATURE_SELECT_H
#define CML_FEATURE_SELECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/byte_buffer.h"
#include "base/cml_error.h"
#include "text/text_features.h"

typedef struct cml_colsel {
    uint32_t n_src; /* columns of the full feature space */
    uint32_t n_sel; /* selected columns */
    uint32_t *cols; /* n_sel source columns, strictly ascending; owned */
    int32_t *pos;   /* n_src entries: member column of a source column, or -1; owned */
} cml_colsel;

/*
 * Selects the hand columns and the k best term columns of X (rows labelled y
 * in [0, n_labels), weighted by class_weight) present in at least min_df
 * rows. *out is filled with new arrays the caller releases with
 * cml_colsel_release.
 */
cml_err cml_colsel_fit(const cml_csr *X, const int *y, size_t n_labels, const double *class_weight,
                       size_t k, size_t min_df, cml_colsel *out);

/* Frees the arrays of s (accepts NULL and a zeroed struct) and zeroes it. */
void cml_colsel_release(cml_colsel *s);

/* Appends n_sel and the columns to b. */
void cml_colsel_write(const cml_colsel *s, cml_buf *b);

/*
 * Reads a selection written by cml_colsel_write for a feature space of n_src
 * columns into *out (new arrays owned by the caller). CML_ERR_FORMAT when
 * the columns are not strictly ascending, out of range or truncated.
 */
cml_err cml_colsel_read(cml_reader *r, uint32_t n_src, cml_colsel *out);

/*
 * Maps the sparse row x onto the selection: writes at most min(x->n, n_sel)
 * (member column, value) pairs sorted by column into idx/val (both owned by
 * the caller and at least that long) and returns their count. Columns outside
 * the selection are dropped.
 */
size_t cml_colsel_map(const cml_colsel *s, const cml_sparse *x, uint32_t *idx, float *val);

/*
 * The rows of X restricted to the selection, as a new CSR matrix of n_sel
 * columns (*out owned by the caller, freed with cml_csr_free).
 */
cml_err cml_colsel_matrix(const cml_colsel *s, const cml_csr *X, cml_csr *out);

/* Bytes the selection holds. */
size_t cml_colsel_bytes(const cml_colsel *s);

/* Appends the SHA-256 of b->data[start..b->len) to b (the payload's seal). */
void cml_payload_seal(cml_buf *b, size_t start);

/*
 * Checks the seal of a payload p[0..len): true when it ends with the SHA-256
 * of the bytes before it; *body_len gets their count.
 */
bool cml_payload_check(const uint8_t *p, size_t len, size_t *body_len);

#endif
