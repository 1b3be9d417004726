/* A 16-row byte transpose shared by the AVX-512 prefill GEMMs (qgemm_a8_avx512.c, ggml_gemm_a8_avx512.c), which
 * lay weight codes out in panels of 16 outputs (dword i of a quad = output i's 4 codes). Include only from files
 * compiled with AVX-512 F and BW. */
#ifndef PTQ_KERNELS_TRANSPOSE16_AVX512_H
#define PTQ_KERNELS_TRANSPOSE16_AVX512_H

#include <stddef.h>
#include <stdint.h>

#include <immintrin.h>

/* 64 contiguous code bytes of each of the 16 outputs at base + i ld (rows i >= n and bytes past `bytes` read as
 * zero), transposed so that t[L][q] holds dword q of 128-bit lane L of every output (lane i = output i): an in-lane
 * 4x4 dword transpose per 4 outputs, then a 4x4 transpose of 128-bit lanes per q. Contiguous loads and 64 shuffles
 * instead of 16 gathers. */
static inline __attribute__((always_inline)) void ptq_transpose_rows16(const uint8_t *base, size_t ld, int n, int bytes,
                                                                       __m512i t[4][4]) {
    const __mmask64 bm = bytes >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << bytes) - 1);
    __m512i v[4][4]; /* v[g][q] lane L: dword q of lane L of outputs 4g..4g+3 */
    for (int g = 0; g < 4; g++) {
        __m512i r[4];
        for (int j = 0; j < 4; j++)
            r[j] = 4 * g + j < n ? _mm512_maskz_loadu_epi8(bm, base + (size_t)(4 * g + j) * ld) : _mm512_setzero_si512();
        const __m512i t0 = _mm512_unpacklo_epi32(r[0], r[1]), t1 = _mm512_unpackhi_epi32(r[0], r[1]);
        const __m512i t2 = _mm512_unpacklo_epi32(r[2], r[3]), t3 = _mm512_unpackhi_epi32(r[2], r[3]);
        v[g][0] = _mm512_unpacklo_epi64(t0, t2);
        v[g][1] = _mm512_unpackhi_epi64(t0, t2);
        v[g][2] = _mm512_unpacklo_epi64(t1, t3);
        v[g][3] = _mm512_unpackhi_epi64(t1, t3);
    }
    for (int q = 0; q < 4; q++) {
        const __m512i s0 = _mm512_shuffle_i32x4(v[0][q], v[1][q], 0x44), s1 = _mm512_shuffle_i32x4(v[0][q], v[1][q], 0xee);
        const __m512i s2 = _mm512_shuffle_i32x4(v[2][q], v[3][q], 0x44), s3 = _mm512_shuffle_i32x4(v[2][q], v[3][q], 0xee);
        t[0][q] = _mm512_shuffle_i32x4(s0, s2, 0x88);
        t[1][q] = _mm512_shuffle_i32x4(s0, s2, 0xdd);
        t[2][q] = _mm512_shuffle_i32x4(s1, s3, 0x88);
        t[3][q] = _mm512_shuffle_i32x4(s1, s3, 0xdd);
    }
}

#endif
