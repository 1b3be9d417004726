/* Losses for fine-tuning: softmax cross-entropy, and the outlier loss of our QuantTune placeholder.
 *
 * Sums over many rows/elements run in double over NCHUNK fixed chunks (independent of the thread count) that are
 * added in order, so the results are deterministic.
 */
#include <math.h>

#include "core/error.h"
#include "ops/backward.h"

#define NCHUNK 64

/* first index of chunk c of n items split into NCHUNK nearly equal chunks (c = NCHUNK gives n) */
static inline size_t chunk_lo(size_t n, int c) {
    size_t rem = n % NCHUNK, uc = (size_t)c;
    return n / NCHUNK * uc + (uc < rem ? uc : rem);
}

ptq_status ptq_cross_entropy(const float *logits, const int *targets, int rows, int vocab, double *loss,
                             float *dlogits, float scale, int *n_valid, ptq_error *err) {
    int nv = 0;
    for (int r = 0; r < rows; r++) {
        if (targets[r] == -1) continue;
        if (targets[r] < 0 || targets[r] >= vocab)
            return ptq_fail(err, PTQ_ERR_ARG, "cross-entropy: target %d of row %d is outside [0, %d) (or -1 to ignore)",
                            targets[r], r, vocab);
        nv++;
    }
    if (n_valid) *n_valid = nv;
    if (loss) *loss = 0;
    if (nv == 0) return PTQ_OK;
    double part[NCHUNK] = {0};
    double gscale = (double)scale / nv;
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)rows * vocab > 65536)
    for (int c = 0; c < NCHUNK; c++) {
        size_t r1 = chunk_lo((size_t)rows, c + 1);
        for (size_t r = chunk_lo((size_t)rows, c); r < r1; r++) {
            int t = targets[r];
            if (t == -1) continue;
            const float *x = logits + r * vocab;
            float mx = x[0];
            for (int i = 1; i < vocab; i++)
                if (x[i] > mx) mx = x[i];
            double se = 0;
            for (int i = 0; i < vocab; i++) se += exp((double)x[i] - mx);
            double lse = mx + log(se);
            part[c] += lse - x[t];
            if (dlogits) {
                float *g = dlogits + r * vocab;
                for (int i = 0; i < vocab; i++) g[i] += (float)(gscale * exp((double)x[i] - lse));
                g[t] -= (float)gscale;
            }
        }
    }
    double s = 0;
    for (int c = 0; c < NCHUNK; c++) s += part[c];
    if (loss) *loss = s / nv;
    return PTQ_OK;
}

/* Outlier loss and its exact gradient. Notation: N elements a_k, c_k = a_k - mu, s_k = sign(c_k),
 *     mu = (1/N) sum_k a_k,  v = (1/N) sum_k c_k^2,  sigma = sqrt(v + eps)  (eps = PTQ_OUTLIER_EPS = 1e-12,
 *     so sigma > 0 even for a constant tensor),
 *     e_k = |c_k| - tau sigma,  r_k = relu(e_k),  L = (1/N) sum_k r_k^2.
 * relu(e)^2 is differentiable with derivative 2 relu(e), so dL/da_m = (2/N) sum_k r_k de_k/da_m, where
 *     dc_k/da_m    = delta_km - 1/N                       (mu depends on every a_m)
 *     d|c_k|/da_m  = s_k (delta_km - 1/N)                 (s_k = 0 at c_k = 0 is the subgradient we pick;
 *                                                          there r_k = 0 anyway when tau >= 0)
 *     dv/da_m      = (2/N) sum_k c_k (delta_km - 1/N) = (2/N) c_m    (because sum_k c_k = 0)
 *     dsigma/da_m  = dv/da_m / (2 sigma) = c_m / (N sigma)
 * hence, with R0 = sum_k r_k and R1 = sum_k r_k s_k,
 *     dL/da_m = (2/N) * ( r_m s_m  -  R1 / N  -  tau * c_m * R0 / (N sigma) ).
 * The first term pulls each outlier toward the threshold; the second is the mean's share; the third is the
 * std's share (shrinking sigma raises the threshold, so it acts on every element, outlier or not).
 */
double ptq_outlier_loss(const float *A, size_t n, float tau, float *dA, float scale) {
    if (n == 0) return 0.0;
    double part[NCHUNK], part2[NCHUNK], part3[NCHUNK];
    double N = (double)n;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int c = 0; c < NCHUNK; c++) {
        double s = 0;
        for (size_t k = chunk_lo(n, c); k < chunk_lo(n, c + 1); k++) s += A[k];
        part[c] = s;
    }
    double mu = 0;
    for (int c = 0; c < NCHUNK; c++) mu += part[c];
    mu /= N;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int c = 0; c < NCHUNK; c++) {
        double s = 0;
        for (size_t k = chunk_lo(n, c); k < chunk_lo(n, c + 1); k++) s += (A[k] - mu) * (A[k] - mu);
        part[c] = s;
    }
    double var = 0;
    for (int c = 0; c < NCHUNK; c++) var += part[c];
    var /= N;
    double sigma = sqrt(var + PTQ_OUTLIER_EPS), thr = (double)tau * sigma;
    /* loss, R0 = sum r_k, R1 = sum r_k s_k */
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int c = 0; c < NCHUNK; c++) {
        double l = 0, r0 = 0, r1 = 0;
        for (size_t k = chunk_lo(n, c); k < chunk_lo(n, c + 1); k++) {
            double ck = A[k] - mu, e = fabs(ck) - thr;
            if (e <= 0) continue;
            l += e * e;
            r0 += e;
            r1 += ck > 0 ? e : ck < 0 ? -e : 0.0;
        }
        part[c] = l;
        part2[c] = r0;
        part3[c] = r1;
    }
    double L = 0, R0 = 0, R1 = 0;
    for (int c = 0; c < NCHUNK; c++) {
        L += part[c];
        R0 += part2[c];
        R1 += part3[c];
    }
    L /= N;
    if (dA && R0 > 0) {
        double k2 = 2.0 * scale / N, m1 = R1 / N, kc = (double)tau * R0 / (N * sigma);
#pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t k = 0; k < n; k++) {
            double ck = A[k] - mu, e = fabs(ck) - thr;
            double rs = e > 0 ? (ck > 0 ? e : ck < 0 ? -e : 0.0) : 0.0;
            dA[k] += (float)(k2 * (rs - m1 - kc * ck));
        }
    }
    return L;
}
