/* POST /api/v1/transcripts/analyze: a lesson transcript in, its questions and summary out. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/transcript_analysis.h"
#include "handlers.h"
#include "request.h"
#include "text/transcript.h"

#define MAX_SPEAKERS 16

/* Splits a comma-separated list into names (in place); returns how many. */
static size_t split_speakers(char *list, char **names, size_t cap) {
    size_t n = 0;
    for (char *p = list; p != NULL && *p && n < cap;) {
        char *comma = strchr(p, ',');
        if (comma != NULL)
            *comma = '\0';
        while (*p == ' ')
            p++;
        size_t l = strlen(p);
        while (l > 0 && p[l - 1] == ' ')
            p[--l] = '\0';
        if (l > 0)
            names[n++] = p;
        p = comma ? comma + 1 : NULL;
    }
    return n;
}

/* The options of the query; a JSON body's own model_type and speakers win. */
typedef struct options {
    cml_model_type type;
    char speakers_buf[1024];
    char *speakers[MAX_SPEAKERS];
    size_t n_speakers;
    double min_confidence;
} options;

static bool query_options(http_req *r, options *o) {
    char buf[64];
    if (http_query_param(r, "model_type", buf, sizeof buf) &&
        cml_model_type_parse(buf, &o->type) != CML_OK) {
        http_send_api_error(r, API_ERR_UNKNOWN_MODEL_TYPE);
        return false;
    }
    if (http_query_param(r, "speakers", o->speakers_buf, sizeof o->speakers_buf))
        o->n_speakers = split_speakers(o->speakers_buf, o->speakers, MAX_SPEAKERS);
    if (http_query_param(r, "min_confidence", buf, sizeof buf)) {
        char *end;
        o->min_confidence = strtod(buf, &end);
        if (*end != '\0' || end == buf || !(o->min_confidence >= 0 && o->min_confidence <= 1)) {
            http_send_api_error(r, API_ERR_INVALID_MIN_CONFIDENCE);
            return false;
        }
    }
    return true;
}

/* model_type and speakers of a Whisper JSON body. */
static bool json_options(http_req *r, options *o) {
    json_object *root = json_tokener_parse(r->body), *v;
    bool ok = true;
    if (root == NULL || !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return true; /* the parser names what is wrong */
    }
    /* No NUL-cut text or speaker, no NaN or Infinity time, as for every JSON body. */
    if (!request_json_values_ok(r, root, r->body, r->body_len)) {
        json_object_put(root);
        return false;
    }
    if (json_object_object_get_ex(root, "model_type", &v)) {
        if (!json_object_is_type(v, json_type_string) ||
            cml_model_type_parse(json_object_get_string(v), &o->type) != CML_OK) {
            http_send_api_error(r, API_ERR_UNKNOWN_MODEL_TYPE);
            ok = false;
        }
    }
    if (ok && json_object_object_get_ex(root, "speakers", &v)) {
        size_t n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0;
        size_t used = 0;
        o->n_speakers = 0;
        for (size_t i = 0; ok && i < n && o->n_speakers < MAX_SPEAKERS; i++) {
            json_object *s = json_object_array_get_idx(v, i);
            size_t l = json_object_is_type(s, json_type_string)
                           ? (size_t)json_object_get_string_len(s)
                           : 0;
            if (l == 0 || used + l + 1 > sizeof o->speakers_buf) {
                ok = false;
                break;
            }
            memcpy(o->speakers_buf + used, json_object_get_string(s), l + 1);
            o->speakers[o->n_speakers++] = o->speakers_buf + used;
            used += l + 1;
        }
        if (!ok || !json_object_is_type(v, json_type_array)) {
            http_send_api_error(r, API_ERR_SPEAKERS_NOT_NAMES);
            ok = false;
        }
    }
    json_object_put(root);
    return ok;
}

handler_result handle_transcripts_analyze(service *svc, http_req *r, const route_args *args) {
    (void)args;
    cml_transcript_format format;
    options o = {.type = (cml_model_type)atomic_load(&svc->active_type)};
    if (cml_transcript_format_of(r->content_type, &format) != CML_OK) {
        http_send_api_error(r, API_ERR_UNSUPPORTED_TRANSCRIPT_TYPE);
        return HANDLER_DONE;
    }
    if (!http_read_body(r, svc->cfg.max_transcript_bytes)) {
        if (r->body_too_large)
            http_send_api_error(r, API_ERR_TRANSCRIPT_TOO_LARGE,
                                (long long)svc->cfg.max_transcript_bytes);
        else
            http_send_api_error(r, API_ERR_BODY_UNREADABLE);
        return HANDLER_DONE;
    }
    if (r->body == NULL || r->body_len == 0) {
        http_send_api_error(r, API_ERR_EMPTY_TRANSCRIPT);
        return HANDLER_DONE;
    }
    if (!query_options(r, &o) || (format == CML_TRANSCRIPT_WHISPER_JSON && !json_options(r, &o)))
        return HANDLER_DONE;

    cml_transcript *t = NULL;
    cml_diag diag = {{0}};
    cml_transcript_limits lim = {.max_segments = (size_t)svc->cfg.max_transcript_questions * 4};
    cml_err err = cml_transcript_parse(r->body, r->body_len, format, &lim, &t, &diag);
    if (err != CML_OK) {
        http_send_api_error(r, API_ERR_INVALID_TRANSCRIPT, cml_transcript_format_name(format),
                            diag.msg);
        return HANDLER_DONE;
    }
    cml_model *m = request_model(r, svc, o.type);
    if (m == NULL) {
        cml_transcript_free(t);
        return HANDLER_DONE;
    }
    cml_analysis_options ao = {.speakers = (const char *const *)o.speakers,
                               .n_speakers = o.n_speakers,
                               .min_confidence = o.min_confidence,
                               .max_questions = (size_t)svc->cfg.max_transcript_questions};
    cml_analysis *a = NULL;
    cml_feature_scratch *s = handlers_scratch();
    err = s ? cml_transcript_analyze(m, s, t, &ao, &a, &diag) : CML_ERR_NOMEM;
    if (err == CML_ERR_DATA) {
        http_send_api_error(r, API_ERR_TOO_MANY_QUESTIONS, diag.msg);
    } else if (err != CML_OK) {
        http_send_api_error(r, API_ERR_ANALYSIS_FAILED);
    } else {
        r->model = cml_model_type_name(m->type);
        snprintf(r->version, sizeof r->version, "%s", m->version);
        http_send_json(r, HTTP_OK, cml_analysis_json(m, t, a));
    }
    cml_analysis_free(a);
    cml_transcript_free(t);
    cml_model_release(m);
    return HANDLER_DONE;
}
