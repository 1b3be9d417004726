/* Backward of the linear layer y = x W^T + b, and the small reduction helpers the other backwards share. */
#include <cblas.h>

#include "ops/backward.h"

#define COLBLK 64

void ptq_colsum_acc(const float *x, int rows, size_t ld, int dim, float *dst) {
    int nblk = (dim + COLBLK - 1) / COLBLK;
    /* parallel over column blocks: each output column is summed by one thread, in row order */
#pragma omp parallel for schedule(static) if ((size_t)rows * dim > 65536 && nblk > 1)
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * COLBLK, c1 = c0 + COLBLK < dim ? c0 + COLBLK : dim;
        double acc[COLBLK] = {0};
        for (int r = 0; r < rows; r++) {
            const float *xr = x + (size_t)r * ld;
            for (int d = c0; d < c1; d++) acc[d - c0] += xr[d];
        }
        for (int d = c0; d < c1; d++) dst[d] = (float)(dst[d] + acc[d - c0]);
    }
}

void ptq_add_acc(float *dst, const float *src, size_t n) {
#pragma omp parallel for schedule(static) if (n > 262144)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

void ptq_linear_backward(const float *x, const float *w, const float *dy, int rows, int in, int out, float *dx,
                         float *dw, float *db) {
    if (rows <= 0) return;
    /* dx [rows][in] += dy [rows][out] . W [out][in] */
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, in, out, 1.0f, dy, out, w, in, 1.0f, dx, in);
    /* dW [out][in] += dy^T [out][rows] . x [rows][in] */
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, rows, 1.0f, dy, out, x, in, 1.0f, dw, in);
    if (db) ptq_colsum_acc(dy, rows, (size_t)out, out, db);
}
