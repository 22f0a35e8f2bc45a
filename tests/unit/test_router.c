/* The router without a web server: routes, methods, admin auth, CORS, limits, request ids. */
#include "config.h"

#include "fcgi_harness.h"

START_TEST(test_unknown_route_is_404) {
    harness_expect("GET", "/api/nothing", NULL, 404, "not_found");
    harness_expect("GET", "/api/v1/models/training/status/a/b", NULL, 404, "not_found");
}
END_TEST

START_TEST(test_wrong_method_is_405_with_allow) {
    fake_request f;
    char buf[64];
    fake_request_init(&f, "GET", "/api/v1/models/classify", NULL);
    ck_assert_int_eq(harness_serve(&f), 405);
    ck_assert_str_eq(harness_error(&f, buf, sizeof buf), "method_not_allowed");
    ck_assert_str_eq(fake_header(&f, "Allow", buf, sizeof buf), "POST");
    fake_request_free(&f);
    fake_request_init(&f, "DELETE", "/api/health", NULL);
    ck_assert_int_eq(harness_serve(&f), 405);
    ck_assert_str_eq(fake_header(&f, "Allow", buf, sizeof buf), "GET");
    fake_request_free(&f);
}
END_TEST

START_TEST(test_get_routes_answer) {
    fake_request f;
    fake_request_init(&f, "GET", "/api/v1/models/current", NULL);
    ck_assert_int_eq(harness_serve(&f), 200);
    json_object *o = json_tokener_parse(fake_body(&f)), *v;
    ck_assert_ptr_nonnull(o);
    ck_assert(json_object_object_get_ex(o, "model_type", &v));
    ck_assert_str_eq(json_object_get_string(v), "classic");
    ck_assert(json_object_object_get_ex(o, "loaded", &v));
    ck_assert(!json_object_get_boolean(v));
    json_object_put(o);
    fake_request_free(&f);
    /* HEAD is served as GET. */
    harness_expect("HEAD", "/api/v1/models/current", NULL, 200, NULL);
}
END_TEST

START_TEST(test_path_parameter) {
    harness_expect("GET", "/api/v1/models/training/status/job-x", NULL, 404, "unknown_task");
    fake_request f;
    fake_request_init(&f, "GET", "/api/v1/models/training/status", NULL);
    ck_assert_int_eq(harness_serve(&f), 200);
    ck_assert_ptr_nonnull(strstr(fake_body(&f), "\"status\":\"idle\""));
    fake_request_free(&f);
}
END_TEST

START_TEST(test_not_ready_has_retry_after) {
    fake_request f;
    char buf[64];
    fake_request_init(&f, "GET", "/api/ready", NULL);
    ck_assert_int_eq(harness_serve(&f), 503);
    ck_assert_str_eq(harness_error(&f, buf, sizeof buf), "not_ready");
    ck_assert_str_eq(fake_header(&f, "Retry-After", buf, sizeof buf), "5");
    fake_request_free(&f);
}
END_TEST

START_TEST(test_request_id_echoed_or_made) {
    fake_request f;
    char buf[80];
    fake_request_init(&f, "GET", "/api/v1/models/current", NULL);
    fake_request_param(&f, "HTTP_X_REQUEST_ID", "abc-123");
    harness_serve(&f);
    ck_assert_str_eq(fake_header(&f, "X-Request-Id", buf, sizeof buf), "abc-123");
    fake_request_free(&f);
    fake_request_init(&f, "GET", "/api/v1/models/current", NULL);
    fake_request_param(&f, "HTTP_X_REQUEST_ID", "bad id with spaces");
    harness_serve(&f);
    ck_assert_uint_eq(strlen(fake_header(&f, "X-Request-Id", buf, sizeof buf)), 32);
    ck_assert_uint_eq(strspn(buf, "0123456789abcdef"), 32);
    fake_request_free(&f);
}
END_TEST

START_TEST(test_admin_without_key_is_loopback_only) {
    fake_request f;
    char buf[64];
    fake_request_init(&f, "POST", "/api/v1/models/select", "{}");
    fake_request_param(&f, "REMOTE_ADDR", "10.0.0.7");
    ck_assert_int_eq(harness_serve(&f), 403);
    ck_assert_str_eq(harness_error(&f, buf, sizeof buf), "forbidden");
    fake_request_free(&f);
    /* From loopback the handler answers: the body names no model type. */
    harness_expect("POST", "/api/v1/models/select", "{}", 400, "unknown_model_type");
    fake_request_init(&f, "POST", "/api/v1/models/select", "{}");
    fake_request_param(&f, "REMOTE_ADDR", "::ffff:127.0.0.9");
    ck_assert_int_eq(harness_serve(&f), 400);
    fake_request_free(&f);
}
END_TEST

START_TEST(test_admin_key) {
    harness_stop();
    harness_start("s3cret", "");
    fake_request f;
    char buf[64];
    fake_request_init(&f, "POST", "/api/v1/models/select", "{}");
    ck_assert_int_eq(harness_serve(&f), 401);
    ck_assert_str_eq(harness_error(&f, buf, sizeof buf), "unauthorized");
    ck_assert_str_eq(fake_header(&f, "WWW-Authenticate", buf, sizeof buf), "Bearer");
    fake_request_free(&f);
    fake_request_init(&f, "POST", "/api/v1/models/select", "{}");
    fake_request_param(&f, "HTTP_AUTHORIZATION", "Bearer s3cret");
    fake_request_param(&f, "REMOTE_ADDR", "10.0.0.7");
    ck_assert_int_eq(harness_serve(&f), 400);
    fake_request_free(&f);
    fake_request_init(&f, "POST", "/api/v1/models/select", "{}");
    fake_request_param(&f, "HTTP_X_API_KEY", "s3cret");
    ck_assert_int_eq(harness_serve(&f), 400);
    fake_request_free(&f);
    fake_request_init(&f, "POST", "/api/v1/models/select", "{}");
    fake_request_param(&f, "HTTP_X_API_KEY", "s3cre");
    ck_assert_int_eq(harness_serve(&f), 401);
    fake_request_free(&f);
}
END_TEST

START_TEST(test_cors) {
    harness_stop();
    harness_start("", "https://a.example, *");
    fake_request f;
    char buf[128];
    fake_request_init(&f, "GET", "/api/v1/models/current", NULL);
    fake_request_param(&f, "HTTP_ORIGIN", "https://b.example");
    harness_serve(&f);
    ck_assert_str_eq(fake_header(&f, "Access-Control-Allow-Origin", buf, sizeof buf),
                     "https://b.example");
    fake_request_free(&f);
    /* Admin routes never answer a wildcard origin, only a named one. */
    fake_request_init(&f, "OPTIONS", "/api/v1/models/select", NULL);
    fake_request_param(&f, "HTTP_ORIGIN", "https://b.example");
    ck_assert_int_eq(harness_serve(&f), 204);
    ck_assert_ptr_null(fake_header(&f, "Access-Control-Allow-Origin", buf, sizeof buf));
    ck_assert_ptr_null(fake_header(&f, "Access-Control-Allow-Methods", buf, sizeof buf));
    fake_request_free(&f);
    fake_request_init(&f, "OPTIONS", "/api/v1/models/select", NULL);
    fake_request_param(&f, "HTTP_ORIGIN", "https://a.example");
    ck_assert_int_eq(harness_serve(&f), 204);
    ck_assert_str_eq(fake_header(&f, "Access-Control-Allow-Origin", buf, sizeof buf),
                     "https://a.example");
    ck_assert_str_eq(fake_header(&f, "Access-Control-Allow-Methods", buf, sizeof buf),
                     "POST, OPTIONS");
    fake_request_free(&f);
}
END_TEST

START_TEST(test_no_cors_without_origins) {
    fake_request f;
    char buf[128];
    fake_request_init(&f, "GET", "/api/v1/models/current", NULL);
    fake_request_param(&f, "HTTP_ORIGIN", "https://a.example");
    harness_serve(&f);
    ck_assert_ptr_null(fake_header(&f, "Access-Control-Allow-Origin", buf, sizeof buf));
    fake_request_free(&f);
}
END_TEST

START_TEST(test_body_limit) {
    char body[8192];
    memset(body, 'a', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    fake_request f;
    char buf[128];
    fake_request_init(&f, "POST", "/api/v1/models/classify", body);
    ck_assert_int_eq(harness_serve(&f), 413);
    ck_assert_str_eq(harness_error(&f, buf, sizeof buf), "payload_too_large");
    ck_assert_str_eq(harness_detail(&f, buf, sizeof buf),
                     "The body is larger than the limit of 4096 bytes.");
    fake_request_free(&f);
    /* A streamed body (no CONTENT_LENGTH) is cut at the limit too. */
    fake_request_init(&f, "POST", "/api/v1/models/classify", body);
    fake_request_unset(&f, "CONTENT_LENGTH");
    ck_assert_int_eq(harness_serve(&f), 413);
    fake_request_free(&f);
}
END_TEST

int main(void) {
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("router");
    tcase_add_checked_fixture(tc, harness_setup, harness_stop);
    tcase_add_test(tc, test_unknown_route_is_404);
    tcase_add_test(tc, test_wrong_method_is_405_with_allow);
    tcase_add_test(tc, test_get_routes_answer);
    tcase_add_test(tc, test_path_parameter);
    tcase_add_test(tc, test_not_ready_has_retry_after);
    tcase_add_test(tc, test_request_id_echoed_or_made);
    tcase_add_test(tc, test_admin_without_key_is_loopback_only);
    tcase_add_test(tc, test_admin_key);
    tcase_add_test(tc, test_cors);
    tcase_add_test(tc, test_no_cors_without_origins);
    tcase_add_test(tc, test_body_limit);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
