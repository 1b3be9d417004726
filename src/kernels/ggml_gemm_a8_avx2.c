/* AVX2 prefill GEMM for ggml k-quant blocks with int8 activations: ggml_gemm_a8_avx512.c's tiles at half the width,
 * for CPUs without AVX-512 VNNI (ggml_gemm.h: ptq_ggml_gemm_a8 from ptq_ggml_a8_gemm_min_rows input rows).
 *   unpack: per panel of 8 outputs and block, each output's codes 32 columns at a time (ptq_gs_codes32), 8 outputs
 *           transposed by dwords (quad k: dword i = output i's codes at columns 4k..4k+3); per (sub-block, output)
 *           the float step and, Q2_K / Q4_K / Q5_K, the float offset;
 *   multiply: MR = 4 input rows x 1 panel; per unit (32 columns for Q4_K / Q5_K, 16 for the rest) int32 accumulators
 *           start at -z * (sum of the unit's activation codes) (Q3_K z = 4, Q6_K 32, else 0) and take per quad
 *           vpmaddubsw (codes x 4 broadcast activation codes; pairs <= 2 * 63 * 127, no saturation) + vpmaddwd with
 *           ones (with AVX-VNNI one VEX vpdpbusd), then f += cvt(acc) * (step * d_x) and, affine, f -= offset * (sum of
 *           x over the unit).
 * The same terms as ptq_ggml_gemv_a8_scalar, in another order. */
#include <stdint.h>
#include <string.h>

#include <immintrin.h>

#include "io/gguf.h"
#include "kernels/ggml_gemm.h"
#include "kernels/ggml_simd.h"
#include "quant/ggml_quants.h"

#define INLINE static inline __attribute__((always_inline))
#define MR 4
#define NB PTQ_GGML_A8_NB            /* outputs per tile */
#define NP (NB / 8)                  /* panels per tile */
#define KC PTQ_GGML_A8_KC            /* columns per K block */
#define PANEL_BYTES ((size_t)KC * 8) /* one panel's codes for a K block */
#define UNITS (KC / 16)              /* most sub-blocks in a K block */

/* The same size as the AVX-512 tile (ptq_ggml_a8_tile_bytes): 64 outputs x KC codes, two floats per (unit, output). */
_Static_assert(NP * PANEL_BYTES + 2 * (size_t)UNITS * NB * sizeof(float) == (size_t)KC * NB + 2 * (size_t)UNITS * NB * 4,
               "tile size");

/* steps (8 for Q4_K / Q5_K, 16 otherwise) and offsets (Q2_K, Q4_K, Q5_K) of the block's sub-blocks */
INLINE void block_params(const uint32_t T, const uint8_t *blk, float *st, float *mn) {
    if (T == PTQ_GGML_Q4_K || T == PTQ_GGML_Q5_K) {
        uint64_t sc, m;
        ptq_ggml_k4_scales(blk + 4, &sc, &m);
        _mm256_storeu_ps(st, ptq_gs_scaled8(sc, ptq_gs_h2f(blk)));
        _mm256_storeu_ps(mn, ptq_gs_scaled8(m, ptq_gs_h2f(blk + 2)));
    } else if (T == PTQ_GGML_Q6_K) {
        const float d = ptq_gs_h2f(blk + 208);
        for (int s = 0; s < 16; s++) st[s] = d * (float)(int8_t)blk[192 + s];
    } else {
        ptq_gs_k23_steps(blk, T == PTQ_GGML_Q3_K, st, mn);
    }
}

/* dwords: t[q] = dword q of r[0..7] (an 8 x 8 transpose) */
INLINE void transpose8(const __m256i r[8], __m256i t[8]) {
    __m256i a[8], b[8];
    for (int i = 0; i < 4; i++) {
        a[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) { /* rows 4i .. 4i + 3: dwords j and 4 + j in b[4i + j] */
        b[4 * i] = _mm256_unpacklo_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 1] = _mm256_unpackhi_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 2] = _mm256_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);
        b[4 * i + 3] = _mm256_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
    }
    for (int j = 0; j < 4; j++) {
        t[j] = _mm256_permute2x128_si256(b[j], b[4 + j], 0x20);
        t[4 + j] = _mm256_permute2x128_si256(b[j], b[4 + j], 0x31);
    }
}

/* Outputs [o0, o1) x columns [j0, j0 + kc) into the tile: codes per panel, steps and offsets at [unit][output]. */
INLINE void unpack_tile(const uint32_t T, const ptq_ggml_gemv_args *a, int o0, int o1, int j0, int kc, uint8_t *codes,
                        float *s, float *mn) {
    const int U = T == PTQ_GGML_Q4_K || T == PTQ_GGML_Q5_K ? 32 : 16, upb = PTQ_GGML_QK_K / U;
    const size_t bb = ptq_ggml_row_bytes(T, PTQ_GGML_QK_K);
    for (int p = 0; p < NP; p++) {
        const int ob = o0 + 8 * p, n = o1 - ob >= 8 ? 8 : (o1 > ob ? o1 - ob : 0);
        uint8_t *dst = codes + (size_t)p * PANEL_BYTES;
        for (int b = 0; b < kc / PTQ_GGML_QK_K; b++) {
            const uint8_t *blk[8];
            for (int i = 0; i < 8; i++) {
                float st[16], mt[16] = {0};
                memset(st, 0, sizeof st);
                blk[i] = NULL;
                if (i < n) {
                    blk[i] = a->w + (size_t)(ob + i) * a->row_bytes + (size_t)(j0 / PTQ_GGML_QK_K + b) * bb;
                    block_params(T, blk[i], st, mt);
                }
                for (int k = 0; k < upb; k++) {
                    s[(size_t)(b * upb + k) * NB + 8 * p + i] = st[k];
                    mn[(size_t)(b * upb + k) * NB + 8 * p + i] = mt[k];
                }
            }
            for (int k = 0; k < 8; k++) { /* columns 32k .. 32k + 31 of the block: quads 8k .. 8k + 7 */
                __m256i r[8], t[8];
                for (int i = 0; i < 8; i++) r[i] = blk[i] ? ptq_gs_codes32(T, blk[i], k) : _mm256_setzero_si256();
                transpose8(r, t);
                uint8_t *q0 = dst + ((size_t)b * 64 + 8 * (size_t)k) * 32;
                for (int q = 0; q < 8; q++) _mm256_store_si256((__m256i *)(q0 + 32 * q), t[q]);
            }
        }
    }
}

typedef struct {
    const uint8_t *codes; /* the panel's codes at the K block's first quad */
    const float *s, *mn;  /* [unit][NB] at the panel's first output */
    const int8_t *x;      /* activation codes of the first row at the K block's first column */
    const float *dx;      /* d_x per 32 columns of the first row at the K block */
    const float *xs;      /* sums of x per unit of the first row at the K block */
    const int32_t *q16;   /* sums of activation codes per 16 columns of the first row at the K block */
    size_t ldx, ldd, lds, ldq; /* row strides of x, dx, xs, q16 */
    int units, n;              /* units in the K block; outputs of the panel (<= 8) */
    float *y;                  /* first row, the panel's first output */
    size_t ldy;
    int first; /* first K block: float accumulators start at 0 */
} tile_args;

/* VNNI: one AVX-VNNI vpdpbusd per quad and row instead of vpmaddubsw + vpmaddwd + vpaddd (the same int32 sums) */
INLINE void tile(const int VNNI, const uint32_t T, const int mr, const tile_args *t) {
    const int U = T == PTQ_GGML_Q4_K || T == PTQ_GGML_Q5_K ? 32 : 16;
    const int affine = T != PTQ_GGML_Q3_K && T != PTQ_GGML_Q6_K, z = T == PTQ_GGML_Q3_K ? 4 : 32;
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(t->n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 f[MR];
#pragma GCC unroll 4
    for (int m = 0; m < mr; m++) f[m] = t->first ? _mm256_setzero_ps() : _mm256_maskload_ps(t->y + (size_t)m * t->ldy, mask);
    const uint8_t *wp = t->codes;
    for (int u = 0; u < t->units; u++) {
        __m256i acc[MR];
#pragma GCC unroll 4
        for (int m = 0; m < mr; m++)
            acc[m] = affine ? _mm256_setzero_si256() : _mm256_set1_epi32(-z * t->q16[(size_t)m * t->ldq + (size_t)u]);
        const int8_t *x = t->x + (size_t)u * U;
#pragma GCC unroll 8
        for (int q = 0; q < U / 4; q++) {
            const __m256i wv = _mm256_load_si256((const __m256i *)(wp + (size_t)q * 32));
#pragma GCC unroll 4
            for (int m = 0; m < mr; m++) {
                int32_t xv;
                memcpy(&xv, x + (size_t)m * t->ldx + 4 * q, 4);
                if (VNNI) {
                    acc[m] = ptq_gs_dpbusd_vex(acc[m], wv, _mm256_set1_epi32(xv));
                } else {
                    const __m256i p = _mm256_maddubs_epi16(wv, _mm256_set1_epi32(xv));
                    acc[m] = _mm256_add_epi32(acc[m], _mm256_madd_epi16(p, ones));
                }
            }
        }
        wp += (size_t)U * 8;
        const __m256 s = _mm256_load_ps(t->s + (size_t)u * NB);
        const __m256 o = affine ? _mm256_load_ps(t->mn + (size_t)u * NB) : s;
#pragma GCC unroll 4
        for (int m = 0; m < mr; m++) {
            const __m256 sd = _mm256_mul_ps(s, _mm256_set1_ps(t->dx[(size_t)m * t->ldd + (size_t)(u * U / 32)]));
            f[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[m]), sd, f[m]);
            if (affine) f[m] = _mm256_fnmadd_ps(o, _mm256_set1_ps(t->xs[(size_t)m * t->lds + (size_t)u]), f[m]);
        }
    }
#pragma GCC unroll 4
    for (int m = 0; m < mr; m++) _mm256_maskstore_ps(t->y + (size_t)m * t->ldy, mask, f[m]);
}

INLINE void run_tile(const int VNNI, const uint32_t T, int mr, const tile_args *t) {
    switch (mr) {
    case 1: tile(VNNI, T, 1, t); break;
    case 2: tile(VNNI, T, 2, t); break;
    case 3: tile(VNNI, T, 3, t); break;
    default: tile(VNNI, T, 4, t); break;
    }
}

INLINE void block_type(const int VNNI, const uint32_t T, const ptq_ggml_gemv_args *a, int r0, int r1, int o0, int o1, void *buf) {
    const int U = T == PTQ_GGML_Q4_K || T == PTQ_GGML_Q5_K ? 32 : 16;
    const size_t ns = (size_t)(a->in / 32);
    uint8_t *codes = buf;
    float *s = (float *)(codes + NP * PANEL_BYTES), *mn = s + (size_t)UNITS * NB;
    const int np = (o1 - o0 + 7) / 8;
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
        for (int p = 0; p < np; p++) {
            t.n = o1 - (o0 + 8 * p) >= 8 ? 8 : o1 - (o0 + 8 * p);
            t.codes = codes + (size_t)p * PANEL_BYTES;
            t.s = s + 8 * p;
            t.mn = mn + 8 * p;
            for (int r = r0; r < r1; r += MR) {
                t.x = a->xq + (size_t)r * t.ldx + (size_t)j0;
                t.dx = a->dx + (size_t)r * ns + (size_t)(j0 / 32);
                t.xs = (U == 32 ? a->xs32 : a->xs16) + (size_t)r * t.lds + (size_t)(j0 / U);
                t.q16 = a->qsum16 + (size_t)r * t.ldq + (size_t)(j0 / 16);
                t.y = a->y + (size_t)r * t.ldy + (size_t)o0 + 8 * (size_t)p;
                run_tile(VNNI, T, r1 - r < MR ? r1 - r : MR, &t);
            }
        }
    }
}

INLINE void block(const int VNNI, const ptq_ggml_gemv_args *a, int r0, int r1, int o0, int o1, void *tile_buf) {
    switch (a->type) {
    case PTQ_GGML_Q2_K: block_type(VNNI, PTQ_GGML_Q2_K, a, r0, r1, o0, o1, tile_buf); break;
    case PTQ_GGML_Q3_K: block_type(VNNI, PTQ_GGML_Q3_K, a, r0, r1, o0, o1, tile_buf); break;
    case PTQ_GGML_Q4_K: block_type(VNNI, PTQ_GGML_Q4_K, a, r0, r1, o0, o1, tile_buf); break;
    case PTQ_GGML_Q5_K: block_type(VNNI, PTQ_GGML_Q5_K, a, r0, r1, o0, o1, tile_buf); break;
    case PTQ_GGML_Q6_K: block_type(VNNI, PTQ_GGML_Q6_K, a, r0, r1, o0, o1, tile_buf); break;
    default: break; /* the driver sends no other type */
    }
}

void ptq_ggml_gemm_a8_block_avx2(const ptq_ggml_gemv_args *a, int r0, int r1, int o0, int o1, void *tile_buf) {
    block(0, a, r0, r1, o0, o1, tile_buf);
}

__attribute__((target("avx2,fma,f16c,avxvnni"))) void ptq_ggml_gemm_a8_block_avxvnni(const ptq_ggml_gemv_args *a, int r0,
                                                                                     int r1, int o0, int o1,
                                                                                     void *tile_buf) {
    block(1, a, r0, r1, o0, o1, tile_buf);
}
