/*
 * Fuzz harness: the Open Inference Protocol inference request parser. The input is the body;
 * its first 0xFF byte (never part of UTF-8 JSON) ends the JSON header, as
 * Inference-Header-Content-Length does, and what follows is binary tensor data.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/oip_tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *cut = memchr(data, 0xFF, size);
    size_t json_len = cut ? (size_t)(cut - data) : size;
    cml_oip_infer req;
    cml_diag d;
    if (cml_oip_parse_infer((const char *)data, size, json_len, 1000, &req, &d) == CML_OK) {
        /* Every text a parsed request holds is a readable NUL-terminated string. */
        if (req.n == 0 || req.n > 1000)
            abort();
        for (size_t i = 0; i < req.n; i++)
            if (req.texts[i] == NULL || strlen(req.texts[i]) > size)
                abort();
    }
    cml_oip_infer_release(&req);
    return 0;
}
