/* Helpers over the process split of calibration (dist.h). */
#include "quant/dist.h"

#include <string.h>

#include "core/error.h"

void ptq_dist_share(const ptq_dist *d, int n, int chunk, int *s0, int *s1) {
    if (!ptq_dist_on(d)) {
        *s0 = 0, *s1 = n;
        return;
    }
    int64_t chunks = (n + (int64_t)chunk - 1) / chunk;
    int64_t c0 = chunks * d->rank / d->size, c1 = chunks * (d->rank + 1) / d->size;
    *s0 = (int)(c0 * chunk < n ? c0 * chunk : n);
    *s1 = (int)(c1 * chunk < n ? c1 * chunk : n);
}

ptq_status ptq_dist_sum(const ptq_dist *d, double *buf, size_t n, const char *what, ptq_error *err) {
    if (!ptq_dist_on(d) || n == 0) return PTQ_OK;
    if (d->sum(d->user, buf, n) != 0)
        return ptq_fail(err, PTQ_ERR_CALLBACK, "summing %s (%zu values) across %d processes failed", what, n, d->size);
    return PTQ_OK;
}

ptq_status ptq_dist_gather(const ptq_dist *d, const void *mine, size_t n, void *all, size_t cap, size_t *total,
                           const char *what, ptq_error *err) {
    if (!ptq_dist_on(d)) {
        if (n > cap) return ptq_fail(err, PTQ_ERR_ARG, "gathering %s: %zu bytes, room for %zu", what, n, cap);
        if (n && all != mine) memmove(all, mine, n);
        *total = n;
        return PTQ_OK;
    }
    if (d->gather(d->user, mine, n, all, cap, total) != 0)
        return ptq_fail(err, PTQ_ERR_CALLBACK, "gathering %s across %d processes failed (room for %zu bytes)", what, d->size,
                        cap);
    return PTQ_OK;
}

ptq_status ptq_dist_offset(const ptq_dist *d, int64_t mine, int64_t *before, int64_t *total, ptq_error *err) {
    *before = 0, *total = mine;
    if (!ptq_dist_on(d)) return PTQ_OK;
    /* a vector with this process's count at its rank: summed, every process sees all counts */
    double v[1024];
    if (d->size > 1024) return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "at most 1024 processes (got %d)", d->size);
    memset(v, 0, (size_t)d->size * sizeof *v);
    v[d->rank] = (double)mine;
    PTQ_TRY(ptq_dist_sum(d, v, (size_t)d->size, "item counts", err));
    *total = 0;
    for (int r = 0; r < d->size; r++) {
        if (r == d->rank) *before = *total;
        *total += (int64_t)v[r];
    }
    return PTQ_OK;
}

ptq_status ptq_dist_gather_doubles(const ptq_dist *d, const double *mine, int n, double *all, int total,
                                   const char *what, ptq_error *err) {
    size_t got = 0;
    PTQ_TRY(ptq_dist_gather(d, mine, (size_t)n * sizeof *mine, all, (size_t)total * sizeof *all, &got, what, err));
    if (got != (size_t)total * sizeof *all)
        return ptq_fail(err, PTQ_ERR_CALLBACK, "gathering %s: %zu values arrived, %d expected", what, got / sizeof *all, total);
    return PTQ_OK;
}
