/*
 * A small neural network member: one hidden layer trained by FANN with
 * incremental back-propagation, on the member's own column selection (hand
 * features plus the best term columns by chi-square, see feature_select.h),
 * each column scaled to [0, 1] by its largest training value.
 *
 * FANN is only used to train. fann_run writes into the network, so the
 * trained weights are copied into our own arrays and prediction is our own
 * forward pass over the sparse row, computing each neuron as FANN does
 * (sum of weights times inputs, times the steepness, clipped at 150 /
 * steepness, then FANN's sigmoid or symmetric sigmoid). It is read-only and
 * safe from any number of threads. The payload is our own binary (FANN's
 * text format depends on LC_NUMERIC).
 *
 * Class weights are applied by oversampling: each epoch presents a row
 * floor(w) or ceil(w) times (w its balanced class weight), in an order
 * shuffled with the member's seed. Weights are initialised from the same
 * seed, so training is deterministic.
 */
#include "config.h"

#include <fann.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/cml_alloc.h"
#include "learn/data_split.h"
#include "learn/feature_select.h"
#include "learn/member.h"

#define MLP_FORMAT 1
#define MAX_HIDDEN 512
#define STACK_ROW 512
#define MIN_DF 3

/* Defaults; cml_member_params.hidden and .epochs override them when set. */
#define DEFAULT_HIDDEN 16
#define DEFAULT_EPOCHS 8
#define DEFAULT_COLUMNS 300
#define LEARNING_RATE 0.3f
#define MOMENTUM 0.5f
#define STEEPNESS 0.5f

typedef struct mlp_state {
    uint32_t n_labels, n_cols;
    cml_colsel sel;
    uint32_t n_in, n_hidden, n_out;
    uint32_t act_hidden, act_out; /* FANN activation functions */
    float steep_hidden, steep_out;
    float *scale; /* n_in input scales */
    float *w1;    /* (n_in + 1) x n_hidden, input-major; the last row is the bias */
    float *w2;    /* (n_hidden + 1) x n_out, hidden-major; the last row is the bias */
} mlp_state;

/* Frees a state and everything it owns; accepts NULL. */
static void mlp_free(void *p) {
    mlp_state *st = p;
    if (st == NULL)
        return;
    cml_colsel_release(&st->sel);
    cml_free(st->scale);
    cml_free(st->w1);
    cml_free(st->w2);
    cml_free(st);
}

/* Weights into the hidden layer and into the output layer (biases included). */
static size_t n_w1(const mlp_state *st) { return ((size_t)st->n_in + 1) * st->n_hidden; }
static size_t n_w2(const mlp_state *st) { return ((size_t)st->n_hidden + 1) * st->n_out; }

/* Bytes the state holds. */
static size_t mlp_bytes(const void *p) {
    const mlp_state *st = p;
    return sizeof(*st) + cml_colsel_bytes(&st->sel) +
           (st->n_in + n_w1(st) + n_w2(st)) * sizeof(float);
}

/* Allocates the weight and scale arrays of st (owned by st) from its sizes. */
static cml_err alloc_arrays(mlp_state *st) {
    st->scale = cml_malloc((size_t)st->n_in * sizeof(float));
    st->w1 = cml_malloc(n_w1(st) * sizeof(float));
    st->w2 = cml_malloc(n_w2(st) * sizeof(float));
    return st->scale && st->w1 && st->w2 ? CML_OK : CML_ERR_NOMEM;
}

/* A neuron's output from its weighted sum, computed as fann_run does (float FANN). */
static float activate(uint32_t act, float steepness, float sum) {
    float max_sum = 150 / steepness;
    sum = steepness * sum;
    if (sum > max_sum)
        sum = max_sum;
    else if (sum < -max_sum)
        sum = -max_sum;
    if (act == FANN_SIGMOID_SYMMETRIC)
        return (float)(2.0f / (1.0f + exp(-2.0f * sum)) - 1.0f);
    return (float)(1.0f / (1.0f + exp(-2.0f * sum)));
}

/*
 * Outputs of the network for a row mapped to the member's columns (n pairs
 * of column and raw value) into out[0..n_out).
 */
static void forward(const mlp_state *st, const uint32_t *idx, const float *val, size_t n,
                    float *out) {
    float acc[MAX_HIDDEN], h[MAX_HIDDEN];
    uint32_t H = st->n_hidden;
    const float *bias = st->w1 + (size_t)st->n_in * H;
    for (uint32_t j = 0; j < H; j++)
        acc[j] = bias[j];
    for (size_t e = 0; e < n; e++) {
        float x = val[e] * st->scale[idx[e]];
        const float *w = st->w1 + (size_t)idx[e] * H;
        for (uint32_t j = 0; j < H; j++)
            acc[j] += w[j] * x;
    }
    for (uint32_t j = 0; j < H; j++)
        h[j] = activate(st->act_hidden, st->steep_hidden, acc[j]);
    for (uint32_t k = 0; k < st->n_out; k++) {
        float s = st->w2[(size_t)H * st->n_out + k];
        for (uint32_t j = 0; j < H; j++)
            s += st->w2[(size_t)j * st->n_out + k] * h[j];
        out[k] = activate(st->act_out, st->steep_out, s);
    }
}

/* Probabilities from the network's outputs into probs[0..n_labels). */
static void outputs_to_probs(const mlp_state *st, const float *out, double *probs) {
    uint32_t L = st->n_labels;
    if (L == 2) {
        probs[1] = out[0];
        probs[0] = 1.0 - probs[1];
        return;
    }
    double sum = 0;
    for (uint32_t c = 0; c < L; c++)
        sum += out[c] > 0 ? out[c] : 0;
    for (uint32_t c = 0; c < L; c++)
        probs[c] = sum > 0 ? (out[c] > 0 ? out[c] : 0) / sum : 1.0 / L;
}

/* Uniform in [-r, r) from the member's generator. */
static float uniform(cml_rng *rng, float r) {
    double u = (double)(cml_rng_next(rng) >> 11) / 9007199254740992.0;
    return (float)((2.0 * u - 1.0) * r);
}

/*
 * Seeds the network's weights from rng (fan-in scaled) and returns its
 * connection array (the caller frees it with cml_free), or NULL on OOM.
 */
static struct fann_connection *init_weights(struct fann *ann, const mlp_state *st, cml_rng *rng) {
    unsigned total = fann_get_total_connections(ann);
    struct fann_connection *con = cml_malloc((size_t)total * sizeof(*con));
    if (con == NULL)
        return NULL;
    fann_get_connection_array(ann, con);
    for (unsigned i = 0; i < total; i++) {
        /* Neurons are numbered layer by layer, each layer ending with its bias. */
        bool to_hidden = con[i].to_neuron <= st->n_in + st->n_hidden;
        float fan_in = to_hidden ? 1.0f + 0.1f * (float)st->n_in : (float)st->n_hidden + 1.0f;
        con[i].weight = uniform(rng, 2.0f / sqrtf(fan_in));
    }
    fann_set_weight_array(ann, con, total);
    return con;
}

/* Copies the trained weights of ann into st; CML_ERR_TRAIN if they do not fit or are not finite. */
static cml_err take_weights(struct fann *ann, struct fann_connection *con, mlp_state *st) {
    unsigned total = fann_get_total_connections(ann);
    size_t want = n_w1(st) + n_w2(st);
    uint32_t first_hidden = st->n_in + 1, first_out = first_hidden + st->n_hidden + 1;
    if (total != want)
        return CML_ERR_TRAIN;
    fann_get_connection_array(ann, con);
    for (size_t i = 0; i < n_w1(st); i++)
        st->w1[i] = NAN;
    for (size_t i = 0; i < n_w2(st); i++)
        st->w2[i] = NAN;
    for (unsigned i = 0; i < total; i++) {
        uint32_t from = con[i].from_neuron, to = con[i].to_neuron;
        if (to >= first_hidden && to < first_hidden + st->n_hidden && from <= st->n_in)
            st->w1[(size_t)from * st->n_hidden + (to - first_hidden)] = con[i].weight;
        else if (to >= first_out && to < first_out + st->n_out && from >= first_hidden &&
                 from <= first_hidden + st->n_hidden)
            st->w2[(size_t)(from - first_hidden) * st->n_out + (to - first_out)] = con[i].weight;
        else
            return CML_ERR_TRAIN;
    }
    for (size_t i = 0; i < n_w1(st); i++)
        if (!isfinite(st->w1[i]))
            return CML_ERR_TRAIN;
    for (size_t i = 0; i < n_w2(st); i++)
        if (!isfinite(st->w2[i]))
            return CML_ERR_TRAIN;
    return CML_OK;
}

/*
 * Compares our forward pass with fann_run on the first training rows (in is
 * an all-zero scratch of n_in floats, left so). CML_ERR_TRAIN when they
 * differ by more than float rounding.
 */
static cml_err check_forward(struct fann *ann, const mlp_state *st, const cml_csr *sub, float *in) {
    uint32_t idx[STACK_ROW];
    float val[STACK_ROW], ours[CML_MAX_LABELS];
    for (size_t i = 0; i < sub->n_rows && i < 32; i++) {
        size_t a = sub->indptr[i], n = sub->indptr[i + 1] - a;
        if (n > STACK_ROW)
            continue;
        for (size_t e = 0; e < n; e++) {
            idx[e] = (uint32_t)sub->indices[a + e];
            val[e] = sub->values[a + e];
            in[idx[e]] = val[e] * st->scale[idx[e]];
        }
        const fann_type *theirs = fann_run(ann, in);
        for (size_t e = 0; e < n; e++)
            in[idx[e]] = 0;
        forward(st, idx, val, n, ours);
        for (uint32_t k = 0; k < st->n_out; k++)
            if (!(fabsf(ours[k] - theirs[k]) <= 1e-5f))
                return CML_ERR_TRAIN;
    }
    return CML_OK;
}

/* Trains a new state (owned by the caller via *out, freed with mlp_free). */
static cml_err mlp_train(const cml_train_set *ts, const cml_member_params *mp, void **out,
                         cml_diag *diag) {
    cml_err err = CML_OK;
    cml_csr sub = {0};
    struct fann *ann = NULL;
    struct fann_connection *con = NULL;
    float *in = NULL;
    size_t *order = NULL;
    mlp_state *st = cml_calloc(1, sizeof(*st));
    *out = NULL;
    if (st == NULL)
        return CML_ERR_NOMEM;
    size_t n = ts->X->n_rows, L = ts->n_labels;
    int hidden = mp && mp->hidden > 0 ? mp->hidden : DEFAULT_HIDDEN;
    int epochs = mp && mp->epochs > 0 ? mp->epochs : DEFAULT_EPOCHS;
    if (L < 2 || L > CML_MAX_LABELS || n == 0 || ts->X->n_cols == 0 || ts->X->n_cols > UINT32_MAX ||
        hidden > MAX_HIDDEN) {
        err = cml_diag_set(diag, CML_ERR_DATA,
                           "the network needs rows, columns, 2 to %d labels and at most %d hidden "
                           "units",
                           CML_MAX_LABELS, MAX_HIDDEN);
        goto done;
    }
    st->n_labels = (uint32_t)L;
    st->n_cols = (uint32_t)ts->X->n_cols;
    if ((err = cml_colsel_fit(ts->X, ts->y, L, ts->class_weight, DEFAULT_COLUMNS, MIN_DF,
                              &st->sel)) != CML_OK ||
        (err = cml_colsel_matrix(&st->sel, ts->X, &sub)) != CML_OK)
        goto done;
    st->n_in = st->sel.n_sel;
    st->n_hidden = (uint32_t)hidden;
    st->n_out = L == 2 ? 1 : (uint32_t)L;
    st->act_hidden = FANN_SIGMOID_SYMMETRIC;
    st->act_out = FANN_SIGMOID;
    st->steep_hidden = st->steep_out = STEEPNESS;
    if ((err = alloc_arrays(st)) != CML_OK)
        goto done;
    /* Scale each column to [0, 1] by its largest absolute training value. */
    for (uint32_t c = 0; c < st->n_in; c++)
        st->scale[c] = 0;
    for (size_t e = 0; e < sub.indptr[n]; e++) {
        float a = fabsf(sub.values[e]);
        if (a > st->scale[sub.indices[e]])
            st->scale[sub.indices[e]] = a;
    }
    for (uint32_t c = 0; c < st->n_in; c++)
        st->scale[c] = st->scale[c] > 0 && isfinite(st->scale[c]) ? 1.0f / st->scale[c] : 1.0f;

    /* Presentations per epoch: each row floor(w) or ceil(w) times, w its class weight. */
    size_t cap = 0;
    for (size_t i = 0; i < n; i++)
        cap += (size_t)ceil(ts->class_weight ? ts->class_weight[ts->y[i]] : 1.0);
    order = cml_malloc((cap ? cap : 1) * sizeof(size_t));
    in = cml_calloc(st->n_in, sizeof(float));
    /*
     * fann_create_standard reseeds the C library's rand() from /dev/urandom,
     * which liblinear's solvers draw from: put back a state derived from the
     * one before, so the other members stay deterministic.
     */
    unsigned rand_state = (unsigned)rand();
    ann = fann_create_standard(3, st->n_in, st->n_hidden, st->n_out);
    srand(rand_state);
    if (order == NULL || in == NULL || ann == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    fann_set_error_log((struct fann_error *)ann, NULL);
    fann_set_activation_function_hidden(ann, (enum fann_activationfunc_enum)st->act_hidden);
    fann_set_activation_function_output(ann, (enum fann_activationfunc_enum)st->act_out);
    fann_set_activation_steepness_hidden(ann, st->steep_hidden);
    fann_set_activation_steepness_output(ann, st->steep_out);
    /* FANN's tanh error function stretches large errors, like a log loss would. */
    fann_set_train_error_function(ann, FANN_ERRORFUNC_TANH);
    fann_set_learning_momentum(ann, MOMENTUM);
    cml_rng rng = {.state = (mp ? mp->seed : 42) ^ 0x6d6c705f6e6574ull};
    if ((con = init_weights(ann, st, &rng)) == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    float target[CML_MAX_LABELS];
    for (int ep = 0; ep < epochs; ep++) {
        /* Learning rate decays linearly to a tenth over the epochs. */
        float lr = LEARNING_RATE * (1.0f - 0.9f * (float)ep / (float)(epochs > 1 ? epochs - 1 : 1));
        fann_set_learning_rate(ann, lr);
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            double w = ts->class_weight ? ts->class_weight[ts->y[i]] : 1.0;
            size_t reps = (size_t)floor(w);
            double frac = w - (double)reps;
            if ((double)(cml_rng_next(&rng) >> 11) / 9007199254740992.0 < frac)
                reps++;
            for (size_t r = 0; r < reps && m < cap; r++)
                order[m++] = i;
        }
        cml_shuffle(order, m, &rng);
        for (size_t t = 0; t < m; t++) {
            size_t i = order[t];
            for (size_t e = sub.indptr[i]; e < sub.indptr[i + 1]; e++)
                in[sub.indices[e]] = sub.values[e] * st->scale[sub.indices[e]];
            for (uint32_t k = 0; k < st->n_out; k++)
                target[k] = st->n_out == 1 ? (float)(ts->y[i] == 1) : (float)(ts->y[i] == (int)k);
            fann_train(ann, in, target);
            for (size_t e = sub.indptr[i]; e < sub.indptr[i + 1]; e++)
                in[sub.indices[e]] = 0;
        }
    }
    if (fann_get_errno((struct fann_error *)ann) != FANN_E_NO_ERROR) {
        err = cml_diag_set(diag, CML_ERR_TRAIN, "FANN could not train the network");
        goto done;
    }
    if ((err = take_weights(ann, con, st)) != CML_OK) {
        cml_diag_set(diag, err, "the trained network has unexpected or non-finite weights");
        goto done;
    }
    if ((err = check_forward(ann, st, &sub, in)) != CML_OK) {
        cml_diag_set(diag, err, "our forward pass disagrees with fann_run");
        goto done;
    }
    *out = st;
    st = NULL;
done:
    if (ann != NULL)
        fann_destroy(ann);
    cml_free(con);
    cml_free(in);
    cml_free(order);
    cml_csr_free(&sub);
    mlp_free(st);
    return err;
}

/* Fills probs[0..n_labels); nothing to free. Read-only on the state: thread-safe. */
static cml_err mlp_predict(const void *state, const cml_sparse *x, double *probs) {
    const mlp_state *st = state;
    cml_err err = CML_OK;
    uint32_t idx_stack[STACK_ROW];
    float val_stack[STACK_ROW];
    uint32_t *idx = idx_stack;
    float *val = val_stack;
    float out[CML_MAX_LABELS];
    size_t cap = x->n > 0 ? (size_t)x->n : 0;
    if (cap > st->sel.n_sel)
        cap = st->sel.n_sel;
    if (cap > STACK_ROW) {
        idx = cml_malloc(cap * sizeof(uint32_t));
        val = cml_malloc(cap * sizeof(float));
        if (idx == NULL || val == NULL) {
            err = CML_ERR_NOMEM;
            goto done;
        }
    }
    size_t n = cml_colsel_map(&st->sel, x, idx, val);
    forward(st, idx, val, n, out);
    outputs_to_probs(st, out, probs);
done:
    if (idx != idx_stack)
        cml_free(idx);
    if (val != val_stack)
        cml_free(val);
    return err;
}

/*
 * Payload: u32 format | u32 n_labels | u32 n_cols | selection | u32 n_in,
 * n_hidden, n_out | u32 hidden and output activation | f32 their steepness |
 * f32 scales | f32 w1 | f32 w2 | SHA-256 of all before it.
 */
static cml_err mlp_serialize(const void *state, cml_buf *b) {
    const mlp_state *st = state;
    size_t start = b->len;
    cml_buf_put_u32(b, MLP_FORMAT);
    cml_buf_put_u32(b, st->n_labels);
    cml_buf_put_u32(b, st->n_cols);
    cml_colsel_write(&st->sel, b);
    cml_buf_put_u32(b, st->n_in);
    cml_buf_put_u32(b, st->n_hidden);
    cml_buf_put_u32(b, st->n_out);
    cml_buf_put_u32(b, st->act_hidden);
    cml_buf_put_u32(b, st->act_out);
    cml_buf_put_f32(b, st->steep_hidden);
    cml_buf_put_f32(b, st->steep_out);
    for (uint32_t i = 0; i < st->n_in; i++)
        cml_buf_put_f32(b, st->scale[i]);
    for (size_t i = 0; i < n_w1(st); i++)
        cml_buf_put_f32(b, st->w1[i]);
    for (size_t i = 0; i < n_w2(st); i++)
        cml_buf_put_f32(b, st->w2[i]);
    cml_payload_seal(b, start);
    return cml_buf_status(b);
}

/* The activations our forward pass computes. */
static bool activation_ok(uint32_t act) {
    return act == FANN_SIGMOID || act == FANN_SIGMOID_SYMMETRIC;
}

/* Reads n floats into dst; false when short or one is not finite. */
static bool read_floats(cml_reader *r, float *dst, size_t n) {
    if (r->failed || n > r->left / 4)
        return false;
    for (size_t i = 0; i < n; i++) {
        dst[i] = cml_read_f32(r);
        if (!isfinite(dst[i]))
            return false;
    }
    return !r->failed;
}

/* A new state (the caller's, freed with mlp_free) from a payload; CML_ERR_FORMAT if unfit. */
static cml_err mlp_deserialize(const uint8_t *p, size_t len, size_t n_labels, size_t n_cols,
                               void **out, cml_diag *diag) {
    cml_err err = CML_OK;
    size_t body = 0;
    mlp_state *st = NULL;
    *out = NULL;
    if (!cml_payload_check(p, len, &body)) {
        err =
            cml_diag_set(diag, CML_ERR_FORMAT, "network member payload is damaged (seal mismatch)");
        goto done;
    }
    cml_reader r = cml_reader_init(p, body);
    if ((st = cml_calloc(1, sizeof(*st))) == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    uint32_t format = cml_read_u32(&r);
    st->n_labels = cml_read_u32(&r);
    st->n_cols = cml_read_u32(&r);
    if (r.failed || format != MLP_FORMAT || st->n_labels != n_labels || st->n_cols != n_cols ||
        n_labels < 2 || n_labels > CML_MAX_LABELS) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "network member payload does not fit this model");
        goto done;
    }
    if ((err = cml_colsel_read(&r, st->n_cols, &st->sel)) != CML_OK) {
        if (err == CML_ERR_FORMAT)
            cml_diag_set(diag, err, "network member column selection is corrupt");
        goto done;
    }
    st->n_in = cml_read_u32(&r);
    st->n_hidden = cml_read_u32(&r);
    st->n_out = cml_read_u32(&r);
    st->act_hidden = cml_read_u32(&r);
    st->act_out = cml_read_u32(&r);
    st->steep_hidden = cml_read_f32(&r);
    st->steep_out = cml_read_f32(&r);
    if (r.failed || st->n_in != st->sel.n_sel || st->n_hidden == 0 || st->n_hidden > MAX_HIDDEN ||
        st->n_out != (n_labels == 2 ? 1 : n_labels) || !activation_ok(st->act_hidden) ||
        !activation_ok(st->act_out) || !(st->steep_hidden > 0) || !(st->steep_out > 0) ||
        !isfinite(st->steep_hidden) || !isfinite(st->steep_out) ||
        r.left != ((size_t)st->n_in + n_w1(st) + n_w2(st)) * 4) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "network member layout is inconsistent");
        goto done;
    }
    if ((err = alloc_arrays(st)) != CML_OK)
        goto done;
    if (!read_floats(&r, st->scale, st->n_in) || !read_floats(&r, st->w1, n_w1(st)) ||
        !read_floats(&r, st->w2, n_w2(st)) || r.left != 0) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "network member weights are corrupt");
        goto done;
    }
    *out = st;
    st = NULL;
done:
    mlp_free(st);
    return err;
}

const cml_member_ops cml_member_mlp = {
    .kind = CML_MEMBER_MLP,
    .name = "mlp",
    .train = mlp_train,
    .predict = mlp_predict,
    .serialize = mlp_serialize,
    .deserialize = mlp_deserialize,
    .free_state = mlp_free,
    .state_bytes = mlp_bytes,
};
