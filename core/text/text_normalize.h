/*
 * Normalisation of transcribed classroom speech into tokens and sentences:
 * case, curly quotes, contractions and informal forms, fillers, repeated and
 * cut-off words, sentence splitting and the choice of the focus sentence (the
 * question the child is asked to answer). Training and serving both call it.
 */
#ifndef CML_TEXT_NORMALIZE_H
#define CML_TEXT_NORMALIZE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/cml_error.h"

typedef struct cml_token {
    unsigned off; /* offset of the NUL-terminated word in cml_normalized.chars */
    unsigned len;
    unsigned sentence; /* index into sentences */
} cml_token;

typedef struct cml_sentence {
    unsigned first, count; /* tokens[first .. first+count) */
    bool question_mark;    /* ended with '?' */
} cml_sentence;

/* Scratch owned by one thread; reused across calls so serving allocates nothing. */
typedef struct cml_normalized {
    char *chars;
    size_t chars_len, chars_cap;
    cml_token *tokens;
    size_t n_tokens, tokens_cap;
    cml_sentence *sentences;
    size_t n_sentences, sentences_cap;
    size_t focus; /* sentence that carries the question; valid when n_tokens > 0 */
} cml_normalized;

/* Fills out from text[0..len). out keeps its buffers between calls. */
cml_err cml_normalize(const char *text, size_t len, cml_normalized *out);

/* Frees the buffers (not the struct); accepts NULL. */
void cml_normalized_release(cml_normalized *n);

static inline const char *cml_token_str(const cml_normalized *n, size_t i) {
    return n->chars + n->tokens[i].off;
}

/* Joined tokens of the whole text, space-separated, into buf (truncated); for debugging and tests.
 */
size_t cml_normalized_join(const cml_normalized *n, char *buf, size_t cap);

#endif
