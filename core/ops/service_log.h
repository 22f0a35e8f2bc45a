/*
 * One line per request and per event on stderr, as logfmt or JSON lines.
 * Fields are given as key/value string pairs ending with NULL; values are
 * escaped. Callers never pass secrets or whole request bodies.
 */
#ifndef CML_SERVICE_LOG_H
#define CML_SERVICE_LOG_H

#include <stdbool.h>

typedef enum cml_log_level {
    CML_LOG_DEBUG,
    CML_LOG_INFO,
    CML_LOG_WARN,
    CML_LOG_ERROR
} cml_log_level;

typedef enum cml_log_format { CML_LOG_LOGFMT, CML_LOG_JSON } cml_log_format;

/* Sets the threshold and format; safe to call before threads start. */
void cml_log_configure(cml_log_level level, cml_log_format format);
bool cml_log_enabled(cml_log_level level);

/* cml_log(CML_LOG_INFO, "model_loaded", "model", "classic", "version", v, NULL); */
void cml_log(cml_log_level level, const char *event, ...) __attribute__((sentinel));

#endif
