/* Memory read-bandwidth probe (membw.h). The library is built for baseline x86-64: a plain loop
 * with one stream of SSE loads reached only ~38 GB/s where the machine reads ~55-70, so the sum is
 * compiled for AVX2 and AVX-512 too and picked at run time, and each thread reads 8 streams at once
 * (more memory requests in flight). */
#define _DEFAULT_SOURCE /* madvise, posix_memalign */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/cpu.h"
#include "kernels/membw.h"

#define SUM_KERNEL(fname, attr)                                               \
    attr static float fname(const float *a, size_t n) {                       \
        const size_t len = n / 8 / 16 * 16;                                   \
        float acc[8][16];                                                     \
        memset(acc, 0, sizeof acc);                                           \
        for (size_t i = 0; i < len; i += 16)                                  \
            for (int s = 0; s < 8; s++) {                                     \
                const float *p = a + (size_t)s * len + i;                     \
                for (int k = 0; k < 16; k++) acc[s][k] += p[k];               \
            }                                                                 \
        float t = 0.0f;                                                       \
        for (size_t i = 8 * len; i < n; i++) t += a[i];                       \
        for (int s = 0; s < 8; s++)                                           \
            for (int k = 0; k < 16; k++) t += acc[s][k];                      \
        return t;                                                             \
    }

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
SUM_KERNEL(sum_avx512, __attribute__((target("avx512f"))))
SUM_KERNEL(sum_avx2, __attribute__((target("avx2"))))
#define HAVE_X86 1
#endif
SUM_KERNEL(sum_plain, )

typedef float (*sum_fn)(const float *, size_t);

static sum_fn pick_sum(void) {
#ifdef HAVE_X86
    if (ptq_cpu_has(PTQ_CPU_AVX512F)) return sum_avx512;
    if (ptq_cpu_has(PTQ_CPU_AVX2)) return sum_avx2;
#endif
    return sum_plain;
}

double ptq_read_sum(const float *a, size_t n) {
    const sum_fn f = pick_sum();
    double total = 0.0;
#pragma omp parallel reduction(+ : total)
    {
        const size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
        const size_t per = n / nt / 64 * 64, b = per * id, e = id == nt - 1 ? n : b + per;
        total += f(a + b, e - b);
    }
    return total;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

ptq_status ptq_read_bandwidth(size_t bytes, int reps, double *gbs, ptq_error *err) {
    *gbs = 0.0;
    if (bytes < ((size_t)1 << 20) || reps < 1)
        return ptq_fail(err, PTQ_ERR_ARG, "read bandwidth probe: %zu bytes, %d passes; expected >= 1 MiB and >= 1",
                        bytes, reps);
    const size_t n = bytes / sizeof(float) / 64 * 64;
    /* in huge pages where the kernel grants them, as ptq_alloc gives the weights (core/alloc.h) */
    void *mem = NULL;
    if (posix_memalign(&mem, PTQ_HUGE_PAGE, n * sizeof(float)) != 0) mem = NULL;
    float *a = mem;
    if (a) madvise(a, n * sizeof(float) / PTQ_HUGE_PAGE * PTQ_HUGE_PAGE, MADV_HUGEPAGE);
    if (!a) return ptq_fail(err, PTQ_ERR_NOMEM, "read bandwidth probe: cannot allocate %zu bytes", bytes);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = (float)(i & 1023) * 0x1p-10f; /* each thread's pages are its own */
    volatile double sink = ptq_read_sum(a, n);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        const double t0 = now_s();
        sink = ptq_read_sum(a, n);
        const double t = now_s() - t0;
        if (t < best) best = t;
    }
    (void)sink;
    free(a);
    *gbs = (double)n * sizeof(float) / best / 1e9;
    return PTQ_OK;
}
