/*
 * Tree members on XGBoost's C API (tree_method=hist): gradient-boosted trees
 * and a random forest (one round of num_parallel_tree trees). Both work on
 * their own column selection (hand features plus the best term columns by
 * chi-square, see feature_select.h), with balanced class weights as row
 * weights.
 *
 * Probabilities: the boosted trees use binary:logistic (two labels) or
 * multi:softprob. The forest is trained with the same objectives, eta 1 and
 * no leaf regularisation, so every leaf holds one Newton step from the
 * uniform prior: an affine function of the weighted share of each class in
 * the leaf. Undoing that map on the margins gives the classic random-forest
 * estimate (the mean over trees of the leaf's class shares) instead of an
 * under-confident sigmoid.
 *
 * The payload is XGBoost's own UBJSON model. Prediction does not call
 * XGBoost: its single-row predict costs 13-16 us a call here (it re-reads
 * cgroup files and wakes OpenMP threads on every call). Instead the model
 * is loaded into a booster, dumped as JSON, checked (every child index and
 * feature in range, every tree a tree) and flattened into our own node
 * array, whose evaluation mirrors XGBoost's (missing values take the default
 * child, otherwise value < condition goes left; float sums from the base
 * margin in tree order). The flattened trees are then compared with the
 * booster's own margins on probe rows before the booster is freed. Training
 * goes through the same path from the saved bytes, so a trained model and
 * the same model reloaded predict bit-identically; prediction only reads the
 * state and is safe from any number of threads.
 */
#include "config.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

#include "cml_alloc.h"
#include "data_split.h"
#include "feature_select.h"
#include "member.h"

#define XGB_FORMAT 1
#define STACK_FEATURES 1024
#define STACK_ROW 512
#define MAX_BIN "32"
#define MIN_DF 3
#define PROBE_ROWS 24
#define MAX_TREE_DEPTH 64

typedef enum xgb_flavour { XGB_BOOST = 1, XGB_FOREST = 2 } xgb_flavour;

/* One node of a flattened tree; a leaf has left < 0 and its value in value. */
typedef struct xnode {
    int32_t left, right; /* indices into the state's node array */
    uint32_t feature;    /* member column; bit 31: missing values go left */
    float value;         /* split condition, or leaf value */
} xnode;

#define DEFAULT_LEFT 0x80000000u

typedef struct xgb_state {
    xgb_flavour flavour;
    uint32_t n_labels, n_cols;
    cml_colsel sel;
    uint32_t n_out;    /* output groups: 1 for two labels, else n_labels */
    float base_margin; /* margin every row starts from */
    size_t n_trees, n_nodes;
    uint32_t *root;  /* n_trees node indices */
    uint32_t *group; /* n_trees output groups */
    xnode *nodes;    /* n_nodes */
    uint8_t *model;  /* the booster as UBJSON, kept for serialisation; owned */
    size_t model_len;
} xgb_state;

/* Defaults of each flavour; cml_member_params fields override them when set. */
typedef struct xgb_defaults {
    int n_trees, max_depth;
    double learning_rate, subsample, colsample;
    size_t columns; /* term columns selected besides the hand features */
} xgb_defaults;

static const xgb_defaults boost_defaults = {
    .n_trees = 150,
    .max_depth = 5,
    .learning_rate = 0.15,
    .subsample = 0.8,
    .colsample = 0.5,
    .columns = 300,
};

static const xgb_defaults forest_defaults = {
    .n_trees = 100,
    .max_depth = 8,
    .learning_rate = 1.0,
    .subsample = 0.632,
    .colsample = 0.25,
    .columns = 200,
};

static void xgb_free(void *p) {
    xgb_state *st = p;
    if (st == NULL)
        return;
    cml_colsel_release(&st->sel);
    cml_free(st->root);
    cml_free(st->group);
    cml_free(st->nodes);
    cml_free(st->model);
    cml_free(st);
}

static size_t xgb_bytes(const void *p) {
    const xgb_state *st = p;
    return sizeof(*st) + cml_colsel_bytes(&st->sel) + st->n_trees * 2 * sizeof(uint32_t) +
           st->n_nodes * sizeof(xnode) + st->model_len;
}

/* Records XGBoost's last error (its first line) in diag; returns err. */
static cml_err xgb_fail(cml_diag *diag, cml_err err, const char *what) {
    const char *msg = XGBGetLastError();
    if (msg == NULL)
        msg = "";
    size_t n = strcspn(msg, "\n");
    if (n > 160)
        n = 160;
    return cml_diag_set(diag, err, "XGBoost %s: %.*s", what, (int)n, msg);
}

/*
 * Margins of one row given densely (NAN = missing) into m[0..n_out), as
 * XGBoost's predictor computes them: float sums from the base margin, tree by
 * tree.
 */
static void margins(const xgb_state *st, const float *x, float *m) {
    for (uint32_t g = 0; g < st->n_out; g++)
        m[g] = st->base_margin;
    for (size_t t = 0; t < st->n_trees; t++) {
        const xnode *nd = &st->nodes[st->root[t]];
        while (nd->left >= 0) {
            float v = x[nd->feature & ~DEFAULT_LEFT];
            bool left = isnan(v) ? (nd->feature & DEFAULT_LEFT) != 0 : v < nd->value;
            nd = &st->nodes[left ? nd->left : nd->right];
        }
        m[st->group[t]] += nd->value;
    }
}

/* Probabilities from the margins into probs[0..n_labels). */
static void margins_to_probs(const xgb_state *st, const float *m, double *probs) {
    uint32_t L = st->n_labels;
    if (st->flavour == XGB_BOOST && L == 2) {
        probs[1] = 1.0 / (1.0 + exp(-(double)m[0]));
        probs[0] = 1.0 - probs[1];
        return;
    }
    if (st->flavour == XGB_BOOST) {
        double mx = m[0], sum = 0;
        for (uint32_t c = 1; c < L; c++)
            mx = m[c] > mx ? m[c] : mx;
        for (uint32_t c = 0; c < L; c++)
            sum += probs[c] = exp((double)m[c] - mx);
        for (uint32_t c = 0; c < L; c++)
            probs[c] /= sum;
        return;
    }
    if (L == 2) {
        /* A leaf of logistic loss from margin 0 holds 4 * (share of class 1 - 1/2). */
        probs[1] = 0.5 + (double)m[0] / 4.0;
        probs[0] = 1.0 - probs[1];
    } else {
        /* Softmax leaves hold (share - 1/L) * L^2 / (2 (L - 1)); their mean over classes is 0. */
        double mean = 0;
        for (uint32_t c = 0; c < L; c++)
            mean += m[c];
        mean /= L;
        double scale = 2.0 * (L - 1) / ((double)L * L);
        for (uint32_t c = 0; c < L; c++)
            probs[c] = 1.0 / L + ((double)m[c] - mean) * scale;
    }
    double sum = 0;
    for (uint32_t c = 0; c < L; c++) {
        if (!(probs[c] >= 0)) /* also catches NaN */
            probs[c] = 0;
        if (probs[c] > 1)
            probs[c] = 1;
        sum += probs[c];
    }
    for (uint32_t c = 0; c < L; c++)
        probs[c] = sum > 0 ? probs[c] / sum : 1.0 / L;
}

/* --- reading the booster's JSON dump ------------------------------------ */

static json_object *path_get(json_object *o, const char *const *keys, size_t n) {
    for (size_t i = 0; i < n && o != NULL; i++)
        if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, keys[i], &o))
            return NULL;
    return o;
}
#define PATH(o, ...)                                                                               \
    path_get((o), (const char *const[]){__VA_ARGS__},                                              \
             sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

/* A JSON string holding a decimal number (XGBoost writes parameters so). */
static bool str_number(json_object *o, double *out) {
    if (o == NULL || !json_object_is_type(o, json_type_string))
        return false;
    const char *s = json_object_get_string(o);
    char *end = NULL;
    *out = strtod(s, &end);
    return end != s && *end == '\0' && isfinite(*out);
}

/* An array of exactly n numbers. */
static json_object *num_array(json_object *tree, const char *key, size_t n) {
    json_object *a = NULL;
    if (!json_object_object_get_ex(tree, key, &a) || !json_object_is_type(a, json_type_array) ||
        json_object_array_length(a) != n)
        return NULL;
    return a;
}

static bool array_int(json_object *a, size_t i, int64_t *out) {
    json_object *v = json_object_array_get_idx(a, i);
    if (v == NULL || !json_object_is_type(v, json_type_int))
        return false;
    *out = json_object_get_int64(v);
    return true;
}

static bool array_float(json_object *a, size_t i, float *out) {
    json_object *v = json_object_array_get_idx(a, i);
    if (v == NULL || !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
        return false;
    double d = json_object_get_double(v);
    *out = (float)d;
    return isfinite(d) && isfinite(*out);
}

/*
 * Appends one tree of the dump to st->nodes (capacity *cap, grown here),
 * renumbered breadth-first from its root. False when the tree is malformed:
 * arrays of the wrong length, a child out of range, a node reached twice, a
 * feature outside the selection, a categorical split or a non-finite value.
 */
static bool add_tree(xgb_state *st, json_object *tree, size_t *cap, int32_t *map, size_t map_cap) {
    double nn = 0;
    if (!str_number(PATH(tree, "tree_param", "num_nodes"), &nn) || nn < 1 || nn > (double)map_cap)
        return false;
    size_t n = (size_t)nn;
    json_object *left = num_array(tree, "left_children", n), *right = num_array(tree, "right_children", n),
                *feat = num_array(tree, "split_indices", n), *cond = num_array(tree, "split_conditions", n),
                *dflt = num_array(tree, "default_left", n), *type = num_array(tree, "split_type", n);
    if (left == NULL || right == NULL || feat == NULL || cond == NULL || dflt == NULL || type == NULL)
        return false;
    if (st->n_nodes + n > *cap) {
        size_t ncap = *cap ? *cap : 1024;
        while (ncap < st->n_nodes + n)
            ncap *= 2;
        if (ncap > INT32_MAX)
            return false;
        xnode *p = cml_realloc(st->nodes, ncap * sizeof(xnode));
        if (p == NULL)
            return false;
        st->nodes = p;
        *cap = ncap;
    }
    for (size_t i = 0; i < n; i++)
        map[i] = -1;
    /* Breadth-first from the root: xgb node queue[k] becomes our node base + k. */
    size_t base = st->n_nodes, head = 0, tail = 0;
    int32_t *queue = map + map_cap; /* the second half of the scratch */
    queue[tail++] = 0;
    map[0] = 0;
    while (head < tail) {
        size_t i = (size_t)queue[head];
        int64_t l, r, f, d, ty;
        float c;
        if (!array_int(left, i, &l) || !array_int(right, i, &r) || !array_int(feat, i, &f) ||
            !array_int(dflt, i, &d) || !array_int(type, i, &ty) || !array_float(cond, i, &c) ||
            ty != 0)
            return false;
        xnode *nd = &st->nodes[base + head];
        nd->value = c;
        if (l == -1 && r == -1) {
            nd->left = nd->right = -1;
            nd->feature = 0;
        } else {
            if (l < 0 || r < 0 || l >= (int64_t)n || r >= (int64_t)n || l == r || map[l] >= 0 ||
                map[r] >= 0 || f < 0 || f >= (int64_t)st->sel.n_sel)
                return false;
            map[l] = (int32_t)tail;
            queue[tail++] = (int32_t)l;
            map[r] = (int32_t)tail;
            queue[tail++] = (int32_t)r;
            nd->left = (int32_t)(base + (size_t)map[l]);
            nd->right = (int32_t)(base + (size_t)map[r]);
            nd->feature = (uint32_t)f | (d ? DEFAULT_LEFT : 0);
        }
        head++;
    }
    st->n_nodes = base + tail; /* nodes not reached from the root (deleted ones) are dropped */
    return true;
}

/* Depth of the deepest leaf below node i (iterative-free: trees are shallow and checked). */
static bool depth_ok(const xgb_state *st, uint32_t i, int depth) {
    if (depth > MAX_TREE_DEPTH)
        return false;
    const xnode *nd = &st->nodes[i];
    return nd->left < 0 || (depth_ok(st, (uint32_t)nd->left, depth + 1) &&
                            depth_ok(st, (uint32_t)nd->right, depth + 1));
}

/*
 * Flattens the booster's trees into st (arrays owned by st) after checking
 * the model fits the state: objective, number of classes and features, base
 * score. CML_ERR_FORMAT when it does not.
 */
static cml_err flatten(BoosterHandle b, xgb_state *st, cml_diag *diag) {
    cml_err err = CML_OK;
    bst_ulong len = 0;
    const char *text = NULL;
    json_tokener *tok = NULL;
    json_object *root = NULL;
    int32_t *scratch = NULL;
    size_t cap = 0;
    if (XGBoosterSaveModelToBuffer(b, "{\"format\":\"json\"}", &len, &text) != 0 || text == NULL ||
        len > INT32_MAX) {
        err = xgb_fail(diag, CML_ERR_FORMAT, "cannot describe the member's model");
        goto done;
    }
    tok = json_tokener_new_ex(64);
    root = tok ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
    if (root == NULL) {
        err = cml_diag_set(diag, tok ? CML_ERR_FORMAT : CML_ERR_NOMEM,
                           "tree member model is not valid JSON");
        goto done;
    }
    json_object *learner = PATH(root, "learner");
    json_object *obj = PATH(learner, "objective", "name");
    json_object *gb = PATH(learner, "gradient_booster", "name");
    json_object *trees = PATH(learner, "gradient_booster", "model", "trees");
    json_object *info = PATH(learner, "gradient_booster", "model", "tree_info");
    double base = 0, n_class = 0, n_feat = 0;
    const char *want = st->n_labels == 2 ? "binary:logistic" : "multi:softprob";
    if (obj == NULL || !json_object_is_type(obj, json_type_string) ||
        strcmp(json_object_get_string(obj), want) != 0 || gb == NULL ||
        !json_object_is_type(gb, json_type_string) || strcmp(json_object_get_string(gb), "gbtree") != 0 ||
        !str_number(PATH(learner, "learner_model_param", "base_score"), &base) ||
        !str_number(PATH(learner, "learner_model_param", "num_class"), &n_class) ||
        !str_number(PATH(learner, "learner_model_param", "num_feature"), &n_feat) ||
        n_feat != st->sel.n_sel || n_class != (st->n_labels == 2 ? 0 : st->n_labels) ||
        !(base > 0 && base < 1) || trees == NULL || !json_object_is_type(trees, json_type_array) ||
        info == NULL || !json_object_is_type(info, json_type_array) ||
        json_object_array_length(trees) != json_object_array_length(info) ||
        json_object_array_length(trees) == 0) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "tree member model does not fit this model");
        goto done;
    }
    /* XGBoost's margin of the base score: logit for logistic, itself for softmax. */
    st->base_margin = st->n_labels == 2 ? -logf(1.0f / (float)base - 1.0f) : (float)base;
    st->n_trees = json_object_array_length(trees);
    st->root = cml_malloc(st->n_trees * sizeof(uint32_t));
    st->group = cml_malloc(st->n_trees * sizeof(uint32_t));
    size_t map_cap = (size_t)1 << 20; /* nodes per tree at most */
    size_t biggest = 1;
    for (size_t t = 0; t < st->n_trees; t++) {
        double nn = 0;
        if (str_number(PATH(json_object_array_get_idx(trees, t), "tree_param", "num_nodes"), &nn) &&
            nn > biggest && nn <= (double)map_cap)
            biggest = (size_t)nn;
    }
    scratch = cml_malloc(2 * biggest * sizeof(int32_t));
    if (st->root == NULL || st->group == NULL || scratch == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    for (size_t t = 0; t < st->n_trees; t++) {
        int64_t g;
        st->root[t] = (uint32_t)st->n_nodes;
        if (!array_int(info, t, &g) || g < 0 || g >= st->n_out ||
            !add_tree(st, json_object_array_get_idx(trees, t), &cap, scratch, biggest) ||
            !depth_ok(st, st->root[t], 0)) {
            err = cml_diag_set(diag, CML_ERR_FORMAT, "tree %zu of the member is malformed", t);
            goto done;
        }
        st->group[t] = (uint32_t)g;
    }
done:
    json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    cml_free(scratch);
    return err;
}

/*
 * Compares the flattened trees with the booster's own margins on seeded
 * probe rows (the empty row, then rows of random values). CML_ERR_FORMAT
 * when they differ, which would mean the trees were not read as XGBoost
 * reads them.
 */
static cml_err verify(BoosterHandle b, const xgb_state *st, cml_diag *diag) {
    cml_err err = CML_OK;
    uint32_t d = st->sel.n_sel;
    float *dense = cml_malloc((size_t)PROBE_ROWS * d * sizeof(float));
    DMatrixHandle dm = NULL;
    bst_ulong len = 0;
    const float *res = NULL;
    float m[CML_MAX_LABELS];
    if (dense == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    cml_rng rng = {.state = 0x70726f6265ull};
    for (size_t i = 0; i < (size_t)PROBE_ROWS * d; i++) {
        uint64_t r = cml_rng_next(&rng);
        /* Row 0 is empty; the others have about a third of their columns set. */
        dense[i] = i >= d && r % 3 == 0 ? (float)((r >> 11) % 1000) / 800.0f : NAN;
    }
    if (XGDMatrixCreateFromMat(dense, PROBE_ROWS, d, NAN, &dm) != 0 ||
        XGBoosterPredict(b, dm, 1, 0, 0, &len, &res) != 0 || res == NULL ||
        len != (bst_ulong)PROBE_ROWS * st->n_out) {
        err = xgb_fail(diag, CML_ERR_FORMAT, "cannot predict with the member's model");
        goto done;
    }
    for (size_t i = 0; i < PROBE_ROWS; i++) {
        margins(st, dense + i * d, m);
        for (uint32_t g = 0; g < st->n_out; g++) {
            float want = res[i * st->n_out + g];
            if (!(fabsf(m[g] - want) <= 1e-5f * (1.0f + fabsf(want)))) {
                err = cml_diag_set(diag, CML_ERR_FORMAT,
                                   "tree member evaluates to %g where XGBoost gives %g", (double)m[g],
                                   (double)want);
                goto done;
            }
        }
    }
done:
    if (dm != NULL)
        XGDMatrixFree(dm);
    cml_free(dense);
    return err;
}

/*
 * Builds the state's trees from st->model: loads it into a temporary
 * booster, flattens and verifies it. CML_ERR_FORMAT when the bytes are not a
 * model fitting the state.
 */
static cml_err compile_model(xgb_state *st, cml_diag *diag) {
    cml_err err = CML_OK;
    BoosterHandle b = NULL;
    st->n_out = st->n_labels == 2 ? 1 : st->n_labels;
    if (XGBoosterCreate(NULL, 0, &b) != 0) {
        err = xgb_fail(diag, CML_ERR_INTERNAL, "could not create a booster");
        goto done;
    }
    if (XGBoosterLoadModelFromBuffer(b, st->model, st->model_len) != 0) {
        err = xgb_fail(diag, CML_ERR_FORMAT, "could not load the member's model");
        goto done;
    }
    if (XGBoosterSetParam(b, "nthread", "1") != 0 || XGBoosterSetParam(b, "verbosity", "0") != 0) {
        err = xgb_fail(diag, CML_ERR_INTERNAL, "refused a parameter");
        goto done;
    }
    if ((err = flatten(b, st, diag)) != CML_OK || (err = verify(b, st, diag)) != CML_OK)
        goto done;
done:
    if (b != NULL)
        XGBoosterFree(b);
    return err;
}

/* --- training ------------------------------------------------------------ */

static cml_err set_param(BoosterHandle b, const char *key, const char *value, cml_diag *diag) {
    if (XGBoosterSetParam(b, key, value) != 0)
        return xgb_fail(diag, CML_ERR_TRAIN, "refused a parameter");
    return CML_OK;
}

static cml_err set_param_num(BoosterHandle b, const char *key, double value, cml_diag *diag) {
    char text[40];
    snprintf(text, sizeof text, "%.17g", value);
    return set_param(b, key, text, diag);
}

/* Training settings of the flavour, with the member params applied. */
static cml_err configure(BoosterHandle b, xgb_flavour flavour, const cml_train_set *ts,
                         const cml_member_params *mp, int *rounds, cml_diag *diag) {
    const xgb_defaults *d = flavour == XGB_BOOST ? &boost_defaults : &forest_defaults;
    int n_trees = mp && mp->n_trees > 0 ? mp->n_trees : d->n_trees;
    int depth = mp && mp->max_depth > 0 ? mp->max_depth : d->max_depth;
    double eta = mp && mp->learning_rate > 0 ? mp->learning_rate : d->learning_rate;
    double subsample = mp && mp->subsample > 0 && mp->subsample <= 1 ? mp->subsample : d->subsample;
    double colsample = mp && mp->colsample > 0 && mp->colsample <= 1 ? mp->colsample : d->colsample;
    int threads = mp && mp->n_threads > 0 ? mp->n_threads : 2;
    uint64_t seed = mp ? mp->seed : 42;
    size_t L = ts->n_labels;
    /* Hessian of one unit-weight row at the uniform prior. */
    double h0 = L == 2 ? 0.25 : 2.0 * (double)(L - 1) / ((double)L * (double)L);
    cml_err err;
    if (depth > 16)
        depth = 16;
    if ((err = set_param(b, "verbosity", "0", diag)) != CML_OK ||
        (err = set_param(b, "tree_method", "hist", diag)) != CML_OK ||
        (err = set_param(b, "max_bin", MAX_BIN, diag)) != CML_OK ||
        (err = set_param_num(b, "nthread", threads, diag)) != CML_OK ||
        (err = set_param_num(b, "seed", (double)(seed % 2147483647u), diag)) != CML_OK ||
        (err = set_param(b, "base_score", "0.5", diag)) != CML_OK ||
        (err = set_param_num(b, "max_depth", depth, diag)) != CML_OK ||
        (err = set_param_num(b, "subsample", subsample, diag)) != CML_OK)
        return err;
    if (L == 2)
        err = set_param(b, "objective", "binary:logistic", diag);
    else if ((err = set_param(b, "objective", "multi:softprob", diag)) == CML_OK)
        err = set_param_num(b, "num_class", (double)L, diag);
    if (err != CML_OK)
        return err;
    if (flavour == XGB_BOOST) {
        *rounds = n_trees;
        if ((err = set_param_num(b, "eta", eta, diag)) != CML_OK ||
            (err = set_param_num(b, "colsample_bytree", colsample, diag)) != CML_OK ||
            (err = set_param(b, "min_child_weight", "1", diag)) != CML_OK)
            return err;
    } else {
        /* One round of n_trees trees; eta 1 and lambda 0 keep leaves exact class shares. */
        *rounds = 1;
        if ((err = set_param_num(b, "num_parallel_tree", n_trees, diag)) != CML_OK ||
            (err = set_param(b, "eta", "1", diag)) != CML_OK ||
            (err = set_param(b, "lambda", "0", diag)) != CML_OK ||
            (err = set_param(b, "alpha", "0", diag)) != CML_OK ||
            (err = set_param(b, "max_delta_step", "0", diag)) != CML_OK ||
            (err = set_param_num(b, "colsample_bynode", colsample, diag)) != CML_OK ||
            (err = set_param_num(b, "min_child_weight", 2 * h0, diag)) != CML_OK)
            return err;
    }
    return CML_OK;
}

/* Trains a new state (owned by the caller via *out, freed with xgb_free). */
static cml_err xgb_train(xgb_flavour flavour, const cml_train_set *ts, const cml_member_params *mp,
                         void **out, cml_diag *diag) {
    cml_err err = CML_OK;
    cml_csr sub = {0};
    DMatrixHandle dm = NULL;
    BoosterHandle b = NULL;
    float *label = NULL, *weight = NULL;
    xgb_state *st = cml_calloc(1, sizeof(*st));
    const xgb_defaults *d = flavour == XGB_BOOST ? &boost_defaults : &forest_defaults;
    *out = NULL;
    if (st == NULL)
        return CML_ERR_NOMEM;
    size_t n = ts->X->n_rows;
    if (ts->n_labels < 2 || ts->n_labels > CML_MAX_LABELS || n == 0 || ts->X->n_cols == 0 ||
        ts->X->n_cols > UINT32_MAX) {
        err = cml_diag_set(diag, CML_ERR_DATA, "tree members need rows, columns and 2 to %d labels",
                           CML_MAX_LABELS);
        goto done;
    }
    st->flavour = flavour;
    st->n_labels = (uint32_t)ts->n_labels;
    st->n_cols = (uint32_t)ts->X->n_cols;
    if ((err = cml_colsel_fit(ts->X, ts->y, ts->n_labels, ts->class_weight, d->columns, MIN_DF,
                              &st->sel)) != CML_OK ||
        (err = cml_colsel_matrix(&st->sel, ts->X, &sub)) != CML_OK)
        goto done;
    label = cml_malloc(n * sizeof(float));
    weight = cml_malloc(n * sizeof(float));
    if (label == NULL || weight == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        label[i] = (float)ts->y[i];
        weight[i] = (float)(ts->class_weight ? ts->class_weight[ts->y[i]] : 1.0);
    }
    size_t nnz = sub.indptr[n];
    unsigned no_idx = 0;
    float no_val = 0;
    if (XGDMatrixCreateFromCSREx(sub.indptr, nnz ? (const unsigned *)sub.indices : &no_idx,
                                 nnz ? sub.values : &no_val, n + 1, nnz, st->sel.n_sel, &dm) != 0 ||
        XGDMatrixSetFloatInfo(dm, "label", label, n) != 0 ||
        XGDMatrixSetFloatInfo(dm, "weight", weight, n) != 0) {
        err = xgb_fail(diag, CML_ERR_TRAIN, "could not build the training matrix");
        goto done;
    }
    if (XGBoosterCreate(&dm, 1, &b) != 0) {
        err = xgb_fail(diag, CML_ERR_TRAIN, "could not create a booster");
        goto done;
    }
    int rounds = 0;
    if ((err = configure(b, flavour, ts, mp, &rounds, diag)) != CML_OK)
        goto done;
    for (int it = 0; it < rounds; it++)
        if (XGBoosterUpdateOneIter(b, it, dm) != 0) {
            err = xgb_fail(diag, CML_ERR_TRAIN, "could not train");
            goto done;
        }
    bst_ulong len = 0;
    const char *raw = NULL;
    if (XGBoosterSaveModelToBuffer(b, "{\"format\":\"ubj\"}", &len, &raw) != 0 || raw == NULL ||
        len == 0) {
        err = xgb_fail(diag, CML_ERR_TRAIN, "could not save the model");
        goto done;
    }
    /* The buffer belongs to the booster: copy it before anything else runs on it. */
    if ((st->model = cml_malloc(len)) == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    memcpy(st->model, raw, len);
    st->model_len = len;
    XGBoosterFree(b);
    b = NULL;
    XGDMatrixFree(dm);
    dm = NULL;
    /* The same path as loading a file: what we predict with is what we save. */
    if ((err = compile_model(st, diag)) != CML_OK) {
        if (err == CML_ERR_FORMAT)
            err = CML_ERR_TRAIN;
        goto done;
    }
    *out = st;
    st = NULL;
done:
    if (b != NULL)
        XGBoosterFree(b);
    if (dm != NULL)
        XGDMatrixFree(dm);
    cml_csr_free(&sub);
    cml_free(label);
    cml_free(weight);
    xgb_free(st);
    return err;
}

static cml_err boost_train(const cml_train_set *ts, const cml_member_params *p, void **out,
                           cml_diag *diag) {
    return xgb_train(XGB_BOOST, ts, p, out, diag);
}

static cml_err forest_train(const cml_train_set *ts, const cml_member_params *p, void **out,
                            cml_diag *diag) {
    return xgb_train(XGB_FOREST, ts, p, out, diag);
}

/* Fills probs[0..n_labels); nothing to free. Only reads the state: thread-safe. */
static cml_err xgb_predict(const void *state, const cml_sparse *x, double *probs) {
    const xgb_state *st = state;
    cml_err err = CML_OK;
    float dense_stack[STACK_FEATURES];
    float *dense = dense_stack;
    uint32_t d = st->sel.n_sel;
    float m[CML_MAX_LABELS];
    if (d > STACK_FEATURES && (dense = cml_malloc((size_t)d * sizeof(float))) == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    for (uint32_t j = 0; j < d; j++)
        dense[j] = NAN;
    for (int i = 0; i < x->n; i++) {
        int c = x->idx[i];
        if (c >= 0 && (uint32_t)c < st->sel.n_src && st->sel.pos[c] >= 0)
            dense[st->sel.pos[c]] = x->val[i];
    }
    margins(st, dense, m);
    margins_to_probs(st, m, probs);
done:
    if (dense != dense_stack)
        cml_free(dense);
    return err;
}

/*
 * Payload: u32 format | u32 flavour | u32 n_labels | u32 n_cols | selection
 * | u64 model length | UBJSON model | SHA-256 of all before it.
 */
static cml_err xgb_serialize(const void *state, cml_buf *b) {
    const xgb_state *st = state;
    size_t start = b->len;
    cml_buf_put_u32(b, XGB_FORMAT);
    cml_buf_put_u32(b, (uint32_t)st->flavour);
    cml_buf_put_u32(b, st->n_labels);
    cml_buf_put_u32(b, st->n_cols);
    cml_colsel_write(&st->sel, b);
    cml_buf_put_u64(b, st->model_len);
    cml_buf_put(b, st->model, st->model_len);
    cml_payload_seal(b, start);
    return cml_buf_status(b);
}

/* A new state (the caller's, freed with xgb_free) from a payload; CML_ERR_FORMAT if unfit. */
static cml_err xgb_deserialize(xgb_flavour flavour, const uint8_t *p, size_t len, size_t n_labels,
                               size_t n_cols, void **out, cml_diag *diag) {
    cml_err err = CML_OK;
    size_t body = 0;
    xgb_state *st = NULL;
    *out = NULL;
    if (!cml_payload_check(p, len, &body)) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "tree member payload is damaged (seal mismatch)");
        goto done;
    }
    cml_reader r = cml_reader_init(p, body);
    if ((st = cml_calloc(1, sizeof(*st))) == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    uint32_t format = cml_read_u32(&r), fl = cml_read_u32(&r);
    st->flavour = flavour;
    st->n_labels = cml_read_u32(&r);
    st->n_cols = cml_read_u32(&r);
    if (r.failed || format != XGB_FORMAT || fl != (uint32_t)flavour || st->n_labels != n_labels ||
        st->n_cols != n_cols || n_labels < 2 || n_labels > CML_MAX_LABELS) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "tree member payload does not fit this model");
        goto done;
    }
    if ((err = cml_colsel_read(&r, st->n_cols, &st->sel)) != CML_OK) {
        if (err == CML_ERR_FORMAT)
            cml_diag_set(diag, err, "tree member column selection is corrupt");
        goto done;
    }
    uint64_t model_len = cml_read_u64(&r);
    if (r.failed || model_len == 0 || model_len != r.left) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "tree member model length is wrong");
        goto done;
    }
    if ((st->model = cml_malloc((size_t)model_len)) == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    memcpy(st->model, cml_read_bytes(&r, (size_t)model_len), (size_t)model_len);
    st->model_len = (size_t)model_len;
    if ((err = compile_model(st, diag)) != CML_OK)
        goto done;
    *out = st;
    st = NULL;
done:
    xgb_free(st);
    return err;
}

static cml_err boost_deserialize(const uint8_t *p, size_t len, size_t nl, size_t nc, void **out,
                                 cml_diag *diag) {
    return xgb_deserialize(XGB_BOOST, p, len, nl, nc, out, diag);
}

static cml_err forest_deserialize(const uint8_t *p, size_t len, size_t nl, size_t nc, void **out,
                                  cml_diag *diag) {
    return xgb_deserialize(XGB_FOREST, p, len, nl, nc, out, diag);
}

const cml_member_ops cml_member_boosted_trees = {
    .kind = CML_MEMBER_BOOSTED_TREES,
    .name = "boosted_trees",
    .train = boost_train,
    .predict = xgb_predict,
    .serialize = xgb_serialize,
    .deserialize = boost_deserialize,
    .free_state = xgb_free,
    .state_bytes = xgb_bytes,
};

const cml_member_ops cml_member_random_forest = {
    .kind = CML_MEMBER_RANDOM_FOREST,
    .name = "random_forest",
    .train = forest_train,
    .predict = xgb_predict,
    .serialize = xgb_serialize,
    .deserialize = forest_deserialize,
    .free_state = xgb_free,
    .state_bytes = xgb_bytes,
};
