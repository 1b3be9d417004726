/* Decode GEMV of packed low-bit weights (qweight.h) against int8-quantized activations.
 *
 * The float-activation kernels (qgemm_*.c) turn every code into a float and run one FMA per weight:
 * on AVX-512 that is compute-bound well below the memory bandwidth. Here the activations are
 * quantized once per call, as llama.cpp's q8_0 activations: per 32-column chunk c of the permuted,
 * zero-padded input row,
 *     d[c]    = max_j |x[c][j]| / 127                (0 for an all-zero chunk)
 *     a[c][j] = round_half_even(x[c][j] / d[c])      in [-127, 127]
 *     qsum[c] = sum_j a[c][j]
 * and each output is a sum of exact integer dot products, one float scale per chunk:
 *     y[o] = sum_c (s[o][g(c)] * d[c]) * (dot_c - z[o][g(c)] * qsum[c]),   dot_c = sum_j q[o][c][j] a[c][j]
 * With AVX-512 VNNI one vpdpbusd multiplies 64 unsigned weight codes by 64 signed activation codes;
 * the AVX2 kernels (qgemv_a8_avx2.c) do 32 at a time with vpmaddubsw or AVX-VNNI.
 *
 * Accuracy: |x - d a| <= d / 2 per element, so |y_a8 - y_float| <= sum_c |s| d[c] / 2 sum_j |q - z|
 * (test_qgemv_a8 checks this bound against the float path). This is NOT the float-activation result:
 * it is selected per weight (ptq_qweight_set_act8) and off by default, so every path compared with
 * a reference stays exact.
 *
 * Activation layouts ("order"), so that one 64-byte load of codes lines up with 64 activation codes:
 *   natural (scalar, and 8 bits): column j of chunk c at 32 c + j;
 *   4 bits (and 5-7 bits, whose low nibbles are laid out as 4 bits), blocks of 4 chunks (128 columns): the low nibbles of the 64 code bytes are columns 0-15
 *           of chunks 0-3, the high nibbles columns 16-31: column j of chunk c (c < 4) sits at
 *           16 c + j (j < 16) or 64 + 16 c + j - 16;
 *   2 and 3 bits, blocks of 8 chunks (256 columns): shifting the 64 (2-bit) low-bit bytes by 2i gives
 *           columns 8i..8i+7 of chunks 0-7: column j of chunk c sits at 64 (j / 8) + 8 c + j % 8.
 * Rows of activation codes are zero-padded to a whole number of 16-chunk superblocks (d = 0 there).
 */
#ifndef PTQ_KERNELS_QGEMV_A8_H
#define PTQ_KERNELS_QGEMV_A8_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/qweight.h"

#define PTQ_A8_SUPER 16 /* chunks per superblock (the unit of the scale vectors) */

/* Quantized activations for `rows` input rows of one layer. */
typedef struct ptq_a8 {
    int rows;
    int nchunks;   /* ceil(in / 32) */
    int nsuper;    /* ceil(nchunks / 16) */
    size_t ld;     /* bytes per row of q: nsuper * 512 */
    int8_t *q;     /* [rows][ld], in the kernel's order */
    float *d;      /* [rows][nsuper * 16] */
    int32_t *qsum; /* [rows][nsuper * 16] */
} ptq_a8;

/* The group of chunk c with cpg chunks per group, by a shift where cpg is a power of two
 * (shift = ptq_a8_group_shift(cpg), else -1): kernels ask once per superblock, and an integer
 * division there measured as much as the dot products of a 4-bit superblock. */
static inline int ptq_a8_group_shift(int cpg) { return cpg > 0 && (cpg & (cpg - 1)) == 0 ? __builtin_ctz((unsigned)cpg) : -1; }
static inline int ptq_a8_group_of(int c, int cpg, int shift) { return shift >= 0 ? c >> shift : c / cpg; }

/* PTQ_A8_UNROLL(n): "#pragma GCC unroll n" for the kernels' loop over the blocks of a superblock (so that the block
 * index is a constant and the accumulators stay in registers), and nothing under AddressSanitizer (GCC's or
 * clang's): GCC's UBSan instrumentation makes it drop the annotation with a warning (an error under -Werror), and
 * clang's fuzz build took minutes per kernel file unrolled; the speed of those builds does not matter. */
#define PTQ_A8_PRAGMA(x) _Pragma(#x)
#if defined(__SANITIZE_ADDRESS__)
#define PTQ_A8_UNROLL(n)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PTQ_A8_UNROLL(n)
#endif
#endif
#ifndef PTQ_A8_UNROLL
#define PTQ_A8_UNROLL(n) PTQ_A8_PRAGMA(GCC unroll n)
#endif

/* Decode streams each weight byte once, from memory: the kernels fetch PTQ_A8_PREFETCH bytes ahead in
 * the codes (and as far ahead in the scales and zero points), at the start of each superblock of
 * weight row o. On 4096x14336 W4 g32 (AMD Zen 5, 2 threads) the AVX-512 kernel reading one row at a
 * time streams 47 GB/s with it and about 30 without (docs/RESULTS.md §25). Rows are
 * contiguous, so near the end of a row this fetches the next one; past the last row it is harmless
 * (a prefetch never faults). */
#ifndef PTQ_A8_PREFETCH /* -DPTQ_A8_PREFETCH=N to try another distance (2048-16384: none better, RESULTS §26) */
#define PTQ_A8_PREFETCH 4096
#endif
/* always_inline: a function whose only effects are prefetches counts as pure for GCC 12's interprocedural
 * analysis, and a call to it that was not inlined early is deleted as dead code (the AVX2 kernels and the
 * AVX-512 single-row tile lost every prefetch that way until the attribute). */
#define PTQ_A8_PREFETCH_FN static inline __attribute__((always_inline)) void
PTQ_A8_PREFETCH_FN ptq_a8_prefetch_super(const ptq_qweight *w, int o, int c0, int g0, int sb) {
    const size_t code_bytes = (size_t)PTQ_A8_SUPER * 4u * (size_t)w->bits; /* of one superblock */
    const char *p = (const char *)(w->codes + (size_t)o * w->row_bytes + (size_t)c0 * 4u * (size_t)w->bits);
    for (size_t l = 0; l < code_bytes; l += 64) __builtin_prefetch(p + PTQ_A8_PREFETCH + l, 0, 3);
    if (sb % 2 == 0) { /* 16 chunks of scales are at most 32 bytes: one line serves two superblocks */
        const size_t ahead = (size_t)PTQ_A8_PREFETCH * (size_t)w->n_groups / w->row_bytes; /* groups */
        const size_t g = (size_t)o * (size_t)w->n_groups + (size_t)g0 + ahead;
        __builtin_prefetch(w->scales + g, 0, 3);
        if (w->zeros) __builtin_prefetch(w->zeros + g, 0, 3);
    }
}

/* The same for stream i of a decode tile of O weight rows o .. o+O-1 (read side by side, qgemv_a8_avx512_tile.h):
 * each stream fetches PTQ_A8_PREFETCH / O bytes ahead in its own row, and past the row's end in row i + O,
 * which the next tile reads at the same place (the rows right after this row belong to this tile's other
 * streams, already being read). cb: code bytes per chunk; shift: ptq_a8_group_shift(cpg). */
PTQ_A8_PREFETCH_FN ptq_a8_prefetch_tile(const ptq_qweight *w, int o, int next, int O, size_t cb, int c0, int sb, int cpg,
                                        int shift) {
    const size_t rb = w->row_bytes;
    size_t row = (size_t)o, off = (size_t)c0 * cb + (size_t)PTQ_A8_PREFETCH / (size_t)O;
    while (off >= rb) off -= rb, row += (size_t)next;
    const char *p = (const char *)(w->codes + row * rb + off);
    for (size_t l = 0; l < (size_t)PTQ_A8_SUPER * cb; l += 64) __builtin_prefetch(p + l, 0, 3);
    if (sb % 2 == 0) {
        const size_t g = row * (size_t)w->n_groups + (size_t)ptq_a8_group_of((int)(off / cb), cpg, shift);
        __builtin_prefetch(w->scales + g, 0, 3);
        if (w->zeros) __builtin_prefetch(w->zeros + g, 0, 3);
    }
}

/* Whether the int8-activation kernels run for isa on this CPU (AVX-512 needs VNNI too; AVX2 takes
 * AVX-VNNI where the CPU has it, else vpmaddubsw). */
int ptq_a8_supported(ptq_isa isa);

/* The fastest int8-activation kernel this CPU runs: AVX-512 VNNI, else AVX2, else the scalar reference. */
ptq_isa ptq_a8_isa_best(void);

/* Bytes of scratch ptq_a8_quantize needs for rows x in (64-byte aligned pieces included). */
size_t ptq_a8_scratch_bytes(int in, int rows);

/* Quantizes x [rows][in] (permuted by w->perm when set) into a, whose arrays are carved from
 * scratch (at least ptq_a8_scratch_bytes(w->in, rows) bytes, 64-byte aligned), in the order of the
 * kernel for (isa, w->bits). NaN becomes 0; an infinite x gives its chunk d = Inf and codes 0
 * (so the chunk's terms, and the outputs, are NaN or infinite: no finite answer hides it). */
void ptq_a8_quantize(ptq_isa isa, const ptq_qweight *w, const float *x, int rows, void *scratch, ptq_a8 *a);

/* ptq_a8_quantize's work after the layout is set, for isa AVX-512 / AVX2 (the same codes and scales). */
void ptq_a8_quant_rows_avx512(const ptq_qweight *w, const float *x, int rows, ptq_a8 *a);
void ptq_a8_quant_rows_avx2(const ptq_qweight *w, const float *x, int rows, ptq_a8 *a);

/* y[r][o] for o in [o0, o1), every row of a (single-threaded). */
void ptq_qgemv_a8_scalar(const ptq_qweight *w, const ptq_a8 *a, float *y, int o0, int o1);
void ptq_qgemv_a8_avx512(const ptq_qweight *w, const ptq_a8 *a, float *y, int o0, int o1);
/* The same with the decode tile forced (1: one row at a time, 2: two adjacent rows side by side, 3: two rows from
 * the two halves of [o0, o1) side by side; 0: the kernel's choice), for tests and bench_qgemv --tiles: every tile
 * gives the same outputs bit for bit. */
void ptq_qgemv_a8_avx512_tiled(const ptq_qweight *w, const ptq_a8 *a, float *y, int o0, int o1, int tile);
/* Those two unpack 2-bit codes with GFNI where the CPU has it (ptq_a8_gfni_supported):
 * ptq_qgemv_a8_avx512_gfni_tiled (2 bits only; qgemv_a8_avx512_gfni.c). _vnni_tiled never does (every width); the
 * three give the same outputs bit for bit. */
int ptq_a8_gfni_supported(void);
void ptq_qgemv_a8_avx512_gfni_tiled(const ptq_qweight *w, const ptq_a8 *a, float *y, int o0, int o1, int tile);
void ptq_qgemv_a8_avx512_vnni_tiled(const ptq_qweight *w, const ptq_a8 *a, float *y, int o0, int o1, int tile);
/* AVX2 (vpmaddubsw) and AVX-VNNI (vpdpbusd on ymm): the same activation order as AVX-512. */
void ptq_qgemv_a8_avx2(const ptq_qweight *w, const ptq_a8 *a, float *y, int o0, int o1);
void ptq_qgemv_a8_avxvnni(const ptq_qweight *w, const ptq_a8 *a, float *y, int o0, int o1);

/* y [rows][out] = x W^T through int8 activations, with the kernel for isa (scalar where the CPU
 * lacks it), threads over weight rows. Needs no allocation when ptq_a8_scratch_bytes(in, rows) fits
 * in PTQ_A8_STACK bytes; otherwise one heap buffer, and if that fails the float-activation path. */
#define PTQ_A8_STACK 65536
void ptq_qgemm_a8_isa(ptq_isa isa, const ptq_qweight *w, const float *x, int rows, float *y);

/* Several weights applied to the same input x (a block's q, k and v; gate and up), n <= PTQ_A8_MULTI:
 * ys[i] [rows][ws[i]->out] = x ws[i]^T, exactly as n calls of ptq_qgemm_a8_isa would give. Decoding
 * (fewer than PTQ_QGEMM_A8_MIN_ROWS rows) quantizes x once and runs all the rows in one parallel
 * region when the weights can share the activation codes (ptq_a8_can_share); otherwise n calls. */
#define PTQ_A8_MULTI 4
void ptq_qgemm_a8_multi(ptq_isa isa, const ptq_qweight *const *ws, int n, const float *x, int rows, float *const *ys);

/* Whether a and b read the same activation codes for isa: the same input width, column permutation
 * and activation order (their storage widths). */
int ptq_a8_can_share(ptq_isa isa, const ptq_qweight *a, const ptq_qweight *b);

#endif
