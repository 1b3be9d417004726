/* The machine's memory read bandwidth, measured the way a GEMV reads its weights: the yardstick
 * every GEMV / decode speed is reported against (bench/ programs and `ptq bench`), so that a number
 * is always a fraction of a bandwidth measured in the same run on the same machine. */
#ifndef PTQ_KERNELS_MEMBW_H
#define PTQ_KERNELS_MEMBW_H

#include <stddef.h>

#include "ptq.h"

/* Sum of a[0..n), all OpenMP threads each reading a contiguous share as 8 interleaved streams with
 * the widest vectors the CPU has (AVX-512, AVX2, else plain C). The result only keeps the reads
 * alive. */
double ptq_read_sum(const float *a, size_t n);

/* Best read bandwidth in GB/s (1e9 bytes/s) of `reps` timed passes of ptq_read_sum over a buffer of
 * `bytes` (after one warm-up pass; the buffer is allocated, touched by all threads and freed here).
 * 1 GiB is far beyond any cache. Errors: PTQ_ERR_NOMEM, PTQ_ERR_ARG (bytes < 1 MiB or reps < 1). */
ptq_status ptq_read_bandwidth(size_t bytes, int reps, double *gbs, ptq_error *err);

#endif
