/* The route table and the request pipeline: limits, auth, CORS, dispatch, log line, metrics. */
#ifndef CML_ROUTER_H
#define CML_ROUTER_H

#include "access.h"
#include "http.h"
#include "service/service.h"

/* Serves one accepted FastCGI request from start to finish. */
void router_serve(service *svc, const access_policy *access, FCGX_Request *fcgi);

#endif
