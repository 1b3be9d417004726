/* RoPE backward: each (i0, i1) pair is rotated by the angle a = pos * theta^(-2i/d), y = R(a) x, so
 * dx = R(a)^T dy = R(-a) dy. Done in place on the gradient with the same float angles as ptq_rope. */
#include <math.h>

#include "ops/backward.h"

void ptq_rope_backward(ptq_rope_kind kind, float *dx, int rows, int seq_len, int stride, int n_heads, int head_dim,
                       int pos0, float theta) {
    if (kind == PTQ_ROPE_NONE) return;
    int half = head_dim / 2;
#pragma omp parallel for schedule(static) if (rows > 16)
    for (int r = 0; r < rows; r++) {
        float pos = (float)(pos0 + r % seq_len);
        float *row = dx + (size_t)r * stride;
        for (int i = 0; i < half; i++) {
            float freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
            float a = pos * freq, c = cosf(a), s = sinf(a);
            int i0 = kind == PTQ_ROPE_INTERLEAVED ? 2 * i : i;
            int i1 = kind == PTQ_ROPE_INTERLEAVED ? 2 * i + 1 : i + half;
            for (int h = 0; h < n_heads; h++) {
                float *g = row + (size_t)h * head_dim;
                float g0 = g[i0], g1 = g[i1];
                g[i0] = g0 * c + g1 * s;
                g[i1] = -g0 * s + g1 * c;
            }
        }
    }
}
