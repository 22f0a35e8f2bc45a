/* Small status values shared by the workers. */
#include "config.h"

#include "state/state_internal.h"

cml_err cml_state_set_status(cml_state *st, const char *key, const char *value) {
    pthread_mutex_lock(&st->lock);
    state_stmt *s = state_prep(st, "INSERT INTO status (key, value, updated_at) VALUES (?, ?, ?)"
                                   " ON CONFLICT(key) DO UPDATE SET value = excluded.value,"
                                   " updated_at = excluded.updated_at");
    if (s) {
        state_bind_text(s, 1, key);
        state_bind_text(s, 2, value);
        state_bind_int64(s, 3, (int64_t)time(NULL));
    }
    return state_finish_write(st, s);
}

cml_err cml_state_get_status(cml_state *st, const char *key, char *value, size_t cap,
                             int64_t *updated_at) {
    pthread_mutex_lock(&st->lock);
    state_stmt *s = state_prep(st, "SELECT value, updated_at FROM status WHERE key = ?");
    cml_err err = state_failure(st);
    if (s) {
        state_bind_text(s, 1, key);
        state_step_result rc = state_step(s);
        if (rc == STATE_ROW) {
            state_copy_col(value, cap, s, 0);
            if (updated_at)
                *updated_at = state_col_int64(s, 1);
            err = CML_OK;
        } else if (rc == STATE_DONE) {
            err = CML_ERR_NOT_FOUND;
        } else {
            err = state_failure(st);
        }
    }
    state_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return err;
}
