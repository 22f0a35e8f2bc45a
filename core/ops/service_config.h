/*
 * Service configuration: one static typed table (name, environment variable,
 * type, default, bounds) serves the config file, the environment (which wins)
 * and /metrics. Values are validated once at load; a bad one stops start-up
 * with a message naming the key. Hot paths read the flat struct.
 */
#ifndef CML_SERVICE_CONFIG_H
#define CML_SERVICE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/cml_error.h"

typedef struct cml_config {
    int model_type; /* cml_model_type: the initial selection */
    char *model_cache_dir;
    char *state_dir;
    bool use_azure_storage;
    char *azure_connection_string; /* secret */
    char *database_url;            /* secret: PostgreSQL for the shared state, "" = SQLite */
    char *azure_container;
    char *azure_ca_path;
    int64_t model_sync_interval;
    char *api_key; /* secret */
    char *api_key_file;
    int64_t max_body_bytes;
    int64_t max_text_chars;
    int64_t max_batch;
    int64_t max_transcript_bytes;
    int64_t max_transcript_questions;
    int64_t threads;
    int log_level;  /* cml_log_level */
    int log_format; /* cml_log_format */
    char *cors_allowed_origins;
    char *training_data;
    char *openapi_document;
    char *trainer_path;
    int64_t training_timeout;
    int64_t training_memory_mb;
    int64_t retain_versions;
    char *ensemble_latest_blob;
    char *classic_latest_blob;
    double shadow_sample;            /* share of classify requests also scored by the other type */
    int64_t comparison_min_feedback; /* feedback items per type before the comparison uses them */
} cml_config;

typedef enum cml_config_type {
    CML_CONF_STRING,
    CML_CONF_PATH,
    CML_CONF_SECRET,
    CML_CONF_DB_URL, /* a connection string: a secret, shown with its password masked */
    CML_CONF_BOOL,
    CML_CONF_INT,
    CML_CONF_ENUM,
    CML_CONF_REAL, /* a double in min..max */
} cml_config_type;

/* A name a CML_CONF_ENUM key takes and the int stored for it; a table ends with {NULL, 0}. */
typedef struct cml_config_enum {
    const char *name;
    int value;
} cml_config_enum;

typedef struct cml_config_key {
    const char *name;      /* in the config file */
    const char *env;       /* environment variable */
    const char *env_alias; /* a second name, which wins when both are set; may be NULL */
    cml_config_type type;
    size_t offset; /* into cml_config */
    const char *default_value;
    int64_t min, max;               /* CML_CONF_INT and CML_CONF_REAL */
    const cml_config_enum *choices; /* CML_CONF_ENUM: the names, parsed once at load */
    const char *help;
} cml_config_key;

extern const cml_config_key cml_config_keys[];
extern const size_t cml_config_n_keys;

/*
 * Fills cfg from defaults, then the file at path (NULL or missing-and-optional
 * skips it), then the environment. On error diag names the key; cfg is then
 * released. The caller releases cfg with cml_config_release.
 */
cml_err cml_config_load(cml_config *cfg, const char *path, bool file_optional, cml_diag *diag);
void cml_config_release(cml_config *cfg);

/* The name of an enum key's value (e.g. "info" for log_level), or "" for none. */
const char *cml_config_enum_name(const cml_config_key *k, int value);

/* Writes the effective configuration as `key = value` lines; secrets are masked. */
void cml_config_dump(const cml_config *cfg, FILE *out);

/* Numeric and boolean keys as Prometheus gauges (cultivate_ml_config{key="..."}). */
void cml_config_metrics(const cml_config *cfg, FILE *out);

#endif
