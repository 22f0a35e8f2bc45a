/*
 * Azure Storage authorisation: Shared Key signing (string-to-sign and
 * HMAC-SHA256 with OpenSSL's EVP_MAC), SAS tokens, and managed identity
 * bearer tokens (App Service / Functions style IDENTITY_ENDPOINT +
 * IDENTITY_HEADER) cached until shortly before they expire.
 *
 * Secrets (account keys, SAS signatures, bearer tokens) never appear in a
 * cml_diag message written by these functions.
 */
#ifndef CML_AZURE_AUTH_H
#define CML_AZURE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/cml_error.h"

/* The REST API version every request sends (accepted by Azure and Azurite 3.35). */
#define CML_AZ_API_VERSION "2021-08-06"

/* The resource a managed identity token is requested for. */
#define CML_AZ_STORAGE_RESOURCE "https://storage.azure.com/"

/* ---- small encoders shared by the Azure modules ------------------------ */

/* Standard base64 with padding; a new string the caller frees (cml_free). */
char *cml_base64_encode(const void *data, size_t len);

/*
 * Strict base64 decode (standard alphabet, padding required, no whitespace).
 * On success *out is a new buffer the caller frees (cml_free) and *out_len its
 * length. CML_ERR_INVALID on malformed input, CML_ERR_NOMEM.
 */
cml_err cml_base64_decode(const char *text, uint8_t **out, size_t *out_len);

/*
 * Percent-encodes every byte outside the RFC 3986 unreserved set
 * (A-Z a-z 0-9 - . _ ~); '/' is kept when keep_slash is true (URL paths).
 * A new string the caller frees, or NULL when out of memory.
 */
char *cml_url_encode(const char *s, bool keep_slash);

/*
 * Decodes %XX escapes ('+' stays '+'). A new string the caller frees, or NULL
 * on a malformed escape, an encoded NUL, or no memory.
 */
char *cml_url_decode(const char *s);

/* RFC 1123 date in GMT ("Sun, 06 Nov 1994 08:49:37 GMT") into out[30]. */
void cml_az_http_date(time_t t, char out[30]);

/* ---- Shared Key ----------------------------------------------------------- */

/* A request header as the signer sees it (names compared case-insensitively). */
typedef struct cml_az_header {
    const char *name;
    const char *value;
} cml_az_header;

/*
 * The Shared Key string-to-sign of a Blob service request (version
 * 2009-09-19 and later):
 *
 *   VERB \n Content-Encoding \n Content-Language \n Content-Length \n
 *   Content-MD5 \n Content-Type \n Date \n If-Modified-Since \n If-Match \n
 *   If-None-Match \n If-Unmodified-Since \n Range \n
 *   CanonicalizedHeaders (sorted lower-case x-ms-* "name:value\n")
 *   CanonicalizedResource ("/" account path, then "\nname:value" for each
 *   query parameter, names lower-cased and sorted, values decoded, repeated
 *   names joined with ',')
 *
 * Content-Length "0" is signed as the empty string. path is the request's
 * URI path exactly as sent (percent-encoded, starting with '/'; with
 * path-style endpoints it already begins with "/ACCOUNT", which therefore
 * appears twice). query is the raw query without '?' (NULL or "" for none).
 * Headers other than the standard ones and x-ms-* are ignored.
 * *out is a new string the caller frees.
 */
cml_err cml_az_string_to_sign(const char *verb, const char *account, const char *path,
                              const char *query, const cml_az_header *headers, size_t n_headers,
                              char **out);

/* HMAC-SHA256 of msg with key into mac[32], through EVP_MAC. */
cml_err cml_az_hmac_sha256(const uint8_t *key, size_t key_len, const void *msg, size_t msg_len,
                           uint8_t mac[32]);

/*
 * The Authorization header value "SharedKey ACCOUNT:BASE64(HMAC)" for a
 * string-to-sign. *out is a new string the caller frees.
 */
cml_err cml_az_shared_key_authorization(const char *account, const uint8_t *key, size_t key_len,
                                        const char *string_to_sign, char **out);

/* ---- SAS ------------------------------------------------------------------ */

/*
 * Checks a SAS token (with or without a leading '?') and returns it without
 * the '?' in *out (a new string the caller frees). It must be a query string
 * of name=value pairs with a non-empty "sig" and only URL-safe characters.
 * CML_ERR_CONFIG otherwise, with a diag that never shows the signature.
 */
cml_err cml_az_sas_normalize(const char *token, char **out, cml_diag *diag);

/*
 * url with the SAS token appended ('?' or '&' as needed). token may be NULL or
 * empty (then a plain copy). A new string the caller frees, NULL on no memory.
 */
char *cml_az_url_with_sas(const char *url, const char *token);

/*
 * A copy of a URL or query string safe to log: the values of "sig" (SAS
 * signature) and of any other credential-like parameter are replaced by
 * "REDACTED". A new string the caller frees, NULL on no memory.
 */
char *cml_az_redact(const char *url_or_query);

/* ---- managed identity ------------------------------------------------------ */

typedef struct cml_az_mi cml_az_mi;

typedef struct cml_az_mi_options {
    const char *endpoint;  /* NULL: getenv("IDENTITY_ENDPOINT") */
    const char *header;    /* NULL: getenv("IDENTITY_HEADER") */
    const char *resource;  /* NULL: CML_AZ_STORAGE_RESOURCE */
    const char *client_id; /* user-assigned identity, or NULL for the system one */
    const char *ca_path;   /* CA file or directory for an https endpoint, or NULL */
    long timeout_ms;       /* per attempt; 0: 10000 */
    int refresh_margin_s;  /* refresh this long before expiry; 0: 300 */
    unsigned max_attempts; /* 0: 3 */
} cml_az_mi_options;

/*
 * A token source for the managed identity. Strings of opts are copied.
 * CML_ERR_CONFIG when no endpoint or header is configured. *out is a new
 * object the caller frees with cml_az_mi_free. Thread-safe after creation.
 */
cml_err cml_az_mi_new(const cml_az_mi_options *opts, cml_az_mi **out, cml_diag *diag);

/* Accepts NULL. */
void cml_az_mi_free(cml_az_mi *mi);

/*
 * A bearer token for the resource: the cached one while it is more than the
 * refresh margin from expiry, otherwise a freshly fetched one (GET
 * ENDPOINT?resource=...&api-version=2019-08-01 with X-IDENTITY-HEADER). When a
 * refresh fails but the cached token has not expired yet, the cached token
 * is returned. *token is a new string the caller frees; *expires_on (may be
 * NULL) gets its expiry (seconds since the epoch).
 */
cml_err cml_az_mi_token(cml_az_mi *mi, char **token, time_t *expires_on, cml_diag *diag);

/* How many token requests reached the endpoint (for tests and metrics). */
unsigned long cml_az_mi_fetch_count(cml_az_mi *mi);

#endif
