#include "config.h"

#include "base/cml_alloc.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* malloc_usable_size keeps the count exact without a size header. */
static _Atomic size_t cml_bytes_in_use;

static void *account(void *p) {
    if (p != NULL)
        atomic_fetch_add_explicit(&cml_bytes_in_use, malloc_usable_size(p), memory_order_relaxed);
    return p;
}

void *cml_malloc(size_t size) { return account(malloc(size ? size : 1)); }

void *cml_calloc(size_t count, size_t size) {
    return account(calloc(count ? count : 1, size ? size : 1));
}

void *cml_realloc(void *ptr, size_t size) {
    size_t old = ptr ? malloc_usable_size(ptr) : 0;
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL)
        return NULL;
    atomic_fetch_sub_explicit(&cml_bytes_in_use, old, memory_order_relaxed);
    return account(p);
}

void *cml_realloc_array(void *ptr, size_t count, size_t size) {
    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    size_t bytes = count * size; /* checked above */
    return cml_realloc(ptr, bytes);
}

char *cml_strdup(const char *s) { return s ? cml_strndup(s, strlen(s)) : NULL; }

char *cml_strndup(const char *s, size_t n) {
    if (s == NULL)
        return NULL;
    size_t len = strnlen(s, n);
    char *d = cml_malloc(len + 1);
    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

void cml_free(void *ptr) {
    if (ptr == NULL)
        return;
    atomic_fetch_sub_explicit(&cml_bytes_in_use, malloc_usable_size(ptr), memory_order_relaxed);
    free(ptr);
}

size_t cml_alloc_in_use(void) {
    return atomic_load_explicit(&cml_bytes_in_use, memory_order_relaxed);
}
