/* SHA-256 as lowercase hex. */
#ifndef CML_SHA256_H
#define CML_SHA256_H

#include <stddef.h>

/* Lower-case hex SHA-256 of data into hex[65]. */
void cml_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
