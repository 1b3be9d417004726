/* Error reporting inside the library: every failing function fills a ptq_error and returns its status. */
#ifndef PTQ_CORE_ERROR_H
#define PTQ_CORE_ERROR_H
#include "ptq.h"

/* Set err (may be NULL) to status + formatted message; returns status so callers can `return ptq_fail(...)`. */
ptq_status ptq_fail(ptq_error *err, ptq_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing message with context ("loading model.safetensors: ..."). */
ptq_status ptq_fail_context(ptq_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Quote a piece of untrusted text (a line of a file...) for a message: printable ASCII and well-formed
 * printable UTF-8 characters kept, every other byte (control bytes, broken UTF-8) as '?', cut to fit cap
 * (with its NUL). */
void ptq_snippet(char *buf, size_t cap, const char *s, size_t n);

/* Logging through the optional callbacks. */
void ptq_log(const ptq_callbacks *cb, ptq_log_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void ptq_progress(const ptq_callbacks *cb, const char *what, int64_t done, int64_t total);

#define PTQ_TRY(expr)                       \
    do {                                    \
        ptq_status ptq_try_s_ = (expr);     \
        if (ptq_try_s_ != PTQ_OK) return ptq_try_s_; \
    } while (0)

#endif
