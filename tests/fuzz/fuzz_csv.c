/* Fuzz harness: the CSV reader and, on what it accepts, the writer round trip. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "learn/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cml_dataset *ds = NULL;
    cml_diag d;
    cml_csv_options opts = {.min_labels = 1, .min_rows = 1};
    if (cml_csv_parse((const char *)data, size, &opts, &ds, &d) == CML_OK) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        cml_csv_write(f, ds);
        fclose(f);
        cml_dataset *back = NULL;
        if (cml_csv_parse(buf, len, &opts, &back, &d) != CML_OK || back->n != ds->n)
            abort(); /* what was written must read back the same */
        cml_dataset_free(back);
        free(buf);
    }
    cml_dataset_free(ds);
    return 0;
}
