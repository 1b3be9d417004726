/* The per-layer relative output error (src/quant/layer_error.c) against the definition
 * tr(D H D^T) / tr(W H W^T) written out as plain loops here: equal (to rounding) where the whole layer
 * is computed, and within 3% where the report samples output rows. H comes from inputs with uneven
 * channel scales; the weights' rows have uneven scales too, so the sampled rows are not all alike. */
#include <math.h>
#include <stdlib.h>

#include "quant/quantizer.h"
#include "testutil.h"

static double naive(const float *W, const float *Wq, int out, int in, const double *H) {
    double num = 0, den = 0;
    for (int r = 0; r < out; r++)
        for (int a = 0; a < in; a++) {
            double da = (double)W[(size_t)r * in + a] - Wq[(size_t)r * in + a], wa = W[(size_t)r * in + a];
            for (int b = 0; b < in; b++) {
                double h = H[(size_t)a * in + b];
                num += da * h * ((double)W[(size_t)r * in + b] - Wq[(size_t)r * in + b]);
                den += wa * h * W[(size_t)r * in + b];
            }
        }
    return num / den;
}

static void layer(int out, int in, int n, uint64_t seed, float **W, float **Wq, double **H) {
    *W = malloc((size_t)out * in * sizeof **W);
    *Wq = malloc((size_t)out * in * sizeof **Wq);
    *H = calloc((size_t)in * in, sizeof **H);
    float *X = malloc((size_t)n * in * sizeof *X);
    tu_prng_fill(*W, (size_t)out * in, seed, 0.1, 0, 16);
    tu_prng_fill(X, (size_t)n * in, seed + 1, 1.0, 0, 16);
    for (int r = 0; r < out; r++)
        for (int j = 0; j < in; j++) (*W)[(size_t)r * in + j] *= 1.0f + (float)(r % 7);
    for (int t = 0; t < n; t++)
        for (int j = 0; j < in; j++) X[(size_t)t * in + j] *= 1.0f + (float)(j % 5 == 0) * 4.0f;
    for (int t = 0; t < n; t++)
        for (int a = 0; a < in; a++)
            for (int b = 0; b < in; b++) (*H)[(size_t)a * in + b] += 2.0 * X[(size_t)t * in + a] * X[(size_t)t * in + b] / n;
    ptq_wq_params wq = {3, 0, 0, 0};
    ptq_qweight q;
    ptq_error e;
    CHECK(ptq_rtn_quantize(*W, out, in, &wq, &q, &e) == PTQ_OK);
    for (int r = 0; r < out; r++) ptq_qweight_dequant_row(&q, r, *Wq + (size_t)r * in);
    ptq_qweight_free(&q);
    free(X);
}

int main(void) {
    float *W, *Wq;
    double *H;
    /* exact: 96 x 200 */
    layer(96, 200, 64, 3, &W, &Wq, &H);
    CHECK(ptq_rel_error_rows(96, 200) == 96);
    double ref = naive(W, Wq, 96, 200, H), got = ptq_dense_rel_error(W, Wq, 96, 200, H);
    printf("exact: %.12g vs definition %.12g\n", got, ref);
    CHECK_MSG(tu_close(got, ref, 1e-10), "exact error %.12g vs %.12g", got, ref);
    free(W), free(Wq), free(H);

    /* sampled: 800 x 1024 costs 839 M multiply-adds exactly, more than the budget */
    int out = 800, in = 1024;
    layer(out, in, 128, 7, &W, &Wq, &H);
    int k = ptq_rel_error_rows(out, in);
    CHECK(k < out && k >= 64);
    ref = naive(W, Wq, out, in, H);
    got = ptq_dense_rel_error(W, Wq, out, in, H);
    printf("sampled on %d of %d rows: %.6g vs definition %.6g (%.2f%%)\n", k, out, got, ref, 100 * (got / ref - 1));
    CHECK_MSG(fabs(got / ref - 1) < 0.03, "sampled error %.6g vs %.6g", got, ref);
    free(W), free(Wq), free(H);
    return tu_done("test_layer_error");
}
