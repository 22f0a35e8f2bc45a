/* Open Inference Protocol tensors (core/model/oip_tensor.c): requests parsed, answers written. */
#include "config.h"

#include <stdio.h>

#include "base/cml_alloc.h"
#include "model/oip_tensor.h"
#include "unit.h"

static cml_err parse(const char *json, size_t max_n, cml_oip_infer *req, cml_diag *d) {
    return cml_oip_parse_infer(json, strlen(json), strlen(json), max_n, req, d);
}

/* Parsing must fail with CML_ERR_INVALID and a message holding `needle`. */
static void assert_refused(const char *json, const char *needle) {
    cml_oip_infer req;
    cml_diag d = {{0}};
    ck_assert_int_eq(parse(json, 10, &req, &d), CML_ERR_INVALID);
    ck_assert_msg(strstr(d.msg, needle) != NULL, "%s: message '%s' lacks '%s'", json, d.msg,
                  needle);
    ck_assert_ptr_null(req.root);
    ck_assert_ptr_null(req.texts);
}

START_TEST(test_flat_request) {
    cml_oip_infer req;
    cml_diag d = {{0}};
    const char *body = "{\"id\": \"r-1\", \"inputs\": [{\"name\": \"text\", \"shape\": [2], "
                       "\"datatype\": \"BYTES\", \"data\": [\"What if?\", \"Is it red?\"]}]}";
    ck_assert_int_eq(parse(body, 10, &req, &d), CML_OK);
    ck_assert_uint_eq(req.n, 2);
    ck_assert_str_eq(req.texts[0], "What if?");
    ck_assert_str_eq(req.texts[1], "Is it red?");
    ck_assert_str_eq(req.id, "r-1");
    ck_assert(req.want_label && req.want_probs);
    cml_oip_infer_release(&req);
    cml_oip_infer_release(&req); /* released twice: the second is a no-op */
    cml_oip_infer_release(NULL);
}
END_TEST

/* KServe's InferRequest.to_rest(): id, model_name, a str content_type, nested data. */
START_TEST(test_kserve_request) {
    cml_oip_infer req;
    cml_diag d = {{0}};
    const char *body =
        "{\"id\": \"6f1c\", \"model_name\": \"classic\", \"inputs\": [{\"name\": \"text\", "
        "\"shape\": [3], \"datatype\": \"BYTES\", \"parameters\": {\"content_type\": \"str\"}, "
        "\"data\": [[\"a\"], [\"b\"], [\"c\"]]}], \"parameters\": {\"content_type\": \"pd\"}}";
    ck_assert_int_eq(parse(body, 10, &req, &d), CML_OK);
    ck_assert_uint_eq(req.n, 3);
    ck_assert_str_eq(req.texts[2], "c");
    cml_oip_infer_release(&req);
}
END_TEST

/* tritonclient.http with binary_data=False: requested outputs with binary_data false. */
START_TEST(test_requested_outputs) {
    cml_oip_infer req;
    cml_diag d = {{0}};
    const char *body =
        "{\"inputs\": [{\"name\": \"text\", \"shape\": [1], \"datatype\": \"BYTES\", "
        "\"data\": [\"Why?\"]}], \"outputs\": [{\"name\": \"label\", "
        "\"parameters\": {\"binary_data\": false}}]}";
    ck_assert_int_eq(parse(body, 10, &req, &d), CML_OK);
    ck_assert(req.want_label && !req.want_probs);
    ck_assert_ptr_null(req.id);
    cml_oip_infer_release(&req);
}
END_TEST

START_TEST(test_refusals) {
    assert_refused("[1]", "JSON object");
    assert_refused("{\"inputs\": [{\"name\": \"text\"", "JSON object");
    assert_refused("{\"id\": 7, \"inputs\": []}", "id must be a string");
    assert_refused("{}", "needs inputs");
    assert_refused("{\"inputs\": []}", "0 inputs");
    assert_refused("{\"inputs\": [{\"name\": \"INPUT0\", \"shape\": [1], \"datatype\": \"BYTES\", "
                   "\"data\": [\"x\"]}]}",
                   "unknown input 'INPUT0'");
    assert_refused("{\"inputs\": [{\"name\": \"text\", \"shape\": [1], \"datatype\": \"FP32\", "
                   "\"data\": [1.5]}]}",
                   "datatype FP32");
    assert_refused("{\"inputs\": [{\"name\": \"text\", \"shape\": [2, 1], \"datatype\": \"BYTES\", "
                   "\"data\": [\"x\", \"y\"]}]}",
                   "shape [ 2, 1 ]");
    assert_refused("{\"inputs\": [{\"name\": \"text\", \"shape\": [3], \"datatype\": \"BYTES\", "
                   "\"data\": [\"x\", \"y\"]}]}",
                   "holds 2 elements");
    assert_refused("{\"inputs\": [{\"name\": \"text\", \"shape\": [1], \"datatype\": \"BYTES\", "
                   "\"data\": [\"x\", \"y\"]}]}",
                   "more elements than its shape");
    assert_refused("{\"inputs\": [{\"name\": \"text\", \"shape\": [0], \"datatype\": \"BYTES\", "
                   "\"data\": []}]}",
                   "1 to 10 texts");
    assert_refused("{\"inputs\": [{\"name\": \"text\", \"shape\": [11], \"datatype\": \"BYTES\", "
                   "\"data\": []}]}",
                   "1 to 10 texts");
    assert_refused("{\"inputs\": [{\"name\": \"text\", \"shape\": [2], \"datatype\": \"BYTES\", "
                   "\"data\": [\"x\", 3]}]}",
                   "element 1 of data is not a string");
    assert_refused("{\"inputs\": [{\"name\": \"text\", \"shape\": [1], \"datatype\": \"BYTES\", "
                   "\"data\": [\"a\\u0000b\"]}]}",
                   "holds a NUL");
    assert_refused("{\"inputs\": [{\"name\": \"text\", \"shape\": [1], \"datatype\": \"BYTES\"}]}",
                   "either in data or as binary data");
    assert_refused("{\"inputs\": [{\"name\": \"text\", \"shape\": [1], \"datatype\": \"BYTES\", "
                   "\"data\": [\"x\"]}], \"outputs\": [{\"name\": \"OUTPUT0\"}]}",
                   "unknown output 'OUTPUT0'");
    assert_refused("{\"inputs\": [{\"name\": \"text\", \"shape\": [1], \"datatype\": \"BYTES\", "
                   "\"data\": [\"x\"]}], \"parameters\": [1]}",
                   "parameters, when");
}
END_TEST

/* A binary BYTES tensor after the JSON header, as tritonclient sends one by default. */
static size_t binary_body(char *buf, size_t cap, const char *const *texts, size_t n,
                          long long claimed, size_t *json_len) {
    size_t bin = 0;
    for (size_t i = 0; i < n; i++)
        bin += 4 + strlen(texts[i]);
    int j = snprintf(buf, cap,
                     "{\"inputs\": [{\"name\": \"text\", \"shape\": [%zu], \"datatype\": "
                     "\"BYTES\", \"parameters\": {\"binary_data_size\": %lld}}]}",
                     n, claimed < 0 ? (long long)bin : claimed);
    size_t at = (size_t)j;
    *json_len = at;
    for (size_t i = 0; i < n; i++) {
        uint32_t l = (uint32_t)strlen(texts[i]);
        unsigned char le[4] = {(unsigned char)l, (unsigned char)(l >> 8), (unsigned char)(l >> 16),
                               (unsigned char)(l >> 24)};
        memcpy(buf + at, le, 4);
        memcpy(buf + at + 4, texts[i], l);
        at += 4 + l;
    }
    return at;
}

START_TEST(test_binary_tensor) {
    char buf[512];
    size_t json_len;
    const char *texts[] = {"What do you see?", "", "Is it blue?"};
    size_t len = binary_body(buf, sizeof buf, texts, 3, -1, &json_len);
    cml_oip_infer req;
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_oip_parse_infer(buf, len, json_len, 10, &req, &d), CML_OK);
    ck_assert_uint_eq(req.n, 3);
    ck_assert_str_eq(req.texts[0], "What do you see?");
    ck_assert_str_eq(req.texts[1], "");
    ck_assert_str_eq(req.texts[2], "Is it blue?");
    cml_oip_infer_release(&req);

    /* Cut short, a wrong binary_data_size, bytes left over, more texts than the data holds. */
    ck_assert_int_eq(cml_oip_parse_infer(buf, len - 1, json_len, 10, &req, &d), CML_ERR_INVALID);
    len = binary_body(buf, sizeof buf, texts, 3, 5, &json_len);
    ck_assert_int_eq(cml_oip_parse_infer(buf, len, json_len, 10, &req, &d), CML_ERR_INVALID);
    ck_assert_msg(strstr(d.msg, "binary_data_size is 5") != NULL, "%s", d.msg);
    len = binary_body(buf, sizeof buf, texts, 3, -1, &json_len);
    buf[json_len - 0] = 0; /* first length becomes 0: the rest no longer parses as 3 elements */
    ck_assert_int_eq(cml_oip_parse_infer(buf, len, json_len, 10, &req, &d), CML_ERR_INVALID);
    /* Binary data with no input claiming it. */
    const char *json =
        "{\"inputs\": [{\"name\": \"text\", \"shape\": [1], \"datatype\": \"BYTES\", "
        "\"data\": [\"x\"]}]}";
    snprintf(buf, sizeof buf, "%sXYZ", json);
    ck_assert_int_eq(cml_oip_parse_infer(buf, strlen(buf), strlen(json), 10, &req, &d),
                     CML_ERR_INVALID);
    ck_assert_msg(strstr(d.msg, "no input has binary_data_size") != NULL, "%s", d.msg);
    ck_assert_int_eq(cml_oip_parse_infer(buf, 3, 4, 10, &req, &d), CML_ERR_INVALID);
}
END_TEST

/* A model of two labels (no members: only what the encoders read). */
static cml_model *labelled_model(void) {
    cml_model *m = cml_model_new(CML_MODEL_CLASSIC);
    ck_assert_ptr_nonnull(m);
    m->n_labels = 2;
    m->labels[0] = cml_strdup("OEQ");
    m->labels[1] = cml_strdup("CEQ");
    snprintf(m->version, sizeof m->version, "20261203T120000Z");
    return m;
}

static json_object *get(json_object *o, const char *key) {
    json_object *v = NULL;
    ck_assert_msg(json_object_object_get_ex(o, key, &v), "no %s", key);
    return v;
}

START_TEST(test_response) {
    cml_model *m = labelled_model();
    cml_oip_infer req;
    cml_diag d = {{0}};
    const char *body = "{\"id\": \"abc\", \"inputs\": [{\"name\": \"text\", \"shape\": [2], "
                       "\"datatype\": \"BYTES\", \"data\": [\"x\", \"y\"]}]}";
    ck_assert_int_eq(parse(body, 10, &req, &d), CML_OK);
    int labels[2] = {1, 0};
    double probs[4] = {0.25, 0.75, 0.875, 0.125};
    json_object *o = cml_oip_infer_response(m, &req, labels, probs);
    ck_assert_str_eq(json_object_get_string(get(o, "model_name")), "classic");
    ck_assert_str_eq(json_object_get_string(get(o, "model_version")), "20261203T120000Z");
    ck_assert_str_eq(json_object_get_string(get(o, "id")), "abc");
    json_object *outs = get(o, "outputs");
    ck_assert_uint_eq(json_object_array_length(outs), 2);
    json_object *lab = json_object_array_get_idx(outs, 0), *pr = json_object_array_get_idx(outs, 1);
    ck_assert_str_eq(json_object_get_string(get(lab, "name")), "label");
    ck_assert_str_eq(json_object_get_string(get(lab, "datatype")), "BYTES");
    ck_assert_str_eq(json_object_to_json_string_ext(get(lab, "shape"), JSON_C_TO_STRING_PLAIN),
                     "[2]");
    ck_assert_str_eq(json_object_to_json_string_ext(get(lab, "data"), JSON_C_TO_STRING_PLAIN),
                     "[\"CEQ\",\"OEQ\"]");
    ck_assert_str_eq(json_object_get_string(get(pr, "name")), "probabilities");
    ck_assert_str_eq(json_object_get_string(get(pr, "datatype")), "FP32");
    ck_assert_str_eq(json_object_to_json_string_ext(get(pr, "shape"), JSON_C_TO_STRING_PLAIN),
                     "[2,2]");
    ck_assert_str_eq(json_object_get_string(get(get(pr, "parameters"), "labels")), "OEQ,CEQ");
    json_object *data = get(pr, "data");
    ck_assert_uint_eq(json_object_array_length(data), 4);
    ck_assert_double_eq(json_object_get_double(json_object_array_get_idx(data, 1)), 0.75);
    ck_assert_double_eq(json_object_get_double(json_object_array_get_idx(data, 2)), 0.875);
    json_object_put(o);

    /* Only what was asked for; no id when none was sent. */
    req.want_label = false;
    req.id = NULL;
    o = cml_oip_infer_response(m, &req, labels, probs);
    ck_assert(!json_object_object_get_ex(o, "id", NULL));
    outs = get(o, "outputs");
    ck_assert_uint_eq(json_object_array_length(outs), 1);
    ck_assert_str_eq(json_object_get_string(get(json_object_array_get_idx(outs, 0), "name")),
                     "probabilities");
    json_object_put(o);
    cml_oip_infer_release(&req);
    cml_model_release(m);
}
END_TEST

START_TEST(test_metadata) {
    cml_model *m = labelled_model();
    char versions[2][40] = {"20261203T120000Z", "20261201T080000Z"};
    json_object *o = cml_oip_model_metadata(m, versions[0], sizeof versions[0], 2);
    ck_assert_str_eq(json_object_get_string(get(o, "name")), "classic");
    ck_assert_str_eq(json_object_to_json_string_ext(get(o, "versions"), JSON_C_TO_STRING_PLAIN),
                     "[\"20261203T120000Z\",\"20261201T080000Z\"]");
    ck_assert_str_eq(json_object_get_string(get(o, "platform")), "cultivate-ml");
    ck_assert_str_eq(json_object_to_json_string_ext(get(o, "inputs"), JSON_C_TO_STRING_PLAIN),
                     "[{\"name\":\"text\",\"datatype\":\"BYTES\",\"shape\":[-1]}]");
    json_object *pr = json_object_array_get_idx(get(o, "outputs"), 1);
    ck_assert_str_eq(json_object_to_json_string_ext(get(pr, "shape"), JSON_C_TO_STRING_PLAIN),
                     "[-1,2]");
    ck_assert_str_eq(json_object_get_string(get(get(pr, "parameters"), "labels")), "OEQ,CEQ");
    json_object_put(o);
    o = cml_oip_model_metadata(m, NULL, 40, 0);
    ck_assert_uint_eq(json_object_array_length(get(o, "versions")), 0);
    json_object_put(o);
    cml_model_release(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("oip_tensor");
    TCase *tc = tcase_create("tensors");
    tcase_add_test(tc, test_flat_request);
    tcase_add_test(tc, test_kserve_request);
    tcase_add_test(tc, test_requested_outputs);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_binary_tensor);
    tcase_add_test(tc, test_response);
    tcase_add_test(tc, test_metadata);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
