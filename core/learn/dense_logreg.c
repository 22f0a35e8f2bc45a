#include "config.h"

#include "learn/dense_logreg.h"

#include <linear.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "base/cml_alloc.h"

static void quiet(const char *s) { (void)s; }
static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;
static void install_quiet(void) { set_print_string_function(quiet); }

double cml_logit(double p) {
    if (p < 1e-6)
        p = 1e-6;
    if (p > 1 - 1e-6)
        p = 1 - 1e-6;
    return log(p / (1 - p));
}

cml_err cml_dense_logreg_fit(const double *X, const int *y, size_t n, size_t d, double C,
                             cml_dense_logreg *out) {
    cml_err err = CML_OK;
    size_t count[2] = {0, 0};
    memset(out, 0, sizeof(*out));
    if (d == 0 || d > CML_DENSE_LOGREG_MAX_INPUTS)
        return CML_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        count[y[i] != 0]++;
    if (count[0] == 0 || count[1] == 0)
        return CML_ERR_DATA;
    pthread_once(&quiet_once, install_quiet);

    struct feature_node *pool = cml_malloc(n * (d + 2) * sizeof(*pool));
    struct feature_node **rows = cml_malloc(n * sizeof(*rows));
    double *labels = cml_malloc(n * sizeof(double));
    struct model *model = NULL;
    if (pool == NULL || rows == NULL || labels == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        struct feature_node *node = pool + i * (d + 2);
        rows[i] = node;
        for (size_t k = 0; k < d; k++)
            node[k] = (struct feature_node){.index = (int)k + 1, .value = X[i * d + k]};
        node[d] = (struct feature_node){.index = (int)d + 1, .value = 1.0};
        node[d + 1] = (struct feature_node){.index = -1, .value = 0.0};
        labels[i] = y[i] != 0;
    }
    struct problem prob = {.l = (int)n, .n = (int)d + 1, .y = labels, .x = rows, .bias = 1.0};
    int weight_label[2] = {0, 1};
    double weight[2] = {(double)n / (2.0 * (double)count[0]), (double)n / (2.0 * (double)count[1])};
    struct parameter param;
    memset(&param, 0, sizeof(param));
    param.solver_type = L2R_LR;
    param.eps = 1e-4;
    param.C = C;
    param.nr_weight = 2;
    param.weight_label = weight_label;
    param.weight = weight;
    if (check_parameter(&prob, &param) != NULL) {
        err = CML_ERR_INTERNAL;
        goto done;
    }
    model = train(&prob, &param);
    if (model == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    /* With two classes liblinear's decision value is positive for its first label. */
    double sign = model->label[0] == 1 ? 1.0 : -1.0;
    out->n_inputs = (uint32_t)d;
    for (size_t k = 0; k < d; k++)
        out->coef[k] = sign * model->w[k];
    out->bias = sign * model->w[d];
done:
    if (model != NULL)
        free_and_destroy_model(&model);
    cml_free(pool);
    cml_free(rows);
    cml_free(labels);
    return err;
}

double cml_dense_logreg_apply(const cml_dense_logreg *lr, const double *x) {
    double z = lr->bias;
    for (uint32_t k = 0; k < lr->n_inputs; k++)
        z += lr->coef[k] * x[k];
    return 1.0 / (1.0 + exp(-z));
}
