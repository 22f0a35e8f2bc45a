/* What the blob client's files share (not public): string helpers of blob_client.c. */
#ifndef CML_BLOB_CLIENT_INTERNAL_H
#define CML_BLOB_CLIENT_INTERNAL_H

#include <stddef.h>

#include "base/byte_buffer.h"

/* Copies n bytes of src into dst of cap bytes (truncating), NUL-terminated. */
void blob_copy_str(char *dst, size_t cap, const char *src, size_t n);
/* The buffer's bytes as a NUL-terminated string the caller owns; NULL (b released) on failure. */
char *blob_buf_take_str(cml_buf *b);

#endif
