/* Request parsing (fcgi/request.c) through the router: bodies, field types, texts, the model. */
#include "config.h"

#include "fcgi_harness.h"

#define CLASSIFY "/api/v1/models/classify"

/* Serves a POST of body with content type ct; checks status, code and (when given) detail. */
static void expect_post(const char *uri, const char *ct, const char *body, int status,
                        const char *code, const char *detail) {
    fake_request f;
    char buf[256];
    fake_request_init(&f, "POST", uri, body);
    if (ct)
        fake_request_param(&f, "CONTENT_TYPE", ct);
    ck_assert_int_eq(harness_serve(&f), status);
    ck_assert_str_eq(harness_error(&f, buf, sizeof buf), code);
    if (detail)
        ck_assert_str_eq(harness_detail(&f, buf, sizeof buf), detail);
    fake_request_free(&f);
}

START_TEST(test_body_required) {
    expect_post(CLASSIFY, NULL, NULL, 400, "missing_body", "The request needs a JSON body.");
    expect_post(CLASSIFY, NULL, "", 400, "missing_body", NULL);
}
END_TEST

START_TEST(test_media_type) {
    expect_post(CLASSIFY, "text/plain", "{}", 415, "unsupported_media_type",
                "Send the body as application/json.");
    /* Parameters of the media type are ignored. */
    expect_post(CLASSIFY, "application/json; charset=utf-8", "{}", 400, "missing_field", NULL);
}
END_TEST

START_TEST(test_json_body) {
    expect_post(CLASSIFY, NULL, "{\"text\": ", 400, "malformed_json",
                "The body is not well-formed JSON.");
    expect_post(CLASSIFY, NULL, "{} {}", 400, "malformed_json", NULL);
    expect_post(CLASSIFY, NULL, "[1]", 400, "malformed_json", "The body must be a JSON object.");
    expect_post(CLASSIFY, NULL, "{\"text\": \"\xff\"}", 400, "invalid_utf8",
                "The body is not valid UTF-8.");
}
END_TEST

START_TEST(test_fields) {
    expect_post(CLASSIFY, NULL, "{\"text\": 5}", 400, "wrong_type",
                "Field 'text' must be a string.");
    expect_post(CLASSIFY, NULL, "{}", 400, "missing_field", "Field 'text' is required.");
    expect_post(CLASSIFY, NULL, "{\"text\": null}", 400, "missing_field", NULL);
    expect_post(CLASSIFY, NULL, "{\"text\": \"hi\", \"model_type\": \"forest\"}", 400,
                "unknown_model_type", "model_type must be ensemble or classic.");
    expect_post(CLASSIFY, NULL, "{\"text\": \"hi\", \"context\": []}", 400, "wrong_type",
                "Field 'context' must be a string.");
}
END_TEST

START_TEST(test_text_bounds) {
    expect_post(CLASSIFY, NULL, "{\"text\": \"  \\n \"}", 400, "invalid_text",
                "Field 'text' must hold 1 to 20 characters after trimming.");
    expect_post(CLASSIFY, NULL, "{\"text\": \"123456789012345678901\"}", 400, "invalid_text", NULL);
    /* Characters, not bytes: twenty two-byte characters fit. */
    char body[128] = "{\"text\": \"";
    for (int i = 0; i < 20; i++)
        strcat(body, "\xc3\xa9");
    strcat(body, "\"}");
    expect_post(CLASSIFY, NULL, body, 503, "model_unavailable", NULL);
}
END_TEST

START_TEST(test_model_not_loaded) {
    fake_request f;
    char buf[128];
    fake_request_init(&f, "POST", CLASSIFY,
                      "{\"text\": \"is it red?\", \"model_type\": \"ensemble\"}");
    ck_assert_int_eq(harness_serve(&f), 503);
    ck_assert_str_eq(harness_error(&f, buf, sizeof buf), "model_unavailable");
    ck_assert_str_eq(harness_detail(&f, buf, sizeof buf),
                     "The ensemble model is not loaded; try again later.");
    ck_assert_str_eq(fake_header(&f, "Retry-After", buf, sizeof buf), "5");
    fake_request_free(&f);
}
END_TEST

START_TEST(test_query_text_only_where_the_route_says) {
    fake_request f;
    char buf[64];
    /* /api/classify takes ?text= without a body: it gets as far as the (absent) model. */
    fake_request_init(&f, "POST", "/api/classify?text=is+it+red%3F", NULL);
    ck_assert_int_eq(harness_serve(&f), 503);
    ck_assert_str_eq(harness_error(&f, buf, sizeof buf), "model_unavailable");
    fake_request_free(&f);
    fake_request_init(&f, "POST", "/api/v1/classify?text=is+it+red%3F", NULL);
    ck_assert_int_eq(harness_serve(&f), 400);
    ck_assert_str_eq(harness_error(&f, buf, sizeof buf), "missing_body");
    fake_request_free(&f);
}
END_TEST

START_TEST(test_batch_fields) {
    expect_post("/api/v1/classify/batch", NULL, "{\"questions\": \"a\"}", 400, "missing_field",
                "Field 'questions' must be an array of strings.");
    expect_post("/api/v1/classify/batch", NULL, "{\"questions\": []}", 400, "invalid_batch",
                "A batch holds 1 to 1000 questions.");
    expect_post("/api/v1/classify/batch", NULL, "{\"questions\": [\"a\", 2]}", 400, "wrong_type",
                "Field 'questions[1]' must be a string.");
    expect_post("/api/v2/classify/batch", NULL, "{\"questions\": [\"a\"], \"model\": \"x\"}", 400,
                "unknown_model_type", "model must be ensemble or classic.");
}
END_TEST

START_TEST(test_feedback_fields) {
    expect_post("/api/feedback", NULL, "{\"text\": \"is it red\", \"confidence\": \"high\"}", 400,
                "wrong_type", "Field 'confidence' must be a number.");
    expect_post("/api/feedback", NULL, "{\"text\": \"is it red\", \"scenario_id\": 1.5}", 400,
                "wrong_type", "Field 'scenario_id' must be an integer.");
    expect_post("/api/feedback", NULL, "{\"text\": \"is it red\"}", 400, "missing_field",
                "Field 'correct_class' is required.");
    expect_post("/api/feedback", NULL, "{\"text\": \"is it red\", \"correct_class\": \"OEQ\"}", 400,
                "unknown_label", NULL);
}
END_TEST

START_TEST(test_boolean_and_object_fields) {
    expect_post("/api/v1/models/retrain", NULL, "{\"model_type\": \"classic\", \"use_azure\": 1}",
                400, "wrong_type", "Field 'use_azure' must be true or false.");
    expect_post("/api/v1/models/retrain", NULL,
                "{\"model_type\": \"classic\", \"hyperparameters\": 3}", 400, "wrong_type",
                "Field 'hyperparameters' must be an object.");
    expect_post("/api/v1/models/retrain", "text/csv", "text,label\n", 400, "missing_field",
                "A text/csv body needs ?model_type=.");
    expect_post("/api/v1/models/retrain", NULL,
                "{\"model_type\": \"classic\", \"use_azure\": true}", 400, "storage_disabled",
                NULL);
}
END_TEST

/* json-c takes NaN, Infinity and 1e999 and clamps huge integers; none reaches a handler. */
START_TEST(test_non_standard_numbers) {
    const char *fmt = "{\"text\": \"is it red\", \"correct_class\": \"OEQ\", \"%s\": %s}";
    char body[256];
    static const char *nonfinite[] = {"NaN", "Infinity", "-Infinity", "1e999", "-1e999"};
    for (size_t i = 0; i < sizeof nonfinite / sizeof nonfinite[0]; i++) {
        snprintf(body, sizeof body, fmt, "confidence", nonfinite[i]);
        expect_post("/api/feedback", NULL, body, 400, "invalid_number",
                    "Field 'confidence' must be a finite number (not NaN, Infinity or beyond the "
                    "double range).");
    }
    snprintf(body, sizeof body, fmt, "scenario_id", "99999999999999999999");
    expect_post("/api/feedback", NULL, body, 400, "out_of_range",
                "Field 'scenario_id' is out of range: integers are at most 2^53-1 in magnitude.");
    snprintf(body, sizeof body, fmt, "scenario_id", "-99999999999999999999");
    expect_post("/api/feedback", NULL, body, 400, "out_of_range", NULL);
    snprintf(body, sizeof body, fmt, "scenario_id", "1e23");
    expect_post("/api/feedback", NULL, body, 400, "wrong_type",
                "Field 'scenario_id' must be an integer.");
    snprintf(body, sizeof body, fmt, "scenario_id", "2147483648");
    expect_post("/api/feedback", NULL, body, 400, "out_of_range",
                "Field 'scenario_id' must be from 0 to 2147483647.");
    snprintf(body, sizeof body, fmt, "scenario_id", "-1");
    expect_post("/api/feedback", NULL, body, 400, "out_of_range", NULL);
    snprintf(body, sizeof body, fmt, "confidence", "1.5");
    expect_post("/api/feedback", NULL, body, 400, "out_of_range",
                "Field 'confidence' must be from 0 to 1.");
    snprintf(body, sizeof body, fmt, "confidence", "-0.01");
    expect_post("/api/feedback", NULL, body, 400, "out_of_range", NULL);
    /* In range (and 7.0, an integer to JSON Schema): on to the label check (no model here). */
    snprintf(body, sizeof body, fmt, "scenario_id", "7.0");
    expect_post("/api/feedback", NULL, body, 400, "unknown_label", NULL);
    snprintf(body, sizeof body, fmt, "confidence", "1");
    expect_post("/api/feedback", NULL, body, 400, "unknown_label", NULL);
    /* Any field, however deep, and not only the feedback route's. */
    expect_post(CLASSIFY, NULL, "{\"text\": \"hi\", \"extra\": {\"x\": [1, NaN]}}", 400,
                "invalid_number", NULL);
    char buf[256];
    fake_request f;
    fake_request_init(&f, "POST", "/api/v1/models/retrain",
                      "{\"model_type\": \"classic\", \"hyperparameters\": {\"C\": Infinity}}");
    ck_assert_int_eq(harness_serve(&f), 400);
    ck_assert_str_eq(harness_detail(&f, buf, sizeof buf),
                     "Field 'hyperparameters.C' must be a finite number (not NaN, Infinity or "
                     "beyond the double range).");
    fake_request_free(&f);
}
END_TEST

START_TEST(test_wrong_typed_optional_fields) {
    expect_post("/api/feedback", NULL, "{\"text\": \"is it red\", \"scenario_id\": \"x\"}", 400,
                "wrong_type", "Field 'scenario_id' must be an integer.");
    expect_post("/api/feedback", NULL, "{\"text\": \"is it red\", \"scenario_id\": true}", 400,
                "wrong_type", NULL);
    expect_post("/api/feedback", NULL, "{\"text\": \"is it red\", \"confidence\": [0.5]}", 400,
                "wrong_type", "Field 'confidence' must be a number.");
    /* The web client's classify routes type their optional fields too. */
    expect_post("/api/classify", NULL, "{\"text\": \"is it red\", \"scenario_id\": \"x\"}", 400,
                "wrong_type", "Field 'scenario_id' must be an integer.");
    expect_post("/api/v2/classify/ensemble", NULL, "{\"text\": \"is it red\", \"debug\": \"yes\"}",
                400, "wrong_type", "Field 'debug' must be true or false.");
    expect_post("/api/v1/classify", NULL, "{\"text\": \"is it red\", \"debug_mode\": 1}", 400,
                "wrong_type", NULL);
    expect_post("/classify_response", NULL, "{\"text\": \"is it red\", \"scenario_id\": 1e23}", 400,
                "wrong_type", NULL);
    expect_post("/api/classify", NULL,
                "{\"text\": \"is it red\", \"scenario_id\": 3, \"debug\": true}", 503,
                "model_unavailable", NULL);
    /* Feedback's unstored fields are typed too. */
    expect_post("/api/feedback", NULL, "{\"text\": \"is it red\", \"model_type\": 3}", 400,
                "wrong_type", "Field 'model_type' must be a string.");
    expect_post("/api/feedback", NULL, "{\"text\": \"is it red\", \"model_version\": {}}", 400,
                "wrong_type", "Field 'model_version' must be a string.");
    expect_post("/api/feedback", NULL,
                "{\"text\": \"is it red\", \"correct_class\": \"OEQ\", \"human_label\": 1}", 400,
                "wrong_type", "Field 'human_label' must be a string.");
    /* null is "not given". */
    expect_post("/api/feedback", NULL,
                "{\"text\": \"is it red\", \"correct_class\": \"OEQ\", \"scenario_id\": null}", 400,
                "unknown_label", NULL);
}
END_TEST

/* "\u0000" never cuts a string: "classic\u0000x" is not taken as classic. */
START_TEST(test_embedded_nul) {
    expect_post(CLASSIFY, NULL, "{\"text\": \"is it\\u0000 red\"}", 400, "invalid_string",
                "Field 'text' holds a NUL character (\\u0000).");
    expect_post(CLASSIFY, NULL, "{\"text\": \"is it red\", \"model_type\": \"classic\\u0000x\"}",
                400, "invalid_string", "Field 'model_type' holds a NUL character (\\u0000).");
    expect_post("/api/v1/classify/batch", NULL, "{\"questions\": [\"a\", \"b\\u0000\"]}", 400,
                "invalid_string", "Field 'questions[1]' holds a NUL character (\\u0000).");
    expect_post("/api/feedback", NULL, "{\"text\": \"x\", \"source\": \"\\u0000\"}", 400,
                "invalid_string", NULL);
    /* A member name: json-c would keep "text" of "text\u0000x". */
    expect_post(CLASSIFY, NULL, "{\"text\\u0000x\": \"is it red\"}", 400, "invalid_string",
                "A member name of the body holds a NUL character (\\u0000).");
    /* An escaped backslash before u0000 is text, not a NUL. */
    expect_post(CLASSIFY, NULL, "{\"text\": \"a\\\\u0000b\"}", 503, "model_unavailable", NULL);
    /* A transcript's JSON segments too. */
    expect_post("/api/v1/transcripts/analyze", NULL,
                "{\"segments\": [{\"start\": 0, \"end\": 1, \"text\": \"is it\\u0000 red?\"}]}",
                400, "invalid_string", "Field 'segments[0].text' holds a NUL character (\\u0000).");
    expect_post("/api/v1/transcripts/analyze", NULL,
                "{\"segments\": [{\"start\": NaN, \"end\": 1, \"text\": \"is it red?\"}]}", 400,
                "invalid_number", NULL);
}
END_TEST

/* %00 or invalid UTF-8 in the path or query: a JSON 400, never a shortened parameter. */
START_TEST(test_invalid_url) {
    harness_expect("POST", "/api/classify?text=is%00it", NULL, 400, "invalid_url");
    harness_expect("POST", "/api/classify?text=%ff%fe", NULL, 400, "invalid_url");
    harness_expect("GET", "/api/health%00x", NULL, 400, "invalid_url");
    harness_expect("GET", "/api/v1/models/performance/history?model_type=classic%00", NULL, 400,
                   "invalid_url");
    /* Encoded UTF-8 is fine. */
    harness_expect("POST", "/api/classify?text=caf%C3%A9%3F", NULL, 503, "model_unavailable");
}
END_TEST

START_TEST(test_history_limit) {
    harness_expect("GET", "/api/v1/models/performance/history?limit=0", NULL, 400, "invalid_limit");
    harness_expect("GET", "/api/v1/models/performance/history?limit=5x", NULL, 400,
                   "invalid_limit");
    harness_expect("GET", "/api/v1/models/performance/history?limit=5", NULL, 200, NULL);
    harness_expect("GET", "/api/v1/models/performance/history?model_type=x", NULL, 400,
                   "unknown_model_type");
}
END_TEST

int main(void) {
    Suite *s = suite_create("request");
    TCase *tc = tcase_create("request");
    tcase_add_checked_fixture(tc, harness_setup, harness_stop);
    tcase_add_test(tc, test_body_required);
    tcase_add_test(tc, test_media_type);
    tcase_add_test(tc, test_json_body);
    tcase_add_test(tc, test_fields);
    tcase_add_test(tc, test_text_bounds);
    tcase_add_test(tc, test_model_not_loaded);
    tcase_add_test(tc, test_query_text_only_where_the_route_says);
    tcase_add_test(tc, test_batch_fields);
    tcase_add_test(tc, test_feedback_fields);
    tcase_add_test(tc, test_boolean_and_object_fields);
    tcase_add_test(tc, test_history_limit);
    tcase_add_test(tc, test_non_standard_numbers);
    tcase_add_test(tc, test_wrong_typed_optional_fields);
    tcase_add_test(tc, test_embedded_nul);
    tcase_add_test(tc, test_invalid_url);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
