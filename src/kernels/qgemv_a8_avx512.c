/* AVX-512 VNNI kernel of the int8-activation GEMV (qgemv_a8.h). Compiled for F + BW + VL + VNNI
 * whatever the library's flags; the dispatcher calls it only when CPUID reports them. The kernel itself is in
 * qgemv_a8_avx512_tile.h (shared with qgemv_a8_avx512_gfni.c); this file instantiates it for every width.
 *
 * One weight row (and up to 4 input rows that share each unpacked block) at a time. A block is the
 * codes of CPB chunks that fill one 64-byte vector of unsigned codes (8 bits: 2 chunks, 4 bits: 4,
 * 2 and 3 bits: 8), multiplied by the matching 64 activation codes with vpdpbusd: int32 lane m then
 * holds part of chunk m / (16 / CPB)'s exact dot product. It is converted to float and multiplied
 * by that chunk's scale s * d (a lane permutation of the superblock's 16 scales) into a float
 * accumulator: no horizontal sum until the end of the row. The zero-point term,
 * sum_c s d z qsum, is one vector FMA per 16 chunks.
 *   4 bits: low nibbles (and) and high nibbles (shift, and): 2 vpdpbusd per 128 weights.
 *   2 bits: shifts by 0, 2, 4, 6 and a mask: 4 vpdpbusd per 256 weights.
 *   3 bits: the 2-bit planes of 8 chunks gathered from 96 bytes with one vpermt2d; the third bit of
 *           each code (a 32-bit plane per chunk) is spread to bytes by vpshufb and tested against
 *           a per-byte bit mask, and adds 4 through the resulting byte mask.
 *   2 bits with GFNI (qgemv_a8_avx512_gfni.c, same codes): one affine byte map per 64 codes.
 *   5-7 bits: blocks of 4 chunks as 4 bits (the same activation order): the 16 nibble bytes of each
 *           chunk gathered into one vector with one vpermt2d, then as 4 bits; bits 4-5 (6, 7 bits:
 *           the 2-bit layout, one qword per chunk, doubled) shifted per qword into place; the plane of
 *           the top bit (5, 7 bits) becomes two 64-bit byte masks (one vpshufb) and is added.
 * The last partial block of a row is copied into a zeroed buffer (never read past the weights).
 */
#include <string.h>

#include <immintrin.h>

#include "kernels/qgemv_a8_avx512_tile.h"

#define RND (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC) /* as nearbyintf in the default mode */

GEMV_WIDTH(2)
GEMV_WIDTH(3)
GEMV_WIDTH(4)
GEMV_WIDTH(5)
GEMV_WIDTH(6)
GEMV_WIDTH(7)
GEMV_WIDTH(8)

void ptq_qgemv_a8_avx512_vnni_tiled(const ptq_qweight *w, const ptq_a8 *a, float *y, int o0, int o1, int tile) {
    switch (w->bits) {
    case 2: gemv_2(w, a, y, o0, o1, tile); break;
    case 3: gemv_3(w, a, y, o0, o1, tile); break;
    case 4: gemv_4(w, a, y, o0, o1, tile); break;
    case 5: gemv_5(w, a, y, o0, o1, tile); break;
    case 6: gemv_6(w, a, y, o0, o1, tile); break;
    case 7: gemv_7(w, a, y, o0, o1, tile); break;
    case 8: gemv_8(w, a, y, o0, o1, tile); break;
    default: break;
    }
}

void ptq_qgemv_a8_avx512_tiled(const ptq_qweight *w, const ptq_a8 *a, float *y, int o0, int o1, int tile) {
    if (w->bits == 2 && ptq_a8_gfni_supported()) ptq_qgemv_a8_avx512_gfni_tiled(w, a, y, o0, o1, tile);
    else ptq_qgemv_a8_avx512_vnni_tiled(w, a, y, o0, o1, tile);
}

void ptq_qgemv_a8_avx512(const ptq_qweight *w, const ptq_a8 *a, float *y, int o0, int o1) {
    ptq_qgemv_a8_avx512_tiled(w, a, y, o0, o1, 0);
}

/* Activation quantization, bit for bit the scalar one (qgemv_a8.c): the same float operations
 * (max |x|, d = max / 127, x * (1 / d), round to nearest even, clamp), 16 lanes at a time, and the codes
 * stored straight into the kernel's order for w->bits. */
void ptq_a8_quant_rows_avx512(const ptq_qweight *w, const float *x, int rows, ptq_a8 *a) {
    const int nch = a->nchunks, B = w->bits;
    const size_t nc = (size_t)a->nsuper * PTQ_A8_SUPER;
    const __m512 lim = _mm512_set1_ps(127.0f);
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * (size_t)w->in;
        int8_t *qr = a->q + (size_t)r * a->ld;
        float *dr = a->d + (size_t)r * nc;
        int32_t *sr = a->qsum + (size_t)r * nc;
        memset(qr, 0, a->ld); /* padding chunks sit between real ones in the 4/2/3-bit orders */
        for (size_t c = (size_t)nch; c < nc; c++) dr[c] = 0.0f, sr[c] = 0;
        for (int c = 0; c < nch; c++) {
            const int j0 = c * PTQ_QCHUNK, n = w->in - j0 < PTQ_QCHUNK ? w->in - j0 : PTQ_QCHUNK;
            __m512 v0, v1;
            if (w->perm) {
                float t[PTQ_QCHUNK] = {0};
                for (int k = 0; k < n; k++) t[k] = xr[w->perm[j0 + k]];
                v0 = _mm512_loadu_ps(t);
                v1 = _mm512_loadu_ps(t + 16);
            } else {
                const uint32_t m = n == 32 ? 0xffffffffu : (1u << n) - 1u;
                v0 = _mm512_maskz_loadu_ps((__mmask16)(m & 0xffffu), xr + j0);
                v1 = _mm512_maskz_loadu_ps((__mmask16)(m >> 16), xr + j0 + 16);
            }
            v0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v0, v0, _CMP_ORD_Q), v0); /* NaN -> 0 */
            v1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v1, v1, _CMP_ORD_Q), v1);
            const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
            const float d = amax / 127.0f;
            const __m512 id = _mm512_set1_ps(d > 0.0f ? 1.0f / d : 0.0f);
            __m512 p0 = _mm512_mul_ps(v0, id), p1 = _mm512_mul_ps(v1, id);
            p0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(p0, p0, _CMP_ORD_Q), p0); /* Inf * 0 -> 0 */
            p1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(p1, p1, _CMP_ORD_Q), p1);
            __m512i q0 = _mm512_cvtps_epi32(
                _mm512_min_ps(_mm512_max_ps(_mm512_roundscale_ps(p0, RND), _mm512_sub_ps(_mm512_setzero_ps(), lim)), lim));
            __m512i q1 = _mm512_cvtps_epi32(
                _mm512_min_ps(_mm512_max_ps(_mm512_roundscale_ps(p1, RND), _mm512_sub_ps(_mm512_setzero_ps(), lim)), lim));
            dr[c] = d;
            sr[c] = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
            const __m128i b0 = _mm512_cvtepi32_epi8(q0), b1 = _mm512_cvtepi32_epi8(q1); /* columns 0-15, 16-31 */
            if (B >= 4 && B <= 7) {
                int8_t *p = qr + (size_t)(c / 4) * 128 + (size_t)(c % 4) * 16;
                _mm_storeu_si128((__m128i *)p, b0);
                _mm_storeu_si128((__m128i *)(p + 64), b1);
            } else if (B == 2 || B == 3) {
                int8_t *p = qr + (size_t)(c / 8) * 256 + (size_t)(c % 8) * 8;
                _mm_storel_epi64((__m128i *)p, b0);
                _mm_storel_epi64((__m128i *)(p + 64), _mm_unpackhi_epi64(b0, b0));
                _mm_storel_epi64((__m128i *)(p + 128), b1);
                _mm_storel_epi64((__m128i *)(p + 192), _mm_unpackhi_epi64(b1, b1));
            } else {
                _mm_storeu_si128((__m128i *)(qr + (size_t)c * 32), b0);
                _mm_storeu_si128((__m128i *)(qr + (size_t)c * 32 + 16), b1);
            }
        }
    }
}
