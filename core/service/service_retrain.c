/* Retraining: the data of a job (uploaded, from blob storage or bundled, with feedback) and its
 * start. */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "learn/hyperparams.h"
#include "learn/trainer.h"
#include "service.h"
#include "training_jobs.h"
#include "base/file_io.h"

typedef struct feedback_sink {
    cml_dataset *ds;
    cml_err err;
} feedback_sink;

static void add_feedback_row(void *ctx, const char *text, const char *label) {
    feedback_sink *f = ctx;
    if (f->err == CML_OK)
        f->err = cml_dataset_add(f->ds, text, label, 0);
}

/* Reads the data a retrain names into *ds (before feedback and checks). */
static cml_err read_data(service *svc, const service_retrain_data *req, cml_dataset **ds,
                         cml_diag *diag) {
    cml_diag d = {{0}};
    cml_err err;
    if (req->csv != NULL) {
        err = cml_csv_parse(req->csv, req->csv_len, NULL, ds, &d);
    } else if (req->use_azure && !svc->cfg.use_azure_storage) {
        return cml_diag_set(diag, CML_ERR_CONFIG, "use_azure needs blob storage");
    } else if (req->use_azure) {
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s/training_data.%ld.csv", svc->cfg.state_dir, (long)getpid());
        err = storage_fetch_training_data(&svc->storage, tmp, &d);
        if (err == CML_OK)
            err = cml_csv_read_file(tmp, NULL, ds, &d);
        unlink(tmp);
        if (err == CML_ERR_NOT_FOUND || err == CML_ERR_STORAGE)
            return cml_diag_set(diag, err, "%s", d.msg);
    } else {
        err = cml_csv_read_file(svc->cfg.training_data, NULL, ds, &d);
    }
    if (err != CML_OK)
        return cml_diag_set(diag, CML_ERR_DATA, "%s", d.msg[0] ? d.msg : cml_strerror(err));
    return CML_OK;
}

cml_err service_retrain_data_load(service *svc, const service_retrain_data *req, cml_dataset **ds,
                                  cml_diag *diag) {
    cml_diag d = {{0}};
    *ds = NULL;
    cml_err err = read_data(svc, req, ds, diag);
    if (err != CML_OK)
        return err;
    if (req->include_feedback) {
        feedback_sink sink = {.ds = *ds, .err = CML_OK};
        err = cml_state_each_feedback(svc->state, add_feedback_row, &sink);
        if (err != CML_OK || sink.err != CML_OK)
            return cml_diag_set(diag, err == CML_ERR_UNAVAILABLE ? err : CML_ERR_IO,
                                "the stored feedback could not be read");
    }
    cml_train_options check;
    cml_train_options_init(&check, req->type);
    for (size_t i = 0; i < req->n_params; i++) {
        char key[160];
        const char *eq = strchr(req->params[i], '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - req->params[i]), req->params[i]);
        cml_hyperparam_set(&check, key, eq + 1, NULL);
    }
    if (cml_train_check(*ds, &check, &d) != CML_OK)
        return cml_diag_set(diag, CML_ERR_DATA, "%s", d.msg);
    return CML_OK;
}

static void new_task_id(char out[40]) {
    uint8_t raw[8];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        memset(raw, 0x42, sizeof raw);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    size_t n = strftime(out, 40, "job-%Y%m%d%H%M%S-", &tm);
    for (int i = 0; i < 4; i++)
        snprintf(out + n + 2 * i, 3, "%02x", raw[i]);
}

/*
 * Removes the data files in jobs/ of jobs that have ended. Each job's watcher removes its own
 * file, but only if its worker outlives the trainer: a worker stopped or killed while (or just
 * after) its job ran leaves the file behind. A file whose task has no job row yet belongs to a
 * request still on its way to starting (or refusing) its job, and is left alone.
 */
static void sweep_job_data(service *svc, const char *dir, const char *own_task) {
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char task[40], path[4400];
        size_t n = strlen(e->d_name);
        if (n <= 4 || n - 4 >= sizeof task || strcmp(e->d_name + n - 4, ".csv") != 0)
            continue;
        snprintf(task, sizeof task, "%.*s", (int)(n - 4), e->d_name);
        cml_job job;
        if (strcmp(task, own_task) == 0 || cml_state_job_get(svc->state, task, &job) != CML_OK ||
            job.status == CML_JOB_RUNNING)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

cml_err service_start_retrain(service *svc, const service_retrain_data *req, const cml_dataset *ds,
                              service_retrain_job *out, cml_diag *diag) {
    const char *type_name = cml_model_type_name(req->type);
    cml_diag d = {{0}};
    memset(out, 0, sizeof(*out));
    /* The job's own copy of its data, written whole before the job exists. */
    char dir[4096], path[4200];
    new_task_id(out->task_id);
    snprintf(dir, sizeof dir, "%s/jobs", svc->cfg.state_dir);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/%s.csv", dir, out->task_id);
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    cml_err err = mem ? cml_csv_write(mem, ds) : CML_ERR_NOMEM;
    if (mem)
        fclose(mem);
    if (err == CML_OK)
        err = cml_write_file_atomic(path, buf, len, &d);
    free(buf);
    if (err != CML_OK)
        return cml_diag_set(diag, CML_ERR_IO, "the job's data could not be written: %s", d.msg);
    cml_job job;
    memset(&job, 0, sizeof job);
    snprintf(job.task_id, sizeof job.task_id, "%s", out->task_id);
    snprintf(job.model_type, sizeof job.model_type, "%s", type_name);
    snprintf(job.current_task, sizeof job.current_task, "queued");
    job.start_time = (int64_t)time(NULL);
    service_reap_jobs(svc); /* a job whose trainer died does not block this one */
    err = cml_state_job_start(svc->state, &job);
    if (err == CML_ERR_CONFLICT || err == CML_ERR_UNAVAILABLE) {
        unlink(path);
        return cml_diag_set(diag, err,
                            err == CML_ERR_CONFLICT ? "a training job is already running"
                                                    : "the state database cannot be reached");
    }
    if (err == CML_OK)
        err =
            training_job_spawn(svc, out->task_id, type_name, path, req->params, req->n_params, &d);
    if (err != CML_OK) {
        cml_state_job_finish(svc->state, out->task_id, CML_JOB_FAILED,
                             "the trainer could not be started", NULL);
        unlink(path);
        return cml_diag_set(diag, CML_ERR_TRAIN, "the trainer could not be started: %s", d.msg);
    }
    sweep_job_data(svc, dir, out->task_id);
    cml_history_entry *hist = NULL;
    size_t nh = 0;
    out->estimated_s = req->type == CML_MODEL_ENSEMBLE ? 15.0 : 5.0;
    if (cml_state_list_history(svc->state, type_name, 1, &hist, &nh) == CML_OK && nh == 1 &&
        hist[0].training_time > 0)
        out->estimated_s =
            hist[0].training_time * ((double)ds->n / (double)(hist[0].n_train + hist[0].n_test));
    cml_history_free(hist, nh);
    return CML_OK;
}
