/* AVX-512 VNNI int8 GEMM (F + BW + VL + VNNI). Compiled for that target whatever the library's flags;
 * the dispatcher calls it only when CPUID reports every one of those features.
 *
 * Register tile: MR = 6 input rows x NR = 4 panels (64 output rows) = 24 zmm accumulators; per quad
 * of 4 input columns, 4 weight loads (one 64-byte panel quad each), 6 broadcasts of x + 128 (4 bytes)
 * and 24 vpdpbusd (64 multiply-adds each). Accumulators start at -128 * rowsum (the u8 offset).
 * Loop order per block: 4-panel group -> slice of KQ quads -> row tiles; the group's int32 outputs
 * stay in cache between slices. KQ = 1024 (4096 columns), so up to in = 4096 a tile runs the whole
 * row: measured on one Sapphire Rapids core (128x4096x1024, 512x4096x512, 128x11008x512), slices of
 * 32-256 quads that keep the group's weights in L1 were 2-20% slower than whole rows (the weights
 * stream from L2 fast enough at 4 loads per 24 vpdpbusd, and every slice re-reads and re-writes
 * the int32 tile); whole rows ran at ~750 GOP/s per core against ~140 GFLOP/s for OpenBLAS sgemm.
 */
#include <stdint.h>
#include <string.h>

#include "kernels/i8gemm.h"

#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))
#define MR 6
#define NR 4
#ifndef KQ
#define KQ 1024
#endif

typedef struct {
    const uint8_t *x; /* x + 128 at (first row, first column of the slice) */
    size_t ldx;
    const int8_t *wp; /* packed weights at (first panel, first quad of the slice) */
    size_t pbytes;    /* bytes per panel (in_quads * 64) */
    int nq;           /* quads in the slice */
    int32_t *c;       /* acc at (first row, first output of the group) */
    size_t ldc;
    const __m512i *init; /* per panel: -128 * rowsum for the first slice, else NULL (accumulate c) */
    const __mmask16 *mask;
} tile_args;

INLINE void tile(const int mr, const int nr, const tile_args *t) {
    int32_t *const c = t->c;
    const size_t ldc = t->ldc;
    __mmask16 mask[NR];
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) mask[n] = t->mask[n];
    __m512i acc[MR][NR];
    if (t->init) {
#pragma GCC unroll 8
        for (int m = 0; m < mr; m++)
#pragma GCC unroll 4
            for (int n = 0; n < nr; n++) acc[m][n] = t->init[n];
    } else {
#pragma GCC unroll 8
        for (int m = 0; m < mr; m++)
#pragma GCC unroll 4
            for (int n = 0; n < nr; n++)
                acc[m][n] = _mm512_maskz_loadu_epi32(mask[n], c + (size_t)m * ldc + 16 * n);
    }
    const uint8_t *x = t->x;
    const int8_t *wp = t->wp;
    for (int q = 0; q < t->nq; q++) {
        __m512i wv[NR];
#pragma GCC unroll 4
        for (int n = 0; n < nr; n++) wv[n] = _mm512_load_si512((const void *)(wp + (size_t)n * t->pbytes));
#pragma GCC unroll 8
        for (int m = 0; m < mr; m++) {
            int32_t xv;
            memcpy(&xv, x + (size_t)m * t->ldx, 4);
            const __m512i xb = _mm512_set1_epi32(xv);
#pragma GCC unroll 4
            for (int n = 0; n < nr; n++) acc[m][n] = _mm512_dpbusd_epi32(acc[m][n], xb, wv[n]);
        }
        x += 4;
        wp += 64;
    }
#pragma GCC unroll 8
    for (int m = 0; m < mr; m++)
#pragma GCC unroll 4
        for (int n = 0; n < nr; n++)
            _mm512_mask_storeu_epi32(c + (size_t)m * ldc + 16 * n, mask[n], acc[m][n]);
}

#define TILE_FN(m, n) \
    static void tile_##m##_##n(const tile_args *t) { tile(m, n, t); }
#define TILE_ROW(m) TILE_FN(m, 1) TILE_FN(m, 2) TILE_FN(m, 3) TILE_FN(m, 4)
TILE_ROW(1)
TILE_ROW(2)
TILE_ROW(3)
TILE_ROW(4)
TILE_ROW(5)
TILE_ROW(6)
typedef void (*tile_fn)(const tile_args *);
#define TILE_PTRS(m) {tile_##m##_1, tile_##m##_2, tile_##m##_3, tile_##m##_4}
static const tile_fn tiles[MR][NR] = {TILE_PTRS(1), TILE_PTRS(2), TILE_PTRS(3),
                                      TILE_PTRS(4), TILE_PTRS(5), TILE_PTRS(6)};

void ptq_i8gemm_avx512vnni(const ptq_i8gemm_args *a, int r0, int r1, int o0, int o1) {
    const ptq_i8weight *w = a->w;
    const size_t pbytes = (size_t)w->in_quads * 64;
    const int p0 = o0 / PTQ_I8_PANEL, p1 = (o1 + PTQ_I8_PANEL - 1) / PTQ_I8_PANEL;
    const int kq = r1 - r0 <= MR ? w->in_quads : KQ;
    for (int pg = p0; pg < p1; pg += NR) {
        const int nr = p1 - pg < NR ? p1 - pg : NR;
        __m512i init[NR];
        __mmask16 mask[NR];
        for (int n = 0; n < nr; n++) {
            const int o = (pg + n) * PTQ_I8_PANEL, valid = o1 - o;
            mask[n] = valid >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << valid) - 1u);
            init[n] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                       _mm512_slli_epi32(_mm512_loadu_si512((const void *)(w->rowsum + o)), 7));
        }
        for (int q0 = 0; q0 < w->in_quads; q0 += kq) {
            tile_args t;
            t.ldx = a->ldx;
            t.wp = w->packed + (size_t)pg * pbytes + (size_t)q0 * 64;
            t.pbytes = pbytes;
            t.nq = w->in_quads - q0 < kq ? w->in_quads - q0 : kq;
            t.ldc = (size_t)w->out;
            t.init = q0 == 0 ? init : NULL;
            t.mask = mask;
            for (int r = r0; r < r1; r += MR) {
                const int mr = r1 - r < MR ? r1 - r : MR;
                t.x = a->xp + (size_t)r * a->ldx + (size_t)q0 * 4;
                t.c = a->acc + (size_t)r * (size_t)w->out + (size_t)pg * PTQ_I8_PANEL;
                tiles[mr - 1][nr - 1](&t);
            }
        }
    }
}

/* ---------------------------------------------------------------- activations (AVX-512 F/BW/VL only) */

/* As ptq_i8_quant_row_scalar: vmaxps returns its second operand when the first is NaN, so NaN lanes
 * clamp to lo and are then zeroed through the ordered-compare mask; the conversion rounds half to
 * even by its embedded rounding mode (whatever MXCSR says). */
void ptq_i8_quant_row_avx512(const float *x, int n, float s, float lo, float hi, int8_t *q) {
    const __m512 vs = _mm512_set1_ps(s), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int j = 0; j < n; j += 16) {
        const int rem = n - j;
        const __mmask16 m = rem >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem) - 1u);
        __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + j), vs);
        const __mmask16 ord = _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q);
        v = _mm512_min_ps(_mm512_max_ps(v, vlo), vhi);
        const __m512i i = _mm512_maskz_cvt_roundps_epi32(ord, v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_mask_storeu_epi8(q + j, m, _mm512_cvtepi32_epi8(i));
    }
}

/* max(|x|, m) keeps m when |x| is NaN (second-operand rule), so NaN is ignored as in the scalar code. */
float ptq_i8_absmax_row_avx512(const float *x, int n) {
    __m512 m0 = _mm512_setzero_ps(), m1 = _mm512_setzero_ps();
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        m0 = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + j)), m0);
        m1 = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + j + 16)), m1);
    }
    for (; j < n; j += 16) {
        const int rem = n - j;
        const __mmask16 m = rem >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem) - 1u);
        m0 = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(m, x + j)), m0);
    }
    return _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
}
