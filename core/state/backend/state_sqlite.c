/* The SQLite backend of the shared state: dir/state.sqlite3 in WAL mode, every commit synced. */
#include "config.h"

#include <sqlite3.h>
#include <stdio.h>

#include "base/cml_alloc.h"
#include "state/state_db.h"

/* How long a statement waits for another process's write to end. */
#define LITE_BUSY_MS 10000

struct state_db {
    sqlite3 *db;
};

struct state_stmt {
    state_stmt_head head;
    sqlite3_stmt *s;
    sqlite3 *db;
};

static cml_err lite_open(const char *dir, state_db **out, cml_diag *diag) {
    char path[4096];
    *out = NULL;
    state_db *d = cml_calloc(1, sizeof(*d));
    if (d == NULL)
        return CML_ERR_NOMEM;
    snprintf(path, sizeof path, "%s/state.sqlite3", dir);
    if (sqlite3_open_v2(path, &d->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        cml_err err = cml_diag_set(diag, CML_ERR_IO, "cannot open %s: %s", path,
                                   d->db ? sqlite3_errmsg(d->db) : "out of memory");
        sqlite3_close(d->db);
        cml_free(d);
        return err;
    }
    sqlite3_busy_timeout(d->db, LITE_BUSY_MS);
    /* WAL lets readers in other processes run beside a writer; FULL syncs each commit. Setting
     * WAL on a new database does not wait on SQLite's busy handler: processes opening it at once
     * (workers starting together) retry here for as long. */
    int rc = SQLITE_BUSY;
    for (int waited = 0; waited <= LITE_BUSY_MS; waited += 10) {
        rc = sqlite3_exec(d->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
        if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
            break;
        sqlite3_sleep(10);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(d->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        cml_err err =
            cml_diag_set(diag, CML_ERR_IO, "cannot open %s: %s", path, sqlite3_errmsg(d->db));
        sqlite3_close(d->db);
        cml_free(d);
        return err;
    }
    *out = d;
    return CML_OK;
}

static void lite_close(state_db *d) {
    if (d == NULL)
        return;
    sqlite3_close(d->db);
    cml_free(d);
}

static state_stmt *lite_prepare(state_db *d, const char *sql) {
    state_stmt *st = cml_calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    st->head.drv = &state_driver_sqlite;
    st->db = d->db;
    if (sqlite3_prepare_v2(d->db, sql, -1, &st->s, NULL) != SQLITE_OK) {
        sqlite3_finalize(st->s);
        cml_free(st);
        return NULL;
    }
    return st;
}

static void lite_bind_text(state_stmt *s, int i, const char *v) {
    sqlite3_bind_text(s->s, i, v, -1, SQLITE_TRANSIENT);
}
static void lite_bind_int64(state_stmt *s, int i, int64_t v) { sqlite3_bind_int64(s->s, i, v); }
static void lite_bind_double(state_stmt *s, int i, double v) { sqlite3_bind_double(s->s, i, v); }
static void lite_bind_null(state_stmt *s, int i) { sqlite3_bind_null(s->s, i); }

static state_step_result lite_step(state_stmt *s) {
    int rc = sqlite3_step(s->s);
    return rc == SQLITE_ROW ? STATE_ROW : rc == SQLITE_DONE ? STATE_DONE : STATE_FAILED;
}

static bool lite_col_null(state_stmt *s, int col) {
    return sqlite3_column_type(s->s, col) == SQLITE_NULL;
}
static const char *lite_col_text(state_stmt *s, int col) {
    return (const char *)sqlite3_column_text(s->s, col);
}
static int64_t lite_col_int64(state_stmt *s, int col) { return sqlite3_column_int64(s->s, col); }
static double lite_col_double(state_stmt *s, int col) { return sqlite3_column_double(s->s, col); }
static int64_t lite_changes(state_stmt *s) { return sqlite3_changes(s->db); }

static void lite_finalize(state_stmt *s) {
    if (s == NULL)
        return;
    sqlite3_finalize(s->s);
    cml_free(s);
}

static cml_err lite_exec(state_db *d, const char *sql) {
    return sqlite3_exec(d->db, sql, NULL, NULL, NULL) == SQLITE_OK ? CML_OK : CML_ERR_IO;
}

static cml_err lite_begin_exclusive(state_db *d) { return lite_exec(d, "BEGIN IMMEDIATE"); }

static const char *lite_errmsg(state_db *d) { return sqlite3_errmsg(d->db); }

static bool lite_reachable(state_db *d) {
    (void)d;
    return true;
}

const state_driver state_driver_sqlite = {
    .name = "sqlite",
    .dialect = {.day_of_epoch = "date(%s, 'unixepoch')"},
    .open = lite_open,
    .close = lite_close,
    .prepare = lite_prepare,
    .bind_text = lite_bind_text,
    .bind_int64 = lite_bind_int64,
    .bind_double = lite_bind_double,
    .bind_null = lite_bind_null,
    .step = lite_step,
    .col_null = lite_col_null,
    .col_text = lite_col_text,
    .col_int64 = lite_col_int64,
    .col_double = lite_col_double,
    .changes = lite_changes,
    .finalize = lite_finalize,
    .exec = lite_exec,
    .begin_exclusive = lite_begin_exclusive,
    .errmsg = lite_errmsg,
    .reachable = lite_reachable,
    .notify = NULL,
    .watch_start = NULL,
    .watch_stop = NULL,
};
