/* The scale-invariant outlier loss (our variant of the METHODS.md 3.2 placeholder; docs/QUANTTUNE.md):
 *     z_k = (a_k - mu) / sigma,   L = (1/N) sum_k relu(|z_k| - tau)^2,
 * with mu and sigma = sqrt(var + eps) the tensor's mean and standard deviation (eps = PTQ_OUTLIER_EPS).
 *
 * Why: the placeholder as written, mean(relu(|a - mu| - tau sigma)^2), is in the tensor's units, so a network
 * lowers it by shrinking the tensor (a smaller LayerNorm gain or fc1 weights, undone by the next layer's weights)
 * without changing its shape; fine-tuning vit-mnist with it made the post-ReLU inputs of fc2 sparser and their
 * max|A|/sigma 10x larger. In sigma units the loss only falls when the outliers move toward the bulk.
 *
 * Gradient (exact, including mu's and sigma's dependence on every element). With r_k = relu(|z_k| - tau),
 * s_k = sign(z_k), dmu/da_m = 1/N and dsigma/da_m = (a_m - mu) / (N sigma) = z_m / N:
 *     dz_k/da_m = (delta_km - 1/N) / sigma - z_k z_m / (N sigma)
 *     dL/da_m   = 2 / (N sigma) * ( r_m s_m  -  R1 / N  -  z_m R2 / N ),   R1 = sum_k r_k s_k,  R2 = sum_k r_k |z_k|.
 * (Shift invariance: sum_m dL/da_m = 0; scale invariance: sum_m (a_m - mu) dL/da_m = 0 up to eps.)
 * Sums run in double over fixed chunks, so the result does not depend on the thread count.
 */
#include <math.h>

#include "ops/backward.h"
#include "train/train_internal.h"

#define NCH 64

static inline size_t lo_of(size_t n, int c) {
    size_t rem = n % NCH, uc = (size_t)c;
    return n / NCH * uc + (uc < rem ? uc : rem);
}

double ptq_train_outlier_rel(const float *A, size_t n, float tau, float *dA, float scale) {
    if (n == 0) return 0.0;
    double p0[NCH], p1[NCH], p2[NCH], N = (double)n;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int c = 0; c < NCH; c++) {
        double s = 0;
        for (size_t k = lo_of(n, c); k < lo_of(n, c + 1); k++) s += A[k];
        p0[c] = s;
    }
    double mu = 0;
    for (int c = 0; c < NCH; c++) mu += p0[c];
    mu /= N;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int c = 0; c < NCH; c++) {
        double s = 0;
        for (size_t k = lo_of(n, c); k < lo_of(n, c + 1); k++) s += (A[k] - mu) * (A[k] - mu);
        p0[c] = s;
    }
    double var = 0;
    for (int c = 0; c < NCH; c++) var += p0[c];
    double sigma = sqrt(var / N + PTQ_OUTLIER_EPS), inv = 1.0 / sigma;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int c = 0; c < NCH; c++) {
        double l = 0, r1 = 0, r2 = 0;
        for (size_t k = lo_of(n, c); k < lo_of(n, c + 1); k++) {
            double z = (A[k] - mu) * inv, e = fabs(z) - tau;
            if (e <= 0) continue;
            l += e * e;
            r1 += z > 0 ? e : -e;
            r2 += e * fabs(z);
        }
        p0[c] = l;
        p1[c] = r1;
        p2[c] = r2;
    }
    double L = 0, R1 = 0, R2 = 0;
    for (int c = 0; c < NCH; c++) {
        L += p0[c];
        R1 += p1[c];
        R2 += p2[c];
    }
    L /= N;
    if (dA && (R1 != 0 || R2 != 0)) {
        double k2 = 2.0 * scale * inv / N, m1 = R1 / N, m2 = R2 / N;
#pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t k = 0; k < n; k++) {
            double z = (A[k] - mu) * inv, e = fabs(z) - tau;
            double rs = e > 0 ? (z > 0 ? e : -e) : 0.0;
            dA[k] += (float)(k2 * (rs - m1 - z * m2));
        }
    }
    return L;
}
