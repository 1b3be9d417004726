/* Quantized GEMV/GEMM benchmark: how close the fused low-bit kernels get to the memory bandwidth
 * measured in the same run, and how much faster they are than float sgemv on the same shape.
 *
 *   bench_qgemv [--json] [--quick] [--gemv-only | --gemm-only]
 *   env PTQ_ISA=scalar|avx2|avx512 measures that ISA only (the library itself never reads the
 *   environment: the ISA is an argument of ptq_qgemm_isa / ptq_qgemm_path_isa).
 *
 * 1. machine read bandwidth: OpenMP sum over a 1 GiB buffer, best of 5;
 * 2. for 4096x4096 and 11008x4096 (out x in), one input row (decoding):
 *    float cblas_sgemv, then W4 g32, W8 per-channel and W8 g128 through each ISA's fused kernel.
 *    "cold": every call reads a different copy of the weights (copies adding up to more than the
 *    caches), as when a model's layers stream from memory one after another; "hot": the same copy
 *    again and again (it may sit in cache; reported for reference only).
 *    Effective GB/s = bytes of codes + fp16 scales + uint8 zeros per call / time; the fraction is
 *    against the read bandwidth of step 1; the speed-up is against cold float sgemv.
 *    "a8-<isa>": the same weights with int8 activations (qgemv_a8.h); --decode times only the best float
 *    ISA and the a8 kernels for W8 per channel / g32, W4 g32 / g128, W3 g32, W2 g32 and W5-W7 g32 (5-7-bit
 *    codes stored tightly) on the issue's
 *    shapes 4096x14336 and 14336x4096, re-measuring the read bandwidth beside each format (the
 *    fraction is against that number; the load average is printed with it). --fmt NAME: one format.
 * 3. 64 input rows (--rows N; prefill): cblas_sgemm on the float matrix vs the tiled quantized GEMM, both
 *    threading strategies (parallel 64-row tiles with single-threaded sgemm; 256-row tiles with a
 *    parallel dequantize and threaded sgemm), and at 4..32 rows the fused GEMV path vs the tiled
 *    one (where ptq_qgemm_min_rows() should be).
 * --thp: the weight copies advised for transparent huge pages (madvise), to see what TLB misses cost.
 * --sym: symmetric weights, no zero points stored (every one 2^(bits-1), read from one shared row: qweight.h).
 * --shape OUTxIN (with --decode): that one shape instead of the two above (e.g. 5632x2048, TinyLlama's gate/up).
 * --tiles [--shape OUTxIN] [--fmt NAME] [--sym]: the AVX-512 decode kernel reading its rows one at a time, in
 * adjacent pairs and in pairs from the two halves of each thread's rows, the AVX-VNNI kernel, the plain read and (2 bits
 * on a GFNI CPU) the AVX-512 kernel without GFNI, alternated pass by pass in one process (docs/RESULTS.md §25, §26).
 * --paired [--shape OUTxIN] [--fmt NAME] [--sym]: the probe, the dispatcher's int8-activation kernel and the plain
 * read alternated pass by pass; the median of kernel / probe over the passes (each pass's own probe beside it).
 * --decode also times "stream": the same bytes read one row at a time with the kernels' prefetch and no arithmetic
 * (AVX2): what that access pattern streams here (the kernels' split order can stream more).
 * On a machine shared with other busy processes run it with OMP_WAIT_POLICY=passive.
 *
 * The table goes to stdout; with --json it goes to stderr and stdout gets one JSON object.
 */
#define _DEFAULT_SOURCE /* madvise */
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "bench_common.h"
#include "io/safetensors.h"
#include "kernels/cpu.h"
#include "kernels/membw.h"
#include "kernels/qgemm_impl.h"
#include "kernels/qgemv_a8.h"
#include "kernels/qweight.h"

/* ---------------------------------------------------------------- results: table + JSON */

static bench_results g_res;
static FILE *g_tab; /* where the table goes */

static void rec(const char *key, double v) { bench_rec(&g_res, key, v); }

static void progress(const char *msg) {
    fprintf(stderr, "[bench_qgemv] %s\n", msg);
    fflush(stderr);
}

/* ---------------------------------------------------------------- data */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void fill_bytes(uint8_t *p, size_t n, uint64_t seed) {
    const size_t chunk = (size_t)1 << 16;
    const long nchunks = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static)
    for (long c = 0; c < nchunks; c++) {
        uint64_t s = seed * 0x100000001B3ULL + (uint64_t)c;
        size_t end = ((size_t)c + 1) * chunk < n ? ((size_t)c + 1) * chunk : n;
        for (size_t i = (size_t)c * chunk; i < end; i += 8) {
            uint64_t r = splitmix(&s);
            size_t m = end - i < 8 ? end - i : 8;
            memcpy(p + i, &r, m);
        }
    }
}

static void fill_floats(float *p, size_t n, uint64_t seed) {
    const size_t chunk = (size_t)1 << 16;
    const long nchunks = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static)
    for (long c = 0; c < nchunks; c++) {
        uint64_t s = seed * 0x100000001B3ULL + (uint64_t)c;
        size_t end = ((size_t)c + 1) * chunk < n ? ((size_t)c + 1) * chunk : n;
        for (size_t i = (size_t)c * chunk; i < end; i++)
            p[i] = (float)(splitmix(&s) >> 40) * (2.0f / 16777216.0f) - 1.0f;
    }
}

/* --thp: the weight copies in 2 MB-aligned memory advised for transparent huge pages (fewer TLB misses while
 * streaming; the kernel decides whether it grants them). */
static int g_thp;
static int g_sym; /* --sym */
static void *big_alloc(size_t bytes) {
    if (!g_thp) return aligned_alloc(64, (bytes + 63) / 64 * 64);
    const size_t huge = (size_t)2 << 20, n = (bytes + huge - 1) / huge * huge;
    void *p = aligned_alloc(huge, n);
    if (p) madvise(p, n, MADV_HUGEPAGE);
    return p;
}

/* The shared probe (src/kernels/membw.h): 1 GiB, best of 5 passes. */
static double read_bandwidth(void) {
    double gbs = NAN;
    ptq_error err;
    if (ptq_read_bandwidth((size_t)1 << 30, 5, &gbs, &err) != PTQ_OK) {
        fprintf(stderr, "bench_qgemv: %s\n", err.msg);
        return NAN;
    }
    return gbs;
}

/* ---------------------------------------------------------------- quantized weight copies */

#define COLD_BYTES ((size_t)1 << 30) /* copies add up to at least this: more than the caches */

typedef struct {
    int ncopies;
    ptq_qweight *w; /* [ncopies], sharing the pools below */
    uint8_t *codes, *zeros, *zero_row;
    uint16_t *scales;
    size_t bytes; /* packed bytes of one copy */
} qset;

static int make_qset(qset *qs, int bits, int out, int in, int group, int max_copies) {
    memset(qs, 0, sizeof *qs);
    const int ng = (in + group - 1) / group;
    const size_t rb = ptq_qweight_row_bytes(bits, in);
    const size_t nc = (size_t)out * rb, ns = (size_t)out * (size_t)ng;
    qs->bytes = nc + ns * (g_sym ? 2 : 3);
    int k = (int)((COLD_BYTES + qs->bytes - 1) / qs->bytes);
    if (k > max_copies) k = max_copies;
    if (k < 1) k = 1;
    qs->ncopies = k;
    qs->w = calloc((size_t)k, sizeof(ptq_qweight));
    qs->codes = big_alloc(nc * (size_t)k);
    qs->scales = big_alloc(ns * (size_t)k * 2);
    qs->zeros = big_alloc(ns * (size_t)k);
    qs->zero_row = malloc((size_t)ng);
    if (!qs->w || !qs->codes || !qs->scales || !qs->zeros || !qs->zero_row) return -1;
    memset(qs->zero_row, 1 << (bits - 1), (size_t)ng);
    fill_bytes(qs->codes, nc * (size_t)k, 11);
    fill_bytes(qs->zeros, ns * (size_t)k, 13);
    const uint8_t zmask = (uint8_t)((1u << bits) - 1u);
    for (size_t i = 0; i < ns * (size_t)k; i++) {
        qs->zeros[i] &= zmask;
        qs->scales[i] = ptq_f32_to_f16(0.01f + 0.001f * (float)(i % 17));
    }
    for (int c = 0; c < k; c++) {
        ptq_qweight *w = &qs->w[c];
        w->bits = bits;
        w->in = in;
        w->out = out;
        w->group = group;
        w->n_groups = ng;
        w->row_bytes = rb;
        w->codes = qs->codes + nc * (size_t)c;
        w->scales = qs->scales + ns * (size_t)c;
        w->zeros = g_sym ? NULL : qs->zeros + ns * (size_t)c;
        w->zero_row = qs->zero_row;
        w->perm = NULL;
    }
    return 0;
}

static void free_qset(qset *qs) {
    free(qs->w);
    free(qs->codes);
    free(qs->scales);
    free(qs->zeros);
    free(qs->zero_row);
}

/* ---------------------------------------------------------------- timing loops */

/* The int8-activation GEMV (qgemv_a8.h), timed beside the paths of ptq_qgemm_path_isa. */
#define PATH_A8 ((ptq_qgemm_path)100)
/* No arithmetic: the same bytes read in the same order as the decode GEMV (codes and scales of each weight row, zero
 * points if stored, rows split into contiguous halves between the threads, the kernels' prefetch at each 512-column
 * superblock): the most a kernel could stream with this layout and access pattern on this machine. */
#define PATH_STREAM ((ptq_qgemm_path)101)

__attribute__((target("avx2"))) static uint64_t stream_rows_avx2(const ptq_qweight *w, int o0, int o1) {
    __m256i acc = _mm256_setzero_si256();
    const size_t cb = 4u * (size_t)w->bits, sb = (size_t)PTQ_A8_SUPER * cb; /* code bytes of a chunk, superblock */
    const int nch = (int)(w->row_bytes / cb), cpg = w->group % PTQ_QCHUNK == 0 ? w->group / PTQ_QCHUNK : nch;
    for (int o = o0; o < o1; o++) {
        const uint8_t *p = w->codes + (size_t)o * w->row_bytes;
        for (size_t s = 0; s * sb < w->row_bytes; s++) { /* as the kernels: prefetch at each superblock */
            const int c0 = (int)s * PTQ_A8_SUPER;
            ptq_a8_prefetch_super(w, o, c0, c0 / cpg, (int)s);
            const size_t end = (s + 1) * sb < w->row_bytes ? (s + 1) * sb : w->row_bytes;
            for (size_t b = s * sb; b + 32 <= end; b += 32)
                acc = _mm256_add_epi64(acc, _mm256_loadu_si256((const __m256i *)(p + b)));
        }
        const uint8_t *sc = (const uint8_t *)(w->scales + (size_t)o * (size_t)w->n_groups);
        for (size_t b = 0; b + 32 <= 2u * (size_t)w->n_groups; b += 32)
            acc = _mm256_add_epi64(acc, _mm256_loadu_si256((const __m256i *)(sc + b)));
        if (w->zeros)
            for (size_t b = 0; b + 32 <= (size_t)w->n_groups; b += 32)
                acc = _mm256_add_epi64(acc, _mm256_loadu_si256((const __m256i *)(w->zeros + (size_t)o * w->n_groups + b)));
    }
    uint64_t t[4];
    _mm256_storeu_si256((__m256i *)t, acc);
    return t[0] + t[1] + t[2] + t[3];
}

static void stream_read(const ptq_qweight *w, float *y) {
#pragma omp parallel
    {
        const int T = omp_get_num_threads(), t = omp_get_thread_num();
        const int o0 = (int)((long)w->out * t / T), o1 = (int)((long)w->out * (t + 1) / T);
        y[o0 < w->out ? o0 : 0] = (float)stream_rows_avx2(w, o0, o1); /* keeps the reads */
    }
}

static void run_path(ptq_qgemm_path path, ptq_isa isa, const ptq_qweight *w, const float *x, int rows, float *y) {
    if (path == PATH_A8) ptq_qgemm_a8_isa(isa, w, x, rows, y);
    else if (path == PATH_STREAM) stream_read(w, y);
    else ptq_qgemm_path_isa(path, isa, w, x, rows, y);
}

typedef struct {
    double cold_s, hot_s;
} timing;

static double g_budget = 0.25; /* seconds per measurement */

/* Hot: the same copy again and again. */
static double time_hot(ptq_qgemm_path path, ptq_isa isa, const qset *qs, const float *x, int rows, float *y) {
    double best = 1e30, start = now_s();
    run_path(path, isa, &qs->w[0], x, rows, y); /* warm-up */
    for (int rep = 0; rep < 3 || now_s() - start < g_budget * 0.5; rep++) {
        double t0 = now_s();
        run_path(path, isa, &qs->w[0], x, rows, y);
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

/* Cold per call: every call on the next copy. Best single call can be a lucky one in cache, so
 * take the best of several whole passes over all copies (mean per call within a pass). */
static timing time_pass(ptq_qgemm_path path, ptq_isa isa, const qset *qs, const float *x, int rows, float *y) {
    timing t;
    t.hot_s = time_hot(path, isa, qs, x, rows, y);
    double best = 1e30, start = now_s();
    for (int pass = 0; pass < 2 || (now_s() - start < g_budget && pass < 20); pass++) {
        double t0 = now_s();
        for (int c = 0; c < qs->ncopies; c++) run_path(path, isa, &qs->w[c], x, rows, y);
        double dt = (now_s() - t0) / qs->ncopies;
        if (dt < best) best = dt;
    }
    t.cold_s = best;
    return t;
}

static timing time_sgemv(const float *W, int ncopies, int out, int in, const float *x, float *y) {
    timing t = {1e30, 1e30};
    const size_t sz = (size_t)out * (size_t)in;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, W, in, x, 1, 0.0f, y, 1);
    double start = now_s();
    for (int pass = 0; pass < 2 || (now_s() - start < g_budget && pass < 20); pass++) {
        double t0 = now_s();
        for (int c = 0; c < ncopies; c++)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, W + sz * (size_t)c, in, x, 1, 0.0f, y, 1);
        double dt = (now_s() - t0) / ncopies;
        if (dt < t.cold_s) t.cold_s = dt;
    }
    start = now_s();
    for (int rep = 0; rep < 3 || now_s() - start < g_budget * 0.5; rep++) {
        double t0 = now_s();
        cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, W, in, x, 1, 0.0f, y, 1);
        double dt = now_s() - t0;
        if (dt < t.hot_s) t.hot_s = dt;
    }
    return t;
}

static double time_sgemm(const float *W, int out, int in, const float *X, int rows, float *Y) {
    double best = 1e30, start = now_s();
    for (int rep = 0; rep < 4 || (now_s() - start < g_budget && rep < 50); rep++) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, in, 1.0f, X, in, W, in, 0.0f, Y, out);
        double dt = now_s() - t0;
        if (rep > 0 && dt < best) best = dt;
    }
    return best;
}

static double time_qgemm(ptq_qgemm_path path, ptq_isa isa, const ptq_qweight *w, const float *X, int rows, float *Y) {
    double best = 1e30, start = now_s();
    for (int rep = 0; rep < 4 || (now_s() - start < g_budget && rep < 50); rep++) {
        double t0 = now_s();
        run_path(path, isa, w, X, rows, Y);
        double dt = now_s() - t0;
        if (rep > 0 && dt < best) best = dt;
    }
    return best;
}

/* ---------------------------------------------------------------- main */

typedef struct {
    const char *name;
    int bits, group; /* group 0: per channel (= in) */
} qformat;

static const qformat g_fmts[] = {{"W4g32", 4, 32}, {"W8pc", 8, 0},   {"W8g128", 8, 128}, {"W8g32", 8, 32},
                                 {"W3g32", 3, 32}, {"W2g32", 2, 32}, {"W4g128", 4, 128}, {"W5g32", 5, 32},
                                 {"W6g32", 6, 32}, {"W7g32", 7, 32}, {"W4pc", 4, 0}};
#define N_FMTS ((int)(sizeof g_fmts / sizeof g_fmts[0]))
static int g_decode_only;    /* --decode: the best float ISA and the a8 kernels only, the shapes */
static int g_shape[2];       /* --shape OUTxIN: that shape instead of --decode's two */
static const char *g_only;   /* --fmt NAME: that format only */
static int g_isa_on[3];
static double g_bw;

/* Formats of the full run (W4g128 and W5-W7 only with --decode) and of --decode (not W8g128). */
static int fmt_on(int fi) {
    if (g_only) return strcmp(g_only, g_fmts[fi].name) == 0;
    return g_decode_only ? fi != 2 : fi < 6;
}

static void oom(void) {
    fprintf(stderr, "bench_qgemv: out of memory\n");
    exit(1);
}

/* One input row: float sgemv, then each format through each ISA's fused kernel. */
static void bench_gemv(int out, int in) {
    char key[96];
    float *x = big_alloc(sizeof(float) * (size_t)in), *y = big_alloc(sizeof(float) * (size_t)out);
    if (!x || !y) oom();
    fill_floats(x, (size_t)in, 3);
    fprintf(g_tab, "\n== GEMV %d x %d (out x in), 1 row ==\n", out, in);
    fprintf(g_tab, "  %-8s %-11s %9s %9s %8s %9s %9s\n", "weights", "isa", "cold ms", "cold GB/s", "of bw", "vs sgemv",
            "hot GB/s");

    progress("float sgemv");
    const size_t fbytes = (size_t)out * (size_t)in * sizeof(float);
    const int fcopies = (int)((COLD_BYTES + fbytes - 1) / fbytes);
    float *W = big_alloc(fbytes * (size_t)fcopies);
    if (!W) oom();
    fill_floats(W, (size_t)out * (size_t)in * (size_t)fcopies, 5);
    const timing tf = time_sgemv(W, fcopies, out, in, x, y);
    free(W);
    fprintf(g_tab, "  %-8s %-11s %9.3f %9.2f %7.0f%% %9s %9.2f\n", "float32", "blas", tf.cold_s * 1e3,
            fbytes / tf.cold_s / 1e9, 100.0 * fbytes / tf.cold_s / 1e9 / g_bw, "1.00x", fbytes / tf.hot_s / 1e9);
    snprintf(key, sizeof key, "gemv_%dx%d_f32_cold_ms", out, in);
    rec(key, tf.cold_s * 1e3);
    snprintf(key, sizeof key, "gemv_%dx%d_f32_cold_gbs", out, in);
    rec(key, fbytes / tf.cold_s / 1e9);

    for (int fi = 0; fi < N_FMTS; fi++) {
        if (!fmt_on(fi)) continue;
        qset qs;
        const int group = g_fmts[fi].group ? g_fmts[fi].group : in;
        if (make_qset(&qs, g_fmts[fi].bits, out, in, group, 1000) != 0) oom();
        if (g_decode_only) { /* the probe again beside each format: the fraction is of this run's bandwidth */
            progress("read bandwidth");
            g_bw = read_bandwidth();
            fprintf(g_tab, "  (read bandwidth %.2f GB/s, load %.2f)\n", g_bw, loadavg());
            snprintf(key, sizeof key, "gemv_%dx%d_%s_read_bandwidth_gbs", out, in, g_fmts[fi].name);
            rec(key, g_bw);
        }
        /* float activations through each ISA's fused kernel, then int8 activations (a8) */
        for (int k = 0; k < 6; k++) {
            const int a8 = k >= 3, isa = a8 ? k - 3 : k;
            if (!g_isa_on[isa] || (a8 && !ptq_a8_supported((ptq_isa)isa))) continue;
            if (a8 && isa == PTQ_ISA_SCALAR && (ptq_a8_supported(PTQ_ISA_AVX2) || ptq_a8_supported(PTQ_ISA_AVX512)))
                continue; /* a reference only */
            if (!a8 && g_decode_only && isa != (int)ptq_isa_best()) continue;
            const char *name = g_fmts[fi].name;
            char isan[24];
            snprintf(isan, sizeof isan, "%s%s", a8 ? "a8-" : "", ptq_isa_name((ptq_isa)isa));
            snprintf(key, sizeof key, "%s %s", name, isan);
            progress(key);
            const timing t = time_pass(a8 ? PATH_A8 : PTQ_QGEMM_GEMV, (ptq_isa)isa, &qs, x, 1, y);
            const double gbs = qs.bytes / t.cold_s / 1e9;
            fprintf(g_tab, "  %-8s %-11s %9.3f %9.2f %7.0f%% %8.2fx %9.2f\n", name, isan, t.cold_s * 1e3, gbs,
                    100.0 * gbs / g_bw, tf.cold_s / t.cold_s, qs.bytes / t.hot_s / 1e9);
            snprintf(key, sizeof key, "gemv_%dx%d_%s_%s_cold_ms", out, in, name, isan);
            rec(key, t.cold_s * 1e3);
            snprintf(key, sizeof key, "gemv_%dx%d_%s_%s_cold_gbs", out, in, name, isan);
            rec(key, gbs);
            snprintf(key, sizeof key, "gemv_%dx%d_%s_%s_frac_bw", out, in, name, isan);
            rec(key, gbs / g_bw);
            snprintf(key, sizeof key, "gemv_%dx%d_%s_%s_speedup_vs_sgemv", out, in, name, isan);
            rec(key, tf.cold_s / t.cold_s);
            snprintf(key, sizeof key, "gemv_%dx%d_%s_%s_hot_gbs", out, in, name, isan);
            rec(key, qs.bytes / t.hot_s / 1e9);
        }
        if (g_decode_only && __builtin_cpu_supports("avx2")) {
            const timing t = time_pass(PATH_STREAM, PTQ_ISA_AVX2, &qs, x, 1, y);
            const double gbs = qs.bytes / t.cold_s / 1e9;
            fprintf(g_tab, "  %-8s %-11s %9.3f %9.2f %7.0f%% %9s %9.2f   (the same bytes, no arithmetic)\n",
                    g_fmts[fi].name, "stream", t.cold_s * 1e3, gbs, 100.0 * gbs / g_bw, "", qs.bytes / t.hot_s / 1e9);
            snprintf(key, sizeof key, "gemv_%dx%d_%s_stream_cold_gbs", out, in, g_fmts[fi].name);
            rec(key, gbs);
        }
        free_qset(&qs);
    }
    free(x);
    free(y);
}

/* --tiles (with --decode): the AVX-512 decode kernel in its three row orders (one row at a time, adjacent pairs,
 * pairs from the two halves of a thread's rows: qgemv_a8_avx512.c), the AVX-VNNI kernel, the plain read
 * ("stream", one row at a time) and, for 2-bit codes on a CPU with GFNI, the AVX-512 kernel in its own row order
 * without it ("no gfni": as CPUs without GFNI unpack them), alternated pass by pass in one process for TILE_ROUNDS rounds, the best
 * pass of each reported: on a host whose speed moves between phases, kernels compared in separate passes minutes
 * apart (the table above) can differ by the phase alone. Rows split into contiguous halves between threads. */
#define TILE_ROUNDS 8
static int g_tiles;

static void tile_call(int v, const ptq_qweight *w, const ptq_a8 *a, float *y) {
    if (v == 4) {
        stream_read(w, y);
        return;
    }
#pragma omp parallel
    {
        const int T = omp_get_num_threads(), t = omp_get_thread_num();
        const int o0 = (int)((long)w->out * t / T) & ~1, o1 = t == T - 1 ? w->out : (int)((long)w->out * (t + 1) / T) & ~1;
        if (v == 3) ptq_qgemv_a8_avxvnni(w, a, y, o0, o1);
        else if (v == 5) ptq_qgemv_a8_avx512_vnni_tiled(w, a, y, o0, o1, 0);
        else ptq_qgemv_a8_avx512_tiled(w, a, y, o0, o1, v + 1);
    }
}

static void bench_tiles(int out, int in) {
    fprintf(g_tab, "\n== decode GEMV %d x %d, kernels alternated pass by pass (best of %d), GB/s ==\n", out, in,
            TILE_ROUNDS);
    const char *names[6] = {"avx512 1 row", "avx512 pair", "avx512 split", "avx-vnni", "stream", "no gfni"};
    fprintf(g_tab, "  %-8s %14s %14s %14s %14s %14s %14s\n", "weights", names[0], names[1], names[2], names[3], names[4],
            names[5]);
    float *x = big_alloc(sizeof(float) * (size_t)in), *y = big_alloc(sizeof(float) * (size_t)out);
    if (!x || !y) oom();
    fill_floats(x, (size_t)in, 3);
    const int have_vnni = ptq_cpu_has(PTQ_CPU_AVXVNNI);
    for (int fi = 0; fi < N_FMTS; fi++) {
        if (!fmt_on(fi)) continue;
        qset qs;
        const int group = g_fmts[fi].group ? g_fmts[fi].group : in;
        if (make_qset(&qs, g_fmts[fi].bits, out, in, group, 1000) != 0) oom();
        void *buf = aligned_alloc(64, (ptq_a8_scratch_bytes(in, 1) + 63) / 64 * 64);
        if (!buf) oom();
        ptq_a8 a;
        ptq_a8_quantize(PTQ_ISA_AVX512, &qs.w[0], x, 1, buf, &a);
        double best[6] = {1e30, 1e30, 1e30, 1e30, 1e30, 1e30};
        const int have[6] = {1, 1, 1, have_vnni, 1, g_fmts[fi].bits == 2 && ptq_a8_gfni_supported()};
        for (int r = 0; r < TILE_ROUNDS; r++)
            for (int v = 0; v < 6; v++) {
                if (!have[v]) continue;
                const double t0 = now_s();
                for (int c = 0; c < qs.ncopies; c++) tile_call(v, &qs.w[c], &a, y);
                const double dt = (now_s() - t0) / qs.ncopies;
                if (dt < best[v]) best[v] = dt;
            }
        char key[96];
        fprintf(g_tab, "  %-8s", g_fmts[fi].name);
        for (int v = 0; v < 6; v++) {
            if (!have[v]) {
                fprintf(g_tab, " %14s", "-");
                continue;
            }
            fprintf(g_tab, " %14.2f", qs.bytes / best[v] / 1e9);
            snprintf(key, sizeof key, "tiles_%dx%d_%s_%d_gbs", out, in, g_fmts[fi].name, v);
            rec(key, qs.bytes / best[v] / 1e9);
        }
        fprintf(g_tab, "   (load %.2f)\n", loadavg());
        free(buf);
        free_qset(&qs);
    }
    free(x);
    free(y);
}

/* --paired (with --decode): each pass reads the 1 GiB probe once, then runs the int8-activation GEMV the dispatcher
 * picks over every cold copy, then the plain read of the same bytes ("stream"), PAIRED_ROUNDS passes. The host's
 * bandwidth moves by 40% from minute to minute (docs/RESULTS.md §24), so a probe taken seconds before a kernel can
 * belong to another phase; here each kernel pass has a probe pass from the same tenth of a second beside it. Reported:
 * the median over passes of kernel / probe (the fraction in the sense, phase by phase), its range, and the
 * best of each. */
#define PAIRED_ROUNDS 31
static int g_paired;

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void bench_paired(int out, int in) {
    fprintf(g_tab, "\n== decode GEMV %d x %d paired with the probe, %d passes: GB/s (best), kernel / probe per pass ==\n",
            out, in, PAIRED_ROUNDS);
    fprintf(g_tab, "  %-8s %-11s %9s %9s %9s %17s %9s %17s\n", "weights", "isa", "probe", "kernel", "median", "range",
            "stream", "stream median");
    const size_t pn = ((size_t)1 << 30) / sizeof(float);
    float *probe = aligned_alloc((size_t)2 << 20, pn * sizeof(float)), *x = big_alloc(sizeof(float) * (size_t)in),
          *y = big_alloc(sizeof(float) * (size_t)out);
    if (!probe || !x || !y) oom();
    madvise(probe, pn * sizeof(float), MADV_HUGEPAGE); /* as ptq_read_bandwidth's buffer */
    const int have_stream = __builtin_cpu_supports("avx2"); /* the plain read is AVX2 code */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < pn; i++) probe[i] = (float)(i & 1023) * 0x1p-10f;
    fill_floats(x, (size_t)in, 3);
    const ptq_isa isa = ptq_a8_isa_best();
    volatile double sink = 0.0;
    for (int fi = 0; fi < N_FMTS; fi++) {
        if (!fmt_on(fi)) continue;
        qset qs;
        const int group = g_fmts[fi].group ? g_fmts[fi].group : in;
        if (make_qset(&qs, g_fmts[fi].bits, out, in, group, 1000) != 0) oom();
        progress(g_fmts[fi].name);
        double pb[PAIRED_ROUNDS], kb[PAIRED_ROUNDS], sb[PAIRED_ROUNDS], kr[PAIRED_ROUNDS], sr[PAIRED_ROUNDS];
        for (int r = -1; r < PAIRED_ROUNDS; r++) { /* pass -1 warms up */
            double t0 = now_s();
            sink += ptq_read_sum(probe, pn);
            const double tp = now_s() - t0;
            t0 = now_s();
            for (int c = 0; c < qs.ncopies; c++) run_path(PATH_A8, isa, &qs.w[c], x, 1, y);
            const double tk = (now_s() - t0) / qs.ncopies;
            t0 = now_s();
            for (int c = 0; c < qs.ncopies && have_stream; c++) run_path(PATH_STREAM, PTQ_ISA_AVX2, &qs.w[c], x, 1, y);
            const double ts = have_stream ? (now_s() - t0) / qs.ncopies : 1e30;
            if (r < 0) continue;
            pb[r] = (double)pn * sizeof(float) / tp / 1e9;
            kb[r] = qs.bytes / tk / 1e9;
            sb[r] = qs.bytes / ts / 1e9;
            kr[r] = kb[r] / pb[r];
            sr[r] = sb[r] / pb[r];
        }
        qsort(pb, PAIRED_ROUNDS, sizeof(double), cmp_double);
        qsort(kb, PAIRED_ROUNDS, sizeof(double), cmp_double);
        qsort(sb, PAIRED_ROUNDS, sizeof(double), cmp_double);
        qsort(kr, PAIRED_ROUNDS, sizeof(double), cmp_double);
        qsort(sr, PAIRED_ROUNDS, sizeof(double), cmp_double);
        const int m = PAIRED_ROUNDS / 2, last = PAIRED_ROUNDS - 1;
        char isan[24], range[32], key[96];
        snprintf(isan, sizeof isan, "a8-%s", ptq_isa_name(isa));
        snprintf(range, sizeof range, "%.0f-%.0f%%", 100.0 * kr[0], 100.0 * kr[last]);
        fprintf(g_tab, "  %-8s %-11s %9.2f %9.2f %8.0f%% %17s %9.2f %16.0f%%   (load %.2f)\n", g_fmts[fi].name, isan,
                pb[last], kb[last], 100.0 * kr[m], range, sb[last], 100.0 * sr[m], loadavg());
        snprintf(key, sizeof key, "paired_%dx%d_%s_probe_gbs", out, in, g_fmts[fi].name);
        rec(key, pb[last]);
        snprintf(key, sizeof key, "paired_%dx%d_%s_kernel_gbs", out, in, g_fmts[fi].name);
        rec(key, kb[last]);
        snprintf(key, sizeof key, "paired_%dx%d_%s_median_frac", out, in, g_fmts[fi].name);
        rec(key, kr[m]);
        snprintf(key, sizeof key, "paired_%dx%d_%s_stream_median_frac", out, in, g_fmts[fi].name);
        rec(key, sr[m]);
        free_qset(&qs);
    }
    (void)sink;
    free(probe);
    free(x);
    free(y);
}

/* 64 input rows: sgemm against both tiled strategies; then the GEMV/tiled crossover in rows. */
static int g_gemm_rows = 64; /* --rows N */

static void bench_gemm(int out, int in) {
    char key[96];
    const int rows = g_gemm_rows;
    const size_t fbytes = (size_t)out * (size_t)in * sizeof(float);
    fprintf(g_tab, "\n== GEMM %d x %d (out x in), %d rows ==\n", out, in, rows);
    float *Wf = big_alloc(fbytes), *X = big_alloc(sizeof(float) * (size_t)rows * (size_t)in),
          *Y = big_alloc(sizeof(float) * (size_t)rows * (size_t)out);
    if (!Wf || !X || !Y) oom();
    fill_floats(Wf, (size_t)out * (size_t)in, 9);
    fill_floats(X, (size_t)rows * (size_t)in, 10);
    progress("sgemm");
    const double tsg = time_sgemm(Wf, out, in, X, rows, Y);
    const double flop = 2.0 * rows * (double)out * in;
    fprintf(g_tab, "  %-28s %9.2f ms %8.1f GFLOP/s\n", "float sgemm", tsg * 1e3, flop / tsg / 1e9);
    snprintf(key, sizeof key, "gemm%d_%dx%d_sgemm_ms", rows, out, in);
    rec(key, tsg * 1e3);
    for (int fi = 0; fi < 2; fi++) {
        qset qs;
        const int group = g_fmts[fi].group ? g_fmts[fi].group : in;
        if (make_qset(&qs, g_fmts[fi].bits, out, in, group, 1) != 0) oom();
        for (int isa = 0; isa < 3; isa++) {
            if (!g_isa_on[isa]) continue;
            const char *name = g_fmts[fi].name, *isan = ptq_isa_name((ptq_isa)isa);
            for (int p = 0; p < 2; p++) {
                const ptq_qgemm_path path = p ? PTQ_QGEMM_TILES_SERIAL : PTQ_QGEMM_TILES_PARALLEL;
                const char *how = p ? "serial" : "parallel";
                snprintf(key, sizeof key, "gemm %s %s %s", name, isan, how);
                progress(key);
                const double tq = time_qgemm(path, (ptq_isa)isa, &qs.w[0], X, rows, Y);
                char label[64];
                snprintf(label, sizeof label, "%s %s %s tiles", name, isan, how);
                fprintf(g_tab, "  %-28s %9.2f ms %8.1f GFLOP/s  %5.2fx of sgemm time\n", label, tq * 1e3,
                        flop / tq / 1e9, tq / tsg);
                snprintf(key, sizeof key, "gemm%d_%dx%d_%s_%s_%s_ms", rows, out, in, name, isan, how);
                rec(key, tq * 1e3);
                snprintf(key, sizeof key, "gemm%d_%dx%d_%s_%s_%s_vs_sgemm", rows, out, in, name, isan, how);
                rec(key, tq / tsg);
            }
        }
        if (g_isa_on[PTQ_ISA_AVX512] && ptq_a8_supported(PTQ_ISA_AVX512)) { /* int8 activations, VNNI */
            const char *name = g_fmts[fi].name;
            snprintf(key, sizeof key, "gemm %s a8-avx512", name);
            progress(key);
            const double tq = time_qgemm(PATH_A8, PTQ_ISA_AVX512, &qs.w[0], X, rows, Y);
            char label[64];
            snprintf(label, sizeof label, "%s a8-avx512 (int8 act.)", name);
            fprintf(g_tab, "  %-28s %9.2f ms %8.1f GFLOP/s  %5.2fx of sgemm time\n", label, tq * 1e3, flop / tq / 1e9,
                    tq / tsg);
            snprintf(key, sizeof key, "gemm%d_%dx%d_%s_a8-avx512_ms", rows, out, in, name);
            rec(key, tq * 1e3);
            snprintf(key, sizeof key, "gemm%d_%dx%d_%s_a8-avx512_vs_sgemm", rows, out, in, name);
            rec(key, tq / tsg);
        }
        if (fi == 0 && g_gemm_rows == 64) /* where the fused GEMV path stops paying against the tiled one */
            for (int isa = 1; isa < 3; isa++) {
                if (!g_isa_on[isa]) continue;
                const char *isan = ptq_isa_name((ptq_isa)isa);
                snprintf(key, sizeof key, "crossover %s", isan);
                progress(key);
                fprintf(g_tab, "  W4g32 %s, fused GEMV / tiled ms at rows", isan);
                const int rl[5] = {4, 8, 12, 16, 32};
                for (int i = 0; i < 5; i++) {
                    const double tg = time_qgemm(PTQ_QGEMM_GEMV, (ptq_isa)isa, &qs.w[0], X, rl[i], Y);
                    const double tt = time_qgemm(PTQ_QGEMM_TILES_PARALLEL, (ptq_isa)isa, &qs.w[0], X, rl[i], Y);
                    fprintf(g_tab, "  %d: %.2f/%.2f", rl[i], tg * 1e3, tt * 1e3);
                    snprintf(key, sizeof key, "rows%d_%dx%d_W4g32_%s_gemv_ms", rl[i], out, in, isan);
                    rec(key, tg * 1e3);
                    snprintf(key, sizeof key, "rows%d_%dx%d_W4g32_%s_tiled_ms", rl[i], out, in, isan);
                    rec(key, tt * 1e3);
                }
                fprintf(g_tab, "\n");
            }
        free_qset(&qs);
    }
    free(Wf);
    free(X);
    free(Y);
}

int main(int argc, char **argv) {
    int json = 0, quick = 0, do_gemv = 1, do_gemm = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--gemv-only") == 0)
            do_gemm = 0;
        else if (strcmp(argv[i], "--gemm-only") == 0)
            do_gemv = 0;
        else if (strcmp(argv[i], "--decode") == 0)
            g_decode_only = 1, do_gemm = 0;
        else if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc && atoi(argv[i + 1]) >= 1)
            g_gemm_rows = atoi(argv[++i]);
        else if (strcmp(argv[i], "--tiles") == 0)
            g_tiles = 1, g_decode_only = 1, do_gemm = 0;
        else if (strcmp(argv[i], "--paired") == 0)
            g_paired = 1, g_decode_only = 1, do_gemm = 0;
        else if (strcmp(argv[i], "--thp") == 0)
            g_thp = 1;
        else if (strcmp(argv[i], "--sym") == 0)
            g_sym = 1;
        else if (strcmp(argv[i], "--shape") == 0 && i + 1 < argc &&
                 sscanf(argv[i + 1], "%dx%d", &g_shape[0], &g_shape[1]) == 2 && g_shape[0] > 0 && g_shape[1] > 0)
            i++;
        else if (strcmp(argv[i], "--fmt") == 0 && i + 1 < argc)
            g_only = argv[++i];
        else {
            fprintf(stderr, "usage: bench_qgemv [--json] [--quick] [--gemv-only | --gemm-only | --decode] [--rows N] [--fmt NAME] [--thp] [--sym] [--shape OUTxIN] [--tiles | --paired]\n"
                            "       env PTQ_ISA=scalar|avx2|avx512 measures that ISA only\n");
            return 2;
        }
    }
    g_tab = json ? stderr : stdout;
    if (quick) g_budget = 0.08;

    const ptq_isa best = ptq_isa_best();
    for (int i = 0; i < 3; i++) g_isa_on[i] = i <= (int)best;
    const char *env = getenv("PTQ_ISA");
    if (env && *env) {
        int pick = -1;
        for (int i = 0; i < 3; i++)
            if (strcmp(env, ptq_isa_name((ptq_isa)i)) == 0) pick = i;
        if (pick < 0) {
            fprintf(stderr, "bench_qgemv: PTQ_ISA=%s: expected scalar, avx2 or avx512\n", env);
            return 2;
        }
        if (pick > (int)best) {
            fprintf(stderr, "bench_qgemv: PTQ_ISA=%s: this CPU lacks it (best: %s)\n", env, ptq_isa_name(best));
            return 2;
        }
        for (int i = 0; i < 3; i++) g_isa_on[i] = i == pick;
    }

    const char *wait = getenv("OMP_WAIT_POLICY");
    fprintf(g_tab, "bench_qgemv: %d OpenMP threads (OMP_WAIT_POLICY=%s), best ISA %s\n", omp_get_max_threads(),
            wait ? wait : "unset", ptq_isa_name(best));
    if (!wait)
        fprintf(g_tab, "  note: on a machine shared with other busy processes, set OMP_WAIT_POLICY=passive: spinning\n"
                       "  idle workers can make threaded runs ~10x slower there\n");
    rec("threads", omp_get_max_threads());
    progress("read bandwidth (1 GiB, best of 5)");
    g_bw = read_bandwidth();
    fprintf(g_tab, "machine read bandwidth: %.2f GB/s\n", g_bw);
    rec("read_bandwidth_gbs", g_bw);

    if (g_decode_only) { /* what one GEMV call pays to wake the other threads and wait for them */
        double best = 1e30, sum = 0.0;
        const int n = 2000;
        for (int i = 0; i < n; i++) {
            const double t0 = now_s();
#pragma omp parallel
            __asm__ volatile("" ::: "memory");
            const double dt = now_s() - t0;
            sum += dt;
            if (dt < best) best = dt;
        }
        fprintf(g_tab, "OpenMP fork/join (empty parallel region): best %.2f us, mean %.2f us (load %.2f)\n", best * 1e6,
                sum / n * 1e6, loadavg());
        rec("fork_join_best_us", best * 1e6);
        rec("fork_join_mean_us", sum / n * 1e6);
    }
    const int shapes[3][2] = {{4096, 4096}, {11008, 4096}, {4096, 14336}};
    const int decode_shapes[2][2] = {{4096, 14336}, {14336, 4096}}; /* the issue's: FFN down and up */
    if (g_tiles) {
        if (!ptq_a8_supported(PTQ_ISA_AVX512)) {
            fprintf(stderr, "bench_qgemv --tiles: needs AVX-512 VNNI\n");
            return 2;
        }
        if (g_shape[0]) bench_tiles(g_shape[0], g_shape[1]);
        else
            for (int si = 0; si < 2; si++) bench_tiles(decode_shapes[si][0], decode_shapes[si][1]);
        if (json) bench_print_json(&g_res, stdout);
        return 0;
    }
    if (g_paired) {
        if (g_shape[0]) bench_paired(g_shape[0], g_shape[1]);
        else
            for (int si = 0; si < 2; si++) bench_paired(decode_shapes[si][0], decode_shapes[si][1]);
        if (json) bench_print_json(&g_res, stdout);
        return 0;
    }
    if (g_decode_only && g_shape[0]) {
        bench_gemv(g_shape[0], g_shape[1]);
        if (json) bench_print_json(&g_res, stdout);
        return 0;
    }
    for (int si = 0; si < (g_decode_only ? 2 : 3); si++) {
        const int *sh = g_decode_only ? decode_shapes[si] : shapes[si];
        if (do_gemv) bench_gemv(sh[0], sh[1]);
        if (do_gemm && si < 2) bench_gemm(sh[0], sh[1]);
    }
    if (json) bench_print_json(&g_res, stdout);
    return 0;
}
