#include "config.h"

#include "learn/trainer.h"

#include <json-c/json.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cml_alloc.h"
#include "base/fork_jobs.h"
#include "learn/combination.h"
#include "learn/data_split.h"
#include "model/model_file.h"

void cml_train_options_init(cml_train_options *o, cml_model_type type) {
    memset(o, 0, sizeof(*o));
    o->type = type;
    o->seed = 42;
    o->test_frac = 0.2;
    o->cv_folds = 5;
    o->n_threads = 2;
}

/*
 * A model type's roster. The ensemble's extra members (the word-view regression, the forest
 * and the network) were dropped by the combination as adding nothing on out-of-fold data in
 * every training measured (README, "Models"), while costing more than half of the
 * cross-validation: they are tried only when asked for (hyperparameter all_candidates).
 */
typedef struct roster_entry {
    cml_member_kind kind;
    bool extra;
} roster_entry;

static size_t roster_of(cml_model_type type, const roster_entry **out) {
    static const roster_entry classic[] = {{CML_MEMBER_LOGREG, false}};
    static const roster_entry ensemble[] = {{CML_MEMBER_LOGREG, false},
                                            {CML_MEMBER_LINEAR_SVM, false},
                                            {CML_MEMBER_LOGREG_WORDS, true},
                                            {CML_MEMBER_LOGREG_CHARS, false},
                                            {CML_MEMBER_BOOSTED_TREES, false},
                                            {CML_MEMBER_RANDOM_FOREST, true},
                                            {CML_MEMBER_MLP, true}};
    *out = type == CML_MODEL_ENSEMBLE ? ensemble : classic;
    return type == CML_MODEL_ENSEMBLE ? sizeof(ensemble) / sizeof(ensemble[0]) : 1;
}

size_t cml_model_type_members(cml_model_type type, const cml_member_ops **ops, size_t cap) {
    const roster_entry *roster;
    size_t n = roster_of(type, &roster), got = 0;
    for (size_t i = 0; i < n; i++) {
        const cml_member_ops *o = cml_member_ops_by_kind(roster[i].kind);
        if (o == NULL)
            return 0; /* a type is all or nothing */
        if (got < cap)
            ops[got++] = o;
    }
    return got;
}

size_t cml_train_candidates(const cml_train_options *o, const cml_member_ops **ops,
                            const cml_member_ops **untried, size_t *n_untried, size_t cap) {
    const roster_entry *roster;
    size_t n = roster_of(o->type, &roster), got = 0, left = 0;
    bool all = o->all_candidates || o->keep_all_members;
    *n_untried = 0;
    if (cml_model_type_members(o->type, ops, cap) == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const cml_member_ops *m = cml_member_ops_by_kind(roster[i].kind);
        if (all || !roster[i].extra) {
            if (got < cap)
                ops[got++] = m;
        } else if (left < cap) {
            if (untried != NULL)
                untried[left] = m;
            left++;
        }
    }
    *n_untried = left;
    return got;
}

void cml_dataset_sha256(const cml_dataset *ds, char hex[65]) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    hex[0] = '\0';
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto done;
    for (size_t i = 0; i < ds->n; i++) {
        const char *label = ds->label_names[ds->labels[i]];
        /* Length-prefixed so no two datasets hash alike by shifting bytes. */
        uint64_t tl = strlen(ds->texts[i]), ll = strlen(label);
        EVP_DigestUpdate(ctx, &tl, sizeof tl);
        EVP_DigestUpdate(ctx, ds->texts[i], tl);
        EVP_DigestUpdate(ctx, &ll, sizeof ll);
        EVP_DigestUpdate(ctx, label, ll);
    }
    if (EVP_DigestFinal_ex(ctx, md, &md_len) != 1)
        goto done;
    for (unsigned i = 0; i < md_len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
done:
    EVP_MD_CTX_free(ctx);
}

void cml_train_report_release(cml_train_report *r) {
    if (r == NULL)
        return;
    for (size_t i = 0; i < CML_MAX_MEMBERS + 1; i++) {
        cml_eval_release(&r->members[i].cv);
        cml_eval_release(&r->members[i].holdout);
    }
    for (size_t i = 0; i < CML_MAX_MEMBERS; i++)
        cml_eval_release(&r->dropped[i].cv);
    memset(r, 0, sizeof(*r));
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static json_object *json_double_or_null(double v) {
    return isfinite(v) ? json_object_new_double(v) : NULL;
}

static json_object *metrics_object(const cml_metrics *m, char *const *labels) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "n", json_object_new_int64((int64_t)m->n));
    json_object_object_add(o, "accuracy", json_double_or_null(m->accuracy));
    json_object_object_add(o, "precision_macro", json_double_or_null(m->precision_macro));
    json_object_object_add(o, "recall_macro", json_double_or_null(m->recall_macro));
    json_object_object_add(o, "f1_macro", json_double_or_null(m->f1_macro));
    json_object_object_add(o, "mcc", json_double_or_null(m->mcc));
    json_object_object_add(o, "log_loss", json_double_or_null(m->log_loss));
    json_object_object_add(o, "roc_auc", json_double_or_null(m->roc_auc));
    json_object *report = json_object_new_object();
    json_object *cm = json_object_new_array();
    for (size_t c = 0; c < m->n_labels; c++) {
        json_object *r = json_object_new_object();
        json_object_object_add(r, "precision", json_object_new_double(m->per_class[c].precision));
        json_object_object_add(r, "recall", json_object_new_double(m->per_class[c].recall));
        json_object_object_add(r, "f1", json_object_new_double(m->per_class[c].f1));
        json_object_object_add(r, "support",
                               json_object_new_int64((int64_t)m->per_class[c].support));
        json_object_object_add(report, labels[c], r);
        json_object *row = json_object_new_array();
        for (size_t k = 0; k < m->n_labels; k++)
            json_object_array_add(
                row, json_object_new_int64((int64_t)m->confusion[c * m->n_labels + k]));
        json_object_array_add(cm, row);
    }
    json_object_object_add(o, "classification_report", report);
    json_object_object_add(o, "confusion_matrix", cm);
    return o;
}

char *cml_metrics_to_json(const cml_metrics *m, char *const *labels) {
    json_object *o = metrics_object(m, labels);
    char *s = cml_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}

static void row_of(const cml_csr *X, size_t r, cml_sparse *out) {
    out->n = (int)(X->indptr[r + 1] - X->indptr[r]);
    out->idx = X->indices + X->indptr[r];
    out->val = X->values + X->indptr[r];
}

static void balanced_weights(const int *y, size_t n, size_t n_labels, double *w) {
    size_t count[CML_MAX_LABELS] = {0};
    for (size_t i = 0; i < n; i++)
        count[y[i]]++;
    for (size_t c = 0; c < n_labels; c++)
        w[c] = count[c] ? (double)n / ((double)n_labels * count[c]) : 1.0;
}

/* Trains every member on (X, y); states into states[]. */
static cml_err train_members(const cml_member_ops **ops, size_t n_members,
                             const cml_featurizer *feat, const cml_csr *X, const int *y,
                             size_t n_labels, const cml_train_options *o, bool calibrate_later,
                             void **states, double *seconds, cml_diag *diag) {
    double cw[CML_MAX_LABELS];
    balanced_weights(y, X->n_rows, n_labels, cw);
    uint8_t *space = cml_malloc(X->n_cols ? X->n_cols : 1);
    if (space == NULL)
        return CML_ERR_NOMEM;
    cml_featurizer_column_spaces(feat, space);
    cml_train_set ts = {
        .X = X, .y = y, .n_labels = n_labels, .class_weight = cw, .column_space = space};
    for (size_t k = 0; k < n_members; k++) {
        cml_member_params p = o->params[ops[k]->kind];
        if (p.seed == 0)
            p.seed = o->seed;
        if (p.n_threads == 0)
            p.n_threads = o->n_threads;
        p.calibrate_later = calibrate_later && n_labels == 2 && ops[k]->set_calibration != NULL;
        double t0 = now_seconds();
        cml_err err = ops[k]->train(&ts, &p, &states[k], diag);
        if (seconds)
            seconds[k] += now_seconds() - t0;
        if (err != CML_OK) {
            cml_free(space);
            return err;
        }
    }
    cml_free(space);
    return CML_OK;
}

static void free_states(const cml_member_ops **ops, size_t n, void **states) {
    for (size_t k = 0; k < n; k++) {
        ops[k]->free_state(states[k]);
        states[k] = NULL;
    }
}

typedef struct progress {
    const cml_train_options *o;
    double done, total;
} progress;

static void step(progress *p, const char *what) {
    if (p->o->progress)
        p->o->progress(p->o->progress_ctx, p->total > 0 ? p->done / p->total : 0, what);
    p->done += 1;
}

cml_err cml_train_check(const cml_dataset *ds, const cml_train_options *o, cml_diag *diag) {
    const cml_member_ops *ops[CML_MAX_MEMBERS];
    if (cml_model_type_members(o->type, ops, CML_MAX_MEMBERS) == 0)
        return cml_diag_set(diag, CML_ERR_UNSUPPORTED,
                            "this build has no %s model (configure without XGBoost or FANN)",
                            cml_model_type_name(o->type) ? cml_model_type_name(o->type) : "such");
    if (ds->n < CML_MIN_TRAIN_ROWS)
        return cml_diag_set(diag, CML_ERR_DATA, "%zu rows: at least %d are needed to train", ds->n,
                            CML_MIN_TRAIN_ROWS);
    if (ds->n_labels < 2 || ds->n_labels > CML_MAX_LABELS)
        return cml_diag_set(diag, CML_ERR_DATA, "%zu label%s: 2 to %d are needed to train",
                            ds->n_labels, ds->n_labels == 1 ? "" : "s", CML_MAX_LABELS);
    size_t per_label[CML_MAX_LABELS] = {0};
    for (size_t i = 0; i < ds->n; i++)
        per_label[ds->labels[i]]++;
    size_t need = o->cv_folds > 5 ? o->cv_folds * 2 : 10;
    for (size_t c = 0; c < ds->n_labels; c++)
        if (per_label[c] < need)
            return cml_diag_set(diag, CML_ERR_DATA,
                                "label %s has %zu rows: at least %zu are needed",
                                ds->label_names[c], per_label[c], need);
    return CML_OK;
}

/*
 * The questions of the training rows that hold several sentences, found once: the utterance
 * combiner is fitted on their out-of-fold probabilities.
 */
typedef struct clip_rows {
    size_t n_rows;
    size_t *first;         /* n_rows + 1: row i's questions are [first[i], first[i + 1]) */
    uint16_t *n_parts;     /* sentences of each row */
    uint32_t *start, *end; /* bytes of each question in its row's text */
    size_t n_questions;
} clip_rows;

static void clip_rows_release(clip_rows *c) {
    cml_free(c->first);
    cml_free(c->n_parts);
    cml_free(c->start);
    cml_free(c->end);
    memset(c, 0, sizeof(*c));
}

static cml_err clip_rows_find(const cml_model *m, cml_feature_scratch *s, const cml_dataset *ds,
                              clip_rows *c) {
    memset(c, 0, sizeof(*c));
    c->n_rows = ds->n;
    c->first = cml_calloc(ds->n + 1, sizeof(size_t));
    c->n_parts = cml_calloc(ds->n ? ds->n : 1, sizeof(uint16_t));
    size_t cap = ds->n + 16;
    c->start = cml_malloc(cap * sizeof(uint32_t));
    c->end = cml_malloc(cap * sizeof(uint32_t));
    if (c->first == NULL || c->n_parts == NULL || c->start == NULL || c->end == NULL)
        return CML_ERR_NOMEM;
    for (size_t i = 0; i < ds->n; i++) {
        cml_utterance u;
        cml_model_find_questions(m, s, ds->texts[i], strlen(ds->texts[i]), &u);
        c->n_parts[i] = (uint16_t)u.n_parts;
        c->first[i] = c->n_questions;
        if (u.n_parts < 2)
            continue;
        if (c->n_questions + u.n_questions > cap) {
            cap = (c->n_questions + u.n_questions) * 2;
            uint32_t *s2 = cml_realloc_array(c->start, cap, sizeof(uint32_t));
            if (s2 == NULL)
                return CML_ERR_NOMEM;
            c->start = s2;
            uint32_t *e2 = cml_realloc_array(c->end, cap, sizeof(uint32_t));
            if (e2 == NULL)
                return CML_ERR_NOMEM;
            c->end = e2;
        }
        for (size_t p = 0; p < u.n_parts; p++) {
            if (!u.parts[p].question)
                continue;
            c->start[c->n_questions] = u.parts[p].start;
            c->end[c->n_questions] = u.parts[p].end;
            c->n_questions++;
        }
    }
    c->first[ds->n] = c->n_questions;
    return CML_OK;
}

/* A member's calibration fitted on the out-of-fold decisions of the cross-validation. */
typedef struct later_calibration {
    bool fitted;
    cml_platt platt;
} later_calibration;

/* The decision value behind a plain sigmoid probability (exact up to |d| of about 36). */
static double sigmoid_decision(const double *p) {
    double lo = p[0] > 1e-300 ? p[0] : 1e-300, hi = p[1] > 1e-300 ? p[1] : 1e-300;
    return log(hi) - log(lo);
}

/* Rewrites n rows of two-label probabilities from the plain sigmoid to platt's. */
static void apply_platt(cml_platt platt, double *probs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double *p = &probs[i * 2];
        p[1] = cml_platt_apply(platt, sigmoid_decision(p));
        p[0] = 1.0 - p[1];
    }
}

/*
 * The members trained with calibrate_later answered plain sigmoids during cross-validation:
 * fits each one's calibration on its pooled out-of-fold decisions (what its inner folds would
 * have done, at a sixth of the fits) and rewrites its out-of-fold probabilities with it.
 */
static cml_err calibrate_out_of_fold(const cml_member_ops **ops, size_t n_members,
                                     const clip_rows *clips, const int *y, size_t n, double *oof,
                                     double *qoof, later_calibration *later) {
    double *dec = cml_malloc((n ? n : 1) * sizeof(double));
    bool *pos = cml_malloc((n ? n : 1) * sizeof(bool));
    if (dec == NULL || pos == NULL) {
        cml_free(dec);
        cml_free(pos);
        return CML_ERR_NOMEM;
    }
    size_t nq = clips->n_questions;
    for (size_t k = 0; k < n_members; k++) {
        if (ops[k]->set_calibration == NULL)
            continue;
        for (size_t i = 0; i < n; i++) {
            dec[i] = sigmoid_decision(&oof[(k * n + i) * 2]);
            pos[i] = y[i] == 1;
        }
        later[k] = (later_calibration){.fitted = true, .platt = cml_platt_fit(dec, pos, n)};
        apply_platt(later[k].platt, &oof[k * n * 2], n);
        apply_platt(later[k].platt, &qoof[k * nq * 2], nq);
    }
    cml_free(dec);
    cml_free(pos);
    return CML_OK;
}

/*
 * Fits the utterance combiner on the out-of-fold probabilities (combined by fit) of the rows
 * of several sentences and of their questions, and puts its answers into the rows' combined
 * probabilities mixed[] (n x 2). Leaves the model without one when too few rows have several
 * sentences.
 */
static cml_err fit_utterance(const cml_combiner_fit *fit, const cml_oof *whole,
                             const cml_oof *questions, const clip_rows *clips, double *mixed,
                             cml_model *m, size_t *rows_used) {
    cml_err err = CML_OK;
    size_t n = whole->n, M = whole->n_members;
    double *x = cml_malloc((n ? n : 1) * CML_UTT__MAX * sizeof(double));
    int *y = cml_malloc((n ? n : 1) * sizeof(int));
    size_t *which = cml_malloc((n ? n : 1) * sizeof(size_t));
    size_t used = 0;
    *rows_used = 0;
    if (x == NULL || y == NULL || which == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (clips->n_parts[i] < 2)
            continue;
        double pq[CML_UTTERANCE_MAX_PARTS], probs[CML_MAX_MEMBERS * 2], out[2];
        size_t nq = clips->first[i + 1] - clips->first[i];
        for (size_t q = 0; q < nq; q++) {
            for (size_t k = 0; k < M; k++)
                memcpy(&probs[k * 2],
                       &questions->probs[(k * questions->n + clips->first[i] + q) * 2],
                       2 * sizeof(double));
            cml_combiner_apply(fit, 2, probs, out);
            pq[q] = out[1];
        }
        cml_utterance u = {.n_parts = clips->n_parts[i], .n_questions = nq};
        cml_utterance_inputs(&u, mixed[i * 2 + 1], pq, &x[used * CML_UTT__MAX]);
        y[used] = whole->y[i];
        which[used++] = i;
    }
    err = cml_utterance_fit(x, y, used, &m->utterance);
    if (err == CML_ERR_DATA) {
        err = CML_OK; /* too few texts of several sentences: whole-text labels only */
        goto done;
    }
    if (err != CML_OK)
        goto done;
    m->utterance_fitted = true;
    *rows_used = used;
    for (size_t r = 0; r < used; r++) {
        double p = cml_dense_logreg_apply(&m->utterance, &x[r * CML_UTT__MAX]);
        mixed[which[r] * 2 + 1] = p;
        mixed[which[r] * 2] = 1.0 - p;
    }
done:
    cml_free(x);
    cml_free(y);
    cml_free(which);
    return err;
}

/*
 * The cross-validation as jobs, one per (fold, member), run by forked workers: each writes the
 * out-of-fold probabilities of its rows into oof and qoof (shared memory). A worker keeps the
 * features of the fold it last worked on, since jobs come in fold order.
 */
typedef struct cv_run {
    const cml_train_options *o;
    const cml_member_ops **ops;
    size_t n_members;
    const cml_dataset *train_ds;
    const size_t *fold_of;
    size_t *rows;
    const clip_rows *clips;
    double *oof, *qoof;
    cml_feature_scratch *scratch;
    progress *prog;
    double prog_base; /* prog->done when the cross-validation began */
    int n_threads;
    /* The current fold's features, per process. */
    size_t fold;
    cml_dataset *fold_tr, *fold_te;
    size_t *te_rows; /* train_ds row of each row of fold_te (and of Xv) */
    cml_featurizer *feat;
    cml_csr X, Xv;
} cv_run;

static void cv_release(void *ctx) {
    cv_run *cv = ctx;
    cml_csr_free(&cv->X);
    cml_csr_free(&cv->Xv);
    cml_featurizer_free(cv->feat);
    cv->feat = NULL;
    cml_dataset_free(cv->fold_tr);
    cml_dataset_free(cv->fold_te);
    cv->fold_tr = cv->fold_te = NULL;
    cml_free(cv->te_rows);
    cv->te_rows = NULL;
    cv->fold = SIZE_MAX;
}

static cml_err cv_features(cv_run *cv, size_t f) {
    if (cv->fold == f)
        return CML_OK;
    cv_release(cv);
    size_t n = cv->train_ds->n, nt = 0, ne = 0;
    if ((cv->te_rows = cml_malloc((n ? n : 1) * sizeof(size_t))) == NULL)
        return CML_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (cv->fold_of[i] != f)
            cv->rows[nt++] = i;
        else
            cv->te_rows[ne++] = i;
    }
    if ((cv->fold_tr = cml_dataset_subset(cv->train_ds, cv->rows, nt)) == NULL ||
        (cv->fold_te = cml_dataset_subset(cv->train_ds, cv->te_rows, ne)) == NULL)
        return CML_ERR_NOMEM;
    cml_err err;
    if ((err = cml_featurizer_fit(cv->fold_tr, NULL, &cv->feat)) != CML_OK ||
        (err = cml_features_matrix(cv->feat, cv->fold_tr, &cv->X)) != CML_OK ||
        (err = cml_features_matrix(cv->feat, cv->fold_te, &cv->Xv)) != CML_OK)
        return err;
    cv->fold = f;
    return CML_OK;
}

static cml_err cv_job(void *ctx, size_t job, cml_diag *diag) {
    cv_run *cv = ctx;
    size_t f = job / cv->n_members, k = job % cv->n_members, n = cv->train_ds->n;
    size_t L = cv->train_ds->n_labels, nq = cv->clips->n_questions;
    const cml_member_ops *op = cv->ops[k];
    cml_train_options o = *cv->o;
    o.n_threads = cv->n_threads;
    /* The same draws whichever worker runs the job: liblinear and FANN use rand(). */
    srand((unsigned)(cv->o->seed * 1000003u + job));
    void *state = NULL;
    cml_err err = cv_features(cv, f);
    if (err == CML_OK)
        err = train_members(&op, 1, cv->feat, &cv->X, cv->fold_tr->labels, L, &o, true, &state,
                            NULL, diag);
    for (size_t r = 0; err == CML_OK && r < cv->Xv.n_rows; r++) {
        size_t i = cv->te_rows[r];
        cml_sparse x;
        row_of(&cv->Xv, r, &x);
        err = op->predict(state, &x, &cv->oof[(k * n + i) * L]);
        for (size_t q = cv->clips->first[i]; q < cv->clips->first[i + 1] && err == CML_OK; q++) {
            const char *t = cv->train_ds->texts[i] + cv->clips->start[q];
            if ((err = cml_features_extract(cv->feat, cv->scratch, t,
                                            cv->clips->end[q] - cv->clips->start[q], &x)) == CML_OK)
                err = op->predict(state, &x, &cv->qoof[(k * nq + q) * L]);
        }
    }
    op->free_state(state);
    return err;
}

static void cv_progress(void *ctx, size_t done) {
    cv_run *cv = ctx;
    size_t total = cv->o->cv_folds * cv->n_members;
    char what[96];
    snprintf(what, sizeof what, "cross-validation: %zu of %zu fits", done, total);
    cv->prog->done = cv->prog_base + (double)done;
    step(cv->prog, what);
}

/*
 * The final fit of the kept members, one job each, run by forked workers like the
 * cross-validation: each job leaves its member serialized in its slot of shared memory, and
 * the caller reads them back (the same bytes the model file will hold).
 */
#define FINAL_SLOT_BYTES ((size_t)64 << 20) /* mapped lazily; far above the 10 MB file bar */

typedef struct final_slot {
    size_t len;
    double seconds;
    uint8_t payload[];
} final_slot;

typedef struct final_run {
    const cml_train_options *o;
    const cml_member_ops **ops;
    const later_calibration *later;
    const cml_featurizer *feat;
    const cml_csr *X;
    const int *y;
    size_t n_labels;
    int n_threads;
    uint8_t *slots; /* shared: FINAL_SLOT_BYTES per member */
} final_run;

static final_slot *final_slot_of(const final_run *fr, size_t k) {
    return (final_slot *)(fr->slots + k * FINAL_SLOT_BYTES);
}

static cml_err final_job(void *ctx, size_t k, cml_diag *diag) {
    final_run *fr = ctx;
    const cml_member_ops *op = fr->ops[k];
    cml_train_options o = *fr->o;
    o.n_threads = fr->n_threads;
    srand((unsigned)(fr->o->seed * 1000003u + 999983u + k));
    bool calibrate = fr->o->cv_folds >= 2 && fr->later[k].fitted;
    void *state = NULL;
    double seconds = 0;
    cml_err err = train_members(&op, 1, fr->feat, fr->X, fr->y, fr->n_labels, &o, calibrate, &state,
                                &seconds, diag);
    if (err != CML_OK)
        return err;
    if (calibrate)
        op->set_calibration(state, fr->later[k].platt);
    cml_buf b = {0};
    err = op->serialize(state, &b);
    op->free_state(state);
    final_slot *slot = final_slot_of(fr, k);
    if (err == CML_OK && b.len > FINAL_SLOT_BYTES - sizeof(*slot))
        err = cml_diag_set(diag, CML_ERR_TRAIN, "member %s is over %zu MB", op->name,
                           FINAL_SLOT_BYTES >> 20);
    if (err == CML_OK) {
        memcpy(slot->payload, b.data, b.len);
        slot->len = b.len;
        slot->seconds = seconds;
    }
    cml_buf_release(&b);
    return err;
}

cml_err cml_train(const cml_dataset *ds, const cml_train_options *o, cml_model **out,
                  cml_train_report *report, cml_diag *diag) {
    cml_err err = CML_OK;
    const cml_member_ops *ops[CML_MAX_MEMBERS];
    void *states[CML_MAX_MEMBERS] = {0};
    double member_seconds[CML_MAX_MEMBERS] = {0};
    later_calibration later[CML_MAX_MEMBERS] = {0};
    size_t *train_idx = NULL, *test_idx = NULL, *fold_of = NULL, *rows = NULL;
    size_t n_train = 0, n_test = 0;
    cml_dataset *train_ds = NULL, *test_ds = NULL, *fold_tr = NULL;
    cml_featurizer *feat = NULL;
    cml_feature_scratch *scratch = NULL;
    cml_csr X = {0}, Xv = {0};
    double *oof = NULL, *qoof = NULL, *hold = NULL, *mix = NULL;
    size_t oof_bytes = 0, qoof_bytes = 0;
    clip_rows clips = {0};
    cml_combiner_fit fit;
    cml_model *m = NULL;
    cml_train_report local;
    json_object *metrics = NULL;
    double t_start = now_seconds();

    *out = NULL;
    if (report == NULL)
        report = &local;
    memset(report, 0, sizeof(*report));
    memset(&fit, 0, sizeof(fit));
    const cml_member_ops *untried[CML_MAX_MEMBERS];
    size_t n_untried = 0;
    size_t n_members = cml_train_candidates(o, ops, untried, &n_untried, CML_MAX_MEMBERS);
    for (size_t k = 0; k < n_untried; k++)
        report->untried[report->n_untried++] = untried[k]->name;
    if ((err = cml_train_check(ds, o, diag)) != CML_OK)
        return err;
    size_t L = ds->n_labels;
    progress prog = {.o = o, .total = (double)o->cv_folds * (double)n_members + 7};
    train_idx = cml_malloc(ds->n * sizeof(size_t));
    test_idx = cml_malloc(ds->n * sizeof(size_t));
    m = cml_model_new(o->type);
    scratch = cml_feature_scratch_new();
    if (train_idx == NULL || test_idx == NULL || m == NULL || scratch == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    step(&prog, "splitting data");
    if ((err = cml_stratified_split(ds->labels, ds->n, L, o->test_frac, o->seed, train_idx,
                                    &n_train, test_idx, &n_test)) != CML_OK)
        goto done;
    train_ds = cml_dataset_subset(ds, train_idx, n_train);
    test_ds = cml_dataset_subset(ds, test_idx, n_test);
    if (train_ds == NULL || test_ds == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    /* The question detector learns from the training split only, like everything else. */
    if (o->non_questions != NULL) {
        step(&prog, "training the question detector");
        if ((err = cml_detector_train(train_ds, o->non_questions, o->seed, &m->detector,
                                      &report->detector, diag)) != CML_OK)
            goto done;
        report->has_detector = true;
    }
    if ((err = clip_rows_find(m, scratch, train_ds, &clips)) != CML_OK)
        goto done;

    /*
     * Cross-validation on the training split: out-of-fold probabilities per member, of each
     * whole text and of each question of the texts with several sentences.
     */
    fit.n_use = n_members;
    for (size_t k = 0; k < n_members; k++) {
        fit.use[k] = k;
        fit.weights[k] = 1.0 / (double)n_members;
    }
    if (o->cv_folds >= 2) {
        size_t nq = clips.n_questions;
        fold_of = cml_malloc(n_train * sizeof(size_t));
        rows = cml_malloc(n_train * sizeof(size_t));
        oof_bytes = n_members * n_train * L * sizeof(double);
        qoof_bytes = n_members * (nq ? nq : 1) * L * sizeof(double);
        oof = cml_shared_alloc(oof_bytes);
        qoof = cml_shared_alloc(qoof_bytes);
        mix = cml_calloc(n_train * L, sizeof(double));
        if (fold_of == NULL || rows == NULL || oof == NULL || qoof == NULL || mix == NULL) {
            err = CML_ERR_NOMEM;
            goto done;
        }
        if ((err = cml_stratified_folds(train_ds->labels, n_train, L, o->cv_folds, o->seed + 1,
                                        fold_of)) != CML_OK)
            goto done;
        cv_run cv = {.o = o,
                     .ops = ops,
                     .n_members = n_members,
                     .train_ds = train_ds,
                     .fold_of = fold_of,
                     .rows = rows,
                     .clips = &clips,
                     .oof = oof,
                     .qoof = qoof,
                     .scratch = scratch,
                     .prog = &prog,
                     .prog_base = prog.done,
                     .fold = SIZE_MAX,
                     .n_threads = o->n_threads};
        size_t n_jobs = o->cv_folds * n_members, workers = o->n_threads > 1 ? o->n_threads : 1;
        /* Each worker trains one learner at a time: learners' own threads would only compete. */
        if (workers > 1)
            cv.n_threads = 1;
        err = cml_fork_jobs(n_jobs, workers, cv_job, cv_release, cv_progress, &cv, diag);
        cv_release(&cv);
        prog.done = cv.prog_base + (double)n_jobs;
        if (err != CML_OK)
            goto done;
        if (L == 2 && (err = calibrate_out_of_fold(ops, n_members, &clips, train_ds->labels,
                                                   n_train, oof, qoof, later)) != CML_OK)
            goto done;
        step(&prog, "choosing the combination");
        cml_oof whole = {.n = n_train,
                         .n_members = n_members,
                         .n_labels = L,
                         .probs = oof,
                         .y = train_ds->labels};
        cml_oof questions = {
            .n = nq, .n_members = n_members, .n_labels = L, .probs = qoof, .y = NULL};
        if ((err = cml_combiner_choose(&whole, o->seed + 2,
                                       o->type == CML_MODEL_ENSEMBLE && !o->keep_all_members,
                                       &fit)) != CML_OK)
            goto done;
        report->combination = fit.combination;
        memcpy(report->combinations, fit.reports, sizeof(report->combinations));
        double probs[CML_MAX_MEMBERS * CML_MAX_LABELS];
        for (size_t i = 0; i < n_train; i++) {
            for (size_t k = 0; k < n_members; k++)
                memcpy(&probs[k * L], &oof[(k * n_train + i) * L], L * sizeof(double));
            cml_combiner_apply(&fit, L, probs, &mix[i * L]);
        }
        if (L == 2 && (err = fit_utterance(&fit, &whole, &questions, &clips, mix, m,
                                           &report->utterance_rows)) != CML_OK)
            goto done;
        for (size_t k = 0, kept = 0; k < n_members; k++) {
            bool keep = kept < fit.n_use && fit.use[kept] == k;
            cml_member_report *mr =
                keep ? &report->members[kept++] : &report->dropped[report->n_dropped++];
            mr->name = ops[k]->name;
            if ((err = cml_eval_compute(train_ds->labels, &oof[k * n_train * L], n_train, L,
                                        &mr->cv)) != CML_OK)
                goto done;
        }
        if ((err = cml_eval_compute(train_ds->labels, mix, n_train, L,
                                    &report->members[fit.n_use].cv)) != CML_OK)
            goto done;
    }
    /* Only the members the combination keeps are fitted and stored. */
    for (size_t k = 0; k < fit.n_use; k++) {
        ops[k] = ops[fit.use[k]];
        later[k] = later[fit.use[k]];
    }
    n_members = fit.n_use;

    /* Final fit on the whole training split. */
    step(&prog, "fitting features");
    if ((err = cml_featurizer_fit(train_ds, NULL, &feat)) != CML_OK ||
        (err = cml_features_matrix(feat, train_ds, &X)) != CML_OK ||
        (err = cml_features_matrix(feat, test_ds, &Xv)) != CML_OK)
        goto done;
    step(&prog, "fitting the members");
    {
        final_run fr = {.o = o,
                        .ops = ops,
                        .later = later,
                        .feat = feat,
                        .X = &X,
                        .y = train_ds->labels,
                        .n_labels = L,
                        .n_threads = o->n_threads};
        size_t workers = o->n_threads > 1 ? (size_t)o->n_threads : 1;
        if (workers > 1 && n_members > 1)
            fr.n_threads = 1;
        fr.slots = cml_shared_alloc(n_members * FINAL_SLOT_BYTES);
        if (fr.slots == NULL) {
            err = CML_ERR_NOMEM;
            goto done;
        }
        err = cml_fork_jobs(n_members, workers, final_job, NULL, NULL, &fr, diag);
        for (size_t k = 0; k < n_members && err == CML_OK; k++) {
            const final_slot *slot = final_slot_of(&fr, k);
            member_seconds[k] = slot->seconds;
            err = ops[k]->deserialize(slot->payload, slot->len, L, cml_featurizer_n_cols(feat),
                                      &states[k], diag);
        }
        cml_shared_free(fr.slots, n_members * FINAL_SLOT_BYTES);
        if (err != CML_OK)
            goto done;
    }

    /* The version is the UTC time to the millisecond: sortable, and two trainings finishing in
       the same second still get different versions. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t vlen = strftime(m->version, sizeof m->version, "%Y%m%dT%H%M%S", &tm);
    snprintf(m->version + vlen, sizeof m->version - vlen, ".%03ldZ", ts.tv_nsec / 1000000);
    m->created_at = (int64_t)ts.tv_sec;
    cml_dataset_sha256(ds, m->data_sha256);
    m->n_train = (uint32_t)n_train;
    m->n_test = (uint32_t)n_test;
    m->n_labels = L;
    for (size_t c = 0; c < L; c++)
        if ((m->labels[c] = cml_strdup(ds->label_names[c])) == NULL) {
            err = CML_ERR_NOMEM;
            goto done;
        }
    m->features = feat;
    feat = NULL;
    for (size_t k = 0; k < n_members; k++) {
        m->members[k] =
            (cml_model_member){.ops = ops[k], .state = states[k], .weight = fit.weights[k]};
        states[k] = NULL;
    }
    m->n_members = n_members;
    m->combination = fit.combination;
    m->stacker = fit.stacker;

    /* Held-out metrics of each member (whole text) and of the model as it serves. */
    step(&prog, "scoring the held-out split");
    hold = cml_calloc((n_members + 1) * n_test * L, sizeof(double));
    if (hold == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n_test; i++) {
        cml_sparse x;
        row_of(&Xv, i, &x);
        for (size_t k = 0; k < n_members; k++)
            if ((err = ops[k]->predict(m->members[k].state, &x, &hold[(k * n_test + i) * L])) !=
                CML_OK)
                goto done;
        cml_prediction p;
        if ((err = cml_model_predict(m, scratch, test_ds->texts[i], strlen(test_ds->texts[i]),
                                     &p)) != CML_OK)
            goto done;
        memcpy(&hold[(n_members * n_test + i) * L], p.probs, L * sizeof(double));
    }
    for (size_t k = 0; k <= n_members; k++) {
        if ((err = cml_eval_compute(test_ds->labels, &hold[k * n_test * L], n_test, L,
                                    &report->members[k].holdout)) != CML_OK)
            goto done;
        report->members[k].name = k < n_members ? ops[k]->name : cml_model_type_name(o->type);
        report->members[k].weight = k < n_members ? fit.weights[k] : 1.0;
        report->members[k].train_seconds = k < n_members ? member_seconds[k] : 0;
    }
    report->n_members = n_members;
    m->holdout = test_ds;
    test_ds = NULL;

    metrics = json_object_new_object();
    json_object_object_add(metrics, "holdout",
                           metrics_object(&report->members[n_members].holdout, m->labels));
    json_object_object_add(metrics, "cv",
                           report->members[n_members].cv.n
                               ? metrics_object(&report->members[n_members].cv, m->labels)
                               : NULL);
    json_object *per = json_object_new_object();
    for (size_t k = 0; k < n_members; k++) {
        json_object *mo = json_object_new_object();
        json_object_object_add(mo, "weight", json_object_new_double(fit.weights[k]));
        json_object_object_add(mo, "holdout",
                               metrics_object(&report->members[k].holdout, m->labels));
        json_object_object_add(
            mo, "cv",
            report->members[k].cv.n ? metrics_object(&report->members[k].cv, m->labels) : NULL);
        json_object_object_add(mo, "train_seconds", json_object_new_double(member_seconds[k]));
        json_object_object_add(per, ops[k]->name, mo);
    }
    json_object_object_add(metrics, "members", per);
    json_object *dropped = json_object_new_object();
    for (size_t k = 0; k < report->n_dropped; k++)
        json_object_object_add(dropped, report->dropped[k].name,
                               metrics_object(&report->dropped[k].cv, m->labels));
    json_object_object_add(metrics, "dropped", dropped);
    json_object *not_tried = json_object_new_array();
    for (size_t k = 0; k < report->n_untried; k++)
        json_object_array_add(not_tried, json_object_new_string(report->untried[k]));
    json_object_object_add(metrics, "not_tried", not_tried);
    json_object *comb = json_object_new_object();
    for (int c = 0; c < CML_COMBINE__MAX; c++) {
        const cml_combination_report *cr = &report->combinations[c];
        if (!cr->tried)
            continue;
        json_object *co = json_object_new_object();
        json_object_object_add(co, "log_loss", json_object_new_double(cr->log_loss));
        json_object_object_add(co, "f1_macro", json_object_new_double(cr->f1_macro));
        json_object_object_add(comb, cml_combination_name((cml_combination)c), co);
    }
    json_object_object_add(metrics, "combinations", comb);
    json_object_object_add(metrics, "utterance_rows",
                           json_object_new_int64((int64_t)report->utterance_rows));
    if (report->has_detector) {
        json_object *det = json_object_new_object();
        json_object_object_add(det, "n_train",
                               json_object_new_int64((int64_t)report->detector.n_train));
        json_object_object_add(det, "n_test",
                               json_object_new_int64((int64_t)report->detector.n_test));
        json_object_object_add(det, "precision",
                               json_object_new_double(report->detector.precision));
        json_object_object_add(det, "recall", json_object_new_double(report->detector.recall));
        json_object_object_add(metrics, "question_detector", det);
    }
    m->training_time_s = now_seconds() - t_start;
    json_object_object_add(metrics, "training_time_s", json_object_new_double(m->training_time_s));
    m->metrics_json = cml_strdup(json_object_to_json_string_ext(metrics, JSON_C_TO_STRING_PLAIN));
    if (m->metrics_json == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    report->seconds = m->training_time_s;
    step(&prog, "done");
    *out = m;
    m = NULL;
done:
    json_object_put(metrics);
    free_states(ops, n_members, states);
    cml_model_release(m);
    cml_free(train_idx);
    cml_free(test_idx);
    cml_free(fold_of);
    cml_free(rows);
    cml_shared_free(oof, oof_bytes);
    cml_shared_free(qoof, qoof_bytes);
    cml_free(hold);
    cml_free(mix);
    clip_rows_release(&clips);
    cml_dataset_free(train_ds);
    cml_dataset_free(test_ds);
    cml_dataset_free(fold_tr);
    cml_featurizer_free(feat);
    cml_feature_scratch_free(scratch);
    cml_csr_free(&X);
    cml_csr_free(&Xv);
    if (report == &local || err != CML_OK)
        cml_train_report_release(report);
    return err;
}

cml_err cml_model_evaluate(const cml_model *m, const cml_dataset *ds, cml_metrics *out,
                           cml_diag *diag) {
    cml_err err = CML_OK;
    int map[CML_MAX_LABELS * 4];
    int *truth = NULL;
    double *probs = NULL;
    cml_feature_scratch *s = NULL;
    if (ds->n_labels > sizeof(map) / sizeof(map[0]))
        return cml_diag_set(diag, CML_ERR_DATA, "too many labels");
    for (size_t c = 0; c < ds->n_labels; c++) {
        map[c] = -1;
        for (size_t k = 0; k < m->n_labels; k++)
            if (strcmp(ds->label_names[c], m->labels[k]) == 0)
                map[c] = (int)k;
        if (map[c] < 0)
            return cml_diag_set(diag, CML_ERR_DATA, "label %s is not one the model knows",
                                ds->label_names[c]);
    }
    truth = cml_malloc((ds->n ? ds->n : 1) * sizeof(int));
    probs = cml_malloc((ds->n ? ds->n : 1) * m->n_labels * sizeof(double));
    s = cml_feature_scratch_new();
    if (truth == NULL || probs == NULL || s == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < ds->n; i++) {
        cml_prediction p;
        if ((err = cml_model_predict(m, s, ds->texts[i], strlen(ds->texts[i]), &p)) != CML_OK)
            goto done;
        truth[i] = map[ds->labels[i]];
        memcpy(&probs[i * m->n_labels], p.probs, m->n_labels * sizeof(double));
    }
    err = cml_eval_compute(truth, probs, ds->n, m->n_labels, out);
done:
    cml_free(truth);
    cml_free(probs);
    cml_feature_scratch_free(s);
    return err;
}
