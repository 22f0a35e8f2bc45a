/* A fresh state directory and model cache under /tmp for the state, store and catalog tests. */
#ifndef CML_STATE_FIXTURE_H
#define CML_STATE_FIXTURE_H

#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
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

static inline void setup(void) {
    snprintf(tmp, sizeof tmp, "/tmp/cml-state-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    snprintf(state_dir, sizeof state_dir, "%s/state", tmp);
    snprintf(cache, sizeof cache, "%s/cache", tmp);
}

static inline void teardown(void) { nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

static inline cml_state *open_state(void) {
    cml_state *st = NULL;
    cml_diag d = {{0}};
    ck_assert_msg(cml_state_open(state_dir, &st, &d) == CML_OK, "open: %s", d.msg);
    ck_assert_ptr_nonnull(st);
    return st;
}

/* One integer from the state database, by SQL (for what the API does not read back). */
static inline int64_t query_int(const char *sql) {
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
