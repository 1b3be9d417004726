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
