/*
 * The HTTP contract of the service (API.md) driven through a real front end: lighttpd or Apache,
 * spawn-fcgi and cultivate-ml-fcgi workers, started by the wrapper scripts
 * (test_service_lighttpd.sh, test_service_apache.sh, test_swap_under_load.sh), which set:
 *   CML_BASE_URL        http://127.0.0.1:PORT of the front end
 *   CML_API_KEY         the admin key the service was given (API_KEY)
 *   CML_ALLOWED_ORIGIN  the one origin in CORS_ALLOWED_ORIGINS
 *   CML_MAX_BODY        the service's MAX_BODY_BYTES
 *   CML_MODEL_TYPE      the type selected at first start (MODEL_TYPE)
 *   CML_V1, CML_V2      two classic versions in the model cache (V2 the latest)
 *   CML_DATA            the bundled corpus
 *   CML_FCGI_LOG        the workers' log (to see which worker process answered)
 *   CML_SUPERVISOR_PID  in supervised mode, the supervisor
 *   CML_STATE_DIR       the service's state directory (models/ is its model cache)
 * Arguments name the suites to run: routes, pin, persist, swap, worker, nokey (default:
 * routes).
 */
#include "config.h"

#include <check.h>
#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <json-c/json.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "http_client.h"
#include "process_watch.h"
#include "suite_main.h"

/* --- environment ------------------------------------------------------------------------- */

static const char *active_type(void) { return env_or("CML_MODEL_TYPE", "classic"); }

static bool have_ensemble(void) {
#ifdef HAVE_ENSEMBLE
    return true;
#else
    return false;
#endif
}

/* The HTTP client and JSON helpers are in http_client.h. */

/* --- assertions on answers --------------------------------------------------------------- */

/* Every error: the status, a JSON body {"detail": "...", "error": "<code>"} and a request id. */
static void expect_error(const resp *r, long status, const char *code) {
    char id[128];
    expect_json(r, status);
    ck_assert_msg(json_object_is_type(r->json, json_type_object), "error body is not an object");
    const char *detail = jstr(r->json, "detail");
    ck_assert_msg(strlen(detail) > 5, "detail too short: %s", r->body);
    ck_assert_msg(strstr(detail, "/tmp/") == NULL && strstr(detail, "/work/") == NULL,
                  "detail shows a server path: %s", detail);
    const char *e = jstr(r->json, "error");
    for (const char *p = e; *p; p++)
        ck_assert_msg(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_',
                      "error code is not snake_case: %s", e);
    if (code)
        ck_assert_str_eq(e, code);
    ck_assert_msg(header(r, "X-Request-Id", id, sizeof id), "no X-Request-Id on an error");
}

static bool is_label(const char *s) { return !strcmp(s, "OEQ") || !strcmp(s, "CEQ"); }

/* {OEQ: p, CEQ: p} summing to 1. */
static void expect_probabilities(json_object *p) {
    ck_assert_msg(p && json_object_is_type(p, json_type_object), "no probabilities object");
    double oeq = jnum(p, "OEQ"), ceq = jnum(p, "CEQ");
    ck_assert_msg(oeq >= 0 && oeq <= 1 && ceq >= 0 && ceq <= 1, "probabilities out of range");
    ck_assert_msg(fabs(oeq + ceq - 1.0) < 1e-3, "probabilities sum to %g", oeq + ceq);
}

/* --- data ---------------------------------------------------------------------------------- */

/* The corpus header and every k-th row: a CSV in memory; caller frees. */
static char *corpus_sample(int k) {
    const char *path = env_or("CML_DATA", env_or("CML_TEST_DATA", "data/questions.csv"));
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    char *out = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&out, &n);
    char line[8192];
    for (int i = 0; fgets(line, sizeof line, f); i++)
        if (i == 0 || i % k == 1)
            fputs(line, m);
    fclose(f);
    fclose(m);
    return out;
}

static char *repeat(const char *unit, size_t times) {
    size_t ul = strlen(unit);
    char *s = malloc(ul * times + 1);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * ul, unit, ul);
    s[ul * times] = '\0';
    return s;
}

/* ========================================================================================= */
/* Suite "routes": every route of the contract and the error rules.                          */
/* ========================================================================================= */

START_TEST(test_ready) {
    resp *r = get("/api/ready");
    expect_json(r, 200);
    ck_assert(jbool(r->json, "ready"));
    resp_free(r);
}
END_TEST

START_TEST(test_health) {
    resp *r = get("/api/health");
    expect_json(r, 200);
    const char *st = jstr(r->json, "status");
    ck_assert_msg(!strcmp(st, "healthy"), "status %s: %s", st, r->body);
    ck_assert_str_eq(jstr(r->json, "service"), "cultivate-ml-api");
    ck_assert_str_eq(jstr(r->json, "version"), PACKAGE_VERSION);
    ck_assert_str_eq(jstr(r->json, "active_model"), active_type());
    ck_assert(jbool(r->json, "models.classic.loaded"));
    jstr(r->json, "models.classic.version");
    jstr(r->json, "models.classic.loaded_at");
    ck_assert(jbool(r->json, "models.ensemble.loaded") == have_ensemble());
    ck_assert_str_eq(jstr(r->json, "storage.backend"), "local");
    ck_assert(jbool(r->json, "storage.reachable"));
    ck_assert(jhas(r->json, "storage.last_sync"));
    jbool(r->json, "training.is_training");
    ck_assert(jnum(r->json, "uptime_s") >= 0);
    resp_free(r);
}
END_TEST

/* Prometheus text exposition format: HELP/TYPE comments, samples `name{l="v",...} value`. */
static void expect_prometheus(const char *text) {
    char types[256][128];
    size_t nt = 0;
    int samples = 0;
    for (const char *line = text; *line;) {
        const char *eol = strchr(line, '\n');
        ck_assert_msg(eol != NULL, "the last line has no newline");
        char l[2048];
        snprintf(l, sizeof l, "%.*s", (int)(eol - line), line);
        line = eol + 1;
        if (l[0] == '\0')
            continue;
        if (l[0] == '#') {
            char kind[16], name[128], rest[64];
            int got = sscanf(l, "# %15s %127s %63s", kind, name, rest);
            ck_assert_msg(got >= 2, "bad comment line: %s", l);
            if (!strcmp(kind, "TYPE")) {
                ck_assert_msg(got == 3 && (!strcmp(rest, "counter") || !strcmp(rest, "gauge") ||
                                           !strcmp(rest, "histogram") || !strcmp(rest, "summary") ||
                                           !strcmp(rest, "untyped")),
                              "bad TYPE line: %s", l);
                for (size_t i = 0; i < nt; i++)
                    ck_assert_msg(strcmp(types[i], name) != 0, "TYPE of %s given twice", name);
                ck_assert(nt < 256);
                snprintf(types[nt++], sizeof types[0], "%s", name);
            }
            continue;
        }
        /* A sample. */
        const char *p = l;
        ck_assert_msg(isalpha((unsigned char)*p) || *p == '_' || *p == ':', "bad name: %s", l);
        while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
            p++;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(p - l), l);
        if (*p == '{') {
            p++;
            while (*p != '}') {
                ck_assert_msg(isalpha((unsigned char)*p) || *p == '_', "bad label: %s", l);
                while (isalnum((unsigned char)*p) || *p == '_')
                    p++;
                ck_assert_msg(p[0] == '=' && p[1] == '"', "bad label value: %s", l);
                p += 2;
                while (*p && *p != '"') {
                    if (*p == '\\') {
                        ck_assert_msg(p[1] == '\\' || p[1] == '"' || p[1] == 'n', "bad escape: %s",
                                      l);
                        p++;
                    }
                    p++;
                }
                ck_assert_msg(*p == '"', "unterminated label value: %s", l);
                p++;
                if (*p == ',')
                    p++;
                else
                    ck_assert_msg(*p == '}', "bad label list: %s", l);
            }
            p++;
        }
        ck_assert_msg(*p == ' ', "no value: %s", l);
        p++;
        char *end;
        if (strncmp(p, "+Inf", 4) && strncmp(p, "-Inf", 4) && strncmp(p, "NaN", 3)) {
            strtod(p, &end);
            ck_assert_msg(end != p && (*end == '\0' || *end == ' '), "bad value: %s", l);
        }
        /* Its family must have been typed before: name, or name without a histogram suffix. */
        bool typed = false;
        for (size_t i = 0; i < nt && !typed; i++) {
            size_t tl = strlen(types[i]);
            typed = !strcmp(types[i], name) ||
                    (!strncmp(types[i], name, tl) &&
                     (!strcmp(name + tl, "_bucket") || !strcmp(name + tl, "_sum") ||
                      !strcmp(name + tl, "_count")));
        }
        ck_assert_msg(typed, "sample of an undeclared family: %s", l);
        samples++;
    }
    ck_assert_int_gt(samples, 5);
}

START_TEST(test_metrics_prometheus) {
    resp_free(get("/api/health"));
    resp_free(post_json("/api/v1/models/classify",
                        "{\"text\":\"What happened next?\",\"model_type\":\"classic\"}"));
    resp *r = get("/metrics");
    char ct[256];
    expect_status(r, 200);
    ck_assert_msg(header(r, "Content-Type", ct, sizeof ct) && !strncmp(ct, "text/plain", 10),
                  "Content-Type %s", ct);
    ck_assert_ptr_nonnull(strstr(ct, "version=0.0.4"));
    expect_prometheus(r->body);
    ck_assert_ptr_nonnull(strstr(r->body, "# TYPE cultivate_ml_requests_total counter"));
    ck_assert_ptr_nonnull(strstr(r->body, "cultivate_ml_requests_total{route=\"/api/health\""));
    /* Requests by route, model, version and status. */
    const char *series = strstr(
        r->body, "cultivate_ml_requests_total{route=\"/api/v1/models/classify\",model=\"classic\","
                 "version=\"");
    ck_assert_msg(series != NULL, "no classify series: %s", r->body);
    const char *eol = strchr(series, '\n');
    ck_assert_msg(eol && memmem(series, (size_t)(eol - series), "status=\"200\"}", 13),
                  "series without status: %.200s", series);
    ck_assert_ptr_nonnull(strstr(r->body, "cultivate_ml_request_duration_seconds_bucket{"));
    ck_assert_ptr_nonnull(strstr(r->body, "cultivate_ml_model_loads_total "));
    ck_assert_ptr_nonnull(strstr(r->body, "cultivate_ml_model_load_failures_total "));
    ck_assert_ptr_nonnull(strstr(r->body, "cultivate_ml_training_jobs_started_total "));
    ck_assert_ptr_nonnull(strstr(r->body, "cultivate_ml_blob_operations_total "));
    ck_assert_ptr_nonnull(strstr(r->body, "cultivate_ml_blob_failures_total "));
    ck_assert_ptr_nonnull(strstr(r->body, "cultivate_ml_resident_model_bytes{pid="));
    resp_free(r);
}
END_TEST

START_TEST(test_current) {
    resp *r = get("/api/v1/models/current");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "model_type"), active_type());
    jstr(r->json, "version");
    const char *at = jstr(r->json, "loaded_at");
    ck_assert_msg(strlen(at) == 20 && at[10] == 'T' && at[19] == 'Z', "loaded_at %s", at);
    resp_free(r);
}
END_TEST

START_TEST(test_models_list) {
    const char *v1 = env_or("CML_V1", ""), *v2 = env_or("CML_V2", "");
    resp *r = get("/api/v1/models");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "active.model_type"), active_type());
    jstr(r->json, "active.version");
    json_object *models = jtyped(r->json, "models", json_type_array);
    bool saw1 = false, saw2 = false, loaded_active = false;
    for (size_t i = 0; i < json_object_array_length(models); i++) {
        json_object *m = json_object_array_get_idx(models, i);
        const char *type = jstr(m, "model_type"), *v = jstr(m, "version");
        jstr(m, "created_at");
        ck_assert(jnum(m, "size_bytes") > 1000);
        ck_assert_uint_eq(strlen(jstr(m, "sha256")), 64);
        const char *loc = jstr(m, "location");
        ck_assert_msg(!strcmp(loc, "local") || !strcmp(loc, "blob") || !strcmp(loc, "both"),
                      "location %s", loc);
        ck_assert(jhas(m, "metrics"));
        bool loaded = jbool(m, "loaded");
        if (!strcmp(type, "classic")) {
            saw1 |= !strcmp(v, v1);
            saw2 |= !strcmp(v, v2);
        }
        if (loaded && !strcmp(type, active_type()) && !strcmp(v, jstr(r->json, "active.version")))
            loaded_active = true;
    }
    ck_assert_msg(saw1 && saw2, "classic %s and %s not both listed: %s", v1, v2, r->body);
    ck_assert_msg(loaded_active, "the active version is not marked loaded: %s", r->body);
    resp_free(r);
}
END_TEST

START_TEST(test_comparison) {
    resp *r = get("/api/v1/models/comparison");
    expect_json(r, 200);
    ck_assert(jhas(r->json, "ensemble"));
    ck_assert(jhas(r->json, "classic"));
    ck_assert(jhas(r->json, "recommendation"));
    json_object *c = jget(r->json, "classic");
    if (c && !json_object_is_type(c, json_type_null)) {
        jnum(c, "accuracy");
        jnum(c, "f1_score");
        jnum(c, "training_time");
        jstr(c, "timestamp");
        jstr(c, "version");
    }
    json_object *rec = jget(r->json, "recommendation");
    if (rec && !json_object_is_type(rec, json_type_null)) {
        const char *m = jstr(rec, "model");
        ck_assert(!strcmp(m, "ensemble") || !strcmp(m, "classic"));
        jstr(rec, "reason");
    }
    resp_free(r);
}
END_TEST

START_TEST(test_history) {
    resp *r = get("/api/v1/models/performance/history?limit=5&model_type=classic");
    expect_json(r, 200);
    ck_assert(json_object_is_type(r->json, json_type_array));
    ck_assert_int_le(json_object_array_length(r->json), 5);
    resp_free(r);
    r = get("/api/v1/models/performance/history");
    expect_json(r, 200);
    ck_assert(json_object_is_type(r->json, json_type_array));
    resp_free(r);
    r = get("/api/v1/models/performance/history?limit=abc");
    expect_error(r, 400, NULL);
    resp_free(r);
    r = get("/api/v1/models/performance/history?model_type=bogus");
    expect_error(r, 400, NULL);
    resp_free(r);
}
END_TEST

START_TEST(test_training_status) {
    resp *r = get("/api/v1/models/training/status");
    expect_json(r, 200);
    jbool(r->json, "is_training");
    const char *st = jstr(r->json, "status");
    ck_assert(!strcmp(st, "idle") || !strcmp(st, "running") || !strcmp(st, "completed") ||
              !strcmp(st, "failed"));
    double p = jnum(r->json, "progress");
    ck_assert(p >= 0 && p <= 100);
    const char *keys[] = {"task_id",    "model_type",  "current_task",
                          "start_time", "finished_at", "error"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        ck_assert_msg(jhas(r->json, keys[i]), "no %s: %s", keys[i], r->body);
    resp_free(r);
}
END_TEST

START_TEST(test_training_status_unknown_task) {
    resp *r = get("/api/v1/models/training/status/job-00000000000000-deadbeef");
    expect_error(r, 404, NULL);
    resp_free(r);
}
END_TEST

/* --- transcripts --------------------------------------------------------------------------- */

static const char lesson_vtt[] = "WEBVTT\n\n"
                                 "00:00:01.000 --> 00:00:04.000\n"
                                 "<v Teacher>Good morning friends. Look at this leaf.\n\n"
                                 "00:00:04.500 --> 00:00:07.000\n"
                                 "<v Teacher>What do you think will happen if we put\n\n"
                                 "00:00:07.000 --> 00:00:09.000\n"
                                 "<v Teacher>this leaf in the water?\n\n"
                                 "00:00:09.500 --> 00:00:10.500\n"
                                 "<v Child>It floats!\n\n"
                                 "00:01:00.000 --> 00:01:02.000\n"
                                 "<v Teacher>Is it green? Put it on the tray please.\n";

static resp *analyze(const char *ctype, const char *body, const char *query) {
    char path[256];
    snprintf(path, sizeof path, "/api/v1/transcripts/analyze%s", query ? query : "");
    return request("POST", path, ctype, body, strlen(body), NULL);
}

/* The question of index i has this text (and, when timed, these times). */
static json_object *question_at(const resp *r, size_t i, const char *text) {
    json_object *qs = jtyped(r->json, "questions", json_type_array);
    ck_assert_uint_gt(json_object_array_length(qs), i);
    json_object *q = json_object_array_get_idx(qs, i);
    ck_assert_str_eq(jstr(q, "text"), text);
    ck_assert_int_eq((int)jnum(q, "index"), (int)i);
    ck_assert(is_label(jstr(q, "classification")));
    return q;
}

START_TEST(test_transcript_vtt) {
    resp *r = analyze("text/vtt; charset=utf-8", lesson_vtt, NULL);
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "model_type"), active_type());
    jstr(r->json, "model_version");
    /* The question spanning two cues is one question, with the first cue's start and the
       second's end; the child's reply and the instruction are not questions. */
    json_object *qs = jtyped(r->json, "questions", json_type_array);
    ck_assert_int_eq((int)json_object_array_length(qs), 2);
    json_object *q =
        question_at(r, 0, "What do you think will happen if we put this leaf in the water?");
    ck_assert_double_eq_tol(jnum(q, "start_s"), 4.5, 1e-9);
    ck_assert_double_eq_tol(jnum(q, "end_s"), 9.0, 1e-9);
    ck_assert_str_eq(jstr(q, "speaker"), "Teacher");
    ck_assert_str_eq(jstr(q, "classification"), "OEQ");
    q = question_at(r, 1, "Is it green?");
    ck_assert_str_eq(jstr(q, "classification"), "CEQ");
    ck_assert_double_eq_tol(jnum(q, "start_s"), 60.0, 1e-9);
    ck_assert_double_eq_tol(jnum(r->json, "summary.duration_s"), 61.0, 1e-9);
    ck_assert_int_eq((int)jnum(r->json, "summary.segments"), 5);
    ck_assert_int_eq((int)jnum(r->json, "summary.questions"), 2);
    ck_assert_int_eq((int)jnum(r->json, "summary.oeq"), 1);
    ck_assert_int_eq((int)jnum(r->json, "summary.ceq"), 1);
    ck_assert_double_eq_tol(jnum(r->json, "summary.oeq_share"), 0.5, 1e-9);
    ck_assert_double_eq_tol(jnum(r->json, "summary.questions_per_minute"), 2 * 60.0 / 61.0, 1e-9);
    ck_assert_int_eq((int)jnum(r->json, "summary.by_speaker.Teacher.questions"), 2);
    resp_free(r);

    /* Only the child's turns: no question. */
    r = analyze("text/vtt", lesson_vtt, "?speakers=Child");
    expect_json(r, 200);
    ck_assert_int_eq((int)jnum(r->json, "summary.questions"), 0);
    ck_assert(jnull(r->json, "summary.oeq_share"));
    resp_free(r);
}
END_TEST

/* The command gives the same questions as the route, from the same file and model. */
START_TEST(test_transcript_cli_matches_route) {
    const char *state = getenv("CML_STATE_DIR"), *build = getenv("CML_TOP_BUILDDIR");
    ck_assert_msg(state != NULL && build != NULL, "CML_STATE_DIR or CML_TOP_BUILDDIR not set");
    resp *r = analyze("text/vtt", lesson_vtt, NULL);
    expect_json(r, 200);
    char file[4096], cmd[8192];
    snprintf(file, sizeof file, "%s/lesson-%d.vtt", state, (int)getpid());
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fputs(lesson_vtt, f);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "'%s/cultivate-ml' analyze --json --model '%s/models/%s_%s.model' '%s'", build, state,
             jstr(r->json, "model_type"), jstr(r->json, "model_version"), file);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char out[65536];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    ck_assert_int_eq(pclose(p), 0);
    unlink(file);
    json_object *cli = json_tokener_parse(out);
    ck_assert_msg(cli != NULL, "analyze printed no JSON: %s", out);
    json_object *a = jtyped(r->json, "questions", json_type_array),
                *b = jtyped(cli, "questions", json_type_array);
    ck_assert_int_eq((int)json_object_array_length(a), (int)json_object_array_length(b));
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        json_object *qa = json_object_array_get_idx(a, i), *qb = json_object_array_get_idx(b, i);
        ck_assert_str_eq(jstr(qa, "text"), jstr(qb, "text"));
        ck_assert_str_eq(jstr(qa, "classification"), jstr(qb, "classification"));
        ck_assert_double_eq_tol(jnum(qa, "confidence"), jnum(qb, "confidence"), 1e-12);
    }
    json_object_put(cli);
    resp_free(r);
}
END_TEST

START_TEST(test_transcript_srt_json_plain) {
    const char *srt = "1\r\n00:00:01,000 --> 00:00:03,000\r\n<i>How does it feel?</i>\r\n\r\n"
                      "2\r\n00:00:03,500 --> 00:00:05,000\r\nSquishy.\r\n";
    resp *r = analyze("application/x-subrip", srt, NULL);
    expect_json(r, 200);
    json_object *q = question_at(r, 0, "How does it feel?");
    ck_assert(jnull(q, "speaker"));
    ck_assert_double_eq_tol(jnum(q, "end_s"), 3.0, 1e-9);
    ck_assert_int_eq((int)jnum(r->json, "summary.questions"), 1);
    resp_free(r);

    const char *whisper =
        "{\"segments\": [{\"start\": 0, \"end\": 2, \"text\": \" Which one is "
        "bigger?\", \"speaker\": \"A\", \"avg_logprob\": -0.2},"
        " {\"start\": 2, \"end\": 4, \"text\": \"Why do you think so?\", "
        "\"speaker\": \"B\"}], \"speakers\": [\"B\"], \"model_type\": \"classic\"}";
    r = analyze("application/json", whisper, NULL);
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "model_type"), "classic");
    ck_assert_int_eq((int)jnum(r->json, "summary.questions"), 1);
    question_at(r, 0, "Why do you think so?");
    resp_free(r);

    r = analyze("text/plain", "Look at the snail.\nWhere is it going?\n", "?model_type=classic");
    expect_json(r, 200);
    q = question_at(r, 0, "Where is it going?");
    ck_assert(jnull(q, "start_s") && jnull(q, "end_s"));
    ck_assert(jnull(r->json, "summary.duration_s"));
    ck_assert(jnull(r->json, "summary.questions_per_minute"));
    resp_free(r);
}
END_TEST

START_TEST(test_transcript_bad_input) {
    resp *r = analyze("text/vtt",
                      "WEBVTT\n\n00:00:05.000 --> 00:00:06.000\nhi\n\n"
                      "00:00:01.000 --> 00:00:02.000\nho\n",
                      NULL);
    expect_error(r, 400, "invalid_transcript");
    ck_assert_msg(strstr(jstr(r->json, "detail"), "line 6") != NULL, "detail names no line");
    resp_free(r);
    r = analyze("text/vtt", "WEBVTX\n", NULL);
    expect_error(r, 400, "invalid_transcript");
    resp_free(r);
    r = analyze("application/x-subrip", "1\n00:00:01,000 --> 00:00:02,000\n\n", NULL);
    expect_error(r, 400, "invalid_transcript");
    resp_free(r);
    r = analyze("text/html", "<p>hi</p>", NULL);
    expect_error(r, 415, "unsupported_media_type");
    resp_free(r);
    r = analyze("text/plain", "Is it red?", "?min_confidence=2");
    expect_error(r, 400, NULL);
    resp_free(r);
    r = analyze("text/plain", "Is it red?", "?model_type=bogus");
    expect_error(r, 400, "unknown_model_type");
    resp_free(r);
    r = analyze("application/json",
                "{\"segments\": [{\"start\": 0, \"end\": 1, \"text\": \"x\"}], "
                "\"speakers\": \"T\"}",
                NULL);
    expect_error(r, 400, "wrong_type");
    resp_free(r);
    /* Over MAX_TRANSCRIPT_BYTES (2 MiB by default): 413, and the service still answers. */
    size_t big = ((size_t)2 << 20) + 16;
    char *body = malloc(big + 1);
    ck_assert_ptr_nonnull(body);
    memset(body, 'a', big);
    for (size_t i = 79; i < big; i += 80)
        body[i] = '\n';
    body[big] = '\0';
    r = request("POST", "/api/v1/transcripts/analyze", "text/plain", body, big, NULL);
    expect_error(r, 413, "payload_too_large");
    resp_free(r);
    free(body);
    r = get("/api/health");
    expect_json(r, 200);
    resp_free(r);
}
END_TEST

/* --- classification ------------------------------------------------------------------------ */

START_TEST(test_classify_model_api) {
    resp *r =
        post_json("/api/v1/models/classify",
                  "{\"text\":\"What do you think will happen next?\",\"context\":\"blocks\"}");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "classification"), "OEQ");
    double conf = jnum(r->json, "confidence");
    ck_assert(conf >= 0.5 && conf <= 1);
    expect_probabilities(jget(r->json, "probabilities"));
    ck_assert_str_eq(jstr(r->json, "model_type"), active_type());
    jstr(r->json, "model_version");
    ck_assert(jnum(r->json, "processing_time_ms") >= 0);
    jstr(r->json, "timestamp");
    ck_assert(jhas(r->json, "ensemble_details") == !strcmp(active_type(), "ensemble"));
    resp_free(r);

    r = post_json("/api/v1/models/classify",
                  "{\"text\":\"Is it red?\",\"model_type\":\"classic\"}");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "classification"), "CEQ");
    ck_assert_str_eq(jstr(r->json, "model_type"), "classic");
    ck_assert(!jhas(r->json, "ensemble_details"));
    resp_free(r);

    r = post_json("/api/v1/models/classify", "{\"text\":\"Is it red?\",\"model_type\":\"bogus\"}");
    expect_error(r, 400, NULL);
    resp_free(r);
}
END_TEST

/* A clip of several sentences answers its questions too, with character offsets. */
START_TEST(test_classify_questions_of_a_clip) {
    /* "it\u2019s" is 3 bytes in UTF-8 and one character: offsets must count characters. */
    const char *text = "Look, it\u2019s all wet. Why is it wet? Does it feel cold?";
    char body[256];
    snprintf(body, sizeof body, "{\"text\":\"%s\"}", text);
    resp *r = post_json("/api/v1/models/classify", body);
    expect_json(r, 200);
    ck_assert(is_label(jstr(r->json, "classification")));
    json_object *qs = jtyped(r->json, "questions", json_type_array);
    ck_assert_int_eq((int)json_object_array_length(qs), 2);
    const char *want[] = {"Why is it wet?", "Does it feel cold?"};
    const int starts[] = {20, 35};
    for (int i = 0; i < 2; i++) {
        json_object *q = json_object_array_get_idx(qs, (size_t)i);
        ck_assert_str_eq(jstr(q, "text"), want[i]);
        ck_assert_int_eq((int)jnum(q, "start"), starts[i]);
        ck_assert_int_eq((int)jnum(q, "end"), starts[i] + (int)strlen(want[i]));
        ck_assert(is_label(jstr(q, "classification")));
        double c = jnum(q, "confidence");
        ck_assert(c >= 0.5 && c <= 1);
    }
    resp_free(r);

    /* One sentence: no questions field. */
    r = post_json("/api/v1/models/classify", "{\"text\":\"Why is it wet?\"}");
    expect_json(r, 200);
    ck_assert(!jhas(r->json, "questions"));
    resp_free(r);
}
END_TEST

START_TEST(test_classify_model_api_ensemble) {
    resp *r = post_json("/api/v1/models/classify",
                        "{\"text\":\"Why is it red?\",\"model_type\":\"ensemble\"}");
    if (!have_ensemble()) {
        char ra[32];
        expect_error(r, 503, NULL);
        ck_assert_msg(header(r, "Retry-After", ra, sizeof ra), "503 without Retry-After");
        resp_free(r);
        return;
    }
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "model_type"), "ensemble");
    jstr(r->json, "ensemble_details.voting_strategy");
    const char *agree = jstr(r->json, "ensemble_details.agreement");
    int k = 0, n = 0;
    ck_assert_msg(sscanf(agree, "%d/%d", &k, &n) == 2 && k >= 1 && k <= n, "agreement %s", agree);
    json_object *members = jtyped(r->json, "ensemble_details.members", json_type_array);
    ck_assert_int_eq((int)json_object_array_length(members), n);
    for (int i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(members, (size_t)i);
        jstr(m, "name");
        ck_assert(is_label(jstr(m, "classification")));
        jnum(m, "confidence");
        expect_probabilities(jget(m, "probabilities"));
    }
    resp_free(r);
}
END_TEST

/* The web client's answer shape, and the text exactly as sent. */
static void expect_client_answer(const resp *r, const char *text, const char *model) {
    expect_json(r, 200);
    ck_assert(is_label(jstr(r->json, "classification")));
    double c = jnum(r->json, "confidence");
    ck_assert(c >= 0 && c <= 1);
    ck_assert_str_eq(jstr(r->json, "text"), text);
    ck_assert_str_eq(jstr(r->json, "model"), model);
    expect_probabilities(jget(r->json, "probabilities"));
    ck_assert(jnum(r->json, "processing_time_ms") >= 0);
}

START_TEST(test_classify_client_routes) {
    const char *routes[] = {"/api/classify", "/api/v1/classify", "/classify_response"};
    const char *text = "Is the <b>red</b> block & the \"blue\" one bigger?";
    char *q = jquote(text), body[512];
    snprintf(body, sizeof body,
             "{\"text\":%s,\"debug\":true,\"debug_mode\":false,\"scenario_id\":7}", q);
    for (size_t i = 0; i < 3; i++) {
        resp *r = post_json(routes[i], body);
        expect_client_answer(r, text, "classic");
        resp_free(r);
    }
    /* scenario_id may be null. */
    snprintf(body, sizeof body, "{\"text\":%s,\"scenario_id\":null}", q);
    resp *r = post_json("/api/v1/classify", body);
    expect_client_answer(r, text, "classic");
    resp_free(r);
    free(q);
}
END_TEST

START_TEST(test_classify_query_text_without_body) {
    resp *r = request("POST", "/api/classify?text=What%20do%20you+think%3F", NULL, NULL, 0, NULL);
    expect_client_answer(r, "What do you think?", "classic");
    ck_assert_str_eq(jstr(r->json, "classification"), "OEQ");
    resp_free(r);
}
END_TEST

START_TEST(test_classify_ensemble_routes) {
    const char *routes[] = {"/api/v2/classify/ensemble", "/api/v1/classify/response"};
    for (size_t i = 0; i < 2; i++) {
        resp *r = post_json(routes[i], "{\"text\":\"How did you build that?\"}");
        if (!have_ensemble()) {
            char ra[32];
            expect_error(r, 503, NULL);
            ck_assert_msg(header(r, "Retry-After", ra, sizeof ra), "503 without Retry-After");
            resp_free(r);
            continue;
        }
        expect_client_answer(r, "How did you build that?", "ensemble");
        jstr(r->json, "voting_details.ensemble_method");
        double n = jnum(r->json, "voting_details.num_models");
        ck_assert(n >= 2);
        json_object *tally = jtyped(r->json, "voting_details.vote_tally", json_type_object);
        double votes = jnum(tally, "OEQ") + jnum(tally, "CEQ");
        ck_assert(votes == n);
        jstr(r->json, "voting_details.vote_summary");
        json_object *ind =
            jtyped(r->json, "voting_details.individual_predictions", json_type_object);
        ck_assert_int_eq(json_object_object_length(ind), (int)n);
        json_object_object_foreach(ind, name, p) {
            (void)name;
            ck_assert(is_label(jstr(p, "prediction")));
            jnum(p, "oeq_prob");
            jnum(p, "ceq_prob");
            jnum(p, "confidence");
        }
        resp_free(r);
    }
}
END_TEST

static void expect_batch(const resp *r, size_t n, const char *model) {
    expect_json(r, 200);
    json_object *res = jtyped(r->json, "results", json_type_array);
    ck_assert_uint_eq(json_object_array_length(res), n);
    ck_assert_int_eq((int)jnum(r->json, "count"), (int)n);
    ck_assert_int_eq((int)jnum(r->json, "batch_size"), (int)n);
    ck_assert_str_eq(jstr(r->json, "model"), model);
    for (size_t i = 0; i < n; i++) {
        json_object *x = json_object_array_get_idx(res, i);
        jstr(x, "text");
        ck_assert(is_label(jstr(x, "classification")));
        jnum(x, "confidence");
        ck_assert_str_eq(jstr(x, "model"), model);
        expect_probabilities(jget(x, "probabilities"));
    }
}

START_TEST(test_batch_v1) {
    resp *r = post_json("/api/v1/classify/batch",
                        "{\"questions\":[\"What do you notice?\",\"Is it red?\",\"How many?\"]}");
    expect_batch(r, 3, "classic");
    ck_assert_str_eq(jstr(json_object_array_get_idx(jget(r->json, "results"), 0), "text"),
                     "What do you notice?");
    ck_assert_str_eq(jstr(json_object_array_get_idx(jget(r->json, "results"), 0), "classification"),
                     "OEQ");
    ck_assert_str_eq(jstr(json_object_array_get_idx(jget(r->json, "results"), 1), "classification"),
                     "CEQ");
    resp_free(r);
}
END_TEST

START_TEST(test_batch_v2) {
    resp *r = post_json("/api/v2/classify/batch", "{\"questions\":[\"Why?\",\"Is it blue?\"]}");
    if (have_ensemble())
        expect_batch(r, 2, "ensemble");
    else
        expect_error(r, 503, NULL);
    resp_free(r);
    r = post_json("/api/v2/classify/batch",
                  "{\"questions\":[\"Why?\",\"Is it blue?\"],\"model\":\"classic\"}");
    expect_batch(r, 2, "classic");
    resp_free(r);
    r = post_json("/api/v1/classify/batch", "{\"questions\":[\"Why?\"],\"model\":\"bogus\"}");
    expect_error(r, 400, NULL);
    resp_free(r);
}
END_TEST

START_TEST(test_batch_limits) {
    /* 1,000 is allowed, 1,001 is not, none is not. */
    for (int n = 1000; n <= 1001; n++) {
        char *items = repeat("\"Is it red?\",", (size_t)n);
        items[strlen(items) - 1] = '\0';
        size_t cap = strlen(items) + 64;
        char *body = malloc(cap);
        snprintf(body, cap, "{\"questions\":[%s]}", items);
        resp *r = post_json("/api/v1/classify/batch", body);
        if (n == 1000)
            expect_batch(r, 1000, "classic");
        else
            expect_error(r, 400, NULL);
        resp_free(r);
        free(body);
        free(items);
    }
    resp *r = post_json("/api/v1/classify/batch", "{\"questions\":[]}");
    expect_error(r, 400, NULL);
    resp_free(r);
    r = post_json("/api/v1/classify/batch", "{\"questions\":[\"ok\",\"  \"]}");
    expect_error(r, 400, NULL);
    ck_assert_ptr_nonnull(strstr(jstr(r->json, "detail"), "questions[1]"));
    resp_free(r);
}
END_TEST

START_TEST(test_feedback_routes) {
    resp *r = post_json("/api/feedback",
                        "{\"text\":\"Is it red?\",\"correct_class\":\"CEQ\",\"predicted_class\":"
                        "\"OEQ\",\"confidence\":0.61,\"error_type\":\"false_positive\","
                        "\"scenario_id\":3,\"source\":\"integration-test\"}");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "status"), "success");
    double id1 = jnum(r->json, "feedback_id"), total1 = jnum(r->json, "total_entries");
    ck_assert(id1 >= 1 && total1 >= 1);
    resp_free(r);
    r = post_json("/save_feedback",
                  "{\"text\":\"What else could we try?\",\"human_label\":\"OEQ\"}");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "status"), "success");
    ck_assert(jnum(r->json, "feedback_id") > id1);
    ck_assert(jnum(r->json, "total_entries") == total1 + 1);
    resp_free(r);
}
END_TEST

START_TEST(test_feedback_rejects_unknown_label) {
    resp *r = post_json("/save_feedback", "{\"text\":\"Is it red?\",\"correct_class\":\"MAYBE\"}");
    expect_error(r, 400, NULL);
    resp_free(r);
    r = post_json("/api/feedback", "{\"text\":\"Is it red?\"}");
    expect_error(r, 400, NULL);
    resp_free(r);
}
END_TEST

/* --- model management (admin) ----------------------------------------------------------- */

START_TEST(test_select) {
    const char *v1 = env_or("CML_V1", "");
    char body[256];
    snprintf(body, sizeof body, "{\"model_type\":\"classic\",\"version\":\"%s\"}", v1);
    resp *r = post_admin("/api/v1/models/select", body);
    expect_json(r, 200);
    ck_assert(jbool(r->json, "success"));
    ck_assert_str_eq(jstr(r->json, "current_model"), "classic");
    ck_assert_str_eq(jstr(r->json, "previous_model"), active_type());
    ck_assert_str_eq(jstr(r->json, "version"), v1);
    ck_assert(jnum(r->json, "switch_time_ms") >= 0);
    ck_assert_str_eq(jstr(r->json, "model_info.type"), "classic");
    ck_assert_str_eq(jstr(r->json, "model_info.version"), v1);
    json_object *members = jtyped(r->json, "model_info.members", json_type_array);
    ck_assert_int_ge(json_object_array_length(members), 1);
    jstr(r->json, "model_info.voting_strategy");
    jstr(r->json, "model_info.trained_at");
    ck_assert(jnum(r->json, "model_info.n_train") > 100);
    ck_assert(jhas(r->json, "model_info.metrics"));
    ck_assert(jhas(r->json, "performance_metrics"));
    resp_free(r);
    r = get("/api/v1/models/current");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "model_type"), "classic");
    ck_assert_str_eq(jstr(r->json, "version"), v1);
    resp_free(r);

    /* Back to the type of first start, following its latest version (no pin). */
    snprintf(body, sizeof body, "{\"model_type\":\"%s\"}", active_type());
    r = post_admin("/api/v1/models/select", body);
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "current_model"), active_type());
    ck_assert_str_eq(jstr(r->json, "previous_model"), "classic");
    resp_free(r);
}
END_TEST

START_TEST(test_select_errors) {
    resp *r = post_admin("/api/v1/models/select", "{\"model_type\":\"quantum\"}");
    expect_error(r, 400, NULL);
    resp_free(r);
    r = post_admin("/api/v1/models/select",
                   "{\"model_type\":\"classic\",\"version\":\"19990101T000000Z\"}");
    expect_error(r, 404, NULL);
    resp_free(r);
    r = post_admin("/api/v1/models/select",
                   "{\"model_type\":\"classic\",\"version\":\"../../etc/passwd\"}");
    expect_error(r, 404, NULL);
    resp_free(r);
    r = post_admin("/api/v1/models/select", "{\"model_type\":5}");
    expect_error(r, 400, NULL);
    resp_free(r);
    /* The selection is unchanged by all that. */
    r = get("/api/v1/models/current");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "model_type"), active_type());
    resp_free(r);
}
END_TEST

/* A version whose file cannot be loaded: 503, and the selection stays as it was. */
START_TEST(test_select_unloadable_version) {
    const char *state = getenv("CML_STATE_DIR");
    ck_assert_msg(state != NULL, "CML_STATE_DIR is not set");
    char path[4096];
    snprintf(path, sizeof path, "%s/models/classic_20000101T000000Z.model", state);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("this is not a model file\n", f);
    fclose(f);
    resp *before = get("/api/v1/models/current");
    expect_json(before, 200);
    resp *r = post_admin("/api/v1/models/select",
                         "{\"model_type\":\"classic\",\"version\":\"20000101T000000Z\"}");
    unlink(path);
    char ra[32];
    expect_error(r, 503, NULL);
    ck_assert_msg(header(r, "Retry-After", ra, sizeof ra), "503 without Retry-After");
    ck_assert_msg(strstr(r->body, state) == NULL, "the answer shows a server path: %s", r->body);
    resp_free(r);
    r = get("/api/v1/models/current");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "model_type"), jstr(before->json, "model_type"));
    ck_assert_str_eq(jstr(r->json, "version"), jstr(before->json, "version"));
    resp_free(r);
    resp_free(before);
    r = post_json("/api/v1/models/classify", "{\"text\":\"Is it red?\"}");
    expect_json(r, 200);
    resp_free(r);
}
END_TEST

START_TEST(test_select_ensemble) {
    resp *r = post_admin("/api/v1/models/select", "{\"model_type\":\"ensemble\"}");
    if (!have_ensemble()) {
        char ra[32];
        expect_error(r, 503, NULL);
        ck_assert_msg(header(r, "Retry-After", ra, sizeof ra), "503 without Retry-After");
        resp_free(r);
        r = get("/api/v1/models/current");
        expect_json(r, 200);
        ck_assert_str_eq(jstr(r->json, "model_type"), "classic");
        resp_free(r);
        return;
    }
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "current_model"), "ensemble");
    ck_assert_str_eq(jstr(r->json, "model_info.type"), "ensemble");
    ck_assert_int_ge(json_object_array_length(jget(r->json, "model_info.members")), 2);
    resp_free(r);
    char body[64];
    snprintf(body, sizeof body, "{\"model_type\":\"%s\"}", active_type());
    r = post_admin("/api/v1/models/select", body);
    expect_json(r, 200);
    resp_free(r);
}
END_TEST

static void expect_evaluation(const resp *r, bool uploaded) {
    expect_json(r, 200);
    jstr(r->json, "model_type");
    jstr(r->json, "model_version");
    double n = jnum(r->json, "n");
    ck_assert(n > 10);
    const char *keys[] = {"accuracy", "precision_macro", "recall_macro", "f1_macro",
                          "mcc",      "log_loss"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char path[64];
        snprintf(path, sizeof path, "metrics.%s", keys[i]);
        jnum(r->json, path);
    }
    ck_assert(jnum(r->json, "metrics.accuracy") > 0.7);
    json_object *labels = jtyped(r->json, "labels", json_type_array);
    size_t L = json_object_array_length(labels);
    ck_assert_uint_eq(L, 2);
    json_object *cm = jtyped(r->json, "confusion_matrix", json_type_array);
    ck_assert_uint_eq(json_object_array_length(cm), L);
    double sum = 0;
    for (size_t i = 0; i < L; i++) {
        json_object *row = json_object_array_get_idx(cm, i);
        ck_assert_uint_eq(json_object_array_length(row), L);
        for (size_t k = 0; k < L; k++)
            sum += json_object_get_double(json_object_array_get_idx(row, k));
        const char *label = json_object_get_string(json_object_array_get_idx(labels, i));
        json_object *rep = jget(jget(r->json, "classification_report"), label);
        ck_assert_msg(rep != NULL, "no report for %s", label);
        jnum(rep, "precision");
        jnum(rep, "recall");
        jnum(rep, "f1");
        jnum(rep, "support");
    }
    ck_assert(sum == n);
    jnum(r->json, "loss");
    jstr(r->json, "timestamp");
    if (jhas(r->json, "data"))
        ck_assert_str_eq(jstr(r->json, "data"), uploaded ? "uploaded" : "holdout");
}

START_TEST(test_evaluate_holdout) {
    resp *r = post_admin("/api/v1/models/evaluate", "{\"model_type\":\"classic\"}");
    expect_evaluation(r, false);
    ck_assert_str_eq(jstr(r->json, "model_type"), "classic");
    resp_free(r);
    /* No body at all is the active model on its held-out split. */
    r = post_admin("/api/v1/models/evaluate", NULL);
    expect_evaluation(r, false);
    ck_assert_str_eq(jstr(r->json, "model_type"), active_type());
    resp_free(r);
    /* A pinned older version. */
    char body[128];
    snprintf(body, sizeof body, "{\"model_type\":\"classic\",\"version\":\"%s\"}",
             env_or("CML_V1", ""));
    r = post_admin("/api/v1/models/evaluate", body);
    expect_evaluation(r, false);
    ck_assert_str_eq(jstr(r->json, "model_version"), env_or("CML_V1", ""));
    resp_free(r);
    r = post_admin("/api/v1/models/evaluate",
                   "{\"model_type\":\"classic\",\"version\":\"19990101T000000Z\"}");
    expect_error(r, 404, NULL);
    resp_free(r);
}
END_TEST

START_TEST(test_evaluate_uploaded_csv) {
    char *csv = corpus_sample(25), *q = jquote(csv);
    size_t cap = strlen(q) + 64;
    char *body = malloc(cap);
    snprintf(body, cap, "{\"model_type\":\"classic\",\"data\":%s}", q);
    resp *r = post_admin("/api/v1/models/evaluate", body);
    expect_evaluation(r, true);
    size_t rows = 0;
    for (const char *p = csv; *p; p++)
        rows += *p == '\n';
    ck_assert_int_eq((int)jnum(r->json, "n"), (int)rows - 1);
    resp_free(r);
    free(body);
    free(q);
    free(csv);
    /* A broken CSV: 400 naming the line. */
    r = post_admin("/api/v1/models/evaluate",
                   "{\"data\":\"text,label\\nIs it red?,CEQ\\n\\\"never closed,OEQ\\n\"}");
    expect_error(r, 400, NULL);
    ck_assert_msg(strstr(jstr(r->json, "detail"), "line") != NULL, "no line in %s", r->body);
    resp_free(r);
}
END_TEST

/* --- admin keys -------------------------------------------------------------------------- */

static void expect_unauthorized(const resp *r) {
    char wa[128];
    expect_error(r, 401, NULL);
    ck_assert_msg(header(r, "WWW-Authenticate", wa, sizeof wa), "401 without WWW-Authenticate");
    ck_assert_msg(!strncmp(wa, "Bearer", 6), "WWW-Authenticate: %s", wa);
}

START_TEST(test_admin_without_key) {
    const char *routes[] = {"/api/v1/models/select", "/api/v1/models/evaluate",
                            "/api/v1/models/retrain"};
    for (size_t i = 0; i < 3; i++) {
        resp *r = post_json(routes[i], "{\"model_type\":\"classic\"}");
        expect_unauthorized(r);
        resp_free(r);
    }
}
END_TEST

START_TEST(test_admin_wrong_key) {
    const char *bad[] = {"Authorization: Bearer wrong-key", "X-API-Key: wrong-key",
                         "Authorization: Basic dXNlcjpwYXNz", "Authorization: Bearer "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *h[] = {bad[i], NULL};
        resp *r = request("POST", "/api/v1/models/evaluate", "application/json", "{}", 2, h);
        expect_unauthorized(r);
        resp_free(r);
    }
    /* The right key with one more character is still wrong. */
    char longer[512];
    snprintf(longer, sizeof longer, "X-API-Key: %sx", api_key());
    const char *h[] = {longer, NULL};
    resp *r = request("POST", "/api/v1/models/evaluate", "application/json", "{}", 2, h);
    expect_unauthorized(r);
    resp_free(r);
}
END_TEST

START_TEST(test_admin_right_key) {
    char bearer[512], xkey[512];
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", api_key());
    snprintf(xkey, sizeof xkey, "X-API-Key: %s", api_key());
    const char *h1[] = {bearer, NULL}, *h2[] = {xkey, NULL};
    resp *r = request("POST", "/api/v1/models/evaluate", "application/json", "{}", 2, h1);
    expect_json(r, 200);
    resp_free(r);
    r = request("POST", "/api/v1/models/evaluate", "application/json", "{}", 2, h2);
    expect_json(r, 200);
    resp_free(r);
    char body[64];
    snprintf(body, sizeof body, "{\"model_type\":\"%s\"}", active_type());
    r = request("POST", "/api/v1/models/select", "application/json", body, strlen(body), h2);
    expect_json(r, 200);
    resp_free(r);
}
END_TEST

/* --- error rules --------------------------------------------------------------------------- */

START_TEST(test_malformed_json) {
    const char *bodies[] = {"{\"text\":", "{text: \"a\"}",     "{\"text\":\"a\"} trailing",
                            "[1,2]",      "\"just a string\"", "{\"text\":\"a\",}"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        resp *r = post_json("/api/v1/models/classify", bodies[i]);
        expect_error(r, 400, NULL);
        resp_free(r);
    }
    resp *r = post_json("/api/classify", "{\"text\":");
    expect_error(r, 400, "malformed_json");
    resp_free(r);
    /* An empty JSON body is a 400 too. */
    r = request("POST", "/api/v1/classify", "application/json", NULL, 0, NULL);
    expect_error(r, 400, NULL);
    resp_free(r);
}
END_TEST

START_TEST(test_wrong_types) {
    struct {
        const char *route, *body;
    } cases[] = {
        {"/api/v1/models/classify", "{\"text\":5}"},
        {"/api/v1/models/classify", "{\"text\":[\"a\"]}"},
        {"/api/v1/models/classify", "{\"text\":\"Is it red?\",\"model_type\":3}"},
        {"/api/classify", "{\"text\":{\"a\":1}}"},
        {"/api/v1/classify/batch", "{\"questions\":\"Is it red?\"}"},
        {"/api/v1/classify/batch", "{\"questions\":[\"Is it red?\",5]}"},
        {"/api/feedback",
         "{\"text\":\"Is it red?\",\"correct_class\":\"CEQ\",\"confidence\":\"hi\"}"},
        {"/api/feedback",
         "{\"text\":\"Is it red?\",\"correct_class\":\"CEQ\",\"scenario_id\":\"x\"}"},
        {"/save_feedback", "{\"text\":\"Is it red?\",\"correct_class\":1}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        resp *r = post_json(cases[i].route, cases[i].body);
        expect_error(r, 400, NULL);
        resp_free(r);
    }
}
END_TEST

START_TEST(test_invalid_utf8) {
    const char *bodies[] = {"{\"text\":\"caf\xff\"}", "{\"text\":\"\xc0\xaf slash\"}",
                            "{\"text\":\"cut \xe2\x82\"}"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        resp *r = request("POST", "/api/classify", "application/json", bodies[i], strlen(bodies[i]),
                          NULL);
        expect_error(r, 400, "invalid_utf8");
        resp_free(r);
    }
}
END_TEST

/* Issue 15: non-standard numbers and NULs never stored or cut, through the real front end. */
START_TEST(test_strict_values) {
    struct {
        const char *route, *body, *code;
    } cases[] = {
        {"/api/feedback", "{\"text\":\"Is it red?\",\"correct_class\":\"CEQ\",\"confidence\":NaN}",
         "invalid_number"},
        {"/api/feedback",
         "{\"text\":\"Is it red?\",\"correct_class\":\"CEQ\",\"confidence\":Infinity}",
         "invalid_number"},
        {"/api/feedback",
         "{\"text\":\"Is it red?\",\"correct_class\":\"CEQ\",\"confidence\":1e999}",
         "invalid_number"},
        {"/api/feedback", "{\"text\":\"Is it red?\",\"correct_class\":\"CEQ\",\"confidence\":1.5}",
         "out_of_range"},
        {"/api/feedback",
         "{\"text\":\"Is it red?\",\"correct_class\":\"CEQ\",\"scenario_id\":1e23}", "wrong_type"},
        {"/api/feedback",
         "{\"text\":\"Is it red?\",\"correct_class\":\"CEQ\",\"scenario_id\":99999999999999999999}",
         "out_of_range"},
        {"/api/classify", "{\"text\":\"Is it red?\",\"scenario_id\":\"x\"}", "wrong_type"},
        {"/api/v1/models/classify", "{\"text\":\"Is it red?\",\"model_type\":\"classic\\u0000x\"}",
         "invalid_string"},
        {"/api/v1/models/classify", "{\"text\":\"Is it\\u0000 red?\"}", "invalid_string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        resp *r = post_json(cases[i].route, cases[i].body);
        expect_error(r, 400, cases[i].code);
        resp_free(r);
    }
    /* Invalid UTF-8 in the query: Apache hands it to the service (invalid_url, with an id),
     * lighttpd refuses it itself (its JSON error page, which cannot carry an id). */
    resp *r = request("POST", "/api/classify?text=caf%ff", NULL, NULL, 0, NULL);
    expect_json(r, 400);
    const char *e = jstr(r->json, "error");
    ck_assert_msg(!strcmp(e, "invalid_url") || !strcmp(e, "bad_request"), "error %s", e);
    resp_free(r);
}
END_TEST

START_TEST(test_empty_text) {
    const char *bodies[] = {"{\"text\":\"\"}", "{\"text\":\"   \\n\\t \"}", "{}",
                            "{\"text\":null}"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        resp *r = post_json("/api/v1/models/classify", bodies[i]);
        expect_error(r, 400, NULL);
        resp_free(r);
    }
}
END_TEST

START_TEST(test_text_length_limit) {
    /* 10,000 characters pass (also 10,000 two-byte ones, and with spaces around), 10,001 not. */
    struct {
        const char *unit, *pad;
        size_t times;
        long status;
    } cases[] = {{"a", "", 10001, 400},
                 {"a", "", 10000, 200},
                 {"\xc3\xa9", "", 10000, 200},
                 {"\xc3\xa9", "", 10001, 400},
                 {"b", "  ", 10000, 200}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = repeat(cases[i].unit, cases[i].times);
        size_t cap = strlen(t) + 64;
        char *body = malloc(cap);
        snprintf(body, cap, "{\"text\":\"%s%s%s\"}", cases[i].pad, t, cases[i].pad);
        resp *r = post_json("/api/classify", body);
        if (cases[i].status == 200)
            expect_json(r, 200);
        else
            expect_error(r, cases[i].status, NULL);
        resp_free(r);
        free(body);
        free(t);
    }
}
END_TEST

START_TEST(test_body_over_limit) {
    long max = atol(env_or("CML_MAX_BODY", "65536"));
    size_t sizes[] = {(size_t)max + 1024, (size_t)max * 4};
    for (size_t i = 0; i < 2; i++) {
        char *t = repeat("x", sizes[i]);
        size_t cap = sizes[i] + 64;
        char *body = malloc(cap);
        snprintf(body, cap, "{\"text\":\"%s\"}", t);
        resp *r = post_json("/api/classify", body);
        expect_error(r, 413, NULL);
        resp_free(r);
        free(body);
        free(t);
    }
    /* The service is fine afterwards. */
    resp *r = post_json("/api/classify", "{\"text\":\"Is it red?\"}");
    expect_json(r, 200);
    resp_free(r);
}
END_TEST

/* Chunked bodies: the front end may pass them on without CONTENT_LENGTH (Apache does over
 * 16 KiB); they are read whole, and refused with 413 over the limit. */
START_TEST(test_chunked_body) {
    long max = atol(env_or("CML_MAX_BODY", "65536"));
    const char *h[] = {"Transfer-Encoding: chunked", NULL};
    /* About 40 KiB of questions: under the limit, over Apache's spool size. */
    char *items = repeat("\"What do you think will happen to the tower next?\",", 800);
    items[strlen(items) - 1] = '\0';
    size_t cap = strlen(items) + 64;
    char *body = malloc(cap);
    snprintf(body, cap, "{\"questions\":[%s]}", items);
    ck_assert_int_lt((long)strlen(body), max);
    resp *r = request("POST", "/api/v1/classify/batch", "application/json", body, strlen(body), h);
    expect_batch(r, 800, "classic");
    resp_free(r);
    free(body);
    free(items);
    /* Over the limit. */
    char *t = repeat("x", (size_t)max + 4096);
    cap = strlen(t) + 64;
    body = malloc(cap);
    snprintf(body, cap, "{\"text\":\"%s\"}", t);
    r = request("POST", "/api/classify", "application/json", body, strlen(body), h);
    expect_error(r, 413, "payload_too_large");
    resp_free(r);
    free(body);
    free(t);
    /* A small one. */
    r = request("POST", "/api/classify", "application/json", "{\"text\":\"Is it red?\"}", 21, h);
    expect_json(r, 200);
    resp_free(r);
}
END_TEST

START_TEST(test_unknown_route) {
    const char *paths[] = {"/nope", "/api/nope", "/api/v1/models/current/extra", "/index.html",
                           "/fcgi.log"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        resp *r = get(paths[i]);
        expect_error(r, 404, NULL);
        resp_free(r);
    }
    resp *r = post_json("/api/v2/classify", "{\"text\":\"Is it red?\"}");
    expect_error(r, 404, NULL);
    resp_free(r);
}
END_TEST

START_TEST(test_wrong_method) {
    struct {
        const char *method, *path, *allow;
    } cases[] = {{"GET", "/api/classify", "POST"},
                 {"GET", "/api/v1/models/select", "POST"},
                 {"POST", "/api/health", "GET"},
                 {"DELETE", "/api/v1/models", "GET"},
                 {"PUT", "/api/v1/models/classify", "POST"},
                 {"POST", "/api/v1/models/training/status/job-1", "GET"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char allow[64];
        resp *r = request(cases[i].method, cases[i].path,
                          !strcmp(cases[i].method, "GET") ? NULL : "application/json",
                          !strcmp(cases[i].method, "GET") ? NULL : "{}",
                          !strcmp(cases[i].method, "GET") ? 0 : 2, NULL);
        expect_error(r, 405, NULL);
        ck_assert_msg(header(r, "Allow", allow, sizeof allow), "405 without Allow for %s %s",
                      cases[i].method, cases[i].path);
        ck_assert_msg(strstr(allow, cases[i].allow) != NULL, "Allow: %s for %s %s", allow,
                      cases[i].method, cases[i].path);
        resp_free(r);
    }
}
END_TEST

START_TEST(test_wrong_content_type) {
    const char *types[] = {"text/plain", "application/x-www-form-urlencoded", NULL,
                           "application/jsonx"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const char *body = "{\"text\":\"Is it red?\"}";
        resp *r = request("POST", "/api/classify", types[i], body, strlen(body), NULL);
        expect_error(r, 415, NULL);
        resp_free(r);
    }
    const char *body = "{\"text\":\"Is it red?\"}";
    resp *r = request("POST", "/api/classify", "application/json; charset=utf-8", body,
                      strlen(body), NULL);
    expect_json(r, 200);
    resp_free(r);
}
END_TEST

static bool id_chars_ok(const char *id) {
    for (const char *p = id; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return false;
    return *id != '\0' && strlen(id) <= 64;
}

START_TEST(test_request_id) {
    char id[128], id2[128];
    const char *h[] = {"X-Request-Id: itest-0123_abc.DEF", NULL};
    resp *r = request("GET", "/api/health", NULL, NULL, 0, h);
    expect_json(r, 200);
    ck_assert_str_eq(header(r, "X-Request-Id", id, sizeof id), "itest-0123_abc.DEF");
    resp_free(r);
    /* Echoed on errors too. */
    r = request("GET", "/api/nope", NULL, NULL, 0, h);
    expect_error(r, 404, NULL);
    ck_assert_str_eq(header(r, "X-Request-Id", id, sizeof id), "itest-0123_abc.DEF");
    resp_free(r);
    /* Absent: a new one, different every time. */
    r = get("/api/health");
    ck_assert_ptr_nonnull(header(r, "X-Request-Id", id, sizeof id));
    ck_assert(id_chars_ok(id));
    resp_free(r);
    r = get("/api/health");
    ck_assert_ptr_nonnull(header(r, "X-Request-Id", id2, sizeof id2));
    ck_assert_str_ne(id, id2);
    resp_free(r);
    /* 64 characters is the longest kept; invalid ones are replaced. */
    char longid[128], hl[160];
    memset(longid, 'a', 64);
    longid[64] = '\0';
    snprintf(hl, sizeof hl, "X-Request-Id: %s", longid);
    const char *h64[] = {hl, NULL};
    r = request("GET", "/api/health", NULL, NULL, 0, h64);
    ck_assert_str_eq(header(r, "X-Request-Id", id, sizeof id), longid);
    resp_free(r);
    strcat(longid, "a");
    snprintf(hl, sizeof hl, "X-Request-Id: %s", longid);
    const char *bad[] = {"X-Request-Id: has space", "X-Request-Id: semi;colon",
                         "X-Request-Id: <script>", hl};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *hb[] = {bad[i], NULL};
        r = request("GET", "/api/health", NULL, NULL, 0, hb);
        expect_json(r, 200);
        ck_assert_ptr_nonnull(header(r, "X-Request-Id", id, sizeof id));
        ck_assert_msg(id_chars_ok(id) && strcmp(id, bad[i] + 14) != 0, "id %s for %s", id, bad[i]);
        resp_free(r);
    }
}
END_TEST

START_TEST(test_cors_allowed_origin) {
    const char *origin = env_or("CML_ALLOWED_ORIGIN", "http://client.example.test");
    char oh[512], v[512];
    snprintf(oh, sizeof oh, "Origin: %s", origin);
    const char *h[] = {oh, NULL};
    resp *r = request("GET", "/api/health", NULL, NULL, 0, h);
    expect_json(r, 200);
    ck_assert_msg(header(r, "Access-Control-Allow-Origin", v, sizeof v), "no ACAO: %s", r->head);
    ck_assert_str_eq(v, origin);
    ck_assert_ptr_nonnull(header(r, "Vary", v, sizeof v));
    ck_assert_ptr_nonnull(strstr(v, "Origin"));
    resp_free(r);
    const char *body = "{\"text\":\"Is it red?\"}";
    r = request("POST", "/api/classify", "application/json", body, strlen(body), h);
    expect_json(r, 200);
    ck_assert_str_eq(header(r, "Access-Control-Allow-Origin", v, sizeof v), origin);
    resp_free(r);
}
END_TEST

START_TEST(test_cors_preflight) {
    const char *origin = env_or("CML_ALLOWED_ORIGIN", "http://client.example.test");
    char oh[512], v[512];
    snprintf(oh, sizeof oh, "Origin: %s", origin);
    const char *h[] = {oh, "Access-Control-Request-Method: POST",
                       "Access-Control-Request-Headers: content-type", NULL};
    const char *paths[] = {"/api/classify", "/api/v1/models/select"};
    for (size_t i = 0; i < 2; i++) {
        resp *r = request("OPTIONS", paths[i], NULL, NULL, 0, h);
        expect_status(r, 204);
        ck_assert_msg(header(r, "Access-Control-Allow-Origin", v, sizeof v), "no ACAO: %s",
                      r->head);
        ck_assert_str_eq(v, origin);
        ck_assert_msg(header(r, "Access-Control-Allow-Methods", v, sizeof v), "no methods: %s",
                      r->head);
        ck_assert_ptr_nonnull(strstr(v, "POST"));
        ck_assert_msg(header(r, "Access-Control-Allow-Headers", v, sizeof v), "no headers: %s",
                      r->head);
        ck_assert_ptr_nonnull(strcasestr(v, "Content-Type"));
        ck_assert_ptr_nonnull(strcasestr(v, "Authorization"));
        resp_free(r);
    }
}
END_TEST

START_TEST(test_cors_disallowed_origin) {
    char v[512];
    const char *h[] = {"Origin: http://evil.example.test", "Access-Control-Request-Method: POST",
                       NULL};
    resp *r = request("GET", "/api/health", NULL, NULL, 0, h);
    expect_json(r, 200);
    ck_assert_msg(!header(r, "Access-Control-Allow-Origin", v, sizeof v), "ACAO %s", v);
    resp_free(r);
    r = request("OPTIONS", "/api/classify", NULL, NULL, 0, h);
    ck_assert_msg(r->status == 204 || r->status == 403, "preflight status %ld", r->status);
    ck_assert_msg(!header(r, "Access-Control-Allow-Origin", v, sizeof v), "ACAO %s", v);
    ck_assert_msg(!header(r, "Access-Control-Allow-Methods", v, sizeof v), "methods %s", v);
    resp_free(r);
    /* A prefix or suffix of an allowed origin is not allowed either. */
    const char *origin = env_or("CML_ALLOWED_ORIGIN", "http://client.example.test");
    char oh[512];
    snprintf(oh, sizeof oh, "Origin: %s.evil", origin);
    const char *h2[] = {oh, NULL};
    r = request("GET", "/api/health", NULL, NULL, 0, h2);
    ck_assert_msg(!header(r, "Access-Control-Allow-Origin", v, sizeof v), "ACAO %s", v);
    resp_free(r);
}
END_TEST

/* --- retraining (last: it adds a version and makes it the latest) ----------------------- */

START_TEST(test_retrain_rejects_bad_requests) {
    resp *r = post_admin("/api/v1/models/retrain", "{\"model_type\":\"quantum\"}");
    expect_error(r, 400, NULL);
    resp_free(r);
    r = post_admin("/api/v1/models/retrain",
                   "{\"model_type\":\"classic\",\"data\":\"text,label\\nIs it red?,CEQ\\n\"}");
    expect_error(r, 400, NULL);
    resp_free(r);
    r = post_admin("/api/v1/models/retrain",
                   "{\"model_type\":\"classic\",\"hyperparameters\":{\"no_such_knob\":1}}");
    expect_error(r, 400, NULL);
    resp_free(r);
    /* Wrong-typed fields (a string is not a boolean, even "no"). */
    const char *typed[] = {"{\"model_type\":\"classic\",\"include_feedback\":\"no\"}",
                           "{\"model_type\":\"classic\",\"use_azure\":1}",
                           "{\"model_type\":\"classic\",\"hyperparameters\":[1]}",
                           "{\"model_type\":\"classic\",\"data\":5}"};
    for (size_t i = 0; i < sizeof typed / sizeof typed[0]; i++) {
        r = post_admin("/api/v1/models/retrain", typed[i]);
        expect_error(r, 400, "wrong_type");
        resp_free(r);
    }
    if (!have_ensemble()) {
        r = post_admin("/api/v1/models/retrain", "{\"model_type\":\"ensemble\"}");
        expect_error(r, 400, NULL);
        resp_free(r);
    }
    /* Nothing started. */
    r = get("/api/v1/models/training/status");
    expect_json(r, 200);
    ck_assert(!jbool(r->json, "is_training"));
    resp_free(r);
}
END_TEST

/* Polls a training job to its end (60 s at most); returns its last status (new reference). */
static json_object *wait_job(const char *task) {
    char path[160];
    json_object *last = NULL;
    snprintf(path, sizeof path, "/api/v1/models/training/status/%s", task);
    for (int i = 0; i < 600; i++) {
        resp *r = get(path);
        expect_json(r, 200);
        ck_assert_str_eq(jstr(r->json, "task_id"), task);
        double p = jnum(r->json, "progress");
        ck_assert(p >= 0 && p <= 100);
        json_object_put(last);
        last = json_object_get(r->json);
        resp_free(r);
        if (strcmp(jstr(last, "status"), "running") != 0)
            return last;
        usleep(100 * 1000);
    }
    ck_abort_msg("job %s still running after 60 s", task);
    return last;
}

/* A completed job: its version is in the history (with n_train + n_test rows), in the list,
 * and what the classic model now runs. */
static void expect_job_published(json_object *job, const char *task, double rows) {
    ck_assert_msg(!strcmp(jstr(job, "status"), "completed"), "job ended so: %s",
                  json_object_to_json_string(job));
    ck_assert(!jbool(job, "is_training"));
    ck_assert(jnum(job, "progress") == 100);
    ck_assert_str_eq(jstr(job, "model_type"), "classic");
    jstr(job, "start_time");
    jstr(job, "finished_at");
    ck_assert(json_object_is_type(jget(job, "error"), json_type_null));
    char version[64];
    snprintf(version, sizeof version, "%s", jstr(job, "version"));

    resp *r = get("/api/v1/models/performance/history?model_type=classic&limit=100");
    expect_json(r, 200);
    bool found = false;
    for (size_t i = 0; i < json_object_array_length(r->json); i++) {
        json_object *e = json_object_array_get_idx(r->json, i);
        json_object *t = jget(e, "task_id");
        if (t && json_object_is_type(t, json_type_string) &&
            !strcmp(json_object_get_string(t), task)) {
            found = true;
            ck_assert_str_eq(jstr(e, "version"), version);
            ck_assert_str_eq(jstr(e, "model_type"), "classic");
            jstr(e, "timestamp");
            ck_assert(jhas(e, "metrics"));
            jnum(e, "training_time");
            ck_assert(jnum(e, "n_train") > 0 && jnum(e, "n_test") > 0);
            if (rows > 0)
                ck_assert_msg(jnum(e, "n_train") + jnum(e, "n_test") == rows,
                              "trained on %g + %g rows, %g sent", jnum(e, "n_train"),
                              jnum(e, "n_test"), rows);
            /* Newest last. */
            ck_assert_uint_eq(i, json_object_array_length(r->json) - 1);
        }
    }
    ck_assert_msg(found, "task %s not in the history: %s", task, r->body);
    resp_free(r);
    r = get("/api/v1/models");
    expect_json(r, 200);
    ck_assert_msg(strstr(r->body, version) != NULL, "version %s not listed", version);
    resp_free(r);
    r = get("/api/health");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "models.classic.version"), version);
    ck_assert(!jbool(r->json, "training.is_training"));
    resp_free(r);
    r = post_json("/api/v1/models/classify",
                  "{\"text\":\"Is it red?\",\"model_type\":\"classic\"}");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "model_version"), version);
    resp_free(r);
    r = get("/api/v1/models/comparison");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "classic.version"), version);
    resp_free(r);
}

START_TEST(test_retrain_job) {
    resp *r = post_admin("/api/v1/models/retrain", "{\"model_type\":\"classic\"}");
    expect_json(r, 202);
    char task[64];
    snprintf(task, sizeof task, "%s", jstr(r->json, "task_id"));
    ck_assert_str_eq(jstr(r->json, "status"), "started");
    jstr(r->json, "message");
    ck_assert(jnum(r->json, "estimated_time") > 0);
    resp_free(r);

    /* A second job while this one runs: 409 (unless the first has already ended). */
    char *csv = corpus_sample(20), *q = jquote(csv);
    size_t cap = strlen(q) + 64;
    char *body = malloc(cap);
    snprintf(body, cap, "{\"model_type\":\"classic\",\"data\":%s}", q);
    r = post_admin("/api/v1/models/retrain", body);
    if (r->status == 409) {
        expect_error(r, 409, NULL);
    } else {
        expect_json(r, 202);
        json_object *first = wait_job(task);
        printf("retrain: the first job ended before the second request (no 409 to see)\n");
        json_object_put(first);
        snprintf(task, sizeof task, "%s", jstr(r->json, "task_id"));
    }
    resp_free(r);
    free(body);
    free(q);
    free(csv);

    json_object *job = wait_job(task);
    expect_job_published(job, task, 0);
    json_object_put(job);
    r = get("/api/v1/models/training/status");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "task_id"), task);
    resp_free(r);
}
END_TEST

START_TEST(test_retrain_csv_upload) {
    /* A text/csv body with ?model_type=: the job trains on exactly those rows. */
    char *csv = corpus_sample(10);
    size_t rows = 0;
    for (const char *p = csv; *p; p++)
        rows += *p == '\n';
    char auth[512];
    snprintf(auth, sizeof auth, "X-API-Key: %s", api_key());
    const char *h[] = {auth, NULL};
    resp *r = request("POST", "/api/v1/models/retrain?model_type=classic", "text/csv", csv,
                      strlen(csv), h);
    free(csv);
    expect_json(r, 202);
    char task[64];
    snprintf(task, sizeof task, "%s", jstr(r->json, "task_id"));
    resp_free(r);
    json_object *job = wait_job(task);
    expect_job_published(job, task, (double)(rows - 1));
    json_object_put(job);
    /* text/csv without ?model_type= is a 400. */
    r = request("POST", "/api/v1/models/retrain", "text/csv", "text,label\n", 11, h);
    expect_error(r, 400, NULL);
    resp_free(r);
}
END_TEST

static Suite *routes_suite(void) {
    Suite *s = suite_create("routes");
    TCase *tc = tcase_create("operations");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_ready);
    tcase_add_test(tc, test_health);
    tcase_add_test(tc, test_metrics_prometheus);
    tcase_add_test(tc, test_current);
    tcase_add_test(tc, test_models_list);
    tcase_add_test(tc, test_comparison);
    tcase_add_test(tc, test_history);
    tcase_add_test(tc, test_training_status);
    tcase_add_test(tc, test_training_status_unknown_task);
    suite_add_tcase(s, tc);

    tc = tcase_create("classify");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_classify_model_api);
    tcase_add_test(tc, test_classify_questions_of_a_clip);
    tcase_add_test(tc, test_classify_model_api_ensemble);
    tcase_add_test(tc, test_classify_client_routes);
    tcase_add_test(tc, test_classify_query_text_without_body);
    tcase_add_test(tc, test_classify_ensemble_routes);
    tcase_add_test(tc, test_batch_v1);
    tcase_add_test(tc, test_batch_v2);
    tcase_add_test(tc, test_batch_limits);
    tcase_add_test(tc, test_feedback_routes);
    tcase_add_test(tc, test_feedback_rejects_unknown_label);
    suite_add_tcase(s, tc);

    tc = tcase_create("transcripts");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_transcript_vtt);
    tcase_add_test(tc, test_transcript_cli_matches_route);
    tcase_add_test(tc, test_transcript_srt_json_plain);
    tcase_add_test(tc, test_transcript_bad_input);
    suite_add_tcase(s, tc);

    tc = tcase_create("admin");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_select);
    tcase_add_test(tc, test_select_errors);
    tcase_add_test(tc, test_select_unloadable_version);
    tcase_add_test(tc, test_select_ensemble);
    tcase_add_test(tc, test_evaluate_holdout);
    tcase_add_test(tc, test_evaluate_uploaded_csv);
    tcase_add_test(tc, test_admin_without_key);
    tcase_add_test(tc, test_admin_wrong_key);
    tcase_add_test(tc, test_admin_right_key);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_malformed_json);
    tcase_add_test(tc, test_wrong_types);
    tcase_add_test(tc, test_invalid_utf8);
    tcase_add_test(tc, test_strict_values);
    tcase_add_test(tc, test_empty_text);
    tcase_add_test(tc, test_text_length_limit);
    tcase_add_test(tc, test_body_over_limit);
    tcase_add_test(tc, test_chunked_body);
    tcase_add_test(tc, test_unknown_route);
    tcase_add_test(tc, test_wrong_method);
    tcase_add_test(tc, test_wrong_content_type);
    tcase_add_test(tc, test_request_id);
    tcase_add_test(tc, test_cors_allowed_origin);
    tcase_add_test(tc, test_cors_preflight);
    tcase_add_test(tc, test_cors_disallowed_origin);
    suite_add_tcase(s, tc);

    tc = tcase_create("retrain");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_retrain_rejects_bad_requests);
    tcase_add_test(tc, test_retrain_job);
    tcase_add_test(tc, test_retrain_csv_upload);
    suite_add_tcase(s, tc);
    return s;
}

/* ========================================================================================= */
/* Suites "pin" and "persist": a selection made on one worker holds on all of them, and      */
/* across a restart.                                                                         */
/* ========================================================================================= */

/*
 * Classify bodies of a few thousand characters (0 open, 1 closed). Each takes a worker thread a
 * while, so concurrent clients outrun one worker's threads and the kernel has to hand
 * connections to the others: it wakes the most recent waiter first, and with short questions
 * the same two threads of one worker may take every request.
 */
static char long_questions[2][8192];
static pthread_once_t long_questions_once = PTHREAD_ONCE_INIT;

static void build_long_questions(void) {
    const char *unit[] = {"Why do you think the tower fell when we added the last block? ",
                          "Is the big block red or blue? "};
    for (int v = 0; v < 2; v++) {
        size_t used = (size_t)snprintf(long_questions[v], sizeof long_questions[v], "{\"text\":\"");
        while (used + strlen(unit[v]) + 3 < 6000)
            used += (size_t)snprintf(long_questions[v] + used, sizeof long_questions[v] - used,
                                     "%s", unit[v]);
        snprintf(long_questions[v] + used, sizeof long_questions[v] - used, "\"}");
    }
}

static const char *long_question(int variant) {
    pthread_once(&long_questions_once, build_long_questions);
    return long_questions[variant];
}

/* One of the concurrent clients of expect_all_answers: requests from, from + step, ... < n. */
typedef struct answer_client {
    pthread_t thread;
    const char *version, *prefix;
    int from, step, n, failures;
    char first_failure[512];
} answer_client;

static void *answer_client_run(void *arg) {
    answer_client *a = arg;
    CURL *c = new_handle();
    for (int i = a->from; i < a->n; i += a->step) {
        char idh[128], err[512] = "", why[512] = "";
        snprintf(idh, sizeof idh, "X-Request-Id: %s-%d", a->prefix, i);
        const char *h[] = {idh, NULL};
        const char *body = long_question(i % 2);
        resp *r = request_on(c, "POST", "/api/v1/models/classify", "application/json", body,
                             strlen(body), h, err, sizeof err);
        json_object *t = r && r->json ? jget(r->json, "model_type") : NULL;
        json_object *v = r && r->json ? jget(r->json, "model_version") : NULL;
        if (r == NULL)
            snprintf(why, sizeof why, "no answer: %s", err);
        else if (r->status != 200 || t == NULL || v == NULL)
            snprintf(why, sizeof why, "status %ld: %.400s", r->status, r->body);
        else if (a->version != NULL && (strcmp(json_object_get_string(t), "classic") != 0 ||
                                        strcmp(json_object_get_string(v), a->version) != 0))
            snprintf(why, sizeof why, "answered by %s %s, not the selected classic %s",
                     json_object_get_string(t), json_object_get_string(v), a->version);
        if (why[0] != '\0' && a->failures++ == 0)
            snprintf(a->first_failure, sizeof a->first_failure, "request %d: %s", i, why);
        resp_free(r);
    }
    curl_easy_cleanup(c);
    return NULL;
}

/*
 * n classify answers, all from version v of the classic model (v NULL: any model and version
 * will do); ids "prefix-i". Eight clients
 * at once, more than one worker's threads, so the requests reach several workers (a single
 * sequential client may be served by one worker throughout).
 */
static void expect_all_answers(const char *v, int n, const char *prefix) {
    enum { CLIENTS = 8 };
    answer_client clients[CLIENTS];
    for (int k = 0; k < CLIENTS; k++) {
        clients[k] =
            (answer_client){.version = v, .prefix = prefix, .from = k, .step = CLIENTS, .n = n};
        ck_assert_int_eq(pthread_create(&clients[k].thread, NULL, answer_client_run, &clients[k]),
                         0);
    }
    int failures = 0;
    const char *first = "";
    for (int k = 0; k < CLIENTS; k++) {
        pthread_join(clients[k].thread, NULL);
        if (clients[k].failures > 0 && failures == 0)
            first = clients[k].first_failure;
        failures += clients[k].failures;
    }
    ck_assert_msg(failures == 0, "%d of %d answers wrong; first: %s", failures, n, first);
}

static void select_version(const char *v) {
    char body[160];
    snprintf(body, sizeof body, "{\"model_type\":\"classic\",\"version\":\"%s\"}", v);
    resp *r = post_admin("/api/v1/models/select", body);
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "version"), v);
    resp_free(r);
}

START_TEST(test_select_holds_on_every_worker) {
    const char *vs[] = {env_or("CML_V2", ""), env_or("CML_V1", "")};
    for (int k = 0; k < 2; k++) {
        char prefix[64];
        long pids[64];
        snprintf(prefix, sizeof prefix, "pin%d-%ld", k, (long)getpid());
        select_version(vs[k]);
        /* Rounds of 200 until all four workers have answered (five rounds at most). */
        int workers = 0, rounds = 0;
        while (rounds < 5 && workers >= 0 && workers < 4) {
            char round_prefix[80];
            snprintf(round_prefix, sizeof round_prefix, "%s-r%d", prefix, rounds++);
            expect_all_answers(vs[k], 200, round_prefix);
            workers = workers_in_log(prefix, pids, 64);
        }
        if (workers >= 0) {
            printf("pin: %d answers of %s came from %d worker processes\n", 200 * rounds, vs[k],
                   workers);
            ck_assert_msg(workers >= 2, "only %d worker answered: is spawn-fcgi -F 4 running?",
                          workers);
        }
    }
    /* Left pinned to the older version: the persist suite checks it after a restart. */
}
END_TEST

START_TEST(test_selection_survives_restart) {
    const char *v1 = env_or("CML_V1", "");
    resp *r = get("/api/v1/models/current");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "model_type"), "classic");
    ck_assert_str_eq(jstr(r->json, "version"), v1);
    resp_free(r);
    r = get("/api/v1/models");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "active.version"), v1);
    resp_free(r);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "persist-%ld", (long)getpid());
    expect_all_answers(v1, 100, prefix);
}
END_TEST

START_TEST(test_state_survives_restart) {
    /* The routes suite stored two feedback entries, ran two training jobs and evaluations. */
    resp *r = post_json("/api/feedback", "{\"text\":\"Is it red?\",\"correct_class\":\"CEQ\"}");
    expect_json(r, 200);
    ck_assert_msg(jnum(r->json, "total_entries") >= 3, "feedback lost: %s", r->body);
    resp_free(r);
    r = get("/api/v1/models/performance/history?model_type=classic");
    expect_json(r, 200);
    ck_assert_msg(json_object_array_length(r->json) >= 2, "history lost: %s", r->body);
    resp_free(r);
    r = get("/api/v1/models/training/status");
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "status"), "completed");
    char task[64];
    snprintf(task, sizeof task, "/api/v1/models/training/status/%s", jstr(r->json, "task_id"));
    resp_free(r);
    r = get(task);
    expect_json(r, 200);
    ck_assert_str_eq(jstr(r->json, "status"), "completed");
    resp_free(r);
    /* Every version is still listed. */
    r = get("/api/v1/models");
    expect_json(r, 200);
    ck_assert_int_ge(json_object_array_length(jget(r->json, "models")), 4);
    ck_assert_ptr_nonnull(strstr(r->body, env_or("CML_V2", "?")));
    resp_free(r);
}
END_TEST

static Suite *pin_suite(void) {
    Suite *s = suite_create("pin");
    TCase *tc = tcase_create("pin");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_select_holds_on_every_worker);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *persist_suite(void) {
    Suite *s = suite_create("persist");
    TCase *tc = tcase_create("persist");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_selection_survives_restart);
    tcase_add_test(tc, test_state_survives_restart);
    suite_add_tcase(s, tc);
    return s;
}

/* ========================================================================================= */
/* Suite "swap": classify under load while the model is switched back and forth.             */
/* ========================================================================================= */

#define LOAD_THREADS 6
#define SWAPS 50

typedef struct sample {
    double t0, t1;
    int which; /* 0: V1, 1: V2 */
} sample;

typedef struct loader {
    pthread_t th;
    sample *s;
    size_t n, cap;
    size_t failures;
    char first_failure[512];
} loader;

static atomic_bool load_stop;
static atomic_size_t load_done;
static const char *swap_versions[2];

static void note_failure(loader *l, const char *fmt, const char *a, const char *b) {
    if (l->failures++ == 0)
        snprintf(l->first_failure, sizeof l->first_failure, fmt, a, b);
}

static void *load_thread(void *arg) {
    loader *l = arg;
    static const char *texts[] = {"{\"text\":\"What do you think will happen next?\"}",
                                  "{\"text\":\"Is it red?\"}",
                                  "{\"text\":\"How did you make the tower so tall?\"}",
                                  "{\"text\":\"Do you want milk or water?\"}"};
    CURL *c = new_handle();
    for (size_t i = 0; !atomic_load(&load_stop); i++) {
        char err[512] = "";
        const char *body = texts[i % 4];
        double t0 = now_s();
        resp *r = request_on(c, "POST", "/api/v1/models/classify", "application/json", body,
                             strlen(body), NULL, err, sizeof err);
        double t1 = now_s();
        if (r == NULL) {
            note_failure(l, "no answer: %s%s", err, "");
            continue;
        }
        int which = -1;
        json_object *v = r->json ? jget(r->json, "model_version") : NULL;
        json_object *t = r->json ? jget(r->json, "model_type") : NULL;
        const char *vs = v ? json_object_get_string(v) : "";
        if (r->status != 200 || v == NULL) {
            char st[16];
            snprintf(st, sizeof st, "%ld", r->status);
            note_failure(l, "status %s: %.400s", st, r->body);
        } else if (t == NULL || strcmp(json_object_get_string(t), "classic") != 0) {
            note_failure(l, "answered by model type %s (%s)", t ? json_object_get_string(t) : "?",
                         vs);
        } else if (!strcmp(vs, swap_versions[0])) {
            which = 0;
        } else if (!strcmp(vs, swap_versions[1])) {
            which = 1;
        } else {
            note_failure(l, "answered by version %s, neither of the two selected%s", vs, "");
        }
        if (which >= 0) {
            if (l->n == l->cap) {
                l->cap = l->cap ? l->cap * 2 : 1024;
                sample *grown = reallocarray(l->s, l->cap, sizeof *l->s);
                if (grown == NULL)
                    abort();
                l->s = grown;
            }
            l->s[l->n++] = (sample){t0, t1, which};
        }
        atomic_fetch_add(&load_done, 1);
        resp_free(r);
    }
    curl_easy_cleanup(c);
    return NULL;
}

/* Waits (bounded) until `more` requests have been answered since `from`. */
static void wait_for_load(size_t from, size_t more, double max_s) {
    double end = now_s() + max_s;
    while (atomic_load(&load_done) < from + more && now_s() < end)
        usleep(1000);
}

START_TEST(test_swap_under_load) {
    swap_versions[0] = env_or("CML_V1", "");
    swap_versions[1] = env_or("CML_V2", "");
    ck_assert_str_ne(swap_versions[0], swap_versions[1]);
    double sel_sent[SWAPS + 1], sel_done[SWAPS + 1], sel_max = 0;
    int sel_which[SWAPS + 1];
    CURL *admin = new_handle();
    char auth[512], body[160], err[512] = "";
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", api_key());
    const char *h[] = {auth, NULL};

    /* Selection 0 (before the load): V1. Then 50 switches V2, V1, V2, ... */
    loader ls[LOAD_THREADS];
    memset(ls, 0, sizeof ls);
    atomic_store(&load_stop, false);
    atomic_store(&load_done, 0);
    size_t select_failures = 0;
    double start = now_s();
    for (int k = 0; k <= SWAPS; k++) {
        int which = k % 2;
        snprintf(body, sizeof body, "{\"model_type\":\"classic\",\"version\":\"%s\"}",
                 swap_versions[which]);
        sel_sent[k] = now_s();
        resp *r = request_on(admin, "POST", "/api/v1/models/select", "application/json", body,
                             strlen(body), h, err, sizeof err);
        sel_done[k] = now_s();
        sel_which[k] = which;
        if (sel_done[k] - sel_sent[k] > sel_max)
            sel_max = sel_done[k] - sel_sent[k];
        ck_assert_msg(r != NULL, "select %d: %s", k, err);
        if (r->status != 200 || r->json == NULL ||
            strcmp(jstr(r->json, "version"), swap_versions[which]) != 0) {
            select_failures++;
            printf("select %d failed: %ld %.300s\n", k, r->status, r->body);
        }
        resp_free(r);
        if (k == 0) {
            for (int i = 0; i < LOAD_THREADS; i++)
                pthread_create(&ls[i].th, NULL, load_thread, &ls[i]);
        }
        /* Let the load run on this selection for a while: 150 answers (3 s at most). */
        wait_for_load(atomic_load(&load_done), 150, 3.0);
    }
    atomic_store(&load_stop, true);
    for (int i = 0; i < LOAD_THREADS; i++)
        pthread_join(ls[i].th, NULL);
    double elapsed = now_s() - start;
    curl_easy_cleanup(admin);

    size_t total = 0, failures = 0, per[2] = {0, 0}, stale = 0, judged = 0;
    const char *first = NULL;
    for (int i = 0; i < LOAD_THREADS; i++) {
        total += ls[i].n + ls[i].failures;
        failures += ls[i].failures;
        if (ls[i].failures && first == NULL)
            first = ls[i].first_failure;
        for (size_t j = 0; j < ls[i].n; j++) {
            sample *s = &ls[i].s[j];
            per[s->which]++;
            /* A request sent after select k answered and done before select k+1 was sent
             * must have been answered by selection k's version, whichever worker took it. */
            for (int k = SWAPS; k >= 0; k--) {
                if (s->t0 <= sel_done[k])
                    continue;
                if (k == SWAPS || s->t1 < sel_sent[k + 1]) {
                    judged++;
                    stale += s->which != sel_which[k];
                }
                break;
            }
        }
    }
    printf("swap under load: %zu requests in %.2f s (%.0f/s) by %d threads during %d switches; "
           "%zu failed; answered by %s: %zu, by %s: %zu; %zu answers fully inside one "
           "selection, %zu of them from the other version; slowest select %.1f ms; %zu "
           "selects failed\n",
           total, elapsed, (double)total / elapsed, LOAD_THREADS, SWAPS, failures, swap_versions[0],
           per[0], swap_versions[1], per[1], judged, stale, sel_max * 1e3, select_failures);
    for (int i = 0; i < LOAD_THREADS; i++)
        free(ls[i].s);
    ck_assert_msg(failures == 0, "%zu of %zu requests failed; first: %s", failures, total,
                  first ? first : "");
    ck_assert_msg(select_failures == 0, "%zu selects failed", select_failures);
    ck_assert_msg(total >= (size_t)SWAPS * 100, "only %zu requests ran", total);
    ck_assert_msg(per[0] > 0 && per[1] > 0, "one version never answered");
    ck_assert_msg(stale == 0, "%zu answers came from the version selected before", stale);
}
END_TEST

static Suite *swap_suite(void) {
    Suite *s = suite_create("swap");
    TCase *tc = tcase_create("swap");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_swap_under_load);
    suite_add_tcase(s, tc);
    return s;
}

/* ========================================================================================= */
/* Suite "worker": a worker killed with SIGKILL is replaced; the service keeps answering.    */
/* ========================================================================================= */

static int answer_n(int n, const char *prefix) {
    int ok = 0;
    CURL *c = new_handle();
    for (int i = 0; i < n; i++) {
        char idh[128], err[512] = "";
        snprintf(idh, sizeof idh, "X-Request-Id: %s-%d", prefix, i);
        const char *h[] = {idh, NULL};
        const char *body = "{\"text\":\"What would happen if we added water?\"}";
        resp *r = request_on(c, "POST", "/api/v1/models/classify", "application/json", body,
                             strlen(body), h, err, sizeof err);
        if (r && r->status == 200 && r->json && jhas(r->json, "model_version"))
            ok++;
        else
            printf("request %s-%d: %s %.200s\n", prefix, i, r ? "" : err, r ? r->body : "");
        resp_free(r);
    }
    curl_easy_cleanup(c);
    return ok;
}

START_TEST(test_killed_worker_is_replaced) {
    const char *sp = getenv("CML_SUPERVISOR_PID");
    ck_assert_msg(sp && *sp, "CML_SUPERVISOR_PID is not set");
    pid_t sup = (pid_t)atol(sp), kids[64];
    int n = 0;
    for (int i = 0; i < 200 && (n = children_of(sup, kids, 64)) < 2; i++)
        usleep(50 * 1000);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(answer_n(20, "before-kill"), 20);

    pid_t victim = kids[0], survivor = kids[1];
    double t0 = now_s();
    ck_assert_int_eq(kill(victim, SIGKILL), 0);
    /* Once it is dead (a request it accepted while dying is lost with it, as with any crash),
     * the other worker answers everything, even before the replacement is up. */
    for (int i = 0; i < 500 && !process_gone(victim); i++)
        usleep(10 * 1000);
    ck_assert_msg(process_gone(victim), "worker %ld survived SIGKILL", (long)victim);
    ck_assert_int_eq(answer_n(40, "during-kill"), 40);

    /* The supervisor starts a replacement (15 s at most). */
    pid_t fresh = 0;
    for (int i = 0; i < 300 && fresh == 0; i++) {
        n = children_of(sup, kids, 64);
        for (int k = 0; k < n; k++)
            if (kids[k] != victim && kids[k] != survivor)
                fresh = kids[k];
        if (fresh == 0)
            usleep(50 * 1000);
    }
    ck_assert_msg(fresh != 0, "no replacement for worker %ld after 15 s", (long)victim);
    double replaced = now_s() - t0;
    ck_assert_msg(kill(survivor, 0) == 0, "the other worker %ld died too", (long)survivor);
    ck_assert_int_eq(children_of(sup, kids, 64), 2);

    /* The replacement loads its models (its "started" log line, 30 s at most), then serves
     * requests: seen in the log with its pid (500 requests at most). */
    double ready_after = -1;
    for (int i = 0; i < 3000 && ready_after < 0 && getenv("CML_FCGI_LOG"); i++) {
        char needle[64], line[4096];
        snprintf(needle, sizeof needle, "event=started pid=%ld ", (long)fresh);
        FILE *f = fopen(getenv("CML_FCGI_LOG"), "r");
        while (f && fgets(line, sizeof line, f) && ready_after < 0)
            if (strstr(line, needle))
                ready_after = now_s() - t0;
        if (f)
            fclose(f);
        if (ready_after < 0)
            usleep(10 * 1000);
    }
    ck_assert_msg(ready_after >= 0 || !getenv("CML_FCGI_LOG"),
                  "the replacement %ld did not start within 30 s", (long)fresh);
    long pids[64];
    bool seen_new = false, have_log = true;
    int sent = 0;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "after-kill-%ld", (long)getpid());
    while (!seen_new && have_log && sent < 500) {
        char p[80];
        snprintf(p, sizeof p, "%s-%d", prefix, sent);
        expect_all_answers(NULL, 16, p);
        sent += 16;
        int w = workers_in_log(prefix, pids, 64);
        have_log = w >= 0;
        for (int i = 0; i < w; i++)
            seen_new |= pids[i] == (long)fresh;
    }
    printf("worker %ld killed; replacement %ld forked after %.3f s, serving after %.3f s, "
           "answering within %d requests; the service answered every request meanwhile\n",
           (long)victim, (long)fresh, replaced, ready_after, sent);
    ck_assert_msg(seen_new || !have_log, "the replacement %ld answered none of %d requests",
                  (long)fresh, sent);
}
END_TEST

static Suite *worker_suite(void) {
    Suite *s = suite_create("worker");
    TCase *tc = tcase_create("worker");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_killed_worker_is_replaced);
    suite_add_tcase(s, tc);
    return s;
}

/* ========================================================================================= */
/* Suite "nokey": with no API key configured, admin routes are open to loopback clients.    */
/* ========================================================================================= */

START_TEST(test_admin_open_to_loopback_without_key) {
    char body[64];
    snprintf(body, sizeof body, "{\"model_type\":\"%s\"}", active_type());
    resp *r = post_json("/api/v1/models/select", body);
    expect_json(r, 200);
    resp_free(r);
    r = post_json("/api/v1/models/evaluate", "{\"model_type\":\"classic\"}");
    expect_json(r, 200);
    resp_free(r);
    /* A key sent anyway does no harm. */
    const char *h[] = {"Authorization: Bearer anything", NULL};
    r = request("POST", "/api/v1/models/evaluate", "application/json", "{}", 2, h);
    expect_json(r, 200);
    resp_free(r);
}
END_TEST

static Suite *nokey_suite(void) {
    Suite *s = suite_create("nokey");
    TCase *tc = tcase_create("nokey");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_admin_open_to_loopback_without_key);
    suite_add_tcase(s, tc);
    return s;
}

const char *const integration_program = "test_service";
const integration_suite integration_suites[] = {
    {"routes", routes_suite}, {"pin", pin_suite},       {"persist", persist_suite},
    {"swap", swap_suite},     {"worker", worker_suite}, {"nokey", nokey_suite},
};
const size_t integration_n_suites = sizeof integration_suites / sizeof integration_suites[0];
