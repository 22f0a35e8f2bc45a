/*
 * The Open Inference Protocol (KServe v2 REST, as Triton and MLServer speak it) as this
 * service's models see it: one BYTES input tensor "text" of shape [N] (N texts), two
 * outputs, "label" (BYTES [N]) and "probabilities" (FP32 [N, labels], the label order in
 * the output's parameters). Parsing the inference request and writing the response and
 * the model metadata; nothing here knows HTTP.
 */
#ifndef CML_OIP_TENSOR_H
#define CML_OIP_TENSOR_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/cml_error.h"
#include "model/model.h"

#define CML_OIP_INPUT "text"
#define CML_OIP_OUTPUT_LABEL "label"
#define CML_OIP_OUTPUT_PROBS "probabilities"

/* A parsed inference request. */
typedef struct cml_oip_infer {
    const char *id;     /* the request's id (in root), NULL when absent */
    size_t n;           /* texts */
    const char **texts; /* owned array of n; the strings live in root or buf */
    bool want_label;    /* outputs asked for; both when the request names none */
    bool want_probs;
    json_object *root; /* owned: the request's JSON */
    char *buf;         /* owned: NUL-terminated copies of texts sent as binary tensor data */
} cml_oip_infer;

/*
 * Parses an inference request. body[0..json_len) is the JSON object; when json_len < len
 * the rest is binary tensor data (Triton's binary tensor extension: the input's
 * parameters give binary_data_size, each BYTES element a 4-byte little-endian length and
 * its bytes), which is how tritonclient and KServe's client send a BYTES input by default.
 * The input's data may be a flat or a nested (row-major) array of strings. At most
 * max_n texts. On success *out is the caller's (cml_oip_infer_release); on failure it is
 * empty and the error is CML_ERR_INVALID (diag says what is wrong, a sentence for the
 * client) or CML_ERR_NOMEM.
 */
cml_err cml_oip_parse_infer(const char *body, size_t len, size_t json_len, size_t max_n,
                            cml_oip_infer *out, cml_diag *diag);
/* Frees what a parsed request owns and empties it; accepts NULL. */
void cml_oip_infer_release(cml_oip_infer *req);

/*
 * The inference response {model_name, model_version, id?, outputs: [...]} of req's texts
 * classified by m: labels[i] the label index and probs[i * m->n_labels + c] the
 * probability of label c for text i. The caller owns the object (json_object_put).
 */
json_object *cml_oip_infer_response(const cml_model *m, const cml_oip_infer *req, const int *labels,
                                    const double *probs);

/*
 * Model metadata {name, versions, platform, inputs, outputs} of m (the version described)
 * with the versions of its type that the store holds (versions[0..n_versions), each
 * NUL-terminated, stride bytes apart). The caller owns the object.
 */
json_object *cml_oip_model_metadata(const cml_model *m, const char *versions, size_t stride,
                                    size_t n_versions);

#endif
