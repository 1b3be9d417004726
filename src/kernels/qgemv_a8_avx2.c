/* AVX2 kernels of the int8-activation GEMV (qgemv_a8.h), for CPUs without AVX-512 VNNI. Compiled for
 * AVX2 + FMA + F16C whatever the library's flags; the AVX-VNNI twin (VEX vpdpbusd on ymm: Alder Lake
 * and later, Zen 5) is the same code with a target attribute. The dispatcher calls them only when
 * CPUID reports the features.
 *
 * The activation codes are in the same order as for AVX-512 (qgemv_a8.h), read as 32-byte halves:
 * one 32-byte vector of unpacked codes holds CPB chunks (8 bits: 1, 4-7 bits: 2, 2 and 3 bits: 4).
 * 5-7 bits: the nibbles of 2 chunks as 4 bits, bits 4-5 (6, 7 bits) shifted per qword into place, the
 * top bit's plane (5, 7 bits) spread to bytes as for 3 bits.
 * Dot products of unsigned codes u and signed activation codes a:
 *   AVX-VNNI: vpdpbusd, exact in int32;
 *   AVX2, 2-4 bits: vpmaddubsw (u * a pairs into int16: |2 * 15 * 127| = 3810, no saturation), the
 *         int16 sums of the NV vectors of a block added (at most 4 * 1778 = 7112 for 3 bits), then one
 *         vpmaddwd by 1 into int32: exact; 5-7 bits likewise (2 * 127 * 127 = 32258 per pair), but
 *         7 bits goes to int32 per vector (two pairs' sums could reach 64516);
 *   AVX2, 8 bits: u up to 255 would saturate vpmaddubsw (2 * 255 * 127 > 32767), so the codes are
 *         taken as u - 128 (xor 0x80) and their sign moved to the activation: vpmaddubsw(|u - 128|,
 *         sign(a, u - 128)) sums pairs of (u - 128) a, at most 2 * 128 * 127 = 32512: exact (|u - 128|
 *         = 128 fits as unsigned; a, never -128, can be negated); the missing 128 * sum(a) =
 *         128 * qsum goes into the zero-point term (z - 128).
 * As in the AVX-512 kernel, each block's int32 dot becomes float and is multiplied by its chunks'
 * scales s * d (a lane permutation), with no horizontal sum until the end of the row.
 */
#include <stdint.h>
#include <string.h>

#include <immintrin.h>

#include "kernels/qgemm_impl.h"
#include "kernels/qgemv_a8.h"

#define INLINE static inline __attribute__((always_inline))
#define UNROLL_BLOCKS PTQ_A8_UNROLL(16) /* qgemv_a8.h */
#define MAXT 4 /* weight rows x activation rows per tile */

/* The codes of one block (32 bytes; 48 for 3 bits) as NV 32-byte vectors of unsigned codes in the
 * activation order. */
/* 5-7 bits: two chunks as 4 bits plus the high bits (layout in qweight.h), in the 4-bit order. */
INLINE void unpack_block_hi(const int B, const uint8_t *p, __m256i v[4]) {
    const size_t cb = 4u * (size_t)B;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i lo = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p)),
                                               _mm_loadu_si128((const __m128i *)(p + cb)), 1);
    v[0] = _mm256_and_si256(lo, m4);
    v[1] = _mm256_and_si256(_mm256_srli_epi16(lo, 4), m4);
    if (B >= 6) { /* byte m of lane L: column m (v[0]) or 16 + m (v[1]) of chunk L, bits at 2 (m / 8) (+ 4) */
        const __m256i h2 = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadl_epi64((const __m128i *)(p + 16))),
                                                   _mm_loadl_epi64((const __m128i *)(p + cb + 16)), 1);
        const __m256i h = _mm256_unpacklo_epi64(h2, h2);
        const __m256i m30 = _mm256_set1_epi8(0x30);
        v[0] = _mm256_or_si256(
            v[0], _mm256_and_si256(_mm256_slli_epi16(_mm256_srlv_epi64(h, _mm256_setr_epi64x(0, 2, 0, 2)), 4), m30));
        v[1] = _mm256_or_si256(
            v[1], _mm256_and_si256(_mm256_slli_epi16(_mm256_srlv_epi64(h, _mm256_setr_epi64x(4, 6, 4, 6)), 4), m30));
    }
    if (B != 6) { /* byte m of lane L of v[i]: bit m % 8 of byte 2 i + m / 8 of chunk L's plane */
        uint32_t t0, t1;
        memcpy(&t0, p + cb - 4, 4);
        memcpy(&t1, p + 2 * cb - 4, 4);
        const __m256i hv = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_cvtsi32_si128((int)t0)),
                                                   _mm_cvtsi32_si128((int)t1), 1);
        const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
        const __m256i top = _mm256_set1_epi8((char)(1 << (B - 1)));
        for (int i = 0; i < 2; i++) {
            const __m256i idx = _mm256_broadcastsi128_si256(
                _mm_set_epi64x(0x0101010101010101LL * (2 * i + 1), 0x0101010101010101LL * (2 * i)));
            const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(hv, idx), bit), bit);
            v[i] = _mm256_or_si256(v[i], _mm256_and_si256(set, top));
        }
    }
}

INLINE void unpack_block(const int B, const uint8_t *p, __m256i v[4]) {
    if (B >= 5 && B <= 7) {
        unpack_block_hi(B, p, v);
        return;
    }
    if (B == 8) {
        v[0] = _mm256_loadu_si256((const __m256i *)p);
        return;
    }
    if (B == 4) {
        const __m256i m4 = _mm256_set1_epi8(0x0f);
        const __m256i c = _mm256_loadu_si256((const __m256i *)p);
        v[0] = _mm256_and_si256(c, m4);
        v[1] = _mm256_and_si256(_mm256_srli_epi16(c, 4), m4);
        return;
    }
    const __m256i m2 = _mm256_set1_epi8(0x03);
    __m256i lo, hi = _mm256_setzero_si256();
    if (B == 2) {
        lo = _mm256_loadu_si256((const __m256i *)p);
    } else {
        /* 4 chunks of 12 bytes: dwords 3c, 3c+1 (2-bit planes) and 3c+2 (third bits) */
        const __m256i a = _mm256_loadu_si256((const __m256i *)p);        /* dwords 0-7 */
        const __m256i b = _mm256_loadu_si256((const __m256i *)(p + 16)); /* dwords 4-11 */
        /* planes: dwords 0,1,3,4,6,7 of a and 9,10 (b's 5,6); third bits: 2 and 5 of a, 8 and 11
           (b's 4 and 7) into dwords 0, 1 of each 128-bit lane (chunks 2L, 2L+1) */
        lo = _mm256_blend_epi32(_mm256_permutevar8x32_epi32(a, _mm256_setr_epi32(0, 1, 3, 4, 6, 7, 0, 0)),
                                _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 0, 0, 0, 0, 0, 5, 6)), 0xc0);
        hi = _mm256_blend_epi32(_mm256_permutevar8x32_epi32(a, _mm256_setr_epi32(2, 5, 0, 0, 0, 0, 0, 0)),
                                _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 0, 0, 0, 4, 7, 0, 0)), 0x30);
    }
    for (int i = 0; i < 4; i++) {
        __m256i t = _mm256_and_si256(i == 0 ? lo : _mm256_srli_epi16(lo, 2 * i), m2);
        if (B == 3) {
            /* byte p of lane L is column 8i + p % 8 of chunk 2L + p / 8: bit p % 8 of byte i of that
               chunk's plane, which is byte 4 (p / 8) + i of the lane */
            const __m256i idx = _mm256_broadcastsi128_si256(
                _mm_set_epi64x(0x0101010101010101LL * (4 + i), 0x0101010101010101LL * i));
            const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
            const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(hi, idx), bit), bit);
            t = _mm256_add_epi8(t, _mm256_and_si256(set, _mm256_set1_epi8(4)));
        }
        v[i] = t;
    }
}

__attribute__((target("avx2,avxvnni"))) static inline __m256i dot_vnni(__m256i acc, __m256i u, __m256i a) {
    return _mm256_dpbusd_avx_epi32(acc, u, a);
}

/* int32 dot products of a block's NV code vectors with its NV activation vectors (lanes as vpdpbusd). */
INLINE __m256i block_dot(const int B, const int VNNI, const __m256i *v, const __m256i *x) {
    const int NV = B == 8 ? 1 : (B >= 4 ? 2 : 4);
    if (VNNI) {
        __m256i d = dot_vnni(_mm256_setzero_si256(), v[0], x[0]);
        for (int j = 1; j < NV; j++) d = dot_vnni(d, v[j], x[j]);
        return d;
    }
    __m256i p;
    if (B == 8) {
        const __m256i qs = _mm256_xor_si256(v[0], _mm256_set1_epi8((char)0x80)); /* u - 128 as int8 */
        p = _mm256_maddubs_epi16(_mm256_abs_epi8(qs), _mm256_sign_epi8(x[0], qs)); /* |u - 128| as uint8 */
    } else if (B == 7) { /* int16 pair sums up to 32258 each: to int32 before adding */
        const __m256i one = _mm256_set1_epi16(1);
        return _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(v[0], x[0]), one),
                                _mm256_madd_epi16(_mm256_maddubs_epi16(v[1], x[1]), one));
    } else {
        p = _mm256_maddubs_epi16(v[0], x[0]);
        for (int j = 1; j < NV; j++) p = _mm256_add_epi16(p, _mm256_maddubs_epi16(v[j], x[j]));
    }
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* Exactly n = 2, 4, 8 or 16 bytes at p (never past them: the last group of the last row). */
INLINE __m128i load_bytes(const void *p, int n) {
    if (n == 16) return _mm_loadu_si128((const __m128i *)p);
    if (n == 8) return _mm_loadl_epi64((const __m128i *)p);
    int32_t v = 0;
    memcpy(&v, p, (size_t)n);
    return _mm_cvtsi32_si128(v);
}

/* The scales (float) and zero points (int32) of weight row o for the n chunks of the superblock at
 * chunk c0: lanes 0-7 in s[0], z[0], lanes 8-15 in s[1], z[1] (zero past n). gidx[h]: lane k -> the
 * group of chunk 8 h + k within the superblock, when cpg divides 16. */
INLINE void sb_scales(const ptq_qweight *w, int o, int c0, int n, int cpg, int g0, int g1, const __m256i gidx[2],
                      __m256 s[2], __m256i z[2]) {
    const int ng = w->n_groups;
    const uint16_t *sr = w->scales + (size_t)o * (size_t)ng;
    const uint8_t *zr = ptq_qweight_zeros_of(w, o);
    if (cpg == 1 && n == PTQ_A8_SUPER) {
        s[0] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sr + c0)));
        s[1] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sr + c0 + 8)));
        z[0] = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(zr + c0)));
        z[1] = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(zr + c0 + 8)));
        return;
    }
    if (n == PTQ_A8_SUPER && g0 == g1) { /* one group over the superblock */
        s[0] = s[1] = _mm256_set1_ps(_cvtsh_ss(sr[g0]));
        z[0] = z[1] = _mm256_set1_epi32(zr[g0]);
        return;
    }
    if (n == PTQ_A8_SUPER && PTQ_A8_SUPER % cpg == 0) { /* 2, 4 or 8 whole groups, spread by a permutation */
        const int ngs = PTQ_A8_SUPER / cpg;
        const __m256 sg = _mm256_cvtph_ps(load_bytes(sr + g0, 2 * ngs));
        const __m256i zg = _mm256_cvtepu8_epi32(load_bytes(zr + g0, ngs));
        for (int h = 0; h < 2; h++) {
            s[h] = _mm256_permutevar8x32_ps(sg, gidx[h]);
            z[h] = _mm256_permutevar8x32_epi32(zg, gidx[h]);
        }
        return;
    }
    _Alignas(32) uint16_t st[16] = {0};
    _Alignas(16) uint8_t zt[16] = {0};
    for (int k = 0, g = g0, left = cpg - (c0 - g0 * cpg); k < n; k++) {
        st[k] = sr[g];
        zt[k] = zr[g];
        if (--left == 0) g++, left = cpg;
    }
    s[0] = _mm256_cvtph_ps(_mm_load_si128((const __m128i *)st));
    s[1] = _mm256_cvtph_ps(_mm_load_si128((const __m128i *)(st + 8)));
    z[0] = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)zt));
    z[1] = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(zt + 8)));
}

/* Byte offset of the j-th activation vector of block k (CPB chunks) of a superblock, in the order
 * of qgemv_a8.h (whose 4-bit blocks are 128 bytes and 2/3-bit blocks 256 bytes: two of ours each). */
INLINE size_t act_offset(const int B, int k, int j) {
    if (B == 8) return (size_t)k * 32;
    if (B >= 4) return (size_t)(k / 2) * 128 + (size_t)j * 64 + (size_t)(k % 2) * 32;
    return (size_t)(k / 2) * 256 + (size_t)j * 64 + (size_t)(k % 2) * 32;
}

/* Superblocks sb0 .. sb1-1 of weight rows o .. o+O-1 against activation rows r0 .. r0+R-1 (R * O <= MAXT), into
 * the tile's accumulators, as the AVX-512 tile. WHOLE: they are whole (16 chunks in the row), so no superblock
 * needs a bound or a partial block (decode runs its rows' whole superblocks so, the last partial one not). */
INLINE void tile_supers(const int B, const int VNNI, const int R, const int O, const int WHOLE, const ptq_qweight *w,
                        const ptq_a8 *a, const __m256i gidx[2], int o, int r0, int sb0, int sb1, __m256 acc[MAXT][2],
                        __m256 zacc[MAXT]) {
    const int CPB = B == 8 ? 1 : (B >= 4 ? 2 : 4); /* chunks per block */
    const int NV = B == 8 ? 1 : (B >= 4 ? 2 : 4);  /* 32-byte code vectors per block */
    const size_t cb = 4u * (size_t)B;              /* code bytes per chunk */
    const int nch = a->nchunks;
    const int cpg = w->group % PTQ_QCHUNK == 0 ? w->group / PTQ_QCHUNK : nch;
    const size_t nc = (size_t)a->nsuper * PTQ_A8_SUPER;
    const int gshift = ptq_a8_group_shift(cpg);
    const uint8_t *codes = w->codes + (size_t)o * w->row_bytes;
    /* lane m of block k takes the scale of chunk CPB k + m / (8 / CPB), from half (CPB k) / 8 */
    for (int sb = sb0; sb < sb1; sb++) {
        const int c0 = sb * PTQ_A8_SUPER;
        const int n = WHOLE || nch - c0 >= PTQ_A8_SUPER ? PTQ_A8_SUPER : nch - c0;
        const int g0 = ptq_a8_group_of(c0, cpg, gshift), g1 = ptq_a8_group_of(c0 + n - 1, cpg, gshift);
        __m256 sc[MAXT][2];
        if (R == 1) ptq_a8_prefetch_super(w, o, c0, g0, sb);
#pragma GCC unroll 4
        for (int i = 0; i < O; i++) {
            __m256 s[2];
            __m256i z[2];
            sb_scales(w, o + i, c0, n, cpg, g0, g1, gidx, s, z);
            if (B == 8 && !VNNI) { /* the codes were taken as u - 128 */
                z[0] = _mm256_sub_epi32(z[0], _mm256_set1_epi32(128));
                z[1] = _mm256_sub_epi32(z[1], _mm256_set1_epi32(128));
            }
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                const size_t ro = (size_t)(r0 + r) * nc + (size_t)c0;
                const int t = i * R + r;
#pragma GCC unroll 4
                for (int h = 0; h < 2; h++) {
                    sc[t][h] = _mm256_mul_ps(s[h], _mm256_loadu_ps(a->d + ro + 8 * h));
                    const __m256i zq =
                        _mm256_mullo_epi32(z[h], _mm256_loadu_si256((const __m256i *)(a->qsum + ro + 8 * h)));
                    zacc[t] = _mm256_fmadd_ps(sc[t][h], _mm256_cvtepi32_ps(zq), zacc[t]);
                }
            }
        }
        UNROLL_BLOCKS
        for (int k = 0; k < PTQ_A8_SUPER / CPB; k++) {
            if (!WHOLE && k * CPB >= n) break;
            const int cb0 = c0 + k * CPB;
            int32_t li[8];
            for (int m = 0; m < 8; m++) li[m] = (CPB * k + m / (8 / CPB)) % 8;
            const __m256i lane_idx = _mm256_loadu_si256((const __m256i *)li); /* a constant once unrolled */
            __m256i v[MAXT][4];
#pragma GCC unroll 4
            for (int i = 0; i < O; i++) {
                const uint8_t *p = codes + (size_t)i * w->row_bytes + (size_t)cb0 * cb;
                _Alignas(32) uint8_t tail[64];
                if (!WHOLE && nch - cb0 < CPB) { /* partial block: the rest of the row, zero-padded */
                    memset(tail, 0, sizeof tail);
                    memcpy(tail, p, (size_t)(nch - cb0) * cb);
                    p = tail;
                }
                unpack_block(B, p, v[i]);
            }
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                const int8_t *x = a->q + (size_t)(r0 + r) * a->ld + (size_t)c0 * PTQ_QCHUNK;
                __m256i xv[4];
#pragma GCC unroll 4
                for (int j = 0; j < NV; j++) xv[j] = _mm256_loadu_si256((const __m256i *)(x + act_offset(B, k, j)));
#pragma GCC unroll 4
                for (int i = 0; i < O; i++) {
                    const int t = i * R + r;
                    const __m256 f = _mm256_cvtepi32_ps(block_dot(B, VNNI, v[i], xv));
                    const __m256 scl = _mm256_permutevar8x32_ps(sc[t][(CPB * k) / 8], lane_idx);
                    acc[t][k & 1] = _mm256_fmadd_ps(f, scl, acc[t][k & 1]);
                }
            }
        }
    }
}

/* Weight rows o .. o+O-1 against activation rows r0 .. r0+R-1 (R * O <= MAXT). */
INLINE void tile_kernel(const int B, const int VNNI, const int R, const int O, const ptq_qweight *w, const ptq_a8 *a,
                        const __m256i gidx[2], float *y, int o, int r0) {
    __m256 acc[MAXT][2], zacc[MAXT];
#pragma GCC unroll 4
    for (int t = 0; t < R * O; t++) acc[t][0] = acc[t][1] = zacc[t] = _mm256_setzero_ps();
    const int whole = R == 1 ? a->nchunks / PTQ_A8_SUPER : 0; /* decode only: fewer loops to compile */
    if (whole) tile_supers(B, VNNI, R, O, 1, w, a, gidx, o, r0, 0, whole, acc, zacc);
    tile_supers(B, VNNI, R, O, 0, w, a, gidx, o, r0, whole, a->nsuper, acc, zacc);
#pragma GCC unroll 4
    for (int i = 0; i < O; i++)
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const int t = i * R + r;
            const __m256 v = _mm256_sub_ps(_mm256_add_ps(acc[t][0], acc[t][1]), zacc[t]);
            __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            h = _mm_add_ps(h, _mm_movehl_ps(h, h));
            h = _mm_add_ss(h, _mm_movehdup_ps(h));
            y[(size_t)(r0 + r) * (size_t)w->out + (size_t)(o + i)] = _mm_cvtss_f32(h);
        }
}

INLINE void gemv_bits(const int B, const int VNNI, const ptq_qweight *w, const ptq_a8 *a, float *y, int o0, int o1) {
    const int cpg = w->group % PTQ_QCHUNK == 0 ? w->group / PTQ_QCHUNK : a->nchunks;
    __m256i gidx[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    if (cpg > 1 && PTQ_A8_SUPER % cpg == 0)
        for (int h = 0; h < 2; h++) {
            int32_t gi[8];
            for (int k = 0; k < 8; k++) gi[k] = (8 * h + k) / cpg;
            gidx[h] = _mm256_loadu_si256((const __m256i *)gi);
        }
    /* decode (one activation row): one weight row per tile, as the AVX-512 kernel measured best when the
       weights stream from memory */
    for (int r0 = 0; r0 < a->rows;) {
        const int left = a->rows - r0;
        for (int o = o0; o < o1; o++) switch (left >= 4 ? 4 : left) {
            case 1: tile_kernel(B, VNNI, 1, 1, w, a, gidx, y, o, r0); break;
            case 2: tile_kernel(B, VNNI, 2, 1, w, a, gidx, y, o, r0); break;
            case 3: tile_kernel(B, VNNI, 3, 1, w, a, gidx, y, o, r0); break;
            default: tile_kernel(B, VNNI, 4, 1, w, a, gidx, y, o, r0); break;
            }
        r0 += left >= 4 ? 4 : left;
    }
}

void ptq_qgemv_a8_avx2(const ptq_qweight *w, const ptq_a8 *a, float *y, int o0, int o1) {
    switch (w->bits) {
    case 2: gemv_bits(2, 0, w, a, y, o0, o1); break;
    case 3: gemv_bits(3, 0, w, a, y, o0, o1); break;
    case 4: gemv_bits(4, 0, w, a, y, o0, o1); break;
    case 5: gemv_bits(5, 0, w, a, y, o0, o1); break;
    case 6: gemv_bits(6, 0, w, a, y, o0, o1); break;
    case 7: gemv_bits(7, 0, w, a, y, o0, o1); break;
    case 8: gemv_bits(8, 0, w, a, y, o0, o1); break;
    default: break;
    }
}

__attribute__((target("avx2,fma,f16c,avxvnni"))) void ptq_qgemv_a8_avxvnni(const ptq_qweight *w, const ptq_a8 *a,
                                                                           float *y, int o0, int o1) {
    switch (w->bits) {
    case 2: gemv_bits(2, 1, w, a, y, o0, o1); break;
    case 3: gemv_bits(3, 1, w, a, y, o0, o1); break;
    case 4: gemv_bits(4, 1, w, a, y, o0, o1); break;
    case 5: gemv_bits(5, 1, w, a, y, o0, o1); break;
    case 6: gemv_bits(6, 1, w, a, y, o0, o1); break;
    case 7: gemv_bits(7, 1, w, a, y, o0, o1); break;
    case 8: gemv_bits(8, 1, w, a, y, o0, o1); break;
    default: break;
    }
}

/* Activation quantization for the AVX2 kernels, bit for bit the scalar one (qgemv_a8.c): the same float
 * operations (max |x|, d = max / 127, x * (1 / d), round to nearest even, clamp), 8 lanes at a time, the
 * codes stored straight into the kernels' order for w->bits (the AVX-512 order). */
void ptq_a8_quant_rows_avx2(const ptq_qweight *w, const float *x, int rows, ptq_a8 *a) {
    const int nch = a->nchunks, B = w->bits;
    const size_t nc = (size_t)a->nsuper * PTQ_A8_SUPER;
    const __m256 lim = _mm256_set1_ps(127.0f), nlim = _mm256_set1_ps(-127.0f);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * (size_t)w->in;
        int8_t *qr = a->q + (size_t)r * a->ld;
        float *dr = a->d + (size_t)r * nc;
        int32_t *sr = a->qsum + (size_t)r * nc;
        memset(qr, 0, a->ld); /* padding chunks sit between real ones in the 4/2/3-bit orders */
        for (size_t c = (size_t)nch; c < nc; c++) dr[c] = 0.0f, sr[c] = 0;
        for (int c = 0; c < nch; c++) {
            const int j0 = c * PTQ_QCHUNK, n = w->in - j0 < PTQ_QCHUNK ? w->in - j0 : PTQ_QCHUNK;
            _Alignas(32) float t[PTQ_QCHUNK];
            const float *src = xr + j0;
            if (w->perm || n < PTQ_QCHUNK) {
                memset(t, 0, sizeof t);
                for (int k = 0; k < n; k++) t[k] = xr[w->perm ? w->perm[j0 + k] : j0 + k];
                src = t;
            }
            __m256 v[4], m = _mm256_setzero_ps();
            for (int i = 0; i < 4; i++) {
                v[i] = _mm256_loadu_ps(src + 8 * i);
                v[i] = _mm256_and_ps(v[i], _mm256_cmp_ps(v[i], v[i], _CMP_ORD_Q)); /* NaN -> 0 */
                m = _mm256_max_ps(m, _mm256_and_ps(v[i], absmask));
            }
            __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            h = _mm_max_ps(h, _mm_movehl_ps(h, h));
            h = _mm_max_ss(h, _mm_movehdup_ps(h));
            const float d = _mm_cvtss_f32(h) / 127.0f;
            const __m256 id = _mm256_set1_ps(d > 0.0f ? 1.0f / d : 0.0f);
            __m256i q[4], s = _mm256_setzero_si256();
            for (int i = 0; i < 4; i++) {
                __m256 p = _mm256_mul_ps(v[i], id);
                p = _mm256_and_ps(p, _mm256_cmp_ps(p, p, _CMP_ORD_Q)); /* Inf * 0 -> 0 */
                const __m256 rq = _mm256_round_ps(p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                q[i] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(rq, nlim), lim));
                s = _mm256_add_epi32(s, q[i]);
            }
            __m128i hs = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            hs = _mm_add_epi32(hs, _mm_shuffle_epi32(hs, 0x4e));
            hs = _mm_add_epi32(hs, _mm_shuffle_epi32(hs, 0xb1));
            dr[c] = d;
            sr[c] = _mm_cvtsi128_si32(hs);
            /* int32 -> int8, columns in order (packs work per 128-bit lane: undo with a dword permutation) */
            const __m256i p16a = _mm256_packs_epi32(q[0], q[1]), p16b = _mm256_packs_epi32(q[2], q[3]);
            const __m256i p8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p16a, p16b),
                                                           _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            const __m128i b0 = _mm256_castsi256_si128(p8), b1 = _mm256_extracti128_si256(p8, 1); /* 0-15, 16-31 */
            if (B >= 4 && B <= 7) {
                int8_t *p = qr + (size_t)(c / 4) * 128 + (size_t)(c % 4) * 16;
                _mm_storeu_si128((__m128i *)p, b0);
                _mm_storeu_si128((__m128i *)(p + 64), b1);
            } else if (B == 2 || B == 3) {
                int8_t *p = qr + (size_t)(c / 8) * 256 + (size_t)(c % 8) * 8;
                _mm_storel_epi64((__m128i *)p, b0);
                _mm_storel_epi64((__m128i *)(p + 64), _mm_unpackhi_epi64(b0, b0));
                _mm_storel_epi64((__m128i *)(p + 128), b1);
                _mm_storel_epi64((__m128i *)(p + 192), _mm_unpackhi_epi64(b1, b1));
            } else {
                _mm256_storeu_si256((__m256i *)(qr + (size_t)c * 32), p8);
            }
        }
    }
}
