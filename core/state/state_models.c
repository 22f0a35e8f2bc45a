/* The model versions known to the workers (metrics, size, hash, where). */
#include "config.h"

#include <string.h>

#include "base/cml_alloc.h"
#include "state/state_internal.h"

cml_err cml_state_upsert_model(cml_state *st, const cml_model_record *r) {
    pthread_mutex_lock(&st->lock);
    state_stmt *s = state_prep(
        st,
        "INSERT INTO models (model_type, version, created_at, size_bytes, sha256, metrics, local,"
        " blob) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(model_type, version) DO UPDATE SET"
        " created_at = excluded.created_at, size_bytes = excluded.size_bytes,"
        " sha256 = excluded.sha256, metrics = COALESCE(excluded.metrics, models.metrics),"
        " local = CASE WHEN excluded.local <> 0 OR models.local <> 0 THEN 1 ELSE 0 END,"
        " blob = CASE WHEN excluded.blob <> 0 OR models.blob <> 0 THEN 1 ELSE 0 END");
    if (s != NULL) {
        state_bind_text(s, 1, r->model_type);
        state_bind_text(s, 2, r->version);
        state_bind_int64(s, 3, r->created_at);
        state_bind_int64(s, 4, r->size_bytes);
        state_bind_text(s, 5, r->sha256);
        state_bind_text(s, 6, r->metrics_json);
        state_bind_int64(s, 7, r->local);
        state_bind_int64(s, 8, r->blob);
    }
    return state_finish_write(st, s);
}

void cml_model_records_free(cml_model_record *r, size_t n) {
    if (r == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        cml_free(r[i].metrics_json);
    cml_free(r);
}

cml_err cml_state_list_models(cml_state *st, const char *model_type, cml_model_record **out,
                              size_t *n) {
    cml_err err = CML_OK;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&st->lock);
    state_stmt *s =
        state_prep(st, "SELECT model_type, version, created_at, size_bytes, sha256, metrics,"
                       " local, blob FROM models WHERE ?1 IS NULL OR model_type = ?1"
                       " ORDER BY version DESC");
    if (s == NULL) {
        err = state_failure(st);
        goto done;
    }
    state_bind_text(s, 1, model_type);
    state_step_result rc = STATE_DONE;
    while ((rc = state_step(s)) == STATE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            cml_model_record *g = cml_realloc_array(*out, cap, sizeof(**out));
            if (g == NULL) {
                err = CML_ERR_NOMEM;
                goto done;
            }
            *out = g;
        }
        cml_model_record *r = &(*out)[*n];
        memset(r, 0, sizeof(*r));
        state_copy_col(r->model_type, sizeof r->model_type, s, 0);
        state_copy_col(r->version, sizeof r->version, s, 1);
        r->created_at = state_col_int64(s, 2);
        r->size_bytes = state_col_int64(s, 3);
        state_copy_col(r->sha256, sizeof r->sha256, s, 4);
        const char *m = state_col_text(s, 5);
        r->metrics_json = m ? cml_strdup(m) : NULL;
        r->local = state_col_int64(s, 6) != 0;
        r->blob = state_col_int64(s, 7) != 0;
        (*n)++;
    }
    if (rc != STATE_DONE)
        err = state_failure(st);
done:
    state_finalize(s);
    pthread_mutex_unlock(&st->lock);
    if (err != CML_OK) {
        cml_model_records_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return err;
}

cml_err cml_state_delete_model(cml_state *st, const char *model_type, const char *version) {
    pthread_mutex_lock(&st->lock);
    state_stmt *s = state_prep(st, "DELETE FROM models WHERE model_type = ? AND version = ?");
    if (s) {
        state_bind_text(s, 1, model_type);
        state_bind_text(s, 2, version);
    }
    return state_finish_write(st, s);
}
