/* The per-layer relative output error tr(D H D^T) / tr(W H W^T), D = W - What (quantizer.h).
 *
 * Exactly it costs O(out * in^2), more than RTN itself by orders of magnitude on a 1B model (a hidden
 * dim of 5632 makes one down projection 65 G multiply-adds). So it is computed with BLAS-3 on blocks of
 * rows ([D; W] x H with dsymm), and, when the whole matrix would cost more than ERR_BUDGET
 * multiply-adds, on an evenly spaced sample of output rows (at least ERR_MIN_ROWS). The rows of a layer
 * see the same inputs and the same grid, so their errors are alike and a ratio of sums over 64 rows
 * estimates the ratio over all rows closely (tests/test_layer_error.c measures it). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "quant/quantizer.h"

enum { ERR_CHUNK = 64, ERR_MIN_ROWS = 64 };
#define ERR_BUDGET (double)(1 << 28) /* multiply-adds for one layer's report */

typedef void (*row_fn)(const void *src, int r, int in, float *row);

static void qweight_row(const void *src, int r, int in, float *row) {
    (void)in;
    ptq_qweight_dequant_row(src, r, row); /* in the original column order */
}

static void dense_row(const void *src, int r, int in, float *row) {
    memcpy(row, (const float *)src + (size_t)r * in, (size_t)in * sizeof *row);
}

int ptq_rel_error_rows(int out, int in) {
    double all = (double)out * in * in;
    if (all <= ERR_BUDGET) return out;
    int k = (int)(ERR_BUDGET / ((double)in * in));
    if (k < ERR_MIN_ROWS) k = ERR_MIN_ROWS;
    return k < out ? k : out;
}

static double rel_error(const float *W, int out, int in, const double *H, row_fn get, const void *src) {
    int k = ptq_rel_error_rows(out, in);
    size_t n = (size_t)in;
    double *A = ptq_alloc(2 * ERR_CHUNK * n, sizeof(double), "layer error", NULL); /* [D rows; W rows] */
    double *M = ptq_alloc(2 * ERR_CHUNK * n, sizeof(double), "layer error", NULL);
    float *wq = malloc(n * sizeof *wq);
    double num = 0, den = 0;
    if (!A || !M || !wq) {
        num = NAN;
        goto done;
    }
    for (int i0 = 0; i0 < k; i0 += ERR_CHUNK) {
        int c = k - i0 < ERR_CHUNK ? k - i0 : ERR_CHUNK;
        for (int i = 0; i < c; i++) {
            /* row i0 + i of the sample: evenly spaced, the middle of its stratum */
            int r = k == out ? i0 + i : (int)(((2 * (int64_t)(i0 + i) + 1) * out) / (2 * (int64_t)k));
            get(src, r, in, wq);
            double *d = A + (size_t)i * n, *w = A + (size_t)(c + i) * n;
            for (int j = 0; j < in; j++) {
                w[j] = W[(size_t)r * in + j];
                d[j] = w[j] - wq[j];
            }
        }
        cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, 2 * c, in, 1.0, H, in, A, in, 0.0, M, in);
        for (size_t i = 0; i < (size_t)c * n; i++) num += A[i] * M[i];
        for (size_t i = (size_t)c * n; i < 2 * (size_t)c * n; i++) den += A[i] * M[i];
    }
done:
    ptq_free(A);
    ptq_free(M);
    free(wq);
    return isnan(num) ? NAN : den > 0 ? num / den : 0;
}

double ptq_layer_rel_error(const float *W, const ptq_qweight *q, int out, int in, const double *H) {
    return rel_error(W, out, in, H, qweight_row, q);
}

double ptq_dense_rel_error(const float *W, const float *Wq, int out, int in, const double *H) {
    return rel_error(W, out, in, H, dense_row, Wq);
}
