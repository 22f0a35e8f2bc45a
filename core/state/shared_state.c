#include "config.h"

#include "state/state_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cml_alloc.h"

static const char *const schema =
    "CREATE TABLE IF NOT EXISTS selection ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1), active_type TEXT NOT NULL,"
    "  classic_version TEXT NOT NULL DEFAULT '', ensemble_version TEXT NOT NULL DEFAULT '',"
    "  updated_at INTEGER NOT NULL, generation INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS models ("
    "  model_type TEXT NOT NULL, version TEXT NOT NULL, created_at INTEGER, size_bytes INTEGER,"
    "  sha256 TEXT, metrics TEXT, local INTEGER NOT NULL DEFAULT 0, blob INTEGER NOT NULL DEFAULT "
    "0,"
    "  PRIMARY KEY (model_type, version));"
    "CREATE TABLE IF NOT EXISTS feedback ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, created_at INTEGER NOT NULL, text TEXT NOT NULL,"
    "  correct_class TEXT NOT NULL, predicted_class TEXT, confidence REAL, error_type TEXT,"
    "  scenario_id INTEGER, source TEXT);"
    "CREATE TABLE IF NOT EXISTS training_jobs ("
    "  task_id TEXT PRIMARY KEY, model_type TEXT NOT NULL, status TEXT NOT NULL,"
    "  progress REAL NOT NULL DEFAULT 0, current_task TEXT, start_time INTEGER NOT NULL,"
    "  finished_at INTEGER, error TEXT, version TEXT, pid INTEGER, lease_until INTEGER);"
    "CREATE TABLE IF NOT EXISTS history ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT, model_type TEXT NOT NULL,"
    "  version TEXT NOT NULL, timestamp INTEGER NOT NULL, metrics TEXT, training_time REAL,"
    "  n_train INTEGER, n_test INTEGER);"
    "CREATE TABLE IF NOT EXISTS status ("
    "  key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS evaluations ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, model_type TEXT, version TEXT,"
    "  timestamp INTEGER NOT NULL, n INTEGER, metrics TEXT);"
    "CREATE TABLE IF NOT EXISTS shadow_daily ("
    "  day TEXT NOT NULL, a_type TEXT NOT NULL, a_version TEXT NOT NULL, s_type TEXT NOT NULL,"
    "  s_version TEXT NOT NULL, requests INTEGER NOT NULL, agreements INTEGER NOT NULL,"
    "  a_labels TEXT, s_labels TEXT, a_conf REAL, s_conf REAL, first_at INTEGER,"
    "  PRIMARY KEY (day, a_type, a_version, s_type, s_version));"
    "CREATE TABLE IF NOT EXISTS feedback_scores ("
    "  feedback_id INTEGER NOT NULL, model_type TEXT NOT NULL, version TEXT NOT NULL,"
    "  predicted_class TEXT NOT NULL, scored_at INTEGER NOT NULL,"
    "  PRIMARY KEY (model_type, version, feedback_id));";

/* Columns added after the first release: added to an older database, ignored when present. */
static const char *const added_columns[] = {
    "ALTER TABLE feedback ADD COLUMN model_type TEXT",
    "ALTER TABLE feedback ADD COLUMN model_version TEXT",
};

static cml_err state_db_error(cml_state *st, cml_diag *diag, const char *what) {
    return cml_diag_set(diag, CML_ERR_IO, "state database: %s: %s", what, sqlite3_errmsg(st->db));
}

/* A state written before jobs had leases gets the column (its running jobs then have none). */
static bool state_add_lease_column(cml_state *st) {
    sqlite3_stmt *s = state_prep(st, "SELECT 1 FROM pragma_table_info('training_jobs')"
                                     " WHERE name = 'lease_until'");
    bool has = s && sqlite3_step(s) == SQLITE_ROW;
    sqlite3_finalize(s);
    return has || sqlite3_exec(st->db, "ALTER TABLE training_jobs ADD COLUMN lease_until INTEGER",
                               NULL, NULL, NULL) == SQLITE_OK;
}

cml_err cml_state_open(const char *dir, cml_state **out, cml_diag *diag) {
    cml_err err = CML_OK;
    char path[4096];
    int fd = -1;
    cml_state *st = cml_calloc(1, sizeof(*st));
    *out = NULL;
    if (st == NULL)
        return CML_ERR_NOMEM;
    pthread_mutex_init(&st->lock, NULL);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        err = cml_diag_set(diag, CML_ERR_IO, "cannot create state directory %s: %s", dir,
                           strerror(errno));
        goto done;
    }
    snprintf(path, sizeof path, "%s/generation", dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, 4096) != 0) {
        err = cml_diag_set(diag, CML_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        goto done;
    }
    void *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        err = cml_diag_set(diag, CML_ERR_IO, "cannot map %s: %s", path, strerror(errno));
        goto done;
    }
    st->generation = map;
    snprintf(path, sizeof path, "%s/state.sqlite3", dir);
    if (sqlite3_open_v2(path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        err = cml_diag_set(diag, CML_ERR_IO, "cannot open %s: %s", path,
                           st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto done;
    }
    sqlite3_busy_timeout(st->db, 10000);
    /* WAL lets readers in other processes run beside a writer; FULL syncs each commit. */
    if (sqlite3_exec(st->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
                     NULL) != SQLITE_OK ||
        sqlite3_exec(st->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
        !state_add_lease_column(st)) {
        err = state_db_error(st, diag, "schema");
        goto done;
    }
    for (size_t i = 0; i < sizeof added_columns / sizeof added_columns[0]; i++)
        sqlite3_exec(st->db, added_columns[i], NULL, NULL, NULL); /* "duplicate column" is fine */
    *out = st;
    st = NULL;
done:
    if (fd >= 0)
        close(fd);
    cml_state_close(st);
    return err;
}

void cml_state_close(cml_state *st) {
    if (st == NULL)
        return;
    if (st->db)
        sqlite3_close(st->db);
    if (st->generation)
        munmap((void *)st->generation, 4096);
    pthread_mutex_destroy(&st->lock);
    cml_free(st);
}

uint64_t cml_state_generation(const cml_state *st) {
    return atomic_load_explicit(st->generation, memory_order_acquire);
}

/* Prepares sql; NULL on error. */
sqlite3_stmt *state_prep(cml_state *st, const char *sql) {
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return NULL;
    return s;
}

/* Runs a prepared write (s may be NULL: preparing failed), finalizes it and releases st->lock,
   which the caller took; CML_OK when the statement ran to completion. */
cml_err state_finish_write(cml_state *st, sqlite3_stmt *s) {
    cml_err err = s != NULL && sqlite3_step(s) == SQLITE_DONE ? CML_OK : CML_ERR_IO;
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return err;
}

void state_copy_col(char *dst, size_t cap, sqlite3_stmt *s, int col) {
    const unsigned char *t = sqlite3_column_text(s, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

void state_bind_opt_text(sqlite3_stmt *s, int i, const char *v) {
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}
