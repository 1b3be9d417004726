/* Run-time kernel selection and the quantized-GEMM paths.
 *
 * Few rows (decoding, < ptq_qgemm_min_rows(isa)): fused GEMV kernels that unpack codes in registers,
 * OpenMP over blocks of 16 weight rows (schedule static). Many rows: the weight matrix is
 * dequantized a tile of rows at a time into a per-thread float buffer and multiplied with
 * cblas_sgemm; it is never expanded whole. Both share xp (x permuted by perm, zero-padded to whole
 * 32-column chunks) and its per-group sums, computed once per call.
 *
 * Measured with bench_qgemv (2-core Xeon with AVX-512, OpenBLAS-openmp, OMP_WAIT_POLICY=passive):
 * - tiled threading: OpenMP over 64-row tiles, each thread dequantizing its tile and calling
 *   single-threaded sgemm on it (PTQ_QGEMM_TILES_PARALLEL), against 256-row tiles dequantized in
 *   parallel then multiplied by threaded sgemm (PTQ_QGEMM_TILES_SERIAL): 64 rows x 4096 x 4096 /
 *   11008, on a quiet machine parallel 1.17-1.31x the float sgemm time vs serial 1.37-1.49x; when
 *   other processes load the cores serial is ~5% ahead, and with the default (spinning) wait
 *   policy serial is ~10x slower (one fork/join per tile plus sgemm's own). Parallel tiles it is:
 *   one parallel region per call, and each tile is still in its thread's cache when sgemm reads it.
 *   Tile heights 64, 128, 256 were within noise; 64 keeps the buffer (1 MiB at in = 4096) in L2.
 * - crossover (W4 g32, 4096 and 11008 x 4096): the fused GEMV time grows linearly with rows, the
 *   tiled path starts at the dequantization cost: AVX2 about equal at 12 rows, AVX-512 at 16-24
 *   rows depending on the run (4096 x 4096 at 16 rows: 9.6 vs 11.2 ms in one run, 12.1 vs 11.2 in
 *   another; at 32 rows tiled always wins). At 8 rows the fused path is ~2x faster than tiled, so
 *   the brief's "rows < 8" was raised. The scalar GEMV is a reference only (GCC does not vectorize
 *   it well): dequantize + sgemm is faster for any row count.
 */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "kernels/cpu.h"
#include "kernels/qgemm_impl.h"

#define GEMV_BLOCK 16          /* weight rows per OpenMP work item in the GEMV path */
#define TILE_PAR 64            /* weight rows per tile, PTQ_QGEMM_TILES_PARALLEL */
#define TILE_SER 256           /* weight rows per tile, PTQ_QGEMM_TILES_SERIAL */
#define PAR_MIN_WORK (1 << 18) /* below this many multiply-adds, stay on one thread */
#define XSUM_STACK 2048
#define BUF_STACK 16384 /* floats (64 KiB): xp of one row up to 16384 inputs */

ptq_isa ptq_isa_best(void) {
    if (!ptq_cpu_has(PTQ_CPU_AVX2 | PTQ_CPU_FMA | PTQ_CPU_F16C)) return PTQ_ISA_SCALAR;
    if (ptq_cpu_has(PTQ_CPU_AVX512F | PTQ_CPU_AVX512BW | PTQ_CPU_AVX512VL)) return PTQ_ISA_AVX512;
    return PTQ_ISA_AVX2;
}

const char *ptq_isa_name(ptq_isa isa) {
    switch (isa) {
    case PTQ_ISA_SCALAR: return "scalar";
    case PTQ_ISA_AVX2: return "avx2";
    case PTQ_ISA_AVX512: return "avx512";
    }
    return "unknown";
}

/* The requested ISA, or the best one the CPU has below it. */
static ptq_isa clamp_isa(ptq_isa isa) {
    ptq_isa best = ptq_isa_best();
    if ((int)isa < (int)PTQ_ISA_SCALAR || (int)isa > (int)best) return best;
    return isa;
}

typedef void (*gemv_fn)(const ptq_qgemv_args *, int, int);
typedef void (*dequant_fn)(const ptq_qweight *, int, int, float *, size_t);

static gemv_fn gemv_for(ptq_isa isa) {
    switch (isa) {
    case PTQ_ISA_AVX512: return ptq_qgemv_avx512;
    case PTQ_ISA_AVX2: return ptq_qgemv_avx2;
    default: return ptq_qgemv_scalar;
    }
}

static dequant_fn dequant_for(ptq_isa isa) {
    switch (isa) {
    case PTQ_ISA_AVX512: return ptq_qdequant_avx512;
    case PTQ_ISA_AVX2: return ptq_qdequant_avx2;
    default: return ptq_qdequant_scalar;
    }
}

static int nchunks_of(const ptq_qweight *w) { return (w->in + PTQ_QCHUNK - 1) / PTQ_QCHUNK; }

static int cpg_of(const ptq_qweight *w) { return w->group % PTQ_QCHUNK == 0 ? w->group / PTQ_QCHUNK : nchunks_of(w); }

/* xp = x permuted and zero-padded to ldx columns into buf; x itself when buf is NULL (the caller
 * passes NULL when no perm, in a multiple of 32 and no transposed layout make xp == x). */
static const float *prepare_xp(const ptq_qweight *w, const float *x, int rows, size_t ldx, float *buf) {
    if (!buf) return x; /* only when x is already in xp layout */
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * (size_t)w->in;
        float *d = buf + (size_t)r * ldx;
        if (w->perm)
            for (int j = 0; j < w->in; j++) d[j] = xr[w->perm[j]];
        else
            memcpy(d, xr, (size_t)w->in * sizeof(float));
        for (size_t j = (size_t)w->in; j < ldx; j++) d[j] = 0.0f;
    }
    return buf;
}

int ptq_qgemv_x_transposed(ptq_isa isa, int bits) { return isa == PTQ_ISA_AVX512 && bits == 4; }

/* Each 16 columns as a 4x4 transpose (its own inverse): position 4a + b <-> column 4b + a. */
static void transpose_x16(float *xp, int rows, size_t ldx) {
    for (size_t i = 0; i < (size_t)rows * ldx; i += 16)
        for (int a = 0; a < 4; a++)
            for (int b = a + 1; b < 4; b++) {
                float t = xp[i + (size_t)(4 * a + b)];
                xp[i + (size_t)(4 * a + b)] = xp[i + (size_t)(4 * b + a)];
                xp[i + (size_t)(4 * b + a)] = t;
            }
}

/* Sums of xp over each group (in double, rounded once). */
static void prepare_xsum(const ptq_qweight *w, const float *xp, int rows, size_t ldx, float *xsum) {
    const int nch = nchunks_of(w), cpg = cpg_of(w);
    for (int r = 0; r < rows; r++)
        for (int g = 0; g < w->n_groups; g++) {
            size_t j0 = (size_t)g * (size_t)cpg * PTQ_QCHUNK;
            size_t j1 = (size_t)(g + 1) * (size_t)cpg * PTQ_QCHUNK;
            if (j1 > (size_t)nch * PTQ_QCHUNK) j1 = (size_t)nch * PTQ_QCHUNK;
            double s = 0.0;
            for (size_t j = j0; j < j1; j++) s += xp[(size_t)r * ldx + j];
            xsum[(size_t)r * (size_t)w->n_groups + (size_t)g] = (float)s;
        }
}

/* Needs no memory: per element, for when the buffers of the fast paths cannot be allocated. */
static void qgemm_direct(const ptq_qweight *w, const float *x, int rows, float *y) {
    const int nch = nchunks_of(w), cpg = cpg_of(w);
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * (size_t)w->in;
        for (int o = 0; o < w->out; o++) {
            const uint8_t *codes = w->codes + (size_t)o * w->row_bytes;
            double acc = 0.0;
            for (int g = 0; g < w->n_groups; g++) {
                const int c1 = (g + 1) * cpg < nch ? (g + 1) * cpg : nch;
                double dot = 0.0, xs = 0.0;
                for (int c = g * cpg; c < c1; c++) {
                    uint8_t q[PTQ_QCHUNK];
                    ptq_unpack_chunk(w->bits, codes + (size_t)c * 4u * (size_t)w->bits, q);
                    for (int k = 0; k < PTQ_QCHUNK && c * PTQ_QCHUNK + k < w->in; k++) {
                        const int j = c * PTQ_QCHUNK + k;
                        const double xv = xr[w->perm ? w->perm[j] : j];
                        dot += q[k] * xv;
                        xs += xv;
                    }
                }
                const size_t gi = (size_t)o * (size_t)w->n_groups + (size_t)g;
                acc += (double)ptq_f16_to_f32(w->scales[gi]) * (dot - (double)ptq_qweight_zeros_of(w, o)[g] * xs);
            }
            y[(size_t)r * (size_t)w->out + (size_t)o] = (float)acc;
        }
    }
}

static void run_gemv(ptq_isa isa, const ptq_qweight *w, const float *x, int rows, float *y) {
    const int nch = nchunks_of(w);
    const size_t ldx = (size_t)nch * PTQ_QCHUNK;
    const size_t nxs = (size_t)rows * (size_t)w->n_groups;
    const int transposed = ptq_qgemv_x_transposed(isa, w->bits);
    const int need_xp = w->perm != NULL || ldx != (size_t)w->in || transposed;
    float xs_stack[XSUM_STACK];
    _Alignas(64) float buf_stack[BUF_STACK]; /* decoding: xp fits here, no allocation per call */
    float *heap = NULL, *xsum = xs_stack, *xbuf = NULL;
    const size_t nxs_heap = nxs > XSUM_STACK ? (nxs + 15) / 16 * 16 : 0; /* keeps xbuf 64-byte aligned */
    const size_t nheap = nxs_heap + (need_xp ? (size_t)rows * ldx : 0);
    if (nheap) {
        heap = nheap <= BUF_STACK ? buf_stack : aligned_alloc(64, (nheap * sizeof(float) + 63) / 64 * 64);
        if (!heap) {
            qgemm_direct(w, x, rows, y);
            return;
        }
        if (nxs > XSUM_STACK) xsum = heap;
        if (need_xp) xbuf = heap + nxs_heap;
    }
    const float *xp = prepare_xp(w, x, rows, ldx, xbuf);
    if (transposed) transpose_x16(xbuf, rows, ldx);
    prepare_xsum(w, xp, rows, ldx, xsum); /* a group is whole chunks: its sum ignores the order */
    const ptq_qgemv_args args = {w, rows, nch, cpg_of(w), ldx, xp, xsum, y};
    const gemv_fn fn = gemv_for(isa);
    const int nblk = (w->out + GEMV_BLOCK - 1) / GEMV_BLOCK;
    const int par = (double)w->out * (double)w->in * (double)rows >= PAR_MIN_WORK && nblk > 1;
#pragma omp parallel for schedule(static) if (par)
    for (int b = 0; b < nblk; b++) {
        const int o0 = b * GEMV_BLOCK;
        const int o1 = o0 + GEMV_BLOCK < w->out ? o0 + GEMV_BLOCK : w->out;
        fn(&args, o0, o1);
    }
    if (heap != buf_stack) free(heap);
}

static void run_tiles(int parallel_tiles, ptq_isa isa, const ptq_qweight *w, const float *x, int rows, float *y) {
    const size_t ldx = (size_t)nchunks_of(w) * PTQ_QCHUNK;
    const int need_xp = w->perm != NULL || ldx != (size_t)w->in;
    const int tile = parallel_tiles ? TILE_PAR : TILE_SER;
    const int nt = parallel_tiles ? omp_get_max_threads() : 1;
    const size_t ntile = (size_t)nt * (size_t)tile * ldx;
    const size_t nxp = need_xp ? (size_t)rows * ldx : 0;
    float *heap = aligned_alloc(64, ((ntile + nxp) * sizeof(float) + 63) / 64 * 64);
    if (!heap) {
        qgemm_direct(w, x, rows, y);
        return;
    }
    const float *xp = prepare_xp(w, x, rows, ldx, need_xp ? heap + ntile : NULL);
    const dequant_fn dq = dequant_for(isa);
    const int ntiles = (w->out + tile - 1) / tile;
    const int par = (double)w->out * (double)w->in * (double)rows >= PAR_MIN_WORK && w->out > 1;
    if (parallel_tiles) {
        /* sgemm inside a parallel region runs single-threaded (OpenBLAS checks omp_in_parallel) */
#pragma omp parallel if (par)
        {
            float *buf = heap + (size_t)omp_get_thread_num() * (size_t)tile * ldx;
#pragma omp for schedule(static)
            for (int t = 0; t < ntiles; t++) {
                const int o0 = t * tile, o1 = o0 + tile < w->out ? o0 + tile : w->out;
                dq(w, o0, o1, buf, ldx);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, o1 - o0, w->in, 1.0f, xp, (int)ldx, buf,
                            (int)ldx, 0.0f, y + o0, w->out);
            }
        }
    } else {
        for (int t = 0; t < ntiles; t++) {
            const int o0 = t * tile, o1 = o0 + tile < w->out ? o0 + tile : w->out;
            const int nb = (o1 - o0 + 7) / 8;
#pragma omp parallel for schedule(static) if (par)
            for (int b = 0; b < nb; b++) {
                const int b0 = o0 + 8 * b, b1 = b0 + 8 < o1 ? b0 + 8 : o1;
                dq(w, b0, b1, heap + (size_t)(b0 - o0) * ldx, ldx);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, o1 - o0, w->in, 1.0f, xp, (int)ldx, heap,
                        (int)ldx, 0.0f, y + o0, w->out);
        }
    }
    free(heap);
}

void ptq_qgemm_path_isa(ptq_qgemm_path path, ptq_isa isa, const ptq_qweight *w, const float *x, int rows, float *y) {
    if (rows <= 0 || w->out <= 0 || w->in <= 0) return;
    isa = clamp_isa(isa);
    switch (path) {
    case PTQ_QGEMM_TILES_PARALLEL: run_tiles(1, isa, w, x, rows, y); break;
    case PTQ_QGEMM_TILES_SERIAL: run_tiles(0, isa, w, x, rows, y); break;
    case PTQ_QGEMM_DIRECT: qgemm_direct(w, x, rows, y); break;
    default: run_gemv(isa, w, x, rows, y); break;
    }
}

int ptq_qgemm_min_rows(ptq_isa isa) {
    switch (clamp_isa(isa)) {
    case PTQ_ISA_AVX512: return 16;
    case PTQ_ISA_AVX2: return 12;
    default: return 1; /* the scalar GEMV is a reference: dequantize + sgemm beats it even for one row */
    }
}

void ptq_qgemm_isa(ptq_isa isa, const ptq_qweight *w, const float *x, int rows, float *y) {
    isa = clamp_isa(isa);
    ptq_qgemm_path_isa(rows < ptq_qgemm_min_rows(isa) ? PTQ_QGEMM_GEMV : PTQ_QGEMM_TILES_PARALLEL, isa, w, x, rows, y);
}

void ptq_qgemm(const ptq_qweight *w, const float *x, int rows, float *y) {
    ptq_qgemm_isa(ptq_isa_best(), w, x, rows, y);
}
