#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *ptq_status_name(ptq_status s) {
    switch (s) {
    case PTQ_OK: return "ok";
    case PTQ_ERR_IO: return "I/O error";
    case PTQ_ERR_FORMAT: return "format error";
    case PTQ_ERR_CONFIG: return "config error";
    case PTQ_ERR_UNSUPPORTED: return "unsupported";
    case PTQ_ERR_ARG: return "bad argument";
    case PTQ_ERR_NOMEM: return "out of memory";
    case PTQ_ERR_NUMERIC: return "numeric error";
    case PTQ_ERR_CALLBACK: return "stopped by callback";
    }
    return "unknown status";
}

const char *ptq_version(void) { return PTQ_VERSION_STRING; }

ptq_status ptq_fail(ptq_error *err, ptq_status status, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}

ptq_status ptq_fail_context(ptq_error *err, const char *fmt, ...) {
    if (!err) return PTQ_ERR_ARG;
    char prefix[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof err->msg - 3) n = sizeof err->msg - 3;
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    size_t rest = sizeof err->msg - n - 3, ol = strlen(old);
    if (ol > rest) ol = rest;
    memcpy(err->msg + n + 2, old, ol);
    err->msg[n + 2 + ol] = 0;
    return err->status;
}

void ptq_log(const ptq_callbacks *cb, ptq_log_level level, const char *fmt, ...) {
    if (!cb || !cb->log) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    cb->log(cb->user, level, buf);
}

void ptq_progress(const ptq_callbacks *cb, const char *what, int64_t done, int64_t total) {
    if (cb && cb->progress) cb->progress(cb->user, what, done, total);
}

/* Length of a well-formed UTF-8 sequence at s (at most n bytes) for a printable code point (not a C1
 * control, surrogate or overlong form); 0 otherwise. */
static size_t utf8_printable(const unsigned char *s, size_t n) {
    size_t len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 0;
    if (len == 0 || len > n || s[0] >= 0xF5) return 0;
    unsigned cp = s[0] & (0x7Fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    static const unsigned min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp < 0xA0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
    return len;
}

void ptq_snippet(char *buf, size_t cap, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t j = 0;
    for (size_t i = 0; i < n && j + 1 < cap;) {
        size_t k = u[i] >= 0x80 ? utf8_printable(u + i, n - i) : 0;
        if (k && j + k < cap) { /* a whole printable UTF-8 character */
            memcpy(buf + j, s + i, k);
            j += k;
            i += k;
            continue;
        }
        buf[j++] = (u[i] >= 0x20 && u[i] < 0x7f) ? (char)u[i] : '?';
        i += k ? k : 1;
    }
    if (cap) buf[j] = 0;
}
