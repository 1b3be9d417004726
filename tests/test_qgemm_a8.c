/* The int8-activation prefill GEMM (src/kernels/qgemm_a8.h) on random layers of every bit width
 * (2, 3, 4, 8), group 32, 64, 96, 128 and per channel, with and without act-order, odd shapes (in not
 * a multiple of 32, more than one K block of PTQ_QA8_KC chunks; out not a multiple of the 16-output
 * panels or the 64-output tiles), 1..300 input rows:
 * - against a double reference computed here from the codes the layer was packed from (never from
 *   the library's unpacking) and the activation codes: within 1e-5 of the sum of |terms| (float
 *   rounding only; each chunk's integer dot product is exact);
 * - against the scalar reference kernel ptq_qgemv_a8_scalar on the same activations: within 1e-6 of
 *   the sum of |terms|. The GEMM performs the scalar kernel's float operations in its order, so the
 *   results are in fact identical in this project's builds; the count of bit-identical outputs is
 *   printed, the tolerance only allows for a compiler contracting the reference's multiply-add;
 * - the whole call from float input (ptq_qgemm_a8_tiled, and ptq_qgemm_a8_isa from PTQ_QGEMM_A8_MIN_ROWS
 *   rows on) against ptq_qgemm_a8_isa with the scalar kernel (the same activation codes: the quantizers
 *   are bit for bit the same), same tolerance (below the threshold: the GEMV kernel's 2e-5).
 * Skipped (exit 77) on CPUs without AVX-512 VNNI, failed there under CI=true only if the CPU has it.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "kernels/qgemm_a8.h"
#include "kernels/qgemv_a8.h"
#include "kernels/qweight.h"
#include "qlayer.h"
#include "testutil.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void) { return tu_next(&rng_state); }

static float urand(float lo, float hi) { return tu_urand(&rng_state, lo, hi); }

typedef tu_layer layer;

static int sym_pass; /* 1: the layers stored without zero points (a symmetric grid), as quantize --sym makes them */

static layer make_layer(int bits, int in, int out, int group, int with_perm) {
    layer L = tu_make_layer(&rng_state, bits, in, out, group, with_perm);
    if (sym_pass) tu_drop_zeros(&L);
    return L;
}

#define free_layer tu_free_layer

static long g_exact, g_compared;

/* One layer, `rows` input rows: the three comparisons of the header. */
static void check_case(int bits, int in, int out, int group, int perm, int rows) {
    layer L = make_layer(bits, in, out, group, perm);
    const ptq_qweight *w = &L.w;
    float *x = malloc(sizeof(float) * (size_t)rows * (size_t)in);
    for (size_t i = 0; i < (size_t)rows * (size_t)in; i++) x[i] = urand(-2.0f, 2.0f) * ((rnd() & 15) == 0 ? 8.0f : 1.0f);
    const size_t outn = (size_t)rows * (size_t)out;
    float *yg = malloc(sizeof(float) * outn), *ys = malloc(sizeof(float) * outn), *yt = malloc(sizeof(float) * outn),
          *yi = malloc(sizeof(float) * outn), *yq = malloc(sizeof(float) * outn);
    double *ref = malloc(sizeof(double) * outn), *mag = malloc(sizeof(double) * outn);
    void *scratch = aligned_alloc(64, ptq_a8_scratch_bytes(in, rows));
    ptq_a8 a;
    ptq_a8_quantize(PTQ_ISA_SCALAR, w, x, rows, scratch, &a); /* natural order */

    /* double reference from the unpacked-by-construction codes L.q */
    const int nch = a.nchunks, cpg = group % 32 == 0 ? group / 32 : nch;
    const size_t nc = (size_t)a.nsuper * PTQ_A8_SUPER;
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            double s = 0.0, m = 0.0;
            for (int c = 0; c < nch; c++) {
                long dot = 0;
                for (int j = 0; j < 32 && c * 32 + j < in; j++)
                    dot += (long)L.q[(size_t)o * (size_t)in + (size_t)(c * 32 + j)] * a.q[(size_t)r * a.ld + (size_t)(c * 32 + j)];
                const int g = c / cpg;
                const double sc = (double)ptq_f16_to_f32(w->scales[(size_t)o * (size_t)w->n_groups + (size_t)g]) *
                                  a.d[(size_t)r * nc + (size_t)c];
                const double t = sc * (double)(dot - (long)ptq_qweight_zeros_of(w, o)[g] *
                                                         a.qsum[(size_t)r * nc + (size_t)c]);
                s += t;
                m += fabs(t);
            }
            ref[(size_t)r * (size_t)out + (size_t)o] = s;
            mag[(size_t)r * (size_t)out + (size_t)o] = m;
        }

    CHECK(ptq_qgemm_a8_gemm(w, &a, yg) == 1);
    ptq_qgemv_a8_scalar(w, &a, ys, 0, out);
    CHECK(ptq_qgemm_a8_tiled(w, x, rows, yt) == 1);
    ptq_qgemm_a8_isa(PTQ_ISA_SCALAR, w, x, rows, yq);
    ptq_qgemm_a8_isa(PTQ_ISA_AVX512, w, x, rows, yi);
    int bad = 0;
    for (size_t i = 0; i < outn && bad < 5; i++) {
        const double tol_ref = 1e-5 * mag[i] + 1e-30, tol = 1e-6 * mag[i] + 1e-30;
        /* below the threshold ptq_qgemm_a8_isa runs the GEMV kernel: its own summation order (test_qgemv_a8) */
        const double tol_isa = rows >= PTQ_QGEMM_A8_MIN_ROWS ? tol : 2e-5 * mag[i] + 1e-30;
        const int ok = fabs(yg[i] - ref[i]) <= tol_ref && fabs((double)yg[i] - ys[i]) <= tol &&
                       fabs((double)yt[i] - yq[i]) <= tol && fabs((double)yi[i] - yq[i]) <= tol_isa;
        CHECK_MSG(ok, "W%d g%d%s in %d out %d rows %d: y[%zu][%zu]: gemm %.9g scalar %.9g ref %.9g | tiled %.9g "
                  "isa %.9g scalar-isa %.9g (sum|terms| %.3g)",
                  bits, group, perm ? " act-order" : "", in, out, rows, i / (size_t)out, i % (size_t)out, yg[i], ys[i],
                  ref[i], yt[i], yi[i], yq[i], mag[i]);
        bad += !ok;
        g_exact += yg[i] == ys[i];
        g_compared++;
    }
    free(scratch);
    free(x);
    free(yg);
    free(ys);
    free(yt);
    free(yi);
    free(yq);
    free(ref);
    free(mag);
    free_layer(&L);
}

int main(void) {
    if (!ptq_qgemm_a8_supported()) {
        printf("test_qgemm_a8: SKIPPED (CPU lacks AVX-512 VNNI)\n");
        return 77;
    }
    const int bits_list[7] = {2, 3, 4, 5, 6, 7, 8};
    for (sym_pass = 0; sym_pass < 2; sym_pass++) { /* with stored zero points, then without */
    /* every bits x group x act-order on a small odd shape, a few row counts */
    for (int bi = 0; bi < 7; bi++)
        for (int gi = 0; gi < 5; gi++)
            for (int perm = 0; perm < 2; perm++) {
                const int in = 300, groups[5] = {32, 64, 96, 128, in};
                check_case(bits_list[bi], in, 70, groups[gi], perm, 1 + (bi * 10 + gi * 2 + perm) % 9);
                check_case(bits_list[bi], in, 17, groups[gi], perm, 37);
            }
    /* rows 1..300 through the row tails and the row split (out 17: one output block, rows split) */
    const int rows_list[8] = {1, 2, 3, 4, 5, 63, 129, 300};
    for (int i = 0; i < 8; i++) {
        check_case(4, 200, 130, 32, 0, rows_list[i]);
        check_case(2 + (i % 3 == 2 ? 6 : i % 3), 100, 17, 64, i & 1, rows_list[i]);
        check_case(5 + i % 3, 100, 17, 64, i & 1, rows_list[i]);
    }
    /* more than one K block (2100 columns = 66 chunks > PTQ_QA8_KC), every width */
    for (int bi = 0; bi < 7; bi++) check_case(bits_list[bi], 2100, 80, bi == 1 ? 2100 : 32, bi & 1, 23);
    }
    printf("test_qgemm_a8: %ld of %ld outputs bit-identical to ptq_qgemv_a8_scalar\n", g_exact, g_compared);
    return tu_done("test_qgemm_a8");
}
