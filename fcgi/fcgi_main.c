/*
 * cultivate-ml-fcgi: the FastCGI program. spawn-fcgi hands it the listening
 * socket as fd 0; it serves with a pool of threads, each blocked in
 * FCGX_Accept_r. SIGTERM/SIGINT are blocked in every thread and taken by
 * sigwait in main, which wakes the accepting threads by shutting the
 * listening socket down (libfcgi's own handler only sets a flag) and joins
 * them once their requests in flight are answered.
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcgiapp.h>
#include <getopt.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/cml_alloc.h"
#include "base/parse_number.h"
#include "handlers.h"
#include "router.h"
#include "service/service.h"
#include "ops/service_log.h"
#include "supervisor.h"

static service svc;
static access_policy policy;

static void *worker(void *arg) {
    (void)arg;
    FCGX_Request req;
    if (FCGX_InitRequest(&req, 0, 0) != 0)
        return NULL;
    while (FCGX_Accept_r(&req) >= 0) {
        router_serve(&svc, &policy, &req);
        FCGX_Finish_r(&req);
        handlers_after_answer(&svc); /* the answer is out: shadow scoring costs it nothing */
    }
    FCGX_Free(&req, 1);
    handlers_after_answer(&svc);
    handlers_thread_release();
    return NULL;
}

static void usage(FILE *out) {
    fprintf(out,
            "Usage: cultivate-ml-fcgi [-c CONFIG] [--workers N] [--check-config] [--version]\n"
            "Runs under spawn-fcgi, which passes the FastCGI socket as standard input.\n"
            "  -c, --config FILE   configuration file (default %s/cultivate-ml.conf)\n"
            "  -w, --workers N     supervise N worker processes, replacing any that dies\n"
            "      --check-config  validate the configuration, print it and exit\n"
            "  -V, --version       show the version\n",
            CML_SYSCONFDIR);
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"check-config", no_argument, NULL, 'k'},
        {"version", no_argument, NULL, 'V'},      {"workers", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    /* Training at start-up runs XGBoost's OpenMP threads: let them sleep when idle. */
    setenv("OMP_WAIT_POLICY", "passive", 0);
    const char *config_path = CML_SYSCONFDIR "/cultivate-ml.conf";
    bool explicit_config = false, check_only = false;
    int c;
    long long workers = 0;
    while ((c = getopt_long(argc, argv, "c:w:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'w':
            if (!cml_parse_int(optarg, 1, 64, &workers)) {
                fprintf(stderr, "cultivate-ml-fcgi: --workers wants 1 to 64\n");
                return 2;
            }
            break;
        case 'c':
            config_path = optarg;
            explicit_config = true;
            break;
        case 'k':
            check_only = true;
            break;
        case 'V':
            printf("cultivate-ml-fcgi %s\n", PACKAGE_VERSION);
            return EXIT_SUCCESS;
        case 'h':
            usage(stdout);
            return EXIT_SUCCESS;
        default:
            usage(stderr);
            return 2;
        }
    }
    cml_diag diag = {{0}};
    if (cml_config_load(&svc.cfg, config_path, !explicit_config, &diag) != CML_OK) {
        fprintf(stderr, "cultivate-ml-fcgi: configuration: %s\n", diag.msg);
        return EXIT_FAILURE;
    }
    if (check_only) {
        cml_config_dump(&svc.cfg, stdout);
        cml_config_release(&svc.cfg);
        return EXIT_SUCCESS;
    }
    cml_log_configure((cml_log_level)svc.cfg.log_level, (cml_log_format)svc.cfg.log_format);
    if (workers > 0) {
        cml_config_release(&svc.cfg);
        return supervise((int)workers, argc, argv);
    }

    /* Every thread inherits this mask; only sigwait below sees the signals. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (FCGX_Init() != 0) {
        fprintf(stderr, "cultivate-ml-fcgi: FastCGI initialisation failed\n");
        return EXIT_FAILURE;
    }
    access_policy_init(&policy, &svc.cfg);
    if (service_start(&svc, &diag) != CML_OK) {
        cml_log(CML_LOG_ERROR, "start_failed", "reason", diag.msg, NULL);
        return EXIT_FAILURE;
    }
    size_t n = (size_t)svc.cfg.threads;
    pthread_t *threads = cml_calloc(n, sizeof(pthread_t));
    if (threads == NULL)
        return EXIT_FAILURE;
    char nthreads[16];
    snprintf(nthreads, sizeof nthreads, "%zu", n);
    cml_log(CML_LOG_INFO, "started", "threads", nthreads, "model_type",
            cml_model_type_name((cml_model_type)svc.cfg.model_type), "storage",
            svc.cfg.use_azure_storage ? "azure" : "local", NULL);
    for (size_t i = 0; i < n; i++)
        pthread_create(&threads[i], NULL, worker, NULL);

    int sig = 0;
    sigwait(&stop, &sig);
    cml_log(CML_LOG_INFO, "stopping", "signal", strsignal(sig), NULL);
    FCGX_ShutdownPending();
    shutdown(0, SHUT_RDWR); /* wakes every thread blocked in accept */
    close(0);
    for (size_t i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    cml_free(threads);
    service_stop(&svc);
    curl_global_cleanup();
    cml_log(CML_LOG_INFO, "stopped", NULL);
    return EXIT_SUCCESS;
}
