/* Products with matrices held in ggml's block types (quant/ggml_quants.h) at run time.
 *
 * A GGUF's k-quant matrices (Q2_K..Q6_K) and its Q4_1 / Q5_1 ones have no lossless place in ptq's packed format
 * (kernels/qweight.h: one fp16 step per 32 columns and an integer zero point); rather than widening them to
 * float32 at load (7x the bytes of Q4_K), ptq keeps the file's blocks and multiplies with them directly:
 *  - few input rows (decoding): a fused kernel per output row that turns each block's codes into its values in
 *    registers and multiplies them with x (AVX-512 and AVX2 kernels for Q4_K, Q5_K and Q6_K; every other type
 *    expands one block at a time and runs a SIMD dot product);
 *  - many rows (prefill, perplexity): OpenMP over tiles of 64 output rows, each dequantized exactly
 *    (ptq_ggml_dequantize_rows, llama.cpp's values bit for bit) and multiplied by a single-threaded sgemm.
 * The weight values are ggml's (the AVX-512 kernels compute each value as ggml does, d*sc*q - dmin*m); the
 * results differ from a float32 GEMM of the dequantized matrix only in the order of the float additions.
 * A scalar reference (ptq_ggml_gemv_scalar) is tested against every SIMD kernel.
 */
#ifndef PTQ_KERNELS_GGML_GEMM_H
#define PTQ_KERNELS_GGML_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/qweight.h"

/* 1 for the ten block types of quant/ggml_quants.h (Q4_0 ... Q6_K). */
int ptq_ggml_gemm_supported(uint32_t type);

/* y[rows][out] = x[rows][in] * W^T, W: out rows of ptq_ggml_row_bytes(type, in) bytes (in a multiple of the
 * type's block; the caller checks both). Threads over output rows with OpenMP. No allocation below
 * ptq_ggml_gemm_min_rows rows (decoding) when in <= 16384. */
void ptq_ggml_gemm(uint32_t type, const void *w, int out, int in, const float *x, int rows, float *y);
void ptq_ggml_gemm_isa(ptq_isa isa, uint32_t type, const void *w, int out, int in, const float *x, int rows,
                       float *y);

/* ---- internal: the paths and the per-ISA kernels, for tests and benchmarks */

/* 0: fused GEMV kernels (any rows), 1: dequantized tiles + sgemm (falls back to 0 without memory). */
void ptq_ggml_gemm_path_isa(int tiles, ptq_isa isa, uint32_t type, const void *w, int out, int in, const float *x,
                            int rows, float *y);
/* Fewest input rows that take the tiled path. */
int ptq_ggml_gemm_min_rows(void);

typedef struct ptq_ggml_gemv_args {
    uint32_t type;
    const uint8_t *w;
    size_t row_bytes;
    int in, out, rows;
    const float *x;    /* [rows][in] */
    const float *xs32; /* [rows][in / 32]: sums of x over each 32 columns (the AVX2 affine kernels' offsets) */
    float *y;          /* [rows][out] */
} ptq_ggml_gemv_args;

/* y[r][o] for o in [o0, o1) and every input row r (single-threaded). */
void ptq_ggml_gemv_scalar(const ptq_ggml_gemv_args *a, int o0, int o1);
void ptq_ggml_gemv_avx2(const ptq_ggml_gemv_args *a, int o0, int o1);
void ptq_ggml_gemv_avx512(const ptq_ggml_gemv_args *a, int o0, int o1);

/* The 6-bit sub-block scales and mins of Q4_K / Q5_K (12 bytes -> 8 + 8), as ggml's get_scale_min_k4. */
static inline void ptq_ggml_k4_scales(const uint8_t *b, uint8_t *sc, uint8_t *mn) {
    for (int j = 0; j < 4; j++) sc[j] = b[j] & 63, mn[j] = b[j + 4] & 63;
    for (int j = 4; j < 8; j++) {
        sc[j] = (uint8_t)((b[j + 4] & 15) | ((b[j - 4] >> 6) << 4));
        mn[j] = (uint8_t)((b[j + 4] >> 4) | ((b[j] >> 6) << 4));
    }
}

#endif
