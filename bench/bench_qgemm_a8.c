/* The int8-activation prefill GEMM (src/kernels/qgemm_a8.h) against the alternatives, same run,
 * measurements alternating round by round (best of each path over the rounds):
 *   sgemm      cblas_sgemm on the float weights (the float model's prefill);
 *   a8-gemv    the decode GEMV kernel over every row (ptq_qgemv_a8_avx512: the act8 path before the GEMM);
 *   a8-gemm    ptq_qgemm_a8_tiled: activation quantization + the GEMM (what ptq_qgemm_a8_isa now runs);
 *   f32-tiles  the float-activation quantized GEMM (ptq_qgemm_path_isa, parallel tiles, AVX-512).
 * Shapes (out x in): 4096x4096, 4096x11008, 11008x4096; formats W4g32, W8g32 (--all: W3g32, W2g32 too).
 *
 *   bench_qgemm_a8 [--rows N] [--rounds R] [--all] [--crossover] [--cpu-time] [--json]
 *
 * --crossover: W4g32 4096x4096, a8-gemv vs a8-gemm at 1..32 rows (PTQ_QGEMM_A8_MIN_ROWS).
 * --cpu-time: the GEMM alone (activations quantized beforehand) on one thread, W4g32 and W8g32 4096x4096,
 *   best thread CPU time of the rounds: on a machine shared with other jobs this moves far less than
 *   wall time (which a descheduled thread inflates), so kernel variants can be compared there.
 */
#include <cblas.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"
#include "io/safetensors.h"
#include "kernels/qgemm_a8.h"
#include "kernels/qgemm_impl.h"
#include "kernels/qgemv_a8.h"

static bench_results g_res;

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void fill_floats(float *p, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) p[i] = (float)(splitmix(&seed) >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

static double thread_cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *big_alloc(size_t bytes) { return aligned_alloc(64, (bytes + 63) / 64 * 64); }

static void oom(void) {
    fprintf(stderr, "bench_qgemm_a8: out of memory\n");
    exit(1);
}

/* A random layer: codes, fp16 scales ~0.01, zero points mid-range. */
static ptq_qweight make_weight(int bits, int out, int in, int group) {
    ptq_qweight w;
    memset(&w, 0, sizeof w);
    w.bits = w.grid_bits = bits;
    w.in = in;
    w.out = out;
    w.group = group;
    w.n_groups = (in + group - 1) / group;
    w.row_bytes = ptq_qweight_row_bytes(bits, in);
    const size_t ns = (size_t)out * (size_t)w.n_groups;
    w.codes = big_alloc((size_t)out * w.row_bytes);
    w.scales = big_alloc(ns * 2);
    w.zeros = big_alloc(ns);
    if (!w.codes || !w.scales || !w.zeros) oom();
    uint64_t s = (uint64_t)bits * 1000003u + (uint64_t)out;
    for (size_t i = 0; i < (size_t)out * w.row_bytes; i++) w.codes[i] = (uint8_t)splitmix(&s);
    for (size_t i = 0; i < ns; i++) {
        w.scales[i] = ptq_f32_to_f16(0.005f + 0.01f * (float)(splitmix(&s) >> 40) / 16777216.0f);
        w.zeros[i] = (uint8_t)(1u << (bits - 1));
    }
    return w;
}

static void free_weight(ptq_qweight *w) {
    free(w->codes);
    free(w->scales);
    free(w->zeros);
}

enum { P_SGEMM, P_GEMV, P_GEMM, P_F32, NPATH };
static const char *g_pname[NPATH] = {"sgemm", "a8-gemv", "a8-gemm", "f32-tiles"};

typedef struct {
    const ptq_qweight *w;
    const float *Wf, *X;
    float *Y;
    int rows;
    void *scratch; /* a8 activations for the GEMV path */
} job;

/* The act8 path before the GEMM: quantize, then the GEMV kernel over 16-output blocks on all threads. */
static void run_gemv(const job *j) {
    ptq_a8 a;
    ptq_a8_quantize(PTQ_ISA_AVX512, j->w, j->X, j->rows, j->scratch, &a);
    const int nblk = (j->w->out + 15) / 16;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < nblk; b++) {
        const int o1 = 16 * b + 16 < j->w->out ? 16 * b + 16 : j->w->out;
        ptq_qgemv_a8_avx512(j->w, &a, j->Y, 16 * b, o1);
    }
}

static void run(int p, const job *j) {
    const ptq_qweight *w = j->w;
    switch (p) {
    case P_SGEMM:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->rows, w->out, w->in, 1.0f, j->X, w->in, j->Wf, w->in,
                    0.0f, j->Y, w->out);
        break;
    case P_GEMV: run_gemv(j); break;
    case P_GEMM:
        if (!ptq_qgemm_a8_tiled(w, j->X, j->rows, j->Y)) oom();
        break;
    default: ptq_qgemm_path_isa(PTQ_QGEMM_TILES_PARALLEL, PTQ_ISA_AVX512, w, j->X, j->rows, j->Y); break;
    }
}

/* Best time of each path in on[] over `rounds` rounds, the paths alternating within a round. */
static void time_paths(const job *j, const int *on, int rounds, double *best) {
    for (int p = 0; p < NPATH; p++) {
        best[p] = 1e30;
        if (on[p]) run(p, j); /* warm-up */
    }
    for (int r = 0; r < rounds; r++)
        for (int p = 0; p < NPATH; p++) {
            if (!on[p]) continue;
            const double t0 = now_s();
            run(p, j);
            const double dt = now_s() - t0;
            if (dt < best[p]) best[p] = dt;
        }
}

int main(int argc, char **argv) {
    int rows = 256, rounds = 5, all = 0, crossover = 0, cpu_time = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc) rows = atoi(argv[++i]);
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--all") == 0) all = 1;
        else if (strcmp(argv[i], "--crossover") == 0) crossover = 1;
        else if (strcmp(argv[i], "--cpu-time") == 0) cpu_time = 1;
        else if (strcmp(argv[i], "--json") == 0) json = 1;
        else rows = 0;
    }
    if (rows < 1 || rounds < 1) {
        fprintf(stderr, "usage: bench_qgemm_a8 [--rows N] [--rounds R] [--all] [--crossover] [--cpu-time] [--json]\n");
        return 2;
    }
    if (!ptq_qgemm_a8_supported()) {
        fprintf(stderr, "bench_qgemm_a8: this CPU lacks AVX-512 VNNI\n");
        return 1;
    }
    FILE *tab = json ? stderr : stdout;
    fprintf(tab, "bench_qgemm_a8: %d threads, load average %.2f at start\n", omp_get_max_threads(), loadavg());
    bench_rec(&g_res, "threads", omp_get_max_threads());
    bench_rec(&g_res, "load_start", loadavg());
    char key[96];
    if (crossover) {
        const int in = 4096, out = 4096, rl[9] = {1, 2, 4, 6, 8, 12, 16, 24, 32};
        ptq_qweight w = make_weight(4, out, in, 32);
        float *X = big_alloc(sizeof(float) * 32 * in), *Y = big_alloc(sizeof(float) * 32 * out);
        void *scratch = big_alloc(ptq_a8_scratch_bytes(in, 32));
        if (!X || !Y || !scratch) oom();
        fill_floats(X, (size_t)32 * in, 7);
        fprintf(tab, "W4g32 %dx%d, ms a8-gemv / a8-gemm at rows:", out, in);
        for (int i = 0; i < 9; i++) {
            const job j = {&w, NULL, X, Y, rl[i], scratch};
            const int on[NPATH] = {0, 1, 1, 0};
            double best[NPATH];
            time_paths(&j, on, rounds * 4, best);
            fprintf(tab, "  %d: %.3f/%.3f", rl[i], best[P_GEMV] * 1e3, best[P_GEMM] * 1e3);
            snprintf(key, sizeof key, "crossover_rows%d_gemv_over_gemm", rl[i]);
            bench_rec(&g_res, key, best[P_GEMV] / best[P_GEMM]);
        }
        fprintf(tab, "\n");
        free(X);
        free(Y);
        free(scratch);
        free_weight(&w);
    }
    if (cpu_time) {
        omp_set_num_threads(1);
        const int in = 4096, out = 4096;
        float *X = big_alloc(sizeof(float) * (size_t)rows * in), *Y = big_alloc(sizeof(float) * (size_t)rows * out);
        void *scratch = big_alloc(ptq_a8_scratch_bytes(in, rows));
        if (!X || !Y || !scratch) oom();
        fill_floats(X, (size_t)rows * in, 5);
        for (int bits = 4; bits <= 8; bits += 4) {
            ptq_qweight w = make_weight(bits, out, in, 32);
            ptq_a8 a;
            ptq_qgemm_a8_quantize(&w, X, rows, scratch, &a);
            double best = 1e30;
            for (int r = 0; r < rounds; r++) {
                const double t0 = thread_cpu_s();
                if (!ptq_qgemm_a8_gemm(&w, &a, Y)) oom();
                const double dt = thread_cpu_s() - t0;
                best = dt < best ? dt : best;
            }
            fprintf(tab, "W%dg32 %dx%d, %d rows, one thread: %.2f ms CPU time, %.0f GMAC/s\n", bits, out, in, rows,
                    best * 1e3, (double)rows * out * in / best / 1e9);
            snprintf(key, sizeof key, "cpu_W%dg32_%dx%d_r%d_ms", bits, out, in, rows);
            bench_rec(&g_res, key, best * 1e3);
            free_weight(&w);
        }
        free(X);
        free(Y);
        free(scratch);
    }
    const int shapes[3][2] = {{4096, 4096}, {4096, 11008}, {11008, 4096}};
    const int fmts[4][2] = {{4, 32}, {8, 32}, {3, 32}, {2, 32}};
    for (int si = 0; si < 3 && !crossover && !cpu_time; si++) {
        const int out = shapes[si][0], in = shapes[si][1];
        const double flop = 2.0 * rows * (double)out * in;
        float *Wf = big_alloc(sizeof(float) * (size_t)out * in), *X = big_alloc(sizeof(float) * (size_t)rows * in),
              *Y = big_alloc(sizeof(float) * (size_t)rows * out);
        void *scratch = big_alloc(ptq_a8_scratch_bytes(in, rows));
        if (!Wf || !X || !Y || !scratch) oom();
        fill_floats(Wf, (size_t)out * in, 3);
        fill_floats(X, (size_t)rows * in, 4);
        fprintf(tab, "\n== %d x %d (out x in), %d rows: ms, GFLOP/s, time / sgemm's ==\n", out, in, rows);
        for (int fi = 0; fi < (all ? 4 : 2); fi++) {
            ptq_qweight w = make_weight(fmts[fi][0], out, in, fmts[fi][1]);
            const job j = {&w, Wf, X, Y, rows, scratch};
            const int on[NPATH] = {1, 1, 1, 1};
            double best[NPATH];
            time_paths(&j, on, rounds, best);
            for (int p = 0; p < NPATH; p++) {
                fprintf(tab, "  W%dg%d %-10s %9.2f ms %8.1f GFLOP/s %6.2fx\n", fmts[fi][0], fmts[fi][1], g_pname[p],
                        best[p] * 1e3, flop / best[p] / 1e9, best[p] / best[P_SGEMM]);
                snprintf(key, sizeof key, "%dx%d_r%d_W%dg%d_%s_ms", out, in, rows, fmts[fi][0], fmts[fi][1], g_pname[p]);
                bench_rec(&g_res, key, best[p] * 1e3);
            }
            free_weight(&w);
        }
        free(Wf);
        free(X);
        free(Y);
        free(scratch);
    }
    fprintf(tab, "load average %.2f at the end\n", loadavg());
    bench_rec(&g_res, "load_end", loadavg());
    if (json) bench_print_json(&g_res, stdout);
    return 0;
}
