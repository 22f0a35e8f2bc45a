#include "config.h"

#include "base/parse_number.h"

#include <errno.h>
#include <stdlib.h>

bool cml_parse_int(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    if (s == NULL)
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

bool cml_parse_uint(const char *s, unsigned long long *out) {
    char *end;
    if (s == NULL || s[0] == '-')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return false;
    *out = v;
    return true;
}
