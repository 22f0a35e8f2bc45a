/*
 * Retraining, job status, evaluation, history, comparison, rollback and retention through a
 * real lighttpd + spawn-fcgi stack with real training jobs (the `cultivate-ml train --job`
 * child of a worker), started by tests/integration/test_training_lighttpd.sh, which sets:
 *   CML_BASE_URL         http://127.0.0.1:PORT of lighttpd
 *   CML_API_KEY          the admin key (API_KEY)
 *   CML_MAX_BODY         the service's MAX_BODY_BYTES (the default, 10 MiB)
 *   CML_V1, CML_V2       two classic versions in the model cache at start (V2 the latest)
 *   CML_DATA             the bundled corpus (TRAINING_DATA)
 *   CML_CLI_BIN          the cultivate-ml program (the same trainer the service runs)
 *   CML_FCGI_LOG         the workers' log (which worker answered which request id)
 *   CML_WORKER_PIDS      the FastCGI worker pids (spawn-fcgi -F 2)
 *   CML_STATE_DIR        the service's state directory (models/ is its model cache)
 *   CML_TRAINING_RECORD  a file where the "train" suite writes what the "persist" suite checks
 *   CML_RETAIN           the service's MODEL_RETAIN_VERSIONS (suite "retention")
 * Arguments name the suites: train (default), persist (after a restart of the whole stack on
 * the same state), retention (a stack with MODEL_RETAIN_VERSIONS=2).
 */
#include "config.h"

#include <check.h>
#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http_client.h"
#include "process_watch.h"
#include "suite_main.h"

#include "learn/dataset.h"

/* --- environment ------------------------------------------------------------------------- */

static const char *state_dir(void) {
    const char *s = getenv("CML_STATE_DIR");
    ck_assert_msg(s && *s, "CML_STATE_DIR is not set");
    return s;
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* The HTTP client and JSON helpers are in http_client.h. */

/*
 * Two metrics are the same number as the service prints it: it writes every double it makes
 * with "%.6g" (fcgi_main.c), while values it passes on from stored JSON (history, model list)
 * and the CLI's keep all 17 digits.
 */
static bool same_printed(double x, double y) {
    char a[64], b[64];
    snprintf(a, sizeof a, "%.6g", x);
    snprintf(b, sizeof b, "%.6g", y);
    return strcmp(a, b) == 0;
}

/* --- assertions on answers --------------------------------------------------------------- */

/* An error: the status, {"detail", "error"} (code when given), no server path in the detail. */
static const char *expect_error(const resp *r, long status, const char *code) {
    expect_json(r, status);
    const char *detail = jstr(r->json, "detail");
    ck_assert_msg(strlen(detail) > 5, "detail too short: %s", r->body);
    ck_assert_msg(strstr(detail, "/tmp/") == NULL && strstr(detail, "/work/") == NULL &&
                      strstr(detail, state_dir()) == NULL,
                  "detail shows a server path: %s", detail);
    const char *e = jstr(r->json, "error");
    if (code)
        ck_assert_msg(!strcmp(e, code), "error %s, wanted %s: %s", e, code, r->body);
    return detail;
}

/* --- data ---------------------------------------------------------------------------------- */

/* The corpus header and every k-th row (from `offset`): a CSV in memory; caller frees. */
static char *corpus_sample_from(int k, int offset) {
    const char *path = env_or("CML_DATA", env_or("CML_TEST_DATA", "data/questions.csv"));
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    char *out = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&out, &n);
    char line[8192];
    for (int i = 0; fgets(line, sizeof line, f); i++)
        if (i == 0 || i % k == offset % k)
            fputs(line, m);
    fclose(f);
    fclose(m);
    return out;
}

static char *corpus_sample(int k) { return corpus_sample_from(k, 1); }

/* The data rows of a CSV as the service's own reader counts them. */
static size_t csv_rows(const char *csv, size_t len) {
    cml_dataset *ds = NULL;
    cml_diag d = {{0}};
    cml_csv_options o = {.min_labels = 1, .min_rows = 1};
    ck_assert_msg(cml_csv_parse(csv, len, &o, &ds, &d) == CML_OK, "test CSV: %s", d.msg);
    size_t n = ds->n;
    cml_dataset_free(ds);
    return n;
}

static size_t corpus_rows(void) {
    const char *path = env_or("CML_DATA", "data/questions.csv");
    cml_dataset *ds = NULL;
    cml_diag d = {{0}};
    ck_assert_msg(cml_csv_read_file(path, NULL, &ds, &d) == CML_OK, "%s: %s", path, d.msg);
    size_t n = ds->n;
    cml_dataset_free(ds);
    return n;
}

/* {"model_type":"classic", "data": csv, extra...}: caller frees. */
static char *retrain_body(const char *csv, const char *extra) {
    char *q = csv ? jquote(csv) : NULL;
    size_t cap = (q ? strlen(q) : 0) + (extra ? strlen(extra) : 0) + 128;
    char *body = malloc(cap);
    snprintf(body, cap, "{\"model_type\":\"classic\"%s%s%s%s}", q ? ",\"data\":" : "", q ? q : "",
             extra ? "," : "", extra ? extra : "");
    free(q);
    return body;
}

/* --- what the service runs and holds ------------------------------------------------------- */

/* The classic version the active model answers with (the active type is classic here). */
static void current_version(char out[64]) {
    resp *r = get("/api/v1/models/current");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "model_type"), "classic");
    snprintf(out, 64, "%s", jstr(r->json, "version"));
    resp_free(r);
}

/* The latest job's task id ("" when none). */
static void latest_task(char out[64]) {
    resp *r = get("/api/v1/models/training/status");
    expect_json(r, 200);
    json_object *t = jget(r->json, "task_id");
    snprintf(out, 64, "%s",
             t && json_object_is_type(t, json_type_string) ? jstr(r->json, "task_id") : "");
    resp_free(r);
}

/* The file names in a directory, sorted, each followed by a space (caller frees); "" when it is
 * missing or empty. */
static char *dir_listing(const char *dir) {
    char names[512][256];
    size_t n = 0;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL && n < 512)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                snprintf(names[n++], sizeof names[0], "%s", e->d_name);
        closedir(d);
    }
    qsort(names, n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    for (size_t i = 0; i < n; i++)
        fprintf(m, "%s ", names[i]);
    fclose(m);
    return out;
}

static char *jobs_listing(void) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/jobs", state_dir());
    return dir_listing(dir);
}

/* The data files of jobs that have ended are gone (their watcher removes them within a moment of
 * the trainer's exit: 3 s at most here). */
static void expect_no_job_data(void) {
    char *l = jobs_listing();
    for (int i = 0; i < 300 && *l; i++) {
        free(l);
        sleep_ms(10);
        l = jobs_listing();
    }
    ck_assert_msg(*l == '\0', "job data left behind 3 s after the job: %s", l);
    free(l);
}

static char *cache_listing(void) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/models", state_dir());
    return dir_listing(dir);
}

/* No temporary file (".tmp" in the name) in the model cache. */
static void expect_no_temp_in_cache(void) {
    char *l = cache_listing();
    ck_assert_msg(strstr(l, ".tmp") == NULL, "a temporary file is left in the cache: %s", l);
    free(l);
}

/* The classic versions of the model cache, newest first (n returned, at most cap). */
static size_t cached_versions(char (*out)[64], size_t cap) {
    char *l = cache_listing();
    size_t n = 0;
    char *save = NULL;
    for (char *line = strtok_r(l, " ", &save); line && n < cap; line = strtok_r(NULL, " ", &save)) {
        size_t len = strlen(line);
        if (strncmp(line, "classic_", 8) || len < 15 || strcmp(line + len - 6, ".model") ||
            !strcmp(line, "classic_latest.model"))
            continue;
        snprintf(out[n++], 64, "%.*s", (int)(len - 14), line + 8);
    }
    free(l);
    for (size_t i = 0; i + 1 < n; i++) /* newest first: versions sort as text */
        for (size_t k = i + 1; k < n; k++)
            if (strcmp(out[i], out[k]) < 0) {
                char t[64];
                memcpy(t, out[i], 64);
                memcpy(out[i], out[k], 64);
                memcpy(out[k], t, 64);
            }
    return n;
}

/* The classic versions GET /api/v1/models lists, newest first. */
static size_t listed_versions(char (*out)[64], size_t cap) {
    resp *r = get("/api/v1/models");
    expect_json(r, 200);
    json_object *models = jtyped(r->json, "models", json_type_array);
    size_t n = 0;
    for (size_t i = 0; i < json_object_array_length(models) && n < cap; i++) {
        json_object *m = json_object_array_get_idx(models, i);
        if (!strcmp(jstr(m, "model_type"), "classic"))
            snprintf(out[n++], 64, "%s", jstr(m, "version"));
    }
    resp_free(r);
    for (size_t i = 0; i + 1 < n; i++)
        for (size_t k = i + 1; k < n; k++)
            if (strcmp(out[i], out[k]) < 0) {
                char t[64];
                memcpy(t, out[i], 64);
                memcpy(out[i], out[k], 64);
                memcpy(out[k], t, 64);
            }
    return n;
}

static bool in_list(char (*list)[64], size_t n, const char *v) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], v))
            return true;
    return false;
}

/* The worker that logged the request with exactly this id (0: not found). */
static long worker_of(const char *id) {
    long pid = 0;
    char exact[200];
    snprintf(exact, sizeof exact, "%s ", id);
    const char *path = getenv("CML_FCGI_LOG");
    FILE *f = path ? fopen(path, "r") : NULL;
    char line[4096], needle[240];
    snprintf(needle, sizeof needle, "request_id=%s", exact);
    while (f && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, " pid=");
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = ' '; /* an id at the end of the line ends with a space too */
        if (p && strstr(line, needle))
            pid = atol(p + 5);
    }
    if (f)
        fclose(f);
    return pid;
}

/*
 * Classify requests (ids prefix-i) all answered by classic version v: at least n, and more
 * (200 in all at most) until `workers` worker processes have answered. Returns how many did
 * (-1 when the log cannot tell).
 */
static int expect_serving(const char *v, int n, const char *prefix, int workers) {
    long pids[16];
    int seen = -1;
    for (int i = 0; i < 200; i++) {
        if (i >= n && ((seen = workers_in_log(prefix, pids, 16)) >= workers || seen < 0))
            break;
        char idh[160];
        snprintf(idh, sizeof idh, "X-Request-Id: %s-%d", prefix, i);
        const char *h[] = {idh, NULL};
        const char *body = i % 2 ? "{\"text\":\"Is it red?\",\"model_type\":\"classic\"}"
                                 : "{\"text\":\"Why did the tower fall?\"}";
        resp *r =
            request("POST", "/api/v1/models/classify", "application/json", body, strlen(body), h);
        expect_json(r, 200);
        ck_assert_str_eq(jstr(r->json, "model_type"), "classic");
        ck_assert_msg(!strcmp(jstr(r->json, "model_version"), v),
                      "request %s-%d answered by version %s, wanted %s", prefix, i,
                      jstr(r->json, "model_version"), v);
        resp_free(r);
    }
    seen = workers_in_log(prefix, pids, 16);
    /* Which worker accepts is the kernel's choice: one may take every request of a sequential
       client. The version check above is what must hold; the spread is reported. */
    if (seen >= 0 && seen < workers)
        fprintf(stderr, "NOTE: the requests %s-* reached %d worker(s) of %d\n", prefix, seen,
                workers);
    return seen;
}

/* --- the record the persist suite reads ----------------------------------------------------- */

static void record(const char *fmt, ...) {
    const char *path = getenv("CML_TRAINING_RECORD");
    if (path == NULL)
        return;
    FILE *f = fopen(path, "a");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fclose(f);
}

/* --- jobs ----------------------------------------------------------------------------------- */

/* What a job looked like while it was watched. */
typedef struct trace {
    int polls, running;          /* status answers, of which "running" */
    double first_progress;       /* of the first "running" answer */
    double max_running_progress; /* highest progress seen while running */
    char tasks[16][80];          /* distinct current_task values while running */
    int n_tasks;
    double seconds;         /* from the first poll to the end */
    int done_while_running; /* answers "running", 100%, "done": see check_status */
} trace;

/* Checks one status answer of a job; adds it to t. */
static void check_status(json_object *s, const char *task, trace *t) {
    ck_assert_str_eq(jstr(s, "task_id"), task);
    ck_assert_str_eq(jstr(s, "model_type"), "classic");
    const char *st = jstr(s, "status");
    ck_assert_msg(!strcmp(st, "running") || !strcmp(st, "completed") || !strcmp(st, "failed"),
                  "status %s", st);
    double p = jnum(s, "progress");
    ck_assert_msg(p >= 0 && p <= 100, "progress %g", p);
    jstr(s, "start_time");
    t->polls++;
    if (strcmp(st, "running") != 0)
        return;
    ck_assert(jbool(s, "is_training"));
    ck_assert_msg(jnull(s, "finished_at") && jnull(s, "error"), "running job: %s",
                  json_object_to_json_string(s));
    const char *ct = jstr(s, "current_task");
    ck_assert_msg(*ct, "running without a current_task");
    if (t->running++ == 0)
        t->first_progress = p;
    /*
     * Progress never goes back (the worker's own "starting" at 0 comes first), with one known
     * exception: the trainer reports its own last step ("done") as 100% while the job still
     * runs, then "publishing" at 99% (cli/cli_main.c, job_progress_update and cmd_train).
     * Counted and reported, not failed.
     */
    if (p == 100) {
        ck_assert_msg(!strcmp(ct, "done"), "running at 100%% in step %s", ct);
        t->done_while_running++;
    } else {
        bool publishing_after_done = t->max_running_progress == 100 && !strcmp(ct, "publishing");
        ck_assert_msg(p >= t->max_running_progress || publishing_after_done,
                      "progress went back from %g to %g (%s)", t->max_running_progress, p, ct);
    }
    if (p > t->max_running_progress)
        t->max_running_progress = p;
    bool known = false;
    for (int i = 0; i < t->n_tasks && !known; i++)
        known = !strcmp(t->tasks[i], ct);
    if (!known && t->n_tasks < 16)
        snprintf(t->tasks[t->n_tasks++], sizeof t->tasks[0], "%s", ct);
}

/* Polls a job until it is no longer running (max_s at most); returns its last status. */
static json_object *wait_job(const char *task, double max_s, trace *t) {
    char path[160];
    trace local = {0};
    if (t == NULL)
        t = &local;
    snprintf(path, sizeof path, "/api/v1/models/training/status/%s", task);
    double t0 = now_s();
    while (now_s() - t0 < max_s) {
        resp *r = get(path);
        expect_json(r, 200);
        check_status(r->json, task, t);
        if (strcmp(jstr(r->json, "status"), "running") != 0) {
            json_object *last = json_object_get(r->json);
            resp_free(r);
            t->seconds = now_s() - t0;
            return last;
        }
        resp_free(r);
        sleep_ms(25);
    }
    ck_abort_msg("job %s still running after %.0f s", task, max_s);
    return NULL;
}

/* A 202 answer: its task id into task; checks status, message, estimated_time and n_rows. */
static void expect_started(const resp *r, char task[64], size_t rows) {
    expect_json(r, 202);
    snprintf(task, 64, "%s", jstr(r->json, "task_id"));
    ck_assert_msg(!strncmp(task, "job-", 4), "task id %s", task);
    ck_assert_str_eq(jstr(r->json, "status"), "started");
    ck_assert(strlen(jstr(r->json, "message")) > 0);
    ck_assert(jnum(r->json, "estimated_time") > 0);
    if (rows > 0)
        ck_assert_msg((size_t)jnum(r->json, "n_rows") == rows, "n_rows %g, %zu sent",
                      jnum(r->json, "n_rows"), rows);
}

/* The history entry of a task (new reference), or NULL. */
static json_object *history_entry(const char *task, bool *is_last) {
    resp *r = get("/api/v1/models/performance/history?model_type=classic&limit=1000");
    expect_json(r, 200);
    ck_assert(json_object_is_type(r->json, json_type_array));
    json_object *found = NULL;
    size_t n = json_object_array_length(r->json);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(r->json, i);
        json_object *t = jget(e, "task_id");
        if (t && json_object_is_type(t, json_type_string) &&
            !strcmp(json_object_get_string(t), task)) {
            found = json_object_get(e);
            if (is_last)
                *is_last = i == n - 1;
        }
    }
    resp_free(r);
    return found;
}

/*
 * A completed job is published: the version is in the history (rows = n_train + n_test when
 * rows > 0; newest last), listed by GET /api/v1/models with metrics, in the comparison, the
 * health's classic version and what every worker answers with. Returns the version in out.
 */
static void expect_published_on(json_object *job, const char *task, size_t rows, char out[64],
                                const char *prefix, int workers) {
    ck_assert_msg(!strcmp(jstr(job, "status"), "completed"), "job ended so: %s",
                  json_object_to_json_string(job));
    ck_assert(!jbool(job, "is_training"));
    ck_assert(jnum(job, "progress") == 100);
    jstr(job, "finished_at");
    ck_assert(jnull(job, "error"));
    snprintf(out, 64, "%s", jstr(job, "version"));
    const char *version = out;

    bool last = false;
    json_object *e = history_entry(task, &last);
    ck_assert_msg(e != NULL, "task %s is not in the history", task);
    ck_assert_msg(last, "task %s is not the newest history entry", task);
    ck_assert_str_eq(jstr(e, "version"), version);
    ck_assert_str_eq(jstr(e, "model_type"), "classic");
    jstr(e, "timestamp");
    double acc = jnum(e, "metrics.accuracy"), f1 = jnum(e, "metrics.f1_macro");
    ck_assert(acc > 0.5 && acc <= 1 && f1 > 0.3 && f1 <= 1);
    ck_assert(jnum(e, "training_time") > 0);
    double n_train = jnum(e, "n_train"), n_test = jnum(e, "n_test");
    ck_assert(n_train > 0 && n_test > 0);
    if (rows > 0)
        ck_assert_msg((size_t)(n_train + n_test) == rows, "trained on %g + %g rows, %zu sent",
                      n_train, n_test, rows);

    char listed[64][64];
    size_t nl = listed_versions(listed, 64);
    ck_assert_msg(in_list(listed, nl, version), "version %s is not listed", version);
    char cached[64][64];
    size_t nc = cached_versions(cached, 64);
    ck_assert_msg(nc > 0 && !strcmp(cached[0], version), "%s is not the newest cached version",
                  version);

    resp *r = get("/api/v1/models/comparison");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "classic.version"), version);
    ck_assert_msg(same_printed(jnum(r->json, "classic.f1_score"), f1) &&
                      same_printed(jnum(r->json, "classic.accuracy"), acc),
                  "comparison %s differs from the history (acc %.17g, f1 %.17g)", r->body, acc, f1);
    ck_assert(same_printed(jnum(r->json, "classic.training_time"), jnum(e, "training_time")));
    resp_free(r);
    json_object_put(e);

    r = get("/api/health");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "models.classic.version"), version);
    ck_assert(!jbool(r->json, "training.is_training"));
    resp_free(r);

    expect_serving(version, 8, prefix, workers);
}

static void expect_published(json_object *job, const char *task, size_t rows, char out[64],
                             const char *prefix) {
    expect_published_on(job, task, rows, out, prefix, 2);
}

/* Starts a job on a small CSV (every k-th corpus row) and waits for it; version into out. */
static void small_retrain_on(int k, char task[64], char version[64], const char *prefix,
                             int workers) {
    char *csv = corpus_sample(k), *body = retrain_body(csv, NULL);
    size_t rows = csv_rows(csv, strlen(csv));
    resp *r = post_admin("/api/v1/models/retrain", body);
    expect_started(r, task, rows);
    resp_free(r);
    json_object *job = wait_job(task, 90, NULL);
    expect_published_on(job, task, rows, version, prefix, workers);
    json_object_put(job);
    free(body);
    free(csv);
}

static void small_retrain(int k, char task[64], char version[64], const char *prefix) {
    small_retrain_on(k, task, version, prefix, 2);
}

/* --- processes ------------------------------------------------------------------------------ */

static bool is_worker(long pid) {
    const char *w = env_or("CML_WORKER_PIDS", "");
    char *copy = strdup(w);
    bool yes = false;
    char *save = NULL;
    for (char *t = strtok_r(copy, " ", &save); t && !yes; t = strtok_r(NULL, " ", &save))
        yes = strtol(t, NULL, 10) == pid;
    free(copy);
    return yes;
}

/* The live `cultivate-ml train ... --job task` process (0: none). */
static long trainer_pid(const char *task) {
    DIR *d = opendir("/proc");
    long found = 0;
    struct dirent *e;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL && found == 0) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        char path[300], args[8192];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t len = fread(args, 1, sizeof args - 1, f);
        fclose(f);
        args[len] = '\0';
        bool train = false, job = false;
        for (size_t i = 0; i < len; i += strlen(args + i) + 1) {
            const char *a = args + i;
            if (!strcmp(a, "train"))
                train = true;
            if (!strcmp(a, "--job") && i + strlen(a) + 1 < len &&
                !strcmp(args + i + strlen(a) + 1, task))
                job = true;
        }
        if (train && job && parent_of(atol(e->d_name)) > 0)
            found = atol(e->d_name);
    }
    closedir(d);
    return found;
}

/* Runs a shell command line; its standard output (caller frees) and exit status. */
static char *run_capture(const char *cmd, int *status) {
    FILE *p = popen(cmd, "r");
    ck_assert_msg(p != NULL, "cannot run %s", cmd);
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(m);
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

static const char *cli_bin(void) {
    const char *c = getenv("CML_CLI_BIN");
    ck_assert_msg(c && *c && access(c, X_OK) == 0, "CML_CLI_BIN is not an executable");
    return c;
}

/* ========================================================================================= */
/* Suite "train": retraining through lighttpd.                                               */
/* ========================================================================================= */

/* A text/csv body with ?model_type=classic: 202, the job runs to completed, and the new version
 * is published (history, list, comparison, health) and answers on every worker. */
START_TEST(test_retrain_text_csv_upload) {
    char *csv = corpus_sample(15);
    size_t rows = csv_rows(csv, strlen(csv));
    char before[64], task[64], version[64], auth[512];
    current_version(before);
    snprintf(auth, sizeof auth, "X-API-Key: %s", api_key());
    const char *h[] = {auth, NULL};
    double t0 = now_s();
    resp *r = request("POST", "/api/v1/models/retrain?model_type=classic", "text/csv", csv,
                      strlen(csv), h);
    expect_started(r, task, rows);
    double estimate = jnum(r->json, "estimated_time");
    resp_free(r);
    trace t = {0};
    json_object *job = wait_job(task, 90, &t);
    double took = now_s() - t0;
    expect_published(job, task, rows, version, "csv-upload");
    ck_assert_msg(strcmp(version, before) != 0, "the new version is the old one (%s)", before);
    /* The latest job is this one. */
    char latest[64];
    latest_task(latest);
    ck_assert_str_eq(latest, task);
    printf("text/csv retrain: %zu rows, 202 to completed in %.2f s (estimated %.1f s), %d status "
           "polls, %d running\n",
           rows, took, estimate, t.polls, t.running);
    record("job %s completed %s", task, version);
    json_object_put(job);
    free(csv);
}
END_TEST

/* A JSON body with "data": the same, on exactly the rows sent. */
START_TEST(test_retrain_json_data) {
    char *csv = corpus_sample_from(12, 5), *body = retrain_body(csv, "\"include_feedback\":false");
    size_t rows = csv_rows(csv, strlen(csv));
    char task[64], version[64];
    resp *r = post_admin("/api/v1/models/retrain", body);
    expect_started(r, task, rows);
    resp_free(r);
    /* The job shows as running (or has already ended) right after the 202. */
    r = get("/api/v1/models/training/status");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "task_id"), task);
    resp_free(r);
    json_object *job = wait_job(task, 90, NULL);
    expect_published(job, task, rows, version, "json-data");
    record("job %s completed %s", task, version);
    json_object_put(job);
    free(body);
    free(csv);
}
END_TEST

/*
 * A long job (the whole bundled corpus, 10 cross-validation folds): its status runs through
 * several steps with rising progress; a second retrain meanwhile is a 409, also when asked
 * through the other worker; then it completes and is published.
 */
START_TEST(test_retrain_progress_and_conflict) {
    char first_id[96], task[64], version[64], before[64];
    current_version(before);
    snprintf(first_id, sizeof first_id, "long-job-%ld", (long)getpid());
    double t0 = now_s();
    const char *long_job = "{\"model_type\":\"classic\",\"hyperparameters\":{\"cv_folds\":10}}";
    resp *r = post_admin_as("/api/v1/models/retrain", "application/json", long_job,
                            strlen(long_job), first_id);
    expect_started(r, task, corpus_rows());
    resp_free(r);
    long trainer = 0;
    for (int i = 0; i < 200 && trainer == 0; i++) {
        trainer = trainer_pid(task);
        if (trainer == 0)
            sleep_ms(10);
    }
    ck_assert_msg(trainer > 0, "no `cultivate-ml train --job %s` process", task);
    long spawner = parent_of(trainer);
    ck_assert_msg(is_worker(spawner), "the trainer %ld is a child of %ld, not of a worker (%s)",
                  trainer, spawner, env_or("CML_WORKER_PIDS", ""));
    long accepted_by = worker_of(first_id);
    if (accepted_by > 0)
        ck_assert_int_eq(accepted_by, spawner);

    /* Conflicting requests (a valid small CSV each) until one has gone through the other
     * worker: all 409. */
    char *csv = corpus_sample(60), *body = retrain_body(csv, NULL);
    int sent = 0, other = 0, same = 0;
    long other_pid = 0;
    while (sent < 80 && (other == 0 || same == 0)) {
        char id[96];
        snprintf(id, sizeof id, "conflict-%ld-%d", (long)getpid(), sent++);
        r = post_admin_as("/api/v1/models/retrain", "application/json", body, strlen(body), id);
        ck_assert_msg(r->status == 409, "retrain %d while %s runs: %ld %.300s", sent, task,
                      r->status, r->body);
        expect_error(r, 409, "training_in_progress");
        resp_free(r);
        long w = worker_of(id);
        if (w > 0 && w != spawner) {
            other++;
            other_pid = w;
        } else if (w == spawner) {
            same++;
        }
    }
    if (other == 0)
        fprintf(stderr, "NOTE: none of %d conflicting requests reached a worker other than %ld\n",
                sent, spawner);
    /* Health and status agree that it runs. */
    r = get("/api/health");
    expect_json(r, 200);
    ck_assert(jbool(r->json, "training.is_training"));
    ck_assert_str_eq(jstr(r->json, "models.classic.version"), before);
    resp_free(r);

    trace t = {0};
    json_object *job = wait_job(task, 150, &t);
    double took = now_s() - t0;
    ck_assert_msg(t.running >= 3, "only %d running answers", t.running);
    ck_assert_msg(t.n_tasks >= 3, "only %d distinct steps seen while running", t.n_tasks);
    ck_assert_msg(t.max_running_progress > t.first_progress, "progress stayed at %g",
                  t.first_progress);
    if (t.done_while_running > 0)
        printf("NOTE: %d status answers said running at 100%% (\"done\") before the version was "
               "published; progress then went back to 99%% (\"publishing\"): a fault of "
               "cli/cli_main.c job progress\n",
               t.done_while_running);
    expect_published(job, task, corpus_rows(), version, "long-job");
    printf("long job (%zu rows, 10 folds): %.2f s; %d conflicting requests all 409 (%d through "
           "worker %ld, %d through the job's worker %ld); %d running answers, %d steps, progress "
           "%.1f%% -> %.1f%%\n",
           corpus_rows(), took, sent, other, other_pid, same, spawner, t.running, t.n_tasks,
           t.first_progress, t.max_running_progress);
    record("job %s completed %s", task, version);
    json_object_put(job);
    free(body);
    free(csv);
}
END_TEST

/* --- bad uploads: refused with the reason; no job, the serving model unchanged -------------- */

typedef struct snapshot {
    char version[64], task[64];
    char *cache;
} snapshot;

static void take_snapshot(snapshot *s) {
    expect_no_job_data();
    current_version(s->version);
    latest_task(s->task);
    s->cache = cache_listing();
}

static void expect_unchanged(snapshot *s) {
    char v[64], t[64];
    current_version(v);
    latest_task(t);
    ck_assert_msg(!strcmp(v, s->version), "serving %s, was %s", v, s->version);
    ck_assert_msg(!strcmp(t, s->task), "a job %s was started (latest was %s)", t, s->task);
    char *c = cache_listing();
    ck_assert_msg(!strcmp(c, s->cache), "the cache changed: %s; was: %s", c, s->cache);
    free(c);
    c = jobs_listing();
    ck_assert_msg(*c == '\0', "job data left behind: %s", c);
    free(c);
    free(s->cache);
    resp *r = post_json("/api/v1/models/classify", "{\"text\":\"Is it red?\"}");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "model_version"), s->version);
    resp_free(r);
}

static resp *post_csv(const char *csv, size_t len) {
    return post_admin_as("/api/v1/models/retrain?model_type=classic", "text/csv", csv, len, NULL);
}

START_TEST(test_bad_upload_malformed_csv) {
    snapshot s;
    take_snapshot(&s);
    /* A quote never closed, in a text/csv body: the reason names line 3. */
    const char *unclosed = "text,label\nIs it red?,CEQ\n\"never closed,OEQ\nWhy?,OEQ\n";
    resp *r = post_csv(unclosed, strlen(unclosed));
    const char *d = expect_error(r, 400, "bad_training_data");
    ck_assert_msg(strstr(d, "line 3") != NULL, "the reason does not name line 3: %s", d);
    resp_free(r);
    /* A row with a field too many, in JSON "data": line 4. */
    const char *body = "{\"model_type\":\"classic\",\"data\":\"text,label\\nIs it red?,CEQ\\n"
                       "Why did it sink?,OEQ\\nWhat now?,OEQ,extra\\n\"}";
    r = post_admin("/api/v1/models/retrain", body);
    d = expect_error(r, 400, "bad_training_data");
    ck_assert_msg(strstr(d, "line 4") != NULL, "the reason does not name line 4: %s", d);
    resp_free(r);
    /* No text column. */
    const char *nohead = "question,label\nIs it red?,CEQ\n";
    r = post_csv(nohead, strlen(nohead));
    d = expect_error(r, 400, "bad_training_data");
    ck_assert_msg(strstr(d, "text") != NULL, "the reason does not name the column: %s", d);
    resp_free(r);
    expect_unchanged(&s);
}
END_TEST

START_TEST(test_bad_upload_one_label) {
    snapshot s;
    take_snapshot(&s);
    char *csv = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&csv, &len);
    fputs("text,label\n", m);
    for (int i = 0; i < 60; i++)
        fprintf(m, "Is the block number %d red?,CEQ\n", i);
    fclose(m);
    resp *r = post_csv(csv, len);
    const char *d = expect_error(r, 400, "bad_training_data");
    ck_assert_msg(strstr(d, "label") != NULL && strstr(d, "CEQ") != NULL,
                  "the reason does not say one label: %s", d);
    resp_free(r);
    free(csv);
    expect_unchanged(&s);
}
END_TEST

START_TEST(test_bad_upload_three_rows) {
    snapshot s;
    take_snapshot(&s);
    const char *csv = "text,label\nIs it red?,CEQ\nWhy did it fall?,OEQ\nHow does it work?,OEQ\n";
    resp *r = post_csv(csv, strlen(csv));
    const char *d = expect_error(r, 400, "bad_training_data");
    ck_assert_msg(strstr(d, "3 ") != NULL && strstr(d, "rows") != NULL,
                  "the reason does not say 3 rows: %s", d);
    resp_free(r);
    expect_unchanged(&s);
}
END_TEST

START_TEST(test_bad_upload_binary_junk) {
    snapshot s;
    take_snapshot(&s);
    unsigned char junk[4096];
    unsigned x = 2463534242u;
    for (size_t i = 0; i < sizeof junk; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        junk[i] = (unsigned char)x;
    }
    junk[100] = 0; /* NUL bytes, as in any binary file */
    resp *r = post_csv((const char *)junk, sizeof junk);
    const char *d = expect_error(r, 400, NULL);
    printf("binary junk: %s (%s)\n", d, jstr(r->json, "error"));
    resp_free(r);
    /* The same without NUL bytes: still no CSV. */
    for (size_t i = 0; i < sizeof junk; i++)
        if (junk[i] == 0)
            junk[i] = 0xff;
    r = post_csv((const char *)junk, sizeof junk);
    expect_error(r, 400, NULL);
    resp_free(r);
    expect_unchanged(&s);
}
END_TEST

START_TEST(test_bad_upload_over_body_limit) {
    snapshot s;
    take_snapshot(&s);
    long max = atol(env_or("CML_MAX_BODY", "10485760"));
    ck_assert_int_eq(max, 10485760); /* the service's default */
    const char *unit = "Is it red?,CEQ\nWhy did the ice melt?,OEQ\n";
    size_t ul = strlen(unit), size = 20u << 20;
    char *csv = malloc(size + 1);
    memcpy(csv, "text,label\n", 11);
    for (size_t at = 11; at < size; at += ul)
        memcpy(csv + at, unit, at + ul <= size ? ul : size - at);
    csv[size] = '\0';
    double t0 = now_s();
    resp *r = post_csv(csv, size);
    double took = now_s() - t0;
    const char *d = expect_error(r, 413, "payload_too_large");
    ck_assert_msg(strstr(d, "10485760") != NULL, "the reason does not give the limit: %s", d);
    printf("20 MiB CSV: 413 in %.2f s\n", took);
    resp_free(r);
    free(csv);
    expect_unchanged(&s);
}
END_TEST

START_TEST(test_bad_upload_unknown_hyperparameter) {
    snapshot s;
    take_snapshot(&s);
    char *csv = corpus_sample(15);
    const char *extras[] = {"\"hyperparameters\":{\"no_such_knob\":1}",
                            "\"hyperparameters\":{\"logistic_regression\":{\"gamma\":0.5}}"};
    const char *names[] = {"no_such_knob", "logistic_regression.gamma"};
    for (size_t i = 0; i < 2; i++) {
        char *body = retrain_body(csv, extras[i]);
        resp *r = post_admin("/api/v1/models/retrain", body);
        const char *d = expect_error(r, 400, "invalid_hyperparameter");
        ck_assert_msg(strstr(d, names[i]) != NULL, "the reason does not name %s: %s", names[i], d);
        resp_free(r);
        free(body);
    }
    free(csv);
    expect_unchanged(&s);
}
END_TEST

START_TEST(test_bad_upload_wrong_typed_hyperparameter) {
    snapshot s;
    take_snapshot(&s);
    char *csv = corpus_sample(15);
    const char *extras[] = {"\"hyperparameters\":{\"cv_folds\":\"five\"}",
                            "\"hyperparameters\":{\"logistic_regression\":{\"C\":true}}",
                            "\"hyperparameters\":{\"seed\":[1]}",
                            "\"hyperparameters\":{\"cv_folds\":2.5}",
                            "\"hyperparameters\":{\"test_fraction\":7}"};
    const char *names[] = {"cv_folds", "logistic_regression.C", "seed", "cv_folds",
                           "test_fraction"};
    for (size_t i = 0; i < sizeof extras / sizeof extras[0]; i++) {
        char *body = retrain_body(csv, extras[i]);
        resp *r = post_admin("/api/v1/models/retrain", body);
        const char *d = expect_error(r, 400, NULL);
        ck_assert_msg(strstr(d, names[i]) != NULL, "the reason does not name %s: %s", names[i], d);
        resp_free(r);
        free(body);
    }
    /* Hyperparameters that are not an object at all. */
    char *body = retrain_body(csv, "\"hyperparameters\":\"cv_folds=5\"");
    resp *r = post_admin("/api/v1/models/retrain", body);
    expect_error(r, 400, "wrong_type");
    resp_free(r);
    free(body);
    free(csv);
    expect_unchanged(&s);
}
END_TEST

/* --- a trainer killed with SIGKILL ------------------------------------------------------------ */

START_TEST(test_killed_trainer) {
    char before[64], task[64], id[96];
    current_version(before);
    expect_no_job_data();
    char *cache_before = cache_listing();
    snprintf(id, sizeof id, "kill-job-%ld", (long)getpid());
    const char *long_job = "{\"model_type\":\"classic\",\"hyperparameters\":{\"cv_folds\":20}}";
    resp *r =
        post_admin_as("/api/v1/models/retrain", "application/json", long_job, strlen(long_job), id);
    expect_started(r, task, 0);
    resp_free(r);
    /* Its process, once it is training (a step past the worker's "starting"). */
    long pid = 0;
    double t0 = now_s();
    char step[80] = "";
    double progress = 0;
    while (now_s() - t0 < 60) {
        if (pid == 0)
            pid = trainer_pid(task);
        char path[160];
        snprintf(path, sizeof path, "/api/v1/models/training/status/%s", task);
        r = get(path);
        expect_json(r, 200);
        ck_assert_msg(!strcmp(jstr(r->json, "status"), "running"), "the job ended first: %s",
                      r->body);
        progress = jnum(r->json, "progress");
        snprintf(step, sizeof step, "%s", jstr(r->json, "current_task"));
        resp_free(r);
        if (pid > 0 && progress > 0 && strcmp(step, "starting") && strcmp(step, "queued"))
            break;
        sleep_ms(20);
    }
    ck_assert_msg(pid > 0, "no trainer process for %s", task);
    ck_assert_msg(is_worker(parent_of(pid)), "%ld is not a child of a worker", pid);
    ck_assert_msg(progress > 0 && progress < 90, "not mid-run: %g%% (%s)", progress, step);
    ck_assert_int_eq(kill((pid_t)pid, SIGKILL), 0);
    double killed_at = now_s();

    trace t = {0};
    json_object *job = wait_job(task, 30, &t);
    double noticed = now_s() - killed_at;
    ck_assert_msg(!strcmp(jstr(job, "status"), "failed"), "killed job ended so: %s",
                  json_object_to_json_string(job));
    ck_assert(!jbool(job, "is_training"));
    const char *why = jstr(job, "error");
    ck_assert_msg(strstr(why, "signal 9") || strstr(why, "killed"), "reason: %s", why);
    jstr(job, "finished_at");
    ck_assert(jnull(job, "version"));
    printf("trainer %ld killed at %.1f%% (%s): failed after %.2f s: %s\n", pid, progress, step,
           noticed, why);
    record("job %s failed - %s", task, why);

    /* Nothing half-made is left; the serving model is the one before. */
    for (int i = 0; i < 100 && parent_of(pid) > 0; i++)
        sleep_ms(10);
    char *cache_after = cache_listing();
    ck_assert_msg(!strcmp(cache_before, cache_after), "the cache changed: %s; was: %s", cache_after,
                  cache_before);
    expect_no_temp_in_cache();
    expect_no_job_data();
    bool last = false;
    json_object *e = history_entry(task, &last);
    ck_assert_msg(e == NULL, "a killed job is in the history");
    char prefix[64];
    snprintf(prefix, sizeof prefix, "after-kill-%ld", (long)getpid());
    expect_serving(before, 8, prefix, 2);
    r = get("/api/health");
    expect_json(r, 200);
    ck_assert(!jbool(r->json, "training.is_training"));
    ck_assert_str_eq(jstr(r->json, "status"), "healthy");
    resp_free(r);
    json_object_put(job);
    free(cache_before);
    free(cache_after);

    /* The next retrain works. */
    char task2[64], version[64];
    small_retrain(20, task2, version, "after-kill-retrain");
    ck_assert_msg(strcmp(version, before) != 0, "no new version after the kill");
    record("job %s completed %s", task2, version);
}
END_TEST

/* --- evaluation ----------------------------------------------------------------------------- */

/* The same metric in two answers, exactly at the 6 significant digits the service prints. */
static void expect_same_number(json_object *a, const char *pa, json_object *b, const char *pb) {
    double x = jnum(a, pa), y = jnum(b, pb);
    ck_assert_msg(same_printed(x, y), "%s %.17g (service) != %s %.17g", pa, x, pb, y);
}

static void expect_same_matrix(json_object *a, json_object *b) {
    ck_assert(a && b && json_object_is_type(a, json_type_array) &&
              json_object_is_type(b, json_type_array));
    size_t n = json_object_array_length(a);
    ck_assert_uint_eq(n, json_object_array_length(b));
    for (size_t i = 0; i < n; i++) {
        json_object *ra = json_object_array_get_idx(a, i), *rb = json_object_array_get_idx(b, i);
        ck_assert_uint_eq(json_object_array_length(ra), json_object_array_length(rb));
        for (size_t k = 0; k < json_object_array_length(ra); k++)
            ck_assert_msg(json_object_get_int64(json_object_array_get_idx(ra, k)) ==
                              json_object_get_int64(json_object_array_get_idx(rb, k)),
                          "confusion matrices differ: %s vs %s", json_object_to_json_string(a),
                          json_object_to_json_string(b));
    }
}

/* POST /evaluate with an uploaded CSV equals `cultivate-ml evaluate --json` on the same file
 * and model file, for a pinned version and for the active model. */
START_TEST(test_evaluate_upload_matches_cli) {
    char *csv = corpus_sample_from(13, 7), *q = jquote(csv);
    size_t rows = csv_rows(csv, strlen(csv));
    /* In the wrapper's temporary directory (removed by it even when this test fails). */
    char file[4096], *dir = strdup(env_or("CML_TRAINING_RECORD", "/tmp/x"));
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    snprintf(file, sizeof file, "%s/eval-XXXXXX.csv", *dir ? dir : "/tmp");
    free(dir);
    int fd = mkstemps(file, 4);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, csv, strlen(csv)), (ssize_t)strlen(csv));
    close(fd);
    char active[64];
    current_version(active);
    const char *versions[] = {env_or("CML_V1", ""), active};
    for (int i = 0; i < 2; i++) {
        size_t cap = strlen(q) + 256;
        char *body = malloc(cap);
        if (i == 0)
            snprintf(body, cap, "{\"model_type\":\"classic\",\"version\":\"%s\",\"data\":%s}",
                     versions[i], q);
        else
            snprintf(body, cap, "{\"data\":%s}", q); /* the active model */
        resp *r = post_admin("/api/v1/models/evaluate", body);
        free(body);
        expect_json(r, 200);
        ck_assert_str_eq(jstr(r->json, "model_version"), versions[i]);
        ck_assert_str_eq(jstr(r->json, "model_type"), "classic");
        ck_assert_str_eq(jstr(r->json, "data"), "uploaded");
        ck_assert_uint_eq((size_t)jnum(r->json, "n"), rows);

        char cmd[8192];
        snprintf(cmd, sizeof cmd,
                 "'%s' evaluate --json --model '%s/models/classic_%s.model' --data '%s' "
                 "2>/dev/null",
                 cli_bin(), state_dir(), versions[i], file);
        int st;
        char *out = run_capture(cmd, &st);
        ck_assert_msg(st == 0, "%s exited %d", cmd, st);
        json_object *cli = json_tokener_parse(out);
        ck_assert_msg(cli != NULL, "the CLI printed no JSON: %s", out);
        ck_assert_uint_eq((size_t)jnum(cli, "n"), rows);
        const char *keys[] = {"accuracy",     "f1_macro", "precision_macro",
                              "recall_macro", "mcc",      "log_loss"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            char pa[64];
            snprintf(pa, sizeof pa, "metrics.%s", keys[k]);
            expect_same_number(r->json, pa, cli, keys[k]);
        }
        if (jhas(r->json, "metrics.roc_auc"))
            expect_same_number(r->json, "metrics.roc_auc", cli, "roc_auc");
        expect_same_matrix(jget(r->json, "confusion_matrix"), jget(cli, "confusion_matrix"));
        json_object *labels = jtyped(r->json, "labels", json_type_array);
        for (size_t c = 0; c < json_object_array_length(labels); c++) {
            const char *l = json_object_get_string(json_object_array_get_idx(labels, c));
            char pa[96], pb[96];
            snprintf(pa, sizeof pa, "classification_report.%s.f1", l);
            snprintf(pb, sizeof pb, "classification_report.%s.f1", l);
            expect_same_number(r->json, pa, cli, pb);
            snprintf(pa, sizeof pa, "classification_report.%s.support", l);
            snprintf(pb, sizeof pb, "classification_report.%s.support", l);
            expect_same_number(r->json, pa, cli, pb);
        }
        printf("evaluate %s on %zu uploaded rows: accuracy %.4f, macro F1 %.4f (CLI: the same)\n",
               versions[i], rows, jnum(r->json, "metrics.accuracy"),
               jnum(r->json, "metrics.f1_macro"));
        json_object_put(cli);
        free(out);
        resp_free(r);
    }
    unlink(file);
    free(q);
    free(csv);
}
END_TEST

/* Without data: the model's own held-out split, i.e. the metrics stored with the version. */
START_TEST(test_evaluate_holdout) {
    char active[64];
    current_version(active);
    const char *versions[] = {active, env_or("CML_V1", "")};
    resp *list = get("/api/v1/models");
    expect_json(list, 200);
    json_object *models = jtyped(list->json, "models", json_type_array);
    for (int i = 0; i < 2; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"model_type\":\"classic\",\"version\":\"%s\"}", versions[i]);
        resp *r = post_admin("/api/v1/models/evaluate", i == 0 ? "{}" : body);
        expect_json(r, 200);
        ck_assert_str_eq(jstr(r->json, "model_version"), versions[i]);
        ck_assert_str_eq(jstr(r->json, "data"), "holdout");
        json_object *stored = NULL;
        for (size_t k = 0; k < json_object_array_length(models); k++) {
            json_object *m = json_object_array_get_idx(models, k);
            if (!strcmp(jstr(m, "model_type"), "classic") &&
                !strcmp(jstr(m, "version"), versions[i]))
                stored = jget(m, "metrics");
        }
        ck_assert_msg(stored != NULL, "%s is not listed", versions[i]);
        ck_assert_uint_eq((size_t)jnum(r->json, "n"), (size_t)jnum(stored, "n"));
        expect_same_number(r->json, "metrics.accuracy", stored, "accuracy");
        expect_same_number(r->json, "metrics.f1_macro", stored, "f1_macro");
        expect_same_matrix(jget(r->json, "confusion_matrix"), jget(stored, "confusion_matrix"));
        resp_free(r);
    }
    resp_free(list);
    /* A version trained by a job here: n is its n_test in the history. */
    resp *h = get("/api/v1/models/performance/history?model_type=classic&limit=1");
    expect_json(h, 200);
    if (json_object_array_length(h->json) == 1) {
        json_object *e = json_object_array_get_idx(h->json, 0);
        char body[256];
        snprintf(body, sizeof body, "{\"model_type\":\"classic\",\"version\":\"%s\"}",
                 jstr(e, "version"));
        resp *r = post_admin("/api/v1/models/evaluate", body);
        expect_json(r, 200);
        ck_assert_uint_eq((size_t)jnum(r->json, "n"), (size_t)jnum(e, "n_test"));
        expect_same_number(r->json, "metrics.f1_macro", e, "metrics.f1_macro");
        resp_free(r);
    }
    resp_free(h);
}
END_TEST

START_TEST(test_evaluate_unknown_version) {
    const char *bodies[] = {"{\"model_type\":\"classic\",\"version\":\"20000101T000000.000Z\"}",
                            "{\"model_type\":\"classic\",\"version\":\"../../etc/passwd\"}",
                            "{\"version\":\"nope\",\"data\":\"text,label\\nIs it red?,CEQ\\n\"}"};
    for (size_t i = 0; i < 3; i++) {
        resp *r = post_admin("/api/v1/models/evaluate", bodies[i]);
        expect_error(r, 404, "unknown_version");
        resp_free(r);
    }
    resp *r = get("/api/v1/models/training/status/job-20000101000000-00000000");
    expect_error(r, 404, NULL);
    resp_free(r);
}
END_TEST

/* --- rollback ------------------------------------------------------------------------------- */

static void select_classic(const char *version, const char *expect) {
    char body[256];
    if (version)
        snprintf(body, sizeof body, "{\"model_type\":\"classic\",\"version\":\"%s\"}", version);
    else
        snprintf(body, sizeof body, "{\"model_type\":\"classic\"}");
    resp *r = post_admin("/api/v1/models/select", body);
    expect_json(r, 200);
    ck_assert(jbool(r->json, "success"));
    ck_assert_str_eq(jstr(r->json, "current_model"), "classic");
    ck_assert_str_eq(jstr(r->json, "version"), expect);
    ck_assert_str_eq(jstr(r->json, "model_info.version"), expect);
    if (jhas(r->json, "pinned"))
        ck_assert(jbool(r->json, "pinned") == (version != NULL));
    resp_free(r);
}

/* Select the previous version: every worker answers with it; select without a version: back to
 * the latest. */
START_TEST(test_rollback_and_back) {
    char cached[64][64];
    size_t n = cached_versions(cached, 64);
    ck_assert_msg(n >= 2, "fewer than two classic versions");
    const char *latest = cached[0], *previous = cached[1];
    char prefix[64];

    select_classic(previous, previous);
    char cur[64];
    current_version(cur);
    ck_assert_str_eq(cur, previous);
    snprintf(prefix, sizeof prefix, "rollback-%ld", (long)getpid());
    expect_serving(previous, 8, prefix, 2);
    resp *r = get("/api/v1/models");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "active.version"), previous);
    resp_free(r);
    /* An older one still. */
    if (n >= 3) {
        select_classic(cached[2], cached[2]);
        snprintf(prefix, sizeof prefix, "rollback2-%ld", (long)getpid());
        expect_serving(cached[2], 8, prefix, 2);
    }

    select_classic(NULL, latest);
    snprintf(prefix, sizeof prefix, "rollforward-%ld", (long)getpid());
    expect_serving(latest, 8, prefix, 2);
    /* An unknown version changes nothing. */
    r = post_admin("/api/v1/models/select",
                   "{\"model_type\":\"classic\",\"version\":\"20000101T000000.000Z\"}");
    expect_error(r, 404, NULL);
    resp_free(r);
    current_version(cur);
    ck_assert_str_eq(cur, latest);
    printf("rollback: %s -> %s -> %s, every answer from the selected version\n", latest, previous,
           latest);
}
END_TEST

/* --- feedback into training --------------------------------------------------------------- */

START_TEST(test_retrain_with_feedback) {
    /* Corrections with commas, quotes and a newline: they must survive the CSV round trip. */
    char texts[12][160];
    const char *labels[12];
    long total = 0;
    for (int i = 0; i < 12; i++) {
        labels[i] = i % 2 ? "CEQ" : "OEQ";
        if (i % 2)
            snprintf(texts[i], sizeof texts[i], "Is the \"fb%ld-%d\" tower red, or blue?",
                     (long)getpid(), i);
        else
            snprintf(texts[i], sizeof texts[i], "Why do you think fb%ld-%d fell,\nand then what?",
                     (long)getpid(), i);
        char *q = jquote(texts[i]);
        char body[512];
        snprintf(body, sizeof body, "{\"text\":%s,\"%s\":\"%s\",\"predicted_class\":\"%s\"}", q,
                 i % 3 ? "correct_class" : "human_label", labels[i], i % 2 ? "OEQ" : "CEQ");
        free(q);
        resp *r = post_json(i % 4 ? "/api/feedback" : "/save_feedback", body);
        expect_json(r, 200);
        ck_assert_str_eq(jstr(r->json, "status"), "success");
        total = (long)jnum(r->json, "total_entries");
        resp_free(r);
    }
    ck_assert_int_ge(total, 12);

    char *csv = corpus_sample_from(17, 3), *body = retrain_body(csv, "\"include_feedback\":true");
    size_t rows = csv_rows(csv, strlen(csv));
    char task[64], version[64];
    resp *r = post_admin("/api/v1/models/retrain", body);
    expect_started(r, task, rows + (size_t)total);
    resp_free(r);
    json_object *job = wait_job(task, 90, NULL);
    expect_published(job, task, rows + (size_t)total, version, "feedback-job");
    printf("include_feedback: %zu uploaded rows + %ld corrections = %zu trained\n", rows, total,
           rows + (size_t)total);
    record("job %s completed %s", task, version);
    json_object_put(job);
    free(body);
    free(csv);

    /* `cultivate-ml feedback export` prints them as a text,label CSV... */
    char cmd[4096];
    int st;
    snprintf(cmd, sizeof cmd, "'%s' feedback export --state-dir '%s' 2>/dev/null", cli_bin(),
             state_dir());
    char *out = run_capture(cmd, &st);
    ck_assert_msg(st == 0, "feedback export exited %d", st);
    ck_assert_msg(!strncmp(out, "text,label\n", 11), "export header: %.40s", out);
    cml_dataset *ds = NULL;
    cml_diag d = {{0}};
    cml_csv_options o = {.min_labels = 1, .min_rows = 1};
    ck_assert_msg(cml_csv_parse(out, strlen(out), &o, &ds, &d) == CML_OK, "export: %s", d.msg);
    ck_assert_uint_eq(ds->n, (size_t)total);
    size_t per_label[2] = {0};
    for (size_t i = 0; i < ds->n; i++)
        per_label[!strcmp(ds->label_names[ds->labels[i]], "CEQ")]++;
    for (int i = 0; i < 12; i++) {
        bool found = false;
        for (size_t k = 0; k < ds->n && !found; k++)
            found = !strcmp(ds->texts[k], texts[i]) &&
                    !strcmp(ds->label_names[ds->labels[k]], labels[i]);
        ck_assert_msg(found, "correction %d (%s, %s) is not exported as such", i, texts[i],
                      labels[i]);
    }
    cml_dataset_free(ds);
    free(out);
    /* ... and `feedback counts` counts them per label. */
    snprintf(cmd, sizeof cmd, "'%s' feedback counts --state-dir '%s' 2>/dev/null", cli_bin(),
             state_dir());
    out = run_capture(cmd, &st);
    ck_assert_msg(st == 0, "feedback counts exited %d", st);
    json_object *counts = json_tokener_parse(out);
    ck_assert_msg(counts != NULL, "counts printed no JSON: %s", out);
    ck_assert_msg((size_t)jnum(counts, "OEQ") == per_label[0] &&
                      (size_t)jnum(counts, "CEQ") == per_label[1],
                  "counts %s, export has OEQ %zu CEQ %zu", out, per_label[0], per_label[1]);
    json_object_put(counts);
    free(out);
    record("feedback %ld", total);
}
END_TEST

/* Last: pins the second newest version for the persist suite to find after the restart. */
START_TEST(test_leave_pinned_for_restart) {
    char cached[64][64];
    size_t n = cached_versions(cached, 64);
    ck_assert(n >= 2);
    select_classic(cached[1], cached[1]);
    record("pin %s", cached[1]);
    char latest[64];
    latest_task(latest);
    record("latest %s", latest);
    char *c = cache_listing();
    char *save = NULL;
    for (char *line = strtok_r(c, " ", &save); line; line = strtok_r(NULL, " ", &save))
        record("file %s", line);
    free(c);
}
END_TEST

static Suite *train_suite(void) {
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("retrain");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_retrain_text_csv_upload);
    tcase_add_test(tc, test_retrain_json_data);
    tcase_add_test(tc, test_retrain_progress_and_conflict);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad uploads");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_bad_upload_malformed_csv);
    tcase_add_test(tc, test_bad_upload_one_label);
    tcase_add_test(tc, test_bad_upload_three_rows);
    tcase_add_test(tc, test_bad_upload_binary_junk);
    tcase_add_test(tc, test_bad_upload_over_body_limit);
    tcase_add_test(tc, test_bad_upload_unknown_hyperparameter);
    tcase_add_test(tc, test_bad_upload_wrong_typed_hyperparameter);
    suite_add_tcase(s, tc);

    tc = tcase_create("kill");
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc, test_killed_trainer);
    suite_add_tcase(s, tc);

    tc = tcase_create("evaluate");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_evaluate_upload_matches_cli);
    tcase_add_test(tc, test_evaluate_holdout);
    tcase_add_test(tc, test_evaluate_unknown_version);
    suite_add_tcase(s, tc);

    tc = tcase_create("rollback");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_rollback_and_back);
    suite_add_tcase(s, tc);

    tc = tcase_create("feedback");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_retrain_with_feedback);
    tcase_add_test(tc, test_leave_pinned_for_restart);
    suite_add_tcase(s, tc);
    return s;
}

/* ========================================================================================= */
/* Suite "persist": after a restart of the whole stack on the same state.                   */
/* ========================================================================================= */

/* The lines of the record starting with "kind " (the rest of each line), at most cap. */
static size_t recorded(const char *kind, char (*out)[512], size_t cap) {
    const char *path = getenv("CML_TRAINING_RECORD");
    ck_assert_msg(path != NULL, "CML_TRAINING_RECORD is not set");
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "no record %s: did the train suite run?", path);
    char line[1024];
    size_t n = 0, kl = strlen(kind);
    while (fgets(line, sizeof line, f) && n < cap) {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, kind, kl) && line[kl] == ' ')
            snprintf(out[n++], 512, "%s", line + kl + 1);
    }
    fclose(f);
    return n;
}

START_TEST(test_history_survives_restart) {
    char jobs[32][512];
    size_t n = recorded("job", jobs, 32);
    ck_assert_uint_ge(n, 5);
    for (size_t i = 0; i < n; i++) {
        char task[64], status[16], version[64];
        ck_assert(sscanf(jobs[i], "%63s %15s %63s", task, status, version) == 3);
        json_object *e = history_entry(task, NULL);
        if (!strcmp(status, "completed")) {
            ck_assert_msg(e != NULL, "task %s left the history", task);
            ck_assert_str_eq(jstr(e, "version"), version);
            ck_assert(jnum(e, "n_train") > 0 && jnum(e, "n_test") > 0);
            jnum(e, "metrics.f1_macro");
        } else {
            ck_assert_msg(e == NULL, "failed task %s is in the history", task);
        }
        json_object_put(e);
    }
    /* Comparison still shows the classic model. */
    resp *r = get("/api/v1/models/comparison");
    expect_json(r, 200);
    jstr(r->json, "classic.version");
    jnum(r->json, "classic.f1_score");
    resp_free(r);
}
END_TEST

START_TEST(test_job_status_survives_restart) {
    char jobs[32][512], latest[4][512];
    size_t n = recorded("job", jobs, 32);
    ck_assert_uint_ge(n, 5);
    for (size_t i = 0; i < n; i++) {
        char task[64], status[16], version[64], path[160];
        ck_assert(sscanf(jobs[i], "%63s %15s %63s", task, status, version) == 3);
        snprintf(path, sizeof path, "/api/v1/models/training/status/%s", task);
        resp *r = get(path);
        expect_json(r, 200);
        ck_assert_str_eq(jstr(r->json, "status"), status);
        ck_assert(!jbool(r->json, "is_training"));
        jstr(r->json, "finished_at");
        if (!strcmp(status, "completed")) {
            ck_assert_str_eq(jstr(r->json, "version"), version);
            ck_assert(jnum(r->json, "progress") == 100);
        } else {
            const char *why = strstr(jobs[i], " - ");
            ck_assert(why != NULL);
            ck_assert_str_eq(jstr(r->json, "error"), why + 3);
        }
        resp_free(r);
    }
    ck_assert_uint_eq(recorded("latest", latest, 4), 1);
    char now[64];
    latest_task(now);
    ck_assert_str_eq(now, latest[0]);
}
END_TEST

START_TEST(test_selection_survives_restart) {
    char pin[4][512], files[64][512];
    ck_assert_uint_eq(recorded("pin", pin, 4), 1);
    char cur[64];
    current_version(cur);
    ck_assert_str_eq(cur, pin[0]);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "persist-pin-%ld", (long)getpid());
    expect_serving(pin[0], 8, prefix, 2);
    /* The cache and the list: every version still there. */
    size_t nf = recorded("file", files, 64);
    char *c = cache_listing();
    char expected[64 * 520] = "";
    for (size_t i = 0; i < nf; i++) {
        strcat(expected, files[i]);
        strcat(expected, " ");
    }
    ck_assert_msg(!strcmp(c, expected), "the cache is now: %s; was: %s", c, expected);
    free(c);
    char cached[64][64], listed[64][64];
    size_t nc = cached_versions(cached, 64), nl = listed_versions(listed, 64);
    ck_assert_uint_eq(nc, nl);
    for (size_t i = 0; i < nc; i++)
        ck_assert_str_eq(cached[i], listed[i]);
    /* Feedback is still stored. */
    char fb[4][512];
    if (recorded("feedback", fb, 4) == 1) {
        resp *r =
            post_json("/api/feedback", "{\"text\":\"Is it blue?\",\"correct_class\":\"CEQ\"}");
        expect_json(r, 200);
        ck_assert_int_eq((long)jnum(r->json, "total_entries"), atol(fb[0]) + 1);
        resp_free(r);
    }
}
END_TEST

/* Last: a retrain after the restart works, and leaves no job data behind. */
START_TEST(test_retrain_after_restart) {
    char task[64], version[64], pinned[64];
    current_version(pinned);
    small_retrain(21, task, version, "after-restart");
    ck_assert_msg(strcmp(version, pinned) != 0, "still serving %s", pinned);
    expect_no_job_data();
    expect_no_temp_in_cache();
}
END_TEST

/*
 * Last (it leaves one worker): the worker that started a job is killed with SIGKILL while the
 * job runs. The trainer goes on, reports its own end and publishes; its data file, which the
 * dead worker's watcher would have removed, goes with the next retrain.
 */
START_TEST(test_job_outlives_its_worker) {
    const char *long_job = "{\"model_type\":\"classic\",\"hyperparameters\":{\"cv_folds\":5}}";
    char task[64], version[64];
    resp *r = post_admin("/api/v1/models/retrain", long_job);
    expect_started(r, task, corpus_rows());
    resp_free(r);
    long trainer = 0;
    for (int i = 0; i < 300 && trainer == 0; i++) {
        trainer = trainer_pid(task);
        if (trainer == 0)
            sleep_ms(10);
    }
    ck_assert_msg(trainer > 0, "no trainer for %s", task);
    long worker = parent_of(trainer);
    ck_assert_msg(is_worker(worker), "the trainer's parent %ld is not a worker", worker);
    ck_assert_int_eq(kill((pid_t)worker, SIGKILL), 0);
    for (int i = 0; i < 500 && !process_gone(worker); i++)
        sleep_ms(10);
    ck_assert_msg(process_gone(worker), "worker %ld survived SIGKILL", worker);
    ck_assert_msg(!process_gone(trainer), "the trainer died with its worker");

    json_object *job = wait_job(task, 120, NULL);
    expect_published_on(job, task, corpus_rows(), version, "orphan-job", 1);
    json_object_put(job);
    char name[128];
    snprintf(name, sizeof name, "%s.csv ", task);
    char *l = jobs_listing();
    bool left = strstr(l, name) != NULL;
    free(l);
    record("orphan %s %s", task, version);

    char task2[64], version2[64];
    small_retrain_on(22, task2, version2, "after-orphan", 1);
    expect_no_job_data();
    printf("worker %ld killed during job %s: the trainer published %s by itself; its data file "
           "was %s, and is gone after the next retrain\n",
           worker, task, version, left ? "left behind" : "already removed");
}
END_TEST

static Suite *persist_suite(void) {
    Suite *s = suite_create("persist");
    TCase *tc = tcase_create("persist");
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc, test_history_survives_restart);
    tcase_add_test(tc, test_job_status_survives_restart);
    tcase_add_test(tc, test_selection_survives_restart);
    tcase_add_test(tc, test_retrain_after_restart);
    tcase_add_test(tc, test_job_outlives_its_worker);
    suite_add_tcase(s, tc);
    return s;
}

/* ========================================================================================= */
/* Suite "retention": MODEL_RETAIN_VERSIONS=2.                                               */
/* ========================================================================================= */

/* The cache and GET /api/v1/models hold exactly these classic versions (newest first). */
static void expect_versions(const char *const *want, size_t n) {
    char cached[64][64], listed[64][64];
    size_t nc = cached_versions(cached, 64), nl = listed_versions(listed, 64);
    char got[1024] = "";
    for (size_t i = 0; i < nc; i++) {
        strcat(got, cached[i]);
        strcat(got, " ");
    }
    ck_assert_msg(nc == n, "%zu versions cached (%s), wanted %zu", nc, got, n);
    ck_assert_msg(nl == n, "%zu versions listed, wanted %zu", nl, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(in_list(cached, nc, want[i]), "%s is not cached (%s)", want[i], got);
        ck_assert_msg(in_list(listed, nl, want[i]), "%s is not listed", want[i]);
    }
    expect_no_temp_in_cache();
}

START_TEST(test_retention_keeps_active_and_pinned) {
    ck_assert_int_eq(strtol(env_or("CML_RETAIN", "0"), NULL, 10), 2);
    const char *v1 = env_or("CML_V1", ""), *v2 = env_or("CML_V2", "");
    char a[64], b[64], c[64], d[64], task[64];
    {
        const char *w[] = {v2, v1};
        expect_versions(w, 2);
    }
    /* Rolled back to V1: a retrain makes its version the active one (the pin is cleared), and
     * keeps the newest 2 plus V1, which was serving until then. */
    select_classic(v1, v1);
    small_retrain(14, task, a, "ret-a");
    {
        const char *w[] = {a, v2, v1};
        expect_versions(w, 3);
    }
    /* Retrain again with no pin: V1 goes (only the newest 2 stay). */
    small_retrain(16, task, b, "ret-b");
    {
        const char *w[] = {b, a};
        expect_versions(w, 2);
    }
    resp *r = post_admin("/api/v1/models/select",
                         "{\"model_type\":\"classic\",\"version\":\"placeholder\"}");
    expect_error(r, 404, NULL);
    resp_free(r);
    char body[160];
    snprintf(body, sizeof body, "{\"model_type\":\"classic\",\"version\":\"%s\"}", v1);
    r = post_admin("/api/v1/models/select", body);
    expect_error(r, 404, "unknown_version");
    resp_free(r);
    r = post_admin("/api/v1/models/evaluate", body);
    expect_error(r, 404, "unknown_version");
    resp_free(r);
    /* Pinned to the older of the two (a rollback), then two retrains. */
    select_classic(a, a);
    small_retrain(18, task, c, "ret-c");
    {
        const char *w[] = {c, b, a};
        expect_versions(w, 3);
    }
    small_retrain(19, task, d, "ret-d");
    {
        const char *w[] = {d, c};
        expect_versions(w, 2);
    }
    /* The history keeps every job, even of removed versions. */
    resp *h = get("/api/v1/models/performance/history?model_type=classic&limit=100");
    expect_json(h, 200);
    ck_assert_uint_ge(json_object_array_length(h->json), 4);
    resp_free(h);
    char cur[64];
    current_version(cur);
    ck_assert_str_eq(cur, d);
    printf("retention 2: V1 %s, V2 %s, then %s %s %s %s; the pinned version survives the next "
           "publish, then goes\n",
           v1, v2, a, b, c, d);
}
END_TEST

static Suite *retention_suite(void) {
    Suite *s = suite_create("retention");
    TCase *tc = tcase_create("retention");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_retention_keeps_active_and_pinned);
    suite_add_tcase(s, tc);
    return s;
}

const char *const integration_program = "test_training";
const integration_suite integration_suites[] = {
    {"train", train_suite},
    {"persist", persist_suite},
    {"retention", retention_suite},
};
const size_t integration_n_suites = sizeof integration_suites / sizeof integration_suites[0];
