#include "config.h"

#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cml_alloc.h"
#include "model/local_store.h"
#include "model/model_catalog.h"
#include "model/model_file.h"
#include "ops/service_log.h"
#include "ops/prom.h"
#include "learn/trainer.h"

void service_record_model(service *svc, const cml_model *m, bool local, bool blob) {
    cml_catalog_record(svc->state, m, local, blob);
}

/*
 * Whether a trainer still runs. A zombie whose parent lives is left to that parent's watcher,
 * which records the precise end first; an orphaned zombie (parent init, which may never reap it
 * in a container) is dead. Anything else the lease catches.
 */
static bool process_alive(int64_t pid) {
    if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
        return false;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%lld/stat", (long long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return true; /* no /proc: kill's answer stands */
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char state = 0;
    long long ppid = 0;
    const char *paren = strrchr(buf, ')'); /* the state and parent follow the command name */
    if (paren == NULL || sscanf(paren + 1, " %c %lld", &state, &ppid) != 2)
        return true;
    return !((state == 'Z' || state == 'X') && ppid <= 1);
}

void service_reap_jobs(service *svc) { cml_state_jobs_reap(svc->state, process_alive); }

/* Trains a model of type t on the configured data and stores it as the latest version. */
static cml_err train_default(service *svc, cml_model_type t, cml_diag *diag) {
    cml_dataset *ds = NULL;
    cml_model *m = NULL;
    cml_train_options o;
    const char *name = cml_model_type_name(t);
    cml_log(CML_LOG_INFO, "training_default_model", "model", name, "data", svc->cfg.training_data,
            NULL);
    cml_err err = cml_csv_read_file(svc->cfg.training_data, NULL, &ds, diag);
    if (err != CML_OK)
        goto done;
    cml_train_options_init(&o, t);
    if ((err = cml_train(ds, &o, &m, NULL, diag)) != CML_OK)
        goto done;
    if ((err = cml_local_store_save(svc->cfg.model_cache_dir, m, false, diag)) != CML_OK ||
        (err = cml_catalog_publish(svc->state, svc->cfg.model_cache_dir, m, NULL,
                                   (size_t)svc->cfg.retain_versions, diag)) != CML_OK)
        goto done;
    cml_log(CML_LOG_INFO, "trained_default_model", "model", name, "version", m->version, NULL);
done:
    cml_model_release(m);
    cml_dataset_free(ds);
    return err;
}

/* Makes sure every available type has a latest version in the local store. */
static cml_err ensure_models(service *svc, cml_diag *diag) {
    char lock_path[4096], v[CML_VERSION_MAX];
    snprintf(lock_path, sizeof lock_path, "%s/bootstrap.lock", svc->cfg.state_dir);
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return cml_diag_set(diag, CML_ERR_IO, "cannot open %s: %s", lock_path, strerror(errno));
    /* Workers starting together: one trains, the others wait and then find the model. */
    flock(fd, LOCK_EX);
    cml_err err = CML_OK;
    for (cml_model_type t = CML_MODEL_CLASSIC; t < CML_MODEL__COUNT && err == CML_OK; t++) {
        if (!service_type_available(t))
            continue;
        if (cml_local_store_latest(svc->cfg.model_cache_dir, cml_model_type_name(t), v) == CML_OK)
            continue;
        err = train_default(svc, t, diag);
    }
    flock(fd, LOCK_UN);
    close(fd);
    return err;
}

/* Registers every version present in the local store that the shared state does not know. */
static void reconcile_store(service *svc) {
    for (cml_model_type t = CML_MODEL_CLASSIC; t < CML_MODEL__COUNT; t++) {
        const char *name = cml_model_type_name(t);
        char(*versions)[CML_VERSION_MAX] = NULL;
        size_t n = 0;
        cml_model_record *known = NULL;
        size_t nk = 0;
        if (cml_local_store_list(svc->cfg.model_cache_dir, name, &versions, &n) != CML_OK)
            continue;
        cml_state_list_models(svc->state, name, &known, &nk);
        for (size_t k = 0; k < n; k++) {
            bool found = false;
            for (size_t j = 0; j < nk && !found; j++)
                found = strcmp(known[j].version, versions[k]) == 0 && known[j].local;
            if (found)
                continue;
            char path[4096];
            cml_model *m = NULL;
            cml_diag d;
            cml_local_store_path(svc->cfg.model_cache_dir, name, versions[k], path, sizeof path);
            if (cml_model_load(path, &m, &d) == CML_OK)
                service_record_model(svc, m, true, false);
            cml_model_release(m);
        }
        cml_model_records_free(known, nk);
        cml_free(versions);
    }
}

/* The version a type should run: the pinned one, else the local latest. */
static bool desired_version(service *svc, const cml_selection *sel, cml_model_type t,
                            char out[CML_VERSION_MAX]) {
    const char *pinned = t == CML_MODEL_CLASSIC ? sel->classic_version : sel->ensemble_version;
    if (pinned[0]) {
        snprintf(out, CML_VERSION_MAX, "%s", pinned);
        /* A version pinned by another instance of the fleet may be only in blob storage. */
        cml_diag d = {{0}};
        if (cml_version_valid(pinned) && service_cache_version(svc, t, pinned, &d) != CML_OK)
            cml_log(CML_LOG_WARN, "pinned_version_not_fetched", "model", cml_model_type_name(t),
                    "version", pinned, "reason", d.msg, NULL);
        return true;
    }
    return cml_local_store_latest(svc->cfg.model_cache_dir, cml_model_type_name(t), out) == CML_OK;
}

cml_err service_cache_version(service *svc, cml_model_type type, const char *version,
                              cml_diag *diag) {
    char path[4096];
    struct stat st;
    cml_local_store_path(svc->cfg.model_cache_dir, cml_model_type_name(type), version, path,
                         sizeof path);
    if (stat(path, &st) == 0)
        return CML_OK;
    cml_err err = storage_fetch_version(&svc->storage, type, version, diag);
    if (err == CML_OK && stat(path, &st) != 0)
        err = cml_diag_set(diag, CML_ERR_NOT_FOUND, "version %s is not in the cache", version);
    return err;
}

/* Loads what the stored selection names into this process. Caller holds sync_lock. */
static cml_err apply_locked(service *svc, cml_diag *diag) {
    cml_selection sel;
    uint64_t gen = cml_state_generation(svc->state);
    cml_err err = cml_state_get_selection(svc->state, &sel);
    /* Without the state database (PostgreSQL down at start), the configured type's latest
     * serves until the stored selection can be read: the generation stays unseen, so the next
     * request tries again. */
    bool fallback = err == CML_ERR_UNAVAILABLE;
    if (fallback) {
        memset(&sel, 0, sizeof sel);
        snprintf(sel.active_type, sizeof sel.active_type, "%s",
                 cml_model_type_name((cml_model_type)svc->cfg.model_type));
    } else if (err != CML_OK) {
        return cml_diag_set(diag, err, "cannot read the model selection");
    }
    cml_err first = CML_OK;
    for (cml_model_type t = CML_MODEL_CLASSIC; t < CML_MODEL__COUNT; t++) {
        char want[CML_VERSION_MAX];
        cml_slot_info info;
        if (!service_type_available(t) || !desired_version(svc, &sel, t, want))
            continue;
        cml_registry_info(svc->registry, t, &info);
        if (info.loaded && strcmp(info.version, want) == 0)
            continue;
        cml_diag d = {{0}};
        err = cml_registry_load(svc->registry, t, want, &d);
        cml_prom_inc(err == CML_OK ? CML_M_MODEL_LOADS : CML_M_MODEL_LOAD_FAILURES, 1);
        cml_log(err == CML_OK ? CML_LOG_INFO : CML_LOG_ERROR,
                err == CML_OK ? "model_loaded" : "model_load_failed", "model",
                cml_model_type_name(t), "version", want, "reason", err == CML_OK ? "" : d.msg,
                NULL);
        if (err != CML_OK && first == CML_OK) {
            first = err;
            if (diag)
                *diag = d;
        }
    }
    cml_model_type active;
    if (cml_model_type_parse(sel.active_type, &active) == CML_OK)
        atomic_store(&svc->active_type, (int)active);
    atomic_store(&svc->seen_generation, fallback ? SERVICE_GENERATION_UNSEEN : gen);
    size_t bytes = 0;
    for (cml_model_type t = CML_MODEL_CLASSIC; t < CML_MODEL__COUNT; t++) {
        cml_slot_info info;
        cml_registry_info(svc->registry, t, &info);
        bytes += info.bytes;
    }
    cml_prom_set_process(bytes, cml_alloc_in_use());
    return first;
}

cml_err service_apply_selection(service *svc, cml_diag *diag) {
    pthread_mutex_lock(&svc->sync_lock);
    cml_err err = apply_locked(svc, diag);
    pthread_mutex_unlock(&svc->sync_lock);
    return err;
}

void service_sync(service *svc) {
    uint64_t gen = cml_state_generation(svc->state);
    if (gen == atomic_load_explicit(&svc->seen_generation, memory_order_acquire))
        return;
    pthread_mutex_lock(&svc->sync_lock);
    /* Another thread may have applied it while this one waited. */
    if (cml_state_generation(svc->state) != atomic_load(&svc->seen_generation))
        apply_locked(svc, NULL);
    pthread_mutex_unlock(&svc->sync_lock);
}

cml_err service_start(service *svc, cml_diag *diag) {
    char path[4096];
    cml_err err;
    pthread_mutex_init(&svc->sync_lock, NULL);
    pthread_mutex_init(&svc->versions_lock, NULL);
    svc->started_at = (int64_t)time(NULL);
    /* A trainer is a child process that reads the database from its environment: the URL
     * never goes on a command line, where ps would show its password. */
    if (svc->cfg.database_url[0] != '\0' && cml_state_url_from_env() == NULL)
        setenv("STATE_DATABASE_URL", svc->cfg.database_url, 1);
    if ((err = cml_state_open(svc->cfg.state_dir, svc->cfg.database_url, &svc->state, diag)) !=
        CML_OK)
        return err;
    svc->storage.cfg = &svc->cfg;
    svc->storage.state = svc->state;
    snprintf(path, sizeof path, "%s/metrics", svc->cfg.state_dir);
    if ((err = cml_prom_open(path, diag)) != CML_OK)
        return err;
    svc->registry = cml_registry_new(svc->cfg.model_cache_dir);
    if (svc->registry == NULL)
        return CML_ERR_NOMEM;
    cml_model_type wanted;
    wanted = (cml_model_type)svc->cfg.model_type;
    if (!service_type_available(wanted))
        return cml_diag_set(
            diag, CML_ERR_CONFIG,
            "model_type: this build cannot serve '%s' (built without XGBoost or FANN)",
            cml_model_type_name(wanted));
    service_reap_jobs(svc);
    if ((err = storage_open(&svc->storage, diag)) != CML_OK)
        return err;
    storage_pull_models(&svc->storage); /* what the blob store has, the cache gets first */
    if ((err = ensure_models(svc, diag)) != CML_OK)
        return err;
    reconcile_store(svc);
    cml_selection sel;
    err = cml_state_init_selection(svc->state, cml_model_type_name(wanted), &sel);
    if (err == CML_ERR_UNAVAILABLE)
        cml_log(CML_LOG_WARN, "state_unavailable", "reason",
                "the state database cannot be reached; serving the configured model type", NULL);
    else if (err != CML_OK)
        return cml_diag_set(diag, err, "cannot initialise the model selection");
    storage_publish_and_adopt(&svc->storage); /* models trained here; the fleet's selection */
    cml_diag d = {{0}};
    if (service_apply_selection(svc, &d) != CML_OK)
        cml_log(CML_LOG_ERROR, "start_degraded", "reason", d.msg, NULL);
    storage_start_thread(&svc->storage);
    return service_live_start(svc, diag);
}

void service_stop(service *svc) {
    service_live_stop(svc);
    storage_stop_thread(&svc->storage);
    service_versions_release(svc);
    cml_registry_free(svc->registry);
    cml_state_close(svc->state);
    cml_prom_close();
    cml_config_release(&svc->cfg);
    pthread_mutex_destroy(&svc->sync_lock);
    pthread_mutex_destroy(&svc->versions_lock);
}
