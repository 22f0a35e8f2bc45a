/* Whole files: written atomically (temporary name, fsync, rename), read with a size bound. */
#ifndef CML_FILE_IO_H
#define CML_FILE_IO_H

#include <stddef.h>
#include <stdint.h>

#include "base/cml_error.h"

/* Writes len bytes to path atomically (as cml_model_save). */
cml_err cml_write_file_atomic(const char *path, const void *data, size_t len, cml_diag *diag);

/*
 * The path of the file name in the directory of path ("data/questions.csv", "x.csv" ->
 * "data/x.csv") into the caller's buf of cap bytes; returns buf.
 */
char *cml_path_beside(const char *path, const char *name, char *buf, size_t cap);

/* Reads a whole file of at most max bytes into a new buffer (caller frees). */
cml_err cml_read_file(const char *path, size_t max, uint8_t **buf, size_t *len, cml_diag *diag);

#endif
