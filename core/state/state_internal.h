/* What the files of the shared state share: the handle and the statement calls (not public). */
#ifndef CML_STATE_INTERNAL_H
#define CML_STATE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "state/shared_state.h"
#include "state/state_db.h"

struct cml_state {
    const state_driver *drv;
    state_db *db;
    pthread_mutex_t lock;
    _Atomic uint64_t *generation; /* in a MAP_SHARED page */
    state_watch *watch;           /* PostgreSQL: the fleet's selection changes */
};

/* Prepares sql (the shared dialect: `?`/`?N` placeholders); NULL on error. */
state_stmt *state_prep(cml_state *st, const char *sql);
/* Runs a prepared write (s may be NULL: preparing failed), finalizes it and releases st->lock,
   which the caller took; CML_OK when the statement ran to completion. */
cml_err state_finish_write(cml_state *st, state_stmt *s);
/* Column col of the current row as text into dst ("" for NULL). */
void state_copy_col(char *dst, size_t cap, state_stmt *s, int col);
/* The error a failed statement gives its caller: CML_ERR_UNAVAILABLE while the database
 * cannot be reached (the service answers 503 and retries), else CML_ERR_IO. */
cml_err state_failure(cml_state *st);
/* Starts a write transaction that excludes every other writer, and ends one. */
cml_err state_begin(cml_state *st);
cml_err state_commit(cml_state *st);
void state_rollback(cml_state *st);
/* The UTC day (YYYY-MM-DD) of a Unix-seconds column, as the backend's SQL expression. */
void state_day_expr(const cml_state *st, const char *column, char *out, size_t cap);

static inline const state_driver *state_stmt_driver(state_stmt *s) {
    return ((const state_stmt_head *)(const void *)s)->drv;
}
/* v NULL binds a NULL typed as text (so PostgreSQL can type "?1 IS NULL OR col = ?1"). */
static inline void state_bind_text(state_stmt *s, int i, const char *v) {
    state_stmt_driver(s)->bind_text(s, i, v);
}
static inline void state_bind_int64(state_stmt *s, int i, int64_t v) {
    state_stmt_driver(s)->bind_int64(s, i, v);
}
static inline void state_bind_double(state_stmt *s, int i, double v) {
    state_stmt_driver(s)->bind_double(s, i, v);
}
static inline void state_bind_null(state_stmt *s, int i) { state_stmt_driver(s)->bind_null(s, i); }
static inline state_step_result state_step(state_stmt *s) { return state_stmt_driver(s)->step(s); }
static inline bool state_col_null(state_stmt *s, int c) {
    return state_stmt_driver(s)->col_null(s, c);
}
static inline const char *state_col_text(state_stmt *s, int c) {
    return state_stmt_driver(s)->col_text(s, c);
}
static inline int64_t state_col_int64(state_stmt *s, int c) {
    return state_stmt_driver(s)->col_int64(s, c);
}
static inline double state_col_double(state_stmt *s, int c) {
    return state_stmt_driver(s)->col_double(s, c);
}
static inline int64_t state_changes(state_stmt *s) { return state_stmt_driver(s)->changes(s); }
/* Accepts NULL. */
static inline void state_finalize(state_stmt *s) {
    if (s)
        state_stmt_driver(s)->finalize(s);
}

#endif
