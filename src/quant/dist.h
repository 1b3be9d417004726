/* Calibration split across processes (ptq_dist in ptq.h): which sequences this process runs, and the
 * collectives that combine what the processes gathered. With no ptq_dist (or one process) every helper
 * is the identity, so the single-process path does exactly what it did before. */
#ifndef PTQ_QUANT_DIST_H
#define PTQ_QUANT_DIST_H

#include <stdint.h>

#include "ptq.h"

static inline int ptq_dist_on(const ptq_dist *d) { return d && d->size > 1; }
/* This process's sequences of n: [*s0, *s1), whole chunks of `chunk` sequences each. The calibration
 * passes run a stream through a block `chunk` sequences at a time, and a block's output rows depend on
 * the batch they are computed in (at rounding level: GEMM blocking); with whole chunks every process
 * computes exactly the batches a single process would. May be empty when there are fewer chunks than
 * processes. */
void ptq_dist_share(const ptq_dist *d, int n, int chunk, int *s0, int *s1);
/* Sequences per batch of the calibration passes for windows of T tokens (4096 rows). */
static inline int ptq_calib_chunk(int T) { return 4096 / T > 0 ? 4096 / T : 1; }
/* Element-wise sum over the processes, in place. `what` names the statistic in an error. */
ptq_status ptq_dist_sum(const ptq_dist *d, double *buf, size_t n, const char *what, ptq_error *err);
/* Concatenation in rank order of each process's `n` bytes into all (room for cap bytes); *total: the bytes. */
ptq_status ptq_dist_gather(const ptq_dist *d, const void *mine, size_t n, void *all, size_t cap, size_t *total,
                           const char *what, ptq_error *err);
/* How many items the processes before this one hold (*before) and all of them (*total). */
ptq_status ptq_dist_offset(const ptq_dist *d, int64_t mine, int64_t *before, int64_t *total, ptq_error *err);
/* Gather per-item doubles: this process's items go to all[before .. before + n) of all[total]. */
ptq_status ptq_dist_gather_doubles(const ptq_dist *d, const double *mine, int n, double *all, int total,
                                   const char *what, ptq_error *err);

#endif
