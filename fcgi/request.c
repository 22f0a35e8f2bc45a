/* Request parsing shared by the handlers: the JSON body, typed fields, texts, the model asked for.
 */
#include "config.h"

#include "request.h"

#include <stdio.h>
#include <string.h>

#include "base/utf8.h"

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
