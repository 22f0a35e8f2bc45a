#include "config.h"

#include "base/cml_error.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const cml_error_strings[CML_ERR__COUNT] = {
    [CML_OK] = "success",
    [CML_ERR_NOMEM] = "out of memory",
    [CML_ERR_IO] = "input/output error",
    [CML_ERR_INVALID] = "invalid argument",
    [CML_ERR_CSV] = "malformed CSV",
    [CML_ERR_UTF8] = "invalid UTF-8",
    [CML_ERR_DATA] = "unusable training data",
    [CML_ERR_FORMAT] = "not a valid model file",
    [CML_ERR_VERSION] = "unsupported model file version",
    [CML_ERR_CHECKSUM] = "model file checksum mismatch",
    [CML_ERR_UNSUPPORTED] = "not supported by this build",
    [CML_ERR_TRAIN] = "training failed",
    [CML_ERR_NOT_FOUND] = "not found",
    [CML_ERR_CONFIG] = "invalid configuration",
    [CML_ERR_STORAGE] = "storage request failed",
    [CML_ERR_CONFLICT] = "conflict",
    [CML_ERR_INTERNAL] = "internal error",
    [CML_ERR_UNAVAILABLE] = "state database unavailable",
};

const char *cml_strerror(cml_err err) {
    if ((unsigned)err >= CML_ERR__COUNT || cml_error_strings[err] == NULL)
        return "unknown error";
    return cml_error_strings[err];
}

cml_err cml_diag_set(cml_diag *diag, cml_err err, const char *fmt, ...) {
    if (diag != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(diag->msg, sizeof(diag->msg), fmt, ap);
        va_end(ap);
    }
    return err;
}
