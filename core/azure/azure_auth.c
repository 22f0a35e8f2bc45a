#include "config.h"

#include "azure/azure_auth.h"

#include <ctype.h>
#include <limits.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/byte_buffer.h"
#include "base/cml_alloc.h"
#include "base/parse_number.h"

/* ---- string building on cml_buf -------------------------------------------- */

static void buf_str(cml_buf *b, const char *s) { cml_buf_put(b, s, strlen(s)); }

/* Terminates b and hands its bytes over as a string (caller frees), NULL if any append failed. */
static char *buf_take_str(cml_buf *b) {
    cml_buf_put_u8(b, 0);
    if (cml_buf_status(b) != CML_OK) {
        cml_buf_release(b);
        return NULL;
    }
    size_t len = 0;
    return (char *)cml_buf_take(b, &len);
}

/* ---- base64 ------------------------------------------------------------------ */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *cml_base64_encode(const void *data, size_t len) {
    const uint8_t *p = data;
    size_t out_len = 4 * ((len + 2) / 3);
    char *out = cml_malloc(out_len + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static int b64_value(char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

cml_err cml_base64_decode(const char *text, uint8_t **out, size_t *out_len) {
    cml_err err = CML_OK;
    uint8_t *buf = NULL;
    size_t len = text ? strlen(text) : 0;
    *out = NULL;
    *out_len = 0;
    if (len == 0 || len % 4 != 0) {
        err = CML_ERR_INVALID;
        goto done;
    }
    size_t pad = text[len - 1] == '=' ? (text[len - 2] == '=' ? 2 : 1) : 0;
    buf = cml_malloc(len / 4 * 3);
    if (buf == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t v = 0;
        for (size_t j = 0; j < 4; j++) {
            char c = text[i + j];
            int d;
            if (c == '=' && i + j >= len - pad)
                d = 0;
            else if ((d = b64_value(c)) < 0) {
                err = CML_ERR_INVALID;
                goto done;
            }
            v = v << 6 | (uint32_t)d;
        }
        buf[o++] = (uint8_t)(v >> 16);
        buf[o++] = (uint8_t)(v >> 8);
        buf[o++] = (uint8_t)v;
    }
    *out_len = o - pad;
    *out = buf;
    buf = NULL;
done:
    cml_free(buf);
    return err;
}

/* ---- URL encoding ------------------------------------------------------------- */

static bool url_unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

char *cml_url_encode(const char *s, bool keep_slash) {
    static const char hex[] = "0123456789ABCDEF";
    cml_buf b = {0};
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (url_unreserved(*p) || (keep_slash && *p == '/')) {
            cml_buf_put_u8(&b, *p);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            cml_buf_put(&b, esc, 3);
        }
    }
    return buf_take_str(&b);
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes n bytes of s; a new string or NULL (malformed escape, %00, no memory). */
static char *url_decode_n(const char *s, size_t n) {
    cml_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            cml_buf_put_u8(&b, (uint8_t)s[i]);
            continue;
        }
        if (i + 2 >= n) {
            cml_buf_release(&b);
            return NULL;
        }
        int h = hex_value(s[i + 1]), l = hex_value(s[i + 2]);
        if (h < 0 || l < 0 || (h == 0 && l == 0)) {
            cml_buf_release(&b);
            return NULL;
        }
        cml_buf_put_u8(&b, (uint8_t)(h << 4 | l));
        i += 2;
    }
    return buf_take_str(&b);
}

char *cml_url_decode(const char *s) { return url_decode_n(s, strlen(s)); }

void cml_az_http_date(time_t t, char out[30]) {
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&t, &tm);
    char tmp[64];
    snprintf(tmp, sizeof(tmp), "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
             tm.tm_mday % 100, months[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000,
             tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100);
    memcpy(out, tmp, 29);
    out[29] = '\0';
}

/* ---- Shared Key ---------------------------------------------------------------- */

static const char *find_header(const cml_az_header *h, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (h[i].name != NULL && strcasecmp(h[i].name, name) == 0)
            return h[i].value ? h[i].value : "";
    return "";
}

typedef struct kv {
    char *name;
    char *value;
} kv;

static int kv_cmp(const void *a, const void *b) {
    const kv *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : strcmp(x->value, y->value);
}

static void kv_free_all(kv *v, size_t n) {
    for (size_t i = 0; v != NULL && i < n; i++) {
        cml_free(v[i].name);
        cml_free(v[i].value);
    }
    cml_free(v);
}

static void lower_in_place(char *s) {
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* Trims leading and trailing spaces and tabs: a new string or NULL. */
static char *trimmed_copy(const char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return cml_strndup(s, n);
}

cml_err cml_az_string_to_sign(const char *verb, const char *account, const char *path,
                              const char *query, const cml_az_header *headers, size_t n_headers,
                              char **out) {
    static const char *const standard[] = {"Content-Encoding",
                                           "Content-Language",
                                           "Content-Length",
                                           "Content-MD5",
                                           "Content-Type",
                                           "Date",
                                           "If-Modified-Since",
                                           "If-Match",
                                           "If-None-Match",
                                           "If-Unmodified-Since",
                                           "Range"};
    cml_err err = CML_OK;
    cml_buf b = {0};
    kv *hs = NULL, *qs = NULL;
    size_t n_hs = 0, n_qs = 0;
    *out = NULL;
    if (verb == NULL || account == NULL || path == NULL || path[0] != '/') {
        err = CML_ERR_INVALID;
        goto done;
    }
    buf_str(&b, verb);
    cml_buf_put_u8(&b, '\n');
    for (size_t i = 0; i < sizeof(standard) / sizeof(standard[0]); i++) {
        const char *v = find_header(headers, n_headers, standard[i]);
        if (strcmp(standard[i], "Content-Length") == 0 && strcmp(v, "0") == 0)
            v = "";
        buf_str(&b, v);
        cml_buf_put_u8(&b, '\n');
    }
    /* Canonicalized headers. */
    hs = cml_calloc(n_headers ? n_headers : 1, sizeof(kv));
    if (hs == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n_headers; i++) {
        if (headers[i].name == NULL || strncasecmp(headers[i].name, "x-ms-", 5) != 0)
            continue;
        hs[n_hs].name = cml_strdup(headers[i].name);
        hs[n_hs].value = trimmed_copy(headers[i].value ? headers[i].value : "");
        n_hs++;
        if (hs[n_hs - 1].name == NULL || hs[n_hs - 1].value == NULL) {
            err = CML_ERR_NOMEM;
            goto done;
        }
        lower_in_place(hs[n_hs - 1].name);
    }
    qsort(hs, n_hs, sizeof(kv), kv_cmp);
    for (size_t i = 0; i < n_hs; i++) {
        if (i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0) {
            cml_buf_put_u8(&b, ',');
        } else {
            if (i > 0)
                cml_buf_put_u8(&b, '\n');
            buf_str(&b, hs[i].name);
            cml_buf_put_u8(&b, ':');
        }
        buf_str(&b, hs[i].value);
    }
    if (n_hs > 0)
        cml_buf_put_u8(&b, '\n');
    /* Canonicalized resource. */
    cml_buf_put_u8(&b, '/');
    buf_str(&b, account);
    buf_str(&b, path);
    if (query != NULL && *query != '\0') {
        size_t cap = 1;
        for (const char *p = query; *p; p++)
            cap += *p == '&';
        qs = cml_calloc(cap, sizeof(kv));
        if (qs == NULL) {
            err = CML_ERR_NOMEM;
            goto done;
        }
        const char *p = query;
        while (*p) {
            const char *end = strchr(p, '&');
            if (end == NULL)
                end = p + strlen(p);
            if (end > p) {
                const char *eq = memchr(p, '=', (size_t)(end - p));
                const char *name_end = eq ? eq : end;
                qs[n_qs].name = url_decode_n(p, (size_t)(name_end - p));
                qs[n_qs].value = eq ? url_decode_n(eq + 1, (size_t)(end - eq - 1)) : cml_strdup("");
                n_qs++;
                if (qs[n_qs - 1].name == NULL || qs[n_qs - 1].value == NULL) {
                    err = CML_ERR_INVALID;
                    goto done;
                }
                lower_in_place(qs[n_qs - 1].name);
            }
            p = *end ? end + 1 : end;
        }
        qsort(qs, n_qs, sizeof(kv), kv_cmp);
        for (size_t i = 0; i < n_qs; i++) {
            if (i > 0 && strcmp(qs[i].name, qs[i - 1].name) == 0) {
                cml_buf_put_u8(&b, ',');
            } else {
                cml_buf_put_u8(&b, '\n');
                buf_str(&b, qs[i].name);
                cml_buf_put_u8(&b, ':');
            }
            buf_str(&b, qs[i].value);
        }
    }
    *out = buf_take_str(&b);
    if (*out == NULL)
        err = CML_ERR_NOMEM;
done:
    cml_buf_release(&b);
    kv_free_all(hs, n_hs);
    kv_free_all(qs, n_qs);
    return err;
}

cml_err cml_az_hmac_sha256(const uint8_t *key, size_t key_len, const void *msg, size_t msg_len,
                           uint8_t mac[32]) {
    cml_err err = CML_OK;
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    size_t out_len = 0;
    if (ctx == NULL || EVP_MAC_init(ctx, key, key_len, params) != 1 ||
        EVP_MAC_update(ctx, msg, msg_len) != 1 || EVP_MAC_final(ctx, mac, &out_len, 32) != 1 ||
        out_len != 32)
        err = CML_ERR_INTERNAL;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(hmac);
    return err;
}

cml_err cml_az_shared_key_authorization(const char *account, const uint8_t *key, size_t key_len,
                                        const char *string_to_sign, char **out) {
    uint8_t mac[32];
    char *sig = NULL;
    cml_buf b = {0};
    *out = NULL;
    cml_err err = cml_az_hmac_sha256(key, key_len, string_to_sign, strlen(string_to_sign), mac);
    if (err != CML_OK)
        goto done;
    sig = cml_base64_encode(mac, sizeof(mac));
    if (sig == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    buf_str(&b, "SharedKey ");
    buf_str(&b, account);
    cml_buf_put_u8(&b, ':');
    buf_str(&b, sig);
    *out = buf_take_str(&b);
    if (*out == NULL)
        err = CML_ERR_NOMEM;
done:
    cml_buf_release(&b);
    cml_free(sig);
    return err;
}

/* ---- SAS ------------------------------------------------------------------------ */

static bool sas_char_ok(unsigned char c) {
    return url_unreserved(c) || (c != 0 && strchr("%=&+:,/!'()*;@$", c) != NULL);
}

cml_err cml_az_sas_normalize(const char *token, char **out, cml_diag *diag) {
    cml_err err = CML_OK;
    *out = NULL;
    if (token == NULL) {
        err = cml_diag_set(diag, CML_ERR_CONFIG, "SharedAccessSignature is empty");
        goto done;
    }
    if (*token == '?')
        token++;
    if (*token == '\0') {
        err = cml_diag_set(diag, CML_ERR_CONFIG, "SharedAccessSignature is empty");
        goto done;
    }
    bool has_sig = false;
    for (const char *p = token; *p; p++) {
        if (!sas_char_ok((unsigned char)*p)) {
            err = cml_diag_set(diag, CML_ERR_CONFIG,
                               "SharedAccessSignature contains a character not allowed in a URL "
                               "query (value not shown)");
            goto done;
        }
        if ((p == token || p[-1] == '&') && strncasecmp(p, "sig=", 4) == 0 && p[4] != '\0' &&
            p[4] != '&')
            has_sig = true;
    }
    if (!has_sig) {
        err = cml_diag_set(diag, CML_ERR_CONFIG,
                           "SharedAccessSignature has no sig parameter (value not shown)");
        goto done;
    }
    *out = cml_strdup(token);
    if (*out == NULL)
        err = CML_ERR_NOMEM;
done:
    return err;
}

char *cml_az_url_with_sas(const char *url, const char *token) {
    if (token != NULL && *token == '?')
        token++;
    if (token == NULL || *token == '\0')
        return cml_strdup(url);
    cml_buf b = {0};
    buf_str(&b, url);
    const char *q = strchr(url, '?');
    if (q == NULL)
        cml_buf_put_u8(&b, '?');
    else if (q[1] != '\0' && url[strlen(url) - 1] != '&')
        cml_buf_put_u8(&b, '&');
    buf_str(&b, token);
    return buf_take_str(&b);
}

static bool redacted_name(const char *name, size_t n) {
    static const char *const secret[] = {"sig",          "signature",      "token",
                                         "access_token", "client_secret",  "code",
                                         "accountkey",   "sharedaccesskey"};
    for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
        if (strlen(secret[i]) == n && strncasecmp(name, secret[i], n) == 0)
            return true;
    return false;
}

char *cml_az_redact(const char *s) {
    cml_buf b = {0};
    size_t i = 0, len = strlen(s);
    while (i < len) {
        if (i == 0 || s[i - 1] == '?' || s[i - 1] == '&' || s[i - 1] == ';') {
            size_t end = i + strcspn(s + i, "=&#?/;");
            if (s[end] == '=' && redacted_name(s + i, end - i)) {
                cml_buf_put(&b, s + i, end - i + 1);
                buf_str(&b, "REDACTED");
                i = end + 1 + strcspn(s + end + 1, "&#;");
                continue;
            }
        }
        cml_buf_put_u8(&b, (uint8_t)s[i]);
        i++;
    }
    return buf_take_str(&b);
}

/* ---- managed identity ----------------------------------------------------------- */

struct cml_az_mi {
    char *endpoint, *header, *resource, *client_id, *ca_path;
    long timeout_ms;
    int refresh_margin_s;
    unsigned max_attempts;
    pthread_mutex_t lock;
    char *token; /* guarded by lock */
    time_t expires_on;
    atomic_ulong fetches;
};

void cml_az_mi_free(cml_az_mi *mi) {
    if (mi == NULL)
        return;
    pthread_mutex_destroy(&mi->lock);
    cml_free(mi->endpoint);
    if (mi->header != NULL)
        OPENSSL_cleanse(mi->header, strlen(mi->header));
    cml_free(mi->header);
    cml_free(mi->resource);
    cml_free(mi->client_id);
    cml_free(mi->ca_path);
    if (mi->token != NULL)
        OPENSSL_cleanse(mi->token, strlen(mi->token));
    cml_free(mi->token);
    cml_free(mi);
}

cml_err cml_az_mi_new(const cml_az_mi_options *opts, cml_az_mi **out, cml_diag *diag) {
    cml_err err = CML_OK;
    cml_az_mi_options none = {0};
    cml_az_mi *mi = NULL;
    *out = NULL;
    if (opts == NULL)
        opts = &none;
    const char *endpoint = opts->endpoint ? opts->endpoint : getenv("IDENTITY_ENDPOINT");
    const char *header = opts->header ? opts->header : getenv("IDENTITY_HEADER");
    if (endpoint == NULL || *endpoint == '\0') {
        err = cml_diag_set(diag, CML_ERR_CONFIG,
                           "managed identity: IDENTITY_ENDPOINT is not set (not running on Azure "
                           "App Service or Functions with an identity?)");
        goto done;
    }
    if (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0) {
        err = cml_diag_set(diag, CML_ERR_CONFIG,
                           "managed identity: IDENTITY_ENDPOINT is not an http(s) URL");
        goto done;
    }
    if (header == NULL || *header == '\0') {
        err = cml_diag_set(diag, CML_ERR_CONFIG, "managed identity: IDENTITY_HEADER is not set");
        goto done;
    }
    if (strpbrk(header, "\r\n") != NULL) {
        err = cml_diag_set(diag, CML_ERR_CONFIG,
                           "managed identity: IDENTITY_HEADER contains a line break");
        goto done;
    }
    mi = cml_calloc(1, sizeof(*mi));
    if (mi == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    if (pthread_mutex_init(&mi->lock, NULL) != 0) {
        cml_free(mi);
        mi = NULL;
        err = CML_ERR_INTERNAL;
        goto done;
    }
    atomic_init(&mi->fetches, 0);
    mi->endpoint = cml_strdup(endpoint);
    mi->header = cml_strdup(header);
    mi->resource = cml_strdup(opts->resource ? opts->resource : CML_AZ_STORAGE_RESOURCE);
    mi->client_id = opts->client_id ? cml_strdup(opts->client_id) : NULL;
    mi->ca_path = opts->ca_path ? cml_strdup(opts->ca_path) : NULL;
    mi->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 10000;
    mi->refresh_margin_s = opts->refresh_margin_s > 0 ? opts->refresh_margin_s : 300;
    mi->max_attempts = opts->max_attempts > 0 ? opts->max_attempts : 3;
    if (mi->endpoint == NULL || mi->header == NULL || mi->resource == NULL ||
        (opts->client_id && mi->client_id == NULL) || (opts->ca_path && mi->ca_path == NULL)) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    *out = mi;
    mi = NULL;
done:
    cml_az_mi_free(mi);
    return err;
}

unsigned long cml_az_mi_fetch_count(cml_az_mi *mi) { return mi ? atomic_load(&mi->fetches) : 0; }

typedef struct mem_sink {
    cml_buf buf;
    size_t max;
    bool overflow;
} mem_sink;

static size_t mem_sink_write(char *data, size_t size, size_t nmemb, void *ctx) {
    mem_sink *s = ctx;
    size_t n = size * nmemb;
    if (s->buf.len + n > s->max) {
        s->overflow = true;
        return 0;
    }
    cml_buf_put(&s->buf, data, n);
    return cml_buf_status(&s->buf) == CML_OK ? n : 0;
}

/* Seconds since the epoch from a JSON number or numeric string; -1 if neither. */
static long long json_epoch(json_object *v) {
    if (v == NULL)
        return -1;
    if (json_object_is_type(v, json_type_int))
        return json_object_get_int64(v);
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        long long n;
        if (cml_parse_int(s, LLONG_MIN, LLONG_MAX, &n))
            return n;
    }
    return -1;
}

static bool token_chars_ok(const char *t) {
    for (; *t; t++)
        if ((unsigned char)*t <= ' ' || (unsigned char)*t >= 127)
            return false;
    return true;
}

/* One token request with bounded retries; fills *token (caller frees) and *expires_on. */
static cml_err mi_fetch(cml_az_mi *mi, char **token, time_t *expires_on, cml_diag *diag) {
    cml_err err = CML_OK;
    CURL *curl = NULL;
    struct curl_slist *hdrs = NULL;
    char *url = NULL, *res_enc = NULL, *cid_enc = NULL, *hdr_line = NULL;
    json_object *root = NULL;
    mem_sink sink = {.max = 64 * 1024};
    cml_buf b = {0};
    *token = NULL;

    res_enc = cml_url_encode(mi->resource, false);
    cid_enc = mi->client_id ? cml_url_encode(mi->client_id, false) : NULL;
    buf_str(&b, mi->endpoint);
    buf_str(&b, strchr(mi->endpoint, '?') ? "&" : "?");
    buf_str(&b, "resource=");
    buf_str(&b, res_enc ? res_enc : "");
    buf_str(&b, "&api-version=2019-08-01");
    if (cid_enc != NULL) {
        buf_str(&b, "&client_id=");
        buf_str(&b, cid_enc);
    }
    url = buf_take_str(&b);
    size_t hl = strlen(mi->header) + 32;
    hdr_line = cml_malloc(hl);
    curl = curl_easy_init();
    if (url == NULL || res_enc == NULL || hdr_line == NULL || (mi->client_id && !cid_enc)) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    if (curl == NULL) {
        err = cml_diag_set(diag, CML_ERR_INTERNAL, "managed identity: curl_easy_init failed");
        goto done;
    }
    snprintf(hdr_line, hl, "X-IDENTITY-HEADER: %s", mi->header);
    struct curl_slist *h1 = curl_slist_append(NULL, hdr_line);
    struct curl_slist *h2 = h1 ? curl_slist_append(h1, "Metadata: true") : NULL;
    if (h2 == NULL) {
        curl_slist_free_all(h1);
        err = CML_ERR_NOMEM;
        goto done;
    }
    hdrs = h2;
    long status = 0;
    for (unsigned attempt = 0; attempt < mi->max_attempts; attempt++) {
        if (attempt > 0) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = 200000000L << (attempt - 1)};
            while (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            nanosleep(&ts, NULL);
        }
        cml_buf_release(&sink.buf);
        sink.overflow = false;
        curl_easy_reset(curl);
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, mi->timeout_ms);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, mi->timeout_ms);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
        if (mi->ca_path != NULL)
            curl_easy_setopt(curl, CURLOPT_CAINFO, mi->ca_path);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, mem_sink_write);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
        atomic_fetch_add(&mi->fetches, 1);
        CURLcode rc = curl_easy_perform(curl);
        status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (rc != CURLE_OK) {
            err = cml_diag_set(diag, CML_ERR_STORAGE, "managed identity endpoint: %s",
                               curl_easy_strerror(rc));
            if (sink.overflow)
                break;
            continue;
        }
        if (status == 429 || status >= 500) {
            err =
                cml_diag_set(diag, CML_ERR_STORAGE, "managed identity endpoint: HTTP %ld", status);
            continue;
        }
        err = CML_OK;
        break;
    }
    if (err != CML_OK)
        goto done;
    if (status != 200) {
        err = cml_diag_set(diag,
                           status == 400 || status == 401 || status == 403 ? CML_ERR_CONFIG
                                                                           : CML_ERR_STORAGE,
                           "managed identity endpoint: HTTP %ld", status);
        goto done;
    }
    cml_buf_put_u8(&sink.buf, 0);
    if (cml_buf_status(&sink.buf) != CML_OK) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    root = json_tokener_parse((const char *)sink.buf.data);
    json_object *at = NULL, *exp = NULL, *exp_in = NULL;
    if (root == NULL || !json_object_object_get_ex(root, "access_token", &at) ||
        !json_object_is_type(at, json_type_string)) {
        err = cml_diag_set(diag, CML_ERR_STORAGE,
                           "managed identity endpoint: response has no access_token");
        goto done;
    }
    json_object_object_get_ex(root, "expires_on", &exp);
    json_object_object_get_ex(root, "expires_in", &exp_in);
    long long e = json_epoch(exp);
    if (e < 0 && json_epoch(exp_in) >= 0)
        e = (long long)time(NULL) + json_epoch(exp_in);
    const char *t = json_object_get_string(at);
    if (e <= 0 || *t == '\0' || !token_chars_ok(t)) {
        err = cml_diag_set(diag, CML_ERR_STORAGE,
                           "managed identity endpoint: malformed token or expiry");
        goto done;
    }
    *token = cml_strdup(t);
    if (*token == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    *expires_on = (time_t)e;
done:
    if (hdr_line != NULL)
        OPENSSL_cleanse(hdr_line, strlen(hdr_line));
    cml_free(hdr_line);
    curl_slist_free_all(hdrs);
    if (curl != NULL)
        curl_easy_cleanup(curl);
    json_object_put(root);
    if (sink.buf.data != NULL)
        OPENSSL_cleanse(sink.buf.data, sink.buf.len);
    cml_buf_release(&sink.buf);
    cml_buf_release(&b);
    cml_free(url);
    cml_free(res_enc);
    cml_free(cid_enc);
    return err;
}

cml_err cml_az_mi_token(cml_az_mi *mi, char **token, time_t *expires_on, cml_diag *diag) {
    cml_err err = CML_OK;
    char *fresh = NULL;
    time_t fresh_exp = 0;
    *token = NULL;
    if (mi == NULL)
        return CML_ERR_INVALID;
    pthread_mutex_lock(&mi->lock);
    time_t now = time(NULL);
    if (mi->token == NULL || now + mi->refresh_margin_s >= mi->expires_on) {
        err = mi_fetch(mi, &fresh, &fresh_exp, diag);
        if (err == CML_OK) {
            if (mi->token != NULL)
                OPENSSL_cleanse(mi->token, strlen(mi->token));
            cml_free(mi->token);
            mi->token = fresh;
            mi->expires_on = fresh_exp;
            fresh = NULL;
        } else if (mi->token != NULL && now + 10 < mi->expires_on) {
            err = CML_OK; /* keep using the still-valid token; the next call retries */
        } else {
            goto done;
        }
    }
    *token = cml_strdup(mi->token);
    if (*token == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    if (expires_on != NULL)
        *expires_on = mi->expires_on;
done:
    pthread_mutex_unlock(&mi->lock);
    cml_free(fresh);
    return err;
}
