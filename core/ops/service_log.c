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
    /* The separator, key and '=' or '":' copied by hand (snprintf showed in profiles); a key
     * that does not fit leaves len at cap, as snprintf's count did. */
    size_t klen = strlen(k), need = (first ? 0 : 1) + klen + (json_lines ? 3 : 1);
    if (len + need >= cap)
        return len + need;
    if (!first)
        buf[len++] = json_lines ? ',' : ' ';
    if (json_lines)
        buf[len++] = '"';
    memcpy(buf + len, k, klen);
    len += klen;
    if (json_lines)
        buf[len++] = '"';
    buf[len++] = json_lines ? ':' : '=';
    return put_value(buf, len, cap, v);
}

/* The second's part of the timestamp, formatted once a second per thread. */
static size_t put_time(char *ts, size_t cap, const struct timeval *tv) {
    static __thread time_t cached_sec = (time_t)-1;
    static __thread char cached[32];
    static __thread size_t cached_len;
    if (tv->tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&tv->tv_sec, &tm);
        cached_len = strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
        cached_sec = tv->tv_sec;
    }
    memcpy(ts, cached, cached_len);
    long ms = (long)(tv->tv_usec / 1000);
    ts[cached_len] = '.';
    ts[cached_len + 1] = (char)('0' + ms / 100);
    ts[cached_len + 2] = (char)('0' + ms / 10 % 10);
    ts[cached_len + 3] = (char)('0' + ms % 10);
    ts[cached_len + 4] = 'Z';
    ts[cached_len + 5] = '\0';
    (void)cap;
    return cached_len + 5;
}

/* The process id as text, formatted again only after a fork (the supervisor's workers). */
static const char *pid_text(void) {
    static __thread pid_t cached_pid;
    static __thread char text[16];
    pid_t p = getpid();
    if (p != cached_pid) {
        snprintf(text, sizeof text, "%ld", (long)p);
        cached_pid = p;
    }
    return text;
}

void cml_log(cml_log_level level, const char *event, ...) {
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (level < threshold)
        return;
    char buf[4096], ts[40];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    put_time(ts, sizeof ts, &tv);
    const char *pid = pid_text();
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
