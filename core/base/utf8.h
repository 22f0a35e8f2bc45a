/* UTF-8 validation (shortest forms, no surrogates, at most U+10FFFF). */
#ifndef CML_UTF8_H
#define CML_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..len) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
bool cml_utf8_valid(const char *s, size_t len);

#endif
