#include "config.h"

#include "ops/service_config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/cml_alloc.h"
#include "base/parse_number.h"
#include "model/model.h"
#include "ops/service_log.h"
#include "state/shared_state.h"

#ifndef CML_BINDIR
#define CML_BINDIR "/usr/local/bin"
#endif
#ifdef HAVE_ENSEMBLE
#define DEFAULT_MODEL_TYPE "ensemble"
#else
#define DEFAULT_MODEL_TYPE "classic"
#endif

#define KEY(n, e, t, field, def, lo, hi, ch, h)                                                    \
    {                                                                                              \
        .name = n, .env = e, .type = t, .offset = offsetof(cml_config, field),                     \
        .default_value = def, .min = lo, .max = hi, .choices = ch, .help = h                       \
    }

static const cml_config_enum model_types[] = {
    {"ensemble", CML_MODEL_ENSEMBLE}, {"classic", CML_MODEL_CLASSIC}, {NULL, 0}};
static const cml_config_enum log_levels[] = {{"debug", CML_LOG_DEBUG},
                                             {"info", CML_LOG_INFO},
                                             {"warn", CML_LOG_WARN},
                                             {"error", CML_LOG_ERROR},
                                             {NULL, 0}};
static const cml_config_enum log_formats[] = {
    {"logfmt", CML_LOG_LOGFMT}, {"json", CML_LOG_JSON}, {NULL, 0}};

const cml_config_key cml_config_keys[] = {
    KEY("model_type", "MODEL_TYPE", CML_CONF_ENUM, model_type, DEFAULT_MODEL_TYPE, 0, 0,
        model_types, "model selected at first start"),
    KEY("model_cache_dir", "MODEL_CACHE_DIR", CML_CONF_PATH, model_cache_dir,
        CML_LOCALSTATEDIR "/lib/cultivate-ml/models", 0, 0, NULL, "local model store and cache"),
    KEY("state_dir", "STATE_DIR", CML_CONF_PATH, state_dir, CML_LOCALSTATEDIR "/lib/cultivate-ml",
        0, 0, NULL, "shared state (SQLite) of all worker processes, and local files"),
    {.name = "database_url",
     .env = "DATABASE_URL",
     .env_alias = "STATE_DATABASE_URL",
     .type = CML_CONF_DB_URL,
     .offset = offsetof(cml_config, database_url),
     .default_value = "",
     .help = "PostgreSQL connection string or URI for a fleet's shared state (empty: SQLite in "
             "state_dir; secret)"},
    KEY("use_azure_storage", "USE_AZURE_STORAGE", CML_CONF_BOOL, use_azure_storage, "false", 0, 0,
        NULL, "keep models in Azure Blob Storage"),
    KEY("azure_storage_connection_string", "AZURE_STORAGE_CONNECTION_STRING", CML_CONF_SECRET,
        azure_connection_string, "", 0, 0, NULL, "Azure connection string (secret)"),
    KEY("azure_storage_container", "AZURE_STORAGE_CONTAINER", CML_CONF_STRING, azure_container,
        "ml-models", 0, 0, NULL, "blob container"),
    KEY("azure_ca_path", "AZURE_CA_PATH", CML_CONF_PATH, azure_ca_path, "", 0, 0, NULL,
        "CA bundle for TLS to blob storage (empty: system default)"),
    KEY("model_sync_interval", "MODEL_SYNC_INTERVAL", CML_CONF_INT, model_sync_interval, "5", 1,
        3600, NULL, "seconds between blob store checks"),
    KEY("api_key", "API_KEY", CML_CONF_SECRET, api_key, "", 0, 0, NULL, "admin API key (secret)"),
    KEY("api_key_file", "API_KEY_FILE", CML_CONF_PATH, api_key_file, "", 0, 0, NULL,
        "file holding the admin API key"),
    KEY("max_body_bytes", "MAX_BODY_BYTES", CML_CONF_INT, max_body_bytes, "10485760", 1024,
        1073741824, NULL, "largest request body"),
    KEY("max_text_chars", "MAX_TEXT_CHARS", CML_CONF_INT, max_text_chars, "10000", 1, 1000000, NULL,
        "longest text to classify, in characters"),
    KEY("max_batch", "MAX_BATCH_SIZE", CML_CONF_INT, max_batch, "1000", 1, 100000, NULL,
        "most texts in one batch"),
    KEY("max_transcript_bytes", "MAX_TRANSCRIPT_BYTES", CML_CONF_INT, max_transcript_bytes,
        "2097152", 1024, 268435456, NULL, "largest transcript body to analyse"),
    KEY("max_transcript_questions", "MAX_TRANSCRIPT_QUESTIONS", CML_CONF_INT,
        max_transcript_questions, "5000", 1, 1000000, NULL, "most questions a transcript may hold"),
    KEY("threads", "FCGI_THREADS", CML_CONF_INT, threads, "2", 1, 256, NULL,
        "request threads per worker process"),
    KEY("log_level", "LOG_LEVEL", CML_CONF_ENUM, log_level, "info", 0, 0, log_levels,
        "least severe level logged"),
    KEY("log_format", "LOG_FORMAT", CML_CONF_ENUM, log_format, "logfmt", 0, 0, log_formats,
        "log line format on stderr"),
    KEY("cors_allowed_origins", "CORS_ALLOWED_ORIGINS", CML_CONF_STRING, cors_allowed_origins, "",
        0, 0, NULL, "comma-separated origins allowed by CORS"),
    KEY("training_data", "TRAINING_DATA", CML_CONF_PATH, training_data,
        CML_DATADIR "/questions.csv", 0, 0, NULL, "bundled training data"),
    KEY("openapi_document", "OPENAPI_DOCUMENT", CML_CONF_PATH, openapi_document,
        CML_DATADIR "/apidocs/openapi.json", 0, 0, NULL,
        "the OpenAPI document served at /api/openapi.json"),
    KEY("trainer_path", "CML_TRAINER", CML_CONF_PATH, trainer_path, CML_BINDIR "/cultivate-ml", 0,
        0, NULL, "the cultivate-ml program run for training jobs"),
    KEY("training_timeout", "TRAINING_TIMEOUT", CML_CONF_INT, training_timeout, "1800", 10, 86400,
        NULL, "seconds a training job may run"),
    KEY("training_memory_mb", "TRAINING_MEMORY_MB", CML_CONF_INT, training_memory_mb, "4096", 64,
        1048576, NULL, "address-space limit of a training job"),
    KEY("retain_versions", "MODEL_RETAIN_VERSIONS", CML_CONF_INT, retain_versions, "10", 1, 1000,
        NULL, "model versions kept per type"),
    KEY("ensemble_latest_blob", "ENSEMBLE_LATEST_BLOB", CML_CONF_STRING, ensemble_latest_blob,
        "ensemble_latest.model", 0, 0, NULL, "blob name of the ensemble pointer"),
    KEY("classic_latest_blob", "CLASSIC_LATEST_BLOB", CML_CONF_STRING, classic_latest_blob,
        "classic_latest.model", 0, 0, NULL, "blob name of the classic pointer"),
    KEY("shadow_sample", "SHADOW_SAMPLE", CML_CONF_REAL, shadow_sample, "1", 0, 1, NULL,
        "share of classify requests also scored by the other model type, after the answer"),
    KEY("comparison_min_feedback", "COMPARISON_MIN_FEEDBACK", CML_CONF_INT, comparison_min_feedback,
        "30", 1, 1000000, NULL,
        "feedback items each type needs before the comparison recommends on them"),
};
const size_t cml_config_n_keys = sizeof(cml_config_keys) / sizeof(cml_config_keys[0]);

static void *field(cml_config *cfg, const cml_config_key *k) { return (char *)cfg + k->offset; }

static const void *cfield(const cml_config *cfg, const cml_config_key *k) {
    return (const char *)cfg + k->offset;
}

/* Parses value into the key's field; on error names the key and where the value came from. */
static cml_err set_value(cml_config *cfg, const cml_config_key *k, const char *value,
                         const char *origin, cml_diag *diag) {
    switch (k->type) {
    case CML_CONF_BOOL: {
        bool *b = field(cfg, k);
        if (!strcasecmp(value, "true") || !strcmp(value, "1") || !strcasecmp(value, "yes") ||
            !strcasecmp(value, "on"))
            *b = true;
        else if (!strcasecmp(value, "false") || !strcmp(value, "0") || !strcasecmp(value, "no") ||
                 !strcasecmp(value, "off") || !*value)
            *b = false;
        else
            return cml_diag_set(diag, CML_ERR_CONFIG, "%s (%s): '%s' is not true or false", k->name,
                                origin, value);
        return CML_OK;
    }
    case CML_CONF_INT: {
        long long v;
        if (!cml_parse_int(value, LLONG_MIN, LLONG_MAX, &v))
            return cml_diag_set(diag, CML_ERR_CONFIG, "%s (%s): '%s' is not a whole number",
                                k->name, origin, value);
        if (v < k->min || v > k->max)
            return cml_diag_set(diag, CML_ERR_CONFIG, "%s (%s): %lld is outside %lld..%lld",
                                k->name, origin, v, (long long)k->min, (long long)k->max);
        *(int64_t *)field(cfg, k) = v;
        return CML_OK;
    }
    case CML_CONF_REAL: {
        char *end = NULL;
        errno = 0;
        double v = strtod(value, &end);
        if (end == value || *end != '\0' || errno != 0 || !isfinite(v))
            return cml_diag_set(diag, CML_ERR_CONFIG, "%s (%s): '%s' is not a number", k->name,
                                origin, value);
        if (v < (double)k->min || v > (double)k->max)
            return cml_diag_set(diag, CML_ERR_CONFIG, "%s (%s): %g is outside %lld..%lld", k->name,
                                origin, v, (long long)k->min, (long long)k->max);
        *(double *)field(cfg, k) = v;
        return CML_OK;
    }
    case CML_CONF_ENUM: {
        char names[128];
        size_t o = 0;
        for (const cml_config_enum *c = k->choices; c->name; c++) {
            if (strcmp(c->name, value) == 0) {
                *(int *)field(cfg, k) = c->value;
                return CML_OK;
            }
            o += (size_t)snprintf(names + o, o < sizeof names ? sizeof names - o : 0, "%s%s",
                                  o ? "|" : "", c->name);
        }
        return cml_diag_set(diag, CML_ERR_CONFIG, "%s (%s): '%s' is not one of %s", k->name, origin,
                            value, names);
    }
    case CML_CONF_STRING:
    case CML_CONF_PATH:
    case CML_CONF_SECRET:
    case CML_CONF_DB_URL: {
        char **s = field(cfg, k);
        char *copy = cml_strdup(value);
        if (copy == NULL)
            return CML_ERR_NOMEM;
        cml_free(*s);
        *s = copy;
        return CML_OK;
    }
    }
    return CML_ERR_INTERNAL;
}

static const cml_config_key *find_key(const char *name) {
    for (size_t i = 0; i < cml_config_n_keys; i++)
        if (strcmp(cml_config_keys[i].name, name) == 0)
            return &cml_config_keys[i];
    return NULL;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static cml_err load_file(cml_config *cfg, const char *path, bool optional, cml_diag *diag) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (optional && errno == ENOENT)
            return CML_OK;
        return cml_diag_set(diag, CML_ERR_CONFIG, "cannot read config file %s: %s", path,
                            strerror(errno));
    }
    cml_err err = CML_OK;
    char line[4096], origin[64];
    size_t lineno = 0;
    while (err == CML_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            err =
                cml_diag_set(diag, CML_ERR_CONFIG, "%s:%zu: expected `key = value`", path, lineno);
            break;
        }
        *eq = '\0';
        char *name = trim(s), *value = trim(eq + 1);
        size_t vl = strlen(value);
        if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
            value[vl - 1] = '\0';
            value++;
        }
        const cml_config_key *k = find_key(name);
        if (k == NULL) {
            err =
                cml_diag_set(diag, CML_ERR_CONFIG, "%s:%zu: unknown key '%s'", path, lineno, name);
            break;
        }
        snprintf(origin, sizeof origin, "config file line %zu", lineno);
        err = set_value(cfg, k, value, origin, diag);
    }
    fclose(f);
    return err;
}

cml_err cml_config_load(cml_config *cfg, const char *path, bool file_optional, cml_diag *diag) {
    cml_err err = CML_OK;
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < cml_config_n_keys && err == CML_OK; i++)
        err =
            set_value(cfg, &cml_config_keys[i], cml_config_keys[i].default_value, "default", diag);
    if (err == CML_OK && path != NULL)
        err = load_file(cfg, path, file_optional, diag);
    for (size_t i = 0; i < cml_config_n_keys && err == CML_OK; i++) {
        const char *alias = cml_config_keys[i].env_alias;
        const char *v = alias && getenv(alias) ? getenv(alias) : getenv(cml_config_keys[i].env);
        if (v != NULL)
            err = set_value(cfg, &cml_config_keys[i], v, "environment", diag);
    }
    /* The key file, if named, supplies the key (trailing newline dropped). */
    if (err == CML_OK && cfg->api_key_file[0] != '\0') {
        FILE *f = fopen(cfg->api_key_file, "r");
        char buf[1024];
        if (f == NULL || fgets(buf, sizeof buf, f) == NULL) {
            err = cml_diag_set(diag, CML_ERR_CONFIG, "api_key_file: cannot read %s",
                               cfg->api_key_file);
        } else {
            err = set_value(cfg, find_key("api_key"), trim(buf), "api_key_file", diag);
        }
        if (f)
            fclose(f);
    }
    if (err == CML_OK && cfg->use_azure_storage && cfg->azure_connection_string[0] == '\0' &&
        getenv("IDENTITY_ENDPOINT") == NULL)
        err = cml_diag_set(diag, CML_ERR_CONFIG,
                           "azure_storage_connection_string: required when use_azure_storage is "
                           "true (or run with a managed identity)");
    if (err != CML_OK)
        cml_config_release(cfg);
    return err;
}

void cml_config_release(cml_config *cfg) {
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cml_config_n_keys; i++) {
        const cml_config_key *k = &cml_config_keys[i];
        if (k->type != CML_CONF_BOOL && k->type != CML_CONF_INT && k->type != CML_CONF_ENUM &&
            k->type != CML_CONF_REAL) {
            char **s = field(cfg, k);
            cml_free(*s);
            *s = NULL;
        }
    }
}

const char *cml_config_enum_name(const cml_config_key *k, int value) {
    for (const cml_config_enum *c = k->type == CML_CONF_ENUM ? k->choices : NULL; c && c->name; c++)
        if (c->value == value)
            return c->name;
    return "";
}

void cml_config_dump(const cml_config *cfg, FILE *out) {
    for (size_t i = 0; i < cml_config_n_keys; i++) {
        const cml_config_key *k = &cml_config_keys[i];
        const void *f = cfield(cfg, k);
        switch (k->type) {
        case CML_CONF_BOOL:
            fprintf(out, "%s = %s\n", k->name, *(const bool *)f ? "true" : "false");
            break;
        case CML_CONF_INT:
            fprintf(out, "%s = %lld\n", k->name, (long long)*(const int64_t *)f);
            break;
        case CML_CONF_REAL:
            fprintf(out, "%s = %g\n", k->name, *(const double *)f);
            break;
        case CML_CONF_SECRET:
            fprintf(out, "%s = %s\n", k->name, **(char *const *)f ? "(set)" : "");
            break;
        case CML_CONF_DB_URL: {
            char masked[1024];
            cml_state_masked_url(*(char *const *)f, masked, sizeof masked);
            fprintf(out, "%s = %s\n", k->name, masked);
            break;
        }
        case CML_CONF_ENUM:
            fprintf(out, "%s = %s\n", k->name, cml_config_enum_name(k, *(const int *)f));
            break;
        default:
            fprintf(out, "%s = %s\n", k->name, *(char *const *)f);
        }
    }
}

void cml_config_metrics(const cml_config *cfg, FILE *out) {
    fprintf(out, "# HELP cultivate_ml_config Numeric and boolean configuration values.\n"
                 "# TYPE cultivate_ml_config gauge\n");
    for (size_t i = 0; i < cml_config_n_keys; i++) {
        const cml_config_key *k = &cml_config_keys[i];
        if (k->type == CML_CONF_INT)
            fprintf(out, "cultivate_ml_config{key=\"%s\"} %lld\n", k->name,
                    (long long)*(const int64_t *)cfield(cfg, k));
        else if (k->type == CML_CONF_BOOL)
            fprintf(out, "cultivate_ml_config{key=\"%s\"} %d\n", k->name,
                    *(const bool *)cfield(cfg, k) ? 1 : 0);
        else if (k->type == CML_CONF_REAL)
            fprintf(out, "cultivate_ml_config{key=\"%s\"} %g\n", k->name,
                    *(const double *)cfield(cfg, k));
    }
}
