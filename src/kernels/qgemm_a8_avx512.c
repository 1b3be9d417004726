/* AVX-512 VNNI kernel of the int8-activation prefill GEMM (qgemm_a8.h). Compiled for F + BW + VL +
 * VNNI whatever the library's flags (and without FMA contraction, so its float operations are the
 * scalar reference's); the driver calls it only when CPUID reports them.
 *
 * Per work item (64 outputs, a range of activation rows) and K block of KC chunks:
 *   unpack: into the panel layout (quad k of a chunk: dword i = output i's columns 4k..4k+3), by a
 *           16 x 16 dword transpose of 64 contiguous code bytes per output (4 and 8 bits), or by dword
 *           gathers of the packed chunk (2, 3, 5, 6, 7 bits), then a shift and mask per quad; scales to float
 *           and zero points to int32, one of each per (chunk, output). Up to 1/8 of the time at 256
 *           rows, most of it at 8 (docs/RESULTS.md);
 *   multiply: MR = 4 activation rows x NR = 2 panels (32 outputs): 8 int32 + 8 float accumulators
 *           (6 or 8 rows, or FMA for the multiply-add, measured no faster).
 *           Per chunk: acc = z * (-qsum) (vpmulld), 8 x (2 weight loads, 4 broadcasts of 4 activation
 *           codes, 8 vpdpbusd), then f += cvt(acc) * (s * d).
 * The float accumulators start at 0 in the first K block and at y afterwards (exact: the sum goes on
 * in the same order).
 */
#include <stdint.h>
#include <string.h>

#include <immintrin.h>

#include "kernels/qgemm_a8.h"
#include "kernels/transpose16_avx512.h"

#define INLINE static inline __attribute__((always_inline))
#define MR 4
#define NR 2
#define NP (PTQ_QA8_NB / 16)                       /* panels per tile */
#define PANEL_BYTES ((size_t)PTQ_QA8_KC * 512)     /* one panel's codes for a K block */
#define CODE_BYTES (NP * PANEL_BYTES)
#define SZ_BYTES ((size_t)PTQ_QA8_KC * PTQ_QA8_NB * 4) /* scales (float) or zero points (int32) */

size_t ptq_qa8_tile_bytes(void) { return CODE_BYTES + 2 * SZ_BYTES; }

/* The 8 quads of one chunk of 16 outputs (rows of codes at base + offs[i], lanes past `m` zero) into
 * dst, from dword gathers of the packed chunk: quad q holds columns 4q..4q+3, which are
 *   8 bits: dword q;  4 bits: the low (q < 4) or high nibbles of dword q % 4;
 *   2 bits: dword q % 2 shifted right by 2 (q / 2), masked;  3 bits: the same, plus bit 2 from the
 *   third-bit plane (dword 2): its bits 4q..4q+3 spread to the 4 bytes by a multiply;
 *   5-7 bits: the nibbles as 4 bits, bits 4-5 (6, 7 bits) as 2 bits from dwords 4 and 5 shifted left
 *   by 4, the top bit (5, 7 bits: dword B - 1) spread as for 3 bits. */
INLINE void unpack_chunk16(const int B, const uint8_t *base, __m512i offs, __mmask16 m, uint8_t *dst) {
    const __m512i zero = _mm512_setzero_si512();
#define GATHER(dw) _mm512_mask_i32gather_epi32(zero, m, offs, base + 4 * (dw), 1)
    if (B == 8) {
        for (int q = 0; q < 8; q++) _mm512_store_si512(dst + 64 * q, GATHER(q));
        return;
    }
    if (B == 4) {
        const __m512i m4 = _mm512_set1_epi8(0x0f);
        for (int q = 0; q < 4; q++) {
            const __m512i g = GATHER(q);
            _mm512_store_si512(dst + 64 * q, _mm512_and_si512(g, m4));
            _mm512_store_si512(dst + 64 * (q + 4), _mm512_and_si512(_mm512_srli_epi16(g, 4), m4));
        }
        return;
    }
    if (B >= 5 && B <= 7) { /* nibbles as 4 bits; bits 4-5 as 2 bits from dwords 4, 5; the top bit's plane */
        const __m512i m4 = _mm512_set1_epi8(0x0f), m2 = _mm512_set1_epi8(0x03);
        const __m512i h0 = B >= 6 ? GATHER(4) : zero, h1 = B >= 6 ? GATHER(5) : zero;
        const __m512i pl = B != 6 ? GATHER(B - 1) : zero;
        for (int q = 0; q < 8; q++) {
            const __m512i g = GATHER(q % 4);
            __m512i v = _mm512_and_si512(q < 4 ? g : _mm512_srli_epi16(g, 4), m4);
            if (B >= 6) {
                const __m512i h = _mm512_and_si512(_mm512_srli_epi32(q & 1 ? h1 : h0, 2 * (q / 2)), m2);
                v = _mm512_or_si512(v, _mm512_slli_epi32(h, 4));
            }
            if (B != 6) /* as for 3 bits below: bits 4q..4q+3 of the plane to bit B - 1 of bytes 0..3 */
                v = _mm512_or_si512(v, _mm512_and_si512(_mm512_slli_epi32(_mm512_mullo_epi32(_mm512_and_si512(
                                                                                _mm512_srli_epi32(pl, 4 * q),
                                                                                _mm512_set1_epi32(15)),
                                                                            _mm512_set1_epi32(0x00204081)),
                                                                        B - 1),
                                                       _mm512_set1_epi32(0x01010101 << (B - 1))));
            _mm512_store_si512(dst + 64 * q, v);
        }
        return;
    }
    const __m512i m2 = _mm512_set1_epi8(0x03);
    const __m512i g0 = GATHER(0), g1 = GATHER(1);
    __m512i hb = zero;
    if (B == 3) hb = GATHER(2);
#undef GATHER
    for (int q = 0; q < 8; q++) {
        __m512i v = _mm512_and_si512(_mm512_srli_epi32(q & 1 ? g1 : g0, 2 * (q / 2)), m2);
        if (B == 3) { /* bits b0..b3 of the nibble: b * 0x00204081 is b << 0 | b << 7 | b << 14 | b << 21 (no
                         overlaps), which puts b_t at bit 8t: shifted by 2, bit 2 of byte t */
            const __m512i b = _mm512_and_si512(_mm512_srli_epi32(hb, 4 * q), _mm512_set1_epi32(15));
            const __m512i spread = _mm512_slli_epi32(_mm512_mullo_epi32(b, _mm512_set1_epi32(0x00204081)), 2);
            v = _mm512_or_si512(v, _mm512_and_si512(spread, _mm512_set1_epi32(0x04040404)));
        }
        _mm512_store_si512(dst + 64 * q, v);
    }
}

/* Chunks [k, k + 4) (4 bits) or [k, k + 2) (8 bits) of a panel into dst (the panel's K block), kc chunks
 * in the block. */
INLINE void unpack_rows16(const int B, const uint8_t *base, size_t ld, int n, int k, int kc, uint8_t *dst) {
    const int cpl = B == 4 ? 4 : 2; /* chunks per 64 bytes */
    const int left = kc - k < cpl ? kc - k : cpl;
    __m512i t[4][4];
    ptq_transpose_rows16(base + (size_t)k * 4u * B, ld, n, left * 4 * B, t);
    if (B == 8) { /* lane L: chunk k + L / 2, quads 4 (L % 2) .. +3 */
        for (int L = 0; L < 2 * left; L++)
            for (int q = 0; q < 4; q++) _mm512_store_si512(dst + (size_t)(k + L / 2) * 512 + (size_t)(4 * (L % 2) + q) * 64, t[L][q]);
        return;
    }
    const __m512i m4 = _mm512_set1_epi8(0x0f); /* lane L: chunk k + L; dword q: quads q (low), q + 4 (high) */
    for (int L = 0; L < left; L++)
        for (int q = 0; q < 4; q++) {
            _mm512_store_si512(dst + (size_t)(k + L) * 512 + (size_t)q * 64, _mm512_and_si512(t[L][q], m4));
            _mm512_store_si512(dst + (size_t)(k + L) * 512 + (size_t)(q + 4) * 64,
                               _mm512_and_si512(_mm512_srli_epi16(t[L][q], 4), m4));
        }
}

/* Codes, scales and zero points of outputs [o0, o1) x chunks [c0, c0 + kc) into the tile. */
INLINE void unpack_tile(const int B, const ptq_qweight *w, int o0, int o1, int c0, int kc, int cpg, uint8_t *codes,
                        float *s, int32_t *z) {
    const size_t cb = 4u * (size_t)B;
    const int ng = w->n_groups;
    const __m512i offs = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32((int)w->row_bytes));
    for (int p = 0; p < NP; p++) {
        const int ob = o0 + 16 * p;
        const int n = o1 - ob >= 16 ? 16 : (o1 > ob ? o1 - ob : 0);
        uint8_t *dst = codes + (size_t)p * PANEL_BYTES;
        if (n == 0) {
            memset(dst, 0, (size_t)kc * 512);
            continue;
        }
        const __mmask16 m = (__mmask16)((1u << n) - 1u);
        const uint8_t *base = w->codes + (size_t)ob * w->row_bytes + (size_t)c0 * cb;
        if (B == 4 || B == 8)
            for (int k = 0; k < kc; k += 16 / B) unpack_rows16(B, base, w->row_bytes, n, k, kc, dst);
        else
            for (int k = 0; k < kc; k++) unpack_chunk16(B, base + (size_t)k * cb, offs, m, dst + (size_t)k * 512);
    }
    /* scales and zero points of chunk k for output i at [k][i]: each output's groups converted once */
    const int g0 = c0 / cpg, g1 = (c0 + kc - 1) / cpg;
    for (int i = 0; i < PTQ_QA8_NB; i++) {
        const int o = o0 + i;
        if (o >= o1) {
            for (int k = 0; k < kc; k++) s[(size_t)k * PTQ_QA8_NB + (size_t)i] = 0.0f, z[(size_t)k * PTQ_QA8_NB + (size_t)i] = 0;
            continue;
        }
        _Alignas(64) float sf[PTQ_QA8_KC];
        const uint16_t *sr = w->scales + (size_t)o * (size_t)ng + (size_t)g0;
        const uint8_t *zr = ptq_qweight_zeros_of(w, o) + g0;
        for (int g = 0; g <= g1 - g0; g += 16) {
            const int left = g1 - g0 + 1 - g;
            const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
            _mm512_store_ps(sf + g, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, sr + g)));
        }
        if (cpg == 1) {
            for (int k = 0; k < kc; k++) {
                s[(size_t)k * PTQ_QA8_NB + (size_t)i] = sf[k];
                z[(size_t)k * PTQ_QA8_NB + (size_t)i] = zr[k];
            }
        } else {
            for (int k = 0; k < kc; k++) {
                const int g = (c0 + k) / cpg - g0;
                s[(size_t)k * PTQ_QA8_NB + (size_t)i] = sf[g];
                z[(size_t)k * PTQ_QA8_NB + (size_t)i] = zr[g];
            }
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
#pragma GCC unroll 8
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
#pragma GCC unroll 8
            for (int m = 0; m < mr; m++)
                acc[m][n] = _mm512_mullo_epi32(z, _mm512_set1_epi32(-t->qsum[(size_t)m * t->ldd + (size_t)k]));
        }
        const int8_t *x = t->x + (size_t)k * 32;
#pragma GCC unroll 8
        for (int q = 0; q < 8; q++) {
            __m512i wv[NR];
#pragma GCC unroll 2
            for (int n = 0; n < nr; n++) wv[n] = _mm512_load_si512(wp + (size_t)n * PANEL_BYTES + (size_t)q * 64);
#pragma GCC unroll 8
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
#pragma GCC unroll 8
            for (int m = 0; m < mr; m++) {
                const __m512 sd = _mm512_mul_ps(s, _mm512_set1_ps(t->d[(size_t)m * t->ldd + (size_t)k]));
                f[m][n] = _mm512_add_ps(f[m][n], _mm512_mul_ps(sd, _mm512_cvtepi32_ps(acc[m][n])));
            }
        }
    }
#pragma GCC unroll 8
    for (int m = 0; m < mr; m++)
#pragma GCC unroll 2
        for (int n = 0; n < nr; n++) _mm512_mask_storeu_ps(t->y + (size_t)m * t->ldy + 16 * n, t->mask[n], f[m][n]);
}

/* One instance per (rows, panels) shape, all register-allocated at compile time. */
static void run_tile(int mr, int nr, const tile_args *t) {
    switch (mr * 2 + nr - 3) {
    case 0: tile(1, 1, t); break;
    case 1: tile(1, 2, t); break;
    case 2: tile(2, 1, t); break;
    case 3: tile(2, 2, t); break;
    case 4: tile(3, 1, t); break;
    case 5: tile(3, 2, t); break;
    case 6: tile(4, 1, t); break;
    default: tile(4, 2, t); break;
    }
}

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
                run_tile(mr, nr, &t);
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
    case 5: block_bits(5, w, a, y, r0, r1, o0, o1, tile); break;
    case 6: block_bits(6, w, a, y, r0, r1, o0, o1, tile); break;
    case 7: block_bits(7, w, a, y, r0, r1, o0, o1, tile); break;
    case 8: block_bits(8, w, a, y, r0, r1, o0, o1, tile); break;
    default: break;
    }
}
