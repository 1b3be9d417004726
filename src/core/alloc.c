#define _DEFAULT_SOURCE /* madvise, posix_memalign */
#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/error.h"

size_t ptq_mul3(size_t a, size_t b, size_t c, int *ok) {
    if ((b && a > SIZE_MAX / b) || (c && a * b > SIZE_MAX / c)) {
        if (ok) *ok = 0;
        return 0;
    }
    return a * b * c;
}

int ptq_checked_product(const int64_t *factors, int n, int64_t limit, int64_t *out) {
    int64_t prod = 1;
    for (int i = 0; i < n; i++) {
        if (factors[i] < 0) return 0;
        if (factors[i] == 0) prod = 0;
    }
    for (int i = 0; i < n && prod != 0; i++) {
        if (prod > limit / factors[i]) return 0;
        prod *= factors[i];
    }
    if (prod > limit) return 0;
    *out = prod;
    return 1;
}

void *ptq_alloc(size_t count, size_t size, const char *what, ptq_error *err) {
    int ok = 1;
    size_t bytes = ptq_mul3(count, size, 1, &ok);
    if (!ok) {
        ptq_fail(err, PTQ_ERR_NOMEM, "%s: size %zu x %zu overflows", what, count, size);
        return NULL;
    }
    if (bytes == 0) bytes = 64;
    const size_t rounded = (bytes + 63) & ~(size_t)63;
    void *p;
    if (bytes >= PTQ_HUGE_PAGE) {
        /* Weights stream through decoding once per token: in 2 MB pages the TLB covers them (4 KB pages
         * miss every 64 cache lines). Advice only, for the whole 2 MB pages of the block (the tail stays in
         * small pages, so no memory is wasted): the kernel gives huge pages where it can (THP "madvise" or
         * "always"). */
        if (posix_memalign(&p, PTQ_HUGE_PAGE, rounded) != 0) p = NULL; /* aligned_alloc wants whole pages */
        if (p) madvise(p, rounded / PTQ_HUGE_PAGE * PTQ_HUGE_PAGE, MADV_HUGEPAGE);
    } else {
        p = aligned_alloc(64, rounded);
    }
    if (!p) {
        ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate %zu bytes", what, bytes);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

void ptq_free(void *p) { free(p); }
