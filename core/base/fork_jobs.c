#include "config.h"

#include "base/fork_jobs.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 64

void *cml_shared_alloc(size_t bytes) {
    void *p =
        mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void cml_shared_free(void *p, size_t bytes) {
    if (p != NULL)
        munmap(p, bytes ? bytes : 1);
}

/* What the children report back through shared memory. */
typedef struct board {
    atomic_size_t next, done;
    atomic_int failed; /* 0, or 1 once one job failed: the others stop taking jobs */
    cml_err err;       /* written once, by the first job to fail */
    cml_diag diag;
} board;

static void run_child(board *b, size_t n_jobs, cml_job_fn job, void (*cleanup)(void *), void *ctx,
                      pid_t parent) {
    /* A worker must not outlive a trainer killed mid-way. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    for (;;) {
        if (atomic_load(&b->failed))
            break;
        size_t j = atomic_fetch_add(&b->next, 1);
        if (j >= n_jobs)
            break;
        cml_diag d = {{0}};
        cml_err err = job(ctx, j, &d);
        if (err != CML_OK) {
            int expected = 0;
            if (atomic_compare_exchange_strong(&b->failed, &expected, 1)) {
                b->err = err;
                b->diag = d;
            }
            break;
        }
        atomic_fetch_add(&b->done, 1);
    }
    if (cleanup != NULL)
        cleanup(ctx);
    _exit(0); /* no atexit handlers or stdio flushes of the parent's state */
}

static void nap(void) {
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

cml_err cml_fork_jobs(size_t n_jobs, size_t n_workers, cml_job_fn job, void (*cleanup)(void *ctx),
                      cml_jobs_progress_fn progress, void *ctx, cml_diag *diag) {
    if (n_workers > n_jobs)
        n_workers = n_jobs;
    if (n_workers > MAX_WORKERS)
        n_workers = MAX_WORKERS;
    if (n_workers <= 1) {
        for (size_t j = 0; j < n_jobs; j++) {
            cml_err err = job(ctx, j, diag);
            if (err != CML_OK)
                return err;
            if (progress != NULL)
                progress(ctx, j + 1);
        }
        return CML_OK;
    }
    board *b = cml_shared_alloc(sizeof(*b));
    if (b == NULL)
        return cml_diag_set(diag, CML_ERR_NOMEM, "no shared memory for the training workers");
    pid_t pids[MAX_WORKERS];
    size_t started = 0;
    cml_err err = CML_OK;
    pid_t self = getpid();
    for (; started < n_workers; started++) {
        pid_t pid = fork();
        if (pid == 0)
            run_child(b, n_jobs, job, cleanup, ctx, self);
        if (pid < 0) {
            err = cml_diag_set(diag, CML_ERR_INTERNAL, "cannot start a training worker: %s",
                               strerror(errno));
            atomic_store(&b->failed, 1);
            break;
        }
        pids[started] = pid;
    }
    /* Wait for every child, reporting progress; a child killed by a signal fails the run. */
    size_t running = started, reported = 0;
    while (running > 0) {
        for (size_t i = 0; i < started; i++) {
            int status;
            if (pids[i] < 0)
                continue;
            pid_t pid = waitpid(pids[i], &status, WNOHANG);
            if (pid == 0 || (pid < 0 && errno == EINTR))
                continue;
            running--;
            pids[i] = -1;
            bool clean = pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
            if (!clean && err == CML_OK && !atomic_load(&b->failed)) {
                err = pid > 0 && WIFSIGNALED(status)
                          ? cml_diag_set(diag, CML_ERR_TRAIN, "a training worker died of signal %d",
                                         WTERMSIG(status))
                          : cml_diag_set(diag, CML_ERR_TRAIN, "a training worker failed");
                atomic_store(&b->failed, 1);
            }
        }
        size_t done = atomic_load(&b->done);
        if (progress != NULL && done != reported)
            progress(ctx, reported = done);
        if (running > 0)
            nap();
    }
    if (err == CML_OK && atomic_load(&b->failed)) {
        err = b->err;
        if (diag != NULL)
            *diag = b->diag;
    }
    if (err == CML_OK && atomic_load(&b->done) != n_jobs)
        err = cml_diag_set(diag, CML_ERR_INTERNAL, "training workers finished %zu of %zu jobs",
                           atomic_load(&b->done), n_jobs);
    if (err == CML_OK && progress != NULL && reported != n_jobs)
        progress(ctx, n_jobs);
    cml_shared_free(b, sizeof(*b));
    return err;
}
