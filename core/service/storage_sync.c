#include "config.h"

#include "storage_sync.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "azure/blob_store.h"
#include "base/cml_alloc.h"
#include "base/parse_number.h"
#include "model/local_store.h"
#include "model/model_catalog.h"
#include "model/model_file.h"
#include "ops/service_log.h"
#include "ops/prom.h"
#include "build_types.h"

typedef struct storage {
    pthread_mutex_t lock;  /* one sync at a time in this process */
    cml_blob_store *store; /* NULL until the store could be opened */
    char pointer_etag[CML_MODEL__COUNT][CML_BLOB_ETAG_MAX];
    char active_etag[CML_BLOB_ETAG_MAX];
    bool store_had_model[CML_MODEL__COUNT];
    /* The last download of a type's pointer was refused; refused_etag is that blob's ETag once
       known, so that an unchanged corrupt pointer costs one HEAD a round, not a download. */
    bool refused[CML_MODEL__COUNT];
    char refused_etag[CML_MODEL__COUNT][CML_BLOB_ETAG_MAX];
    int lock_fd; /* the instance-wide sync lock, held by the leading worker */
    bool leader;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    bool listed; /* the blob versions were recorded in the catalog once */
} storage;

static storage S = {.lock = PTHREAD_MUTEX_INITIALIZER, .lock_fd = -1};

static void blob_log(void *ctx, const char *line) {
    (void)ctx;
    cml_log(CML_LOG_INFO, "blob_storage", "detail", line, NULL);
}

/* Brings the client's failure and retry counts into the instance's metrics. */
static void export_stats(void) {
    static uint64_t seen_failures, seen_retries, seen_requests;
    if (S.store == NULL)
        return;
    cml_blob_stats_snapshot snap;
    cml_blob_stats_read(cml_blob_store_stats(S.store), &snap);
    uint64_t failures = 0;
    for (int k = 0; k < CML_BLOB_FAIL__COUNT; k++)
        if (k != CML_BLOB_FAIL_NOT_FOUND && k != CML_BLOB_FAIL_CONFLICT)
            failures += snap.failures[k];
    cml_prom_inc(CML_M_BLOB_FAILURES, failures - seen_failures);
    cml_prom_inc(CML_M_BLOB_RETRIES, snap.retries - seen_retries);
    cml_prom_inc(CML_M_BLOB_OPERATIONS, snap.requests - seen_requests);
    seen_failures = failures;
    seen_retries = snap.retries;
    seen_requests = snap.requests;
}

/* Records the outcome of a round with storage for every worker's /api/health. */
static void set_reachable(const storage_ctx *ctx, bool ok, const char *reason) {
    char now[24];
    cml_state_set_status(ctx->state, "storage_reachable", ok ? "1" : "0");
    if (ok) {
        snprintf(now, sizeof now, "%lld", (long long)time(NULL));
        cml_state_set_status(ctx->state, "storage_last_sync", now);
        cml_state_set_status(ctx->state, "storage_error", "");
    } else {
        cml_state_set_status(ctx->state, "storage_error", reason ? reason : "unreachable");
        cml_log(CML_LOG_WARN, "storage_unreachable", "reason", reason ? reason : "", NULL);
    }
}

void storage_status(const storage_ctx *ctx, bool *reachable, int64_t *last_sync, char *reason,
                    size_t cap) {
    char v[32];
    *reachable = true;
    *last_sync = 0;
    reason[0] = '\0';
    if (!ctx->cfg->use_azure_storage)
        return;
    if (cml_state_get_status(ctx->state, "storage_reachable", v, sizeof v, NULL) == CML_OK)
        *reachable = strcmp(v, "1") == 0;
    long long t;
    if (cml_state_get_status(ctx->state, "storage_last_sync", v, sizeof v, NULL) == CML_OK &&
        cml_parse_int(v, 0, LLONG_MAX, &t))
        *last_sync = t;
    if (!*reachable)
        cml_state_get_status(ctx->state, "storage_error", reason, cap, NULL);
}

/* Opens the store if it is not open yet; CML_ERR_CONFIG for a connection string that cannot work.
 */
static cml_err open_store(const storage_ctx *ctx, cml_diag *diag) {
    if (S.store != NULL)
        return CML_OK;
    cml_blob_store_options o;
    cml_blob_store_options_init(&o);
    o.connection_string = ctx->cfg->azure_connection_string;
    o.container = ctx->cfg->azure_container;
    o.ensemble_pointer = ctx->cfg->ensemble_latest_blob;
    o.classic_pointer = ctx->cfg->classic_latest_blob;
    if (ctx->cfg->azure_ca_path[0])
        o.client.ca_path = ctx->cfg->azure_ca_path;
    /* On App Service, a connection string without a key or SAS means the managed identity. */
    const char *cs = ctx->cfg->azure_connection_string;
    o.client.use_managed_identity = getenv("IDENTITY_ENDPOINT") != NULL &&
                                    strstr(cs, "AccountKey=") == NULL &&
                                    strstr(cs, "SharedAccessSignature=") == NULL;
    o.client.log = blob_log;
    return cml_blob_store_open(&o, &S.store, diag);
}

/* Opens the store if needed; false when storage cannot be reached. */
static bool ensure_open(const storage_ctx *ctx, cml_diag *diag) {
    return open_store(ctx, diag) == CML_OK;
}

cml_err storage_open(const storage_ctx *ctx, cml_diag *diag) {
    if (!ctx->cfg->use_azure_storage)
        return CML_OK;
    /* The training job (a separate program) finds the store in its environment. */
    if (getenv("AZURE_STORAGE_CONNECTION_STRING") == NULL && ctx->cfg->azure_connection_string[0])
        setenv("AZURE_STORAGE_CONNECTION_STRING", ctx->cfg->azure_connection_string, 1);
    setenv("AZURE_STORAGE_CONTAINER", ctx->cfg->azure_container, 1);
    setenv("ENSEMBLE_LATEST_BLOB", ctx->cfg->ensemble_latest_blob, 1);
    setenv("CLASSIC_LATEST_BLOB", ctx->cfg->classic_latest_blob, 1);
    cml_diag d = {{0}};
    cml_err err = open_store(ctx, &d);
    /* A connection string that cannot work stops start-up; an unreachable store does not. */
    if (err == CML_ERR_CONFIG || err == CML_ERR_INVALID)
        return cml_diag_set(diag, CML_ERR_CONFIG, "azure_storage_connection_string: %s", d.msg);
    if (err != CML_OK)
        set_reachable(ctx, false, d.msg);
    return CML_OK;
}

/* Registers a model that came from the store in the catalog and the history. */
static void record_download(const storage_ctx *ctx, const cml_blob_sync_result *res) {
    cml_catalog_record(ctx->state, res->model, true, true);
    cml_history_entry *h = NULL;
    size_t n = 0;
    bool known = false;
    const char *name = cml_model_type_name(res->type);
    if (cml_state_list_history(ctx->state, name, 0, &h, &n) == CML_OK)
        for (size_t i = 0; i < n && !known; i++)
            known = strcmp(h[i].version, res->version) == 0;
    cml_history_free(h, n);
    if (!known)
        cml_catalog_add_history(ctx->state, res->model, NULL);
    cml_log(CML_LOG_INFO, "model_downloaded", "model", name, "version", res->version, NULL);
}

/*
 * After a refused download: the pointer's ETag now, into etag. True when the pointer is still
 * the blob refused (nothing to do this round); *err is the HEAD's outcome.
 */
static bool still_refused(cml_model_type t, char etag[CML_BLOB_ETAG_MAX], cml_err *err,
                          cml_diag *diag) {
    cml_blob_props p = {0};
    *err = cml_blob_head(cml_blob_store_client(S.store), cml_blob_store_container(S.store),
                         cml_blob_store_pointer(S.store, t), &p, diag);
    if (*err == CML_OK)
        snprintf(etag, CML_BLOB_ETAG_MAX, "%s", p.etag);
    cml_blob_props_release(&p);
    return *err == CML_OK && S.refused_etag[t][0] && strcmp(etag, S.refused_etag[t]) == 0;
}

/* One type: bring the store's latest into the cache. True when storage answered. */
static bool pull_type(const storage_ctx *ctx, cml_model_type t, bool *changed, cml_diag *diag) {
    cml_blob_sync_result res;
    char head_etag[CML_BLOB_ETAG_MAX] = "";
    if (S.refused[t]) {
        /* ETags never repeat: a pointer with the ETag seen just before a refused download is
           still that blob, even if it moved in between (then its new ETag differs). */
        cml_err herr;
        if (still_refused(t, head_etag, &herr, diag))
            return true;
        if (herr != CML_OK && herr != CML_ERR_NOT_FOUND)
            return false;
    }
    memset(&res, 0, sizeof res);
    cml_err err =
        cml_blob_store_ensure_local(S.store, t, ctx->cfg->model_cache_dir,
                                    S.pointer_etag[t][0] ? S.pointer_etag[t] : NULL, &res, diag);
    bool answered = err == CML_OK || err == CML_ERR_CHECKSUM || err == CML_ERR_FORMAT ||
                    err == CML_ERR_INVALID || err == CML_ERR_VERSION;
    if (err == CML_OK) {
        S.refused[t] = false;
        S.refused_etag[t][0] = '\0';
        snprintf(S.pointer_etag[t], sizeof S.pointer_etag[t], "%s", res.etag);
        S.store_had_model[t] = res.status != CML_BLOB_SYNC_NO_MODEL;
        if (res.status == CML_BLOB_SYNC_DOWNLOADED) {
            record_download(ctx, &res);
            *changed = true;
        } else if (res.status == CML_BLOB_SYNC_PRESENT) {
            *changed = true; /* the local latest pointer may have moved */
        }
    } else if (answered) {
        /* A corrupt or foreign blob: refused, the current model keeps serving. */
        cml_log(CML_LOG_ERROR, "blob_model_refused", "model", cml_model_type_name(t), "reason",
                diag->msg, NULL);
        S.store_had_model[t] = true;
        S.refused[t] = true;
        snprintf(S.refused_etag[t], sizeof S.refused_etag[t], "%s", head_etag);
    }
    cml_blob_sync_result_release(&res);
    return answered;
}

void storage_pull_models(const storage_ctx *ctx) {
    if (!ctx->cfg->use_azure_storage)
        return;
    pthread_mutex_lock(&S.lock);
    cml_diag d = {{0}};
    bool ok = ensure_open(ctx, &d), changed = false;
    for (cml_model_type t = CML_MODEL_CLASSIC; ok && t < CML_MODEL__COUNT; t++)
        if (service_type_available(t))
            ok = pull_type(ctx, t, &changed, &d);
    set_reachable(ctx, ok, d.msg);
    pthread_mutex_unlock(&S.lock);
}

/* Selection edit: write this instance's selection as it is. */
static bool take_local(void *ctx, cml_selection *sel, bool exists) {
    (void)exists;
    *sel = *(const cml_selection *)ctx;
    return true;
}

/* Reconciles active.json with the local selection; the newer one wins. Caller holds S.lock. */
static bool sync_selection(const storage_ctx *ctx, bool startup, cml_diag *diag) {
    cml_selection local, remote;
    bool not_modified = false;
    if (cml_state_get_selection(ctx->state, &local) != CML_OK)
        return true;
    memset(&remote, 0, sizeof remote);
    cml_err err = cml_blob_store_read_active(S.store, startup ? NULL : S.active_etag, &remote,
                                             S.active_etag, &not_modified, diag);
    if (err == CML_ERR_NOT_FOUND ||
        (err == CML_OK && !not_modified && !startup && local.updated_at > remote.updated_at)) {
        /* First instance, or a local change not published yet. */
        err = cml_blob_store_update_active(S.store, take_local, &local, NULL, S.active_etag, diag);
        return err == CML_OK || err == CML_ERR_CONFLICT;
    }
    if (err == CML_ERR_FORMAT) {
        cml_log(CML_LOG_ERROR, "active_json_refused", "reason", diag->msg, NULL);
        return true;
    }
    if (err != CML_OK)
        return false;
    if (not_modified)
        return true;
    bool differs = strcmp(local.active_type, remote.active_type) ||
                   strcmp(local.classic_version, remote.classic_version) ||
                   strcmp(local.ensemble_version, remote.ensemble_version);
    if (differs && cml_state_fleet_wide(ctx->state)) {
        /* The fleet's selection is the shared database's: active.json only mirrors it, and an
         * older pointer (a push that failed, a restart) must never revert it. */
        err = cml_blob_store_update_active(S.store, take_local, &local, NULL, S.active_etag, diag);
        return err == CML_OK || err == CML_ERR_CONFLICT;
    }
    if (differs && (startup || remote.updated_at >= local.updated_at)) {
        /* Pinned versions must be in the cache before the workers look for them. */
        for (cml_model_type t = CML_MODEL_CLASSIC; t < CML_MODEL__COUNT; t++) {
            const char *pin =
                t == CML_MODEL_CLASSIC ? remote.classic_version : remote.ensemble_version;
            if (!pin[0] || !service_type_available(t))
                continue;
            cml_blob_sync_result res;
            memset(&res, 0, sizeof res);
            if (cml_blob_store_fetch_version(S.store, t, pin, ctx->cfg->model_cache_dir, false,
                                             &res, diag) == CML_OK &&
                res.model)
                cml_catalog_record(ctx->state, res.model, true, true);
            cml_blob_sync_result_release(&res);
        }
        cml_state_adopt_selection(ctx->state, &remote);
        cml_log(CML_LOG_INFO, "selection_adopted", "model", remote.active_type, NULL);
    }
    return true;
}

/*
 * Publishes a type the store lacks from the cache (race-safe between instances), with the data
 * it was trained on; when another instance published first, its model is adopted (*changed).
 * CML_ERR_NOT_FOUND when the cache has no model of the type. Caller holds S.lock.
 */
static cml_err publish_type(const storage_ctx *ctx, cml_model_type t, bool *changed, cml_diag *d) {
    cml_blob_publish_result res;
    memset(&res, 0, sizeof res);
    cml_err err =
        cml_blob_store_publish_if_absent(S.store, t, ctx->cfg->model_cache_dir, NULL, &res, d);
    if (err != CML_OK)
        return err;
    snprintf(S.pointer_etag[t], sizeof S.pointer_etag[t], "%s", res.pointer_etag);
    S.store_had_model[t] = true;
    cml_log(CML_LOG_INFO, res.adopted ? "model_adopted" : "model_published", "model",
            cml_model_type_name(t), "version", res.version, NULL);
    if (res.adopted) {
        char path[4096];
        cml_model *m = NULL;
        cml_local_store_path(ctx->cfg->model_cache_dir, cml_model_type_name(t), res.version, path,
                             sizeof path);
        if (cml_model_load(path, &m, d) == CML_OK)
            cml_catalog_record(ctx->state, m, true, true);
        cml_model_release(m);
        *changed = true;
    } else {
        /* The data the published model was trained on, with its row count. */
        cml_dataset *ds = NULL;
        cml_diag rd = {{0}};
        size_t rows = 0;
        if (cml_csv_read_file(ctx->cfg->training_data, NULL, &ds, &rd) == CML_OK)
            rows = ds->n;
        cml_dataset_free(ds);
        cml_blob_store_put_training_data(S.store, ctx->cfg->training_data, rows, NULL, d);
    }
    return CML_OK;
}

void storage_publish_and_adopt(const storage_ctx *ctx) {
    if (!ctx->cfg->use_azure_storage)
        return;
    pthread_mutex_lock(&S.lock);
    cml_diag d = {{0}};
    bool ok = ensure_open(ctx, &d), changed = false;
    for (cml_model_type t = CML_MODEL_CLASSIC; ok && t < CML_MODEL__COUNT; t++) {
        if (!service_type_available(t) || S.store_had_model[t])
            continue;
        cml_err err = publish_type(ctx, t, &changed, &d);
        ok = err == CML_OK || err == CML_ERR_NOT_FOUND;
    }
    if (ok)
        ok = sync_selection(ctx, true, &d);
    set_reachable(ctx, ok, d.msg);
    pthread_mutex_unlock(&S.lock);
}

void storage_push_selection(const storage_ctx *ctx) {
    if (!ctx->cfg->use_azure_storage)
        return;
    pthread_mutex_lock(&S.lock);
    cml_diag d = {{0}};
    cml_selection local;
    if (ensure_open(ctx, &d) && cml_state_get_selection(ctx->state, &local) == CML_OK &&
        cml_blob_store_update_active(S.store, take_local, &local, NULL, S.active_etag, &d) !=
            CML_OK)
        cml_log(CML_LOG_WARN, "selection_not_published", "reason", d.msg, NULL);
    pthread_mutex_unlock(&S.lock);
}

cml_err storage_fetch_training_data(const storage_ctx *ctx, const char *path, cml_diag *diag) {
    pthread_mutex_lock(&S.lock);
    cml_err err = ensure_open(ctx, diag)
                      ? cml_blob_store_get_training_data(S.store, path, NULL, NULL, diag)
                      : CML_ERR_STORAGE;
    pthread_mutex_unlock(&S.lock);
    return err;
}

/* Records the versions the blob store holds, so GET /api/v1/models can list them. */
static void record_blob_versions(const storage_ctx *ctx) {
    for (cml_model_type t = CML_MODEL_CLASSIC; t < CML_MODEL__COUNT; t++) {
        cml_blob_version *v = NULL;
        size_t n = 0;
        cml_diag d = {{0}};
        if (cml_blob_store_list_versions(S.store, t, false, &v, &n, NULL, &d) != CML_OK)
            continue;
        cml_model_record *known = NULL;
        size_t nk = 0;
        cml_state_list_models(ctx->state, cml_model_type_name(t), &known, &nk);
        for (size_t k = 0; k < n; k++) {
            cml_model_record rec;
            memset(&rec, 0, sizeof rec);
            for (size_t j = 0; j < nk; j++)
                if (!strcmp(known[j].version, v[k].version))
                    rec = known[j]; /* keeps metrics, hash and the local flag */
            snprintf(rec.model_type, sizeof rec.model_type, "%s", cml_model_type_name(t));
            snprintf(rec.version, sizeof rec.version, "%s", v[k].version);
            rec.size_bytes = (int64_t)v[k].bytes;
            if (rec.created_at == 0) {
                struct tm tm;
                memset(&tm, 0, sizeof tm);
                if (strptime(v[k].version, "%Y%m%dT%H%M%S", &tm) != NULL)
                    rec.created_at = (int64_t)timegm(&tm);
            }
            rec.blob = true;
            cml_state_upsert_model(ctx->state, &rec);
        }
        cml_model_records_free(known, nk);
        cml_free(v);
    }
}

cml_err storage_fetch_version(const storage_ctx *ctx, cml_model_type type, const char *version,
                              cml_diag *diag) {
    if (!ctx->cfg->use_azure_storage)
        return CML_ERR_NOT_FOUND;
    pthread_mutex_lock(&S.lock);
    cml_blob_sync_result res;
    memset(&res, 0, sizeof res);
    cml_err err = ensure_open(ctx, diag)
                      ? cml_blob_store_fetch_version(S.store, type, version,
                                                     ctx->cfg->model_cache_dir, false, &res, diag)
                      : CML_ERR_STORAGE;
    if (err == CML_OK && res.model)
        cml_catalog_record(ctx->state, res.model, true, true);
    cml_blob_sync_result_release(&res);
    pthread_mutex_unlock(&S.lock);
    return err;
}

/* One round of the fleet sync, run by the leading worker. */
static void sync_round(const storage_ctx *ctx) {
    cml_diag d = {{0}};
    bool changed = false;
    pthread_mutex_lock(&S.lock);
    bool ok = ensure_open(ctx, &d);
    for (cml_model_type t = CML_MODEL_CLASSIC; ok && t < CML_MODEL__COUNT; t++) {
        if (!service_type_available(t))
            continue;
        ok = pull_type(ctx, t, &changed, &d);
        if (ok && !S.store_had_model[t]) {
            /* The store lost its model, or this instance started while it was down. */
            cml_diag pd = {{0}};
            publish_type(ctx, t, &changed, &pd);
        }
    }
    if (ok)
        ok = sync_selection(ctx, false, &d);
    if (ok && changed)
        for (cml_model_type t = CML_MODEL_CLASSIC; t < CML_MODEL__COUNT; t++)
            if (service_type_available(t))
                cml_blob_store_prune(S.store, t, (size_t)ctx->cfg->retain_versions, NULL, &d);
    if (ok && (changed || !S.listed)) {
        record_blob_versions(ctx);
        S.listed = true;
    }
    export_stats();
    set_reachable(ctx, ok, d.msg);
    pthread_mutex_unlock(&S.lock);
    /* A new latest version in the cache: every worker reloads on its next request. */
    if (changed)
        cml_state_touch(ctx->state);
}

static bool take_leadership(const storage_ctx *ctx) {
    if (S.leader)
        return true;
    if (S.lock_fd < 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/storage-sync.lock", ctx->cfg->state_dir);
        S.lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (S.lock_fd < 0)
            return false;
    }
    S.leader = flock(S.lock_fd, LOCK_EX | LOCK_NB) == 0;
    return S.leader;
}

static void *sync_thread(void *arg) {
    const storage_ctx *ctx = arg;
    while (!atomic_load(&S.stop)) {
        for (int64_t waited = 0;
             waited < ctx->cfg->model_sync_interval * 10 && !atomic_load(&S.stop); waited++) {
            struct timespec tick = {0, 100 * 1000 * 1000};
            nanosleep(&tick, NULL);
        }
        if (!atomic_load(&S.stop) && take_leadership(ctx))
            sync_round(ctx);
    }
    return NULL;
}

void storage_start_thread(const storage_ctx *ctx) {
    if (!ctx->cfg->use_azure_storage || S.thread_started)
        return;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    S.thread_started = pthread_create(&S.thread, NULL, sync_thread, (void *)ctx) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void storage_stop_thread(const storage_ctx *ctx) {
    (void)ctx;
    if (S.thread_started) {
        atomic_store(&S.stop, true);
        pthread_join(S.thread, NULL);
        S.thread_started = false;
    }
    if (S.lock_fd >= 0)
        close(S.lock_fd);
    S.lock_fd = -1;
    S.leader = false;
    cml_blob_store_free(S.store);
    S.store = NULL;
}
