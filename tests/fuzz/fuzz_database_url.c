/* Fuzz harness: the database URL's password masking (cml_state_masked_url), into outputs of
 * every small size and one large, each NUL-terminated within its room. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state/shared_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *url = malloc(size + 1);
    if (url == NULL)
        return 0;
    memcpy(url, data, size);
    url[size] = '\0';
    char out[4096];
    for (size_t cap = 1; cap <= 24; cap++) {
        memset(out, 'X', sizeof out);
        cml_state_masked_url(url, out, cap);
        if (memchr(out, '\0', cap) == NULL || out[cap] != 'X')
            abort();
    }
    cml_state_masked_url(url, out, sizeof out);
    /* Masking never lengthens a URL by more than "***" per password it replaces. */
    if (strlen(out) > strlen(url) + 3 * (strlen(url) / 8 + 1))
        abort();
    free(url);
    return 0;
}
