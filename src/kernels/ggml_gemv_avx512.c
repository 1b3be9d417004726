/* AVX-512 GEMV kernels for ggml block matrices (ggml_gemm.h).
 *
 * Q4_K and Q5_K: codes widened 16 at a time and converted to float, one sum of q * x per sub-block of 32 scaled by
 * d*sc (the 8 scales of a block converted together); the offsets dmin*m multiply the precomputed sums of x over
 * each 32 columns (xs32), 8 at a time. Q2_K and Q3_K: codes of 16 columns widened, shifted and masked, and looked
 * up in a table of their sub-block's dequantized values (dot_k23). Q6_K: the codes of half a block (128) are
 * assembled in bytes, stored and widened 16 at a time, scaled per 16 columns. Every other type expands one block
 * with ptq_ggml_dequantize_rows and multiplies it with x. */
#include <immintrin.h>

#include "io/gguf.h"
#include "kernels/ggml_gemm.h"
#include "kernels/ggml_simd.h"
#include "quant/ggml_quants.h"

/* bits 2g (low codes) / 2g + 1 (high codes) of h moved to bit 4, that bit alone */
static inline __m512i bit4(__m512i h, int bit) {
    const __m512i t = bit <= 4 ? _mm512_sll_epi32(h, _mm_cvtsi32_si128(4 - bit)) : _mm512_srl_epi32(h, _mm_cvtsi32_si128(bit - 4));
    return _mm512_and_si512(t, _mm512_set1_epi32(16));
}

/* Q4_K (five = 0) and Q5_K (five = 1): per sub-block of 32 one sum of q * x, scaled by d*sc; the offsets dmin*m
   multiply the sums of x over each 32 columns (xs) */
static float dot_k45(const uint8_t *row, int nb, const float *x, const float *xs, int five) {
    const __m512i m15 = _mm512_set1_epi32(15);
    const size_t bytes = five ? 176 : 144;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    __m256 macc = _mm256_setzero_ps();
    float d1[8] __attribute__((aligned(32)));
    for (int b = 0; b < nb; b++, row += bytes, x += 256, xs += 8) {
        ptq_gs_prefetch(row, bytes);
        uint64_t sc, mn;
        ptq_ggml_k4_scales(row + 4, &sc, &mn);
        _mm256_store_ps(d1, ptq_gs_scaled8(sc, ptq_gs_h2f(row)));
        const float *dp = ptq_gs_from_memory(d1);
        macc = _mm256_fmadd_ps(ptq_gs_scaled8(mn, ptq_gs_h2f(row + 2)), _mm256_loadu_ps(xs), macc);
        const uint8_t *qs = row + (five ? 48 : 16);
        __m512i h0 = _mm512_setzero_si512(), h1 = h0;
        if (five) h0 = ptq_gs_widen16(row + 16), h1 = ptq_gs_widen16(row + 32);
        for (int g = 0; g < 4; g++, qs += 32) {
            const float *xg = x + 64 * g;
            const __m512i v0 = ptq_gs_widen16(qs), v1 = ptq_gs_widen16(qs + 16);
            __m512i l0 = _mm512_and_si512(v0, m15), l1 = _mm512_and_si512(v1, m15);
            __m512i u0 = _mm512_srli_epi32(v0, 4), u1 = _mm512_srli_epi32(v1, 4);
            if (five) {
                l0 = _mm512_or_si512(l0, bit4(h0, 2 * g)), l1 = _mm512_or_si512(l1, bit4(h1, 2 * g));
                u0 = _mm512_or_si512(u0, bit4(h0, 2 * g + 1)), u1 = _mm512_or_si512(u1, bit4(h1, 2 * g + 1));
            }
            __m512 lo = _mm512_mul_ps(_mm512_cvtepi32_ps(l0), _mm512_loadu_ps(xg));
            __m512 hi = _mm512_mul_ps(_mm512_cvtepi32_ps(u0), _mm512_loadu_ps(xg + 32));
            lo = _mm512_fmadd_ps(_mm512_cvtepi32_ps(l1), _mm512_loadu_ps(xg + 16), lo);
            hi = _mm512_fmadd_ps(_mm512_cvtepi32_ps(u1), _mm512_loadu_ps(xg + 48), hi);
            acc[g & 1] = _mm512_fmadd_ps(lo, _mm512_set1_ps(dp[2 * g]), acc[g & 1]);
            acc[2 + (g & 1)] = _mm512_fmadd_ps(hi, _mm512_set1_ps(dp[2 * g + 1]), acc[2 + (g & 1)]);
        }
    }
    __m128 m = _mm_add_ps(_mm256_castps256_ps128(macc), _mm256_extractf128_ps(macc, 1));
    m = _mm_add_ps(m, _mm_movehl_ps(m, m));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]))) -
           _mm_cvtss_f32(m);
}

/* Q6_K: ql[128], qh[64], int8 scales[16], d; codes as ptq_gs_q6k_codes, minus 32. The 16 steps d * scale of a
   block are converted together and each broadcast from memory into its multiply (ptq_gs_from_memory; a scalar
   convert, multiply and broadcast per 16 values made the kernel 1.3x slower in cache; the same float products). */
static float dot_q6k(const uint8_t *row, int nb, const float *x) {
    const __m512i k32 = _mm512_set1_epi8(32);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int8_t q[128] __attribute__((aligned(64)));
    float st[16] __attribute__((aligned(64)));
    for (int b = 0; b < nb; b++, row += 210) {
        ptq_gs_prefetch(row, 210);
        const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(row + 192)));
        _mm512_store_ps(st, _mm512_mul_ps(_mm512_cvtepi32_ps(sc), _mm512_set1_ps(ptq_gs_h2f(row + 208))));
        const float *stp = ptq_gs_from_memory(st);
        for (int h = 0; h < 2; h++) {
            __m512i c01, c23;
            ptq_gs_q6k_codes(row, h, &c01, &c23);
            _mm512_store_si512(q, _mm512_sub_epi8(c01, k32));
            _mm512_store_si512(q + 64, _mm512_sub_epi8(c23, k32));
            const float *xh = x + 256 * b + 128 * h;
            for (int k = 0; k < 8; k++) { /* 16 values: sub-block 8h + k */
                const __m512 w = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)(q + 16 * k)))),
                                               _mm512_set1_ps(stp[8 * h + k]));
                acc[k & 3] = _mm512_fmadd_ps(w, _mm512_loadu_ps(xh + 16 * k), acc[k & 3]);
            }
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

/* Q2_K (three = 0) and Q3_K (three = 1): value 128h + 32i + l (l < 32) has its two low bits at bits 2i of byte
   32h + l of qs, Q3_K's third bit at bit 4h + i of hmask byte l; sub-blocks of 16. The 16 values at a time of
   sub-block s = 8h + 2i + half are looked up: for each (half, h) a table of 32 floats holds the values c d_s - m_s
   (Q3_K: c d_s) of its four sub-blocks (i, codes c < 8 at 8i + c), and one vpermt2ps indexed by code + 8i gives the
   dequantized weights (the same single-rounded c d_s - m_s the widen, convert and fmsub gave; 1.2x faster for
   Q2_K and Q3_K in cache: RESULTS §30). Q3_K's codes minus 4: the code (low bits, plus 4 where the hmask bit
   is set: one masked OR) times x, and -4 d*sc times the sums of x over each 16 columns (x16) once per block. */
static float dot_k23(const uint8_t *row, int nb, const float *x, const float *x16, int three) {
    const __m512i m3 = _mm512_set1_epi32(3), k4 = _mm512_set1_epi32(4);
    const __m512 codes = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    __m512 off = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++, row += three ? 110 : 84, x += 256, x16 += 16) {
        ptq_gs_prefetch(row, three ? 110 : 84);
        __m512 vd, vm;
        ptq_gs_k23_scales(row, three, &vd, &vm);
        if (three) off = _mm512_fmadd_ps(vd, _mm512_loadu_ps(x16), off);
        const uint8_t *qs = row + (three ? 32 : 16);
        for (int half = 0; half < 2; half++) {
            const __m512i hm = three ? ptq_gs_widen16(row + 16 * half) : _mm512_setzero_si512();
            for (int h = 0; h < 2; h++) {
                const int s0 = 8 * h + half; /* the sub-block of i = 0; i adds 2i */
                const __m512i lo = _mm512_setr_epi32(s0, s0, s0, s0, s0, s0, s0, s0, s0 + 2, s0 + 2, s0 + 2, s0 + 2,
                                                     s0 + 2, s0 + 2, s0 + 2, s0 + 2);
                const __m512i hi = _mm512_add_epi32(lo, k4);
                const __m512 d0 = _mm512_permutexvar_ps(lo, vd), d1 = _mm512_permutexvar_ps(hi, vd);
                const __m512 t0 = three ? _mm512_mul_ps(codes, d0) : _mm512_fmsub_ps(codes, d0, _mm512_permutexvar_ps(lo, vm));
                const __m512 t1 = three ? _mm512_mul_ps(codes, d1) : _mm512_fmsub_ps(codes, d1, _mm512_permutexvar_ps(hi, vm));
                const __m512i q = ptq_gs_widen16(qs + 32 * h + 16 * half);
                for (int i = 0; i < 4; i++) {
                    const int e0 = 128 * h + 32 * i + 16 * half;
                    /* ((q >> 2i) & 3) | 8i */
                    __m512i c = _mm512_ternarylogic_epi32(_mm512_srli_epi32(q, 2 * i), m3, _mm512_set1_epi32(8 * i), 0xEA);
                    if (three) {
                        const __mmask16 hb = _mm512_test_epi32_mask(hm, _mm512_set1_epi32(1 << (4 * h + i)));
                        c = _mm512_mask_or_epi32(c, hb, c, k4);
                    }
                    acc[i] = _mm512_fmadd_ps(_mm512_permutex2var_ps(t0, c, t1), _mm512_loadu_ps(x + e0), acc[i]);
                }
            }
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]))) -
           4 * _mm512_reduce_add_ps(off);
}

/* Any other type: one block at a time expanded exactly, then a dot product. */
static float dot_generic(uint32_t type, const uint8_t *row, int in, const float *x) {
    const int block = ptq_ggml_row_bytes(type, PTQ_GGML_QK) ? PTQ_GGML_QK : PTQ_GGML_QK_K;
    const size_t bytes = ptq_ggml_row_bytes(type, block);
    float v[PTQ_GGML_QK_K] __attribute__((aligned(64)));
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    for (int j0 = 0; j0 < in; j0 += block, row += bytes) {
        ptq_gs_prefetch(row, bytes);
        (void)ptq_ggml_dequantize_rows(type, row, v, 1, block, NULL);
        for (int j = 0; j < block; j += 32) {
            acc0 = _mm512_fmadd_ps(_mm512_load_ps(v + j), _mm512_loadu_ps(x + j0 + j), acc0);
            acc1 = _mm512_fmadd_ps(_mm512_load_ps(v + j + 16), _mm512_loadu_ps(x + j0 + j + 16), acc1);
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

void ptq_ggml_gemv_avx512(const ptq_ggml_gemv_args *a, int o0, int o1) {
    const int nb = a->in / PTQ_GGML_QK_K, ns = a->in / 32;
    for (int o = o0; o < o1; o++) {
        const uint8_t *row = a->w + (size_t)o * a->row_bytes;
        for (int r = 0; r < a->rows; r++) {
            const float *x = a->x + (size_t)r * (size_t)a->in, *xs = a->xs32 + (size_t)r * (size_t)ns;
            const float *x16 = a->xs16 + (size_t)r * (size_t)(2 * ns);
            float s;
            switch (a->type) {
            case PTQ_GGML_Q4_K: s = dot_k45(row, nb, x, xs, 0); break;
            case PTQ_GGML_Q5_K: s = dot_k45(row, nb, x, xs, 1); break;
            case PTQ_GGML_Q6_K: s = dot_q6k(row, nb, x); break;
            case PTQ_GGML_Q2_K: s = dot_k23(row, nb, x, x16, 0); break;
            case PTQ_GGML_Q3_K: s = dot_k23(row, nb, x, x16, 1); break;
            default: s = dot_generic(a->type, row, a->in, x);
            }
            a->y[(size_t)r * (size_t)a->out + (size_t)o] = s;
        }
    }
}
