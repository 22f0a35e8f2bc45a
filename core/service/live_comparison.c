/* The live comparison: shadow scoring, feedback scored by every version, its figures. */
#include "config.h"

#include "live_comparison.h"

#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "base/cml_alloc.h"
#include "learn/eval_metrics.h"
#include "ops/service_log.h"
#include "service.h"
#include "state/live_stats.h"

#define FLUSH_SECONDS 5 /* the issue asks for at least every 10 s */
#define BACKFILL_BATCH 200
#define QUEUE_CAP 1024 /* shadow scorings waiting for the live thread, per process */

/* A sampled answer waiting to be shadow-scored by the live thread. */
typedef struct shadow_job {
    cml_model *answered; /* a reference */
    char *text;          /* owned */
    cml_prediction p;
} shadow_job;

/* One service per process: the queue between the request threads and the live thread. */
static struct {
    shadow_job ring[QUEUE_CAP];
    size_t head, n;
} queue;

static _Thread_local uint64_t rng_state;

bool service_shadow_sampled(const service *svc) {
    double share = svc->cfg.shadow_sample;
    if (share >= 1.0)
        return true;
    if (share <= 0.0)
        return false;
    if (rng_state == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        rng_state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)(uintptr_t)&rng_state ^ 0x9e3779b9u;
    }
    /* xorshift64*: enough for sampling, and no lock. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t r = rng_state * 0x2545F4914F6CDD1Dull;
    return (double)(r >> 11) / 9007199254740992.0 < share;
}

void service_shadow_score(service *svc, const cml_model *answered, const cml_prediction *p,
                          const char *text, bool shadow, cml_feature_scratch *s) {
    cml_live_obs o = {.answering_type = cml_model_type_name(answered->type),
                      .answering_version = answered->version,
                      .answering_labels = (const char *const *)answered->labels,
                      .answering_n_labels = answered->n_labels,
                      .answering_label = p->label,
                      .answering_confidence = p->confidence};
    cml_model *other = NULL;
    cml_prediction q;
    if (shadow && s != NULL) {
        cml_model_type t =
            answered->type == CML_MODEL_CLASSIC ? CML_MODEL_ENSEMBLE : CML_MODEL_CLASSIC;
        other = cml_registry_acquire(svc->registry, t);
        if (other && cml_model_predict(other, s, text, strlen(text), &q) == CML_OK) {
            o.shadow_type = cml_model_type_name(other->type);
            o.shadow_version = other->version;
            o.shadow_labels = (const char *const *)other->labels;
            o.shadow_n_labels = other->n_labels;
            o.shadow_label = q.label;
            o.shadow_confidence = q.confidence;
        }
    }
    cml_live_count(&o);
    cml_model_release(other);
}

void service_shadow_submit(service *svc, const cml_model *answered, const cml_prediction *p,
                           const char *text) {
    bool queued = false;
    if (service_shadow_sampled(svc) && svc->live_running) {
        char *copy = cml_strdup(text);
        pthread_mutex_lock(&svc->live_lock);
        if (copy && queue.n < QUEUE_CAP) {
            shadow_job *j = &queue.ring[(queue.head + queue.n++) % QUEUE_CAP];
            j->answered = cml_model_retain((cml_model *)answered);
            j->text = copy;
            j->p = *p;
            queued = true; /* no wake-up: the live thread takes the queue every 20 ms */
        }
        pthread_mutex_unlock(&svc->live_lock);
        if (!queued) {
            cml_free(copy);
            cml_live_skipped();
        }
    }
    if (!queued) /* counted as answered, not shadow-scored */
        service_shadow_score(svc, answered, p, text, false, NULL);
}

/* Shadow-scores what the queue holds (live thread, live_lock held on entry and return). */
static void drain_queue(service *svc, cml_feature_scratch *s) {
    while (queue.n > 0) {
        shadow_job j = queue.ring[queue.head];
        queue.head = (queue.head + 1) % QUEUE_CAP;
        queue.n--;
        pthread_mutex_unlock(&svc->live_lock);
        service_shadow_score(svc, j.answered, &j.p, j.text, true, s);
        cml_model_release(j.answered);
        cml_free(j.text);
        pthread_mutex_lock(&svc->live_lock);
    }
}

/* Scores item id with m (a resident model). */
static bool score_one(service *svc, const cml_model *m, int64_t id, const char *text,
                      cml_feature_scratch *s) {
    cml_prediction p;
    if (cml_model_predict(m, s, text, strlen(text), &p) != CML_OK)
        return false;
    return cml_state_add_feedback_score(svc->state, id, cml_model_type_name(m->type), m->version,
                                        m->labels[p.label]) == CML_OK;
}

void service_feedback_score(service *svc, int64_t id, const char *text, cml_feature_scratch *s) {
    for (cml_model_type t = CML_MODEL_CLASSIC; s && t < CML_MODEL__COUNT; t++) {
        cml_model *m = cml_registry_acquire(svc->registry, t);
        if (m)
            score_one(svc, m, id, text, s);
        cml_model_release(m);
    }
}

size_t service_feedback_backfill(service *svc, size_t limit, cml_feature_scratch *s) {
    size_t scored = 0;
    for (cml_model_type t = CML_MODEL_CLASSIC; s && t < CML_MODEL__COUNT; t++) {
        cml_model *m = cml_registry_acquire(svc->registry, t);
        cml_feedback_item *items = NULL;
        size_t n = 0;
        if (m && cml_state_feedback_unscored(svc->state, cml_model_type_name(t), m->version, 0,
                                             limit, &items, &n) == CML_OK)
            for (size_t i = 0; i < n; i++)
                scored += score_one(svc, m, items[i].id, items[i].text, s);
        cml_feedback_items_free(items, n);
        cml_model_release(m);
    }
    return scored;
}

static void *live_main(void *arg) {
    service *svc = arg;
    cml_feature_scratch *s = cml_feature_scratch_new();
    time_t last_flush = time(NULL), last_backfill = 0;
    /* The lowest priority: on a saturated machine the answers keep the CPU and the queue
       overflows into skipped shadow scorings (counted) rather than slowing the service. */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    pthread_mutex_lock(&svc->live_lock);
    while (!svc->live_stop) {
        drain_queue(svc, s);
        if (time(NULL) != last_backfill) {
            /* Once a second: stored feedback, and the counts to SQLite every FLUSH_SECONDS. */
            last_backfill = time(NULL);
            pthread_mutex_unlock(&svc->live_lock);
            /* Scores are idempotent (one per item and version), so every worker backfills. */
            service_feedback_backfill(svc, BACKFILL_BATCH, s);
            if (time(NULL) - last_flush >= FLUSH_SECONDS) {
                if (cml_live_flush(svc->state) != CML_OK)
                    cml_log(CML_LOG_WARN, "shadow_flush_failed", NULL);
                last_flush = time(NULL);
            }
            pthread_mutex_lock(&svc->live_lock);
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 20 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        if (!svc->live_stop && queue.n == 0)
            pthread_cond_timedwait(&svc->live_cond, &svc->live_lock, &until);
    }
    drain_queue(svc, s);
    pthread_mutex_unlock(&svc->live_lock);
    cml_live_flush(svc->state);
    cml_feature_scratch_free(s);
    return NULL;
}

cml_err service_live_start(service *svc, cml_diag *diag) {
    char path[4096];
    snprintf(path, sizeof path, "%s/live_counts", svc->cfg.state_dir);
    cml_err err = cml_live_open(path, diag);
    if (err != CML_OK)
        return err;
    pthread_mutex_init(&svc->live_lock, NULL);
    pthread_cond_init(&svc->live_cond, NULL);
    svc->live_stop = false;
    if (pthread_create(&svc->live_thread, NULL, live_main, svc) != 0)
        return cml_diag_set(diag, CML_ERR_INTERNAL, "cannot start the live comparison thread");
    svc->live_running = true;
    return CML_OK;
}

void service_live_stop(service *svc) {
    if (!svc->live_running)
        return;
    pthread_mutex_lock(&svc->live_lock);
    svc->live_stop = true;
    pthread_cond_signal(&svc->live_cond);
    pthread_mutex_unlock(&svc->live_lock);
    pthread_join(svc->live_thread, NULL);
    svc->live_running = false;
    pthread_cond_destroy(&svc->live_cond);
    pthread_mutex_destroy(&svc->live_lock);
    cml_live_close();
}

void service_feedback_side_of(service *svc, cml_model_type t, service_feedback_side *out) {
    memset(out, 0, sizeof(*out));
    out->accuracy = out->ci_lo = out->ci_hi = out->f1_macro = NAN;
    cml_model *m = cml_registry_acquire(svc->registry, t);
    size_t nl = m ? (m->n_labels < 4 ? m->n_labels : 4) : 0;
    size_t confusion[16];
    if (m &&
        cml_state_feedback_confusion(svc->state, cml_model_type_name(t), m->version, NULL,
                                     (const char *const *)m->labels, nl, confusion) == CML_OK) {
        cml_label_scores sc;
        cml_eval_label_scores(confusion, nl, &sc);
        out->present = true;
        snprintf(out->version, sizeof out->version, "%s", m->version);
        out->n = sc.n;
        out->correct = sc.correct;
        out->n_labels = nl;
        out->accuracy = sc.accuracy;
        out->f1_macro = sc.f1_macro;
        cml_eval_wilson(sc.correct, sc.n, 1.959963984540054, &out->ci_lo, &out->ci_hi);
        for (size_t c = 0; c < nl; c++) {
            snprintf(out->labels[c], sizeof out->labels[c], "%s", m->labels[c]);
            out->recall[c] = sc.recall[c];
        }
    }
    cml_model_release(m);
}

static json_object *num_or_null(double v) { return isnan(v) ? NULL : json_object_new_double(v); }

static json_object *feedback_json(const service_feedback_side *f) {
    if (!f->present)
        return NULL;
    json_object *o = json_object_new_object(), *ci = NULL, *rec = json_object_new_object();
    json_object_object_add(o, "version", json_object_new_string(f->version));
    json_object_object_add(o, "n", json_object_new_int64((int64_t)f->n));
    json_object_object_add(o, "accuracy", num_or_null(f->accuracy));
    if (!isnan(f->ci_lo)) {
        ci = json_object_new_array();
        json_object_array_add(ci, json_object_new_double(f->ci_lo));
        json_object_array_add(ci, json_object_new_double(f->ci_hi));
    }
    json_object_object_add(o, "accuracy_ci95", ci);
    json_object_object_add(o, "f1_macro", num_or_null(f->f1_macro));
    for (size_t c = 0; c < f->n_labels; c++)
        json_object_object_add(rec, f->labels[c], num_or_null(f->recall[c]));
    json_object_object_add(o, "recall", rec);
    return o;
}

static json_object *side_ref(const cml_live_side *s) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "model_type", json_object_new_string(s->model_type));
    json_object_object_add(o, "version", json_object_new_string(s->version));
    return o;
}

static json_object *shares(const cml_live_side *s, uint64_t requests) {
    json_object *o = json_object_new_object();
    for (size_t i = 0; i < s->n_labels; i++)
        json_object_object_add(
            o, s->labels[i],
            json_object_new_double(requests ? (double)s->label_n[i] / (double)requests : 0.0));
    return o;
}

static json_object *pair_json(const cml_live_pair *p) {
    json_object *o = json_object_new_object(), *ls = json_object_new_object(),
                *mc = json_object_new_object();
    double n = (double)p->requests;
    json_object_object_add(o, "answering", side_ref(&p->answering));
    json_object_object_add(o, "shadow", side_ref(&p->shadow));
    json_object_object_add(o, "requests", json_object_new_int64((int64_t)p->requests));
    json_object_object_add(o, "agreements", json_object_new_int64((int64_t)p->agreements));
    json_object_object_add(o, "agreement",
                           p->requests ? json_object_new_double((double)p->agreements / n) : NULL);
    json_object_object_add(ls, "answering", shares(&p->answering, p->requests));
    json_object_object_add(ls, "shadow", shares(&p->shadow, p->requests));
    json_object_object_add(o, "label_share", ls);
    json_object_object_add(mc, "answering",
                           p->requests ? json_object_new_double(p->answering.confidence_sum / n)
                                       : NULL);
    json_object_object_add(
        mc, "shadow", p->requests ? json_object_new_double(p->shadow.confidence_sum / n) : NULL);
    json_object_object_add(o, "mean_confidence", mc);
    return o;
}

/* Every shadow pair over all days, merged; *out owned by the caller. */
static cml_err all_pairs(service *svc, cml_live_pair **out, size_t *n) {
    cml_live_pair *rows = NULL;
    size_t nr = 0;
    *out = NULL;
    *n = 0;
    cml_err err = cml_live_rows(svc->state, "", true, &rows, &nr);
    if (err != CML_OK)
        return err;
    for (size_t i = 0; i < nr; i++) {
        if (rows[i].shadow.model_type[0] == '\0')
            continue;
        size_t j = 0;
        while (j < *n && !(!strcmp(rows[j].answering.model_type, rows[i].answering.model_type) &&
                           !strcmp(rows[j].answering.version, rows[i].answering.version) &&
                           !strcmp(rows[j].shadow.model_type, rows[i].shadow.model_type) &&
                           !strcmp(rows[j].shadow.version, rows[i].shadow.version)))
            j++;
        /* rows is reused for the merged pairs: j <= i always. */
        if (j == *n)
            rows[(*n)++] = rows[i];
        else
            cml_live_pair_add(&rows[j], &rows[i]);
    }
    *out = rows;
    return CML_OK;
}

json_object *service_live_json(service *svc, const service_feedback_side fb[]) {
    cml_live_pair *pairs = NULL;
    size_t n = 0;
    char ts[32];
    if (all_pairs(svc, &pairs, &n) != CML_OK)
        return NULL;
    json_object *o = json_object_new_object(), *sh = json_object_new_object(),
                *arr = json_object_new_array(), *f = json_object_new_object();
    int64_t since = cml_live_since(svc->state);
    if (since > 0) {
        time_t t = (time_t)since;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    json_object_object_add(o, "since", since > 0 ? json_object_new_string(ts) : NULL);
    for (size_t i = 0; i < n; i++)
        json_object_array_add(arr, pair_json(&pairs[i]));
    json_object_object_add(sh, "pairs", arr);
    json_object_object_add(o, "shadow", sh);
    json_object_object_add(f, "ensemble", feedback_json(&fb[CML_MODEL_ENSEMBLE]));
    json_object_object_add(f, "classic", feedback_json(&fb[CML_MODEL_CLASSIC]));
    json_object_object_add(o, "feedback", f);
    cml_free(pairs);
    return o;
}

/* One history row being summed. */
typedef struct day_row {
    char day[11], model_type[16], version[40];
    uint64_t answered, shadowed, agree, pair_requests;
    int64_t fb_n, fb_correct;
} day_row;

static day_row *row_for(day_row **rows, size_t *n, size_t *cap, const char *day, const char *type,
                        const char *version) {
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*rows)[i].day, day) && !strcmp((*rows)[i].model_type, type) &&
            !strcmp((*rows)[i].version, version))
            return &(*rows)[i];
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        day_row *g = cml_realloc_array(*rows, nc, sizeof(day_row));
        if (g == NULL)
            return NULL;
        *rows = g;
        *cap = nc;
    }
    day_row *r = &(*rows)[(*n)++];
    memset(r, 0, sizeof(*r));
    snprintf(r->day, sizeof r->day, "%s", day);
    snprintf(r->model_type, sizeof r->model_type, "%s", type);
    snprintf(r->version, sizeof r->version, "%s", version);
    return r;
}

static int row_cmp(const void *a, const void *b) {
    const day_row *x = a, *y = b;
    int c = strcmp(x->day, y->day);
    if (c == 0)
        c = strcmp(x->model_type, y->model_type);
    return c ? c : strcmp(x->version, y->version);
}

cml_err service_live_history(service *svc, int days, const char *model_type, json_object **out) {
    char from[11];
    cml_live_pair *pairs = NULL;
    cml_feedback_day *fd = NULL;
    day_row *rows = NULL;
    size_t np = 0, nf = 0, nr = 0, cap = 0;
    *out = NULL;
    cml_live_day((int64_t)time(NULL) - (int64_t)(days - 1) * 86400, from);
    cml_err err = cml_live_rows(svc->state, from, true, &pairs, &np);
    if (err == CML_OK)
        err = cml_state_feedback_days(svc->state, from, &fd, &nf);
    for (size_t i = 0; err == CML_OK && i < np; i++) {
        const cml_live_pair *p = &pairs[i];
        bool shadowed = p->shadow.model_type[0] != '\0';
        day_row *a =
            row_for(&rows, &nr, &cap, p->day, p->answering.model_type, p->answering.version);
        day_row *s = !a || !shadowed ? NULL
                                     : row_for(&rows, &nr, &cap, p->day, p->shadow.model_type,
                                               p->shadow.version);
        if (a == NULL || (shadowed && s == NULL)) {
            err = CML_ERR_NOMEM;
            break;
        }
        /* row_for may have moved the array: look a up again before writing. */
        a = row_for(&rows, &nr, &cap, p->day, p->answering.model_type, p->answering.version);
        a->answered += p->requests;
        if (shadowed) {
            a->agree += p->agreements;
            a->pair_requests += p->requests;
            s->shadowed += p->requests;
            s->agree += p->agreements;
            s->pair_requests += p->requests;
        }
    }
    for (size_t i = 0; err == CML_OK && i < nf; i++) {
        day_row *r = row_for(&rows, &nr, &cap, fd[i].day, fd[i].model_type, fd[i].version);
        if (r == NULL) {
            err = CML_ERR_NOMEM;
            break;
        }
        r->fb_n += fd[i].n;
        r->fb_correct += fd[i].correct;
    }
    if (err == CML_OK) {
        if (nr > 1)
            qsort(rows, nr, sizeof(day_row), row_cmp);
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < nr; i++) {
            const day_row *r = &rows[i];
            if (model_type && strcmp(model_type, r->model_type) != 0)
                continue;
            json_object *o = json_object_new_object();
            json_object_object_add(o, "day", json_object_new_string(r->day));
            json_object_object_add(o, "model_type", json_object_new_string(r->model_type));
            json_object_object_add(o, "version", json_object_new_string(r->version));
            json_object_object_add(o, "answered", json_object_new_int64((int64_t)r->answered));
            json_object_object_add(o, "shadowed", json_object_new_int64((int64_t)r->shadowed));
            json_object_object_add(
                o, "agreement",
                r->pair_requests
                    ? json_object_new_double((double)r->agree / (double)r->pair_requests)
                    : NULL);
            json_object_object_add(o, "feedback_n", json_object_new_int64(r->fb_n));
            json_object_object_add(
                o, "feedback_accuracy",
                r->fb_n ? json_object_new_double((double)r->fb_correct / (double)r->fb_n) : NULL);
            json_object_array_add(a, o);
        }
        *out = a;
    }
    cml_free(rows);
    cml_free(pairs);
    cml_free(fd);
    return err;
}

/* Writes s escaped for a Prometheus label value. */
static void prom_label(FILE *out, const char *s) {
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', out);
        if (*s != '\n')
            fputc(*s, out);
    }
}

/*
 * A pair's label set; side ("answering" or "shadow") and label are added when not NULL.
 */
static void pair_labels_with(FILE *out, const cml_live_pair *p, const char *side,
                             const char *label) {
    fputs("{answering_type=\"", out);
    prom_label(out, p->answering.model_type);
    fputs("\",answering_version=\"", out);
    prom_label(out, p->answering.version);
    fputs("\",shadow_type=\"", out);
    prom_label(out, p->shadow.model_type);
    fputs("\",shadow_version=\"", out);
    prom_label(out, p->shadow.version);
    if (side != NULL)
        fprintf(out, "\",side=\"%s", side);
    if (label != NULL) {
        fputs("\",label=\"", out);
        prom_label(out, label);
    }
    fputs("\"}", out);
}

static void pair_labels(FILE *out, const cml_live_pair *p) { pair_labels_with(out, p, NULL, NULL); }

/* A pair's two sides, indexed 0 (answering) and 1 (shadow), and their label values. */
static const char *const side_names[2] = {"answering", "shadow"};
static const cml_live_side *pair_side(const cml_live_pair *p, int side) {
    return side ? &p->shadow : &p->answering;
}

void service_live_metrics(service *svc, FILE *out) {
    cml_live_pair *pairs = NULL;
    size_t n = 0;
    if (all_pairs(svc, &pairs, &n) == CML_OK) {
        fputs("# HELP cultivate_ml_shadow_requests_total Classify answers also scored by the other"
              " model type, by pair of versions.\n# TYPE cultivate_ml_shadow_requests_total "
              "counter\n",
              out);
        for (size_t i = 0; i < n; i++) {
            fputs("cultivate_ml_shadow_requests_total", out);
            pair_labels(out, &pairs[i]);
            fprintf(out, " %llu\n", (unsigned long long)pairs[i].requests);
        }
        fputs("# HELP cultivate_ml_shadow_agreements_total Shadow-scored answers where both types"
              " gave the same label.\n# TYPE cultivate_ml_shadow_agreements_total counter\n",
              out);
        for (size_t i = 0; i < n; i++) {
            fputs("cultivate_ml_shadow_agreements_total", out);
            pair_labels(out, &pairs[i]);
            fprintf(out, " %llu\n", (unsigned long long)pairs[i].agreements);
        }
        /* Label shares and mean confidence as counters (answers per label, sum of
         * confidences): a rate or a ratio of two of them is the share or the mean over any
         * window, which a gauge of the all-time figure could not give. */
        fputs("# HELP cultivate_ml_shadow_label_answers_total Shadow-scored answers per label, "
              "by pair of versions and side (answering or shadow).\n"
              "# TYPE cultivate_ml_shadow_label_answers_total counter\n",
              out);
        for (size_t i = 0; i < n; i++)
            for (int side = 0; side < 2; side++) {
                const cml_live_side *s = pair_side(&pairs[i], side);
                for (size_t l = 0; l < s->n_labels; l++) {
                    fputs("cultivate_ml_shadow_label_answers_total", out);
                    pair_labels_with(out, &pairs[i], side_names[side], s->labels[l]);
                    fprintf(out, " %llu\n", (unsigned long long)s->label_n[l]);
                }
            }
        fputs("# HELP cultivate_ml_shadow_confidence_sum Sum of the confidences of the shadow-"
              "scored answers, by pair and side: divided by cultivate_ml_shadow_requests_total, "
              "the mean confidence.\n# TYPE cultivate_ml_shadow_confidence_sum counter\n",
              out);
        for (size_t i = 0; i < n; i++)
            for (int side = 0; side < 2; side++) {
                fputs("cultivate_ml_shadow_confidence_sum", out);
                pair_labels_with(out, &pairs[i], side_names[side], NULL);
                fprintf(out, " %.17g\n", pair_side(&pairs[i], side)->confidence_sum);
            }
    }
    cml_free(pairs);
    fputs("# HELP cultivate_ml_feedback_scored Feedback items scored by the resident version.\n"
          "# TYPE cultivate_ml_feedback_scored gauge\n",
          out);
    service_feedback_side fb[CML_MODEL__COUNT];
    for (cml_model_type t = CML_MODEL_CLASSIC; t < CML_MODEL__COUNT; t++) {
        service_feedback_side_of(svc, t, &fb[t]);
        if (fb[t].present)
            fprintf(out, "cultivate_ml_feedback_scored{model_type=\"%s\",version=\"%s\"} %zu\n",
                    cml_model_type_name(t), fb[t].version, fb[t].n);
    }
    fputs("# HELP cultivate_ml_feedback_accuracy Accuracy of the resident version on the feedback"
          " items.\n# TYPE cultivate_ml_feedback_accuracy gauge\n",
          out);
    for (cml_model_type t = CML_MODEL_CLASSIC; t < CML_MODEL__COUNT; t++)
        if (fb[t].present && fb[t].n > 0)
            fprintf(out, "cultivate_ml_feedback_accuracy{model_type=\"%s\",version=\"%s\"} %g\n",
                    cml_model_type_name(t), fb[t].version, fb[t].accuracy);
    fprintf(
        out,
        "# HELP cultivate_ml_shadow_dropped_total Shadow counts lost to a full table.\n"
        "# TYPE cultivate_ml_shadow_dropped_total counter\n"
        "cultivate_ml_shadow_dropped_total %llu\n"
        "# HELP cultivate_ml_shadow_skipped_total Sampled answers not shadow-scored because the "
        "queue was full (a saturated machine).\n"
        "# TYPE cultivate_ml_shadow_skipped_total counter\n"
        "cultivate_ml_shadow_skipped_total %llu\n",
        (unsigned long long)cml_live_dropped(), (unsigned long long)cml_live_skipped_total());
}
