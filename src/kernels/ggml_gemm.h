/* Products with matrices held in ggml's block types (quant/ggml_quants.h) at run time.
 *
 * A GGUF's k-quant matrices (Q2_K..Q6_K) and its Q4_1 / Q5_1 ones have no lossless place in ptq's packed format
 * (kernels/qweight.h: one fp16 step per 32 columns and an integer zero point); rather than widening them to
 * float32 at load (7x the bytes of Q4_K), ptq keeps the file's blocks and multiplies with them directly:
 *  - few input rows (decoding): a fused kernel per output row that turns each block's codes into floats in
 *    registers, one sum of q * x per sub-block scaled by its step, the offsets times precomputed sums of x
 *    (AVX-512 and AVX2 kernels for Q2_K..Q6_K; Q4_1 and Q5_1 expand one block at a time exactly and run a SIMD
 *    dot product); with int8 activations (opt-in, below) integer kernels per sub-block;
 *  - many rows (prefill, perplexity): OpenMP over tiles of 64 output rows, each dequantized exactly
 *    (ptq_ggml_dequantize_rows, llama.cpp's values bit for bit) and multiplied by a single-threaded sgemm.
 * The weights are ggml's; the results differ from a float32 GEMM of the dequantized matrix only in the order of
 * the float additions. A scalar reference (ptq_ggml_gemv_scalar) is tested against every SIMD kernel.
 */
#ifndef PTQ_KERNELS_GGML_GEMM_H
#define PTQ_KERNELS_GGML_GEMM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/qweight.h"

/* 1 for the ten block types of quant/ggml_quants.h (Q4_0 ... Q6_K). */
int ptq_ggml_gemm_supported(uint32_t type);

/* y[rows][out] = x[rows][in] * W^T, W: out rows of ptq_ggml_row_bytes(type, in) bytes (in a multiple of the
 * type's block; the caller checks both). Threads over output rows with OpenMP. No allocation for one input row
 * (a decoded token) of up to 16384 inputs, with float or int8 activations. */
void ptq_ggml_gemm(uint32_t type, const void *w, int out, int in, const float *x, int rows, float *y);
void ptq_ggml_gemm_isa(ptq_isa isa, uint32_t type, const void *w, int out, int in, const float *x, int rows,
                       float *y);

/* Int8 activations (opt-in, like ptq_model_set_act8 for packed layers), decoding and prefill: x is quantized per
 * 32 columns as llama.cpp's q8 activations (d = max|x| / 127, a = round_half_even(x / d), NaN -> 0)
 * and each sub-block's product is an exact integer dot product (AVX-512 VNNI: vpdpbusd of 64 codes by 64
 * activation codes; AVX2: vpmaddubsw + vpmaddwd of 32) times one float factor:
 *   Q4_K / Q5_K   y = sum_s d*sc[s] * d_x[s] * sum_j q_j a_j  -  dmin*m[s] * sum_j x_j   (sub-blocks of 32)
 *   Q2_K          y = sum_s d*sc[s] * d_x[s/2] * sum_j q_j a_j  -  dmin*m[s] * sum_j x_j (sub-blocks of 16)
 *   Q3_K, Q6_K    y = sum_s step[s] * d_x[s/2] * (sum_j q_j a_j - z sum_j a_j)           (16; z = 4, 32)
 * so |y - y_float| <= sum_j |w_j| d_x(j) / 2 (plus float rounding). GEMV kernels per output row for decoding
 * (AVX-512 VNNI, else AVX2), and an int8 GEMM from ptq_ggml_a8_gemm_min_rows(isa) rows. The legacy
 * types (Q4_1, Q5_1; Q4_0, Q5_0 and Q8_0 load packed) and CPUs without AVX2 take ptq_ggml_gemm (float
 * activations). */
int ptq_ggml_a8_supported(uint32_t type);
void ptq_ggml_gemm_a8(uint32_t type, const void *w, int out, int in, const float *x, int rows, float *y);
/* isa PTQ_ISA_SCALAR (the reference), PTQ_ISA_AVX2 or PTQ_ISA_AVX512 (VNNI), where the CPU has it, for tests: any
   rows (an isa the CPU lacks: ptq_ggml_gemm_isa) */
void ptq_ggml_gemm_a8_isa(ptq_isa isa, uint32_t type, const void *w, int out, int in, const float *x, int rows,
                          float *y);
/* The activation codes: q [rows][in], d [rows][in / 32], sum16 [rows][in / 16] (sums of q per 16 columns). */
void ptq_ggml_a8_quantize(const float *x, int rows, int in, int8_t *q, float *d, int32_t *sum16);

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
    const float *xs32; /* [rows][in / 32]: sums of x over each 32 columns (the affine kernels' offsets) */
    const float *xs16; /* [rows][in / 16]: the same over each 16 columns (Q2_K's sub-blocks) */
    float *y;          /* [rows][out] */
    /* int8 activations (ptq_ggml_a8_quantize), for the _a8 kernels */
    const int8_t *xq;
    const float *dx;
    const int32_t *qsum16;
} ptq_ggml_gemv_args;

/* The int8-activation prefill GEMM (ggml_gemm_a8_avx512.c, AVX-512 VNNI; ggml_gemm_a8_avx2.c, AVX2): work items of
 * PTQ_GGML_A8_NB outputs and
 * a range of input rows, each unpacking its weights once per K block of PTQ_GGML_A8_KC columns into a per-thread
 * tile of ptq_ggml_a8_tile_bytes(). ptq_ggml_gemm_a8 takes it from ptq_ggml_a8_gemm_min_rows(isa) input rows. */
#define PTQ_GGML_A8_NB 64
#define PTQ_GGML_A8_KC 2048
int ptq_ggml_a8_gemm_min_rows(ptq_isa isa);
size_t ptq_ggml_a8_tile_bytes(void);
/* y[r][o] for r in [r0, r1), o in [o0, o1) (o1 - o0 <= PTQ_GGML_A8_NB), single-threaded. */
void ptq_ggml_gemm_a8_block_avx512(const ptq_ggml_gemv_args *a, int r0, int r1, int o0, int o1, void *tile);
void ptq_ggml_gemm_a8_block_avx2(const ptq_ggml_gemv_args *a, int r0, int r1, int o0, int o1, void *tile);
/* the same with AVX-VNNI (VEX vpdpbusd; Intel Alder Lake and later client cores): bit for bit the AVX2 results */
void ptq_ggml_gemm_a8_block_avxvnni(const ptq_ggml_gemv_args *a, int r0, int r1, int o0, int o1, void *tile);
/* ptq_ggml_gemm_a8_isa on one path at any number of rows, for tests and benchmarks: flags 0 the GEMV kernels,
   PTQ_GGML_A8_GEMM the GEMM (isa scalar, or no memory for it: the GEMV kernels); with PTQ_GGML_A8_NO_AVXVNNI the AVX2
   kernels use vpmaddubsw even on a CPU with AVX-VNNI (which they otherwise take). */
#define PTQ_GGML_A8_GEMM 1
#define PTQ_GGML_A8_NO_AVXVNNI 2
void ptq_ggml_gemm_a8_path(int flags, ptq_isa isa, uint32_t type, const void *w, int out, int in, const float *x,
                           int rows, float *y);

/* y[r][o] for o in [o0, o1) and every input row r (single-threaded). */
void ptq_ggml_gemv_scalar(const ptq_ggml_gemv_args *a, int o0, int o1);
void ptq_ggml_gemv_avx2(const ptq_ggml_gemv_args *a, int o0, int o1);
void ptq_ggml_gemv_avx512(const ptq_ggml_gemv_args *a, int o0, int o1);
/* int8 activations: the k-quants only */
void ptq_ggml_gemv_a8_scalar(const ptq_ggml_gemv_args *a, int o0, int o1);
void ptq_ggml_gemv_a8_avx2(const ptq_ggml_gemv_args *a, int o0, int o1);
void ptq_ggml_gemv_a8_avxvnni(const ptq_ggml_gemv_args *a, int o0, int o1); /* bit for bit ptq_ggml_gemv_a8_avx2 */
void ptq_ggml_gemv_a8_avx512(const ptq_ggml_gemv_args *a, int o0, int o1);

/* The 6-bit sub-block scales and mins of Q4_K / Q5_K (12 bytes -> 8 + 8; FORMAT.md): scale j < 4 is the low 6 bits
 * of byte j, min j < 4 of byte j + 4; scale j >= 4 is the low nibble of byte j + 4 under the top two bits of byte
 * j - 4, min j >= 4 the high nibble of byte j + 4 under the top two bits of byte j. Four bytes at a time here:
 * *sc and *mn get the 8 values as the bytes of a little-endian uint64. */
static inline void ptq_ggml_k4_scales(const uint8_t *b, uint64_t *sc, uint64_t *mn) {
    uint32_t w0, w1, w2;
    memcpy(&w0, b, 4), memcpy(&w1, b + 4, 4), memcpy(&w2, b + 8, 4);
    const uint32_t s_hi = (w2 & 0x0F0F0F0Fu) | (((w0 >> 6) & 0x03030303u) << 4);
    const uint32_t m_hi = ((w2 >> 4) & 0x0F0F0F0Fu) | (((w1 >> 6) & 0x03030303u) << 4);
    *sc = (uint64_t)(w0 & 0x3F3F3F3Fu) | ((uint64_t)s_hi << 32);
    *mn = (uint64_t)(w1 & 0x3F3F3F3Fu) | ((uint64_t)m_hi << 32);
}

/* The 16 six-bit sub-block scales of Q3_K (12 bytes; stored + 32): the low nibble of scale j is the low (j < 8)
 * or high (j >= 8) nibble of byte j % 8, its top two bits are bits 2 (j / 4) of byte 8 + j % 4. sc[0] holds scales
 * 0-7, sc[1] 8-15, as the bytes of little-endian uint64s. */
static inline void ptq_ggml_k3_scales(const uint8_t *b, uint64_t sc[2]) {
    uint64_t lo;
    uint32_t w2;
    memcpy(&lo, b, 8), memcpy(&w2, b + 8, 4);
    const uint32_t m = 0x03030303u;
    const uint64_t ha = (uint64_t)(w2 & m) | ((uint64_t)((w2 >> 2) & m) << 32);
    const uint64_t hb = (uint64_t)((w2 >> 4) & m) | ((uint64_t)((w2 >> 6) & m) << 32);
    sc[0] = (lo & 0x0F0F0F0F0F0F0F0Full) | (ha << 4);
    sc[1] = ((lo >> 4) & 0x0F0F0F0F0F0F0F0Full) | (hb << 4);
}

#endif
