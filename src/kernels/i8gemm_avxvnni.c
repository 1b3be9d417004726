/* AVX-VNNI int8 GEMM (VEX vpdpbusd on ymm, with AVX2): for CPUs with AVX-VNNI but no AVX-512
 * (Alder Lake and later client cores); also runs on Sapphire Rapids. Compiled for that target
 * whatever the library's flags; the dispatcher calls it only when CPUID reports AVX2 and AVX-VNNI.
 *
 * Only 16 ymm registers: the register tile is MR = 6 input rows x one panel (16 outputs = two ymm
 * halves) = 12 accumulators, 2 weight vectors and a broadcast. Per quad of 4 input columns:
 * 2 weight loads, 6 broadcasts of x + 128, 12 vpdpbusd (32 multiply-adds each). Accumulators start
 * at -128 * rowsum. Blocking as in the AVX-512 kernel (panel -> slice of KQ quads -> row tiles; whole
 * rows up to in = 4096, which measured faster than short slices here too): ~430 GOP/s per Sapphire
 * Rapids core, 0.55-0.6x the AVX-512 kernel.
 */
#include <stdint.h>
#include <string.h>

#include "kernels/i8gemm.h"

#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))
#define MR 6
#ifndef KQ
#define KQ 1024
#endif

typedef struct {
    const uint8_t *x;
    size_t ldx;
    const int8_t *wp;
    int nq;
    int32_t *c;
    size_t ldc;
    const __m256i *init; /* [2]: -128 * rowsum for the first slice, else NULL */
    __m256i mask[2];     /* lanes of the two halves that exist */
    int full;            /* all 16 outputs exist */
} tile_args;

INLINE __m256i load_c(int full, __m256i mask, const int32_t *p) {
    return full ? _mm256_loadu_si256((const __m256i *)p) : _mm256_maskload_epi32((const int *)p, mask);
}

INLINE void store_c(int full, __m256i mask, int32_t *p, __m256i v) {
    if (full) _mm256_storeu_si256((__m256i *)p, v);
    else _mm256_maskstore_epi32((int *)p, mask, v);
}

INLINE void tile(const int mr, const tile_args *t) {
    int32_t *const c = t->c;
    const size_t ldc = t->ldc;
    const int full = t->full;
    const __m256i mask[2] = {t->mask[0], t->mask[1]};
    __m256i acc[MR][2];
#pragma GCC unroll 8
    for (int m = 0; m < mr; m++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++)
            acc[m][h] = t->init ? t->init[h] : load_c(full, mask[h], c + (size_t)m * ldc + 8 * h);
    const uint8_t *x = t->x;
    const int8_t *wp = t->wp;
    for (int q = 0; q < t->nq; q++) {
        const __m256i w0 = _mm256_load_si256((const __m256i *)wp);
        const __m256i w1 = _mm256_load_si256((const __m256i *)(wp + 32));
#pragma GCC unroll 8
        for (int m = 0; m < mr; m++) {
            int32_t xv;
            memcpy(&xv, x + (size_t)m * t->ldx, 4);
            const __m256i xb = _mm256_set1_epi32(xv);
            acc[m][0] = _mm256_dpbusd_avx_epi32(acc[m][0], xb, w0);
            acc[m][1] = _mm256_dpbusd_avx_epi32(acc[m][1], xb, w1);
        }
        x += 4;
        wp += 64;
    }
#pragma GCC unroll 8
    for (int m = 0; m < mr; m++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) store_c(full, mask[h], c + (size_t)m * ldc + 8 * h, acc[m][h]);
}

#define TILE_FN(m) \
    static void tile_##m(const tile_args *t) { tile(m, t); }
TILE_FN(1)
TILE_FN(2)
TILE_FN(3)
TILE_FN(4)
TILE_FN(5)
TILE_FN(6)
typedef void (*tile_fn)(const tile_args *);
static const tile_fn tiles[MR] = {tile_1, tile_2, tile_3, tile_4, tile_5, tile_6};

void ptq_i8gemm_avxvnni(const ptq_i8gemm_args *a, int r0, int r1, int o0, int o1) {
    const ptq_i8weight *w = a->w;
    const size_t pbytes = (size_t)w->in_quads * 64;
    const int p0 = o0 / PTQ_I8_PANEL, p1 = (o1 + PTQ_I8_PANEL - 1) / PTQ_I8_PANEL;
    const int kq = r1 - r0 <= MR ? w->in_quads : KQ;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int p = p0; p < p1; p++) {
        const int o = p * PTQ_I8_PANEL, valid = o1 - o;
        tile_args t;
        t.full = valid >= 16;
        t.mask[0] = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), lane);
        t.mask[1] = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid - 8), lane);
        __m256i init[2];
        for (int h = 0; h < 2; h++)
            init[h] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                       _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(w->rowsum + o + 8 * h)), 7));
        t.ldx = a->ldx;
        t.ldc = (size_t)w->out;
        for (int q0 = 0; q0 < w->in_quads; q0 += kq) {
            t.wp = w->packed + (size_t)p * pbytes + (size_t)q0 * 64;
            t.nq = w->in_quads - q0 < kq ? w->in_quads - q0 : kq;
            t.init = q0 == 0 ? init : NULL;
            for (int r = r0; r < r1; r += MR) {
                const int mr = r1 - r < MR ? r1 - r : MR;
                t.x = a->xp + (size_t)r * a->ldx + (size_t)q0 * 4;
                t.c = a->acc + (size_t)r * (size_t)w->out + (size_t)o;
                tiles[mr - 1](&t);
            }
        }
    }
}
