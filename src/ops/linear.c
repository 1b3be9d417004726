#include <cblas.h>
#include <string.h>

#include "kernels/qweight.h"
#include "models/forward.h"

void ptq_linear_forward(const ptq_linear *lin, const float *x, int rows, float *y) {
    if (lin->q) {
        ptq_qgemm(lin->q, x, rows, y);
    } else if (rows == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, lin->out, lin->in, 1.0f, lin->w, lin->in, x, 1, 0.0f, y, 1);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, lin->out, lin->in, 1.0f, x, lin->in, lin->w,
                    lin->in, 0.0f, y, lin->out);
    }
    if (lin->b) {
        for (int r = 0; r < rows; r++) {
            float *yr = y + (size_t)r * lin->out;
            for (int o = 0; o < lin->out; o++) yr[o] += lin->b[o];
        }
    }
}
