/* A fresh state directory and model cache under /tmp for the state, store and catalog tests.
 * With CML_TEST_DATABASE_URL set (tests/integration/test_state_postgres.sh sets it), the state
 * lives in that PostgreSQL database instead, emptied before each test; unset, in SQLite. */
#ifndef CML_STATE_FIXTURE_H
#define CML_STATE_FIXTURE_H

#include <ftw.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state/shared_state.h"
#include "unit.h"

static char tmp[64], state_dir[128], cache[128];

static inline int remove_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* The PostgreSQL database the tests use, or NULL for SQLite. */
static inline const char *test_database_url(void) {
    const char *url = getenv("CML_TEST_DATABASE_URL");
    return url && *url ? url : NULL;
}

static inline bool on_postgres(void) { return test_database_url() != NULL; }

/* A connection to the test database; the caller owns it (PQfinish). */
static inline PGconn *test_pg_connect(void) {
    PGconn *c = PQconnectdb(test_database_url());
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "PostgreSQL: %s", PQerrorMessage(c));
    return c;
}

/* Drops every table the role owns, so that each test starts from an empty database. */
static inline void reset_database(void) {
    if (!on_postgres())
        return;
    PGconn *c = test_pg_connect();
    PGresult *r = PQexec(c, "SET client_min_messages = warning; DROP OWNED BY CURRENT_USER");
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "reset: %s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static inline void setup(void) {
    reset_database();
    snprintf(tmp, sizeof tmp, "/tmp/cml-state-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    snprintf(state_dir, sizeof state_dir, "%s/state", tmp);
    snprintf(cache, sizeof cache, "%s/cache", tmp);
}

static inline void teardown(void) { nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

static inline cml_state *open_state(void) {
    cml_state *st = NULL;
    cml_diag d = {{0}};
    ck_assert_msg(cml_state_open(state_dir, test_database_url(), &st, &d) == CML_OK, "open: %s",
                  d.msg);
    ck_assert_ptr_nonnull(st);
    return st;
}

/* One integer from the state database, by SQL (for what the API does not read back). */
static inline int64_t query_int(const char *sql) {
    if (on_postgres()) {
        PGconn *c = test_pg_connect();
        PGresult *r = PQexec(c, sql);
        ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s: %s", sql,
                      PQerrorMessage(c));
        int64_t v = PQgetisnull(r, 0, 0) ? 0 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
        return v;
    }
    char path[256];
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    snprintf(path, sizeof path, "%s/state.sqlite3", state_dir);
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static inline void touch(const char *dir, const char *name) {
    char path[512];
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("x", f);
    fclose(f);
}

static inline bool exists(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static inline void set_sel(cml_state *st, const char *active, const char *classic,
                           const char *ensemble) {
    cml_selection sel;
    memset(&sel, 0, sizeof sel);
    snprintf(sel.active_type, sizeof sel.active_type, "%s", active);
    snprintf(sel.classic_version, sizeof sel.classic_version, "%s", classic);
    snprintf(sel.ensemble_version, sizeof sel.ensemble_version, "%s", ensemble);
    ck_assert_int_eq(cml_state_set_selection(st, &sel), CML_OK);
}

#endif
