/* AVX-512 VNNI prefill GEMM for ggml k-quant blocks with int8 activations (ggml_gemm.h: ptq_ggml_gemm_a8 from
 * ptq_ggml_a8_gemm_min_rows input rows). The GEMV kernels (ggml_gemv_a8_avx512.c) unpack a weight row's blocks
 * again for every input row; here each work item (64 outputs, a range of input rows) unpacks a tile of 64 outputs x
 * KC columns once, as qgemm_a8_avx512.c does for ptq's packed codes:
 *   unpack: each block's 256 codes in column order as unsigned bytes (Q3_K with its third bit: 0..7, value - 4;
 *           Q6_K 0..63, value - 32), 16 outputs transposed into a panel (quad k: dword i = output i's codes at
 *           columns 4k..4k+3: ptq_transpose_rows16); per (sub-block, output) the float step (d * sc) and, for the
 *           affine types Q2_K / Q4_K / Q5_K, the float offset (dmin * m);
 *   multiply: MR = 4 input rows x NR = 2 panels; per unit (a sub-block: 32 columns for Q4_K / Q5_K, 16 for the
 *           rest) the int32 accumulators start at -z * (sum of the unit's activation codes) (Q3_K z = 4, Q6_K
 *           z = 32, else 0), take 8 or 4 quads of vpdpbusd, then
 *             f += cvt(acc) * (step * d_x)        and, affine,  f -= offset * (sum of x over the unit).
 * The terms are ptq_ggml_gemv_a8_scalar's, each sub-block's integer sum exact, added in another order.
 */
#include <stdint.h>
#include <string.h>

#include <immintrin.h>

#include "io/gguf.h"
#include "kernels/ggml_gemm.h"
#include "kernels/ggml_simd.h"
#include "kernels/transpose16_avx512.h"
#include "quant/ggml_quants.h"

#define INLINE static inline __attribute__((always_inline))
#define MR 4
#define NR 2
#define NB PTQ_GGML_A8_NB            /* outputs per tile */
#define NP (NB / 16)                 /* panels per tile */
#define KC PTQ_GGML_A8_KC            /* columns per K block */
#define PANEL_BYTES ((size_t)KC * 16) /* one panel's codes for a K block */
#define UNITS (KC / 16)              /* most sub-blocks in a K block */

size_t ptq_ggml_a8_tile_bytes(void) { return NP * PANEL_BYTES + 2 * (size_t)UNITS * NB * sizeof(float); }

/* The 256 codes of the block at blk, column order, one unsigned byte each (ptq_gs_codes32, 32 columns at a time). */
INLINE void block_codes(const uint32_t T, const uint8_t *blk, uint8_t *c) {
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) _mm256_storeu_si256((__m256i *)(c + 32 * k), ptq_gs_codes32(T, blk, k));
}

/* The block's sub-block steps (and offsets, affine types) into st / mn: 8 for Q4_K / Q5_K, 16 for the rest. */
INLINE void block_params(const uint32_t T, const uint8_t *blk, float *st, float *mn) {
    if (T == PTQ_GGML_Q4_K || T == PTQ_GGML_Q5_K) {
        uint64_t sc, m;
        ptq_ggml_k4_scales(blk + 4, &sc, &m);
        _mm256_storeu_ps(st, ptq_gs_scaled8(sc, ptq_gs_h2f(blk)));
        _mm256_storeu_ps(mn, ptq_gs_scaled8(m, ptq_gs_h2f(blk + 2)));
    } else if (T == PTQ_GGML_Q6_K) {
        const __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 192))));
        _mm512_storeu_ps(st, _mm512_mul_ps(_mm512_set1_ps(ptq_gs_h2f(blk + 208)), sc));
    } else {
        __m512 d1, m1;
        ptq_gs_k23_scales(blk, T == PTQ_GGML_Q3_K, &d1, &m1);
        _mm512_storeu_ps(st, d1);
        _mm512_storeu_ps(mn, m1);
    }
}

/* Outputs [o0, o1) x columns [j0, j0 + kc) into the tile: codes per panel, steps and offsets at [unit][output]. */
INLINE void unpack_tile(const uint32_t T, const ptq_ggml_gemv_args *a, int o0, int o1, int j0, int kc, uint8_t *codes,
                        float *s, float *mn) {
    const int U = T == PTQ_GGML_Q4_K || T == PTQ_GGML_Q5_K ? 32 : 16, upb = PTQ_GGML_QK_K / U;
    const size_t bb = ptq_ggml_row_bytes(T, PTQ_GGML_QK_K);
    _Alignas(64) uint8_t rows[16][PTQ_GGML_QK_K];
    for (int p = 0; p < NP; p++) {
        const int ob = o0 + 16 * p, n = o1 - ob >= 16 ? 16 : (o1 > ob ? o1 - ob : 0);
        uint8_t *dst = codes + (size_t)p * PANEL_BYTES;
        for (int b = 0; b < kc / PTQ_GGML_QK_K; b++) {
            const int u0 = b * upb; /* the block's first unit in the K block */
            for (int i = 0; i < 16; i++) {
                float st[16], mt[16] = {0};
                if (i < n) {
                    const uint8_t *blk = a->w + (size_t)(ob + i) * a->row_bytes + (size_t)(j0 / PTQ_GGML_QK_K + b) * bb;
                    block_codes(T, blk, rows[i]);
                    block_params(T, blk, st, mt);
                } else {
                    memset(st, 0, sizeof st);
                }
                for (int k = 0; k < upb; k++) {
                    s[(size_t)(u0 + k) * NB + 16 * p + i] = st[k];
                    mn[(size_t)(u0 + k) * NB + 16 * p + i] = mt[k];
                }
            }
            for (int slab = 0; slab < 4; slab++) { /* 64 columns: quads 16 slab + 4 L + q of the block */
                __m512i t[4][4];
                ptq_transpose_rows16(rows[0] + 64 * slab, PTQ_GGML_QK_K, n, 64, t);
                uint8_t *q0 = dst + ((size_t)b * 64 + 16 * (size_t)slab) * 64;
                for (int L = 0; L < 4; L++)
                    for (int q = 0; q < 4; q++) _mm512_store_si512(q0 + (size_t)(4 * L + q) * 64, t[L][q]);
            }
        }
    }
}

typedef struct {
    const uint8_t *codes; /* first panel's codes at the K block's first quad */
    const float *s, *mn;  /* [unit][NB] at the first panel's first output */
    const int8_t *x;      /* activation codes of the first row at the K block's first column */
    const float *dx;      /* d_x per 32 columns of the first row at the K block */
    const float *xs;      /* sums of x per unit (per 32 or 16 columns) of the first row at the K block */
    const int32_t *q16;   /* sums of activation codes per 16 columns of the first row at the K block */
    size_t ldx, ldd, lds, ldq; /* row strides of x, dx, xs, q16 */
    int units;
    float *y; /* first row, first output of the panel pair */
    size_t ldy;
    int first; /* first K block: float accumulators start at 0 */
    __mmask16 mask[NR];
} tile_args;

INLINE void tile(const uint32_t T, const int mr, const int nr, const tile_args *t) {
    const int U = T == PTQ_GGML_Q4_K || T == PTQ_GGML_Q5_K ? 32 : 16;
    const int affine = T != PTQ_GGML_Q3_K && T != PTQ_GGML_Q6_K, z = T == PTQ_GGML_Q3_K ? 4 : 32;
    __m512 f[MR][NR];
#pragma GCC unroll 4
    for (int m = 0; m < mr; m++)
#pragma GCC unroll 2
        for (int n = 0; n < nr; n++)
            f[m][n] = t->first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(t->mask[n], t->y + (size_t)m * t->ldy + 16 * n);
    const uint8_t *wp = t->codes;
    for (int u = 0; u < t->units; u++) {
        __m512i acc[MR][NR];
#pragma GCC unroll 4
        for (int m = 0; m < mr; m++) {
            const __m512i a0 = affine ? _mm512_setzero_si512() : _mm512_set1_epi32(-z * t->q16[(size_t)m * t->ldq + (size_t)u]);
#pragma GCC unroll 2
            for (int n = 0; n < nr; n++) acc[m][n] = a0;
        }
        const int8_t *x = t->x + (size_t)u * U;
#pragma GCC unroll 8
        for (int q = 0; q < U / 4; q++) {
            __m512i wv[NR];
#pragma GCC unroll 2
            for (int n = 0; n < nr; n++) wv[n] = _mm512_load_si512(wp + (size_t)n * PANEL_BYTES + (size_t)q * 64);
#pragma GCC unroll 4
            for (int m = 0; m < mr; m++) {
                int32_t xv;
                memcpy(&xv, x + (size_t)m * t->ldx + 4 * q, 4);
                const __m512i xb = _mm512_set1_epi32(xv);
#pragma GCC unroll 2
                for (int n = 0; n < nr; n++) acc[m][n] = _mm512_dpbusd_epi32(acc[m][n], wv[n], xb);
            }
        }
        wp += (size_t)U * 16;
#pragma GCC unroll 2
        for (int n = 0; n < nr; n++) {
            const __m512 s = _mm512_load_ps(t->s + (size_t)u * NB + 16 * n);
            const __m512 o = affine ? _mm512_load_ps(t->mn + (size_t)u * NB + 16 * n) : s;
#pragma GCC unroll 4
            for (int m = 0; m < mr; m++) {
                const __m512 sd = _mm512_mul_ps(s, _mm512_set1_ps(t->dx[(size_t)m * t->ldd + (size_t)(u * U / 32)]));
                f[m][n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[m][n]), sd, f[m][n]);
                if (affine) f[m][n] = _mm512_fnmadd_ps(o, _mm512_set1_ps(t->xs[(size_t)m * t->lds + (size_t)u]), f[m][n]);
            }
        }
    }
#pragma GCC unroll 4
    for (int m = 0; m < mr; m++)
#pragma GCC unroll 2
        for (int n = 0; n < nr; n++) _mm512_mask_storeu_ps(t->y + (size_t)m * t->ldy + 16 * n, t->mask[n], f[m][n]);
}

/* One instance per (rows, panels) shape. */
INLINE void run_tile(const uint32_t T, int mr, int nr, const tile_args *t) {
    switch (mr * 2 + nr - 3) {
    case 0: tile(T, 1, 1, t); break;
    case 1: tile(T, 1, 2, t); break;
    case 2: tile(T, 2, 1, t); break;
    case 3: tile(T, 2, 2, t); break;
    case 4: tile(T, 3, 1, t); break;
    case 5: tile(T, 3, 2, t); break;
    case 6: tile(T, 4, 1, t); break;
    default: tile(T, 4, 2, t); break;
    }
}

INLINE void block_type(const uint32_t T, const ptq_ggml_gemv_args *a, int r0, int r1, int o0, int o1, void *buf) {
    const int U = T == PTQ_GGML_Q4_K || T == PTQ_GGML_Q5_K ? 32 : 16;
    const size_t ns = (size_t)(a->in / 32);
    uint8_t *codes = buf;
    float *s = (float *)(codes + NP * PANEL_BYTES), *mn = s + (size_t)UNITS * NB;
    const int np = (o1 - o0 + 15) / 16;
    for (int j0 = 0; j0 < a->in; j0 += KC) {
        const int kc = a->in - j0 < KC ? a->in - j0 : KC;
        unpack_tile(T, a, o0, o1, j0, kc, codes, s, mn);
        tile_args t;
        t.ldx = (size_t)a->in;
        t.ldd = ns;
        t.lds = U == 32 ? ns : 2 * ns;
        t.ldq = 2 * ns;
        t.units = kc / U;
        t.ldy = (size_t)a->out;
        t.first = j0 == 0;
        for (int p = 0; p < np; p += NR) {
            const int nr = np - p < NR ? np - p : NR;
            for (int n = 0; n < nr; n++) {
                const int left = o1 - (o0 + 16 * (p + n));
                t.mask[n] = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
            }
            t.codes = codes + (size_t)p * PANEL_BYTES;
            t.s = s + 16 * p;
            t.mn = mn + 16 * p;
            for (int r = r0; r < r1; r += MR) {
                const int mr = r1 - r < MR ? r1 - r : MR;
                t.x = a->xq + (size_t)r * t.ldx + (size_t)j0;
                t.dx = a->dx + (size_t)r * ns + (size_t)(j0 / 32);
                t.xs = (U == 32 ? a->xs32 : a->xs16) + (size_t)r * t.lds + (size_t)(j0 / U);
                t.q16 = a->qsum16 + (size_t)r * t.ldq + (size_t)(j0 / 16);
                t.y = a->y + (size_t)r * t.ldy + (size_t)o0 + 16 * (size_t)p;
                run_tile(T, mr, nr, &t);
            }
        }
    }
}

void ptq_ggml_gemm_a8_block_avx512(const ptq_ggml_gemv_args *a, int r0, int r1, int o0, int o1, void *tile_buf) {
    switch (a->type) {
    case PTQ_GGML_Q2_K: block_type(PTQ_GGML_Q2_K, a, r0, r1, o0, o1, tile_buf); break;
    case PTQ_GGML_Q3_K: block_type(PTQ_GGML_Q3_K, a, r0, r1, o0, o1, tile_buf); break;
    case PTQ_GGML_Q4_K: block_type(PTQ_GGML_Q4_K, a, r0, r1, o0, o1, tile_buf); break;
    case PTQ_GGML_Q5_K: block_type(PTQ_GGML_Q5_K, a, r0, r1, o0, o1, tile_buf); break;
    case PTQ_GGML_Q6_K: block_type(PTQ_GGML_Q6_K, a, r0, r1, o0, o1, tile_buf); break;
    default: break; /* the driver sends no other type */
    }
}
