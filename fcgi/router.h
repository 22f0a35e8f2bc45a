/* The route table and the request pipeline: limits, auth, CORS, dispatch, log line, metrics. */
#ifndef CML_ROUTER_H
#define CML_ROUTER_H

#include "http.h"
#include "service.h"

typedef enum handler_result {
    HANDLER_DONE,  /* the handler answered */
    HANDLER_FAULT, /* an internal fault: the router answers 500 if nothing was sent */
} handler_result;

typedef handler_result (*route_handler)(service *svc, http_req *r, const char *path_param);

/* Serves one accepted FastCGI request from start to finish. */
void router_serve(service *svc, FCGX_Request *fcgi);

/* Frees what the handlers keep per request thread; called as a thread ends. */
void handlers_thread_release(void);
/* The calling request thread's feature scratch, made on first use; NULL on OOM. */
cml_feature_scratch *handlers_scratch(void);

/* Handlers, by area. */
handler_result handle_classify_v1(service *svc, http_req *r, const char *param);
handler_result handle_transcripts_analyze(service *svc, http_req *r, const char *param);
handler_result handle_classify_classic(service *svc, http_req *r, const char *param);
handler_result handle_classify_ensemble(service *svc, http_req *r, const char *param);
handler_result handle_batch_v1(service *svc, http_req *r, const char *param);
handler_result handle_batch_v2(service *svc, http_req *r, const char *param);
handler_result handle_feedback(service *svc, http_req *r, const char *param);
handler_result handle_select(service *svc, http_req *r, const char *param);
handler_result handle_current(service *svc, http_req *r, const char *param);
handler_result handle_models(service *svc, http_req *r, const char *param);
handler_result handle_health(service *svc, http_req *r, const char *param);
handler_result handle_ready(service *svc, http_req *r, const char *param);
handler_result handle_metrics(service *svc, http_req *r, const char *param);
handler_result handle_retrain(service *svc, http_req *r, const char *param);
handler_result handle_training_status(service *svc, http_req *r, const char *param);
handler_result handle_evaluate(service *svc, http_req *r, const char *param);
handler_result handle_history(service *svc, http_req *r, const char *param);
handler_result handle_comparison(service *svc, http_req *r, const char *param);

#endif
