/* AVX-512 VNNI kernel of the int8-activation prefill GEMM (qgemm_a8.h). Compiled for F + BW + VL +
 * VNNI whatever the library's flags (and without FMA contraction, so its float operations are the
 * scalar reference's); the driver calls it only when CPUID reports them.
 *
 * Per work item (64 outputs, a range of activation rows) and K block of KC chunks:
 *   unpack: each output's chunk codes become 32 unsigned bytes (row-major scratch of 16 outputs x 32),
 *           then 8 gathers transpose them into the panel layout (quad k: dword i = output i's columns
 *           4k..4k+3); scales to float and zero points to int32, one of each per (chunk, output);
 *   multiply: MR = 4 activation rows x NR = 2 panels (32 outputs): 8 int32 + 8 float accumulators.
 *           Per chunk: acc = z * (-qsum) (vpmulld), 8 x (2 weight loads, 4 broadcasts of 4 activation
 *           codes, 8 vpdpbusd), then f += cvt(acc) * (s * d).
 * The float accumulators start at 0 in the first K block and at y afterwards (exact: the sum goes on
 * in the same order).
 */
#include <stdint.h>
#include <string.h>

#include <immintrin.h>

#include "io/safetensors.h"
#include "kernels/qgemm_a8.h"
#include "kernels/qgemm_impl.h"

#define INLINE static inline __attribute__((always_inline))
#define MR 4
#define NR 2
#define NP (PTQ_QA8_NB / 16)                       /* panels per tile */
#define PANEL_BYTES ((size_t)PTQ_QA8_KC * 512)     /* one panel's codes for a K block */
#define CODE_BYTES (NP * PANEL_BYTES)
#define SZ_BYTES ((size_t)PTQ_QA8_KC * PTQ_QA8_NB * 4) /* scales (float) or zero points (int32) */

size_t ptq_qa8_tile_bytes(void) { return CODE_BYTES + 2 * SZ_BYTES; }

/* One output's chunk of codes (4 * B bytes) into 32 bytes, column order. */
INLINE void unpack_chunk(const int B, const uint8_t *p, uint8_t *dst) {
    if (B == 8) {
        _mm256_store_si256((__m256i *)dst, _mm256_loadu_si256((const __m256i *)p));
        return;
    }
    if (B == 4) {
        const __m128i m4 = _mm_set1_epi8(0x0f), c = _mm_loadu_si128((const __m128i *)p);
        _mm_store_si128((__m128i *)dst, _mm_and_si128(c, m4));
        _mm_store_si128((__m128i *)(dst + 16), _mm_and_si128(_mm_srli_epi16(c, 4), m4));
        return;
    }
    /* 2 bits (and the low two of 3): byte k bits 2i..2i+1 = column k + 8i */
    uint64_t lo8;
    memcpy(&lo8, p, 8);
    const __m128i m2 = _mm_set1_epi8(0x03), lo = _mm_set1_epi64x((long long)lo8);
    const __m128i q01 = _mm_unpacklo_epi64(_mm_and_si128(lo, m2), _mm_and_si128(_mm_srli_epi16(lo, 2), m2));
    const __m128i q23 = _mm_unpacklo_epi64(_mm_and_si128(_mm_srli_epi16(lo, 4), m2), _mm_and_si128(_mm_srli_epi16(lo, 6), m2));
    __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(q01), q23, 1);
    if (B == 3) { /* bit j of the little-endian uint32 after the 8 bytes: bit 2 of column j */
        uint32_t hi;
        memcpy(&hi, p + 8, 4);
        q = _mm256_mask_add_epi8(q, (__mmask32)hi, q, _mm256_set1_epi8(4));
    }
    _mm256_store_si256((__m256i *)dst, q);
}

/* Codes, scales and zero points of outputs [o0, o1) x chunks [c0, c0 + kc) into the tile. */
INLINE void unpack_tile(const int B, const ptq_qweight *w, int o0, int o1, int c0, int kc, int cpg, uint8_t *codes,
                        float *s, int32_t *z) {
    const size_t cb = 4u * (size_t)B;
    const int ng = w->n_groups;
    _Alignas(64) uint8_t t[16][32];
    /* dword i * 8 + k of t: output i, columns 4k..4k+3 */
    const __m512i gidx = _mm512_set_epi32(120, 112, 104, 96, 88, 80, 72, 64, 56, 48, 40, 32, 24, 16, 8, 0);
    for (int p = 0; p < NP; p++) {
        const int ob = o0 + 16 * p;
        const int n = o1 - ob >= 16 ? 16 : (o1 > ob ? o1 - ob : 0);
        uint8_t *dst = codes + (size_t)p * PANEL_BYTES;
        if (n == 0) {
            memset(dst, 0, (size_t)kc * 512);
            continue;
        }
        if (n < 16) memset(t, 0, sizeof t);
        for (int k = 0; k < kc; k++) {
            for (int i = 0; i < n; i++)
                unpack_chunk(B, w->codes + (size_t)(ob + i) * w->row_bytes + (size_t)(c0 + k) * cb, t[i]);
            for (int q = 0; q < 8; q++)
                _mm512_store_si512(dst + (size_t)k * 512 + (size_t)q * 64,
                                   _mm512_i32gather_epi32(_mm512_add_epi32(gidx, _mm512_set1_epi32(q)), t, 4));
        }
    }
    for (int i = 0; i < PTQ_QA8_NB; i++) {
        const int o = o0 + i;
        for (int k = 0; k < kc; k++) {
            float sv = 0.0f;
            int32_t zv = 0;
            if (o < o1) {
                const int g = (c0 + k) / cpg;
                sv = ptq_f16_to_f32(w->scales[(size_t)o * (size_t)ng + (size_t)g]);
                zv = w->zeros[(size_t)o * (size_t)ng + (size_t)g];
            }
            s[(size_t)k * PTQ_QA8_NB + (size_t)i] = sv;
            z[(size_t)k * PTQ_QA8_NB + (size_t)i] = zv;
        }
    }
}

typedef struct {
    const uint8_t *codes; /* first panel, first chunk of the block */
    const float *s;       /* [kc][64] at the first panel's first output */
    const int32_t *z;
    const int8_t *x; /* activation codes of the first row at the block's first column */
    size_t ldx;
    const float *d;      /* d of the first row at the block's first chunk */
    const int32_t *qsum; /* the same for qsum */
    size_t ldd;          /* row stride of d and qsum */
    int kc;
    float *y; /* first row, first output of the panel pair */
    size_t ldy;
    int first; /* first K block: float accumulators start at 0 */
    __mmask16 mask[NR];
} tile_args;

INLINE void tile(const int mr, const int nr, const tile_args *t) {
    __m512 f[MR][NR];
#pragma GCC unroll 4
    for (int m = 0; m < mr; m++)
#pragma GCC unroll 2
        for (int n = 0; n < nr; n++)
            f[m][n] = t->first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(t->mask[n], t->y + (size_t)m * t->ldy + 16 * n);
    const uint8_t *wp = t->codes;
    for (int k = 0; k < t->kc; k++) {
        __m512i acc[MR][NR];
#pragma GCC unroll 2
        for (int n = 0; n < nr; n++) {
            const __m512i z = _mm512_load_si512(t->z + (size_t)k * PTQ_QA8_NB + 16 * n);
#pragma GCC unroll 4
            for (int m = 0; m < mr; m++)
                acc[m][n] = _mm512_mullo_epi32(z, _mm512_set1_epi32(-t->qsum[(size_t)m * t->ldd + (size_t)k]));
        }
        const int8_t *x = t->x + (size_t)k * 32;
#pragma GCC unroll 8
        for (int q = 0; q < 8; q++) {
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
        wp += 512;
#pragma GCC unroll 2
        for (int n = 0; n < nr; n++) {
            const __m512 s = _mm512_load_ps(t->s + (size_t)k * PTQ_QA8_NB + 16 * n);
#pragma GCC unroll 4
            for (int m = 0; m < mr; m++) {
                const __m512 sd = _mm512_mul_ps(s, _mm512_set1_ps(t->d[(size_t)m * t->ldd + (size_t)k]));
                f[m][n] = _mm512_add_ps(f[m][n], _mm512_mul_ps(sd, _mm512_cvtepi32_ps(acc[m][n])));
            }
        }
    }
#pragma GCC unroll 4
    for (int m = 0; m < mr; m++)
#pragma GCC unroll 2
        for (int n = 0; n < nr; n++) _mm512_mask_storeu_ps(t->y + (size_t)m * t->ldy + 16 * n, t->mask[n], f[m][n]);
}

#define TILE_FN(m, n) \
    static void tile_##m##_##n(const tile_args *t) { tile(m, n, t); }
#define TILE_ROW(m) TILE_FN(m, 1) TILE_FN(m, 2)
TILE_ROW(1)
TILE_ROW(2)
TILE_ROW(3)
TILE_ROW(4)
typedef void (*tile_fn)(const tile_args *);
static const tile_fn tiles[MR][NR] = {{tile_1_1, tile_1_2}, {tile_2_1, tile_2_2}, {tile_3_1, tile_3_2}, {tile_4_1, tile_4_2}};

INLINE void block_bits(const int B, const ptq_qweight *w, const ptq_a8 *a, float *y, int r0, int r1, int o0, int o1,
                       void *tile_buf) {
    const int nch = a->nchunks;
    const int cpg = w->group % PTQ_QCHUNK == 0 ? w->group / PTQ_QCHUNK : nch;
    const size_t nc = (size_t)a->nsuper * PTQ_A8_SUPER;
    uint8_t *codes = tile_buf;
    float *s = (float *)(codes + CODE_BYTES);
    int32_t *z = (int32_t *)(codes + CODE_BYTES + SZ_BYTES);
    const int np = (o1 - o0 + 15) / 16;
    for (int c0 = 0; c0 < nch; c0 += PTQ_QA8_KC) {
        const int kc = nch - c0 < PTQ_QA8_KC ? nch - c0 : PTQ_QA8_KC;
        unpack_tile(B, w, o0, o1, c0, kc, cpg, codes, s, z);
        tile_args t;
        t.ldx = a->ld;
        t.ldd = nc;
        t.kc = kc;
        t.ldy = (size_t)w->out;
        t.first = c0 == 0;
        for (int p = 0; p < np; p += NR) {
            const int nr = np - p < NR ? np - p : NR;
            for (int n = 0; n < nr; n++) {
                const int left = o1 - (o0 + 16 * (p + n));
                t.mask[n] = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
            }
            t.codes = codes + (size_t)p * PANEL_BYTES;
            t.s = s + 16 * p;
            t.z = z + 16 * p;
            for (int r = r0; r < r1; r += MR) {
                const int mr = r1 - r < MR ? r1 - r : MR;
                t.x = a->q + (size_t)r * a->ld + (size_t)c0 * PTQ_QCHUNK;
                t.d = a->d + (size_t)r * nc + (size_t)c0;
                t.qsum = a->qsum + (size_t)r * nc + (size_t)c0;
                t.y = y + (size_t)r * (size_t)w->out + (size_t)o0 + 16 * (size_t)p;
                tiles[mr - 1][nr - 1](&t);
            }
        }
    }
}

void ptq_qgemm_a8_block_avx512(const ptq_qweight *w, const ptq_a8 *a, float *y, int r0, int r1, int o0, int o1,
                               void *tile) {
    switch (w->bits) {
    case 2: block_bits(2, w, a, y, r0, r1, o0, o1, tile); break;
    case 3: block_bits(3, w, a, y, r0, r1, o0, o1, tile); break;
    case 4: block_bits(4, w, a, y, r0, r1, o0, o1, tile); break;
    case 8: block_bits(8, w, a, y, r0, r1, o0, o1, tile); break;
    default: break;
    }
}
