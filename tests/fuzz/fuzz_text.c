/* Fuzz harness: normalisation, hand features and utterance analysis of arbitrary bytes. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "text/text_features.h"
#include "text/text_normalize.h"
#include "text/utterance.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static cml_feature_scratch *s;
    static cml_normalized n;
    float h[CML_HAND_FEATURES];
    if (s == NULL)
        s = cml_feature_scratch_new();
    if (cml_normalize((const char *)data, size, &n) != CML_OK)
        abort();
    for (size_t i = 0; i < n.n_tokens; i++)
        if (n.tokens[i].sentence >= n.n_sentences || n.tokens[i].len == 0)
            abort();
    cml_hand_features(s, (const char *)data, size, h);
    /* Sentences are in order, inside the text, never empty; the question count adds up. */
    cml_utterance u;
    cml_utterance_split((const char *)data, size, &u);
    size_t questions = 0, prev_end = 0;
    for (size_t i = 0; i < u.n_parts; i++) {
        const cml_utterance_part *p = &u.parts[i];
        if (p->start >= p->end || p->end > size || p->start < prev_end)
            abort();
        prev_end = p->end;
        questions += p->question;
    }
    if (questions != u.n_questions || u.n_parts > CML_UTTERANCE_MAX_PARTS)
        abort();
    return 0;
}
