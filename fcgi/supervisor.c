#include "config.h"

#include "supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ops/service_log.h"

#define MAX_WORKERS 64

typedef struct child {
    pid_t pid;
    time_t started;
    int quick_deaths; /* deaths within a few seconds of start, in a row */
} child;

/* argv of a worker: this program's arguments without --workers N. */
static char **worker_argv(int argc, char **argv) {
    char **out = calloc((size_t)argc + 1, sizeof(char *));
    int o = 0;
    for (int i = 0; out && i < argc; i++) {
        if (!strcmp(argv[i], "--workers") || !strcmp(argv[i], "-w")) {
            i++;
            continue;
        }
        if (!strncmp(argv[i], "--workers=", 10))
            continue;
        out[o++] = argv[i];
    }
    return out;
}

static pid_t start_worker(char **wargv, const sigset_t *orig) {
    pid_t pid = fork();
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, orig, NULL);
        execv("/proc/self/exe", wargv);
        execvp(wargv[0], wargv);
        _exit(127);
    }
    return pid;
}

int supervise(int workers, int argc, char **argv) {
    child kids[MAX_WORKERS] = {{0}};
    sigset_t set, orig;
    char **wargv = worker_argv(argc, argv);
    if (wargv == NULL || workers < 1 || workers > MAX_WORKERS)
        return EXIT_FAILURE;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &orig);
    for (int i = 0; i < workers; i++) {
        kids[i].pid = start_worker(wargv, &orig);
        kids[i].started = time(NULL);
    }
    cml_log(CML_LOG_INFO, "supervisor_started", NULL);
    bool stopping = false;
    while (!stopping) {
        struct timespec tick = {1, 0};
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
            stopping = true;
            break;
        }
        int status;
        pid_t dead;
        while ((dead = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int i = 0; i < workers; i++) {
                if (kids[i].pid != dead)
                    continue;
                char pid[16], code[32];
                snprintf(pid, sizeof pid, "%ld", (long)dead);
                snprintf(code, sizeof code, "%s %d", WIFSIGNALED(status) ? "signal" : "exit",
                         WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
                cml_log(CML_LOG_WARN, "worker_died", "worker_pid", pid, "cause", code, NULL);
                kids[i].quick_deaths =
                    time(NULL) - kids[i].started < 5 ? kids[i].quick_deaths + 1 : 0;
                kids[i].pid = 0;
            }
        }
        for (int i = 0; i < workers; i++) {
            /* A worker that keeps dying at start is retried every few seconds, not in a loop. */
            if (kids[i].pid == 0 &&
                (kids[i].quick_deaths < 3 || time(NULL) - kids[i].started >= 5)) {
                kids[i].pid = start_worker(wargv, &orig);
                kids[i].started = time(NULL);
            }
        }
    }
    cml_log(CML_LOG_INFO, "supervisor_stopping", NULL);
    for (int i = 0; i < workers; i++)
        if (kids[i].pid > 0)
            kill(kids[i].pid, SIGTERM);
    time_t deadline = time(NULL) + 10;
    int alive = workers;
    while (alive > 0 && time(NULL) < deadline) {
        alive = 0;
        for (int i = 0; i < workers; i++) {
            if (kids[i].pid > 0 && waitpid(kids[i].pid, NULL, WNOHANG) == kids[i].pid)
                kids[i].pid = 0;
            alive += kids[i].pid > 0;
        }
        struct timespec nap = {0, 50 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    for (int i = 0; i < workers; i++)
        if (kids[i].pid > 0) {
            kill(kids[i].pid, SIGKILL);
            waitpid(kids[i].pid, NULL, 0);
        }
    free(wargv);
    return EXIT_SUCCESS;
}
