/* Fuzz harness: model file loading must refuse damage, never crash or half-load. */
#include "config.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Half of the inputs get a valid trailing SHA-256 recomputed, so the fuzzer
 * reaches the section parsers instead of stopping at the checksum.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cml_model *m = NULL;
    cml_diag d;
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    if (size >= 48 && (data[size / 2] & 1)) {
        unsigned int n = 0;
        EVP_Digest(copy, size - 32, copy + size - 32, &n, EVP_sha256(), NULL);
    }
    if (cml_model_deserialize(copy, size, &m, &d) == CML_OK && m == NULL)
        abort();
    cml_model_release(m);
    free(copy);
    return 0;
}
