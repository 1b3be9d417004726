#include <math.h>

#include "ops/backward.h"
#include "ops/ops.h"

void ptq_layernorm(const float *x, int rows, int dim, const float *w, const float *b, float eps, float *out) {
    ptq_layernorm_forward_cache(x, rows, dim, w, b, eps, out, NULL, NULL);
}

/* mean and rstd (per row) are kept when not NULL, for the backward pass. */
void ptq_layernorm_forward_cache(const float *x, int rows, int dim, const float *w, const float *b, float eps,
                                 float *out, float *mean_cache, float *rstd_cache) {
#pragma omp parallel for schedule(static) if (rows > 64)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * dim;
        float *o = out + (size_t)r * dim;
        double mean = 0, var = 0;
        for (int i = 0; i < dim; i++) mean += xr[i];
        mean /= dim;
        for (int i = 0; i < dim; i++) var += (xr[i] - mean) * (xr[i] - mean);
        var /= dim;
        float inv = (float)(1.0 / sqrt(var + eps));
        float m = (float)mean;
        if (mean_cache) mean_cache[r] = m;
        if (rstd_cache) rstd_cache[r] = inv;
        for (int i = 0; i < dim; i++) o[i] = (xr[i] - m) * inv * w[i] + (b ? b[i] : 0.0f);
    }
}

void ptq_rmsnorm(const float *x, int rows, int dim, const float *w, float eps, float *out) {
    ptq_rmsnorm_forward_cache(x, rows, dim, w, eps, out, NULL);
}

void ptq_rmsnorm_forward_cache(const float *x, int rows, int dim, const float *w, float eps, float *out,
                               float *rstd_cache) {
#pragma omp parallel for schedule(static) if (rows > 64)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * dim;
        float *o = out + (size_t)r * dim;
        double ss = 0;
        for (int i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
        float inv = (float)(1.0 / sqrt(ss / dim + eps));
        if (rstd_cache) rstd_cache[r] = inv;
        for (int i = 0; i < dim; i++) o[i] = xr[i] * inv * w[i];
    }
}

void ptq_norm_apply(const ptq_config *c, const ptq_norm *n, const float *x, int rows, float *out) {
    if (c->norm == PTQ_NORM_RMS) ptq_rmsnorm(x, rows, c->dim, n->w, c->norm_eps, out);
    else ptq_layernorm(x, rows, c->dim, n->w, n->b, c->norm_eps, out);
}
