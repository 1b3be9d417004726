/* AVX2 int8 GEMM without VNNI (Haswell .. Skylake client, Zen 1-3). Compiled for that target whatever
 * the library's flags; the dispatcher calls it only when CPUID reports AVX2.
 *
 * vpmaddubsw multiplies unsigned by signed bytes and adds pairs into SATURATING int16. The x + 128
 * trick of the VNNI kernels would overflow here (255 * 127 * 2 = 64770), so each product is formed as
 * |x| * (sign(x) * w): |x| <= 128 fits u8, sign(x) * w fits s8 because |w| <= 127, and a pair sums to
 * at most 2 * 128 * 127 = 32512 < 32767: exact. vpmaddwd by 1 then adds pairs of int16 into the
 * int32 lane of the 4-column quad. Four instructions per 32 multiply-adds (vpsignb, vpmaddubsw,
 * vpmaddwd, vpaddd) against one vpdpbusd.
 *
 * Register tile: MR = 4 input rows x one panel (two ymm halves) = 8 accumulators; blocking as in the
 * VNNI kernels (panel -> slice of KQ quads -> row tiles). x is plain int8, zero-padded. The four
 * instructions keep the vector ports busy: ~140 GOP/s per Sapphire Rapids core, about OpenBLAS's
 * AVX-512 sgemm on the same core (an AVX2-only CPU's sgemm has half the FMA width).
 */
#include <stdint.h>
#include <string.h>

#include "kernels/i8gemm.h"

#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))
#define MR 4
#ifndef KQ
#define KQ 1024
#endif

typedef struct {
    const uint8_t *x;
    size_t ldx;
    const int8_t *wp;
    int nq;
    int32_t *c;
    size_t ldc;
    int first;       /* first slice: start from 0, else accumulate into c */
    __m256i mask[2]; /* lanes of the two halves that exist */
    int full;        /* all 16 outputs exist */
} tile_args;

INLINE __m256i load_c(int full, __m256i mask, const int32_t *p) {
    return full ? _mm256_loadu_si256((const __m256i *)p) : _mm256_maskload_epi32((const int *)p, mask);
}

INLINE void store_c(int full, __m256i mask, int32_t *p, __m256i v) {
    if (full) _mm256_storeu_si256((__m256i *)p, v);
    else _mm256_maskstore_epi32((int *)p, mask, v);
}

INLINE __m256i dot4(__m256i ax, __m256i xb, __m256i w, __m256i ones) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(w, xb)), ones);
}

INLINE void tile(const int mr, const tile_args *t) {
    int32_t *const c = t->c;
    const size_t ldc = t->ldc;
    const int full = t->full;
    const __m256i mask[2] = {t->mask[0], t->mask[1]};
    __m256i acc[MR][2];
#pragma GCC unroll 8
    for (int m = 0; m < mr; m++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++)
            acc[m][h] = t->first ? _mm256_setzero_si256() : load_c(full, mask[h], c + (size_t)m * ldc + 8 * h);
    const __m256i ones = _mm256_set1_epi16(1);
    const uint8_t *x = t->x;
    const int8_t *wp = t->wp;
    for (int q = 0; q < t->nq; q++) {
        const __m256i w0 = _mm256_load_si256((const __m256i *)wp);
        const __m256i w1 = _mm256_load_si256((const __m256i *)(wp + 32));
#pragma GCC unroll 8
        for (int m = 0; m < mr; m++) {
            int32_t xv;
            memcpy(&xv, x + (size_t)m * t->ldx, 4);
            const __m256i xb = _mm256_set1_epi32(xv);
            const __m256i ax = _mm256_abs_epi8(xb); /* -128 -> 0x80 = 128 as u8 */
            acc[m][0] = _mm256_add_epi32(acc[m][0], dot4(ax, xb, w0, ones));
            acc[m][1] = _mm256_add_epi32(acc[m][1], dot4(ax, xb, w1, ones));
        }
        x += 4;
        wp += 64;
    }
#pragma GCC unroll 8
    for (int m = 0; m < mr; m++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) store_c(full, mask[h], c + (size_t)m * ldc + 8 * h, acc[m][h]);
}

#define TILE_FN(m) \
    static void tile_##m(const tile_args *t) { tile(m, t); }
TILE_FN(1)
TILE_FN(2)
TILE_FN(3)
TILE_FN(4)
typedef void (*tile_fn)(const tile_args *);
static const tile_fn tiles[MR] = {tile_1, tile_2, tile_3, tile_4};

void ptq_i8gemm_avx2(const ptq_i8gemm_args *a, int r0, int r1, int o0, int o1) {
    const ptq_i8weight *w = a->w;
    const size_t pbytes = (size_t)w->in_quads * 64;
    const int p0 = o0 / PTQ_I8_PANEL, p1 = (o1 + PTQ_I8_PANEL - 1) / PTQ_I8_PANEL;
    const int kq = r1 - r0 <= MR ? w->in_quads : KQ;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int p = p0; p < p1; p++) {
        const int o = p * PTQ_I8_PANEL, valid = o1 - o;
        tile_args t;
        t.full = valid >= 16;
        t.mask[0] = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), lane);
        t.mask[1] = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid - 8), lane);
        t.ldx = a->ldx;
        t.ldc = (size_t)w->out;
        for (int q0 = 0; q0 < w->in_quads; q0 += kq) {
            t.wp = w->packed + (size_t)p * pbytes + (size_t)q0 * 64;
            t.nq = w->in_quads - q0 < kq ? w->in_quads - q0 : kq;
            t.first = q0 == 0;
            for (int r = r0; r < r1; r += MR) {
                const int mr = r1 - r < MR ? r1 - r : MR;
                t.x = a->xp + (size_t)r * a->ldx + (size_t)q0 * 4;
                t.c = a->acc + (size_t)r * (size_t)w->out + (size_t)o;
                tiles[mr - 1](&t);
            }
        }
    }
}

/* ---------------------------------------------------------------- activations */

/* 8 quantized lanes as int32: NaN lanes clamp to lo through vmaxps's second-operand rule and are then
 * zeroed by the ordered-compare mask; vroundps rounds half to even whatever MXCSR says. */
INLINE __m256i quant8(const float *x, __m256 vs, __m256 vlo, __m256 vhi) {
    __m256 v = _mm256_div_ps(_mm256_loadu_ps(x), vs);
    const __m256 ord = _mm256_cmp_ps(v, v, _CMP_ORD_Q);
    v = _mm256_and_ps(_mm256_min_ps(_mm256_max_ps(v, vlo), vhi), ord);
    return _mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

void ptq_i8_quant_row_avx2(const float *x, int n, float s, float lo, float hi, int8_t *q) {
    const __m256 vs = _mm256_set1_ps(s), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        const __m256i a = _mm256_packs_epi32(quant8(x + j, vs, vlo, vhi), quant8(x + j + 8, vs, vlo, vhi));
        const __m256i b = _mm256_packs_epi32(quant8(x + j + 16, vs, vlo, vhi), quant8(x + j + 24, vs, vlo, vhi));
        /* dwords of packs_epi16(a, b): 0-7 of x, 8-15, 16-23, 24-31 for the low 128-bit lanes, then 4-7, ... */
        _mm256_storeu_si256((__m256i *)(q + j), _mm256_permutevar8x32_epi32(_mm256_packs_epi16(a, b), order));
    }
    if (j < n) ptq_i8_quant_row_scalar(x + j, n - j, s, lo, hi, q + j);
}

float ptq_i8_absmax_row_avx2(const float *x, int n) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps();
    int j = 0;
    for (; j + 16 <= n; j += 16) {
        m0 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + j), abs_mask), m0);
        m1 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + j + 8), abs_mask), m1);
    }
    float t[8];
    _mm256_storeu_ps(t, _mm256_max_ps(m0, m1));
    float m = ptq_i8_absmax_row_scalar(x + j, n - j);
    for (int k = 0; k < 8; k++) m = t[k] > m ? t[k] : m;
    return m;
}
