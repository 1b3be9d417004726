/* The AVX-512 VNNI decode/GEMV machinery of the int8-activation GEMV, included by two files (a static copy each):
 * qgemv_a8_avx512.c (AVX-512 F/BW/VL/VNNI, every code width) and qgemv_a8_avx512_gfni.c (PTQ_A8_GFNI 1: the same
 * kernel for 2-bit codes with their unpacking on GFNI, for CPUs that have it). The file comment of
 * qgemv_a8_avx512.c describes the blocks and the unpacking. */
#ifndef PTQ_KERNELS_QGEMV_A8_AVX512_TILE_H
#define PTQ_KERNELS_QGEMV_A8_AVX512_TILE_H

#ifndef PTQ_A8_GFNI
#define PTQ_A8_GFNI 0
#endif
#include <stdint.h>
#include <string.h>

#include <immintrin.h>

#include "kernels/qgemm_impl.h"
#include "kernels/qgemv_a8.h"

#define INLINE static inline __attribute__((always_inline))
#define UNROLL_BLOCKS PTQ_A8_UNROLL(8) /* qgemv_a8.h */
#define MAXR 4
/* How a decode call reads its rows [o0, o1) (bench_qgemv --tiles: the kernels alternated pass by pass, best of 8,
 * AMD Zen 5, 2 threads, 4096x14336 ... 2048x2048; docs/RESULTS.md §25):
 *   TILE_ONE   one row at a time, front to back;
 *   TILE_PAIR  two adjacent rows side by side (one load of activation codes serves both);
 *   TILE_SPLIT two rows side by side, one from each half of [o0, o1): two far-apart streams, each long and
 *              sequential, that the hardware prefetcher follows better than one (each stream also prefetched
 *              in software: ptq_a8_prefetch_tile).
 * GB/s, one row / pair / split: W4 g32 4096x14336 47 / 55 / 53, 14336x4096 47 / 40 / 55, 2048x2048 41 / 37 / 49;
 * W4 g128 14336x4096 52 / 43 / 56; W8 g32 4096x14336 40 / 56 / 55, 2048x2048 39 / 42 / 49; W8 g128 4096x14336
 * 39 / 48 / 54; W8 per channel 14336x4096 54 / 57 / 55, 2048x2048 53 / 40 / 55; W4 per channel 14336x4096 54 / 43 /
 * 57; W3 g32 14336x4096 40 / 32 / 45; W2 g32 14336x4096 44 / 28 / 42. Groups that straddle the 512-column
 * superblocks run the general superblock form, whose split measured no better. With the GFNI unpacking (lighter),
 * W2 g32 reads better split too: 4096x14336 46 / 46 / 50, 14336x4096 44 / 38 / 56 (RESULTS §26). */
enum { TILE_ONE = 1, TILE_PAIR = 2, TILE_SPLIT = 3 };
/* The form of w's whole superblocks (tile_supers' WHOLE): 1, groups of 32 columns; 2, groups of 64, 128 or 256, or
 * each superblock inside one group (per channel, or groups of a multiple of 512 columns); 0: the general form. */
static int whole_form(const ptq_qweight *w) {
    const int cpg = w->group % PTQ_QCHUNK == 0 ? w->group / PTQ_QCHUNK : 0;
    if (cpg == 1) return 1;
    return cpg == 2 || cpg == 4 || cpg == 8 || w->n_groups == 1 || (cpg > 0 && cpg % PTQ_A8_SUPER == 0) ? 2 : 0;
}
static int decode_tile(const ptq_qweight *w) {
    if ((w->bits == 2 && !PTQ_A8_GFNI) || !whole_form(w)) return TILE_ONE;
    return w->bits == 8 && w->group == PTQ_QCHUNK && w->in > 2048 ? TILE_PAIR : TILE_SPLIT;
}

/* The codes of one block (64 bytes; 96 for 3 bits) as NV 64-byte vectors of unsigned codes, in the
 * activation order of qgemv_a8.h. */
/* For 5-7 bits: the dword d of a 4-chunk block (4 B dwords) as an index into (a, b), a = dwords 0-15 and
 * b = the last 16 dwords of the block. */
INLINE int blk_dword(const int B, int d) { return d < 16 ? d : 16 + d - (4 * B - 16); }

/* 5-7 bits: codes as 4 bits plus the high bits (layout in qweight.h), in the 4-bit order. */
INLINE void unpack_block_hi(const int B, const uint8_t *p, __m512i v[4]) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i a = _mm512_loadu_si512(p), b = _mm512_loadu_si512(p + 16 * B - 64);
    int32_t ilo[16], ihi[16], ipl[16];
    for (int L = 0; L < 4; L++)
        for (int i = 0; i < 4; i++) {
            ilo[4 * L + i] = blk_dword(B, B * L + i);          /* the nibbles of chunk L into lane L */
            ihi[4 * L + i] = blk_dword(B, B * L + 4 + (i & 1)); /* its 2-bit layout, twice */
            ipl[4 * L + i] = blk_dword(B, B * i + B - 1);       /* every chunk's top-bit plane */
        }
    const __m512i lo = _mm512_permutex2var_epi32(a, _mm512_loadu_si512(ilo), b);
    v[0] = _mm512_and_si512(lo, m4);
    v[1] = _mm512_and_si512(_mm512_srli_epi16(lo, 4), m4);
    if (B >= 6) { /* byte m of lane L: column m (v[0]) or 16 + m (v[1]) of chunk L, bits at 2 (m / 8) (+ 4) */
        const __m512i h = _mm512_permutex2var_epi32(a, _mm512_loadu_si512(ihi), b);
        const __m512i m30 = _mm512_set1_epi8(0x30);
        const __m512i s0 = _mm512_set_epi64(2, 0, 2, 0, 2, 0, 2, 0), s1 = _mm512_set_epi64(6, 4, 6, 4, 6, 4, 6, 4);
        v[0] = _mm512_or_si512(v[0], _mm512_and_si512(_mm512_slli_epi16(_mm512_srlv_epi64(h, s0), 4), m30));
        v[1] = _mm512_or_si512(v[1], _mm512_and_si512(_mm512_slli_epi16(_mm512_srlv_epi64(h, s1), 4), m30));
    }
    if (B != 6) { /* bit m of lane L's half: low halves of the 4 planes into mask 0, high halves into mask 1 */
        const __m128i pl = _mm512_castsi512_si128(_mm512_permutex2var_epi32(a, _mm512_loadu_si512(ipl), b));
        const __m128i hw = _mm_shuffle_epi8(pl, _mm_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15));
        const __m512i top = _mm512_set1_epi8((char)(1 << (B - 1)));
        v[0] = _mm512_mask_add_epi8(v[0], (__mmask64)_mm_cvtsi128_si64(hw), v[0], top);
        v[1] = _mm512_mask_add_epi8(v[1], (__mmask64)_mm_extract_epi64(hw, 1), v[1], top);
    }
}

INLINE void unpack_block(const int B, const uint8_t *p, __m512i v[4]) {
    if (B >= 5 && B <= 7) {
        unpack_block_hi(B, p, v);
        return;
    }
    if (B == 8) {
        v[0] = _mm512_loadu_si512(p);
        return;
    }
    if (B == 4) {
        const __m512i m4 = _mm512_set1_epi8(0x0f);
        const __m512i c = _mm512_loadu_si512(p);
        v[0] = _mm512_and_si512(c, m4);
        v[1] = _mm512_and_si512(_mm512_srli_epi16(c, 4), m4);
        return;
    }
    __m512i lo, hi = _mm512_setzero_si512();
    if (B == 2) {
        lo = _mm512_loadu_si512(p);
    } else {
        /* 8 chunks of 12 bytes: dwords 3c, 3c+1 (2-bit planes) and 3c+2 (third bits) */
        const __m512i a = _mm512_loadu_si512(p), b = _mm512_loadu_si512(p + 32); /* dwords 0-15, 8-23 */
        const __m512i ilo = _mm512_set_epi32(30, 29, 27, 26, 24, 15, 13, 12, 10, 9, 7, 6, 4, 3, 1, 0);
        /* the third-bit planes of chunks 2L and 2L+1 into dwords 0 and 1 of 128-bit lane L */
        const __m512i ihi = _mm512_set_epi32(0, 0, 31, 28, 0, 0, 25, 14, 0, 0, 11, 8, 0, 0, 5, 2);
        lo = _mm512_permutex2var_epi32(a, ilo, b);
        hi = _mm512_permutex2var_epi32(a, ihi, b);
    }
    /* byte p of 128-bit lane L of v[i] is column 8i + p % 8 of chunk 2L + p / 8: bits 2i, 2i+1 of byte p of lo, and
       (3 bits) bit p % 8 of byte i of that chunk's third-bit plane, which is byte 4 (p / 8) + i of the lane in hi */
    for (int i = 0; i < 4; i++) {
#if PTQ_A8_GFNI
        /* 2 bits (qgemv_a8_avx512_gfni.c): one affine map per byte (GF(2) matrix A: output bit r is the parity of the
           input bits in byte 7 - r of A) takes bits 2i, 2i+1 to bits 0, 1 and clears the rest */
        const __m512i A = _mm512_set1_epi64((long long)((1ull << (2 * i)) << 56 | (2ull << (2 * i)) << 48));
        __m512i t = _mm512_gf2p8affine_epi64_epi8(lo, A, 0);
#else
        __m512i t = _mm512_and_si512(i == 0 ? lo : _mm512_srli_epi16(lo, 2 * i), _mm512_set1_epi8(0x03));
#endif
        if (B == 3) { /* the plane's byte i (or 4 + i) to every byte of the half lane, tested against bit p % 8 */
            const __m512i idx = _mm512_broadcast_i32x4(_mm_set_epi64x(0x0101010101010101LL * (4 + i),
                                                                      0x0101010101010101LL * i));
            const __m512i bit = _mm512_set1_epi64((long long)0x8040201008040201ULL);
            const __mmask64 k = _mm512_test_epi8_mask(_mm512_shuffle_epi8(hi, idx), bit);
            t = _mm512_mask_add_epi8(t, k, t, _mm512_set1_epi8(4));
        }
        v[i] = t;
    }
}

/* The scales (as float) and zero points (as int32) of weight row o for the n chunks of the superblock
 * starting at chunk c0, one lane per chunk (lanes >= n are 0). WHOLE: the caller knows n == 16 and, for WHOLE 1,
 * cpg == 1 (group 32: plain loads); for WHOLE 2, that the superblock holds the groups g0 .. g0 + popcount(gm) - 1
 * whole (groups of 64, 128 or 256 columns; or one group, gm = 1: per channel, multiples of 512), spread over its
 * chunks by gidx. */
INLINE void sb_scales(const int WHOLE, const ptq_qweight *w, int o, int c0, int n, int cpg, int g0, int g1,
                      __mmask16 gm, __m512i gidx, __m512 *s, __m512i *z) {
    const int ng = w->n_groups;
    const uint16_t *sr = w->scales + (size_t)o * (size_t)ng;
    const uint8_t *zr = ptq_qweight_zeros_of(w, o);
    if (WHOLE == 1) {
        *s = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sr + c0)));
        *z = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(zr + c0)));
        return;
    }
    if (WHOLE == 2) {
        *s = _mm512_permutexvar_ps(gidx, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(gm, sr + g0)));
        *z = _mm512_permutexvar_epi32(gidx, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(gm, zr + g0)));
        return;
    }
    const __mmask16 m = (__mmask16)((1u << n) - 1u);
    if (cpg == 1) {
        *s = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, sr + c0));
        *z = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, zr + c0));
    } else if (g0 == g1) { /* one group over the superblock (per channel, g512+) */
        *s = _mm512_maskz_mov_ps(m, _mm512_set1_ps(_cvtsh_ss(sr[g0])));
        *z = _mm512_maskz_mov_epi32(m, _mm512_set1_epi32(zr[g0]));
    } else if (PTQ_A8_SUPER % cpg == 0) { /* 2, 4 or 8 whole groups: load them, spread by a permutation */
        const __mmask16 gm = (__mmask16)((1u << (g1 - g0 + 1)) - 1u);
        *s = _mm512_maskz_permutexvar_ps(m, gidx, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(gm, sr + g0)));
        *z = _mm512_maskz_permutexvar_epi32(m, gidx, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(gm, zr + g0)));
    } else { /* groups of 3, 5, 6, 7 ... chunks */
        uint16_t st[16] = {0};
        uint8_t zt[16] = {0};
        for (int k = 0, g = g0, left = cpg - (c0 - g0 * cpg); k < n; k++) {
            st[k] = sr[g];
            zt[k] = zr[g];
            if (--left == 0) g++, left = cpg;
        }
        *s = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)st));
        *z = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)zt));
    }
}

/* Superblocks sb0 .. sb1-1 of a tile (below), into its accumulators. WHOLE (whole_form): they are whole (16 chunks
 * in the row: no partial block, no bound checks) and hold whole groups (1: of 32 columns; 2: of 64-256, or lie in one
 * group), so nothing is decided per superblock: the loop over a row's whole superblocks (1.4-2x faster in L2 than the
 * general form on 4096x14336 W4 g32). Every other superblock takes the general form (WHOLE = 0); same bits. */
INLINE void tile_supers(const int B, const int R, const int O, const int WHOLE, const ptq_qweight *w, const ptq_a8 *a,
                        const __m512i *lane_idx, __m512i gidx, int o, int rs, int r0, int sb0, int sb1,
                        __m512 acc[MAXR][2], __m512 zacc[MAXR]) {
    const int CPB = B == 8 ? 2 : (B >= 4 ? 4 : 8); /* chunks per block */
    const int NV = B == 8 ? 1 : (B >= 4 ? 2 : 4);  /* 64-byte code vectors per block */
    const size_t cb = 4u * (size_t)B;              /* code bytes per chunk */
    const int nch = a->nchunks;
    const int cpg = WHOLE == 1 ? 1 : (w->group % PTQ_QCHUNK == 0 ? w->group / PTQ_QCHUNK : nch);
    const size_t nc = (size_t)a->nsuper * PTQ_A8_SUPER;
    const int gshift = ptq_a8_group_shift(cpg), one_group = w->n_groups == 1;
    const __mmask16 gm = (__mmask16)(cpg < PTQ_A8_SUPER ? (1u << (PTQ_A8_SUPER / cpg)) - 1u : 1u); /* WHOLE 2 */
    const uint8_t *codes = w->codes + (size_t)o * w->row_bytes;
    for (int sb = sb0; sb < sb1; sb++) {
        const int c0 = sb * PTQ_A8_SUPER;
        const int n = WHOLE || nch - c0 >= PTQ_A8_SUPER ? PTQ_A8_SUPER : nch - c0;
        const int g0 = WHOLE == 2 && one_group ? 0 : ptq_a8_group_of(c0, cpg, gshift);
        const int g1 = WHOLE ? g0 : ptq_a8_group_of(c0 + n - 1, cpg, gshift); /* (read by the general form only) */
        __m512 sc[MAXR]; /* s * d of every (weight row, activation row) pair, t = i * R + r */
        if (R == 1 && O == 1) ptq_a8_prefetch_super(w, o, c0, g0, sb);
        if (R == 1 && O > 1)
            for (int i = 0; i < O; i++) ptq_a8_prefetch_tile(w, o + i * rs, rs == 1 ? O : 1, O, cb, c0, sb, cpg, gshift);
#pragma GCC unroll 4
        for (int i = 0; i < O; i++) {
            __m512 s;
            __m512i z;
            sb_scales(WHOLE, w, o + i * rs, c0, n, cpg, g0, g1, gm, gidx, &s, &z);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                const size_t ro = (size_t)(r0 + r) * nc + (size_t)c0;
                sc[i * R + r] = _mm512_mul_ps(s, _mm512_loadu_ps(a->d + ro));
                const __m512i zq = _mm512_mullo_epi32(z, _mm512_loadu_si512(a->qsum + ro));
                zacc[i * R + r] = _mm512_fmadd_ps(sc[i * R + r], _mm512_cvtepi32_ps(zq), zacc[i * R + r]);
            }
        }
        UNROLL_BLOCKS
        for (int k = 0; k < PTQ_A8_SUPER / CPB; k++) {
            if (!WHOLE && k * CPB >= n) break;
            const int cb0 = c0 + k * CPB;
            __m512i v[MAXR][4];
#pragma GCC unroll 4
            for (int i = 0; i < O; i++) {
                const uint8_t *p = codes + (size_t)(i * rs) * w->row_bytes + (size_t)cb0 * cb;
                _Alignas(64) uint8_t tail[128];
                if (!WHOLE && nch - cb0 < CPB) { /* partial block: the rest of the row, zero-padded */
                    memset(tail, 0, sizeof tail);
                    memcpy(tail, p, (size_t)(nch - cb0) * cb);
                    p = tail;
                }
                unpack_block(B, p, v[i]);
            }
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                const int8_t *x = a->q + (size_t)(r0 + r) * a->ld + (size_t)cb0 * PTQ_QCHUNK;
                __m512i xv[4];
#pragma GCC unroll 4
                for (int j = 0; j < NV; j++) xv[j] = _mm512_loadu_si512(x + 64 * j);
#pragma GCC unroll 4
                for (int i = 0; i < O; i++) {
                    __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), v[i][0], xv[0]);
#pragma GCC unroll 4
                    for (int j = 1; j < NV; j++) dot = _mm512_dpbusd_epi32(dot, v[i][j], xv[j]);
                    const int t = i * R + r;
                    acc[t][k & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(lane_idx[k], sc[t]),
                                                    acc[t][k & 1]);
                }
            }
        }
    }
}

/* Weight rows o + i rs (i < O) against the R activation rows r0 .. r0+R-1 of a (R * O <= 4). Each block of
 * codes is unpacked once for the R activation rows, each block of activation codes loaded once for
 * the O weight rows (decode: O = 1 or 2, R = 1). The blocks of a superblock are unrolled, so the
 * accumulators stay in registers. */
INLINE void tile_kernel(const int B, const int R, const int O, const ptq_qweight *w, const ptq_a8 *a,
                        const __m512i *lane_idx, __m512i gidx, float *y, int o, int rs, int r0) {
    __m512 acc[MAXR][2], zacc[MAXR];
#pragma GCC unroll 4
    for (int t = 0; t < R * O; t++) acc[t][0] = acc[t][1] = zacc[t] = _mm512_setzero_ps();
    /* whole superblocks (those before the row's last, partial one) in their form: decode only, to keep the number of
       loops the compiler generates down (small batches run the general form throughout) */
    const int form = R == 1 ? whole_form(w) : 0;
    const int whole = form ? a->nchunks / PTQ_A8_SUPER : 0;
    if (form == 1) tile_supers(B, R, O, 1, w, a, lane_idx, gidx, o, rs, r0, 0, whole, acc, zacc);
    else if (form == 2) tile_supers(B, R, O, 2, w, a, lane_idx, gidx, o, rs, r0, 0, whole, acc, zacc);
    tile_supers(B, R, O, 0, w, a, lane_idx, gidx, o, rs, r0, whole, a->nsuper, acc, zacc);
#pragma GCC unroll 4
    for (int i = 0; i < O; i++)
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const int t = i * R + r;
            y[(size_t)(r0 + r) * (size_t)w->out + (size_t)(o + i * rs)] =
                _mm512_reduce_add_ps(_mm512_sub_ps(_mm512_add_ps(acc[t][0], acc[t][1]), zacc[t]));
        }
}

INLINE void gemv_bits(const int B, const ptq_qweight *w, const ptq_a8 *a, float *y, int o0, int o1, int tile_req) {
    /* lane m of block k of a superblock takes the scale of chunk CPB k + m / (16 / CPB) */
    const int CPB = B == 8 ? 2 : (B >= 4 ? 4 : 8);
    __m512i lane_idx[8];
    for (int k = 0; k < PTQ_A8_SUPER / CPB; k++) {
        int32_t t[16];
        for (int m = 0; m < 16; m++) t[m] = CPB * k + m / (16 / CPB);
        lane_idx[k] = _mm512_loadu_si512(t);
    }
    const int nch = a->nchunks, cpg = w->group % PTQ_QCHUNK == 0 ? w->group / PTQ_QCHUNK : nch;
    __m512i gidx = _mm512_setzero_si512(); /* chunk k of a superblock -> its group, when cpg divides 16 */
    if (cpg > 1 && PTQ_A8_SUPER % cpg == 0) {
        int32_t t[16];
        for (int k = 0; k < 16; k++) t[k] = k / cpg;
        gidx = _mm512_loadu_si512(t);
    }
    if (a->rows == 1) { /* decode */
        const int tile = tile_req >= TILE_ONE && tile_req <= TILE_SPLIT ? tile_req : decode_tile(w);
        int o = o0;
        if (tile == TILE_SPLIT) { /* rows o0 + j and o0 + h + j together; an odd last row alone */
            const int h = (o1 - o0) / 2;
            for (; o < o0 + h; o++) tile_kernel(B, 1, 2, w, a, lane_idx, gidx, y, o, h, 0);
            o += h;
        }
        for (; tile == TILE_PAIR && o + 2 <= o1; o += 2) tile_kernel(B, 1, 2, w, a, lane_idx, gidx, y, o, 1, 0);
        for (; o < o1; o++) tile_kernel(B, 1, 1, w, a, lane_idx, gidx, y, o, 1, 0);
        return;
    }
    /* activation rows outermost: their 4 rows stay in L1 while the (few) weight rows of [o0, o1) pass */
    for (int r0 = 0; r0 < a->rows;) {
        const int left = a->rows - r0;
        for (int o = o0; o < o1; o++) switch (left >= 4 ? 4 : left) {
            case 1: tile_kernel(B, 1, 1, w, a, lane_idx, gidx, y, o, 1, r0); break;
            case 2: tile_kernel(B, 2, 1, w, a, lane_idx, gidx, y, o, 1, r0); break;
            case 3: tile_kernel(B, 3, 1, w, a, lane_idx, gidx, y, o, 1, r0); break;
            default: tile_kernel(B, 4, 1, w, a, lane_idx, gidx, y, o, 1, r0); break;
            }
        r0 += left >= 4 ? 4 : left;
    }
}

/* One function per code width: a single function holding all seven took compilers (clang with ASan above all)
 * several times longer, for the same code. */
#define GEMV_WIDTH(B)                                                                                                  \
    static __attribute__((noinline)) void gemv_##B(const ptq_qweight *w, const ptq_a8 *a, float *y, int o0, int o1,     \
                                                   int tile) {                                                         \
        gemv_bits(B, w, a, y, o0, o1, tile);                                                                           \
    }

#endif
