/* What the files of the shared state share: the handle and the statement helpers (not public). */
#ifndef CML_STATE_INTERNAL_H
#define CML_STATE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>

#include "state/shared_state.h"

struct cml_state {
    sqlite3 *db;
    pthread_mutex_t lock;
    _Atomic uint64_t *generation; /* in a MAP_SHARED page */
};

/* Prepares sql; NULL on error. */
sqlite3_stmt *state_prep(cml_state *st, const char *sql);
/* Runs a prepared write (s may be NULL: preparing failed), finalizes it and releases st->lock,
   which the caller took; CML_OK when the statement ran to completion. */
cml_err state_finish_write(cml_state *st, sqlite3_stmt *s);
/* Column col of the current row as text into dst ("" for NULL). */
void state_copy_col(char *dst, size_t cap, sqlite3_stmt *s, int col);
/* Binds v, or NULL when v is NULL. */
void state_bind_opt_text(sqlite3_stmt *s, int i, const char *v);

#endif
