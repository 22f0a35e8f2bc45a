/*
 * The local model store (and cache of the blob store): one directory holding
 * TYPE_VERSION.model files and a TYPE_latest.model symlink per type, the same
 * layout `cultivate-ml train --out DIR` writes.
 */
#ifndef CML_LOCAL_STORE_H
#define CML_LOCAL_STORE_H

#include <stddef.h>

#include "base/cml_error.h"
#include "model/model.h"

#define CML_VERSION_MAX 40

/* dir/TYPE_VERSION.model into buf. */
void cml_local_store_path(const char *dir, const char *type, const char *version, char *buf,
                          size_t cap);

/* The version TYPE_latest.model points at, or CML_ERR_NOT_FOUND. */
cml_err cml_local_store_latest(const char *dir, const char *type, char version[CML_VERSION_MAX]);

/* Versions of a type present in dir, newest first; *out owned (cml_free), n entries. */
cml_err cml_local_store_list(const char *dir, const char *type, char (**out)[CML_VERSION_MAX],
                             size_t *n);

/* Saves m as dir/TYPE_VERSION.model (atomically) and, if make_latest, moves the pointer. */
cml_err cml_local_store_save(const char *dir, cml_model *m, bool make_latest, cml_diag *diag);

/* Points TYPE_latest.model at an existing version (atomic symlink swap). */
cml_err cml_local_store_point_latest(const char *dir, const char *type, const char *version,
                                     cml_diag *diag);

/* Removes one version's file. */
cml_err cml_local_store_remove(const char *dir, const char *type, const char *version);

/* True for versions the store accepts: [0-9A-Za-z._-]{1,39}, so they are safe in paths. */
bool cml_version_valid(const char *version);

#endif
