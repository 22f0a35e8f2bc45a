#include "config.h"

#include "model/model.h"

#include <string.h>

#include "base/cml_alloc.h"

const char *cml_model_type_name(cml_model_type t) {
    switch (t) {
    case CML_MODEL_CLASSIC:
        return "classic";
    case CML_MODEL_ENSEMBLE:
        return "ensemble";
    }
    return NULL;
}

cml_err cml_model_type_parse(const char *name, cml_model_type *out) {
    if (name != NULL && strcmp(name, "classic") == 0)
        *out = CML_MODEL_CLASSIC;
    else if (name != NULL && strcmp(name, "ensemble") == 0)
        *out = CML_MODEL_ENSEMBLE;
    else
        return CML_ERR_INVALID;
    return CML_OK;
}

cml_model *cml_model_new(cml_model_type type) {
    cml_model *m = cml_calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    atomic_init(&m->refs, 1);
    m->type = type;
    return m;
}

cml_model *cml_model_retain(cml_model *m) {
    if (m != NULL)
        atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

void cml_model_release(cml_model *m) {
    if (m == NULL || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < m->n_members; i++)
        if (m->members[i].ops != NULL)
            m->members[i].ops->free_state(m->members[i].state);
    for (size_t i = 0; i < m->n_labels; i++)
        cml_free(m->labels[i]);
    cml_featurizer_free(m->features);
    cml_free(m->metrics_json);
    cml_dataset_free(m->holdout);
    cml_free(m);
}

void cml_model_combine(const cml_model *m, const double *member_probs, double *out) {
    for (size_t c = 0; c < m->n_labels; c++)
        out[c] = 0.0;
    double total = 0.0;
    for (size_t k = 0; k < m->n_members; k++) {
        double w = m->members[k].weight;
        total += w;
        for (size_t c = 0; c < m->n_labels; c++)
            out[c] += w * member_probs[k * m->n_labels + c];
    }
    for (size_t c = 0; c < m->n_labels; c++)
        out[c] = total > 0 ? out[c] / total : 1.0 / m->n_labels;
}

static int argmax(const double *p, size_t n) {
    size_t best = 0;
    for (size_t c = 1; c < n; c++)
        if (p[c] > p[best])
            best = c;
    return (int)best;
}

cml_err cml_model_predict(const cml_model *m, cml_feature_scratch *s, const char *text, size_t len,
                          cml_prediction *out) {
    cml_sparse x;
    double member_probs[CML_MAX_MEMBERS * CML_MAX_LABELS];
    if (m == NULL || s == NULL || text == NULL || out == NULL)
        return CML_ERR_INVALID;
    cml_err err = cml_features_extract(m->features, s, text, len, &x);
    if (err != CML_OK)
        return err;
    out->n_members = m->n_members;
    for (size_t k = 0; k < m->n_members; k++) {
        double *p = member_probs + k * m->n_labels;
        if ((err = m->members[k].ops->predict(m->members[k].state, &x, p)) != CML_OK)
            return err;
        cml_member_vote *v = &out->members[k];
        memcpy(v->probs, p, m->n_labels * sizeof(double));
        v->label = argmax(p, m->n_labels);
        v->confidence = p[v->label];
    }
    cml_model_combine(m, member_probs, out->probs);
    out->label = argmax(out->probs, m->n_labels);
    out->confidence = out->probs[out->label];
    out->agree = 0;
    for (size_t k = 0; k < m->n_members; k++)
        out->agree += out->members[k].label == out->label;
    return CML_OK;
}

const char *cml_model_voting(const cml_model *m) {
    return m->n_members > 1 ? "soft_weighted" : "single";
}

size_t cml_model_bytes(const cml_model *m) {
    size_t total = sizeof(*m);
    for (size_t k = 0; k < m->n_members; k++)
        if (m->members[k].ops->state_bytes != NULL)
            total += m->members[k].ops->state_bytes(m->members[k].state);
    return total + cml_featurizer_n_cols(m->features) * (sizeof(uint64_t) + sizeof(float) + 12);
}
