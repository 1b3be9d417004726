/* The AVX-512 VNNI GEMV kernel of qgemv_a8_avx512.c for 2-bit codes, with their unpacking on GFNI
 * (PTQ_A8_GFNI in qgemv_a8_avx512_tile.h): per 64 codes one affine byte map (vgf2p8affineqb) instead of a shift
 * and a mask. The codes, and so the outputs, are the same bit for bit. Compiled with -mgfni; called only when the
 * CPU has it (ptq_a8_gfni_supported: Ice Lake and later, Zen 4 and later; not Skylake-X or Cascade Lake).
 * 3-bit codes stay on the plain kernel: with this unpacking (and with AVX512_BITALG's vpshufbitqmb for their third
 * bit) they decoded 2-5% slower on TinyLlama's shapes (docs/RESULTS.md §26). */
#define PTQ_A8_GFNI 1
#include "kernels/qgemv_a8_avx512_tile.h"

GEMV_WIDTH(2)

void ptq_qgemv_a8_avx512_gfni_tiled(const ptq_qweight *w, const ptq_a8 *a, float *y, int o0, int o1, int tile) {
    if (w->bits == 2) gemv_2(w, a, y, o0, o1, tile);
}
