/* AVX-512 kernels (F + BW + VL, with FMA and F16C). Compiled for that target whatever the library's
 * flags; the dispatcher calls them only when CPUID reports every one of those features.
 *
 * A 32-column chunk of codes becomes two __m512 of 16 floats (columns 0-15 and 16-31). Integer
 * codes become floats through a 16-entry table lookup (vpermps, which reads only the low 4 bits of
 * each index and so also masks) instead of and + convert:
 *   8 bits: two zero-extending byte loads and converts;
 *   4 bits: one 16-byte load, low nibbles / high nibbles; the GEMV kernel instead broadcasts the 16
 *           bytes and shifts per lane, reading x in a 4x4-transposed order (ptq_qgemv_x_transposed);
 *   2 bits: the 8 bytes twice, shifted by 0/2 (columns 0-15) and 4/6 (16-31), table i -> i & 3;
 *   3 bits: as 2 bits, then the 32-bit plane of third bits adds 4 through a lane mask;
 *   5-7 bits: the low nibbles as 4 bits, in integers; bits 4-5 (6, 7 bits) as 2 bits shifted left
 *           by 4; the plane of the top bit (5, 7 bits) adds 16 or 64 through a lane mask; then convert.
 * GEMV: per weight row and group, dot products against xp accumulate in two chains per (weight row,
 * input row) and are scaled by the group's scale into two accumulators (g32: one chunk per group,
 * dot = q0.x0 + q1.x1 then acc += s * dot); the zero-point term is one vector pass over the groups
 * (scales * zeros * xsum). Rows of x go up to 4 at a time so each chunk is unpacked once for all of
 * them; a single x row pairs two weight rows to keep independent FMA chains in flight. The next
 * weight rows are prefetched at the current column.
 */
#include <stdint.h>
#include <string.h>

#include "kernels/qgemm_impl.h"

#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

/* Codes of the chunk at p as floats: columns 0-15 in *q0, 16-31 in *q1. For 2, 3 and 4 bits the
 * int-to-float step is a 16-entry table lookup (vpermps reads only the low 4 bits of each index,
 * which also does the masking): the table holds i for 4 bits and i & 3 for 2 and 3 bits. */
INLINE void unpack_f(const int B, const uint8_t *p, __m512 *q0, __m512 *q1) {
    if (B >= 5 && B <= 7) {
        const __m512i m4 = _mm512_set1_epi32(15);
        const __m512i a = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
        __m512i i0 = _mm512_and_si512(a, m4), i1 = _mm512_srli_epi32(a, 4);
        if (B >= 6) { /* bits 4-5: byte m % 8 of the 2-bit layout, shifted by 2 (m / 8) */
            const __m128i b = _mm_loadl_epi64((const __m128i *)(p + 16));
            const __m512i h = _mm512_cvtepu8_epi32(_mm_unpacklo_epi64(b, b));
            const __m512i m2 = _mm512_set1_epi32(3);
            const __m512i sh0 = _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0);
            const __m512i sh1 = _mm512_set_epi32(6, 6, 6, 6, 6, 6, 6, 6, 4, 4, 4, 4, 4, 4, 4, 4);
            i0 = _mm512_or_si512(i0, _mm512_slli_epi32(_mm512_and_si512(_mm512_srlv_epi32(h, sh0), m2), 4));
            i1 = _mm512_or_si512(i1, _mm512_slli_epi32(_mm512_and_si512(_mm512_srlv_epi32(h, sh1), m2), 4));
        }
        if (B != 6) { /* the top bit's plane */
            uint32_t t;
            memcpy(&t, p + (B == 5 ? 16 : 24), 4);
            const __m512i top = _mm512_set1_epi32(1 << (B - 1));
            i0 = _mm512_mask_or_epi32(i0, (__mmask16)(t & 0xffffu), i0, top);
            i1 = _mm512_mask_or_epi32(i1, (__mmask16)(t >> 16), i1, top);
        }
        *q0 = _mm512_cvtepi32_ps(i0);
        *q1 = _mm512_cvtepi32_ps(i1);
    } else if (B == 8) {
        *q0 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)));
        *q1 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 16))));
    } else if (B == 4) {
        const __m512 tbl = _mm512_set_ps(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        const __m512i a = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
        *q0 = _mm512_permutexvar_ps(a, tbl);
        *q1 = _mm512_permutexvar_ps(_mm512_srli_epi32(a, 4), tbl);
    } else {
        const __m512 tbl = _mm512_set_ps(3, 2, 1, 0, 3, 2, 1, 0, 3, 2, 1, 0, 3, 2, 1, 0);
        const __m128i b = _mm_loadl_epi64((const __m128i *)p);
        const __m512i a = _mm512_cvtepu8_epi32(_mm_unpacklo_epi64(b, b));
        const __m512i sh0 = _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0);
        const __m512i sh1 = _mm512_set_epi32(6, 6, 6, 6, 6, 6, 6, 6, 4, 4, 4, 4, 4, 4, 4, 4);
        *q0 = _mm512_permutexvar_ps(_mm512_srlv_epi32(a, sh0), tbl);
        *q1 = _mm512_permutexvar_ps(_mm512_srlv_epi32(a, sh1), tbl);
        if (B == 3) {
            uint32_t h;
            memcpy(&h, p + 8, 4);
            const __m512 four = _mm512_set1_ps(4.0f);
            *q0 = _mm512_mask_add_ps(*q0, (__mmask16)(h & 0xffffu), *q0, four);
            *q1 = _mm512_mask_add_ps(*q1, (__mmask16)(h >> 16), *q1, four);
        }
    }
}

/* 4 bits in the GEMV kernel's order: lane i of q0 / q1 holds column 4 * (i % 4) + i / 4 (+ 16), the
 * order of xp from ptq_qgemv_x_transposed. The 16 bytes are broadcast to the four 128-bit lanes
 * (a plain load); lane i shifts its dword (bytes 4(i%4)..) right by 8 * (i / 4) (+ 4 for the high
 * nibbles), and the table lookup keeps the low 4 bits. No byte-to-dword shuffle on port 5. */
INLINE void unpack4_t(const uint8_t *p, __m512 *q0, __m512 *q1) {
    const __m512 tbl = _mm512_set_ps(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i sh0 = _mm512_set_epi32(24, 24, 24, 24, 16, 16, 16, 16, 8, 8, 8, 8, 0, 0, 0, 0);
    const __m512i sh1 = _mm512_set_epi32(28, 28, 28, 28, 20, 20, 20, 20, 12, 12, 12, 12, 4, 4, 4, 4);
    const __m512i a = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)p));
    *q0 = _mm512_permutexvar_ps(_mm512_srlv_epi32(a, sh0), tbl);
    *q1 = _mm512_permutexvar_ps(_mm512_srlv_epi32(a, sh1), tbl);
}

/* The GEMV kernel's unpacking: transposed for 4 bits (see above), natural order otherwise. */
INLINE void unpack_g(const int B, const uint8_t *p, __m512 *q0, __m512 *q1) {
    if (B == 4)
        unpack4_t(p, q0, q1);
    else
        unpack_f(B, p, q0, q1);
}

/* A hint only: never dereferenced, so it may point past the weights (no pointer arithmetic on them). */
INLINE void prefetch(const uint8_t *p, size_t ahead) {
    _mm_prefetch((const char *)((uintptr_t)p + ahead), _MM_HINT_T0);
}

INLINE float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }

/* Weight rows o .. o+O-1 against input rows r0 .. r0+R-1. */
INLINE void gemv_block(const int B, const int R, const int O, const ptq_qgemv_args *a, int o, int r0) {
    const ptq_qweight *w = a->w;
    const int ng = w->n_groups, nch = a->nchunks, cpg = a->cpg;
    const size_t cb = 4u * (size_t)B;
    const size_t pf = (size_t)O * w->row_bytes; /* prefetch the next weight rows at the same column */
    const float *xp = a->xp + (size_t)r0 * a->ldx;
    const float *xs = a->xsum + (size_t)r0 * (size_t)ng;
    const uint8_t *cp[2];
    const uint16_t *sp[2];
    const uint8_t *zp[2];
    __m512 acc[2][4][2], zt[2][4];
    float sf[2][64];
    for (int u = 0; u < O; u++) {
        cp[u] = w->codes + (size_t)(o + u) * w->row_bytes;
        sp[u] = w->scales + (size_t)(o + u) * (size_t)ng;
        zp[u] = ptq_qweight_zeros_of(w, o + u);
        for (int r = 0; r < R; r++) {
            acc[u][r][0] = acc[u][r][1] = _mm512_setzero_ps();
            zt[u][r] = _mm512_setzero_ps();
        }
    }
    for (int gb = 0; gb < ng; gb += 64) {
        const int nb = ng - gb < 64 ? ng - gb : 64;
        /* scales of this block of groups to float (once per weight row and group), zero-point term */
        for (int k = 0; k < nb; k += 16) {
            const int n = nb - k < 16 ? nb - k : 16;
            const __mmask16 m = (__mmask16)((1u << n) - 1u);
            for (int u = 0; u < O; u++) {
                __m512 s = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, sp[u] + gb + k));
                _mm512_storeu_ps(&sf[u][k], s);
                __m512 z = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, zp[u] + gb + k)));
                __m512 sz = _mm512_mul_ps(s, z);
                for (int r = 0; r < R; r++)
                    zt[u][r] =
                        _mm512_fmadd_ps(sz, _mm512_maskz_loadu_ps(m, xs + (size_t)r * (size_t)ng + gb + k), zt[u][r]);
            }
        }
        if (cpg == 1) {
            /* one chunk per group (g32): dot = q0.x0 + q1.x1, acc += s * dot */
            for (int g = gb; g < gb + nb; g++) {
                const float *xc = xp + (size_t)g * PTQ_QCHUNK;
                for (int u = 0; u < O; u++) {
                    __m512 q0, q1;
                    prefetch(cp[u] + (size_t)g * cb, pf);
                    unpack_g(B, cp[u] + (size_t)g * cb, &q0, &q1);
                    const __m512 s = _mm512_set1_ps(sf[u][g - gb]);
                    for (int r = 0; r < R; r++) {
                        const float *x = xc + (size_t)r * a->ldx;
                        __m512 d = _mm512_fmadd_ps(q1, _mm512_loadu_ps(x + 16), _mm512_mul_ps(q0, _mm512_loadu_ps(x)));
                        acc[u][r][0] = _mm512_fmadd_ps(s, d, acc[u][r][0]);
                    }
                }
            }
            continue;
        }
        for (int g = gb; g < gb + nb; g++) {
            const int c0 = g * cpg;
            const int c1 = c0 + cpg < nch ? c0 + cpg : nch;
            __m512 dot[2][4][2];
            for (int u = 0; u < O; u++)
                for (int r = 0; r < R; r++) dot[u][r][0] = dot[u][r][1] = _mm512_setzero_ps();
            for (int c = c0; c < c1; c++) {
                const float *xc = xp + (size_t)c * PTQ_QCHUNK;
                for (int u = 0; u < O; u++) {
                    __m512 q0, q1;
                    prefetch(cp[u] + (size_t)c * cb, pf);
                    unpack_g(B, cp[u] + (size_t)c * cb, &q0, &q1);
                    for (int r = 0; r < R; r++) {
                        const float *x = xc + (size_t)r * a->ldx;
                        dot[u][r][0] = _mm512_fmadd_ps(q0, _mm512_loadu_ps(x), dot[u][r][0]);
                        dot[u][r][1] = _mm512_fmadd_ps(q1, _mm512_loadu_ps(x + 16), dot[u][r][1]);
                    }
                }
            }
            for (int u = 0; u < O; u++) {
                const __m512 s = _mm512_set1_ps(sf[u][g - gb]);
                for (int r = 0; r < R; r++) {
                    acc[u][r][0] = _mm512_fmadd_ps(s, dot[u][r][0], acc[u][r][0]);
                    acc[u][r][1] = _mm512_fmadd_ps(s, dot[u][r][1], acc[u][r][1]);
                }
            }
        }
    }
    for (int u = 0; u < O; u++)
        for (int r = 0; r < R; r++)
            a->y[(size_t)(r0 + r) * (size_t)w->out + (size_t)(o + u)] =
                hsum(_mm512_add_ps(acc[u][r][0], acc[u][r][1])) - hsum(zt[u][r]);
}

INLINE void gemv_bits(const int B, const ptq_qgemv_args *a, int o0, int o1) {
    const int rows = a->rows;
    for (int o = o0; o < o1; o += 2) {
        const int two = o + 1 < o1;
        for (int r0 = 0; r0 < rows;) {
            /* split the rows into blocks of at most 4, as even as possible (5 = 3+2, 7 = 4+3) */
            int left = rows - r0;
            int R = left <= 4 ? left : (left <= 8 ? (left + 1) / 2 : 4);
            switch (R) {
            case 1:
                if (two)
                    gemv_block(B, 1, 2, a, o, r0);
                else
                    gemv_block(B, 1, 1, a, o, r0);
                break;
            case 2:
                gemv_block(B, 2, 1, a, o, r0);
                if (two) gemv_block(B, 2, 1, a, o + 1, r0);
                break;
            case 3:
                gemv_block(B, 3, 1, a, o, r0);
                if (two) gemv_block(B, 3, 1, a, o + 1, r0);
                break;
            default:
                gemv_block(B, 4, 1, a, o, r0);
                if (two) gemv_block(B, 4, 1, a, o + 1, r0);
                break;
            }
            r0 += R;
        }
    }
}

void ptq_qgemv_avx512(const ptq_qgemv_args *a, int o0, int o1) {
    switch (a->w->bits) {
    case 2: gemv_bits(2, a, o0, o1); break;
    case 3: gemv_bits(3, a, o0, o1); break;
    case 4: gemv_bits(4, a, o0, o1); break;
    case 5: gemv_bits(5, a, o0, o1); break;
    case 6: gemv_bits(6, a, o0, o1); break;
    case 7: gemv_bits(7, a, o0, o1); break;
    case 8: gemv_bits(8, a, o0, o1); break;
    default: break;
    }
}

INLINE void dequant_bits(const int B, const ptq_qweight *w, int o0, int o1, float *dst, size_t ld) {
    const int nch = (w->in + PTQ_QCHUNK - 1) / PTQ_QCHUNK;
    const int cpg = w->group % PTQ_QCHUNK == 0 ? w->group / PTQ_QCHUNK : nch;
    const size_t cb = 4u * (size_t)B;
    for (int o = o0; o < o1; o++) {
        const uint8_t *codes = w->codes + (size_t)o * w->row_bytes;
        const uint16_t *sr = w->scales + (size_t)o * (size_t)w->n_groups;
        const uint8_t *zr = ptq_qweight_zeros_of(w, o);
        float *d = dst + (size_t)(o - o0) * ld;
        for (int c0 = 0, g = 0; c0 < nch; c0 += cpg, g++) {
            const int c1 = c0 + cpg < nch ? c0 + cpg : nch;
            const __m512 s = _mm512_set1_ps(_cvtsh_ss(sr[g]));
            const __m512 z = _mm512_set1_ps((float)zr[g]);
            for (int c = c0; c < c1; c++) {
                __m512 q0, q1;
                unpack_f(B, codes + (size_t)c * cb, &q0, &q1);
                /* s * (q - z) as the scalar reference: the difference of small integers is exact */
                _mm512_storeu_ps(d + (size_t)c * PTQ_QCHUNK, _mm512_mul_ps(s, _mm512_sub_ps(q0, z)));
                _mm512_storeu_ps(d + (size_t)c * PTQ_QCHUNK + 16, _mm512_mul_ps(s, _mm512_sub_ps(q1, z)));
            }
        }
    }
}

void ptq_qdequant_avx512(const ptq_qweight *w, int o0, int o1, float *dst, size_t ld) {
    switch (w->bits) {
    case 2: dequant_bits(2, w, o0, o1, dst, ld); break;
    case 3: dequant_bits(3, w, o0, o1, dst, ld); break;
    case 4: dequant_bits(4, w, o0, o1, dst, ld); break;
    case 5: dequant_bits(5, w, o0, o1, dst, ld); break;
    case 6: dequant_bits(6, w, o0, o1, dst, ld); break;
    case 7: dequant_bits(7, w, o0, o1, dst, ld); break;
    case 8: dequant_bits(8, w, o0, o1, dst, ld); break;
    default: break;
    }
}
