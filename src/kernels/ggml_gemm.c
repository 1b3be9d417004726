/* ggml block matrices at run time: the dispatcher, the scalar reference and the tiled path (ggml_gemm.h). */
#include "kernels/ggml_gemm.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

#include "quant/ggml_quants.h"

#define GEMV_BLOCK 16          /* weight rows per OpenMP work item in the GEMV path */
#define TILE 64                /* weight rows per tile of the tiled path */
#define MIN_ROWS 4             /* input rows from which the tiled path runs (bench_ggml_gemm) */
#define PAR_MIN_WORK (1 << 18) /* below this many multiply-adds, stay on one thread */
#define XS_STACK 2048          /* sums of x on the stack: up to 16384 inputs of 4 rows */

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

typedef void (*gemv_fn)(const ptq_ggml_gemv_args *, int, int);

static gemv_fn gemv_of(ptq_isa isa) {
    switch (isa) {
    case PTQ_ISA_AVX512: return ptq_ggml_gemv_avx512;
    case PTQ_ISA_AVX2: return ptq_ggml_gemv_avx2;
    default: return ptq_ggml_gemv_scalar;
    }
}

static ptq_isa clamp(ptq_isa isa) {
    const ptq_isa best = ptq_isa_best();
    return (int)isa < (int)PTQ_ISA_SCALAR || (int)isa > (int)best ? best : isa;
}

static void run_gemv(ptq_isa isa, uint32_t type, const void *w, int out, int in, const float *x, int rows, float *y) {
    const int ns = in / 32;
    const size_t nxs = (size_t)rows * (size_t)ns;
    float stack[XS_STACK], *xs = nxs <= XS_STACK ? stack : malloc(nxs * sizeof *xs);
    if (!xs) { /* no memory for the sums: one row at a time from the stack when it fits, else the reference */
        if (ns <= XS_STACK && rows > 1) {
            for (int r = 0; r < rows; r++)
                run_gemv(isa, type, w, out, in, x + (size_t)r * (size_t)in, 1, y + (size_t)r * (size_t)out);
            return;
        }
        isa = PTQ_ISA_SCALAR;
    } else {
        for (size_t k = 0; k < nxs; k++) {
            const float *xk = x + k * 32;
            float s = 0;
            for (int j = 0; j < 32; j++) s += xk[j];
            xs[k] = s;
        }
    }
    const ptq_ggml_gemv_args a = {type, w, ptq_ggml_row_bytes(type, in), in, out, rows, x, xs, y};
    const gemv_fn f = gemv_of(isa);
    const int nblk = (out + GEMV_BLOCK - 1) / GEMV_BLOCK;
    const int par = (double)out * in * rows >= PAR_MIN_WORK;
#pragma omp parallel for schedule(static) if (par)
    for (int b = 0; b < nblk; b++) {
        const int o0 = b * GEMV_BLOCK, o1 = o0 + GEMV_BLOCK < out ? o0 + GEMV_BLOCK : out;
        f(&a, o0, o1);
    }
    if (xs != stack) free(xs);
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
    run_gemv(clamp(isa), type, w, out, in, x, rows, y);
}

void ptq_ggml_gemm_isa(ptq_isa isa, uint32_t type, const void *w, int out, int in, const float *x, int rows,
                       float *y) {
    ptq_ggml_gemm_path_isa(rows >= MIN_ROWS, isa, type, w, out, in, x, rows, y);
}

void ptq_ggml_gemm(uint32_t type, const void *w, int out, int in, const float *x, int rows, float *y) {
    ptq_ggml_gemm_isa(ptq_isa_best(), type, w, out, in, x, rows, y);
}
