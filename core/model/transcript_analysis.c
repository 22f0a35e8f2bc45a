#include "config.h"

#include "model/transcript_analysis.h"

#include <math.h>
#include <string.h>

#include "base/byte_buffer.h"
#include "base/cml_alloc.h"

/* A turn stops growing past this many bytes, so one unpunctuated run cannot swallow a lesson. */
#define TURN_MAX_BYTES 1200

void cml_analysis_free(cml_analysis *a) {
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; i++)
        cml_free(a->questions[i].text);
    cml_free(a->questions);
    cml_free(a);
}

static bool same_speaker(const cml_segment *a, const cml_segment *b) {
    if (a->speaker == NULL || b->speaker == NULL)
        return a->speaker == b->speaker;
    return strcmp(a->speaker, b->speaker) == 0;
}

/* Whether a cue's text ends a sentence (the next cue then starts a new turn). */
static bool ends_sentence(const char *text) {
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '"' || text[n - 1] == '\''))
        n--;
    return n > 0 && (text[n - 1] == '.' || text[n - 1] == '?' || text[n - 1] == '!');
}

static bool wanted(const cml_analysis_options *o, const char *speaker) {
    if (o == NULL || o->speakers == NULL || o->n_speakers == 0)
        return true;
    for (size_t i = 0; i < o->n_speakers; i++)
        if (speaker != NULL && strcmp(o->speakers[i], speaker) == 0)
            return true;
    return false;
}

/* The segment of a turn that holds byte off of the joined text. */
static size_t segment_at(const size_t *seg_off, size_t first, size_t count, size_t off) {
    size_t k = first;
    while (k + 1 < first + count && seg_off[k + 1 - first] <= off)
        k++;
    return k;
}

static cml_err add_question(cml_analysis *a, size_t *cap, const cml_found_question *q,
                            const cml_analysis_options *o, cml_diag *diag) {
    if (o != NULL && o->max_questions > 0 && a->n >= o->max_questions)
        return cml_diag_set(diag, CML_ERR_DATA, "the transcript holds more than %zu questions",
                            o->max_questions);
    if (a->n == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        cml_found_question *p = cml_realloc_array(a->questions, c, sizeof(*p));
        if (p == NULL)
            return CML_ERR_NOMEM;
        a->questions = p;
        *cap = c;
    }
    a->questions[a->n++] = *q;
    return CML_OK;
}

cml_err cml_transcript_analyze(const cml_model *m, cml_feature_scratch *s, const cml_transcript *t,
                               const cml_analysis_options *o, cml_analysis **out, cml_diag *diag) {
    cml_err err = CML_OK;
    cml_buf turn = {0};
    size_t *seg_off = NULL, cap = 0;
    cml_analysis *a = cml_calloc(1, sizeof(*a));
    *out = NULL;
    if (a == NULL)
        return CML_ERR_NOMEM;
    seg_off = cml_malloc((t->n ? t->n : 1) * sizeof(size_t));
    if (seg_off == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < t->n;) {
        /* A turn: cues of one speaker joined while the sentence runs on. */
        size_t first = i, count = 0;
        turn.len = 0;
        do {
            if (count > 0)
                cml_buf_put(&turn, " ", 1);
            seg_off[count++] = turn.len;
            cml_buf_put(&turn, t->segments[i].text, strlen(t->segments[i].text));
            i++;
        } while (i < t->n && !ends_sentence(t->segments[i - 1].text) &&
                 same_speaker(&t->segments[i - 1], &t->segments[i]) && turn.len < TURN_MAX_BYTES);
        cml_buf_put(&turn, "", 1); /* NUL */
        if ((err = cml_buf_status(&turn)) != CML_OK)
            goto done;
        const cml_segment *seg = &t->segments[first];
        if (!wanted(o, seg->speaker))
            continue;
        const char *text = (const char *)turn.data;
        cml_utterance u;
        cml_utterance_split(text, turn.len - 1, &u);
        for (size_t p = 0; p < u.n_parts; p++) {
            const cml_utterance_part *part = &u.parts[p];
            size_t len = part->end - part->start;
            if (!cml_model_is_question(m, s, text + part->start, len, part->question))
                continue;
            cml_prediction pred;
            if ((err = cml_model_predict(m, s, text + part->start, len, &pred)) != CML_OK)
                goto done;
            if (o != NULL && pred.confidence < o->min_confidence)
                continue;
            size_t a_seg = segment_at(seg_off, first, count, part->start);
            size_t b_seg = segment_at(seg_off, first, count, part->end - 1);
            cml_found_question q = {
                .start_s = t->segments[a_seg].start_s,
                .end_s = t->segments[b_seg].end_s,
                .speaker = seg->speaker,
                .label = pred.label,
                .confidence = pred.confidence,
            };
            if ((q.text = cml_malloc(len + 1)) == NULL) {
                err = CML_ERR_NOMEM;
                goto done;
            }
            memcpy(q.text, text + part->start, len);
            q.text[len] = '\0';
            if ((err = add_question(a, &cap, &q, o, diag)) != CML_OK) {
                cml_free(q.text);
                goto done;
            }
        }
    }
    *out = a;
    a = NULL;
done:
    cml_buf_release(&turn);
    cml_free(seg_off);
    cml_analysis_free(a);
    return err;
}

static json_object *time_or_null(double v) { return isnan(v) ? NULL : json_object_new_double(v); }

static json_object *share_or_null(size_t part, size_t whole) {
    return whole ? json_object_new_double((double)part / (double)whole) : NULL;
}

json_object *cml_analysis_json(const cml_model *m, const cml_transcript *t, const cml_analysis *a) {
    int oeq = -1;
    for (size_t c = 0; c < m->n_labels; c++)
        if (strcmp(m->labels[c], "OEQ") == 0)
            oeq = (int)c;
    json_object *o = json_object_new_object(), *qs = json_object_new_array();
    json_object_object_add(o, "model_type", json_object_new_string(cml_model_type_name(m->type)));
    json_object_object_add(o, "model_version", json_object_new_string(m->version));
    size_t n_oeq = 0;
    json_object *by = json_object_new_object();
    for (size_t i = 0; i < a->n; i++) {
        const cml_found_question *q = &a->questions[i];
        json_object *j = json_object_new_object();
        json_object_object_add(j, "index", json_object_new_int64((int64_t)i));
        json_object_object_add(j, "start_s", time_or_null(q->start_s));
        json_object_object_add(j, "end_s", time_or_null(q->end_s));
        json_object_object_add(j, "speaker",
                               q->speaker ? json_object_new_string(q->speaker) : NULL);
        json_object_object_add(j, "text", json_object_new_string(q->text));
        json_object_object_add(j, "classification", json_object_new_string(m->labels[q->label]));
        json_object_object_add(j, "confidence", json_object_new_double(q->confidence));
        json_object_array_add(qs, j);
        n_oeq += q->label == oeq;
    }
    /* Per named speaker: questions and open share. */
    for (size_t i = 0; i < a->n; i++) {
        const char *sp = a->questions[i].speaker;
        if (sp == NULL || json_object_object_get_ex(by, sp, NULL))
            continue;
        size_t nq = 0, no = 0;
        for (size_t k = i; k < a->n; k++)
            if (a->questions[k].speaker != NULL && strcmp(a->questions[k].speaker, sp) == 0) {
                nq++;
                no += a->questions[k].label == oeq;
            }
        json_object *e = json_object_new_object();
        json_object_object_add(e, "questions", json_object_new_int64((int64_t)nq));
        json_object_object_add(e, "oeq_share", share_or_null(no, nq));
        json_object_object_add(by, sp, e);
    }
    double duration = NAN;
    if (t->timed && t->n > 0) {
        double lo = t->segments[0].start_s, hi = t->segments[0].end_s;
        for (size_t i = 1; i < t->n; i++)
            hi = t->segments[i].end_s > hi ? t->segments[i].end_s : hi;
        duration = hi - lo;
    }
    json_object *sum = json_object_new_object();
    json_object_object_add(sum, "duration_s", time_or_null(duration));
    json_object_object_add(sum, "segments", json_object_new_int64((int64_t)t->n));
    json_object_object_add(sum, "questions", json_object_new_int64((int64_t)a->n));
    json_object_object_add(sum, "oeq", json_object_new_int64((int64_t)n_oeq));
    json_object_object_add(sum, "ceq", json_object_new_int64((int64_t)(a->n - n_oeq)));
    json_object_object_add(sum, "oeq_share", share_or_null(n_oeq, a->n));
    json_object_object_add(sum, "questions_per_minute",
                           !isnan(duration) && duration > 0
                               ? json_object_new_double((double)a->n * 60.0 / duration)
                               : NULL);
    json_object_object_add(sum, "by_speaker", by);
    json_object_object_add(o, "questions", qs);
    json_object_object_add(o, "summary", sum);
    return o;
}
