/* Packed low-bit weights and the fused dequantize-and-multiply kernels that run them.
 *
 * A quantized linear layer W [out][in] has, per row o and per group g of `group` input columns,
 * an fp16 scale s[o][g] and an integer zero point z[o][g] (uint8, 0..2^bits-1); the weight is
 *     w[o][j] = s[o][g(j)] * (q[o][j] - z[o][g(j)])      with q in 0..2^bits-1.
 * A symmetric grid (every z = 2^(bits-1), as llama.cpp's Q4_0/Q8_0) stores no zero points: `zeros` is NULL and
 * the kernels read `zero_row`, one row of 2^(bits-1) (ptq_qweight_zeros_of): 0.25 bits per weight less to read
 * at group 32.
 * `group` is a multiple of 32, or equal to `in` (one group per row: per-channel quantization).
 *
 * Codes are packed per row in chunks of 32 input columns (rows padded with zero codes to a whole
 * number of chunks; bytes per chunk = 4 * bits):
 *   8 bits: byte j = code of column j.
 *   4 bits: byte k (0..15): low nibble = column k, high nibble = column k + 16.
 *   2 bits: byte k (0..7): bits 2i..2i+1 = column k + 8i (i = 0..3).
 *   3 bits: 8 bytes of the low two bits laid out as 2 bits, then 4 bytes (a little-endian uint32)
 *           whose bit j is bit 2 of column j's code.
 *   5, 6, 7 bits: 16 bytes of the low four bits laid out as 4 bits, then the high bits h = q >> 4 of
 *           the 32 columns laid out as 1, 2 or 3 bits: 5 = 4 + a 32-bit plane of bit 4 (4 bytes);
 *           6 = 4 + 2 (8 bytes: bits 4-5 as the 2-bit layout); 7 = 4 + 3 (8 bytes of bits 4-5 as
 *           2 bits, then a 32-bit plane of bit 6). The kernels read the low nibbles as 4-bit codes
 *           and add the high bits on top (the int8-activation kernels use the 4-bit activation order).
 * With act-order, `perm` (length in) gives the input column each packed column reads:
 * packed column j multiplies x[perm[j]].
 *
 * Every kernel has a scalar reference; SIMD versions (AVX2, AVX-512) are chosen at run time and
 * tested against it.
 */
#ifndef PTQ_KERNELS_QWEIGHT_H
#define PTQ_KERNELS_QWEIGHT_H

#include <stddef.h>
#include <stdint.h>

#include "ptq.h"

#define PTQ_QCHUNK 32

typedef struct ptq_qweight {
    int bits;          /* storage width of the codes: 2 to 8 */
    int grid_bits;     /* the quantizer's width (<= bits); equal to bits since 5-7 bits are stored tightly */
    int in, out;
    int group;         /* columns per group: a multiple of 32, or == in */
    int n_groups;      /* ceil(in / group) */
    size_t row_bytes;  /* ceil(in / 32) * 4 * bits */
    uint8_t *codes;    /* [out][row_bytes] */
    uint16_t *scales;  /* fp16 [out][n_groups] */
    uint8_t *zeros;    /* [out][n_groups], or NULL: every zero point is 2^(bits-1) */
    uint8_t *zero_row; /* with zeros NULL: [n_groups] copies of 2^(bits-1), what the kernels read for every row */
    int32_t *perm;     /* NULL, or [in] (act-order) */
    /* Runtime choice, not part of the stored weight: 1 runs this layer's products (ptq_linear_forward)
       with int8 activations (qgemv_a8.h: faster, not exact) on CPUs with AVX2 or AVX-512 VNNI; 0 (default) keeps
       float activations. Set for a whole model with ptq_model_set_act8. */
    int act8;
} ptq_qweight;

size_t ptq_qweight_row_bytes(int bits, int in);

/* Row o's zero points (n_groups of them): stored, or the shared row of 2^(bits-1). */
static inline const uint8_t *ptq_qweight_zeros_of(const ptq_qweight *w, int o) {
    return w->zeros ? w->zeros + (size_t)o * (size_t)w->n_groups : w->zero_row;
}

/* Pack / unpack one row of codes (in values, each < 2^bits) into / from row_bytes bytes. */
void ptq_pack_row(int bits, const uint8_t *q, int in, uint8_t *dst);
void ptq_unpack_row(int bits, const uint8_t *src, int in, uint8_t *q);

/* Dequantize one row into in floats, in the original column order (perm undone); for tests and error
 * reports: kernels never expand a whole matrix. */
void ptq_qweight_dequant_row(const ptq_qweight *w, int row, float *dst);

typedef enum { PTQ_ISA_SCALAR = 0, PTQ_ISA_AVX2, PTQ_ISA_AVX512 } ptq_isa;
/* The best ISA this CPU supports (CPUID at run time). */
ptq_isa ptq_isa_best(void);
const char *ptq_isa_name(ptq_isa isa);

/* y[rows][out] = x[rows][in] * W^T (no bias), with the kernel for `isa` (falls back to a
 * supported one when the CPU lacks it). Threads over output rows with OpenMP. */
void ptq_qgemm_isa(ptq_isa isa, const ptq_qweight *w, const float *x, int rows, float *y);
/* The same with the best ISA. */
void ptq_qgemm(const ptq_qweight *w, const float *x, int rows, float *y);

#endif
