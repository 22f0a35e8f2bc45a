#include "config.h"

#include "ops/service_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static cml_log_level threshold = CML_LOG_INFO;
static bool json_lines;

void cml_log_configure(cml_log_level level, cml_log_format format) {
    threshold = level;
    json_lines = format == CML_LOG_JSON;
}

bool cml_log_enabled(cml_log_level level) { return level >= threshold; }

/* Appends value to buf with escaping for the chosen format; returns the new length. */
static size_t put_value(char *buf, size_t len, size_t cap, const char *v) {
    bool quote = json_lines || *v == '\0' || strpbrk(v, " =\"\\\t\n\r") != NULL;
    if (quote && len + 1 < cap)
        buf[len++] = '"';
    for (; *v && len + 7 < cap; v++) {
        unsigned char c = (unsigned char)*v;
        if (c == '"' || c == '\\') {
            buf[len++] = '\\';
            buf[len++] = (char)c;
        } else if (c < 0x20) {
            len += (size_t)snprintf(buf + len, cap - len, "\\u%04x", c);
        } else {
            buf[len++] = (char)c;
        }
    }
    if (quote && len + 1 < cap)
        buf[len++] = '"';
    return len;
}

static size_t put_pair(char *buf, size_t len, size_t cap, const char *k, const char *v,
                       bool first) {
    if (json_lines)
        len += (size_t)snprintf(buf + len, cap - len, "%s\"%s\":", first ? "" : ",", k);
    else
        len += (size_t)snprintf(buf + len, cap - len, "%s%s=", first ? "" : " ", k);
    return len < cap ? put_value(buf, len, cap, v) : len;
}

void cml_log(cml_log_level level, const char *event, ...) {
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (level < threshold)
        return;
    char buf[4096], ts[40], pid[16];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    size_t len = 0, cap = sizeof buf - 2;
    if (json_lines)
        buf[len++] = '{';
    len = put_pair(buf, len, cap, "ts", ts, true);
    len = put_pair(buf, len, cap, "level", names[level], false);
    len = put_pair(buf, len, cap, "event", event, false);
    len = put_pair(buf, len, cap, "pid", pid, false);
    va_list ap;
    va_start(ap, event);
    const char *k;
    while ((k = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);
        size_t before = len;
        len = put_pair(buf, len, cap, k, v ? v : "", false);
        /* A pair that did not fit is dropped whole (snprintf cut it mid-way), and so is the rest.
         */
        if (len >= cap - 1) {
            len = before;
            break;
        }
    }
    va_end(ap);
    if (json_lines)
        buf[len++] = '}';
    buf[len++] = '\n';
    /* One write per line so lines from threads and processes never interleave. */
    ssize_t w = write(STDERR_FILENO, buf, len);
    (void)w;
}
