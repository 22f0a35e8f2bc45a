#include "config.h"

#include "base/sha256.h"

#include <openssl/evp.h>
#include <stdio.h>

void cml_sha256_hex(const void *data, size_t len, char hex[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) != 1)
        md_len = 0;
    for (unsigned i = 0; i < md_len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[2 * md_len] = '\0';
}
