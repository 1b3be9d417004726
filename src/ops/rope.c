#include <math.h>

#include "ops/ops.h"

void ptq_rope(ptq_rope_kind kind, float *x, int rows, int seq_len, int stride, int n_heads, int head_dim, int pos0,
              float theta) {
    if (kind == PTQ_ROPE_NONE) return;
    int half = head_dim / 2;
#pragma omp parallel for schedule(static) if (rows > 16)
    for (int r = 0; r < rows; r++) {
        float pos = (float)(pos0 + r % seq_len);
        float *row = x + (size_t)r * stride;
        for (int i = 0; i < half; i++) {
            float freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
            float a = pos * freq, c = cosf(a), s = sinf(a);
            for (int h = 0; h < n_heads; h++) {
                float *v = row + (size_t)h * head_dim;
                int i0 = kind == PTQ_ROPE_INTERLEAVED ? 2 * i : i;
                int i1 = kind == PTQ_ROPE_INTERLEAVED ? 2 * i + 1 : i + half;
                float v0 = v[i0], v1 = v[i1];
                v[i0] = v0 * c - v1 * s;
                v[i1] = v0 * s + v1 * c;
            }
        }
    }
}
