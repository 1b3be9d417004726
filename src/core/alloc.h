/* Checked allocation helpers. Sizes are validated against overflow before multiplying. */
#ifndef PTQ_CORE_ALLOC_H
#define PTQ_CORE_ALLOC_H
#include <stddef.h>
#include <stdint.h>
#include "ptq.h"

/* 64-byte aligned, zeroed; NULL on overflow or failure (err filled, naming `what`). From PTQ_HUGE_PAGE
 * bytes on, aligned to it and its whole 2 MB pages advised for transparent huge pages (decode streams the
 * weights; docs/RESULTS.md §21 has what it gained). */
#define PTQ_HUGE_PAGE ((size_t)2 << 20)
void *ptq_alloc(size_t count, size_t size, const char *what, ptq_error *err);
void ptq_free(void *p);
/* a*b*c with overflow detection; returns 0 on overflow (and sets *ok = 0). */
size_t ptq_mul3(size_t a, size_t b, size_t c, int *ok);
/* Size arithmetic on numbers read from a file: the product of n factors in 64 bits. Returns 1 and sets
 * *out when every factor is >= 0 and the product is at most limit; else returns 0 (*out untouched).
 * Use it before forming such a product in int, e.g. ptq_checked_product((int64_t[]){C, p, p}, 3, INT_MAX, &n). */
int ptq_checked_product(const int64_t *factors, int n, int64_t limit, int64_t *out);

#endif
