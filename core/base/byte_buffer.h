/*
 * Growable little-endian byte buffer for serialisation, and a bounds-checked
 * reader: every read past the end fails instead of reading garbage.
 */
#ifndef CML_BYTE_BUFFER_H
#define CML_BYTE_BUFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/cml_error.h"

typedef struct cml_buf {
    uint8_t *data; /* owned; hand over with cml_buf_take */
    size_t len, cap;
    bool failed; /* sticky: set by the first failed append */
} cml_buf;

void cml_buf_put(cml_buf *b, const void *p, size_t n);
void cml_buf_put_u8(cml_buf *b, uint8_t v);
void cml_buf_put_u32(cml_buf *b, uint32_t v);
void cml_buf_put_u64(cml_buf *b, uint64_t v);
void cml_buf_put_f32(cml_buf *b, float v);
void cml_buf_put_f64(cml_buf *b, double v);
/* A u32 length followed by the bytes. */
void cml_buf_put_str(cml_buf *b, const char *s);
void cml_buf_put_blob(cml_buf *b, const void *p, size_t n);
/* CML_OK, or CML_ERR_NOMEM if any append failed. */
cml_err cml_buf_status(const cml_buf *b);
/* Gives the data to the caller (cml_free) and empties b. */
uint8_t *cml_buf_take(cml_buf *b, size_t *len);
void cml_buf_release(cml_buf *b);

typedef struct cml_reader {
    const uint8_t *p;
    size_t left;
    bool failed; /* sticky: set by the first read past the end */
} cml_reader;

static inline cml_reader cml_reader_init(const void *p, size_t n) {
    return (cml_reader){.p = p, .left = n, .failed = false};
}
uint8_t cml_read_u8(cml_reader *r);
uint32_t cml_read_u32(cml_reader *r);
uint64_t cml_read_u64(cml_reader *r);
float cml_read_f32(cml_reader *r);
double cml_read_f64(cml_reader *r);
/* Points into the reader's memory (not copied); NULL when short. */
const void *cml_read_bytes(cml_reader *r, size_t n);
/* A u32-length blob; *n gets its length. NULL when short. */
const void *cml_read_blob(cml_reader *r, size_t *n);
/* A u32-length string as a new NUL-terminated copy (caller frees); NULL when short. */
char *cml_read_str(cml_reader *r);

#endif
