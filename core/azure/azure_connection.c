#include "config.h"

#include "azure/azure_connection.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "azure/azure_auth.h"
#include "base/cml_alloc.h"

enum {
    K_PROTOCOL,
    K_ACCOUNT_NAME,
    K_ACCOUNT_KEY,
    K_ENDPOINT_SUFFIX,
    K_BLOB_ENDPOINT,
    K_SAS,
    K_DEV_STORAGE,
    K_DEV_PROXY,
    K_QUEUE_ENDPOINT,
    K_TABLE_ENDPOINT,
    K_FILE_ENDPOINT,
    K__COUNT
};

static const char *const key_names[K__COUNT] = {
    [K_PROTOCOL] = "DefaultEndpointsProtocol",
    [K_ACCOUNT_NAME] = "AccountName",
    [K_ACCOUNT_KEY] = "AccountKey",
    [K_ENDPOINT_SUFFIX] = "EndpointSuffix",
    [K_BLOB_ENDPOINT] = "BlobEndpoint",
    [K_SAS] = "SharedAccessSignature",
    [K_DEV_STORAGE] = "UseDevelopmentStorage",
    [K_DEV_PROXY] = "DevelopmentStorageProxyUri",
    [K_QUEUE_ENDPOINT] = "QueueEndpoint",
    [K_TABLE_ENDPOINT] = "TableEndpoint",
    [K_FILE_ENDPOINT] = "FileEndpoint",
};

void cml_az_conn_free(cml_az_conn *c) {
    if (c == NULL)
        return;
    if (c->key != NULL)
        OPENSSL_cleanse(c->key, c->key_len);
    if (c->sas != NULL)
        OPENSSL_cleanse(c->sas, strlen(c->sas));
    cml_free(c->key);
    cml_free(c->sas);
    cml_free(c->account);
    cml_free(c->origin);
    cml_free(c->base_path);
    cml_free(c);
}

cml_az_conn *cml_az_conn_dup(const cml_az_conn *c) {
    if (c == NULL)
        return NULL;
    cml_az_conn *d = cml_calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    *d = *c;
    d->account = c->account ? cml_strdup(c->account) : NULL;
    d->sas = c->sas ? cml_strdup(c->sas) : NULL;
    d->origin = cml_strdup(c->origin);
    d->base_path = cml_strdup(c->base_path ? c->base_path : "");
    d->key = NULL;
    if (c->key != NULL) {
        d->key = cml_malloc(c->key_len);
        if (d->key != NULL)
            memcpy(d->key, c->key, c->key_len);
    }
    if ((c->account && !d->account) || (c->sas && !d->sas) || !d->origin || !d->base_path ||
        (c->key && !d->key)) {
        cml_az_conn_free(d);
        return NULL;
    }
    return d;
}

char *cml_az_conn_endpoint(const cml_az_conn *c) {
    size_t n = strlen(c->origin) + strlen(c->base_path) + 1;
    char *s = cml_malloc(n);
    if (s != NULL)
        snprintf(s, n, "%s%s", c->origin, c->base_path);
    return s;
}

/* A key name that cannot be a pasted secret: short and letters only. */
static bool echo_safe(const char *s, size_t n) {
    if (n == 0 || n > 40)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalpha((unsigned char)s[i]))
            return false;
    return true;
}

static bool account_name_ok(const char *s) {
    size_t n = strlen(s);
    if (n < 3 || n > 24)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]))
            return false;
    return true;
}

static bool host_chars_ok(const char *s, size_t n) {
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '.')
            return false;
    }
    return s[0] != '.' && s[0] != '-';
}

static bool host_is_ip_or_local(const char *host) {
    if (host[0] == '[' || strcasecmp(host, "localhost") == 0)
        return true;
    int dots = 0;
    for (const char *p = host; *p; p++) {
        if (*p == '.')
            dots++;
        else if (!isdigit((unsigned char)*p))
            return false;
    }
    return dots == 3;
}

/* A parsed http(s) URL: scheme, host (with [] for IPv6), port or -1, path without trailing '/'. */
typedef struct url_parts {
    bool https;
    char host[256];
    long port;
    char path[256];
} url_parts;

/* Splits an endpoint URL; false if it is not http(s)://host[:port][/path] without query/userinfo.
 */
static bool parse_endpoint_url(const char *url, url_parts *u) {
    memset(u, 0, sizeof(*u));
    u->port = -1;
    const char *p;
    if (strncasecmp(url, "https://", 8) == 0) {
        u->https = true;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else {
        return false;
    }
    if (strpbrk(p, "?#@ \t\\") != NULL)
        return false;
    size_t auth_len = strcspn(p, "/");
    const char *path = p + auth_len;
    const char *host_end;
    if (p[0] == '[') {
        const char *close = memchr(p, ']', auth_len);
        if (close == NULL || close == p + 1)
            return false;
        for (const char *q = p + 1; q < close; q++)
            if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.')
                return false;
        host_end = close + 1;
    } else {
        host_end = memchr(p, ':', auth_len);
        if (host_end == NULL)
            host_end = p + auth_len;
        if (!host_chars_ok(p, (size_t)(host_end - p)))
            return false;
    }
    size_t host_len = (size_t)(host_end - p);
    if (host_len == 0 || host_len >= sizeof(u->host))
        return false;
    memcpy(u->host, p, host_len);
    u->host[host_len] = '\0';
    if (host_end < p + auth_len) {
        if (*host_end != ':' || host_end + 1 == p + auth_len)
            return false;
        long port = 0;
        for (const char *q = host_end + 1; q < p + auth_len; q++) {
            if (!isdigit((unsigned char)*q))
                return false;
            port = port * 10 + (*q - '0');
            if (port > 65535)
                return false;
        }
        if (port == 0)
            return false;
        u->port = port;
    }
    size_t path_len = strlen(path);
    while (path_len > 0 && path[path_len - 1] == '/')
        path_len--;
    if (path_len >= sizeof(u->path))
        return false;
    memcpy(u->path, path, path_len);
    u->path[path_len] = '\0';
    for (const char *q = u->path; *q; q++)
        if (*q == '/' && q[1] == '/')
            return false;
    return true;
}

static char *make_origin(const url_parts *u) {
    char buf[300];
    if (u->port > 0)
        snprintf(buf, sizeof(buf), "%s://%s:%ld", u->https ? "https" : "http", u->host, u->port);
    else
        snprintf(buf, sizeof(buf), "%s://%s", u->https ? "https" : "http", u->host);
    return cml_strdup(buf);
}

/* Sets account, origin and base_path from a BlobEndpoint or dev-storage URL. */
static cml_err apply_endpoint(cml_az_conn *c, const url_parts *u, const char *account_name,
                              const char *key_name, cml_diag *diag) {
    const char *acct = NULL;
    char host_acct[64] = "";
    if (u->path[0] != '\0') {
        /* Path-style: the account is the one path segment. */
        const char *seg = u->path + 1;
        if (strchr(seg, '/') != NULL || !account_name_ok(seg))
            return cml_diag_set(diag, CML_ERR_CONFIG,
                                "%s: the path must be one account name (/ACCOUNT)", key_name);
        if (account_name != NULL && strcmp(account_name, seg) != 0)
            return cml_diag_set(diag, CML_ERR_CONFIG,
                                "AccountName conflicts with the account in the path of %s",
                                key_name);
        acct = seg;
        c->path_style = true;
    } else if (host_is_ip_or_local(u->host)) {
        if (account_name == NULL)
            return cml_diag_set(diag, CML_ERR_CONFIG,
                                "%s is a path-style endpoint (IP address or localhost): add "
                                "/ACCOUNT to it or give AccountName",
                                key_name);
        acct = account_name;
        c->path_style = true;
    } else {
        const char *dot = strchr(u->host, '.');
        if (dot != NULL && strncasecmp(dot, ".blob.", 6) == 0 &&
            (size_t)(dot - u->host) < sizeof(host_acct)) {
            memcpy(host_acct, u->host, (size_t)(dot - u->host));
            host_acct[dot - u->host] = '\0';
            for (char *q = host_acct; *q; q++)
                *q = (char)tolower((unsigned char)*q);
            if (account_name != NULL && strcmp(account_name, host_acct) != 0)
                return cml_diag_set(diag, CML_ERR_CONFIG,
                                    "AccountName conflicts with the account in the host of %s",
                                    key_name);
        }
        acct = account_name ? account_name : (host_acct[0] ? host_acct : NULL);
        c->path_style = false;
    }
    c->https = u->https;
    c->origin = make_origin(u);
    if (acct != NULL)
        c->account = cml_strdup(acct);
    if (c->path_style) {
        size_t n = strlen(acct) + 2;
        c->base_path = cml_malloc(n);
        if (c->base_path != NULL)
            snprintf(c->base_path, n, "/%s", acct);
    } else {
        c->base_path = cml_strdup("");
    }
    if (c->origin == NULL || c->base_path == NULL || (acct != NULL && c->account == NULL))
        return CML_ERR_NOMEM;
    return CML_OK;
}

cml_err cml_az_conn_parse(const char *text, cml_az_conn **out, cml_diag *diag) {
    cml_err err = CML_OK;
    char *copy = NULL;
    const char *val[K__COUNT] = {0};
    cml_az_conn *c = NULL;
    *out = NULL;

    if (text == NULL) {
        err = cml_diag_set(diag, CML_ERR_CONFIG, "connection string is empty");
        goto done;
    }
    copy = cml_strdup(text);
    c = cml_calloc(1, sizeof(*c));
    if (copy == NULL || c == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    /* Split into Key=Value segments. */
    int segment = 0, n_keys = 0;
    char *save = NULL;
    for (char *seg = strtok_r(copy, ";", &save); seg != NULL; seg = strtok_r(NULL, ";", &save)) {
        segment++;
        while (isspace((unsigned char)*seg))
            seg++;
        size_t len = strlen(seg);
        while (len > 0 && isspace((unsigned char)seg[len - 1]))
            seg[--len] = '\0';
        if (len == 0)
            continue;
        char *eq = strchr(seg, '=');
        if (eq == NULL) {
            err =
                cml_diag_set(diag, CML_ERR_CONFIG,
                             "connection string: segment %d is not Key=Value (not shown)", segment);
            goto done;
        }
        char *key = seg, *value = eq + 1;
        char *kend = eq;
        while (kend > key && isspace((unsigned char)kend[-1]))
            kend--;
        *kend = '\0';
        while (isspace((unsigned char)*value))
            value++;
        int k = -1;
        for (int i = 0; i < K__COUNT; i++)
            if (strcasecmp(key, key_names[i]) == 0)
                k = i;
        if (k < 0) {
            if (echo_safe(key, strlen(key)))
                err =
                    cml_diag_set(diag, CML_ERR_CONFIG, "connection string: unknown key '%s'", key);
            else
                err = cml_diag_set(diag, CML_ERR_CONFIG,
                                   "connection string: unknown key in segment %d (not shown)",
                                   segment);
            goto done;
        }
        if (val[k] != NULL) {
            err = cml_diag_set(diag, CML_ERR_CONFIG, "connection string: %s is given twice",
                               key_names[k]);
            goto done;
        }
        if (*value == '\0') {
            err =
                cml_diag_set(diag, CML_ERR_CONFIG, "connection string: %s is empty", key_names[k]);
            goto done;
        }
        val[k] = value;
        n_keys++;
    }
    if (n_keys == 0) {
        err = cml_diag_set(diag, CML_ERR_CONFIG, "connection string is empty");
        goto done;
    }

    const char *account_name = val[K_ACCOUNT_NAME];
    if (account_name != NULL && !account_name_ok(account_name)) {
        err = cml_diag_set(diag, CML_ERR_CONFIG,
                           "connection string: AccountName must be 3 to 24 lower-case letters "
                           "and digits");
        goto done;
    }
    bool https = true;
    if (val[K_PROTOCOL] != NULL) {
        if (strcasecmp(val[K_PROTOCOL], "https") == 0)
            https = true;
        else if (strcasecmp(val[K_PROTOCOL], "http") == 0)
            https = false;
        else {
            err = cml_diag_set(diag, CML_ERR_CONFIG,
                               "connection string: DefaultEndpointsProtocol must be http or https");
            goto done;
        }
    }

    if (val[K_DEV_STORAGE] != NULL) {
        if (strcasecmp(val[K_DEV_STORAGE], "true") != 0) {
            err = cml_diag_set(diag, CML_ERR_CONFIG,
                               "connection string: UseDevelopmentStorage must be true (or absent)");
            goto done;
        }
        static const int not_with_dev[] = {K_ACCOUNT_NAME, K_ACCOUNT_KEY, K_SAS, K_ENDPOINT_SUFFIX,
                                           K_PROTOCOL};
        for (size_t i = 0; i < sizeof(not_with_dev) / sizeof(not_with_dev[0]); i++) {
            if (val[not_with_dev[i]] != NULL) {
                err =
                    cml_diag_set(diag, CML_ERR_CONFIG,
                                 "connection string: %s conflicts with UseDevelopmentStorage=true",
                                 key_names[not_with_dev[i]]);
                goto done;
            }
        }
        if (val[K_DEV_PROXY] != NULL && val[K_BLOB_ENDPOINT] != NULL) {
            err = cml_diag_set(diag, CML_ERR_CONFIG,
                               "connection string: BlobEndpoint conflicts with "
                               "DevelopmentStorageProxyUri");
            goto done;
        }
        url_parts u;
        const char *which = val[K_BLOB_ENDPOINT] ? "BlobEndpoint" : "DevelopmentStorageProxyUri";
        const char *url = val[K_BLOB_ENDPOINT]
                              ? val[K_BLOB_ENDPOINT]
                              : (val[K_DEV_PROXY] ? val[K_DEV_PROXY] : "http://127.0.0.1:10000");
        if (!parse_endpoint_url(url, &u)) {
            err = cml_diag_set(diag, CML_ERR_CONFIG,
                               "connection string: %s must be http(s)://host[:port][/account] "
                               "without query or credentials",
                               which);
            goto done;
        }
        if (val[K_BLOB_ENDPOINT] == NULL && u.path[0] != '\0') {
            err = cml_diag_set(diag, CML_ERR_CONFIG,
                               "connection string: DevelopmentStorageProxyUri must have no path");
            goto done;
        }
        if (u.port < 0 && val[K_BLOB_ENDPOINT] == NULL)
            u.port = 10000;
        if (u.path[0] == '\0')
            snprintf(u.path, sizeof(u.path), "/%s", CML_AZ_DEV_ACCOUNT);
        else if (strcmp(u.path + 1, CML_AZ_DEV_ACCOUNT) != 0) {
            err = cml_diag_set(diag, CML_ERR_CONFIG,
                               "connection string: with UseDevelopmentStorage=true the account in "
                               "BlobEndpoint must be %s",
                               CML_AZ_DEV_ACCOUNT);
            goto done;
        }
        err = apply_endpoint(c, &u, CML_AZ_DEV_ACCOUNT, which, diag);
        if (err != CML_OK)
            goto done;
        err = cml_base64_decode(CML_AZ_DEV_KEY, &c->key, &c->key_len);
        if (err != CML_OK)
            goto done;
        c->cred = CML_AZ_CRED_SHARED_KEY;
        c->dev_storage = true;
        goto ok;
    }

    if (val[K_DEV_PROXY] != NULL) {
        err = cml_diag_set(diag, CML_ERR_CONFIG,
                           "connection string: DevelopmentStorageProxyUri needs "
                           "UseDevelopmentStorage=true");
        goto done;
    }
    if (val[K_ACCOUNT_KEY] != NULL && val[K_SAS] != NULL) {
        err = cml_diag_set(diag, CML_ERR_CONFIG,
                           "connection string: AccountKey conflicts with SharedAccessSignature "
                           "(give one credential)");
        goto done;
    }
    if (val[K_ACCOUNT_KEY] != NULL && account_name == NULL) {
        err = cml_diag_set(diag, CML_ERR_CONFIG,
                           "connection string: AccountName is missing (AccountKey needs it)");
        goto done;
    }
    if (val[K_ACCOUNT_KEY] != NULL) {
        err = cml_base64_decode(val[K_ACCOUNT_KEY], &c->key, &c->key_len);
        if (err == CML_ERR_INVALID)
            err = cml_diag_set(diag, CML_ERR_CONFIG,
                               "connection string: AccountKey is not valid base64 (value not "
                               "shown)");
        if (err != CML_OK)
            goto done;
        c->cred = CML_AZ_CRED_SHARED_KEY;
    } else if (val[K_SAS] != NULL) {
        cml_diag sas_diag = {{0}};
        err = cml_az_sas_normalize(val[K_SAS], &c->sas, &sas_diag);
        if (err != CML_OK) {
            err = cml_diag_set(diag, err, "connection string: %s", sas_diag.msg);
            goto done;
        }
        c->cred = CML_AZ_CRED_SAS;
    }

    if (val[K_BLOB_ENDPOINT] != NULL) {
        if (val[K_ENDPOINT_SUFFIX] != NULL) {
            err = cml_diag_set(diag, CML_ERR_CONFIG,
                               "connection string: BlobEndpoint conflicts with EndpointSuffix "
                               "(give one of them)");
            goto done;
        }
        url_parts u;
        if (!parse_endpoint_url(val[K_BLOB_ENDPOINT], &u)) {
            err = cml_diag_set(diag, CML_ERR_CONFIG,
                               "connection string: BlobEndpoint must be http(s)://host[:port][/"
                               "account] without query or credentials");
            goto done;
        }
        if (val[K_PROTOCOL] != NULL && u.https != https) {
            err = cml_diag_set(diag, CML_ERR_CONFIG,
                               "connection string: DefaultEndpointsProtocol conflicts with the "
                               "scheme of BlobEndpoint");
            goto done;
        }
        err = apply_endpoint(c, &u, account_name, "BlobEndpoint", diag);
        if (err != CML_OK)
            goto done;
    } else {
        if (account_name == NULL) {
            err = cml_diag_set(diag, CML_ERR_CONFIG,
                               "connection string: AccountName is missing (or give BlobEndpoint)");
            goto done;
        }
        const char *suffix = val[K_ENDPOINT_SUFFIX] ? val[K_ENDPOINT_SUFFIX] : "core.windows.net";
        if (!host_chars_ok(suffix, strlen(suffix)) || strchr(suffix, '.') == NULL ||
            strlen(suffix) > 200) {
            err = cml_diag_set(diag, CML_ERR_CONFIG,
                               "connection string: EndpointSuffix must be a DNS suffix such as "
                               "core.windows.net");
            goto done;
        }
        url_parts u = {.https = https, .port = -1};
        snprintf(u.host, sizeof(u.host), "%s.blob.%s", account_name, suffix);
        err = apply_endpoint(c, &u, account_name, "EndpointSuffix", diag);
        if (err != CML_OK)
            goto done;
    }
    if (c->cred == CML_AZ_CRED_SHARED_KEY && c->account == NULL) {
        err = cml_diag_set(diag, CML_ERR_CONFIG, "connection string: AccountName is missing");
        goto done;
    }
ok:
    *out = c;
    c = NULL;
done:
    if (copy != NULL) {
        OPENSSL_cleanse(copy, strlen(text));
        cml_free(copy);
    }
    cml_az_conn_free(c);
    return err;
}
