#include "config.h"

#include "fake_fcgi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

char *FCGX_GetParam(const char *name, FCGX_ParamArray envp) {
    size_t n = strlen(name);
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

int FCGX_GetStr(char *str, int n, FCGX_Stream *stream) {
    fake_request *f = stream->data;
    size_t left = f->body_len - f->body_pos;
    size_t take = (size_t)n < left ? (size_t)n : left;
    memcpy(str, f->body + f->body_pos, take);
    f->body_pos += take;
    return (int)take;
}

int FCGX_PutStr(const char *str, int n, FCGX_Stream *stream) {
    fake_request *f = stream->data;
    char *grown = realloc(f->answer, f->answer_len + (size_t)n + 1);
    if (grown == NULL)
        return -1;
    f->answer = grown;
    memcpy(f->answer + f->answer_len, str, (size_t)n);
    f->answer_len += (size_t)n;
    f->answer[f->answer_len] = '\0';
    return n;
}

void fake_request_unset(fake_request *f, const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < f->n_env; i++)
        if (strncmp(f->env[i], name, n) == 0 && f->env[i][n] == '=') {
            free(f->env[i]);
            f->env[i] = f->env[--f->n_env];
            f->env[f->n_env] = NULL;
            return;
        }
}

void fake_request_param(fake_request *f, const char *name, const char *value) {
    fake_request_unset(f, name);
    if (f->n_env == FAKE_MAX_PARAMS)
        abort();
    size_t len = strlen(name) + strlen(value) + 2;
    f->env[f->n_env] = malloc(len);
    snprintf(f->env[f->n_env++], len, "%s=%s", name, value);
    f->env[f->n_env] = NULL;
}

void fake_request_init(fake_request *f, const char *method, const char *uri, const char *body) {
    memset(f, 0, sizeof(*f));
    f->req.in = &f->in;
    f->req.out = &f->out;
    f->req.envp = f->env;
    f->in.data = f;
    f->out.data = f;
    f->body = body ? body : "";
    f->body_len = body ? strlen(body) : 0;
    fake_request_param(f, "REQUEST_METHOD", method);
    fake_request_param(f, "REQUEST_URI", uri);
    fake_request_param(f, "REMOTE_ADDR", "127.0.0.1");
    if (body != NULL) {
        char cl[32];
        snprintf(cl, sizeof cl, "%zu", f->body_len);
        fake_request_param(f, "CONTENT_LENGTH", cl);
        fake_request_param(f, "CONTENT_TYPE", "application/json");
    }
}

void fake_request_free(fake_request *f) {
    for (size_t i = 0; i < f->n_env; i++)
        free(f->env[i]);
    free(f->answer);
    memset(f, 0, sizeof(*f));
}

int fake_status(const fake_request *f) {
    int status = -1;
    if (f->answer == NULL || sscanf(f->answer, "Status: %d", &status) != 1)
        return -1;
    return status;
}

const char *fake_header(const fake_request *f, const char *name, char *buf, size_t cap) {
    size_t n = strlen(name);
    const char *end = f->answer ? strstr(f->answer, "\r\n\r\n") : NULL;
    for (const char *p = f->answer; p && p < end; p = strstr(p, "\r\n") + 2) {
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r");
            snprintf(buf, cap, "%.*s", (int)len, v);
            return buf;
        }
    }
    return NULL;
}

const char *fake_body(const fake_request *f) {
    const char *end = f->answer ? strstr(f->answer, "\r\n\r\n") : NULL;
    return end ? end + 4 : "";
}
