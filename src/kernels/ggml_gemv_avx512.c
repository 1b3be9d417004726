/* AVX-512 GEMV kernels for ggml block matrices (ggml_gemm.h).
 *
 * Q4_K and Q5_K: per sub-block of 32 columns a table of the 16 (32) values its codes stand for, built exactly as
 * ggml dequantizes (d*sc * q - dmin*m, no fused multiply-add: this file is compiled with -ffp-contract=off), and
 * one vpermps (vpermt2ps) per 16 codes looks each value up; the codes' spare high bits are ignored by the
 * permutation, so no masking. Q6_K: the codes of half a block (128) are assembled in bytes, stored and widened 16
 * at a time, scaled per 16 columns. Every other type expands one block with ptq_ggml_dequantize_rows and
 * multiplies it with x. */
#include <immintrin.h>

#include "io/gguf.h"
#include "kernels/ggml_gemm.h"
#include "quant/ggml_quants.h"

static inline float h2f(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | (p[1] << 8))); }

static inline __m512 iota16(void) {
    return _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

/* d1 * q - m1 for q = q0 .. q0 + 15 */
static inline __m512 table(__m512 iota, float q0, float d1, float m1) {
    return _mm512_sub_ps(_mm512_mul_ps(_mm512_add_ps(iota, _mm512_set1_ps(q0)), _mm512_set1_ps(d1)),
                         _mm512_set1_ps(m1));
}

static float dot_q4k(const uint8_t *row, int nb, const float *x) {
    const __m512 iota = iota16();
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int b = 0; b < nb; b++, row += 144, x += 256) {
        const float d = h2f(row), dmin = h2f(row + 2);
        uint8_t sc[8], mn[8];
        ptq_ggml_k4_scales(row + 4, sc, mn);
        const uint8_t *qs = row + 16;
        for (int g = 0; g < 4; g++, qs += 32) {
            const float *xg = x + 64 * g;
            const __m512 tlo = table(iota, 0, d * (float)sc[2 * g], dmin * (float)mn[2 * g]);
            const __m512 thi = table(iota, 0, d * (float)sc[2 * g + 1], dmin * (float)mn[2 * g + 1]);
            const __m512i v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)qs));
            const __m512i v1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qs + 16)));
            acc0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(v0, tlo), _mm512_loadu_ps(xg), acc0);
            acc1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(v1, tlo), _mm512_loadu_ps(xg + 16), acc1);
            acc2 = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v0, 4), thi), _mm512_loadu_ps(xg + 32), acc2);
            acc3 = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v1, 4), thi), _mm512_loadu_ps(xg + 48), acc3);
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}

/* bit `bit` of h moved to bit 4, the low nibble of v below it (higher bits: whatever; vpermt2ps reads 5) */
static inline __m512i code5(__m512i v, __m512i h, int bit) {
    const __m512i t = bit <= 4 ? _mm512_sll_epi32(h, _mm_cvtsi32_si128(4 - bit)) : _mm512_srl_epi32(h, _mm_cvtsi32_si128(bit - 4));
    return _mm512_ternarylogic_epi32(v, t, _mm512_set1_epi32(15), 0xE4); /* (v & 15) | (t & ~15) */
}

static float dot_q5k(const uint8_t *row, int nb, const float *x) {
    const __m512 iota = iota16();
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int b = 0; b < nb; b++, row += 176, x += 256) {
        const float d = h2f(row), dmin = h2f(row + 2);
        uint8_t sc[8], mn[8];
        ptq_ggml_k4_scales(row + 4, sc, mn);
        const __m512i h0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(row + 16)));
        const __m512i h1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(row + 32)));
        const uint8_t *qs = row + 48;
        for (int g = 0; g < 4; g++, qs += 32) {
            const float *xg = x + 64 * g;
            const float d1 = d * (float)sc[2 * g], m1 = dmin * (float)mn[2 * g];
            const float d2 = d * (float)sc[2 * g + 1], m2 = dmin * (float)mn[2 * g + 1];
            const __m512 la = table(iota, 0, d1, m1), lb = table(iota, 16, d1, m1);
            const __m512 ha = table(iota, 0, d2, m2), hb = table(iota, 16, d2, m2);
            const __m512i v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)qs));
            const __m512i v1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qs + 16)));
            acc0 = _mm512_fmadd_ps(_mm512_permutex2var_ps(la, code5(v0, h0, 2 * g), lb), _mm512_loadu_ps(xg), acc0);
            acc1 = _mm512_fmadd_ps(_mm512_permutex2var_ps(la, code5(v1, h1, 2 * g), lb), _mm512_loadu_ps(xg + 16), acc1);
            acc2 = _mm512_fmadd_ps(_mm512_permutex2var_ps(ha, code5(_mm512_srli_epi32(v0, 4), h0, 2 * g + 1), hb),
                                   _mm512_loadu_ps(xg + 32), acc2);
            acc3 = _mm512_fmadd_ps(_mm512_permutex2var_ps(ha, code5(_mm512_srli_epi32(v1, 4), h1, 2 * g + 1), hb),
                                   _mm512_loadu_ps(xg + 48), acc3);
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}

/* Q6_K: ql[128], qh[64], int8 scales[16], d. Half h (128 values) at ql + 64h, qh + 32h: value l (< 32) is
   (ql[l] & 15) | (qh[l] & 3) << 4, value 32 + l uses ql[32 + l] and qh bits 2-3, 64 + l the high nibble of ql[l]
   and bits 4-5, 96 + l the high nibble of ql[32 + l] and bits 6-7; minus 32. */
static float dot_q6k(const uint8_t *row, int nb, const float *x) {
    const __m512i m4 = _mm512_set1_epi8(15), m2 = _mm512_set1_epi8(3), k32 = _mm512_set1_epi8(32);
    const __m512i sh_a = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2), sh_b = _mm512_setr_epi64(4, 4, 4, 4, 6, 6, 6, 6);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int8_t q[128] __attribute__((aligned(64)));
    for (int b = 0; b < nb; b++, row += 210) {
        const float d = h2f(row + 208);
        const int8_t *scales = (const int8_t *)(row + 192);
        for (int h = 0; h < 2; h++) {
            const __m512i ql = _mm512_loadu_si512(row + 64 * h);
            const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(row + 128 + 32 * h)));
            /* bytes 0..63: values 0..63 of the half (low nibbles), 64..127: the high nibbles */
            const __m512i lo = _mm512_and_si512(ql, m4), hi = _mm512_and_si512(_mm512_srli_epi16(ql, 4), m4);
            const __m512i ha = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi64(qh, sh_a), m2), 4);
            const __m512i hb = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi64(qh, sh_b), m2), 4);
            _mm512_store_si512(q, _mm512_sub_epi8(_mm512_or_si512(lo, ha), k32));
            _mm512_store_si512(q + 64, _mm512_sub_epi8(_mm512_or_si512(hi, hb), k32));
            const float *xh = x + 256 * b + 128 * h;
            for (int k = 0; k < 8; k++) { /* 16 values: sub-block 8h + k */
                const __m512 w = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)(q + 16 * k)))),
                                               _mm512_set1_ps(d * (float)scales[8 * h + k]));
                acc[k & 3] = _mm512_fmadd_ps(w, _mm512_loadu_ps(xh + 16 * k), acc[k & 3]);
            }
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

/* Any other type: one block at a time expanded exactly, then a dot product. */
static float dot_generic(uint32_t type, const uint8_t *row, int in, const float *x) {
    const int block = ptq_ggml_row_bytes(type, PTQ_GGML_QK) ? PTQ_GGML_QK : PTQ_GGML_QK_K;
    const size_t bytes = ptq_ggml_row_bytes(type, block);
    float v[PTQ_GGML_QK_K] __attribute__((aligned(64)));
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    for (int j0 = 0; j0 < in; j0 += block, row += bytes) {
        (void)ptq_ggml_dequantize_rows(type, row, v, 1, block, NULL);
        for (int j = 0; j < block; j += 32) {
            acc0 = _mm512_fmadd_ps(_mm512_load_ps(v + j), _mm512_loadu_ps(x + j0 + j), acc0);
            acc1 = _mm512_fmadd_ps(_mm512_load_ps(v + j + 16), _mm512_loadu_ps(x + j0 + j + 16), acc1);
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

void ptq_ggml_gemv_avx512(const ptq_ggml_gemv_args *a, int o0, int o1) {
    const int nb = a->in / PTQ_GGML_QK_K;
    for (int o = o0; o < o1; o++) {
        const uint8_t *row = a->w + (size_t)o * a->row_bytes;
        for (int r = 0; r < a->rows; r++) {
            const float *x = a->x + (size_t)r * (size_t)a->in;
            float s;
            switch (a->type) {
            case PTQ_GGML_Q4_K: s = dot_q4k(row, nb, x); break;
            case PTQ_GGML_Q5_K: s = dot_q5k(row, nb, x); break;
            case PTQ_GGML_Q6_K: s = dot_q6k(row, nb, x); break;
            default: s = dot_generic(a->type, row, a->in, x);
            }
            a->y[(size_t)r * (size_t)a->out + (size_t)o] = s;
        }
    }
}
