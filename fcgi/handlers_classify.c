/* Classification routes: the model API's classify, the web client's routes, batches, feedback. */
#include "config.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/cml_alloc.h"
#include "model/prediction_json.h"
#include "handlers.h"
#include "request.h"
#include "response.h"

/* One scratch per request thread, made on first use (libstemmer is not shareable). */
static _Thread_local cml_feature_scratch *thread_scratch;

/* Work a handler leaves for after its answer is sent (shadow scoring, scoring feedback). */
typedef struct after_answer {
    cml_model *model; /* the answering model, a reference; NULL: no classify to count */
    char *text;       /* owned */
    cml_prediction p;
    int64_t feedback_id; /* > 0: the stored feedback item to score */
} after_answer;
static _Thread_local after_answer after;

cml_feature_scratch *handlers_scratch(void) {
    if (thread_scratch == NULL)
        thread_scratch = cml_feature_scratch_new();
    return thread_scratch;
}

void handlers_thread_release(void) {
    cml_feature_scratch_free(thread_scratch);
    thread_scratch = NULL;
    /* Work left by a last handler whose loop never ran it (the unit tests' harness). */
    cml_model_release(after.model);
    cml_free(after.text);
    memset(&after, 0, sizeof after);
}

/* Leaves text and its answer by m for handlers_after_answer. */
static void defer(const cml_model *m, const cml_prediction *p, const char *text, int64_t fb_id) {
    cml_model_release(after.model);
    cml_free(after.text);
    after.model = m ? cml_model_retain((cml_model *)m) : NULL;
    after.text = cml_strdup(text);
    if (p)
        after.p = *p;
    after.feedback_id = fb_id;
}

void handlers_after_answer(service *svc) {
    if (after.text != NULL) {
        if (after.model != NULL)
            service_shadow_submit(svc, after.model, &after.p, after.text);
        if (after.feedback_id > 0)
            service_feedback_score(svc, after.feedback_id, after.text, handlers_scratch());
    }
    cml_model_release(after.model);
    cml_free(after.text);
    memset(&after, 0, sizeof after);
}

static double now_ms_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Predicts text with m; answers 500 and returns false on failure. */
static bool predict(http_req *r, const cml_model *m, const char *text, cml_prediction *p) {
    cml_feature_scratch *s = handlers_scratch();
    if (s == NULL || cml_model_predict(m, s, text, strlen(text), p) != CML_OK) {
        http_send_api_error(r, API_ERR_PREDICTION_FAILED);
        return false;
    }
    return true;
}

void handlers_note_model(http_req *r, const cml_model *m) {
    r->model = cml_model_type_name(m->type);
    snprintf(r->version, sizeof r->version, "%s", m->version);
}

static json_object *member_array(const cml_model *m, const cml_prediction *p) {
    json_object *a = json_object_new_array();
    for (size_t k = 0; k < p->n_members; k++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(m->members[k].ops->name));
        json_object_object_add(o, "classification",
                               json_object_new_string(m->labels[p->members[k].label]));
        json_object_object_add(o, "confidence", json_object_new_double(p->members[k].confidence));
        json_object_object_add(o, "probabilities", response_probabilities(m, p->members[k].probs));
        /* A stacked model combines by the stacker's coefficients, not by voting weights. */
        if (m->combination == CML_COMBINE_STACKING)
            json_object_object_add(o, "stacker_coef", json_object_new_double(m->stacker.coef[k]));
        else
            json_object_object_add(o, "weight", json_object_new_double(m->members[k].weight));
        json_object_array_add(a, o);
    }
    return a;
}

handler_result handle_classify_v1(service *svc, http_req *r, const route_args *args) {
    (void)args;
    bool bad = false;
    json_object *body = request_json_body(r, true);
    if (body == NULL)
        return HANDLER_DONE;
    const char *text = request_string_field(r, body, "text", &bad);
    const char *type_name = bad ? NULL : request_string_field(r, body, "model_type", &bad);
    if (!bad)
        request_string_field(r, body, "context", &bad);
    cml_model_type type = (cml_model_type)atomic_load(&svc->active_type);
    if (!bad && type_name && cml_model_type_parse(type_name, &type) != CML_OK) {
        http_send_api_error(r, API_ERR_UNKNOWN_MODEL_TYPE);
        bad = true;
    }
    if (bad || !request_text_ok(r, svc, text, "text")) {
        json_object_put(body);
        return HANDLER_DONE;
    }
    cml_model *m = request_model(r, svc, type);
    if (m == NULL) {
        json_object_put(body);
        return HANDLER_DONE;
    }
    struct timespec t0;
    cml_prediction p;
    char ts[32];
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (predict(r, m, text, &p)) {
        double ms = now_ms_since(&t0);
        handlers_note_model(r, m);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "classification", json_object_new_string(m->labels[p.label]));
        json_object_object_add(o, "confidence", json_object_new_double(p.confidence));
        json_object_object_add(o, "probabilities", response_probabilities(m, p.probs));
        json_object_object_add(o, "model_type",
                               json_object_new_string(cml_model_type_name(m->type)));
        json_object_object_add(o, "model_version", json_object_new_string(m->version));
        json_object_object_add(o, "processing_time_ms", json_object_new_double(ms));
        json_object_object_add(
            o, "timestamp", json_object_new_string(response_iso_time(time(NULL), ts, sizeof ts)));
        if (m->type == CML_MODEL_ENSEMBLE) {
            char agree[32];
            snprintf(agree, sizeof agree, "%zu/%zu", p.agree, p.n_members);
            json_object *d = json_object_new_object();
            json_object_object_add(d, "voting_strategy",
                                   json_object_new_string(cml_model_voting(m)));
            json_object_object_add(d, "agreement", json_object_new_string(agree));
            json_object_object_add(d, "members", member_array(m, &p));
            json_object_object_add(o, "ensemble_details", d);
        }
        json_object *questions = cml_prediction_questions_json(m, &p, text);
        if (questions != NULL)
            json_object_object_add(o, "questions", questions);
        http_send_json(r, HTTP_OK, o);
        defer(m, &p, text, 0);
    }
    cml_model_release(m);
    json_object_put(body);
    return HANDLER_DONE;
}

/* The web client's answer: {classification, confidence, text, model, probabilities, ...}. */
static json_object *client_answer(const cml_model *m, const cml_prediction *p, const char *text,
                                  double ms, bool details) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "classification", json_object_new_string(m->labels[p->label]));
    json_object_object_add(o, "confidence", json_object_new_double(p->confidence));
    json_object_object_add(o, "text", json_object_new_string(text));
    json_object_object_add(o, "model", json_object_new_string(cml_model_type_name(m->type)));
    json_object_object_add(o, "probabilities", response_probabilities(m, p->probs));
    if (ms >= 0)
        json_object_object_add(o, "processing_time_ms", json_object_new_double(ms));
    if (details && m->type == CML_MODEL_ENSEMBLE) {
        json_object *v = json_object_new_object(), *tally = json_object_new_object(),
                    *ind = json_object_new_object();
        size_t votes[CML_MAX_LABELS] = {0};
        for (size_t k = 0; k < p->n_members; k++)
            votes[p->members[k].label]++;
        for (size_t c = 0; c < m->n_labels; c++)
            json_object_object_add(tally, m->labels[c], json_object_new_int64((int64_t)votes[c]));
        for (size_t k = 0; k < p->n_members; k++) {
            json_object *mo = json_object_new_object();
            json_object_object_add(mo, "prediction",
                                   json_object_new_string(m->labels[p->members[k].label]));
            for (size_t c = 0; c < m->n_labels; c++) {
                char key[64];
                size_t n = (size_t)snprintf(key, sizeof key, "%s", m->labels[c]);
                for (size_t i = 0; i < n; i++)
                    key[i] = (char)tolower((unsigned char)key[i]);
                snprintf(key + n, sizeof key - n, "_prob");
                json_object_object_add(mo, key, json_object_new_double(p->members[k].probs[c]));
            }
            json_object_object_add(mo, "confidence",
                                   json_object_new_double(p->members[k].confidence));
            json_object_object_add(ind, m->members[k].ops->name, mo);
        }
        char summary[96];
        snprintf(summary, sizeof summary, "%zu of %zu models voted %s", p->agree, p->n_members,
                 m->labels[p->label]);
        json_object_object_add(v, "ensemble_method", json_object_new_string(cml_model_voting(m)));
        json_object_object_add(v, "num_models", json_object_new_int64((int64_t)p->n_members));
        json_object_object_add(v, "vote_tally", tally);
        json_object_object_add(v, "vote_summary", json_object_new_string(summary));
        json_object_object_add(v, "individual_predictions", ind);
        json_object_object_add(o, "voting_details", v);
    }
    return o;
}

handler_result handle_classify_client(service *svc, http_req *r, const route_args *args) {
    bool bad = false;
    char qtext[12288];
    const char *text = NULL;
    json_object *body = NULL;
    cml_model_type type = args->type;
    bool query_text = args->query_text && (r->body == NULL || r->body_len == 0) &&
                      http_query_param(r, "text", qtext, sizeof qtext);
    if (query_text) {
        text = qtext;
    } else {
        if ((body = request_json_body(r, true)) == NULL)
            return HANDLER_DONE;
        text = request_string_field(r, body, "text", &bad);
        /* Not used for the answer, but typed as the contract says: a string scenario_id is a
         * client's mistake to report, not to ignore. */
        bool debug = false, has_scenario = false;
        int64_t scenario = 0;
        if (!bad &&
            (!request_bool_field(r, body, "debug", &debug) ||
             !request_bool_field(r, body, "debug_mode", &debug) ||
             !request_int_field(r, body, "scenario_id", 0, INT32_MAX, &scenario, &has_scenario)))
            bad = true;
    }
    if (bad || !request_text_ok(r, svc, text, "text")) {
        json_object_put(body);
        return HANDLER_DONE;
    }
    cml_model *m = request_model(r, svc, type);
    if (m != NULL) {
        struct timespec t0;
        cml_prediction p;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (predict(r, m, text, &p)) {
            handlers_note_model(r, m);
            http_send_json(r, HTTP_OK, client_answer(m, &p, text, now_ms_since(&t0), true));
            defer(m, &p, text, 0);
        }
        cml_model_release(m);
    }
    json_object_put(body);
    return HANDLER_DONE;
}

/* What a batch's predictions are collected into: one client answer per text. */
typedef struct batch_ctx {
    const cml_model *m;
    const char **texts;
    json_object *results;
} batch_ctx;

static void batch_result(void *ctx, size_t i, const cml_prediction *p) {
    batch_ctx *b = ctx;
    json_object_array_add(b->results, client_answer(b->m, p, b->texts[i], -1, false));
}

handler_result handle_batch(service *svc, http_req *r, const route_args *args) {
    cml_model_type type = args->type;
    bool bad = false;
    json_object *body = request_json_body(r, true), *qs;
    if (body == NULL)
        return HANDLER_DONE;
    const char *name = request_string_field(r, body, "model", &bad);
    if (!bad && name && cml_model_type_parse(name, &type) != CML_OK) {
        http_send_api_error(r, API_ERR_UNKNOWN_MODEL);
        bad = true;
    }
    if (!bad && (!json_object_object_get_ex(body, "questions", &qs) ||
                 !json_object_is_type(qs, json_type_array))) {
        http_send_api_error(r, API_ERR_QUESTIONS_NOT_ARRAY);
        bad = true;
    }
    size_t n = bad ? 0 : json_object_array_length(qs);
    if (!bad && (n == 0 || (long long)n > svc->cfg.max_batch)) {
        http_send_api_error(r, API_ERR_INVALID_BATCH, (long long)svc->cfg.max_batch);
        bad = true;
    }
    for (size_t i = 0; !bad && i < n; i++) {
        json_object *q = json_object_array_get_idx(qs, i);
        char field[48];
        snprintf(field, sizeof field, "questions[%zu]", i);
        if (!json_object_is_type(q, json_type_string)) {
            http_send_api_error(r, API_ERR_NOT_A_STRING, field);
            bad = true;
        } else if (!request_text_ok(r, svc, json_object_get_string(q), field)) {
            bad = true;
        }
    }
    cml_model *m = bad ? NULL : request_model(r, svc, type);
    const char **texts = m ? cml_calloc(n, sizeof *texts) : NULL;
    if (m != NULL && texts == NULL)
        http_send_api_error(r, API_ERR_PREDICTION_FAILED);
    if (texts != NULL) {
        for (size_t i = 0; i < n; i++)
            texts[i] = json_object_get_string(json_object_array_get_idx(qs, i));
        batch_ctx ctx = {m, texts, json_object_new_array()};
        cml_feature_scratch *s = handlers_scratch();
        if (s == NULL || cml_model_predict_each(m, s, texts, n, batch_result, &ctx) != CML_OK) {
            http_send_api_error(r, API_ERR_PREDICTION_FAILED);
            json_object_put(ctx.results);
        } else {
            handlers_note_model(r, m);
            json_object *o = json_object_new_object();
            json_object_object_add(o, "results", ctx.results);
            json_object_object_add(o, "count", json_object_new_int64((int64_t)n));
            json_object_object_add(o, "model",
                                   json_object_new_string(cml_model_type_name(m->type)));
            json_object_object_add(o, "model_version", json_object_new_string(m->version));
            json_object_object_add(o, "batch_size", json_object_new_int64((int64_t)n));
            http_send_json(r, HTTP_OK, o);
        }
    }
    cml_free(texts);
    cml_model_release(m);
    json_object_put(body);
    return HANDLER_DONE;
}

/* True when label is a label of a resident model. */
static bool known_label(service *svc, const char *label) {
    bool known = false;
    for (int t = CML_MODEL_CLASSIC; t < CML_MODEL__COUNT && !known; t++) {
        cml_model *m = cml_registry_acquire(svc->registry, (cml_model_type)t);
        for (size_t c = 0; m && c < m->n_labels && !known; c++)
            known = strcmp(m->labels[c], label) == 0;
        cml_model_release(m);
    }
    return known;
}

handler_result handle_feedback(service *svc, http_req *r, const route_args *args) {
    (void)args;
    bool bad = false;
    json_object *body = request_json_body(r, true);
    if (body == NULL)
        return HANDLER_DONE;
    cml_feedback fb = {.confidence = NAN};
    fb.text = request_string_field(r, body, "text", &bad);
    if (!bad)
        fb.correct_class = request_string_field(r, body, "correct_class", &bad);
    if (!bad && fb.correct_class == NULL)
        fb.correct_class = request_string_field(r, body, "human_label", &bad);
    if (!bad)
        fb.predicted_class = request_string_field(r, body, "predicted_class", &bad);
    if (!bad)
        fb.error_type = request_string_field(r, body, "error_type", &bad);
    if (!bad)
        fb.source = request_string_field(r, body, "source", &bad);
    /* Not stored, but typed: a client sending a number here has a bug to hear about. */
    if (!bad)
        (void)request_string_field(r, body, "model_type", &bad);
    if (!bad)
        (void)request_string_field(r, body, "model_version", &bad);
    if (!bad && fb.correct_class != NULL)
        (void)request_string_field(r, body, "human_label", &bad);
    /* A scenario id is a small id of the web client's scenario list (documented 0..2^31-1). */
    if (!bad && (!request_number_field(r, body, "confidence", 0.0, 1.0, &fb.confidence) ||
                 !request_int_field(r, body, "scenario_id", 0, INT32_MAX, &fb.scenario_id,
                                    &fb.has_scenario)))
        bad = true;
    if (!bad && !request_text_ok(r, svc, fb.text, "text"))
        bad = true;
    if (!bad && fb.correct_class == NULL) {
        http_send_api_error(r, API_ERR_REQUIRED_FIELD, "correct_class");
        bad = true;
    }
    if (!bad && !known_label(svc, fb.correct_class)) {
        http_send_api_error(r, API_ERR_UNKNOWN_LABEL);
        bad = true;
    }
    if (!bad)
        fb.model_type = request_string_field(r, body, "model_type", &bad);
    if (!bad)
        fb.model_version = request_string_field(r, body, "model_version", &bad);
    cml_model_type type = (cml_model_type)atomic_load(&svc->active_type);
    if (!bad && fb.model_type && cml_model_type_parse(fb.model_type, &type) != CML_OK) {
        http_send_api_error(r, API_ERR_UNKNOWN_MODEL_TYPE);
        bad = true;
    }
    /* What gave the answer, when the client does not say: the resident version of the type. */
    cml_model *m = bad ? NULL : cml_registry_acquire(svc->registry, type);
    cml_prediction p;
    if (m != NULL) {
        fb.model_type = cml_model_type_name(m->type);
        if (fb.model_version == NULL)
            fb.model_version = m->version;
        if (fb.predicted_class == NULL && strcmp(fb.model_version, m->version) == 0 &&
            predict(r, m, fb.text, &p))
            fb.predicted_class = m->labels[p.label];
        else if (r->answered)
            bad = true;
    }
    if (!bad) {
        int64_t id = 0, total = 0;
        cml_err err = cml_state_add_feedback(svc->state, &fb, &id, &total);
        if (err != CML_OK) {
            http_send_api_error(r, state_api_error(err, API_ERR_FEEDBACK_NOT_STORED));
        } else {
            defer(NULL, NULL, fb.text, id);
            json_object *o = json_object_new_object();
            json_object_object_add(o, "status", json_object_new_string("success"));
            json_object_object_add(o, "feedback_id", json_object_new_int64(id));
            json_object_object_add(o, "total_entries", json_object_new_int64(total));
            http_send_json(r, HTTP_OK, o);
        }
    }
    cml_model_release(m);
    json_object_put(body);
    return HANDLER_DONE;
}
