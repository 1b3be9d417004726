/* Int8 GEMM benchmark: the integer kernels of src/kernels/i8gemm.h against OpenBLAS cblas_sgemm on
 * the same shapes, measured in the same run.
 *
 *   bench_i8gemm [--json] [--quick]          OMP_NUM_THREADS sets the threads (default: all cores)
 *
 * Shapes (rows x in x out): 128x4096x4096, 512x4096x4096, 128x4096x11008, 1x4096x4096.
 * For each: float sgemm y = x W^T (row-major, W [out][in], as the model's linear layers call it), then
 * for every kernel the CPU has:
 *   gemm    ptq_i8gemm_isa on already-quantized int8 x -> int32 (the integer GEMM alone; includes the
 *           per-call copy of x into the kernel's layout);
 *   linear  ptq_i8_linear: float x -> per-tensor static int8 quantization -> GEMM -> float y with
 *           scales and bias (what a W8A8 layer costs end to end);
 *   and for the best kernel also linear with dynamic per-token scales.
 * GOP/s counts 2 * rows * in * out operations (a multiply-add is 2). "x sgemm" is sgemm time / time.
 * The variants are timed round-robin (each round runs every variant once, for at least 20 ms, mean
 * per call) and the best round of each is reported, so a slow phase of a shared machine hits all of
 * them alike. The scalar kernel is timed once (it is the reference, not a contender).
 * Every call reuses the same weights: at one row (memory-bound) the 16 MiB int8 matrix can stay in
 * a large L3 where the 64 MiB float one does not, so that ratio is the cache-hot one.
 * On a shared machine (load average above the thread count) each OpenMP fork/join can wait for a
 * descheduled thread (~4 ms measured): the one-row times then show that wait, for sgemm as well;
 * OMP_NUM_THREADS=1 gives per-core ratios free of it.
 *
 * The table goes to stdout; with --json it goes to stderr and stdout gets one JSON object.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"
#include "kernels/i8gemm.h"

/* ---------------------------------------------------------------- results: table + JSON */

static bench_results g_res;
static FILE *g_tab; /* where the table goes */

static void rec(const char *key, double v) { bench_rec(&g_res, key, v); }

/* ---------------------------------------------------------------- data */

static uint64_t g_rng = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void) {
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static float urand(void) { return (float)(rnd() >> 40) * (2.0f / 16777216.0f) - 1.0f; }

static void *xalloc(size_t bytes) {
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "bench_i8gemm: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

/* ---------------------------------------------------------------- variants */

enum { V_SGEMM, V_GEMM, V_LINEAR, V_LINEAR_DYN };
typedef struct {
    int kind;
    ptq_i8_isa isa;
    double best; /* seconds per call */
} variant;

typedef struct {
    int rows, in, out;
    const float *x, *W, *bias;
    float *y;
    const int8_t *xq;
    int32_t *acc;
    const ptq_i8weight *w;
    float sx;
} problem;

static void run_once(const variant *v, const problem *p) {
    ptq_error err;
    switch (v->kind) {
    case V_SGEMM:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p->rows, p->out, p->in, 1.0f, p->x, p->in, p->W, p->in,
                    0.0f, p->y, p->out);
        break;
    case V_GEMM: ptq_i8gemm_isa(v->isa, p->w, p->xq, p->rows, p->acc); break;
    case V_LINEAR:
        if (ptq_i8_linear(v->isa, p->w, p->x, p->rows, &p->sx, 0, 8, p->bias, p->y, &err) != PTQ_OK) {
            fprintf(stderr, "bench_i8gemm: %s\n", err.msg);
            exit(1);
        }
        break;
    case V_LINEAR_DYN:
        if (ptq_i8_linear(v->isa, p->w, p->x, p->rows, NULL, 1, 8, p->bias, p->y, &err) != PTQ_OK) {
            fprintf(stderr, "bench_i8gemm: %s\n", err.msg);
            exit(1);
        }
        break;
    }
}

/* Mean seconds per call over calls adding up to at least min_s. */
static double sample(const variant *v, const problem *p, double min_s) {
    int n = 0;
    const double t0 = now_s();
    double t;
    do {
        run_once(v, p);
        n++;
        t = now_s() - t0;
    } while (t < min_s);
    return t / n;
}

static const char *kind_name(int k) {
    return k == V_SGEMM ? "sgemm" : k == V_GEMM ? "gemm" : k == V_LINEAR ? "linear" : "linear_dyn";
}

static double g_shape_budget = 3.0; /* seconds of round-robin timing per shape */

static void bench_shape(int rows, int in, int out) {
    char key[96];
    problem p = {.rows = rows, .in = in, .out = out};
    const size_t nx = (size_t)rows * in, nw = (size_t)out * in, ny = (size_t)rows * out;
    float *x = xalloc(nx * sizeof(float)), *W = xalloc(nw * sizeof(float)), *y = xalloc(ny * sizeof(float));
    float *bias = xalloc((size_t)out * sizeof(float)), *sw = xalloc((size_t)out * sizeof(float));
    int8_t *codes = xalloc(nw), *xq = xalloc(nx);
    int32_t *acc = xalloc(ny * sizeof(int32_t));
    for (int o = 0; o < out; o++) {
        sw[o] = 0.02f / 127.0f * (1.0f + 0.5f * urand());
        bias[o] = 0.1f * urand();
    }
    for (size_t i = 0; i < nw; i++) {
        codes[i] = (int8_t)((int)(rnd() % 255u) - 127);
        W[i] = sw[i / (size_t)in] * (float)codes[i]; /* the float layer the codes quantize */
    }
    for (size_t i = 0; i < nx; i++) x[i] = 3.0f * urand();
    p.sx = 3.0f / 127.0f;
    ptq_quantize_act_i8(x, rows, in, &p.sx, 0, 8, xq);
    ptq_i8weight w;
    ptq_error err;
    if (ptq_i8weight_init(&w, codes, sw, out, in, &err) != PTQ_OK) {
        fprintf(stderr, "bench_i8gemm: %s\n", err.msg);
        exit(1);
    }
    p.x = x;
    p.W = W;
    p.bias = bias;
    p.y = y;
    p.xq = xq;
    p.acc = acc;
    p.w = &w;

    variant v[16];
    int nv = 0;
    v[nv++] = (variant){V_SGEMM, PTQ_I8_SCALAR, 1e30};
    const ptq_i8_isa best = ptq_i8_isa_best();
    for (int isa = PTQ_I8_ISA_COUNT - 1; isa >= 1; isa--) {
        if (!ptq_i8_isa_supported((ptq_i8_isa)isa)) continue;
        v[nv++] = (variant){V_GEMM, (ptq_i8_isa)isa, 1e30};
        v[nv++] = (variant){V_LINEAR, (ptq_i8_isa)isa, 1e30};
        if (isa == (int)best) v[nv++] = (variant){V_LINEAR_DYN, (ptq_i8_isa)isa, 1e30};
    }
    /* warm-up: every variant once (page faults, OpenMP and OpenBLAS thread start) */
    for (int i = 0; i < nv; i++) run_once(&v[i], &p);
    const double t_start = now_s();
    int rounds = 0;
    while (rounds < 3 || (now_s() - t_start < g_shape_budget && rounds < 30)) {
        for (int i = 0; i < nv; i++) {
            const double t = sample(&v[i], &p, 0.02);
            if (t < v[i].best) v[i].best = t;
        }
        rounds++;
    }
    /* the scalar reference, once */
    variant vs[2] = {{V_GEMM, PTQ_I8_SCALAR, 0}, {V_LINEAR, PTQ_I8_SCALAR, 0}};
    for (int i = 0; i < 2; i++) vs[i].best = sample(&vs[i], &p, 0.0);

    const double ops = 2.0 * rows * (double)in * out, ts = v[0].best;
    fprintf(g_tab, "\n== %d x %d x %d (rows x in x out), %d rounds ==\n", rows, in, out, rounds);
    fprintf(g_tab, "  %-11s %10s %8s %9s   %10s %8s %9s\n", "kernel", "gemm ms", "GOP/s", "x sgemm", "+quant ms", "GOP/s",
            "x sgemm");
    fprintf(g_tab, "  %-11s %10.3f %8.1f %8.2fx   %10s %8s %9s\n", "sgemm f32", ts * 1e3, ops / ts / 1e9, 1.0, "", "", "");
    snprintf(key, sizeof key, "%dx%dx%d_sgemm_ms", rows, in, out);
    rec(key, ts * 1e3);
    snprintf(key, sizeof key, "%dx%dx%d_sgemm_gops", rows, in, out);
    rec(key, ops / ts / 1e9);
    for (int isa = PTQ_I8_ISA_COUNT - 1; isa >= 0; isa--) {
        const variant *g = NULL, *l = NULL, *d = NULL;
        for (int i = 0; i < nv; i++)
            if (v[i].kind != V_SGEMM && v[i].isa == (ptq_i8_isa)isa) {
                if (v[i].kind == V_GEMM) g = &v[i];
                if (v[i].kind == V_LINEAR) l = &v[i];
                if (v[i].kind == V_LINEAR_DYN) d = &v[i];
            }
        if (isa == PTQ_I8_SCALAR) {
            g = &vs[0];
            l = &vs[1];
        }
        const char *name = ptq_i8_isa_name((ptq_i8_isa)isa);
        if (!g) {
            fprintf(g_tab, "  %-11s (not supported by this CPU)\n", name);
            continue;
        }
        fprintf(g_tab, "  %-11s %10.3f %8.1f %8.2fx   %10.3f %8.1f %8.2fx%s\n", name, g->best * 1e3, ops / g->best / 1e9,
                ts / g->best, l->best * 1e3, ops / l->best / 1e9, ts / l->best, isa == (int)best ? "  <- best" : "");
        if (d)
            fprintf(g_tab, "  %-11s %10s %8s %9s   %10.3f %8.1f %8.2fx  (dynamic per-token scales)\n", "", "", "", "",
                    d->best * 1e3, ops / d->best / 1e9, ts / d->best);
        const variant *vv[3] = {g, l, d};
        for (int k = 0; k < 3; k++) {
            if (!vv[k]) continue;
            snprintf(key, sizeof key, "%dx%dx%d_%s_%s_ms", rows, in, out, name, kind_name(vv[k]->kind));
            rec(key, vv[k]->best * 1e3);
            snprintf(key, sizeof key, "%dx%dx%d_%s_%s_vs_sgemm", rows, in, out, name, kind_name(vv[k]->kind));
            rec(key, ts / vv[k]->best);
        }
        if (isa == (int)best) {
            snprintf(key, sizeof key, "%dx%dx%d_best_gemm_vs_sgemm", rows, in, out);
            rec(key, ts / g->best);
            snprintf(key, sizeof key, "%dx%dx%d_best_linear_vs_sgemm", rows, in, out);
            rec(key, ts / l->best);
        }
    }
    fflush(g_tab);
    ptq_i8weight_free(&w);
    free(x);
    free(W);
    free(y);
    free(bias);
    free(sw);
    free(codes);
    free(xq);
    free(acc);
}

int main(int argc, char **argv) {
    int json, quick;
    if (bench_flags(argc, argv, "bench_i8gemm", &json, &quick)) return 2;
    g_tab = json ? stderr : stdout;
    if (quick) g_shape_budget = 0.5;
    const double load0 = loadavg();
    fprintf(g_tab, "bench_i8gemm: %d OpenMP threads, best kernel %s, load average %.2f\n", omp_get_max_threads(),
            ptq_i8_isa_name(ptq_i8_isa_best()), load0);
    fprintf(g_tab, "OpenBLAS: %s\n", openblas_get_config());
    rec("threads", omp_get_max_threads());
    rec("load_avg_before", load0);
    static const int shapes[][3] = {{128, 4096, 4096}, {512, 4096, 4096}, {128, 4096, 11008}, {1, 4096, 4096}};
    for (int s = 0; s < 4; s++) bench_shape(shapes[s][0], shapes[s][1], shapes[s][2]);
    const double load1 = loadavg();
    rec("load_avg_after", load1);
    fprintf(g_tab, "\nload average after: %.2f (above the thread count, other processes shared the cores)\n", load1);
    if (json) bench_print_json(&g_res, stdout);
    return 0;
}
