#include "config.h"

#include "text/transcript.h"

#include <ctype.h>
#include <json-c/json.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "base/byte_buffer.h"
#include "base/cml_alloc.h"
#include "learn/dataset.h"
#include "base/utf8.h"

const char *cml_transcript_format_name(cml_transcript_format f) {
    static const char *const names[CML_TRANSCRIPT__MAX] = {
        [CML_TRANSCRIPT_VTT] = "vtt",
        [CML_TRANSCRIPT_SRT] = "srt",
        [CML_TRANSCRIPT_WHISPER_JSON] = "json",
        [CML_TRANSCRIPT_PLAIN] = "plain",
    };
    return (unsigned)f < CML_TRANSCRIPT__MAX ? names[f] : NULL;
}

cml_err cml_transcript_format_of(const char *content_type, cml_transcript_format *out) {
    static const struct {
        const char *type;
        cml_transcript_format format;
    } types[] = {
        {"text/vtt", CML_TRANSCRIPT_VTT},
        {"application/x-subrip", CML_TRANSCRIPT_SRT},
        {"text/srt", CML_TRANSCRIPT_SRT},
        {"application/x-srt", CML_TRANSCRIPT_SRT},
        {"application/json", CML_TRANSCRIPT_WHISPER_JSON},
        {"text/plain", CML_TRANSCRIPT_PLAIN},
    };
    if (content_type == NULL)
        return CML_ERR_UNSUPPORTED;
    while (*content_type == ' ')
        content_type++;
    size_t n = strcspn(content_type, "; \t");
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strlen(types[i].type) == n && strncasecmp(content_type, types[i].type, n) == 0) {
            *out = types[i].format;
            return CML_OK;
        }
    return CML_ERR_UNSUPPORTED;
}

void cml_transcript_free(cml_transcript *t) {
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++) {
        cml_free(t->segments[i].speaker);
        cml_free(t->segments[i].text);
    }
    cml_free(t->segments);
    cml_free(t);
}

/* --- building ------------------------------------------------------------------------------ */

typedef struct builder {
    cml_transcript *t;
    size_t cap;
    const cml_transcript_limits *limits;
    cml_diag *diag;
} builder;

/* Adds a segment; text and speaker are copied. */
static cml_err add_segment(builder *b, double start, double end, const char *speaker,
                           size_t speaker_len, const char *text, size_t text_len, size_t line) {
    if (b->limits != NULL && b->limits->max_segments > 0 && b->t->n >= b->limits->max_segments)
        return cml_diag_set(b->diag, CML_ERR_DATA, "line %zu: more than %zu segments", line,
                            b->limits->max_segments);
    if (b->t->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        cml_segment *s = cml_realloc_array(b->t->segments, cap, sizeof(*s));
        if (s == NULL)
            return CML_ERR_NOMEM;
        b->t->segments = s;
        b->cap = cap;
    }
    cml_segment *seg = &b->t->segments[b->t->n];
    *seg = (cml_segment){.start_s = start, .end_s = end, .line = line};
    seg->text = cml_malloc(text_len + 1);
    if (seg->text == NULL)
        return CML_ERR_NOMEM;
    memcpy(seg->text, text, text_len);
    seg->text[text_len] = '\0';
    if (speaker != NULL && speaker_len > 0) {
        seg->speaker = cml_malloc(speaker_len + 1);
        if (seg->speaker == NULL) {
            cml_free(seg->text);
            return CML_ERR_NOMEM;
        }
        memcpy(seg->speaker, speaker, speaker_len);
        seg->speaker[speaker_len] = '\0';
    }
    b->t->n++;
    return CML_OK;
}

/* --- lines --------------------------------------------------------------------------------- */

typedef struct line_reader {
    const char *buf;
    size_t len, pos, number;
} line_reader;

/* The next line without its LF or CRLF; false at the end. */
static bool next_line(line_reader *r, const char **line, size_t *n) {
    if (r->pos >= r->len)
        return false;
    const char *p = r->buf + r->pos;
    const char *nl = memchr(p, '\n', r->len - r->pos);
    size_t l = nl ? (size_t)(nl - p) : r->len - r->pos;
    r->pos += l + (nl != NULL);
    if (l > 0 && p[l - 1] == '\r')
        l--;
    *line = p;
    *n = l;
    r->number++;
    return true;
}

static bool blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return false;
    return true;
}

/* --- timestamps ---------------------------------------------------------------------------- */

/* Digits at *p (at least min, at most max) as a number; false when there are not enough. */
static bool digits(const char **p, const char *end, int min, int max, long *out) {
    long v = 0;
    int k = 0;
    while (*p < end && k < max && isdigit((unsigned char)**p)) {
        v = v * 10 + (**p - '0');
        (*p)++;
        k++;
    }
    *out = v;
    return k >= min;
}

/*
 * [hh:]mm:ss.ttt (WebVTT, hours optional) or hh:mm:ss,ttt (SRT; a '.' tolerated) into seconds.
 * Advances *p past it.
 */
static bool timestamp(const char **p, const char *end, bool srt, double *out) {
    long a, b, c, frac;
    if (!digits(p, end, 1, 9, &a) || *p >= end || **p != ':')
        return false;
    (*p)++;
    if (!digits(p, end, 2, 2, &b))
        return false;
    long h = 0, m = a, s;
    if (*p < end && **p == ':') {
        (*p)++;
        if (!digits(p, end, 2, 2, &c))
            return false;
        h = a, m = b, s = c;
    } else {
        if (srt)
            return false; /* SRT always has hours */
        s = b;
    }
    if (*p >= end || !(**p == '.' || **p == ','))
        return false;
    (*p)++;
    if (!digits(p, end, 3, 3, &frac) || m > 59 || s > 59)
        return false;
    *out = (double)h * 3600.0 + (double)m * 60.0 + (double)s + (double)frac / 1000.0;
    return true;
}

/* "START --> END[ settings]": false when the line is not a timing line. */
static bool timing_line(const char *line, size_t n, bool srt, double *start, double *end) {
    const char *p = line, *e = line + n;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    if (!timestamp(&p, e, srt, start))
        return false;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    if (e - p < 3 || memcmp(p, "-->", 3) != 0)
        return false;
    p += 3;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    if (!timestamp(&p, e, srt, end))
        return false;
    return p == e || *p == ' ' || *p == '\t'; /* cue settings may follow */
}

static bool has_arrow(const char *line, size_t n) {
    for (size_t i = 0; i + 3 <= n; i++)
        if (memcmp(line + i, "-->", 3) == 0)
            return true;
    return false;
}

/* --- cue text ------------------------------------------------------------------------------ */

/*
 * Appends a cue line to out with its markup removed: tags (<i>, <c.x>, <00:01.000>) dropped,
 * the first voice tag's name kept in *speaker, the common character references decoded.
 */
static void cue_text(const char *s, size_t n, cml_buf *out, char *speaker, size_t speaker_cap) {
    for (size_t i = 0; i < n;) {
        if (s[i] == '<') {
            const char *close = memchr(s + i, '>', n - i);
            size_t tl = close ? (size_t)(close - (s + i)) + 1 : n - i;
            if (tl > 3 && s[i + 1] == 'v' && (s[i + 2] == ' ' || s[i + 2] == '.') &&
                speaker[0] == '\0') {
                /* The name runs from after the first space to the '>' (or the line's end). */
                const char *end = s + i + tl - (close != NULL);
                const char *name = memchr(s + i + 2, ' ', (size_t)(end - (s + i + 2)));
                if (name != NULL) {
                    name++;
                    size_t nl = (size_t)(end - name);
                    while (nl > 0 && name[nl - 1] == ' ')
                        nl--;
                    if (nl >= speaker_cap)
                        nl = speaker_cap - 1;
                    memcpy(speaker, name, nl);
                    speaker[nl] = '\0';
                }
            }
            i += tl;
            continue;
        }
        if (s[i] == '&') {
            static const struct {
                const char *ref, *text;
            } refs[] = {{"&amp;", "&"},  {"&lt;", "<"}, {"&gt;", ">"},
                        {"&nbsp;", " "}, {"&lrm;", ""}, {"&rlm;", ""}};
            bool done = false;
            for (size_t k = 0; k < sizeof refs / sizeof refs[0] && !done; k++) {
                size_t rl = strlen(refs[k].ref);
                if (n - i >= rl && memcmp(s + i, refs[k].ref, rl) == 0) {
                    cml_buf_put(out, refs[k].text, strlen(refs[k].text));
                    i += rl;
                    done = true;
                }
            }
            if (done)
                continue;
        }
        cml_buf_put(out, s + i, 1);
        i++;
    }
}

/* The text of a buffer trimmed of spaces: start and length. */
static const char *trimmed(const cml_buf *b, size_t *n) {
    const char *s = (const char *)b->data;
    size_t l = b->len;
    while (l > 0 && isspace((unsigned char)s[0]))
        s++, l--;
    while (l > 0 && isspace((unsigned char)s[l - 1]))
        l--;
    *n = l;
    return s;
}

/* --- WebVTT and SRT ------------------------------------------------------------------------ */

static cml_err parse_cues(line_reader *r, bool srt, builder *b) {
    cml_err err = CML_OK;
    cml_buf text = {0};
    const char *line;
    size_t n;
    double prev_start = -1, prev_end = -1;
    bool pending_line = false; /* line/n hold a line not yet consumed */
    for (;;) {
        if (!pending_line && !next_line(r, &line, &n))
            break;
        pending_line = false;
        if (blank(line, n))
            continue;
        size_t block_line = r->number;
        /* WebVTT blocks that are not cues: NOTE, STYLE, REGION (up to the next blank line). */
        if (!srt && ((n >= 4 && memcmp(line, "NOTE", 4) == 0 && (n == 4 || line[4] == ' ')) ||
                     (n == 5 && memcmp(line, "STYLE", 5) == 0) ||
                     (n == 6 && memcmp(line, "REGION", 6) == 0))) {
            while (next_line(r, &line, &n) && !blank(line, n))
                ;
            continue;
        }
        /* An identifier line (SRT: the cue number) before the timing line. */
        size_t id_line = 0;
        if (!has_arrow(line, n)) {
            id_line = r->number;
            if (srt) {
                const char *p = line;
                long idx;
                while (p < line + n && *p == ' ')
                    p++;
                if (!digits(&p, line + n, 1, 12, &idx) || !blank(p, (size_t)(line + n - p))) {
                    err =
                        cml_diag_set(b->diag, CML_ERR_FORMAT,
                                     "line %zu: expected a cue number or a timing line", r->number);
                    goto done;
                }
            }
            if (!next_line(r, &line, &n) || blank(line, n)) {
                err = cml_diag_set(b->diag, CML_ERR_FORMAT,
                                   "line %zu: a cue identifier without a timing line", block_line);
                goto done;
            }
        }
        double start, end;
        if (!timing_line(line, n, srt, &start, &end)) {
            if (id_line > 0 && !srt)
                err = cml_diag_set(b->diag, CML_ERR_FORMAT,
                                   "line %zu: not a timing line (expected 00:01.000 --> "
                                   "00:02.000), and line %zu is not one either",
                                   id_line, r->number);
            else
                err = cml_diag_set(b->diag, CML_ERR_FORMAT,
                                   "line %zu: bad timing line (expected %s --> %s)", r->number,
                                   srt ? "00:00:01,000" : "00:01.000",
                                   srt ? "00:00:02,000" : "00:02.000");
            goto done;
        }
        size_t timing_at = r->number;
        if (end < start) {
            err = cml_diag_set(b->diag, CML_ERR_FORMAT, "line %zu: the cue ends before it starts",
                               timing_at);
            goto done;
        }
        if (start < prev_start) {
            err = cml_diag_set(b->diag, CML_ERR_FORMAT,
                               "line %zu: cues out of order (starts before the previous cue)",
                               timing_at);
            goto done;
        }
        if (start < prev_end) {
            err = cml_diag_set(b->diag, CML_ERR_FORMAT,
                               "line %zu: the cue overlaps the previous one", timing_at);
            goto done;
        }
        /* Text lines up to a blank line (SRT: or a line that is a new cue's timing). */
        text.len = 0;
        char speaker[128] = "";
        while (next_line(r, &line, &n) && !blank(line, n)) {
            if (has_arrow(line, n)) {
                pending_line = true; /* a cue with no blank line before it */
                break;
            }
            if (text.len > 0)
                cml_buf_put(&text, " ", 1);
            cue_text(line, n, &text, speaker, sizeof speaker);
        }
        if ((err = cml_buf_status(&text)) != CML_OK)
            goto done;
        size_t tl;
        const char *t = trimmed(&text, &tl);
        if (tl == 0) {
            err = cml_diag_set(b->diag, CML_ERR_FORMAT, "line %zu: a cue without text", timing_at);
            goto done;
        }
        if (pending_line && srt) {
            err = cml_diag_set(b->diag, CML_ERR_FORMAT,
                               "line %zu: a timing line inside a cue's text", r->number);
            goto done;
        }
        if ((err = add_segment(b, start, end, speaker[0] ? speaker : NULL, strlen(speaker), t, tl,
                               timing_at)) != CML_OK)
            goto done;
        prev_start = start;
        prev_end = end;
    }
done:
    cml_buf_release(&text);
    return err;
}

static cml_err parse_vtt(line_reader *r, builder *b) {
    const char *line;
    size_t n;
    if (!next_line(r, &line, &n) || n < 6 || memcmp(line, "WEBVTT", 6) != 0 ||
        (n > 6 && line[6] != ' ' && line[6] != '\t'))
        return cml_diag_set(b->diag, CML_ERR_FORMAT, "line 1: a WebVTT file starts with WEBVTT");
    /* Header lines up to the first blank line. */
    while (next_line(r, &line, &n) && !blank(line, n)) {
        if (has_arrow(line, n))
            return cml_diag_set(b->diag, CML_ERR_FORMAT,
                                "line %zu: a blank line must follow the WEBVTT header", r->number);
    }
    return parse_cues(r, false, b);
}

/* --- Whisper JSON ------------------------------------------------------------------------- */

static bool json_number(json_object *o, const char *key, double *out) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) ||
        !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
        return false;
    *out = json_object_get_double(v);
    return isfinite(*out) && *out >= 0;
}

static cml_err parse_whisper(const char *buf, size_t len, builder *b) {
    cml_err err = CML_OK;
    json_tokener *tok = json_tokener_new();
    json_object *root = tok ? json_tokener_parse_ex(tok, buf, (int)len) : NULL;
    json_object *segs;
    if (tok == NULL)
        return CML_ERR_NOMEM;
    size_t tail = root != NULL ? json_tokener_get_parse_end(tok) : 0;
    while (root != NULL && tail < len && isspace((unsigned char)buf[tail]))
        tail++;
    if (root == NULL || tail != len) {
        err = cml_diag_set(b->diag, CML_ERR_FORMAT, "the body is not one JSON object");
        goto done;
    }
    if (!json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "segments", &segs) ||
        !json_object_is_type(segs, json_type_array)) {
        err = cml_diag_set(b->diag, CML_ERR_FORMAT, "expected {\"segments\": [...]}");
        goto done;
    }
    double prev_start = -1;
    for (size_t i = 0; i < json_object_array_length(segs); i++) {
        json_object *s = json_object_array_get_idx(segs, i), *v;
        double start, end;
        if (!json_object_is_type(s, json_type_object) || !json_number(s, "start", &start) ||
            !json_number(s, "end", &end) || !json_object_object_get_ex(s, "text", &v) ||
            !json_object_is_type(v, json_type_string)) {
            err = cml_diag_set(b->diag, CML_ERR_FORMAT,
                               "segment %zu needs start and end (seconds, >= 0) and text", i);
            goto done;
        }
        if (end < start || start < prev_start) {
            err = cml_diag_set(b->diag, CML_ERR_FORMAT,
                               end < start ? "segment %zu ends before it starts"
                                           : "segment %zu starts before the previous one",
                               i);
            goto done;
        }
        const char *text = json_object_get_string(v);
        size_t tl = (size_t)json_object_get_string_len(v);
        if (memchr(text, '\0', tl) != NULL) {
            err = cml_diag_set(b->diag, CML_ERR_FORMAT, "segment %zu: text holds a NUL", i);
            goto done;
        }
        while (tl > 0 && isspace((unsigned char)*text))
            text++, tl--;
        while (tl > 0 && isspace((unsigned char)text[tl - 1]))
            tl--;
        const char *speaker = NULL;
        size_t sl = 0;
        if (json_object_object_get_ex(s, "speaker", &v) &&
            !json_object_is_type(v, json_type_null)) {
            if (!json_object_is_type(v, json_type_string)) {
                err = cml_diag_set(b->diag, CML_ERR_FORMAT, "segment %zu: speaker is not a string",
                                   i);
                goto done;
            }
            speaker = json_object_get_string(v);
            sl = (size_t)json_object_get_string_len(v);
            if (memchr(speaker, '\0', sl) != NULL) {
                err = cml_diag_set(b->diag, CML_ERR_FORMAT, "segment %zu: speaker holds a NUL", i);
                goto done;
            }
        }
        prev_start = start;
        if (tl == 0)
            continue; /* Whisper writes empty segments for silence */
        if ((err = add_segment(b, start, end, speaker, sl, text, tl, 0)) != CML_OK)
            goto done;
    }
done:
    json_object_put(root);
    json_tokener_free(tok);
    return err;
}

/* --- plain text ---------------------------------------------------------------------------- */

static cml_err parse_plain(line_reader *r, builder *b) {
    const char *line;
    size_t n;
    while (next_line(r, &line, &n)) {
        while (n > 0 && isspace((unsigned char)line[0]))
            line++, n--;
        while (n > 0 && isspace((unsigned char)line[n - 1]))
            n--;
        if (n == 0)
            continue;
        cml_err err = add_segment(b, NAN, NAN, NULL, 0, line, n, r->number);
        if (err != CML_OK)
            return err;
    }
    return CML_OK;
}

cml_err cml_transcript_parse(const char *buf, size_t len, cml_transcript_format f,
                             const cml_transcript_limits *limits, cml_transcript **out,
                             cml_diag *diag) {
    cml_err err;
    if (out == NULL || (buf == NULL && len > 0) || (unsigned)f >= CML_TRANSCRIPT__MAX)
        return CML_ERR_INVALID;
    *out = NULL;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        buf += 3, len -= 3;
    if (f != CML_TRANSCRIPT_WHISPER_JSON && memchr(buf, '\0', len) != NULL)
        return cml_diag_set(diag, CML_ERR_FORMAT, "the transcript holds NUL bytes");
    if (!cml_utf8_valid(buf, len))
        return cml_diag_set(diag, CML_ERR_UTF8, "the transcript is not valid UTF-8");
    cml_transcript *t = cml_calloc(1, sizeof(*t));
    if (t == NULL)
        return CML_ERR_NOMEM;
    t->timed = f != CML_TRANSCRIPT_PLAIN;
    builder b = {.t = t, .limits = limits, .diag = diag};
    line_reader r = {.buf = buf, .len = len};
    switch (f) {
    case CML_TRANSCRIPT_VTT:
        err = parse_vtt(&r, &b);
        break;
    case CML_TRANSCRIPT_SRT:
        err = parse_cues(&r, true, &b);
        break;
    case CML_TRANSCRIPT_WHISPER_JSON:
        err = parse_whisper(buf, len, &b);
        break;
    default:
        err = parse_plain(&r, &b);
        break;
    }
    if (err != CML_OK) {
        cml_transcript_free(t);
        return err;
    }
    *out = t;
    return CML_OK;
}
