#include "config.h"

#include "state/shared_state.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cml_alloc.h"

struct cml_state {
    sqlite3 *db;
    pthread_mutex_t lock;
    _Atomic uint64_t *generation; /* in a MAP_SHARED page */
};

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
    "  finished_at INTEGER, error TEXT, version TEXT, pid INTEGER);"
    "CREATE TABLE IF NOT EXISTS history ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT, model_type TEXT NOT NULL,"
    "  version TEXT NOT NULL, timestamp INTEGER NOT NULL, metrics TEXT, training_time REAL,"
    "  n_train INTEGER, n_test INTEGER);"
    "CREATE TABLE IF NOT EXISTS status ("
    "  key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS evaluations ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, model_type TEXT, version TEXT,"
    "  timestamp INTEGER NOT NULL, n INTEGER, metrics TEXT);";

static cml_err db_error(cml_state *st, cml_diag *diag, const char *what) {
    return cml_diag_set(diag, CML_ERR_IO, "state database: %s: %s", what, sqlite3_errmsg(st->db));
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
        sqlite3_exec(st->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
        err = db_error(st, diag, "schema");
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
static sqlite3_stmt *prep(cml_state *st, const char *sql) {
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return NULL;
    return s;
}

/* Runs a prepared write (s may be NULL: preparing failed), finalizes it and releases st->lock,
   which the caller took; CML_OK when the statement ran to completion. */
static cml_err finish_write(cml_state *st, sqlite3_stmt *s) {
    cml_err err = s != NULL && sqlite3_step(s) == SQLITE_DONE ? CML_OK : CML_ERR_IO;
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return err;
}

static void copy_col(char *dst, size_t cap, sqlite3_stmt *s, int col) {
    const unsigned char *t = sqlite3_column_text(s, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static cml_err read_selection(cml_state *st, cml_selection *out) {
    sqlite3_stmt *s = prep(st, "SELECT active_type, classic_version, ensemble_version, updated_at,"
                               " generation FROM selection WHERE id = 1");
    if (s == NULL)
        return CML_ERR_IO;
    int rc = sqlite3_step(s);
    cml_err err = rc == SQLITE_ROW ? CML_OK : rc == SQLITE_DONE ? CML_ERR_NOT_FOUND : CML_ERR_IO;
    if (err == CML_OK) {
        copy_col(out->active_type, sizeof out->active_type, s, 0);
        copy_col(out->classic_version, sizeof out->classic_version, s, 1);
        copy_col(out->ensemble_version, sizeof out->ensemble_version, s, 2);
        out->updated_at = sqlite3_column_int64(s, 3);
        out->generation = (uint64_t)sqlite3_column_int64(s, 4);
    }
    sqlite3_finalize(s);
    return err;
}

cml_err cml_state_get_selection(cml_state *st, cml_selection *out) {
    pthread_mutex_lock(&st->lock);
    cml_err err = read_selection(st, out);
    pthread_mutex_unlock(&st->lock);
    return err;
}

/* Writes the selection and a new generation inside one transaction; publishes the counter. */
static cml_err write_selection(cml_state *st, cml_selection *sel, bool only_if_absent,
                               bool keep_time) {
    cml_err err = CML_OK;
    sqlite3_stmt *s = NULL;
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return CML_ERR_IO;
    cml_selection cur;
    cml_err have = read_selection(st, &cur);
    if (have == CML_OK && only_if_absent) {
        *sel = cur;
        goto commit;
    }
    uint64_t gen = (have == CML_OK ? cur.generation : 0) + 1;
    uint64_t mapped = atomic_load(st->generation);
    if (mapped >= gen)
        gen = mapped + 1;
    s = prep(st, "INSERT INTO selection (id, active_type, classic_version, ensemble_version,"
                 " updated_at, generation) VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET"
                 " active_type = excluded.active_type, classic_version = excluded.classic_version,"
                 " ensemble_version = excluded.ensemble_version, updated_at = excluded.updated_at,"
                 " generation = excluded.generation");
    if (s == NULL) {
        err = CML_ERR_IO;
        goto rollback;
    }
    if (!keep_time || sel->updated_at <= 0)
        sel->updated_at = (int64_t)time(NULL);
    sel->generation = gen;
    sqlite3_bind_text(s, 1, sel->active_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, sel->classic_version, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, sel->ensemble_version, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, sel->updated_at);
    sqlite3_bind_int64(s, 5, (int64_t)gen);
    if (sqlite3_step(s) != SQLITE_DONE) {
        err = CML_ERR_IO;
        goto rollback;
    }
commit:
    if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        err = CML_ERR_IO;
        goto rollback;
    }
    sqlite3_finalize(s);
    /* Published after the commit, so a worker that sees it reads the new row. */
    if (atomic_load(st->generation) < sel->generation)
        atomic_store_explicit(st->generation, sel->generation, memory_order_release);
    return CML_OK;
rollback:
    sqlite3_finalize(s);
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return err;
}

cml_err cml_state_set_selection(cml_state *st, cml_selection *sel) {
    pthread_mutex_lock(&st->lock);
    cml_err err = write_selection(st, sel, false, false);
    pthread_mutex_unlock(&st->lock);
    return err;
}

cml_err cml_state_adopt_selection(cml_state *st, cml_selection *sel) {
    pthread_mutex_lock(&st->lock);
    cml_err err = write_selection(st, sel, false, true);
    pthread_mutex_unlock(&st->lock);
    return err;
}

cml_err cml_state_init_selection(cml_state *st, const char *active_type, cml_selection *out) {
    memset(out, 0, sizeof(*out));
    snprintf(out->active_type, sizeof out->active_type, "%s", active_type);
    pthread_mutex_lock(&st->lock);
    cml_err err = write_selection(st, out, true, false);
    pthread_mutex_unlock(&st->lock);
    return err;
}

cml_err cml_state_touch(cml_state *st) {
    cml_selection sel;
    pthread_mutex_lock(&st->lock);
    cml_err err = read_selection(st, &sel);
    if (err == CML_OK)
        err = write_selection(st, &sel, false, false);
    pthread_mutex_unlock(&st->lock);
    return err;
}

/* --- models ---------------------------------------------------------------- */

cml_err cml_state_upsert_model(cml_state *st, const cml_model_record *r) {
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = prep(
        st,
        "INSERT INTO models (model_type, version, created_at, size_bytes, sha256, metrics, local,"
        " blob) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(model_type, version) DO UPDATE SET"
        " created_at = excluded.created_at, size_bytes = excluded.size_bytes,"
        " sha256 = excluded.sha256, metrics = COALESCE(excluded.metrics, models.metrics),"
        " local = excluded.local OR models.local, blob = excluded.blob OR models.blob");
    if (s != NULL) {
        sqlite3_bind_text(s, 1, r->model_type, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, r->version, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, r->created_at);
        sqlite3_bind_int64(s, 4, r->size_bytes);
        sqlite3_bind_text(s, 5, r->sha256, -1, SQLITE_STATIC);
        if (r->metrics_json)
            sqlite3_bind_text(s, 6, r->metrics_json, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 7, r->local);
        sqlite3_bind_int(s, 8, r->blob);
    }
    return finish_write(st, s);
}

void cml_model_records_free(cml_model_record *r, size_t n) {
    if (r == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        cml_free(r[i].metrics_json);
    cml_free(r);
}

cml_err cml_state_list_models(cml_state *st, const char *model_type, cml_model_record **out,
                              size_t *n) {
    cml_err err = CML_OK;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s =
        prep(st, "SELECT model_type, version, created_at, size_bytes, sha256, metrics,"
                 " local, blob FROM models WHERE ?1 IS NULL OR model_type = ?1"
                 " ORDER BY version DESC");
    if (s == NULL) {
        err = CML_ERR_IO;
        goto done;
    }
    if (model_type)
        sqlite3_bind_text(s, 1, model_type, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            cml_model_record *g = cml_realloc_array(*out, cap, sizeof(**out));
            if (g == NULL) {
                err = CML_ERR_NOMEM;
                goto done;
            }
            *out = g;
        }
        cml_model_record *r = &(*out)[*n];
        memset(r, 0, sizeof(*r));
        copy_col(r->model_type, sizeof r->model_type, s, 0);
        copy_col(r->version, sizeof r->version, s, 1);
        r->created_at = sqlite3_column_int64(s, 2);
        r->size_bytes = sqlite3_column_int64(s, 3);
        copy_col(r->sha256, sizeof r->sha256, s, 4);
        const unsigned char *m = sqlite3_column_text(s, 5);
        r->metrics_json = m ? cml_strdup((const char *)m) : NULL;
        r->local = sqlite3_column_int(s, 6) != 0;
        r->blob = sqlite3_column_int(s, 7) != 0;
        (*n)++;
    }
    if (rc != SQLITE_DONE)
        err = CML_ERR_IO;
done:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    if (err != CML_OK) {
        cml_model_records_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return err;
}

cml_err cml_state_delete_model(cml_state *st, const char *model_type, const char *version) {
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = prep(st, "DELETE FROM models WHERE model_type = ? AND version = ?");
    if (s) {
        sqlite3_bind_text(s, 1, model_type, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, version, -1, SQLITE_STATIC);
    }
    return finish_write(st, s);
}

/* --- feedback -------------------------------------------------------------- */

static void bind_opt_text(sqlite3_stmt *s, int i, const char *v) {
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

cml_err cml_state_add_feedback(cml_state *st, const cml_feedback *fb, int64_t *id, int64_t *total) {
    cml_err err = CML_ERR_IO;
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = prep(st, "INSERT INTO feedback (created_at, text, correct_class,"
                               " predicted_class, confidence, error_type, scenario_id, source)"
                               " VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    sqlite3_stmt *c = prep(st, "SELECT COUNT(*) FROM feedback");
    if (s == NULL || c == NULL)
        goto done;
    sqlite3_bind_int64(s, 1, (int64_t)time(NULL));
    sqlite3_bind_text(s, 2, fb->text, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, fb->correct_class, -1, SQLITE_STATIC);
    bind_opt_text(s, 4, fb->predicted_class);
    if (isnan(fb->confidence))
        sqlite3_bind_null(s, 5);
    else
        sqlite3_bind_double(s, 5, fb->confidence);
    bind_opt_text(s, 6, fb->error_type);
    if (fb->has_scenario)
        sqlite3_bind_int64(s, 7, fb->scenario_id);
    else
        sqlite3_bind_null(s, 7);
    bind_opt_text(s, 8, fb->source);
    /* Autocommit with synchronous=FULL: durable once step returns. */
    if (sqlite3_step(s) != SQLITE_DONE)
        goto done;
    *id = sqlite3_last_insert_rowid(st->db);
    if (sqlite3_step(c) != SQLITE_ROW)
        goto done;
    *total = sqlite3_column_int64(c, 0);
    err = CML_OK;
done:
    sqlite3_finalize(s);
    sqlite3_finalize(c);
    pthread_mutex_unlock(&st->lock);
    return err;
}

cml_err cml_state_each_feedback(cml_state *st,
                                void (*row)(void *ctx, const char *text, const char *label),
                                void *ctx) {
    cml_err err = CML_OK;
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = prep(st, "SELECT text, correct_class FROM feedback ORDER BY id");
    if (s == NULL) {
        err = CML_ERR_IO;
    } else {
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW)
            row(ctx, (const char *)sqlite3_column_text(s, 0),
                (const char *)sqlite3_column_text(s, 1));
        if (rc != SQLITE_DONE)
            err = CML_ERR_IO;
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return err;
}

cml_err cml_state_feedback_counts(cml_state *st, char **json) {
    cml_err err = CML_OK;
    json_object *o = json_object_new_object();
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s =
        prep(st, "SELECT correct_class, COUNT(*) FROM feedback GROUP BY correct_class ORDER BY 1");
    if (s == NULL) {
        err = CML_ERR_IO;
    } else {
        while (sqlite3_step(s) == SQLITE_ROW)
            json_object_object_add(o, (const char *)sqlite3_column_text(s, 0),
                                   json_object_new_int64(sqlite3_column_int64(s, 1)));
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    *json = err == CML_OK ? cml_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN))
                          : NULL;
    json_object_put(o);
    return err == CML_OK && *json == NULL ? CML_ERR_NOMEM : err;
}

/* --- training jobs --------------------------------------------------------- */

cml_err cml_state_job_start(cml_state *st, const cml_job *job) {
    cml_err err = CML_OK;
    sqlite3_stmt *q = NULL, *s = NULL;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        err = CML_ERR_IO;
        goto unlock;
    }
    q = prep(st, "SELECT COUNT(*) FROM training_jobs WHERE status = 'running'");
    if (q == NULL || sqlite3_step(q) != SQLITE_ROW) {
        err = CML_ERR_IO;
        goto rollback;
    }
    if (sqlite3_column_int64(q, 0) > 0) {
        err = CML_ERR_CONFLICT;
        goto rollback;
    }
    s = prep(st, "INSERT INTO training_jobs (task_id, model_type, status, progress, current_task,"
                 " start_time, pid) VALUES (?, ?, 'running', 0, ?, ?, ?)");
    if (s == NULL) {
        err = CML_ERR_IO;
        goto rollback;
    }
    sqlite3_bind_text(s, 1, job->task_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, job->model_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, job->current_task, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, job->start_time);
    sqlite3_bind_int64(s, 5, job->pid);
    if (sqlite3_step(s) != SQLITE_DONE ||
        sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        err = CML_ERR_IO;
        goto rollback;
    }
    goto unlock;
rollback:
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
unlock:
    sqlite3_finalize(q);
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return err;
}

static cml_err exec_job_update(cml_state *st, const char *sql, const char *task_id, double progress,
                               const char *a, const char *b, const char *c, int64_t n) {
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = prep(st, sql);
    cml_err err = CML_ERR_IO;
    if (s) {
        sqlite3_bind_text(s, 1, task_id, -1, SQLITE_STATIC);
        sqlite3_bind_double(s, 2, progress);
        bind_opt_text(s, 3, a);
        bind_opt_text(s, 4, b);
        bind_opt_text(s, 5, c);
        sqlite3_bind_int64(s, 6, n);
        if (sqlite3_step(s) == SQLITE_DONE)
            err = sqlite3_changes(st->db) > 0 ? CML_OK : CML_ERR_NOT_FOUND;
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return err;
}

cml_err cml_state_job_progress(cml_state *st, const char *task_id, double progress,
                               const char *step, int64_t pid) {
    return exec_job_update(
        st,
        "UPDATE training_jobs SET progress = ?2, current_task = ?3,"
        " pid = CASE WHEN ?6 > 0 THEN ?6 ELSE pid END"
        " WHERE task_id = ?1 AND status = 'running' AND ?4 IS NULL AND ?5 IS NULL",
        task_id, progress, step, NULL, NULL, pid);
}

static const char *const job_status_names[CML_JOB__MAX] = {
    [CML_JOB_RUNNING] = "running",
    [CML_JOB_COMPLETED] = "completed",
    [CML_JOB_FAILED] = "failed",
};

const char *cml_job_status_name(cml_job_status s) {
    return (unsigned)s < CML_JOB__MAX ? job_status_names[s] : NULL;
}

/* The status stored as name; an unknown name reads as failed. */
static cml_job_status job_status_parse(const char *name) {
    for (int k = 0; k < CML_JOB__MAX; k++)
        if (strcmp(name, job_status_names[k]) == 0)
            return (cml_job_status)k;
    return CML_JOB_FAILED;
}

cml_err cml_state_job_finish(cml_state *st, const char *task_id, cml_job_status status,
                             const char *error, const char *version) {
    return exec_job_update(st,
                           "UPDATE training_jobs SET status = ?3, error = ?4, version = ?5,"
                           " finished_at = ?6, progress = CASE WHEN ?3 = 'completed' THEN 100"
                           " ELSE progress END, current_task = CASE WHEN ?3 = 'completed' THEN"
                           " 'done' ELSE current_task END"
                           " WHERE task_id = ?1 AND status = 'running' AND ?2 >= 0",
                           task_id, 0, cml_job_status_name(status), error, version,
                           (int64_t)time(NULL));
}

static cml_err read_job(cml_state *st, const char *where, const char *arg, cml_job *out) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT task_id, model_type, status, progress, current_task, start_time, finished_at,"
             " error, version, pid FROM training_jobs %s",
             where);
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = prep(st, sql);
    cml_err err = CML_ERR_IO;
    if (s) {
        if (arg)
            sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            memset(out, 0, sizeof(*out));
            copy_col(out->task_id, sizeof out->task_id, s, 0);
            copy_col(out->model_type, sizeof out->model_type, s, 1);
            char status[16];
            copy_col(status, sizeof status, s, 2);
            out->status = job_status_parse(status);
            out->progress = sqlite3_column_double(s, 3);
            copy_col(out->current_task, sizeof out->current_task, s, 4);
            out->start_time = sqlite3_column_int64(s, 5);
            out->finished_at = sqlite3_column_int64(s, 6);
            copy_col(out->error, sizeof out->error, s, 7);
            copy_col(out->version, sizeof out->version, s, 8);
            out->pid = sqlite3_column_int64(s, 9);
            err = CML_OK;
        } else if (rc == SQLITE_DONE) {
            err = CML_ERR_NOT_FOUND;
        }
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return err;
}

cml_err cml_state_job_latest(cml_state *st, cml_job *out) {
    return read_job(st, "ORDER BY start_time DESC, rowid DESC LIMIT 1", NULL, out);
}

cml_err cml_state_job_get(cml_state *st, const char *task_id, cml_job *out) {
    return read_job(st, "WHERE task_id = ?1", task_id, out);
}

cml_err cml_state_jobs_reap(cml_state *st, bool (*alive)(int64_t pid)) {
    char ids[16][40];
    int64_t pids[16];
    size_t n = 0;
    pthread_mutex_lock(&st->lock);
    int64_t started[16];
    sqlite3_stmt *s =
        prep(st, "SELECT task_id, pid, start_time FROM training_jobs WHERE status = 'running'");
    while (s && n < 16 && sqlite3_step(s) == SQLITE_ROW) {
        copy_col(ids[n], sizeof ids[n], s, 0);
        pids[n] = sqlite3_column_int64(s, 1);
        started[n] = sqlite3_column_int64(s, 2);
        n++;
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    /* A job not yet given its pid is being started right now: only an old one is stale. */
    for (size_t i = 0; i < n; i++)
        if ((pids[i] <= 0 && time(NULL) - started[i] > 60) || (pids[i] > 0 && !alive(pids[i])))
            cml_state_job_finish(st, ids[i], CML_JOB_FAILED,
                                 "the training process ended without reporting (crash or restart)",
                                 NULL);
    return CML_OK;
}

/* --- history and evaluations ------------------------------------------------ */

cml_err cml_state_add_history(cml_state *st, const cml_history_entry *e) {
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s =
        prep(st, "INSERT INTO history (task_id, model_type, version, timestamp,"
                 " metrics, training_time, n_train, n_test) VALUES (?,?,?,?,?,?,?,?)");
    if (s) {
        bind_opt_text(s, 1, e->task_id[0] ? e->task_id : NULL);
        sqlite3_bind_text(s, 2, e->model_type, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, e->version, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, e->timestamp);
        bind_opt_text(s, 5, e->metrics_json);
        sqlite3_bind_double(s, 6, e->training_time);
        sqlite3_bind_int64(s, 7, e->n_train);
        sqlite3_bind_int64(s, 8, e->n_test);
    }
    return finish_write(st, s);
}

void cml_history_free(cml_history_entry *e, size_t n) {
    if (e == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        cml_free(e[i].metrics_json);
    cml_free(e);
}

cml_err cml_state_list_history(cml_state *st, const char *model_type, size_t limit,
                               cml_history_entry **out, size_t *n) {
    cml_err err = CML_OK;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = prep(st, "SELECT * FROM (SELECT task_id, model_type, version, timestamp,"
                               " metrics, training_time, n_train, n_test, id FROM history"
                               " WHERE ?1 IS NULL OR model_type = ?1 ORDER BY id DESC LIMIT ?2)"
                               " ORDER BY id ASC");
    if (s == NULL) {
        err = CML_ERR_IO;
        goto done;
    }
    if (model_type)
        sqlite3_bind_text(s, 1, model_type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, limit ? (int64_t)limit : -1);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            cml_history_entry *g = cml_realloc_array(*out, cap, sizeof(**out));
            if (g == NULL) {
                err = CML_ERR_NOMEM;
                goto done;
            }
            *out = g;
        }
        cml_history_entry *e = &(*out)[*n];
        memset(e, 0, sizeof(*e));
        copy_col(e->task_id, sizeof e->task_id, s, 0);
        copy_col(e->model_type, sizeof e->model_type, s, 1);
        copy_col(e->version, sizeof e->version, s, 2);
        e->timestamp = sqlite3_column_int64(s, 3);
        const unsigned char *m = sqlite3_column_text(s, 4);
        e->metrics_json = m ? cml_strdup((const char *)m) : NULL;
        e->training_time = sqlite3_column_double(s, 5);
        e->n_train = sqlite3_column_int64(s, 6);
        e->n_test = sqlite3_column_int64(s, 7);
        (*n)++;
    }
    if (rc != SQLITE_DONE)
        err = CML_ERR_IO;
done:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    if (err != CML_OK) {
        cml_history_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return err;
}

cml_err cml_state_add_evaluation(cml_state *st, const char *model_type, const char *version,
                                 int64_t n, const char *metrics_json) {
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s =
        prep(st, "INSERT INTO evaluations (model_type, version, timestamp, n, metrics)"
                 " VALUES (?, ?, ?, ?, ?)");
    if (s) {
        sqlite3_bind_text(s, 1, model_type, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, version, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, (int64_t)time(NULL));
        sqlite3_bind_int64(s, 4, n);
        bind_opt_text(s, 5, metrics_json);
    }
    return finish_write(st, s);
}

/* --- status values ---------------------------------------------------------- */

cml_err cml_state_set_status(cml_state *st, const char *key, const char *value) {
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = prep(st, "INSERT INTO status (key, value, updated_at) VALUES (?, ?, ?)"
                               " ON CONFLICT(key) DO UPDATE SET value = excluded.value,"
                               " updated_at = excluded.updated_at");
    if (s) {
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, (int64_t)time(NULL));
    }
    return finish_write(st, s);
}

cml_err cml_state_get_status(cml_state *st, const char *key, char *value, size_t cap,
                             int64_t *updated_at) {
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = prep(st, "SELECT value, updated_at FROM status WHERE key = ?");
    cml_err err = CML_ERR_IO;
    if (s) {
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            copy_col(value, cap, s, 0);
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
