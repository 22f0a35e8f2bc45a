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

/* The /v2 routes: two path parameters anywhere in the pattern, and the protocol's errors
   ({"error": sentence}, no "detail") on every /v2 path, known or not. */
static void expect_oip_error(const char *method, const char *uri, int status, const char *needle) {
    fake_request f;
    fake_request_init(&f, method, uri, NULL);
    ck_assert_int_eq(harness_serve(&f), status);
    json_object *o = json_tokener_parse(fake_body(&f)), *v;
    ck_assert_ptr_nonnull(o);
    ck_assert_msg(!json_object_object_get_ex(o, "detail", NULL), "%s: %s", uri, fake_body(&f));
    ck_assert(json_object_object_get_ex(o, "error", &v));
    ck_assert_msg(strstr(json_object_get_string(v), needle) != NULL, "%s: %s", uri,
                  json_object_get_string(v));
    json_object_put(o);
    fake_request_free(&f);
}

START_TEST(test_oip_routes) {
    harness_expect("GET", "/v2/health/live", NULL, 200, NULL);
    harness_expect("GET", "/v2", NULL, 200, NULL);
    /* No model is loaded in the harness: the server is not ready, the model not loaded. */
    harness_expect("GET", "/v2/health/ready", NULL, 400, NULL);
    harness_expect("GET", "/v2/models/classic/ready", NULL, 400, NULL);
    expect_oip_error("GET", "/v2/models/classic", 503, "not loaded");
    expect_oip_error("GET", "/v2/models/bert", 404, "Unknown model 'bert'");
    expect_oip_error("GET", "/v2/models/classic/versions/20990101T000000Z", 404,
                     "no version '20990101T000000Z'");
    expect_oip_error("GET", "/v2/models/classic/versions/20990101T000000Z/ready", 404,
                     "no version");
    expect_oip_error("GET", "/v2/models/classic/versions/a/b/ready", 404, "No such route");
    expect_oip_error("GET", "/v2/models/classic/versions//ready", 404, "No such route");
    expect_oip_error("GET", "/v2/models/classic/infer", 405, "does not take that method");
    expect_oip_error("POST", "/v2/models/classic/infer", 400, "needs a JSON body");
    /* Outside /v2 the contract's own error shape stays. */
    harness_expect("GET", "/v2x", NULL, 404, "not_found");
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

/* The error code of one request to path with body (buf is the caller's). */
static const char *error_of(const char *path, const char *body, char *buf, size_t cap) {
    fake_request f;
    fake_request_init(&f, "POST", path, body);
    ck_assert_int_eq(harness_serve(&f), 503);
    harness_error(&f, buf, cap);
    fake_request_free(&f);
    return buf;
}

START_TEST(test_heavy_requests_leave_a_thread_for_short_ones) {
    /* This service has no model: a request the gate lets through is 503 model_unavailable, a
     * refused one 503 server_busy, before its body is read. */
    char buf[64], ra[16];
    const char *batch = "{\"questions\":[\"What do you see?\"]}";
    const char *one = "{\"text\":\"What do you see?\"}";
    harness_svc.cfg.threads = 4;
    ck_assert_str_eq(error_of("/api/v1/classify/batch", batch, buf, sizeof buf),
                     "model_unavailable");
    /* Three heavy requests in progress hold every slot but one thread's. */
    for (int i = 0; i < 3; i++)
        ck_assert(router_heavy_enter(harness_svc.cfg.threads));
    ck_assert(!router_heavy_enter(harness_svc.cfg.threads));
    fake_request f;
    fake_request_init(&f, "POST", "/api/v2/classify/batch", batch);
    ck_assert_int_eq(harness_serve(&f), 503);
    ck_assert_str_eq(harness_error(&f, buf, sizeof buf), "server_busy");
    ck_assert_str_eq(fake_header(&f, "Retry-After", ra, sizeof ra), "1");
    fake_request_free(&f);
    ck_assert_str_eq(error_of("/api/v1/transcripts/analyze", "WEBVTT\n", buf, sizeof buf),
                     "server_busy");
    /* A single classify still reaches its handler. */
    ck_assert_str_eq(error_of("/api/v1/models/classify", one, buf, sizeof buf),
                     "model_unavailable");
    router_heavy_leave();
    ck_assert_str_eq(error_of("/api/v1/classify/batch", batch, buf, sizeof buf),
                     "model_unavailable");
    router_heavy_leave();
    router_heavy_leave();
    /* One thread: one heavy request at a time, as there is no other thread to keep. */
    harness_svc.cfg.threads = 1;
    ck_assert(router_heavy_enter(harness_svc.cfg.threads));
    ck_assert_str_eq(error_of("/api/v1/classify/batch", batch, buf, sizeof buf), "server_busy");
    router_heavy_leave();
    ck_assert_str_eq(error_of("/api/v1/classify/batch", batch, buf, sizeof buf),
                     "model_unavailable");
}
END_TEST

int main(void) {
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("router");
    tcase_add_checked_fixture(tc, harness_setup, harness_stop);
    tcase_add_test(tc, test_unknown_route_is_404);
    tcase_add_test(tc, test_wrong_method_is_405_with_allow);
    tcase_add_test(tc, test_get_routes_answer);
    tcase_add_test(tc, test_oip_routes);
    tcase_add_test(tc, test_path_parameter);
    tcase_add_test(tc, test_not_ready_has_retry_after);
    tcase_add_test(tc, test_request_id_echoed_or_made);
    tcase_add_test(tc, test_admin_without_key_is_loopback_only);
    tcase_add_test(tc, test_admin_key);
    tcase_add_test(tc, test_cors);
    tcase_add_test(tc, test_no_cors_without_origins);
    tcase_add_test(tc, test_body_limit);
    tcase_add_test(tc, test_heavy_requests_leave_a_thread_for_short_ones);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
