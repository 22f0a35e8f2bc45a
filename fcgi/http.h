/*
 * One HTTP request as FastCGI hands it over, and the ways to answer it.
 * Routing is on REQUEST_URI, which lighttpd and Apache both pass unchanged.
 */
#ifndef CML_HTTP_H
#define CML_HTTP_H

#include <fcgiapp.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "api_errors.h"

typedef struct http_req {
    FCGX_Request *fcgi;
    const char *method;
    const char *query;        /* after '?', or "" */
    const char *content_type; /* "" when absent */
    const char *remote_addr;
    const char *origin;       /* NULL when absent */
    long long content_length; /* -1 when the front end did not say (a streamed body) */
    char path[1024];          /* percent-decoded, without the query */
    char request_id[65];
    const char *route; /* matched route pattern, for logs and metrics */
    char *body;        /* owned, NUL-terminated; NULL when none */
    size_t body_len;
    bool body_too_large; /* http_read_body met more than the limit */
    bool url_invalid;    /* the path or query decodes to a NUL or to invalid UTF-8 */
    /* What the answer said, for the log line and the metrics. */
    int status;
    bool answered;
    const char *model;
    char version[40];
    bool cors_allowed; /* the Origin may read the answer */
    bool oip_errors;   /* errors as the Open Inference Protocol has them: {"error": detail} */
    struct timespec t0;
} http_req;

/* Fills r from the FastCGI parameters (no body read yet). */
void http_req_init(http_req *r, FCGX_Request *fcgi);
void http_req_release(http_req *r);

/* A request header (e.g. "AUTHORIZATION"), or NULL. */
const char *http_header(const http_req *r, const char *upper_name);

/*
 * Reads the body: CONTENT_LENGTH bytes, or to the end of the stream when there is no
 * CONTENT_LENGTH (Apache's mod_proxy_fcgi streams chunked bodies over 16 KiB without one).
 * False when it exceeds max (body_too_large is set; no body is kept) or memory runs out.
 */
bool http_read_body(http_req *r, long long max);

/* The value of a query parameter, percent-decoded into buf; false when absent. */
bool http_query_param(const http_req *r, const char *name, char *buf, size_t cap);

/* True when the Content-Type's media type is `type` (parameters such as charset ignored). */
bool http_content_type_is(const http_req *r, const char *type);

/* Sends status, headers and a JSON body (takes ownership of obj). */
void http_send_json(http_req *r, int status, json_object *obj);
/*
 * The error answer of a row of the error table ({"detail": ..., "error": code}, the row's
 * status and extra header); the arguments fill the row's detail when it is a format.
 * With r->oip_errors (the /v2 routes) the body is {"error": detail} instead.
 */
void http_send_api_error(http_req *r, api_error e, ...);
/* The same with another extra header ("Name: value"), e.g. the Allow of a 405. */
void http_send_api_error_header(http_req *r, api_error e, const char *extra_header, ...);
/* Any other body (text/plain for /metrics, text/csv). */
void http_send_raw(http_req *r, int status, const char *content_type, const char *body, size_t len,
                   const char *extra_header);

/* Seconds since the request arrived. */
double http_elapsed(const http_req *r);

const char *http_reason(int status);

#endif
