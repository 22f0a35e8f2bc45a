#include "config.h"

#include "http.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "base/cml_alloc.h"
#include "base/parse_number.h"
#include "base/utf8.h"

const char *http_reason(int status) {
    switch (status) {
    case HTTP_OK:
        return "OK";
    case HTTP_ACCEPTED:
        return "Accepted";
    case HTTP_NO_CONTENT:
        return "No Content";
    case HTTP_BAD_REQUEST:
        return "Bad Request";
    case HTTP_UNAUTHORIZED:
        return "Unauthorized";
    case HTTP_FORBIDDEN:
        return "Forbidden";
    case HTTP_NOT_FOUND:
        return "Not Found";
    case HTTP_METHOD_NOT_ALLOWED:
        return "Method Not Allowed";
    case HTTP_CONFLICT:
        return "Conflict";
    case HTTP_PAYLOAD_TOO_LARGE:
        return "Payload Too Large";
    case HTTP_UNSUPPORTED_MEDIA_TYPE:
        return "Unsupported Media Type";
    case HTTP_INTERNAL_ERROR:
        return "Internal Server Error";
    case HTTP_SERVICE_UNAVAILABLE:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

static const char *param(FCGX_Request *f, const char *name) {
    const char *v = FCGX_GetParam(name, f->envp);
    return v ? v : "";
}

static int hexval(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * Percent-decodes src[0..n) into dst (cap bytes, NUL-terminated); '+' becomes a space when plus
 * is true. Returns the decoded length, which counts bytes past a decoded NUL.
 */
static size_t url_decode(const char *src, size_t n, char *dst, size_t cap, bool plus) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        int hi, lo;
        if (src[i] == '%' && i + 2 < n && (hi = hexval((unsigned char)src[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)src[i + 2])) >= 0) {
            dst[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (plus && src[i] == '+') {
            dst[o++] = ' ';
        } else {
            dst[o++] = src[i];
        }
    }
    dst[o] = '\0';
    return o;
}

/*
 * True when the whole URI percent-decodes to valid UTF-8 without a NUL: a decoded NUL would cut a
 * path or parameter short, so such a URL is refused rather than served as another (issue 15).
 */
static bool uri_decodes_clean(const char *uri) {
    size_t n = strlen(uri);
    char *d = cml_malloc(n + 1);
    if (d == NULL)
        return false;
    size_t o = url_decode(uri, n, d, n + 1, false);
    bool ok = memchr(d, '\0', o) == NULL && cml_utf8_valid(d, o);
    cml_free(d);
    return ok;
}

static bool request_id_valid(const char *id) {
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '-' && id[i] != '_' && id[i] != '.')
            return false;
    return true;
}

void http_req_init(http_req *r, FCGX_Request *fcgi) {
    memset(r, 0, sizeof(*r));
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    r->fcgi = fcgi;
    r->method = param(fcgi, "REQUEST_METHOD");
    r->content_type = param(fcgi, "CONTENT_TYPE");
    r->remote_addr = param(fcgi, "REMOTE_ADDR");
    const char *origin = FCGX_GetParam("HTTP_ORIGIN", fcgi->envp);
    r->origin = origin && *origin ? origin : NULL;
    const char *cl = param(fcgi, "CONTENT_LENGTH");
    long long length;
    r->content_length = cml_parse_int(cl, 0, LLONG_MAX, &length) ? length : -1;
    const char *uri = param(fcgi, "REQUEST_URI");
    const char *q = strchr(uri, '?');
    size_t plen = q ? (size_t)(q - uri) : strlen(uri);
    r->query = q ? q + 1 : "";
    url_decode(uri, plen, r->path, sizeof r->path, false);
    r->url_invalid = !uri_decodes_clean(uri);
    const char *rid = param(fcgi, "HTTP_X_REQUEST_ID");
    if (request_id_valid(rid)) {
        snprintf(r->request_id, sizeof r->request_id, "%s", rid);
    } else {
        uint8_t raw[16];
        if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
            memset(raw, 0, sizeof raw);
        /* By hand: sixteen snprintf calls were a visible share of a request's CPU (perf). */
        static const char hex[] = "0123456789abcdef";
        for (int i = 0; i < 16; i++) {
            r->request_id[2 * i] = hex[raw[i] >> 4];
            r->request_id[2 * i + 1] = hex[raw[i] & 15];
        }
        r->request_id[32] = '\0';
    }
    r->model = NULL;
}

void http_req_release(http_req *r) {
    cml_free(r->body);
    r->body = NULL;
}

const char *http_header(const http_req *r, const char *upper_name) {
    char name[128];
    snprintf(name, sizeof name, "HTTP_%s", upper_name);
    const char *v = FCGX_GetParam(name, r->fcgi->envp);
    return v && *v ? v : NULL;
}

bool http_read_body(http_req *r, long long max) {
    bool known = r->content_length >= 0;
    if (max < 0 || (known && r->content_length > max)) {
        r->body_too_large = true;
        return false;
    }
    /* An unknown length may run to one byte over max: that byte shows it is too large. */
    size_t limit = known ? (size_t)r->content_length : (size_t)max + 1;
    size_t cap = known || limit < 65536 ? limit : 65536;
    char *body = cml_malloc(cap + 1);
    if (body == NULL)
        return false;
    size_t got = 0;
    while (got < limit) {
        if (got == cap) {
            size_t ncap = cap * 2 < limit ? cap * 2 : limit;
            char *grown = cml_realloc(body, ncap + 1);
            if (grown == NULL) {
                cml_free(body);
                return false;
            }
            body = grown;
            cap = ncap;
        }
        size_t want = cap - got > 65536 ? 65536 : cap - got;
        int n = FCGX_GetStr(body + got, (int)want, r->fcgi->in);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got > (size_t)max) {
        cml_free(body);
        r->body_too_large = true;
        return false;
    }
    body[got] = '\0';
    r->body = body;
    r->body_len = got;
    return true;
}

bool http_query_param(const http_req *r, const char *name, char *buf, size_t cap) {
    size_t nl = strlen(name);
    const char *p = r->query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            url_decode(p + nl + 1, len - nl - 1, buf, cap, true);
            return true;
        }
        if (len == nl && strncmp(p, name, nl) == 0) {
            buf[0] = '\0';
            return true;
        }
        p += len + (amp != NULL);
    }
    return false;
}

bool http_content_type_is(const http_req *r, const char *type) {
    size_t n = strlen(type);
    const char *ct = r->content_type;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, type, n) != 0)
        return false;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

double http_elapsed(const http_req *r) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - r->t0.tv_sec) + (double)(t1.tv_nsec - r->t0.tv_nsec) / 1e9;
}

void http_send_raw(http_req *r, int status, const char *content_type, const char *body, size_t len,
                   const char *extra_header) {
    if (r->answered)
        return;
    r->answered = true;
    r->status = status;
    /* libfcgi's own printf knows no %zu: headers are formatted here. */
    char head[2048];
    int n = snprintf(head, sizeof head,
                     "Status: %d %s\r\nX-Request-Id: %s\r\nCache-Control: no-store\r\n", status,
                     http_reason(status), r->request_id);
    if (content_type)
        n += snprintf(head + n, sizeof head - (size_t)n,
                      "Content-Type: %s\r\nContent-Length: %zu\r\n", content_type, len);
    if (r->cors_allowed && r->origin && (size_t)n < sizeof head)
        n += snprintf(head + n, sizeof head - (size_t)n,
                      "Access-Control-Allow-Origin: %.512s\r\nVary: Origin\r\n", r->origin);
    if (extra_header && (size_t)n < sizeof head)
        n += snprintf(head + n, sizeof head - (size_t)n, "%s\r\n", extra_header);
    if ((size_t)n < sizeof head)
        n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    FCGX_Stream *out = r->fcgi->out;
    FCGX_PutStr(head, n < (int)sizeof head ? n : (int)sizeof head - 1, out);
    if (len > 0)
        FCGX_PutStr(body, (int)len, out);
}

void http_send_json(http_req *r, int status, json_object *obj) {
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    http_send_raw(r, status, "application/json", s, len, NULL);
    json_object_put(obj);
}

static void send_error(http_req *r, int status, const char *code, const char *detail,
                       const char *extra_header) {
    json_object *o = json_object_new_object();
    if (r->oip_errors) {
        /* The protocol's error is one string: the sentence, which says more than the code. */
        json_object_object_add(o, "error", json_object_new_string(detail));
    } else {
        json_object_object_add(o, "detail", json_object_new_string(detail));
        json_object_object_add(o, "error", json_object_new_string(code));
    }
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    http_send_raw(r, status, "application/json", s, len, extra_header);
    json_object_put(o);
}

static void send_api_error(http_req *r, api_error e, const char *extra_header, va_list ap) {
    char detail[512];
    if ((unsigned)e >= API_ERR__MAX)
        e = API_ERR_INTERNAL;
    const api_error_info *info = &api_errors[e];
    vsnprintf(detail, sizeof detail, info->detail, ap);
    send_error(r, (int)info->status, info->code, detail,
               extra_header ? extra_header : info->extra_header);
}

void http_send_api_error(http_req *r, api_error e, ...) {
    va_list ap;
    va_start(ap, e);
    send_api_error(r, e, NULL, ap);
    va_end(ap);
}

void http_send_api_error_header(http_req *r, api_error e, const char *extra_header, ...) {
    va_list ap;
    va_start(ap, extra_header);
    send_api_error(r, e, extra_header, ap);
    va_end(ap);
}
