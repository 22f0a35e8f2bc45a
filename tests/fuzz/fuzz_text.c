/* Fuzz harness: normalisation and hand features of arbitrary bytes. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "text/text_features.h"
#include "text/text_normalize.h"

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
    return 0;
}
