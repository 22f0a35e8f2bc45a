/* Who may call what: the admin key (compared by SHA-256 in constant time) and CORS origins. */
#ifndef CML_ACCESS_H
#define CML_ACCESS_H

#include <stdbool.h>

#include "ops/service_config.h"

typedef struct access_policy {
    unsigned char api_key_sha256[32];
    bool have_api_key;
    char cors[1024]; /* ",origin1,origin2," for matching, or "" */
    bool cors_any;
} access_policy;

/* From the configuration's api_key and cors_allowed_origins. */
void access_policy_init(access_policy *p, const cml_config *cfg);

/* True for an IPv4 127/8 address, ::1 or an IPv4-mapped 127/8 address. */
bool access_is_loopback(const char *addr);

/* True when presented is the configured key. */
bool access_key_matches(const access_policy *p, const char *presented);

/* True when the Origin may read the answer (admin routes never answer a wildcard). */
bool access_origin_allowed(const access_policy *p, const char *origin, bool admin);

#endif
