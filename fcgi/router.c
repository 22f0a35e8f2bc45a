#include "config.h"

#include "router.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ops/service_log.h"
#include "ops/prom.h"

enum { GET = 1, POST = 2 };
enum { ROUTE_ADMIN = 1, ROUTE_BODY = 2 };

typedef struct route {
    int method;
    const char *path; /* a trailing "/{id}" matches one more segment, handed to the handler */
    route_handler handler;
    int flags;
} route;

static const route routes[] = {
    {POST, "/api/v1/models/select", handle_select, ROUTE_ADMIN | ROUTE_BODY},
    {GET, "/api/v1/models/current", handle_current, 0},
    {GET, "/api/v1/models", handle_models, 0},
    {POST, "/api/v1/models/classify", handle_classify_v1, ROUTE_BODY},
    {POST, "/api/v1/models/retrain", handle_retrain, ROUTE_ADMIN | ROUTE_BODY},
    {GET, "/api/v1/models/training/status", handle_training_status, 0},
    {GET, "/api/v1/models/training/status/{id}", handle_training_status, 0},
    {POST, "/api/v1/models/evaluate", handle_evaluate, ROUTE_ADMIN | ROUTE_BODY},
    {GET, "/api/v1/models/performance/history", handle_history, 0},
    {GET, "/api/v1/models/comparison", handle_comparison, 0},
    {POST, "/api/classify", handle_classify_classic, ROUTE_BODY},
    {POST, "/api/v1/classify", handle_classify_classic, ROUTE_BODY},
    {POST, "/classify_response", handle_classify_classic, ROUTE_BODY},
    {POST, "/api/v2/classify/ensemble", handle_classify_ensemble, ROUTE_BODY},
    {POST, "/api/v1/classify/response", handle_classify_ensemble, ROUTE_BODY},
    {POST, "/api/v1/classify/batch", handle_batch_v1, ROUTE_BODY},
    {POST, "/api/v2/classify/batch", handle_batch_v2, ROUTE_BODY},
    {POST, "/api/v1/transcripts/analyze", handle_transcripts_analyze, 0}, /* its own limit */
    {POST, "/api/feedback", handle_feedback, ROUTE_BODY},
    {POST, "/save_feedback", handle_feedback, ROUTE_BODY},
    {GET, "/api/health", handle_health, 0},
    {GET, "/api/ready", handle_ready, 0},
    {GET, "/metrics", handle_metrics, 0},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

/* Matches path against a pattern; *param gets the last segment of a "/{id}" pattern. */
static bool path_matches(const char *pattern, const char *path, const char **param) {
    size_t pl = strlen(pattern);
    *param = NULL;
    if (pl >= 5 && strcmp(pattern + pl - 5, "/{id}") == 0) {
        size_t base = pl - 4; /* keep the slash */
        if (strncmp(pattern, path, base) != 0 || path[base] == '\0' || strchr(path + base, '/'))
            return false;
        *param = path + base;
        return true;
    }
    return strcmp(pattern, path) == 0;
}

static bool is_loopback(const char *addr) {
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, addr, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, addr, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6))
            return true;
        if (IN6_IS_ADDR_V4MAPPED(&a6))
            return a6.s6_addr[12] == 127;
    }
    return false;
}

/* Constant-time check of the presented key against the configured one (by their SHA-256). */
static bool key_matches(const service *svc, const char *presented) {
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (presented == NULL ||
        EVP_Digest(presented, strlen(presented), h, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return false;
    return CRYPTO_memcmp(h, svc->api_key_sha256, 32) == 0;
}

/* Admin routes: a valid key when one is configured, else a loopback client. */
static bool admin_allowed(service *svc, http_req *r) {
    if (!svc->have_api_key) {
        if (is_loopback(r->remote_addr))
            return true;
        http_send_error(r, 403, "forbidden",
                        "Admin routes are open only to local clients when no API key is set.",
                        NULL);
        return false;
    }
    const char *auth = http_header(r, "AUTHORIZATION");
    const char *key = http_header(r, "X_API_KEY");
    bool ok = key_matches(svc, key);
    if (!ok && auth && strncasecmp(auth, "Bearer ", 7) == 0)
        ok = key_matches(svc, auth + 7);
    if (!ok)
        http_send_error(r, 401, "unauthorized",
                        "This route needs the admin key in Authorization: Bearer or X-API-Key.",
                        "WWW-Authenticate: Bearer");
    return ok;
}

static bool origin_allowed(const service *svc, const char *origin, bool admin) {
    char needle[512];
    if (origin == NULL)
        return false;
    snprintf(needle, sizeof needle, ",%s,", origin);
    if (svc->cors[0] && strstr(svc->cors, needle) != NULL)
        return true;
    return svc->cors_any && !admin; /* admin routes never answer a wildcard origin */
}

static void preflight(service *svc, http_req *r, int methods, bool admin) {
    char allow[256];
    r->cors_allowed = origin_allowed(svc, r->origin, admin);
    if (!r->cors_allowed) {
        http_send_raw(r, 204, NULL, NULL, 0, NULL);
        return;
    }
    snprintf(
        allow, sizeof allow,
        "Access-Control-Allow-Methods: %s%sOPTIONS\r\n"
        "Access-Control-Allow-Headers: Content-Type, Authorization, X-API-Key, X-Request-Id\r\n"
        "Access-Control-Max-Age: 600",
        methods & GET ? "GET, " : "", methods & POST ? "POST, " : "");
    http_send_raw(r, 204, NULL, NULL, 0, allow);
}

static void dispatch(service *svc, http_req *r) {
    int method = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD") ? GET
                 : !strcmp(r->method, "POST")                            ? POST
                                                                         : 0;
    const route *hit = NULL;
    const char *param = NULL;
    int methods_for_path = 0;
    bool admin_path = false;
    for (size_t i = 0; i < N_ROUTES; i++) {
        const char *p;
        if (!path_matches(routes[i].path, r->path, &p))
            continue;
        methods_for_path |= routes[i].method;
        admin_path |= (routes[i].flags & ROUTE_ADMIN) != 0;
        if (routes[i].method == method && hit == NULL) {
            hit = &routes[i];
            param = p;
        }
    }
    if (methods_for_path == 0) {
        r->route = "unknown";
        http_send_error(r, 404, "not_found", "No such route.", NULL);
        return;
    }
    if (!strcmp(r->method, "OPTIONS")) {
        r->route = "preflight";
        preflight(svc, r, methods_for_path, admin_path);
        return;
    }
    if (hit == NULL) {
        char allow[64];
        snprintf(allow, sizeof allow, "Allow: %s%s%s", methods_for_path & GET ? "GET" : "",
                 methods_for_path == (GET | POST) ? ", " : "",
                 methods_for_path & POST ? "POST" : "");
        r->route = "method_not_allowed";
        http_send_error(r, 405, "method_not_allowed", "This route does not take that method.",
                        allow);
        return;
    }
    r->route = hit->path;
    r->cors_allowed = origin_allowed(svc, r->origin, hit->flags & ROUTE_ADMIN);
    if ((hit->flags & ROUTE_ADMIN) && !admin_allowed(svc, r))
        return;
    if ((hit->flags & ROUTE_BODY) && r->content_length != 0 &&
        !http_read_body(r, svc->cfg.max_body_bytes)) {
        if (r->body_too_large) {
            char detail[128];
            snprintf(detail, sizeof detail, "The body is larger than the limit of %lld bytes.",
                     (long long)svc->cfg.max_body_bytes);
            http_send_error(r, 413, "payload_too_large", detail, NULL);
        } else {
            http_send_error(r, 500, "internal_error", "The body could not be read.", NULL);
        }
        return;
    }
    service_sync(svc);
    if (hit->handler(svc, r, param) != HANDLER_DONE || !r->answered)
        http_send_error(r, 500, "internal_error", "An internal fault stopped this request.", NULL);
}

void router_serve(service *svc, FCGX_Request *fcgi) {
    http_req r;
    http_req_init(&r, fcgi);
    dispatch(svc, &r);
    double secs = http_elapsed(&r);
    cml_prom_request(r.route ? r.route : "unknown", r.model, r.version, r.status, secs);
    if (cml_log_enabled(CML_LOG_INFO)) {
        char status[8], ms[32];
        snprintf(status, sizeof status, "%d", r.status);
        snprintf(ms, sizeof ms, "%.3f", secs * 1e3);
        cml_log(r.status >= 500 ? CML_LOG_ERROR : CML_LOG_INFO, "request", "request_id",
                r.request_id, "method", r.method, "route", r.route ? r.route : "unknown", "status",
                status, "model", r.model ? r.model : "", "version", r.version, "latency_ms", ms,
                NULL);
    }
    http_req_release(&r);
}
