/* Fuzz harness: the transcript parsers (WebVTT, SRT, Whisper JSON, plain), chosen by the first
 * byte, and the invariants of what they accept. */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/transcript.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    cml_transcript_format f = (cml_transcript_format)(data[0] % CML_TRANSCRIPT__MAX);
    cml_transcript *t = NULL;
    cml_diag d;
    cml_transcript_limits lim = {.max_segments = 1000};
    if (cml_transcript_parse((const char *)data + 1, size - 1, f, &lim, &t, &d) == CML_OK) {
        double prev = -1;
        for (size_t i = 0; i < t->n; i++) {
            const cml_segment *s = &t->segments[i];
            if (s->text == NULL || s->text[0] == '\0')
                abort(); /* an accepted segment always has text */
            if (t->timed && (!(s->end_s >= s->start_s) || s->start_s < prev))
                abort(); /* and times in order */
            prev = t->timed ? s->start_s : prev;
        }
        if (t->n > lim.max_segments)
            abort();
    }
    cml_transcript_free(t);
    return 0;
}
