/*
 * The ensemble's non-linear members (XGBoost trees and forest, FANN network):
 * quality on held-out rows, round trips through the model file, concurrent
 * prediction, determinism, more than two labels, and refusal of damaged or
 * incomplete files.
 *
 * Runs without forking: XGBoost trains with OpenMP threads, and a process
 * that did so hangs in its next parallel call after fork() without exec.
 * The model is trained once (on the first rows of CML_TEST_DATA) and shared.
 */
#include "config.h"

#include <check.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cml_alloc.h"
#include "learn/dataset.h"
#include "learn/feature_select.h"
#include "learn/member.h"
#include "model/model.h"
#include "model/model_file.h"
#include "text/text_features.h"
#include "learn/trainer.h"

#define SMALL_ROWS 600
#define THREADS 8

static cml_dataset *small; /* the first SMALL_ROWS rows of the test data */
static cml_model *model;   /* the ensemble trained on them */
static cml_train_report report;
static uint8_t *file_buf; /* model serialised */
static size_t file_len;

static const cml_member_kind ours[] = {CML_MEMBER_BOOSTED_TREES, CML_MEMBER_RANDOM_FOREST,
                                       CML_MEMBER_MLP};

/* Loads the data and trains the shared model once; tests call it first. */
static void shared_setup(void) {
    if (model != NULL)
        return;
    const char *path = getenv("CML_TEST_DATA");
    ck_assert_msg(path != NULL, "CML_TEST_DATA is not set");
    cml_dataset *all = NULL;
    cml_diag d = {{0}};
    cml_csv_options o = CML_CSV_OPTIONS_TRAINING;
    ck_assert_msg(cml_csv_read_file(path, &o, &all, &d) == CML_OK, "%s", d.msg);
    size_t n = all->n < SMALL_ROWS ? all->n : SMALL_ROWS;
    size_t *idx = cml_malloc(n * sizeof(size_t));
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    small = cml_dataset_subset(all, idx, n);
    cml_free(idx);
    cml_dataset_free(all);
    ck_assert_ptr_nonnull(small);

    cml_train_options to;
    cml_train_options_init(&to, CML_MODEL_ENSEMBLE);
    to.cv_folds = 3;
    /* One XGBoost thread: OpenMP spin-waits make two threads crawl on a busy machine. */
    to.n_threads = 1;
    to.keep_all_members = true; /* every member's payload is tested below */
    ck_assert_msg(cml_train(small, &to, &model, &report, &d) == CML_OK, "%s", d.msg);
    ck_assert_int_eq(cml_model_serialize(model, &file_buf, &file_len), CML_OK);
}

static const cml_model_member *member_of(const cml_model *m, cml_member_kind kind) {
    for (size_t k = 0; k < m->n_members; k++)
        if (m->members[k].ops->kind == kind)
            return &m->members[k];
    return NULL;
}

/* The combined and per-member probabilities of every held-out text into out (caller frees). */
static double *predict_holdout(const cml_model *m) {
    size_t n = model->holdout->n, L = m->n_labels, width = (m->n_members + 1) * L;
    double *out = cml_calloc(n * width, sizeof(double));
    cml_feature_scratch *s = cml_feature_scratch_new();
    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < n; i++) {
        const char *t = model->holdout->texts[i];
        cml_prediction p;
        ck_assert_int_eq(cml_model_predict(m, s, t, strlen(t), &p), CML_OK);
        memcpy(&out[i * width], p.probs, L * sizeof(double));
        for (size_t k = 0; k < m->n_members; k++)
            memcpy(&out[i * width + (k + 1) * L], p.members[k].probs, L * sizeof(double));
    }
    cml_feature_scratch_free(s);
    return out;
}

/* The default roster leaves out the extra members, says which, and all_candidates or
 * keep_all_members tries every member of the build. */
START_TEST(test_candidates_roster) {
    const cml_member_ops *all[CML_MAX_MEMBERS], *ops[CML_MAX_MEMBERS], *left[CML_MAX_MEMBERS];
    size_t n_all = cml_model_type_members(CML_MODEL_ENSEMBLE, all, CML_MAX_MEMBERS), n_left = 99;
    cml_train_options o;
    cml_train_options_init(&o, CML_MODEL_ENSEMBLE);
    size_t n = cml_train_candidates(&o, ops, left, &n_left, CML_MAX_MEMBERS);
    ck_assert_uint_eq(n_all, 7);
    ck_assert_uint_eq(n, 4);
    ck_assert_uint_eq(n_left, 3);
    static const cml_member_kind tried[] = {CML_MEMBER_LOGREG, CML_MEMBER_LINEAR_SVM,
                                            CML_MEMBER_LOGREG_CHARS, CML_MEMBER_BOOSTED_TREES};
    static const cml_member_kind untried[] = {CML_MEMBER_LOGREG_WORDS, CML_MEMBER_RANDOM_FOREST,
                                              CML_MEMBER_MLP};
    for (size_t k = 0; k < n; k++)
        ck_assert_int_eq(ops[k]->kind, tried[k]);
    for (size_t k = 0; k < n_left; k++)
        ck_assert_int_eq(left[k]->kind, untried[k]);
    o.all_candidates = true;
    ck_assert_uint_eq(cml_train_candidates(&o, ops, left, &n_left, CML_MAX_MEMBERS), 7);
    ck_assert_uint_eq(n_left, 0);
    o.all_candidates = false;
    o.keep_all_members = true;
    ck_assert_uint_eq(cml_train_candidates(&o, ops, NULL, &n_left, CML_MAX_MEMBERS), 7);
    cml_train_options_init(&o, CML_MODEL_CLASSIC);
    ck_assert_uint_eq(cml_train_candidates(&o, ops, left, &n_left, CML_MAX_MEMBERS), 1);
    ck_assert_uint_eq(n_left, 0);
}
END_TEST

START_TEST(test_members_beat_chance) {
    shared_setup();
    const cml_member_ops *roster[CML_MAX_MEMBERS];
    ck_assert_uint_eq(model->n_members,
                      cml_model_type_members(CML_MODEL_ENSEMBLE, roster, CML_MAX_MEMBERS));
    ck_assert_uint_eq(model->n_members, 7); /* kept: keep_all_members */
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
        ck_assert_ptr_nonnull(member_of(model, ours[i]));
        for (size_t k = 0; k < report.n_members; k++) {
            if (model->members[k].ops->kind != ours[i])
                continue;
            const cml_metrics *h = &report.members[k].holdout;
            ck_assert_msg(h->f1_macro > 0.75 && h->roc_auc > 0.85,
                          "%s: held-out macro F1 %.3f, AUC %.3f", report.members[k].name,
                          h->f1_macro, h->roc_auc);
            for (size_t c = 0; c < h->n_labels; c++)
                ck_assert_msg(h->per_class[c].recall > 0.6, "%s: recall of class %zu is %.3f",
                              report.members[k].name, c, h->per_class[c].recall);
        }
    }
    const cml_metrics *e = &report.members[report.n_members].holdout;
    ck_assert_msg(e->f1_macro > 0.8, "ensemble held-out macro F1 %.3f", e->f1_macro);
}
END_TEST

START_TEST(test_probabilities_are_distributions) {
    shared_setup();
    double *p = predict_holdout(model);
    size_t n = model->holdout->n, L = model->n_labels, width = (model->n_members + 1) * L;
    for (size_t i = 0; i < n * width / L; i++) {
        double sum = 0;
        for (size_t c = 0; c < L; c++) {
            ck_assert(p[i * L + c] >= 0 && p[i * L + c] <= 1);
            sum += p[i * L + c];
        }
        ck_assert_double_eq_tol(sum, 1.0, 1e-9);
    }
    cml_free(p);
}
END_TEST

START_TEST(test_round_trip_is_identical) {
    shared_setup();
    cml_model *back = NULL;
    cml_diag d = {{0}};
    ck_assert_msg(cml_model_deserialize(file_buf, file_len, &back, &d) == CML_OK, "%s", d.msg);
    double *a = predict_holdout(model), *b = predict_holdout(back);
    size_t bytes = model->holdout->n * (model->n_members + 1) * model->n_labels * sizeof(double);
    ck_assert_msg(memcmp(a, b, bytes) == 0, "a reloaded model predicts differently");
    /* Serialising the reloaded model gives the same member payloads. */
    uint8_t *again = NULL;
    size_t again_len = 0;
    ck_assert_int_eq(cml_model_serialize(back, &again, &again_len), CML_OK);
    ck_assert_uint_eq(again_len, file_len);
    cml_free(again);
    cml_free(a);
    cml_free(b);
    cml_model_release(back);
}
END_TEST

/* Stacking and the utterance combiner are stored in the file and predict identically after it. */
START_TEST(test_stacked_model_round_trips) {
    shared_setup();
    cml_model *stacked = NULL, *back = NULL;
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_model_deserialize(file_buf, file_len, &stacked, &d), CML_OK);
    stacked->combination = CML_COMBINE_STACKING;
    stacked->stacker.n_inputs = (uint32_t)stacked->n_members;
    for (size_t k = 0; k < stacked->n_members; k++)
        stacked->stacker.coef[k] = 0.3 + 0.1 * (double)k;
    stacked->stacker.bias = -0.05;
    stacked->utterance_fitted = true;
    stacked->utterance.n_inputs = CML_UTT__MAX;
    for (size_t k = 0; k < CML_UTT__MAX; k++)
        stacked->utterance.coef[k] = 0.5 - 0.1 * (double)k;
    stacked->utterance.bias = 0.1;
    uint8_t *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(cml_model_serialize(stacked, &buf, &len), CML_OK);
    ck_assert_msg(cml_model_deserialize(buf, len, &back, &d) == CML_OK, "%s", d.msg);
    ck_assert_int_eq(back->combination, CML_COMBINE_STACKING);
    ck_assert(back->utterance_fitted);
    ck_assert_str_eq(cml_model_voting(back), "stacking");
    double *a = predict_holdout(stacked), *b = predict_holdout(back);
    size_t bytes = model->holdout->n * (model->n_members + 1) * model->n_labels * sizeof(double);
    ck_assert_msg(memcmp(a, b, bytes) == 0, "a reloaded stacked model predicts differently");
    /* A clip of several sentences goes through the utterance combiner, the same after loading. */
    const char *clip = "Look, it is all wet. Why is it wet? Because it rained.";
    cml_feature_scratch *s = cml_feature_scratch_new();
    cml_prediction p1, p2;
    ck_assert_int_eq(cml_model_predict(stacked, s, clip, strlen(clip), &p1), CML_OK);
    ck_assert_int_eq(cml_model_predict(back, s, clip, strlen(clip), &p2), CML_OK);
    ck_assert_uint_eq(p1.n_sentences, 3);
    ck_assert_uint_eq(p1.n_questions, 1);
    ck_assert(p1.probs[1] == p2.probs[1] &&
              p1.questions[0].confidence == p2.questions[0].confidence);
    cml_model_release(back);
    cml_feature_scratch_free(s);
    cml_free(a);
    cml_free(b);
    cml_free(buf);
    cml_model_release(stacked);
}
END_TEST

/* A member of one view learns nothing from the other columns: removing them changes nothing. */
START_TEST(test_views_ignore_other_columns) {
    shared_setup();
    const cml_member_kind kinds[] = {CML_MEMBER_LOGREG_WORDS, CML_MEMBER_LOGREG_CHARS};
    const unsigned ignored[] = {1u << CML_SPACE_CHARS,
                                (1u << CML_SPACE_WORDS) | (1u << CML_SPACE_FOCUS)};
    size_t n_cols = cml_featurizer_n_cols(model->features);
    uint8_t *space = cml_malloc(n_cols);
    cml_featurizer_column_spaces(model->features, space);
    cml_feature_scratch *s = cml_feature_scratch_new();
    for (size_t v = 0; v < 2; v++) {
        const cml_model_member *mm = member_of(model, kinds[v]);
        ck_assert_ptr_nonnull(mm);
        size_t kept_some = 0;
        for (size_t i = 0; i < model->holdout->n; i++) {
            const char *t = model->holdout->texts[i];
            cml_sparse x;
            ck_assert_int_eq(cml_features_extract(model->features, s, t, strlen(t), &x), CML_OK);
            int idx[4096];
            float val[4096];
            cml_sparse part = {.n = 0, .idx = idx, .val = val};
            for (int k = 0; k < x.n && part.n < 4096; k++)
                if (!(ignored[v] >> space[x.idx[k]] & 1u)) {
                    idx[part.n] = x.idx[k];
                    val[part.n++] = x.val[k];
                }
            kept_some += part.n < x.n;
            double a[CML_MAX_LABELS], b[CML_MAX_LABELS];
            ck_assert_int_eq(mm->ops->predict(mm->state, &x, a), CML_OK);
            ck_assert_int_eq(mm->ops->predict(mm->state, &part, b), CML_OK);
            ck_assert_double_eq_tol(a[1], b[1], 1e-9);
        }
        ck_assert_uint_gt(kept_some, 0); /* the other columns were really there */
    }
    cml_feature_scratch_free(s);
    cml_free(space);
}
END_TEST

typedef struct worker {
    const cml_model *m;
    double *out;
} worker;

static void *predict_worker(void *arg) {
    worker *w = arg;
    w->out = predict_holdout(w->m);
    return NULL;
}

START_TEST(test_concurrent_predictions_match) {
    shared_setup();
    cml_model *back = NULL;
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_model_deserialize(file_buf, file_len, &back, &d), CML_OK);
    double *single = predict_holdout(back);
    pthread_t th[THREADS];
    worker w[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t] = (worker){.m = back, .out = NULL};
        ck_assert_int_eq(pthread_create(&th[t], NULL, predict_worker, &w[t]), 0);
    }
    size_t bytes = model->holdout->n * (back->n_members + 1) * back->n_labels * sizeof(double);
    for (int t = 0; t < THREADS; t++) {
        ck_assert_int_eq(pthread_join(th[t], NULL), 0);
        ck_assert_msg(memcmp(w[t].out, single, bytes) == 0, "thread %d predicted differently", t);
        cml_free(w[t].out);
    }
    cml_free(single);
    cml_model_release(back);
}
END_TEST

/* --- editing model files ------------------------------------------------- */

typedef struct section {
    uint32_t tag;
    size_t start, len; /* of the payload within the file */
    size_t head;       /* of the section header */
} section;

#define TAG_MEMB ((uint32_t)'M' | (uint32_t)'E' << 8 | (uint32_t)'M' << 16 | (uint32_t)'B' << 24)

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The sections of a model file; returns how many (at most cap). */
static size_t sections_of(const uint8_t *buf, size_t len, section *out, size_t cap) {
    size_t n = get_u32(buf + 12), at = 16, got = 0;
    for (size_t s = 0; s < n && got < cap; s++) {
        uint64_t slen = (uint64_t)get_u32(buf + at + 4) | (uint64_t)get_u32(buf + at + 8) << 32;
        out[got++] = (section){.tag = get_u32(buf + at), .start = at + 12, .len = slen, .head = at};
        at += 12 + slen;
    }
    ck_assert_uint_eq(at + 32, len);
    return got;
}

/* Recomputes the trailing SHA-256 so that only the edit itself can be refused. */
static void reseal(uint8_t *buf, size_t len) {
    unsigned int md_len = 0;
    ck_assert_int_eq(EVP_Digest(buf, len - 32, buf + len - 32, &md_len, EVP_sha256(), NULL), 1);
    ck_assert_uint_eq(md_len, 32);
}

/* The MEMB section holding a member of the kind, or NULL. */
static const section *member_section(const section *s, size_t n, const uint8_t *buf,
                                     cml_member_kind kind) {
    for (size_t i = 0; i < n; i++)
        if (s[i].tag == TAG_MEMB && get_u32(buf + s[i].start) == (uint32_t)kind)
            return &s[i];
    return NULL;
}

START_TEST(test_resealed_file_loads) {
    /* The editing helpers themselves: an unedited, resealed copy loads. */
    shared_setup();
    uint8_t *copy = cml_malloc(file_len);
    memcpy(copy, file_buf, file_len);
    reseal(copy, file_len);
    cml_model *m = NULL;
    cml_diag d = {{0}};
    ck_assert_msg(cml_model_deserialize(copy, file_len, &m, &d) == CML_OK, "%s", d.msg);
    cml_model_release(m);
    cml_free(copy);
}
END_TEST

START_TEST(test_corrupt_member_payload_is_refused) {
    shared_setup();
    section s[16];
    size_t n = sections_of(file_buf, file_len, s, 16);
    uint8_t *copy = cml_malloc(file_len);
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
        const section *ms = member_section(s, n, file_buf, ours[i]);
        ck_assert_ptr_nonnull(ms);
        /* Header fields, the column selection, the model body and the seal. */
        size_t offsets[] = {4, 8, 12, 20, 40, ms->len / 3, ms->len / 2, ms->len - 40, ms->len - 1};
        for (size_t k = 0; k < sizeof(offsets) / sizeof(offsets[0]); k++) {
            memcpy(copy, file_buf, file_len);
            copy[ms->start + offsets[k]] ^= 0x5a;
            reseal(copy, file_len);
            cml_model *m = NULL;
            cml_diag d = {{0}};
            cml_err err = cml_model_deserialize(copy, file_len, &m, &d);
            ck_assert_msg(err == CML_ERR_FORMAT, "kind %d, byte %zu flipped: %s (%s)", ours[i],
                          offsets[k], cml_strerror(err), d.msg);
            ck_assert_ptr_null(m);
        }
    }
    cml_free(copy);
}
END_TEST

START_TEST(test_missing_member_is_refused) {
    shared_setup();
    section s[16];
    size_t n = sections_of(file_buf, file_len, s, 16);
    uint8_t *copy = cml_malloc(file_len);
    for (size_t i = 0; i < n; i++) {
        if (s[i].tag != TAG_MEMB)
            continue;
        /* Everything but section i, with the count one less and a fresh digest. */
        size_t drop = 12 + s[i].len, len = 0;
        memcpy(copy, file_buf, s[i].head);
        len = s[i].head;
        memcpy(copy + len, file_buf + s[i].head + drop, file_len - s[i].head - drop);
        len += file_len - s[i].head - drop;
        uint32_t count = get_u32(copy + 12) - 1;
        for (int b = 0; b < 4; b++)
            copy[12 + b] = (uint8_t)(count >> (8 * b));
        reseal(copy, len);
        cml_model *m = NULL;
        cml_diag d = {{0}};
        cml_err err = cml_model_deserialize(copy, len, &m, &d);
        ck_assert_msg(err == CML_ERR_FORMAT, "member section %zu dropped: %s (%s)", i,
                      cml_strerror(err), d.msg);
        ck_assert_ptr_null(m);
    }
    cml_free(copy);
}
END_TEST

START_TEST(test_payloads_refuse_mismatch_and_truncation) {
    shared_setup();
    size_t L = model->n_labels, C = cml_featurizer_n_cols(model->features);
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
        const cml_model_member *mm = member_of(model, ours[i]);
        cml_buf b = {0};
        ck_assert_int_eq(mm->ops->serialize(mm->state, &b), CML_OK);
        void *st = NULL;
        cml_diag d = {{0}};
        ck_assert_int_eq(mm->ops->deserialize(b.data, b.len, L, C, &st, &d), CML_OK);
        mm->ops->free_state(st);
        /* Another feature space or label set, or another member's payload. */
        ck_assert_int_eq(mm->ops->deserialize(b.data, b.len, L, C + 1, &st, &d), CML_ERR_FORMAT);
        ck_assert_int_eq(mm->ops->deserialize(b.data, b.len, L + 1, C, &st, &d), CML_ERR_FORMAT);
        const cml_member_ops *other = cml_member_ops_by_kind(ours[(i + 1) % 3]);
        ck_assert_int_eq(other->deserialize(b.data, b.len, L, C, &st, &d), CML_ERR_FORMAT);
        ck_assert_ptr_null(st);
        /* Every prefix is refused (sampled: the payloads are large). */
        for (size_t cut = 0; cut < b.len; cut += cut < 256 ? 1 : b.len / 97) {
            ck_assert_int_eq(mm->ops->deserialize(b.data, cut, L, C, &st, &d), CML_ERR_FORMAT);
            ck_assert_ptr_null(st);
        }
        mm->ops->free_state(NULL);
        cml_buf_release(&b);
    }
}
END_TEST

/* Recomputes the seal of a member payload (its last 32 bytes). */
static void reseal_payload(uint8_t *p, size_t len) {
    unsigned int md_len = 0;
    ck_assert_int_eq(EVP_Digest(p, len - 32, p + len - 32, &md_len, EVP_sha256(), NULL), 1);
}

START_TEST(test_resealed_damage_never_crashes) {
    /*
     * Damage that passes the seal (as a crafted payload would) reaches
     * XGBoost's parser and our checks: it must be refused or give a model
     * that still predicts distributions, never crash.
     */
    shared_setup();
    size_t L = model->n_labels, C = cml_featurizer_n_cols(model->features);
    cml_feature_scratch *fs = cml_feature_scratch_new();
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
        const cml_model_member *mm = member_of(model, ours[i]);
        cml_buf b = {0};
        ck_assert_int_eq(mm->ops->serialize(mm->state, &b), CML_OK);
        uint8_t *copy = cml_malloc(b.len);
        size_t refused = 0, loaded = 0;
        for (size_t k = 0; k < 60; k++) {
            size_t at = (k * 7919 + 13) % (b.len - 32);
            memcpy(copy, b.data, b.len);
            copy[at] ^= (uint8_t)(k % 2 ? 0xff : 0x08);
            reseal_payload(copy, b.len);
            void *st = NULL;
            cml_diag d = {{0}};
            cml_err err = mm->ops->deserialize(copy, b.len, L, C, &st, &d);
            ck_assert_msg(err == CML_OK || err == CML_ERR_FORMAT, "%s byte %zu: %s", mm->ops->name,
                          at, cml_strerror(err));
            if (err != CML_OK) {
                ck_assert_ptr_null(st);
                refused++;
                continue;
            }
            loaded++;
            for (size_t r = 0; r < model->holdout->n; r += 7) {
                const char *t = model->holdout->texts[r];
                cml_sparse x;
                double p[CML_MAX_LABELS], sum = 0;
                ck_assert_int_eq(cml_features_extract(model->features, fs, t, strlen(t), &x),
                                 CML_OK);
                ck_assert_int_eq(mm->ops->predict(st, &x, p), CML_OK);
                for (size_t c = 0; c < L; c++) {
                    ck_assert(p[c] >= 0 && p[c] <= 1);
                    sum += p[c];
                }
                ck_assert_double_eq_tol(sum, 1.0, 1e-9);
            }
            mm->ops->free_state(st);
        }
        ck_assert_uint_gt(refused, 0);
        (void)loaded;
        cml_free(copy);
        cml_buf_release(&b);
    }
    cml_feature_scratch_free(fs);
}
END_TEST

/* Features of the first rows of ds (n_train of them train, the rest are held out). */
typedef struct split_features {
    cml_featurizer *f;
    cml_csr train, test;
    cml_dataset *tr, *te;
} split_features;

static void split_features_make(const cml_dataset *ds, size_t n_train, split_features *sf) {
    size_t *idx = cml_malloc(ds->n * sizeof(size_t));
    for (size_t i = 0; i < ds->n; i++)
        idx[i] = i;
    sf->tr = cml_dataset_subset(ds, idx, n_train);
    sf->te = cml_dataset_subset(ds, idx + n_train, ds->n - n_train);
    cml_free(idx);
    ck_assert_int_eq(cml_featurizer_fit(sf->tr, NULL, &sf->f), CML_OK);
    ck_assert_int_eq(cml_features_matrix(sf->f, sf->tr, &sf->train), CML_OK);
    ck_assert_int_eq(cml_features_matrix(sf->f, sf->te, &sf->test), CML_OK);
}

static void split_features_free(split_features *sf) {
    cml_featurizer_free(sf->f);
    cml_csr_free(&sf->train);
    cml_csr_free(&sf->test);
    cml_dataset_free(sf->tr);
    cml_dataset_free(sf->te);
}

static void balanced(const int *y, size_t n, size_t L, double *w) {
    size_t count[CML_MAX_LABELS] = {0};
    for (size_t i = 0; i < n; i++)
        count[y[i]]++;
    for (size_t c = 0; c < L; c++)
        w[c] = count[c] ? (double)n / ((double)L * (double)count[c]) : 1.0;
}

START_TEST(test_training_is_deterministic) {
    shared_setup();
    split_features sf;
    split_features_make(small, 400, &sf);
    double w[CML_MAX_LABELS];
    balanced(sf.tr->labels, sf.tr->n, sf.tr->n_labels, w);
    cml_train_set ts = {
        .X = &sf.train, .y = sf.tr->labels, .n_labels = sf.tr->n_labels, .class_weight = w};
    /* The same seed gives the same model, whatever the number of training threads. */
    cml_member_params p1 = {.seed = 7, .n_threads = 1}, p2 = {.seed = 7, .n_threads = 2};
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
        const cml_member_ops *ops = cml_member_ops_by_kind(ours[i]);
        void *a = NULL, *b = NULL;
        cml_diag d = {{0}};
        ck_assert_msg(ops->train(&ts, &p1, &a, &d) == CML_OK, "%s", d.msg);
        ck_assert_msg(ops->train(&ts, &p2, &b, &d) == CML_OK, "%s", d.msg);
        cml_buf ba = {0}, bb = {0};
        ck_assert_int_eq(ops->serialize(a, &ba), CML_OK);
        ck_assert_int_eq(ops->serialize(b, &bb), CML_OK);
        ck_assert_msg(ba.len == bb.len && memcmp(ba.data, bb.data, ba.len) == 0,
                      "%s trained twice with one seed differs", ops->name);
        ck_assert_uint_gt(ops->state_bytes(a), 0);
        cml_buf_release(&ba);
        cml_buf_release(&bb);
        ops->free_state(a);
        ops->free_state(b);
    }
    split_features_free(&sf);
}
END_TEST

/*
 * Cross-validation and the final fit run in forked workers when the training may use two
 * cores: the model is the one a single process trains, prediction for prediction.
 */
START_TEST(test_parallel_training_equals_serial) {
    shared_setup();
    cml_model *m[2] = {NULL, NULL};
    for (int w = 0; w < 2; w++) {
        cml_train_options to;
        cml_train_options_init(&to, CML_MODEL_ENSEMBLE);
        to.cv_folds = 3;
        to.n_threads = w + 1;
        cml_diag d = {{0}};
        ck_assert_msg(cml_train(small, &to, &m[w], NULL, &d) == CML_OK, "%s", d.msg);
    }
    ck_assert_uint_eq(m[0]->n_members, m[1]->n_members);
    ck_assert_int_eq(m[0]->combination, m[1]->combination);
    double *a = predict_holdout(m[0]), *b = predict_holdout(m[1]);
    size_t width = (m[0]->n_members + 1) * m[0]->n_labels;
    for (size_t i = 0; i < model->holdout->n * width; i++)
        ck_assert_double_eq_tol(a[i], b[i], 1e-12);
    cml_free(a);
    cml_free(b);
    cml_model_release(m[0]);
    cml_model_release(m[1]);
}
END_TEST

START_TEST(test_three_labels) {
    shared_setup();
    /* A third label: open questions asking for reasons. */
    cml_dataset *ds = cml_dataset_new();
    for (size_t i = 0; i < small->n; i++) {
        const char *t = small->texts[i], *l = small->label_names[small->labels[i]];
        if (strcmp(l, "OEQ") == 0 && (strstr(t, "why") || strstr(t, "Why") || strstr(t, "think")))
            l = "REASON";
        ck_assert_int_eq(cml_dataset_add(ds, t, l, i + 2), CML_OK);
    }
    ck_assert_uint_eq(ds->n_labels, 3);
    split_features sf;
    split_features_make(ds, 450, &sf);
    double w[CML_MAX_LABELS];
    balanced(sf.tr->labels, sf.tr->n, 3, w);
    cml_train_set ts = {.X = &sf.train, .y = sf.tr->labels, .n_labels = 3, .class_weight = w};
    cml_member_params p = {.seed = 3, .n_threads = 1};
    size_t C = cml_featurizer_n_cols(sf.f);
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
        const cml_member_ops *ops = cml_member_ops_by_kind(ours[i]);
        void *st = NULL, *back = NULL;
        cml_diag d = {{0}};
        ck_assert_msg(ops->train(&ts, &p, &st, &d) == CML_OK, "%s: %s", ops->name, d.msg);
        cml_buf b = {0};
        ck_assert_int_eq(ops->serialize(st, &b), CML_OK);
        ck_assert_int_eq(ops->deserialize(b.data, b.len, 2, C, &back, &d), CML_ERR_FORMAT);
        ck_assert_ptr_null(back);
        ck_assert_msg(ops->deserialize(b.data, b.len, 3, C, &back, &d) == CML_OK, "%s", d.msg);
        size_t right = 0;
        for (size_t r = 0; r < sf.test.n_rows; r++) {
            cml_sparse x = {.n = (int)(sf.test.indptr[r + 1] - sf.test.indptr[r]),
                            .idx = sf.test.indices + sf.test.indptr[r],
                            .val = sf.test.values + sf.test.indptr[r]};
            double p1[CML_MAX_LABELS], p2[CML_MAX_LABELS], sum = 0;
            ck_assert_int_eq(ops->predict(st, &x, p1), CML_OK);
            ck_assert_int_eq(ops->predict(back, &x, p2), CML_OK);
            ck_assert(memcmp(p1, p2, 3 * sizeof(double)) == 0);
            size_t best = 0;
            for (size_t c = 0; c < 3; c++) {
                ck_assert(p1[c] >= 0 && p1[c] <= 1);
                sum += p1[c];
                if (p1[c] > p1[best])
                    best = c;
            }
            ck_assert_double_eq_tol(sum, 1.0, 1e-9);
            right += (int)best == sf.te->labels[r];
        }
        double acc = (double)right / (double)sf.test.n_rows;
        ck_assert_msg(acc > 0.6, "%s: accuracy %.3f on three labels", ops->name, acc);
        cml_buf_release(&b);
        ops->free_state(st);
        ops->free_state(back);
    }
    split_features_free(&sf);
    cml_dataset_free(ds);
}
END_TEST

START_TEST(test_column_selection) {
    shared_setup();
    split_features sf;
    split_features_make(small, 400, &sf);
    cml_colsel s;
    ck_assert_int_eq(cml_colsel_fit(&sf.train, sf.tr->labels, 2, NULL, 50, 2, &s), CML_OK);
    ck_assert_uint_eq(s.n_sel, CML_HAND_FEATURES + 50);
    for (uint32_t j = 0; j < s.n_sel; j++) {
        ck_assert(j == 0 || s.cols[j] > s.cols[j - 1]);
        ck_assert_int_eq(s.pos[s.cols[j]], (int32_t)j);
        if (j < CML_HAND_FEATURES)
            ck_assert_uint_eq(s.cols[j], j);
    }
    /* Written and read back; damaged selections are refused. */
    cml_buf b = {0};
    cml_colsel_write(&s, &b);
    cml_reader r = cml_reader_init(b.data, b.len);
    cml_colsel t;
    ck_assert_int_eq(cml_colsel_read(&r, s.n_src, &t), CML_OK);
    ck_assert_uint_eq(t.n_sel, s.n_sel);
    ck_assert(memcmp(t.cols, s.cols, s.n_sel * sizeof(uint32_t)) == 0);
    cml_colsel_release(&t);
    r = cml_reader_init(b.data, b.len);
    ck_assert_int_eq(cml_colsel_read(&r, s.cols[s.n_sel - 1], &t), CML_ERR_FORMAT);
    b.data[8] = b.data[4]; /* columns 1 and 1: not ascending */
    b.data[9] = b.data[5];
    r = cml_reader_init(b.data, b.len);
    ck_assert_int_eq(cml_colsel_read(&r, s.n_src, &t), CML_ERR_FORMAT);
    r = cml_reader_init(b.data, 6);
    ck_assert_int_eq(cml_colsel_read(&r, s.n_src, &t), CML_ERR_FORMAT);
    cml_buf_release(&b);
    /* Mapping a row keeps selected columns only, sorted. */
    int idx[] = {s.cols[30], 3, (int)s.n_src + 5, -1, s.cols[25]};
    float val[] = {0.5f, 1.0f, 2.0f, 3.0f, 0.25f};
    cml_sparse x = {.n = 5, .idx = idx, .val = val};
    uint32_t mi[5];
    float mv[5];
    ck_assert_uint_eq(cml_colsel_map(&s, &x, mi, mv), 3);
    ck_assert_uint_eq(mi[0], 3);
    ck_assert_uint_eq(mi[1], 25);
    ck_assert_uint_eq(mi[2], 30);
    ck_assert(mv[1] == 0.25f && mv[2] == 0.5f);
    cml_colsel_release(&s);
    cml_colsel_release(NULL);
    split_features_free(&sf);
}
END_TEST

START_TEST(test_payload_seal) {
    cml_buf b = {0};
    cml_buf_put_u32(&b, 99);
    size_t start = b.len;
    cml_buf_put(&b, "payload", 7);
    cml_payload_seal(&b, start);
    size_t body = 0;
    ck_assert(cml_payload_check(b.data + start, b.len - start, &body));
    ck_assert_uint_eq(body, 7);
    b.data[start + 2] ^= 1;
    ck_assert(!cml_payload_check(b.data + start, b.len - start, &body));
    ck_assert(!cml_payload_check(b.data, 10, &body));
    ck_assert(!cml_payload_check(NULL, 0, &body));
    cml_buf_release(&b);
}
END_TEST

static void shared_teardown(void) {
    cml_model_release(model);
    model = NULL;
    cml_train_report_release(&report);
    cml_dataset_free(small);
    small = NULL;
    cml_free(file_buf);
    file_buf = NULL;
}

int main(void) {
    if (getenv("CML_TEST_DATA") == NULL) {
        fprintf(stderr, "CML_TEST_DATA is not set: skipping\n");
        return 77;
    }
    Suite *s = suite_create("ensemble");
    TCase *tc = tcase_create("members");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, NULL, shared_teardown);
    tcase_add_test(tc, test_candidates_roster);
    tcase_add_test(tc, test_payload_seal);
    tcase_add_test(tc, test_members_beat_chance);
    tcase_add_test(tc, test_probabilities_are_distributions);
    tcase_add_test(tc, test_round_trip_is_identical);
    tcase_add_test(tc, test_stacked_model_round_trips);
    tcase_add_test(tc, test_views_ignore_other_columns);
    tcase_add_test(tc, test_concurrent_predictions_match);
    tcase_add_test(tc, test_resealed_file_loads);
    tcase_add_test(tc, test_corrupt_member_payload_is_refused);
    tcase_add_test(tc, test_missing_member_is_refused);
    tcase_add_test(tc, test_payloads_refuse_mismatch_and_truncation);
    tcase_add_test(tc, test_resealed_damage_never_crashes);
    tcase_add_test(tc, test_training_is_deterministic);
    tcase_add_test(tc, test_parallel_training_equals_serial);
    tcase_add_test(tc, test_three_labels);
    tcase_add_test(tc, test_column_selection);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    /* XGBoost's OpenMP threads make fork() without exec hang: run in this process. */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
