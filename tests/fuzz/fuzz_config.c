/* Fuzz harness: the configuration file parser (through a temporary file). */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ops/service_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (path[0] == '\0')
        snprintf(path, sizeof path, "/tmp/cml-fuzz-config.%ld", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    cml_config cfg;
    cml_diag d;
    if (cml_config_load(&cfg, path, false, &d) == CML_OK)
        cml_config_release(&cfg);
    unlink(path);
    return 0;
}
