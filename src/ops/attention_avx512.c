/* AVX-512 twins of attention's column scores and product with V (ops.h): the same multiplies and adds in the
 * same order as the scalar loops of attention.c, sixteen lanes at a time, so the results are the same bits.
 * Compiled for AVX-512F without FMA contraction (CMakeLists.txt); called only when the CPU has AVX-512F. */
#include <immintrin.h>
#include <stddef.h>

#include "ops/ops.h"

void ptq_attn_scores_cols_avx512(const float *qi, const float *kt, size_t ld, int n, int head_dim, float scale,
                                 float *p) {
    const __m512 sc = _mm512_set1_ps(scale);
    for (int j0 = 0; j0 < n; j0 += 16) {
        const __mmask16 m = n - j0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j0)) - 1u);
        __m512 acc = _mm512_setzero_ps();
        for (int d = 0; d < head_dim; d++)
            acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_set1_ps(qi[d]),
                                                   _mm512_maskz_loadu_ps(m, kt + (size_t)d * ld + (size_t)j0)));
        _mm512_mask_storeu_ps(p + j0, m, _mm512_mul_ps(acc, sc));
    }
}

void ptq_attn_pv_avx512(const float *p, const float *v, size_t vs, int n, int head_dim, float *o) {
    for (int d0 = 0; d0 < head_dim; d0 += 64) { /* up to four vectors of o stay in registers over all keys */
        const int nv = (head_dim - d0) / 16 < 4 ? (head_dim - d0) / 16 : 4;
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        for (int j = 0; j < n; j++) {
            const __m512 pj = _mm512_set1_ps(p[j]);
            const float *vj = v + (size_t)j * vs + (size_t)d0;
            for (int t = 0; t < nv; t++) acc[t] = _mm512_add_ps(acc[t], _mm512_mul_ps(pj, _mm512_loadu_ps(vj + 16 * t)));
        }
        for (int t = 0; t < nv; t++) _mm512_storeu_ps(o + d0 + 16 * t, acc[t]);
    }
}
