/* AVX-512 VNNI GEMV kernels for ggml k-quant blocks with int8 activations (ggml_gemm.h, ptq_ggml_gemm_a8).
 *
 * Q4_K / Q5_K: 64 bytes of nibbles are two 32-byte chunks; their low nibbles are sub-blocks 4k and 4k + 2 of the
 * block's 128-column half k, the high nibbles 4k + 1 and 4k + 3. One vpdpbusd multiplies the 64 low (high) codes
 * with the activation codes of those two sub-blocks (two 32-byte loads): lanes 0-7 hold sums of the first
 * sub-block, lanes 8-15 of the second, each scaled by its factor d*sc * d_x (a permutation of the block's 8
 * factors). Q5_K adds bit 4 from qh first. Q6_K: the 6-bit codes of 64 columns assembled in bytes (as
 * ggml_gemv_avx512.c), one vpdpbusd, lanes scaled per sub-block of 16 (4 lanes); the -32 offset multiplies the
 * activation sums per 16 columns, once per block. Q2_K / Q3_K: below. */
#include <immintrin.h>

#include "io/gguf.h"
#include "kernels/ggml_gemm.h"
#include "kernels/ggml_simd.h"
#include "quant/ggml_quants.h"

/* 32 activation codes at p and 32 at p + 64, as one vector */
static inline __m512i act_pair(const int8_t *p) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)p)),
                              _mm256_loadu_si256((const __m256i *)(p + 64)), 1);
}

static float dot_k45(const uint8_t *row, int nb, const int8_t *xq, const float *dx, const float *xs, int five) {
    const __m512i m4 = _mm512_set1_epi8(15), m1 = _mm512_set1_epi8(1);
    const size_t bytes = five ? 176 : 144;
    /* lanes 0-7 / 8-15 of the low (high) codes of half k: sub-blocks 4k, 4k + 2 (4k + 1, 4k + 3) */
    const __m512i idx[4] = {_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2),
                            _mm512_setr_epi32(1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3),
                            _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6),
                            _mm512_setr_epi32(5, 5, 5, 5, 5, 5, 5, 5, 7, 7, 7, 7, 7, 7, 7, 7)};
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    __m256 macc = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++, row += bytes, xq += 256, dx += 8, xs += 8) {
        ptq_gs_prefetch(row, bytes);
        uint64_t sc, mn;
        ptq_ggml_k4_scales(row + 4, &sc, &mn);
        const __m512 f = _mm512_castps256_ps512(_mm256_mul_ps(ptq_gs_scaled8(sc, ptq_gs_h2f(row)), _mm256_loadu_ps(dx)));
        macc = _mm256_fmadd_ps(ptq_gs_scaled8(mn, ptq_gs_h2f(row + 2)), _mm256_loadu_ps(xs), macc);
        const uint8_t *qs = row + (five ? 48 : 16);
        const __m512i qh = five ? _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(row + 16))) : m1;
        for (int k = 0; k < 2; k++) {
            const __m512i v = _mm512_loadu_si512(qs + 64 * k);
            __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            if (five) { /* bytes 0-31: chunk 2k (qh bits 4k, 4k + 1), bytes 32-63: chunk 2k + 1 (bits 4k + 2, + 3) */
                const __m512i sl = _mm512_setr_epi64(4 * k, 4 * k, 4 * k, 4 * k, 4 * k + 2, 4 * k + 2, 4 * k + 2, 4 * k + 2);
                const __m512i t = _mm512_srlv_epi64(qh, sl);
                lo = _mm512_or_si512(lo, _mm512_slli_epi16(_mm512_and_si512(t, m1), 4));
                hi = _mm512_or_si512(hi, _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(t, 1), m1), 4));
            }
            const __m512i dlo = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, act_pair(xq + 128 * k));
            const __m512i dhi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi, act_pair(xq + 128 * k + 32));
            acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dlo), _mm512_permutexvar_ps(idx[2 * k], f), acc0);
            acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dhi), _mm512_permutexvar_ps(idx[2 * k + 1], f), acc1);
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) - ptq_gs_hsum256(macc);
}

static float dot_q6k(const uint8_t *row, int nb, const int8_t *xq, const float *dx, const int32_t *qs16) {
    const __m512i pair = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    /* lane i of the 64 columns j..j+63 (j = 64 k): sub-block 4k + i/4 */
    const __m512i quad = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, off = acc0;
    for (int b = 0; b < nb; b++, row += 210, xq += 256, dx += 8, qs16 += 16) {
        ptq_gs_prefetch(row, 210);
        /* per sub-block s: d * sc[s] * d_x[s / 2] */
        const __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(row + 192))));
        const __m512 f = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(ptq_gs_h2f(row + 208)), sc),
                                       _mm512_permutexvar_ps(pair, _mm512_castps256_ps512(_mm256_loadu_ps(dx))));
        off = _mm512_fmadd_ps(f, _mm512_cvtepi32_ps(_mm512_loadu_si512(qs16)), off);
        for (int h = 0; h < 2; h++) {
            __m512i c01, c23;
            ptq_gs_q6k_codes(row, h, &c01, &c23);
            const __m512i d0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), c01, _mm512_loadu_si512(xq + 128 * h));
            const __m512i d1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), c23, _mm512_loadu_si512(xq + 128 * h + 64));
            const __m512i i0 = _mm512_add_epi32(quad, _mm512_set1_epi32(8 * h)), i1 = _mm512_add_epi32(i0, _mm512_set1_epi32(4));
            acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0), _mm512_permutexvar_ps(i0, f), acc0);
            acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d1), _mm512_permutexvar_ps(i1, f), acc1);
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) - 32 * _mm512_reduce_add_ps(off);
}

/* Q2_K (three = 0) / Q3_K (three = 1): the 64 qs bytes hold values 32i + l (bytes 0-31) and 128 + 32i + l (32-63)
   at bits 2i; for each i one vpdpbusd with those columns' activation codes, lanes 0-3 / 4-7 / 8-11 / 12-15 summing
   sub-blocks 2i, 2i + 1, 8 + 2i, 9 + 2i. Q3_K's third bit: bit i (bytes 0-31) or 4 + i (32-63) of hmask byte l. */
static float dot_k23(const uint8_t *row, int nb, const int8_t *xq, const float *dx, const float *x16,
                     const int32_t *qs16, int three) {
    const __m512i m3 = _mm512_set1_epi8(3), m1 = _mm512_set1_epi8(1);
    const __m512i pair = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    /* per i: the lanes' sub-blocks, and the hmask bit of bytes 0-31 / 32-63 (vectors built once, not per block) */
    __m512i idx[4], sh[4];
    for (int i = 0; i < 4; i++) {
        idx[i] = _mm512_add_epi32(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 8, 8, 8, 8, 9, 9, 9, 9), _mm512_set1_epi32(2 * i));
        sh[i] = _mm512_setr_epi64(i, i, i, i, 4 + i, 4 + i, 4 + i, 4 + i);
    }
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, off = acc0;
    for (int b = 0; b < nb; b++, row += three ? 110 : 84, xq += 256, dx += 8, x16 += 16, qs16 += 16) {
        ptq_gs_prefetch(row, three ? 110 : 84);
        __m512 d1, mn;
        ptq_gs_k23_scales(row, three, &d1, &mn);
        const __m512 f = _mm512_mul_ps(d1, _mm512_permutexvar_ps(pair, _mm512_castps256_ps512(_mm256_loadu_ps(dx))));
        if (three) off = _mm512_fmadd_ps(f, _mm512_cvtepi32_ps(_mm512_loadu_si512(qs16)), off);
        else off = _mm512_fmadd_ps(mn, _mm512_loadu_ps(x16), off);
        const __m512i v = _mm512_loadu_si512(row + (three ? 32 : 16));
        const __m512i hm = three ? _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)row)) : m1;
        for (int i = 0; i < 4; i++) {
            __m512i c = _mm512_and_si512(_mm512_srl_epi16(v, _mm_cvtsi32_si128(2 * i)), m3);
            if (three) c = _mm512_or_si512(c, _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi64(hm, sh[i]), m1), 2));
            const __m512i xa = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(xq + 32 * i))),
                                                  _mm256_loadu_si256((const __m256i *)(xq + 128 + 32 * i)), 1);
            const __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), c, xa);
            if (i & 1) acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_permutexvar_ps(idx[i], f), acc1);
            else acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_permutexvar_ps(idx[i], f), acc0);
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) - (three ? 4 : 1) * _mm512_reduce_add_ps(off);
}

void ptq_ggml_gemv_a8_avx512(const ptq_ggml_gemv_args *a, int o0, int o1) {
    const int nb = a->in / PTQ_GGML_QK_K, ns = a->in / 32;
    for (int o = o0; o < o1; o++) {
        const uint8_t *row = a->w + (size_t)o * a->row_bytes;
        for (int r = 0; r < a->rows; r++) {
            const int8_t *xq = a->xq + (size_t)r * (size_t)a->in;
            const float *dx = a->dx + (size_t)r * ns, *xs = a->xs32 + (size_t)r * ns;
            float s = 0;
            switch (a->type) {
            case PTQ_GGML_Q4_K: s = dot_k45(row, nb, xq, dx, xs, 0); break;
            case PTQ_GGML_Q5_K: s = dot_k45(row, nb, xq, dx, xs, 1); break;
            case PTQ_GGML_Q6_K: s = dot_q6k(row, nb, xq, dx, a->qsum16 + (size_t)r * (size_t)(2 * ns)); break;
            case PTQ_GGML_Q2_K:
            case PTQ_GGML_Q3_K:
                s = dot_k23(row, nb, xq, dx, a->xs16 + (size_t)r * (size_t)(2 * ns),
                            a->qsum16 + (size_t)r * (size_t)(2 * ns), a->type == PTQ_GGML_Q3_K);
                break;
            default: break; /* the dispatcher sends no other type */
            }
            a->y[(size_t)r * (size_t)a->out + (size_t)o] = s;
        }
    }
}
