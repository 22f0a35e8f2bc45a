/*
 * What the files of the blob model store share (not public): the handle, the retry counts and
 * the helpers. blob_store.c opens the store and holds versions and training data,
 * blob_layout.c the names of the blobs and active.json, blob_publish.c publishing, and
 * blob_sync.c bringing versions and the selection into this instance.
 */
#ifndef CML_BLOB_STORE_INTERNAL_H
#define CML_BLOB_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "azure/blob_store.h"

/* Attempts of loops that restart when a blob moves under them. */
#define SYNC_ATTEMPTS 3
#define ACTIVE_ATTEMPTS 5
#define PUBLISH_ATTEMPTS 3
/* Largest training data file uploaded or hashed. */
#define TRAINING_DATA_MAX ((size_t)2 << 30)

struct cml_blob_store {
    cml_blob_client *client;         /* owned */
    char *container;                 /* owned */
    char *pointer[CML_MODEL__COUNT]; /* owned, indexed by cml_model_type */
    cml_blob_log_fn log;             /* the client's log callback, for the store's own lines */
    void *log_ctx;
};

/* Copies src into dst of cap bytes (truncating). */
void bs_copy_str(char *dst, size_t cap, const char *src);

/* One line of the store's own log, through the client's log callback. */
void bs_store_log(const cml_blob_store *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* True for classic and ensemble. */
bool bs_type_known(cml_model_type t);

/* True for 64 hex digits. */
bool bs_sha_hex_ok(const char *s);

/* True for a blob name the store may use. */
bool bs_blob_name_ok(const char *s);

/* Writes buf to path (inside dir, created when missing) through a temporary file and rename. */
cml_err bs_write_local(const char *dir, const char *path, const void *buf, size_t len,
                       cml_diag *diag);

/* True when path is a file whose SHA-256 is sha (hex). */
bool bs_local_has(const char *path, const char *sha);

/* Points dir/TYPE_latest.model at version unless it already does. */
cml_err bs_point_local(const char *dir, cml_model_type type, const char *version, cml_diag *diag);

/* Reads a model file whole and checks it deserialises; *m has one reference. */
cml_err bs_read_model_file(const char *path, uint8_t **buf, size_t *len, cml_model **m,
                           char sha[65], cml_diag *diag);

#endif
