#include "config.h"

#include "azure/blob_client.h"
#include "azure/blob_client_internal.h"

#include <ctype.h>
#include <limits.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "azure/azure_auth.h"
#include "base/byte_buffer.h"
#include "base/cml_alloc.h"
#include "base/parse_number.h"
#include "base/sha256.h"

#define MAX_HEADERS 32
#define ERROR_BODY_MAX (16 * 1024)
#define LIST_BODY_MAX ((size_t)64 << 20)
#define MAX_BLOCKS 50000

struct cml_blob_client {
    cml_az_conn *conn;
    cml_blob_options opts; /* string fields point at the copies below */
    char *ca_path;
    cml_az_mi *mi;
    cml_blob_stats stats;
};

static const char *const failure_names[CML_BLOB_FAIL__COUNT] = {
    [CML_BLOB_FAIL_CONNECT] = "connect",
    [CML_BLOB_FAIL_TIMEOUT] = "timeout",
    [CML_BLOB_FAIL_TLS] = "tls",
    [CML_BLOB_FAIL_THROTTLED] = "throttled",
    [CML_BLOB_FAIL_SERVER] = "server",
    [CML_BLOB_FAIL_AUTH] = "auth",
    [CML_BLOB_FAIL_NOT_FOUND] = "not_found",
    [CML_BLOB_FAIL_CONFLICT] = "conflict",
    [CML_BLOB_FAIL_CLIENT] = "client",
    [CML_BLOB_FAIL_PROTOCOL] = "protocol",
    [CML_BLOB_FAIL_LOCAL] = "local",
};

const char *cml_blob_failure_name(cml_blob_failure kind) {
    return (unsigned)kind < CML_BLOB_FAIL__COUNT ? failure_names[kind] : "unknown";
}

/* ---- small helpers ------------------------------------------------------------ */

static void buf_str(cml_buf *b, const char *s) { cml_buf_put(b, s, strlen(s)); }

static void buf_fmt(cml_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_fmt(cml_buf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        cml_buf_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Hands b's bytes over as a string (caller frees), NULL if any append failed. */
char *blob_buf_take_str(cml_buf *b) {
    cml_buf_put_u8(b, 0);
    if (cml_buf_status(b) != CML_OK) {
        cml_buf_release(b);
        return NULL;
    }
    size_t len = 0;
    return (char *)cml_buf_take(b, &len);
}

void blob_copy_str(char *dst, size_t cap, const char *src, size_t n) {
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void sleep_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static uint32_t random_u32(void) {
    uint32_t r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        r = (uint32_t)time(NULL) * 2654435761u;
    return r;
}

static bool header_value_ok(const char *v) {
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || (unsigned char)*v == 0x7f)
            return false;
    return true;
}

static bool container_name_ok(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n < 3 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!(islower(ch) || isdigit(ch) || ch == '-') || (ch == '-' && s[i + 1] == '-'))
            return false;
    }
    return true;
}

static bool blob_name_ok(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 1024 || s[n - 1] == '/' || s[n - 1] == '.' || !header_value_ok(s))
        return false;
    /* "." and ".." segments would be normalised away by URL handling. */
    const char *seg = s;
    while (seg != NULL) {
        size_t len = strcspn(seg, "/");
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        seg = seg[len] ? seg + len + 1 : NULL;
    }
    return true;
}

static bool meta_name_ok(const char *s) {
    if (s == NULL || !(isalpha((unsigned char)*s) || *s == '_'))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

static bool meta_value_ok(const char *v) {
    size_t n = v ? strlen(v) : 0;
    if (n > 0 && (v[0] == ' ' || v[n - 1] == ' '))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] >= 0x7f)
            return false;
    return v != NULL;
}

/* ---- client ------------------------------------------------------------------------ */

/* True for http://127.x.x.x, http://localhost and http://[::1] (tests and local emulators). */
static bool origin_is_loopback(const char *origin) {
    const char *h = strstr(origin, "://");
    h = h ? h + 3 : origin;
    return strncmp(h, "127.", 4) == 0 || strncasecmp(h, "localhost", 9) == 0 ||
           strncmp(h, "[::1]", 5) == 0;
}

void cml_blob_options_init(cml_blob_options *opts) {
    memset(opts, 0, sizeof(*opts));
    opts->max_retries = 4;
}

void cml_blob_client_free(cml_blob_client *c) {
    if (c == NULL)
        return;
    cml_az_conn_free(c->conn);
    cml_az_mi_free(c->mi);
    cml_free(c->ca_path);
    cml_free(c);
}

cml_err cml_blob_client_new(const cml_az_conn *conn, const cml_blob_options *opts,
                            cml_blob_client **out, cml_diag *diag) {
    cml_err err = CML_OK;
    cml_blob_client *c = NULL;
    cml_blob_options defaults;
    *out = NULL;
    if (opts == NULL) {
        cml_blob_options_init(&defaults);
        opts = &defaults;
    }
    if (conn == NULL) {
        err = cml_diag_set(diag, CML_ERR_INVALID, "blob client: no connection");
        goto done;
    }
    if (!opts->use_managed_identity && conn->cred == CML_AZ_CRED_NONE) {
        err = cml_diag_set(diag, CML_ERR_CONFIG,
                           "blob client: the connection string has no AccountKey or "
                           "SharedAccessSignature and managed identity is off");
        goto done;
    }
    if (opts->use_managed_identity && !conn->https && !origin_is_loopback(conn->origin)) {
        err = cml_diag_set(diag, CML_ERR_CONFIG,
                           "blob client: a managed identity token is only sent over https");
        goto done;
    }
    if (opts->block_size > CML_BLOB_MAX_BLOCK_SIZE) {
        err = cml_diag_set(diag, CML_ERR_CONFIG, "blob client: block size above 100 MiB");
        goto done;
    }
    if (opts->single_put_max > ((size_t)5000 << 20)) {
        err = cml_diag_set(diag, CML_ERR_CONFIG, "blob client: single put limit above 5000 MiB");
        goto done;
    }
    if (opts->max_retries > 20 || opts->connect_timeout_ms < 0 || opts->timeout_ms < 0 ||
        opts->retry_base_ms < 0 || opts->retry_max_ms < 0 || opts->retry_after_max_ms < 0 ||
        opts->list_page_size > 5000) {
        err = cml_diag_set(diag, CML_ERR_CONFIG, "blob client: an option is out of range");
        goto done;
    }
    c = cml_calloc(1, sizeof(*c));
    if (c == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    c->conn = cml_az_conn_dup(conn);
    c->ca_path = opts->ca_path ? cml_strdup(opts->ca_path) : NULL;
    if (c->conn == NULL || (opts->ca_path && c->ca_path == NULL)) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    c->opts = *opts;
    c->opts.ca_path = c->ca_path;
    c->opts.mi_endpoint = c->opts.mi_header = c->opts.mi_client_id = NULL;
    if (c->opts.connect_timeout_ms == 0)
        c->opts.connect_timeout_ms = 10000;
    if (c->opts.timeout_ms == 0)
        c->opts.timeout_ms = 300000;
    if (c->opts.retry_base_ms == 0)
        c->opts.retry_base_ms = 250;
    if (c->opts.retry_max_ms == 0)
        c->opts.retry_max_ms = 8000;
    if (c->opts.retry_after_max_ms == 0)
        c->opts.retry_after_max_ms = 30000;
    if (c->opts.single_put_max == 0)
        c->opts.single_put_max = CML_BLOB_DEFAULT_SINGLE_PUT_MAX;
    if (c->opts.block_size == 0)
        c->opts.block_size = CML_BLOB_DEFAULT_BLOCK_SIZE;
    if (opts->use_managed_identity) {
        cml_az_mi_options mo = {.endpoint = opts->mi_endpoint,
                                .header = opts->mi_header,
                                .client_id = opts->mi_client_id,
                                .ca_path = opts->ca_path};
        err = cml_az_mi_new(&mo, &c->mi, diag);
        if (err != CML_OK)
            goto done;
    }
    for (int i = 0; i < CML_BLOB_FAIL__COUNT; i++)
        atomic_init(&c->stats.failures[i], 0);
    atomic_init(&c->stats.requests, 0);
    atomic_init(&c->stats.retries, 0);
    atomic_init(&c->stats.gave_up, 0);
    atomic_init(&c->stats.bytes_up, 0);
    atomic_init(&c->stats.bytes_down, 0);
    *out = c;
    c = NULL;
done:
    cml_blob_client_free(c);
    return err;
}

cml_err cml_blob_client_from_string(const char *connection_string, const cml_blob_options *opts,
                                    cml_blob_client **out, cml_diag *diag) {
    cml_az_conn *conn = NULL;
    *out = NULL;
    cml_err err = cml_az_conn_parse(connection_string, &conn, diag);
    if (err == CML_OK)
        err = cml_blob_client_new(conn, opts, out, diag);
    cml_az_conn_free(conn);
    return err;
}

cml_blob_stats *cml_blob_client_stats(cml_blob_client *c) { return c ? &c->stats : NULL; }

void cml_blob_stats_read(const cml_blob_stats *s, cml_blob_stats_snapshot *out) {
    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return;
    cml_blob_stats *m = (cml_blob_stats *)s; /* atomic_load takes a non-const pointer in C11 */
    out->requests = atomic_load(&m->requests);
    out->retries = atomic_load(&m->retries);
    out->gave_up = atomic_load(&m->gave_up);
    out->bytes_up = atomic_load(&m->bytes_up);
    out->bytes_down = atomic_load(&m->bytes_down);
    for (int i = 0; i < CML_BLOB_FAIL__COUNT; i++)
        out->failures[i] = atomic_load(&m->failures[i]);
}

void cml_blob_props_release(cml_blob_props *p) {
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n_meta; i++) {
        cml_free(p->meta[i].name);
        cml_free(p->meta[i].value);
    }
    cml_free(p->meta);
    memset(p, 0, sizeof(*p));
}

const char *cml_blob_props_meta(const cml_blob_props *p, const char *name) {
    for (size_t i = 0; p != NULL && i < p->n_meta; i++)
        if (strcasecmp(p->meta[i].name, name) == 0)
            return p->meta[i].value;
    return NULL;
}

/* Moves src into dst (dst released first). */
static void props_move(cml_blob_props *dst, cml_blob_props *src) {
    if (dst == NULL) {
        cml_blob_props_release(src);
        return;
    }
    cml_blob_props_release(dst);
    *dst = *src;
    memset(src, 0, sizeof(*src));
}

/* Path of a container or blob, percent-encoded: a new string or NULL. */
static char *resource_path(const cml_blob_client *c, const char *container, const char *blob) {
    cml_buf b = {0};
    buf_str(&b, c->conn->base_path);
    cml_buf_put_u8(&b, '/');
    buf_str(&b, container);
    if (blob != NULL) {
        char *enc = cml_url_encode(blob, true);
        if (enc == NULL) {
            cml_buf_release(&b);
            return NULL;
        }
        cml_buf_put_u8(&b, '/');
        buf_str(&b, enc);
        cml_free(enc);
    }
    return blob_buf_take_str(&b);
}

char *cml_blob_url(const cml_blob_client *c, const char *container, const char *name) {
    char *path = resource_path(c, container, name);
    if (path == NULL)
        return NULL;
    size_t n = strlen(c->conn->origin) + strlen(path) + 1;
    char *url = cml_malloc(n);
    if (url != NULL)
        snprintf(url, n, "%s%s", c->conn->origin, path);
    cml_free(path);
    return url;
}

/* ---- one HTTP request with retries ------------------------------------------------- */

typedef enum sink_kind { SINK_NONE, SINK_MEM, SINK_FD } sink_kind;

typedef struct request {
    const char *method; /* GET, HEAD, PUT, DELETE */
    const char *what;   /* for messages: "put blob" */
    const char *container, *blob;
    const char *query; /* encoded, without '?', or NULL */
    cml_az_header hdr[MAX_HEADERS];
    size_t n_hdr;
    bool upload; /* PUT with a body (possibly empty) */
    const uint8_t *body;
    size_t body_len;
    long ok_status; /* a non-2xx status that is an expected answer (not a failure), or 0 */
    /* response body */
    sink_kind sink;
    size_t mem_max;  /* SINK_MEM limit */
    int fd;          /* SINK_FD */
    EVP_MD_CTX *sha; /* SINK_FD/SINK_MEM: digest of the body when not NULL */
} request;

typedef struct response {
    long status;
    cml_blob_props props;
    bool have_length;
    char error_code[96];
    long retry_after_ms; /* -1 when absent */
    cml_buf body;        /* SINK_MEM body of a success */
    cml_buf err_body;    /* body of an error answer (capped) */
    uint64_t received;   /* body bytes of a success */
    bool overflow;       /* SINK_MEM limit exceeded */
    bool local_error;    /* SINK_FD write failed */
    int local_errno;
} response;

typedef struct transfer {
    request *rq;
    response *rs;
    CURL *curl;
    size_t up_off;
    int status_checked; /* 0 unknown, 1 success body, 2 error body */
} transfer;

static void response_reset(response *rs) {
    cml_blob_props_release(&rs->props);
    cml_buf_release(&rs->body);
    cml_buf_release(&rs->err_body);
    rs->status = 0;
    rs->have_length = false;
    rs->error_code[0] = '\0';
    rs->retry_after_ms = -1;
    rs->received = 0;
    rs->overflow = rs->local_error = false;
    rs->local_errno = 0;
}

static void response_release(response *rs) {
    response_reset(rs);
    memset(rs, 0, sizeof(*rs));
}

static void add_header(request *rq, const char *name, const char *value) {
    if (rq->n_hdr < MAX_HEADERS) {
        rq->hdr[rq->n_hdr].name = name;
        rq->hdr[rq->n_hdr].value = value;
        rq->n_hdr++;
    }
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ctx) {
    transfer *t = ctx;
    response *rs = t->rs;
    size_t n = size * nmemb, len = n;
    while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n'))
        len--;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new response (after 100 Continue, say): forget earlier headers. */
        cml_blob_props_release(&rs->props);
        rs->have_length = false;
        rs->error_code[0] = '\0';
        rs->retry_after_ms = -1;
        return n;
    }
    const char *colon = memchr(data, ':', len);
    if (colon == NULL)
        return n;
    size_t name_len = (size_t)(colon - data);
    const char *v = colon + 1;
    while (v < data + len && (*v == ' ' || *v == '\t'))
        v++;
    size_t vlen = (size_t)(data + len - v);
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
#define IS(h) (name_len == sizeof(h) - 1 && strncasecmp(data, h, name_len) == 0)
    if (IS("ETag")) {
        blob_copy_str(rs->props.etag, sizeof(rs->props.etag), v, vlen);
    } else if (IS("Last-Modified")) {
        blob_copy_str(rs->props.last_modified, sizeof(rs->props.last_modified), v, vlen);
    } else if (IS("Content-Type")) {
        blob_copy_str(rs->props.content_type, sizeof(rs->props.content_type), v, vlen);
    } else if (IS("Content-Length")) {
        char tmp[32];
        blob_copy_str(tmp, sizeof(tmp), v, vlen);
        char *end = NULL;
        unsigned long long x = strtoull(tmp, &end, 10);
        if (end != tmp && *end == '\0') {
            rs->props.length = x;
            rs->have_length = true;
        }
    } else if (IS("x-ms-error-code")) {
        blob_copy_str(rs->error_code, sizeof(rs->error_code), v, vlen);
    } else if (IS("Retry-After")) {
        char tmp[64];
        blob_copy_str(tmp, sizeof(tmp), v, vlen);
        long long secs;
        if (cml_parse_int(tmp, 0, LLONG_MAX, &secs)) {
            rs->retry_after_ms = secs > 86400 ? 86400000L : secs * 1000;
        } else {
            time_t when = curl_getdate(tmp, NULL);
            time_t now = time(NULL);
            if (when > 0)
                rs->retry_after_ms = when > now ? (long)(when - now) * 1000 : 0;
        }
    } else if (name_len > 10 && strncasecmp(data, "x-ms-meta-", 10) == 0) {
        cml_blob_meta *m =
            cml_realloc_array(rs->props.meta, rs->props.n_meta + 1, sizeof(cml_blob_meta));
        if (m == NULL)
            return 0;
        rs->props.meta = m;
        m[rs->props.n_meta].name = cml_strndup(data + 10, name_len - 10);
        m[rs->props.n_meta].value = cml_strndup(v, vlen);
        rs->props.n_meta++;
        if (m[rs->props.n_meta - 1].name == NULL || m[rs->props.n_meta - 1].value == NULL)
            return 0;
    }
#undef IS
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx) {
    transfer *t = ctx;
    response *rs = t->rs;
    request *rq = t->rq;
    size_t n = size * nmemb;
    if (t->status_checked == 0) {
        long status = 0;
        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
        t->status_checked = status >= 200 && status < 300 ? 1 : 2;
    }
    if (t->status_checked == 2) {
        size_t room = ERROR_BODY_MAX - rs->err_body.len;
        cml_buf_put(&rs->err_body, data, n < room ? n : room);
        return n;
    }
    if (rq->sink == SINK_NONE)
        return n;
    if (rq->sink == SINK_MEM) {
        if (rs->body.len + n > rq->mem_max) {
            rs->overflow = true;
            return 0;
        }
        cml_buf_put(&rs->body, data, n);
        if (cml_buf_status(&rs->body) != CML_OK) {
            rs->local_error = true;
            rs->local_errno = ENOMEM;
            return 0;
        }
    } else {
        size_t left = n;
        const char *p = data;
        while (left > 0) {
            ssize_t w = write(rq->fd, p, left);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rs->local_error = true;
                rs->local_errno = w < 0 ? errno : ENOSPC;
                return 0;
            }
            p += w;
            left -= (size_t)w;
        }
    }
    if (rq->sha != NULL)
        EVP_DigestUpdate(rq->sha, data, n);
    rs->received += n;
    return n;
}

static size_t on_read(char *buf, size_t size, size_t nmemb, void *ctx) {
    transfer *t = ctx;
    size_t room = size * nmemb, left = t->rq->body_len - t->up_off;
    size_t n = left < room ? left : room;
    if (n > 0)
        memcpy(buf, t->rq->body + t->up_off, n);
    t->up_off += n;
    return n;
}

static int on_seek(void *ctx, curl_off_t offset, int origin) {
    transfer *t = ctx;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > t->rq->body_len)
        return CURL_SEEKFUNC_FAIL;
    t->up_off = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

/* Resets the response sink for a new attempt. */
static cml_err sink_rewind(request *rq) {
    if (rq->sink == SINK_FD) {
        if (ftruncate(rq->fd, 0) != 0 || lseek(rq->fd, 0, SEEK_SET) != 0)
            return CML_ERR_IO;
    }
    if (rq->sha != NULL && EVP_DigestInit_ex(rq->sha, EVP_sha256(), NULL) != 1)
        return CML_ERR_INTERNAL;
    return CML_OK;
}

static bool status_retriable(long s) {
    return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

static cml_blob_failure status_kind(long s, const char *code) {
    if (s == 429 || (s == 503 && strcmp(code, "ServerBusy") == 0))
        return CML_BLOB_FAIL_THROTTLED;
    if (s == 408 || s >= 500)
        return CML_BLOB_FAIL_SERVER;
    if (s == 401 || s == 403)
        return CML_BLOB_FAIL_AUTH;
    if (s == 404)
        return CML_BLOB_FAIL_NOT_FOUND;
    if (s == 409 || s == 412)
        return CML_BLOB_FAIL_CONFLICT;
    if (s >= 400)
        return CML_BLOB_FAIL_CLIENT;
    return CML_BLOB_FAIL_PROTOCOL;
}

static cml_blob_failure curl_kind(CURLcode rc, bool *retriable) {
    *retriable = false;
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        *retriable = true;
        return CML_BLOB_FAIL_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        *retriable = true;
        return CML_BLOB_FAIL_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
        return CML_BLOB_FAIL_TLS;
    case CURLE_WRITE_ERROR:
    case CURLE_READ_ERROR:
    case CURLE_OUT_OF_MEMORY:
        return CML_BLOB_FAIL_LOCAL;
    default:
        return CML_BLOB_FAIL_PROTOCOL;
    }
}

/* The <Code> of an error body, copied into code when code is still empty. */
static void error_code_from_body(response *rs) {
    if (rs->error_code[0] != '\0' || rs->err_body.len == 0)
        return;
    const char *b = (const char *)rs->err_body.data;
    size_t n = rs->err_body.len;
    for (size_t i = 0; i + 6 <= n; i++) {
        if (memcmp(b + i, "<Code>", 6) != 0)
            continue;
        size_t s = i + 6, e = s;
        while (e < n && b[e] != '<')
            e++;
        size_t len = e - s;
        bool ok = len > 0;
        for (size_t k = s; k < e; k++)
            ok = ok && isalnum((unsigned char)b[k]);
        if (ok)
            blob_copy_str(rs->error_code, sizeof(rs->error_code), b + s, len);
        return;
    }
}

static void log_line(cml_blob_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void log_line(cml_blob_client *c, const char *fmt, ...) {
    if (c->opts.log == NULL)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    c->opts.log(c->opts.log_ctx, line);
}

/* Builds the headers of one attempt, signs them, and returns them as a curl list. */
static cml_err build_headers(cml_blob_client *c, request *rq, const char *path,
                             struct curl_slist **out, cml_diag *diag) {
    cml_err err = CML_OK;
    char date[30], clen[32];
    char *sts = NULL, *auth = NULL, *token = NULL, *line = NULL;
    struct curl_slist *list = NULL;
    cml_az_header hdr[MAX_HEADERS + 4];
    size_t n = 0;
    *out = NULL;
    cml_az_http_date(time(NULL), date);
    hdr[n++] = (cml_az_header){"x-ms-date", date};
    hdr[n++] = (cml_az_header){"x-ms-version", CML_AZ_API_VERSION};
    for (size_t i = 0; i < rq->n_hdr; i++)
        hdr[n++] = rq->hdr[i];
    if (rq->upload) {
        snprintf(clen, sizeof(clen), "%zu", rq->body_len);
        hdr[n++] = (cml_az_header){"Content-Length", clen};
    }
    if (c->mi != NULL) {
        err = cml_az_mi_token(c->mi, &token, NULL, diag);
        if (err != CML_OK)
            goto done;
        size_t len = strlen(token) + 8;
        auth = cml_malloc(len);
        if (auth == NULL) {
            err = CML_ERR_NOMEM;
            goto done;
        }
        snprintf(auth, len, "Bearer %s", token);
    } else if (c->conn->cred == CML_AZ_CRED_SHARED_KEY) {
        err = cml_az_string_to_sign(rq->method, c->conn->account, path, rq->query, hdr, n, &sts);
        if (err == CML_OK)
            err = cml_az_shared_key_authorization(c->conn->account, c->conn->key, c->conn->key_len,
                                                  sts, &auth);
        if (err != CML_OK)
            goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(hdr[i].name, "Content-Length") == 0)
            continue; /* curl sends it from CURLOPT_INFILESIZE_LARGE */
        size_t len = strlen(hdr[i].name) + strlen(hdr[i].value) + 3;
        line = cml_malloc(len);
        if (line == NULL) {
            err = CML_ERR_NOMEM;
            goto done;
        }
        snprintf(line, len, "%s: %s", hdr[i].name, hdr[i].value);
        struct curl_slist *l = curl_slist_append(list, line);
        cml_free(line);
        line = NULL;
        if (l == NULL) {
            err = CML_ERR_NOMEM;
            goto done;
        }
        list = l;
    }
    if (auth != NULL) {
        size_t len = strlen(auth) + 16;
        line = cml_malloc(len);
        if (line == NULL) {
            err = CML_ERR_NOMEM;
            goto done;
        }
        snprintf(line, len, "Authorization: %s", auth);
        struct curl_slist *l = curl_slist_append(list, line);
        OPENSSL_cleanse(line, strlen(line));
        cml_free(line);
        line = NULL;
        if (l == NULL) {
            err = CML_ERR_NOMEM;
            goto done;
        }
        list = l;
    }
    /* No "Expect: 100-continue" round trip, no Accept noise. */
    struct curl_slist *l = curl_slist_append(list, "Expect:");
    if (l == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    list = l;
    *out = list;
    list = NULL;
done:
    curl_slist_free_all(list);
    cml_free(sts);
    if (auth != NULL)
        OPENSSL_cleanse(auth, strlen(auth));
    cml_free(auth);
    if (token != NULL)
        OPENSSL_cleanse(token, strlen(token));
    cml_free(token);
    return err;
}

/* The error a final HTTP status maps to. */
static cml_err status_error(long s) {
    if (s == 404)
        return CML_ERR_NOT_FOUND;
    if (s == 409 || s == 412)
        return CML_ERR_CONFLICT;
    return CML_ERR_STORAGE;
}

/*
 * Sends rq (retrying as configured) on curl; rs gets the final response. CML_OK
 * for a 2xx, 304 or rq->ok_status answer; otherwise the mapped error with a diag.
 */
static cml_err perform(cml_blob_client *c, CURL *curl, request *rq, response *rs, cml_diag *diag) {
    cml_err err = CML_OK;
    char *path = NULL, *url = NULL, *url_sas = NULL, *shown = NULL;
    struct curl_slist *hdrs = NULL;
    char errbuf[CURL_ERROR_SIZE];
    cml_buf ub = {0};

    path = resource_path(c, rq->container, rq->blob);
    if (path == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    buf_str(&ub, c->conn->origin);
    buf_str(&ub, path);
    if (rq->query != NULL && *rq->query) {
        cml_buf_put_u8(&ub, '?');
        buf_str(&ub, rq->query);
    }
    url = blob_buf_take_str(&ub);
    url_sas = url && c->mi == NULL ? cml_az_url_with_sas(url, c->conn->sas) : cml_strdup(url);
    shown = url ? cml_az_redact(url + strlen(c->conn->origin)) : NULL;
    if (url == NULL || url_sas == NULL || shown == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    unsigned attempts = c->opts.max_retries + 1;
    for (unsigned attempt = 1; attempt <= attempts; attempt++) {
        response_reset(rs);
        err = sink_rewind(rq);
        if (err != CML_OK) {
            err = cml_diag_set(diag, err, "%s: cannot reset the download file", rq->what);
            goto done;
        }
        curl_slist_free_all(hdrs);
        hdrs = NULL;
        err = build_headers(c, rq, path, &hdrs, diag);
        if (err != CML_OK)
            goto done;
        transfer t = {.rq = rq, .rs = rs, .curl = curl};
        curl_easy_reset(curl);
        errbuf[0] = '\0';
        curl_easy_setopt(curl, CURLOPT_URL, url_sas);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
        if (c->opts.ca_path != NULL) {
            struct stat st;
            if (stat(c->opts.ca_path, &st) == 0 && S_ISDIR(st.st_mode))
                curl_easy_setopt(curl, CURLOPT_CAPATH, c->opts.ca_path);
            else
                curl_easy_setopt(curl, CURLOPT_CAINFO, c->opts.ca_path);
        }
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, c->opts.connect_timeout_ms);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, c->opts.timeout_ms);
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
        if (strcmp(rq->method, "HEAD") == 0) {
            curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
        } else if (strcmp(rq->method, "PUT") == 0) {
            curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(curl, CURLOPT_READDATA, &t);
            curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, on_seek);
            curl_easy_setopt(curl, CURLOPT_SEEKDATA, &t);
            curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_len);
        } else if (strcmp(rq->method, "GET") != 0) {
            curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, rq->method);
        }
        atomic_fetch_add(&c->stats.requests, 1);
        if (attempt > 1)
            atomic_fetch_add(&c->stats.retries, 1);
        CURLcode rc = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &rs->status);
        if (rq->upload && rc == CURLE_OK)
            atomic_fetch_add(&c->stats.bytes_up, rq->body_len);
        atomic_fetch_add(&c->stats.bytes_down, rs->received);

        bool retriable = false;
        cml_blob_failure kind;
        char reason[160];
        if (rc != CURLE_OK) {
            kind = curl_kind(rc, &retriable);
            if (rs->overflow || rs->local_error) {
                kind = CML_BLOB_FAIL_LOCAL;
                retriable = false;
            }
            if (rs->overflow)
                snprintf(reason, sizeof(reason), "response larger than %zu bytes", rq->mem_max);
            else if (rs->local_error)
                snprintf(reason, sizeof(reason), "local write failed: %s",
                         strerror(rs->local_errno));
            else
                snprintf(reason, sizeof(reason), "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
            /* The error buffer may name the URL: keep only up to a '?' (no SAS). */
            char *q = strchr(reason, '?');
            if (q != NULL)
                *q = '\0';
        } else if ((rs->status >= 200 && rs->status < 300) || rs->status == 304 ||
                   (rq->ok_status != 0 && rs->status == rq->ok_status)) {
            err = CML_OK;
            goto done;
        } else {
            error_code_from_body(rs);
            kind = status_kind(rs->status, rs->error_code);
            retriable = status_retriable(rs->status);
            snprintf(reason, sizeof(reason), "HTTP %ld%s%s", rs->status,
                     rs->error_code[0] ? " " : "", rs->error_code);
        }
        atomic_fetch_add(&c->stats.failures[kind], 1);
        bool again = retriable && attempt < attempts;
        long delay = 0;
        if (again) {
            long cap = c->opts.retry_base_ms;
            for (unsigned i = 1; i < attempt && cap < c->opts.retry_max_ms; i++)
                cap *= 2;
            if (cap > c->opts.retry_max_ms)
                cap = c->opts.retry_max_ms;
            delay = cap / 2 + (long)(random_u32() % (uint32_t)(cap / 2 + 1));
            if (rs->retry_after_ms >= 0) {
                long ra = rs->retry_after_ms < c->opts.retry_after_max_ms
                              ? rs->retry_after_ms
                              : c->opts.retry_after_max_ms;
                if (ra > delay)
                    delay = ra;
            }
            log_line(c, "blob: %s %s: %s [%s] (attempt %u of %u), retrying in %ld ms", rq->method,
                     shown, reason, cml_blob_failure_name(kind), attempt, attempts, delay);
        } else {
            if (retriable)
                atomic_fetch_add(&c->stats.gave_up, 1);
            log_line(c, "blob: %s %s: %s [%s] (attempt %u of %u), giving up", rq->method, shown,
                     reason, cml_blob_failure_name(kind), attempt, attempts);
        }
        if (!again) {
            if (rc != CURLE_OK)
                err = cml_diag_set(
                    diag,
                    kind == CML_BLOB_FAIL_LOCAL && rs->local_error ? CML_ERR_IO : CML_ERR_STORAGE,
                    "%s %s/%s: %s", rq->what, rq->container, rq->blob ? rq->blob : "", reason);
            else
                err = cml_diag_set(diag, status_error(rs->status), "%s %s/%s: %s", rq->what,
                                   rq->container, rq->blob ? rq->blob : "", reason);
            goto done;
        }
        sleep_ms(delay);
    }
done:
    curl_slist_free_all(hdrs);
    cml_buf_release(&ub);
    cml_free(path);
    cml_free(url);
    if (url_sas != NULL)
        OPENSSL_cleanse(url_sas, strlen(url_sas));
    cml_free(url_sas);
    cml_free(shown);
    return err;
}

static CURL *new_curl(cml_diag *diag) {
    CURL *curl = curl_easy_init();
    if (curl == NULL)
        cml_diag_set(diag, CML_ERR_INTERNAL, "curl_easy_init failed (curl_global_init called?)");
    return curl;
}

/* One request on a handle of its own (rs holds the response; the caller releases it). */
static cml_err perform_once(cml_blob_client *c, request *rq, response *rs, cml_diag *diag) {
    CURL *curl = new_curl(diag);
    if (curl == NULL)
        return CML_ERR_INTERNAL;
    cml_err err = perform(c, curl, rq, rs, diag);
    curl_easy_cleanup(curl);
    return err;
}

/* ---- containers ---------------------------------------------------------------------- */

cml_err cml_blob_create_container(cml_blob_client *c, const char *container, bool *created,
                                  cml_diag *diag) {
    cml_err err = CML_OK;
    response rs = {0};
    if (created != NULL)
        *created = false;
    if (c == NULL || !container_name_ok(container)) {
        err = cml_diag_set(diag, CML_ERR_INVALID, "create container: invalid container name");
        goto done;
    }
    request rq = {.method = "PUT",
                  .what = "create container",
                  .container = container,
                  .query = "restype=container",
                  .upload = true,
                  .ok_status = 409};
    err = perform_once(c, &rq, &rs, diag);
    if (err != CML_OK)
        goto done;
    if (rs.status == 409) {
        if (strcmp(rs.error_code, "ContainerAlreadyExists") != 0) {
            err = cml_diag_set(diag, CML_ERR_CONFLICT, "create container %s: HTTP 409 %s",
                               container, rs.error_code);
            goto done;
        }
    } else if (created != NULL) {
        *created = true;
    }
done:
    response_release(&rs);
    return err;
}

cml_err cml_blob_delete_container(cml_blob_client *c, const char *container, cml_diag *diag) {
    if (c == NULL || !container_name_ok(container))
        return cml_diag_set(diag, CML_ERR_INVALID, "delete container: invalid container name");
    response rs = {0};
    request rq = {.method = "DELETE",
                  .what = "delete container",
                  .container = container,
                  .query = "restype=container"};
    cml_err err = perform_once(c, &rq, &rs, diag);
    response_release(&rs);
    return err;
}

/* ---- uploads ---------------------------------------------------------------------------- */

/* Validates names and put options; the shared prologue of the put functions. */
static cml_err check_put_args(const cml_blob_client *c, const char *container, const char *name,
                              const cml_blob_put_options *po, cml_diag *diag) {
    if (c == NULL)
        return CML_ERR_INVALID;
    if (!container_name_ok(container))
        return cml_diag_set(diag, CML_ERR_INVALID, "put blob: invalid container name");
    if (!blob_name_ok(name))
        return cml_diag_set(diag, CML_ERR_INVALID, "put blob: invalid blob name");
    if (po == NULL)
        return CML_OK;
    if (po->if_match != NULL && (po->if_match[0] == '\0' || !header_value_ok(po->if_match)))
        return cml_diag_set(diag, CML_ERR_INVALID, "put blob: invalid If-Match ETag");
    if (po->content_type != NULL && !header_value_ok(po->content_type))
        return cml_diag_set(diag, CML_ERR_INVALID, "put blob: invalid content type");
    if (po->n_meta > 16)
        return cml_diag_set(diag, CML_ERR_INVALID, "put blob: too many metadata entries");
    for (size_t i = 0; i < po->n_meta; i++) {
        if (!meta_name_ok(po->meta[i].name) || !meta_value_ok(po->meta[i].value))
            return cml_diag_set(diag, CML_ERR_INVALID, "put blob: invalid metadata entry %zu", i);
        if (po->add_sha256 && strcasecmp(po->meta[i].name, CML_BLOB_META_SHA256) == 0)
            return cml_diag_set(diag, CML_ERR_INVALID,
                                "put blob: metadata sha256 given twice (add_sha256 is on)");
    }
    return CML_OK;
}

/* Adds conditional and metadata headers of po; names point into names[] (caller's storage). */
static void add_put_headers(request *rq, const cml_blob_put_options *po, const char *sha_hex,
                            char names[][80]) {
    if (po == NULL)
        return;
    if (po->if_match != NULL)
        add_header(rq, "If-Match", po->if_match);
    if (po->if_none_match_any)
        add_header(rq, "If-None-Match", "*");
    size_t k = 0;
    for (size_t i = 0; i < po->n_meta; i++) {
        snprintf(names[k], 80, "x-ms-meta-%s", po->meta[i].name);
        add_header(rq, names[k++], po->meta[i].value);
    }
    if (sha_hex != NULL) {
        snprintf(names[k], 80, "x-ms-meta-%s", CML_BLOB_META_SHA256);
        add_header(rq, names[k++], sha_hex);
    }
}

/* Put Blob of len bytes in one request. */
static cml_err put_single(cml_blob_client *c, CURL *curl, const char *container, const char *name,
                          const void *data, size_t len, const cml_blob_put_options *po,
                          const char *sha_hex, cml_blob_props *props_out, cml_diag *diag) {
    char names[20][80];
    response rs = {0};
    request rq = {.method = "PUT",
                  .what = "put blob",
                  .container = container,
                  .blob = name,
                  .upload = true,
                  .body = data,
                  .body_len = len};
    add_header(&rq, "x-ms-blob-type", "BlockBlob");
    add_header(&rq, "Content-Type",
               po && po->content_type ? po->content_type : "application/octet-stream");
    add_put_headers(&rq, po, sha_hex, names);
    cml_err err = perform(c, curl, &rq, &rs, diag);
    if (err == CML_OK) {
        rs.props.length = len;
        props_move(props_out, &rs.props);
    }
    response_release(&rs);
    return err;
}

/* Put Block for block number index of an upload whose ids start with prefix. */
static cml_err put_block(cml_blob_client *c, CURL *curl, const char *container, const char *name,
                         const char *prefix, unsigned index, const void *data, size_t len,
                         char **block_id, cml_diag *diag) {
    cml_err err = CML_OK;
    char raw[32], query[128];
    char *id = NULL, *id_enc = NULL;
    response rs = {0};
    *block_id = NULL;
    snprintf(raw, sizeof(raw), "%s-%06u", prefix, index);
    id = cml_base64_encode(raw, strlen(raw));
    id_enc = id ? cml_url_encode(id, false) : NULL;
    if (id_enc == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    snprintf(query, sizeof(query), "comp=block&blockid=%s", id_enc);
    request rq = {.method = "PUT",
                  .what = "put block",
                  .container = container,
                  .blob = name,
                  .query = query,
                  .upload = true,
                  .body = data,
                  .body_len = len};
    err = perform(c, curl, &rq, &rs, diag);
    if (err != CML_OK)
        goto done;
    *block_id = id;
    id = NULL;
done:
    response_release(&rs);
    cml_free(id);
    cml_free(id_enc);
    return err;
}

/* Put Block List committing ids[0..n). */
static cml_err put_block_list(cml_blob_client *c, CURL *curl, const char *container,
                              const char *name, char **ids, size_t n, uint64_t total,
                              const cml_blob_put_options *po, const char *sha_hex,
                              cml_blob_props *props_out, cml_diag *diag) {
    cml_err err = CML_OK;
    char names[20][80];
    cml_buf xml = {0};
    response rs = {0};
    buf_str(&xml, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<BlockList>");
    for (size_t i = 0; i < n; i++)
        buf_fmt(&xml, "<Latest>%s</Latest>", ids[i]);
    buf_str(&xml, "</BlockList>\n");
    if (cml_buf_status(&xml) != CML_OK) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    request rq = {.method = "PUT",
                  .what = "put block list",
                  .container = container,
                  .blob = name,
                  .query = "comp=blocklist",
                  .upload = true,
                  .body = xml.data,
                  .body_len = xml.len};
    add_header(&rq, "Content-Type", "application/xml");
    add_header(&rq, "x-ms-blob-content-type",
               po && po->content_type ? po->content_type : "application/octet-stream");
    add_put_headers(&rq, po, sha_hex, names);
    err = perform(c, curl, &rq, &rs, diag);
    if (err == CML_OK) {
        rs.props.length = total;
        props_move(props_out, &rs.props);
    }
done:
    response_release(&rs);
    cml_buf_release(&xml);
    return err;
}

static void free_ids(char **ids, size_t n) {
    for (size_t i = 0; ids != NULL && i < n; i++)
        cml_free(ids[i]);
    cml_free(ids);
}

static cml_err head_blob(cml_blob_client *c, const char *container, const char *name,
                         cml_blob_props *props, bool quiet_404, cml_diag *diag);

/*
 * Before a block upload, a conditional put checks the blob's state so that a
 * lost race fails before any block is sent. The commit stays conditional.
 */
static cml_err precheck_conditions(cml_blob_client *c, const char *container, const char *name,
                                   const cml_blob_put_options *po, cml_diag *diag) {
    if (po == NULL || (!po->if_none_match_any && po->if_match == NULL))
        return CML_OK;
    cml_blob_props p = {0};
    cml_err err = head_blob(c, container, name, &p, true, NULL);
    if (po->if_none_match_any && err == CML_OK)
        err = cml_diag_set(diag, CML_ERR_CONFLICT, "put blob %s/%s: the blob exists", container,
                           name);
    else if (po->if_none_match_any && err == CML_ERR_NOT_FOUND)
        err = CML_OK;
    else if (po->if_match != NULL && err == CML_OK && strcmp(p.etag, po->if_match) != 0)
        err = cml_diag_set(diag, CML_ERR_CONFLICT, "put blob %s/%s: the ETag has changed",
                           container, name);
    else if (po->if_match != NULL && err == CML_ERR_NOT_FOUND)
        err = cml_diag_set(diag, CML_ERR_CONFLICT, "put blob %s/%s: the blob is gone", container,
                           name);
    else if (err != CML_OK)
        err = CML_OK; /* let the upload itself report it */
    cml_blob_props_release(&p);
    return err;
}

static void random_prefix(char out[9]) { snprintf(out, 9, "%08x", random_u32()); }

cml_err cml_blob_put(cml_blob_client *c, const char *container, const char *name, const void *data,
                     size_t len, const cml_blob_put_options *po, cml_blob_props *props_out,
                     cml_diag *diag) {
    cml_err err = CML_OK;
    CURL *curl = NULL;
    char **ids = NULL;
    size_t n_ids = 0;
    char sha_hex[65], prefix[9];
    if (props_out != NULL)
        cml_blob_props_release(props_out);
    err = check_put_args(c, container, name, po, diag);
    if (err != CML_OK)
        goto done;
    if (data == NULL && len > 0) {
        err = CML_ERR_INVALID;
        goto done;
    }
    if (po != NULL && po->add_sha256)
        cml_sha256_hex(len ? data : "", len, sha_hex);
    const char *sha = po != NULL && po->add_sha256 ? sha_hex : NULL;
    if (len > c->opts.single_put_max) {
        err = precheck_conditions(c, container, name, po, diag);
        if (err != CML_OK)
            goto done;
    }
    curl = new_curl(diag);
    if (curl == NULL) {
        err = CML_ERR_INTERNAL;
        goto done;
    }
    if (len <= c->opts.single_put_max) {
        err = put_single(c, curl, container, name, data, len, po, sha, props_out, diag);
        goto done;
    }
    size_t bs = c->opts.block_size;
    size_t n_blocks = (len + bs - 1) / bs;
    if (n_blocks > MAX_BLOCKS) {
        err = cml_diag_set(diag, CML_ERR_INVALID, "put blob: more than %d blocks", MAX_BLOCKS);
        goto done;
    }
    ids = cml_calloc(n_blocks, sizeof(char *));
    if (ids == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    random_prefix(prefix);
    for (size_t i = 0; i < n_blocks; i++) {
        size_t off = i * bs, n = len - off < bs ? len - off : bs;
        err = put_block(c, curl, container, name, prefix, (unsigned)i, (const uint8_t *)data + off,
                        n, &ids[i], diag);
        if (err != CML_OK)
            goto done;
        n_ids++;
    }
    err = put_block_list(c, curl, container, name, ids, n_ids, len, po, sha, props_out, diag);
done:
    free_ids(ids, n_ids);
    if (curl != NULL)
        curl_easy_cleanup(curl);
    return err;
}

/* Reads exactly n bytes (fewer only at end of file); -1 on error. */
static ssize_t read_full(int fd, uint8_t *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

cml_err cml_blob_put_file(cml_blob_client *c, const char *container, const char *name,
                          const char *path, const cml_blob_put_options *po,
                          cml_blob_props *props_out, cml_diag *diag) {
    cml_err err = CML_OK;
    int fd = -1;
    uint8_t *buf = NULL;
    CURL *curl = NULL;
    EVP_MD_CTX *sha = NULL;
    char **ids = NULL;
    size_t n_ids = 0;
    char prefix[9], sha_hex[65];
    if (props_out != NULL)
        cml_blob_props_release(props_out);
    err = check_put_args(c, container, name, po, diag);
    if (err != CML_OK)
        goto done;
    fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        err = cml_diag_set(diag, CML_ERR_IO, "put blob: cannot read %s: %s", path ? path : "",
                           fd < 0 ? strerror(errno) : "not a regular file");
        goto done;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size <= c->opts.single_put_max) {
        buf = cml_malloc(size ? (size_t)size : 1);
        if (buf == NULL) {
            err = CML_ERR_NOMEM;
            goto done;
        }
        ssize_t got = read_full(fd, buf, (size_t)size);
        if (got < 0 || (uint64_t)got != size) {
            err = cml_diag_set(diag, CML_ERR_IO, "put blob: cannot read %s", path);
            goto done;
        }
        err = cml_blob_put(c, container, name, buf, (size_t)size, po, props_out, diag);
        goto done;
    }
    size_t bs = c->opts.block_size;
    uint64_t n_blocks = (size + bs - 1) / bs;
    if (n_blocks > MAX_BLOCKS) {
        err = cml_diag_set(diag, CML_ERR_INVALID, "put blob: %s needs more than %d blocks", path,
                           MAX_BLOCKS);
        goto done;
    }
    err = precheck_conditions(c, container, name, po, diag);
    if (err != CML_OK)
        goto done;
    buf = cml_malloc(bs);
    ids = cml_calloc((size_t)n_blocks, sizeof(char *));
    sha = EVP_MD_CTX_new();
    if (buf == NULL || ids == NULL || sha == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    if (EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1) {
        err = CML_ERR_INTERNAL;
        goto done;
    }
    curl = new_curl(diag);
    if (curl == NULL) {
        err = CML_ERR_INTERNAL;
        goto done;
    }
    random_prefix(prefix);
    uint64_t total = 0;
    for (uint64_t i = 0; i < n_blocks; i++) {
        ssize_t got = read_full(fd, buf, bs);
        if (got <= 0) {
            err = cml_diag_set(diag, CML_ERR_IO, "put blob: %s shrank or cannot be read", path);
            goto done;
        }
        EVP_DigestUpdate(sha, buf, (size_t)got);
        err = put_block(c, curl, container, name, prefix, (unsigned)i, buf, (size_t)got, &ids[i],
                        diag);
        if (err != CML_OK)
            goto done;
        n_ids++;
        total += (uint64_t)got;
    }
    if (total != size || read_full(fd, buf, 1) != 0) {
        err = cml_diag_set(diag, CML_ERR_IO, "put blob: %s changed size during the upload", path);
        goto done;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    if (EVP_DigestFinal_ex(sha, md, &md_len) != 1 || md_len != 32) {
        err = CML_ERR_INTERNAL;
        goto done;
    }
    for (unsigned i = 0; i < md_len; i++)
        snprintf(sha_hex + 2 * i, 3, "%02x", md[i]);
    err = put_block_list(c, curl, container, name, ids, n_ids, total, po,
                         po && po->add_sha256 ? sha_hex : NULL, props_out, diag);
done:
    if (fd >= 0)
        close(fd);
    cml_free(buf);
    free_ids(ids, n_ids);
    EVP_MD_CTX_free(sha);
    if (curl != NULL)
        curl_easy_cleanup(curl);
    return err;
}

/* ---- downloads ----------------------------------------------------------------------------- */

static cml_err check_get_args(const cml_blob_client *c, const char *container, const char *name,
                              const cml_blob_get_options *go, const char *what, cml_diag *diag) {
    if (c == NULL)
        return CML_ERR_INVALID;
    if (!container_name_ok(container))
        return cml_diag_set(diag, CML_ERR_INVALID, "%s: invalid container name", what);
    if (!blob_name_ok(name))
        return cml_diag_set(diag, CML_ERR_INVALID, "%s: invalid blob name", what);
    if (go != NULL && ((go->if_match && !header_value_ok(go->if_match)) ||
                       (go->if_none_match && !header_value_ok(go->if_none_match))))
        return cml_diag_set(diag, CML_ERR_INVALID, "%s: invalid ETag", what);
    return CML_OK;
}

/*
 * GET into the sink already set up in rq; checks length and digest. On 304
 * props->not_modified is set. rs holds the response on return.
 */
static cml_err get_into(cml_blob_client *c, request *rq, response *rs,
                        const cml_blob_get_options *go, cml_diag *diag) {
    cml_err err = CML_OK;
    CURL *curl = new_curl(diag);
    if (curl == NULL)
        return CML_ERR_INTERNAL;
    if (go != NULL && go->if_none_match != NULL)
        add_header(rq, "If-None-Match", go->if_none_match);
    if (go != NULL && go->if_match != NULL)
        add_header(rq, "If-Match", go->if_match);
    err = perform(c, curl, rq, rs, diag);
    if (err != CML_OK)
        goto done;
    if (rs->status == 304) {
        rs->props.not_modified = true;
        goto done;
    }
    if (rs->have_length && rs->received != rs->props.length) {
        atomic_fetch_add(&c->stats.failures[CML_BLOB_FAIL_PROTOCOL], 1);
        err = cml_diag_set(diag, CML_ERR_STORAGE, "get blob %s/%s: got %llu of %llu bytes",
                           rq->container, rq->blob, (unsigned long long)rs->received,
                           (unsigned long long)rs->props.length);
        goto done;
    }
    rs->props.length = rs->received;
    const char *want = cml_blob_props_meta(&rs->props, CML_BLOB_META_SHA256);
    if (go != NULL && go->verify_sha256 && want != NULL && rq->sha != NULL) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned md_len = 0;
        char hex[65] = "";
        if (EVP_DigestFinal_ex(rq->sha, md, &md_len) == 1 && md_len == 32)
            for (unsigned i = 0; i < md_len; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
        if (strcasecmp(hex, want) != 0) {
            err = cml_diag_set(diag, CML_ERR_CHECKSUM,
                               "get blob %s/%s: content does not match its sha256 metadata",
                               rq->container, rq->blob);
            goto done;
        }
    }
done:
    curl_easy_cleanup(curl);
    return err;
}

cml_err cml_blob_get_file(cml_blob_client *c, const char *container, const char *name,
                          const char *path, const cml_blob_get_options *go,
                          cml_blob_props *props_out, cml_diag *diag) {
    cml_err err = CML_OK;
    char *tmp = NULL, *dir_copy = NULL;
    int fd = -1;
    response rs = {0};
    request rq = {.method = "GET",
                  .what = "get blob",
                  .container = container,
                  .blob = name,
                  .sink = SINK_FD,
                  .fd = -1};
    if (props_out != NULL)
        cml_blob_props_release(props_out);
    err = check_get_args(c, container, name, go, "get blob", diag);
    if (err != CML_OK)
        goto done;
    if (path == NULL || *path == '\0') {
        err = cml_diag_set(diag, CML_ERR_INVALID, "get blob: no target path");
        goto done;
    }
    size_t plen = strlen(path) + 16;
    tmp = cml_malloc(plen);
    dir_copy = cml_strdup(path);
    rq.sha = EVP_MD_CTX_new();
    if (tmp == NULL || dir_copy == NULL || rq.sha == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    snprintf(tmp, plen, "%s.tmp.XXXXXX", path);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        err = cml_diag_set(diag, CML_ERR_IO, "get blob: cannot create a file next to %s: %s", path,
                           strerror(errno));
        cml_free(tmp);
        tmp = NULL;
        goto done;
    }
    fchmod(fd, 0644);
    rq.fd = fd;
    err = get_into(c, &rq, &rs, go, diag);
    if (err != CML_OK || rs.props.not_modified)
        goto done;
    if (fsync(fd) != 0) {
        err = cml_diag_set(diag, CML_ERR_IO, "get blob: cannot fsync %s: %s", tmp, strerror(errno));
        goto done;
    }
    int rc = close(fd);
    fd = -1;
    if (rc != 0) {
        err = cml_diag_set(diag, CML_ERR_IO, "get blob: cannot close %s: %s", tmp, strerror(errno));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        err = cml_diag_set(diag, CML_ERR_IO, "get blob: cannot rename to %s: %s", path,
                           strerror(errno));
        goto done;
    }
    cml_free(tmp);
    tmp = NULL;
    int dfd = open(dirname(dir_copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
done:
    if (fd >= 0)
        close(fd);
    if (tmp != NULL)
        unlink(tmp);
    if (err == CML_OK)
        props_move(props_out, &rs.props);
    response_release(&rs);
    EVP_MD_CTX_free(rq.sha);
    cml_free(tmp);
    cml_free(dir_copy);
    return err;
}

cml_err cml_blob_get(cml_blob_client *c, const char *container, const char *name, size_t max,
                     const cml_blob_get_options *go, uint8_t **data, size_t *len,
                     cml_blob_props *props_out, cml_diag *diag) {
    cml_err err = CML_OK;
    response rs = {0};
    request rq = {.method = "GET",
                  .what = "get blob",
                  .container = container,
                  .blob = name,
                  .sink = SINK_MEM,
                  .mem_max = max};
    *data = NULL;
    *len = 0;
    if (props_out != NULL)
        cml_blob_props_release(props_out);
    err = check_get_args(c, container, name, go, "get blob", diag);
    if (err != CML_OK)
        goto done;
    rq.sha = EVP_MD_CTX_new();
    if (rq.sha == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    err = get_into(c, &rq, &rs, go, diag);
    if (err != CML_OK || rs.props.not_modified)
        goto done;
    if (rs.body.data == NULL) {
        *data = cml_malloc(1);
        if (*data == NULL)
            err = CML_ERR_NOMEM;
    } else {
        *data = cml_buf_take(&rs.body, len);
    }
done:
    if (err == CML_OK)
        props_move(props_out, &rs.props);
    response_release(&rs);
    EVP_MD_CTX_free(rq.sha);
    return err;
}

/* HEAD; with quiet_404 a missing blob is an expected answer (not counted or logged). */
static cml_err head_blob(cml_blob_client *c, const char *container, const char *name,
                         cml_blob_props *props, bool quiet_404, cml_diag *diag) {
    cml_blob_props_release(props);
    cml_err err = check_get_args(c, container, name, NULL, "head blob", diag);
    if (err != CML_OK)
        return err;
    response rs = {0};
    request rq = {.method = "HEAD",
                  .what = "head blob",
                  .container = container,
                  .blob = name,
                  .ok_status = quiet_404 ? 404 : 0};
    err = perform_once(c, &rq, &rs, diag);
    if (err == CML_OK && rs.status == 404)
        err = cml_diag_set(diag, CML_ERR_NOT_FOUND, "head blob %s/%s: HTTP 404", container, name);
    else if (err == CML_OK)
        props_move(props, &rs.props);
    response_release(&rs);
    return err;
}

cml_err cml_blob_head(cml_blob_client *c, const char *container, const char *name,
                      cml_blob_props *props, cml_diag *diag) {
    return head_blob(c, container, name, props, false, diag);
}

cml_err cml_blob_delete(cml_blob_client *c, const char *container, const char *name,
                        const char *if_match, cml_diag *diag) {
    cml_err err = check_get_args(c, container, name, NULL, "delete blob", diag);
    if (err != CML_OK)
        return err;
    if (if_match != NULL && !header_value_ok(if_match))
        return cml_diag_set(diag, CML_ERR_INVALID, "delete blob: invalid ETag");
    response rs = {0};
    request rq = {.method = "DELETE", .what = "delete blob", .container = container, .blob = name};
    add_header(&rq, "x-ms-delete-snapshots", "include");
    if (if_match != NULL)
        add_header(&rq, "If-Match", if_match);
    err = perform_once(c, &rq, &rs, diag);
    response_release(&rs);
    return err;
}

/* ---- listing ------------------------------------------------------------------------------- */

cml_err cml_blob_list_blobs(cml_blob_client *c, const char *container, const char *prefix,
                            cml_blob_list *out, cml_diag *diag) {
    cml_err err = CML_OK;
    CURL *curl = NULL;
    char *marker = NULL, *query = NULL, *prefix_enc = NULL;
    response rs = {0};
    out->items = NULL;
    out->n = 0;
    if (c == NULL || !container_name_ok(container)) {
        err = cml_diag_set(diag, CML_ERR_INVALID, "list blobs: invalid container name");
        goto done;
    }
    if (prefix != NULL && *prefix != '\0') {
        prefix_enc = cml_url_encode(prefix, false);
        if (prefix_enc == NULL) {
            err = CML_ERR_NOMEM;
            goto done;
        }
    }
    curl = new_curl(diag);
    if (curl == NULL) {
        err = CML_ERR_INTERNAL;
        goto done;
    }
    for (unsigned page = 0;; page++) {
        cml_buf q = {0};
        buf_str(&q, "restype=container&comp=list");
        if (prefix_enc != NULL) {
            buf_str(&q, "&prefix=");
            buf_str(&q, prefix_enc);
        }
        if (marker != NULL) {
            char *m = cml_url_encode(marker, false);
            if (m == NULL) {
                cml_buf_release(&q);
                err = CML_ERR_NOMEM;
                goto done;
            }
            buf_str(&q, "&marker=");
            buf_str(&q, m);
            cml_free(m);
        }
        if (c->opts.list_page_size > 0)
            buf_fmt(&q, "&maxresults=%u", c->opts.list_page_size);
        cml_free(query);
        query = blob_buf_take_str(&q);
        if (query == NULL) {
            err = CML_ERR_NOMEM;
            goto done;
        }
        request rq = {.method = "GET",
                      .what = "list blobs",
                      .container = container,
                      .query = query,
                      .sink = SINK_MEM,
                      .mem_max = LIST_BODY_MAX};
        response_release(&rs);
        err = perform(c, curl, &rq, &rs, diag);
        if (err != CML_OK)
            goto done;
        cml_free(marker);
        marker = NULL;
        err = cml_blob_parse_list((const char *)rs.body.data, rs.body.len, out, &marker);
        if (err != CML_OK) {
            atomic_fetch_add(&c->stats.failures[CML_BLOB_FAIL_PROTOCOL], 1);
            err = cml_diag_set(diag, err == CML_ERR_NOMEM ? err : CML_ERR_STORAGE,
                               "list blobs %s: malformed answer (page %u)", container, page + 1);
            goto done;
        }
        if (marker == NULL)
            break;
    }
done:
    response_release(&rs);
    cml_free(marker);
    cml_free(query);
    cml_free(prefix_enc);
    if (curl != NULL)
        curl_easy_cleanup(curl);
    return err;
}
