/* The training history and the evaluations. */
#include "config.h"

#include <string.h>

#include "base/cml_alloc.h"
#include "state/state_internal.h"

cml_err cml_state_add_history(cml_state *st, const cml_history_entry *e) {
    pthread_mutex_lock(&st->lock);
    state_stmt *s =
        state_prep(st, "INSERT INTO history (task_id, model_type, version, timestamp,"
                       " metrics, training_time, n_train, n_test) VALUES (?,?,?,?,?,?,?,?)");
    if (s) {
        state_bind_text(s, 1, e->task_id[0] ? e->task_id : NULL);
        state_bind_text(s, 2, e->model_type);
        state_bind_text(s, 3, e->version);
        state_bind_int64(s, 4, e->timestamp);
        state_bind_text(s, 5, e->metrics_json);
        state_bind_double(s, 6, e->training_time);
        state_bind_int64(s, 7, e->n_train);
        state_bind_int64(s, 8, e->n_test);
    }
    return state_finish_write(st, s);
}

void cml_history_free(cml_history_entry *e, size_t n) {
    if (e == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        cml_free(e[i].metrics_json);
    cml_free(e);
}

cml_err cml_state_list_history(cml_state *st, const char *model_type, size_t limit,
                               cml_history_entry **out, size_t *n) {
    cml_err err = CML_OK;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&st->lock);
    state_stmt *s =
        state_prep(st, "SELECT * FROM (SELECT task_id, model_type, version, timestamp,"
                       " metrics, training_time, n_train, n_test, id FROM history"
                       " WHERE ?1 IS NULL OR model_type = ?1 ORDER BY id DESC LIMIT ?2) AS h"
                       " ORDER BY id ASC");
    if (s == NULL) {
        err = state_failure(st);
        goto done;
    }
    state_bind_text(s, 1, model_type);
    state_bind_int64(s, 2, limit ? (int64_t)limit : INT64_MAX);
    state_step_result rc = STATE_DONE;
    while ((rc = state_step(s)) == STATE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            cml_history_entry *g = cml_realloc_array(*out, cap, sizeof(**out));
            if (g == NULL) {
                err = CML_ERR_NOMEM;
                goto done;
            }
            *out = g;
        }
        cml_history_entry *e = &(*out)[*n];
        memset(e, 0, sizeof(*e));
        state_copy_col(e->task_id, sizeof e->task_id, s, 0);
        state_copy_col(e->model_type, sizeof e->model_type, s, 1);
        state_copy_col(e->version, sizeof e->version, s, 2);
        e->timestamp = state_col_int64(s, 3);
        const char *m = state_col_text(s, 4);
        e->metrics_json = m ? cml_strdup(m) : NULL;
        e->training_time = state_col_double(s, 5);
        e->n_train = state_col_int64(s, 6);
        e->n_test = state_col_int64(s, 7);
        (*n)++;
    }
    if (rc != STATE_DONE)
        err = state_failure(st);
done:
    state_finalize(s);
    pthread_mutex_unlock(&st->lock);
    if (err != CML_OK) {
        cml_history_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return err;
}

cml_err cml_state_add_evaluation(cml_state *st, const char *model_type, const char *version,
                                 int64_t n, const char *metrics_json) {
    pthread_mutex_lock(&st->lock);
    state_stmt *s =
        state_prep(st, "INSERT INTO evaluations (model_type, version, timestamp, n, metrics)"
                       " VALUES (?, ?, ?, ?, ?)");
    if (s) {
        state_bind_text(s, 1, model_type);
        state_bind_text(s, 2, version);
        state_bind_int64(s, 3, (int64_t)time(NULL));
        state_bind_int64(s, 4, n);
        state_bind_text(s, 5, metrics_json);
    }
    return state_finish_write(st, s);
}
