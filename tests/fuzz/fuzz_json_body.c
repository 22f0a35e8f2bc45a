/*
 * Fuzz harness: the API's JSON request bodies (fcgi/request.c request_json_body, with the
 * body read by fcgi/http.c from the fake libfcgi of the unit tests). The input is the body of
 * a POST with Content-Type application/json. Either the body is taken, and then it is a JSON
 * object whose every string is whole (no NUL inside), every number finite and every integer
 * within 2^53, and nothing was answered; or it is refused, and then the answer is the
 * contract's JSON error {detail, error} with status 400.
 */
#include "config.h"

#include <json-c/json.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_fcgi.h"
#include "http.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a body the request parser took may hold. */
static void check_value(json_object *v, int depth) {
    if (depth > 1000)
        abort();
    switch (json_object_get_type(v)) {
    case json_type_string:
        if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
            abort();
        break;
    case json_type_double:
        if (!isfinite(json_object_get_double(v)))
            abort();
        break;
    case json_type_int: {
        int64_t i = json_object_get_int64(v);
        if (i > 9007199254740991LL || i < -9007199254740991LL)
            abort();
        break;
    }
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(v); i++)
            check_value(json_object_array_get_idx(v, i), depth + 1);
        break;
    case json_type_object: {
        json_object_object_foreach(v, key, member) {
            (void)key;
            check_value(member, depth + 1);
        }
        break;
    }
    default:
        break;
    }
}

/* The answer of a refused body: status 400 and {"detail": string, "error": string}. */
static void check_refusal(const fake_request *f) {
    if (fake_status(f) != 400)
        abort();
    json_object *e = json_tokener_parse(fake_body(f));
    json_object *detail, *code;
    if (e == NULL || !json_object_is_type(e, json_type_object) ||
        !json_object_object_get_ex(e, "detail", &detail) ||
        !json_object_is_type(detail, json_type_string) ||
        !json_object_object_get_ex(e, "error", &code) ||
        !json_object_is_type(code, json_type_string))
        abort();
    json_object_put(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* The fake reads the body from a C string: copy the input, NUL bytes and all. */
    char *body = malloc(size + 1);
    if (body == NULL)
        return 0;
    memcpy(body, data, size);
    body[size] = '\0';
    fake_request f;
    char cl[32];
    fake_request_init(&f, "POST", "/api/v1/models/classify", "");
    f.body = body;
    f.body_len = size;
    snprintf(cl, sizeof cl, "%zu", size);
    fake_request_param(&f, "CONTENT_LENGTH", cl);
    http_req r;
    http_req_init(&r, &f.req);
    if (!http_read_body(&r, 1 << 22))
        abort(); /* the whole body fits the limit */
    json_object *o = request_json_body(&r, true);
    if (o != NULL) {
        if (!json_object_is_type(o, json_type_object) || r.answered || f.answer != NULL)
            abort();
        check_value(o, 0);
        json_object_put(o);
    } else {
        check_refusal(&f);
    }
    http_req_release(&r);
    fake_request_free(&f);
    free(body);
    return 0;
}
