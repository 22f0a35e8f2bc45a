#include "config.h"

#include "ops/prom.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#define MAGIC 0x434d4c4d45545231ull /* "CMLMETR1" */
#define SERIES 1024
#define ROUTES 64
#define PROCS 128
#define KEY_BYTES 192

/* Latency buckets in seconds (upper bounds). */
static const double bucket_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                   0.01,   0.025,   0.05,   0.1,   0.5,    2.5};
#define BUCKETS (sizeof bucket_le / sizeof bucket_le[0])

typedef struct series {
    _Atomic uint32_t state; /* 0 empty, 1 being written, 2 ready */
    char key[KEY_BYTES];    /* route \t model \t version \t status */
    _Atomic uint64_t count;
} series;

typedef struct route_hist {
    _Atomic uint32_t state;
    char route[64];
    _Atomic uint64_t buckets[BUCKETS];
    _Atomic uint64_t count, sum_us;
} route_hist;

typedef struct proc_gauge {
    _Atomic int64_t pid;
    _Atomic uint64_t model_bytes, alloc_bytes;
} proc_gauge;

typedef struct shm {
    uint64_t magic;
    _Atomic uint64_t counters[CML_M__COUNT];
    series series[SERIES];
    route_hist hist[ROUTES];
    proc_gauge procs[PROCS];
} shm;

static shm *M;

cml_err cml_prom_open(const char *path, cml_diag *diag) {
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return cml_diag_set(diag, CML_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    /* One process sizes and stamps the map; the others wait on the lock. */
    flock(fd, LOCK_EX);
    off_t size = lseek(fd, 0, SEEK_END);
    if (size != (off_t)sizeof(shm) && ftruncate(fd, 0) == 0 && ftruncate(fd, sizeof(shm)) != 0) {
        flock(fd, LOCK_UN);
        close(fd);
        return cml_diag_set(diag, CML_ERR_IO, "cannot size %s", path);
    }
    void *p = mmap(NULL, sizeof(shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        flock(fd, LOCK_UN);
        close(fd);
        return cml_diag_set(diag, CML_ERR_IO, "cannot map %s: %s", path, strerror(errno));
    }
    M = p;
    if (M->magic != MAGIC) {
        memset(M, 0, sizeof(shm));
        M->magic = MAGIC;
    }
    flock(fd, LOCK_UN);
    close(fd);
    return CML_OK;
}

void cml_prom_close(void) {
    if (M)
        munmap(M, sizeof(shm));
    M = NULL;
}

void cml_prom_inc(cml_counter c, uint64_t by) {
    if (M && (unsigned)c < CML_M__COUNT)
        atomic_fetch_add_explicit(&M->counters[c], by, memory_order_relaxed);
}

/* Finds or claims the slot of key in a table of n entries of stride bytes. */
static void *claim(void *table, size_t n, size_t stride, size_t key_off, size_t key_cap,
                   const char *key) {
    size_t len = strlen(key);
    if (len >= key_cap)
        len = key_cap - 1;
    size_t start = (size_t)XXH3_64bits(key, len) % n;
    for (size_t probe = 0; probe < n; probe++) {
        char *slot = (char *)table + ((start + probe) % n) * stride;
        _Atomic uint32_t *state = (_Atomic uint32_t *)slot;
        char *k = slot + key_off;
        uint32_t s = atomic_load_explicit(state, memory_order_acquire);
        if (s == 0) {
            uint32_t expect = 0;
            if (atomic_compare_exchange_strong(state, &expect, 1)) {
                memcpy(k, key, len);
                k[len] = '\0';
                atomic_store_explicit(state, 2, memory_order_release);
                return slot;
            }
            s = expect;
        }
        for (int spin = 0; s == 1 && spin < 1000; spin++)
            s = atomic_load_explicit(state, memory_order_acquire);
        if (s == 2 && strncmp(k, key, len) == 0 && k[len] == '\0')
            return slot;
    }
    return NULL;
}

void cml_prom_request(const char *route, const char *model, const char *version, int status,
                      double seconds) {
    if (M == NULL)
        return;
    char key[KEY_BYTES];
    snprintf(key, sizeof key, "%s\t%s\t%s\t%d", route, model ? model : "", version ? version : "",
             status);
    series *s = claim(M->series, SERIES, sizeof(series), offsetof(series, key), KEY_BYTES, key);
    if (s)
        atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
    else
        cml_prom_inc(CML_M_SERIES_DROPPED, 1);
    route_hist *h =
        claim(M->hist, ROUTES, sizeof(route_hist), offsetof(route_hist, route), 64, route);
    if (h == NULL)
        return;
    for (size_t b = 0; b < BUCKETS; b++)
        if (seconds <= bucket_le[b])
            atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)(seconds * 1e6), memory_order_relaxed);
}

void cml_prom_set_process(size_t model_bytes, size_t alloc_bytes) {
    if (M == NULL)
        return;
    int64_t me = (int64_t)getpid();
    proc_gauge *free_slot = NULL;
    for (size_t i = 0; i < PROCS; i++) {
        int64_t p = atomic_load(&M->procs[i].pid);
        if (p == me) {
            free_slot = &M->procs[i];
            break;
        }
        /* A slot of a dead process is reused. */
        if (free_slot == NULL && (p == 0 || (kill((pid_t)p, 0) != 0 && errno == ESRCH))) {
            int64_t expect = p;
            if (atomic_compare_exchange_strong(&M->procs[i].pid, &expect, me))
                free_slot = &M->procs[i];
        }
    }
    if (free_slot) {
        atomic_store(&free_slot->model_bytes, model_bytes);
        atomic_store(&free_slot->alloc_bytes, alloc_bytes);
    }
}

/* Writes s with quotes and backslashes escaped for a label value. */
static void label(FILE *out, const char *s, size_t n) {
    for (size_t i = 0; i < n && s[i]; i++) {
        if (s[i] == '"' || s[i] == '\\')
            fputc('\\', out);
        if (s[i] != '\n')
            fputc(s[i], out);
    }
}

void cml_prom_write(FILE *out) {
    static const char *const counter_names[CML_M__COUNT][2] = {
        [CML_M_MODEL_LOADS] = {"cultivate_ml_model_loads_total", "Models loaded and swapped in."},
        [CML_M_MODEL_LOAD_FAILURES] = {"cultivate_ml_model_load_failures_total",
                                       "Model loads that failed (nothing changed)."},
        [CML_M_TRAINING_STARTED] = {"cultivate_ml_training_jobs_started_total",
                                    "Training jobs started."},
        [CML_M_TRAINING_COMPLETED] = {"cultivate_ml_training_jobs_completed_total",
                                      "Training jobs that completed."},
        [CML_M_TRAINING_FAILED] = {"cultivate_ml_training_jobs_failed_total",
                                   "Training jobs that failed."},
        [CML_M_BLOB_OPERATIONS] = {"cultivate_ml_blob_operations_total", "Blob storage requests."},
        [CML_M_BLOB_FAILURES] = {"cultivate_ml_blob_failures_total",
                                 "Blob storage requests that failed."},
        [CML_M_BLOB_RETRIES] = {"cultivate_ml_blob_retries_total",
                                "Blob storage requests retried."},
        [CML_M_SERIES_DROPPED] = {"cultivate_ml_metric_series_dropped_total",
                                  "Request series not recorded because the table was full."},
    };
    if (M == NULL)
        return;
    fprintf(out,
            "# HELP cultivate_ml_requests_total Requests by route, model, version and status.\n"
            "# TYPE cultivate_ml_requests_total counter\n");
    for (size_t i = 0; i < SERIES; i++) {
        series *s = &M->series[i];
        if (atomic_load(&s->state) != 2)
            continue;
        const char *f[4] = {s->key, "", "", ""};
        char copy[KEY_BYTES];
        memcpy(copy, s->key, KEY_BYTES);
        copy[KEY_BYTES - 1] = '\0';
        char *p = copy;
        for (int k = 0; k < 4; k++) {
            f[k] = p;
            char *tab = strchr(p, '\t');
            if (tab == NULL)
                break;
            *tab = '\0';
            p = tab + 1;
        }
        fputs("cultivate_ml_requests_total{route=\"", out);
        label(out, f[0], KEY_BYTES);
        fputs("\",model=\"", out);
        label(out, f[1], KEY_BYTES);
        fputs("\",version=\"", out);
        label(out, f[2], KEY_BYTES);
        fprintf(out, "\",status=\"%s\"} %llu\n", f[3], (unsigned long long)atomic_load(&s->count));
    }
    fprintf(out, "# HELP cultivate_ml_request_duration_seconds Time to answer, by route.\n"
                 "# TYPE cultivate_ml_request_duration_seconds histogram\n");
    for (size_t i = 0; i < ROUTES; i++) {
        route_hist *h = &M->hist[i];
        if (atomic_load(&h->state) != 2)
            continue;
        for (size_t b = 0; b < BUCKETS; b++) {
            fputs("cultivate_ml_request_duration_seconds_bucket{route=\"", out);
            label(out, h->route, sizeof h->route);
            fprintf(out, "\",le=\"%g\"} %llu\n", bucket_le[b],
                    (unsigned long long)atomic_load(&h->buckets[b]));
        }
        fputs("cultivate_ml_request_duration_seconds_bucket{route=\"", out);
        label(out, h->route, sizeof h->route);
        fprintf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)atomic_load(&h->count));
        fputs("cultivate_ml_request_duration_seconds_sum{route=\"", out);
        label(out, h->route, sizeof h->route);
        fprintf(out, "\"} %.6f\n", (double)atomic_load(&h->sum_us) / 1e6);
        fputs("cultivate_ml_request_duration_seconds_count{route=\"", out);
        label(out, h->route, sizeof h->route);
        fprintf(out, "\"} %llu\n", (unsigned long long)atomic_load(&h->count));
    }
    for (int c = 0; c < CML_M__COUNT; c++)
        fprintf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counter_names[c][0],
                counter_names[c][1], counter_names[c][0], counter_names[c][0],
                (unsigned long long)atomic_load(&M->counters[c]));
    fprintf(out, "# HELP cultivate_ml_resident_model_bytes Bytes of resident models, per worker.\n"
                 "# TYPE cultivate_ml_resident_model_bytes gauge\n");
    for (size_t i = 0; i < PROCS; i++) {
        int64_t pid = atomic_load(&M->procs[i].pid);
        if (pid > 0 && kill((pid_t)pid, 0) == 0)
            fprintf(out, "cultivate_ml_resident_model_bytes{pid=\"%lld\"} %llu\n", (long long)pid,
                    (unsigned long long)atomic_load(&M->procs[i].model_bytes));
    }
    fprintf(out,
            "# HELP cultivate_ml_allocated_bytes Bytes allocated by the service's own code, per "
            "worker.\n# TYPE cultivate_ml_allocated_bytes gauge\n");
    for (size_t i = 0; i < PROCS; i++) {
        int64_t pid = atomic_load(&M->procs[i].pid);
        if (pid > 0 && kill((pid_t)pid, 0) == 0)
            fprintf(out, "cultivate_ml_allocated_bytes{pid=\"%lld\"} %llu\n", (long long)pid,
                    (unsigned long long)atomic_load(&M->procs[i].alloc_bytes));
    }
}
