#include "config.h"

#include "learn/question_detector.h"

#include <math.h>
#include <string.h>

#include "base/cml_alloc.h"
#include "learn/data_split.h"
#include "learn/member.h"
#include "text/utterance.h"

#define DETECTOR_MAGIC 0x43544544u /* "DETC" */
#define TEST_FRAC 0.2

struct cml_detector {
    cml_featurizer *features;
    void *state; /* a cml_member_logreg state */
};

void cml_detector_free(cml_detector *d) {
    if (d == NULL)
        return;
    cml_featurizer_free(d->features);
    cml_member_logreg.free_state(d->state);
    cml_free(d);
}

/*
 * The rows to learn from: each single-sentence text of questions as QUESTION, each text of
 * non_questions as OTHER. A text of several sentences may hold statements as well as its
 * question, so it says nothing certain about any one sentence and is left out.
 */
static cml_dataset *detector_rows(const cml_dataset *questions, const cml_dataset *non_questions) {
    cml_dataset *ds = cml_dataset_new();
    if (ds == NULL)
        return NULL;
    for (size_t i = 0; i < questions->n; i++) {
        cml_utterance u;
        cml_utterance_split(questions->texts[i], strlen(questions->texts[i]), &u);
        if (u.n_parts == 1 && cml_dataset_add(ds, questions->texts[i], "QUESTION",
                                              questions->source_lines[i]) != CML_OK)
            goto fail;
    }
    for (size_t i = 0; i < non_questions->n; i++)
        if (cml_dataset_add(ds, non_questions->texts[i], "OTHER", non_questions->source_lines[i]) !=
            CML_OK)
            goto fail;
    return ds;
fail:
    cml_dataset_free(ds);
    return NULL;
}

static cml_err fit(const cml_dataset *ds, uint64_t seed, cml_detector **out, cml_diag *diag) {
    cml_err err;
    cml_csr X = {0};
    cml_detector *d = cml_calloc(1, sizeof(*d));
    if (d == NULL)
        return CML_ERR_NOMEM;
    if ((err = cml_featurizer_fit(ds, NULL, &d->features)) != CML_OK ||
        (err = cml_features_matrix(d->features, ds, &X)) != CML_OK)
        goto done;
    size_t count[2] = {0, 0};
    for (size_t i = 0; i < ds->n; i++)
        count[ds->labels[i] != 0]++;
    double cw[2] = {(double)ds->n / (2.0 * (double)(count[0] ? count[0] : 1)),
                    (double)ds->n / (2.0 * (double)(count[1] ? count[1] : 1))};
    cml_train_set ts = {.X = &X, .y = ds->labels, .n_labels = 2, .class_weight = cw};
    cml_member_params p = {.seed = seed};
    err = cml_member_logreg.train(&ts, &p, &d->state, diag);
done:
    cml_csr_free(&X);
    if (err != CML_OK) {
        cml_detector_free(d);
        return err;
    }
    *out = d;
    return CML_OK;
}

/* Index of the label QUESTION in ds (labels are sorted: OTHER, QUESTION). */
static int question_label(const cml_dataset *ds) { return cml_dataset_label_index(ds, "QUESTION"); }

cml_err cml_detector_train(const cml_dataset *questions, const cml_dataset *non_questions,
                           uint64_t seed, cml_detector **out, cml_detector_report *report,
                           cml_diag *diag) {
    cml_err err = CML_OK;
    cml_dataset *all = NULL, *train = NULL, *test = NULL;
    size_t *tr = NULL, *te = NULL, ntr = 0, nte = 0;
    cml_feature_scratch *s = NULL;
    cml_detector *d = NULL;
    *out = NULL;
    if ((all = detector_rows(questions, non_questions)) == NULL)
        return CML_ERR_NOMEM;
    if (all->n_labels != 2 || all->n < 40) {
        err = cml_diag_set(diag, CML_ERR_DATA,
                           "the question detector needs questions and non-questions");
        goto done;
    }
    tr = cml_malloc(all->n * sizeof(size_t));
    te = cml_malloc(all->n * sizeof(size_t));
    s = cml_feature_scratch_new();
    if (tr == NULL || te == NULL || s == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    if ((err = cml_stratified_split(all->labels, all->n, 2, TEST_FRAC, seed, tr, &ntr, te, &nte)) !=
        CML_OK)
        goto done;
    train = cml_dataset_subset(all, tr, ntr);
    test = cml_dataset_subset(all, te, nte);
    if (train == NULL || test == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    if ((err = fit(train, seed, &d, diag)) != CML_OK)
        goto done;
    int q = question_label(all);
    size_t tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < test->n; i++) {
        double p = cml_detector_score(d, s, test->texts[i], strlen(test->texts[i]));
        bool said = p >= 0.5, truth = test->labels[i] == q;
        tp += said && truth;
        fp += said && !truth;
        fn += !said && truth;
    }
    if (report != NULL) {
        report->n_train = ntr;
        report->n_test = nte;
        report->precision = tp + fp ? (double)tp / (double)(tp + fp) : 0;
        report->recall = tp + fn ? (double)tp / (double)(tp + fn) : 0;
        report->f1 =
            report->precision + report->recall > 0
                ? 2 * report->precision * report->recall / (report->precision + report->recall)
                : 0;
    }
    *out = d;
    d = NULL;
done:
    cml_detector_free(d);
    cml_dataset_free(all);
    cml_dataset_free(train);
    cml_dataset_free(test);
    cml_free(tr);
    cml_free(te);
    cml_feature_scratch_free(s);
    return err;
}

double cml_detector_score(const cml_detector *d, cml_feature_scratch *s, const char *text,
                          size_t len) {
    cml_sparse x;
    double probs[2];
    if (cml_features_extract(d->features, s, text, len, &x) != CML_OK ||
        cml_member_logreg.predict(d->state, &x, probs) != CML_OK)
        return NAN;
    return probs[1]; /* labels sorted: OTHER, QUESTION */
}

cml_err cml_detector_serialize(const cml_detector *d, cml_buf *out) {
    uint8_t *feat = NULL;
    size_t feat_len = 0;
    cml_buf member = {0};
    cml_err err = cml_featurizer_serialize(d->features, &feat, &feat_len);
    if (err == CML_OK)
        err = cml_member_logreg.serialize(d->state, &member);
    if (err == CML_OK) {
        cml_buf_put_u32(out, DETECTOR_MAGIC);
        cml_buf_put_u64(out, feat_len);
        cml_buf_put(out, feat, feat_len);
        cml_buf_put_u64(out, member.len);
        cml_buf_put(out, member.data, member.len);
        err = cml_buf_status(out);
    }
    cml_free(feat);
    cml_buf_release(&member);
    return err;
}

cml_err cml_detector_deserialize(const uint8_t *p, size_t len, cml_detector **out, cml_diag *diag) {
    cml_reader r = cml_reader_init(p, len);
    cml_err err;
    *out = NULL;
    uint32_t magic = cml_read_u32(&r);
    uint64_t fl = cml_read_u64(&r);
    const uint8_t *feat = r.failed || fl > r.left ? NULL : cml_read_bytes(&r, (size_t)fl);
    uint64_t ml = feat ? cml_read_u64(&r) : 0;
    const uint8_t *mem = feat && !r.failed && ml == r.left ? cml_read_bytes(&r, (size_t)ml) : NULL;
    if (magic != DETECTOR_MAGIC || feat == NULL || mem == NULL)
        return cml_diag_set(diag, CML_ERR_FORMAT, "question detector payload is malformed");
    cml_detector *d = cml_calloc(1, sizeof(*d));
    if (d == NULL)
        return CML_ERR_NOMEM;
    if ((err = cml_featurizer_deserialize(feat, (size_t)fl, &d->features, diag)) != CML_OK ||
        (err = cml_member_logreg.deserialize(mem, (size_t)ml, 2, cml_featurizer_n_cols(d->features),
                                             &d->state, diag)) != CML_OK) {
        cml_detector_free(d);
        return err;
    }
    *out = d;
    return CML_OK;
}
