/*
 * Lesson transcripts as speech-to-text engines write them: WebVTT, SRT,
 * Whisper's JSON segments, or plain text. Each parser gives the same list of
 * segments (times in seconds, the speaker when the format names one, the
 * text with markup removed); malformed input is refused with the line it is
 * on. Finding the questions in the segments is transcript_analysis.h's job.
 */
#ifndef CML_TRANSCRIPT_H
#define CML_TRANSCRIPT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/cml_error.h"

typedef enum cml_transcript_format {
    CML_TRANSCRIPT_VTT,
    CML_TRANSCRIPT_SRT,
    CML_TRANSCRIPT_WHISPER_JSON,
    CML_TRANSCRIPT_PLAIN,
    CML_TRANSCRIPT__MAX
} cml_transcript_format;

/* "vtt", "srt", "json", "plain". */
const char *cml_transcript_format_name(cml_transcript_format f);

/*
 * The format of a Content-Type (parameters such as charset ignored): text/vtt,
 * application/x-subrip or text/srt, application/json, text/plain.
 * CML_ERR_UNSUPPORTED for any other type.
 */
cml_err cml_transcript_format_of(const char *content_type, cml_transcript_format *out);

typedef struct cml_segment {
    double start_s, end_s; /* NAN for plain text */
    char *speaker;         /* owned; NULL when the format names none */
    char *text;            /* owned, markup removed, never empty */
    size_t line;           /* where the segment starts in the input (1-based; JSON: 0) */
} cml_segment;

typedef struct cml_transcript {
    size_t n;
    cml_segment *segments; /* owned */
    bool timed;            /* false for plain text */
} cml_transcript;

/* Limits the caller sets; zero means no limit. */
typedef struct cml_transcript_limits {
    size_t max_segments;
} cml_transcript_limits;

/*
 * Parses len bytes (UTF-8, an optional BOM, LF or CRLF) of format f. On
 * success *out is a new transcript the caller frees with
 * cml_transcript_free; on failure *out is NULL and diag says what is wrong
 * and on which line (CML_ERR_FORMAT, CML_ERR_UTF8, CML_ERR_LIMIT).
 */
cml_err cml_transcript_parse(const char *buf, size_t len, cml_transcript_format f,
                             const cml_transcript_limits *limits, cml_transcript **out,
                             cml_diag *diag);

/* Accepts NULL. */
void cml_transcript_free(cml_transcript *t);

#endif
