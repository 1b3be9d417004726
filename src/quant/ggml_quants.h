/* ggml's block quantization types as exact grids (docs/FORMAT.md, "ggml block types").
 *
 * The ten types below are stored exactly as ggml stores them (ggml-common.h); the type numbers are the
 * GGUF ones (PTQ_GGML_* in io/gguf.h). A row of n values (n a multiple of the block size) is n / block
 * blocks, back to back:
 *
 *   type  block bytes  kind       value of code q in (sub-)block s
 *   Q4_0   32    18    symmetric  d * (q - 8)             q 0..15   fp16 d
 *   Q4_1   32    20    affine     d * q + m               q 0..15   fp16 d, m
 *   Q5_0   32    22    symmetric  d * (q - 16)            q 0..31
 *   Q5_1   32    24    affine     d * q + m               q 0..31
 *   Q8_0   32    34    symmetric  d * q                   q -128..127 (stored as int8; code = q + 128 here)
 *   Q2_K  256    84    affine     d*sc[s] * q - dmin*m[s] q 0..3,  16 sub-blocks of 16, sc/m 4-bit
 *   Q3_K  256   110    symmetric  d*(sc[s]-32) * (q - 4)  q 0..7,  16 sub-blocks of 16, sc 6-bit
 *   Q4_K  256   144    affine     d*sc[s] * q - dmin*m[s] q 0..15, 8 sub-blocks of 32, sc/m 6-bit
 *   Q5_K  256   176    affine     d*sc[s] * q - dmin*m[s] q 0..31, 8 sub-blocks of 32, sc/m 6-bit
 *   Q6_K  256   210    symmetric  d*sc[s] * (q - 32)      q 0..63, 16 sub-blocks of 16, sc int8
 *
 * Every value is computed in float exactly as ggml's dequantize_row_* computes it, so ptq's dequantized
 * floats equal ggml's bit for bit.
 *
 * Two ways in:
 *  - Whole rows: ptq_ggml_quantize_rows (RTN: ggml's reference quantizer, quantize_row_*_ref, reproduced bit
 *    for bit) and ptq_ggml_dequantize_rows.
 *  - The grid of one block (for GPTQ and other error-feedback methods): choose the block's parameters
 *    (ptq_ggml_choose_params), round single values against them (ptq_ggml_grid_code), pack the codes
 *    (ptq_ggml_pack_block). Unpacking (ptq_ggml_unpack_block) gives back parameters and codes. */
#ifndef PTQ_QUANT_GGML_QUANTS_H
#define PTQ_QUANT_GGML_QUANTS_H

#include <stddef.h>
#include <stdint.h>

#include "ptq.h"

#define PTQ_GGML_QK 32   /* legacy block */
#define PTQ_GGML_QK_K 256 /* k-quant super-block */
#define PTQ_GGML_MAX_SUB 16 /* most sub-blocks in a block */

/* 1 for the ten types above (they quantize and dequantize here), else 0. */
int ptq_ggml_quant_supported(uint32_t type);
/* 1 when values are d*q + m (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K), 0 when symmetric (d*q). */
int ptq_ggml_quant_affine(uint32_t type);
/* "Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K": for error messages. */
const char *ptq_ggml_quant_list(void);
/* Bytes of a row of n values, or 0 when the type is not supported (the ten, F32, F16, BF16) or n is not a
 * multiple of its block. */
size_t ptq_ggml_row_bytes(uint32_t type, int64_t n);

/* Dequantize nrows rows of n values (dst: nrows * n floats; src: nrows * ptq_ggml_row_bytes). Also takes
 * F32, F16 and BF16. PTQ_ERR_UNSUPPORTED for another type, PTQ_ERR_ARG when n is not a multiple of the
 * block. No NaN check (see ptq_gguf_read_f32). */
ptq_status ptq_ggml_dequantize_rows(uint32_t type, const void *src, float *dst, int64_t nrows, int64_t n,
                                    ptq_error *err);
/* Index of the first of nblocks blocks (of the ten types) whose fp16 step d or offset dmin / m is Inf or NaN,
 * or -1 when every value the blocks stand for is finite (codes and sub-block scales are bounded integers). */
int64_t ptq_ggml_first_nonfinite(uint32_t type, const void *src, int64_t nblocks);
/* Round to nearest into the type, bit for bit what ggml_quantize_chunk writes with no importance matrix
 * (quantize_row_*_ref; F32, F16 and BF16 too). dst: nrows * ptq_ggml_row_bytes(type, n) bytes. Same errors
 * as above, and PTQ_ERR_NUMERIC for a NaN/Inf in src. */
ptq_status ptq_ggml_quantize_rows(uint32_t type, const float *src, void *dst, int64_t nrows, int64_t n,
                                  ptq_error *err);

/* ---------------------------------------------------------------- the grid of one block */

/* The parameters of one block: what is stored, and the float step and offset of every sub-block that
 * ggml derives from it. Legacy types have one "sub-block" (the block). */
typedef struct ptq_ggml_block_params {
    uint32_t type;
    int n;      /* values per block: 32 or 256 */
    int sub;    /* values per sub-block: 32 (legacy, Q4_K, Q5_K) or 16 (Q2_K, Q3_K, Q6_K) */
    int n_sub;  /* n / sub */
    int qmax;   /* codes are 0..qmax (unsigned, as packed; Q8_0: int8 + 128) */
    int zero;   /* code offset of symmetric types: value = scale * (code - zero); 0 for affine types */
    int affine; /* value = scale * code - min */
    /* stored: fp16 bits of d and (affine) dmin / m; the quantized sub-block scales (Q3_K: 0..63, i.e. the
       signed scale + 32; Q6_K: int8 as stored) and mins (Q2_K: 0..15, Q4_K/Q5_K: 0..63). Legacy affine
       types keep their fp16 m in dmin. */
    uint16_t d, dmin;
    int16_t sc[PTQ_GGML_MAX_SUB], mn[PTQ_GGML_MAX_SUB];
    /* derived, in float as ggml computes them */
    float scale[PTQ_GGML_MAX_SUB]; /* step of sub-block s */
    float min[PTQ_GGML_MAX_SUB];   /* subtracted offset of sub-block s (affine; legacy: -m) */
} ptq_ggml_block_params;

/* Fill the derived fields (scale, min) and the shape fields from type, d, dmin, sc, mn. */
void ptq_ggml_params_derive(ptq_ggml_block_params *p);

/* Choose the parameters of one block from its values x[0..block): with imp == NULL exactly the choice of
 * ggml's reference quantizer (so that quantizing every value with ptq_ggml_grid_code and packing
 * reproduces quantize_row_*_ref for the k-quants; the legacy reference rounds against its unrounded scale,
 * ptq_ggml_quantize_rows does that). imp (optional, >= 0, block values): per-value importance, e.g. GPTQ's
 * Hessian diagonal of each column; the same searches then minimize the importance-weighted error. */
void ptq_ggml_choose_params(uint32_t type, const float *x, const float *imp, ptq_ggml_block_params *p);

/* Re-choose sub-block s's scale (and min) from its values x[0..sub) with d and dmin fixed (k-quants;
 * legacy types: the whole block is re-chosen). imp as above. For GPTQ's per-sub-block dynamic groups. */
void ptq_ggml_rechoose_sub(const float *x, const float *imp, int s, ptq_ggml_block_params *p);

/* Round value w at position j (0..block) of the block to its sub-block's grid: returns the code (0..qmax)
 * and, in *deq (optional), the value it stands for, exactly as ggml dequantizes it. */
int ptq_ggml_grid_code(const ptq_ggml_block_params *p, int j, float w, float *deq);
/* The value of code q at position j (what ggml's dequantizer gives). */
float ptq_ggml_grid_value(const ptq_ggml_block_params *p, int j, int q);

/* Pack codes[0..block) (0..qmax) and p's stored parameters into ggml's block bytes
 * (ptq_ggml_row_bytes(type, block) bytes at dst). */
void ptq_ggml_pack_block(const ptq_ggml_block_params *p, const uint8_t *codes, void *dst);
/* The inverse: parameters (stored and derived) and codes (optional) of a block. */
void ptq_ggml_unpack_block(uint32_t type, const void *src, ptq_ggml_block_params *p, uint8_t *codes);

/* ---------------------------------------------------------------- GPTQ into a ggml type (gptq_ggml.c) */

typedef enum {
    PTQ_GGML_PARAMS_STATIC = 0,  /* every block's parameters from the original weights, before the pass */
    PTQ_GGML_PARAMS_DYNAMIC = 1, /* a block's parameters when the pass reaches its first column, from the
                                    error-updated weights (GPTQ's dynamic groups) */
    PTQ_GGML_PARAMS_DYNAMIC_SUB = 2 /* DYNAMIC, and for k-quants each sub-block's scale/min re-chosen
                                       (d, dmin fixed) when the pass reaches the sub-block */
} ptq_ggml_params_mode;

typedef struct ptq_gptq_ggml_params {
    uint32_t type;
    ptq_ggml_params_mode mode; /* DYNAMIC_SUB by default */
    int weighted;   /* 1: block parameters weighted by the Hessian diagonal (importance); 0: ggml's choice */
    int act_order;  /* refused (PTQ_ERR_UNSUPPORTED): ggml's blocks are contiguous columns */
    int block;      /* lazy-update batch (rounded up to a multiple of the type's block); 0: 256 */
    double percdamp;  /* damping as a fraction of the mean Hessian diagonal (0.01) */
} ptq_gptq_ggml_params;
ptq_gptq_ggml_params ptq_gptq_ggml_default_params(uint32_t type);

/* GPTQ of W [out][in] into `type` given H = 2 X^T X / n [in][in] (as ptq_gptq_quantize), writing the
 * row-major ggml bytes of the whole matrix into dst (out * ptq_ggml_row_bytes(type, in) bytes, dst_cap
 * checked). in must be a multiple of the type's block (PTQ_ERR_ARG otherwise). */
ptq_status ptq_gptq_ggml_quantize(const float *W, int out, int in, const double *H, const ptq_gptq_ggml_params *p,
                                  void *dst, size_t dst_cap, const ptq_callbacks *cb, ptq_error *err);

#endif
