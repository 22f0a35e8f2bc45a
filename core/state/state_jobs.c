/* Training jobs: start (one at a time), progress, end, the reaping of dead ones. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "state/state_internal.h"

/* This machine's name: a job's pid means something only on the host that runs its trainer. */
static void state_host(char *out, size_t cap) {
    if (gethostname(out, cap) != 0)
        snprintf(out, cap, "localhost");
    out[cap - 1] = '\0';
}

cml_err cml_state_job_start(cml_state *st, const cml_job *job) {
    cml_err err = CML_OK;
    state_stmt *q = NULL, *s = NULL;
    char host[256];
    state_host(host, sizeof host);
    pthread_mutex_lock(&st->lock);
    if (state_begin(st) != CML_OK) {
        err = state_failure(st);
        goto unlock;
    }
    q = state_prep(st, "SELECT COUNT(*) FROM training_jobs WHERE status = 'running'");
    if (q == NULL || state_step(q) != STATE_ROW) {
        err = state_failure(st);
        goto rollback;
    }
    if (state_col_int64(q, 0) > 0) {
        err = CML_ERR_CONFLICT;
        goto rollback;
    }
    s = state_prep(
        st, "INSERT INTO training_jobs (task_id, model_type, status, progress, current_task,"
            " start_time, pid, lease_until, host) VALUES (?, ?, 'running', 0, ?, ?, ?, ?, ?)");
    if (s == NULL) {
        err = state_failure(st);
        goto rollback;
    }
    state_bind_text(s, 1, job->task_id);
    state_bind_text(s, 2, job->model_type);
    state_bind_text(s, 3, job->current_task);
    state_bind_int64(s, 4, job->start_time);
    state_bind_int64(s, 5, job->pid);
    state_bind_int64(s, 6, job->start_time + CML_JOB_START_LEASE_S);
    state_bind_text(s, 7, host);
    if (state_step(s) != STATE_DONE || state_commit(st) != CML_OK) {
        err = state_failure(st);
        goto rollback;
    }
    goto unlock;
rollback:
    state_rollback(st);
unlock:
    state_finalize(q);
    state_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return err;
}

/* Runs an update of one running job (s bound, or NULL), then releases st->lock:
 * CML_ERR_NOT_FOUND when no running job of that id was changed. */
static cml_err finish_job_update(cml_state *st, state_stmt *s) {
    cml_err err = state_failure(st);
    if (s && state_step(s) == STATE_DONE)
        err = state_changes(s) > 0 ? CML_OK : CML_ERR_NOT_FOUND;
    state_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return err;
}

cml_err cml_state_job_progress(cml_state *st, const char *task_id, double progress,
                               const char *step, int64_t pid) {
    pthread_mutex_lock(&st->lock);
    state_stmt *s = state_prep(st, "UPDATE training_jobs SET progress = ?2, current_task = ?3,"
                                   " pid = CASE WHEN ?4 > 0 THEN ?4 ELSE pid END"
                                   " WHERE task_id = ?1 AND status = 'running'");
    if (s) {
        state_bind_text(s, 1, task_id);
        state_bind_double(s, 2, progress);
        state_bind_text(s, 3, step);
        state_bind_int64(s, 4, pid);
    }
    return finish_job_update(st, s);
}

cml_err cml_state_job_heartbeat(cml_state *st, const char *task_id, int64_t lease_until) {
    pthread_mutex_lock(&st->lock);
    state_stmt *s = state_prep(st, "UPDATE training_jobs SET lease_until = ?2"
                                   " WHERE task_id = ?1 AND status = 'running'");
    if (s) {
        state_bind_text(s, 1, task_id);
        state_bind_int64(s, 2, lease_until);
    }
    return finish_job_update(st, s);
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
    pthread_mutex_lock(&st->lock);
    state_stmt *s = state_prep(st, "UPDATE training_jobs SET status = ?2, error = ?3, version = ?4,"
                                   " finished_at = ?5, progress = CASE WHEN ?2 = 'completed' THEN"
                                   " 100 ELSE progress END, current_task = CASE WHEN"
                                   " ?2 = 'completed' THEN 'done' ELSE current_task END"
                                   " WHERE task_id = ?1 AND status = 'running'");
    if (s) {
        state_bind_text(s, 1, task_id);
        state_bind_text(s, 2, cml_job_status_name(status));
        state_bind_text(s, 3, error);
        state_bind_text(s, 4, version);
        state_bind_int64(s, 5, (int64_t)time(NULL));
    }
    return finish_job_update(st, s);
}

static cml_err read_job(cml_state *st, const char *where, const char *arg, cml_job *out) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT task_id, model_type, status, progress, current_task, start_time, finished_at,"
             " error, version, pid FROM training_jobs %s",
             where);
    pthread_mutex_lock(&st->lock);
    state_stmt *s = state_prep(st, sql);
    cml_err err = state_failure(st);
    if (s) {
        if (arg)
            state_bind_text(s, 1, arg);
        state_step_result rc = state_step(s);
        if (rc == STATE_ROW) {
            memset(out, 0, sizeof(*out));
            state_copy_col(out->task_id, sizeof out->task_id, s, 0);
            state_copy_col(out->model_type, sizeof out->model_type, s, 1);
            char status[16];
            state_copy_col(status, sizeof status, s, 2);
            out->status = job_status_parse(status);
            out->progress = state_col_double(s, 3);
            state_copy_col(out->current_task, sizeof out->current_task, s, 4);
            out->start_time = state_col_int64(s, 5);
            out->finished_at = state_col_int64(s, 6);
            state_copy_col(out->error, sizeof out->error, s, 7);
            state_copy_col(out->version, sizeof out->version, s, 8);
            out->pid = state_col_int64(s, 9);
            err = CML_OK;
        } else if (rc == STATE_DONE) {
            err = CML_ERR_NOT_FOUND;
        } else {
            err = state_failure(st);
        }
    }
    state_finalize(s);
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
    char ids[16][40], host[256], job_host[256];
    int64_t pids[16], started[16], lease[16];
    size_t n = 0;
    state_host(host, sizeof host);
    pthread_mutex_lock(&st->lock);
    state_stmt *s = state_prep(st, "SELECT task_id, pid, start_time, lease_until, host"
                                   " FROM training_jobs WHERE status = 'running'");
    if (s == NULL) {
        pthread_mutex_unlock(&st->lock);
        return state_failure(st);
    }
    while (n < 16 && state_step(s) == STATE_ROW) {
        state_copy_col(ids[n], sizeof ids[n], s, 0);
        state_copy_col(job_host, sizeof job_host, s, 4);
        /* Another machine's pid says nothing here: its lease alone decides (a job from before
         * hosts were stored ran on this machine, the only one then). */
        pids[n] = job_host[0] == '\0' || strcmp(job_host, host) == 0 ? state_col_int64(s, 1) : 0;
        started[n] = state_col_int64(s, 2);
        /* A job from before leases: its start is its lease. */
        lease[n] =
            state_col_null(s, 3) ? started[n] + CML_JOB_START_LEASE_S : state_col_int64(s, 3);
        n++;
    }
    state_finalize(s);
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
