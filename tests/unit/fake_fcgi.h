/*
 * A small fake of the libfcgi calls fcgi/http.c makes (FCGX_GetParam,
 * FCGX_GetStr, FCGX_PutStr): a request is its parameters and body in memory,
 * the answer is collected in memory. Linked instead of libfcgi, it lets the
 * unit tests drive the router and the handlers without a web server.
 */
#ifndef CML_FAKE_FCGI_H
#define CML_FAKE_FCGI_H

#include <fcgiapp.h>
#include <stddef.h>

#define FAKE_MAX_PARAMS 32

typedef struct fake_request {
    FCGX_Request req;
    FCGX_Stream in, out;
    char *env[FAKE_MAX_PARAMS + 1]; /* "NAME=value", NULL-terminated */
    size_t n_env;
    const char *body; /* what FCGX_GetStr reads */
    size_t body_len, body_pos;
    char *answer; /* what FCGX_PutStr wrote, NUL-terminated */
    size_t answer_len;
} fake_request;

/* A request of method to uri with body (NULL for none); CONTENT_LENGTH is set from it. */
void fake_request_init(fake_request *f, const char *method, const char *uri, const char *body);
/* Adds a parameter ("HTTP_ORIGIN", "CONTENT_TYPE", "REMOTE_ADDR", ...). */
void fake_request_param(fake_request *f, const char *name, const char *value);
/* Removes a parameter (e.g. CONTENT_LENGTH, as a streamed body). */
void fake_request_unset(fake_request *f, const char *name);
void fake_request_free(fake_request *f);

/* The status of the answer (from its Status: line), or -1. */
int fake_status(const fake_request *f);
/* The value of a header of the answer into buf; NULL when absent. */
const char *fake_header(const fake_request *f, const char *name, char *buf, size_t cap);
/* The body of the answer (after the blank line). */
const char *fake_body(const fake_request *f);

#endif
