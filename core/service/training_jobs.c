#include "config.h"

#include "training_jobs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/cml_alloc.h"
#include "base/file_io.h"
#include "ops/service_log.h"
#include "ops/prom.h"

typedef struct watch {
    service *svc;
    pid_t pid;
    char task_id[40];
    char data_path[4096];
} watch;

void training_job_clean_cache(const char *cache_dir, pid_t pid) {
    /* Temporary names end in ".tmp.PID" (links) or hold ".tmp.PID." (files, cml_write_file_atomic).
     */
    char suffix[32], infix[40], path[4096];
    snprintf(suffix, sizeof suffix, ".tmp.%ld", (long)pid);
    snprintf(infix, sizeof infix, ".tmp.%ld.", (long)pid);
    size_t sl = strlen(suffix);
    DIR *d = opendir(cache_dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if ((n > sl && strcmp(e->d_name + n - sl, suffix) == 0) || strstr(e->d_name, infix)) {
            snprintf(path, sizeof path, "%s/%s", cache_dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
}

static void *watch_job(void *arg) {
    watch *w = arg;
    time_t deadline = time(NULL) + (time_t)w->svc->cfg.training_timeout;
    bool timed_out = false;
    siginfo_t info;
    /* WNOWAIT: the trainer stays a zombie until its end is recorded, so a reaper elsewhere
     * (which takes a zombie with a living parent for alive) never writes a vaguer reason. */
    for (;;) {
        memset(&info, 0, sizeof info);
        int rc = waitid(P_PID, (id_t)w->pid, &info, WEXITED | WNOHANG | WNOWAIT);
        if ((rc == 0 && info.si_pid == w->pid) || (rc < 0 && errno != EINTR))
            break;
        if (!timed_out && time(NULL) > deadline) {
            kill(w->pid, SIGKILL);
            timed_out = true;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    char reason[160] = "";
    if (timed_out)
        snprintf(reason, sizeof reason, "the job ran past the %lld s time limit and was stopped",
                 (long long)w->svc->cfg.training_timeout);
    else if (info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED)
        snprintf(reason, sizeof reason, "the training process was killed by signal %d",
                 info.si_status);
    else if (info.si_code == CLD_EXITED && info.si_status != 0)
        snprintf(reason, sizeof reason, "the training process failed (exit status %d)",
                 info.si_status);
    /* A no-op when the trainer already reported its own end. */
    if (reason[0])
        cml_state_job_finish(w->svc->state, w->task_id, CML_JOB_FAILED, reason, NULL);
    int status;
    while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
        ;
    training_job_clean_cache(w->svc->cfg.model_cache_dir, w->pid);
    unlink(w->data_path);
    cml_job job;
    bool ok = cml_state_job_get(w->svc->state, w->task_id, &job) == CML_OK &&
              job.status == CML_JOB_COMPLETED;
    cml_prom_inc(ok ? CML_M_TRAINING_COMPLETED : CML_M_TRAINING_FAILED, 1);
    cml_log(ok ? CML_LOG_INFO : CML_LOG_ERROR, ok ? "training_completed" : "training_failed",
            "task_id", w->task_id, "version", ok ? job.version : "", "reason",
            ok ? "" : (job.error[0] ? job.error : reason), NULL);
    cml_free(w);
    return NULL;
}

cml_err training_job_spawn(service *svc, const char *task_id, const char *model_type,
                           const char *data_path, char *const *params, size_t n_params,
                           cml_diag *diag) {
    char retain[32];
    const char *argv[64];
    size_t argc = 0;
    snprintf(retain, sizeof retain, "%lld", (long long)svc->cfg.retain_versions);
    argv[argc++] = svc->cfg.trainer_path;
    argv[argc++] = "train";
    argv[argc++] = "--model";
    argv[argc++] = model_type;
    argv[argc++] = "--data";
    argv[argc++] = data_path;
    argv[argc++] = "--out";
    argv[argc++] = svc->cfg.model_cache_dir;
    argv[argc++] = "--job";
    argv[argc++] = task_id;
    argv[argc++] = "--state-dir";
    argv[argc++] = svc->cfg.state_dir;
    argv[argc++] = "--retain";
    argv[argc++] = retain;
    if (svc->cfg.use_azure_storage)
        argv[argc++] = "--upload"; /* the connection string is in the environment */
    /* The question detector learns from the non-questions bundled beside the training data,
     * whatever CSV this job trains on (an uploaded one sits in the state directory). */
    char non_questions[4096];
    cml_path_beside(svc->cfg.training_data, "nonquestions.csv", non_questions,
                    sizeof non_questions);
    if (access(non_questions, R_OK) == 0) {
        argv[argc++] = "--non-questions";
        argv[argc++] = non_questions;
    }
    for (size_t i = 0; i < n_params && argc + 3 < 64; i++) {
        argv[argc++] = "--param";
        argv[argc++] = params[i];
    }
    argv[argc] = NULL;

    watch *w = cml_calloc(1, sizeof(*w));
    if (w == NULL)
        return CML_ERR_NOMEM;
    struct rlimit as = {.rlim_cur = (rlim_t)svc->cfg.training_memory_mb << 20,
                        .rlim_max = (rlim_t)svc->cfg.training_memory_mb << 20};
    struct rlimit cpu = {.rlim_cur = (rlim_t)svc->cfg.training_timeout * 4,
                         .rlim_max = (rlim_t)svc->cfg.training_timeout * 4 + 5};
    /* The child waits at this gate until its pid and "starting" are recorded: else that record
     * could land after the trainer's own first progress report and undo it. */
    int gate[2] = {-1, -1};
    if (pipe2(gate, O_CLOEXEC) != 0)
        gate[0] = gate[1] = -1;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        /* Child: only async-signal-safe calls until exec. */
        sigset_t none;
        sigemptyset(&none);
        for (int s = 1; s < NSIG; s++)
            signal(s, SIG_DFL);
        pthread_sigmask(SIG_SETMASK, &none, NULL);
        setpriority(PRIO_PROCESS, 0, 10);
#ifndef HAVE_SANITIZERS
        setrlimit(RLIMIT_AS, &as); /* AddressSanitizer's shadow memory would exceed any limit */
#else
        (void)as;
#endif
        setrlimit(RLIMIT_CPU, &cpu);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            close(devnull);
        }
        if (gate[0] >= 0) {
            char c;
            close(gate[1]);
            while (read(gate[0], &c, 1) < 0 && errno == EINTR)
                ;
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (gate[0] >= 0)
        close(gate[0]);
    if (pid < 0) {
        if (gate[1] >= 0)
            close(gate[1]);
        cml_free(w);
        return cml_diag_set(diag, CML_ERR_TRAIN, "cannot start the trainer: %s",
                            strerror(fork_errno));
    }
    cml_state_job_progress(svc->state, task_id, 0.0, "starting", (int64_t)pid);
    if (gate[1] >= 0)
        close(gate[1]); /* opens the gate */
    w->svc = svc;
    w->pid = pid;
    snprintf(w->task_id, sizeof w->task_id, "%s", task_id);
    snprintf(w->data_path, sizeof w->data_path, "%s", data_path);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, watch_job, w) != 0) {
        /* Without a watcher the job still reports its own end; reap it elsewhere. */
        cml_free(w);
    }
    pthread_attr_destroy(&attr);
    cml_prom_inc(CML_M_TRAINING_STARTED, 1);
    cml_log(CML_LOG_INFO, "training_started", "task_id", task_id, "model", model_type, NULL);
    return CML_OK;
}
