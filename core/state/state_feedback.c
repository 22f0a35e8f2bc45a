/* The educators' corrections stored by the feedback routes. */
#include "config.h"

#include <json-c/json.h>
#include <math.h>

#include "base/cml_alloc.h"
#include "state/state_internal.h"

cml_err cml_state_add_feedback(cml_state *st, const cml_feedback *fb, int64_t *id, int64_t *total) {
    cml_err err = CML_OK;
    pthread_mutex_lock(&st->lock);
    state_stmt *s =
        state_prep(st, "INSERT INTO feedback (created_at, text, correct_class,"
                       " predicted_class, confidence, error_type, scenario_id, source,"
                       " model_type, model_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                       " RETURNING id");
    state_stmt *c = state_prep(st, "SELECT COUNT(*) FROM feedback");
    if (s == NULL || c == NULL) {
        err = state_failure(st);
        goto done;
    }
    state_bind_int64(s, 1, (int64_t)time(NULL));
    state_bind_text(s, 2, fb->text);
    state_bind_text(s, 3, fb->correct_class);
    state_bind_text(s, 4, fb->predicted_class);
    if (isnan(fb->confidence))
        state_bind_null(s, 5);
    else
        state_bind_double(s, 5, fb->confidence);
    state_bind_text(s, 6, fb->error_type);
    if (fb->has_scenario)
        state_bind_int64(s, 7, fb->scenario_id);
    else
        state_bind_null(s, 7);
    state_bind_text(s, 8, fb->source);
    state_bind_text(s, 9, fb->model_type);
    state_bind_text(s, 10, fb->model_version);
    /* Autocommit, synced (SQLite's synchronous=FULL, PostgreSQL's default): durable once the
     * statement has run, and acknowledged only then. */
    if (state_step(s) != STATE_ROW) {
        err = state_failure(st);
        goto done;
    }
    *id = state_col_int64(s, 0);
    /* The total is a courtesy: the item is stored whatever happens to this count. */
    *total = state_step(c) == STATE_ROW ? state_col_int64(c, 0) : *id;
done:
    state_finalize(s);
    state_finalize(c);
    pthread_mutex_unlock(&st->lock);
    return err;
}

cml_err cml_state_each_feedback(cml_state *st,
                                void (*row)(void *ctx, const char *text, const char *label),
                                void *ctx) {
    cml_err err = CML_OK;
    pthread_mutex_lock(&st->lock);
    state_stmt *s = state_prep(st, "SELECT text, correct_class FROM feedback ORDER BY id");
    if (s == NULL) {
        err = state_failure(st);
    } else {
        state_step_result rc = STATE_DONE;
        while ((rc = state_step(s)) == STATE_ROW)
            row(ctx, state_col_text(s, 0), state_col_text(s, 1));
        if (rc != STATE_DONE)
            err = state_failure(st);
    }
    state_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return err;
}

cml_err cml_state_feedback_counts(cml_state *st, char **json) {
    cml_err err = CML_OK;
    json_object *o = json_object_new_object();
    pthread_mutex_lock(&st->lock);
    state_stmt *s = state_prep(
        st, "SELECT correct_class, COUNT(*) FROM feedback GROUP BY correct_class ORDER BY 1");
    if (s == NULL) {
        err = state_failure(st);
    } else {
        while (state_step(s) == STATE_ROW)
            json_object_object_add(o, state_col_text(s, 0),
                                   json_object_new_int64(state_col_int64(s, 1)));
    }
    state_finalize(s);
    pthread_mutex_unlock(&st->lock);
    *json = err == CML_OK ? cml_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN))
                          : NULL;
    json_object_put(o);
    return err == CML_OK && *json == NULL ? CML_ERR_NOMEM : err;
}
