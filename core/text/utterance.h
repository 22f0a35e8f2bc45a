/*
 * Utterance analysis of a transcribed clip: its sentences (with byte offsets
 * into the text), and which of them are the teacher's questions or
 * invitations. Speech-to-text often drops punctuation, so a sentence without
 * a question mark is also split where question word order starts a new
 * clause ("the bucket fell over so what do you think happened"). What the
 * clip's label is, given its questions, is not decided here: the model's
 * fitted utterance combiner does that (model.h). Training and serving both
 * call cml_utterance_split, so they see the same questions.
 */
#ifndef CML_UTTERANCE_H
#define CML_UTTERANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sentences kept per text; the rest of a longer text joins the last one. */
#define CML_UTTERANCE_MAX_PARTS 32

typedef struct cml_utterance_part {
    uint32_t start, end; /* bytes [start, end) of the text, trimmed of spaces */
    bool question;       /* a question or an invitation to answer */
    bool question_mark;  /* ends with '?' */
} cml_utterance_part;

typedef struct cml_utterance {
    size_t n_parts;
    size_t n_questions;
    cml_utterance_part parts[CML_UTTERANCE_MAX_PARTS];
} cml_utterance;

/* Fills out from text[0..len); allocates nothing, safe from any thread. */
void cml_utterance_split(const char *text, size_t len, cml_utterance *out);

/* Number of UTF-8 characters in text[0..byte_off): the offset an API client sees. */
size_t cml_utf8_offset(const char *text, size_t byte_off);

#endif
