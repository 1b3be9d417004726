/* Layer norm and RMS norm: forward with cached row statistics, and backward.
 *
 * Layer norm, per row: xhat = (x - mean) * rstd, y = xhat * w + b, rstd = 1/sqrt(var + eps). With g = dy * w:
 *     dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),   dw += dy * xhat,   db += dy.
 * RMS norm, per row: y = x * r * w, r = 1/sqrt(mean(x^2) + eps), dr/dx_i = -r^3 x_i / dim, so with g = dy * w:
 *     dx = r * (g - x * r^2 * mean(g * x)),                 dw += dy * x * r.
 */
#include <math.h>

#include "ops/backward.h"
#include "ops/ops.h"

#define COLBLK 64

/* The forward passes with caches live beside the plain ones in norm.c (one implementation each). */

/* dw[d] += sum_r dy[r][d] * (x[r][d] - mean[r]) * rstd[r]  (mean NULL: 0), db[d] += sum_r dy[r][d];
 * parallel over column blocks, each column summed in double in row order. */
static void norm_param_grads(const float *x, const float *dy, const float *mean, const float *rstd, int rows, int dim,
                             float *dw, float *db) {
    if (!dw && !db) return;
    int nblk = (dim + COLBLK - 1) / COLBLK;
#pragma omp parallel for schedule(static) if ((size_t)rows * dim > 65536 && nblk > 1)
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * COLBLK, c1 = c0 + COLBLK < dim ? c0 + COLBLK : dim;
        double aw[COLBLK] = {0}, ab[COLBLK] = {0};
        for (int r = 0; r < rows; r++) {
            const float *xr = x + (size_t)r * dim, *gr = dy + (size_t)r * dim;
            float m = mean ? mean[r] : 0.0f, s = rstd[r];
            for (int d = c0; d < c1; d++) {
                aw[d - c0] += (double)gr[d] * ((xr[d] - m) * s);
                ab[d - c0] += gr[d];
            }
        }
        for (int d = c0; d < c1; d++) {
            if (dw) dw[d] = (float)(dw[d] + aw[d - c0]);
            if (db) db[d] = (float)(db[d] + ab[d - c0]);
        }
    }
}

void ptq_layernorm_backward(const float *x, const float *dy, const float *w, const float *mean, const float *rstd,
                            int rows, int dim, float *dx, float *dw, float *db) {
    if (dx) {
#pragma omp parallel for schedule(static) if (rows > 64)
        for (int r = 0; r < rows; r++) {
            const float *xr = x + (size_t)r * dim, *gr = dy + (size_t)r * dim;
            float *dr = dx + (size_t)r * dim;
            float m = mean[r], s = rstd[r];
            double sg = 0, sgx = 0;
            for (int i = 0; i < dim; i++) {
                double g = (double)gr[i] * w[i];
                sg += g;
                sgx += g * ((xr[i] - m) * s);
            }
            float mg = (float)(sg / dim), mgx = (float)(sgx / dim);
            for (int i = 0; i < dim; i++) {
                float xhat = (xr[i] - m) * s;
                dr[i] += s * (gr[i] * w[i] - mg - xhat * mgx);
            }
        }
    }
    norm_param_grads(x, dy, mean, rstd, rows, dim, dw, db);
}

void ptq_rmsnorm_backward(const float *x, const float *dy, const float *w, const float *rstd, int rows, int dim,
                          float *dx, float *dw) {
    if (dx) {
#pragma omp parallel for schedule(static) if (rows > 64)
        for (int r = 0; r < rows; r++) {
            const float *xr = x + (size_t)r * dim, *gr = dy + (size_t)r * dim;
            float *dr = dx + (size_t)r * dim;
            float s = rstd[r];
            double sgx = 0;
            for (int i = 0; i < dim; i++) sgx += (double)gr[i] * w[i] * xr[i];
            float k = (float)(sgx / dim) * s * s;
            for (int i = 0; i < dim; i++) dr[i] += s * (gr[i] * w[i] - xr[i] * k);
        }
    }
    norm_param_grads(x, dy, NULL, rstd, rows, dim, dw, NULL);
}

void ptq_norm_forward_cache(const ptq_config *c, const ptq_norm *n, const float *x, int rows, float *out,
                            const ptq_norm_cache *cache) {
    if (c->norm == PTQ_NORM_RMS) ptq_rmsnorm_forward_cache(x, rows, c->dim, n->w, c->norm_eps, out, cache->rstd);
    else ptq_layernorm_forward_cache(x, rows, c->dim, n->w, n->b, c->norm_eps, out, cache->mean, cache->rstd);
}

void ptq_norm_backward(const ptq_config *c, const ptq_norm *n, const float *x, const float *dy,
                       const ptq_norm_cache *cache, int rows, float *dx, ptq_norm *grad) {
    float *gw = grad ? grad->w : NULL, *gb = grad ? grad->b : NULL;
    if (c->norm == PTQ_NORM_RMS) ptq_rmsnorm_backward(x, dy, n->w, cache->rstd, rows, c->dim, dx, gw);
    else ptq_layernorm_backward(x, dy, n->w, cache->mean, cache->rstd, rows, c->dim, dx, gw, n->b ? gb : NULL);
}
