#include "config.h"

#include "access.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

static void parse_cors(access_policy *p, const char *s) {
    size_t o = 0;
    p->cors[0] = '\0';
    p->cors_any = false;
    while (*s) {
        while (*s == ' ' || *s == ',')
            s++;
        size_t n = strcspn(s, ", ");
        if (n == 1 && *s == '*')
            p->cors_any = true;
        else if (n > 0 && o + n + 3 < sizeof p->cors)
            o += (size_t)snprintf(p->cors + o, sizeof p->cors - o, ",%.*s", (int)n, s);
        s += n;
    }
    if (o > 0)
        snprintf(p->cors + o, sizeof p->cors - o, ",");
}

void access_policy_init(access_policy *p, const cml_config *cfg) {
    memset(p, 0, sizeof(*p));
    parse_cors(p, cfg->cors_allowed_origins ? cfg->cors_allowed_origins : "");
    if (cfg->api_key && cfg->api_key[0]) {
        unsigned int len = 0;
        p->have_api_key = EVP_Digest(cfg->api_key, strlen(cfg->api_key), p->api_key_sha256, &len,
                                     EVP_sha256(), NULL) == 1;
    }
}

bool access_is_loopback(const char *addr) {
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, addr, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, addr, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6))
            return true;
        if (IN6_IS_ADDR_V4MAPPED(&a6))
            return a6.s6_addr[12] == 127;
    }
    return false;
}

/* Constant-time check of the presented key against the configured one (by their SHA-256). */
bool access_key_matches(const access_policy *p, const char *presented) {
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (presented == NULL ||
        EVP_Digest(presented, strlen(presented), h, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return false;
    return CRYPTO_memcmp(h, p->api_key_sha256, 32) == 0;
}

bool access_origin_allowed(const access_policy *p, const char *origin, bool admin) {
    char needle[512];
    if (origin == NULL)
        return false;
    snprintf(needle, sizeof needle, ",%s,", origin);
    if (p->cors[0] && strstr(p->cors, needle) != NULL)
        return true;
    return p->cors_any && !admin; /* admin routes never answer a wildcard origin */
}
