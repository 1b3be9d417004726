/* Scalar reference for the int8 GEMM and for activation quantization, and the run-time choice of the
 * activation kernels (SIMD versions in i8gemm_avx2.c and i8gemm_avx512vnni.c). */
#include <math.h>
#include <string.h>

#include "kernels/i8gemm.h"

/* The reference: row-major codes, one int32 dot product per (input row, output row). With
 * in <= PTQ_I8_MAX_IN no partial sum can overflow (see i8gemm.h). */
void ptq_i8gemm_scalar(const ptq_i8gemm_args *a, int r0, int r1, int o0, int o1) {
    const ptq_i8weight *w = a->w;
    const size_t in = (size_t)w->in;
    for (int r = r0; r < r1; r++) {
        const int8_t *x = (const int8_t *)a->xp + (size_t)r * a->ldx;
        int32_t *c = a->acc + (size_t)r * (size_t)w->out;
        for (int o = o0; o < o1; o++) {
            const int8_t *q = w->codes + (size_t)o * in;
            int32_t s = 0;
            for (size_t j = 0; j < in; j++) s += (int32_t)x[j] * (int32_t)q[j];
            c[o] = s;
        }
    }
}

static int clamp_bits(int bits) { return bits < 2 ? 2 : bits > 8 ? 8 : bits; }

/* Rows go to OpenMP threads only when there is this much work: one SIMD thread quantizes 512K values
 * in ~0.1 ms, while a fork/join on a busy machine (a descheduled thread) was measured at ~8 ms. */
#define ACT_PAR_MIN (1 << 23)

float ptq_i8_absmax_row_scalar(const float *x, int n) {
    float m = 0.0f;
    for (int j = 0; j < n; j++) {
        const float v = fabsf(x[j]);
        m = v > m ? v : m; /* false for NaN: ignored */
    }
    return m;
}

/* Round half to even of v in [lo, hi] by the 1.5 * 2^23 trick (exact for |v| < 2^22 in the default
 * rounding mode); clamping first gives the same result as clamping the rounded value because the
 * bounds are integers. NaN (which fails both comparisons) becomes 0. */
void ptq_i8_quant_row_scalar(const float *x, int n, float s, float lo, float hi, int8_t *q) {
    const float magic = 12582912.0f;
    for (int j = 0; j < n; j++) {
        float v = x[j] / s;
        v = v > hi ? hi : v;
        v = v < lo ? lo : v;
        v = v == v ? v : 0.0f;
        v = (v + magic) - magic;
        q[j] = (int8_t)(int)v;
    }
}

typedef void (*quant_fn)(const float *, int, float, float, float, int8_t *);
typedef float (*absmax_fn)(const float *, int);

/* AVX-512 F/BW/VL for the avx512vnni level, AVX2 for avx2 and avxvnni. */
static int act_level(ptq_i8_isa isa) {
    switch (ptq_i8_isa_resolve(isa)) {
    case PTQ_I8_AVX512VNNI: return 2;
    case PTQ_I8_AVXVNNI:
    case PTQ_I8_AVX2: return 1;
    default: return 0;
    }
}

void ptq_act_scales_per_token_isa(ptq_i8_isa isa, const float *x, int rows, int in, int bits, float *scales) {
    const int level = act_level(isa);
    const absmax_fn fn = level == 2 ? ptq_i8_absmax_row_avx512 : level == 1 ? ptq_i8_absmax_row_avx2 : ptq_i8_absmax_row_scalar;
    const float n = (float)((1 << (clamp_bits(bits) - 1)) - 1);
#pragma omp parallel for schedule(static) if ((double)rows * (double)in >= ACT_PAR_MIN && rows > 1)
    for (int r = 0; r < rows; r++) {
        const float m = fn(x + (size_t)r * (size_t)in, in);
        scales[r] = m > 0.0f ? m / n : 1.0f;
    }
}

void ptq_quantize_act_i8_isa(ptq_i8_isa isa, const float *x, int rows, int in, const float *scales, int per_token,
                             int bits, int8_t *q) {
    const int level = act_level(isa);
    const quant_fn fn = level == 2 ? ptq_i8_quant_row_avx512 : level == 1 ? ptq_i8_quant_row_avx2 : ptq_i8_quant_row_scalar;
    const int b = clamp_bits(bits);
    const float lo = -(float)(1 << (b - 1)), hi = (float)((1 << (b - 1)) - 1);
#pragma omp parallel for schedule(static) if ((double)rows * (double)in >= ACT_PAR_MIN && rows > 1)
    for (int r = 0; r < rows; r++)
        fn(x + (size_t)r * (size_t)in, in, per_token ? scales[r] : scales[0], lo, hi, q + (size_t)r * (size_t)in);
}

void ptq_act_scales_per_token(const float *x, int rows, int in, int bits, float *scales) {
    ptq_act_scales_per_token_isa(ptq_i8_isa_best(), x, rows, in, bits, scales);
}

void ptq_quantize_act_i8(const float *x, int rows, int in, const float *scales, int per_token, int bits, int8_t *q) {
    ptq_quantize_act_i8_isa(ptq_i8_isa_best(), x, rows, in, scales, per_token, bits, q);
}
