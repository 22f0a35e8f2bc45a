/*
 * The FastCGI side without a web server: a service with an empty model store
 * and fresh shared state, and requests served by the router through the fake
 * of libfcgi (fake_fcgi.c). For the router, request and error-table tests.
 */
#ifndef CML_FCGI_HARNESS_H
#define CML_FCGI_HARNESS_H

#include <ftw.h>
#include <json-c/json.h>
#include <stdio.h>
#include <unistd.h>

#include "access.h"
#include "base/cml_alloc.h"
#include "fake_fcgi.h"
#include "handlers.h"
#include "ops/service_log.h"
#include "router.h"
#include "service/service.h"
#include "unit.h"

static service harness_svc;
static access_policy harness_access;
static char harness_dir[64];

static void harness_set(char **field, const char *value) {
    cml_free(*field);
    *field = cml_strdup(value);
}

/* A service of no model (classic active), with api_key and CORS origins as given. */
static void harness_start(const char *api_key, const char *cors) {
    cml_diag d = {{0}};
    snprintf(harness_dir, sizeof harness_dir, "/tmp/cml-fcgi-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(harness_dir));
    memset(&harness_svc, 0, sizeof harness_svc);
    ck_assert_int_eq(cml_config_load(&harness_svc.cfg, NULL, true, &d), CML_OK);
    harness_set(&harness_svc.cfg.state_dir, harness_dir);
    harness_set(&harness_svc.cfg.model_cache_dir, harness_dir);
    harness_set(&harness_svc.cfg.api_key, api_key);
    harness_set(&harness_svc.cfg.cors_allowed_origins, cors);
    harness_svc.cfg.max_body_bytes = 4096;
    harness_svc.cfg.max_text_chars = 20;
    cml_log_configure(CML_LOG_ERROR, CML_LOG_LOGFMT);
    ck_assert_msg(cml_state_open(harness_dir, NULL, &harness_svc.state, &d) == CML_OK, "%s", d.msg);
    harness_svc.registry = cml_registry_new(harness_dir);
    ck_assert_ptr_nonnull(harness_svc.registry);
    harness_svc.storage.cfg = &harness_svc.cfg;
    harness_svc.storage.state = harness_svc.state;
    pthread_mutex_init(&harness_svc.sync_lock, NULL);
    pthread_mutex_init(&harness_svc.versions_lock, NULL);
    atomic_store(&harness_svc.active_type, (int)CML_MODEL_CLASSIC);
    atomic_store(&harness_svc.seen_generation, cml_state_generation(harness_svc.state));
    access_policy_init(&harness_access, &harness_svc.cfg);
}

static int harness_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void harness_stop(void) {
    handlers_thread_release();
    cml_registry_free(harness_svc.registry);
    cml_state_close(harness_svc.state);
    cml_config_release(&harness_svc.cfg);
    service_versions_release(&harness_svc);
    pthread_mutex_destroy(&harness_svc.sync_lock);
    pthread_mutex_destroy(&harness_svc.versions_lock);
    nftw(harness_dir, harness_rm, 8, FTW_DEPTH | FTW_PHYS);
}

static void harness_setup(void) { harness_start("", ""); }

/* Serves f; returns the status. */
static int harness_serve(fake_request *f) {
    router_serve(&harness_svc, &harness_access, &f->req);
    return fake_status(f);
}

/* A string field of a JSON answer into buf ("" when none). */
static const char *harness_field(const fake_request *f, const char *key, char *buf, size_t cap) {
    json_object *o = json_tokener_parse(fake_body(f)), *v;
    buf[0] = '\0';
    if (o && json_object_object_get_ex(o, key, &v))
        snprintf(buf, cap, "%s", json_object_get_string(v));
    json_object_put(o);
    return buf;
}

/* The "error" and "detail" fields of a JSON error answer. */
#define harness_error(f, buf, cap) harness_field(f, "error", buf, cap)
#define harness_detail(f, buf, cap) harness_field(f, "detail", buf, cap)

/* Serves one request and checks its status and error code (code NULL: not an error). */
static void harness_expect(const char *method, const char *uri, const char *body, int status,
                           const char *code) {
    fake_request f;
    char buf[128];
    fake_request_init(&f, method, uri, body);
    ck_assert_int_eq(harness_serve(&f), status);
    if (code)
        ck_assert_str_eq(harness_error(&f, buf, sizeof buf), code);
    fake_request_free(&f);
}

#endif
