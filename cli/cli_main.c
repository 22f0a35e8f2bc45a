/*
 * cultivate-ml: train, evaluate, inspect and use models from the command line.
 * Exit status: 0 success, 1 failure (bad data, unreadable model, ...), 2 usage error.
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "azure/blob_store.h"
#include "cli_commands.h"
#include "cli_progress.h"
#include "base/cml_alloc.h"
#include "learn/dataset.h"
#include "learn/hyperparams.h"
#include "model/model_catalog.h"
#include "state/shared_state.h"
#include "model/local_store.h"
#include "model/model.h"
#include "model/model_file.h"
#include "model/prediction_json.h"
#include "model/transcript_analysis.h"
#include "learn/trainer.h"

#define EXIT_USAGE 2

static const char *program = "cultivate-ml";

static void usage(FILE *out) {
    fprintf(out,
            "Usage: %s COMMAND [OPTIONS]\n"
            "\n"
            "Commands:\n"
            "  train    --model classic|ensemble [--data FILE] [--out DIR] [--seed N] [--folds K] "
            "[--json]\n"
            "           train on a text,label CSV (default: the bundled data), print the metrics,\n"
            "           write TYPE_VERSION.model and point TYPE_latest.model at it;\n"
            "           --measure FILE [--by COLUMN] then scores it on FILE (never fitted on);\n"
            "           --non-questions FILE|none: the question detector's negatives\n"
            "  evaluate --model FILE --data FILE [--by COLUMN] [--json]\n"
            "           score a model file on a labelled CSV\n"
            "  classify --model FILE [--json] [TEXT...]\n"
            "           classify each TEXT, or each line of standard input\n"
            "  analyze  --model FILE [--json|--csv] TRANSCRIPT\n"
            "           the questions of a lesson transcript (.vtt, .srt, Whisper .json, or\n"
            "           plain text) with times and labels, then the summary\n"
            "  info     [--json] FILE\n"
            "           describe a model file\n"
            "  upload   [--latest] [--json] FILE\n"
            "           upload a model file to the blob store as TYPE/VERSION.model; with\n"
            "           --latest also point TYPE_latest.model at it\n"
            "  download [--out DIR] [--json] TYPE [VERSION]\n"
            "           download the latest (or VERSION) model of TYPE from the blob store,\n"
            "           verified, into DIR (default: the current directory)\n"
            "  list     [--json] [TYPE]\n"
            "           list the model versions in the blob store\n"
            "  train ... --upload\n"
            "           also upload the new version and its data; move TYPE_latest.model to it\n"
            "  feedback export|counts [--state-dir DIR] [--out FILE]\n"
            "           the service's stored corrections as a text,label CSV, or counted\n"
            "\n"
            "Options:\n"
            "  --connection-string S  blob store (default: $AZURE_STORAGE_CONNECTION_STRING)\n"
            "  --container NAME       container (default: $AZURE_STORAGE_CONTAINER, ml-models)\n"
            "  -h, --help     show this help\n"
            "  -V, --version  show the version\n"
            "\n"
            "Exit status: 0 success, 1 failure, 2 usage error.\n",
            program);
}

static int fail(const char *what, cml_err err, const cml_diag *diag) {
    fprintf(stderr, "%s: %s: %s%s%s\n", program, what, cml_strerror(err),
            diag && diag->msg[0] ? ": " : "", diag && diag->msg[0] ? diag->msg : "");
    return EXIT_FAILURE;
}

static const char *default_data(void) {
    const char *env = getenv("CML_DATA");
    return env && *env ? env : CML_DATADIR "/questions.csv";
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
    const char *slash = strrchr(data, '/');
    snprintf(path, cap, "%.*snonquestions.csv", slash ? (int)(slash - data + 1) : 0, data);
    if (access(path, R_OK) == 0)
        return path;
    snprintf(path, cap, "%s", CML_DATADIR "/nonquestions.csv");
    return access(path, R_OK) == 0 ? path : NULL;
}

#define MAX_PARAMS 32

typedef struct cli_args {
    const char *model, *data, *out, *job, *state_dir;
    const char *by;         /* evaluate: also report by the values of this column */
    const char *measure[4]; /* train: sets to score the new model on, never to fit */
    size_t n_measure;
    const char *non_questions; /* train: the question detector's negatives, or "none" */
    unsigned long long seed;
    long folds, retain;
    bool json, csv, seed_set, folds_set;
    const char *conn, *container; /* blob store (upload, download, list, train --upload) */
    bool upload, latest;
    const char *params[MAX_PARAMS];
    size_t n_params;
    int first_operand;
} cli_args;

/* Parses the options shared by every command; returns 0 or EXIT_USAGE. */
static int parse_args(int argc, char **argv, cli_args *a) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"data", required_argument, NULL, 'd'},
        {"out", required_argument, NULL, 'o'},
        {"seed", required_argument, NULL, 's'},
        {"folds", required_argument, NULL, 'k'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"job", required_argument, NULL, 'J'},
        {"state-dir", required_argument, NULL, 'S'},
        {"param", required_argument, NULL, 'p'},
        {"retain", required_argument, NULL, 'r'},
        {"connection-string", required_argument, NULL, 'C'},
        {"container", required_argument, NULL, 'c'},
        {"upload", no_argument, NULL, 'U'},
        {"latest", no_argument, NULL, 'L'},
        {"by", required_argument, NULL, 'B'},
        {"csv", no_argument, NULL, 'V'},
        {"measure", required_argument, NULL, 'M'},
        {"non-questions", required_argument, NULL, 'N'},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof(*a));
    a->seed = 42;
    a->folds = 5;
    a->retain = 10;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:d:o:s:k:jh", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'm':
            a->model = optarg;
            break;
        case 'd':
            a->data = optarg;
            break;
        case 'o':
            a->out = optarg;
            break;
        case 's':
            errno = 0;
            a->seed = strtoull(optarg, &end, 10);
            if (errno || *end || optarg[0] == '-') {
                fprintf(stderr, "%s: --seed wants a non-negative integer\n", program);
                return EXIT_USAGE;
            }
            a->seed_set = true;
            break;
        case 'J':
            a->job = optarg;
            break;
        case 'B':
            a->by = optarg;
            break;
        case 'V':
            a->csv = true;
            break;
        case 'N':
            a->non_questions = optarg;
            break;
        case 'M':
            if (a->n_measure == sizeof(a->measure) / sizeof(a->measure[0])) {
                fprintf(stderr, "%s: --measure at most 4 times\n", program);
                return EXIT_USAGE;
            }
            a->measure[a->n_measure++] = optarg;
            break;
        case 'S':
            a->state_dir = optarg;
            break;
        case 'p':
            if (a->n_params == MAX_PARAMS || strchr(optarg, '=') == NULL) {
                fprintf(stderr, "%s: --param wants KEY=VALUE (at most %d)\n", program, MAX_PARAMS);
                return EXIT_USAGE;
            }
            a->params[a->n_params++] = optarg;
            break;
        case 'r':
            a->retain = strtol(optarg, &end, 10);
            if (*end || a->retain < 1) {
                fprintf(stderr, "%s: --retain wants a positive integer\n", program);
                return EXIT_USAGE;
            }
            break;
        case 'k':
            a->folds = strtol(optarg, &end, 10);
            if (*end || a->folds < 0 || a->folds == 1 || a->folds > 20) {
                fprintf(stderr, "%s: --folds wants 0 (none) or 2 to 20\n", program);
                return EXIT_USAGE;
            }
            a->folds_set = true;
            break;
        case 'j':
            a->json = true;
            break;
        case 'C':
            a->conn = optarg;
            break;
        case 'c':
            a->container = optarg;
            break;
        case 'U':
            a->upload = true;
            break;
        case 'L':
            a->latest = true;
            break;
        case 'h':
            usage(stdout);
            exit(EXIT_SUCCESS);
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    a->first_operand = optind;
    return 0;
}

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

/* ---- blob storage: upload, download, list, train --upload ----------------------------- */

/* The connection string (never printed), or NULL. */
static const char *blob_connection(const cli_args *a) {
    const char *c = a->conn ? a->conn : getenv("AZURE_STORAGE_CONNECTION_STRING");
    return c && *c ? c : NULL;
}

/* The client's retries and failures; the store's own lines repeat what the command prints. */
static void blob_log_stderr(void *ctx, const char *line) {
    (void)ctx;
    if (strncmp(line, "blob store: ", 12) != 0)
        fprintf(stderr, "%s: %s\n", program, line);
}

static const char *env_or_null(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Opens the blob store named by the options and environment; *out owned by the caller. */
static cml_err blob_open(const cli_args *a, bool create, cml_blob_store **out, cml_diag *diag) {
    static bool curl_ready;
    cml_blob_store_options o;
    *out = NULL;
    cml_blob_store_options_init(&o);
    o.connection_string = blob_connection(a);
    if (o.connection_string == NULL)
        return cml_diag_set(diag, CML_ERR_CONFIG,
                            "no connection string: set AZURE_STORAGE_CONNECTION_STRING or use "
                            "--connection-string");
    o.container = a->container ? a->container : env_or_null("AZURE_STORAGE_CONTAINER");
    o.ensemble_pointer = env_or_null("ENSEMBLE_LATEST_BLOB");
    o.classic_pointer = env_or_null("CLASSIC_LATEST_BLOB");
    o.create_container = create;
    o.client.ca_path = env_or_null("AZURE_CA_PATH");
    o.client.log = blob_log_stderr;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
            return cml_diag_set(diag, CML_ERR_INTERNAL, "curl_global_init failed");
        curl_ready = true;
        atexit(curl_global_cleanup);
    }
    return cml_blob_store_open(&o, out, diag);
}

/* Exit status of a blob command's failure: a configuration error is a usage error. */
static int blob_fail(const char *what, cml_err err, const cml_diag *diag) {
    fail(what, err, diag);
    return err == CML_ERR_CONFIG ? EXIT_USAGE : EXIT_FAILURE;
}

/* train --upload: the saved version and its data go to the blob store; the pointer moves. */
static cml_err train_upload(const cli_args *a, const char *path, const char *data, size_t rows,
                            cml_blob_publish_result *r, cml_diag *diag) {
    cml_blob_store *bs = NULL;
    cml_err err = blob_open(a, true, &bs, diag);
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

static int evaluate_file(const cml_model *m, const char *path, const char *by, bool json);

static int cmd_train(int argc, char **argv) {
    cli_args a;
    cml_diag diag = {{0}};
    cml_dataset *ds = NULL, *non_questions = NULL;
    cml_model *m = NULL;
    cml_train_report report = {0};
    cml_blob_publish_result up = {0};
    cml_train_options o;
    cml_model_type type;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    if (a.model == NULL || cml_model_type_parse(a.model, &type) != CML_OK) {
        fprintf(stderr, "%s train: --model must be classic or ensemble\n", program);
        return EXIT_USAGE;
    }
    if (a.first_operand < argc) {
        fprintf(stderr, "%s train: unexpected argument '%s'\n", program, argv[a.first_operand]);
        return EXIT_USAGE;
    }
    if (a.upload && blob_connection(&a) == NULL) {
        fprintf(stderr,
                "%s train: --upload needs AZURE_STORAGE_CONNECTION_STRING or "
                "--connection-string\n",
                program);
        return EXIT_USAGE;
    }
    const char *data = a.data ? a.data : default_data();
    const char *out = a.out ? a.out : ".";
    cml_err err = cml_csv_read_file(data, NULL, &ds, &diag);
    if (err != CML_OK)
        return fail(data, err, &diag);
    cml_train_options_init(&o, type);
    char nq_buf[PATH_MAX];
    const char *nq_path = non_questions_path(a.non_questions, data, nq_buf, sizeof nq_buf);
    if (nq_path != NULL) {
        cml_csv_options nq_opts = {.min_labels = 1, .min_rows = 1};
        if ((err = cml_csv_read_file(nq_path, &nq_opts, &non_questions, &diag)) != CML_OK) {
            rc = fail(nq_path, err, &diag);
            goto done;
        }
        o.non_questions = non_questions;
    }
    for (size_t i = 0; i < a.n_params; i++) {
        char key[128];
        const char *eq = strchr(a.params[i], '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - a.params[i]), a.params[i]);
        if (cml_hyperparam_set(&o, key, eq + 1, &diag) != CML_OK) {
            fprintf(stderr, "%s train: %s\n", program, diag.msg);
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
    cli_progress_init(&prog, stderr);
    o.progress = cli_progress_update;
    o.progress_ctx = &prog;
    if (a.job != NULL) {
        if (a.state_dir == NULL ||
            (err = cml_state_open(a.state_dir, &jp.state, &diag)) != CML_OK) {
            rc = a.state_dir ? fail("cannot open the shared state", err, &diag) : EXIT_USAGE;
            goto done;
        }
        o.progress = job_progress_update;
        o.progress_ctx = &jp;
    }
    err = cml_train(ds, &o, &m, &report, &diag);
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
        cml_state_job_finish(jp.state, a.job, err == CML_OK ? "completed" : "failed",
                             err == CML_OK ? NULL : (diag.msg[0] ? diag.msg : cml_strerror(err)),
                             err == CML_OK ? m->version : NULL);
        cml_state_close(jp.state);
    }
    if (err != CML_OK) {
        rc = fail("training failed", err, &diag);
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
        if ((rc = evaluate_file(m, a.measure[i], a.by, a.json)) != EXIT_SUCCESS)
            goto done;
    rc = EXIT_SUCCESS;
done:
    cml_dataset_free(non_questions);
    cml_train_report_release(&report);
    cml_model_release(m);
    cml_dataset_free(ds);
    return rc;
}

static void print_evaluation(const cml_model *m, const cml_metrics *met) {
    printf("  accuracy %.4f  macro F1 %.4f  MCC %.4f  ROC AUC %.4f  log loss %.4f\n", met->accuracy,
           met->f1_macro, met->mcc, met->roc_auc, met->log_loss);
    printf("  %-8s %9s %9s %9s %8s\n", "label", "precision", "recall", "f1", "support");
    for (size_t c = 0; c < met->n_labels; c++)
        printf("  %-8s %9.4f %9.4f %9.4f %8zu\n", m->labels[c], met->per_class[c].precision,
               met->per_class[c].recall, met->per_class[c].f1, met->per_class[c].support);
    printf("  confusion (rows actual, columns predicted):\n");
    for (size_t c = 0; c < met->n_labels; c++) {
        printf("  %-8s", m->labels[c]);
        for (size_t k = 0; k < met->n_labels; k++)
            printf(" %6zu", met->confusion[c * met->n_labels + k]);
        printf("\n");
    }
}

/* Metrics of the rows of ds whose group is value; into *out (caller releases). */
static cml_err evaluate_group(const cml_model *m, const cml_dataset *ds, const char *value,
                              cml_metrics *out, cml_diag *diag) {
    size_t *idx = cml_malloc(ds->n * sizeof(size_t)), n = 0;
    if (idx == NULL)
        return CML_ERR_NOMEM;
    for (size_t i = 0; i < ds->n; i++)
        if (strcmp(ds->groups[i], value) == 0)
            idx[n++] = i;
    cml_dataset *sub = cml_dataset_subset(ds, idx, n);
    cml_free(idx);
    if (sub == NULL)
        return CML_ERR_NOMEM;
    cml_err err = cml_model_evaluate(m, sub, out, diag);
    cml_dataset_free(sub);
    return err;
}

/* Scores m on the CSV at path (by the values of column by, when set) and prints it. */
static int evaluate_file(const cml_model *m, const char *path, const char *by, bool json) {
    cml_diag diag = {{0}};
    cml_dataset *ds = NULL;
    cml_metrics met = {0};
    json_object *out = NULL, *groups = NULL;
    int rc;
    cml_csv_options opts = {.min_labels = 1, .min_rows = 1, .group_column = by};
    cml_err err = cml_csv_read_file(path, &opts, &ds, &diag);
    if (err != CML_OK)
        return fail(path, err, &diag);
    if ((err = cml_model_evaluate(m, ds, &met, &diag)) != CML_OK) {
        rc = fail("evaluation failed", err, &diag);
        goto done;
    }
    if (json) {
        char *j = cml_metrics_to_json(&met, m->labels);
        out = j ? json_tokener_parse(j) : NULL;
        cml_free(j);
        if (out == NULL) {
            rc = fail("evaluation failed", CML_ERR_NOMEM, NULL);
            goto done;
        }
        if (by != NULL)
            json_object_object_add(out, "by", groups = json_object_new_object());
    } else {
        printf("%s model %s on %zu rows of %s\n", cml_model_type_name(m->type), m->version, met.n,
               path);
        print_evaluation(m, &met);
    }
    /* By group, in the order the values first appear. */
    for (size_t i = 0; by != NULL && i < ds->n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(ds->groups[j], ds->groups[i]) == 0;
        if (seen)
            continue;
        cml_metrics g = {0};
        if ((err = evaluate_group(m, ds, ds->groups[i], &g, &diag)) != CML_OK) {
            rc = fail("evaluation failed", err, &diag);
            goto done;
        }
        if (json) {
            char *j = cml_metrics_to_json(&g, m->labels);
            json_object_object_add(groups, ds->groups[i], j ? json_tokener_parse(j) : NULL);
            cml_free(j);
        } else {
            printf("%s=%s: %zu rows\n", by, ds->groups[i], g.n);
            print_evaluation(m, &g);
        }
        cml_eval_release(&g);
    }
    if (json)
        puts(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN));
    rc = EXIT_SUCCESS;
done:
    json_object_put(out);
    cml_eval_release(&met);
    cml_dataset_free(ds);
    return rc;
}

static int cmd_evaluate(int argc, char **argv) {
    cli_args a;
    cml_diag diag = {{0}};
    cml_model *m = NULL;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    if (a.model == NULL || a.data == NULL || a.first_operand < argc) {
        fprintf(stderr, "%s evaluate: needs --model FILE and --data FILE\n", program);
        return EXIT_USAGE;
    }
    cml_err err = cml_model_load(a.model, &m, &diag);
    if (err != CML_OK)
        return fail(a.model, err, &diag);
    rc = evaluate_file(m, a.data, a.by, a.json);
    cml_model_release(m);
    return rc;
}

static int classify_one(const cml_model *m, cml_feature_scratch *s, const char *text, bool json) {
    cml_prediction p;
    cml_err err = cml_model_predict(m, s, text, strlen(text), &p);
    if (err != CML_OK)
        return fail("classification failed", err, NULL);
    if (json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "text", json_object_new_string(text));
        json_object_object_add(o, "classification", json_object_new_string(m->labels[p.label]));
        json_object_object_add(o, "confidence", json_object_new_double(p.confidence));
        json_object *probs = json_object_new_object();
        for (size_t c = 0; c < m->n_labels; c++)
            json_object_object_add(probs, m->labels[c], json_object_new_double(p.probs[c]));
        json_object_object_add(o, "probabilities", probs);
        json_object *questions = cml_prediction_questions_json(m, &p, text);
        if (questions != NULL)
            json_object_object_add(o, "questions", questions);
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else {
        printf("%s\t%.4f\t%s\n", m->labels[p.label], p.confidence, text);
    }
    return EXIT_SUCCESS;
}

/* The transcript format of a file, by its extension (plain text when none matches). */
static cml_transcript_format format_of_path(const char *path) {
    const char *dot = strrchr(path, '.');
    if (dot != NULL && strcasecmp(dot, ".vtt") == 0)
        return CML_TRANSCRIPT_VTT;
    if (dot != NULL && strcasecmp(dot, ".srt") == 0)
        return CML_TRANSCRIPT_SRT;
    if (dot != NULL && strcasecmp(dot, ".json") == 0)
        return CML_TRANSCRIPT_WHISPER_JSON;
    return CML_TRANSCRIPT_PLAIN;
}

static void print_time(double s) {
    if (isnan(s))
        printf("%9s", "-");
    else
        printf("%02d:%02d:%02d", (int)(s / 3600), (int)fmod(s / 60, 60), (int)fmod(s, 60));
    printf(" ");
}

/* A CSV field with RFC 4180 quoting. */
static void csv_field(const char *s, bool last) {
    if (s == NULL)
        s = "";
    bool quote = strpbrk(s, ",\"\r\n") != NULL;
    if (quote) {
        putchar('"');
        for (; *s; s++) {
            if (*s == '"')
                putchar('"');
            putchar(*s);
        }
        putchar('"');
    } else {
        fputs(s, stdout);
    }
    putchar(last ? '\n' : ',');
}

static void print_analysis(const cml_model *m, const cml_transcript *t, const cml_analysis *a,
                           bool csv) {
    json_object *o = cml_analysis_json(m, t, a), *sum, *v;
    json_object_object_get_ex(o, "summary", &sum);
    if (csv) {
        printf("index,start_s,end_s,speaker,text,classification,confidence\n");
        for (size_t i = 0; i < a->n; i++) {
            const cml_found_question *q = &a->questions[i];
            char num[3][32];
            snprintf(num[0], sizeof num[0], "%zu", i);
            snprintf(num[1], sizeof num[1], isnan(q->start_s) ? "" : "%.3f", q->start_s);
            snprintf(num[2], sizeof num[2], isnan(q->end_s) ? "" : "%.3f", q->end_s);
            csv_field(num[0], false);
            csv_field(num[1], false);
            csv_field(num[2], false);
            csv_field(q->speaker, false);
            csv_field(q->text, false);
            csv_field(m->labels[q->label], false);
            snprintf(num[0], sizeof num[0], "%.4f", q->confidence);
            csv_field(num[0], true);
        }
    } else {
        printf("%5s %-9s%-9s %-12s %-4s %6s  %s\n", "#", "start", " end", "speaker", "label",
               "conf", "question");
        for (size_t i = 0; i < a->n; i++) {
            const cml_found_question *q = &a->questions[i];
            printf("%5zu ", i);
            print_time(q->start_s);
            print_time(q->end_s);
            printf("%-12.12s %-4s %6.3f  %s\n", q->speaker ? q->speaker : "-", m->labels[q->label],
                   q->confidence, q->text);
        }
        printf("summary:");
        json_object_object_foreach(sum, key, val) {
            if (strcmp(key, "by_speaker") == 0)
                continue;
            printf(" %s=%s", key, val ? json_object_to_json_string(val) : "null");
        }
        printf("\n");
        if (json_object_object_get_ex(sum, "by_speaker", &v)) {
            json_object_object_foreach(v, name, e) {
                printf("  %s: %s\n", name,
                       json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
            }
        }
    }
    json_object_put(o);
}

static int cmd_analyze(int argc, char **argv) {
    cli_args a;
    cml_diag diag = {{0}};
    cml_model *m = NULL;
    cml_transcript *t = NULL;
    cml_analysis *an = NULL;
    cml_feature_scratch *s = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    if (a.model == NULL || a.first_operand != argc - 1) {
        fprintf(stderr, "%s analyze: needs --model FILE and one TRANSCRIPT\n", program);
        return EXIT_USAGE;
    }
    const char *path = argv[a.first_operand];
    cml_err err = cml_model_load(a.model, &m, &diag);
    if (err != CML_OK)
        return fail(a.model, err, &diag);
    if ((err = cml_read_file(path, (size_t)64 << 20, &buf, &len, &diag)) != CML_OK ||
        (err = cml_transcript_parse((const char *)buf, len, format_of_path(path), NULL, &t,
                                    &diag)) != CML_OK) {
        rc = fail(path, err, &diag);
        goto done;
    }
    if ((s = cml_feature_scratch_new()) == NULL ||
        (err = cml_transcript_analyze(m, s, t, NULL, &an, &diag)) != CML_OK) {
        rc = fail("analysis failed", s ? err : CML_ERR_NOMEM, &diag);
        goto done;
    }
    if (a.json) {
        json_object *o = cml_analysis_json(m, t, an);
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else {
        print_analysis(m, t, an, a.csv);
    }
    rc = EXIT_SUCCESS;
done:
    cml_analysis_free(an);
    cml_transcript_free(t);
    cml_feature_scratch_free(s);
    cml_free(buf);
    cml_model_release(m);
    return rc;
}

static int cmd_classify(int argc, char **argv) {
    cli_args a;
    cml_diag diag = {{0}};
    cml_model *m = NULL;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    if (a.model == NULL) {
        fprintf(stderr, "%s classify: needs --model FILE\n", program);
        return EXIT_USAGE;
    }
    cml_err err = cml_model_load(a.model, &m, &diag);
    if (err != CML_OK)
        return fail(a.model, err, &diag);
    cml_feature_scratch *s = cml_feature_scratch_new();
    if (s == NULL) {
        cml_model_release(m);
        return fail("classify", CML_ERR_NOMEM, NULL);
    }
    rc = EXIT_SUCCESS;
    if (a.first_operand < argc) {
        for (int i = a.first_operand; i < argc && rc == EXIT_SUCCESS; i++)
            rc = classify_one(m, s, argv[i], a.json);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (rc == EXIT_SUCCESS && (n = getline(&line, &cap, stdin)) >= 0) {
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                line[--n] = '\0';
            if (n > 0)
                rc = classify_one(m, s, line, a.json);
        }
        free(line);
    }
    cml_feature_scratch_free(s);
    cml_model_release(m);
    return rc;
}

static int cmd_info(int argc, char **argv) {
    cli_args a;
    cml_diag diag = {{0}};
    cml_model *m = NULL;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    if (a.first_operand != argc - 1) {
        fprintf(stderr, "%s info: needs exactly one model FILE\n", program);
        return EXIT_USAGE;
    }
    const char *path = argv[a.first_operand];
    cml_err err = cml_model_load(path, &m, &diag);
    if (err != CML_OK)
        return fail(path, err, &diag);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "model_type", json_object_new_string(cml_model_type_name(m->type)));
    json_object_object_add(o, "version", json_object_new_string(m->version));
    json_object_object_add(o, "created_at", json_object_new_int64(m->created_at));
    json_object_object_add(o, "data_sha256", json_object_new_string(m->data_sha256));
    json_object_object_add(o, "file_sha256", json_object_new_string(m->file_sha256));
    json_object_object_add(o, "size_bytes", json_object_new_int64((int64_t)m->file_bytes));
    json_object_object_add(o, "n_train", json_object_new_int64(m->n_train));
    json_object_object_add(o, "n_test", json_object_new_int64(m->n_test));
    json_object_object_add(o, "features",
                           json_object_new_int64((int64_t)cml_featurizer_n_cols(m->features)));
    json_object_object_add(o, "voting", json_object_new_string(cml_model_voting(m)));
    json_object *labels = json_object_new_array(), *members = json_object_new_array();
    for (size_t c = 0; c < m->n_labels; c++)
        json_object_array_add(labels, json_object_new_string(m->labels[c]));
    for (size_t k = 0; k < m->n_members; k++) {
        json_object *mo = json_object_new_object();
        json_object_object_add(mo, "name", json_object_new_string(m->members[k].ops->name));
        if (m->combination == CML_COMBINE_STACKING)
            json_object_object_add(mo, "stacker_coef", json_object_new_double(m->stacker.coef[k]));
        else
            json_object_object_add(mo, "weight", json_object_new_double(m->members[k].weight));
        json_object_array_add(members, mo);
    }
    json_object_object_add(o, "utterance_combiner", json_object_new_boolean(m->utterance_fitted));
    json_object_object_add(o, "labels", labels);
    json_object_object_add(o, "members", members);
    json_object *metrics = m->metrics_json ? json_tokener_parse(m->metrics_json) : NULL;
    json_object *hold = NULL;
    if (metrics)
        json_object_object_get_ex(metrics, "holdout", &hold);
    if (a.json) {
        json_object_object_add(o, "metrics", json_object_get(metrics));
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
    } else {
        printf("%s model %s\n", cml_model_type_name(m->type), m->version);
        printf("  file        %s (%zu bytes)\n  sha256      %s\n", path, m->file_bytes,
               m->file_sha256);
        printf("  trained on  %u rows (data sha256 %.16s...), %u held out\n", m->n_train,
               m->data_sha256, m->n_test);
        printf("  features    %zu columns\n  voting      %s\n  members    ",
               cml_featurizer_n_cols(m->features), cml_model_voting(m));
        for (size_t k = 0; k < m->n_members; k++)
            printf(m->combination == CML_COMBINE_STACKING ? " %s(%+.2f)" : " %s(%.2f)",
                   m->members[k].ops->name,
                   m->combination == CML_COMBINE_STACKING ? m->stacker.coef[k]
                                                          : m->members[k].weight);
        printf("\n  utterance   %s\n", m->utterance_fitted
                                           ? "fitted combiner over the questions of a text"
                                           : "whole text only");
        json_object *v;
        if (hold && json_object_object_get_ex(hold, "f1_macro", &v))
            printf("  held-out    macro F1 %.4f", json_object_get_double(v));
        if (hold && json_object_object_get_ex(hold, "accuracy", &v))
            printf(", accuracy %.4f\n", json_object_get_double(v));
    }
    json_object_put(metrics);
    json_object_put(o);
    cml_model_release(m);
    return rc;
}

static int cmd_upload(int argc, char **argv) {
    cli_args a;
    cml_diag diag = {{0}};
    cml_blob_store *bs = NULL;
    cml_blob_publish_result r = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    if (a.first_operand != argc - 1) {
        fprintf(stderr, "%s upload: needs exactly one model FILE\n", program);
        return EXIT_USAGE;
    }
    const char *path = argv[a.first_operand];
    cml_err err = blob_open(&a, true, &bs, &diag);
    if (err != CML_OK)
        return blob_fail("cannot open the blob store", err, &diag);
    if (a.latest)
        err = cml_blob_store_publish(bs, path, NULL, &r, &diag);
    else
        err = cml_blob_store_upload_version(bs, path, &r, &diag);
    if (err == CML_OK && a.latest)
        err = cml_blob_store_follow_latest(bs, r.type, &diag);
    if (err != CML_OK) {
        rc = fail(path, err, &diag);
        goto done;
    }
    char name[128];
    cml_blob_store_version_name(r.type, r.version, name, sizeof name);
    if (a.json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "container",
                               json_object_new_string(cml_blob_store_container(bs)));
        json_object_object_add(j, "blob", json_object_new_string(name));
        json_object_object_add(j, "model_type",
                               json_object_new_string(cml_model_type_name(r.type)));
        json_object_object_add(j, "version", json_object_new_string(r.version));
        json_object_object_add(j, "sha256", json_object_new_string(r.sha256));
        json_object_object_add(j, "size_bytes", json_object_new_int64((int64_t)r.bytes));
        json_object_object_add(j, "existed", json_object_new_boolean(r.version_existed));
        json_object_object_add(j, "latest", json_object_new_boolean(r.pointer_moved));
        puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
        json_object_put(j);
    } else {
        printf("%s %s/%s (%llu bytes, sha256 %s)\n",
               r.version_existed ? "already stored:" : "uploaded", cml_blob_store_container(bs),
               name, (unsigned long long)r.bytes, r.sha256);
        if (r.pointer_moved)
            printf("%s names %s\n", cml_blob_store_pointer(bs, r.type), r.version);
    }
    rc = EXIT_SUCCESS;
done:
    cml_blob_store_free(bs);
    return rc;
}

static int cmd_download(int argc, char **argv) {
    cli_args a;
    cml_diag diag = {{0}};
    cml_blob_store *bs = NULL;
    cml_blob_sync_result r = {0};
    cml_model_type type;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    int nops = argc - a.first_operand;
    if (nops < 1 || nops > 2 || cml_model_type_parse(argv[a.first_operand], &type) != CML_OK) {
        fprintf(stderr, "%s download: needs TYPE (classic or ensemble) and an optional VERSION\n",
                program);
        return EXIT_USAGE;
    }
    const char *version = nops == 2 ? argv[a.first_operand + 1] : NULL;
    if (version != NULL && !cml_version_valid(version)) {
        fprintf(stderr, "%s download: '%s' is not a valid version\n", program, version);
        return EXIT_USAGE;
    }
    const char *out = a.out ? a.out : ".";
    cml_err err = blob_open(&a, false, &bs, &diag);
    if (err != CML_OK)
        return blob_fail("cannot open the blob store", err, &diag);
    if (version != NULL)
        err = cml_blob_store_fetch_version(bs, type, version, out, false, &r, &diag);
    else
        err = cml_blob_store_ensure_local(bs, type, out, NULL, &r, &diag);
    if (err != CML_OK) {
        rc = fail("download failed", err, &diag);
        goto done;
    }
    if (r.status == CML_BLOB_SYNC_NO_MODEL) {
        fprintf(stderr, "%s: the blob store has no %s model (no %s/%s)\n", program,
                cml_model_type_name(type), cml_blob_store_container(bs),
                cml_blob_store_pointer(bs, type));
        rc = EXIT_FAILURE;
        goto done;
    }
    if (a.json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "model_type", json_object_new_string(cml_model_type_name(type)));
        json_object_object_add(j, "version", json_object_new_string(r.version));
        json_object_object_add(j, "path", json_object_new_string(r.path));
        json_object_object_add(j, "sha256", json_object_new_string(r.sha256));
        json_object_object_add(j, "size_bytes", json_object_new_int64((int64_t)r.bytes));
        json_object_object_add(j, "status",
                               json_object_new_string(cml_blob_sync_status_name(r.status)));
        puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
        json_object_put(j);
    } else {
        printf("%s %s (%llu bytes, sha256 %s)\n",
               r.status == CML_BLOB_SYNC_DOWNLOADED ? "downloaded" : "already present:", r.path,
               (unsigned long long)r.bytes, r.sha256);
    }
    rc = EXIT_SUCCESS;
done:
    cml_blob_sync_result_release(&r);
    cml_blob_store_free(bs);
    return rc;
}

static int cmd_list(int argc, char **argv) {
    cli_args a;
    cml_diag diag = {{0}};
    cml_blob_store *bs = NULL;
    cml_model_type only = 0;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    int nops = argc - a.first_operand;
    if (nops > 1 || (nops == 1 && cml_model_type_parse(argv[a.first_operand], &only) != CML_OK)) {
        fprintf(stderr, "%s list: takes at most one TYPE (classic or ensemble)\n", program);
        return EXIT_USAGE;
    }
    cml_err err = blob_open(&a, false, &bs, &diag);
    if (err != CML_OK)
        return blob_fail("cannot open the blob store", err, &diag);
    const cml_model_type types[2] = {CML_MODEL_CLASSIC, CML_MODEL_ENSEMBLE};
    json_object *j = json_object_new_object(), *models = json_object_new_array(),
                *latest = json_object_new_object();
    size_t total = 0;
    rc = EXIT_SUCCESS;
    for (size_t t = 0; t < 2 && rc == EXIT_SUCCESS; t++) {
        if (only != 0 && types[t] != only)
            continue;
        cml_blob_version *v = NULL;
        size_t n = 0;
        char cur[CML_VERSION_MAX];
        const char *tn = cml_model_type_name(types[t]);
        err = cml_blob_store_list_versions(bs, types[t], true, &v, &n, cur, &diag);
        if (err != CML_OK) {
            rc = fail(err == CML_ERR_NOT_FOUND ? "no such container" : "cannot list the blob store",
                      err, &diag);
            break;
        }
        json_object_object_add(latest, tn, cur[0] ? json_object_new_string(cur) : NULL);
        for (size_t i = 0; i < n; i++) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "model_type", json_object_new_string(tn));
            json_object_object_add(o, "version", json_object_new_string(v[i].version));
            json_object_object_add(o, "size_bytes", json_object_new_int64((int64_t)v[i].bytes));
            json_object_object_add(o, "sha256", json_object_new_string(v[i].sha256));
            json_object_object_add(o, "last_modified", json_object_new_string(v[i].last_modified));
            json_object_object_add(o, "latest", json_object_new_boolean(v[i].latest));
            json_object_array_add(models, o);
            if (!a.json)
                printf("%-8s %-20s %10llu  %s%s\n", tn, v[i].version,
                       (unsigned long long)v[i].bytes, v[i].sha256[0] ? v[i].sha256 : "-",
                       v[i].latest ? "  latest" : "");
        }
        total += n;
        cml_free(v);
    }
    json_object_object_add(j, "container", json_object_new_string(cml_blob_store_container(bs)));
    json_object_object_add(j, "latest", latest);
    json_object_object_add(j, "models", models);
    if (rc == EXIT_SUCCESS && a.json)
        puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
    else if (rc == EXIT_SUCCESS && total == 0)
        fprintf(stderr, "%s: no models in container %s\n", program, cml_blob_store_container(bs));
    json_object_put(j);
    cml_blob_store_free(bs);
    return rc;
}

int main(int argc, char **argv) {
    /* XGBoost's OpenMP threads spin while idle by default: on a busy two-core server that
       slows training (and whatever serves beside it) many times over. */
    setenv("OMP_WAIT_POLICY", "passive", 0);
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return EXIT_SUCCESS;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
        printf("%s %s\n", program, PACKAGE_VERSION);
        return EXIT_SUCCESS;
    }
    if (!strcmp(cmd, "train"))
        return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "evaluate"))
        return cmd_evaluate(argc - 1, argv + 1);
    if (!strcmp(cmd, "classify"))
        return cmd_classify(argc - 1, argv + 1);
    if (!strcmp(cmd, "analyze"))
        return cmd_analyze(argc - 1, argv + 1);
    if (!strcmp(cmd, "info"))
        return cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "upload"))
        return cmd_upload(argc - 1, argv + 1);
    if (!strcmp(cmd, "download"))
        return cmd_download(argc - 1, argv + 1);
    if (!strcmp(cmd, "list"))
        return cmd_list(argc - 1, argv + 1);
    if (!strcmp(cmd, "feedback"))
        return cli_feedback(argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown command '%s'\n", program, cmd);
    usage(stderr);
    return EXIT_USAGE;
}
