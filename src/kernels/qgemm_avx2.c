/* AVX2 kernels (with FMA and F16C). Compiled for that target whatever the library's flags; the
 * dispatcher calls them only when CPUID reports AVX2, FMA and F16C.
 *
 * A 32-column chunk of codes becomes four __m256 of 8 floats (columns 0-7, 8-15, 16-23, 24-31):
 *   8 bits: four zero-extending 8-byte loads;  4 bits: bytes 0-7 and 8-15, low then high nibbles;
 *   2 bits: the 8 bytes shifted by 0, 2, 4, 6, then an 8-entry table lookup (vpermps: i -> i & 3);
 *   3 bits: as 2 bits, plus 4 where bit j of the third-bit plane is set;
 *   5-7 bits: the nibbles as 4 bits in integers, bits 4-5 (6, 7 bits) as 2 bits shifted left by 4,
 *           the top bit's plane (5, 7 bits) or-ed in through a lane compare, then convert.
 * Same structure as the AVX-512 kernels (see there); with 16 registers, rows of x go 2 at a time.
 */
#include <stdint.h>
#include <string.h>

#include "kernels/qgemm_impl.h"

#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

/* Codes of the chunk at p as floats, columns 8k..8k+7 in q[k]. For 2 and 3 bits the low two bits
 * go through an 8-entry table (vpermps reads only the low 3 bits of each index): i -> i & 3. */
/* Where bit 8k + i of the plane t is set, lane i of v[k] gets `top` or-ed in. */
INLINE void or_plane(uint32_t t, int top, __m256i v[4]) {
    const __m256i hv = _mm256_set1_epi32((int)t);
    const __m256i bit0 = _mm256_set_epi32(128, 64, 32, 16, 8, 4, 2, 1);
    const __m256i tv = _mm256_set1_epi32(top);
    for (int k = 0; k < 4; k++) {
        const __m256i bk = _mm256_slli_epi32(bit0, 8 * k);
        const __m256i set = _mm256_cmpeq_epi32(_mm256_and_si256(hv, bk), bk);
        v[k] = _mm256_or_si256(v[k], _mm256_and_si256(set, tv));
    }
}

INLINE void unpack_f(const int B, const uint8_t *p, __m256 q[4]) {
    if (B >= 5 && B <= 7) {
        const __m256i m = _mm256_set1_epi32(15);
        const __m256i a = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
        const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8)));
        __m256i v[4] = {_mm256_and_si256(a, m), _mm256_and_si256(b, m), _mm256_srli_epi32(a, 4),
                        _mm256_srli_epi32(b, 4)};
        if (B >= 6) { /* bits 4-5 of columns 8k + i: bits 2k..2k+1 of byte i at p + 16 */
            const __m256i h = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 16)));
            const __m256i m2 = _mm256_set1_epi32(3);
            for (int k = 0; k < 4; k++)
                v[k] = _mm256_or_si256(v[k], _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(h, 2 * k), m2), 4));
        }
        if (B != 6) {
            uint32_t t;
            memcpy(&t, p + (B == 5 ? 16 : 24), 4);
            or_plane(t, 1 << (B - 1), v);
        }
        for (int k = 0; k < 4; k++) q[k] = _mm256_cvtepi32_ps(v[k]);
    } else if (B == 8) {
        for (int k = 0; k < 4; k++)
            q[k] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8 * k))));
    } else if (B == 4) {
        const __m256i m = _mm256_set1_epi32(15);
        const __m256i a = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
        const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8)));
        q[0] = _mm256_cvtepi32_ps(_mm256_and_si256(a, m));
        q[1] = _mm256_cvtepi32_ps(_mm256_and_si256(b, m));
        q[2] = _mm256_cvtepi32_ps(_mm256_srli_epi32(a, 4));
        q[3] = _mm256_cvtepi32_ps(_mm256_srli_epi32(b, 4));
    } else {
        const __m256 tbl = _mm256_set_ps(3, 2, 1, 0, 3, 2, 1, 0);
        const __m256i a = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
        q[0] = _mm256_permutevar8x32_ps(tbl, a);
        q[1] = _mm256_permutevar8x32_ps(tbl, _mm256_srli_epi32(a, 2));
        q[2] = _mm256_permutevar8x32_ps(tbl, _mm256_srli_epi32(a, 4));
        q[3] = _mm256_permutevar8x32_ps(tbl, _mm256_srli_epi32(a, 6));
        if (B == 3) {
            /* lane i of q[k] gets 4 where bit 8k+i of the third-bit plane is set */
            uint32_t h;
            memcpy(&h, p + 8, 4);
            const __m256i hv = _mm256_set1_epi32((int)h);
            const __m256i bit0 = _mm256_set_epi32(128, 64, 32, 16, 8, 4, 2, 1);
            const __m256 four = _mm256_set1_ps(4.0f);
            for (int k = 0; k < 4; k++) {
                const __m256i bk = _mm256_slli_epi32(bit0, 8 * k);
                const __m256i set = _mm256_cmpeq_epi32(_mm256_and_si256(hv, bk), bk);
                q[k] = _mm256_add_ps(q[k], _mm256_and_ps(_mm256_castsi256_ps(set), four));
            }
        }
    }
}

/* A hint only: never dereferenced, so it may point past the weights (no pointer arithmetic on them). */
INLINE void prefetch(const uint8_t *p, size_t ahead) {
    _mm_prefetch((const char *)((uintptr_t)p + ahead), _MM_HINT_T0);
}

INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Weight rows o .. o+O-1 against input rows r0 .. r0+R-1; two FMA chains per pair. */
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
    __m256 acc[2][2][2], zt[2][2];
    float sf[2][64];
    for (int u = 0; u < O; u++) {
        cp[u] = w->codes + (size_t)(o + u) * w->row_bytes;
        sp[u] = w->scales + (size_t)(o + u) * (size_t)ng;
        zp[u] = ptq_qweight_zeros_of(w, o + u);
        for (int r = 0; r < R; r++) {
            acc[u][r][0] = acc[u][r][1] = _mm256_setzero_ps();
            zt[u][r] = _mm256_setzero_ps();
        }
    }
    for (int gb = 0; gb < ng; gb += 64) {
        const int nb = ng - gb < 64 ? ng - gb : 64;
        int k = 0;
        for (; k + 8 <= nb; k += 8) {
            for (int u = 0; u < O; u++) {
                __m256 s = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sp[u] + gb + k)));
                _mm256_storeu_ps(&sf[u][k], s);
                __m256 z = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(zp[u] + gb + k))));
                __m256 sz = _mm256_mul_ps(s, z);
                for (int r = 0; r < R; r++)
                    zt[u][r] = _mm256_fmadd_ps(sz, _mm256_loadu_ps(xs + (size_t)r * (size_t)ng + gb + k), zt[u][r]);
            }
        }
        if (k < nb) { /* tail of fewer than 8 groups: through zero-filled local copies */
            const int n = nb - k;
            for (int u = 0; u < O; u++) {
                uint16_t sh[8] = {0};
                int32_t zi[8] = {0};
                for (int i = 0; i < n; i++) {
                    sh[i] = sp[u][gb + k + i];
                    zi[i] = zp[u][gb + k + i];
                }
                __m256 s = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)sh));
                _mm256_storeu_ps(&sf[u][k], s); /* k + 8 <= 64: sf has room */
                __m256 sz = _mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)zi)));
                for (int r = 0; r < R; r++) {
                    float xv[8] = {0};
                    for (int i = 0; i < n; i++) xv[i] = xs[(size_t)r * (size_t)ng + (size_t)(gb + k + i)];
                    zt[u][r] = _mm256_fmadd_ps(sz, _mm256_loadu_ps(xv), zt[u][r]);
                }
            }
        }
        if (cpg == 1) {
            /* one chunk per group (g32): dot = sum_k q[k].x[k] in two halves, acc += s * dot */
            for (int g = gb; g < gb + nb; g++) {
                const float *xc = xp + (size_t)g * PTQ_QCHUNK;
                for (int u = 0; u < O; u++) {
                    __m256 q[4];
                    prefetch(cp[u] + (size_t)g * cb, pf);
                    unpack_f(B, cp[u] + (size_t)g * cb, q);
                    const __m256 s = _mm256_set1_ps(sf[u][g - gb]);
                    for (int r = 0; r < R; r++) {
                        const float *x = xc + (size_t)r * a->ldx;
                        __m256 d0 =
                            _mm256_fmadd_ps(q[2], _mm256_loadu_ps(x + 16), _mm256_mul_ps(q[0], _mm256_loadu_ps(x)));
                        __m256 d1 =
                            _mm256_fmadd_ps(q[3], _mm256_loadu_ps(x + 24), _mm256_mul_ps(q[1], _mm256_loadu_ps(x + 8)));
                        acc[u][r][0] = _mm256_fmadd_ps(s, d0, acc[u][r][0]);
                        acc[u][r][1] = _mm256_fmadd_ps(s, d1, acc[u][r][1]);
                    }
                }
            }
            continue;
        }
        for (int g = gb; g < gb + nb; g++) {
            const int c0 = g * cpg;
            const int c1 = c0 + cpg < nch ? c0 + cpg : nch;
            __m256 dot[2][2][2];
            for (int u = 0; u < O; u++)
                for (int r = 0; r < R; r++) dot[u][r][0] = dot[u][r][1] = _mm256_setzero_ps();
            for (int c = c0; c < c1; c++) {
                const float *xc = xp + (size_t)c * PTQ_QCHUNK;
                for (int u = 0; u < O; u++) {
                    __m256 q[4];
                    prefetch(cp[u] + (size_t)c * cb, pf);
                    unpack_f(B, cp[u] + (size_t)c * cb, q);
                    for (int kk = 0; kk < 4; kk++)
                        for (int r = 0; r < R; r++)
                            dot[u][r][kk & 1] = _mm256_fmadd_ps(
                                q[kk], _mm256_loadu_ps(xc + (size_t)r * a->ldx + 8 * kk), dot[u][r][kk & 1]);
                }
            }
            for (int u = 0; u < O; u++) {
                const __m256 s = _mm256_set1_ps(sf[u][g - gb]);
                for (int r = 0; r < R; r++) {
                    acc[u][r][0] = _mm256_fmadd_ps(s, dot[u][r][0], acc[u][r][0]);
                    acc[u][r][1] = _mm256_fmadd_ps(s, dot[u][r][1], acc[u][r][1]);
                }
            }
        }
    }
    for (int u = 0; u < O; u++)
        for (int r = 0; r < R; r++)
            a->y[(size_t)(r0 + r) * (size_t)w->out + (size_t)(o + u)] =
                hsum(_mm256_add_ps(acc[u][r][0], acc[u][r][1])) - hsum(zt[u][r]);
}

INLINE void gemv_bits(const int B, const ptq_qgemv_args *a, int o0, int o1) {
    const int rows = a->rows;
    for (int o = o0; o < o1; o += 2) {
        const int two = o + 1 < o1;
        for (int r0 = 0; r0 < rows;) {
            const int R = rows - r0 >= 2 ? 2 : 1;
            if (R == 1) {
                if (two)
                    gemv_block(B, 1, 2, a, o, r0);
                else
                    gemv_block(B, 1, 1, a, o, r0);
            } else {
                gemv_block(B, 2, 1, a, o, r0);
                if (two) gemv_block(B, 2, 1, a, o + 1, r0);
            }
            r0 += R;
        }
    }
}

void ptq_qgemv_avx2(const ptq_qgemv_args *a, int o0, int o1) {
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
            const __m256 s = _mm256_set1_ps(_cvtsh_ss(sr[g]));
            const __m256 z = _mm256_set1_ps((float)zr[g]);
            for (int c = c0; c < c1; c++) {
                __m256 q[4];
                unpack_f(B, codes + (size_t)c * cb, q);
                /* s * (q - z) as the scalar reference: the difference of small integers is exact */
                for (int kk = 0; kk < 4; kk++)
                    _mm256_storeu_ps(d + (size_t)c * PTQ_QCHUNK + 8 * kk, _mm256_mul_ps(s, _mm256_sub_ps(q[kk], z)));
            }
        }
    }
}

void ptq_qdequant_avx2(const ptq_qweight *w, int o0, int o1, float *dst, size_t ld) {
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
