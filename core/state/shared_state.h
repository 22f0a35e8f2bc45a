/*
 * State shared by every worker process of an instance and kept across
 * restarts: the model selection, known model versions, feedback, training
 * jobs, training history, evaluations and the live comparison's counts. In
 * SQLite (WAL) in the state directory by default; in PostgreSQL, shared by a
 * whole fleet, when a database URL is given (core/state/backend/). A
 * selection change also bumps a counter in a small shared memory map so that
 * workers notice it with one atomic load per request; with PostgreSQL a
 * watcher thread (LISTEN) brings the fleet's changes into that map.
 *
 * One cml_state per process; its functions lock internally and may be called
 * from any thread. One file by what it stores: shared_state.c (opening, the
 * schema), state_selection.c, state_models.c, state_feedback.c, state_jobs.c,
 * state_history.c (history and evaluations), state_status.c.
 */
#ifndef CML_SHARED_STATE_H
#define CML_SHARED_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/cml_error.h"

typedef struct cml_state cml_state;

/*
 * Opens the state: dir/generation, and dir/state.sqlite3 when database_url is NULL or "",
 * else the PostgreSQL database it names (a libpq connection string or URI). Migrates the
 * schema. A PostgreSQL server that cannot be reached is not an error here: calls answer
 * CML_ERR_UNAVAILABLE until it can. dir may be NULL with a database_url (a one-shot command:
 * the generation counter is then this process's own). *out owned by the caller.
 */
cml_err cml_state_open(const char *dir, const char *database_url, cml_state **out, cml_diag *diag);
/* The database URL the environment names: STATE_DATABASE_URL, else DATABASE_URL, else NULL. */
const char *cml_state_url_from_env(void);
/* "sqlite" or "postgresql" (static). */
const char *cml_state_backend_name(const cml_state *st);
/* True when every instance of a fleet shares this state (PostgreSQL). */
bool cml_state_fleet_wide(const cml_state *st);
/* False while the database cannot be reached (it reconnects by itself). */
bool cml_state_reachable(cml_state *st);
/* With apply, runs the pending schema migrations; *current gets the version the database is
 * at, *latest the one this build writes. */
cml_err cml_state_migrate(cml_state *st, bool apply, int *current, int *latest, cml_diag *diag);
/* url with its password (userinfo or password= keyword) replaced by "***", into out. */
void cml_state_masked_url(const char *url, char *out, size_t cap);
/* Accepts NULL. */
void cml_state_close(cml_state *st);

/* The selection generation: cheap, lock-free. */
uint64_t cml_state_generation(const cml_state *st);

typedef struct cml_selection {
    char active_type[16];     /* "ensemble" or "classic" */
    char classic_version[40]; /* pinned version, "" = latest */
    char ensemble_version[40];
    int64_t updated_at;
    uint64_t generation;
} cml_selection;

/* The stored selection, or CML_ERR_NOT_FOUND before the first one is set. */
cml_err cml_state_get_selection(cml_state *st, cml_selection *out);
/* Stores sel and bumps the generation (sel->generation is set on return). */
cml_err cml_state_set_selection(cml_state *st, cml_selection *sel);
/* Stores sel as another instance made it, keeping its updated_at; bumps the generation. */
cml_err cml_state_adopt_selection(cml_state *st, cml_selection *sel);
/* Sets the selection only when none exists yet (first start); returns the stored one. */
cml_err cml_state_init_selection(cml_state *st, const char *active_type, cml_selection *out);
/* Bumps the generation without changing the selection (a new latest version appeared). */
cml_err cml_state_touch(cml_state *st);

typedef struct cml_model_record {
    char model_type[16];
    char version[40];
    int64_t created_at;
    int64_t size_bytes;
    char sha256[65];
    char *metrics_json; /* owned, may be NULL */
    bool local, blob;
} cml_model_record;

cml_err cml_state_upsert_model(cml_state *st, const cml_model_record *r);
/* All known versions, newest first; *out is an owned array released with cml_model_records_free. */
cml_err cml_state_list_models(cml_state *st, const char *model_type, cml_model_record **out,
                              size_t *n);
cml_err cml_state_delete_model(cml_state *st, const char *model_type, const char *version);
void cml_model_records_free(cml_model_record *r, size_t n);

typedef struct cml_feedback {
    const char *text, *correct_class, *predicted_class, *error_type, *source;
    const char *model_type, *model_version; /* what gave the answer, NULL when unknown */
    double confidence;                      /* NAN when absent */
    int64_t scenario_id;
    bool has_scenario;
} cml_feedback;

/* Stores fb durably (committed and synced) and returns its id and the new total. */
cml_err cml_state_add_feedback(cml_state *st, const cml_feedback *fb, int64_t *id, int64_t *total);
/* Calls row(ctx, text, correct_class) for every feedback entry, oldest first. */
cml_err cml_state_each_feedback(cml_state *st,
                                void (*row)(void *ctx, const char *text, const char *label),
                                void *ctx);
/* Feedback counts per correct label as a JSON object text (caller frees). */
cml_err cml_state_feedback_counts(cml_state *st, char **json);

/* The state of a training job, stored by name. */
typedef enum cml_job_status {
    CML_JOB_RUNNING,
    CML_JOB_COMPLETED,
    CML_JOB_FAILED,
    CML_JOB__MAX
} cml_job_status;

/* "running", "completed", "failed"; NULL for other values. */
const char *cml_job_status_name(cml_job_status s);

typedef struct cml_job {
    char task_id[40];
    char model_type[16];
    cml_job_status status;
    double progress; /* 0..100 */
    char current_task[128];
    int64_t start_time, finished_at;
    char error[256];
    char version[40];
    int64_t pid;
} cml_job;

/*
 * A running job holds a lease in the shared state: whoever started it, its state follows its
 * trainer. The trainer renews the lease every CML_JOB_HEARTBEAT_S to CML_JOB_LEASE_S ahead; a
 * new job's first lease (CML_JOB_START_LEASE_S) covers the trainer's start. Any process that
 * reaps (cml_state_jobs_reap) fails a job whose lease expired or whose process is gone.
 */
#define CML_JOB_HEARTBEAT_S 1
#define CML_JOB_LEASE_S 6
#define CML_JOB_START_LEASE_S 30

/* Creates a running job unless one runs already (CML_ERR_CONFLICT); leased from start_time. */
cml_err cml_state_job_start(cml_state *st, const cml_job *job);
/* Renews a running job's lease to lease_until (unix seconds); CML_ERR_NOT_FOUND once it ended. */
cml_err cml_state_job_heartbeat(cml_state *st, const char *task_id, int64_t lease_until);
cml_err cml_state_job_progress(cml_state *st, const char *task_id, double progress,
                               const char *step, int64_t pid);
/* Ends a running job: CML_JOB_COMPLETED or CML_JOB_FAILED. */
cml_err cml_state_job_finish(cml_state *st, const char *task_id, cml_job_status status,
                             const char *error, const char *version);
/* The latest job, or CML_ERR_NOT_FOUND. */
cml_err cml_state_job_latest(cml_state *st, cml_job *out);
cml_err cml_state_job_get(cml_state *st, const char *task_id, cml_job *out);
/* Marks jobs still "running" whose lease expired or whose process is gone as failed. */
cml_err cml_state_jobs_reap(cml_state *st, bool (*alive)(int64_t pid));

typedef struct cml_history_entry {
    char task_id[40];
    char model_type[16];
    char version[40];
    int64_t timestamp;
    char *metrics_json; /* owned */
    double training_time;
    int64_t n_train, n_test;
} cml_history_entry;

cml_err cml_state_add_history(cml_state *st, const cml_history_entry *e);
/* Newest `limit` entries (0 = all) of a type (NULL = any), returned oldest first; owned array. */
cml_err cml_state_list_history(cml_state *st, const char *model_type, size_t limit,
                               cml_history_entry **out, size_t *n);
void cml_history_free(cml_history_entry *e, size_t n);

cml_err cml_state_add_evaluation(cml_state *st, const char *model_type, const char *version,
                                 int64_t n, const char *metrics_json);

/* Small status values shared by the workers (e.g. the blob store's reachability). */
cml_err cml_state_set_status(cml_state *st, const char *key, const char *value);
/* CML_ERR_NOT_FOUND when never set; updated_at (may be NULL) gets when it was set. */
cml_err cml_state_get_status(cml_state *st, const char *key, char *value, size_t cap,
                             int64_t *updated_at);

#endif
