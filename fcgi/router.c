#include "config.h"

#include "router.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "handlers.h"
#include "ops/service_log.h"
#include "ops/prom.h"

enum { GET = 1, POST = 2 };
/* ROUTE_HEAVY: a request that may hold a thread for long (a batch, a transcript, an inference
 * request of N texts). */
enum { ROUTE_ADMIN = 1, ROUTE_BODY = 2, ROUTE_QUERY_TEXT = 4, ROUTE_HEAVY = 8 };
enum { ACTIVE = 0, CLASSIC = CML_MODEL_CLASSIC, ENSEMBLE = CML_MODEL_ENSEMBLE };

typedef struct route {
    int method;
    const char *path; /* a "{...}" segment matches any one segment, handed to the handler */
    route_handler handler;
    int flags;
    int type; /* the model type the route serves; ACTIVE: the active one (or the body's) */
} route;

static const route routes[] = {
    {POST, "/api/v1/models/select", handle_select, ROUTE_ADMIN | ROUTE_BODY, ACTIVE},
    {GET, "/api/v1/models/current", handle_current, 0, ACTIVE},
    {GET, "/api/v1/models", handle_models, 0, ACTIVE},
    {POST, "/api/v1/models/classify", handle_classify_v1, ROUTE_BODY, ACTIVE},
    {POST, "/api/v1/models/retrain", handle_retrain, ROUTE_ADMIN | ROUTE_BODY, ACTIVE},
    {GET, "/api/v1/models/training/status", handle_training_status, 0, ACTIVE},
    {GET, "/api/v1/models/training/status/{id}", handle_training_status, 0, ACTIVE},
    {POST, "/api/v1/models/evaluate", handle_evaluate, ROUTE_ADMIN | ROUTE_BODY, ACTIVE},
    {GET, "/api/v1/models/performance/history", handle_history, 0, ACTIVE},
    {GET, "/api/v1/models/comparison", handle_comparison, 0, ACTIVE},
    {GET, "/api/v1/models/live/history", handle_live_history, 0, ACTIVE},
    {POST, "/api/classify", handle_classify_client, ROUTE_BODY | ROUTE_QUERY_TEXT, CLASSIC},
    {POST, "/api/v1/classify", handle_classify_client, ROUTE_BODY, CLASSIC},
    {POST, "/classify_response", handle_classify_client, ROUTE_BODY, CLASSIC},
    {POST, "/api/v2/classify/ensemble", handle_classify_client, ROUTE_BODY, ENSEMBLE},
    {POST, "/api/v1/classify/response", handle_classify_client, ROUTE_BODY, ENSEMBLE},
    {POST, "/api/v1/classify/batch", handle_batch, ROUTE_BODY | ROUTE_HEAVY, CLASSIC},
    {POST, "/api/v2/classify/batch", handle_batch, ROUTE_BODY | ROUTE_HEAVY, ENSEMBLE},
    {POST, "/api/v1/transcripts/analyze", handle_transcripts_analyze, ROUTE_HEAVY,
     ACTIVE}, /* own limit */
    {POST, "/api/feedback", handle_feedback, ROUTE_BODY, ACTIVE},
    {POST, "/save_feedback", handle_feedback, ROUTE_BODY, ACTIVE},
    {GET, "/api/health", handle_health, 0, ACTIVE},
    {GET, "/api/ready", handle_ready, 0, ACTIVE},
    {GET, "/metrics", handle_metrics, 0, ACTIVE},
    {GET, "/api/openapi.json", handle_openapi, 0, ACTIVE},
    /* The Open Inference Protocol (v2 REST); {name} is the model type, {v} a stored version. */
    {GET, "/v2/health/live", handle_oip_live, 0, ACTIVE},
    {GET, "/v2/health/ready", handle_oip_server_ready, 0, ACTIVE},
    {GET, "/v2", handle_oip_server_metadata, 0, ACTIVE},
    {GET, "/v2/models/{name}", handle_oip_model_metadata, 0, ACTIVE},
    {GET, "/v2/models/{name}/versions/{v}", handle_oip_model_metadata, 0, ACTIVE},
    {GET, "/v2/models/{name}/ready", handle_oip_model_ready, 0, ACTIVE},
    {GET, "/v2/models/{name}/versions/{v}/ready", handle_oip_model_ready, 0, ACTIVE},
    {POST, "/v2/models/{name}/infer", handle_oip_infer, ROUTE_BODY | ROUTE_HEAVY, ACTIVE},
    {POST, "/v2/models/{name}/versions/{v}/infer", handle_oip_infer, ROUTE_BODY | ROUTE_HEAVY,
     ACTIVE},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

#define ROUTE_PARAMS 2
#define ROUTE_PARAM_MAX 256
typedef char route_params[ROUTE_PARAMS][ROUTE_PARAM_MAX];

/* Matches path against a pattern segment by segment; each "{...}" segment of the pattern
   matches one non-empty segment of the path, copied into params in order. */
static bool path_matches(const char *pattern, const char *path, route_params params) {
    size_t k = 0;
    while (*pattern && *path) {
        if (*pattern != '/' || *path != '/')
            return false;
        pattern++, path++;
        size_t pl = strcspn(pattern, "/"), sl = strcspn(path, "/");
        if (pl > 0 && pattern[0] == '{') {
            if (sl == 0 || sl >= ROUTE_PARAM_MAX || k >= ROUTE_PARAMS)
                return false;
            memcpy(params[k], path, sl);
            params[k++][sl] = '\0';
        } else if (pl != sl || strncmp(pattern, path, pl) != 0) {
            return false;
        }
        pattern += pl, path += sl;
    }
    return *pattern == '\0' && *path == '\0';
}

/* True for a path under /v2, whose errors the Open Inference Protocol shapes. */
static bool oip_path(const char *path) {
    return strncmp(path, "/v2", 3) == 0 && (path[3] == '\0' || path[3] == '/');
}

/* Admin routes: a valid key when one is configured, else a loopback client. */
static bool admin_allowed(const access_policy *access, http_req *r) {
    if (!access->have_api_key) {
        if (access_is_loopback(r->remote_addr))
            return true;
        http_send_api_error(r, API_ERR_FORBIDDEN);
        return false;
    }
    const char *auth = http_header(r, "AUTHORIZATION");
    const char *key = http_header(r, "X_API_KEY");
    bool ok = access_key_matches(access, key);
    if (!ok && auth && strncasecmp(auth, "Bearer ", 7) == 0)
        ok = access_key_matches(access, auth + 7);
    if (!ok)
        http_send_api_error(r, API_ERR_UNAUTHORIZED);
    return ok;
}

/* Heavy requests this worker process serves now. */
static atomic_int heavy_running;

bool router_heavy_enter(long long threads) {
    int slots = threads > 1 ? (int)(threads - 1) : 1;
    int n = atomic_load(&heavy_running);
    do {
        if (n >= slots)
            return false;
    } while (!atomic_compare_exchange_weak(&heavy_running, &n, n + 1));
    return true;
}

void router_heavy_leave(void) { atomic_fetch_sub(&heavy_running, 1); }

static void preflight(const access_policy *access, http_req *r, int methods, bool admin) {
    char allow[256];
    r->cors_allowed = access_origin_allowed(access, r->origin, admin);
    if (!r->cors_allowed) {
        http_send_raw(r, HTTP_NO_CONTENT, NULL, NULL, 0, NULL);
        return;
    }
    snprintf(
        allow, sizeof allow,
        "Access-Control-Allow-Methods: %s%sOPTIONS\r\n"
        "Access-Control-Allow-Headers: Content-Type, Authorization, X-API-Key, X-Request-Id\r\n"
        "Access-Control-Max-Age: 600",
        methods & GET ? "GET, " : "", methods & POST ? "POST, " : "");
    http_send_raw(r, HTTP_NO_CONTENT, NULL, NULL, 0, allow);
}

static void serve_route(service *svc, http_req *r, const route *hit, route_params params);

static void dispatch(service *svc, const access_policy *access, http_req *r) {
    int method = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD") ? GET
                 : !strcmp(r->method, "POST")                            ? POST
                                                                         : 0;
    const route *hit = NULL;
    route_params params, p;
    int methods_for_path = 0;
    bool admin_path = false;
    r->oip_errors = oip_path(r->path);
    if (r->url_invalid) {
        r->route = "invalid_url";
        http_send_api_error(r, API_ERR_INVALID_URL);
        return;
    }
    for (size_t i = 0; i < N_ROUTES; i++) {
        memset(p, 0, sizeof p);
        if (!path_matches(routes[i].path, r->path, p))
            continue;
        methods_for_path |= routes[i].method;
        admin_path |= (routes[i].flags & ROUTE_ADMIN) != 0;
        if (routes[i].method == method && hit == NULL) {
            hit = &routes[i];
            memcpy(params, p, sizeof params);
        }
    }
    if (methods_for_path == 0) {
        r->route = "unknown";
        http_send_api_error(r, API_ERR_NOT_FOUND);
        return;
    }
    if (!strcmp(r->method, "OPTIONS")) {
        r->route = "preflight";
        preflight(access, r, methods_for_path, admin_path);
        return;
    }
    if (hit == NULL) {
        char allow[64];
        snprintf(allow, sizeof allow, "Allow: %s%s%s", methods_for_path & GET ? "GET" : "",
                 methods_for_path == (GET | POST) ? ", " : "",
                 methods_for_path & POST ? "POST" : "");
        r->route = "method_not_allowed";
        http_send_api_error_header(r, API_ERR_METHOD_NOT_ALLOWED, allow);
        return;
    }
    r->route = hit->path;
    r->cors_allowed = access_origin_allowed(access, r->origin, hit->flags & ROUTE_ADMIN);
    if ((hit->flags & ROUTE_ADMIN) && !admin_allowed(access, r))
        return;
    /* Refused before its body is read: a refusal costs the thread next to nothing. */
    if ((hit->flags & ROUTE_HEAVY) && !router_heavy_enter(svc->cfg.threads)) {
        http_send_api_error(r, API_ERR_BUSY);
        return;
    }
    serve_route(svc, r, hit, params);
    if (hit->flags & ROUTE_HEAVY)
        router_heavy_leave();
}

/* Reads the body a route takes and runs its handler. */
static void serve_route(service *svc, http_req *r, const route *hit, route_params params) {
    if ((hit->flags & ROUTE_BODY) && r->content_length != 0 &&
        !http_read_body(r, svc->cfg.max_body_bytes)) {
        if (r->body_too_large) {
            http_send_api_error(r, API_ERR_PAYLOAD_TOO_LARGE, (long long)svc->cfg.max_body_bytes);
        } else {
            http_send_api_error(r, API_ERR_BODY_UNREADABLE);
        }
        return;
    }
    service_sync(svc);
    route_args args = {.param = params[0][0] ? params[0] : NULL,
                       .param2 = params[1][0] ? params[1] : NULL,
                       .type = (cml_model_type)hit->type,
                       .query_text = (hit->flags & ROUTE_QUERY_TEXT) != 0};
    /* A fault while the state database cannot be reached is the database's: retry later. */
    if (hit->handler(svc, r, &args) != HANDLER_DONE || !r->answered)
        http_send_api_error(r, cml_state_reachable(svc->state) ? API_ERR_INTERNAL
                                                               : API_ERR_STATE_UNAVAILABLE);
}

void router_serve(service *svc, const access_policy *access, FCGX_Request *fcgi) {
    http_req r;
    http_req_init(&r, fcgi);
    dispatch(svc, access, &r);
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
