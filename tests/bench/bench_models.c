/*
 * Model benchmark (`make bench`): for each model type this build has, the
 * training time on the bundled data (cross-validation included), the model
 * file size, single-question prediction latency (p50, p99, features
 * included), the time of a batch of 1,000 questions, and the resident memory
 * of a process holding every model. It prints figures and never fails on
 * them: targets are read off the output, not asserted.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/file_io.h"
#include "learn/dataset.h"
#include "model/model_file.h"
#include "learn/trainer.h"
#include "text/utterance.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

int main(void) {
    const char *path = getenv("CML_TEST_DATA") ? getenv("CML_TEST_DATA") : "data/questions.csv";
    cml_dataset *ds = NULL;
    cml_diag d = {{0}};
    if (cml_csv_read_file(path, NULL, &ds, &d) != CML_OK) {
        fprintf(stderr, "bench: %s: %s\n", path, d.msg);
        return 1;
    }
    /* The question detector's negatives beside the data, as the CLI finds them. */
    char nq_path[4096];
    cml_path_beside(path, "nonquestions.csv", nq_path, sizeof nq_path);
    cml_dataset *non_questions = NULL;
    cml_csv_options nq_opts = {.min_labels = 1, .min_rows = 1};
    if (cml_csv_read_file(nq_path, &nq_opts, &non_questions, &d) != CML_OK)
        non_questions = NULL;
    printf("bench: %zu rows from %s, %zu non-questions\n", ds->n, path,
           non_questions ? non_questions->n : 0);
    printf("%-9s %10s %10s %10s %10s %10s %12s %9s %9s\n", "model", "train_s", "file_MB", "p50_us",
           "p99_us", "mean_us", "batch1000_ms", "heldoutF1", "AUC");
    cml_model *models[3] = {NULL};
    for (int t = CML_MODEL_CLASSIC; t <= CML_MODEL_ENSEMBLE; t++) {
        const cml_member_ops *ops[CML_MAX_MEMBERS];
        if (cml_model_type_members((cml_model_type)t, ops, CML_MAX_MEMBERS) == 0) {
            printf("%-9s (not in this build)\n", cml_model_type_name((cml_model_type)t));
            continue;
        }
        cml_train_options o;
        cml_train_report rep;
        cml_model *m = NULL;
        cml_train_options_init(&o, (cml_model_type)t);
        o.non_questions = non_questions;
        double t0 = now();
        if (cml_train(ds, &o, &m, &rep, &d) != CML_OK) {
            fprintf(stderr, "bench: training failed: %s\n", d.msg);
            return 1;
        }
        double train_s = now() - t0;
        uint8_t *buf;
        size_t len;
        cml_model_serialize(m, &buf, &len);
        cml_model *loaded = NULL;
        cml_model_deserialize(buf, len, &loaded, &d);
        free(buf);
        cml_model_release(m);
        cml_feature_scratch *s = cml_feature_scratch_new();
        enum { N = 20000 };
        static double lat[N];
        cml_prediction p;
        for (size_t i = 0; i < 500; i++) /* warm caches */
            cml_model_predict(loaded, s, ds->texts[i], strlen(ds->texts[i]), &p);
        /* Single questions (texts of one sentence) for the latency bar; clips and the rest are
           timed apart below, as they classify each of their questions too. */
        static size_t single[8192];
        size_t n_single = 0;
        for (size_t i = 0; i < ds->n && n_single < 8192; i++) {
            cml_utterance u;
            cml_utterance_split(ds->texts[i], strlen(ds->texts[i]), &u);
            if (u.n_parts == 1)
                single[n_single++] = i;
        }
        double sum = 0;
        for (size_t i = 0; i < N; i++) {
            const char *text = ds->texts[single[(i * 7919) % n_single]];
            double a = now();
            cml_model_predict(loaded, s, text, strlen(text), &p);
            lat[i] = (now() - a) * 1e6;
            sum += lat[i];
        }
        static double multi_lat[N];
        size_t n_multi = 0;
        for (size_t i = 0; i < N; i++) {
            const char *text = ds->texts[(i * 7919) % ds->n];
            if (strlen(text) == 0)
                continue;
            double a = now();
            cml_model_predict(loaded, s, text, strlen(text), &p);
            if (p.n_sentences > 1)
                multi_lat[n_multi++] = (now() - a) * 1e6;
        }
        qsort(multi_lat, n_multi, sizeof(double), cmp_double);
        qsort(lat, N, sizeof(double), cmp_double);
        double b0 = now();
        for (size_t i = 0; i < 1000; i++)
            cml_model_predict(loaded, s, ds->texts[i], strlen(ds->texts[i]), &p);
        double batch_ms = (now() - b0) * 1e3;
        const cml_metrics *h = &rep.members[rep.n_members].holdout;
        printf("%-9s %10.2f %10.2f %10.1f %10.1f %10.1f %12.2f %9.4f %9.4f\n",
               cml_model_type_name((cml_model_type)t), train_s, (double)len / 1e6, lat[N / 2],
               lat[N * 99 / 100], sum / N, batch_ms, h->f1_macro, h->roc_auc);
        if (n_multi > 0)
            printf("    texts of several sentences (each question classified too): p50 %.1f us, "
                   "p99 %.1f us\n",
                   multi_lat[n_multi / 2], multi_lat[n_multi * 99 / 100]);
        for (size_t k = 0; k <= rep.n_members; k++) {
            const cml_member_report *mr = &rep.members[k];
            printf("    %-22s cv F1 %6.4f  held-out F1 %6.4f  recall", mr->name,
                   mr->cv.n ? mr->cv.f1_macro : 0.0, mr->holdout.f1_macro);
            for (size_t c = 0; c < mr->holdout.n_labels; c++)
                printf(" %s %6.4f", ds->label_names[c], mr->holdout.per_class[c].recall);
            printf("  AUC %6.4f\n", mr->holdout.roc_auc);
        }
        cml_train_report_release(&rep);
        cml_feature_scratch_free(s);
        models[t] = loaded;
    }
    printf("resident memory with every model loaded: %.1f MiB (this process, VmRSS)\n",
           (double)rss_kib() / 1024.0);
    for (int t = 0; t < 3; t++)
        cml_model_release(models[t]);
    cml_dataset_free(ds);
    return 0;
}
