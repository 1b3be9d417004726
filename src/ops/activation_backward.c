/* Derivatives of the activations in activation.c, and the gated MLP product act(g) * u.
 *
 *   GELU (exact):  x * Phi(x)                          ->  Phi(x) + x * phi(x), phi(x) = exp(-x^2/2) / sqrt(2 pi)
 *   GELU (tanh):   0.5 x (1 + t), t = tanh(k (x + c x^3)) ->  0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2)
 *   ReLU:          max(x, 0)                           ->  1 for x > 0, else 0
 *   SiLU:          x * s, s = 1 / (1 + exp(-x))        ->  s (1 + x (1 - s))
 */
#include <math.h>

#include "ops/backward.h"
#include "ops/ops.h"

float ptq_act_grad_scalar(ptq_act_kind kind, float x) {
    switch (kind) {
    case PTQ_ACT_GELU: {
        float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
        float pdf = 0.39894228040143268f * expf(-0.5f * x * x); /* 1/sqrt(2 pi) */
        return cdf + x * pdf;
    }
    case PTQ_ACT_GELU_TANH: {
        const float k = 0.79788456080286536f, c = 0.044715f;
        float t = tanhf(k * (x + c * x * x * x));
        return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * k * (1.0f + 3.0f * c * x * x);
    }
    case PTQ_ACT_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case PTQ_ACT_SILU: {
        float s = 1.0f / (1.0f + expf(-x));
        return s * (1.0f + x * (1.0f - s));
    }
    }
    return 1.0f;
}

void ptq_act_backward(ptq_act_kind kind, const float *x, const float *dy, float *dx, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dx[i] += ptq_act_grad_scalar(kind, x[i]) * dy[i];
}

void ptq_gated_forward(ptq_act_kind kind, const float *g, const float *u, float *y, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] = u[i] * ptq_act_scalar(kind, g[i]);
}

void ptq_gated_backward(ptq_act_kind kind, const float *g, const float *u, const float *dy, float *dg, float *du,
                        size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        if (dg) dg[i] += dy[i] * u[i] * ptq_act_grad_scalar(kind, g[i]);
        if (du) du[i] += dy[i] * ptq_act_scalar(kind, g[i]);
    }
}
