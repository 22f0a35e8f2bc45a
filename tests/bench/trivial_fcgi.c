/*
 * The benchmarks' yardstick: a FastCGI program that answers every request
 * with a fixed JSON body, threaded like cultivate-ml-fcgi (FCGX_Accept_r in
 * FCGI_THREADS threads). What the real service costs above this is ours.
 */
#include "config.h"

#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

static const char answer[] = "Status: 200 OK\r\nContent-Type: application/json\r\n"
                             "Content-Length: 56\r\n\r\n"
                             "{\"classification\":\"OEQ\",\"confidence\":0.9,\"model\":\"none\"}";

static void *serve(void *arg) {
    (void)arg;
    FCGX_Request req;
    FCGX_InitRequest(&req, 0, 0);
    while (FCGX_Accept_r(&req) >= 0) {
        char buf[4096];
        while (FCGX_GetStr(buf, sizeof buf, req.in) > 0)
            ;
        FCGX_PutStr(answer, (int)sizeof answer - 1, req.out);
        FCGX_Finish_r(&req);
    }
    return NULL;
}

int main(void) {
    const char *t = getenv("FCGI_THREADS");
    int n = t ? (int)strtol(t, NULL, 10) : 2;
    if (n < 1 || n > 64)
        n = 2;
    pthread_t threads[64];
    /* libfcgi catches SIGTERM only to flag a shutdown that a blocked accept never sees: the
       threads block it and this one waits for it, as cultivate-ml-fcgi does. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    FCGX_Init();
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    for (int i = 0; i < n; i++)
        pthread_create(&threads[i], NULL, serve, NULL);
    int sig;
    sigwait(&stop, &sig);
    return 0;
}
