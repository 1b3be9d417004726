#include <cblas.h>
#include <string.h>

#include "kernels/qweight.h"
#include "models/forward.h"

static void add_rows(float *y, const float *b, int rows, int n) {
    for (int r = 0; r < rows; r++) {
        float *yr = y + (size_t)r * n;
        for (int o = 0; o < n; o++) yr[o] += b[o];
    }
}

static void float_gemm(const ptq_linear *lin, const float *x, int rows, float *y) {
    if (rows == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, lin->out, lin->in, 1.0f, lin->w, lin->in, x, 1, 0.0f, y, 1);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, lin->out, lin->in, 1.0f, x, lin->in, lin->w,
                    lin->in, 0.0f, y, lin->out);
    }
}

void ptq_linear_forward(const ptq_linear *lin, const float *x, int rows, float *y) {
    if (lin->q) ptq_qgemm(lin->q, x, rows, y);
    else float_gemm(lin, x, rows, y);
    if (lin->b) add_rows(y, lin->b, rows, lin->out);
    if (lin->bc) add_rows(y, lin->bc, rows, lin->out);
}

void ptq_linear_forward_float(const ptq_linear *lin, const float *x, int rows, float *y) {
    float_gemm(lin, x, rows, y);
    if (lin->b) add_rows(y, lin->b, rows, lin->out);
}
