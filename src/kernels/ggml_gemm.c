/* ggml block matrices at run time: the dispatcher, the scalar reference and the tiled path (ggml_gemm.h). */
#include "kernels/ggml_gemm.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "io/gguf.h"
#include "kernels/cpu.h"
#include "kernels/qgemm_a8.h"
#include "kernels/qgemv_a8.h"
#include "quant/ggml_quants.h"

#define GEMV_BLOCK 16          /* weight rows per OpenMP work item in the GEMV path */
#define TILE 64                /* weight rows per tile of the tiled path */
#define MIN_ROWS 16            /* input rows from which the tiled path runs (bench_ggml_gemm: at 16 about even) */
#define PAR_MIN_WORK (1 << 18) /* below this many multiply-adds, stay on one thread */
#define SCRATCH_STACK 32768    /* bytes of per-call scratch on the stack: a decode row of up to 16384 inputs */
#define A8_ROW_BLOCK_MIN 32    /* input rows per int8 GEMM work item when rows are split: one unpacked tile serves them */

int ptq_ggml_gemm_supported(uint32_t type) { return ptq_ggml_quant_supported(type); }

int ptq_ggml_gemm_min_rows(void) { return MIN_ROWS; }

/* Values per block: 32 for the legacy types, 256 for the k-quants. */
static int block_of(uint32_t type) { return ptq_ggml_row_bytes(type, PTQ_GGML_QK) ? PTQ_GGML_QK : PTQ_GGML_QK_K; }

/* The reference: every block unpacked into its codes and parameters, one sum per sub-block. */
void ptq_ggml_gemv_scalar(const ptq_ggml_gemv_args *a, int o0, int o1) {
    const int block = block_of(a->type);
    const size_t bytes = ptq_ggml_row_bytes(a->type, block);
    ptq_ggml_block_params p;
    uint8_t c[PTQ_GGML_QK_K];
    for (int o = o0; o < o1; o++) {
        const uint8_t *row = a->w + (size_t)o * a->row_bytes;
        for (int r = 0; r < a->rows; r++) {
            const float *x = a->x + (size_t)r * (size_t)a->in;
            float sum = 0;
            for (int j0 = 0; j0 < a->in; j0 += block) {
                ptq_ggml_unpack_block(a->type, row + (size_t)(j0 / block) * bytes, &p, c);
                for (int s = 0; s < p.n_sub; s++) {
                    float qx = 0, xs = 0;
                    for (int i = 0; i < p.sub; i++) {
                        const int j = s * p.sub + i;
                        qx += (float)((int)c[j] - (p.affine ? 0 : p.zero)) * x[j0 + j];
                        xs += x[j0 + j];
                    }
                    sum += p.scale[s] * qx - (p.affine ? p.min[s] * xs : 0);
                }
            }
            a->y[(size_t)r * (size_t)a->out + (size_t)o] = sum;
        }
    }
}

void ptq_ggml_a8_quantize(const float *x, int rows, int in, int8_t *q, float *d, int32_t *sum16) {
    for (size_t c = 0; c < (size_t)rows * (size_t)(in / 32); c++) {
        const float *xc = x + 32 * c;
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fabsf(xc[j]) > amax ? fabsf(xc[j]) : amax; /* NaN is skipped */
        const float dc = amax / 127, id = dc > 0 && isfinite(dc) ? 1 / dc : 0;
        d[c] = dc;
        for (int h = 0; h < 2; h++) {
            int32_t sum = 0;
            for (int j = 16 * h; j < 16 * h + 16; j++) {
                const float v = xc[j] * id;
                const int a = v == v ? (int)lrintf(v) : 0; /* round half to even; |v| <= 127 */
                q[32 * c + j] = (int8_t)a;
                sum += a;
            }
            sum16[2 * c + h] = sum;
        }
    }
}

/* The reference with int8 activations: exact integer sums per sub-block, one float factor each. */
void ptq_ggml_gemv_a8_scalar(const ptq_ggml_gemv_args *a, int o0, int o1) {
    const size_t bytes = ptq_ggml_row_bytes(a->type, PTQ_GGML_QK_K);
    const int ns = a->in / 32;
    ptq_ggml_block_params p;
    uint8_t c[PTQ_GGML_QK_K];
    for (int o = o0; o < o1; o++) {
        const uint8_t *row = a->w + (size_t)o * a->row_bytes;
        for (int r = 0; r < a->rows; r++) {
            const int8_t *xq = a->xq + (size_t)r * (size_t)a->in;
            const float *dx = a->dx + (size_t)r * ns, *xs = a->xs32 + (size_t)r * ns, *x16 = a->xs16 + (size_t)r * 2 * ns;
            const int32_t *qs16 = a->qsum16 + (size_t)r * (size_t)(2 * ns);
            float sum = 0;
            for (int j0 = 0; j0 < a->in; j0 += PTQ_GGML_QK_K) {
                ptq_ggml_unpack_block(a->type, row + (size_t)(j0 / PTQ_GGML_QK_K) * bytes, &p, c);
                for (int s = 0; s < p.n_sub; s++) {
                    const int first = j0 + s * p.sub; /* column of the sub-block's first value */
                    int32_t isum = 0;
                    for (int i = 0; i < p.sub; i++) isum += (int32_t)c[s * p.sub + i] * xq[first + i];
                    if (p.affine) {
                        sum += p.scale[s] * dx[first / 32] * (float)isum -
                               p.min[s] * (p.sub == 16 ? x16[first / 16] : xs[first / 32]);
                    } else {
                        isum -= p.zero * qs16[first / 16];
                        sum += p.scale[s] * dx[first / 32] * (float)isum;
                    }
                }
            }
            a->y[(size_t)r * (size_t)a->out + (size_t)o] = sum;
        }
    }
}

static int kquant(uint32_t type) { return type >= PTQ_GGML_Q2_K && type <= PTQ_GGML_Q6_K; }

/* AVX-512 VNNI (GEMV and GEMM), else AVX2 (GEMV; vpmaddubsw) */
int ptq_ggml_a8_supported(uint32_t type) { return kquant(type) && ptq_a8_supported(PTQ_ISA_AVX2); }

typedef void (*gemv_fn)(const ptq_ggml_gemv_args *, int, int);

/* vnni: the AVX2 int8 kernels on AVX-VNNI (the caller checked the CPU) */
static gemv_fn gemv_of(ptq_isa isa, int a8, int vnni) {
    switch (isa) {
    case PTQ_ISA_AVX512: return a8 ? ptq_ggml_gemv_a8_avx512 : ptq_ggml_gemv_avx512;
    case PTQ_ISA_AVX2: return !a8 ? ptq_ggml_gemv_avx2 : vnni ? ptq_ggml_gemv_a8_avxvnni : ptq_ggml_gemv_a8_avx2;
    default: return a8 ? ptq_ggml_gemv_a8_scalar : ptq_ggml_gemv_scalar;
    }
}

static ptq_isa clamp(ptq_isa isa) {
    const ptq_isa best = ptq_isa_best();
    return (int)isa < (int)PTQ_ISA_SCALAR || (int)isa > (int)best ? best : isa;
}

/* The int8 GEMM over work items of (64 outputs, input rows), as ptq's packed one (qgemm_a8.c). 0 when there is no
   memory for the tiles. */
static int run_a8_gemm(ptq_isa isa, int vnni, const ptq_ggml_gemv_args *a) {
    void (*block)(const ptq_ggml_gemv_args *, int, int, int, int, void *) =
        isa == PTQ_ISA_AVX512 ? ptq_ggml_gemm_a8_block_avx512
        : vnni                ? ptq_ggml_gemm_a8_block_avxvnni
                              : ptq_ggml_gemm_a8_block_avx2;
    const int nt = omp_get_max_threads(), nob = (a->out + PTQ_GGML_A8_NB - 1) / PTQ_GGML_A8_NB;
    const int nrb = ptq_gemm_row_blocks(nob, a->rows, nt, A8_ROW_BLOCK_MIN);
    const int rb = (a->rows + nrb - 1) / nrb, items = nob * nrb, nthr = items < nt ? items : nt;
    const size_t tb = ptq_ggml_a8_tile_bytes();
    uint8_t *tiles = aligned_alloc(64, tb * (size_t)nthr);
    if (!tiles) return 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthr) if (nthr > 1)
    for (int it = 0; it < items; it++) {
        const int o0 = it / nrb * PTQ_GGML_A8_NB, o1 = o0 + PTQ_GGML_A8_NB < a->out ? o0 + PTQ_GGML_A8_NB : a->out;
        const int r0 = it % nrb * rb, r1 = r0 + rb < a->rows ? r0 + rb : a->rows;
        if (r0 < r1) block(a, r0, r1, o0, o1, tiles + tb * (size_t)omp_get_thread_num());
    }
    free(tiles);
    return 1;
}

/* The fused path, or with PTQ_GGML_A8_GEMM in flags (int8 activations, AVX2 or AVX-512) the int8 GEMM. a8: int8
   activations (the caller checked the type and the isa). Scratch per input row: the sums of x per 32 and per 16
   columns and, with a8, the activation codes, steps and sums per 16. */
static void run_gemv(ptq_isa isa, int a8, int flags, uint32_t type, const void *w, int out, int in, const float *x,
                     int rows, float *y) {
    const size_t ns = (size_t)(in / 32), per_row = 3 * ns * sizeof(float) + (a8 ? in + ns * (sizeof(float) + 8) : 0);
    const size_t need = (size_t)rows * per_row + 64;
    _Alignas(64) unsigned char stack[SCRATCH_STACK];
    unsigned char *buf = need <= SCRATCH_STACK ? stack : malloc(need);
    if (!buf) { /* no memory: one row at a time from the stack when it fits, else the float reference */
        if (rows > 1 && per_row + 64 <= SCRATCH_STACK) {
            for (int r = 0; r < rows; r++)
                run_gemv(isa, a8, flags & ~PTQ_GGML_A8_GEMM, type, w, out, in, x + (size_t)r * (size_t)in, 1,
                         y + (size_t)r * (size_t)out);
            return;
        }
        isa = PTQ_ISA_SCALAR, a8 = 0;
    }
    ptq_ggml_gemv_args a = {type, w, ptq_ggml_row_bytes(type, in), in, out, rows, x, NULL, NULL, y, NULL, NULL, NULL};
    if (buf) {
        float *xs = (float *)buf, *x16 = xs + (size_t)rows * ns;
        for (size_t k = 0; k < (size_t)rows * 2 * ns; k++) {
            const float *xk = x + k * 16;
            float s = 0;
            for (int j = 0; j < 16; j++) s += xk[j];
            x16[k] = s;
        }
        for (size_t k = 0; k < (size_t)rows * ns; k++) xs[k] = x16[2 * k] + x16[2 * k + 1];
        a.xs32 = xs, a.xs16 = x16;
        if (a8) {
            float *dx = x16 + (size_t)rows * 2 * ns;
            int32_t *qs16 = (int32_t *)(dx + (size_t)rows * ns);
            int8_t *xq = (int8_t *)(qs16 + (size_t)rows * 2 * ns);
            ptq_ggml_a8_quantize(x, rows, in, xq, dx, qs16);
            a.xq = xq, a.dx = dx, a.qsum16 = qs16;
        }
    }
    const int vnni = isa == PTQ_ISA_AVX2 && !(flags & PTQ_GGML_A8_NO_AVXVNNI) && ptq_cpu_has(PTQ_CPU_AVXVNNI);
    if (buf && a8 && (flags & PTQ_GGML_A8_GEMM) && isa != PTQ_ISA_SCALAR && run_a8_gemm(isa, vnni, &a)) {
        if (buf != stack) free(buf);
        return;
    }
    const gemv_fn f = gemv_of(isa, a8, vnni);
    const int nblk = (out + GEMV_BLOCK - 1) / GEMV_BLOCK;
    const int par = (double)out * in * rows >= PAR_MIN_WORK;
#pragma omp parallel for schedule(static) if (par)
    for (int b = 0; b < nblk; b++) {
        const int o0 = b * GEMV_BLOCK, o1 = o0 + GEMV_BLOCK < out ? o0 + GEMV_BLOCK : out;
        f(&a, o0, o1);
    }
    if (buf != stack) free(buf);
}

/* OpenMP over 64-row tiles: each thread dequantizes its tile exactly and multiplies it with one sgemm (which runs
   single-threaded inside the parallel region); the tile is still in the thread's cache when sgemm reads it. */
static int run_tiles(uint32_t type, const void *w, int out, int in, const float *x, int rows, float *y) {
    const int nt = omp_get_max_threads();
    float *heap = malloc((size_t)nt * TILE * (size_t)in * sizeof *heap);
    if (!heap) return 0;
    const size_t rb = ptq_ggml_row_bytes(type, in);
    const int ntiles = (out + TILE - 1) / TILE;
    const int par = (double)out * in * rows >= PAR_MIN_WORK;
#pragma omp parallel if (par)
    {
        float *buf = heap + (size_t)omp_get_thread_num() * TILE * (size_t)in;
#pragma omp for schedule(static)
        for (int t = 0; t < ntiles; t++) {
            const int o0 = t * TILE, o1 = o0 + TILE < out ? o0 + TILE : out;
            /* cannot fail: the type and the row length were checked by whoever built the matrix */
            (void)ptq_ggml_dequantize_rows(type, (const uint8_t *)w + (size_t)o0 * rb, buf, o1 - o0, in, NULL);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, o1 - o0, in, 1.0f, x, in, buf, in, 0.0f,
                        y + o0, out);
        }
    }
    free(heap);
    return 1;
}

void ptq_ggml_gemm_path_isa(int tiles, ptq_isa isa, uint32_t type, const void *w, int out, int in, const float *x,
                            int rows, float *y) {
    if (tiles && run_tiles(type, w, out, in, x, rows, y)) return;
    run_gemv(clamp(isa), 0, 0, type, w, out, in, x, rows, y);
}

void ptq_ggml_gemm_a8_path(int flags, ptq_isa isa, uint32_t type, const void *w, int out, int in, const float *x,
                           int rows, float *y) {
    if (!kquant(type) || !ptq_a8_supported(isa)) ptq_ggml_gemm_isa(isa, type, w, out, in, x, rows, y);
    else run_gemv(isa, 1, flags, type, w, out, in, x, rows, y);
}

/* Decoding on the GEMV kernels, a prompt on the GEMM: from 4 rows with AVX-512 VNNI (bench_ggml_gemm, Q4_K 4096 x
   4096: 4 rows 0.70 ms vs 0.91 on the GEMV kernels, 256 rows 13.4 vs 57; RESULTS §28), from 8 with AVX2 (vpmaddubsw
   costs three instructions per vpdpbusd: about even at 4-8 rows, 2-2.5x at 256). */
int ptq_ggml_a8_gemm_min_rows(ptq_isa isa) { return isa == PTQ_ISA_AVX512 ? 4 : 8; }

void ptq_ggml_gemm_a8_isa(ptq_isa isa, uint32_t type, const void *w, int out, int in, const float *x, int rows,
                          float *y) {
    ptq_ggml_gemm_a8_path(rows >= ptq_ggml_a8_gemm_min_rows(isa) ? PTQ_GGML_A8_GEMM : 0, isa, type, w, out, in, x, rows,
                          y);
}

void ptq_ggml_gemm_a8(uint32_t type, const void *w, int out, int in, const float *x, int rows, float *y) {
    if (!ptq_ggml_a8_supported(type)) ptq_ggml_gemm(type, w, out, in, x, rows, y);
    else ptq_ggml_gemm_a8_isa(ptq_a8_isa_best(), type, w, out, in, x, rows, y);
}

void ptq_ggml_gemm_isa(ptq_isa isa, uint32_t type, const void *w, int out, int in, const float *x, int rows,
                       float *y) {
    ptq_ggml_gemm_path_isa(rows >= MIN_ROWS, isa, type, w, out, in, x, rows, y);
}

void ptq_ggml_gemm(uint32_t type, const void *w, int out, int in, const float *x, int rows, float *y) {
    ptq_ggml_gemm_isa(ptq_isa_best(), type, w, out, in, x, rows, y);
}
