/*
 * Azure Blob Storage client (REST API version CML_AZ_API_VERSION over
 * libcurl): containers, block blobs up and down, properties, listing,
 * deletion, conditional requests, retries.
 *
 * libcurl: the caller runs curl_global_init(CURL_GLOBAL_DEFAULT) once, before
 * any thread starts and before the first client is made, and
 * curl_global_cleanup() once at exit. Each call uses its own CURL easy
 * handle, so one client may be shared by any number of threads.
 *
 * TLS peer and host verification are always on; only the CA bundle can be
 * chosen. Transient failures (HTTP 408, 429, 500, 502, 503, 504, connection
 * errors and timeouts) are retried with exponential backoff and full jitter,
 * waiting at least what Retry-After asks (up to retry_after_max_ms), at most
 * max_retries times. Every failed attempt is counted by kind (cml_blob_stats)
 * and reported as one line to the log callback; those lines never contain a
 * key, a SAS token or a bearer token.
 *
 * Errors: 404 -> CML_ERR_NOT_FOUND; 409 and 412 -> CML_ERR_CONFLICT; a 304
 * answer to If-None-Match -> CML_OK with props.not_modified set; any other
 * failure -> CML_ERR_STORAGE (CML_ERR_IO for local files). The diag says
 * which request failed, the HTTP status and the service's error code.
 */
#ifndef CML_BLOB_CLIENT_H
#define CML_BLOB_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "azure/azure_connection.h"
#include "base/cml_error.h"

#define CML_BLOB_DEFAULT_SINGLE_PUT_MAX ((size_t)4 << 20)
#define CML_BLOB_DEFAULT_BLOCK_SIZE ((size_t)4 << 20)
#define CML_BLOB_MAX_BLOCK_SIZE ((size_t)100 << 20)
/* Metadata name holding the lower-case hex SHA-256 of a blob's content. */
#define CML_BLOB_META_SHA256 "sha256"

/* Why an attempt failed: one counter each. */
typedef enum cml_blob_failure {
    CML_BLOB_FAIL_CONNECT,   /* could not resolve or connect, connection reset */
    CML_BLOB_FAIL_TIMEOUT,   /* connect or total timeout */
    CML_BLOB_FAIL_TLS,       /* TLS handshake or certificate verification */
    CML_BLOB_FAIL_THROTTLED, /* 429, 503 ServerBusy */
    CML_BLOB_FAIL_SERVER,    /* 408, 500, 502, 503, 504 and other 5xx */
    CML_BLOB_FAIL_AUTH,      /* 401, 403 */
    CML_BLOB_FAIL_NOT_FOUND, /* 404 */
    CML_BLOB_FAIL_CONFLICT,  /* 409, 412 */
    CML_BLOB_FAIL_CLIENT,    /* any other 4xx */
    CML_BLOB_FAIL_PROTOCOL,  /* a response the client cannot use (bad XML, short body) */
    CML_BLOB_FAIL_LOCAL,     /* local file or memory trouble during a transfer */
    CML_BLOB_FAIL__COUNT
} cml_blob_failure;

/* Static name of a failure kind ("connect", "timeout", ...), for metrics labels. */
const char *cml_blob_failure_name(cml_blob_failure kind);

/* Counters a service can export; all monotonic. */
typedef struct cml_blob_stats {
    atomic_uint_fast64_t requests;                       /* HTTP attempts made */
    atomic_uint_fast64_t retries;                        /* attempts that were retries */
    atomic_uint_fast64_t gave_up;                        /* operations failing after retries */
    atomic_uint_fast64_t failures[CML_BLOB_FAIL__COUNT]; /* failed attempts by kind */
    atomic_uint_fast64_t bytes_up, bytes_down;           /* body bytes sent and received */
} cml_blob_stats;

/* A plain copy of the counters. */
typedef struct cml_blob_stats_snapshot {
    uint64_t requests, retries, gave_up;
    uint64_t failures[CML_BLOB_FAIL__COUNT];
    uint64_t bytes_up, bytes_down;
} cml_blob_stats_snapshot;

/* One line per failed attempt, without a trailing newline; line is valid during the call. */
typedef void (*cml_blob_log_fn)(void *ctx, const char *line);

typedef struct cml_blob_options {
    const char *ca_path;       /* CA bundle file or directory; NULL: the system's */
    long connect_timeout_ms;   /* 0: 10000 */
    long timeout_ms;           /* whole attempt, body included; 0: 300000 */
    unsigned max_retries;      /* retries after the first attempt; default 4 */
    long retry_base_ms;        /* first backoff; 0: 250 */
    long retry_max_ms;         /* backoff cap; 0: 8000 */
    long retry_after_max_ms;   /* cap on a server's Retry-After; 0: 30000 */
    size_t single_put_max;     /* larger uploads use blocks; 0: 4 MiB */
    size_t block_size;         /* Put Block size; 0: 4 MiB, at most 100 MiB */
    unsigned list_page_size;   /* maxresults of List Blobs; 0: the service's default */
    bool use_managed_identity; /* Bearer tokens from IDENTITY_ENDPOINT instead of a key */
    const char *mi_endpoint;   /* NULL: getenv("IDENTITY_ENDPOINT") */
    const char *mi_header;     /* NULL: getenv("IDENTITY_HEADER") */
    const char *mi_client_id;  /* user-assigned identity, or NULL */
    cml_blob_log_fn log;       /* NULL: no logging */
    void *log_ctx;
} cml_blob_options;

/* Defaults (max_retries 4, everything else 0 meaning its default). */
void cml_blob_options_init(cml_blob_options *opts);

typedef struct cml_blob_client cml_blob_client;

/*
 * A client for the account of conn (deep-copied; the caller keeps conn).
 * opts may be NULL (defaults); its strings are copied. A managed identity
 * needs use_managed_identity and IDENTITY_ENDPOINT/IDENTITY_HEADER; it then
 * replaces any key of conn, and needs an https endpoint (or a loopback one). CML_ERR_CONFIG when no
 * usable credential or options are out of range. *out is freed with cml_blob_client_free.
 */
cml_err cml_blob_client_new(const cml_az_conn *conn, const cml_blob_options *opts,
                            cml_blob_client **out, cml_diag *diag);

/* cml_az_conn_parse + cml_blob_client_new. */
cml_err cml_blob_client_from_string(const char *connection_string, const cml_blob_options *opts,
                                    cml_blob_client **out, cml_diag *diag);

/* Accepts NULL. */
void cml_blob_client_free(cml_blob_client *c);

/* The client's live counters (owned by the client; valid until it is freed). */
cml_blob_stats *cml_blob_client_stats(cml_blob_client *c);

/* Copies the counters into *out. */
void cml_blob_stats_read(const cml_blob_stats *stats, cml_blob_stats_snapshot *out);

/* ---- results --------------------------------------------------------------- */

typedef struct cml_blob_meta {
    char *name; /* without the x-ms-meta- prefix, as the service spells it */
    char *value;
} cml_blob_meta;

/* Properties of one blob; release with cml_blob_props_release. */
typedef struct cml_blob_props {
    char etag[128];         /* as the service sends it, quotes included */
    char last_modified[64]; /* RFC 1123 date */
    char content_type[128];
    uint64_t length;
    bool not_modified;   /* a 304 answered If-None-Match: nothing was transferred */
    cml_blob_meta *meta; /* owned array */
    size_t n_meta;
} cml_blob_props;

/* Frees the metadata and zeroes props. Accepts NULL. */
void cml_blob_props_release(cml_blob_props *props);

/* The value of a metadata name (case-insensitive) or NULL; points into props. */
const char *cml_blob_props_meta(const cml_blob_props *props, const char *name);

/* ---- containers ------------------------------------------------------------- */

/* Creates the container unless it exists; *created (may be NULL) tells which. */
cml_err cml_blob_create_container(cml_blob_client *c, const char *container, bool *created,
                                  cml_diag *diag);

/* Deletes a container. 404 -> CML_ERR_NOT_FOUND. */
cml_err cml_blob_delete_container(cml_blob_client *c, const char *container, cml_diag *diag);

/* ---- uploads ----------------------------------------------------------------- */

typedef struct cml_blob_put_options {
    const char *content_type;  /* NULL: application/octet-stream */
    const char *if_match;      /* write only if the blob has this ETag */
    bool if_none_match_any;    /* write only if the blob does not exist (If-None-Match: *) */
    bool add_sha256;           /* add metadata sha256=<hex of the content> */
    const cml_blob_meta *meta; /* more metadata (names: letters, digits, '_') */
    size_t n_meta;
} cml_blob_put_options;

/*
 * Uploads len bytes as a block blob: one Put Blob up to single_put_max, else
 * Put Block (block_size each) + Put Block List. po may be NULL. props_out
 * (may be NULL) gets the new ETag and Last-Modified; release it.
 */
cml_err cml_blob_put(cml_blob_client *c, const char *container, const char *name, const void *data,
                     size_t len, const cml_blob_put_options *po, cml_blob_props *props_out,
                     cml_diag *diag);

/* As cml_blob_put, reading the file at path (streamed block by block when large). */
cml_err cml_blob_put_file(cml_blob_client *c, const char *container, const char *name,
                          const char *path, const cml_blob_put_options *po,
                          cml_blob_props *props_out, cml_diag *diag);

/* ---- downloads ------------------------------------------------------------------ */

typedef struct cml_blob_get_options {
    const char *if_none_match; /* an ETag: 304 -> props.not_modified, nothing written */
    const char *if_match;      /* an ETag: 412 -> CML_ERR_CONFLICT */
    bool verify_sha256;        /* compare the content with metadata sha256 when present */
} cml_blob_get_options;

/*
 * Downloads a blob to path: streamed into a temporary file in the same
 * directory, fsync'd, checked (length, and sha256 if asked), then renamed
 * over path. On any failure path is untouched and the temporary file is
 * removed. go may be NULL. props_out (may be NULL) gets the ETag, length and
 * metadata; release it. A checksum mismatch is CML_ERR_CHECKSUM.
 */
cml_err cml_blob_get_file(cml_blob_client *c, const char *container, const char *name,
                          const char *path, const cml_blob_get_options *go,
                          cml_blob_props *props_out, cml_diag *diag);

/*
 * Downloads a blob of at most max bytes into memory. *data is a new buffer
 * the caller frees (cml_free; NULL when not modified), *len its length.
 */
cml_err cml_blob_get(cml_blob_client *c, const char *container, const char *name, size_t max,
                     const cml_blob_get_options *go, uint8_t **data, size_t *len,
                     cml_blob_props *props_out, cml_diag *diag);

/* Get Blob Properties: ETag, length, content type, metadata. props must be released. */
cml_err cml_blob_head(cml_blob_client *c, const char *container, const char *name,
                      cml_blob_props *props, cml_diag *diag);

/* ---- listing and deletion -------------------------------------------------------- */

typedef struct cml_blob_item {
    char *name;
    char *etag; /* quoted as in the ETag header (listings send it bare), usable in If-Match */
    char *last_modified;
    uint64_t length;
} cml_blob_item;

typedef struct cml_blob_list {
    cml_blob_item *items; /* owned */
    size_t n;
} cml_blob_list;

/*
 * Every blob whose name starts with prefix (NULL or "" for all), in the
 * service's order (by name), following NextMarker across pages. *out must be
 * released with cml_blob_list_release (also after a failure).
 */
cml_err cml_blob_list_blobs(cml_blob_client *c, const char *container, const char *prefix,
                            cml_blob_list *out, cml_diag *diag);

/* Frees the items and zeroes list. Accepts NULL. */
void cml_blob_list_release(cml_blob_list *list);

/* Deletes a blob (and its snapshots); if_match (may be NULL) makes it conditional. */
cml_err cml_blob_delete(cml_blob_client *c, const char *container, const char *name,
                        const char *if_match, cml_diag *diag);

/*
 * Parses one page of a List Blobs answer (EnumerationResults XML): appends
 * its blobs to out and sets *next_marker (a new string the caller frees, or
 * NULL on the last page). Exposed for unit tests. CML_ERR_FORMAT on bad XML.
 */
cml_err cml_blob_parse_list(const char *xml, size_t len, cml_blob_list *out, char **next_marker);

/* The URL of a blob (path-encoded, no SAS); a new string the caller frees or NULL. */
char *cml_blob_url(const cml_blob_client *c, const char *container, const char *name);

#endif
