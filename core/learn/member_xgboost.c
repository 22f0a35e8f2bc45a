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
 * The payload is XGBoost's own UBJSON model (XGBoosterSaveModelToBuffer).
 * Prediction does not call XGBoost: its single-row predict costs 13-16 us a
 * call here (it re-reads cgroup files and wakes OpenMP threads every time),
 * and its loader trusts the node indices in a model (a crafted payload makes
 * XGBoosterLoadModelFromBuffer crash). So the UBJSON is read by our own
 * bounds-checked reader, every tree is checked (arrays of the right length,
 * children in range and reached once from the root, features inside the
 * selection, no categorical splits, finite values) and flattened into our
 * own node array. Its evaluation mirrors XGBoost's predictor: a missing
 * value takes the default child, otherwise value < condition goes left, and
 * margins are float sums from the base margin in tree order. After training
 * the flattened trees are compared with the booster's own margins on
 * training and probe rows. Training and loading build the trees from the
 * same saved bytes, so a trained model and the same model reloaded predict
 * bit-identically; prediction only reads the state (thread-safe), and
 * loading a model never starts XGBoost or its OpenMP threads.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

#include "base/cml_alloc.h"
#include "learn/data_split.h"
#include "learn/feature_select.h"
#include "learn/member.h"

#define XGB_FORMAT 1
#define STACK_FEATURES 1024
#define STACK_ROW 512
#define MAX_BIN "32"
#define MIN_DF 3
#define PROBE_ROWS 24
#define VERIFY_ROWS 200

typedef enum xgb_flavour { XGB_BOOST = 1, XGB_FOREST = 2 } xgb_flavour;

/*
 * One node of a flattened tree (12 bytes): a split's children are adjacent,
 * the right one at left + 1; a leaf has left < 0 and its value in value.
 */
typedef struct xnode {
    int32_t left;     /* index of the left child in the state's node array */
    uint32_t feature; /* member column; bit 31 set when missing values go right */
    float value;      /* split condition, or leaf value */
} xnode;

#define MISSING_RIGHT 0x80000000u

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
    .learning_rate = 1.0, /* fixed: the forest's leaves must stay one Newton step */
    .subsample = 0.632,
    .colsample = 0.25,
    .columns = 200,
};

/* Frees a state and everything it owns; accepts NULL. */
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

/* Bytes the state holds (its arrays and the saved model). */
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
static inline const xnode *descend(const xnode *nodes, const xnode *nd, const float *x) {
    /* Right when v >= condition, or when v is missing and missing goes right. */
    float v = x[nd->feature & ~MISSING_RIGHT];
    int right = (v >= nd->value) | ((v != v) & (int)(nd->feature >> 31));
    return &nodes[nd->left + right];
}

/* Trees walked side by side: their chains of dependent loads then overlap. */
#define TREE_LANES 8

static void margins(const xgb_state *st, const float *x, float *m) {
    for (uint32_t g = 0; g < st->n_out; g++)
        m[g] = st->base_margin;
    size_t t = 0;
    for (; t + TREE_LANES <= st->n_trees; t += TREE_LANES) {
        const xnode *nd[TREE_LANES];
        for (int l = 0; l < TREE_LANES; l++)
            nd[l] = &st->nodes[st->root[t + (size_t)l]];
        for (bool moved = true; moved;) {
            moved = false;
            for (int l = 0; l < TREE_LANES; l++) {
                if (nd[l]->left < 0)
                    continue;
                nd[l] = descend(st->nodes, nd[l], x);
                moved = true;
            }
        }
        /* Summed in tree order, as XGBoost does: the same floats to the last bit. */
        for (int l = 0; l < TREE_LANES; l++)
            m[st->group[t + (size_t)l]] += nd[l]->value;
    }
    for (; t < st->n_trees; t++) {
        const xnode *nd = &st->nodes[st->root[t]];
        while (nd->left >= 0)
            nd = descend(st->nodes, nd, x);
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

/* --- reading XGBoost's UBJSON model ------------------------------------- */

/*
 * A bounds-checked UBJSON reader for the model bytes, so that untrusted
 * payloads never reach XGBoost's loader (which trusts the indices in its
 * trees). Values go into an arena and refer to each other by index; strings
 * and typed arrays point into the payload without copying.
 */
#define UBJ_MAX_DEPTH 16
#define UBJ_MAX_VALUES (1u << 20) /* a model of ours has a few thousand */

typedef struct uval {
    uint8_t type;       /* '{', '[', 'A' (typed array), 'S', 'N' (number), 'Z' (null, boolean) */
    uint8_t elem;       /* element marker of a typed array */
    uint32_t n;         /* children, elements or string bytes */
    const uint8_t *p;   /* string bytes or typed array data */
    const uint8_t *key; /* the key, for a member of an object */
    uint32_t key_len;
    int32_t first, next; /* children in order, -1 for none */
    double num;
} uval;

typedef struct ubj {
    const uint8_t *p;
    size_t left;
    uval *v; /* the arena; owned, freed with ubj_release */
    size_t n, cap;
    bool bad, nomem;
} ubj;

/* Frees the arena (the payload itself belongs to the caller). */
static void ubj_release(ubj *u) {
    cml_free(u->v);
    u->v = NULL;
}

/* Consumes n bytes; *out points at them (in the payload). False when short. */
static bool ubj_take(ubj *u, size_t n, const uint8_t **out) {
    if (u->bad || n > u->left) {
        u->bad = true;
        return false;
    }
    *out = u->p;
    u->p += n;
    u->left -= n;
    return true;
}

/* The next marker, no-ops skipped; -1 when the input ends. */
static int ubj_marker(ubj *u) {
    const uint8_t *b;
    do
        if (!ubj_take(u, 1, &b))
            return -1;
    while (*b == 'N');
    return *b;
}

/* Whether the next byte is c (not consumed). */
static bool ubj_peek(const ubj *u, uint8_t c) { return !u->bad && u->left > 0 && *u->p == c; }

/* Bytes of a number of this marker, 0 for any other marker. */
static size_t ubj_size(int m) {
    switch (m) {
    case 'i':
    case 'U':
        return 1;
    case 'I':
        return 2;
    case 'l':
    case 'd':
        return 4;
    case 'L':
    case 'D':
        return 8;
    }
    return 0;
}

/* The big-endian number of marker m at b. */
static double ubj_decode(int m, const uint8_t *b) {
    uint64_t x = 0;
    for (size_t i = 0; i < ubj_size(m); i++)
        x = x << 8 | b[i];
    switch (m) {
    case 'i':
        return (int8_t)x;
    case 'U':
        return (uint8_t)x;
    case 'I':
        return (int16_t)x;
    case 'l':
        return (int32_t)x;
    case 'L':
        return (double)(int64_t)x;
    case 'd': {
        uint32_t w = (uint32_t)x;
        float f;
        memcpy(&f, &w, 4);
        return f;
    }
    default: {
        double d;
        memcpy(&d, &x, 8);
        return d;
    }
    }
}

/* A length or count: an integer marker and value, at most the bytes left. */
static bool ubj_length(ubj *u, size_t *out) {
    int m = ubj_marker(u);
    const uint8_t *b;
    if (m == 'd' || m == 'D' || ubj_size(m) == 0 || !ubj_take(u, ubj_size(m), &b)) {
        u->bad = true;
        return false;
    }
    double v = ubj_decode(m, b);
    if (!(v >= 0) || v > (double)u->left) {
        u->bad = true;
        return false;
    }
    *out = (size_t)v;
    return true;
}

/* A new value in the arena; its index, or -1 (bad or out of memory). */
static int32_t ubj_new(ubj *u, uint8_t type) {
    if (u->bad)
        return -1;
    if (u->n == u->cap) {
        size_t cap = u->cap ? 2 * u->cap : 256;
        uval *v = cap <= UBJ_MAX_VALUES ? cml_realloc_array(u->v, cap, sizeof(uval)) : NULL;
        if (v == NULL) {
            u->nomem = cap <= UBJ_MAX_VALUES;
            u->bad = true;
            return -1;
        }
        u->v = v;
        u->cap = cap;
    }
    u->v[u->n] = (uval){.type = type, .first = -1, .next = -1};
    return (int32_t)u->n++;
}

static int32_t ubj_value(ubj *u, int m, int depth);

/* Appends child to the children of parent, after last (-1 for the first). */
static void ubj_link(ubj *u, int32_t parent, int32_t *last, int32_t child) {
    if (*last < 0)
        u->v[parent].first = child;
    else
        u->v[*last].next = child;
    *last = child;
    u->v[parent].n++;
}

/* An array after its '['. */
static int32_t ubj_array(ubj *u, int depth) {
    int32_t me = ubj_new(u, '['), last = -1;
    const uint8_t *b;
    size_t count = 0;
    if (me < 0)
        return -1;
    if (ubj_peek(u, '$')) {
        /* Typed: '$' marker '#' count, then the bare elements. */
        ubj_take(u, 1, &b);
        int elem = ubj_marker(u);
        size_t size = ubj_size(elem);
        if (size == 0 || ubj_marker(u) != '#' || !ubj_length(u, &count) || count > u->left / size ||
            count > UINT32_MAX || !ubj_take(u, count * size, &b)) {
            u->bad = true;
            return -1;
        }
        u->v[me] = (uval){.type = 'A',
                          .elem = (uint8_t)elem,
                          .n = (uint32_t)count,
                          .p = b,
                          .first = -1,
                          .next = -1};
        return me;
    }
    bool counted = ubj_peek(u, '#');
    if (counted && (!ubj_take(u, 1, &b) || !ubj_length(u, &count)))
        return -1;
    for (size_t k = 0; !counted || k < count; k++) {
        int m = ubj_marker(u);
        if (!counted && m == ']')
            break;
        int32_t child = ubj_value(u, m, depth + 1);
        if (child < 0)
            return -1;
        ubj_link(u, me, &last, child);
    }
    return me;
}

/* An object after its '{'. */
static int32_t ubj_object(ubj *u, int depth) {
    int32_t me = ubj_new(u, '{'), last = -1;
    const uint8_t *b;
    size_t count = 0;
    if (me < 0)
        return -1;
    bool counted = ubj_peek(u, '#');
    if (ubj_peek(u, '$') || (counted && (!ubj_take(u, 1, &b) || !ubj_length(u, &count)))) {
        u->bad = true;
        return -1;
    }
    for (size_t k = 0; !counted || k < count; k++) {
        if (!counted && ubj_peek(u, '}')) {
            ubj_take(u, 1, &b);
            break;
        }
        size_t key_len = 0;
        const uint8_t *key;
        if (!ubj_length(u, &key_len) || key_len > UINT32_MAX || !ubj_take(u, key_len, &key))
            return -1;
        int32_t child = ubj_value(u, ubj_marker(u), depth + 1);
        if (child < 0)
            return -1;
        u->v[child].key = key;
        u->v[child].key_len = (uint32_t)key_len;
        ubj_link(u, me, &last, child);
    }
    return me;
}

/* One value whose marker m was read; its index, or -1. */
static int32_t ubj_value(ubj *u, int m, int depth) {
    const uint8_t *b;
    size_t len = 0;
    int32_t me;
    if (depth > UBJ_MAX_DEPTH) {
        u->bad = true;
        return -1;
    }
    switch (m) {
    case '{':
        return ubj_object(u, depth);
    case '[':
        return ubj_array(u, depth);
    case 'S':
    case 'C':
        len = 1;
        if (m == 'S' && (!ubj_length(u, &len) || len > UINT32_MAX))
            return -1;
        if (!ubj_take(u, len, &b) || (me = ubj_new(u, 'S')) < 0)
            return -1;
        u->v[me].p = b;
        u->v[me].n = (uint32_t)len;
        return me;
    case 'T':
    case 'F':
    case 'Z':
        if ((me = ubj_new(u, 'Z')) >= 0)
            u->v[me].num = m == 'T';
        return me;
    default:
        if (ubj_size(m) == 0 || !ubj_take(u, ubj_size(m), &b) || (me = ubj_new(u, 'N')) < 0) {
            u->bad = true;
            return -1;
        }
        u->v[me].num = ubj_decode(m, b);
        return me;
    }
}

/* The member key of object o, or -1. */
static int32_t ubj_get(const ubj *u, int32_t o, const char *key) {
    size_t kl = strlen(key);
    if (o < 0 || u->v[o].type != '{')
        return -1;
    for (int32_t c = u->v[o].first; c >= 0; c = u->v[c].next)
        if (u->v[c].key_len == kl && memcmp(u->v[c].key, key, kl) == 0)
            return c;
    return -1;
}

/* The value at keys[0..n) below o, or -1. */
static int32_t ubj_path(const ubj *u, int32_t o, const char *const *keys, size_t n) {
    for (size_t i = 0; i < n && o >= 0; i++)
        o = ubj_get(u, o, keys[i]);
    return o;
}
#define UPATH(u, o, ...)                                                                           \
    ubj_path((u), (o), (const char *const[]){__VA_ARGS__},                                         \
             sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

/* Whether value s is the string want. */
static bool ubj_str_is(const ubj *u, int32_t s, const char *want) {
    return s >= 0 && u->v[s].type == 'S' && u->v[s].n == strlen(want) &&
           memcmp(u->v[s].p, want, u->v[s].n) == 0;
}

/* A string holding a decimal number (XGBoost writes parameters so) into *out. */
static bool ubj_str_number(const ubj *u, int32_t s, double *out) {
    char text[48], *end = NULL;
    if (s < 0 || u->v[s].type != 'S' || u->v[s].n == 0 || u->v[s].n >= sizeof text)
        return false;
    memcpy(text, u->v[s].p, u->v[s].n);
    text[u->v[s].n] = '\0';
    *out = strtod(text, &end);
    return *end == '\0' && isfinite(*out);
}

/* The typed array under key of o when it has exactly n elements, or -1. */
static int32_t ubj_typed(const ubj *u, int32_t o, const char *key, size_t n) {
    int32_t a = ubj_get(u, o, key);
    return a >= 0 && u->v[a].type == 'A' && u->v[a].n == n ? a : -1;
}

/* Element i of typed array a (checked by the caller to be in range). */
static double ubj_at(const ubj *u, int32_t a, size_t i) {
    return ubj_decode(u->v[a].elem, u->v[a].p + i * ubj_size(u->v[a].elem));
}

/* An integral value of a typed array element into *out; false if it is not one. */
static bool ubj_int_at(const ubj *u, int32_t a, size_t i, int64_t *out) {
    double d = ubj_at(u, a, i);
    if (!(d >= -2147483648.0 && d <= 2147483647.0) || d != floor(d))
        return false;
    *out = (int64_t)d;
    return true;
}

/*
 * Appends one tree to st->nodes (capacity *cap, grown here), renumbered
 * breadth-first from its root; map is scratch of 2 * map_cap entries.
 * CML_ERR_FORMAT when the tree is malformed: arrays of the wrong length or
 * type, a child out of range or reached twice (so every tree is a tree and
 * every walk ends at a leaf), a feature outside the selection, a categorical
 * split or a non-finite value.
 */
static cml_err add_tree(xgb_state *st, const ubj *u, int32_t tree, size_t *cap, int32_t *map,
                        size_t map_cap) {
    double nn = 0;
    if (!ubj_str_number(u, UPATH(u, tree, "tree_param", "num_nodes"), &nn) || nn < 1 ||
        nn > (double)map_cap || nn != floor(nn))
        return CML_ERR_FORMAT;
    size_t n = (size_t)nn;
    int32_t left = ubj_typed(u, tree, "left_children", n),
            right = ubj_typed(u, tree, "right_children", n),
            feat = ubj_typed(u, tree, "split_indices", n),
            cond = ubj_typed(u, tree, "split_conditions", n),
            dflt = ubj_typed(u, tree, "default_left", n),
            type = ubj_typed(u, tree, "split_type", n);
    if (left < 0 || right < 0 || feat < 0 || cond < 0 || dflt < 0 || type < 0)
        return CML_ERR_FORMAT;
    if (st->n_nodes + n > *cap) {
        size_t ncap = *cap ? *cap : 1024;
        while (ncap < st->n_nodes + n)
            ncap *= 2;
        if (ncap > INT32_MAX)
            return CML_ERR_FORMAT;
        xnode *p = cml_realloc_array(st->nodes, ncap, sizeof(xnode));
        if (p == NULL)
            return CML_ERR_NOMEM;
        st->nodes = p;
        *cap = ncap;
    }
    for (size_t i = 0; i < n; i++)
        map[i] = -1;
    /* Breadth-first from the root: XGBoost's node queue[k] becomes our node base + k. */
    size_t base = st->n_nodes, head = 0, tail = 0;
    int32_t *queue = map + map_cap;
    queue[tail++] = 0;
    map[0] = 0;
    for (; head < tail; head++) {
        size_t i = (size_t)queue[head];
        int64_t l, r, f, d, ty;
        float c = (float)ubj_at(u, cond, i);
        if (!ubj_int_at(u, left, i, &l) || !ubj_int_at(u, right, i, &r) ||
            !ubj_int_at(u, feat, i, &f) || !ubj_int_at(u, dflt, i, &d) ||
            !ubj_int_at(u, type, i, &ty) || ty != 0 || !isfinite(c))
            return CML_ERR_FORMAT;
        xnode *nd = &st->nodes[base + head];
        nd->value = c;
        if (l == -1 && r == -1) {
            nd->left = -1;
            nd->feature = 0;
            continue;
        }
        if (l < 0 || r < 0 || l >= (int64_t)n || r >= (int64_t)n || l == r || map[l] >= 0 ||
            map[r] >= 0 || f < 0 || f >= (int64_t)st->sel.n_sel)
            return CML_ERR_FORMAT;
        map[l] = (int32_t)tail;
        queue[tail++] = (int32_t)l;
        map[r] = (int32_t)tail;
        queue[tail++] = (int32_t)r;
        nd->left = (int32_t)(base + (size_t)map[l]); /* and the right child right after it */
        nd->feature = (uint32_t)f | (d ? 0 : MISSING_RIGHT);
    }
    st->n_nodes = base + tail; /* nodes not reached from the root (deleted ones) are dropped */
    return CML_OK;
}

/*
 * Builds the state's trees (arrays owned by st) from st->model after
 * checking the model fits the state: objective, booster, number of classes
 * and features, base score, one class per tree. CML_ERR_FORMAT when the bytes
 * are not such a model. XGBoost itself never sees these bytes here.
 */
static cml_err compile_model(xgb_state *st, cml_diag *diag) {
    cml_err err = CML_OK;
    ubj u = {.p = st->model, .left = st->model_len};
    int32_t *scratch = NULL;
    size_t cap = 0;
    st->n_out = st->n_labels == 2 ? 1 : st->n_labels;
    int32_t root = ubj_value(&u, ubj_marker(&u), 0);
    if (root < 0 || u.left != 0 || u.v[root].type != '{') {
        err = u.nomem ? CML_ERR_NOMEM
                      : cml_diag_set(diag, CML_ERR_FORMAT, "tree member model is not UBJSON");
        goto done;
    }
    int32_t learner = UPATH(&u, root, "learner");
    int32_t trees = UPATH(&u, learner, "gradient_booster", "model", "trees");
    int32_t info = UPATH(&u, learner, "gradient_booster", "model", "tree_info");
    double base = 0, n_class = 0, n_feat = 0;
    if (!ubj_str_is(&u, UPATH(&u, learner, "objective", "name"),
                    st->n_labels == 2 ? "binary:logistic" : "multi:softprob") ||
        !ubj_str_is(&u, UPATH(&u, learner, "gradient_booster", "name"), "gbtree") ||
        !ubj_str_number(&u, UPATH(&u, learner, "learner_model_param", "base_score"), &base) ||
        !ubj_str_number(&u, UPATH(&u, learner, "learner_model_param", "num_class"), &n_class) ||
        !ubj_str_number(&u, UPATH(&u, learner, "learner_model_param", "num_feature"), &n_feat) ||
        n_feat != st->sel.n_sel || n_class != (st->n_labels == 2 ? 0 : st->n_labels) ||
        !(base > 0 && base < 1) || trees < 0 || u.v[trees].type != '[' || info < 0 ||
        u.v[info].type != '[' || u.v[trees].n != u.v[info].n || u.v[trees].n == 0) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "tree member model does not fit this model");
        goto done;
    }
    /* XGBoost's margin of the base score: logit for logistic, itself for softmax. */
    st->base_margin = st->n_labels == 2 ? -logf(1.0f / (float)base - 1.0f) : (float)base;
    st->n_trees = u.v[trees].n;
    st->root = cml_malloc(st->n_trees * sizeof(uint32_t));
    st->group = cml_malloc(st->n_trees * sizeof(uint32_t));
    size_t biggest = 1, map_cap = (size_t)1 << 20; /* nodes of one tree at most */
    for (int32_t t = u.v[trees].first; t >= 0; t = u.v[t].next) {
        double nn = 0;
        if (ubj_str_number(&u, UPATH(&u, t, "tree_param", "num_nodes"), &nn) && nn > biggest &&
            nn <= (double)map_cap)
            biggest = (size_t)nn;
    }
    scratch = cml_malloc(2 * biggest * sizeof(int32_t));
    if (st->root == NULL || st->group == NULL || scratch == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    size_t k = 0;
    for (int32_t t = u.v[trees].first, g = u.v[info].first; t >= 0 && g >= 0;
         t = u.v[t].next, g = u.v[g].next, k++) {
        double group = u.v[g].num;
        st->root[k] = (uint32_t)st->n_nodes;
        if (u.v[g].type != 'N' || !(group >= 0 && group < st->n_out) || group != floor(group)) {
            err = cml_diag_set(diag, CML_ERR_FORMAT, "tree %zu of the member has no class", k);
            goto done;
        }
        st->group[k] = (uint32_t)group;
        if ((err = add_tree(st, &u, t, &cap, scratch, biggest)) != CML_OK) {
            if (err == CML_ERR_FORMAT)
                cml_diag_set(diag, err, "tree %zu of the member is malformed", k);
            goto done;
        }
    }
done:
    ubj_release(&u);
    cml_free(scratch);
    return err;
}

/*
 * Compares the flattened trees with the booster's own margins on the first
 * training rows (sub) and on seeded probe rows (the empty row, then rows of
 * random values). CML_ERR_TRAIN when they differ, which would mean the trees
 * were not read as XGBoost reads them.
 */
static cml_err verify(BoosterHandle b, const xgb_state *st, const cml_csr *sub, cml_diag *diag) {
    cml_err err = CML_OK;
    uint32_t d = st->sel.n_sel;
    size_t real = sub->n_rows < VERIFY_ROWS ? sub->n_rows : VERIFY_ROWS, rows = real + PROBE_ROWS;
    float *dense = cml_malloc(rows * d * sizeof(float));
    DMatrixHandle dm = NULL;
    bst_ulong len = 0;
    const float *res = NULL;
    float m[CML_MAX_LABELS];
    if (dense == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    cml_rng rng = {.state = 0x70726f6265ull};
    for (size_t i = 0; i < rows * d; i++) {
        uint64_t r = cml_rng_next(&rng);
        /* Probe row 0 is empty; the others have about a third of their columns set. */
        dense[i] = i >= (real + 1) * d && r % 3 == 0 ? (float)((r >> 11) % 1000) / 800.0f : NAN;
    }
    for (size_t i = 0; i < real; i++)
        for (size_t e = sub->indptr[i]; e < sub->indptr[i + 1]; e++)
            dense[i * d + (size_t)sub->indices[e]] = sub->values[e];
    if (XGDMatrixCreateFromMat(dense, rows, d, NAN, &dm) != 0 ||
        XGBoosterPredict(b, dm, 1, 0, 0, &len, &res) != 0 || res == NULL ||
        len != (bst_ulong)rows * st->n_out) {
        err = xgb_fail(diag, CML_ERR_TRAIN, "cannot predict with the trained model");
        goto done;
    }
    for (size_t i = 0; i < rows; i++) {
        margins(st, dense + i * d, m);
        for (uint32_t g = 0; g < st->n_out; g++) {
            float want = res[i * st->n_out + g];
            if (!(fabsf(m[g] - want) <= 1e-5f * (1.0f + fabsf(want)))) {
                err = cml_diag_set(diag, CML_ERR_TRAIN,
                                   "tree member evaluates to %g where XGBoost gives %g",
                                   (double)m[g], (double)want);
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

/* --- training ------------------------------------------------------------ */

/* Sets one booster parameter; CML_ERR_TRAIN with XGBoost's reason when refused. */
static cml_err set_param(BoosterHandle b, const char *key, const char *value, cml_diag *diag) {
    if (XGBoosterSetParam(b, key, value) != 0)
        return xgb_fail(diag, CML_ERR_TRAIN, "refused a parameter");
    return CML_OK;
}

/* set_param with a number written exactly. */
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
    if (depth > 32)
        depth = 32;
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
    /*
     * The same path as loading a file (what we predict with is what we save),
     * then checked against the booster's own predictions.
     */
    if ((err = compile_model(st, diag)) != CML_OK || (err = verify(b, st, &sub, diag)) != CML_OK) {
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

/* Trains boosted trees; *out as xgb_train. */
static cml_err boost_train(const cml_train_set *ts, const cml_member_params *p, void **out,
                           cml_diag *diag) {
    return xgb_train(XGB_BOOST, ts, p, out, diag);
}

/* Trains a random forest; *out as xgb_train. */
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

/* Boosted trees from a payload; *out as xgb_deserialize. */
static cml_err boost_deserialize(const uint8_t *p, size_t len, size_t nl, size_t nc, void **out,
                                 cml_diag *diag) {
    return xgb_deserialize(XGB_BOOST, p, len, nl, nc, out, diag);
}

/* A random forest from a payload; *out as xgb_deserialize. */
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
