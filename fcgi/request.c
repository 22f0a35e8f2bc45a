/* Request parsing shared by the handlers: the JSON body, typed fields, texts, the model asked for.
 */
#include "config.h"

#include "request.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/utf8.h"

/*
 * json-c takes NaN and Infinity literals even in strict mode, turns 1e999 into Inf, clamps an
 * integer beyond 64 bits to INT64_MAX or UINT64_MAX, and a string's C view ends at an escaped
 * NUL: so every value of a body is checked once here, and the field named, before a handler
 * reads it (issue 15). Integers beyond 2^53-1 are refused: json-c cannot tell a clamped one from
 * a real one, and no field of the contract needs them.
 */
#define JSON_MAX_SAFE_INT 9007199254740991LL

static bool value_ok(http_req *r, json_object *v, char *path, size_t len, size_t cap) {
    switch (json_object_get_type(v)) {
    case json_type_string:
        if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
            http_send_api_error(r, API_ERR_NUL_IN_STRING, path);
            return false;
        }
        return true;
    case json_type_double:
        if (!isfinite(json_object_get_double(v))) {
            http_send_api_error(r, API_ERR_NOT_FINITE, path);
            return false;
        }
        return true;
    case json_type_int: {
        int64_t i = json_object_get_int64(v);
        if (i > JSON_MAX_SAFE_INT || i < -JSON_MAX_SAFE_INT) {
            http_send_api_error(r, API_ERR_INTEGER_TOO_LARGE, path);
            return false;
        }
        return true;
    }
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            snprintf(path + len, cap - len, "[%zu]", i);
            size_t l = strlen(path);
            if (!value_ok(r, json_object_array_get_idx(v, i), path, l, cap))
                return false;
            path[len] = '\0';
        }
        return true;
    case json_type_object: {
        json_object_object_foreach(v, key, member) {
            snprintf(path + len, cap - len, "%s%s", len > 0 ? "." : "", key);
            size_t l = strlen(path);
            if (!value_ok(r, member, path, l, cap))
                return false;
            path[len] = '\0';
        }
        return true;
    }
    default:
        return true;
    }
}

/* An escaped NUL anywhere (member names included, which json-c keeps only as C strings). */
static bool has_escaped_nul(const char *s, size_t n) {
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '\\')
            continue;
        if (s[i + 1] == 'u' && i + 5 < n && !memcmp(s + i + 2, "0000", 4))
            return true;
        i++; /* the escaped character: in "\\\\u0000" (JSON text) the u is text */
    }
    return false;
}

bool request_json_values_ok(http_req *r, json_object *o, const char *text, size_t len) {
    char path[256] = "";
    if (!value_ok(r, o, path, 0, sizeof path))
        return false;
    if (has_escaped_nul(text, len)) {
        http_send_api_error(r, API_ERR_NUL_IN_NAME);
        return false;
    }
    return true;
}

json_object *request_json_body(http_req *r, bool body_required) {
    if (r->body == NULL || r->body_len == 0) {
        if (!body_required)
            return NULL;
        http_send_api_error(r, API_ERR_MISSING_BODY);
        return NULL;
    }
    if (!http_content_type_is(r, "application/json")) {
        http_send_api_error(r, API_ERR_UNSUPPORTED_MEDIA_TYPE);
        return NULL;
    }
    if (!cml_utf8_valid(r->body, r->body_len)) {
        http_send_api_error(r, API_ERR_INVALID_UTF8_BODY);
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(64);
    json_object *o = NULL;
    if (tok != NULL) {
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, r->body, (int)r->body_len);
        enum json_tokener_error e = json_tokener_get_error(tok);
        if (e != json_tokener_success || (size_t)json_tokener_get_parse_end(tok) != r->body_len) {
            json_object_put(o);
            o = NULL;
        }
        json_tokener_free(tok);
    }
    if (o == NULL) {
        http_send_api_error(r, API_ERR_MALFORMED_JSON);
        return NULL;
    }
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        http_send_api_error(r, API_ERR_NOT_AN_OBJECT);
        return NULL;
    }
    if (!request_json_values_ok(r, o, r->body, r->body_len)) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

const char *request_string_field(http_req *r, json_object *o, const char *key, bool *bad) {
    json_object *v;
    if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
        json_object_is_type(v, json_type_null))
        return NULL;
    if (!json_object_is_type(v, json_type_string)) {
        http_send_api_error(r, API_ERR_NOT_A_STRING, key);
        *bad = true;
        return NULL;
    }
    return json_object_get_string(v);
}

bool request_text_ok(http_req *r, const service *svc, const char *text, const char *field) {
    if (text == NULL) {
        http_send_api_error(r, API_ERR_REQUIRED_FIELD, field);
        return false;
    }
    const char *a = text, *e = text + strlen(text);
    while (a < e && (*a == ' ' || *a == '\t' || *a == '\n' || *a == '\r'))
        a++;
    while (e > a && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        e--;
    long long chars = 0;
    for (const char *p = a; p < e; p++)
        chars += ((unsigned char)*p & 0xC0) != 0x80;
    if (!cml_utf8_valid(text, strlen(text))) {
        http_send_api_error(r, API_ERR_INVALID_UTF8_TEXT);
        return false;
    }
    if (chars < 1 || chars > svc->cfg.max_text_chars) {
        http_send_api_error(r, API_ERR_INVALID_TEXT, field, (long long)svc->cfg.max_text_chars);
        return false;
    }
    return true;
}

cml_model *request_model(http_req *r, service *svc, cml_model_type type) {
    cml_model *m = cml_registry_acquire(svc->registry, type);
    if (m == NULL) {
        http_send_api_error(r, API_ERR_MODEL_NOT_LOADED,
                            cml_model_type_name(type) ? cml_model_type_name(type) : "requested");
    }
    return m;
}

bool request_bool_field(http_req *r, json_object *body, const char *key, bool *out) {
    json_object *v;
    if (!json_object_object_get_ex(body, key, &v) || json_object_is_type(v, json_type_null))
        return true;
    if (!json_object_is_type(v, json_type_boolean)) {
        http_send_api_error(r, API_ERR_NOT_A_BOOLEAN, key);
        return false;
    }
    *out = json_object_get_boolean(v);
    return true;
}

bool request_number_field(http_req *r, json_object *body, const char *key, double min, double max,
                          double *out) {
    json_object *v;
    if (!json_object_object_get_ex(body, key, &v) || json_object_is_type(v, json_type_null))
        return true;
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) {
        http_send_api_error(r, API_ERR_NOT_A_NUMBER, key);
        return false;
    }
    double d = json_object_get_double(v);
    if (!(d >= min && d <= max)) {
        char lo[32], hi[32];
        snprintf(lo, sizeof lo, "%g", min);
        snprintf(hi, sizeof hi, "%g", max);
        http_send_api_error(r, API_ERR_OUT_OF_RANGE, key, lo, hi);
        return false;
    }
    *out = d;
    return true;
}

bool request_int_field(http_req *r, json_object *body, const char *key, int64_t min, int64_t max,
                       int64_t *out, bool *present) {
    json_object *v;
    if (!json_object_object_get_ex(body, key, &v) || json_object_is_type(v, json_type_null))
        return true;
    int64_t i;
    if (json_object_is_type(v, json_type_int)) {
        i = json_object_get_int64(v);
    } else if (json_object_is_type(v, json_type_double) &&
               json_object_get_double(v) == trunc(json_object_get_double(v)) &&
               fabs(json_object_get_double(v)) <= (double)JSON_MAX_SAFE_INT) {
        i = (int64_t)json_object_get_double(v); /* 7.0 is an integer to JSON Schema too */
    } else {
        http_send_api_error(r, API_ERR_NOT_AN_INTEGER, key);
        return false;
    }
    if (i < min || i > max) {
        char lo[32], hi[32];
        snprintf(lo, sizeof lo, "%lld", (long long)min);
        snprintf(hi, sizeof hi, "%lld", (long long)max);
        http_send_api_error(r, API_ERR_OUT_OF_RANGE, key, lo, hi);
        return false;
    }
    *out = i;
    *present = true;
    return true;
}
