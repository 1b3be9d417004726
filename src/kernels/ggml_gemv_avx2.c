/* AVX2 + FMA GEMV kernels for ggml block matrices (ggml_gemm.h).
 *
 * Q4_K and Q5_K: codes widened 8 at a time and converted to float, one sum of q * x per sub-block of 32 scaled by
 * d*sc; the offsets dmin*m multiply the precomputed sums of x over each 32 columns (xs32), 8 at a time. Q6_K: the codes of half
 * a block (128) assembled in bytes, stored, widened 8 at a time and scaled per 16 columns. Q2_K and Q3_K: codes
 * looked up in a table of their sub-block's values (dot_k23).
 * Every other type (Q4_1, Q5_1) expands one block with ptq_ggml_dequantize_rows and multiplies it with x. */
#include <immintrin.h>

#include "io/gguf.h"
#include "kernels/ggml_gemm.h"
#include "kernels/ggml_simd.h"
#include "quant/ggml_quants.h"

static inline __m256i widen8(const uint8_t *p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)); }

/* bit `bit` of h moved to bit 4, that bit alone */
static inline __m256i bit4(__m256i h, int bit) {
    const __m256i t = bit <= 4 ? _mm256_sll_epi32(h, _mm_cvtsi32_si128(4 - bit)) : _mm256_srl_epi32(h, _mm_cvtsi32_si128(bit - 4));
    return _mm256_and_si256(t, _mm256_set1_epi32(16));
}

/* Q4_K (five = 0) and Q5_K (five = 1) */
static float dot_k45(const uint8_t *row, int nb, const float *x, const float *xs, int five) {
    const __m256i m15 = _mm256_set1_epi32(15);
    const size_t bytes = five ? 176 : 144;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, macc = acc0;
    float d1[8] __attribute__((aligned(32)));
    for (int b = 0; b < nb; b++, row += bytes, x += 256, xs += 8) {
        ptq_gs_prefetch(row, bytes);
        uint64_t sc, mn;
        ptq_ggml_k4_scales(row + 4, &sc, &mn);
        _mm256_store_ps(d1, ptq_gs_scaled8(sc, ptq_gs_h2f(row)));
        const float *dp = ptq_gs_from_memory(d1);
        macc = _mm256_fmadd_ps(ptq_gs_scaled8(mn, ptq_gs_h2f(row + 2)), _mm256_loadu_ps(xs), macc);
        const uint8_t *qh = row + 16, *qs = row + (five ? 48 : 16);
        for (int g = 0; g < 4; g++, qs += 32) {
            const float *xg = x + 64 * g;
            __m256 lo0 = _mm256_setzero_ps(), lo1 = lo0, hi0 = lo0, hi1 = lo0;
            for (int k = 0; k < 4; k += 2) {
                __m256i v0 = widen8(qs + 8 * k), v1 = widen8(qs + 8 * k + 8);
                __m256i l0 = _mm256_and_si256(v0, m15), l1 = _mm256_and_si256(v1, m15);
                __m256i u0 = _mm256_srli_epi32(v0, 4), u1 = _mm256_srli_epi32(v1, 4);
                if (five) { /* bit 2g (low codes) and 2g + 1 (high codes) of qh[l] -> bit 4 */
                    const __m256i h0 = widen8(qh + 8 * k), h1 = widen8(qh + 8 * k + 8);
                    l0 = _mm256_or_si256(l0, bit4(h0, 2 * g)), l1 = _mm256_or_si256(l1, bit4(h1, 2 * g));
                    u0 = _mm256_or_si256(u0, bit4(h0, 2 * g + 1)), u1 = _mm256_or_si256(u1, bit4(h1, 2 * g + 1));
                }
                lo0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(l0), _mm256_loadu_ps(xg + 8 * k), lo0);
                lo1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(l1), _mm256_loadu_ps(xg + 8 * k + 8), lo1);
                hi0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(u0), _mm256_loadu_ps(xg + 32 + 8 * k), hi0);
                hi1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(u1), _mm256_loadu_ps(xg + 32 + 8 * k + 8), hi1);
            }
            acc0 = _mm256_fmadd_ps(_mm256_add_ps(lo0, lo1), _mm256_set1_ps(dp[2 * g]), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_add_ps(hi0, hi1), _mm256_set1_ps(dp[2 * g + 1]), acc1);
        }
    }
    return ptq_gs_hsum256(_mm256_add_ps(acc0, acc1)) - ptq_gs_hsum256(macc);
}

/* Q6_K (layout in ggml_gemv_avx512.c) */
static float dot_q6k(const uint8_t *row, int nb, const float *x) {
    const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3), k32 = _mm256_set1_epi8(32);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int8_t q[128] __attribute__((aligned(32)));
    float st[16] __attribute__((aligned(32))); /* the 16 steps d * scale */
    for (int b = 0; b < nb; b++, row += 210) {
        ptq_gs_prefetch(row, 210);
        const __m256 d = _mm256_set1_ps(ptq_gs_h2f(row + 208));
        const __m128i sc = _mm_loadu_si128((const __m128i *)(row + 192));
        _mm256_store_ps(st, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc)), d));
        _mm256_store_ps(st + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8))), d));
        const float *stp = ptq_gs_from_memory(st);
        for (int h = 0; h < 2; h++) {
            const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(row + 64 * h));
            const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(row + 64 * h + 32));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(row + 128 + 32 * h));
            const __m256i hb[4] = {_mm256_slli_epi16(_mm256_and_si256(qh, m2), 4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4)};
            const __m256i lb[4] = {_mm256_and_si256(ql0, m4), _mm256_and_si256(ql1, m4),
                                   _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4)};
            for (int i = 0; i < 4; i++)
                _mm256_store_si256((__m256i *)(q + 32 * i), _mm256_sub_epi8(_mm256_or_si256(lb[i], hb[i]), k32));
            const float *xh = x + 256 * b + 128 * h;
            for (int k = 0; k < 8; k++) { /* 16 values: sub-block 8h + k */
                const __m256 s = _mm256_set1_ps(stp[8 * h + k]);
                for (int i = 0; i < 2; i++) {
                    const __m256i c = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + 16 * k + 8 * i)));
                    const __m256 w = _mm256_mul_ps(_mm256_cvtepi32_ps(c), s);
                    acc[(2 * k + i) & 3] = _mm256_fmadd_ps(w, _mm256_loadu_ps(xh + 16 * k + 8 * i), acc[(2 * k + i) & 3]);
                }
            }
        }
    }
    return ptq_gs_hsum256(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

/* Q2_K (three = 0) and Q3_K (three = 1): column 128h + 32i + l has its two low bits at bits 2i of qs byte 32h + l,
   Q3_K's third bit at bit 4h + i of hmask byte l; sub-blocks of 16 columns, s = 8h + 2i + l / 16. As in
   ggml_gemv_avx512.c the codes are looked up (vpermps) in a table per sub-block of its dequantized values c d_s - m_s
   (Q3_K: c d_s, the codes stored + 4; -4 d_s times the sums of x per 16 columns, x16, once per block). vpermps reads
   the low 3 bits of each index: Q2_K's table holds its 4 values twice, so that the bits above a shifted code need no
   mask; Q3_K's indices are built 16 at a time in bytes (code | third bit << 2), then widened. In cache 1.4x (Q2_K)
   and 1.2x (Q3_K) faster than converting the codes and scaling per sub-block (RESULTS §30). */
static float dot_k23(const uint8_t *row, int nb, const float *x, const float *x16, int three) {
    const __m256 codes = three ? _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7) : _mm256_setr_ps(0, 1, 2, 3, 0, 1, 2, 3);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    __m256 off = _mm256_setzero_ps();
    float st[16] __attribute__((aligned(32))), mn[16] __attribute__((aligned(32)));
    for (int b = 0; b < nb; b++, row += three ? 110 : 84, x += 256, x16 += 16) {
        ptq_gs_prefetch(row, three ? 110 : 84);
        ptq_gs_k23_steps(row, three, st, mn);
        if (three) {
            off = _mm256_fmadd_ps(_mm256_load_ps(st), _mm256_loadu_ps(x16), off);
            off = _mm256_fmadd_ps(_mm256_load_ps(st + 8), _mm256_loadu_ps(x16 + 8), off);
        }
        const float *sp = ptq_gs_from_memory(st), *mp = ptq_gs_from_memory(mn);
        const uint8_t *qs = row + (three ? 32 : 16);
        for (int h = 0; h < 2; h++)
            for (int half = 0; half < 2; half++) {
                __m256 t[4]; /* the tables of sub-blocks 8h + 2i + half */
                for (int i = 0; i < 4; i++) {
                    const int s = 8 * h + 2 * i + half;
                    t[i] = three ? _mm256_mul_ps(codes, _mm256_set1_ps(sp[s]))
                                 : _mm256_fmsub_ps(codes, _mm256_set1_ps(sp[s]), _mm256_set1_ps(mp[s]));
                }
                if (three) { /* the 3-bit indices of 16 columns built in bytes, then widened 8 at a time */
                    const __m128i q = _mm_loadu_si128((const __m128i *)(qs + 32 * h + 16 * half));
                    const __m128i hm = _mm_loadu_si128((const __m128i *)(row + 16 * half));
                    for (int i = 0; i < 4; i++) {
                        const int sh = 4 * h + i - 2; /* the third bit to bit 2 */
                        const __m128i hb = sh >= 0 ? _mm_srli_epi16(hm, sh) : _mm_slli_epi16(hm, -sh);
                        const __m128i c = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(q, 2 * i), _mm_set1_epi8(3)),
                                                       _mm_and_si128(hb, _mm_set1_epi8(4)));
                        for (int k = 0; k < 2; k++) {
                            const __m256i ck = _mm256_cvtepu8_epi32(k ? _mm_srli_si128(c, 8) : c);
                            acc[i] = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(t[i], ck),
                                                     _mm256_loadu_ps(x + 128 * h + 32 * i + 16 * half + 8 * k), acc[i]);
                        }
                    }
                    continue;
                }
                for (int k = 0; k < 2; k++) {
                    const int l = 16 * half + 8 * k;
                    const __m256i q = widen8(qs + 32 * h + l);
                    for (int i = 0; i < 4; i++)
                        acc[i] = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(t[i], _mm256_srli_epi32(q, 2 * i)),
                                                 _mm256_loadu_ps(x + 128 * h + 32 * i + l), acc[i]);
                }
            }
    }
    return ptq_gs_hsum256(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]))) -
           4 * ptq_gs_hsum256(off);
}

/* Any other type: one block at a time expanded exactly, then a dot product. */
static float dot_generic(uint32_t type, const uint8_t *row, int in, const float *x) {
    const int block = ptq_ggml_row_bytes(type, PTQ_GGML_QK) ? PTQ_GGML_QK : PTQ_GGML_QK_K;
    const size_t bytes = ptq_ggml_row_bytes(type, block);
    float v[PTQ_GGML_QK_K] __attribute__((aligned(32)));
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (int j0 = 0; j0 < in; j0 += block, row += bytes) {
        ptq_gs_prefetch(row, bytes);
        (void)ptq_ggml_dequantize_rows(type, row, v, 1, block, NULL);
        for (int j = 0; j < block; j += 16) {
            acc0 = _mm256_fmadd_ps(_mm256_load_ps(v + j), _mm256_loadu_ps(x + j0 + j), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_load_ps(v + j + 8), _mm256_loadu_ps(x + j0 + j + 8), acc1);
        }
    }
    return ptq_gs_hsum256(_mm256_add_ps(acc0, acc1));
}

void ptq_ggml_gemv_avx2(const ptq_ggml_gemv_args *a, int o0, int o1) {
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
