/* AVX2 GEMV kernels for ggml k-quant blocks with int8 activations (ggml_gemm.h, ptq_ggml_gemm_a8 on CPUs without
 * AVX-512 VNNI: the same sums as ggml_gemv_a8_avx512.c at half the width, without VNNI).
 *
 * Each block is read 32 columns at a time: the codes of columns 32k .. 32k + 31 assembled in a register as unsigned
 * bytes (ptq_gs_codes32: Q4_K 0..15, Q5_K 0..31, Q6_K 0..63, Q3_K 0..7 with its third bit, Q2_K 0..3), one
 * vpmaddubsw with the activation codes (pairs of products, at most 2 * 63 * 127: no saturation) and one vpmaddwd with ones
 * (on CPUs with AVX-VNNI, Intel Alder Lake and later client cores, one VEX vpdpbusd: the same int32 sums) leave int32
 * lanes 0-3 summing columns 0-15 and lanes 4-7 columns 16-31, that is two sub-blocks of 16 (Q2_K, Q3_K, Q6_K) or one
 * of 32 (Q4_K, Q5_K), exact. They are converted and scaled per lane by the sub-block's d*sc times the activations'
 * d_x, into float accumulators. Offsets as the AVX-512 kernels: dmin*m times the float sums of x (Q2_K per 16
 * columns, Q4_K / Q5_K per 32), or the code offset (Q3_K 4, Q6_K 32) times the integer sums of the activation codes
 * per 16 columns. */
#include <immintrin.h>

#include "io/gguf.h"
#include "kernels/ggml_gemm.h"
#include "kernels/ggml_simd.h"
#include "quant/ggml_quants.h"

#define INLINE static inline __attribute__((always_inline))

/* the exact int32 sums of 4 codes x 4 activation codes per lane: vpmaddubsw + vpmaddwd, or one AVX-VNNI vpdpbusd */
INLINE __m256 dot32(const int VNNI, __m256i codes, const int8_t *xq) {
    const __m256i a = _mm256_loadu_si256((const __m256i *)xq);
    if (VNNI) return _mm256_cvtepi32_ps(ptq_gs_dpbusd_vex(_mm256_setzero_si256(), codes, a));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(codes, a), _mm256_set1_epi16(1)));
}

/* lanes 0-3: f[2k % 8], lanes 4-7: f[2k % 8 + 1] of the 16 factors f0 (0-7), f1 (8-15) */
static inline __m256 pair_factor(__m256 f0, __m256 f1, int k) {
    const int i = 2 * (k % 4);
    const __m256i idx = _mm256_setr_epi32(i, i, i, i, i + 1, i + 1, i + 1, i + 1);
    return _mm256_permutevar8x32_ps(k < 4 ? f0 : f1, idx);
}

/* 8 unsigned bytes (a little-endian uint64) as floats */
static inline __m256 bytes8(uint64_t b) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)b))); }

INLINE float dot_k45(const int VNNI, const uint8_t *row, int nb, const int8_t *xq, const float *dx, const float *xs, int five) {
    const size_t bytes = five ? 176 : 144;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, macc = acc0;
    for (int b = 0; b < nb; b++, row += bytes, xq += 256, dx += 8, xs += 8) {
        ptq_gs_prefetch(row, bytes);
        uint64_t sc, mn;
        ptq_ggml_k4_scales(row + 4, &sc, &mn);
        const __m256 f = _mm256_mul_ps(ptq_gs_scaled8(sc, ptq_gs_h2f(row)), _mm256_loadu_ps(dx)); /* per 32 columns */
        macc = _mm256_fmadd_ps(ptq_gs_scaled8(mn, ptq_gs_h2f(row + 2)), _mm256_loadu_ps(xs), macc);
        const uint32_t T = five ? PTQ_GGML_Q5_K : PTQ_GGML_Q4_K;
#pragma GCC unroll 4
        for (int k = 0; k < 8; k += 2) { /* columns 32k ..: sub-block k */
            const __m256 f0 = _mm256_permutevar8x32_ps(f, _mm256_set1_epi32(k));
            const __m256 f1 = _mm256_permutevar8x32_ps(f, _mm256_set1_epi32(k + 1));
            acc0 = _mm256_fmadd_ps(dot32(VNNI, ptq_gs_codes32(T, row, k), xq + 32 * k), f0, acc0);
            acc1 = _mm256_fmadd_ps(dot32(VNNI, ptq_gs_codes32(T, row, k + 1), xq + 32 * k + 32), f1, acc1);
        }
    }
    return ptq_gs_hsum256(_mm256_add_ps(acc0, acc1)) - ptq_gs_hsum256(macc);
}

/* d_x per 32 columns (8) spread to the 16 sub-blocks of 16: *lo for 0-7, *hi for 8-15 */
static inline void dx16(const float *dx, __m256 *lo, __m256 *hi) {
    const __m256 d = _mm256_loadu_ps(dx);
    *lo = _mm256_permutevar8x32_ps(d, _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
    *hi = _mm256_permutevar8x32_ps(d, _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7));
}

INLINE float dot_q6k(const int VNNI, const uint8_t *row, int nb, const int8_t *xq, const float *dx, const int32_t *qs16) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, off = acc0;
    for (int b = 0; b < nb; b++, row += 210, xq += 256, dx += 8, qs16 += 16) {
        ptq_gs_prefetch(row, 210);
        const __m256 d = _mm256_set1_ps(ptq_gs_h2f(row + 208));
        __m256 x0, x1;
        dx16(dx, &x0, &x1);
        const __m128i sc = _mm_loadu_si128((const __m128i *)(row + 192));
        const __m256 f0 = _mm256_mul_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc))), x0);
        const __m256 f1 = _mm256_mul_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8)))), x1);
        off = _mm256_fmadd_ps(f0, _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)qs16)), off);
        off = _mm256_fmadd_ps(f1, _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(qs16 + 8))), off);
#pragma GCC unroll 4
        for (int k = 0; k < 8; k += 2) {
            acc0 = _mm256_fmadd_ps(dot32(VNNI, ptq_gs_codes32(PTQ_GGML_Q6_K, row, k), xq + 32 * k), pair_factor(f0, f1, k), acc0);
            acc1 = _mm256_fmadd_ps(dot32(VNNI, ptq_gs_codes32(PTQ_GGML_Q6_K, row, k + 1), xq + 32 * k + 32), pair_factor(f0, f1, k + 1),
                                   acc1);
        }
    }
    return ptq_gs_hsum256(_mm256_add_ps(acc0, acc1)) - 32 * ptq_gs_hsum256(off);
}

/* Q2_K (three = 0) / Q3_K (three = 1) */
INLINE float dot_k23(const int VNNI, const uint8_t *row, int nb, const int8_t *xq, const float *dx, const float *x16,
                     const int32_t *qs16, int three) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, off = acc0;
    for (int b = 0; b < nb; b++, row += three ? 110 : 84, xq += 256, dx += 8, x16 += 16, qs16 += 16) {
        ptq_gs_prefetch(row, three ? 110 : 84);
        __m256 x0, x1, f0, f1;
        dx16(dx, &x0, &x1);
        if (three) {
            uint64_t sc[2];
            ptq_ggml_k3_scales(row + 96, sc);
            const __m256 d = _mm256_set1_ps(ptq_gs_h2f(row + 108)), k32 = _mm256_set1_ps(32);
            f0 = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(bytes8(sc[0]), k32), d), x0);
            f1 = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(bytes8(sc[1]), k32), d), x1);
            off = _mm256_fmadd_ps(f0, _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)qs16)), off);
            off = _mm256_fmadd_ps(f1, _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(qs16 + 8))), off);
        } else {
            const __m256 d = _mm256_set1_ps(ptq_gs_h2f(row + 80)), dm = _mm256_set1_ps(ptq_gs_h2f(row + 82));
            const __m256i s0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)row));
            const __m256i s1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(row + 8)));
            const __m256i k15 = _mm256_set1_epi32(15);
            f0 = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(s0, k15)), d), x0);
            f1 = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(s1, k15)), d), x1);
            off = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(s0, 4)), dm), _mm256_loadu_ps(x16), off);
            off = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(s1, 4)), dm), _mm256_loadu_ps(x16 + 8), off);
        }
        const uint32_t T = three ? PTQ_GGML_Q3_K : PTQ_GGML_Q2_K;
#pragma GCC unroll 4
        for (int k = 0; k < 8; k += 2) {
            acc0 = _mm256_fmadd_ps(dot32(VNNI, ptq_gs_codes32(T, row, k), xq + 32 * k), pair_factor(f0, f1, k), acc0);
            acc1 = _mm256_fmadd_ps(dot32(VNNI, ptq_gs_codes32(T, row, k + 1), xq + 32 * k + 32), pair_factor(f0, f1, k + 1), acc1);
        }
    }
    return ptq_gs_hsum256(_mm256_add_ps(acc0, acc1)) - (three ? 4 : 1) * ptq_gs_hsum256(off);
}

INLINE void gemv_a8(const int VNNI, const ptq_ggml_gemv_args *a, int o0, int o1) {
    const int nb = a->in / PTQ_GGML_QK_K, ns = a->in / 32;
    for (int o = o0; o < o1; o++) {
        const uint8_t *row = a->w + (size_t)o * a->row_bytes;
        for (int r = 0; r < a->rows; r++) {
            const int8_t *xq = a->xq + (size_t)r * (size_t)a->in;
            const float *dx = a->dx + (size_t)r * ns, *xs = a->xs32 + (size_t)r * ns;
            const float *x16 = a->xs16 + (size_t)r * (size_t)(2 * ns);
            const int32_t *qs16 = a->qsum16 + (size_t)r * (size_t)(2 * ns);
            float s = 0;
            switch (a->type) {
            case PTQ_GGML_Q4_K: s = dot_k45(VNNI, row, nb, xq, dx, xs, 0); break;
            case PTQ_GGML_Q5_K: s = dot_k45(VNNI, row, nb, xq, dx, xs, 1); break;
            case PTQ_GGML_Q6_K: s = dot_q6k(VNNI, row, nb, xq, dx, qs16); break;
            case PTQ_GGML_Q2_K: s = dot_k23(VNNI, row, nb, xq, dx, x16, qs16, 0); break;
            case PTQ_GGML_Q3_K: s = dot_k23(VNNI, row, nb, xq, dx, x16, qs16, 1); break;
            default: break; /* the dispatcher sends no other type */
            }
            a->y[(size_t)r * (size_t)a->out + (size_t)o] = s;
        }
    }
}

void ptq_ggml_gemv_a8_avx2(const ptq_ggml_gemv_args *a, int o0, int o1) { gemv_a8(0, a, o0, o1); }

__attribute__((target("avx2,fma,f16c,avxvnni"))) void ptq_ggml_gemv_a8_avxvnni(const ptq_ggml_gemv_args *a, int o0,
                                                                               int o1) {
    gemv_a8(1, a, o0, o1);
}
