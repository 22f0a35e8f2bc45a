/* Small status values shared by the workers. */
#include "config.h"

#include "state/state_internal.h"

cml_err cml_state_set_status(cml_state *st, const char *key, const char *value) {
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = state_prep(st, "INSERT INTO status (key, value, updated_at) VALUES (?, ?, ?)"
                                     " ON CONFLICT(key) DO UPDATE SET value = excluded.value,"
                                     " updated_at = excluded.updated_at");
    if (s) {
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, (int64_t)time(NULL));
    }
    return state_finish_write(st, s);
}

cml_err cml_state_get_status(cml_state *st, const char *key, char *value, size_t cap,
                             int64_t *updated_at) {
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = state_prep(st, "SELECT value, updated_at FROM status WHERE key = ?");
    cml_err err = CML_ERR_IO;
    if (s) {
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            state_copy_col(value, cap, s, 0);
            if (updated_at)
                *updated_at = sqlite3_column_int64(s, 1);
            err = CML_OK;
        } else if (rc == SQLITE_DONE) {
            err = CML_ERR_NOT_FOUND;
        }
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return err;
}
