#include "config.h"

#include "model/model.h"

#include <math.h>
#include <string.h>

#include "base/cml_alloc.h"

const char *cml_model_type_name(cml_model_type t) {
    switch (t) {
    case CML_MODEL_CLASSIC:
        return "classic";
    case CML_MODEL_ENSEMBLE:
        return "ensemble";
    case CML_MODEL__COUNT:
        break;
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

const char *cml_combination_name(cml_combination c) {
    static const char *const names[CML_COMBINE__MAX] = {
        [CML_COMBINE_VOTING] = "weighted_voting",
        [CML_COMBINE_STACKING] = "stacking",
    };
    return (unsigned)c < CML_COMBINE__MAX ? names[c] : NULL;
}

const char *const cml_utterance_input_names[CML_UTT__MAX] = {
    [CML_UTT_WHOLE] = "whole_text",
    [CML_UTT_MAX_QUESTION] = "max_question",
    [CML_UTT_MIN_QUESTION] = "min_question",
    [CML_UTT_LAST_QUESTION] = "last_question",
    [CML_UTT_FIRST_QUESTION] = "first_question",
    [CML_UTT_N_QUESTIONS] = "questions",
    [CML_UTT_OTHER_SHARE] = "other_share",
    [CML_UTT_NO_QUESTION] = "no_question",
};

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
    cml_detector_free(m->detector);
    cml_free(m->metrics_json);
    cml_dataset_free(m->holdout);
    cml_free(m);
}

void cml_model_combine(const cml_model *m, const double *member_probs, double *out) {
    if (m->combination == CML_COMBINE_STACKING && m->n_labels == 2) {
        double x[CML_MAX_MEMBERS];
        for (size_t k = 0; k < m->n_members; k++)
            x[k] = cml_logit(member_probs[k * 2 + 1]);
        out[1] = cml_dense_logreg_apply(&m->stacker, x);
        out[0] = 1.0 - out[1];
        return;
    }
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

void cml_utterance_inputs(const cml_utterance *u, double p_whole, const double *p_questions,
                          double *x) {
    double whole = cml_logit(p_whole);
    double hi = whole, lo = whole, first = whole, last = whole;
    for (size_t q = 0; q < u->n_questions; q++) {
        double v = cml_logit(p_questions[q]);
        if (q == 0)
            hi = lo = first = v;
        hi = v > hi ? v : hi;
        lo = v < lo ? v : lo;
        last = v;
    }
    size_t nq = u->n_questions < 4 ? u->n_questions : 4;
    x[CML_UTT_WHOLE] = whole;
    x[CML_UTT_MAX_QUESTION] = hi;
    x[CML_UTT_MIN_QUESTION] = lo;
    x[CML_UTT_LAST_QUESTION] = last;
    x[CML_UTT_FIRST_QUESTION] = first;
    x[CML_UTT_N_QUESTIONS] = (double)nq / 4.0;
    x[CML_UTT_OTHER_SHARE] =
        u->n_parts ? (double)(u->n_parts - u->n_questions) / (double)u->n_parts : 0.0;
    x[CML_UTT_NO_QUESTION] = u->n_questions == 0;
}

static int argmax(const double *p, size_t n) {
    size_t best = 0;
    for (size_t c = 1; c < n; c++)
        if (p[c] > p[best])
            best = c;
    return (int)best;
}

void cml_model_find_questions(const cml_model *m, cml_feature_scratch *s, const char *text,
                              size_t len, cml_utterance *u) {
    cml_utterance_split(text, len, u);
    if (m->detector == NULL || u->n_parts < 2)
        return;
    u->n_questions = 0;
    for (size_t i = 0; i < u->n_parts; i++) {
        cml_utterance_part *p = &u->parts[i];
        p->question = cml_model_is_question(m, s, text + p->start, p->end - p->start, p->question);
        u->n_questions += p->question;
    }
}

bool cml_model_is_question(const cml_model *m, cml_feature_scratch *s, const char *text, size_t len,
                           bool rule) {
    if (m->detector == NULL)
        return rule;
    double q = cml_detector_score(m->detector, s, text, len);
    return isnan(q) ? rule : q >= 0.5;
}

/* Members' and combined probabilities of one text; votes may be NULL. */
static cml_err predict_text(const cml_model *m, cml_feature_scratch *s, const char *text,
                            size_t len, double *probs, cml_member_vote *votes) {
    cml_sparse x;
    double member_probs[CML_MAX_MEMBERS * CML_MAX_LABELS];
    cml_err err = cml_features_extract(m->features, s, text, len, &x);
    if (err != CML_OK)
        return err;
    for (size_t k = 0; k < m->n_members; k++) {
        double *p = member_probs + k * m->n_labels;
        if ((err = m->members[k].ops->predict(m->members[k].state, &x, p)) != CML_OK)
            return err;
        if (votes == NULL)
            continue;
        cml_member_vote *v = &votes[k];
        memcpy(v->probs, p, m->n_labels * sizeof(double));
        v->label = argmax(p, m->n_labels);
        v->confidence = p[v->label];
    }
    cml_model_combine(m, member_probs, probs);
    return CML_OK;
}

cml_err cml_model_predict_each(const cml_model *m, cml_feature_scratch *s, const char *const *texts,
                               size_t n, void (*each)(void *ctx, size_t i, const cml_prediction *p),
                               void *ctx) {
    cml_prediction p;
    for (size_t i = 0; i < n; i++) {
        cml_err err = cml_model_predict(m, s, texts[i], strlen(texts[i]), &p);
        if (err != CML_OK)
            return err;
        each(ctx, i, &p);
    }
    return CML_OK;
}

cml_err cml_model_predict(const cml_model *m, cml_feature_scratch *s, const char *text, size_t len,
                          cml_prediction *out) {
    if (m == NULL || s == NULL || text == NULL || out == NULL)
        return CML_ERR_INVALID;
    cml_err err = predict_text(m, s, text, len, out->probs, out->members);
    if (err != CML_OK)
        return err;
    out->n_members = m->n_members;
    out->n_sentences = 1;
    out->n_questions = 0;

    /* Several sentences: each question on its own, then the fitted combiner over them. */
    cml_utterance u;
    cml_model_find_questions(m, s, text, len, &u);
    out->n_sentences = u.n_parts ? u.n_parts : 1;
    if (u.n_parts > 1) {
        double p_questions[CML_UTTERANCE_MAX_PARTS];
        for (size_t i = 0; i < u.n_parts; i++) {
            const cml_utterance_part *part = &u.parts[i];
            if (!part->question)
                continue;
            double probs[CML_MAX_LABELS];
            if ((err = predict_text(m, s, text + part->start, part->end - part->start, probs,
                                    NULL)) != CML_OK)
                return err;
            cml_question_vote *q = &out->questions[out->n_questions];
            q->start = part->start;
            q->end = part->end;
            q->label = argmax(probs, m->n_labels);
            q->confidence = probs[q->label];
            p_questions[out->n_questions++] = m->n_labels == 2 ? probs[1] : 0.0;
        }
        if (m->utterance_fitted && m->n_labels == 2) {
            double x[CML_UTT__MAX];
            cml_utterance_inputs(&u, out->probs[1], p_questions, x);
            out->probs[1] = cml_dense_logreg_apply(&m->utterance, x);
            out->probs[0] = 1.0 - out->probs[1];
        }
    }
    out->label = argmax(out->probs, m->n_labels);
    out->confidence = out->probs[out->label];
    out->agree = 0;
    for (size_t k = 0; k < m->n_members; k++)
        out->agree += out->members[k].label == out->label;
    return CML_OK;
}

const char *cml_model_voting(const cml_model *m) {
    if (m->n_members < 2)
        return "single";
    return m->combination == CML_COMBINE_STACKING ? "stacking" : "soft_weighted";
}

size_t cml_model_bytes(const cml_model *m) {
    size_t total = sizeof(*m);
    for (size_t k = 0; k < m->n_members; k++)
        if (m->members[k].ops->state_bytes != NULL)
            total += m->members[k].ops->state_bytes(m->members[k].state);
    return total + cml_featurizer_n_cols(m->features) * (sizeof(uint64_t) + sizeof(float) + 12);
}
