/* Fuzz harness: the Azure Storage connection string parser (NUL-terminated copy of the input). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "azure/azure_connection.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    cml_az_conn *c = NULL;
    cml_diag d;
    if (cml_az_conn_parse(text, &c, &d) == CML_OK && c == NULL)
        abort();
    cml_az_conn_free(c);
    free(text);
    return 0;
}
