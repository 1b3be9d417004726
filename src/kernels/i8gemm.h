/* Integer execution of activation-quantized linear layers (W8A8, and lower bit widths on the same
 * path): int8 activations x int8 weights -> exact int32 accumulators, then one float rescale.
 *
 * Quantizers (METHODS.md §0):
 *   weights, per output row o, symmetric narrow ("restricted") range, b_w bits:
 *       q_w[o][j] in [-(2^(b_w-1)-1), 2^(b_w-1)-1]  (8 bits: [-127, 127]),   w ~ s_w[o] * q_w[o][j]
 *     the codes are produced elsewhere (RTN / GPTQ / NoisyQuant); this file only requires
 *     |q_w| <= 127 (so any b_w <= 8 fits) and finite scales.
 *   activations, symmetric signed full range (Ψ_k of §0 / NoisyQuant's clamp(round(x/Δ), -n-1, n)),
 *   b bits (4..8):
 *       q_x = clamp(round_half_even(x / s_x), -2^(b-1), 2^(b-1)-1),           x ~ s_x * q_x
 *     per tensor (one static, calibrated s_x) or per token (one s_x per row, given or computed
 *     dynamically as max|x_row| / (2^(b-1)-1)).
 *   A linear layer then is  y[r][o] = s_x[r] * s_w[o] * acc[r][o] + bias[o],
 *                           acc[r][o] = sum_j q_x[r][j] * q_w[o][j]   (int32, exact).
 *
 * Exactness: |acc| <= 128 * 127 * in, so with in <= PTQ_I8_MAX_IN every partial and final sum fits in
 * int32; every kernel returns exactly the same integers as the scalar reference.
 *
 * Kernels (chosen at run time, like the low-bit kernels of qweight.h; each tested against scalar):
 *   scalar      plain C on the row-major codes (the reference).
 *   avx2        vpmaddubsw on (|x|, sign(x)*w): with |x| <= 128 and |w| <= 127 a pair sums to at most
 *               2*128*127 = 32512, so the int16 step never saturates; vpmaddwd by 1 widens to int32.
 *               (x+128 as u8 would not do: 255*127*2 = 64770 saturates.)
 *   avxvnni     VEX vpdpbusd on ymm (u8 x s8 -> 4 products summed into int32, no saturation).
 *   avx512vnni  EVEX vpdpbusd on zmm.
 *   vpdpbusd multiplies UNSIGNED bytes by signed bytes: the VNNI kernels feed x + 128 (as u8) and start
 *   every accumulator at -128 * rowsum[o], since sum_j (x_j + 128) w_j = acc + 128 * sum_j w_j.
 *
 * Packed weight layout (all SIMD kernels): output rows in panels of 16 (the last one zero-padded),
 * input columns in quads of 4 (the last one zero-padded); panel p, quad k is 64 bytes
 *     packed[(p * in_quads + k) * 64 + 4 * i + t] = q_w[16 p + i][4 k + t]     (i < 16, t < 4)
 * i.e. one zmm (or two ymm: outputs 0-7, 8-15) whose int32 lane i holds the 4 codes vpdpbusd /
 * vpmaddubsw+vpmaddwd multiply with a broadcast quad of 4 activations.
 */
#ifndef PTQ_KERNELS_I8GEMM_H
#define PTQ_KERNELS_I8GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "ptq.h"

#define PTQ_I8_MAX_IN 131072 /* 128 * 127 * 131072 < 2^31: int32 accumulators cannot overflow */
#define PTQ_I8_PANEL 16      /* output rows per packed panel */

typedef struct ptq_i8weight {
    int out, in;
    int in_quads;        /* ceil(in / 4) */
    int panels;          /* ceil(out / 16) */
    int max_abs;         /* max |code| (<= 127): tells the bit width the codes actually use */
    int8_t *codes;       /* [out][in] row-major codes (scalar reference, dequantization in tests) */
    float *scales;       /* [out] s_w */
    int32_t *rowsum;     /* [panels * 16] sum_j codes[o][j], zero-padded past out */
    int8_t *packed;      /* [panels][in_quads][16][4] (layout above), 64-byte aligned */
} ptq_i8weight;

/* Copies codes [out][in] and row_scales [out] into w (which it overwrites; free with
 * ptq_i8weight_free) and builds the row sums and the packed layout.
 * Errors: PTQ_ERR_ARG (NULL pointers, out/in < 1, in > PTQ_I8_MAX_IN), PTQ_ERR_FORMAT (a code of
 * -128: outside the symmetric range), PTQ_ERR_NUMERIC (a scale Inf or NaN), PTQ_ERR_NOMEM.
 * On failure w is left empty (safe to free). */
ptq_status ptq_i8weight_init(ptq_i8weight *w, const int8_t *codes, const float *row_scales, int out, int in,
                             ptq_error *err);
void ptq_i8weight_free(ptq_i8weight *w);

/* ---------------------------------------------------------------- kernels available */

typedef enum {
    PTQ_I8_SCALAR = 0,
    PTQ_I8_AVX2,
    PTQ_I8_AVXVNNI,    /* AVX2 + AVX-VNNI (VEX, ymm): Alder Lake, Sapphire Rapids and later */
    PTQ_I8_AVX512VNNI, /* AVX-512 F/BW/VL + VNNI (zmm): Cascade Lake, Ice Lake, Sapphire Rapids, Zen 4 */
    PTQ_I8_ISA_COUNT
} ptq_i8_isa;

/* Whether this CPU (and OS) can run the kernel for isa (CPUID at run time). */
int ptq_i8_isa_supported(ptq_i8_isa isa);
/* The fastest supported kernel: avx512vnni, then avxvnni, then avx2, then scalar. */
ptq_i8_isa ptq_i8_isa_best(void);
const char *ptq_i8_isa_name(ptq_i8_isa isa);

/* ---------------------------------------------------------------- activations */

/* Per-token (dynamic) scales: scales[r] = max_j |x[r][j]| / (2^(bits-1) - 1), or 1 for an all-zero
 * row (whose codes are then all 0). bits in 2..8. NaN entries are ignored. */
void ptq_act_scales_per_token(const float *x, int rows, int in, int bits, float *scales);

/* q[r][j] = clamp(round_half_even(x[r][j] / s), -2^(bits-1), 2^(bits-1) - 1), s = scales[r] when
 * per_token, else scales[0]. bits in 2..8 (clamped to that). NaN maps to 0 and +-Inf to the ends of
 * the range; a zero scale gives 0 for x = 0 and the range ends otherwise. The division is a real
 * division (not a multiplication by 1/s) so codes match a float fake-quant simulation bit for bit. */
void ptq_quantize_act_i8(const float *x, int rows, int in, const float *scales, int per_token, int bits, int8_t *q);

/* The same two with the kernels for isa (SIMD versions for avx2/avxvnni and for avx512vnni, which
 * uses AVX-512 F/BW/VL only); results are identical to the scalar ones. The functions above use the
 * best. Rows are spread over OpenMP threads when there are many elements. */
void ptq_act_scales_per_token_isa(ptq_i8_isa isa, const float *x, int rows, int in, int bits, float *scales);
void ptq_quantize_act_i8_isa(ptq_i8_isa isa, const float *x, int rows, int in, const float *scales, int per_token,
                             int bits, int8_t *q);

/* ---------------------------------------------------------------- GEMM */

/* acc[rows][out] = xq[rows][in] * codes^T, exactly, with the kernel for isa; an unsupported isa falls
 * back along avx512vnni -> avxvnni -> avx2 -> scalar. xq codes may be any int8 (-128 included).
 * Threads with OpenMP over blocks of 64 output rows (and over blocks of input rows when there are
 * fewer output blocks than twice the threads). The SIMD kernels need a per-call copy of xq in their
 * layout (rows x ~in bytes); if it cannot be allocated the scalar kernel runs instead. */
void ptq_i8gemm_isa(ptq_i8_isa isa, const ptq_i8weight *w, const int8_t *xq, int rows, int32_t *acc);
void ptq_i8gemm(const ptq_i8weight *w, const int8_t *xq, int rows, int32_t *acc);

/* y[rows][out] = s_x[r] * s_w[o] * acc[r][o] + bias[o] (bias may be NULL), with
 * acc = quantize(x) * codes^T. act_scales: per_token ? [rows] : [1]; with per_token and act_scales
 * NULL the per-token scales are computed from x (dynamic quantization). bits: activation bits 2..8.
 * Errors: PTQ_ERR_ARG (bad bits, act_scales NULL for per-tensor, a non-finite or negative scale),
 * PTQ_ERR_NOMEM. */
ptq_status ptq_i8_linear(ptq_i8_isa isa, const ptq_i8weight *w, const float *x, int rows, const float *act_scales,
                         int per_token, int bits, const float *bias, float *y, ptq_error *err);

/* ---------------------------------------------------------------- internal: dispatcher <-> kernels */

/* One call of a kernel fills acc[r][o] for r in [r0, r1), o in [o0, o1); o0 is a multiple of 16 and
 * o1 is a multiple of 16 or w->out. xp is the activation matrix in the form the kernel wants:
 *   scalar:      the caller's int8 xq, ldx = in;
 *   avx2:        int8 x, rows zero-padded to ldx = 4 * in_quads (rounded up to 64) columns;
 *   (avx)vnni:   uint8 x + 128, padded with 128 to the same ldx. */
typedef struct ptq_i8gemm_args {
    const ptq_i8weight *w;
    const uint8_t *xp;
    size_t ldx;
    int32_t *acc; /* [rows][w->out] */
} ptq_i8gemm_args;

void ptq_i8gemm_scalar(const ptq_i8gemm_args *a, int r0, int r1, int o0, int o1);
void ptq_i8gemm_avx2(const ptq_i8gemm_args *a, int r0, int r1, int o0, int o1);
void ptq_i8gemm_avxvnni(const ptq_i8gemm_args *a, int r0, int r1, int o0, int o1);
void ptq_i8gemm_avx512vnni(const ptq_i8gemm_args *a, int r0, int r1, int o0, int o1);

/* isa if the CPU has it, else the next one down avx512vnni -> avxvnni -> avx2 -> scalar; an
 * out-of-range value gives the best. */
ptq_i8_isa ptq_i8_isa_resolve(ptq_i8_isa isa);

/* One row of activations: q[j] = clamp(round_half_even(x[j] / s), lo, hi), NaN -> 0 (lo, hi integers);
 * and max_j |x[j]| ignoring NaN (0 for n = 0). */
void ptq_i8_quant_row_scalar(const float *x, int n, float s, float lo, float hi, int8_t *q);
void ptq_i8_quant_row_avx2(const float *x, int n, float s, float lo, float hi, int8_t *q);
void ptq_i8_quant_row_avx512(const float *x, int n, float s, float lo, float hi, int8_t *q);
float ptq_i8_absmax_row_scalar(const float *x, int n);
float ptq_i8_absmax_row_avx2(const float *x, int n);
float ptq_i8_absmax_row_avx512(const float *x, int n);

#endif
