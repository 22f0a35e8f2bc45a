/* The route handlers, by area: each maps a core result to an answer. */
#ifndef CML_HANDLERS_H
#define CML_HANDLERS_H

#include "http.h"
#include "service/service.h"

typedef enum handler_result {
    HANDLER_DONE,  /* the handler answered */
    HANDLER_FAULT, /* an internal fault: the router answers 500 if nothing was sent (503
                      state_unavailable while the state database cannot be reached) */
} handler_result;

/* The answer to a failed state call: state_unavailable when the database cannot be reached,
 * else the handler's own error. */
static inline api_error state_api_error(cml_err err, api_error otherwise) {
    return err == CML_ERR_UNAVAILABLE ? API_ERR_STATE_UNAVAILABLE : otherwise;
}

/* What the route table hands a handler besides the request. */
typedef struct route_args {
    const char *param;   /* the path segment of a route's first "{...}", or NULL */
    const char *param2;  /* of its second "{...}", or NULL */
    cml_model_type type; /* the model type the route serves, or 0 for the active one */
    bool query_text;     /* the text may come as ?text= when there is no body */
} route_args;

typedef handler_result (*route_handler)(service *svc, http_req *r, const route_args *args);

/* Frees what the handlers keep per request thread; called as a thread ends. */
void handlers_thread_release(void);
/* Runs what the last handler left for after its answer was sent (e.g. shadow scoring); the
   accept loop calls it after FCGX_Finish_r, so it never delays an answer. */
void handlers_after_answer(service *svc);
/* The calling request thread's feature scratch, made on first use; NULL on OOM. */
cml_feature_scratch *handlers_scratch(void);

/* Notes the model that answered, for the log line and the metrics. */
void handlers_note_model(http_req *r, const cml_model *m);

/* Classification (handlers_classify.c). */
handler_result handle_classify_v1(service *svc, http_req *r, const route_args *args);
handler_result handle_classify_client(service *svc, http_req *r, const route_args *args);
handler_result handle_batch(service *svc, http_req *r, const route_args *args);
handler_result handle_feedback(service *svc, http_req *r, const route_args *args);
/* Transcripts (handlers_transcripts.c). */
handler_result handle_transcripts_analyze(service *svc, http_req *r, const route_args *args);
/* Models (handlers_models.c). */
handler_result handle_select(service *svc, http_req *r, const route_args *args);
handler_result handle_current(service *svc, http_req *r, const route_args *args);
handler_result handle_models(service *svc, http_req *r, const route_args *args);
/* Operations (handlers_ops.c). */
handler_result handle_health(service *svc, http_req *r, const route_args *args);
handler_result handle_ready(service *svc, http_req *r, const route_args *args);
handler_result handle_metrics(service *svc, http_req *r, const route_args *args);
handler_result handle_openapi(service *svc, http_req *r, const route_args *args);
/* The Open Inference Protocol, v2 REST (handlers_oip.c). */
handler_result handle_oip_live(service *svc, http_req *r, const route_args *args);
handler_result handle_oip_server_ready(service *svc, http_req *r, const route_args *args);
handler_result handle_oip_server_metadata(service *svc, http_req *r, const route_args *args);
handler_result handle_oip_model_metadata(service *svc, http_req *r, const route_args *args);
handler_result handle_oip_model_ready(service *svc, http_req *r, const route_args *args);
handler_result handle_oip_infer(service *svc, http_req *r, const route_args *args);
/* Training and evaluation (handlers_training.c). */
handler_result handle_retrain(service *svc, http_req *r, const route_args *args);
handler_result handle_training_status(service *svc, http_req *r, const route_args *args);
handler_result handle_evaluate(service *svc, http_req *r, const route_args *args);
handler_result handle_history(service *svc, http_req *r, const route_args *args);
handler_result handle_comparison(service *svc, http_req *r, const route_args *args);
handler_result handle_live_history(service *svc, http_req *r, const route_args *args);

#endif
