/*
 * Linear members on liblinear: L2-regularised logistic regression and a
 * linear SVM, both with Platt-calibrated probabilities fitted on internal
 * cross-validated decision values. The weights are kept in our own struct
 * (liblinear's save/load are path-based and call setlocale) and handed to
 * liblinear's predict_values through a stack view of struct model.
 */
#include "config.h"

#include <linear.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "learn/calibration.h"
#include "base/cml_alloc.h"
#include "learn/data_split.h"
#include "learn/member.h"

#define CALIBRATION_FOLDS 5
#define STACK_NODES 1024

typedef struct linear_state {
    int solver;
    uint32_t n_labels, n_cols;
    int labels[CML_MAX_LABELS]; /* liblinear class order -> our class index */
    uint32_t nr_w;              /* 1 for two labels, else n_labels */
    double *w;                  /* (n_cols + 1) * nr_w, row-major by feature as liblinear */
    cml_platt platt[CML_MAX_LABELS];
} linear_state;

static void quiet(const char *s) { (void)s; }
static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;
static void install_quiet(void) { set_print_string_function(quiet); }

static void linear_free(void *p) {
    linear_state *st = p;
    if (st == NULL)
        return;
    cml_free(st->w);
    cml_free(st);
}

static size_t linear_bytes(const void *p) {
    const linear_state *st = p;
    return sizeof(*st) + ((size_t)st->n_cols + 1) * st->nr_w * sizeof(double);
}

/* Rows of X as liblinear nodes (1-based, bias node, -1 terminated); caller frees both. */
/* Bit (1 << space) of each cml_column_space a view keeps; 0 keeps every column. */
typedef unsigned column_view;
#define VIEW_ALL 0u
#define VIEW_WORDS ((1u << CML_SPACE_HAND) | (1u << CML_SPACE_WORDS) | (1u << CML_SPACE_FOCUS))
#define VIEW_CHARS ((1u << CML_SPACE_HAND) | (1u << CML_SPACE_CHARS))

static inline bool in_view(const uint8_t *space, column_view view, int col) {
    return view == VIEW_ALL || space == NULL || (view >> space[col] & 1u);
}

/*
 * Rows of X as liblinear nodes, keeping the columns of view only: the weights of the others
 * stay zero, so prediction needs no view.
 */
static cml_err to_problem(const cml_csr *X, const uint8_t *space, column_view view, const int *y,
                          const size_t *rows, size_t n, struct problem *prob,
                          struct feature_node **pool) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += X->indptr[rows[i] + 1] - X->indptr[rows[i]] + 2;
    *pool = cml_malloc(total * sizeof(struct feature_node));
    prob->x = cml_malloc(n * sizeof(struct feature_node *));
    prob->y = cml_malloc(n * sizeof(double));
    if (*pool == NULL || prob->x == NULL || prob->y == NULL)
        return CML_ERR_NOMEM;
    struct feature_node *node = *pool;
    for (size_t i = 0; i < n; i++) {
        size_t r = rows[i];
        prob->x[i] = node;
        prob->y[i] = y[r];
        for (size_t k = X->indptr[r]; k < X->indptr[r + 1]; k++)
            if (in_view(space, view, X->indices[k]))
                *node++ = (struct feature_node){.index = X->indices[k] + 1, .value = X->values[k]};
        *node++ = (struct feature_node){.index = (int)X->n_cols + 1, .value = 1.0};
        *node++ = (struct feature_node){.index = -1, .value = 0.0};
    }
    prob->l = (int)n;
    prob->n = (int)X->n_cols + 1;
    prob->bias = 1.0;
    return CML_OK;
}

static void free_problem(struct problem *prob, struct feature_node *pool) {
    cml_free(prob->x);
    cml_free(prob->y);
    cml_free(pool);
}

static struct parameter make_param(int solver, const cml_train_set *ts, double C, int *wl) {
    struct parameter p;
    memset(&p, 0, sizeof(p));
    p.solver_type = solver;
    p.eps = solver == L2R_LR ? 0.01 : 0.1;
    p.C = C;
    p.nr_weight = (int)ts->n_labels;
    for (size_t i = 0; i < ts->n_labels; i++)
        wl[i] = (int)i;
    p.weight_label = wl;
    p.weight = (double *)ts->class_weight;
    p.p = 0.1;
    return p;
}

/*
 * Decision values of one node row in our class order. With two labels there
 * is one value, oriented so that positive means class 1 whatever order
 * liblinear saw the classes in.
 */
static void decisions(const struct model *m, const struct feature_node *x, uint32_t nr_w,
                      double *out) {
    double dec[CML_MAX_LABELS];
    predict_values(m, x, dec);
    if (nr_w == 1) {
        out[0] = m->label[0] == 1 ? dec[0] : -dec[0];
        return;
    }
    for (uint32_t k = 0; k < nr_w; k++)
        out[m->label[k]] = dec[k];
}

static void fit_calibration(linear_state *st, const double *dec, const int *truth, size_t n) {
    bool *pos = cml_malloc(n * sizeof(bool));
    double *col = cml_malloc(n * sizeof(double));
    if (pos == NULL || col == NULL) {
        for (uint32_t k = 0; k < st->nr_w; k++)
            st->platt[k] = (cml_platt){.a = -1, .b = 0};
        goto done;
    }
    for (uint32_t k = 0; k < st->nr_w; k++) {
        int target = st->nr_w == 1 ? 1 : (int)k;
        for (size_t i = 0; i < n; i++) {
            col[i] = dec[i * st->nr_w + k];
            pos[i] = truth[i] == target;
        }
        st->platt[k] = cml_platt_fit(col, pos, n);
    }
done:
    cml_free(pos);
    cml_free(col);
}

static cml_err linear_train(int solver, column_view view, const cml_train_set *ts,
                            const cml_member_params *mp, void **out, cml_diag *diag) {
    cml_err err = CML_OK;
    size_t n = ts->X->n_rows;
    size_t *rows = NULL, *fold_of = NULL;
    struct problem prob = {0};
    struct feature_node *pool = NULL;
    struct model *m = NULL;
    double *dec = NULL;
    int *truth = NULL;
    int wl[CML_MAX_LABELS];
    linear_state *st = cml_calloc(1, sizeof(*st));

    pthread_once(&quiet_once, install_quiet);
    *out = NULL;
    if (st == NULL)
        return CML_ERR_NOMEM;
    if (ts->n_labels < 2 || ts->n_labels > CML_MAX_LABELS) {
        err =
            cml_diag_set(diag, CML_ERR_DATA, "linear members need 2 to %d labels", CML_MAX_LABELS);
        goto done;
    }
    double C = mp && mp->C > 0 ? mp->C : (solver == L2R_LR ? 10.0 : 0.5);
    struct parameter param = make_param(solver, ts, C, wl);
    st->solver = solver;
    st->n_labels = (uint32_t)ts->n_labels;
    st->n_cols = (uint32_t)ts->X->n_cols;
    st->nr_w = ts->n_labels == 2 ? 1 : (uint32_t)ts->n_labels;

    rows = cml_malloc(n * sizeof(size_t));
    fold_of = cml_malloc(n * sizeof(size_t));
    dec = cml_calloc(n * st->nr_w, sizeof(double));
    truth = cml_malloc(n * sizeof(int));
    if (rows == NULL || fold_of == NULL || dec == NULL || truth == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    if (mp != NULL && mp->calibrate_later && st->nr_w == 1) {
        st->platt[0] = (cml_platt){.a = -1.0, .b = 0.0}; /* the plain sigmoid until calibrated */
        goto final_fit;
    }
    /* Out-of-fold decision values for the calibrator. */
    if ((err = cml_stratified_folds(ts->y, n, ts->n_labels, CALIBRATION_FOLDS, mp ? mp->seed : 42,
                                    fold_of)) != CML_OK)
        goto done;
    for (size_t fold = 0; fold < CALIBRATION_FOLDS; fold++) {
        size_t nt = 0;
        for (size_t i = 0; i < n; i++)
            if (fold_of[i] != fold)
                rows[nt++] = i;
        if ((err = to_problem(ts->X, ts->column_space, view, ts->y, rows, nt, &prob, &pool)) !=
            CML_OK)
            goto done;
        const char *bad = check_parameter(&prob, &param);
        if (bad != NULL) {
            err = cml_diag_set(diag, CML_ERR_TRAIN, "liblinear: %s", bad);
            goto done;
        }
        m = train(&prob, &param);
        free_problem(&prob, pool);
        pool = NULL;
        memset(&prob, 0, sizeof(prob));
        if (m == NULL) {
            err = cml_diag_set(diag, CML_ERR_TRAIN, "liblinear could not train a fold");
            goto done;
        }
        /* A fold missing a class would shift classes: treat as fatal. */
        if ((size_t)m->nr_class != ts->n_labels) {
            err = cml_diag_set(diag, CML_ERR_DATA, "a label has too few rows for calibration");
            goto done;
        }
        struct feature_node *row = NULL;
        for (size_t i = 0; i < n; i++) {
            if (fold_of[i] != fold)
                continue;
            size_t one = i;
            struct problem p1 = {0};
            if ((err = to_problem(ts->X, ts->column_space, view, ts->y, &one, 1, &p1, &row)) !=
                CML_OK) {
                free_problem(&p1, row);
                goto done;
            }
            double d[CML_MAX_LABELS];
            decisions(m, p1.x[0], st->nr_w, d);
            memcpy(&dec[i * st->nr_w], d, st->nr_w * sizeof(double));
            free_problem(&p1, row);
            row = NULL;
        }
        free_and_destroy_model(&m);
    }
    for (size_t i = 0; i < n; i++)
        truth[i] = ts->y[i];
    fit_calibration(st, dec, truth, n);

final_fit:
    /* The final model on every row. */
    for (size_t i = 0; i < n; i++)
        rows[i] = i;
    if ((err = to_problem(ts->X, ts->column_space, view, ts->y, rows, n, &prob, &pool)) != CML_OK)
        goto done;
    m = train(&prob, &param);
    if (m == NULL) {
        err = cml_diag_set(diag, CML_ERR_TRAIN, "liblinear could not train");
        goto done;
    }
    for (int k = 0; k < m->nr_class; k++)
        st->labels[k] = m->label[k];
    size_t nw = ((size_t)st->n_cols + 1) * st->nr_w;
    st->w = cml_malloc(nw * sizeof(double));
    if (st->w == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    /* Rounded to float now so a saved and reloaded model predicts identically. */
    for (size_t i = 0; i < nw; i++)
        st->w[i] = (double)(float)m->w[i];
    *out = st;
    st = NULL;
done:
    if (m != NULL)
        free_and_destroy_model(&m);
    free_problem(&prob, pool);
    cml_free(rows);
    cml_free(fold_of);
    cml_free(dec);
    cml_free(truth);
    linear_free(st);
    return err;
}

static cml_err logreg_train(const cml_train_set *ts, const cml_member_params *p, void **out,
                            cml_diag *diag) {
    return linear_train(L2R_LR, VIEW_ALL, ts, p, out, diag);
}

static cml_err logreg_words_train(const cml_train_set *ts, const cml_member_params *p, void **out,
                                  cml_diag *diag) {
    return linear_train(L2R_LR, VIEW_WORDS, ts, p, out, diag);
}

static cml_err logreg_chars_train(const cml_train_set *ts, const cml_member_params *p, void **out,
                                  cml_diag *diag) {
    return linear_train(L2R_LR, VIEW_CHARS, ts, p, out, diag);
}

static cml_err svm_train(const cml_train_set *ts, const cml_member_params *p, void **out,
                         cml_diag *diag) {
    return linear_train(L2R_L2LOSS_SVC_DUAL, VIEW_ALL, ts, p, out, diag);
}

static cml_err linear_predict(const void *state, const cml_sparse *x, double *probs) {
    const linear_state *st = state;
    if (st->nr_w == 1) {
        /* Two labels: liblinear's predict_values is this one dot product, summed in the same
           order, so the same doubles without building its node array. */
        double d = 0;
        for (int i = 0; i < x->n; i++)
            if ((uint32_t)x->idx[i] < st->n_cols)
                d += st->w[x->idx[i]] * (double)x->val[i];
        d += st->w[st->n_cols];
        probs[1] = cml_platt_apply(st->platt[0], st->labels[0] == 1 ? d : -d);
        probs[0] = 1.0 - probs[1];
        return CML_OK;
    }
    struct feature_node stack_nodes[STACK_NODES];
    struct feature_node *nodes = stack_nodes;
    if ((size_t)x->n + 2 > STACK_NODES) {
        nodes = cml_malloc(((size_t)x->n + 2) * sizeof(struct feature_node));
        if (nodes == NULL)
            return CML_ERR_NOMEM;
    }
    int k = 0;
    for (int i = 0; i < x->n; i++)
        if ((uint32_t)x->idx[i] < st->n_cols)
            nodes[k++] = (struct feature_node){.index = x->idx[i] + 1, .value = x->val[i]};
    nodes[k++] = (struct feature_node){.index = (int)st->n_cols + 1, .value = 1.0};
    nodes[k] = (struct feature_node){.index = -1, .value = 0.0};

    struct model m;
    memset(&m, 0, sizeof(m));
    m.param.solver_type = st->solver;
    m.nr_class = (int)st->n_labels;
    m.nr_feature = (int)st->n_cols;
    m.w = st->w;
    m.label = (int *)st->labels;
    m.bias = 1.0;
    double dec[CML_MAX_LABELS];
    decisions(&m, nodes, st->nr_w, dec);
    if (nodes != stack_nodes)
        cml_free(nodes);

    double sum = 0;
    for (uint32_t c = 0; c < st->n_labels; c++) {
        probs[c] = cml_platt_apply(st->platt[c], dec[c]);
        sum += probs[c];
    }
    for (uint32_t c = 0; c < st->n_labels; c++)
        probs[c] = sum > 0 ? probs[c] / sum : 1.0 / st->n_labels;
    return CML_OK;
}

static void linear_set_calibration(void *state, cml_platt platt) {
    linear_state *st = state;
    if (st != NULL && st->nr_w == 1)
        st->platt[0] = platt;
}

static cml_err linear_serialize(const void *state, cml_buf *b) {
    const linear_state *st = state;
    cml_buf_put_u32(b, (uint32_t)st->solver);
    cml_buf_put_u32(b, st->n_labels);
    cml_buf_put_u32(b, st->n_cols);
    cml_buf_put_u32(b, st->nr_w);
    for (uint32_t k = 0; k < st->n_labels; k++)
        cml_buf_put_u32(b, (uint32_t)st->labels[k]);
    for (uint32_t k = 0; k < st->nr_w; k++) {
        cml_buf_put_f64(b, st->platt[k].a);
        cml_buf_put_f64(b, st->platt[k].b);
    }
    size_t nw = ((size_t)st->n_cols + 1) * st->nr_w;
    for (size_t i = 0; i < nw; i++)
        cml_buf_put_f32(b, (float)st->w[i]);
    return cml_buf_status(b);
}

static cml_err linear_deserialize(int solver, const uint8_t *p, size_t len, size_t n_labels,
                                  size_t n_cols, void **out, cml_diag *diag) {
    cml_reader r = cml_reader_init(p, len);
    linear_state *st = cml_calloc(1, sizeof(*st));
    *out = NULL;
    if (st == NULL)
        return CML_ERR_NOMEM;
    st->solver = (int)cml_read_u32(&r);
    st->n_labels = cml_read_u32(&r);
    st->n_cols = cml_read_u32(&r);
    st->nr_w = cml_read_u32(&r);
    if (r.failed || st->solver != solver || st->n_labels != n_labels || st->n_cols != n_cols ||
        n_labels < 2 || n_labels > CML_MAX_LABELS || st->nr_w != (n_labels == 2 ? 1 : n_labels))
        goto bad;
    bool seen[CML_MAX_LABELS] = {false};
    for (uint32_t k = 0; k < st->n_labels; k++) {
        uint32_t l = cml_read_u32(&r);
        if (l >= n_labels || seen[l])
            goto bad;
        seen[l] = true;
        st->labels[k] = (int)l;
    }
    for (uint32_t k = 0; k < st->nr_w; k++) {
        st->platt[k].a = cml_read_f64(&r);
        st->platt[k].b = cml_read_f64(&r);
        if (!isfinite(st->platt[k].a) || !isfinite(st->platt[k].b))
            goto bad;
    }
    size_t nw = ((size_t)st->n_cols + 1) * st->nr_w;
    if (r.failed || r.left != nw * 4)
        goto bad;
    st->w = cml_malloc(nw * sizeof(double));
    if (st->w == NULL) {
        linear_free(st);
        return CML_ERR_NOMEM;
    }
    for (size_t i = 0; i < nw; i++) {
        st->w[i] = cml_read_f32(&r);
        if (!isfinite(st->w[i]))
            goto bad;
    }
    *out = st;
    return CML_OK;
bad:
    linear_free(st);
    return cml_diag_set(diag, CML_ERR_FORMAT, "linear member payload is corrupt or inconsistent");
}

static cml_err logreg_deserialize(const uint8_t *p, size_t len, size_t nl, size_t nc, void **out,
                                  cml_diag *diag) {
    return linear_deserialize(L2R_LR, p, len, nl, nc, out, diag);
}

static cml_err svm_deserialize(const uint8_t *p, size_t len, size_t nl, size_t nc, void **out,
                               cml_diag *diag) {
    return linear_deserialize(L2R_L2LOSS_SVC_DUAL, p, len, nl, nc, out, diag);
}

const cml_member_ops cml_member_logreg = {
    .kind = CML_MEMBER_LOGREG,
    .name = "logistic_regression",
    .train = logreg_train,
    .predict = linear_predict,
    .serialize = linear_serialize,
    .deserialize = logreg_deserialize,
    .free_state = linear_free,
    .state_bytes = linear_bytes,
    .set_calibration = linear_set_calibration,
};

const cml_member_ops cml_member_linear_svm = {
    .kind = CML_MEMBER_LINEAR_SVM,
    .name = "linear_svm",
    .train = svm_train,
    .predict = linear_predict,
    .serialize = linear_serialize,
    .deserialize = svm_deserialize,
    .free_state = linear_free,
    .state_bytes = linear_bytes,
    .set_calibration = linear_set_calibration,
};

const cml_member_ops cml_member_logreg_words = {
    .kind = CML_MEMBER_LOGREG_WORDS,
    .name = "logistic_regression_words",
    .train = logreg_words_train,
    .predict = linear_predict,
    .serialize = linear_serialize,
    .deserialize = logreg_deserialize,
    .free_state = linear_free,
    .state_bytes = linear_bytes,
    .set_calibration = linear_set_calibration,
};

const cml_member_ops cml_member_logreg_chars = {
    .kind = CML_MEMBER_LOGREG_CHARS,
    .name = "logistic_regression_chars",
    .train = logreg_chars_train,
    .predict = linear_predict,
    .serialize = linear_serialize,
    .deserialize = logreg_deserialize,
    .free_state = linear_free,
    .state_bytes = linear_bytes,
    .set_calibration = linear_set_calibration,
};
