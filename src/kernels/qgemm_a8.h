/* Prefill GEMM of packed low-bit weights (qweight.h) against int8 activations (qgemv_a8.h).
 *
 * The decode GEMV kernel (qgemv_a8_avx512.c) unpacks every weight block again for every 4 activation
 * rows and reduces each output horizontally: fine for a handful of rows, wasteful for a prompt. This
 * GEMM computes the same sums,
 *     y[r][o] = sum_c (s[o][g(c)] * d[r][c]) * (dot_c - z[o][g(c)] * qsum[r][c]),
 * with the same float operations in the same order (chunks ascending, the exact int32 term converted,
 * multiplied by s * d, added), so it matches ptq_qgemv_a8_scalar up to compiler contraction: in this
 * project's builds (no FMA contraction) the results are identical.
 *
 * How (qgemm_a8_avx512.c, AVX-512 VNNI only):
 *   - a tile of 64 output rows x KC chunks of weight codes is unpacked once into a per-thread buffer as
 *     unsigned bytes in panels of 16 outputs (quad k of panel p: 64 bytes, int32 lane i = the 4 codes
 *     of output 16 p + i at columns 4 k .. 4 k + 3: the layout of i8gemm.h), with the tile's scales
 *     (float) and zero points (int32) per chunk and output;
 *   - a register-blocked micro-kernel walks MR activation rows x NR panels: per chunk the int32
 *     accumulators start at -z * qsum (vpmulld), take 8 vpdpbusd per (row, panel) (4 activation codes
 *     broadcast x 16 outputs x 4 codes), then are converted and scaled into float accumulators;
 *   - threads take (64-output block, row block) work items; each item walks K in blocks of KC chunks,
 *     keeping its float partial sums in y between blocks.
 * Activations are quantized in the natural order (column j of chunk c at 32 c + j: the 8-bit order).
 */
#ifndef PTQ_KERNELS_QGEMM_A8_H
#define PTQ_KERNELS_QGEMM_A8_H

#include <stddef.h>

#include "kernels/qgemv_a8.h"
#include "kernels/qweight.h"

/* Fewest input rows for which ptq_qgemm_a8_isa takes this GEMM rather than the GEMV kernel
 * (measured with bench_qgemm_a8 --crossover, docs/RESULTS.md). */
#define PTQ_QGEMM_A8_MIN_ROWS 16

/* Whether the GEMM runs on this CPU (AVX-512 F/BW/VL + VNNI, as ptq_a8_supported(PTQ_ISA_AVX512)). */
int ptq_qgemm_a8_supported(void);

/* y [a->rows][w->out] from activations a quantized in the natural order (ptq_a8_quantize with
 * PTQ_ISA_SCALAR, or ptq_qgemm_a8_quantize), threaded. Returns 0 when it could not run (CPU without
 * the instructions, bits outside 2..8, no memory for the per-thread tiles); y is then
 * unspecified. */
int ptq_qgemm_a8_gemm(const ptq_qweight *w, const ptq_a8 *a, float *y);

/* Quantizes x [rows][in] into a, natural order (scratch: ptq_a8_scratch_bytes(w->in, rows), 64-byte
 * aligned); the same codes and scales as ptq_a8_quantize. */
void ptq_qgemm_a8_quantize(const ptq_qweight *w, const float *x, int rows, void *scratch, ptq_a8 *a);

/* y [rows][out] = x W^T through int8 activations with this GEMM: quantize, multiply. Returns 0 (and
 * writes nothing useful) when it cannot run (as ptq_qgemm_a8_gemm, or no memory for the activation
 * codes); the caller falls back. */
int ptq_qgemm_a8_tiled(const ptq_qweight *w, const float *x, int rows, float *y);

/* ---------------------------------------------------------------- internal: driver <-> kernel */

/* How many blocks of input rows a GEMM's work items split the rows into, next to out_blocks blocks of outputs: 1
   unless the output blocks leave threads idle, and blocks of at least min_rows rows (one unpacked tile serves them
   all). Shared with the k-quant GEMM (ggml_gemm.c). */
int ptq_gemm_row_blocks(int out_blocks, int rows, int threads, int min_rows);

#define PTQ_QA8_NB 64 /* output rows per tile (4 panels of 16) */
#define PTQ_QA8_KC 64 /* chunks (of 32 columns) per K block (2048 columns; 1024 or 4096: no faster) */

/* Bytes of one thread's tile buffer (64-byte aligned). */
size_t ptq_qa8_tile_bytes(void);

/* y[r][o] for r in [r0, r1), o in [o0, o1) (o0 a multiple of PTQ_QA8_NB, o1 - o0 <= PTQ_QA8_NB),
 * single-threaded, with tile as the unpacking buffer. */
void ptq_qgemm_a8_block_avx512(const ptq_qweight *w, const ptq_a8 *a, float *y, int r0, int r1, int o0, int o1,
                               void *tile);

#endif
