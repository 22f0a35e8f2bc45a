#include "config.h"

#include "base/byte_buffer.h"

#include <string.h>

#include "base/cml_alloc.h"

void cml_buf_put(cml_buf *b, const void *p, size_t n) {
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *d = cml_realloc(b->data, cap);
        if (d == NULL) {
            b->failed = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

void cml_buf_put_u8(cml_buf *b, uint8_t v) { cml_buf_put(b, &v, 1); }

void cml_buf_put_u32(cml_buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    cml_buf_put(b, x, 4);
}

void cml_buf_put_u64(cml_buf *b, uint64_t v) {
    cml_buf_put_u32(b, (uint32_t)v);
    cml_buf_put_u32(b, (uint32_t)(v >> 32));
}

void cml_buf_put_f32(cml_buf *b, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    cml_buf_put_u32(b, u);
}

void cml_buf_put_f64(cml_buf *b, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    cml_buf_put_u64(b, u);
}

void cml_buf_put_blob(cml_buf *b, const void *p, size_t n) {
    if (n > UINT32_MAX) {
        b->failed = true;
        return;
    }
    cml_buf_put_u32(b, (uint32_t)n);
    cml_buf_put(b, p, n);
}

void cml_buf_put_str(cml_buf *b, const char *s) { cml_buf_put_blob(b, s, s ? strlen(s) : 0); }

cml_err cml_buf_status(const cml_buf *b) { return b->failed ? CML_ERR_NOMEM : CML_OK; }

uint8_t *cml_buf_take(cml_buf *b, size_t *len) {
    uint8_t *d = b->data;
    *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

void cml_buf_release(cml_buf *b) {
    cml_free(b->data);
    memset(b, 0, sizeof(*b));
}

const void *cml_read_bytes(cml_reader *r, size_t n) {
    if (r->failed || n > r->left) {
        r->failed = true;
        return NULL;
    }
    const void *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

uint8_t cml_read_u8(cml_reader *r) {
    const uint8_t *p = cml_read_bytes(r, 1);
    return p ? p[0] : 0;
}

uint32_t cml_read_u32(cml_reader *r) {
    const uint8_t *p = cml_read_bytes(r, 4);
    return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
             : 0;
}

uint64_t cml_read_u64(cml_reader *r) {
    uint64_t lo = cml_read_u32(r);
    uint64_t hi = cml_read_u32(r);
    return lo | hi << 32;
}

float cml_read_f32(cml_reader *r) {
    uint32_t u = cml_read_u32(r);
    float v;
    memcpy(&v, &u, 4);
    return v;
}

double cml_read_f64(cml_reader *r) {
    uint64_t u = cml_read_u64(r);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

const void *cml_read_blob(cml_reader *r, size_t *n) {
    uint32_t len = cml_read_u32(r);
    const void *p = cml_read_bytes(r, len);
    *n = p ? len : 0;
    return p;
}

char *cml_read_str(cml_reader *r) {
    size_t n;
    const char *p = cml_read_blob(r, &n);
    if (p == NULL)
        return NULL;
    if (memchr(p, '\0', n) != NULL) {
        r->failed = true;
        return NULL;
    }
    return cml_strndup(p, n);
}
