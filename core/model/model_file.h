/*
 * The model file: one self-describing binary file per model version.
 *
 *   "CMLMODEL" | u32 format version | u32 section count
 *   sections: u32 tag | u64 length | payload
 *     META  JSON: type, version, created_at, data_sha256, labels, members and
 *           weights, combination (weighted voting or a stacker's coefficients),
 *           the utterance combiner, feature config, metrics, n_train, n_test,
 *           training time
 *     FEAT  the featurizer (vocabulary and IDF)
 *     MEMB  one per member: u32 kind | payload
 *     HOLD  the held-out split as CSV, for evaluation without data
 *   SHA-256 of everything above (32 bytes)
 *
 * Loading verifies the magic, the version and the checksum before parsing
 * anything, and refuses a file missing a member named in META.
 */
#ifndef CML_MODEL_FILE_H
#define CML_MODEL_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "base/cml_error.h"
#include "model/model.h"

/* 2 added the combination (stacking) and the utterance combiner to META; 1 still loads. */
#define CML_MODEL_FORMAT_VERSION 2
#define CML_MODEL_FORMAT_MIN_VERSION 1
#define CML_MODEL_MAX_FILE_BYTES ((size_t)512 << 20)

/* Serialises m into a new buffer the caller frees; also sets m->file_sha256/bytes. */
cml_err cml_model_serialize(cml_model *m, uint8_t **buf, size_t *len);

/* A new model (one reference) from a buffer; the buffer is not kept. */
cml_err cml_model_deserialize(const uint8_t *buf, size_t len, cml_model **out, cml_diag *diag);

/* Writes m to path atomically: temporary name, fsync, rename, fsync of the directory. */
cml_err cml_model_save(cml_model *m, const char *path, cml_diag *diag);

/* Loads a model file; a new model with one reference in *out. */
cml_err cml_model_load(const char *path, cml_model **out, cml_diag *diag);

#endif
