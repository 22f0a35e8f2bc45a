#include "config.h"

#include "learn/feature_select.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "base/cml_alloc.h"
#include "learn/member.h"

#define SEAL_BYTES 32

/* Frees the selection's arrays and zeroes it; accepts NULL. */
void cml_colsel_release(cml_colsel *s) {
    if (s == NULL)
        return;
    cml_free(s->cols);
    cml_free(s->pos);
    memset(s, 0, sizeof(*s));
}

/* Bytes of the selection's arrays. */
size_t cml_colsel_bytes(const cml_colsel *s) {
    return (size_t)s->n_sel * sizeof(uint32_t) + (size_t)s->n_src * sizeof(int32_t);
}

/* Fills s->pos from s->cols (allocated here, owned by s). */
static cml_err build_positions(cml_colsel *s) {
    s->pos = cml_malloc((s->n_src ? s->n_src : 1) * sizeof(int32_t));
    if (s->pos == NULL)
        return CML_ERR_NOMEM;
    for (uint32_t c = 0; c < s->n_src; c++)
        s->pos[c] = -1;
    for (uint32_t j = 0; j < s->n_sel; j++)
        s->pos[s->cols[j]] = (int32_t)j;
    return CML_OK;
}

typedef struct scored {
    double score;
    uint32_t col;
} scored;

/* Best score first; ties by column so the choice never depends on qsort. */
static int cmp_scored(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->col < y->col ? -1 : x->col > y->col;
}

/* Ascending order of columns. */
static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Chi-square of the 2 x n_labels table (present/absent by class), weighted counts. */
static double chi_square(const double *present, const double *class_total, size_t n_labels,
                         double total) {
    double p = 0;
    for (size_t k = 0; k < n_labels; k++)
        p += present[k];
    if (p <= 0 || p >= total)
        return 0;
    double chi = 0;
    for (size_t k = 0; k < n_labels; k++) {
        double e1 = class_total[k] * p / total, e0 = class_total[k] - e1;
        double o1 = present[k], o0 = class_total[k] - present[k];
        if (e1 > 0)
            chi += (o1 - e1) * (o1 - e1) / e1;
        if (e0 > 0)
            chi += (o0 - e0) * (o0 - e0) / e0;
    }
    return chi;
}

/* Fills *out with new arrays (the caller's); on failure *out is left empty. */
cml_err cml_colsel_fit(const cml_csr *X, const int *y, size_t n_labels, const double *class_weight,
                       size_t k, size_t min_df, cml_colsel *out) {
    cml_err err = CML_OK;
    size_t n_cols = X->n_cols, hand = n_cols < CML_HAND_FEATURES ? n_cols : CML_HAND_FEATURES;
    double *present = NULL;
    uint32_t *df = NULL;
    scored *cand = NULL;
    cml_colsel s = {0};
    memset(out, 0, sizeof(*out));
    if (n_cols > INT32_MAX || n_labels < 1 || n_labels > CML_MAX_LABELS)
        return CML_ERR_INVALID;
    present = cml_calloc(n_cols * n_labels, sizeof(double));
    df = cml_calloc(n_cols ? n_cols : 1, sizeof(uint32_t));
    cand = cml_malloc((n_cols ? n_cols : 1) * sizeof(scored));
    if (present == NULL || df == NULL || cand == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    double class_total[CML_MAX_LABELS] = {0}, total = 0;
    for (size_t i = 0; i < X->n_rows; i++) {
        size_t c = (size_t)y[i];
        double w = class_weight ? class_weight[c] : 1.0;
        class_total[c] += w;
        total += w;
        for (size_t e = X->indptr[i]; e < X->indptr[i + 1]; e++) {
            size_t col = (size_t)X->indices[e];
            if (col < n_cols && X->values[e] != 0.0f) {
                present[col * n_labels + c] += w;
                df[col]++;
            }
        }
    }
    size_t n_cand = 0;
    for (size_t col = hand; col < n_cols; col++)
        if (df[col] >= min_df && df[col] > 0)
            cand[n_cand++] = (scored){
                .score = chi_square(&present[col * n_labels], class_total, n_labels, total),
                .col = (uint32_t)col};
    qsort(cand, n_cand, sizeof(scored), cmp_scored);
    if (k > n_cand)
        k = n_cand;
    s.n_src = (uint32_t)n_cols;
    s.n_sel = (uint32_t)(hand + k);
    s.cols = cml_malloc((s.n_sel ? s.n_sel : 1) * sizeof(uint32_t));
    if (s.cols == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    for (size_t j = 0; j < hand; j++)
        s.cols[j] = (uint32_t)j;
    for (size_t j = 0; j < k; j++)
        s.cols[hand + j] = cand[j].col;
    qsort(s.cols + hand, k, sizeof(uint32_t), cmp_u32);
    if ((err = build_positions(&s)) != CML_OK)
        goto done;
    *out = s;
    memset(&s, 0, sizeof(s));
done:
    cml_colsel_release(&s);
    cml_free(present);
    cml_free(df);
    cml_free(cand);
    return err;
}

/* Appends the selection to b (b's failure flag records OOM). */
void cml_colsel_write(const cml_colsel *s, cml_buf *b) {
    cml_buf_put_u32(b, s->n_sel);
    for (uint32_t j = 0; j < s->n_sel; j++)
        cml_buf_put_u32(b, s->cols[j]);
}

/* Fills *out with new arrays (the caller's); on failure *out is left empty. */
cml_err cml_colsel_read(cml_reader *r, uint32_t n_src, cml_colsel *out) {
    cml_err err = CML_OK;
    cml_colsel s = {0};
    memset(out, 0, sizeof(*out));
    s.n_src = n_src;
    s.n_sel = cml_read_u32(r);
    if (r->failed || s.n_sel == 0 || s.n_sel > n_src || (size_t)s.n_sel * 4 > r->left) {
        err = CML_ERR_FORMAT;
        goto done;
    }
    s.cols = cml_malloc((size_t)s.n_sel * sizeof(uint32_t));
    if (s.cols == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    for (uint32_t j = 0; j < s.n_sel; j++) {
        s.cols[j] = cml_read_u32(r);
        if (r->failed || s.cols[j] >= n_src || (j > 0 && s.cols[j] <= s.cols[j - 1])) {
            err = CML_ERR_FORMAT;
            goto done;
        }
    }
    if ((err = build_positions(&s)) != CML_OK)
        goto done;
    *out = s;
    memset(&s, 0, sizeof(s));
done:
    cml_colsel_release(&s);
    return err;
}

/* Writes into the caller's idx/val; returns the number of pairs. */
size_t cml_colsel_map(const cml_colsel *s, const cml_sparse *x, uint32_t *idx, float *val) {
    size_t n = 0;
    for (int i = 0; i < x->n; i++) {
        int c = x->idx[i];
        if (c < 0 || (uint32_t)c >= s->n_src || s->pos[c] < 0 || n >= s->n_sel)
            continue;
        /* Insertion keeps the pairs sorted; rows are short and mostly sorted already. */
        uint32_t p = (uint32_t)s->pos[c];
        size_t j = n++;
        while (j > 0 && idx[j - 1] > p) {
            idx[j] = idx[j - 1];
            val[j] = val[j - 1];
            j--;
        }
        idx[j] = p;
        val[j] = x->val[i];
    }
    return n;
}

/* *out gets new arrays owned by the caller (cml_csr_free); left empty on failure. */
cml_err cml_colsel_matrix(const cml_colsel *s, const cml_csr *X, cml_csr *out) {
    cml_err err = CML_OK;
    cml_csr m = {0};
    memset(out, 0, sizeof(*out));
    size_t nnz = 0;
    for (size_t i = 0; i < X->n_rows; i++)
        for (size_t e = X->indptr[i]; e < X->indptr[i + 1]; e++) {
            int c = X->indices[e];
            nnz += c >= 0 && (uint32_t)c < s->n_src && s->pos[c] >= 0;
        }
    m.n_rows = X->n_rows;
    m.n_cols = s->n_sel;
    m.indptr = cml_malloc((X->n_rows + 1) * sizeof(size_t));
    m.indices = cml_malloc((nnz ? nnz : 1) * sizeof(int));
    m.values = cml_malloc((nnz ? nnz : 1) * sizeof(float));
    if (m.indptr == NULL || m.indices == NULL || m.values == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    m.indptr[0] = 0;
    for (size_t i = 0; i < X->n_rows; i++) {
        cml_sparse row = {.n = (int)(X->indptr[i + 1] - X->indptr[i]),
                          .idx = X->indices + X->indptr[i],
                          .val = X->values + X->indptr[i]};
        size_t at = m.indptr[i];
        size_t got = cml_colsel_map(s, &row, (uint32_t *)(m.indices + at), m.values + at);
        m.indptr[i + 1] = at + got;
    }
    *out = m;
    memset(&m, 0, sizeof(m));
done:
    cml_csr_free(&m);
    return err;
}

/* Appends 32 bytes to b; b's failure flag records OOM or a digest failure. */
void cml_payload_seal(cml_buf *b, size_t start) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (b->failed || start > b->len ||
        EVP_Digest(b->data + start, b->len - start, md, &md_len, EVP_sha256(), NULL) != 1 ||
        md_len != SEAL_BYTES) {
        b->failed = true;
        return;
    }
    cml_buf_put(b, md, SEAL_BYTES);
}

/* Reads p only; nothing to free. */
bool cml_payload_check(const uint8_t *p, size_t len, size_t *body_len) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    *body_len = 0;
    if (p == NULL || len < SEAL_BYTES)
        return false;
    size_t n = len - SEAL_BYTES;
    if (EVP_Digest(p, n, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != SEAL_BYTES ||
        CRYPTO_memcmp(md, p + n, SEAL_BYTES) != 0)
        return false;
    *body_len = n;
    return true;
}
