/* Helpers shared by the SIMD kernels of ggml_gemm.h (ggml_gemv_avx2.c, ggml_gemv_a8_avx2.c, ggml_gemm_a8_avx2.c,
 * ggml_gemv_avx512.c, ggml_gemv_a8_avx512.c, ggml_gemm_a8_avx512.c): include only from files compiled with AVX2, FMA
 * and F16C (and AVX-512 for the rest). */
#ifndef PTQ_KERNELS_GGML_SIMD_H
#define PTQ_KERNELS_GGML_SIMD_H

#include <immintrin.h>
#include <stdint.h>

#include "io/gguf.h"
#include "kernels/ggml_gemm.h"

/* Decode reads each block once, from memory: every GEMV kernel fetches the block PTQ_GS_PREFETCH bytes ahead of the
 * one it is about to read (rows are contiguous, so near a row's end that is the start of the next row, which the same
 * thread reads next). Without it the hardware prefetcher alone kept one thread's Q4_K stream at 7.4 GB/s where the
 * same kernel reads 15 in cache; with it 14 (docs/RESULTS.md §29). always_inline: see PTQ_A8_PREFETCH_FN
 * (qgemv_a8.h): GCC may delete a call to a function whose only effect is a prefetch. */
#define PTQ_GS_PREFETCH 4096
static inline __attribute__((always_inline)) void ptq_gs_prefetch(const uint8_t *blk, size_t bytes) {
    for (size_t l = 0; l < bytes; l += 64) __builtin_prefetch(blk + PTQ_GS_PREFETCH + l, 0, 3);
}

/* p, which the compiler can no longer see through: a float stored there and then broadcast (_mm512_set1_ps(p[i]) or
 * _mm256_set1_ps) is read back by one broadcast load folded into its multiply, where GCC would otherwise take the
 * lane from the register it stored by shuffles (two shuffle-port uops per broadcast; the float k-quant GEMVs ran
 * 1.1-1.3x slower in cache that way: docs/RESULTS.md §30). The memory clobber keeps the store before it. */
static inline __attribute__((always_inline)) const float *ptq_gs_from_memory(const float *p) {
    __asm__("" : "+r"(p)::"memory");
    return p;
}

/* AVX-VNNI (VEX vpdpbusd, Intel client cores from Alder Lake): acc + the int32 sums of 4 unsigned codes u times 4
 * signed activation codes a per lane, the sums vpmaddubsw + vpmaddwd give (the AVX2 int8 kernels' VNNI variants;
 * compiled for AVX-VNNI whatever the file's flags, called only where CPUID reports it). */
__attribute__((target("avx2,avxvnni"))) static inline __m256i ptq_gs_dpbusd_vex(__m256i acc, __m256i u, __m256i a) {
    return _mm256_dpbusd_avx_epi32(acc, u, a);
}

/* the fp16 at p (little-endian) */
static inline float ptq_gs_h2f(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | (p[1] << 8))); }

static inline float ptq_gs_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* 8 bytes (a little-endian uint64) times f, as floats */
static inline __m256 ptq_gs_scaled8(uint64_t bytes, float f) {
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)bytes))), _mm256_set1_ps(f));
}

/* Q2_K (three = 0) / Q3_K (three = 1): the 16 sub-block steps d*sc[s] (Q3_K: d*(sc[s] - 32)) into st and, Q2_K,
   the offsets dmin*m[s] into mn (Q3_K: mn untouched); 8 at a time (scalar conversions cost the AVX2 Q2_K GEMV a
   third of its time). */
static inline void ptq_gs_k23_steps(const uint8_t *blk, int three, float *st, float *mn) {
    if (three) {
        uint64_t sc[2];
        ptq_ggml_k3_scales(blk + 96, sc);
        const __m256 d = _mm256_set1_ps(ptq_gs_h2f(blk + 108));
        for (int k = 0; k < 2; k++) {
            const __m256i v = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)sc[k]));
            _mm256_storeu_ps(st + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(v, _mm256_set1_epi32(32))), d));
        }
    } else {
        const __m256 d = _mm256_set1_ps(ptq_gs_h2f(blk + 80)), dmin = _mm256_set1_ps(ptq_gs_h2f(blk + 82));
        for (int k = 0; k < 2; k++) {
            const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(blk + 8 * k)));
            _mm256_storeu_ps(st + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(15))), d));
            _mm256_storeu_ps(mn + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4)), dmin));
        }
    }
}

/* The codes of columns 32k .. 32k + 31 of the k-quant block at blk (type T), as unsigned bytes: Q4_K 0..15,
   Q5_K 0..31, Q6_K 0..63 (value + 32), Q3_K 0..7 (value + 4), Q2_K 0..3 (layouts in ggml_gemv_a8_avx2.c). */
static inline __m256i ptq_gs_codes32(uint32_t T, const uint8_t *blk, int k) {
    const __m256i m4 = _mm256_set1_epi8(15), m3 = _mm256_set1_epi8(3), m1 = _mm256_set1_epi8(1);
    if (T == PTQ_GGML_Q4_K || T == PTQ_GGML_Q5_K) { /* nibbles of qs bytes 32 (k / 2) + l; Q5_K: bit k of qh byte l */
        const int five = T == PTQ_GGML_Q5_K;
        const __m256i v = _mm256_loadu_si256((const __m256i *)(blk + (five ? 48 : 16) + 32 * (k / 2)));
        __m256i c = _mm256_and_si256(k & 1 ? _mm256_srli_epi16(v, 4) : v, m4);
        if (five) {
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(blk + 16));
            c = _mm256_or_si256(c, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, k), m1), 4));
        }
        return c;
    }
    if (T == PTQ_GGML_Q6_K) { /* i = k % 4: the low (i < 2) or high nibble of ql byte 64 (k / 4) + 32 (i % 2) + l,
                                 bits 2i of qh byte 128 + 32 (k / 4) + l */
        const int h = k / 4, i = k % 4;
        const __m256i l = _mm256_loadu_si256((const __m256i *)(blk + 64 * h + 32 * (i & 1)));
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h));
        return _mm256_or_si256(_mm256_and_si256(i < 2 ? l : _mm256_srli_epi16(l, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * i), m3), 4));
    }
    /* Q2_K / Q3_K: bits 2 (k % 4) of qs byte 32 (k / 4) + l; Q3_K's third bit: bit k of hmask byte l */
    const int three = T == PTQ_GGML_Q3_K;
    const __m256i q = _mm256_loadu_si256((const __m256i *)(blk + (three ? 32 : 16) + 32 * (k / 4)));
    __m256i c = _mm256_and_si256(_mm256_srli_epi16(q, 2 * (k % 4)), m3);
    if (three) {
        const __m256i hm = _mm256_loadu_si256((const __m256i *)blk);
        c = _mm256_or_si256(c, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, k), m1), 2));
    }
    return c;
}

#ifdef __AVX512F__
static inline __m512i ptq_gs_widen16(const uint8_t *p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)); }

/* Q6_K: the 6-bit codes (0..63) of half h of the block at row, values 128h + 0..63 in *c01 and 128h + 64..127 in
   *c23, one per byte. Value l (< 32) is (ql[l] & 15) | (qh[l] & 3) << 4, 32 + l uses ql[32 + l] and qh bits 2-3,
   64 + l the high nibble of ql[l] and bits 4-5, 96 + l the high nibble of ql[32 + l] and bits 6-7 (ql = row + 64h,
   qh = row + 128 + 32h). */
static inline void ptq_gs_q6k_codes(const uint8_t *row, int h, __m512i *c01, __m512i *c23) {
    const __m512i m4 = _mm512_set1_epi8(15), m2 = _mm512_set1_epi8(3);
    const __m512i ql = _mm512_loadu_si512(row + 64 * h);
    const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(row + 128 + 32 * h)));
    const __m512i ha = _mm512_srlv_epi64(qh, _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2));
    const __m512i hb = _mm512_srlv_epi64(qh, _mm512_setr_epi64(4, 4, 4, 4, 6, 6, 6, 6));
    *c01 = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_slli_epi16(_mm512_and_si512(ha, m2), 4));
    *c23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), _mm512_slli_epi16(_mm512_and_si512(hb, m2), 4));
}

/* Q2_K (three = 0) / Q3_K (three = 1): the 16 sub-block steps d*sc[s] (Q3_K: d*(sc[s] - 32)) and, Q2_K, offsets
   dmin*m[s] (Q3_K: 0). The Q3_K scales enter the vector from registers: a 128-bit load of the two 64-bit words
   just stored defeats store forwarding (Q3_K int8 kernel 13 GB/s instead of 33, RESULTS §27). */
static inline void ptq_gs_k23_scales(const uint8_t *row, int three, __m512 *d1, __m512 *m1) {
    if (three) {
        uint64_t sc[2];
        ptq_ggml_k3_scales(row + 96, sc);
        const __m512i v = _mm512_cvtepu8_epi32(_mm_set_epi64x((long long)sc[1], (long long)sc[0]));
        *d1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(v, _mm512_set1_epi32(32))), _mm512_set1_ps(ptq_gs_h2f(row + 108)));
        *m1 = _mm512_setzero_ps();
    } else {
        const __m512i v = ptq_gs_widen16(row);
        *d1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(v, _mm512_set1_epi32(15))), _mm512_set1_ps(ptq_gs_h2f(row + 80)));
        *m1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(v, 4)), _mm512_set1_ps(ptq_gs_h2f(row + 82)));
    }
}
#endif

#endif
