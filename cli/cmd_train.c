/* `cultivate-ml train`: split, cross-validate, train, report, save (and upload, measure). */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/file_io.h"
#include "cli.h"
#include "cli_progress.h"
#include "learn/hyperparams.h"
#include "model/model_catalog.h"
#include "model/prediction_json.h"

static void print_metrics_row(const char *name, const cml_metrics *m, const char *split) {
    if (m->n == 0)
        return;
    printf("  %-22s %-8s %7.4f %8.4f %7.4f %7.4f %8.4f", name, split, m->accuracy, m->f1_macro,
           m->mcc, m->roc_auc, m->log_loss);
    for (size_t c = 0; c < m->n_labels; c++)
        printf(" %7.4f", m->per_class[c].recall);
    printf("\n");
}
static void print_report(const cml_train_report *r, const cml_model *m) {
    printf("  %-22s %-8s %7s %8s %7s %7s %8s", "member", "split", "acc", "macroF1", "MCC", "AUC",
           "logloss");
    for (size_t c = 0; c < m->n_labels; c++)
        printf(" rec_%-3.3s", m->labels[c]);
    printf("\n");
    for (size_t k = 0; k <= r->n_members; k++) {
        char name[64];
        if (k < r->n_members && m->combination == CML_COMBINE_STACKING)
            snprintf(name, sizeof name, "%s (s=%+.2f)", r->members[k].name, m->stacker.coef[k]);
        else if (k < r->n_members)
            snprintf(name, sizeof name, "%s (w=%.2f)", r->members[k].name, r->members[k].weight);
        else
            snprintf(name, sizeof name, "= %s", r->members[k].name);
        print_metrics_row(name, &r->members[k].cv, "cv");
        print_metrics_row(name, &r->members[k].holdout, "held-out");
    }
    for (size_t k = 0; k < r->n_dropped; k++) {
        char name[64];
        snprintf(name, sizeof name, "%s (dropped)", r->dropped[k].name);
        print_metrics_row(name, &r->dropped[k].cv, "cv");
    }
    if (r->n_dropped > 0)
        printf("  dropped: adds nothing on out-of-fold data (the combination is as good without "
               "it)\n");
    if (r->n_untried > 0) {
        printf("  not tried:");
        for (size_t k = 0; k < r->n_untried; k++)
            printf("%s %s", k ? "," : "", r->untried[k]);
        printf(" (dropped as adding nothing in every training measured; --param "
               "all_candidates=1 tries them)\n");
    }
    for (int c = 0; c < CML_COMBINE__MAX; c++)
        if (r->combinations[c].tried)
            printf("  combination %-15s inner-cv log loss %.4f  macro F1 %.4f%s\n",
                   cml_combination_name((cml_combination)c), r->combinations[c].log_loss,
                   r->combinations[c].f1_macro, (int)r->combination == c ? "  (kept)" : "");
    if (r->has_detector)
        printf("  question detector: held-out precision %.4f recall %.4f (%zu training, %zu "
               "held-out sentences)\n",
               r->detector.precision, r->detector.recall, r->detector.n_train, r->detector.n_test);
    if (m->utterance_fitted) {
        printf("  utterance combiner on %zu training texts of several sentences:",
               r->utterance_rows);
        for (uint32_t k = 0; k < m->utterance.n_inputs; k++)
            printf(" %s=%+.2f", cml_utterance_input_names[k], m->utterance.coef[k]);
        printf(" bias=%+.2f\n", m->utterance.bias);
    }
}

/*
 * The non-questions the question detector learns from: --non-questions FILE ("none": no
 * detector), else nonquestions.csv beside the training data, else the bundled one. NULL when
 * there is none; path is the caller's buffer.
 */
static const char *non_questions_path(const char *option, const char *data, char *path,
                                      size_t cap) {
    if (option != NULL)
        return strcmp(option, "none") == 0 ? NULL : option;
    if (access(cml_path_beside(data, "nonquestions.csv", path, cap), R_OK) == 0)
        return path;
    snprintf(path, cap, "%s", CML_DATADIR "/nonquestions.csv");
    return access(path, R_OK) == 0 ? path : NULL;
}

/* Progress of a training job, written to the shared state for the status routes. */
typedef struct job_progress {
    cml_state *state;
    const char *task_id;
    char last_step[128];
} job_progress;

static void job_progress_update(void *ctx, double fraction, const char *step) {
    job_progress *j = ctx;
    /* Training ends at 98 %: publishing follows, and only the finished job shows 100 %. */
    if (strcmp(step, j->last_step) == 0 || strcmp(step, "done") == 0)
        return;
    snprintf(j->last_step, sizeof j->last_step, "%s", step);
    cml_state_job_progress(j->state, j->task_id, fraction * 98.0, step, (int64_t)getpid());
}

/*
 * The job's lease, renewed by a thread of its own: training steps can take longer than a lease,
 * and a trainer that dies stops renewing it, so any worker then fails the job.
 */
typedef struct job_lease {
    cml_state *state;
    const char *task_id;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    atomic_bool lost; /* the job ended without this trainer (its lease had expired) */
} job_lease;

static void *job_lease_renew(void *arg) {
    job_lease *l = arg;
    pthread_mutex_lock(&l->lock);
    while (!l->stop) {
        if (cml_state_job_heartbeat(l->state, l->task_id, (int64_t)time(NULL) + CML_JOB_LEASE_S) ==
            CML_ERR_NOT_FOUND)
            atomic_store(&l->lost, true);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += CML_JOB_HEARTBEAT_S;
        while (!l->stop && pthread_cond_timedwait(&l->wake, &l->lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

static void job_lease_start(job_lease *l, cml_state *state, const char *task_id) {
    l->state = state;
    l->task_id = task_id;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->wake, NULL);
    l->started = pthread_create(&l->thread, NULL, job_lease_renew, l) == 0;
}

/* Stops the renewals (before the job's end is recorded); a lease never started is a no-op. */
static void job_lease_stop(job_lease *l) {
    if (!l->started)
        return;
    pthread_mutex_lock(&l->lock);
    l->stop = true;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->thread, NULL);
    l->started = false;
    pthread_cond_destroy(&l->wake);
    pthread_mutex_destroy(&l->lock);
}

/* train --upload: the saved version and its data go to the blob store; the pointer moves. */
static cml_err train_upload(const cli_args *a, const char *path, const char *data, size_t rows,
                            cml_blob_publish_result *r, cml_diag *diag) {
    cml_blob_store *bs = NULL;
    cml_err err = cli_blob_open(a, true, &bs, diag);
    if (err == CML_OK)
        err = cml_blob_store_publish(bs, path, NULL, r, diag);
    if (err == CML_OK)
        err = cml_blob_store_put_training_data(bs, data, rows, NULL, diag);
    if (err == CML_OK)
        err = cml_blob_store_follow_latest(bs, r->type, diag);
    if (err != CML_OK) {
        cml_diag why = *diag;
        cml_diag_set(diag, err, "%s is saved, but the upload failed: %s", path, why.msg);
    }
    cml_blob_store_free(bs);
    return err;
}

int cmd_train(int argc, char **argv) {
    cli_args a;
    cml_diag diag = {{0}};
    cml_dataset *ds = NULL, *non_questions = NULL;
    cml_model *m = NULL;
    cml_train_report report = {0};
    cml_blob_publish_result up = {0};
    cml_train_options o;
    cml_model_type type;
    int rc = cli_parse_args(argc, argv, &a);
    if (rc)
        return rc;
    if (a.model == NULL || cml_model_type_parse(a.model, &type) != CML_OK) {
        fprintf(stderr, "%s train: --model must be classic or ensemble\n", cli_program);
        return EXIT_USAGE;
    }
    if (a.first_operand < argc) {
        fprintf(stderr, "%s train: unexpected argument '%s'\n", cli_program, argv[a.first_operand]);
        return EXIT_USAGE;
    }
    if (a.upload && cli_blob_connection(&a) == NULL) {
        fprintf(stderr,
                "%s train: --upload needs AZURE_STORAGE_CONNECTION_STRING or "
                "--connection-string\n",
                cli_program);
        return EXIT_USAGE;
    }
    const char *data = a.data ? a.data : cli_default_data();
    const char *out = a.out ? a.out : ".";
    cml_err err = cml_csv_read_file(data, NULL, &ds, &diag);
    if (err != CML_OK)
        return cli_fail(data, err, &diag);
    cml_train_options_init(&o, type);
    char nq_buf[PATH_MAX];
    const char *nq_path = non_questions_path(a.non_questions, data, nq_buf, sizeof nq_buf);
    if (nq_path != NULL) {
        cml_csv_options nq_opts = {.min_labels = 1, .min_rows = 1};
        if ((err = cml_csv_read_file(nq_path, &nq_opts, &non_questions, &diag)) != CML_OK) {
            rc = cli_fail(nq_path, err, &diag);
            goto done;
        }
        o.non_questions = non_questions;
    }
    for (size_t i = 0; i < a.n_params; i++) {
        char key[128];
        const char *eq = strchr(a.params[i], '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - a.params[i]), a.params[i]);
        if (cml_hyperparam_set(&o, key, eq + 1, &diag) != CML_OK) {
            fprintf(stderr, "%s train: %s\n", cli_program, diag.msg);
            rc = EXIT_USAGE;
            goto done;
        }
    }
    if (a.seed_set)
        o.seed = a.seed;
    if (a.folds_set)
        o.cv_folds = (size_t)a.folds;
    cli_progress prog;
    job_progress jp = {.task_id = a.job};
    job_lease lease = {0};
    cli_progress_init(&prog, stderr);
    o.progress = cli_progress_update;
    o.progress_ctx = &prog;
    if (a.job != NULL) {
        if (a.state_dir == NULL || (err = cml_state_open(a.state_dir, cml_state_url_from_env(),
                                                         &jp.state, &diag)) != CML_OK) {
            rc = a.state_dir ? cli_fail("cannot open the shared state", err, &diag) : EXIT_USAGE;
            goto done;
        }
        o.progress = job_progress_update;
        o.progress_ctx = &jp;
        job_lease_start(&lease, jp.state, a.job);
    }
    err = cml_train(ds, &o, &m, &report, &diag);
    /* A job already failed by a reaper does not publish a version behind its back. */
    if (err == CML_OK && atomic_load(&lease.lost))
        err = cml_diag_set(&diag, CML_ERR_TRAIN, "the job's lease expired during training");
    if (a.job == NULL)
        cli_progress_finish(&prog);
    char path[PATH_MAX];
    if (err == CML_OK) {
        cml_local_store_path(out, cml_model_type_name(type), m->version, path, sizeof path);
        err = cml_local_store_save(out, m, a.job == NULL, &diag);
    }
    if (err == CML_OK && a.upload)
        err = train_upload(&a, path, data, ds->n, &up, &diag);
    if (err == CML_OK && a.job != NULL) {
        cml_state_job_progress(jp.state, a.job, 99.0, "publishing", (int64_t)getpid());
        err = cml_catalog_publish(jp.state, out, m, a.job, (size_t)a.retain, &diag);
        /* A version that could not be published is not left behind as if it were one. */
        char latest[CML_VERSION_MAX] = "";
        cml_local_store_latest(out, cml_model_type_name(type), latest);
        if (err != CML_OK && strcmp(latest, m->version) != 0)
            cml_local_store_remove(out, cml_model_type_name(type), m->version);
    }
    if (a.job != NULL) {
        job_lease_stop(&lease);
        cml_state_job_finish(jp.state, a.job, err == CML_OK ? CML_JOB_COMPLETED : CML_JOB_FAILED,
                             err == CML_OK ? NULL : (diag.msg[0] ? diag.msg : cml_strerror(err)),
                             err == CML_OK ? m->version : NULL);
        cml_state_close(jp.state);
    }
    if (err != CML_OK) {
        rc = cli_fail("training failed", err, &diag);
        goto done;
    }
    if (a.json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "model_type", json_object_new_string(cml_model_type_name(type)));
        json_object_object_add(j, "version", json_object_new_string(m->version));
        json_object_object_add(j, "path", json_object_new_string(path));
        json_object_object_add(j, "sha256", json_object_new_string(m->file_sha256));
        json_object_object_add(j, "size_bytes", json_object_new_int64((int64_t)m->file_bytes));
        json_object_object_add(j, "metrics", json_tokener_parse(m->metrics_json));
        if (a.upload)
            json_object_object_add(j, "uploaded", json_object_new_boolean(up.pointer_moved));
        puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
        json_object_put(j);
    } else {
        printf("%s model %s: %zu training rows, %u held out, %.2f s\n", cml_model_type_name(type),
               m->version, (size_t)m->n_train, m->n_test, m->training_time_s);
        print_report(&report, m);
        printf("wrote %s (%zu bytes, sha256 %s)\n", path, m->file_bytes, m->file_sha256);
        if (a.upload)
            printf("uploaded %s/%s.model and the training data: the latest %s model of the blob "
                   "store\n",
                   cml_model_type_name(type), m->version, cml_model_type_name(type));
    }
    /* Measuring sets are scored, never fitted on: the model is already written. */
    for (size_t i = 0; i < a.n_measure; i++)
        if ((rc = cli_evaluate_file(m, a.measure[i], a.by, a.json)) != EXIT_SUCCESS)
            goto done;
    rc = EXIT_SUCCESS;
done:
    job_lease_stop(&lease);
    cml_dataset_free(non_questions);
    cml_train_report_release(&report);
    cml_model_release(m);
    cml_dataset_free(ds);
    return rc;
}
