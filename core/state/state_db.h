/*
 * The database under the shared state, behind one small statement interface with two
 * backends (core/state/backend/): SQLite in the state directory, the embedded default, and
 * PostgreSQL for a fleet. The state files write their SQL once, in the subset both accept
 * (`?` or `?N` placeholders, ON CONFLICT upserts, RETURNING); where the dialects differ the
 * backend's own strings are used (state_dialect). Not public: only core/state includes it.
 */
#ifndef CML_STATE_DB_H
#define CML_STATE_DB_H

#include <stdbool.h>
#include <stdint.h>

#include "base/cml_error.h"

typedef enum state_backend {
    STATE_BACKEND_SQLITE,
    STATE_BACKEND_POSTGRES,
    STATE_BACKEND__MAX
} state_backend;

typedef enum state_step_result {
    STATE_ROW,
    STATE_DONE,
    STATE_FAILED,
} state_step_result;

typedef struct state_db state_db;       /* one connection (backend's own struct) */
typedef struct state_stmt state_stmt;   /* one statement (backend's own struct) */
typedef struct state_watch state_watch; /* a listener for the fleet's changes */
typedef struct state_driver state_driver;

/* Every backend's state_stmt starts with this, so the statement calls find their driver. */
typedef struct state_stmt_head {
    const state_driver *drv;
} state_stmt_head;

/* What differs between the dialects, as SQL fragments. */
typedef struct state_dialect {
    /* printf format of the UTC day (YYYY-MM-DD) of a Unix-seconds column, one %s. */
    const char *day_of_epoch;
} state_dialect;

struct state_driver {
    const char *name; /* "sqlite" or "postgresql", as health reports it */
    state_dialect dialect;
    /* target: the state directory (SQLite) or the connection string (PostgreSQL). */
    cml_err (*open)(const char *target, state_db **out, cml_diag *diag);
    void (*close)(state_db *db); /* accepts NULL */
    /* NULL when sql cannot be prepared (or the database is unreachable). */
    state_stmt *(*prepare)(state_db *db, const char *sql);
    void (*bind_text)(state_stmt *s, int i, const char *v); /* v copied; NULL binds a text NULL */
    void (*bind_int64)(state_stmt *s, int i, int64_t v);
    void (*bind_double)(state_stmt *s, int i, double v);
    void (*bind_null)(state_stmt *s, int i);
    state_step_result (*step)(state_stmt *s);
    bool (*col_null)(state_stmt *s, int col);
    /* The column as text: valid until the next step or finalize; NULL for SQL NULL. */
    const char *(*col_text)(state_stmt *s, int col);
    int64_t (*col_int64)(state_stmt *s, int col);
    double (*col_double)(state_stmt *s, int col);
    int64_t (*changes)(state_stmt *s); /* rows the last write changed */
    void (*finalize)(state_stmt *s);   /* accepts NULL */
    /* Runs one or more statements without results. */
    cml_err (*exec)(state_db *db, const char *sql);
    /* Starts a transaction that excludes every other writer of the database until it ends. */
    cml_err (*begin_exclusive)(state_db *db);
    /* The last error's text (no secret in it), static or owned by db. */
    const char *(*errmsg)(state_db *db);
    /* False while the database is unreachable (the backend reconnects by itself). */
    bool (*reachable)(state_db *db);
    /* Tells the fleet the selection's generation changed (in the same transaction); NULL:
     * only this machine shares the state, whose generation map says it already. */
    cml_err (*notify)(state_db *db, uint64_t generation);
    /* Calls changed(ctx, generation) from its own thread whenever another process of the fleet
     * announces a generation (and once per connection, with the stored one); NULL when the
     * backend has no such channel. Stopped (and freed) by watch_stop, which accepts NULL. */
    state_watch *(*watch_start)(const char *target, void (*changed)(void *ctx, uint64_t gen),
                                void *ctx);
    void (*watch_stop)(state_watch *w);
};

extern const state_driver state_driver_sqlite;
extern const state_driver state_driver_postgres;

#endif
