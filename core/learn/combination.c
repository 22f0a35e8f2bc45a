#include "config.h"

#include "learn/combination.h"

#include <math.h>
#include <string.h>

#include "base/cml_alloc.h"
#include "learn/data_split.h"
#include "learn/eval_metrics.h"

#define INNER_FOLDS 5
#define STACK_C 1.0
#define UTTERANCE_C 1.0
#define UTTERANCE_MIN_ROWS 20
/*
 * A member whose removal raises the inner-CV log loss by less than this share adds nothing: a
 * copy of another member "helps" a stacker only by halving its penalty, about 0.1 %.
 */
#define PRUNE_TOLERANCE 0.002

/* Probability of label c of row i by member k of the oof. */
static inline double member_p(const cml_oof *o, size_t k, size_t i, size_t c) {
    return o->probs[(k * o->n + i) * o->n_labels + c];
}

static double mix_log_loss(const cml_oof *o, const size_t *rows, size_t n_rows, const size_t *use,
                           size_t n_use, const double *w) {
    double ll = 0;
    for (size_t r = 0; r < n_rows; r++) {
        size_t i = rows[r];
        double p = 0;
        for (size_t k = 0; k < n_use; k++)
            p += w[k] * member_p(o, use[k], i, (size_t)o->y[i]);
        ll -= log(p < 1e-15 ? 1e-15 : p);
    }
    return ll / (double)(n_rows ? n_rows : 1);
}

/* Soft-voting weights minimising the log loss on rows (coordinate search on the simplex). */
static void fit_weights(const cml_oof *o, const size_t *rows, size_t n_rows, const size_t *use,
                        size_t n_use, double *w) {
    for (size_t k = 0; k < n_use; k++)
        w[k] = 1.0 / (double)n_use;
    if (n_use < 2)
        return;
    double best = mix_log_loss(o, rows, n_rows, use, n_use, w);
    for (double step = 0.2; step > 0.005; step /= 2) {
        bool improved = true;
        while (improved) {
            improved = false;
            for (size_t k = 0; k < n_use; k++) {
                for (int dir = -1; dir <= 1; dir += 2) {
                    double trial[CML_MAX_MEMBERS], sum = 0;
                    memcpy(trial, w, n_use * sizeof(double));
                    trial[k] += dir * step;
                    if (trial[k] < 0)
                        continue;
                    for (size_t j = 0; j < n_use; j++)
                        sum += trial[j];
                    for (size_t j = 0; j < n_use; j++)
                        trial[j] /= sum;
                    double ll = mix_log_loss(o, rows, n_rows, use, n_use, trial);
                    if (ll < best - 1e-9) {
                        best = ll;
                        memcpy(w, trial, n_use * sizeof(double));
                        improved = true;
                    }
                }
            }
        }
    }
}

/* Stacker inputs of row i: the logit of label 1 of each used member. */
static void stack_inputs(const cml_oof *o, size_t i, const size_t *use, size_t n_use, double *x) {
    for (size_t k = 0; k < n_use; k++)
        x[k] = cml_logit(member_p(o, use[k], i, 1));
}

static cml_err fit_stacker(const cml_oof *o, const size_t *rows, size_t n_rows, const size_t *use,
                           size_t n_use, cml_dense_logreg *st) {
    double *x = cml_malloc(n_rows * n_use * sizeof(double));
    int *y = cml_malloc(n_rows * sizeof(int));
    cml_err err = CML_ERR_NOMEM;
    if (x != NULL && y != NULL) {
        for (size_t r = 0; r < n_rows; r++) {
            stack_inputs(o, rows[r], use, n_use, &x[r * n_use]);
            y[r] = o->y[rows[r]];
        }
        err = cml_dense_logreg_fit(x, y, n_rows, n_use, STACK_C, st);
    }
    cml_free(x);
    cml_free(y);
    return err;
}

/* Combined probabilities of row i of the oof by a fitted combination over use[]. */
static void combine_row(cml_combination c, const cml_oof *o, size_t i, const size_t *use,
                        size_t n_use, const double *w, const cml_dense_logreg *st, double *out) {
    if (c == CML_COMBINE_STACKING) {
        double x[CML_MAX_MEMBERS];
        stack_inputs(o, i, use, n_use, x);
        out[1] = cml_dense_logreg_apply(st, x);
        out[0] = 1.0 - out[1];
        return;
    }
    for (size_t l = 0; l < o->n_labels; l++) {
        out[l] = 0;
        for (size_t k = 0; k < n_use; k++)
            out[l] += w[k] * member_p(o, use[k], i, l);
    }
}

/* Inner cross-validated log loss and macro F1 of combination c over the members use[]. */
static cml_err score(cml_combination c, const cml_oof *o, const size_t *fold_of, const size_t *use,
                     size_t n_use, cml_combination_report *rep) {
    cml_err err = CML_OK;
    size_t *rows = cml_malloc(o->n * sizeof(size_t));
    double *probs = cml_malloc(o->n * o->n_labels * sizeof(double));
    cml_metrics m = {0};
    if (rows == NULL || probs == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    for (size_t f = 0; f < INNER_FOLDS; f++) {
        size_t nr = 0;
        for (size_t i = 0; i < o->n; i++)
            if (fold_of[i] != f)
                rows[nr++] = i;
        double w[CML_MAX_MEMBERS] = {0};
        cml_dense_logreg st = {0};
        if (c == CML_COMBINE_STACKING)
            err = fit_stacker(o, rows, nr, use, n_use, &st);
        else
            fit_weights(o, rows, nr, use, n_use, w);
        if (err != CML_OK)
            goto done;
        for (size_t i = 0; i < o->n; i++)
            if (fold_of[i] == f)
                combine_row(c, o, i, use, n_use, w, &st, &probs[i * o->n_labels]);
    }
    if ((err = cml_eval_compute(o->y, probs, o->n, o->n_labels, &m)) != CML_OK)
        goto done;
    *rep = (cml_combination_report){.tried = true, .log_loss = m.log_loss, .f1_macro = m.f1_macro};
done:
    cml_eval_release(&m);
    cml_free(rows);
    cml_free(probs);
    return err;
}

/* The better of the combinations that apply, scored over use[]. */
static cml_err best_of(const cml_oof *o, const size_t *fold_of, const size_t *use, size_t n_use,
                       cml_combination *best, cml_combination_report *reps) {
    cml_err err;
    memset(reps, 0, CML_COMBINE__MAX * sizeof(*reps));
    *best = CML_COMBINE_VOTING;
    if ((err = score(CML_COMBINE_VOTING, o, fold_of, use, n_use, &reps[CML_COMBINE_VOTING])) !=
        CML_OK)
        return err;
    if (o->n_labels == 2 && n_use >= 2) {
        err = score(CML_COMBINE_STACKING, o, fold_of, use, n_use, &reps[CML_COMBINE_STACKING]);
        if (err != CML_OK)
            return err;
        if (reps[CML_COMBINE_STACKING].log_loss < reps[CML_COMBINE_VOTING].log_loss)
            *best = CML_COMBINE_STACKING;
    }
    return CML_OK;
}

cml_err cml_combiner_choose(const cml_oof *o, uint64_t seed, bool prune, cml_combiner_fit *out) {
    cml_err err;
    size_t *fold_of = NULL, *all = NULL;
    memset(out, 0, sizeof(*out));
    out->n_use = o->n_members;
    for (size_t k = 0; k < o->n_members; k++)
        out->use[k] = k;
    fold_of = cml_malloc(o->n * sizeof(size_t));
    all = cml_malloc(o->n * sizeof(size_t));
    if (fold_of == NULL || all == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    if ((err = cml_stratified_folds(o->y, o->n, o->n_labels, INNER_FOLDS, seed, fold_of)) != CML_OK)
        goto done;
    if ((err = best_of(o, fold_of, out->use, out->n_use, &out->combination, out->reports)) !=
        CML_OK)
        goto done;

    /* Backward elimination: drop the member whose absence costs least, while it costs nothing. */
    while (prune && out->n_use > 2) {
        double current = out->reports[out->combination].log_loss;
        size_t drop = out->n_use;
        double drop_loss = 0;
        for (size_t j = 0; j < out->n_use; j++) {
            size_t trial[CML_MAX_MEMBERS], nt = 0;
            for (size_t k = 0; k < out->n_use; k++)
                if (k != j)
                    trial[nt++] = out->use[k];
            cml_combination_report rep;
            if ((err = score(out->combination, o, fold_of, trial, nt, &rep)) != CML_OK)
                goto done;
            if (rep.log_loss <= current * (1.0 + PRUNE_TOLERANCE) &&
                (drop == out->n_use || rep.log_loss < drop_loss)) {
                drop = j;
                drop_loss = rep.log_loss;
            }
        }
        if (drop == out->n_use)
            break;
        memmove(&out->use[drop], &out->use[drop + 1],
                (out->n_use - drop - 1) * sizeof(out->use[0]));
        out->n_use--;
        if ((err = best_of(o, fold_of, out->use, out->n_use, &out->combination, out->reports)) !=
            CML_OK)
            goto done;
    }

    for (size_t i = 0; i < o->n; i++)
        all[i] = i;
    if (out->combination == CML_COMBINE_STACKING)
        err = fit_stacker(o, all, o->n, out->use, out->n_use, &out->stacker);
    else
        fit_weights(o, all, o->n, out->use, out->n_use, out->weights);
    if (out->combination == CML_COMBINE_STACKING)
        for (size_t k = 0; k < out->n_use; k++)
            out->weights[k] = 1.0 / (double)out->n_use;
done:
    cml_free(fold_of);
    cml_free(all);
    return err;
}

void cml_combiner_apply(const cml_combiner_fit *fit, size_t n_labels, const double *member_probs,
                        double *out) {
    /* A one-row oof view of the probabilities: member k's at member_probs[k * n_labels]. */
    size_t n_members = 0;
    for (size_t k = 0; k < fit->n_use; k++)
        n_members = fit->use[k] + 1 > n_members ? fit->use[k] + 1 : n_members;
    int y = 0;
    cml_oof one = {
        .n = 1, .n_members = n_members, .n_labels = n_labels, .probs = member_probs, .y = &y};
    combine_row(fit->combination, &one, 0, fit->use, fit->n_use, fit->weights, &fit->stacker, out);
}

cml_err cml_utterance_fit(const double *x, const int *y, size_t n, cml_dense_logreg *out) {
    if (n < UTTERANCE_MIN_ROWS)
        return CML_ERR_DATA;
    return cml_dense_logreg_fit(x, y, n, CML_UTT__MAX, UTTERANCE_C, out);
}
