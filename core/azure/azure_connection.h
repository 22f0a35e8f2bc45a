/*
 * Azure Storage connection strings, as Azure documents them:
 *
 *   DefaultEndpointsProtocol=https;AccountName=NAME;AccountKey=BASE64;EndpointSuffix=core.windows.net
 *   BlobEndpoint=https://NAME.blob.core.windows.net;SharedAccessSignature=sv=...&sig=...
 *   UseDevelopmentStorage=true[;DevelopmentStorageProxyUri=http://HOST]
 *   UseDevelopmentStorage=true;BlobEndpoint=http://127.0.0.1:PORT/devstoreaccount1
 *
 * Keys are case-insensitive; empty segments (a trailing ';') are ignored;
 * QueueEndpoint, TableEndpoint and FileEndpoint are accepted and ignored
 * (this client only talks to blobs). A string without credentials is an
 * anonymous one: usable with a managed identity (see blob_client.h).
 *
 * Endpoints are path-style when the host is an IP address or "localhost", or
 * when BlobEndpoint has a path: the account is then the first path segment
 * (http://127.0.0.1:10000/devstoreaccount1). Otherwise they are virtual-host
 * style (https://NAME.blob.core.windows.net).
 *
 * Everything else is rejected with CML_ERR_CONFIG and a diag naming the key
 * at fault; the diag never contains the AccountKey or the SAS token.
 */
#ifndef CML_AZURE_CONNECTION_H
#define CML_AZURE_CONNECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/cml_error.h"

/* The emulator's well-known account (public, documented by Microsoft). */
#define CML_AZ_DEV_ACCOUNT "devstoreaccount1"
#define CML_AZ_DEV_KEY                                                                             \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

typedef enum cml_az_cred {
    CML_AZ_CRED_NONE = 0,   /* anonymous (or a managed identity chosen by the client) */
    CML_AZ_CRED_SHARED_KEY, /* AccountKey */
    CML_AZ_CRED_SAS         /* SharedAccessSignature */
} cml_az_cred;

typedef struct cml_az_conn {
    char *account;    /* account name; NULL only for a custom-domain SAS/anonymous endpoint */
    uint8_t *key;     /* decoded AccountKey, or NULL */
    size_t key_len;   /* bytes of key */
    char *sas;        /* SAS token without the leading '?', or NULL */
    char *origin;     /* "scheme://host[:port]", no trailing '/' */
    char *base_path;  /* "" (virtual-host style) or "/ACCOUNT" (path-style), no trailing '/' */
    bool https;       /* the scheme is https */
    bool path_style;  /* the account is the first path segment */
    bool dev_storage; /* UseDevelopmentStorage=true */
    cml_az_cred cred; /* which credential the string carries */
} cml_az_conn;

/*
 * Parses a connection string into a new cml_az_conn (*out, freed with
 * cml_az_conn_free). CML_ERR_CONFIG with a diag on any error.
 */
cml_err cml_az_conn_parse(const char *text, cml_az_conn **out, cml_diag *diag);

/* A deep copy (caller frees), or NULL when out of memory. */
cml_az_conn *cml_az_conn_dup(const cml_az_conn *c);

/* Wipes the key and SAS, then frees. Accepts NULL. */
void cml_az_conn_free(cml_az_conn *c);

/*
 * The endpoint URL of the blob service ("origin" + "base_path"), e.g.
 * "https://acct.blob.core.windows.net" or "http://127.0.0.1:10000/devstoreaccount1".
 * A new string the caller frees, or NULL when out of memory.
 */
char *cml_az_conn_endpoint(const cml_az_conn *c);

#endif
