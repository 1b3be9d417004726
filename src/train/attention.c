/* Attention for training, with BLAS: per sequence and head, S = scale Q K^T and O = P V as sgemm calls (the
 * scalar loops of ops/attention*.c are written for one query at a time and dominate a training step at long
 * contexts). Same math as ptq_attention_forward_cache / ptq_attention_backward, same probability layout
 * [h][i][j] with 0 for masked keys:
 *     dP = dO V^T,  dS_ij = P_ij (dP_ij - sum_j P_ij dP_ij),  dQ += scale dS K,  dK += scale dS^T Q,  dV += P^T dO.
 * A causal mask is applied after the full product (the masked half costs flops, not accuracy).
 */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "train/train_internal.h"

/* exp(x) for x <= 0 in a form the compiler vectorizes: x = n ln2 + r (|r| <= ln2/2), e^r by its degree-7 Taylor
 * polynomial (relative error < 1e-8, below float rounding), 2^n through the exponent bits. x < -87 gives ~0. */
static inline float exp_nonpos(float x) {
    /* clamp to -87 by a bit select (a plain ?: keeps GCC from vectorizing under -ftrapping-math) */
    const float lo = -87.0f;
    int32_t xi, li, mk = -(int32_t)(x > lo);
    memcpy(&xi, &x, 4);
    memcpy(&li, &lo, 4);
    xi = (xi & mk) | (li & ~mk);
    memcpy(&x, &xi, 4);
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float t = x * 1.44269504088896341f + shifter;
    float n = t - shifter;
    float r = x - n * 0.693145751953125f;
    r -= n * 1.428606765330187045e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t ti, si;
    memcpy(&ti, &t, 4);
    si = (ti - 0x4B400000 + 127) << 23; /* 2^n: n sits in t's low mantissa bits */
    float sc;
    memcpy(&sc, &si, 4);
    return p * sc;
}

void ptq_train_attn_head_fwd(const float *q, int qs, const float *k, int ks, const float *v, int vs, float *out,
                             int os, int T, int hd, int causal, float *P) {
    float scale = 1.0f / sqrtf((float)hd);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, q, qs, k, ks, 0.0f, P, T);
    for (int i = 0; i < T; i++) {
        float *p = P + (size_t)i * T;
        int last = causal ? i : T - 1;
        float mx = -INFINITY;
        for (int j = 0; j <= last; j++)
            if (p[j] > mx) mx = p[j];
        for (int j = 0; j <= last; j++) p[j] = exp_nonpos(p[j] - mx);
        float sum = 0.0f;
        for (int j = 0; j <= last; j++) sum += p[j];
        float inv = 1.0f / sum;
        for (int j = 0; j <= last; j++) p[j] *= inv;
        for (int j = last + 1; j < T; j++) p[j] = 0.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, v, vs, 0.0f, out, os);
}

void ptq_train_attn_head_bwd(const float *q, int qs, const float *k, int ks, const float *v, int vs, const float *P,
                             const float *dout, int os, float *dq, float *dk, float *dv, int T, int hd, float *W) {
    float scale = 1.0f / sqrtf((float)hd);
    /* W = dP = dO V^T, then dS in place */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, dout, os, v, vs, 0.0f, W, T);
    for (int i = 0; i < T; i++) {
        const float *p = P + (size_t)i * T;
        float *w = W + (size_t)i * T;
        double D = 0;
        for (int j = 0; j < T; j++) D += (double)p[j] * w[j];
        float Df = (float)D;
        for (int j = 0; j < T; j++) w[j] = p[j] * (w[j] - Df);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, scale, W, T, k, ks, 1.0f, dq, qs);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, scale, W, T, q, qs, 1.0f, dk, ks);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, dout, os, 1.0f, dv, vs);
}
