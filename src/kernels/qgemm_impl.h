/* Internal interface between the quantized-GEMM dispatcher (dispatch.c) and its per-ISA kernels
 * (qgemm_scalar.c, qgemm_avx2.c, qgemm_avx512.c). Not part of the public API; the benchmark and
 * the kernel test include it to time / check individual paths.
 *
 * The dispatcher prepares, once per call, the permuted and zero-padded input xp and its per-group
 * sums xsum; a GEMV kernel then computes, for a range of weight rows o and every input row r,
 *     y[r][o] = sum_g s[o][g] * dot_g  -  sum_g s[o][g] * z[o][g] * xsum[r][g],
 *     dot_g   = sum_{j in g} q[o][j] * xp[r][j].
 * A dequantize kernel expands a range of weight rows to floats in packed column order (for the
 * tiled GEMM path, which multiplies them with xp through cblas_sgemm).
 */
#ifndef PTQ_KERNELS_QGEMM_IMPL_H
#define PTQ_KERNELS_QGEMM_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/qweight.h"

typedef struct ptq_qgemv_args {
    const ptq_qweight *w;
    int rows;          /* input rows */
    int nchunks;       /* 32-column chunks per weight row: ceil(in / 32) */
    int cpg;           /* chunks per group (the last group may have fewer) */
    size_t ldx;        /* row stride of xp: nchunks * 32 */
    const float *xp;   /* [rows][ldx]: x permuted by perm, zero-padded; for the AVX-512 4-bit
                          kernel each 16 columns are stored 4x4-transposed (see ptq_qgemv_x_order) */
    const float *xsum; /* [rows][n_groups]: sums of xp over each group */
    float *y;          /* [rows][out] */
} ptq_qgemv_args;

/* Whether the GEMV kernel of `isa` wants xp with each 16 columns 4x4-transposed (position i
 * holding column 4 * (i % 4) + i / 4): AVX-512 with 4 bits, which unpacks codes in that order
 * (one 16-byte broadcast, per-lane shifts, table lookups: no byte-to-dword shuffle). */
int ptq_qgemv_x_transposed(ptq_isa isa, int bits);

/* y[r][o] for o in [o0, o1) and every r (single-threaded). */
void ptq_qgemv_scalar(const ptq_qgemv_args *a, int o0, int o1);
void ptq_qgemv_avx2(const ptq_qgemv_args *a, int o0, int o1);
void ptq_qgemv_avx512(const ptq_qgemv_args *a, int o0, int o1);

/* dst[(o - o0) * ld + j] = s[o][g(j)] * (q[o][j] - z[o][g(j)]) for j < nchunks * 32 (packed order,
 * including the padded columns), o in [o0, o1). ld >= nchunks * 32. */
void ptq_qdequant_scalar(const ptq_qweight *w, int o0, int o1, float *dst, size_t ld);
void ptq_qdequant_avx2(const ptq_qweight *w, int o0, int o1, float *dst, size_t ld);
void ptq_qdequant_avx512(const ptq_qweight *w, int o0, int o1, float *dst, size_t ld);

/* Paths of ptq_qgemm_isa, callable directly for tests and benchmarks (any rows >= 1).
 * ptq_qgemm_isa uses the fused GEMV path below ptq_qgemm_min_rows(isa) rows and
 * PTQ_QGEMM_TILES_PARALLEL from there on. Without memory for their buffers the paths fall back to
 * PTQ_QGEMM_DIRECT, which needs none. */
typedef enum {
    PTQ_QGEMM_GEMV = 0,       /* fused kernels, OpenMP over weight rows */
    PTQ_QGEMM_TILES_PARALLEL, /* OpenMP over 64-row tiles: dequantize + single-threaded sgemm */
    PTQ_QGEMM_TILES_SERIAL,   /* 256-row tiles one after another: parallel dequantize + threaded sgemm */
    PTQ_QGEMM_DIRECT          /* the fallback: no buffers, element by element, accumulates in double */
} ptq_qgemm_path;
void ptq_qgemm_path_isa(ptq_qgemm_path path, ptq_isa isa, const ptq_qweight *w, const float *x, int rows, float *y);
/* Fewest input rows for which ptq_qgemm_isa takes the tiled path (measured by bench_qgemv). */
int ptq_qgemm_min_rows(ptq_isa isa);

/* Checks everything the kernels rely on: bits, shape, group (a multiple of 32 or == in), n_groups,
 * row_bytes, non-NULL arrays, zero points < 2^bits, finite scales (no fp16 Inf/NaN), and
 * perm a permutation of 0..in-1. `name` names the tensor in the message. For whoever builds a
 * ptq_qweight from a file (proposed for qweight.h). */
ptq_status ptq_qweight_validate(const ptq_qweight *w, const char *name, ptq_error *err);

/* Codes of one 32-column chunk (4 * bits bytes) into q[0..31] (layouts in qweight.h). */
static inline __attribute__((always_inline)) void ptq_unpack_chunk(int bits, const uint8_t *src, uint8_t *q) {
    if (bits == 8) {
        for (int j = 0; j < 32; j++) q[j] = src[j];
        return;
    }
    if (bits < 2 || bits > 8) {
        for (int j = 0; j < 32; j++) q[j] = 0;
        return;
    }
    const int lo = bits >= 4 ? 4 : 2; /* width of the low part: nibbles or the 2-bit layout */
    const int nb = bits - lo;         /* high bits: 0, 1 (a 32-bit plane), 2 or 3 (2-bit layout + plane) */
    const uint8_t *h = src + 4 * lo;
    if (lo == 4)
        for (int k = 0; k < 16; k++) {
            q[k] = src[k] & 15u;
            q[k + 16] = src[k] >> 4;
        }
    else
        for (int k = 0; k < 8; k++)
            for (int i = 0; i < 4; i++) q[k + 8 * i] = (src[k] >> (2 * i)) & 3u;
    if (nb >= 2) {
        for (int k = 0; k < 8; k++)
            for (int i = 0; i < 4; i++) q[k + 8 * i] |= (uint8_t)(((h[k] >> (2 * i)) & 3u) << lo);
        h += 8;
    }
    if (nb == 1 || nb == 3) {
        const uint32_t p = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
        const int at = lo + (nb == 3 ? 2 : 0);
        for (int j = 0; j < 32; j++) q[j] |= (uint8_t)(((p >> j) & 1u) << at);
    }
}

#endif
