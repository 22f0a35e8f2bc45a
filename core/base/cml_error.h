/* One error enum for the whole project, with a strerror. */
#ifndef CML_ERROR_H
#define CML_ERROR_H

#include <stddef.h>

typedef enum cml_err {
    CML_OK = 0,
    CML_ERR_NOMEM,       /* allocation failed */
    CML_ERR_IO,          /* read, write, fsync or rename failed */
    CML_ERR_INVALID,     /* bad argument or bad input data */
    CML_ERR_CSV,         /* malformed CSV */
    CML_ERR_UTF8,        /* invalid UTF-8 */
    CML_ERR_DATA,        /* well-formed data that cannot train (one label, too few rows) */
    CML_ERR_FORMAT,      /* not a model file, or a truncated one */
    CML_ERR_VERSION,     /* model file from a future format version */
    CML_ERR_CHECKSUM,    /* model file whose SHA-256 does not match */
    CML_ERR_UNSUPPORTED, /* this build lacks what the request needs */
    CML_ERR_TRAIN,       /* a learning library failed */
    CML_ERR_NOT_FOUND,   /* no such file, version or key */
    CML_ERR_CONFIG,      /* bad configuration value */
    CML_ERR_STORAGE,     /* blob storage request failed */
    CML_ERR_CONFLICT,    /* a conditional write lost, or a job already runs */
    CML_ERR_INTERNAL,    /* a bug: an invariant did not hold */
    CML_ERR_UNAVAILABLE, /* the shared state's database cannot be reached (retry later) */
    CML_ERR__COUNT
} cml_err;

/* Static string, never NULL, for any value (unknown values included). */
const char *cml_strerror(cml_err err);

/*
 * A human-readable reason attached to an error: which line of a CSV, which
 * key of a config, which member of a model. Callers own the struct (usually
 * on the stack); functions that fail fill it with cml_diag_set.
 */
typedef struct cml_diag {
    char msg[256];
} cml_diag;

/* printf-style; a NULL diag is accepted and ignored. Returns err for chaining. */
cml_err cml_diag_set(cml_diag *diag, cml_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
