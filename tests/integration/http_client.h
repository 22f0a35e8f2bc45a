/*
 * The HTTP client and JSON helpers of the integration clients (test_service.c,
 * test_training.c): requests to $CML_BASE_URL with libcurl, answers parsed with json-c, and the
 * assertions every route shares. Each client includes it once; what it does not use costs
 * nothing (static inline).
 */
#ifndef CML_TEST_HTTP_CLIENT_H
#define CML_TEST_HTTP_CLIENT_H

#include <check.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static inline const char *env_or(const char *name, const char *def) {
    const char *v = getenv(name);
    return v && *v ? v : def;
}

static inline const char *base_url(void) {
    const char *u = getenv("CML_BASE_URL");
    ck_assert_msg(u && *u, "CML_BASE_URL is not set: run this through a test_*.sh wrapper");
    return u;
}

static inline const char *api_key(void) { return env_or("CML_API_KEY", "integration-test-key"); }

static inline double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

typedef struct resp {
    long status;
    char *body;
    size_t len;
    char *head;
    size_t head_len;
    json_object *json; /* the parsed body when it is JSON, else NULL */
} resp;

typedef struct buf {
    char *p;
    size_t n;
} buf;

static inline size_t collect(char *data, size_t size, size_t nmemb, void *ctx) {
    buf *b = ctx;
    size_t n = size * nmemb;
    char *p = realloc(b->p, b->n + n + 1);
    if (p == NULL)
        return 0;
    memcpy(p + b->n, data, n);
    b->n += n;
    p[b->n] = '\0';
    b->p = p;
    return n;
}

/* The options every request needs (again after curl_easy_reset). */
static inline void setup_handle(CURL *c) {
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L); /* retrains answer within it */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
}

static inline CURL *new_handle(void) {
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    setup_handle(c);
    return c;
}

/*
 * One request on handle c (NULL: a fresh one). ctype NULL sends no Content-Type; body NULL
 * with POST sends an empty body (Content-Length: 0). headers: NULL-terminated or NULL.
 * Returns NULL only when nothing answered (the curl error is in err).
 */
static inline resp *request_on(CURL *c, const char *method, const char *path, const char *ctype,
                               const char *body, size_t len, const char *const *headers, char *err,
                               size_t err_cap) {
    bool own = c == NULL;
    if (own) {
        c = new_handle();
    } else {
        curl_easy_reset(c); /* keeps the connection, forgets the last request's options */
        setup_handle(c);
    }
    char url[4096];
    snprintf(url, sizeof url, "%s%s", base_url(), path);
    buf b = {0}, h = {0};
    struct curl_slist *hl = NULL;
    char ct[256];
    snprintf(ct, sizeof ct, "Content-Type:%s%s", ctype ? " " : "", ctype ? ctype : "");
    hl = curl_slist_append(hl, ct);
    hl = curl_slist_append(hl, "Expect:");
    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    if (!strcmp(method, "POST")) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
    } else if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        }
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hl);
    resp *r = NULL;
    if (rc != CURLE_OK) {
        if (err)
            snprintf(err, err_cap, "%s %s: %s", method, path, curl_easy_strerror(rc));
        free(b.p);
        free(h.p);
    } else {
        r = calloc(1, sizeof *r);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        r->body = b.p ? b.p : strdup("");
        r->len = b.n;
        r->head = h.p ? h.p : strdup("");
        r->head_len = h.n;
        if (r->len > 0 && (r->body[0] == '{' || r->body[0] == '[')) {
            json_tokener *tok = json_tokener_new();
            r->json = json_tokener_parse_ex(tok, r->body, (int)r->len);
            if (json_tokener_get_error(tok) != json_tokener_success) {
                json_object_put(r->json);
                r->json = NULL;
            }
            json_tokener_free(tok);
        }
    }
    if (own)
        curl_easy_cleanup(c);
    return r;
}

static inline resp *request(const char *method, const char *path, const char *ctype,
                            const char *body, size_t len, const char *const *headers) {
    char err[512] = "";
    resp *r = request_on(NULL, method, path, ctype, body, len, headers, err, sizeof err);
    ck_assert_msg(r != NULL, "no answer: %s", err);
    return r;
}

static inline void resp_free(resp *r) {
    if (r == NULL)
        return;
    json_object_put(r->json);
    free(r->body);
    free(r->head);
    free(r);
}

static inline resp *get(const char *path) { return request("GET", path, NULL, NULL, 0, NULL); }

static inline resp *post_json(const char *path, const char *json) {
    return request("POST", path, "application/json", json, strlen(json), NULL);
}

/* An admin POST (Bearer key) with content type ctype and, when id is not NULL, that request id. */
static inline resp *post_admin_as(const char *path, const char *ctype, const char *body, size_t len,
                                  const char *id) {
    char auth[512], rid[192];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", api_key());
    snprintf(rid, sizeof rid, "X-Request-Id: %s", id ? id : "");
    const char *h[] = {auth, id ? rid : NULL, NULL};
    return request("POST", path, ctype, body, len, h);
}

static inline resp *post_admin(const char *path, const char *json) {
    char auth[512];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", api_key());
    const char *h[] = {auth, NULL};
    return request("POST", path, "application/json", json, json ? strlen(json) : 0, h);
}

/* The value of the last response header called name (without surrounding space), or NULL. */
static inline const char *header(const resp *r, const char *name, char *out, size_t cap) {
    const char *found = NULL;
    size_t nl = strlen(name);
    for (const char *line = r->head; line && *line;) {
        const char *eol = strstr(line, "\r\n");
        size_t ll = eol ? (size_t)(eol - line) : strlen(line);
        if (ll > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t vl = ll - (size_t)(v - line);
            while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            snprintf(out, cap, "%.*s", (int)vl, v);
            found = out;
        }
        line = eol ? eol + 2 : NULL;
    }
    return found;
}

/* The member at a dotted path ("model_info.type"), or NULL. */
static inline json_object *jget(json_object *o, const char *path) {
    char part[128];
    while (o && *path) {
        size_t n = strcspn(path, ".");
        snprintf(part, sizeof part, "%.*s", (int)n, path);
        json_object *next = NULL;
        if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, part, &next))
            return NULL;
        o = next;
        path += n + (path[n] == '.');
    }
    return o;
}

static inline bool jhas(json_object *o, const char *path) {
    char part[128];
    const char *dot = strrchr(path, '.');
    json_object *parent = o;
    if (dot) {
        snprintf(part, sizeof part, "%.*s", (int)(dot - path), path);
        parent = jget(o, part);
        path = dot + 1;
    }
    return parent && json_object_is_type(parent, json_type_object) &&
           json_object_object_get_ex(parent, path, NULL);
}

static inline const char *jstr(json_object *o, const char *path) {
    json_object *v = jget(o, path);
    ck_assert_msg(v && json_object_is_type(v, json_type_string), "'%s' is not a string in %s", path,
                  o ? json_object_to_json_string(o) : "(null)");
    return json_object_get_string(v);
}

static inline double jnum(json_object *o, const char *path) {
    json_object *v = jget(o, path);
    ck_assert_msg(
        v && (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)),
        "'%s' is not a number in %s", path, o ? json_object_to_json_string(o) : "(null)");
    return json_object_get_double(v);
}

static inline bool jbool(json_object *o, const char *path) {
    json_object *v = jget(o, path);
    ck_assert_msg(v && json_object_is_type(v, json_type_boolean), "'%s' is not a boolean in %s",
                  path, o ? json_object_to_json_string(o) : "(null)");
    return json_object_get_boolean(v);
}

static inline bool jnull(json_object *o, const char *path) {
    return jhas(o, path) && json_object_is_type(jget(o, path), json_type_null);
}

static inline json_object *jtyped(json_object *o, const char *path, json_type t) {
    json_object *v = jget(o, path);
    ck_assert_msg(v && json_object_is_type(v, t), "'%s' is not a %s in %s", path,
                  json_type_to_name(t), o ? json_object_to_json_string(o) : "(null)");
    return v;
}

/* A JSON string literal of s (quoted, escaped); caller frees. */
static inline char *jquote(const char *s) {
    json_object *o = json_object_new_string(s);
    char *q = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return q;
}

static inline void expect_status(const resp *r, long status) {
    ck_assert_msg(r->status == status, "status %ld, wanted %ld; body: %.600s", r->status, status,
                  r->body);
}

static inline void expect_json(const resp *r, long status) {
    char ct[256];
    expect_status(r, status);
    ck_assert_msg(header(r, "Content-Type", ct, sizeof ct) &&
                      strncasecmp(ct, "application/json", 16) == 0,
                  "Content-Type is not application/json: %s", r->head);
    ck_assert_msg(r->json != NULL, "body is not JSON: %.600s", r->body);
}

/* Distinct worker pids that logged a request whose id starts with prefix. */
static inline int workers_in_log(const char *prefix, long *pids, int cap) {
    const char *path = getenv("CML_FCGI_LOG");
    int n = 0;
    if (path == NULL)
        return -1;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char line[4096], needle[160];
    snprintf(needle, sizeof needle, "request_id=%s", prefix);
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, " pid=");
        if (strstr(line, needle) == NULL || p == NULL)
            continue;
        long pid = atol(p + 5);
        bool seen = false;
        for (int i = 0; i < n && !seen; i++)
            seen = pids[i] == pid;
        if (!seen && n < cap)
            pids[n++] = pid;
    }
    fclose(f);
    return n;
}

#endif
