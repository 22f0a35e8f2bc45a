/* Training jobs: start (one at a time), progress, end, the reaping of dead ones. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "state/state_internal.h"

cml_err cml_state_job_start(cml_state *st, const cml_job *job) {
    cml_err err = CML_OK;
    sqlite3_stmt *q = NULL, *s = NULL;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        err = CML_ERR_IO;
        goto unlock;
    }
    q = state_prep(st, "SELECT COUNT(*) FROM training_jobs WHERE status = 'running'");
    if (q == NULL || sqlite3_step(q) != SQLITE_ROW) {
        err = CML_ERR_IO;
        goto rollback;
    }
    if (sqlite3_column_int64(q, 0) > 0) {
        err = CML_ERR_CONFLICT;
        goto rollback;
    }
    s = state_prep(st,
                   "INSERT INTO training_jobs (task_id, model_type, status, progress, current_task,"
                   " start_time, pid, lease_until) VALUES (?, ?, 'running', 0, ?, ?, ?, ?)");
    if (s == NULL) {
        err = CML_ERR_IO;
        goto rollback;
    }
    sqlite3_bind_text(s, 1, job->task_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, job->model_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, job->current_task, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, job->start_time);
    sqlite3_bind_int64(s, 5, job->pid);
    sqlite3_bind_int64(s, 6, job->start_time + CML_JOB_START_LEASE_S);
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
    sqlite3_stmt *s = state_prep(st, sql);
    cml_err err = CML_ERR_IO;
    if (s) {
        sqlite3_bind_text(s, 1, task_id, -1, SQLITE_STATIC);
        sqlite3_bind_double(s, 2, progress);
        state_bind_opt_text(s, 3, a);
        state_bind_opt_text(s, 4, b);
        state_bind_opt_text(s, 5, c);
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

cml_err cml_state_job_heartbeat(cml_state *st, const char *task_id, int64_t lease_until) {
    return exec_job_update(st,
                           "UPDATE training_jobs SET lease_until = ?6 WHERE task_id = ?1 AND"
                           " status = 'running' AND ?2 >= 0 AND ?3 IS NULL AND ?4 IS NULL AND"
                           " ?5 IS NULL",
                           task_id, 0, NULL, NULL, NULL, lease_until);
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
    sqlite3_stmt *s = state_prep(st, sql);
    cml_err err = CML_ERR_IO;
    if (s) {
        if (arg)
            sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            memset(out, 0, sizeof(*out));
            state_copy_col(out->task_id, sizeof out->task_id, s, 0);
            state_copy_col(out->model_type, sizeof out->model_type, s, 1);
            char status[16];
            state_copy_col(status, sizeof status, s, 2);
            out->status = job_status_parse(status);
            out->progress = sqlite3_column_double(s, 3);
            state_copy_col(out->current_task, sizeof out->current_task, s, 4);
            out->start_time = sqlite3_column_int64(s, 5);
            out->finished_at = sqlite3_column_int64(s, 6);
            state_copy_col(out->error, sizeof out->error, s, 7);
            state_copy_col(out->version, sizeof out->version, s, 8);
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
    int64_t pids[16], started[16], lease[16];
    size_t n = 0;
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = state_prep(st, "SELECT task_id, pid, start_time, lease_until"
                                     " FROM training_jobs WHERE status = 'running'");
    while (s && n < 16 && sqlite3_step(s) == SQLITE_ROW) {
        state_copy_col(ids[n], sizeof ids[n], s, 0);
        pids[n] = sqlite3_column_int64(s, 1);
        started[n] = sqlite3_column_int64(s, 2);
        /* A job from before leases: its start is its lease. */
        lease[n] = sqlite3_column_type(s, 3) == SQLITE_NULL ? started[n] + CML_JOB_START_LEASE_S
                                                            : sqlite3_column_int64(s, 3);
        n++;
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < n; i++) {
        /* The pid is checked first, so a job without a trainer fails without waiting for its
         * lease; the lease catches the rest (a zombie, another machine, a hung trainer). */
        const char *why = NULL;
        if (pids[i] > 0 && !alive(pids[i]))
            why = "the training process ended without reporting (crash or restart)";
        else if (now > lease[i])
            why = "the training process stopped renewing its lease (killed, hung or lost)";
        if (why)
            cml_state_job_finish(st, ids[i], CML_JOB_FAILED, why, NULL);
    }
    return CML_OK;
}
