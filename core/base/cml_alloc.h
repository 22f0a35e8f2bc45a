/*
 * The one allocation wrapper: every heap byte the project owns goes through
 * here so /metrics and the benchmarks can count it. Libraries (XGBoost, FANN,
 * liblinear, json-c) allocate on their own and are not counted.
 */
#ifndef CML_ALLOC_H
#define CML_ALLOC_H

#include <stddef.h>

/* Like malloc/calloc/realloc/strdup; NULL on failure or overflow. */
void *cml_malloc(size_t size);
void *cml_calloc(size_t count, size_t size);
void *cml_realloc(void *ptr, size_t size);
/* cml_realloc of count * size bytes; NULL (ptr untouched) when the product overflows. */
void *cml_realloc_array(void *ptr, size_t count, size_t size);
/* Returns a new allocation the caller owns, or NULL. */
char *cml_strdup(const char *s);
char *cml_strndup(const char *s, size_t n);
/* Accepts NULL. */
void cml_free(void *ptr);

/* Bytes currently allocated through this wrapper, all threads. */
size_t cml_alloc_in_use(void);

#endif
