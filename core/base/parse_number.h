/* Whole numbers from text (options, query parameters, headers): all of it, in range, or nothing. */
#ifndef CML_PARSE_NUMBER_H
#define CML_PARSE_NUMBER_H

#include <stdbool.h>

/*
 * All of s as a decimal integer (strtoll's syntax: leading blanks and a sign allowed, at least
 * one digit, nothing after) in lo..hi into *out; false (and *out untouched) otherwise.
 */
bool cml_parse_int(const char *s, long long lo, long long hi, long long *out);

/* The same for any unsigned 64-bit value; a text starting with '-' is refused. */
bool cml_parse_uint(const char *s, unsigned long long *out);

#endif
