/* The double-precision GPTQ that ptq used before its float32 BLAS-3 version (src/quant/gptq.c), kept
 * as the reference the new one is compared with (tests/test_gptq.c: codes against it; bench/bench_gptq.c:
 * time). Columns one at a time, per-row updates in double inside a block of 128, dgemm between blocks;
 * the inverse Hessian from ptq_gptq_inverse_double (dpotrf, dpotri, dpotrf). Header-only on purpose: it
 * is test and bench code, not part of the library. */
#ifndef PTQ_TESTS_GPTQ_DOUBLE_REF_H
#define PTQ_TESTS_GPTQ_DOUBLE_REF_H

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "quant/quantizer.h"

typedef struct {
    double d;
    int j;
} gd_diag_idx;

static int gd_cmp_diag_desc(const void *a, const void *b) {
    const gd_diag_idx *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? 1 : -1;
    return x->j - y->j;
}

/* U = upper Cholesky factor of (Hp + damp I)^-1 as before: factor, invert, factor again. */
static ptq_status gd_inverse_hessian(const double *H, int in, const int *order, double percdamp, double *U,
                                     ptq_error *err) {
    double mean_diag = 0;
    for (int a = 0; a < in; a++) {
        int oa = order[a];
        for (int b = 0; b < in; b++) U[(size_t)a * in + b] = H[(size_t)oa * in + order[b]];
        if (H[(size_t)oa * in + oa] == 0) U[(size_t)a * in + a] = 1.0;
        mean_diag += U[(size_t)a * in + a];
    }
    double damp = percdamp * mean_diag / in;
    for (int j = 0; j < in; j++) U[(size_t)j * in + j] += damp;
    int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', in, U, in);
    if (info == 0) info = LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'U', in, U, in);
    if (info == 0) info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', in, U, in);
    if (info != 0) return ptq_fail(err, PTQ_ERR_NUMERIC, "reference GPTQ: Cholesky failed (LAPACK info %d)", info);
    for (int a = 1; a < in; a++) memset(U + (size_t)a * in, 0, (size_t)a * sizeof *U);
    return PTQ_OK;
}

static ptq_status gptq_double_quantize(const float *W, int out, int in, const double *H, const ptq_gptq_params *p,
                             ptq_qweight *q, const ptq_callbacks *cb, ptq_error *err) {
    PTQ_TRY(ptq_qweight_alloc(q, p->wq.bits, p->wq.group, in, out, p->act_order, err));
    int G = q->group, maxq = (1 << p->wq.bits) - 1, B = p->block > 0 ? p->block : 128;
    ptq_status st = PTQ_OK;
    double *Wd = ptq_alloc((size_t)out * in, sizeof(double), "GPTQ weights", err);
    double *U = ptq_alloc((size_t)in * in, sizeof(double), "GPTQ inverse Hessian", err);
    double *Err = ptq_alloc((size_t)out * B, sizeof(double), "GPTQ errors", err);
    uint8_t *codes = ptq_alloc((size_t)out * in, 1, "GPTQ codes", err);
    float *rs = ptq_alloc((size_t)out, sizeof(float), "GPTQ scales", err);
    int *rz = ptq_alloc((size_t)out, sizeof(int), "GPTQ zeros", err);
    int *order = malloc((size_t)in * sizeof *order);
    gd_diag_idx *di = malloc((size_t)in * sizeof *di);
    if (!Wd || !U || !Err || !codes || !rs || !rz || !order || !di) {
        st = err && err->status == PTQ_ERR_NOMEM ? PTQ_ERR_NOMEM : ptq_fail(err, PTQ_ERR_NOMEM, "GPTQ: out of memory");
        goto done;
    }

    /* dead inputs (never active in calibration): weight 0, unit curvature */
    for (int j = 0; j < in; j++) {
        di[j].d = H[(size_t)j * in + j] == 0 ? 1.0 : H[(size_t)j * in + j];
        di[j].j = j;
    }
    if (p->act_order) qsort(di, (size_t)in, sizeof *di, gd_cmp_diag_desc);
    for (int j = 0; j < in; j++) order[j] = di[j].j;
    for (int r = 0; r < out; r++)
        for (int j = 0; j < in; j++) {
            int oj = order[j];
            Wd[(size_t)r * in + j] = H[(size_t)oj * in + oj] == 0 ? 0.0 : W[(size_t)r * in + oj];
        }
    if (q->perm)
        for (int j = 0; j < in; j++) q->perm[j] = order[j];

    (void)cb;
    st = gd_inverse_hessian(H, in, order, p->percdamp, U, err);
    if (st != PTQ_OK) goto done;

    /* per-channel grids come from the whole (dead-zeroed) row before any update, a per-tensor grid
       from the whole matrix */
    double range[2] = {0, 0};
    if (p->wq.group == PTQ_GROUP_TENSOR)
        for (size_t i = 0; i < (size_t)out * in; i++) range[0] = fmin(range[0], Wd[i]), range[1] = fmax(range[1], Wd[i]);
    if (G == in)
        for (int r = 0; r < out; r++) {
            if (p->wq.group == PTQ_GROUP_TENSOR) ptq_wq_find_params(&p->wq, range, 2, 1, &rs[r], &rz[r]);
            else ptq_wq_find_params(&p->wq, Wd + (size_t)r * in, in, 1, &rs[r], &rz[r]);
            q->scales[(size_t)r * q->n_groups] = ptq_f32_to_f16(rs[r]);
            q->zeros[(size_t)r * q->n_groups] = (uint8_t)rz[r];
        }

    for (int i1 = 0; i1 < in; i1 += B) {
        int i2 = i1 + B < in ? i1 + B : in, cnt = i2 - i1;
#pragma omp parallel
        {
            double *W1 = malloc((size_t)cnt * sizeof *W1), *grp = malloc((size_t)(G < in ? G : 1) * sizeof *grp);
#pragma omp for schedule(static)
            for (int r = 0; r < out; r++) {
                double *wr = Wd + (size_t)r * in;
                memcpy(W1, wr + i1, (size_t)cnt * sizeof *W1);
                for (int i = 0; i < cnt; i++) {
                    int j = i1 + i;
                    if (G < in && j % G == 0) {
                        int n = in - j < G ? in - j : G;
                        /* the reference takes the grid from W, whose columns inside this block have not
                           received this block's updates yet; the alternative uses the updated ones */
                        for (int c = 0; c < n; c++)
                            grp[c] = (!p->reference_groups && j + c < i2) ? W1[j + c - i1] : wr[j + c];
                        ptq_wq_find_params(&p->wq, grp, n, 1, &rs[r], &rz[r]);
                        q->scales[(size_t)r * q->n_groups + j / G] = ptq_f32_to_f16(rs[r]);
                        q->zeros[(size_t)r * q->n_groups + j / G] = (uint8_t)rz[r];
                    }
                    double w = W1[i];
                    int code = ptq_wq_code(w, rs[r], rz[r], ptq_wq_qmin(&p->wq), maxq);
                    codes[(size_t)r * in + j] = (uint8_t)code;
                    double e = (w - (double)rs[r] * (code - rz[r])) / U[(size_t)j * in + j];
                    Err[(size_t)r * B + i] = e;
                    const double *Uj = U + (size_t)j * in + i1;
                    for (int k = i + 1; k < cnt; k++) W1[k] -= e * Uj[k];
                }
            }
            free(W1);
            free(grp);
        }
        if (i2 < in)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out, in - i2, cnt, -1.0, Err, B,
                        U + (size_t)i1 * in + i2, in, 1.0, Wd + i2, in);
    }
    for (int r = 0; r < out; r++) ptq_qweight_set_row(q, r, codes + (size_t)r * in);

done:
    ptq_free(Wd);
    ptq_free(U);
    ptq_free(Err);
    ptq_free(codes);
    ptq_free(rs);
    ptq_free(rz);
    free(order);
    free(di);
    if (st != PTQ_OK) ptq_qweight_free(q);
    return st;
}

#endif
