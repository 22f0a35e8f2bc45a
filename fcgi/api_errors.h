/*
 * The HTTP contract's statuses and errors as data. Every error answer of the
 * API is one row of the table (status, code, detail, extra header), named by
 * an api_error; handlers send a row, never a literal status or code string.
 * A detail may hold printf conversions: the row's comment says what to pass.
 */
#ifndef CML_API_ERRORS_H
#define CML_API_ERRORS_H

typedef enum http_status {
    HTTP_OK = 200,
    HTTP_ACCEPTED = 202,
    HTTP_NO_CONTENT = 204,
    HTTP_BAD_REQUEST = 400,
    HTTP_UNAUTHORIZED = 401,
    HTTP_FORBIDDEN = 403,
    HTTP_NOT_FOUND = 404,
    HTTP_METHOD_NOT_ALLOWED = 405,
    HTTP_CONFLICT = 409,
    HTTP_PAYLOAD_TOO_LARGE = 413,
    HTTP_UNSUPPORTED_MEDIA_TYPE = 415,
    HTTP_INTERNAL_ERROR = 500,
    HTTP_SERVICE_UNAVAILABLE = 503,
} http_status;

typedef enum api_error {
    /* The request pipeline (router). */
    API_ERR_NOT_FOUND,
    API_ERR_METHOD_NOT_ALLOWED, /* the Allow header is passed as extra */
    API_ERR_FORBIDDEN,
    API_ERR_UNAUTHORIZED,
    API_ERR_PAYLOAD_TOO_LARGE, /* long long: the limit */
    API_ERR_BODY_UNREADABLE,
    API_ERR_INTERNAL,
    API_ERR_BUSY,
    API_ERR_STATE_UNAVAILABLE, /* the state database (PostgreSQL) cannot be reached */
    /* Bodies and fields (request parsing). */
    API_ERR_MISSING_BODY,
    API_ERR_UNSUPPORTED_MEDIA_TYPE,
    API_ERR_INVALID_UTF8_BODY,
    API_ERR_MALFORMED_JSON,
    API_ERR_NOT_AN_OBJECT,
    API_ERR_NOT_A_STRING,        /* const char *: the field */
    API_ERR_NOT_A_BOOLEAN,       /* const char *: the field */
    API_ERR_NOT_A_NUMBER,        /* const char *: the field */
    API_ERR_NOT_AN_INTEGER,      /* const char *: the field */
    API_ERR_NOT_AN_OBJECT_FIELD, /* const char *: the field */
    API_ERR_REQUIRED_FIELD,      /* const char *: the field */
    API_ERR_NUL_IN_STRING,       /* const char *: the field */
    API_ERR_NUL_IN_NAME,
    API_ERR_NOT_FINITE,        /* const char *: the field */
    API_ERR_INTEGER_TOO_LARGE, /* const char *: the field */
    API_ERR_OUT_OF_RANGE,      /* const char *: the field; const char *, const char *: bounds */
    API_ERR_INVALID_URL,
    API_ERR_INVALID_UTF8_TEXT,
    API_ERR_INVALID_TEXT, /* const char *: the field; long long: the limit */
    API_ERR_UNKNOWN_MODEL_TYPE,
    API_ERR_UNKNOWN_MODEL,    /* the batch routes' field is "model" */
    API_ERR_MODEL_NOT_LOADED, /* const char *: the type */
    /* Classification and feedback. */
    API_ERR_PREDICTION_FAILED,
    API_ERR_QUESTIONS_NOT_ARRAY,
    API_ERR_INVALID_BATCH, /* long long: the limit */
    API_ERR_UNKNOWN_LABEL,
    API_ERR_FEEDBACK_NOT_STORED,
    /* Selection and rollback. */
    API_ERR_BUILD_CANNOT_SERVE,
    API_ERR_VERSION_NOT_FETCHED,
    API_ERR_UNKNOWN_VERSION,
    API_ERR_NO_MODEL_STORED,
    API_ERR_SELECT_LOAD_FAILED,
    API_ERR_SELECTION_NOT_STORED,
    API_ERR_SELECTED_NOT_LOADED,
    API_ERR_MODEL_LIST_UNREADABLE,
    API_ERR_NOT_READY,
    /* Retraining, status, evaluation, history. */
    API_ERR_INVALID_HYPERPARAMETER, /* const char *: why */
    API_ERR_CSV_NEEDS_MODEL_TYPE,
    API_ERR_EMPTY_CSV,
    API_ERR_BUILD_CANNOT_TRAIN,
    API_ERR_STORAGE_DISABLED,
    API_ERR_NO_TRAINING_DATA,
    API_ERR_STORAGE_UNREACHABLE,
    API_ERR_FEEDBACK_UNREADABLE,
    API_ERR_BAD_TRAINING_DATA, /* const char *: why */
    API_ERR_JOB_DATA_NOT_WRITTEN,
    API_ERR_TRAINING_IN_PROGRESS,
    API_ERR_TRAINING_NOT_STARTED,
    API_ERR_UNKNOWN_TASK,
    API_ERR_VERSION_LOAD_FAILED,
    API_ERR_BAD_EVALUATION_DATA, /* const char *: why */
    API_ERR_NO_HOLDOUT,
    API_ERR_UNSCORABLE_DATA, /* const char *: why */
    API_ERR_INVALID_LIMIT,
    API_ERR_INVALID_DAYS,
    /* Transcripts. */
    API_ERR_UNSUPPORTED_TRANSCRIPT_TYPE,
    API_ERR_TRANSCRIPT_TOO_LARGE, /* long long: the limit */
    API_ERR_EMPTY_TRANSCRIPT,
    API_ERR_INVALID_MIN_CONFIDENCE,
    API_ERR_SPEAKERS_NOT_NAMES,
    API_ERR_INVALID_TRANSCRIPT, /* const char *: the format; const char *: why */
    API_ERR_TOO_MANY_QUESTIONS, /* const char *: why */
    API_ERR_ANALYSIS_FAILED,
    /* The Open Inference Protocol (v2 REST): answered as {"error": detail}. */
    API_ERR_OIP_UNKNOWN_MODEL,   /* const char *: the name */
    API_ERR_OIP_UNKNOWN_VERSION, /* const char *: the name; const char *: the version */
    API_ERR_OIP_INVALID_REQUEST, /* const char *: what is wrong */
    API_ERR__MAX
} api_error;

typedef struct api_error_info {
    http_status status;
    const char *code;         /* the "error" field */
    const char *detail;       /* the "detail" field, maybe a printf format */
    const char *extra_header; /* one "Name: value" line, or NULL */
} api_error_info;

/* Indexed by api_error; every entry filled (tests/unit/test_api_errors.c checks). */
extern const api_error_info api_errors[API_ERR__MAX];

#endif
