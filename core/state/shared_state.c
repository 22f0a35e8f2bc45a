#include "config.h"

#include "state/state_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <time.h>

#include "base/cml_alloc.h"

/* Version 1 of the schema, as SQLite writes it (and as releases before migrations made it). */
static const char sqlite_schema_v1[] =
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

/* The same tables in PostgreSQL's types; training_jobs' `rowid` stands for SQLite's implicit
 * one, so one query orders both. */
static const char postgres_schema_v1[] =
    "CREATE TABLE IF NOT EXISTS selection ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1), active_type TEXT NOT NULL,"
    "  classic_version TEXT NOT NULL DEFAULT '', ensemble_version TEXT NOT NULL DEFAULT '',"
    "  updated_at BIGINT NOT NULL, generation BIGINT NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS models ("
    "  model_type TEXT NOT NULL, version TEXT NOT NULL, created_at BIGINT, size_bytes BIGINT,"
    "  sha256 TEXT, metrics TEXT, local INTEGER NOT NULL DEFAULT 0, blob INTEGER NOT NULL DEFAULT "
    "0,"
    "  PRIMARY KEY (model_type, version));"
    "CREATE TABLE IF NOT EXISTS feedback ("
    "  id BIGSERIAL PRIMARY KEY, created_at BIGINT NOT NULL, text TEXT NOT NULL,"
    "  correct_class TEXT NOT NULL, predicted_class TEXT, confidence DOUBLE PRECISION,"
    "  error_type TEXT, scenario_id BIGINT, source TEXT, model_type TEXT, model_version TEXT);"
    "CREATE TABLE IF NOT EXISTS training_jobs ("
    "  task_id TEXT PRIMARY KEY, model_type TEXT NOT NULL, status TEXT NOT NULL,"
    "  progress DOUBLE PRECISION NOT NULL DEFAULT 0, current_task TEXT, start_time BIGINT NOT NULL,"
    "  finished_at BIGINT, error TEXT, version TEXT, pid BIGINT, lease_until BIGINT,"
    "  rowid BIGSERIAL);"
    "CREATE TABLE IF NOT EXISTS history ("
    "  id BIGSERIAL PRIMARY KEY, task_id TEXT, model_type TEXT NOT NULL,"
    "  version TEXT NOT NULL, timestamp BIGINT NOT NULL, metrics TEXT,"
    "  training_time DOUBLE PRECISION, n_train BIGINT, n_test BIGINT);"
    "CREATE TABLE IF NOT EXISTS status ("
    "  key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at BIGINT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS evaluations ("
    "  id BIGSERIAL PRIMARY KEY, model_type TEXT, version TEXT,"
    "  timestamp BIGINT NOT NULL, n BIGINT, metrics TEXT);"
    "CREATE TABLE IF NOT EXISTS shadow_daily ("
    "  day TEXT NOT NULL, a_type TEXT NOT NULL, a_version TEXT NOT NULL, s_type TEXT NOT NULL,"
    "  s_version TEXT NOT NULL, requests BIGINT NOT NULL, agreements BIGINT NOT NULL,"
    "  a_labels TEXT, s_labels TEXT, a_conf DOUBLE PRECISION, s_conf DOUBLE PRECISION,"
    "  first_at BIGINT, PRIMARY KEY (day, a_type, a_version, s_type, s_version));"
    "CREATE TABLE IF NOT EXISTS feedback_scores ("
    "  feedback_id BIGINT NOT NULL, model_type TEXT NOT NULL, version TEXT NOT NULL,"
    "  predicted_class TEXT NOT NULL, scored_at BIGINT NOT NULL,"
    "  PRIMARY KEY (model_type, version, feedback_id));";

/* Version 2: the host of a job's trainer, so that only its own machine judges it by pid. */

/* The migrations of each backend, version i + 1 at index i; both list the same versions. */
static const char schema_v2[] = "ALTER TABLE training_jobs ADD COLUMN host TEXT";
static const char *const sqlite_migrations[] = {sqlite_schema_v1, schema_v2, NULL};
static const char *const postgres_migrations[] = {postgres_schema_v1, schema_v2, NULL};
static const char *const *const migrations[STATE_BACKEND__MAX] = {
    [STATE_BACKEND_SQLITE] = sqlite_migrations,
    [STATE_BACKEND_POSTGRES] = postgres_migrations,
};

static const state_driver *const drivers[STATE_BACKEND__MAX] = {
    [STATE_BACKEND_SQLITE] = &state_driver_sqlite,
    [STATE_BACKEND_POSTGRES] = &state_driver_postgres,
};

static state_backend state_backend_of(const cml_state *st) {
    return st->drv == &state_driver_postgres ? STATE_BACKEND_POSTGRES : STATE_BACKEND_SQLITE;
}

static int state_latest_version(const cml_state *st) {
    int n = 0;
    while (migrations[state_backend_of(st)][n])
        n++;
    return n;
}

/* Columns added by releases before versioned migrations: added to an older SQLite database,
 * ignored when present. */
static const char *const sqlite_added_columns[] = {
    "ALTER TABLE feedback ADD COLUMN model_type TEXT",
    "ALTER TABLE feedback ADD COLUMN model_version TEXT",
    "ALTER TABLE training_jobs ADD COLUMN lease_until INTEGER",
};

/* The applied version, 0 before the first migration (or when it cannot be read). */
static int state_applied_version(cml_state *st) {
    state_stmt *s = state_prep(st, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    int v = s && state_step(s) == STATE_ROW ? (int)state_col_int64(s, 0) : 0;
    state_finalize(s);
    return v;
}

/* Applies the pending migrations in one transaction that excludes every other writer, so
 * instances starting at once migrate once: the first applies, the others find it done. */
static cml_err state_migrate_locked(cml_state *st, int *from, int *to, cml_diag *diag) {
    const char *const *steps = migrations[state_backend_of(st)];
    if (state_begin(st) != CML_OK)
        return cml_diag_set(diag, state_failure(st), "state database: %s", st->drv->errmsg(st->db));
    cml_err err =
        st->drv->exec(st->db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                              " version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)");
    int v = err == CML_OK ? state_applied_version(st) : 0;
    *from = v;
    for (; err == CML_OK && steps[v] != NULL; v++) {
        if (state_backend_of(st) == STATE_BACKEND_SQLITE && v == 1)
            for (size_t i = 0; i < sizeof sqlite_added_columns / sizeof *sqlite_added_columns; i++)
                st->drv->exec(st->db, sqlite_added_columns[i]); /* "duplicate column" is fine */
        err = st->drv->exec(st->db, steps[v]);
        if (err != CML_OK && state_backend_of(st) == STATE_BACKEND_SQLITE && v == 1)
            err = CML_OK; /* a pre-migration database may have the column already */
        state_stmt *s = err == CML_OK ? state_prep(st, "INSERT INTO schema_migrations (version,"
                                                       " applied_at) VALUES (?, ?)")
                                      : NULL;
        if (s) {
            state_bind_int64(s, 1, v + 1);
            state_bind_int64(s, 2, (int64_t)time(NULL));
            err = state_step(s) == STATE_DONE ? CML_OK : CML_ERR_IO;
        } else if (err == CML_OK) {
            err = CML_ERR_IO;
        }
        state_finalize(s);
    }
    *to = v;
    if (err == CML_OK)
        err = state_commit(st);
    if (err != CML_OK) {
        cml_diag_set(diag, state_failure(st), "state database: migration to version %d: %s", v + 1,
                     st->drv->errmsg(st->db));
        state_rollback(st);
        return state_failure(st);
    }
    return CML_OK;
}

cml_err cml_state_migrate(cml_state *st, bool apply, int *current, int *latest, cml_diag *diag) {
    cml_err err = CML_OK;
    int from = 0, to = 0;
    pthread_mutex_lock(&st->lock);
    *latest = state_latest_version(st);
    if (apply) {
        err = state_migrate_locked(st, &from, &to, diag);
        *current = to;
    } else if (!st->drv->reachable(st->db)) {
        err =
            cml_diag_set(diag, CML_ERR_UNAVAILABLE, "state database: %s", st->drv->errmsg(st->db));
    } else {
        *current = state_applied_version(st);
    }
    pthread_mutex_unlock(&st->lock);
    return err;
}

/* The watcher's news: the fleet's generation, kept as the largest seen. */
static void state_generation_seen(void *ctx, uint64_t generation) {
    cml_state *st = ctx;
    uint64_t cur = atomic_load(st->generation);
    while (cur < generation && !atomic_compare_exchange_weak(st->generation, &cur, generation))
        ;
}

cml_err cml_state_open(const char *dir, const char *database_url, cml_state **out, cml_diag *diag) {
    cml_err err = CML_OK;
    char path[4096];
    int fd = -1;
    bool fleet = database_url != NULL && database_url[0] != '\0';
    cml_state *st = cml_calloc(1, sizeof(*st));
    *out = NULL;
    if (st == NULL)
        return CML_ERR_NOMEM;
    pthread_mutex_init(&st->lock, NULL);
    st->drv = drivers[fleet ? STATE_BACKEND_POSTGRES : STATE_BACKEND_SQLITE];
    if (dir == NULL && fleet) {
        /* A one-shot command (cultivate-ml state) on a machine without the service's files. */
        void *own = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (own == MAP_FAILED) {
            err = CML_ERR_NOMEM;
            goto done;
        }
        st->generation = own;
    } else if (dir == NULL) {
        err = cml_diag_set(diag, CML_ERR_CONFIG, "SQLite state needs a state directory");
        goto done;
    } else if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        err = cml_diag_set(diag, CML_ERR_IO, "cannot create state directory %s: %s", dir,
                           strerror(errno));
        goto done;
    }
    if (st->generation == NULL) {
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
    }
    if ((err = st->drv->open(fleet ? database_url : dir, &st->db, diag)) != CML_OK)
        goto done;
    int from, to;
    err = state_migrate_locked(st, &from, &to, diag);
    /* PostgreSQL down at start: the service starts on its cached models, and the schema is
     * migrated by the first process that reaches it (every open tries). */
    if (err == CML_ERR_UNAVAILABLE)
        err = CML_OK;
    if (err != CML_OK)
        goto done;
    if (st->drv->watch_start &&
        (st->watch = st->drv->watch_start(database_url, state_generation_seen, st)) == NULL) {
        err = cml_diag_set(diag, CML_ERR_NOMEM, "cannot start the state watcher");
        goto done;
    }
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
    if (st->drv && st->drv->watch_stop)
        st->drv->watch_stop(st->watch);
    if (st->drv && st->db)
        st->drv->close(st->db);
    if (st->generation)
        munmap((void *)st->generation, 4096);
    pthread_mutex_destroy(&st->lock);
    cml_free(st);
}

const char *cml_state_backend_name(const cml_state *st) { return st->drv->name; }

bool cml_state_fleet_wide(const cml_state *st) { return st->drv != &state_driver_sqlite; }

bool cml_state_reachable(cml_state *st) {
    pthread_mutex_lock(&st->lock);
    bool up = st->drv->reachable(st->db);
    pthread_mutex_unlock(&st->lock);
    return up;
}

uint64_t cml_state_generation(const cml_state *st) {
    return atomic_load_explicit(st->generation, memory_order_acquire);
}

state_stmt *state_prep(cml_state *st, const char *sql) { return st->drv->prepare(st->db, sql); }

cml_err state_failure(cml_state *st) {
    return st->drv->reachable(st->db) ? CML_ERR_IO : CML_ERR_UNAVAILABLE;
}

cml_err state_finish_write(cml_state *st, state_stmt *s) {
    cml_err err = s != NULL && state_step(s) == STATE_DONE ? CML_OK : state_failure(st);
    state_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return err;
}

void state_copy_col(char *dst, size_t cap, state_stmt *s, int col) {
    const char *t = state_col_text(s, col);
    snprintf(dst, cap, "%s", t ? t : "");
}

cml_err state_begin(cml_state *st) {
    return st->drv->begin_exclusive(st->db) == CML_OK ? CML_OK : state_failure(st);
}

cml_err state_commit(cml_state *st) {
    return st->drv->exec(st->db, "COMMIT") == CML_OK ? CML_OK : state_failure(st);
}

void state_rollback(cml_state *st) { st->drv->exec(st->db, "ROLLBACK"); }

void state_day_expr(const cml_state *st, const char *column, char *out, size_t cap) {
    snprintf(out, cap, st->drv->dialect.day_of_epoch, column);
}

const char *cml_state_url_from_env(void) {
    const char *names[] = {"STATE_DATABASE_URL", "DATABASE_URL"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const char *v = getenv(names[i]);
        if (v && *v)
            return v;
    }
    return NULL;
}

/* Copies n bytes of src to the output, as far as it has room. */
static void mask_put(char *out, size_t cap, size_t *o, const char *src, size_t n) {
    for (size_t i = 0; i < n && *o + 1 < cap; i++)
        out[(*o)++] = src[i];
    out[*o < cap ? *o : cap - 1] = '\0';
}

void cml_state_masked_url(const char *url, char *out, size_t cap) {
    size_t o = 0;
    if (cap == 0)
        return;
    out[0] = '\0';
    if (url == NULL)
        return;
    const char *scheme = strstr(url, "://");
    if (scheme) {
        /* URI: postgresql://user:password@host/db?password=... */
        const char *auth = scheme + 3, *end = auth + strcspn(auth, "/?#");
        const char *at = memchr(auth, '@', (size_t)(end - auth));
        const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon) {
            mask_put(out, cap, &o, url, (size_t)(colon + 1 - url));
            mask_put(out, cap, &o, "***", 3);
            url = at;
        }
    }
    /* The password parameter of either form: keyword = value (spaces allowed around '=', the
     * value maybe quoted) or a URI's query (password=value). */
    while (*url) {
        const char *p = strstr(url, "password");
        if (p == NULL) {
            mask_put(out, cap, &o, url, strlen(url));
            return;
        }
        const char *v = p + 8;
        v += strspn(v, " \t");
        bool starts_word = p == url || strchr(" \t?&", p[-1]) != NULL;
        if (!starts_word || *v != '=') {
            mask_put(out, cap, &o, url, (size_t)(p + 8 - url));
            url = p + 8;
            continue;
        }
        v++;
        v += strspn(v, " \t");
        mask_put(out, cap, &o, url, (size_t)(v - url));
        mask_put(out, cap, &o, "***", 3);
        if (*v == '\'') {
            v++;
            while (*v && *v != '\'')
                v += v[0] == '\\' && v[1] ? 2 : 1;
            if (*v)
                v++;
        } else {
            v += strcspn(v, " \t&#");
        }
        url = v;
    }
}
