#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ggml_gemm.h"
#include "kernels/i8gemm.h"
#include "kernels/qgemm_impl.h"
#include "kernels/qgemv_a8.h"
#include "kernels/qweight.h"
#include "quant/actq.h"
#include "models/forward.h"

static void add_rows(float *y, const float *b, int rows, int n) {
    for (int r = 0; r < rows; r++) {
        float *yr = y + (size_t)r * n;
        for (int o = 0; o < n; o++) yr[o] += b[o];
    }
}

static void float_gemm(const ptq_linear *lin, const float *w, const float *x, int rows, float *y) {
    if (rows == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, lin->out, lin->in, 1.0f, w, lin->in, x, 1, 0.0f, y, 1);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, lin->out, lin->in, 1.0f, x, lin->in, w,
                    lin->in, 0.0f, y, lin->out);
    }
}

/* Integer execution: int8 codes of (x + noise) times int8 weights, exact int32 accumulation. */
static int try_integer(const ptq_linear *lin, const float *x, int rows, float *y) {
    const ptq_actq *aq = lin->aq;
    if (!lin->i8 || !aq->sym || aq->twin) return 0;
    float *xn = NULL;
    if (aq->noise) {
        xn = malloc((size_t)rows * lin->in * sizeof *xn);
        if (!xn) return 0;
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < lin->in; j++) xn[(size_t)r * lin->in + j] = x[(size_t)r * lin->in + j] + aq->noise[j];
    }
    ptq_status s = ptq_i8_linear(ptq_i8_isa_best(), lin->i8, xn ? xn : x, rows, aq->per_token ? NULL : &aq->scale,
                                 aq->per_token, aq->bits, NULL, y, NULL);
    free(xn);
    return s == PTQ_OK;
}

/* Whether lin runs as plain int8-activation GEMV (packed weights, --act8, no activation quantizer). */
static int plain_act8(const ptq_linear *lin) {
    return lin->q && lin->q->act8 && !lin->aq && ptq_a8_isa_best() != PTQ_ISA_SCALAR;
}

void ptq_linear_forward(const ptq_linear *lin, const float *x, int rows, float *y) {
    if (lin->aq && try_integer(lin, x, rows, y)) {
        /* done: y holds the integer product */
    } else {
        float *xq = NULL;
        if (lin->aq && (xq = malloc((size_t)rows * lin->in * sizeof *xq)) != NULL) {
            ptq_actq_apply(lin->aq, x, rows, lin->in, xq); /* simulated (fake-quant) activations */
            x = xq;
        }
        if (!xq && plain_act8(lin))
            ptq_qgemm_a8_isa(ptq_a8_isa_best(), lin->q, x, rows, y); /* int8 activations (AVX2 or VNNI CPUs) */
        else if (lin->q) ptq_qgemm(lin->q, x, rows, y);
        else if (ptq_linear_is_ggml(lin))
            (lin->ggml_act8 ? ptq_ggml_gemm_a8 : ptq_ggml_gemm)(lin->ggml_type, lin->ggml, lin->out, lin->in, x, rows, y);
        else float_gemm(lin, lin->wq ? lin->wq : lin->w, x, rows, y); /* wq: weights on a ggml grid */
        free(xq);
    }
    if (lin->b) add_rows(y, lin->b, rows, lin->out);
    if (lin->bc) add_rows(y, lin->bc, rows, lin->out);
    if (lin->aq && lin->aq->noise_bias) add_rows(y, lin->aq->noise_bias, rows, lin->out);
}

int ptq_linear_forward_many(const ptq_linear *const *lins, int n, const float *x, int rows, float *const *ys) {
    const ptq_qweight *ws[PTQ_A8_MULTI];
    int fused = n > 1 && n <= PTQ_A8_MULTI;
    for (int i = 0; fused && i < n; i++) {
        fused = plain_act8(lins[i]);
        ws[i] = lins[i]->q;
    }
    if (!fused) return 0;
    ptq_qgemm_a8_multi(ptq_a8_isa_best(), ws, n, x, rows, ys);
    for (int i = 0; i < n; i++) {
        if (lins[i]->b) add_rows(ys[i], lins[i]->b, rows, lins[i]->out);
        if (lins[i]->bc) add_rows(ys[i], lins[i]->bc, rows, lins[i]->out);
    }
    return 1;
}

void ptq_linear_forward_simulated(const ptq_linear *lin, const float *x, int rows, float *y) {
    ptq_linear tmp = *lin;
    tmp.i8 = NULL;
    ptq_linear_forward(&tmp, x, rows, y);
}

void ptq_linear_forward_float(const ptq_linear *lin, const float *x, int rows, float *y) {
    float_gemm(lin, lin->w, x, rows, y);
    if (lin->b) add_rows(y, lin->b, rows, lin->out);
}

static void set_act8(ptq_linear *l, int on) {
    if (l->q) l->q->act8 = on != 0;
    l->ggml_act8 = on != 0;
}

void ptq_model_set_act8(ptq_model *m, int on) {
    for (int b = 0; b < m->cfg.n_layers; b++)
        for (int r = 0; r < PTQ_LIN_COUNT; r++) set_act8(&m->blocks[b].lin[r], on);
    set_act8(&m->head, on);
    set_act8(&m->proj_in, on);
    set_act8(&m->proj_out, on);
    set_act8(&m->patch, on);
}
