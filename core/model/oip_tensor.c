/* Open Inference Protocol tensors: the inference request parsed, the response and metadata. */
#include "config.h"

#include "model/oip_tensor.h"

#include <stdint.h>
#include <string.h>

#include "base/byte_buffer.h"
#include "base/cml_alloc.h"

/* The JSON object of body[0..len), strictly parsed; NULL when it is not one. */
static json_object *parse_object(const char *body, size_t len) {
    json_tokener *tok = json_tokener_new_ex(64);
    json_object *o = NULL;
    if (tok == NULL)
        return NULL;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    o = json_tokener_parse_ex(tok, body, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success ||
        (size_t)json_tokener_get_parse_end(tok) != len ||
        !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

/* A field of o of the given type, or NULL when absent or null; *bad when of another type. */
static json_object *field(json_object *o, const char *key, json_type type, bool *bad) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
        return NULL;
    if (!json_object_is_type(v, type)) {
        *bad = true;
        return NULL;
    }
    return v;
}

/* Appends the strings of a flat or nested array to req->texts (capacity cap). */
static cml_err flatten(json_object *a, cml_oip_infer *req, size_t cap, int depth, cml_diag *diag) {
    size_t n = json_object_array_length(a);
    if (depth > 8)
        return cml_diag_set(diag, CML_ERR_INVALID, "input '%s': data is nested too deeply",
                            CML_OIP_INPUT);
    for (size_t i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(a, i);
        if (json_object_is_type(v, json_type_array)) {
            cml_err err = flatten(v, req, cap, depth + 1, diag);
            if (err != CML_OK)
                return err;
            continue;
        }
        if (!json_object_is_type(v, json_type_string))
            return cml_diag_set(diag, CML_ERR_INVALID,
                                "input '%s': element %zu of data is not a string (datatype BYTES "
                                "holds texts)",
                                CML_OIP_INPUT, req->n);
        const char *s = json_object_get_string(v);
        if (strlen(s) != (size_t)json_object_get_string_len(v))
            return cml_diag_set(diag, CML_ERR_INVALID, "input '%s': element %zu holds a NUL",
                                CML_OIP_INPUT, req->n);
        if (req->n >= cap)
            return cml_diag_set(diag, CML_ERR_INVALID,
                                "input '%s': data holds more elements than its shape",
                                CML_OIP_INPUT);
        req->texts[req->n++] = s;
    }
    return CML_OK;
}

/* Reads n BYTES elements (4-byte little-endian length, then the bytes) of bin[0..len). */
static cml_err read_binary(const void *bin, size_t len, size_t n, cml_oip_infer *req,
                           cml_diag *diag) {
    /* The copies need at most the data itself plus one NUL per element. */
    if ((req->buf = cml_malloc(len + n + 1)) == NULL)
        return CML_ERR_NOMEM;
    cml_reader rd = cml_reader_init(bin, len);
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t el = cml_read_u32(&rd);
        const char *s = rd.failed ? NULL : cml_read_bytes(&rd, el);
        if (s == NULL)
            return cml_diag_set(diag, CML_ERR_INVALID,
                                "input '%s': the binary data ends inside element %zu",
                                CML_OIP_INPUT, i);
        if (memchr(s, '\0', el) != NULL)
            return cml_diag_set(diag, CML_ERR_INVALID, "input '%s': element %zu holds a NUL",
                                CML_OIP_INPUT, i);
        memcpy(req->buf + out, s, el);
        req->buf[out + el] = '\0';
        req->texts[req->n++] = req->buf + out;
        out += (size_t)el + 1;
    }
    if (rd.left != 0)
        return cml_diag_set(diag, CML_ERR_INVALID,
                            "input '%s': %zu bytes of binary data follow its %zu elements",
                            CML_OIP_INPUT, rd.left, n);
    return CML_OK;
}

/* The shape [N] of the input into *n. */
static cml_err input_shape(json_object *in, size_t max_n, size_t *n, cml_diag *diag) {
    bool bad = false;
    json_object *shape = field(in, "shape", json_type_array, &bad);
    if (shape == NULL)
        return cml_diag_set(diag, CML_ERR_INVALID, "input '%s' needs a shape, an array [N]",
                            CML_OIP_INPUT);
    size_t rank = json_object_array_length(shape);
    json_object *d0 = rank == 1 ? json_object_array_get_idx(shape, 0) : NULL;
    if (rank != 1 || !json_object_is_type(d0, json_type_int))
        return cml_diag_set(diag, CML_ERR_INVALID,
                            "input '%s' has shape %.64s; this model takes shape [N], N texts",
                            CML_OIP_INPUT, json_object_to_json_string(shape));
    int64_t v = json_object_get_int64(d0);
    if (v < 1 || (uint64_t)v > max_n)
        return cml_diag_set(diag, CML_ERR_INVALID,
                            "input '%s' has shape [%lld]; a request holds 1 to %zu texts",
                            CML_OIP_INPUT, (long long)v, max_n);
    *n = (size_t)v;
    return CML_OK;
}

/* The one input tensor: name, datatype, shape and its data (JSON or binary). */
static cml_err parse_input(json_object *in, const char *bin, size_t bin_len, size_t max_n,
                           cml_oip_infer *req, cml_diag *diag) {
    bool bad = false;
    if (!json_object_is_type(in, json_type_object))
        return cml_diag_set(diag, CML_ERR_INVALID, "inputs[0] must be an object");
    json_object *name = field(in, "name", json_type_string, &bad);
    json_object *dtype = field(in, "datatype", json_type_string, &bad);
    json_object *params = field(in, "parameters", json_type_object, &bad);
    if (bad || name == NULL || dtype == NULL)
        return cml_diag_set(diag, CML_ERR_INVALID,
                            "inputs[0] needs a name and a datatype (strings), a shape and data; "
                            "parameters, when given, is an object");
    if (strcmp(json_object_get_string(name), CML_OIP_INPUT) != 0)
        return cml_diag_set(diag, CML_ERR_INVALID,
                            "unknown input '%.64s'; this model takes one BYTES input named '%s'",
                            json_object_get_string(name), CML_OIP_INPUT);
    if (strcmp(json_object_get_string(dtype), "BYTES") != 0)
        return cml_diag_set(diag, CML_ERR_INVALID,
                            "input '%s' has datatype %.32s; this model takes BYTES (texts)",
                            CML_OIP_INPUT, json_object_get_string(dtype));
    size_t n = 0;
    cml_err err = input_shape(in, max_n, &n, diag);
    if (err != CML_OK)
        return err;
    json_object *data = field(in, "data", json_type_array, &bad);
    json_object *bsize = params ? field(params, "binary_data_size", json_type_int, &bad) : NULL;
    if (bad)
        return cml_diag_set(diag, CML_ERR_INVALID,
                            "input '%s': data must be an array of strings and binary_data_size "
                            "an integer",
                            CML_OIP_INPUT);
    if ((data != NULL) == (bsize != NULL))
        return cml_diag_set(diag, CML_ERR_INVALID,
                            "input '%s' needs its texts either in data or as binary data "
                            "(binary_data_size), one of the two",
                            CML_OIP_INPUT);
    if ((req->texts = cml_calloc(n, sizeof *req->texts)) == NULL)
        return CML_ERR_NOMEM;
    if (bsize != NULL) {
        if (json_object_get_int64(bsize) < 0 || (uint64_t)json_object_get_int64(bsize) != bin_len)
            return cml_diag_set(diag, CML_ERR_INVALID,
                                "input '%s': binary_data_size is %lld but %zu bytes follow the "
                                "JSON header",
                                CML_OIP_INPUT, (long long)json_object_get_int64(bsize), bin_len);
        return read_binary(bin, bin_len, n, req, diag);
    }
    if (bin_len > 0)
        return cml_diag_set(diag, CML_ERR_INVALID,
                            "%zu bytes follow the JSON header but no input has binary_data_size",
                            bin_len);
    if ((err = flatten(data, req, n, 0, diag)) != CML_OK)
        return err;
    if (req->n != n)
        return cml_diag_set(diag, CML_ERR_INVALID,
                            "input '%s' has shape [%zu] but its data holds %zu elements",
                            CML_OIP_INPUT, n, req->n);
    return CML_OK;
}

/* The outputs asked for: both when the request names none. */
static cml_err parse_outputs(json_object *root, cml_oip_infer *req, cml_diag *diag) {
    bool bad = false;
    json_object *outs = field(root, "outputs", json_type_array, &bad);
    size_t n = outs ? json_object_array_length(outs) : 0;
    if (bad)
        return cml_diag_set(diag, CML_ERR_INVALID, "outputs must be an array");
    req->want_label = req->want_probs = n == 0;
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(outs, i);
        json_object *name = json_object_is_type(o, json_type_object)
                                ? field(o, "name", json_type_string, &bad)
                                : NULL;
        const char *s = name ? json_object_get_string(name) : "";
        if (strcmp(s, CML_OIP_OUTPUT_LABEL) == 0)
            req->want_label = true;
        else if (strcmp(s, CML_OIP_OUTPUT_PROBS) == 0)
            req->want_probs = true;
        else
            return cml_diag_set(diag, CML_ERR_INVALID,
                                "unknown output '%.64s' in outputs[%zu]; this model has outputs "
                                "'%s' and '%s'",
                                s, i, CML_OIP_OUTPUT_LABEL, CML_OIP_OUTPUT_PROBS);
    }
    return CML_OK;
}

cml_err cml_oip_parse_infer(const char *body, size_t len, size_t json_len, size_t max_n,
                            cml_oip_infer *out, cml_diag *diag) {
    bool bad = false;
    memset(out, 0, sizeof *out);
    if (json_len > len)
        return cml_diag_set(diag, CML_ERR_INVALID,
                            "Inference-Header-Content-Length is larger than the body");
    if ((out->root = parse_object(body, json_len)) == NULL)
        return cml_diag_set(diag, CML_ERR_INVALID,
                            "the inference request is not a well-formed JSON object");
    json_object *id = field(out->root, "id", json_type_string, &bad);
    if (bad) {
        cml_oip_infer_release(out);
        return cml_diag_set(diag, CML_ERR_INVALID, "id must be a string");
    }
    out->id = id ? json_object_get_string(id) : NULL;
    json_object *inputs = field(out->root, "inputs", json_type_array, &bad);
    field(out->root, "parameters", json_type_object, &bad);
    cml_err err = CML_OK;
    if (bad || inputs == NULL)
        err = cml_diag_set(diag, CML_ERR_INVALID,
                           "the request needs inputs, an array of tensors (and parameters, when "
                           "given, is an object)");
    else if (json_object_array_length(inputs) != 1)
        err = cml_diag_set(diag, CML_ERR_INVALID,
                           "the request has %zu inputs; this model takes one, '%s' (BYTES, [N])",
                           json_object_array_length(inputs), CML_OIP_INPUT);
    else
        err = parse_input(json_object_array_get_idx(inputs, 0), body + json_len, len - json_len,
                          max_n, out, diag);
    if (err == CML_OK)
        err = parse_outputs(out->root, out, diag);
    if (err != CML_OK)
        cml_oip_infer_release(out);
    return err;
}

void cml_oip_infer_release(cml_oip_infer *req) {
    if (req == NULL)
        return;
    cml_free(req->texts);
    cml_free(req->buf);
    json_object_put(req->root);
    memset(req, 0, sizeof *req);
}

static json_object *int_array(const int64_t *v, size_t n) {
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_int64(v[i]));
    return a;
}

/* {"labels": "OEQ,CEQ"}: parameter values are scalars, so the order is one joined string. */
static json_object *label_parameters(const cml_model *m) {
    cml_buf b = {0};
    for (size_t c = 0; c < m->n_labels; c++) {
        if (c > 0)
            cml_buf_put(&b, ",", 1);
        cml_buf_put(&b, m->labels[c], strlen(m->labels[c]));
    }
    json_object *p = json_object_new_object();
    json_object_object_add(
        p, "labels", json_object_new_string_len(b.data ? (const char *)b.data : "", (int)b.len));
    cml_buf_release(&b);
    return p;
}

/* A tensor's {name, datatype, shape[, parameters][, data]}. */
static json_object *tensor(const char *name, const char *datatype, const int64_t *shape,
                           size_t rank, json_object *parameters, json_object *data) {
    json_object *t = json_object_new_object();
    json_object_object_add(t, "name", json_object_new_string(name));
    json_object_object_add(t, "datatype", json_object_new_string(datatype));
    json_object_object_add(t, "shape", int_array(shape, rank));
    if (parameters != NULL)
        json_object_object_add(t, "parameters", parameters);
    if (data != NULL)
        json_object_object_add(t, "data", data);
    return t;
}

json_object *cml_oip_infer_response(const cml_model *m, const cml_oip_infer *req, const int *labels,
                                    const double *probs) {
    json_object *o = json_object_new_object(), *outs = json_object_new_array();
    json_object_object_add(o, "model_name", json_object_new_string(cml_model_type_name(m->type)));
    json_object_object_add(o, "model_version", json_object_new_string(m->version));
    if (req->id != NULL)
        json_object_object_add(o, "id", json_object_new_string(req->id));
    if (req->want_label) {
        json_object *d = json_object_new_array();
        for (size_t i = 0; i < req->n; i++)
            json_object_array_add(d, json_object_new_string(m->labels[labels[i]]));
        int64_t shape[1] = {(int64_t)req->n};
        json_object_array_add(outs, tensor(CML_OIP_OUTPUT_LABEL, "BYTES", shape, 1, NULL, d));
    }
    if (req->want_probs) {
        json_object *d = json_object_new_array();
        for (size_t i = 0; i < req->n * m->n_labels; i++)
            json_object_array_add(d, json_object_new_double((double)(float)probs[i]));
        int64_t shape[2] = {(int64_t)req->n, (int64_t)m->n_labels};
        json_object_array_add(
            outs, tensor(CML_OIP_OUTPUT_PROBS, "FP32", shape, 2, label_parameters(m), d));
    }
    json_object_object_add(o, "outputs", outs);
    return o;
}

json_object *cml_oip_model_metadata(const cml_model *m, const char *versions, size_t stride,
                                    size_t n_versions) {
    json_object *o = json_object_new_object(), *vs = json_object_new_array(),
                *ins = json_object_new_array(), *outs = json_object_new_array();
    for (size_t i = 0; i < n_versions; i++)
        json_object_array_add(vs, json_object_new_string(versions + i * stride));
    int64_t any[1] = {-1}, probs[2] = {-1, (int64_t)m->n_labels};
    json_object_array_add(ins, tensor(CML_OIP_INPUT, "BYTES", any, 1, NULL, NULL));
    json_object_array_add(outs, tensor(CML_OIP_OUTPUT_LABEL, "BYTES", any, 1, NULL, NULL));
    json_object_array_add(
        outs, tensor(CML_OIP_OUTPUT_PROBS, "FP32", probs, 2, label_parameters(m), NULL));
    json_object_object_add(o, "name", json_object_new_string(cml_model_type_name(m->type)));
    json_object_object_add(o, "versions", vs);
    json_object_object_add(o, "platform", json_object_new_string("cultivate-ml"));
    json_object_object_add(o, "inputs", ins);
    json_object_object_add(o, "outputs", outs);
    /* Which version the tensors describe (the labels are that version's). */
    json_object_object_add(o, "version", json_object_new_string(m->version));
    return o;
}
