/* The route table and the request pipeline: limits, auth, CORS, dispatch, log line, metrics. */
#ifndef CML_ROUTER_H
#define CML_ROUTER_H

#include "access.h"
#include "http.h"
#include "service/service.h"

/* Serves one accepted FastCGI request from start to finish. */
void router_serve(service *svc, const access_policy *access, FCGX_Request *fcgi);

/*
 * The gate of heavy routes (batches, transcripts): a worker serves at most threads - 1 of them
 * at once (1 with a single thread), so a request thread stays free for short requests; one
 * beyond that is answered 503 with Retry-After. enter is true when a slot was taken, and leave
 * gives it back.
 */
bool router_heavy_enter(long long threads);
void router_heavy_leave(void);

#endif
