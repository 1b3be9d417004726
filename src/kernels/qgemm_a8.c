/* Driver of the int8-activation prefill GEMM (qgemm_a8.h): activation quantization in the natural
 * order, per-thread tile buffers, work items over (64-output block, row block). */
#include <omp.h>
#include <stdlib.h>

#include "kernels/qgemm_a8.h"

#define ROW_BLOCK_MIN 32 /* rows per work item when the rows are split: the unpacked tile serves them all */

int ptq_qgemm_a8_supported(void) { return ptq_a8_supported(PTQ_ISA_AVX512); }

void ptq_qgemm_a8_quantize(const ptq_qweight *w, const float *x, int rows, void *scratch, ptq_a8 *a) {
    /* the 8-bit order is the natural one: quantize as for 8-bit codes (bits only picks the order) */
    ptq_qweight w8 = *w;
    w8.bits = 8;
    ptq_a8_quantize(ptq_qgemm_a8_supported() ? PTQ_ISA_AVX512 : PTQ_ISA_SCALAR, &w8, x, rows, scratch, a);
}

int ptq_gemm_row_blocks(int out_blocks, int rows, int threads, int min_rows) {
    if (out_blocks >= 2 * threads) return 1; /* split rows only when the output blocks alone leave threads idle */
    const int most = (rows + min_rows - 1) / min_rows;
    int nrb = (2 * threads + out_blocks - 1) / out_blocks;
    nrb = nrb > most ? most : nrb;
    return nrb < 1 ? 1 : nrb;
}

int ptq_qgemm_a8_gemm(const ptq_qweight *w, const ptq_a8 *a, float *y) {
    if (!ptq_qgemm_a8_supported() || w->bits < 2 || w->bits > 8) return 0;
    if (a->rows <= 0 || w->out <= 0) return 1;
    const int nt = omp_get_max_threads();
    const int nob = (w->out + PTQ_QA8_NB - 1) / PTQ_QA8_NB;
    const int nrb = ptq_gemm_row_blocks(nob, a->rows, nt, ROW_BLOCK_MIN);
    const int rb = (a->rows + nrb - 1) / nrb;
    const int items = nob * nrb;
    const int nthr = items < nt ? items : nt;
    const size_t tb = ptq_qa8_tile_bytes();
    uint8_t *tiles = aligned_alloc(64, tb * (size_t)nthr);
    if (!tiles) return 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthr) if (nthr > 1)
    for (int it = 0; it < items; it++) {
        const int ob = it / nrb, rbi = it % nrb;
        const int o0 = ob * PTQ_QA8_NB, o1 = o0 + PTQ_QA8_NB < w->out ? o0 + PTQ_QA8_NB : w->out;
        const int r0 = rbi * rb, r1 = r0 + rb < a->rows ? r0 + rb : a->rows;
        if (r0 < r1) ptq_qgemm_a8_block_avx512(w, a, y, r0, r1, o0, o1, tiles + tb * (size_t)omp_get_thread_num());
    }
    free(tiles);
    return 1;
}

int ptq_qgemm_a8_tiled(const ptq_qweight *w, const float *x, int rows, float *y) {
    if (!ptq_qgemm_a8_supported()) return 0;
    if (rows <= 0 || w->out <= 0 || w->in <= 0) return 1;
    void *scratch = aligned_alloc(64, ptq_a8_scratch_bytes(w->in, rows));
    if (!scratch) return 0;
    ptq_a8 a;
    ptq_qgemm_a8_quantize(w, x, rows, scratch, &a);
    const int ok = ptq_qgemm_a8_gemm(w, &a, y);
    free(scratch);
    return ok;
}
